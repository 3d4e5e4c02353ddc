/*
 * test_log: the JSON decision line, byte for byte, and the sink under
 * rotation and concurrency.
 *
 * Lines are checked by a small strict JSON parser written here (its own
 * UTF-8 decoder, so it does not share the escaper's logic), and when
 * python3 is present, once more by Python's json module.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "logging/log.h"
#include "tests/unit/tap.h"

#define TS_FIXED 1795341600123456ull    /* 2026-11-22T10:00:00.123456Z */

/* ---- a strict little JSON checker ---- */

struct jp {
	const unsigned char *p, *end;
	int depth;
	char keys[32][32];      /* top-level keys, in order */
	int nkeys;
};

static void
jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int
jp_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode one UTF-8 scalar value; -1 when ill-formed. */
static long
jp_utf8(struct jp *j)
{
	unsigned c = *j->p++;
	long cp, min;
	int n, i;

	if (c < 0x80)
		return c;
	if ((c & 0xe0) == 0xc0) {
		n = 1; cp = c & 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2; cp = c & 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3; cp = c & 0x07; min = 0x10000;
	} else {
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (j->p >= j->end || (*j->p & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (*j->p++ & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	return cp;
}

static int
jp_string(struct jp *j, char *out, size_t outlen)
{
	size_t o = 0;
	int i;

	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	while (j->p < j->end) {
		unsigned c = *j->p;

		if (c == '"') {
			j->p++;
			if (out != NULL)
				out[o < outlen ? o : outlen - 1] = '\0';
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			j->p++;
			if (j->p >= j->end)
				return -1;
			c = *j->p++;
			if (c == 'u') {
				for (i = 0; i < 4; i++)
					if (j->p >= j->end || jp_hex(*j->p++) < 0)
						return -1;
			} else if (strchr("\"\\/bfnrt", (int)c) == NULL) {
				return -1;
			}
			continue;
		}
		if (out != NULL && o + 1 < outlen)
			out[o++] = (char)c;
		if (jp_utf8(j) < 0)
			return -1;
	}
	return -1;
}

static int jp_value(struct jp *j);

static int
jp_number(struct jp *j)
{
	const unsigned char *start = j->p;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p >= j->end)
		return -1;
	if (*j->p == '0') {
		j->p++;
	} else if (*j->p >= '1' && *j->p <= '9') {
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	} else {
		return -1;
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			return -1;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	return j->p > start ? 0 : -1;
}

static int
jp_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return -1;
	j->p += n;
	return 0;
}

static int
jp_container(struct jp *j, int obj)
{
	char key[32];
	int first = 1;

	if (++j->depth > 16)
		return -1;
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		if (!first) {
			jp_ws(j);
			if (j->p >= j->end)
				return -1;
			if (*j->p == (obj ? '}' : ']')) {
				j->p++;
				j->depth--;
				return 0;
			}
			if (*j->p != ',')
				return -1;
			j->p++;
		}
		first = 0;
		jp_ws(j);
		if (obj) {
			if (jp_string(j, key, sizeof(key)) < 0)
				return -1;
			if (j->depth == 1 && j->nkeys < 32)
				memcpy(j->keys[j->nkeys++], key, sizeof(key));
			jp_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return -1;
			j->p++;
			jp_ws(j);
		}
		if (jp_value(j) < 0)
			return -1;
	}
}

static int
jp_value(struct jp *j)
{
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '{':
		return jp_container(j, 1);
	case '[':
		return jp_container(j, 0);
	case '"':
		return jp_string(j, NULL, 0);
	case 't':
		return jp_lit(j, "true");
	case 'f':
		return jp_lit(j, "false");
	case 'n':
		return jp_lit(j, "null");
	default:
		return jp_number(j);
	}
}

/* One whole line: a JSON object, then exactly one '\n'. */
static int
json_line_ok(const char *line, size_t len, struct jp *j)
{
	memset(j, 0, sizeof(*j));
	if (len == 0 || line[len - 1] != '\n')
		return 0;
	j->p = (const unsigned char *)line;
	j->end = j->p + len - 1;
	if (*j->p != '{' || jp_value(j) < 0)
		return 0;
	return j->p == j->end;
}

static const char *const schema_keys[] = {
	"ts", "event", "reason", "would_deny", "listener", "src", "orig_dst", "name",
	"port", "proto", "alpn", "ech", "rule", "rule_name", "upstream",
	"upstream_local_address", "bytes_in",
	"bytes_out", "duration_ms", "conn", "detail", "method", "url", "status",
	"chain", "from", "to", "verdict", "after",
};
#define NSCHEMA (sizeof(schema_keys) / sizeof(schema_keys[0]))

static int
keys_are_schema(const struct jp *j)
{
	size_t i;

	if (j->nkeys != (int)NSCHEMA)
		return 0;
	for (i = 0; i < NSCHEMA; i++)
		if (strcmp(j->keys[i], schema_keys[i]) != 0)
			return 0;
	return 1;
}

/* The raw text of a value, from after "key": to the next ,"nextkey": */
static int
field_is(const char *line, const char *key, const char *next,
    const char *want)
{
	char k1[64], k2[64];
	const char *a, *b;

	snprintf(k1, sizeof(k1), "\"%s\":", key);
	snprintf(k2, sizeof(k2), ",\"%s\":", next);
	a = strstr(line, k1);
	if (a == NULL)
		return 0;
	a += strlen(k1);
	b = strstr(a, k2);
	if (b == NULL)
		return 0;
	if ((size_t)(b - a) != strlen(want) || memcmp(a, want, strlen(want)) != 0) {
		tap_diag("  %s: got %.*s", key, (int)(b - a > 300 ? 300 : b - a), a);
		tap_diag("  %s: want %s", key, want);
		return 0;
	}
	return 1;
}

/* ---- formatting ---- */

static void
set_v4(struct sockaddr_in *sin, const char *ip, uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin->sin_addr);
	sin->sin_port = htons(port);
}

static void
set_v6(struct sockaddr_in6 *sin6, const char *ip, uint16_t port)
{
	memset(sin6, 0, sizeof(*sin6));
	sin6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &sin6->sin6_addr);
	sin6->sin6_port = htons(port);
}

static FILE *pylines;   /* every line made here, for python3 afterwards */

static size_t
fmt(const struct log_record *r, char *buf)
{
	size_t n = log_format(r, buf, LOG_LINE_MAX);

	if (pylines != NULL && n > 0)
		fwrite(buf, 1, n, pylines);
	return n;
}

static void
test_full_and_null(void)
{
	struct sockaddr_in src, dst, local;
	struct sockaddr_in6 up;
	struct log_record r;
	char buf[LOG_LINE_MAX];
	const char *line = buf;     /* tap_is_str wants a pointer */
	struct jp j;
	size_t n;

	set_v4(&src, "10.1.2.3", 51234);
	set_v4(&dst, "203.0.113.7", 443);
	set_v6(&up, "2001:db8::1", 443);
	set_v4(&local, "10.0.0.9", 40000);
	memset(&r, 0, sizeof(r));
	r.ts_us = TS_FIXED;
	r.event = "deny";
	r.reason = "not_allowed";
	r.listener = "tls";
	r.src = (struct sockaddr *)&src;
	r.orig_dst = (struct sockaddr *)&dst;
	r.name = "polaris.synopsys.com";
	r.port = 443;
	r.proto = "tls";
	r.has_alpn = 1;
	r.nalpn = 2;
	r.alpn[0] = "h2";
	r.alpn[1] = "http/1.1xx";
	r.alpn_len[1] = 8;
	r.rule = "policy/allow.yaml:12";
	r.rule_name = "github";
	r.has_ech = 1;
	r.ech = 0;
	r.upstream = (struct sockaddr *)&up;
	r.upstream_local = (struct sockaddr *)&local;
	r.bytes_in = 517;
	r.bytes_out = 7;
	r.duration_ms = 1.2;
	r.conn = "w0-000001f3";
	r.detail = "peer closed";
	n = fmt(&r, buf);
	tap_is_str(line,
	    "{\"ts\":\"2026-11-22T10:00:00.123Z\",\"event\":\"deny\","
	    "\"reason\":\"not_allowed\",\"would_deny\":false,\"listener\":\"tls\","
	    "\"src\":\"10.1.2.3:51234\",\"orig_dst\":\"203.0.113.7:443\","
	    "\"name\":\"polaris.synopsys.com\",\"port\":443,\"proto\":\"tls\","
	    "\"alpn\":[\"h2\",\"http/1.1\"],\"ech\":false,"
	    "\"rule\":\"policy/allow.yaml:12\","
	    "\"rule_name\":\"github\",\"upstream\":\"[2001:db8::1]:443\","
	    "\"upstream_local_address\":\"10.0.0.9:40000\","
	    "\"bytes_in\":517,\"bytes_out\":7,\"duration_ms\":1.200,"
	    "\"conn\":\"w0-000001f3\",\"detail\":\"peer closed\",\"method\":null,"
	    "\"url\":null,\"status\":null,\"chain\":null,\"from\":null,\"to\":null,"
	    "\"verdict\":null,\"after\":null}\n",
	    "full record: exact line");
	tap_is_int(n, strlen(buf), "full record: returned length includes the newline");
	tap_ok(json_line_ok(buf, n, &j) && keys_are_schema(&j),
	    "full record: valid JSON with the schema's keys in order");

	/* A redirect line: the HTTP keys filled, "after" as an object. */
	memset(&r, 0, sizeof(r));
	r.ts_us = TS_FIXED;
	r.event = "redirect";
	r.reason = "not_allowed";
	r.listener = "http";
	r.name = "b.test";
	r.port = 80;
	r.proto = "http";
	r.conn = "w0-00000004";
	r.method = "GET";
	r.url = "http://a.test/x?q=\"1\"";
	r.status = 301;
	r.chain = "w0-00000004.1";
	r.from = r.url;
	r.to = "http://b.test/y";
	r.verdict = "deny";
	r.after_name = "a.test";
	r.after_ms = 120;
	n = fmt(&r, buf);
	tap_ok(strstr(buf, "\"detail\":null,\"method\":\"GET\","
	    "\"url\":\"http://a.test/x?q=\\\"1\\\"\",\"status\":301,"
	    "\"chain\":\"w0-00000004.1\",\"from\":\"http://a.test/x?q=\\\"1\\\"\","
	    "\"to\":\"http://b.test/y\",\"verdict\":\"deny\","
	    "\"after\":{\"name\":\"a.test\",\"ms\":120}}\n") != NULL,
	    "redirect record: HTTP keys and the after object, escaped: %s", buf);
	tap_ok(json_line_ok(buf, n, &j) && keys_are_schema(&j),
	    "redirect record: valid JSON with the schema's keys in order");

	memset(&r, 0, sizeof(r));
	r.ts_us = TS_FIXED;
	r.port = -1;
	n = fmt(&r, buf);
	tap_is_str(line,
	    "{\"ts\":\"2026-11-22T10:00:00.123Z\",\"event\":null,\"reason\":null,\"would_deny\":false,"
	    "\"listener\":null,\"src\":null,\"orig_dst\":null,\"name\":null,"
	    "\"port\":null,\"proto\":null,\"alpn\":null,\"ech\":null,\"rule\":null,"
	    "\"rule_name\":null,\"upstream\":null,\"upstream_local_address\":null,"
	    "\"bytes_in\":0,"
	    "\"bytes_out\":0,\"duration_ms\":0.000,\"conn\":null,"
	    "\"detail\":null,\"method\":null,\"url\":null,\"status\":null,"
	    "\"chain\":null,\"from\":null,\"to\":null,\"verdict\":null,\"after\":null}\n",
	    "all-null record: exact line, every key present");
	tap_ok(json_line_ok(buf, n, &j) && keys_are_schema(&j),
	    "all-null record: valid JSON with every key");

	/* Edge values: AF_UNSPEC address, empty ALPN list, v6 without port. */
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_UNSPEC;
	set_v6(&up, "::1", 0);
	memset(&r, 0, sizeof(r));
	r.ts_us = 1;
	r.src = (struct sockaddr *)&src;
	r.upstream = (struct sockaddr *)&up;
	r.port = 70000;
	r.has_alpn = 1;
	r.duration_ms = 0.0004;
	r.bytes_in = UINT64_MAX;
	n = fmt(&r, buf);
	tap_ok(strncmp(buf, "{\"ts\":\"1970-01-01T00:00:00.000Z\"", 32) == 0,
	    "ts: epoch + 1 us");
	tap_ok(field_is(buf, "src", "orig_dst", "null"), "AF_UNSPEC address is null");
	tap_ok(field_is(buf, "upstream", "upstream_local_address", "\"::1\""),
	    "v6 address without port has no brackets");
	tap_ok(field_is(buf, "port", "proto", "null"), "port out of range is null");
	tap_ok(field_is(buf, "alpn", "ech", "[]"), "has_alpn with none is []");
	tap_ok(field_is(buf, "bytes_in", "bytes_out", "18446744073709551615"),
	    "bytes_in at UINT64_MAX");
	tap_ok(field_is(buf, "duration_ms", "conn", "0.000"), "duration rounds to 0.000");
	tap_ok(json_line_ok(buf, n, &j) && keys_are_schema(&j), "edge record is valid JSON");

	r.duration_ms = -2.5;
	fmt(&r, buf);
	tap_ok(field_is(buf, "duration_ms", "conn", "-2.500"), "negative duration");
	r.duration_ms = 1e300;
	n = fmt(&r, buf);
	tap_ok(field_is(buf, "duration_ms", "conn", "null"), "absurd duration is null");
	r.duration_ms = NAN;
	n = fmt(&r, buf);
	tap_ok(field_is(buf, "duration_ms", "conn", "null") &&
	    json_line_ok(buf, n, &j), "NaN duration is null, still JSON");
	r.duration_ms = 12345.6789;
	fmt(&r, buf);
	tap_ok(field_is(buf, "duration_ms", "conn", "12345.679"), "three decimals, rounded");
}

static void
test_escaping(void)
{
	static const char raw[] =
	    "a\"b\\c/\x01\x1f\x7f|\xc3\xa9|\xe2\x82\xac|\xf0\x9f\x98\x80|"
	    "\xff|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82";
	static const char want[] =
	    "\"a\\\"b\\\\c/\\u0001\\u001f\\u007f|\xc3\xa9|\xe2\x82\xac|"
	    "\xf0\x9f\x98\x80|\\u00ff|\\u00c0\\u00af|\\u00ed\\u00a0\\u0080|"
	    "\\u00f4\\u0090\\u0080\\u0080|\\u00e2\\u0082\"";
	struct log_record r;
	char buf[LOG_LINE_MAX];
	struct jp j;
	size_t n;

	memset(&r, 0, sizeof(r));
	r.ts_us = TS_FIXED;
	r.port = -1;
	r.name = raw;
	n = fmt(&r, buf);
	tap_ok(field_is(buf, "name", "port", want),
	    "quotes, backslashes, controls, DEL, invalid UTF-8 escaped; valid UTF-8 kept");
	tap_ok(json_line_ok(buf, n, &j) && keys_are_schema(&j), "escaped line is valid JSON");

	/* An injection attempt stays inside the name's value. */
	r.name = "x\",\"event\":\"allow\",\"y\":\"\n{\"event\":\"allow\"}";
	n = fmt(&r, buf);
	tap_ok(json_line_ok(buf, n, &j) && keys_are_schema(&j),
	    "injected quotes and newline add no keys and no lines");
	tap_ok(memchr(buf, '\n', n - 1) == NULL, "only the final newline");

	/* name_len lets raw wire bytes carry a NUL. */
	r.name = "ab\0cd-ignored";
	r.name_len = 5;
	fmt(&r, buf);
	tap_ok(field_is(buf, "name", "port", "\"ab\\u0000cd\""), "NUL inside name_len escaped");

	/* The same rules for every string field, including ALPN. */
	memset(&r, 0, sizeof(r));
	r.ts_us = TS_FIXED;
	r.port = -1;
	r.event = "e\"";
	r.reason = "r\\";
	r.listener = "l\t";
	r.proto = "p\xfe";
	r.has_alpn = 1;
	r.nalpn = 2;
	r.alpn[0] = "h2\"]";
	r.alpn[1] = "\x80\x81";
	r.rule = "f.yaml:1\r";
	r.rule_name = "n\x01";
	r.conn = "c\xc3";
	r.detail = "d\xc3\xa9";
	n = fmt(&r, buf);
	tap_ok(field_is(buf, "event", "reason", "\"e\\\"\"") &&
	    field_is(buf, "reason", "would_deny", "\"r\\\\\"") &&
	    field_is(buf, "listener", "src", "\"l\\u0009\"") &&
	    field_is(buf, "proto", "alpn", "\"p\\u00fe\"") &&
	    field_is(buf, "alpn", "ech", "[\"h2\\\"]\",\"\\u0080\\u0081\"]") &&
	    field_is(buf, "rule", "rule_name", "\"f.yaml:1\\u000d\"") &&
	    field_is(buf, "rule_name", "upstream", "\"n\\u0001\"") &&
	    field_is(buf, "conn", "detail", "\"c\\u00c3\"") &&
	    strstr(buf, "\"detail\":\"d\xc3\xa9\",\"method\"") != NULL,
	    "every string field is escaped");
	tap_ok(json_line_ok(buf, n, &j) && keys_are_schema(&j), "and the line is valid JSON");
}

static void
test_truncation(void)
{
	static char big1[8000], big2[8000], bigalpn[LOG_MAX_ALPN][600],
	    shortf[600], utf[6000];
	struct log_record r;
	char buf[LOG_LINE_MAX];
	struct jp j;
	size_t n, i;

	memset(big1, 0x01, sizeof(big1));       /* 6 bytes each, escaped */
	memset(big2, 'D', sizeof(big2) - 1);
	memset(shortf, '"', sizeof(shortf) - 1);
	for (i = 0; i < LOG_MAX_ALPN; i++)
		memset(bigalpn[i], 0xff, sizeof(bigalpn[i]) - 1);
	for (i = 0; i + 2 < sizeof(utf); i += 2)
		memcpy(utf + i, "\xc3\xa9", 2);

	memset(&r, 0, sizeof(r));
	r.ts_us = TS_FIXED;
	r.event = r.reason = r.listener = r.proto = r.rule_name = r.conn = shortf;
	r.rule = shortf;
	r.name = big1;
	r.name_len = sizeof(big1);
	r.port = 65535;
	r.has_alpn = 1;
	r.nalpn = 12;           /* more than LOG_MAX_ALPN: clamped */
	for (i = 0; i < LOG_MAX_ALPN; i++)
		r.alpn[i] = bigalpn[i];
	r.detail = big2;
	r.bytes_in = r.bytes_out = UINT64_MAX;
	r.duration_ms = -999999999999999.0;
	n = fmt(&r, buf);
	tap_ok(n > 0 && n < LOG_LINE_MAX, "worst-case line fits LOG_LINE_MAX (%zu)", n);
	tap_ok(json_line_ok(buf, n, &j) && keys_are_schema(&j),
	    "worst-case line is valid JSON with every key");
	tap_ok(strstr(buf, "...(truncated)\",\"port\":65535") != NULL,
	    "truncated name carries the marker");
	tap_ok(strstr(buf, "...(truncated)\",\"method\":") != NULL,
	    "truncated detail carries the marker");

	/* Cutting never splits a UTF-8 sequence or an escape. */
	memset(&r, 0, sizeof(r));
	r.ts_us = TS_FIXED;
	r.port = -1;
	r.name = utf;
	r.detail = utf + 1;     /* starts with a stray continuation byte */
	n = fmt(&r, buf);
	tap_ok(n < LOG_LINE_MAX && json_line_ok(buf, n, &j),
	    "long UTF-8 name and detail: valid JSON, valid UTF-8");

	/* A string exactly at its budget is not marked. */
	memset(big2, 'x', 1024);
	big2[1024] = '\0';
	r.name = NULL;
	r.detail = big2;
	fmt(&r, buf);
	tap_ok(strstr(buf, "truncated") == NULL && strstr(buf, big2) != NULL,
	    "detail of exactly 1024 bytes kept whole");
	big2[1024] = 'x';
	big2[1025] = '\0';
	fmt(&r, buf);
	tap_ok(strstr(buf, "...(truncated)\",\"method\":") != NULL, "1025 bytes are cut and marked");

	/* A buffer smaller than a line gets nothing rather than half a line. */
	tap_is_int(log_format(&r, buf, 64), 0, "small buffer: returns 0");
}

/* ---- sinks ---- */

static char tmpdir[] = "/tmp/egressd-test-log-XXXXXX";

static size_t
read_file(const char *path, char **out)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16, len = 0, n;
	char *buf;

	*out = NULL;
	if (f == NULL)
		return 0;
	buf = malloc(cap + 1);
	while (buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			char *nb = realloc(buf, cap * 2 + 1);

			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf != NULL)
		buf[len] = '\0';
	*out = buf;
	return buf != NULL ? len : 0;
}

/*
 * Checks every line of a file: whole, valid JSON; conn "tT-SSSSS" marks
 * thread T line S in seen[T][S]. Returns the number of lines, or -1.
 */
static long
scan_lines(const char *path, unsigned char seen[][5000], int nthreads,
    int nseq)
{
	char *data, *p, *nl, conn[32];
	const char *c;
	size_t len;
	long lines = 0;
	struct jp j;
	int t, s;

	len = read_file(path, &data);
	if (data == NULL)
		return -1;
	for (p = data; p < data + len; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(data + len - p));
		if (nl == NULL || !json_line_ok(p, (size_t)(nl - p + 1), &j) ||
		    !keys_are_schema(&j))
			goto bad;
		/* Bounded to the line: strstr/sscanf may strlen() the whole rest. */
		c = memmem(p, (size_t)(nl - p), "\"conn\":\"t", 9);
		if (c == NULL || nl - c < (long)sizeof(conn))
			goto bad;
		memcpy(conn, c, sizeof(conn) - 1);
		conn[sizeof(conn) - 1] = '\0';
		if (sscanf(conn, "\"conn\":\"t%d-%d\"", &t, &s) != 2 ||
		    t < 0 || t >= nthreads || s < 0 || s >= nseq)
			goto bad;
		seen[t][s]++;
		lines++;
	}
	free(data);
	return lines;
bad:
	free(data);
	return -1;
}

struct writer {
	struct log_sink *sink;
	int id, n, errors;
	const char *detail;
	int done;               /* set with __atomic, read by the rotator */
};

#define MAX_ROT 2000

static int
writers_done(struct writer *ws, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!__atomic_load_n(&ws[i].done, __ATOMIC_ACQUIRE))
			return 0;
	return 1;
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	struct log_record r;
	char conn[32];
	int i;

	memset(&r, 0, sizeof(r));
	r.ts_us = TS_FIXED;
	r.event = "allow";
	r.reason = "allowed";
	r.name = "example.com";
	r.port = 443;
	r.detail = w->detail;
	r.conn = conn;
	for (i = 0; i < w->n; i++) {
		snprintf(conn, sizeof(conn), "t%d-%05d", w->id, i);
		if (log_write(w->sink, &r) < 0)
			w->errors++;
	}
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int
count_lines(const char *path)
{
	char *data;
	size_t len, i;
	int n = 0;

	len = read_file(path, &data);
	if (data == NULL)
		return -1;
	for (i = 0; i < len; i++)
		n += data[i] == '\n';
	if (len > 0 && data[len - 1] != '\n')
		n = -1;
	free(data);
	return n;
}

static void
test_sink_file(void)
{
	static unsigned char seen[4][5000];
	char path[256], old[256], err[256];
	struct log_sink *s;
	struct log_sink_stats st;
	struct writer w = { 0 };
	char *data;
	int i;

	snprintf(path, sizeof(path), "%s/a.log", tmpdir);
	snprintf(old, sizeof(old), "%s/a.log.1", tmpdir);
	s = log_sink_open(path, err, sizeof(err));
	if (!tap_ok(s != NULL, "file sink opens (%s)", err))
		return;
	w.sink = s;
	w.id = 0;
	w.n = 3;
	writer_main(&w);
	tap_ok(rename(path, old) == 0, "rotate: rename");
	tap_ok(log_sink_reopen(s, err, sizeof(err)) == 0, "rotate: reopen (%s)", err);
	w.id = 1;
	w.n = 2;
	writer_main(&w);
	tap_is_int(count_lines(old), 3, "lines before the rename stay in the old file");
	tap_is_int(count_lines(path), 2, "lines after the reopen go to the new file");
	log_sink_stats(s, &st);
	tap_is_int(st.lines, 5, "stats: 5 lines");
	tap_is_int(st.failures, 0, "stats: no failures");

	log_notice(s, "reloaded %s with \"%d\" rules\x01", "policy", 7);
	read_file(path, &data);
	tap_ok(data != NULL && strstr(data, ",\"event\":\"notice\",\"level\":"
	    "\"info\",\"msg\":\"reloaded policy with \\\"7\\\" rules\\u0001\"}\n")
	    != NULL && strncmp(strrchr(data, '{'), "{\"ts\":\"", 7) == 0,
	    "log_notice writes an escaped notice line, level info");
	free(data);

	/* Reopen failure keeps writing to the old file. */
	{
		char moved[256];

		snprintf(moved, sizeof(moved), "%s.moved", tmpdir);
		tap_ok(rename(tmpdir, moved) == 0, "directory moved away");
		tap_ok(log_sink_reopen(s, err, sizeof(err)) == -1 && err[0] != '\0',
		    "reopen fails when the path is gone (%s)", err);
		tap_ok(log_write(s, &(struct log_record){ .ts_us = 1, .port = -1 }) == 0,
		    "still writes to the old fd");
		rename(moved, tmpdir);
		tap_is_int(count_lines(path), 4, "old file got that line");
	}
	log_sink_close(s);
	unlink(path);
	unlink(old);

	/* Rotation while two threads write: nothing lost, nothing split. */
	{
		struct writer ws[2];
		pthread_t th[2];
		char rot[256];
		long total = 0, n;
		int k, missing = 0, bad = 0, nrot, files_used = 0;

		s = log_sink_open(path, err, sizeof(err));
		if (!tap_ok(s != NULL, "sink for concurrent rotation"))
			return;
		memset(seen, 0, sizeof(seen));
		for (i = 0; i < 2; i++) {
			ws[i].sink = s;
			ws[i].id = i;
			ws[i].n = 3000;
			ws[i].errors = 0;
			ws[i].detail = "rotation";
			ws[i].done = 0;
			pthread_create(&th[i], NULL, writer_main, &ws[i]);
		}
		/* Rotate every millisecond for as long as the writers run. */
		for (k = 0; k < MAX_ROT && !writers_done(ws, 2); k++) {
			struct timespec ts = { 0, 1000 * 1000 };

			nanosleep(&ts, NULL);
			snprintf(rot, sizeof(rot), "%s/a.log.r%d", tmpdir, k);
			if (rename(path, rot) != 0 ||
			    log_sink_reopen(s, err, sizeof(err)) != 0)
				bad++;
		}
		nrot = k;
		for (i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		log_sink_close(s);
		for (k = 0; k <= nrot; k++) {
			if (k < nrot)
				snprintf(rot, sizeof(rot), "%s/a.log.r%d", tmpdir, k);
			else
				snprintf(rot, sizeof(rot), "%s", path);
			n = scan_lines(rot, seen, 2, 3000);
			if (n < 0)
				bad++;
			else
				total += n;
			files_used += n > 0;
			unlink(rot);
		}
		for (i = 0; i < 2; i++)
			for (k = 0; k < 3000; k++)
				missing += seen[i][k] != 1;
		tap_ok(files_used >= 2, "rotation under load: lines landed in %d files "
		    "over %d rotations", files_used, nrot);
		tap_ok(bad == 0, "rotation under load: every file has only whole JSON lines");
		tap_is_int(total, 6000, "rotation under load: 6000 lines across the files");
		tap_is_int(missing, 0, "rotation under load: each line exactly once");
	}

	/* 4 threads x 5000 lines into one file. */
	{
		struct writer ws[4];
		pthread_t th[4];
		char detail[600];
		long n;
		int k, missing = 0, errors = 0;

		memset(detail, 'z', sizeof(detail) - 1);
		detail[sizeof(detail) - 1] = '\0';
		s = log_sink_open(path, err, sizeof(err));
		if (!tap_ok(s != NULL, "sink for 4 threads"))
			return;
		memset(seen, 0, sizeof(seen));
		for (i = 0; i < 4; i++) {
			ws[i].sink = s;
			ws[i].id = i;
			ws[i].n = 5000;
			ws[i].errors = 0;
			ws[i].detail = detail;
			ws[i].done = 0;
			pthread_create(&th[i], NULL, writer_main, &ws[i]);
		}
		for (i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			errors += ws[i].errors;
		}
		log_sink_stats(s, &st);
		log_sink_close(s);
		n = scan_lines(path, seen, 4, 5000);
		for (i = 0; i < 4; i++)
			for (k = 0; k < 5000; k++)
				missing += seen[i][k] != 1;
		tap_is_int(n, 20000, "4 threads x 5000: exactly 20000 whole JSON lines");
		tap_is_int(missing, 0, "4 threads x 5000: each line exactly once");
		tap_ok(errors == 0 && st.lines == 20000 && st.failures == 0,
		    "4 threads x 5000: stats 20000 lines, 0 failures");
		unlink(path);
	}
}

/* Notices: ts, event, level, msg, in that order; log_notice is info. */
static void
test_notice_levels(void)
{
	static const struct {
		enum log_level level;
		const char *text;
	} levels[] = {
		{ LOG_LEVEL_INFO, "info" },
		{ LOG_LEVEL_WARNING, "warning" },
		{ LOG_LEVEL_ERROR, "error" },
	};
	char path[256], want[128], long_msg[LOG_LINE_MAX], *data = NULL, *p;
	struct log_sink_stats st;
	struct log_sink *s;
	size_t i, n;
	char err[256];

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		tap_is_str(log_level_str(levels[i].level), levels[i].text,
		    "log_level_str(%d) is %s", (int)levels[i].level,
		    levels[i].text);
	snprintf(path, sizeof(path), "%s/notice.log", tmpdir);
	s = log_sink_open(path, err, sizeof(err));
	if (!tap_ok(s != NULL, "notice sink opens (%s)", err))
		return;
	log_notice(s, "plain %d", 1);
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		log_notice_level(s, levels[i].level, "at %s", levels[i].text);
	memset(long_msg, 'x', sizeof(long_msg) - 1);
	long_msg[sizeof(long_msg) - 1] = '\0';
	log_notice_level(s, LOG_LEVEL_ERROR, "%s", long_msg);
	log_sink_stats(s, &st);
	log_sink_close(s);
	tap_ok(st.lines == 5 && st.failures == 0, "five notices written");
	if (read_file(path, &data) <= 0 || data == NULL) {
		tap_ok(0, "notice file read back");
		free(data);
		return;
	}
	p = data;
	tap_ok(strncmp(p, "{\"ts\":\"", 7) == 0 &&
	    strstr(p, "\",\"event\":\"notice\",\"level\":\"info\",\"msg\":"
	    "\"plain 1\"}\n") == strchr(p, 'Z') + 1,
	    "log_notice: ts, event, level info, msg, nothing else");
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		p = strchr(p, '\n');
		p = p != NULL ? p + 1 : "";
		snprintf(want, sizeof(want), "\",\"event\":\"notice\",\"level\":"
		    "\"%s\",\"msg\":\"at %s\"}\n", levels[i].text, levels[i].text);
		n = strlen(want);
		tap_ok(strncmp(p, "{\"ts\":\"", 7) == 0 && strchr(p, 'Z') != NULL &&
		    strncmp(strchr(p, 'Z') + 1, want, n) == 0,
		    "log_notice_level(%s) writes level \"%s\"", levels[i].text,
		    levels[i].text);
	}
	p = strchr(p, '\n');
	p = p != NULL ? p + 1 : "";
	tap_ok(strstr(p, "\"level\":\"error\",\"msg\":\"xxx") != NULL &&
	    strstr(p, "...(truncated)\"}\n") != NULL && strlen(p) < LOG_LINE_MAX,
	    "a notice too long for one line is cut and marked, and keeps its level");
	free(data);
	unlink(path);
}

static void
test_sink_errors(void)
{
	struct log_record r = { .ts_us = TS_FIXED, .port = -1 };
	struct log_sink_stats st;
	struct log_sink *s;
	char err[256];

	err[0] = '\0';
	s = log_sink_open("/nonexistent-dir-egressd/x.log", err, sizeof(err));
	tap_ok(s == NULL && strstr(err, "nonexistent") != NULL,
	    "open in a missing directory fails with a message (%s)", err);

	s = log_sink_open("/dev/full", err, sizeof(err));
	if (!tap_ok(s != NULL, "/dev/full opens"))
		return;
	tap_is_int(log_write(s, &r), -1, "write to a full device returns -1");
	log_sink_stats(s, &st);
	tap_ok(st.failures == 1 && st.lines == 0, "and is counted as a failure");
	log_sink_close(s);
}

struct pipe_reader {
	int fd;
	long want, lines, bytes;
	int whole;
};

static void *
reader_main(void *arg)
{
	struct pipe_reader *pr = arg;
	struct timespec pause = { 0, 200 * 1000 };
	time_t deadline = time(NULL) + 30;
	char buf[4096];
	ssize_t n, i;

	/* Slow on purpose, so the writer meets a full non-blocking pipe. */
	while (pr->lines < pr->want && time(NULL) < deadline) {
		n = read(pr->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
			pr->lines += buf[i] == '\n';
		pr->bytes += n;
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* stdout handed over non-blocking: EAGAIN waits, never drops. */
static void
test_sink_stdout_nonblocking(void)
{
	struct log_record r = { .ts_us = TS_FIXED, .port = -1 };
	struct pipe_reader pr = { 0 };
	struct log_sink_stats st;
	struct log_sink *s;
	char detail[1000], line[LOG_LINE_MAX];
	pthread_t th;
	int p[2], saved, i, fails = 0;
	long linelen;

	memset(detail, 'n', sizeof(detail) - 1);
	detail[sizeof(detail) - 1] = '\0';
	r.detail = detail;
	r.name = detail;
	linelen = (long)log_format(&r, line, sizeof(line));

	fflush(stdout);
	if (!tap_ok(pipe(p) == 0, "pipe"))
		return;
	fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
	saved = dup(STDOUT_FILENO);
	dup2(p[1], STDOUT_FILENO);
	close(p[1]);
	pr.fd = p[0];
	pr.want = 400;
	pthread_create(&th, NULL, reader_main, &pr);
	s = log_sink_open("-", NULL, 0);
	for (i = 0; s != NULL && i < 400; i++)
		fails += log_write(s, &r) != 0;
	log_sink_stats(s, &st);
	log_sink_close(s);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	pthread_join(th, NULL);
	close(p[0]);
	tap_ok(s != NULL, "stdout sink opens");
	tap_ok(fails == 0 && st.failures == 0 && st.lines == 400,
	    "non-blocking stdout: 400 writes, none failed (%d)", fails);
	tap_ok(pr.lines == 400 && pr.bytes == 400 * linelen,
	    "non-blocking stdout: reader got all %ld lines, %ld bytes",
	    pr.lines, pr.bytes);
}

static void
test_python(const char *path)
{
	char cmd[512];
	int rc;

	rc = system("command -v python3 >/dev/null 2>&1");
	if (rc != 0) {
		tap_diag("python3 not found: cross-check with json module not run");
		return;
	}
	snprintf(cmd, sizeof(cmd),
	    "python3 -c 'import json,sys\n"
	    "n=0\n"
	    "for l in open(sys.argv[1], encoding=\"utf-8\", errors=\"strict\"):\n"
	    "    o=json.loads(l); assert isinstance(o, dict) and len(o)==29, l; n+=1\n"
	    "assert n>=10, n' %s", path);
	rc = system(cmd);
	tap_ok(rc == 0, "python3 json.loads accepts every formatted line");
}

int
main(void)
{
	char pypath[256];

	alarm(120);
	if (mkdtemp(tmpdir) == NULL) {
		tap_ok(0, "mkdtemp: %s", strerror(errno));
		return tap_done();
	}
	snprintf(pypath, sizeof(pypath), "%s/lines.json", tmpdir);
	pylines = fopen(pypath, "w");

	test_full_and_null();
	test_escaping();
	test_truncation();
	if (pylines != NULL) {
		fclose(pylines);
		pylines = NULL;
		test_python(pypath);
	}
	unlink(pypath);
	test_sink_file();
	test_sink_errors();
	test_notice_levels();
	test_sink_stdout_nonblocking();
	rmdir(tmpdir);
	return tap_done();
}

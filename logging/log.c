/*
 * logging/log.c: the JSON-lines decision log (DESIGN §7).
 *
 * A line is built in a caller-side buffer, then written under the sink's
 * lock in one write loop, so concurrent workers never interleave bytes and
 * a reopen (log rotation) never splits a line between two files.
 *
 * Much of what is logged comes off the wire (SNI, Host, ALPN), so every
 * string is escaped completely: quotes, backslashes, control bytes and any
 * byte that is not part of valid UTF-8. A hostile name can neither break
 * the line nor add keys. Each string has an output budget, and the budgets
 * add up to less than LOG_LINE_MAX, so a line never exceeds it: an
 * over-long value is cut at a character boundary and marked.
 *
 * This module keeps its own address formatter: the leaves do not include
 * each other's headers (DESIGN §2), and the format is the same as dns's.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "logging/log.h"

/* Output budgets per string value, escapes and marker included. */
#define LOG_CAP_NAME    1024
#define LOG_CAP_DETAIL  1024
#define LOG_CAP_RULE    256
#define LOG_CAP_SHORT   96      /* event, reason, listener, proto, rule_name, conn */
#define LOG_CAP_ALPN    64      /* each of up to LOG_MAX_ALPN */
#define LOG_CAP_NOTICE  2048
#define LOG_CAP_URL     768     /* each of url, from, to */
#define LOG_ADDR_MAX    56      /* "[" 45 "]:" 5, rounded up */
#define LOG_TS_LEN      24      /* 2026-11-22T10:00:00.123Z */
#define LOG_NUM_MAX     21      /* uint64 or "-999999999999999.999" */

#define LOG_TRUNC_MARK  "...(truncated)"

#define LOG_KEYS \
	"{\"ts\":,\"event\":,\"reason\":,\"listener\":,\"src\":,\"orig_dst\":," \
	"\"name\":,\"port\":,\"proto\":,\"alpn\":,\"ech\":,\"rule\":," \
	"\"rule_name\":,\"upstream\":,\"upstream_local_address\":,\"bytes_in\":,\"bytes_out\":,\"duration_ms\":,\"conn\":," \
	"\"detail\":,\"method\":,\"url\":,\"status\":,\"chain\":,\"from\":," \
	"\"to\":,\"verdict\":,\"after\":{\"name\":,\"ms\":}}\n"

/* Worst case of every value at its budget, with quotes, plus the NUL. */
#define LOG_WORST (sizeof(LOG_KEYS) - 1 + \
	(LOG_TS_LEN + 2) + \
	6 * (LOG_CAP_SHORT + 2) + \
	4 * (LOG_ADDR_MAX + 2) + 5 + \
	(LOG_CAP_NAME + 2) + 6 + \
	(2 + LOG_MAX_ALPN * (LOG_CAP_ALPN + 3)) + \
	(LOG_CAP_RULE + 2) + \
	3 * LOG_NUM_MAX + \
	(LOG_CAP_DETAIL + 2) + \
	3 * (LOG_CAP_SHORT + 2) + 3 * (LOG_CAP_URL + 2) + \
	(LOG_CAP_NAME + 2) + 2 * LOG_NUM_MAX + 1)
_Static_assert(LOG_WORST <= LOG_LINE_MAX, "log budgets exceed LOG_LINE_MAX");

struct log_sink {
	pthread_mutex_t lock;
	int fd;
	int owns_fd;            /* 0 for stdout, which we never close */
	char *path;             /* NULL for stdout */
	uint64_t lines, failures;
};

/* A bounded output buffer: appends past the end only set overflow. */
struct log_buf {
	char *p;
	size_t len, cap;
	int overflow;
};

static void
log_put(struct log_buf *b, const char *s, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* A string literal: its length is known when compiled (a line is some
 * fifty of them, and strlen on each was a tenth of its cost). */
#define LOG_LIT(b, lit) log_put((b), "" lit, sizeof(lit) - 1)

static void
log_puts(struct log_buf *b, const char *s)
{
	log_put(b, s, strlen(s));
}

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0 when it is not one.
 */
static size_t
log_utf8_len(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * The escaped form of the character at s: writes it to out (at least 6
 * bytes) and returns its length; *used is how many input bytes it took.
 */
size_t
log_json_escape_char(const unsigned char *s, size_t left, char *out, size_t *used)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c = s[0];
	size_t n;

	*used = 1;
	if (c == '"' || c == '\\') {
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	}
	if (c >= 0x20 && c < 0x7f) {
		out[0] = (char)c;
		return 1;
	}
	if (c >= 0x80) {
		n = log_utf8_len(s, left);
		if (n > 0) {
			memcpy(out, s, n);
			*used = n;
			return n;
		}
	}
	/* Control bytes, DEL, and stray bytes as the code point of the byte. */
	out[0] = '\\';
	out[1] = 'u';
	out[2] = '0';
	out[3] = '0';
	out[4] = hex[c >> 4];
	out[5] = hex[c & 0xf];
	return 6;
}

int
log_json_fput(FILE *f, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	char unit[6];
	size_t i, used, n;

	if (fputc('"', f) == EOF)
		return -1;
	for (i = 0; i < len; i += used) {
		n = log_json_escape_char(u + i, len - i, unit, &used);
		if (fwrite(unit, 1, n, f) != n)
			return -1;
	}
	return fputc('"', f) == EOF ? -1 : 0;
}

/* Bytes that go into a JSON string as they are: printable ASCII but the
 * quote and the backslash. Nearly every name, rule and detail is only these. */
static int
log_plain(const char *str, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			return 0;
	}
	return 1;
}

/*
 * A JSON string of at most cap bytes between the quotes. cut says the
 * text was already shortened by the caller, so it is marked either way.
 */
static void
log_put_str(struct log_buf *b, const char *str, size_t len, size_t cap,
    int cut)
{
	const unsigned char *s = (const unsigned char *)str;
	char unit[6];
	size_t i, used, n, total = 0, room;

	/* The common case in one copy; the escaping below gives the same
	 * bytes for it, one at a time. */
	if (!cut && len <= cap && log_plain(str, len)) {
		log_put(b, "\"", 1);
		log_put(b, str, len);
		log_put(b, "\"", 1);
		return;
	}
	for (i = 0; i < len && total <= cap; i += used)
		total += log_json_escape_char(s + i, len - i, unit, &used);
	if (total > cap)
		cut = 1;
	room = cut ? cap - (sizeof(LOG_TRUNC_MARK) - 1) : cap;

	log_put(b, "\"", 1);
	total = 0;
	for (i = 0; i < len; i += used) {
		n = log_json_escape_char(s + i, len - i, unit, &used);
		if (total + n > room)
			break;
		log_put(b, unit, n);
		total += n;
	}
	if (cut)
		log_puts(b, LOG_TRUNC_MARK);
	log_put(b, "\"", 1);
}

/*
 * Decimal digits of v, written backwards ending just before end; returns
 * where they start. printf would cost more than the rest of a line
 * (docs/bench.md, where the time goes).
 */
static char *
log_digits(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return end;
}

/* v in exactly width digits, leading zeros; returns the next byte. */
static char *
log_digits_w(char *p, unsigned v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + width;
}

static void
log_put_cstr(struct log_buf *b, const char *s, size_t cap)
{
	if (s == NULL)
		LOG_LIT(b, "null");
	else
		log_put_str(b, s, strlen(s), cap, 0);
}

static void
log_put_addr(struct log_buf *b, const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN], out[LOG_ADDR_MAX + 2], num[8];
	char *p = out, *d;
	unsigned port;
	size_t n;

	if (sa == NULL)
		goto null;
	*p++ = '"';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		const uint8_t *a = (const uint8_t *)&sin->sin_addr;

		for (int i = 0; i < 4; i++) {
			d = log_digits(num + sizeof(num), a[i]);
			n = (size_t)(num + sizeof(num) - d);
			memcpy(p, d, n);
			p += n;
			if (i < 3)
				*p++ = '.';
		}
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip)) == NULL)
			goto null;
		port = ntohs(sin6->sin6_port);
		n = strlen(ip);
		if (port != 0)
			*p++ = '[';
		memcpy(p, ip, n);
		p += n;
		if (port != 0)
			*p++ = ']';
	} else {
		goto null;
	}
	if (port != 0) {
		*p++ = ':';
		d = log_digits(num + sizeof(num), port);
		n = (size_t)(num + sizeof(num) - d);
		memcpy(p, d, n);
		p += n;
	}
	*p++ = '"';
	log_put(b, out, (size_t)(p - out));
	return;
null:
	LOG_LIT(b, "null");
}

static void
log_put_u64(struct log_buf *b, uint64_t v)
{
	char num[LOG_NUM_MAX + 1];
	char *d = log_digits(num + sizeof(num), v);

	log_put(b, d, (size_t)(num + sizeof(num) - d));
}

/*
 * Three decimals, built from integers: printf's "%f" follows LC_NUMERIC
 * and would write "1,200" under some locales. JSON has no NaN or infinity.
 */
static void
log_put_ms(struct log_buf *b, double ms)
{
	char num[LOG_NUM_MAX + 2], *d;
	int64_t thousandths;
	uint64_t mag;

	if (!isfinite(ms) || ms >= 1e15 || ms <= -1e15) {
		LOG_LIT(b, "null");
		return;
	}
	thousandths = (int64_t)(ms * 1000.0 + (ms >= 0 ? 0.5 : -0.5));
	mag = thousandths < 0 ? (uint64_t)0 - (uint64_t)thousandths :
	    (uint64_t)thousandths;
	/* "[-]int.ddd", built from the right. */
	d = num + sizeof(num);
	d -= 3;
	(void)log_digits_w(d, (unsigned)(mag % 1000), 3);
	*--d = '.';
	d = log_digits(d, mag / 1000);
	if (thousandths < 0)
		*--d = '-';
	log_put(b, d, (size_t)(num + sizeof(num) - d));
}

static void
log_put_ts(struct log_buf *b, uint64_t ts_us)
{
	char ts[32], *p;
	time_t secs;
	struct tm tm;

	if (ts_us == 0)
		ts_us = log_now_us();
	secs = (time_t)(ts_us / 1000000);
	if (gmtime_r(&secs, &tm) == NULL || tm.tm_year + 1900 > 9999) {
		LOG_LIT(b, "null");
		return;
	}
	/* "2026-11-22T10:00:00.123Z", digit by digit. */
	p = ts;
	*p++ = '"';
	p = log_digits_w(p, (unsigned)(tm.tm_year + 1900), 4);
	*p++ = '-';
	p = log_digits_w(p, (unsigned)(tm.tm_mon + 1), 2);
	*p++ = '-';
	p = log_digits_w(p, (unsigned)tm.tm_mday, 2);
	*p++ = 'T';
	p = log_digits_w(p, (unsigned)tm.tm_hour, 2);
	*p++ = ':';
	p = log_digits_w(p, (unsigned)tm.tm_min, 2);
	*p++ = ':';
	p = log_digits_w(p, (unsigned)tm.tm_sec, 2);
	*p++ = '.';
	p = log_digits_w(p, (unsigned)((ts_us / 1000) % 1000), 3);
	*p++ = 'Z';
	*p++ = '"';
	log_put(b, ts, (size_t)(p - ts));
}

uint64_t
log_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* "alpn": null, or the client's protocol names in order. */
static void
log_put_alpn(struct log_buf *b, const struct log_record *r)
{
	size_t n = r->nalpn < LOG_MAX_ALPN ? r->nalpn : LOG_MAX_ALPN;

	if (!r->has_alpn) {
		LOG_LIT(b, "null");
		return;
	}
	LOG_LIT(b, "[");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			LOG_LIT(b, ",");
		if (r->alpn[i] == NULL)
			LOG_LIT(b, "null");
		else
			log_put_str(b, r->alpn[i], r->alpn_len[i] ?
			    r->alpn_len[i] : strlen(r->alpn[i]), LOG_CAP_ALPN, 0);
	}
	LOG_LIT(b, "]");
}

/* ts to ech: when, what was decided, and what the client asked for. */
static void
log_put_request(struct log_buf *b, const struct log_record *r)
{
	LOG_LIT(b, "{\"ts\":");
	log_put_ts(b, r->ts_us);
	LOG_LIT(b, ",\"event\":");
	log_put_cstr(b, r->event, LOG_CAP_SHORT);
	LOG_LIT(b, ",\"reason\":");
	log_put_cstr(b, r->reason, LOG_CAP_SHORT);
	log_puts(b, r->would_deny ? ",\"would_deny\":true" : ",\"would_deny\":false");
	LOG_LIT(b, ",\"listener\":");
	log_put_cstr(b, r->listener, LOG_CAP_SHORT);
	LOG_LIT(b, ",\"src\":");
	log_put_addr(b, r->src);
	LOG_LIT(b, ",\"orig_dst\":");
	log_put_addr(b, r->orig_dst);
	LOG_LIT(b, ",\"name\":");
	if (r->name == NULL)
		LOG_LIT(b, "null");
	else
		log_put_str(b, r->name,
		    r->name_len ? r->name_len : strlen(r->name), LOG_CAP_NAME,
		    0);
	LOG_LIT(b, ",\"port\":");
	if (r->port < 0 || r->port > 65535)
		LOG_LIT(b, "null");
	else
		log_put_u64(b, (uint64_t)r->port);
	LOG_LIT(b, ",\"proto\":");
	log_put_cstr(b, r->proto, LOG_CAP_SHORT);
	LOG_LIT(b, ",\"alpn\":");
	log_put_alpn(b, r);
	LOG_LIT(b, ",\"ech\":");
	log_puts(b, !r->has_ech ? "null" : r->ech ? "true" : "false");
}

/* rule to detail: the rule, the upstream, and what was moved. */
static void
log_put_outcome(struct log_buf *b, const struct log_record *r)
{
	LOG_LIT(b, ",\"rule\":");
	log_put_cstr(b, r->rule, LOG_CAP_RULE);
	LOG_LIT(b, ",\"rule_name\":");
	log_put_cstr(b, r->rule_name, LOG_CAP_SHORT);
	LOG_LIT(b, ",\"upstream\":");
	log_put_addr(b, r->upstream);
	LOG_LIT(b, ",\"upstream_local_address\":");
	log_put_addr(b, r->upstream_local);
	LOG_LIT(b, ",\"bytes_in\":");
	log_put_u64(b, r->bytes_in);
	LOG_LIT(b, ",\"bytes_out\":");
	log_put_u64(b, r->bytes_out);
	LOG_LIT(b, ",\"duration_ms\":");
	log_put_ms(b, r->duration_ms);
	LOG_LIT(b, ",\"conn\":");
	log_put_cstr(b, r->conn, LOG_CAP_SHORT);
	LOG_LIT(b, ",\"detail\":");
	log_put_cstr(b, r->detail, LOG_CAP_DETAIL);
}

/* method to after: the HTTP exchange and the redirect it belongs to. */
static void
log_put_http(struct log_buf *b, const struct log_record *r)
{
	LOG_LIT(b, ",\"method\":");
	log_put_cstr(b, r->method, LOG_CAP_SHORT);
	LOG_LIT(b, ",\"url\":");
	log_put_cstr(b, r->url, LOG_CAP_URL);
	LOG_LIT(b, ",\"status\":");
	if (r->status <= 0)
		LOG_LIT(b, "null");
	else
		log_put_u64(b, (uint64_t)r->status);
	LOG_LIT(b, ",\"chain\":");
	log_put_cstr(b, r->chain, LOG_CAP_SHORT);
	LOG_LIT(b, ",\"from\":");
	log_put_cstr(b, r->from, LOG_CAP_URL);
	LOG_LIT(b, ",\"to\":");
	log_put_cstr(b, r->to, LOG_CAP_URL);
	LOG_LIT(b, ",\"verdict\":");
	log_put_cstr(b, r->verdict, LOG_CAP_SHORT);
	LOG_LIT(b, ",\"after\":");
	if (r->after_name == NULL) {
		LOG_LIT(b, "null");
	} else {
		LOG_LIT(b, "{\"name\":");
		log_put_cstr(b, r->after_name, LOG_CAP_NAME);
		LOG_LIT(b, ",\"ms\":");
		log_put_u64(b, r->after_ms);
		LOG_LIT(b, "}");
	}
}

size_t
log_format(const struct log_record *r, char *buf, size_t buflen)
{
	struct log_buf b;

	if (r == NULL || buf == NULL || buflen == 0)
		return 0;
	b.p = buf;
	b.len = 0;
	/* The line, '\n' included, stays under LOG_LINE_MAX; then a NUL. */
	b.cap = (buflen < LOG_LINE_MAX ? buflen : LOG_LINE_MAX) - 1;
	b.overflow = 0;
	log_put_request(&b, r);
	log_put_outcome(&b, r);
	log_put_http(&b, r);
	LOG_LIT(&b, "}\n");
	/* Only a buffer smaller than LOG_LINE_MAX can get here. */
	if (b.overflow) {
		buf[0] = '\0';
		return 0;
	}
	buf[b.len] = '\0';
	return b.len;
}

/*
 * Open the log file for appending. O_APPEND keeps concurrent writers (and
 * a logrotate "copytruncate") from overwriting each other.
 */
static int
log_open_path(const char *path, char *err, size_t errlen)
{
	int fd;

	do
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	while (fd < 0 && errno == EINTR);
	if (fd < 0 && err != NULL && errlen > 0)
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
	return fd;
}

struct log_sink *
log_sink_open(const char *path, char *err, size_t errlen)
{
	struct log_sink *s;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->fd = -1;
	if (path == NULL || strcmp(path, "-") == 0) {
		s->fd = STDOUT_FILENO;
	} else {
		s->path = strdup(path);
		if (s->path == NULL) {
			if (err != NULL && errlen > 0)
				snprintf(err, errlen, "out of memory");
			goto fail;
		}
		s->fd = log_open_path(path, err, errlen);
		if (s->fd < 0)
			goto fail;
		s->owns_fd = 1;
	}
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "pthread_mutex_init failed");
		goto fail;
	}
	return s;
fail:
	if (s != NULL) {
		if (s->owns_fd)
			close(s->fd);
		free(s->path);
		free(s);
	}
	return NULL;
}

int
log_sink_reopen(struct log_sink *s, char *err, size_t errlen)
{
	int fd, old;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (s == NULL)
		return -1;
	if (s->path == NULL)
		return 0;       /* stdout: nothing to reopen */
	/* Open outside the lock: a slow filesystem must not stall writers. */
	fd = log_open_path(s->path, err, errlen);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	old = s->fd;
	s->fd = fd;
	pthread_mutex_unlock(&s->lock);
	close(old);
	return 0;
}

void
log_sink_close(struct log_sink *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->lock);
	if (s->owns_fd)
		close(s->fd);
	free(s->path);
	free(s);
}

void
log_sink_stats(struct log_sink *s, struct log_sink_stats *out)
{
	if (out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	out->lines = s->lines;
	out->failures = s->failures;
	pthread_mutex_unlock(&s->lock);
}

/*
 * Write all of buf, waiting rather than dropping: short writes continue,
 * EINTR retries, and a non-blocking fd (stdout handed to us that way) is
 * polled until it drains. Called with the lock held, which is what keeps
 * lines whole and in one file.
 */
static int
log_write_all(int fd, const char *buf, size_t len)
{
	struct pollfd pfd;
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -1;
			/* Errors show up in the next write(2). */
			continue;
		}
		return -1;      /* EPIPE, ENOSPC, EIO, or a 0-byte write */
	}
	return 0;
}

static int
log_sink_write(struct log_sink *s, const char *line, size_t len)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = log_write_all(s->fd, line, len);
	if (rc == 0)
		s->lines++;
	else
		s->failures++;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
log_write(struct log_sink *s, const struct log_record *r)
{
	char line[LOG_LINE_MAX];
	size_t len;

	if (s == NULL)
		return -1;
	len = log_format(r, line, sizeof(line));
	if (len == 0) {
		pthread_mutex_lock(&s->lock);
		s->failures++;
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	return log_sink_write(s, line, len);
}

const char *
log_level_str(enum log_level l)
{
	switch (l) {
	case LOG_LEVEL_INFO:
		return "info";
	case LOG_LEVEL_WARNING:
		return "warning";
	case LOG_LEVEL_ERROR:
		return "error";
	}
	return "info";
}

static void log_vnotice(struct log_sink *s, enum log_level level,
    const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static void
log_vnotice(struct log_sink *s, enum log_level level, const char *fmt,
    va_list ap)
{
	char msg[LOG_CAP_NOTICE + 1], line[LOG_LINE_MAX];
	struct log_buf b;
	int n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		msg[0] = '\0';

	b.p = line;
	b.len = 0;
	b.cap = sizeof(line) - 1;
	b.overflow = 0;
	LOG_LIT(&b, "{\"ts\":");
	log_put_ts(&b, 0);
	LOG_LIT(&b, ",\"event\":\"notice\",\"level\":\"");
	log_puts(&b, log_level_str(level));
	LOG_LIT(&b, "\",\"msg\":");
	/* When vsnprintf cut it short, it is marked like any long value. */
	log_put_str(&b, msg, strlen(msg), LOG_CAP_NOTICE,
	    n >= (int)sizeof(msg));
	LOG_LIT(&b, "}\n");
	if (b.overflow) {
		pthread_mutex_lock(&s->lock);
		s->failures++;
		pthread_mutex_unlock(&s->lock);
		return;
	}
	log_sink_write(s, line, b.len);
}

void
log_notice_level(struct log_sink *s, enum log_level level, const char *fmt,
    ...)
{
	va_list ap;

	if (s == NULL || fmt == NULL)
		return;
	va_start(ap, fmt);
	log_vnotice(s, level, fmt, ap);
	va_end(ap);
}

void
log_notice(struct log_sink *s, const char *fmt, ...)
{
	va_list ap;

	if (s == NULL || fmt == NULL)
		return;
	va_start(ap, fmt);
	log_vnotice(s, LOG_LEVEL_INFO, fmt, ap);
	va_end(ap);
}

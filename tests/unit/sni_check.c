/*
 * sni_check: run one captured ClientHello (the raw bytes a real client
 * sent, see tests/integration/capture_hello.py) through sni_parse_hello and
 * print TAP checks:
 *
 *   sni_check FILE [--sni NAME | --no-sni] [--alpn a,b,c] [--tls13 0|1]
 *
 * Without --alpn the hello must offer no ALPN; without --tls13 the version
 * is not checked. Checks: parsed whole with the expected fields; every
 * prefix is NEED_MORE; growing one buffer byte by byte (and in chunks)
 * agrees; the message re-framed into 2, 3 and 64 records reads the same.
 * No prefix may be copied into scratch (waiting for more must stay cheap).
 * Exit status 1 on any failure or a usage error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sni/sni.h"
#include "tests/unit/tap.h"

/* Room for a hello at the cap plus some: captures are not trusted. */
#define FILE_MAX (2 * SNI_PEEK_MAX)

struct expect {
	int sni;                /* 1 name, 0 no name, -1 not given */
	const char *name;
	const char *alpn;       /* comma-separated, "" for none */
	int tls13;              /* -1: not checked */
};

static uint8_t file[FILE_MAX];
static uint8_t grow[FILE_MAX];
static uint8_t framed[SNI_HELLO_MAX + 5 * 64];
static uint8_t msg[SNI_HELLO_MAX];
static uint8_t scratch[SNI_HELLO_MAX];
static uint8_t scratch2[SNI_HELLO_MAX];

static const char *
str(const char *s)
{
	return s;
}

static void
alpn_join(const struct sni_hello *h, char *s, size_t cap)
{
	size_t off = 0;

	s[0] = '\0';
	for (size_t i = 0; i < h->alpn_count && i < SNI_MAX_ALPN; i++) {
		int w = snprintf(s + off, cap - off, "%s%.*s", i ? "," : "",
		    (int)h->alpn[i].len, (const char *)h->alpn[i].ptr);

		if (w < 0 || (size_t)w >= cap - off)
			return;
		off += (size_t)w;
	}
}

static void
name_str(const struct sni_hello *h, char *s, size_t cap)
{
	snprintf(s, cap, "%.*s", h->has_sni ? (int)h->name.len : 0,
	    h->has_sni ? (const char *)h->name.ptr : "");
}

/* Same name, ALPN list, versions and lengths, compared by content. */
static int
same(const struct sni_hello *a, const struct sni_hello *b)
{
	char na[512], nb[512], aa[1024], ab[1024];

	name_str(a, na, sizeof(na));
	name_str(b, nb, sizeof(nb));
	alpn_join(a, aa, sizeof(aa));
	alpn_join(b, ab, sizeof(ab));
	if (a->has_sni != b->has_sni || strcmp(na, nb) != 0 ||
	    strcmp(aa, ab) != 0 || a->alpn_count != b->alpn_count ||
	    a->tls13 != b->tls13 || a->ech != b->ech ||
	    a->hello_len != b->hello_len ||
	    a->client_version != b->client_version) {
		tap_diag("  name \"%s\" vs \"%s\", alpn \"%s\" vs \"%s\"", na, nb,
		    aa, ab);
		return 0;
	}
	return 1;
}

/* Frame msg[0..n) into records of the given payload sizes, rest last. */
static size_t
reframe(const uint8_t *m, size_t n, uint16_t rv, const size_t *sizes,
    size_t k)
{
	size_t off = 0, len = 0;

	for (size_t i = 0; i <= k && off < n; i++) {
		size_t sz = i < k ? sizes[i] : n - off;

		if (sz > n - off)
			sz = n - off;
		if (len + 5 + sz > sizeof(framed))
			abort();
		framed[len++] = 22;
		framed[len++] = (uint8_t)(rv >> 8);
		framed[len++] = (uint8_t)rv;
		framed[len++] = (uint8_t)(sz >> 8);
		framed[len++] = (uint8_t)sz;
		memcpy(framed + len, m + off, sz);
		len += sz;
		off += sz;
	}
	return len;
}

/*
 * Every proper prefix is NEED_MORE, and none is copied into scratch: the
 * gateway re-parses after every read, so waiting must stay cheap.
 */
static void
check_prefixes(const char *what, const uint8_t *p, size_t n)
{
	struct sni_hello h;
	size_t bad = 0, first = 0, copied = 0;

	memset(scratch2, 0xa5, sizeof(scratch2));
	for (size_t i = 0; i < n; i++) {
		enum sni_result r;

		r = sni_parse_hello(p, i, scratch2, sizeof(scratch2), &h);
		if (r != SNI_NEED_MORE && bad++ == 0)
			first = i;
	}
	if (!tap_ok(bad == 0, "%s: all %zu prefixes need_more", what, n))
		tap_diag("  %zu bad, first at %zu", bad, first);
	for (size_t i = 0; i < sizeof(scratch2); i++)
		if (scratch2[i] != 0xa5)
			copied++;
	if (!tap_ok(copied == 0, "%s: no prefix copied into scratch", what))
		tap_diag("  %zu scratch bytes written", copied);
}

static void
check_growth(const struct sni_hello *want, size_t n, size_t chunk)
{
	struct sni_hello h;
	size_t len = 0, ok_at = 0, bad = 0;

	memset(&h, 0, sizeof(h));
	while (len < n) {
		size_t c = chunk < n - len ? chunk : n - len;
		enum sni_result r;

		memcpy(grow + len, file + len, c);
		len += c;
		r = sni_parse_hello(grow, len, scratch2, sizeof(scratch2), &h);
		if (r == SNI_OK) {
			if (ok_at == 0)
				ok_at = len;
		} else if (r != SNI_NEED_MORE || len == n) {
			bad++;
		}
	}
	tap_ok(bad == 0 && ok_at == n,
	    "growth by %zu: need_more until the last byte, then ok", chunk);
	tap_ok(same(&h, want), "growth by %zu: same fields", chunk);
}

static void
check_reframe(const char *what, const struct sni_hello *want,
    const size_t *sizes, size_t k, size_t nrec)
{
	struct sni_hello h;
	enum sni_result r;
	size_t n;

	n = reframe(msg, want->hello_len, want->record_version, sizes, k);
	r = sni_parse_hello(framed, n, scratch2, sizeof(scratch2), &h);
	if (!tap_is_str(sni_result_str(r), "ok", "%s: ok", what))
		tap_diag("  error %s", sni_error_str(h.error));
	tap_ok(r == SNI_OK && same(&h, want), "%s: same fields", what);
	tap_is_int(h.raw_len, want->hello_len + 5 * nrec, "%s: raw_len", what);
	check_prefixes(what, framed, n);
}

static int
usage(void)
{
	fprintf(stderr, "usage: sni_check FILE [--sni NAME | --no-sni] "
	    "[--alpn a,b,c] [--tls13 0|1]\n");
	return 1;
}

int
main(int argc, char **argv)
{
	struct expect ex = { .sni = -1, .name = NULL, .alpn = "", .tls13 = -1 };
	struct sni_hello h;
	enum sni_result r;
	const char *path = NULL;
	char name[512], alpn[1024], norm[SNI_NAME_MAX + 1];
	size_t n = 0, got;
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sni") == 0 && i + 1 < argc) {
			ex.sni = 1;
			ex.name = argv[++i];
		} else if (strcmp(argv[i], "--no-sni") == 0) {
			ex.sni = 0;
		} else if (strcmp(argv[i], "--alpn") == 0 && i + 1 < argc) {
			ex.alpn = argv[++i];
		} else if (strcmp(argv[i], "--tls13") == 0 && i + 1 < argc) {
			ex.tls13 = atoi(argv[++i]) != 0;
		} else if (argv[i][0] != '-' && path == NULL) {
			path = argv[i];
		} else {
			return usage();
		}
	}
	if (path == NULL || ex.sni == -1)
		return usage();

	if ((f = fopen(path, "rb")) == NULL) {
		tap_ok(0, "open %s: %s", path, strerror(errno));
		return tap_done();
	}
	while (n < sizeof(file) &&
	    (got = fread(file + n, 1, sizeof(file) - n, f)) > 0)
		n += got;
	fclose(f);
	tap_diag("%s: %zu bytes", path, n);

	r = sni_parse_hello(file, n, scratch, sizeof(scratch), &h);
	if (!tap_is_str(sni_result_str(r), "ok", "whole capture parses"))
		tap_diag("  error %s", sni_error_str(h.error));
	if (r != SNI_OK)
		return tap_done();
	tap_diag("record_version %04x client_version %04x hello_len %zu "
	    "raw_len %zu ech %d", h.record_version, h.client_version,
	    h.hello_len, h.raw_len, h.ech);
	tap_is_int(h.raw_len, n, "the hello covers the whole capture");

	name_str(&h, name, sizeof(name));
	if (ex.sni) {
		tap_is_int(h.has_sni, 1, "has SNI");
		tap_is_str(str(name), ex.name, "SNI is %s", ex.name);
		tap_ok(sni_name_normalize(h.name.ptr, h.name.len, norm) == 0,
		    "SNI normalises");
	} else {
		tap_is_int(h.has_sni, 0, "no SNI");
	}
	alpn_join(&h, alpn, sizeof(alpn));
	tap_is_str(str(alpn), ex.alpn, "ALPN is \"%s\"", ex.alpn);
	if (ex.tls13 != -1)
		tap_is_int(h.tls13, ex.tls13, "tls13 is %d", ex.tls13);

	/* The reassembled message: the source for re-framing. */
	memcpy(msg, scratch, h.hello_len);

	check_prefixes("capture", file, n);
	check_growth(&h, n, 1);
	check_growth(&h, n, 100);

	{
		size_t two[] = { h.hello_len / 2 };
		size_t three[] = { 2, h.hello_len / 3 };
		size_t ones[63];

		for (size_t i = 0; i < 63; i++)
			ones[i] = 1;
		check_reframe("2 records", &h, two, 1, 2);
		check_reframe("3 records", &h, three, 2, 3);
		check_reframe("64 records", &h, ones, 63, 64);
	}
	return tap_done();
}

/*
 * Unit tests for sni/: the ClientHello parser and the host name grammar.
 *
 * Hellos are built here from parts (a tiny builder: extensions, padding to
 * an exact size, framing into any record layout), so each case says what it
 * changes, and sizes at the limits are exact rather than approximate.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sni/sni.h"
#include "tests/unit/tap.h"
#define BB_MAX (SNI_PEEK_MAX + 2048)
#include "tests/unit/testbuf.h"
#define BUF_MAX BB_MAX


/* ---- byte builder ------------------------------------------------------ */

/* ---- extensions -------------------------------------------------------- */

static void
ext_raw(struct bb *e, unsigned int type, const void *data, size_t n)
{
	bb_u16(e, type);
	bb_u16(e, (unsigned int)n);
	bb_bytes(e, data, n);
}

/* server_name with one entry of the given type. */
static void
ext_sni_typed(struct bb *e, unsigned int name_type, const char *name)
{
	size_t n = strlen(name);

	bb_u16(e, 0);
	bb_u16(e, (unsigned int)(n + 5));
	bb_u16(e, (unsigned int)(n + 3));
	bb_u8(e, name_type);
	bb_u16(e, (unsigned int)n);
	bb_bytes(e, name, n);
}

static void
ext_sni(struct bb *e, const char *name)
{
	ext_sni_typed(e, 0, name);
}

/* ALPN from a comma-separated list. */
static void
ext_alpn(struct bb *e, const char *csv)
{
	struct bb l = { .len = 0 };
	const char *s = csv;

	while (*s != '\0') {
		size_t n = strcspn(s, ",");

		bb_u8(&l, (unsigned int)n);
		bb_bytes(&l, s, n);
		s += n;
		if (*s == ',')
			s++;
	}
	bb_u16(e, 16);
	bb_u16(e, (unsigned int)(l.len + 2));
	bb_u16(e, (unsigned int)l.len);
	bb_bytes(e, l.p, l.len);
}

static void
ext_versions(struct bb *e, const unsigned int *v, size_t n)
{
	bb_u16(e, 43);
	bb_u16(e, (unsigned int)(1 + 2 * n));
	bb_u8(e, (unsigned int)(2 * n));
	for (size_t i = 0; i < n; i++)
		bb_u16(e, v[i]);
}

static void
ext_ech(struct bb *e)
{
	static const uint8_t ech[] = { 0, 0, 1, 0, 1, 0x42, 0, 4, 1, 2, 3, 4,
	    0, 2, 9, 9 };

	ext_raw(e, 0xfe0d, ech, sizeof(ech));
}

/* ---- the hello --------------------------------------------------------- */

/* Fixed part of the body: version, random, session id, suites, compression. */
#define HELLO_FIXED (2 + 32 + 1 + 32 + 2 + 4 + 1 + 1)

/*
 * A ClientHello handshake message (header included) around the given
 * extension block. target > 0 pads with a padding extension (21) to exactly
 * that many bytes; with_exts 0 leaves the extension block out entirely.
 */
static void
msg_build(struct bb *m, const struct bb *exts, int with_exts, size_t target)
{
	size_t body = HELLO_FIXED + (with_exts ? 2 + exts->len : 0);
	size_t pad = 0;

	if (target > 0) {
		if (target < 4 + body + 4)
			abort();
		pad = target - (4 + body + 4);
		body += 4 + pad;
	}
	m->len = 0;
	bb_u8(m, 1);
	bb_u24(m, (unsigned int)body);
	bb_u16(m, 0x0303);
	bb_fill(m, 0x11, 32);
	bb_u8(m, 32);
	bb_fill(m, 0x22, 32);
	bb_u16(m, 4);
	bb_u16(m, 0x1301);
	bb_u16(m, 0x1302);
	bb_u8(m, 1);
	bb_u8(m, 0);
	if (with_exts) {
		bb_u16(m, (unsigned int)(exts->len + (target > 0 ? 4 + pad : 0)));
		bb_bytes(m, exts->p, exts->len);
		if (target > 0) {
			bb_u16(m, 21);
			bb_u16(m, (unsigned int)pad);
			bb_fill(m, 0, pad);
		}
	}
}

/*
 * Frame a handshake message into records: sizes[0..k-1] are the payload
 * sizes of the first k records, the last record takes the rest.
 */
static void
frame(struct bb *r, const uint8_t *msg, size_t n, const size_t *sizes,
    size_t k)
{
	size_t off = 0;

	r->len = 0;
	for (size_t i = 0; i <= k && off < n; i++) {
		size_t sz = i < k ? sizes[i] : n - off;

		if (sz > n - off)
			sz = n - off;
		bb_u8(r, 22);
		bb_u16(r, 0x0301);
		bb_u16(r, (unsigned int)sz);
		bb_bytes(r, msg + off, sz);
		off += sz;
	}
}

static void
frame1(struct bb *r, const struct bb *m)
{
	frame(r, m->p, m->len, NULL, 0);
}

/* ---- helpers ------------------------------------------------------------ */

/* Passes a char array to tap_is_str, which tests its argument for NULL. */
static const char *
str(const char *s)
{
	return s;
}

static uint8_t scratch[SNI_HELLO_MAX];
static uint8_t scratch2[SNI_HELLO_MAX];
/* Holds the reference parse that growth results are compared against. */
static uint8_t scratch_want[SNI_HELLO_MAX];

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

static int
view_inside(struct sni_view v, const uint8_t *base, size_t n)
{
	return v.ptr >= base && v.ptr + v.len <= base + n;
}

static int
hello_zero(const struct sni_hello *h)
{
	static const struct sni_hello z;

	return memcmp(h, &z, sizeof(z)) == 0;
}

/* Marks scratch as "never written": see scratch_untouched. */
#define CANARY 0xa5

static int
scratch_untouched(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != CANARY)
			return 0;
	return 1;
}

/*
 * Every proper prefix must be NEED_MORE with nothing filled in. step > 1
 * samples (for the 16 KiB cases), always including the last few bytes.
 * An incomplete hello must not be copied into scratch either: the gateway
 * re-parses after every read, and copying each time is what made a
 * trickled hello cost quadratic time.
 */
static void
check_prefixes(const char *what, const uint8_t *p, size_t n, size_t step)
{
	struct sni_hello h;
	size_t bad = 0, first = 0, copied = 0;
	enum sni_result r = SNI_NEED_MORE;

	memset(scratch, CANARY, sizeof(scratch));
	for (size_t i = 0; i < n; i += (i + 8 >= n) ? 1 : step) {
		r = sni_parse_hello(p, i, scratch, sizeof(scratch), &h);
		if (r != SNI_NEED_MORE || !hello_zero(&h)) {
			if (bad++ == 0)
				first = i;
		}
		if (copied == 0 && !scratch_untouched(scratch, sizeof(scratch)))
			copied = i + 1;
	}
	if (!tap_ok(bad == 0, "%s: every prefix is need_more", what))
		tap_diag("  %zu bad prefixes, first at %zu: %s/%s", bad, first,
		    sni_result_str(r), sni_error_str(h.error));
	if (!tap_ok(copied == 0, "%s: no prefix is copied into scratch", what))
		tap_diag("  first written by the %zu-byte prefix", copied - 1);
}

/*
 * Every prefix of p[0..n) is NEED_MORE (nothing filled in, scratch not
 * written) below at, and res/err from at to n: a decision, once made,
 * stands. The decision points are the parser's contract (errors as soon as
 * the offending byte is in, OK when the last record ends), so this pins
 * down that checking record headers before copying moved none of them.
 */
static void
check_decided_at(const char *what, const uint8_t *p, size_t n, size_t cap,
    size_t at, enum sni_result res, enum sni_error err)
{
	struct sni_hello h;
	size_t early = 0, late = 0, copied = 0, first_early = 0,
	    first_late = 0;

	if (cap > sizeof(scratch))
		abort();
	for (size_t i = 0; i <= n; i++) {
		enum sni_result r;

		memset(scratch, CANARY, sizeof(scratch));
		r = sni_parse_hello(p, i, scratch, cap, &h);
		if (i < at) {
			if ((r != SNI_NEED_MORE || !hello_zero(&h)) &&
			    early++ == 0)
				first_early = i;
			if (!scratch_untouched(scratch, sizeof(scratch)))
				copied++;
		} else if ((r != res || h.error != err) && late++ == 0) {
			first_late = i;
		}
	}
	if (!tap_ok(early == 0, "%s: need_more below %zu bytes", what, at))
		tap_diag("  %zu wrong, first at %zu", early, first_early);
	tap_ok(copied == 0, "%s: scratch untouched below %zu bytes", what, at);
	if (!tap_ok(late == 0, "%s: %s/%s from %zu bytes on", what,
	    sni_result_str(res), sni_error_str(err), at))
		tap_diag("  %zu wrong, first at %zu", late, first_late);
}

/* Grow one buffer a chunk at a time, as the gateway does, reusing scratch. */
static void
check_growth(const char *what, const uint8_t *p, size_t n, size_t chunk,
    const struct sni_hello *want)
{
	static uint8_t grow[BUF_MAX];
	struct sni_hello h;
	size_t len = 0, ok_at = 0;
	int bad = 0;
	char a[512], b[512];

	while (len < n) {
		size_t c = chunk < n - len ? chunk : n - len;
		enum sni_result r;

		memcpy(grow + len, p + len, c);
		len += c;
		r = sni_parse_hello(grow, len, scratch2, sizeof(scratch2), &h);
		if (r == SNI_OK && ok_at == 0)
			ok_at = len;
		else if (r != (len == n ? SNI_OK : SNI_NEED_MORE))
			bad++;
	}
	tap_ok(bad == 0 && ok_at == n, "%s: growth by %zu first ok at the end",
	    what, chunk);
	name_str(&h, a, sizeof(a));
	name_str(want, b, sizeof(b));
	tap_ok(h.has_sni == want->has_sni && strcmp(a, b) == 0 &&
	    h.alpn_count == want->alpn_count && h.tls13 == want->tls13 &&
	    h.hello_len == want->hello_len,
	    "%s: growth by %zu agrees with the whole parse", what, chunk);
}

/* ---- extraction table --------------------------------------------------- */

struct xcase {
	const char *what;
	void (*exts)(struct bb *);
	int with_exts;
	int has_sni;
	const char *name;
	const char *alpn;
	size_t alpn_count;
	int tls13;
	int ech;
};

static const unsigned int v13[] = { 0x0a0a, 0x0304, 0x0303 };
static const unsigned int v12[] = { 0x0303, 0x0302 };

static void
x_full(struct bb *e)
{
	ext_sni(e, "Example.COM");
	ext_raw(e, 10, "\x00\x02\x00\x1d", 4);
	ext_alpn(e, "h2,http/1.1");
	ext_versions(e, v13, 3);
}

static void
x_ech(struct bb *e)
{
	ext_raw(e, 0x1a1a, "", 0);      /* GREASE */
	ext_sni(e, "public.example");
	ext_ech(e);
	ext_versions(e, v13, 3);
	ext_raw(e, 0x2a2a, "\x00", 1);  /* GREASE */
}

static void
x_esni(struct bb *e)
{
	ext_sni(e, "public.example");
	ext_raw(e, 0xffce, "\x13\x01", 2);    /* ESNI */
	ext_versions(e, v13, 3);
}

static void
x_ech_draft(struct bb *e)
{
	ext_sni(e, "public.example");
	ext_raw(e, 0xfe0a, "\x00", 1);         /* ECH draft 10 */
}

static void
x_not_ech(struct bb *e)
{
	ext_sni(e, "public.example");
	ext_raw(e, 0xfe07, "\x00", 1);         /* below the drafts */
	ext_raw(e, 0xfe0e, "\x00", 1);         /* above the final one */
}

static void
x_nosni(struct bb *e)
{
	ext_alpn(e, "http/1.1");
	ext_versions(e, v12, 2);
}

static void
x_tls12(struct bb *e)
{
	ext_sni(e, "a.b");
	ext_versions(e, v12, 2);
}

static void
x_many_alpn(struct bb *e)
{
	ext_alpn(e, "p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,pa,pb,pc,pd,pe,pf,pg,ph");
}

static void
x_empty(struct bb *e)
{
	(void)e;
}

static void
x_long_name(struct bb *e)
{
	char n[300];

	memset(n, 'a', 280);
	n[280] = '\0';
	ext_sni(e, n);
}

static const struct xcase xcases[] = {
	{ "sni+alpn+tls13", x_full, 1, 1, "Example.COM", "h2,http/1.1", 2, 1, 0 },
	{ "ech+grease", x_ech, 1, 1, "public.example", "", 0, 1, 1 },
	{ "esni", x_esni, 1, 1, "public.example", "", 0, 1, 1 },
	{ "ech draft 10", x_ech_draft, 1, 1, "public.example", "", 0, 0, 1 },
	{ "neighbours of ech", x_not_ech, 1, 1, "public.example", "", 0, 0, 0 },
	{ "no sni", x_nosni, 1, 0, "", "http/1.1", 1, 0, 0 },
	{ "tls12 versions", x_tls12, 1, 1, "a.b", "", 0, 0, 0 },
	{ "18 alpn, 16 kept", x_many_alpn, 1, 0, "",
	    "p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,pa,pb,pc,pd,pe,pf", 16, 0, 0 },
	{ "empty extension block", x_empty, 1, 0, "", "", 0, 0, 0 },
	{ "no extension block", x_empty, 0, 0, "", "", 0, 0, 0 },
	/* Raw: the parser does not judge the name, sni_name_normalize does. */
	{ "280-byte name passed raw", x_long_name, 1, 1, NULL, "", 0, 0, 0 },
};

static void
check_fields(const char *what, const struct xcase *c, const uint8_t *p,
    size_t n, size_t hello_len)
{
	struct sni_hello h;
	enum sni_result r;
	char name[512], alpn[512];

	r = sni_parse_hello(p, n, scratch, sizeof(scratch), &h);
	if (!tap_is_str(sni_result_str(r), "ok", "%s: ok", what))
		tap_diag("  error %s", sni_error_str(h.error));
	name_str(&h, name, sizeof(name));
	alpn_join(&h, alpn, sizeof(alpn));
	tap_is_int(h.has_sni, c->has_sni, "%s: has_sni", what);
	if (c->name != NULL)
		tap_is_str(str(name), c->name, "%s: name", what);
	else
		tap_is_int(h.name.len, 280, "%s: name length", what);
	tap_is_str(str(alpn), c->alpn, "%s: alpn", what);
	tap_is_int(h.alpn_count, c->alpn_count, "%s: alpn_count", what);
	tap_is_int(h.tls13, c->tls13, "%s: tls13", what);
	tap_is_int(h.ech, c->ech, "%s: ech", what);
	tap_is_int(h.hello_len, hello_len, "%s: hello_len", what);
	tap_is_int(h.raw_len, n, "%s: raw_len", what);
	tap_is_int(h.record_version, 0x0301, "%s: record_version", what);
	tap_is_int(h.client_version, 0x0303, "%s: client_version", what);
	tap_is_int(h.error, SNI_ERR_NONE, "%s: error none", what);
	tap_ok((!h.has_sni || view_inside(h.name, scratch, sizeof(scratch))) &&
	    (h.alpn_count == 0 ||
	    view_inside(h.alpn[0], scratch, sizeof(scratch))),
	    "%s: views lie in scratch", what);
}

static void
test_extraction(void)
{
	static struct bb e, m, r;
	struct sni_hello want;

	for (size_t i = 0; i < sizeof(xcases) / sizeof(xcases[0]); i++) {
		const struct xcase *c = &xcases[i];
		char what[128];
		size_t two[] = { 0 }, three[] = { 1, 0 };

		e.len = 0;
		c->exts(&e);
		msg_build(&m, &e, c->with_exts, 0);

		frame1(&r, &m);
		check_fields(c->what, c, r.p, r.len, m.len);
		check_prefixes(c->what, r.p, r.len, 1);
		sni_parse_hello(r.p, r.len, scratch_want, sizeof(scratch_want),
		    &want);
		check_growth(c->what, r.p, r.len, 1, &want);

		/* Two records: split in the middle of the body. */
		two[0] = m.len / 2;
		frame(&r, m.p, m.len, two, 1);
		snprintf(what, sizeof(what), "%s [2 records]", c->what);
		check_fields(what, c, r.p, r.len, m.len);
		check_prefixes(what, r.p, r.len, 1);

		/* Three records: split inside the handshake header too. */
		three[1] = m.len - 3;
		frame(&r, m.p, m.len, three, 2);
		snprintf(what, sizeof(what), "%s [3 records]", c->what);
		check_fields(what, c, r.p, r.len, m.len);
		check_prefixes(what, r.p, r.len, 1);
	}
}

/* ---- record limits ------------------------------------------------------ */

static void
test_many_records(void)
{
	static struct bb e, m, r;
	struct sni_hello h;
	size_t ones[64];
	enum sni_result res;
	char name[64];

	for (size_t i = 0; i < 64; i++)
		ones[i] = 1;
	e.len = 0;
	ext_sni(&e, "many.example");
	ext_alpn(&e, "h2");
	msg_build(&m, &e, 1, 0);

	/* 63 one-byte records and one more with the rest: 64 in all. */
	frame(&r, m.p, m.len, ones, 63);
	res = sni_parse_hello(r.p, r.len, scratch_want, sizeof(scratch_want),
	    &h);
	name_str(&h, name, sizeof(name));
	tap_is_str(sni_result_str(res), "ok", "64 records: ok");
	tap_is_str(str(name), "many.example", "64 records: name");
	tap_is_int(h.raw_len, m.len + 5 * 64, "64 records: raw_len");
	tap_ok(h.raw_len <= SNI_PEEK_MAX, "64 records fit in SNI_PEEK_MAX");
	check_prefixes("64 records", r.p, r.len, 1);
	check_growth("64 records", r.p, r.len, 1, &h);
	check_growth("64 records", r.p, r.len, 7, &h);

	/* 64 one-byte records leave the message incomplete: a 65th is refused. */
	frame(&r, m.p, m.len, ones, 64);
	res = sni_parse_hello(r.p, r.len, scratch, sizeof(scratch), &h);
	tap_is_str(sni_result_str(res), "error", "65 records: error");
	tap_is_str(sni_error_str(h.error), "hello_too_large",
	    "65 records: hello_too_large");
	/* Decided without waiting for the 65th record. */
	res = sni_parse_hello(r.p, 64 * 6, scratch, sizeof(scratch), &h);
	tap_ok(res == SNI_ERROR && h.error == SNI_ERR_TOO_LARGE,
	    "65 records: refused once 64 records are in");
}

static void
test_size_limits(void)
{
	static struct bb e, m, r;
	struct sni_hello h;
	enum sni_result res;
	size_t split[] = { 9000 };
	char name[64];

	e.len = 0;
	ext_sni(&e, "big.example");
	ext_versions(&e, v13, 3);

	msg_build(&m, &e, 1, SNI_HELLO_MAX);
	tap_is_int(m.len, SNI_HELLO_MAX, "built a hello of exactly SNI_HELLO_MAX");
	frame1(&r, &m);
	res = sni_parse_hello(r.p, r.len, scratch_want, sizeof(scratch_want),
	    &h);
	name_str(&h, name, sizeof(name));
	tap_is_str(sni_result_str(res), "ok", "SNI_HELLO_MAX, 1 record: ok");
	tap_is_str(str(name), "big.example", "SNI_HELLO_MAX, 1 record: name");
	tap_is_int(h.hello_len, SNI_HELLO_MAX, "SNI_HELLO_MAX: hello_len");
	check_prefixes("SNI_HELLO_MAX, 1 record", r.p, r.len, 61);
	check_growth("SNI_HELLO_MAX, 1 record", r.p, r.len, 1000, &h);
	/* A scratch buffer one byte short cannot hold it. */
	res = sni_parse_hello(r.p, r.len, scratch, SNI_HELLO_MAX - 1, &h);
	tap_ok(res == SNI_ERROR && h.error == SNI_ERR_TOO_LARGE,
	    "short scratch: hello_too_large, no overflow");

	/* Too small even for the handshake header. */
	res = sni_parse_hello(r.p, r.len, scratch, 3, &h);
	tap_ok(res == SNI_ERROR && h.error == SNI_ERR_TOO_LARGE,
	    "3-byte scratch: hello_too_large, no overflow");

	frame(&r, m.p, m.len, split, 1);
	res = sni_parse_hello(r.p, r.len, scratch, sizeof(scratch), &h);
	tap_is_str(sni_result_str(res), "ok", "SNI_HELLO_MAX, 2 records: ok");
	tap_is_int(h.raw_len, SNI_HELLO_MAX + 10, "SNI_HELLO_MAX, 2 records: raw_len");
	check_prefixes("SNI_HELLO_MAX, 2 records", r.p, r.len, 61);

	msg_build(&m, &e, 1, SNI_HELLO_MAX + 1);
	frame(&r, m.p, m.len, split, 1);
	res = sni_parse_hello(r.p, r.len, scratch, sizeof(scratch), &h);
	tap_is_str(sni_error_str(h.error), "hello_too_large",
	    "SNI_HELLO_MAX + 1: hello_too_large");
	tap_is_int(res, SNI_ERROR, "SNI_HELLO_MAX + 1: error");
	/* Refused from the handshake header alone. */
	res = sni_parse_hello(r.p, 9, scratch, sizeof(scratch), &h);
	tap_ok(res == SNI_ERROR && h.error == SNI_ERR_TOO_LARGE,
	    "SNI_HELLO_MAX + 1: refused after 9 bytes");
	res = sni_parse_hello(r.p, 8, scratch, sizeof(scratch), &h);
	tap_is_int(res, SNI_NEED_MORE, "SNI_HELLO_MAX + 1: 8 bytes need_more");
	/* Header split over records: 2 bytes, then 2. */
	{
		size_t hs[] = { 2 };

		frame(&r, m.p, m.len, hs, 1);
		res = sni_parse_hello(r.p, 14, scratch, sizeof(scratch), &h);
		tap_ok(res == SNI_ERROR && h.error == SNI_ERR_TOO_LARGE,
		    "SNI_HELLO_MAX + 1, split header: refused after 14 bytes");
	}

	/* A 16 MiB announcement is refused the same way. */
	{
		static const uint8_t huge[] = { 22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff };

		res = sni_parse_hello(huge, sizeof(huge), scratch,
		    sizeof(scratch), &h);
		tap_ok(res == SNI_ERROR && h.error == SNI_ERR_TOO_LARGE,
		    "u24 max length: hello_too_large");
	}
}

/* ---- errors ------------------------------------------------------------- */

struct ecase {
	const char *what;
	const uint8_t *p;
	size_t n;
	enum sni_result res;
	enum sni_error err;
};

static void
run_ecase(const struct ecase *c)
{
	struct sni_hello h;
	enum sni_result r;

	r = sni_parse_hello(c->p, c->n, scratch, sizeof(scratch), &h);
	if (!tap_ok(r == c->res && h.error == c->err, "%s: %s/%s", c->what,
	    sni_result_str(c->res), sni_error_str(c->err)))
		tap_diag("  got %s/%s", sni_result_str(r), sni_error_str(h.error));
	if (r == SNI_ERROR)
		tap_ok(h.has_sni == 0 && h.alpn_count == 0 && h.hello_len == 0,
		    "%s: nothing else filled on error", c->what);
}

static void
test_not_tls(void)
{
	static const uint8_t get[] = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
	static const uint8_t sslv2[] = { 0x80, 0x2e, 0x01, 0x03, 0x01, 0x00,
	    0x15, 0x00, 0x00, 0x00, 0x10 };
	static const uint8_t alert[] = { 21, 3, 3, 0, 2, 2, 40 };
	static const uint8_t major1[] = { 22, 1, 0 };
	static const uint8_t major2[] = { 22, 2, 0, 0, 5, 1, 0, 0, 1, 0 };
	static const uint8_t zero[] = { 0 };
	static const uint8_t one[] = { 22 };
	static const uint8_t two[] = { 22, 3 };
	static const uint8_t hdr[] = { 22, 3, 1, 0, 0x40 };
	static const uint8_t reclen0[] = { 22, 3, 1, 0, 0 };
	static const uint8_t recbig[] = { 22, 3, 1, 0x41, 0x01 };
	static const uint8_t recmax[] = { 22, 3, 1, 0x41, 0x00, 1 };
	static const uint8_t server[] = { 22, 3, 3, 0, 4, 2, 0, 0, 0 };
	static const uint8_t early_type[] = { 22, 3, 1, 0, 100, 11 };
	static const uint8_t empty_body[] = { 22, 3, 1, 0, 4, 1, 0, 0, 0 };
	const struct ecase cases[] = {
		{ "0 bytes", zero, 0, SNI_NEED_MORE, SNI_ERR_NONE },
		{ "1 byte 0x16", one, 1, SNI_NEED_MORE, SNI_ERR_NONE },
		{ "0x16 0x03", two, 2, SNI_NEED_MORE, SNI_ERR_NONE },
		{ "record header only", hdr, 5, SNI_NEED_MORE, SNI_ERR_NONE },
		{ "first byte 0x00", zero, 1, SNI_ERROR, SNI_ERR_NOT_TLS },
		{ "GET / request", get, sizeof(get) - 1, SNI_ERROR, SNI_ERR_NOT_TLS },
		{ "GET, first byte only", get, 1, SNI_ERROR, SNI_ERR_NOT_TLS },
		{ "SSLv2 hello", sslv2, sizeof(sslv2), SNI_ERROR, SNI_ERR_NOT_TLS },
		{ "alert record", alert, sizeof(alert), SNI_ERROR, SNI_ERR_NOT_TLS },
		{ "record major 1", major1, sizeof(major1), SNI_ERROR, SNI_ERR_NOT_TLS },
		{ "record major 2, whole", major2, sizeof(major2), SNI_ERROR,
		    SNI_ERR_NOT_TLS },
		{ "record length 0", reclen0, sizeof(reclen0), SNI_ERROR,
		    SNI_ERR_MALFORMED },
		{ "record length 16641", recbig, sizeof(recbig), SNI_ERROR,
		    SNI_ERR_MALFORMED },
		{ "record length 16640, 1 byte in", recmax, sizeof(recmax),
		    SNI_NEED_MORE, SNI_ERR_NONE },
		{ "ServerHello", server, sizeof(server), SNI_ERROR,
		    SNI_ERR_MALFORMED },
		{ "wrong handshake type, first byte", early_type,
		    sizeof(early_type), SNI_ERROR, SNI_ERR_MALFORMED },
		{ "empty ClientHello body", empty_body, sizeof(empty_body),
		    SNI_ERROR, SNI_ERR_MALFORMED },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_ecase(&cases[i]);
}

/*
 * Malformed hellos: a valid hello with one thing changed. Each mutation
 * edits the message (m) or the record stream (r) in place.
 */
static void
test_malformed(void)
{
	static struct bb e, m, r;
	struct ecase c;
	size_t off;
	size_t two[] = { 40 };

#define BASE(build) do {                                \
		e.len = 0;                              \
		build;                                  \
		msg_build(&m, &e, 1, 0);                \
	} while (0)
#define RUN(name, errv) do {                            \
		c.what = (name);                        \
		c.p = r.p;                              \
		c.n = r.len;                            \
		c.res = SNI_ERROR;                      \
		c.err = (errv);                         \
		run_ecase(&c);                          \
	} while (0)

	BASE(ext_sni(&e, "x.example"));
	m.p[0] = 2;
	frame1(&r, &m);
	RUN("handshake type 2", SNI_ERR_MALFORMED);

	/* A 33-byte session id, everything else consistent. */
	BASE(ext_sni(&e, "x.example"));
	off = 4 + 2 + 32 + 1 + 32;
	memmove(m.p + off + 1, m.p + off, m.len - off);
	m.p[off] = 0x22;
	m.len++;
	m.p[4 + 2 + 32] = 33;
	m.p[3]++;
	frame1(&r, &m);
	RUN("session_id length 33", SNI_ERR_MALFORMED);

	/* Offset of the extension block length inside the message. */
	off = 4 + HELLO_FIXED;

	BASE(ext_sni(&e, "x.example"));
	m.p[4 + 2 + 32 + 1 + 32] = 0xff;        /* cipher_suites length */
	frame1(&r, &m);
	RUN("cipher_suites length overruns", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"));
	m.p[4 + 2 + 32 + 1 + 32 + 1] = 3;       /* odd cipher_suites length */
	frame1(&r, &m);
	RUN("cipher_suites odd length", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"));
	m.p[off - 2] = 0;                       /* compression_methods length */
	frame1(&r, &m);
	RUN("no compression methods", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"));
	m.p[off + 1]++;                         /* extensions length + 1 */
	frame1(&r, &m);
	RUN("extensions length overruns", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"));
	m.p[off + 1]--;                         /* extensions length - 1 */
	frame1(&r, &m);
	RUN("extensions length short by one", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"));
	m.p[off + 2 + 3]++;                     /* server_name ext length + 1 */
	frame1(&r, &m);
	RUN("server_name ext length mismatch", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"));
	m.p[off + 2 + 4 + 1]--;                 /* server_name list length - 1 */
	frame1(&r, &m);
	RUN("server_name list length mismatch", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"));
	m.p[off + 2 + 4 + 2 + 1 + 1] = 0xf0;    /* host_name length overruns */
	frame1(&r, &m);
	RUN("host_name length overruns", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"); ext_sni(&e, "y.example"));
	frame1(&r, &m);
	RUN("duplicate server_name", SNI_ERR_MALFORMED);

	BASE(ext_alpn(&e, "h2"); ext_raw(&e, 5, "", 0); ext_alpn(&e, "h2"));
	frame1(&r, &m);
	RUN("duplicate ALPN", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, ""));
	frame1(&r, &m);
	RUN("zero-length host_name", SNI_ERR_MALFORMED);

	BASE(ext_raw(&e, 0, "\x00\x00", 2));
	frame1(&r, &m);
	RUN("empty server_name list", SNI_ERR_MALFORMED);

	BASE(ext_raw(&e, 0, "", 0));
	frame1(&r, &m);
	RUN("empty server_name extension", SNI_ERR_MALFORMED);

	BASE(ext_alpn(&e, "h2,,x"));
	frame1(&r, &m);
	RUN("empty ALPN protocol", SNI_ERR_MALFORMED);

	BASE(ext_raw(&e, 16, "\x00\x00", 2));
	frame1(&r, &m);
	RUN("empty ALPN list", SNI_ERR_MALFORMED);

	BASE(ext_raw(&e, 16, "\x00\x03\x05h2", 5));
	frame1(&r, &m);
	RUN("ALPN name overruns its list", SNI_ERR_MALFORMED);

	BASE(ext_raw(&e, 43, "\x03\x03\x04\x03", 4));
	frame1(&r, &m);
	RUN("supported_versions odd length", SNI_ERR_MALFORMED);

	BASE(ext_raw(&e, 43, "\x04\x03\x04", 3));
	frame1(&r, &m);
	RUN("supported_versions overruns", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"));
	bb_u8(&m, 0);                           /* trailing byte after extensions */
	m.p[3]++;
	frame1(&r, &m);
	RUN("byte after extension block", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"));
	bb_u8(&e, 0);                           /* truncated extension header */
	msg_build(&m, &e, 1, 0);
	frame1(&r, &m);
	RUN("truncated extension header", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"));
	m.len = 4 + 10;                         /* message cut inside random */
	m.p[1] = 0;
	m.p[2] = 0;
	m.p[3] = 10;
	frame1(&r, &m);
	RUN("body shorter than its fields", SNI_ERR_MALFORMED);

	BASE(ext_sni(&e, "x.example"));
	m.len = 4 + HELLO_FIXED - 2;            /* ends after cipher_suites */
	m.p[1] = 0;
	m.p[2] = 0;
	m.p[3] = HELLO_FIXED - 2;
	frame1(&r, &m);
	RUN("body ends before compression_methods", SNI_ERR_MALFORMED);

	/* Record-layer faults after the first record. */
	BASE(ext_sni(&e, "x.example"));
	frame(&r, m.p, m.len, two, 1);
	r.p[5 + 40 + 1] = 2;                    /* second record major 2 */
	RUN("second record major 2", SNI_ERR_MALFORMED);

	frame(&r, m.p, m.len, two, 1);
	r.p[5 + 40] = 23;                       /* application data in the middle */
	RUN("application_data record in the middle", SNI_ERR_MALFORMED);

	frame(&r, m.p, m.len, two, 1);
	r.p[5 + 40] = 20;                       /* change_cipher_spec */
	RUN("change_cipher_spec record in the middle", SNI_ERR_MALFORMED);

	frame(&r, m.p, m.len, two, 1);
	r.p[5 + 40 + 3] = 0;                    /* second record length 0 */
	r.p[5 + 40 + 4] = 0;
	RUN("zero-length record in the middle", SNI_ERR_MALFORMED);

	frame(&r, m.p, m.len, two, 1);
	r.p[0] = 23;
	RUN("first record application_data", SNI_ERR_NOT_TLS);

	/* A record longer than the message holds trailing bytes: still ok. */
	frame1(&r, &m);
	bb_fill(&r, 0, 3);
	r.p[4] += 3;
	{
		struct sni_hello h;
		enum sni_result res;

		res = sni_parse_hello(r.p, r.len, scratch, sizeof(scratch), &h);
		tap_is_str(sni_result_str(res), "ok",
		    "trailing bytes in the last record: ok");
		tap_is_int(h.raw_len, r.len, "trailing bytes: raw_len whole record");
		res = sni_parse_hello(r.p, r.len - 1, scratch, sizeof(scratch),
		    &h);
		tap_is_str(sni_result_str(res), "need_more",
		    "trailing bytes: need_more until the record ends");
	}
#undef BASE
#undef RUN
}

/* ---- server_name: exactly one host_name ------------------------------ */

/*
 * RFC 6066 allows one name per type and defines only host_name; OpenSSL
 * and BoringSSL refuse any other list. A gateway that decided on one entry
 * while the server routed on another would be bypassed, so each of these
 * is refused, and never accepted early: every prefix is need_more.
 */

/* One ServerName entry, appended to a list under construction. */
static void
sn_entry(struct bb *l, unsigned int type, const char *name)
{
	bb_u8(l, type);
	bb_u16(l, (unsigned int)strlen(name));
	bb_bytes(l, name, strlen(name));
}

/* A server_name extension around the list built so far. */
static void
ext_sni_list(struct bb *e, const struct bb *l)
{
	bb_u16(e, 0);
	bb_u16(e, (unsigned int)(l->len + 2));
	bb_u16(e, (unsigned int)l->len);
	bb_bytes(e, l->p, l->len);
}

static void
r_two_hosts(struct bb *e)
{
	static struct bb l;

	l.len = 0;
	sn_entry(&l, 0, "good.example");
	sn_entry(&l, 0, "bad.example");
	ext_sni_list(e, &l);
}

static void
r_same_host_twice(struct bb *e)
{
	static struct bb l;

	l.len = 0;
	sn_entry(&l, 0, "a.b");
	sn_entry(&l, 0, "a.b");
	ext_sni_list(e, &l);
}

static void
r_host_then_other(struct bb *e)
{
	static struct bb l;

	l.len = 0;
	sn_entry(&l, 0, "host");
	sn_entry(&l, 7, "xyz");
	ext_versions(e, v13, 3);
	ext_sni_list(e, &l);
}

static void
r_other_then_hosts(struct bb *e)
{
	static struct bb l;

	l.len = 0;
	sn_entry(&l, 7, "xyz");
	sn_entry(&l, 0, "host");
	sn_entry(&l, 0, "alt");
	ext_sni_list(e, &l);
}

static void
r_other_only(struct bb *e)
{
	ext_alpn(e, "h2");
	ext_sni_typed(e, 7, "not-a-host");
}

static void
r_other_empty(struct bb *e)
{
	ext_sni_typed(e, 1, "");
}

/* Lengths are judged before the count: a second entry cut short. */
static void
r_host_then_truncated(struct bb *e)
{
	static struct bb l;

	l.len = 0;
	sn_entry(&l, 0, "host");
	bb_u8(&l, 0);
	bb_u8(&l, 0);
	ext_sni_list(e, &l);
}

static void
r_dup_sni(struct bb *e)
{
	ext_sni(e, "first.example");
	ext_alpn(e, "h2");
	ext_sni(e, "second.example");
}

/* The duplicate is refused before its (bad) contents are read. */
static void
r_dup_sni_second_multi(struct bb *e)
{
	ext_sni(e, "first.example");
	r_two_hosts(e);
}

static void
r_dup_ech(struct bb *e)
{
	ext_sni(e, "public.example");
	ext_ech(e);
	ext_versions(e, v13, 3);
	ext_ech(e);
}

static void
r_dup_ech_empty(struct bb *e)
{
	ext_raw(e, 0xfe0d, "", 0);
	ext_raw(e, 0xfe0d, "", 0);
	ext_sni(e, "x.example");
}

struct rcase {
	const char *what;
	void (*exts)(struct bb *);
	enum sni_error err;
};

static const struct rcase rcases[] = {
	{ "two host_names", r_two_hosts, SNI_ERR_MULTIPLE_NAMES },
	{ "the same host_name twice", r_same_host_twice,
	    SNI_ERR_MULTIPLE_NAMES },
	{ "host_name, then another type", r_host_then_other,
	    SNI_ERR_MULTIPLE_NAMES },
	{ "another type, then two host_names", r_other_then_hosts,
	    SNI_ERR_MULTIPLE_NAMES },
	{ "another type alone", r_other_only, SNI_ERR_NAME_TYPE },
	{ "another type alone, empty", r_other_empty, SNI_ERR_NAME_TYPE },
	{ "host_name, then a truncated entry", r_host_then_truncated,
	    SNI_ERR_MALFORMED },
	{ "duplicate server_name extension", r_dup_sni, SNI_ERR_MALFORMED },
	{ "duplicate server_name, the second with two names",
	    r_dup_sni_second_multi, SNI_ERR_MALFORMED },
	{ "duplicate encrypted_client_hello", r_dup_ech, SNI_ERR_MALFORMED },
	{ "duplicate empty encrypted_client_hello", r_dup_ech_empty,
	    SNI_ERR_MALFORMED },
};

/* Grow one buffer a byte at a time: need_more until the last, then err. */
static void
check_growth_refused(const char *what, const uint8_t *p, size_t n,
    enum sni_error err)
{
	static uint8_t grow[BUF_MAX];
	struct sni_hello h;
	size_t len = 0, bad = 0;

	while (len < n) {
		enum sni_result r;

		grow[len] = p[len];
		len++;
		r = sni_parse_hello(grow, len, scratch2, sizeof(scratch2), &h);
		if (len < n ? r != SNI_NEED_MORE :
		    r != SNI_ERROR || h.error != err || !(h.has_sni == 0 &&
		    h.name.ptr == NULL && h.hello_len == 0 && h.raw_len == 0))
			bad++;
	}
	tap_ok(bad == 0, "%s: growth by 1 need_more, then %s at the end",
	    what, sni_error_str(err));
}

static void
test_server_name_rules(void)
{
	static struct bb e, m, r;
	size_t ones[64];

	for (size_t i = 0; i < 64; i++)
		ones[i] = 1;
	for (size_t i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		const struct rcase *c = &rcases[i];
		char what[160];
		size_t two[1], three[] = { 1, 0 };
		struct ecase ec;

		e.len = 0;
		c->exts(&e);
		msg_build(&m, &e, 1, 0);
		two[0] = m.len / 2;
		three[1] = m.len - 3;

		for (int layout = 0; layout < 4; layout++) {
			static const char *const name[] = { "", " [2 records]",
			    " [3 records]", " [64 records]" };

			if (layout == 0)
				frame1(&r, &m);
			else if (layout == 1)
				frame(&r, m.p, m.len, two, 1);
			else if (layout == 2)
				frame(&r, m.p, m.len, three, 2);
			else
				frame(&r, m.p, m.len, ones, 63);
			snprintf(what, sizeof(what), "%s%s", c->what,
			    name[layout]);
			ec.what = what;
			ec.p = r.p;
			ec.n = r.len;
			ec.res = SNI_ERROR;
			ec.err = c->err;
			run_ecase(&ec);
			check_prefixes(what, r.p, r.len, 1);
			if (layout == 0 || layout == 3)
				check_growth_refused(what, r.p, r.len, c->err);
		}
	}
}

/*
 * Where each outcome is decided, on the vectors above: a record-layer fault
 * as soon as its byte is in, a fault in the body or the server_name rules
 * only with the last byte, OK only when the last record is whole. These
 * are the answers the parser gave before it learned to skip the copy
 * while waiting, and must keep giving.
 */
static void
test_decision_points(void)
{
	static struct bb e, m, r;
	size_t two[] = { 40 }, hs[] = { 2 }, ones[64], three[] = { 1, 50 };
	size_t full = sizeof(scratch);

	for (size_t i = 0; i < 64; i++)
		ones[i] = 1;
	e.len = 0;
	ext_sni(&e, "x.example");
	ext_alpn(&e, "h2,http/1.1");
	msg_build(&m, &e, 1, 0);

	frame1(&r, &m);
	check_decided_at("1 record", r.p, r.len, full, r.len, SNI_OK,
	    SNI_ERR_NONE);
	check_decided_at("1 record, scratch one byte short", r.p, r.len,
	    m.len - 1, 9, SNI_ERROR, SNI_ERR_TOO_LARGE);
	check_decided_at("1 record, 3-byte scratch", r.p, r.len, 3, 9,
	    SNI_ERROR, SNI_ERR_TOO_LARGE);
	check_decided_at("1 record, no scratch", r.p, r.len, 0, 6,
	    SNI_ERROR, SNI_ERR_TOO_LARGE);
	bb_bytes(&r, "\x17\x03\x03\x00\x01X", 6);
	check_decided_at("1 record, then application data", r.p, r.len, full,
	    r.len - 6, SNI_OK, SNI_ERR_NONE);

	frame1(&r, &m);
	bb_fill(&r, 0, 3);
	r.p[4] += 3;
	check_decided_at("3 bytes past the message in its record", r.p, r.len,
	    full, r.len, SNI_OK, SNI_ERR_NONE);

	frame(&r, m.p, m.len, two, 1);
	check_decided_at("2 records", r.p, r.len, full, r.len, SNI_OK,
	    SNI_ERR_NONE);
	frame(&r, m.p, m.len, three, 2);
	check_decided_at("3 records", r.p, r.len, full, r.len, SNI_OK,
	    SNI_ERR_NONE);
	frame(&r, m.p, m.len, ones, 63);
	check_decided_at("64 records", r.p, r.len, full, r.len, SNI_OK,
	    SNI_ERR_NONE);
	frame(&r, m.p, m.len, ones, 64);
	check_decided_at("65 records", r.p, r.len, full, 64 * 6, SNI_ERROR,
	    SNI_ERR_TOO_LARGE);

	frame(&r, m.p, m.len, two, 1);
	r.p[5 + 40] = 23;
	check_decided_at("application_data as the 2nd record", r.p, r.len,
	    full, 5 + 40 + 1, SNI_ERROR, SNI_ERR_MALFORMED);
	frame(&r, m.p, m.len, two, 1);
	r.p[5 + 40 + 1] = 2;
	check_decided_at("2nd record major 2", r.p, r.len, full, 5 + 40 + 2,
	    SNI_ERROR, SNI_ERR_MALFORMED);
	frame(&r, m.p, m.len, two, 1);
	r.p[5 + 40 + 3] = 0;
	r.p[5 + 40 + 4] = 0;
	check_decided_at("2nd record length 0", r.p, r.len, full, 5 + 40 + 5,
	    SNI_ERROR, SNI_ERR_MALFORMED);
	frame(&r, m.p, m.len, two, 1);
	r.p[5 + 40 + 3] = 0x41;
	r.p[5 + 40 + 4] = 0x01;
	check_decided_at("2nd record length 16641", r.p, r.len, full,
	    5 + 40 + 5, SNI_ERROR, SNI_ERR_MALFORMED);

	frame1(&r, &m);
	r.p[0] = 23;
	check_decided_at("1st record application_data", r.p, r.len, full, 1,
	    SNI_ERROR, SNI_ERR_NOT_TLS);
	frame1(&r, &m);
	r.p[1] = 2;
	check_decided_at("1st record major 2", r.p, r.len, full, 2,
	    SNI_ERROR, SNI_ERR_NOT_TLS);
	frame1(&r, &m);
	r.p[3] = 0;
	r.p[4] = 0;
	check_decided_at("1st record length 0", r.p, r.len, full, 5,
	    SNI_ERROR, SNI_ERR_MALFORMED);

	m.p[0] = 2;
	frame1(&r, &m);
	check_decided_at("handshake type 2", r.p, r.len, full, 6, SNI_ERROR,
	    SNI_ERR_MALFORMED);
	frame(&r, m.p, m.len, ones, 63);
	check_decided_at("handshake type 2, 64 records", r.p, r.len, full, 6,
	    SNI_ERROR, SNI_ERR_MALFORMED);
	m.p[0] = 1;

	m.p[4 + HELLO_FIXED + 1]++;             /* extensions length + 1 */
	frame(&r, m.p, m.len, two, 1);
	check_decided_at("extensions length overruns", r.p, r.len, full,
	    r.len, SNI_ERROR, SNI_ERR_MALFORMED);
	m.p[4 + HELLO_FIXED + 1]--;

	e.len = 0;
	r_two_hosts(&e);
	msg_build(&m, &e, 1, 0);
	frame(&r, m.p, m.len, three, 2);
	check_decided_at("two host_names, 3 records", r.p, r.len, full, r.len,
	    SNI_ERROR, SNI_ERR_MULTIPLE_NAMES);
	e.len = 0;
	r_other_only(&e);
	msg_build(&m, &e, 1, 0);
	frame1(&r, &m);
	check_decided_at("another type alone", r.p, r.len, full, r.len,
	    SNI_ERROR, SNI_ERR_NAME_TYPE);

	/* A header that announces too much, whole or split over records. */
	e.len = 0;
	ext_sni(&e, "big.example");
	msg_build(&m, &e, 1, SNI_HELLO_MAX + 1);
	frame1(&r, &m);
	r.len = 200;
	check_decided_at("SNI_HELLO_MAX + 1", r.p, r.len, full, 9, SNI_ERROR,
	    SNI_ERR_TOO_LARGE);
	frame(&r, m.p, m.len, hs, 1);
	r.len = 200;
	check_decided_at("SNI_HELLO_MAX + 1, header split 2 + 2", r.p, r.len,
	    full, 14, SNI_ERROR, SNI_ERR_TOO_LARGE);
}

/* Bytes that follow a complete hello (the client's next flight) are not ours. */
static void
test_followed(void)
{
	static struct bb e, m, r;
	struct sni_hello h;
	enum sni_result res;

	e.len = 0;
	ext_sni(&e, "next.example");
	msg_build(&m, &e, 1, 0);
	frame1(&r, &m);
	bb_bytes(&r, "\x17\x03\x03\x00\x01X", 6);
	res = sni_parse_hello(r.p, r.len, scratch, sizeof(scratch), &h);
	tap_is_str(sni_result_str(res), "ok", "hello followed by more: ok");
	tap_is_int(h.raw_len, r.len - 6, "hello followed by more: raw_len");
}

/*
 * What follows the first hello: opaque records pass whole, a handshake
 * record is parsed as a ClientHello (the second one, after a
 * HelloRetryRequest), one byte at a time as much as all at once.
 */
static void
test_followup(void)
{
	static struct bb e, m, r;
	static const uint8_t ccs[] = { 20, 3, 3, 0, 1, 1 };
	static const uint8_t early[] = { 23, 3, 3, 0, 3, 'a', 'b', 'c' };
	struct sni_hello h;
	enum sni_result res;
	size_t pass, ok_at = 0, bad = 0;
	char a[SNI_NAME_MAX + 1];

	e.len = 0;
	ext_sni(&e, "Second.Example");
	msg_build(&m, &e, 1, 0);
	r.len = 0;
	bb_bytes(&r, ccs, sizeof(ccs));
	bb_bytes(&r, early, sizeof(early));
	{
		static struct bb f;
		size_t sizes[] = { 7 };

		frame(&f, m.p, m.len, sizes, 1);
		bb_bytes(&r, f.p, f.len);
	}
	res = sni_parse_followup(r.p, r.len, scratch, sizeof(scratch), &pass, &h);
	name_str(&h, a, sizeof(a));
	tap_is_str(sni_result_str(res), "ok", "followup: a second hello is ok");
	tap_is_int(pass, sizeof(ccs) + sizeof(early),
	    "followup: ccs and early data pass before it");
	tap_is_int(h.raw_len, r.len - pass, "followup: raw_len counts its records");
	tap_is_str(a, "Second.Example", "followup: its raw name");
	/* Growth by one byte: need_more, pass never beyond what is whole. */
	for (size_t n = 0; n <= r.len; n++) {
		res = sni_parse_followup(r.p, n, scratch, sizeof(scratch), &pass, &h);
		if (res == SNI_OK && ok_at == 0)
			ok_at = n;
		if ((res != SNI_NEED_MORE && n < r.len) || pass > n)
			bad++;
	}
	tap_ok(bad == 0 && ok_at == r.len,
	    "followup: growth by 1 need_more, first ok at the end");
	res = sni_parse_followup(r.p, sizeof(ccs) + 3, scratch, sizeof(scratch),
	    &pass, &h);
	tap_ok(res == SNI_NEED_MORE && pass == sizeof(ccs),
	    "followup: a record cut short does not pass");

	res = sni_parse_followup(early, sizeof(early), scratch, sizeof(scratch),
	    &pass, &h);
	tap_ok(res == SNI_NEED_MORE && pass == sizeof(early),
	    "followup: early data alone passes, nothing to decide");
	{
		/* A handshake record that is no ClientHello: malformed. */
		static const uint8_t fin[] = { 22, 3, 3, 0, 5, 20, 0, 0, 1, 0 };
		static const uint8_t junk[] = { 23, 9, 9, 0, 1, 0 };
		static const uint8_t huge[] = { 23, 3, 3, 0xff, 0xff };
		static const uint8_t badver[] = { 22, 4, 3, 0, 1, 1 };

		res = sni_parse_followup(fin, sizeof(fin), scratch,
		    sizeof(scratch), &pass, &h);
		tap_ok(res == SNI_ERROR && h.error == SNI_ERR_MALFORMED,
		    "followup: a handshake record that is no hello is malformed");
		res = sni_parse_followup(junk, sizeof(junk), scratch,
		    sizeof(scratch), &pass, &h);
		tap_ok(res == SNI_ERROR && h.error == SNI_ERR_MALFORMED,
		    "followup: a record that is not TLS is malformed");
		res = sni_parse_followup(huge, sizeof(huge), scratch,
		    sizeof(scratch), &pass, &h);
		tap_ok(res == SNI_ERROR && h.error == SNI_ERR_MALFORMED,
		    "followup: a record longer than TLS allows is malformed");
		res = sni_parse_followup(badver, sizeof(badver), scratch,
		    sizeof(scratch), &pass, &h);
		tap_ok(res == SNI_ERROR && h.error == SNI_ERR_MALFORMED,
		    "followup: a handshake record of major version 4 is malformed");
	}
}

/* The server's first handshake message: a HelloRetryRequest or not. */
static void
test_server_answer(void)
{
	static const uint8_t hrr_random[32] = {
		0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11,
		0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
		0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e,
		0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
	};
	static struct bb m, r, sh;
	static const uint8_t alert[] = { 21, 3, 3, 0, 2, 2, 40 };
	size_t ones[40];
	size_t bad = 0;

	m.len = 0;
	bb_u8(&m, 2);
	bb_u24(&m, 2 + 32 + 6);
	bb_u16(&m, 0x0303);
	bb_bytes(&m, hrr_random, sizeof(hrr_random));
	bb_fill(&m, 0, 6);
	frame1(&r, &m);
	tap_is_str(sni_answer_str(sni_server_answer(r.p, r.len)), "retry",
	    "server answer: a HelloRetryRequest");
	for (size_t n = 0; n < 5 + 38; n++)
		if (sni_server_answer(r.p, n) != SNI_ANSWER_NEED_MORE)
			bad++;
	tap_ok(bad == 0, "server answer: every prefix short of the random is need_more");
	for (size_t i = 0; i < 40; i++)
		ones[i] = 1;
	frame(&r, m.p, m.len, ones, 40);
	tap_is_str(sni_answer_str(sni_server_answer(r.p, r.len)), "retry",
	    "server answer: a HelloRetryRequest one byte per record");
	sh = m;
	sh.p[6 + 31] ^= 1;
	frame1(&r, &sh);
	tap_is_str(sni_answer_str(sni_server_answer(r.p, r.len)), "other",
	    "server answer: another random is a ServerHello");
	tap_is_str(sni_answer_str(sni_server_answer(alert, sizeof(alert))),
	    "other", "server answer: an alert");
	sh = m;
	sh.p[0] = 11;
	frame1(&r, &sh);
	tap_is_str(sni_answer_str(sni_server_answer(r.p, 6)), "other",
	    "server answer: another handshake message, known at its first byte");
}

static void
test_strings(void)
{
	tap_is_str(sni_result_str(SNI_NEED_MORE), "need_more", "result str need_more");
	tap_is_str(sni_result_str(SNI_OK), "ok", "result str ok");
	tap_is_str(sni_result_str(SNI_ERROR), "error", "result str error");
	tap_is_str(sni_error_str(SNI_ERR_NONE), "none", "error str none");
	tap_is_str(sni_error_str(SNI_ERR_NOT_TLS), "not_tls", "error str not_tls");
	tap_is_str(sni_error_str(SNI_ERR_MALFORMED), "malformed_hello",
	    "error str malformed_hello");
	tap_is_str(sni_error_str(SNI_ERR_TOO_LARGE), "hello_too_large",
	    "error str hello_too_large");
	tap_is_str(sni_error_str(SNI_ERR_MULTIPLE_NAMES),
	    "server_name list holds more than one name",
	    "error str multiple names");
	tap_is_str(sni_error_str(SNI_ERR_NAME_TYPE),
	    "server_name entry is not a host_name", "error str name type");
}

/* ---- names -------------------------------------------------------------- */

struct ncase {
	const char *in;
	size_t len;             /* 0: strlen(in) */
	const char *want;       /* NULL: rejected */
};

static void
test_names(void)
{
	static char l63[64], l64[65], n253[254], n254[255], n253dot[255];
	char out[SNI_NAME_MAX + 1];

	memset(l63, 'a', 63);
	memset(l64, 'b', 64);
	/* 253 = 3 labels of 63 + 1 of 61, with 3 dots. */
	snprintf(n253, sizeof(n253), "%s.%s.%s.%.61s", l63, l63, l63, l63);
	snprintf(n254, sizeof(n254), "%s.%s.%s.%.62s", l63, l63, l63, l63);
	snprintf(n253dot, sizeof(n253dot), "%s.", n253);

	const struct ncase cases[] = {
		{ "example.com", 0, "example.com" },
		{ "WWW.Example.COM", 0, "www.example.com" },
		{ "example.com.", 0, "example.com" },
		{ "example.com..", 0, NULL },
		{ ".", 0, NULL },
		{ "", 0, NULL },
		{ "a..b", 0, NULL },
		{ ".a", 0, NULL },
		{ l63, 0, l63 },
		{ l64, 0, NULL },
		{ n253, 0, n253 },
		{ n253dot, 0, n253 },
		{ n254, 0, NULL },
		{ "-a.com", 0, NULL },
		{ "a-.com", 0, NULL },
		{ "a.-b", 0, NULL },
		{ "a-b.c-d", 0, "a-b.c-d" },
		{ "exa\0mple.com", 12, NULL },
		{ "example.com\0", 12, NULL },
		{ "1.2.3.4", 0, NULL },
		{ "1.2.3.4.", 0, NULL },
		{ "127.1", 0, NULL },
		{ "2130706433", 0, NULL },
		{ "0x7f000001", 0, NULL },
		{ "0X7F.0.0.1", 0, NULL },
		{ "1.2.3.4.example", 0, "1.2.3.4.example" },
		{ "123.example", 0, "123.example" },
		{ "::1", 0, NULL },
		{ "[::1]", 0, NULL },
		{ "2001:db8::1", 0, NULL },
		{ "_dmarc.Example.com", 0, "_dmarc.example.com" },
		{ "a_b.example", 0, "a_b.example" },
		{ "xn--bcher-kva.example", 0, "xn--bcher-kva.example" },
		{ "XN--BCHER-KVA.ch", 0, "xn--bcher-kva.ch" },
		{ "b\xc3\xbc" "cher.example", 0, NULL },
		{ "caf\xe9.example", 0, NULL },
		{ "a b.example", 0, NULL },
		{ "a/b.example", 0, NULL },
		{ "a:443", 0, NULL },
		{ "localhost", 0, "localhost" },
		{ "0x.example", 0, "0x.example" },
		{ "x.0x", 0, "x.0x" },
		{ "x.0xg1", 0, "x.0xg1" },
		{ "x.0x1f", 0, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ncase *c = &cases[i];
		size_t n = c->len ? c->len : strlen(c->in);
		char label[80];
		int rc;

		snprintf(label, sizeof(label), "name %zu \"%.40s%s\" (%zu bytes)",
		    i, c->in, n > 40 ? "..." : "", n);
		rc = sni_name_normalize((const uint8_t *)c->in, n, out);
		if (c->want == NULL) {
			tap_ok(rc == -1 && out[0] == '\0', "%s rejected", label);
		} else {
			tap_is_int(rc, 0, "%s accepted", label);
			tap_is_str(str(out), c->want, "%s normalised", label);
		}
	}

	/* In place, as a caller normalising its own copy would. */
	{
		char buf[SNI_NAME_MAX + 1] = "Mixed.Case.";

		tap_is_int(sni_name_normalize((const uint8_t *)buf, strlen(buf),
		    buf), 0, "in place: accepted");
		tap_is_str(str(buf), "mixed.case", "in place: normalised");
	}
}

int
main(void)
{
	test_strings();
	test_extraction();
	test_many_records();
	test_size_limits();
	test_not_tls();
	test_malformed();
	test_server_name_rules();
	test_decision_points();
	test_followed();
	test_followup();
	test_server_answer();
	test_names();
	return tap_done();
}

/*
 * Unit tests for proxy/: the PROXY protocol v1/v2 header parser.
 *
 * Two sources of headers:
 *  - real ones, written by HAProxy 2.6 (Debian's haproxy package) with
 *    send-proxy / send-proxy-v2 and captured byte for byte: the
 *    haproxy-*.bin files of tests/fuzz/corpus/proxy (capture-haproxy.sh and
 *    README.md there say how); each is "header + what the client sent";
 *  - hand-built ones (a tiny builder for v2), each case saying what it
 *    changes, at the limits of the spec and of PROXY_MAX_HEADER.
 * Every valid header is also fed as every prefix and one byte at a time;
 * every error case states the byte count at which it must be decided.
 * Each parse reads from a heap copy of exactly the bytes given, so a read
 * past len is an AddressSanitizer report.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/proxy.h"
#include "tests/unit/tap.h"
#define BB_MAX 2048
#include "tests/unit/testbuf.h"
#define BUF_MAX BB_MAX


/* ---- byte builder ------------------------------------------------------ */

static void
bb_str(struct bb *b, const char *s)
{
	bb_bytes(b, s, strlen(s));
}

static const uint8_t v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

/* The 16-byte v2 header; the block is appended by the caller. */
static void
v2_head(struct bb *b, unsigned int ver_cmd, unsigned int fam, size_t blen)
{
	b->len = 0;
	bb_bytes(b, v2_sig, sizeof(v2_sig));
	bb_u8(b, ver_cmd);
	bb_u8(b, fam);
	bb_u16(b, (unsigned int)blen);
}

/* 192.0.2.1:51234 -> 198.51.100.7:443 */
static void
v2_addr4(struct bb *b)
{
	static const uint8_t a[] = { 192, 0, 2, 1, 198, 51, 100, 7 };

	bb_bytes(b, a, sizeof(a));
	bb_u16(b, 51234);
	bb_u16(b, 443);
}

/* [2001:db8::1]:65535 -> [2001:db8:ffff::2]:0 */
static void
v2_addr6(struct bb *b)
{
	static const uint8_t a[32] = {
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
	};

	bb_bytes(b, a, sizeof(a));
	bb_u16(b, 65535);
	bb_u16(b, 0);
}

static void
v2_tlv(struct bb *b, unsigned int type, const void *v, size_t n)
{
	bb_u8(b, type);
	bb_u16(b, (unsigned int)n);
	bb_bytes(b, v, n);
}

/* ---- helpers ------------------------------------------------------------ */

/* Passes a char array to tap_is_str, which tests its argument for NULL. */
static const char *
str(const char *s)
{
	return s;
}

/* "a.b.c.d:port", "[v6]:port", "" for AF_UNSPEC (a local header). */
static void
addr_str(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;

		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		snprintf(out, cap, "%s:%u", a, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		snprintf(out, cap, "[%s]:%u", a, ntohs(s->sin6_port));
	} else if (ss->ss_family == AF_UNSPEC) {
		snprintf(out, cap, "%s", "");
	} else {
		snprintf(out, cap, "family %d", ss->ss_family);
	}
}

/*
 * Parse from a heap copy of exactly n bytes, with *h and *why poisoned
 * first so that "nothing filled in" means the parser cleared them.
 */
static enum proxy_status
parse_n(const uint8_t *p, size_t n, struct proxy_header *h, const char **why)
{
	uint8_t *copy = malloc(n > 0 ? n : 1);
	enum proxy_status st;

	if (copy == NULL)
		abort();
	if (n > 0)
		memcpy(copy, p, n);
	memset(h, 0xa5, sizeof(*h));
	*why = "poison";
	st = proxy_parse(copy, n, h, why);
	free(copy);
	return st;
}

/* Every proper prefix of a header is NEED_MORE with nothing filled in. */
static void
check_prefixes(const char *what, const uint8_t *p, size_t header_len)
{
	struct proxy_header h;
	const char *why;
	size_t bad = 0, first = 0;
	enum proxy_status st = PROXY_NEED_MORE;

	for (size_t i = 0; i < header_len; i++) {
		st = parse_n(p, i, &h, &why);
		if (st != PROXY_NEED_MORE || why != NULL ||
		    !is_zero(&h, sizeof(h))) {
			if (bad++ == 0)
				first = i;
		}
	}
	if (!tap_ok(bad == 0, "%s: every prefix is need_more", what))
		tap_diag("  %zu bad prefixes, first at %zu: %s", bad, first,
		    proxy_status_str(st));
}

/*
 * Grow one buffer a byte at a time, as bytes trickle in from the socket:
 * need_more until exactly header_len, then the same header from there on,
 * payload or not.
 */
static void
check_bytewise(const char *what, const uint8_t *p, size_t n,
    const struct proxy_header *want)
{
	static uint8_t grow[BUF_MAX];
	struct proxy_header h;
	const char *why;
	size_t done_at = 0, bad = 0;

	for (size_t len = 1; len <= n; len++) {
		enum proxy_status st;

		grow[len - 1] = p[len - 1];
		st = proxy_parse(grow, len, &h, &why);
		if (st == PROXY_DONE && done_at == 0)
			done_at = len;
		if (st != (len < want->header_len ? PROXY_NEED_MORE : PROXY_DONE))
			bad++;
		else if (st == PROXY_DONE && memcmp(&h, want, sizeof(h)) != 0)
			bad++;
	}
	if (!tap_ok(bad == 0 && done_at == want->header_len,
	    "%s: byte by byte, done first at %zu with the same header", what,
	    want->header_len))
		tap_diag("  %zu bad lengths, done first at %zu", bad, done_at);
}

/* ---- valid headers ------------------------------------------------------ */

struct vcase {
	const char *what;
	const uint8_t *p;
	size_t n;                       /* header and payload */
	int version;
	int local;
	const char *src, *dst;          /* "" when local */
	size_t header_len;
};

static void
run_vcase(const struct vcase *c)
{
	struct proxy_header h;
	const char *why;
	enum proxy_status st;
	char s[80], d[80];

	st = parse_n(c->p, c->n, &h, &why);
	if (!tap_is_str(proxy_status_str(st), "done", "%s: done", c->what))
		tap_diag("  reason: %s", why != NULL ? why : "(none)");
	tap_ok(why == NULL, "%s: no reason when done", c->what);
	tap_is_int(h.version, c->version, "%s: version", c->what);
	tap_is_int(h.local, c->local, "%s: local", c->what);
	addr_str(&h.src, s, sizeof(s));
	addr_str(&h.dst, d, sizeof(d));
	tap_is_str(str(s), c->src, "%s: src", c->what);
	tap_is_str(str(d), c->dst, "%s: dst", c->what);
	tap_is_int(h.header_len, c->header_len, "%s: header_len", c->what);
	if (c->local)
		tap_ok(is_zero(&h.src, sizeof(h.src)) &&
		    is_zero(&h.dst, sizeof(h.dst)),
		    "%s: local leaves both addresses zeroed", c->what);
	check_prefixes(c->what, c->p, c->header_len);
	check_bytewise(c->what, c->p, c->n, &h);
}

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static void
test_v1_valid(void)
{
	static const char max4[] =
	    "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
	static const char max6[] = "PROXY TCP6 "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	static const char unk107[] = "PROXY UNKNOWN "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	const struct vcase cases[] = {
		{ "v1 TCP4 + TLS payload",
		    S("PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n"
		    "\x16\x03\x01\x02\x00\x01"), 1, 0,
		    "192.0.2.1:51234", "198.51.100.7:443", 45 },
		{ "v1 TCP4 longest (56 bytes)", S(max4), 1, 0,
		    "255.255.255.255:65535", "255.255.255.255:65535", 56 },
		{ "v1 TCP4 zeros", S("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"), 1,
		    0, "0.0.0.0:0", "0.0.0.0:0", 32 },
		{ "v1 TCP6 longest (104 bytes)", S(max6), 1, 0,
		    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
		    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", 104 },
		{ "v1 TCP6 upper-case hex",
		    S("PROXY TCP6 2001:DB8::A 2001:db8::b 1 65535\r\nxyz"), 1, 0,
		    "[2001:db8::a]:1", "[2001:db8::b]:65535", 44 },
		{ "v1 TCP6 v4-mapped",
		    S("PROXY TCP6 ::ffff:192.0.2.1 :: 8080 80\r\n"), 1, 0,
		    "[::ffff:192.0.2.1]:8080", "[::]:80", 40 },
		{ "v1 UNKNOWN, short form", S("PROXY UNKNOWN\r\nGET /\r\n"), 1,
		    1, "", "", 15 },
		{ "v1 UNKNOWN, fields ignored",
		    S("PROXY UNKNOWN not even addresses\r\n"), 1, 1, "", "", 34 },
		{ "v1 UNKNOWN, longest (107 bytes)", S(unk107), 1, 1, "", "",
		    107 },
		/* The payload is the client's: even another PROXY line. */
		{ "v1 TCP4 followed by another v1 line",
		    S("PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n"
		    "PROXY TCP4 6.6.6.6 6.6.6.6 6 6\r\n"), 1, 0,
		    "10.0.0.1:1", "10.0.0.2:2", 34 },
	};

	tap_is_int(sizeof(max4) - 1, 56, "spec: longest TCP4 line is 56 bytes");
	tap_is_int(sizeof(max6) - 1, 104, "spec: longest TCP6 line is 104 bytes");
	tap_is_int(sizeof(unk107) - 1, 107, "spec: worst-case line is 107 bytes");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_vcase(&cases[i]);
}

static void
test_v2_valid(void)
{
	static struct bb b[10];
	static const char auth[] = "api.example.com";
	struct vcase cases[10];
	size_t k = 0;

	/* TCP4, no TLV, payload. */
	v2_head(&b[k], 0x21, 0x11, 12);
	v2_addr4(&b[k]);
	bb_str(&b[k], "GET / HTTP/1.1\r\n");
	cases[k] = (struct vcase){ "v2 TCP4 + payload", b[k].p, b[k].len, 2,
	    0, "192.0.2.1:51234", "198.51.100.7:443", 28 };
	k++;

	/* TCP6 with an AUTHORITY TLV. */
	v2_head(&b[k], 0x21, 0x21, 36 + 3 + strlen(auth));
	v2_addr6(&b[k]);
	v2_tlv(&b[k], 0x02, auth, strlen(auth));
	bb_bytes(&b[k], "\x16\x03\x01", 3);
	cases[k] = (struct vcase){ "v2 TCP6 + AUTHORITY TLV", b[k].p, b[k].len,
	    2, 0, "[2001:db8::1]:65535", "[2001:db8:ffff::2]:0",
	    16 + 36 + 3 + strlen(auth) };
	k++;

	/* TLVs: an empty one, NOOP padding, an unknown type; exact fit. */
	v2_head(&b[k], 0x21, 0x11, 12 + 3 + 10 + 4);
	v2_addr4(&b[k]);
	v2_tlv(&b[k], 0x04, "", 0);
	v2_tlv(&b[k], 0x04, "\0\0\0\0\0\0\0", 7);
	v2_tlv(&b[k], 0xe0, "x", 1);
	cases[k] = (struct vcase){ "v2 TCP4 + three TLVs", b[k].p, b[k].len, 2,
	    0, "192.0.2.1:51234", "198.51.100.7:443", 16 + 29 };
	k++;

	/* The largest block accepted: one TLV filling 520 bytes. */
	v2_head(&b[k], 0x21, 0x11, PROXY_MAX_HEADER - 16);
	v2_addr4(&b[k]);
	bb_u8(&b[k], 0x30);
	bb_u16(&b[k], PROXY_MAX_HEADER - 16 - 12 - 3);
	bb_fill(&b[k], 'n', PROXY_MAX_HEADER - 16 - 12 - 3);
	bb_str(&b[k], "payload");
	cases[k] = (struct vcase){ "v2 at PROXY_MAX_HEADER", b[k].p, b[k].len,
	    2, 0, "192.0.2.1:51234", "198.51.100.7:443", PROXY_MAX_HEADER };
	k++;

	/* LOCAL, as health checks send it. */
	v2_head(&b[k], 0x20, 0x00, 0);
	cases[k] = (struct vcase){ "v2 LOCAL, empty block", b[k].p, b[k].len,
	    2, 1, "", "", 16 };
	k++;

	/* LOCAL: the block and even the family are discarded unread. */
	v2_head(&b[k], 0x20, 0x31, 216);
	bb_fill(&b[k], 0, 216);
	bb_str(&b[k], "x");
	cases[k] = (struct vcase){ "v2 LOCAL, UNIX-sized block skipped",
	    b[k].p, b[k].len, 2, 1, "", "", 16 + 216 };
	k++;

	v2_head(&b[k], 0x20, 0xff, 5);
	bb_bytes(&b[k], "\x04\xff\xff\x00\x00", 5);    /* a bad TLV, unread */
	cases[k] = (struct vcase){ "v2 LOCAL, undefined family, junk block",
	    b[k].p, b[k].len, 2, 1, "", "", 21 };
	k++;

	v2_head(&b[k], 0x20, 0x11, 12);
	v2_addr4(&b[k]);
	cases[k] = (struct vcase){ "v2 LOCAL with TCP4 addresses ignored",
	    b[k].p, b[k].len, 2, 1, "", "", 28 };
	k++;

	/* PROXY over UNSPEC: address information ignored, local. */
	v2_head(&b[k], 0x21, 0x00, 5);
	bb_str(&b[k], "abcde");
	cases[k] = (struct vcase){ "v2 PROXY UNSPEC, block ignored", b[k].p,
	    b[k].len, 2, 1, "", "", 21 };
	k++;

	/* A block larger than the addresses, all TLV. */
	v2_head(&b[k], 0x21, 0x21, 36 + 3 + 2);
	v2_addr6(&b[k]);
	v2_tlv(&b[k], 0x01, "h2", 2);
	cases[k] = (struct vcase){ "v2 TCP6 + ALPN TLV, no payload", b[k].p,
	    b[k].len, 2, 0, "[2001:db8::1]:65535", "[2001:db8:ffff::2]:0",
	    16 + 41 };
	k++;

	for (size_t i = 0; i < k; i++)
		run_vcase(&cases[i]);
}

/* The exact layout of what DONE fills in, beyond what addr_str shows. */
static void
test_sockaddr_layout(void)
{
	static const char line[] = "PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n";
	static const char line6[] = "PROXY TCP6 fe80::1 ::1 1 2\r\n";
	struct proxy_header h;
	const struct sockaddr_in *s4 = (const void *)&h.src;
	const struct sockaddr_in *d4 = (const void *)&h.dst;
	const struct sockaddr_in6 *s6 = (const void *)&h.src;
	const char *why;
	uint8_t port[2];

	parse_n((const uint8_t *)line, sizeof(line) - 1, &h, &why);
	tap_is_int(h.src.ss_family, AF_INET, "TCP4: src is AF_INET");
	tap_is_int(h.dst.ss_family, AF_INET, "TCP4: dst is AF_INET");
	memcpy(port, &d4->sin_port, 2);
	tap_ok(port[0] == 0x01 && port[1] == 0xbb,
	    "TCP4: port 443 stored in network byte order");
	tap_is_int(ntohl(s4->sin_addr.s_addr), 0xc0000201,
	    "TCP4: 192.0.2.1 stored in network byte order");
	tap_ok(is_zero((const uint8_t *)&h.src + sizeof(struct sockaddr_in),
	    sizeof(h.src) - sizeof(struct sockaddr_in)) &&
	    is_zero(s4->sin_zero, sizeof(s4->sin_zero)),
	    "TCP4: the rest of the sockaddr_storage is zero");

	parse_n((const uint8_t *)line6, sizeof(line6) - 1, &h, &why);
	tap_is_int(h.src.ss_family, AF_INET6, "TCP6: src is AF_INET6");
	tap_ok(s6->sin6_scope_id == 0 && s6->sin6_flowinfo == 0,
	    "TCP6: no scope id or flow info from the wire");
	tap_ok(is_zero((const uint8_t *)&h.src + sizeof(struct sockaddr_in6),
	    sizeof(h.src) - sizeof(struct sockaddr_in6)),
	    "TCP6: the rest of the sockaddr_storage is zero");
}

/* ---- real headers from HAProxy ------------------------------------------ */

struct capture {
	const char *file;
	int version;
	int local;
	const char *src, *dst;
	size_t header_len;
	const char *payload;            /* what the client sent after */
	const char *tlvs;               /* v2 TLV types in order, "" if none */
};

static const struct capture captures[] = {
	{ "haproxy-v1-tcp4.bin", 1, 0, "127.0.0.2:40001", "127.0.0.1:24001",
	    44, "GET / HTTP/1.0\r\n\r\n", "" },
	{ "haproxy-v1-tcp6.bin", 1, 0, "[::1]:40011", "[::1]:24011", 32,
	    "GET / HTTP/1.0\r\n\r\n", "" },
	/* A UNIX-socket frontend has no addresses to tell: UNKNOWN. */
	{ "haproxy-v1-unix.bin", 1, 1, "", "", 15, "unix\n", "" },
	/* Health check: haproxy's own socket addresses, no payload. */
	{ "haproxy-v1-check.bin", 1, 0, "127.0.0.1:33262", "127.0.0.1:24121",
	    44, "", "" },
	{ "haproxy-v2-tcp4.bin", 2, 0, "127.0.0.2:40002", "127.0.0.1:24002",
	    28, "GET / HTTP/1.0\r\n\r\n", "" },
	{ "haproxy-v2-tcp6.bin", 2, 0, "[::1]:40012", "[::1]:24012", 52,
	    "GET / HTTP/1.0\r\n\r\n", "" },
	/* proxy-v2-options crc32c,unique-id,ssl on a plain connection. */
	{ "haproxy-v2-tcp4-tlvs.bin", 2, 0, "127.0.0.2:40003",
	    "127.0.0.1:24003", 87, "hello\n", "03,05,20" },
	/* TLS-terminating frontend, SNI pp.example, ALPN h2. */
	{ "haproxy-v2-tcp4-tls-tlvs.bin", 2, 0, "127.0.0.2:40004",
	    "127.0.0.1:24004", 163, "hello tls\n", "03,01,02,05,20" },
	/* Health check and UNIX-socket frontend: LOCAL, UNSPEC, no block. */
	{ "haproxy-v2-check.bin", 2, 1, "", "", 16, "", "" },
	{ "haproxy-v2-unix.bin", 2, 1, "", "", 16, "unix\n", "" },
};

static size_t
read_file(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		tap_diag("  %s: %s", path, strerror(errno));
		return 0;
	}
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* The test's own TLV walk, to show what each capture carries. */
static void
tlv_types(const uint8_t *p, size_t header_len, size_t addr_len, char *out,
    size_t cap)
{
	size_t off = 16 + addr_len, o = 0;

	out[0] = '\0';
	while (off + 3 <= header_len && o + 4 < cap) {
		o += (size_t)snprintf(out + o, cap - o, "%s%02x", o ? "," : "",
		    p[off]);
		off += 3 + ((size_t)p[off + 1] << 8 | p[off + 2]);
	}
}

/* CRC-32C (Castagnoli), bitwise: the PP2_TYPE_CRC32C checksum. */
static uint32_t
crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffff;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78 & (0u - (c & 1)));
	}
	return ~c;
}

/*
 * Spec 2.2.3: the checksum covers the whole header with the CRC32C value
 * zeroed. A match shows the file is HAProxy's bytes, unaltered.
 */
static int
crc_ok(const uint8_t *p, size_t header_len, size_t addr_len)
{
	uint8_t copy[PROXY_MAX_HEADER];
	size_t off = 16 + addr_len;

	if (header_len > sizeof(copy))
		return 0;
	memcpy(copy, p, header_len);
	while (off + 3 <= header_len) {
		size_t n = (size_t)p[off + 1] << 8 | p[off + 2];

		if (p[off] == 0x03 && n == 4 && off + 7 <= header_len) {
			uint32_t want = (uint32_t)p[off + 3] << 24 |
			    (uint32_t)p[off + 4] << 16 |
			    (uint32_t)p[off + 5] << 8 | p[off + 6];

			memset(copy + off + 3, 0, 4);
			return crc32c(copy, header_len) == want;
		}
		off += 3 + n;
	}
	return 0;
}

static void
test_captures(const char *srcdir)
{
	for (size_t i = 0; i < sizeof(captures) / sizeof(captures[0]); i++) {
		const struct capture *c = &captures[i];
		uint8_t buf[BUF_MAX];
		char path[2048], what[128];
		size_t n, plen = strlen(c->payload);
		struct vcase v;

		snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/proxy/%s",
		    srcdir, c->file);
		snprintf(what, sizeof(what), "haproxy %s", c->file);
		n = read_file(path, buf, sizeof(buf));
		if (!tap_is_int(n, c->header_len + plen, "%s: read, %zu bytes",
		    what, c->header_len + plen))
			continue;
		tap_ok(memcmp(buf + c->header_len, c->payload, plen) == 0,
		    "%s: the payload follows the header", what);
		v = (struct vcase){ what, buf, n, c->version, c->local, c->src,
		    c->dst, c->header_len };
		run_vcase(&v);
		if (c->version == 2 && !c->local) {
			size_t alen = buf[13] == 0x11 ? 12 : 36;
			char types[64];

			tlv_types(buf, c->header_len, alen, types,
			    sizeof(types));
			tap_is_str(str(types), c->tlvs, "%s: TLV types", what);
			if (strstr(c->tlvs, "03") != NULL)
				tap_ok(crc_ok(buf, c->header_len, alen),
				    "%s: CRC32C TLV matches", what);
		}
	}
}

/* ---- errors -------------------------------------------------------------- */

struct ecase {
	const char *what;
	const uint8_t *p;
	size_t n;
	size_t at;                      /* bytes needed to decide */
	const char *reason;
};

/*
 * Need_more before `at` bytes, then the same error for every length up to
 * the whole input, with nothing filled in.
 */
static void
run_ecase(const struct ecase *c)
{
	struct proxy_header h;
	const char *why;
	size_t bad_before = 0, bad_after = 0;
	enum proxy_status st;

	for (size_t i = 0; i < c->at && i <= c->n; i++)
		if (parse_n(c->p, i, &h, &why) != PROXY_NEED_MORE)
			bad_before++;
	for (size_t i = c->at; i <= c->n; i++) {
		st = parse_n(c->p, i, &h, &why);
		if (st != PROXY_ERROR || why == NULL ||
		    strcmp(why, c->reason) != 0 || !is_zero(&h, sizeof(h))) {
			if (bad_after++ == 0)
				tap_diag("  at %zu: %s \"%s\"", i,
				    proxy_status_str(st),
				    why != NULL ? why : "(null)");
		}
	}
	tap_ok(c->at <= c->n && bad_before == 0 && bad_after == 0,
	    "%s: \"%s\" from byte %zu on", c->what, c->reason, c->at);
}

#define E(what, lit, at, reason) { what, S(lit), at, reason }

static void
test_v1_errors(void)
{
	static char toolong[BUF_MAX], cr106[BUF_MAX], tcp4long[BUF_MAX];
	const struct ecase cases[] = {
		E("HTTP request", "GET / HTTP/1.1\r\n\r\n", 1,
		    "not a PROXY header"),
		E("TLS record", "\x16\x03\x01\x02\x00", 1, "not a PROXY header"),
		E("NUL byte", "\0", 1, "not a PROXY header"),
		E("lower-case proxy", "proxy TCP4", 1, "not a PROXY header"),
		E("PROXX", "PROXX TCP4", 5, "not a PROXY header"),
		E("PROXY then tab", "PROXY\tTCP4", 6, "not a PROXY header"),
		E("PROXY, two spaces", "PROXY  TCP4", 7, "bad v1 protocol"),
		E("TCP5", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 10,
		    "bad v1 protocol"),
		E("lower-case tcp4", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 7,
		    "bad v1 protocol"),
		E("UDP4", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", 8,
		    "bad v1 protocol"),
		E("TCP4 without its space", "PROXY TCP4\r\n", 11,
		    "bad v1 protocol"),
		E("UNKNOWNX", "PROXY UNKNOWNX\r\n", 14, "bad v1 protocol"),
		E("UNKNOWN then LF", "PROXY UNKNOWN\n", 14, "bad v1 protocol"),
		E("lone LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nGET", 31,
		    "bad v1 line ending"),
		E("CR CR LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", 32,
		    "bad v1 line ending"),
		E("CR then payload", "PROXY UNKNOWN\rGET", 15,
		    "bad v1 line ending"),
		E("LF inside UNKNOWN", "PROXY UNKNOWN x\ny\r\n", 16,
		    "bad v1 line ending"),
		E("no fields", "PROXY TCP4 \r\n", 13, "bad v1 field count"),
		E("three fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 30,
		    "bad v1 field count"),
		E("five fields", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", 34,
		    "bad v1 field count"),
		E("trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", 33,
		    "bad v1 field count"),
		E("double space", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", 33,
		    "bad v1 field count"),
		E("tab separator", "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2 3\r\n", 34,
		    "bad v1 address"),
		E("leading zero in IPv4", "PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",
		    33, "bad v1 address"),
		E("octet 256", "PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n", 34,
		    "bad v1 address"),
		E("three octets", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", 30,
		    "bad v1 address"),
		E("IPv6 in TCP4", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", 28,
		    "bad v1 address"),
		E("IPv4 in TCP6", "PROXY TCP6 ::1 5.6.7.8 1 2\r\n", 28,
		    "bad v1 address"),
		E("IPv6 zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", 33,
		    "bad v1 address"),
		E("two ::", "PROXY TCP6 1::2::3 ::1 1 2\r\n", 28,
		    "bad v1 address"),
		E("NUL in address", "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33,
		    "bad v1 address"),
		E("port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", 36,
		    "bad v1 port"),
		E("port 99999", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", 36,
		    "bad v1 port"),
		E("port 6 digits", "PROXY TCP4 1.2.3.4 5.6.7.8 000001 2\r\n",
		    37, "bad v1 port"),
		E("port leading zero", "PROXY TCP6 ::1 ::1 01 2\r\n", 25,
		    "bad v1 port"),
		E("port 00", "PROXY TCP6 ::1 ::1 1 00\r\n", 25, "bad v1 port"),
		E("port with sign", "PROXY TCP6 ::1 ::1 +1 2\r\n", 25,
		    "bad v1 port"),
		E("negative port", "PROXY TCP6 ::1 ::1 1 -2\r\n", 25,
		    "bad v1 port"),
		E("port in hex", "PROXY TCP6 ::1 ::1 0x1 2\r\n", 26,
		    "bad v1 port"),
	};
	struct ecase c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_ecase(&cases[i]);

	/* 107 bytes and still no CRLF. */
	snprintf(toolong, sizeof(toolong), "PROXY UNKNOWN %0*d", 200, 0);
	c = (struct ecase){ "UNKNOWN, no CRLF in 107 bytes",
	    (const uint8_t *)toolong, 150, 107, "v1 line too long" };
	run_ecase(&c);
	/* CRLF one byte too late: the CR is byte 107, the LF byte 108. */
	snprintf(cr106, sizeof(cr106), "PROXY UNKNOWN %0*d\r\n", 92, 0);
	c = (struct ecase){ "UNKNOWN, 108-byte line", (const uint8_t *)cr106,
	    strlen(cr106), 107, "v1 line too long" };
	run_ecase(&c);
	tap_is_int(strlen(cr106), 108, "the 108-byte line is 108 bytes");
	/* A TCP4 line made long with an absurd address. */
	snprintf(tcp4long, sizeof(tcp4long),
	    "PROXY TCP4 1.2.3.4%0*d 5.6.7.8 1 2\r\n", 100, 0);
	c = (struct ecase){ "TCP4, long address", (const uint8_t *)tcp4long,
	    strlen(tcp4long), 107, "v1 line too long" };
	run_ecase(&c);
}

static void
test_v2_errors(void)
{
	static struct bb b[24];
	struct ecase cases[24];
	size_t k = 0;

#define ADD(what_, at_, reason_) do { \
		cases[k] = (struct ecase){ what_, b[k].p, b[k].len, at_, \
		    reason_ }; \
		k++; \
	} while (0)

	/* Signature: wrong at byte 5, then at the last byte. */
	v2_head(&b[k], 0x21, 0x11, 12);
	b[k].p[4] = 0x01;
	v2_addr4(&b[k]);
	ADD("v2 signature, byte 5 wrong", 5, "not a PROXY header");
	v2_head(&b[k], 0x21, 0x11, 12);
	b[k].p[11] = 0x0B;
	v2_addr4(&b[k]);
	ADD("v2 signature, byte 12 wrong", 12, "not a PROXY header");
	b[k].len = 0;
	bb_bytes(&b[k], "\r\n\r\nGET", 7);
	ADD("CRLF CRLF then text", 5, "not a PROXY header");

	v2_head(&b[k], 0x11, 0x11, 12);
	v2_addr4(&b[k]);
	ADD("version 1 in a v2 signature", 13, "unsupported v2 version");
	v2_head(&b[k], 0x31, 0x11, 12);
	v2_addr4(&b[k]);
	ADD("version 3", 13, "unsupported v2 version");
	v2_head(&b[k], 0x01, 0x11, 12);
	v2_addr4(&b[k]);
	ADD("version 0", 13, "unsupported v2 version");
	v2_head(&b[k], 0x22, 0x11, 12);
	v2_addr4(&b[k]);
	ADD("command 2", 13, "unsupported v2 command");
	v2_head(&b[k], 0x2f, 0x00, 0);
	ADD("command 15", 13, "unsupported v2 command");

	v2_head(&b[k], 0x21, 0x12, 12);
	v2_addr4(&b[k]);
	ADD("PROXY UDP over IPv4", 14, "unsupported address family");
	v2_head(&b[k], 0x21, 0x22, 36);
	v2_addr6(&b[k]);
	ADD("PROXY UDP over IPv6", 14, "unsupported address family");
	v2_head(&b[k], 0x21, 0x31, 216);
	bb_fill(&b[k], 0, 216);
	ADD("PROXY UNIX stream", 14, "unsupported address family");
	v2_head(&b[k], 0x21, 0x32, 216);
	bb_fill(&b[k], 0, 216);
	ADD("PROXY UNIX datagram", 14, "unsupported address family");
	v2_head(&b[k], 0x21, 0x10, 12);
	v2_addr4(&b[k]);
	ADD("PROXY AF_INET, transport UNSPEC", 14,
	    "unsupported address family");
	v2_head(&b[k], 0x21, 0x41, 12);
	v2_addr4(&b[k]);
	ADD("PROXY family 4", 14, "unsupported address family");

	v2_head(&b[k], 0x21, 0x11, PROXY_MAX_HEADER - 16 + 1);
	v2_addr4(&b[k]);
	bb_fill(&b[k], 0, PROXY_MAX_HEADER - 16 + 1 - 12);
	ADD("block one byte over the limit", 16, "v2 header too long");
	v2_head(&b[k], 0x20, 0x00, 0xffff);
	ADD("LOCAL, length 65535", 16, "v2 header too long");

	v2_head(&b[k], 0x21, 0x11, 11);
	bb_fill(&b[k], 0, 11);
	ADD("TCP4, 11-byte block", 16, "v2 address block too short");
	v2_head(&b[k], 0x21, 0x11, 0);
	bb_str(&b[k], "GET /");
	ADD("TCP4, empty block", 16, "v2 address block too short");
	v2_head(&b[k], 0x21, 0x21, 35);
	bb_fill(&b[k], 0, 35);
	ADD("TCP6, 35-byte block", 16, "v2 address block too short");
	v2_head(&b[k], 0x21, 0x21, 12);
	v2_addr4(&b[k]);
	ADD("TCP6 with a TCP4-sized block", 16, "v2 address block too short");

	v2_head(&b[k], 0x21, 0x11, 12 + 3 + 4);
	v2_addr4(&b[k]);
	bb_bytes(&b[k], "\x04\x00\x05" "abcd", 7);
	bb_str(&b[k], "payload");       /* not part of the block */
	ADD("TLV one byte past the block", 35, "v2 TLV overruns the block");
	v2_head(&b[k], 0x21, 0x21, 36 + 5 + 2);
	v2_addr6(&b[k]);
	v2_tlv(&b[k], 0x01, "h2", 2);
	bb_bytes(&b[k], "\x04\x00", 2);
	ADD("two bytes of a TLV header left", 59, "v2 TLV overruns the block");
	v2_head(&b[k], 0x21, 0x11, 13);
	v2_addr4(&b[k]);
	bb_u8(&b[k], 0x04);
	ADD("one byte of a TLV header left", 29, "v2 TLV overruns the block");
	v2_head(&b[k], 0x21, 0x11, 12 + 3);
	v2_addr4(&b[k]);
	bb_bytes(&b[k], "\x20\xff\xff", 3);
	bb_fill(&b[k], 0, 600);
	ADD("TLV length 65535", 31, "v2 TLV overruns the block");
#undef ADD

	for (size_t i = 0; i < k; i++)
		run_ecase(&cases[i]);
}

/* ---- edges of the call itself ------------------------------------------- */

static void
test_call(void)
{
	static const char ok[] = "PROXY UNKNOWN\r\n";
	struct proxy_header h;
	const char *why = "poison";
	enum proxy_status st;

	memset(&h, 0xa5, sizeof(h));
	st = proxy_parse(NULL, 0, &h, &why);
	tap_ok(st == PROXY_NEED_MORE && why == NULL && is_zero(&h, sizeof(h)),
	    "NULL, 0: need_more, nothing filled");
	st = proxy_parse((const uint8_t *)"x", 0, &h, &why);
	tap_ok(st == PROXY_NEED_MORE && why == NULL,
	    "0 bytes: need_more, the byte beyond len unread");
	st = proxy_parse((const uint8_t *)"GET", 3, &h, NULL);
	tap_is_int(st, PROXY_ERROR, "reason may be NULL on error");
	st = proxy_parse((const uint8_t *)ok, sizeof(ok) - 1, &h, NULL);
	tap_is_int(st, PROXY_DONE, "reason may be NULL when done");

	tap_is_str(proxy_status_str(PROXY_NEED_MORE), "need_more",
	    "status string need_more");
	tap_is_str(proxy_status_str(PROXY_DONE), "done", "status string done");
	tap_is_str(proxy_status_str(PROXY_ERROR), "error",
	    "status string error");
	tap_is_str(proxy_status_str((enum proxy_status)42), "unknown",
	    "status string out of range");

	/* PROXY_MAX_HEADER bytes always decide, whatever they are. */
	{
		static uint8_t big[PROXY_MAX_HEADER];
		struct bb b;
		int all = 1;

		v2_head(&b, 0x20, 0x00, PROXY_MAX_HEADER - 16);
		memcpy(big, b.p, 16);
		st = parse_n(big, PROXY_MAX_HEADER, &h, &why);
		tap_ok(st == PROXY_DONE && h.header_len == PROXY_MAX_HEADER,
		    "v2 LOCAL of PROXY_MAX_HEADER bytes: done");
		memset(big, ' ', sizeof(big));
		memcpy(big, "PROXY UNKNOWN", 13);
		st = parse_n(big, PROXY_MAX_HEADER, &h, &why);
		all = st == PROXY_ERROR;
		memcpy(big, "PROXY TCP6 ", 11);
		st = parse_n(big, PROXY_MAX_HEADER, &h, &why);
		all = all && st == PROXY_ERROR;
		tap_ok(all, "v1 without CRLF in PROXY_MAX_HEADER bytes: error");
	}
}

/* Where the corpus is: $top_srcdir (make check), else from __FILE__. */
static void
find_srcdir(char *out, size_t cap)
{
	const char *env = getenv("top_srcdir");
	const char *file = __FILE__, *tail = "tests/unit/test_proxy.c";
	size_t n = strlen(file), t = strlen(tail);

	if (env != NULL && env[0] != '\0') {
		snprintf(out, cap, "%s", env);
	} else if (n >= t && strcmp(file + n - t, tail) == 0) {
		snprintf(out, cap, "%.*s", (int)(n - t), file);
		if (out[0] == '\0')
			snprintf(out, cap, ".");
	} else {
		snprintf(out, cap, ".");
	}
}

int
main(void)
{
	char srcdir[1024];

	find_srcdir(srcdir, sizeof(srcdir));
	test_call();
	test_v1_valid();
	test_v2_valid();
	test_sockaddr_layout();
	test_captures(srcdir);
	test_v1_errors();
	test_v2_errors();
	return tap_done();
}

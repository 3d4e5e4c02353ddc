/*
 * PROXY protocol header parser, versions 1 and 2 (HAProxy's
 * doc/proxy-protocol.txt, shipped by Debian's haproxy package as
 * /usr/share/doc/haproxy/proxy-protocol.txt.gz).
 *
 * Stateless, like sni/hello.c: the caller re-parses everything received so
 * far each time more arrives. Every check is made as soon as the bytes it
 * needs are there, always in the same order, so that a prefix of a valid
 * header only ever gets NEED_MORE, and a decision taken on a prefix is the
 * one every longer input gets (the gateway stops reading at the first one).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/proxy.h"

#define V1_MAX_LINE     107     /* CRLF included: "PROXY UNKNOWN" + worst case */
#define V2_HEADER       16
#define V2_MAX_BLOCK    (PROXY_MAX_HEADER - V2_HEADER)

#define V2_VERSION      0x2
#define V2_CMD_LOCAL    0x0
#define V2_CMD_PROXY    0x1
#define V2_FAM_UNSPEC   0x00
#define V2_FAM_TCP4     0x11
#define V2_FAM_TCP6     0x21
#define V2_ADDR_TCP4    (2 * 4 + 2 * 2)
#define V2_ADDR_TCP6    (2 * 16 + 2 * 2)

static const uint8_t v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};
static const char v1_sig[] = "PROXY ";

/* Reasons: short, static, stable (logs and tests compare them). */
#define R_NOT_PROXY     "not a PROXY header"
#define R_V1_TOO_LONG   "v1 line too long"
#define R_V1_PROTO      "bad v1 protocol"
#define R_V1_EOL        "bad v1 line ending"
#define R_V1_FIELDS     "bad v1 field count"
#define R_V1_ADDR       "bad v1 address"
#define R_V1_PORT       "bad v1 port"
#define R_V2_VERSION    "unsupported v2 version"
#define R_V2_COMMAND    "unsupported v2 command"
#define R_V2_FAMILY     "unsupported address family"
#define R_V2_TOO_LONG   "v2 header too long"
#define R_V2_SHORT      "v2 address block too short"
#define R_V2_TLV        "v2 TLV overruns the block"

#include "sni/cursor.h"


/*
 * Compare what has arrived of a fixed prefix: 1 when all of it is there and
 * matches, 0 when what is there matches but some is missing, -1 on the first
 * byte that differs.
 */
static int
match_prefix(const uint8_t *buf, size_t len, const void *want, size_t n)
{
	size_t have = len < n ? len : n;

	if (memcmp(buf, want, have) != 0)
		return -1;
	return have == n ? 1 : 0;
}

/* ---- version 1 ---------------------------------------------------------- */

static void
set_in(struct sockaddr_storage *ss, const struct in_addr *a, uint16_t port_be)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr = *a;
	sin.sin_port = port_be;
	memcpy(ss, &sin, sizeof(sin));
}

static void
set_in6(struct sockaddr_storage *ss, const struct in6_addr *a,
    uint16_t port_be)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = *a;
	sin6.sin6_port = port_be;
	memcpy(ss, &sin6, sizeof(sin6));
}

/*
 * An address field in the family's text form, as inet_pton reads it: IPv4
 * is exactly four dotted decimals without leading zeroes (glibc refuses
 * "01"), IPv6 the usual colon-hex with at most one "::". The field is
 * copied to be NUL-terminated; anything longer than the longest address
 * cannot be one.
 */
static int
v1_addr(int af, const uint8_t *p, size_t n, void *addr)
{
	char s[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(s) || memchr(p, '\0', n) != NULL)
		return -1;
	memcpy(s, p, n);
	s[n] = '\0';
	return inet_pton(af, s, addr) == 1 ? 0 : -1;
}

/* A port: decimal 0..65535, no sign, no leading zero (spec section 2.1). */
static int
v1_port(const uint8_t *p, size_t n, uint16_t *port_be)
{
	unsigned long v = 0;

	if (n == 0 || n > 5 || (n > 1 && p[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port_be = htons((uint16_t)v);
	return 0;
}

/*
 * Version 1 (spec section 2.1): one line of US-ASCII, at most 107 bytes
 * with its CRLF, single spaces between fields:
 *
 *   "PROXY" SP "TCP4" SP src4 SP dst4 SP sport SP dport CRLF
 *   "PROXY" SP "TCP6" SP src6 SP dst6 SP sport SP dport CRLF
 *   "PROXY" SP "UNKNOWN" [SP anything but CR or LF] CRLF
 *
 * Checked in this order, each as soon as its bytes have arrived:
 *   1. "PROXY " (the caller has seen the 'P');
 *   2. the protocol word, against "TCP4 ", "TCP6 " and "UNKNOWN" followed
 *      by SP or CR: junk such as "PROXY HTTP" fails here, without waiting
 *      for a line end that may never come;
 *   3. the line end: the first CR must be followed by LF, a lone LF is an
 *      error ("must not tolerate a single CR or LF"), and no CRLF within
 *      107 bytes is "too long";
 *   4. the fields of the complete line (the spec says to wait for the CRLF
 *      before decoding addresses): exactly four, then each in turn.
 * No check of one step can be failed by a byte that a later step reads, so
 * an early decision is the one the whole line gets.
 */
static const char *const v1_words[] = { "TCP4 ", "TCP6 ", "UNKNOWN" };
#define V1_UNKNOWN 2

/* Step 2: *which, an index into v1_words (DONE), NEED_MORE or ERROR. */
static enum proxy_status
v1_word(const uint8_t *buf, size_t len, int *which, const char **reason)
{
	const uint8_t *w = buf + sizeof(v1_sig) - 1;
	size_t wlen = len - (sizeof(v1_sig) - 1), at;
	int rc;

	*which = -1;
	for (size_t i = 0; i < sizeof(v1_words) / sizeof(v1_words[0]); i++) {
		rc = match_prefix(w, wlen, v1_words[i], strlen(v1_words[i]));
		if (rc == 1) {
			*which = (int)i;
			break;
		}
		if (rc == 0)
			return PROXY_NEED_MORE;
	}
	if (*which == -1) {
		*reason = R_V1_PROTO;
		return PROXY_ERROR;
	}
	if (*which == V1_UNKNOWN) {
		at = sizeof(v1_sig) - 1 + strlen(v1_words[V1_UNKNOWN]);
		if (len == at)
			return PROXY_NEED_MORE;
		if (buf[at] != ' ' && buf[at] != '\r') {
			*reason = R_V1_PROTO;
			return PROXY_ERROR;
		}
	}
	return PROXY_DONE;
}

/* Step 3: *eol, the CR of the line's CRLF (DONE), NEED_MORE or ERROR. */
static enum proxy_status
v1_eol(const uint8_t *buf, size_t len, size_t *eol, const char **reason)
{
	size_t scan = len < V1_MAX_LINE ? len : V1_MAX_LINE;

	for (size_t i = 0; i < scan; i++) {
		if (buf[i] == '\n') {
			*reason = R_V1_EOL;
			return PROXY_ERROR;
		}
		if (buf[i] != '\r')
			continue;
		if (i + 2 > V1_MAX_LINE) {
			*reason = R_V1_TOO_LONG;
			return PROXY_ERROR;
		}
		if (i + 1 == len)
			return PROXY_NEED_MORE;
		if (buf[i + 1] != '\n') {
			*reason = R_V1_EOL;
			return PROXY_ERROR;
		}
		*eol = i;
		return PROXY_DONE;
	}
	if (len >= V1_MAX_LINE) {
		*reason = R_V1_TOO_LONG;
		return PROXY_ERROR;
	}
	return PROXY_NEED_MORE;
}

/* Step 4: exactly four fields separated by single spaces. 0, or -1. */
static int
v1_fields(const uint8_t *p, size_t len, const uint8_t *f[4], size_t flen[4])
{
	struct cur line;
	size_t nf = 0;

	cur_init(&line, p, len);
	for (;;) {
		const uint8_t *sp = memchr(line.p, ' ', line.len);
		size_t n = sp == NULL ? line.len : (size_t)(sp - line.p);

		if (nf == 4)    /* a fifth field, if only an empty one */
			return -1;
		f[nf] = line.p;
		flen[nf] = n;
		nf++;
		(void)cur_skip(&line, n);
		if (sp == NULL)
			break;
		(void)cur_skip(&line, 1);
	}
	return nf == 4 ? 0 : -1;
}

/* Step 4, each field in turn: the addresses and ports into h. */
static enum proxy_status
v1_endpoints(int af, const uint8_t *const f[4], const size_t flen[4],
    struct proxy_header *h, const char **reason)
{
	union { struct in_addr a4; struct in6_addr a6; } s, d;
	uint16_t sp, dp;

	if (v1_addr(af, f[0], flen[0], &s) == -1 ||
	    v1_addr(af, f[1], flen[1], &d) == -1) {
		*reason = R_V1_ADDR;
		return PROXY_ERROR;
	}
	if (v1_port(f[2], flen[2], &sp) == -1 ||
	    v1_port(f[3], flen[3], &dp) == -1) {
		*reason = R_V1_PORT;
		return PROXY_ERROR;
	}
	if (af == AF_INET) {
		set_in(&h->src, &s.a4, sp);
		set_in(&h->dst, &d.a4, dp);
	} else {
		set_in6(&h->src, &s.a6, sp);
		set_in6(&h->dst, &d.a6, dp);
	}
	return PROXY_DONE;
}

static enum proxy_status
parse_v1(const uint8_t *buf, size_t len, struct proxy_header *h,
    const char **reason)
{
	enum proxy_status st;
	const uint8_t *f[4];
	size_t flen[4], eol = 0, at;
	int rc, which;

	/* 1. "PROXY ". */
	rc = match_prefix(buf, len, v1_sig, sizeof(v1_sig) - 1);
	if (rc == -1) {
		*reason = R_NOT_PROXY;
		return PROXY_ERROR;
	}
	if (rc == 0)
		return PROXY_NEED_MORE;
	if ((st = v1_word(buf, len, &which, reason)) != PROXY_DONE ||
	    (st = v1_eol(buf, len, &eol, reason)) != PROXY_DONE)
		return st;
	h->version = 1;
	h->header_len = eol + 2;
	if (which == V1_UNKNOWN) {
		/* "the receiver must ignore anything presented before the CRLF" */
		h->local = 1;
		return PROXY_DONE;
	}
	at = sizeof(v1_sig) - 1 + strlen(v1_words[which]);
	if (v1_fields(buf + at, eol - at, f, flen) != 0) {
		*reason = R_V1_FIELDS;
		return PROXY_ERROR;
	}
	return v1_endpoints(which == 0 ? AF_INET : AF_INET6, f, flen, h, reason);
}

/* ---- version 2 ---------------------------------------------------------- */

/*
 * TLVs after the addresses (spec section 2.2), to the end of the block:
 *
 *   u8   type
 *   u16  length
 *   length bytes of value
 *
 * None is used here, but each must fit: a TLV header or value running past
 * the block means the sender and we disagree on the layout.
 */
static int
v2_tlvs(struct cur *c)
{
	while (c->len > 0) {
		uint8_t type;
		uint16_t n;

		if (cur_u8(c, &type) == -1 || cur_u16(c, &n) == -1 ||
		    cur_skip(c, n) == -1)
			return -1;
	}
	return 0;
}

/*
 * Version 2 (spec section 2.2), all integers big endian:
 *
 *   12   signature 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
 *   u8   ver_cmd: version (high nibble, must be 2), command (low nibble:
 *        0 LOCAL, 1 PROXY, anything else refused)
 *   u8   fam: address family (high nibble) and transport (low nibble)
 *   u16  len: bytes of address block that follow; header = 16 + len
 *   len  bytes: for PROXY with
 *          0x11 TCP over IPv4: src(4) dst(4) sport(2) dport(2)   = 12
 *          0x21 TCP over IPv6: src(16) dst(16) sport(2) dport(2) = 36
 *          0x00 UNSPEC: address information to be ignored (local)
 *        then TLVs to the end of the block.
 *
 * LOCAL (health checks from the proxy itself) keeps the socket's own
 * addresses: its block, family included, is discarded as the spec says.
 * PROXY over UDP or UNIX, or with an undefined family, is refused: this
 * is a TCP gateway. len above V2_MAX_BLOCK is refused from the 16-byte
 * header alone, and so is a block shorter than its family's addresses.
 */
static enum proxy_status
parse_v2(const uint8_t *buf, size_t len, struct proxy_header *h,
    const char **reason)
{
	struct cur c, blk;
	uint8_t ver_cmd, fam;
	uint16_t blen;
	int rc;

	rc = match_prefix(buf, len, v2_sig, sizeof(v2_sig));
	if (rc == -1) {
		*reason = R_NOT_PROXY;
		return PROXY_ERROR;
	}
	if (rc == 0)
		return PROXY_NEED_MORE;
	cur_init(&c, buf + sizeof(v2_sig), len - sizeof(v2_sig));

	if (cur_u8(&c, &ver_cmd) == -1)
		return PROXY_NEED_MORE;
	if (ver_cmd >> 4 != V2_VERSION) {
		*reason = R_V2_VERSION;
		return PROXY_ERROR;
	}
	if ((ver_cmd & 0x0f) != V2_CMD_LOCAL &&
	    (ver_cmd & 0x0f) != V2_CMD_PROXY) {
		*reason = R_V2_COMMAND;
		return PROXY_ERROR;
	}
	if (cur_u8(&c, &fam) == -1)
		return PROXY_NEED_MORE;
	if ((ver_cmd & 0x0f) == V2_CMD_PROXY && fam != V2_FAM_UNSPEC &&
	    fam != V2_FAM_TCP4 && fam != V2_FAM_TCP6) {
		*reason = R_V2_FAMILY;
		return PROXY_ERROR;
	}
	if (cur_u16(&c, &blen) == -1)
		return PROXY_NEED_MORE;
	if (blen > V2_MAX_BLOCK) {
		*reason = R_V2_TOO_LONG;
		return PROXY_ERROR;
	}
	if ((ver_cmd & 0x0f) == V2_CMD_PROXY &&
	    ((fam == V2_FAM_TCP4 && blen < V2_ADDR_TCP4) ||
	    (fam == V2_FAM_TCP6 && blen < V2_ADDR_TCP6))) {
		*reason = R_V2_SHORT;
		return PROXY_ERROR;
	}
	/* "The receiver must not start to parse an address before the whole
	 * address block is received." */
	if (cur_bytes(&c, blen, &blk.p) == -1)
		return PROXY_NEED_MORE;
	blk.len = blen;

	h->version = 2;
	h->header_len = V2_HEADER + (size_t)blen;
	if ((ver_cmd & 0x0f) == V2_CMD_LOCAL || fam == V2_FAM_UNSPEC) {
		h->local = 1;
		return PROXY_DONE;
	}
	if (fam == V2_FAM_TCP4) {
		struct in_addr s, d;
		const uint8_t *p;
		uint16_t sp, dp;

		if (cur_bytes(&blk, 4, &p) == -1)
			goto short_block;       /* cannot happen: checked above */
		memcpy(&s, p, 4);
		if (cur_bytes(&blk, 4, &p) == -1)
			goto short_block;
		memcpy(&d, p, 4);
		if (cur_u16(&blk, &sp) == -1 || cur_u16(&blk, &dp) == -1)
			goto short_block;
		set_in(&h->src, &s, htons(sp));
		set_in(&h->dst, &d, htons(dp));
	} else {
		struct in6_addr s, d;
		const uint8_t *p;
		uint16_t sp, dp;

		if (cur_bytes(&blk, 16, &p) == -1)
			goto short_block;
		memcpy(&s, p, 16);
		if (cur_bytes(&blk, 16, &p) == -1)
			goto short_block;
		memcpy(&d, p, 16);
		if (cur_u16(&blk, &sp) == -1 || cur_u16(&blk, &dp) == -1)
			goto short_block;
		set_in6(&h->src, &s, htons(sp));
		set_in6(&h->dst, &d, htons(dp));
	}
	if (v2_tlvs(&blk) == -1) {
		*reason = R_V2_TLV;
		return PROXY_ERROR;
	}
	return PROXY_DONE;

short_block:
	*reason = R_V2_SHORT;
	return PROXY_ERROR;
}

/* ---- entry point -------------------------------------------------------- */

enum proxy_status
proxy_parse(const uint8_t *buf, size_t len, struct proxy_header *out,
    const char **reason)
{
	struct proxy_header h;
	const char *why = NULL;
	enum proxy_status st;

	memset(&h, 0, sizeof(h));
	if (buf == NULL || len == 0)
		st = PROXY_NEED_MORE;
	else if (buf[0] == v1_sig[0])
		st = parse_v1(buf, len, &h, &why);
	else if (buf[0] == v2_sig[0])
		st = parse_v2(buf, len, &h, &why);
	else {
		why = R_NOT_PROXY;
		st = PROXY_ERROR;
	}

	if (st == PROXY_DONE)
		*out = h;
	else
		memset(out, 0, sizeof(*out));
	if (reason != NULL)
		*reason = st == PROXY_ERROR ? why : NULL;
	return st;
}

const char *
proxy_status_str(enum proxy_status s)
{
	switch (s) {
	case PROXY_NEED_MORE:
		return "need_more";
	case PROXY_DONE:
		return "done";
	case PROXY_ERROR:
		return "error";
	}
	return "unknown";
}

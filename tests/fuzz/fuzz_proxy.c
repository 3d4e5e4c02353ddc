/*
 * libFuzzer target for proxy_parse. Beyond "does not crash", it checks the
 * properties the gateway relies on, with abort() so both libFuzzer and the
 * make-check replay notice:
 *
 *  - the outcome is monotone in the input length: every prefix up to some
 *    point gives NEED_MORE, and from there on every longer prefix gives the
 *    same decision (the same header for DONE, the same reason for ERROR);
 *    DONE is first given exactly at header_len, and PROXY_MAX_HEADER bytes
 *    always decide;
 *  - each prefix is parsed from the end of a heap block, so a read past
 *    len is an AddressSanitizer report, not a silent success;
 *  - NEED_MORE and ERROR fill in nothing; ERROR gives a short reason and
 *    nothing else gives one;
 *  - DONE is self-consistent: header_len within the input and the limits,
 *    a v1 header ends in CRLF, a v2 one is 16 + its length field, a local
 *    header has no addresses, others have two of one family (the v1 word
 *    or the v2 family byte says which);
 *  - the addresses of a non-local DONE, written out again as a v1 line and
 *    as a v2 header, parse back to the same addresses.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"
#include "tests/unit/testbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

/*
 * Parse the first n bytes of data from the end of buf (cap bytes, heap):
 * the byte after the last one is the allocation's redzone, so a read past
 * len is an AddressSanitizer report even for a prefix. One allocation per
 * input keeps the every-prefix loop fast.
 */
static enum proxy_status
parse_tail(uint8_t *buf, size_t cap, const uint8_t *data, size_t n,
    struct proxy_header *h, const char **reason)
{
	uint8_t *p = buf + (cap - n);

	if (n > 0)
		memcpy(p, data, n);
	/* Poison what the parser must not use. */
	memset(h, 0xa5, sizeof(*h));
	*reason = (const char *)h;
	return proxy_parse(p, n, h, reason);
}

static void
check_one(const uint8_t *buf, size_t len, enum proxy_status st,
    const struct proxy_header *h, const char *reason)
{
	switch (st) {
	case PROXY_NEED_MORE:
		check(reason == NULL && is_zero(h, sizeof(*h)));
		check(len < PROXY_MAX_HEADER);
		break;
	case PROXY_ERROR:
		check(reason != NULL && reason[0] != '\0' &&
		    strlen(reason) < 64);
		check(is_zero(h, sizeof(*h)));
		break;
	case PROXY_DONE:
		check(reason == NULL);
		check(h->header_len <= len && h->header_len <= PROXY_MAX_HEADER);
		if (h->version == 1) {
			check(buf[0] == 'P');
			check(h->header_len >= 15 && h->header_len <= 107);
			check(buf[h->header_len - 2] == '\r' &&
			    buf[h->header_len - 1] == '\n');
			check(memchr(buf, '\r', h->header_len - 2) == NULL &&
			    memchr(buf, '\n', h->header_len - 2) == NULL);
		} else {
			check(h->version == 2);
			check(h->header_len >= 16 && buf[0] == 0x0D);
			check(h->header_len == 16 + ((size_t)buf[14] << 8 | buf[15]));
		}
		check(h->local == 0 || h->local == 1);
		if (h->local) {
			check(is_zero(&h->src, sizeof(h->src)) &&
			    is_zero(&h->dst, sizeof(h->dst)));
			break;
		}
		check(h->src.ss_family == h->dst.ss_family);
		if (h->version == 1)
			check(h->src.ss_family == (buf[9] == '4' ? AF_INET : AF_INET6));
		else
			check(h->src.ss_family == (buf[13] == 0x11 ? AF_INET : AF_INET6));
		break;
	default:
		abort();
	}
}

/* Write the addresses back out as both versions; both must read the same. */
static void
check_rewrite(const struct proxy_header *h)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], line[128];
	uint8_t v2[16 + 36];
	struct proxy_header r;
	const char *why;
	size_t n;
	int w;

	if (h->src.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&h->src;
		const struct sockaddr_in *b = (const void *)&h->dst;

		check(inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s)) != NULL);
		check(inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d)) != NULL);
		w = snprintf(line, sizeof(line), "PROXY TCP4 %s %s %u %u\r\n",
		    s, d, ntohs(a->sin_port), ntohs(b->sin_port));
		memcpy(v2 + 16, &a->sin_addr, 4);
		memcpy(v2 + 20, &b->sin_addr, 4);
		memcpy(v2 + 24, &a->sin_port, 2);
		memcpy(v2 + 26, &b->sin_port, 2);
		v2[13] = 0x11;
		n = 12;
	} else {
		const struct sockaddr_in6 *a = (const void *)&h->src;
		const struct sockaddr_in6 *b = (const void *)&h->dst;

		check(inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof(s)) != NULL);
		check(inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof(d)) != NULL);
		w = snprintf(line, sizeof(line), "PROXY TCP6 %s %s %u %u\r\n",
		    s, d, ntohs(a->sin6_port), ntohs(b->sin6_port));
		memcpy(v2 + 16, &a->sin6_addr, 16);
		memcpy(v2 + 32, &b->sin6_addr, 16);
		memcpy(v2 + 48, &a->sin6_port, 2);
		memcpy(v2 + 50, &b->sin6_port, 2);
		v2[13] = 0x21;
		n = 36;
	}
	check(w > 0 && (size_t)w < sizeof(line));
	check(proxy_parse((const uint8_t *)line, (size_t)w, &r, &why) ==
	    PROXY_DONE);
	check(r.version == 1 && r.header_len == (size_t)w && !r.local);
	check(memcmp(&r.src, &h->src, sizeof(r.src)) == 0 &&
	    memcmp(&r.dst, &h->dst, sizeof(r.dst)) == 0);

	memcpy(v2, "\r\n\r\n\0\r\nQUIT\n", 12);
	v2[12] = 0x21;
	v2[14] = 0;
	v2[15] = (uint8_t)n;
	check(proxy_parse(v2, 16 + n, &r, &why) == PROXY_DONE);
	check(r.version == 2 && r.header_len == 16 + n && !r.local);
	check(memcmp(&r.src, &h->src, sizeof(r.src)) == 0 &&
	    memcmp(&r.dst, &h->dst, sizeof(r.dst)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header whole, h;
	const char *wr, *r;
	enum proxy_status ws, st;
	size_t upto, decided_at = SIZE_MAX;
	uint8_t *buf;

	/* Past PROXY_MAX_HEADER + 1 the answer cannot change: stop there. */
	upto = size < PROXY_MAX_HEADER + 1 ? size : PROXY_MAX_HEADER + 1;
	buf = malloc(upto > 0 ? upto : 1);
	check(buf != NULL);

	/* The whole input: libFuzzer's data is exactly size bytes. */
	memset(&whole, 0xa5, sizeof(whole));
	wr = (const char *)&whole;
	ws = proxy_parse(data, size, &whole, &wr);
	check_one(data, size, ws, &whole, wr);

	for (size_t n = 0; n <= upto; n++) {
		st = parse_tail(buf, upto, data, n, &h, &r);
		check_one(data, n, st, &h, r);
		if (st == PROXY_NEED_MORE) {
			/* Nothing decided yet, and no going back after. */
			check(decided_at == SIZE_MAX);
			continue;
		}
		if (decided_at == SIZE_MAX)
			decided_at = n;
		check(st == ws);
		if (st == PROXY_ERROR)
			check(strcmp(r, wr) == 0);
		else
			check(memcmp(&h, &whole, sizeof(h)) == 0);
	}
	free(buf);
	if (ws == PROXY_NEED_MORE)
		check(size < PROXY_MAX_HEADER);
	else
		check(decided_at <= PROXY_MAX_HEADER);
	if (ws == PROXY_DONE) {
		check(decided_at == whole.header_len);
		if (!whole.local)
			check_rewrite(&whole);
	}
	return 0;
}

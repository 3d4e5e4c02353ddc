/*
 * libFuzzer target for http_parse_request. Beyond "does not crash", it
 * checks the properties the gateway relies on, with abort() so both
 * libFuzzer and the make-check replay notice:
 *
 *  - the outcome is monotone in the input length: prefixes give NEED_MORE
 *    up to some point, and from there on every longer prefix gives the same
 *    decision (the same request for DONE, the same reason for ERROR); DONE
 *    is first given exactly at head_len; HTTP_HEAD_MAX bytes always decide.
 *    Every prefix is tried up to PREFIX_ALL bytes, then a sample of them
 *    and the lengths where the answer must change;
 *  - each prefix is parsed from the end of a heap block, so a read past
 *    len is an AddressSanitizer report, not a silent success;
 *  - NEED_MORE and ERROR fill in nothing; ERROR gives a short reason and
 *    nothing else gives one;
 *  - DONE is self-consistent: head_len within the input and the limit, the
 *    head ends in CRLF CRLF, holds no NUL and no LF without its CR; the
 *    method and target views lie inside the head and match their grammar;
 *    host is NUL-terminated, "" without has_host, a name that
 *    sni_name_normalize() leaves unchanged, or an IP literal that
 *    inet_pton() reads back; CONNECT always has a port; Content-Length and
 *    chunked never come together;
 *  - the host and port, written out again as a Host header of a fresh
 *    request, parse back to the same host, port and host_is_ip.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "tests/unit/testbuf.h"
#include "sni/sni.h"

#define PREFIX_ALL 256
#define STRIDE     251

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

static int
inside(const void *v, size_t n, const uint8_t *buf, size_t len)
{
	const uint8_t *p = v;

	return p >= buf && n <= len && p + n <= buf + len;
}

static void
check_host(const struct http_request *r)
{
	char norm[SNI_NAME_MAX + 1];
	uint8_t addr[16];

	check(memchr(r->host, '\0', sizeof(r->host)) != NULL);
	if (!r->has_host) {
		check(r->host[0] == '\0' && r->port == 0 && !r->host_is_ip);
		return;
	}
	check(r->host[0] != '\0');
	if (r->host_is_ip) {
		check(inet_pton(AF_INET, r->host, addr) == 1 ||
		    inet_pton(AF_INET6, r->host, addr) == 1);
	} else {
		check(sni_name_normalize((const uint8_t *)r->host,
		    strlen(r->host), norm) == 0);
		check(strcmp(norm, r->host) == 0);
	}
}

static void
check_one(const uint8_t *buf, size_t len, enum http_status st,
    const struct http_request *r, const char *reason)
{
	switch (st) {
	case HTTP_NEED_MORE:
		check(reason == NULL && is_zero(r, sizeof(*r)));
		check(len < HTTP_HEAD_MAX);
		break;
	case HTTP_ERROR:
		check(reason != NULL && reason[0] != '\0' && strlen(reason) < 64);
		check(is_zero(r, sizeof(*r)));
		break;
	case HTTP_DONE:
		check(reason == NULL);
		check(r->head_len <= len && r->head_len <= HTTP_HEAD_MAX);
		check(r->head_len >= 16);       /* "M / HTTP/1.0\r\n\r\n" */
		check(memcmp(buf + r->head_len - 4, "\r\n\r\n", 4) == 0);
		check(memchr(buf, '\0', r->head_len) == NULL);
		for (size_t i = 0; i < r->head_len; i++)
			if (buf[i] == '\n')
				check(i > 0 && buf[i - 1] == '\r');
		check(r->method == (const char *)buf && r->method_len > 0);
		check(inside(r->target, r->target_len, buf, r->head_len));
		check(r->target == r->method + r->method_len + 1);
		check(r->target_len > 0);
		check(memchr(r->target, ' ', r->target_len) == NULL);
		check(memchr(r->target, '#', r->target_len) == NULL);
		check(r->version_minor == 0 || r->version_minor == 1);
		check(r->form <= HTTP_ASTERISK && r->scheme <= HTTP_SCHEME_HTTPS);
		check((r->form == HTTP_ABSOLUTE) == (r->scheme != HTTP_SCHEME_NONE));
		if (r->form == HTTP_AUTHORITY)
			check(r->has_host && r->port != 0 && r->method_len == 7 &&
			    memcmp(r->method, "CONNECT", 7) == 0);
		if (r->form == HTTP_ABSOLUTE)
			check(r->has_host);
		if (r->form == HTTP_ASTERISK)
			check(r->target_len == 1 && r->target[0] == '*');
		if (r->form == HTTP_ORIGIN)
			check(r->target[0] == '/');
		if (r->version_minor == 1 &&
		    (r->form == HTTP_ORIGIN || r->form == HTTP_ASTERISK))
			check(r->has_host);
		check_host(r);
		check(r->content_length >= -1);
		check(!(r->chunked && r->content_length != -1));
		check(!(r->chunked && r->version_minor == 0));
		check((r->chunked | r->connection_close | r->expect_continue |
		    r->upgrade) <= 1);
		break;
	default:
		abort();
	}
}

static enum http_status
parse_tail(uint8_t *buf, size_t cap, const uint8_t *data, size_t n,
    struct http_request *r, const char **reason, const uint8_t **at)
{
	uint8_t *p = buf + (cap - n);

	if (n > 0)
		memcpy(p, data, n);
	memset(r, 0xa5, sizeof(*r));
	*reason = (const char *)r;
	*at = p;
	return http_parse_request(p, n, r, reason);
}

/* The views of r, rebased from the buffer at `from` onto `to`. */
static void
rebase(struct http_request *r, const uint8_t *from, const uint8_t *to)
{
	r->method = (const char *)to + ((const uint8_t *)r->method - from);
	r->target = (const char *)to + ((const uint8_t *)r->target - from);
}

static void
check_rewrite(const struct http_request *w)
{
	char line[400];
	struct http_request r;
	const char *why;
	int n;

	if (!w->has_host)
		return;
	if (w->port != 0)
		n = snprintf(line, sizeof(line),
		    strchr(w->host, ':') ? "GET / HTTP/1.1\r\nHost: [%s]:%u\r\n\r\n" :
		    "GET / HTTP/1.1\r\nHost: %s:%u\r\n\r\n", w->host, w->port);
	else
		n = snprintf(line, sizeof(line),
		    strchr(w->host, ':') ? "GET / HTTP/1.1\r\nHost: [%s]\r\n\r\n" :
		    "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", w->host);
	check(n > 0 && (size_t)n < sizeof(line));
	check(http_parse_request((const uint8_t *)line, (size_t)n, &r, &why) ==
	    HTTP_DONE);
	check(r.has_host && strcmp(r.host, w->host) == 0 && r.port == w->port &&
	    r.host_is_ip == w->host_is_ip && r.head_len == (size_t)n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request whole, r;
	const char *wr, *why;
	const uint8_t *at;
	enum http_status ws, st, prev = HTTP_NEED_MORE;
	size_t upto, n, last_need = 0, first_decided = SIZE_MAX;
	uint8_t *buf;

	upto = size < HTTP_HEAD_MAX + 1 ? size : HTTP_HEAD_MAX + 1;
	buf = malloc(upto > 0 ? upto : 1);
	check(buf != NULL);

	memset(&whole, 0xa5, sizeof(whole));
	wr = (const char *)&whole;
	ws = http_parse_request(data, size, &whole, &wr);
	check_one(data, size, ws, &whole, wr);

	for (n = 0; n <= upto; n = n < PREFIX_ALL ? n + 1 : n + STRIDE) {
		st = parse_tail(buf, upto, data, n, &r, &why, &at);
		check_one(at, n, st, &r, why);
		if (st == HTTP_NEED_MORE) {
			check(prev == HTTP_NEED_MORE);
			last_need = n;
			continue;
		}
		if (first_decided == SIZE_MAX)
			first_decided = n;
		prev = st;
		check(st == ws);
		if (st == HTTP_ERROR) {
			check(strcmp(why, wr) == 0);
		} else {
			rebase(&r, at, data);
			check(memcmp(&r, &whole, sizeof(r)) == 0);
		}
	}
	(void)last_need;
	if (ws == HTTP_NEED_MORE)
		check(size < HTTP_HEAD_MAX);
	if (ws == HTTP_DONE) {
		/* DONE first at exactly head_len. */
		st = parse_tail(buf, upto, data, whole.head_len - 1, &r, &why, &at);
		check(st == HTTP_NEED_MORE);
		st = parse_tail(buf, upto, data, whole.head_len, &r, &why, &at);
		check(st == HTTP_DONE);
		rebase(&r, at, data);
		check(memcmp(&r, &whole, sizeof(r)) == 0);
		check_rewrite(&whole);
	}
	if (ws == HTTP_ERROR && size >= HTTP_HEAD_MAX) {
		st = parse_tail(buf, upto, data, HTTP_HEAD_MAX, &r, &why, &at);
		check(st == HTTP_ERROR && strcmp(why, wr) == 0);
	}
	free(buf);
	return 0;
}

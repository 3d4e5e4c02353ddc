/*
 * libFuzzer target for http_parse_response. Beyond "does not crash", it
 * checks the properties the gateway relies on, with abort() so both
 * libFuzzer and the make-check replay notice:
 *
 *  - the outcome is monotone in the input length (every prefix up to
 *    PREFIX_ALL bytes, then a sample): NEED_MORE up to some point, then the
 *    same decision for every longer prefix (the same response for DONE,
 *    the same reason for ERROR); DONE first at exactly head_len;
 *    HTTP_HEAD_MAX bytes always decide;
 *  - each prefix is parsed from the end of a heap block, so a read past
 *    len is an AddressSanitizer report;
 *  - NEED_MORE and ERROR fill in nothing; ERROR gives a short reason and
 *    nothing else gives one;
 *  - DONE is self-consistent: head_len within the input and the limit, the
 *    head starts "HTTP/1.", ends in CRLF CRLF, holds no NUL and no LF
 *    without its CR; the status is 100..599 and is the three digits at
 *    offset 9; Location is NULL or a view inside the head with no CR, LF
 *    or NUL and no surrounding whitespace; Content-Length and chunked
 *    never come together.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "tests/unit/testbuf.h"

#define PREFIX_ALL 256
#define STRIDE     251

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

static void
check_one(const uint8_t *buf, size_t len, enum http_status st,
    const struct http_response *r, const char *reason)
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
		check(r->head_len >= 16);       /* "HTTP/1.1 200\r\n\r\n" */
		check(memcmp(buf, "HTTP/1.", 7) == 0);
		check(memcmp(buf + r->head_len - 4, "\r\n\r\n", 4) == 0);
		check(memchr(buf, '\0', r->head_len) == NULL);
		for (size_t i = 0; i < r->head_len; i++)
			if (buf[i] == '\n')
				check(i > 0 && buf[i - 1] == '\r');
		check(r->version_minor == buf[7] - '0');
		check(r->version_minor == 0 || r->version_minor == 1);
		check(r->status >= 100 && r->status <= 599);
		check(r->status == (buf[9] - '0') * 100 + (buf[10] - '0') * 10 +
		    (buf[11] - '0'));
		if (r->location == NULL) {
			check(r->location_len == 0);
		} else {
			const uint8_t *l = (const uint8_t *)r->location;

			check(l > buf && l + r->location_len <= buf + r->head_len);
			check(memchr(l, '\r', r->location_len) == NULL &&
			    memchr(l, '\n', r->location_len) == NULL);
			if (r->location_len > 0)
				check(l[0] != ' ' && l[0] != '\t' &&
				    l[r->location_len - 1] != ' ' &&
				    l[r->location_len - 1] != '\t');
		}
		check(r->content_length >= -1);
		check(!(r->chunked && r->content_length != -1));
		check((r->chunked | r->connection_close) <= 1);
		break;
	default:
		abort();
	}
}

static enum http_status
parse_tail(uint8_t *buf, size_t cap, const uint8_t *data, size_t n,
    struct http_response *r, const char **reason, const uint8_t **at)
{
	uint8_t *p = buf + (cap - n);

	if (n > 0)
		memcpy(p, data, n);
	memset(r, 0xa5, sizeof(*r));
	*reason = (const char *)r;
	*at = p;
	return http_parse_response(p, n, r, reason);
}

static void
rebase(struct http_response *r, const uint8_t *from, const uint8_t *to)
{
	if (r->location != NULL)
		r->location = (const char *)to +
		    ((const uint8_t *)r->location - from);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_response whole, r;
	const char *wr, *why;
	const uint8_t *at;
	enum http_status ws, st, prev = HTTP_NEED_MORE;
	size_t upto, n;
	uint8_t *buf;

	upto = size < HTTP_HEAD_MAX + 1 ? size : HTTP_HEAD_MAX + 1;
	buf = malloc(upto > 0 ? upto : 1);
	check(buf != NULL);

	memset(&whole, 0xa5, sizeof(whole));
	wr = (const char *)&whole;
	ws = http_parse_response(data, size, &whole, &wr);
	check_one(data, size, ws, &whole, wr);

	for (n = 0; n <= upto; n = n < PREFIX_ALL ? n + 1 : n + STRIDE) {
		st = parse_tail(buf, upto, data, n, &r, &why, &at);
		check_one(at, n, st, &r, why);
		if (st == HTTP_NEED_MORE) {
			check(prev == HTTP_NEED_MORE);
			continue;
		}
		prev = st;
		check(st == ws);
		if (st == HTTP_ERROR) {
			check(strcmp(why, wr) == 0);
		} else {
			rebase(&r, at, data);
			check(memcmp(&r, &whole, sizeof(r)) == 0);
		}
	}
	if (ws == HTTP_NEED_MORE)
		check(size < HTTP_HEAD_MAX);
	if (ws == HTTP_DONE) {
		st = parse_tail(buf, upto, data, whole.head_len - 1, &r, &why, &at);
		check(st == HTTP_NEED_MORE);
		st = parse_tail(buf, upto, data, whole.head_len, &r, &why, &at);
		check(st == HTTP_DONE);
		rebase(&r, at, data);
		check(memcmp(&r, &whole, sizeof(r)) == 0);
	}
	if (ws == HTTP_ERROR && size >= HTTP_HEAD_MAX) {
		st = parse_tail(buf, upto, data, HTTP_HEAD_MAX, &r, &why, &at);
		check(st == HTTP_ERROR && strcmp(why, wr) == 0);
	}
	free(buf);
	return 0;
}

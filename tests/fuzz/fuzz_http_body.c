/*
 * libFuzzer target for http_body_scan (body framing). The first byte picks
 * the framing (even: chunked; odd: Content-Length, from the next two bytes)
 * and how the rest is cut into pieces; the rest is the bytes after a head.
 * Beyond "does not crash", with abort() so the replay notices too:
 *
 *  - feeding the bytes in pieces gives the same answer as feeding them at
 *    once: the same status, the same number of body bytes, the same reason
 *    (the gateway gets bytes as the network cuts them);
 *  - used never exceeds what was given; NEED_MORE takes everything given;
 *    after DONE, nothing more is taken;
 *  - a Content-Length body is exactly its length (or all given, if fewer);
 *  - a chunked body that is DONE ends in CRLF, and the same prefix alone is
 *    DONE again; every piece is read from the end of a heap block, so a
 *    read past len is an AddressSanitizer report.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

/* Scan body in pieces of the given sizes; returns the status, *total is
 * the body bytes, *why the reason. */
static enum http_status
scan(const uint8_t *body, size_t n, enum http_body_mode mode, uint64_t length,
    const uint8_t *cuts, size_t ncuts, size_t *total, const char **why)
{
	struct http_body b;
	enum http_status st = HTTP_NEED_MORE;
	size_t off = 0, k = 0;

	http_body_init(&b, mode, length);
	*total = 0;
	*why = NULL;
	if (mode == HTTP_BODY_LENGTH && length == 0)
		return http_body_scan(&b, body, 0, total, why);
	while (off < n) {
		size_t piece = ncuts > 0 ? (size_t)cuts[k++ % ncuts] % 97 + 1 : n;
		size_t used = 0;
		uint8_t *copy;

		if (piece > n - off)
			piece = n - off;
		copy = malloc(piece);
		check(copy != NULL);
		memcpy(copy, body + off, piece);
		st = http_body_scan(&b, copy, piece, &used, why);
		free(copy);
		check(used <= piece);
		*total += used;
		if (st == HTTP_NEED_MORE)
			check(used == piece && *why == NULL);
		if (st == HTTP_ERROR)
			check(*why != NULL && (*why)[0] != '\0');
		if (st != HTTP_NEED_MORE)
			break;
		off += piece;
	}
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum http_body_mode mode;
	uint64_t length = 0;
	const uint8_t *body, *cuts;
	size_t n, ncuts, t1, t2;
	const char *w1, *w2;
	enum http_status s1, s2;

	if (size < 3)
		return 0;
	mode = data[0] & 1 ? HTTP_BODY_LENGTH : HTTP_BODY_CHUNKED;
	if (mode == HTTP_BODY_LENGTH)
		length = (uint64_t)data[1] << 8 | data[2];
	cuts = data + 1;
	ncuts = (data[0] >> 1) % 3;     /* 0: all at once; else 1-2 cut bytes */
	body = data + 3;
	n = size - 3;

	s1 = scan(body, n, mode, length, NULL, 0, &t1, &w1);
	s2 = scan(body, n, mode, length, cuts, ncuts ? ncuts : 1, &t2, &w2);
	check(s1 == s2 && t1 == t2);
	if (s1 == HTTP_ERROR)
		check(strcmp(w1, w2) == 0);
	if (mode == HTTP_BODY_LENGTH) {
		check(s1 != HTTP_ERROR);
		check(t1 == (length < n ? length : n));
		check((s1 == HTTP_DONE) == (length <= n));
	}
	if (mode == HTTP_BODY_CHUNKED && s1 == HTTP_DONE) {
		check(t1 >= 5 && body[t1 - 2] == '\r' && body[t1 - 1] == '\n');
		s2 = scan(body, t1, mode, 0, NULL, 0, &t2, &w2);
		check(s2 == HTTP_DONE && t2 == t1);
	}
	return 0;
}

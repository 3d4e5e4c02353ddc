/*
 * libFuzzer target for sni_parse_hello. Beyond "does not crash", it checks
 * the properties the gateway relies on, with abort() so both libFuzzer and
 * the make-check replay notice:
 *
 *  - the outcome is monotone in the input length: some prefixes give
 *    NEED_MORE, then every longer one gives the same decision (the same
 *    fields for OK, the same reason for ERROR); a prefix of an input that
 *    parsed OK is never ERROR and never OK with a different name;
 *  - NEED_MORE fills in nothing; ERROR gives a reason and nothing else;
 *  - on OK every view lies inside buf or scratch, lengths add up, and the
 *    same message re-framed into two records parses the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sni/sni.h"
#include "tests/fuzz/fuzzcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
view_eq(struct sni_view a, struct sni_view b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The fields a caller acts on; views compared by content. */
static int
same_hello(const struct sni_hello *a, const struct sni_hello *b)
{
	if (a->has_sni != b->has_sni || a->alpn_count != b->alpn_count ||
	    a->ech != b->ech || a->tls13 != b->tls13 ||
	    a->hello_len != b->hello_len ||
	    a->client_version != b->client_version)
		return 0;
	if (a->has_sni && !view_eq(a->name, b->name))
		return 0;
	for (size_t i = 0; i < a->alpn_count && i < SNI_MAX_ALPN; i++)
		if (!view_eq(a->alpn[i], b->alpn[i]))
			return 0;
	return 1;
}

static void
check_one(const uint8_t *buf, size_t len, enum sni_result r,
    const struct sni_hello *h, const uint8_t *scratch, size_t cap)
{
	static const struct sni_hello zero;

	switch (r) {
	case SNI_NEED_MORE:
		check(memcmp(h, &zero, sizeof(zero)) == 0);
		break;
	case SNI_ERROR:
		check(h->error != SNI_ERR_NONE);
		check(h->has_sni == 0 && h->alpn_count == 0 &&
		    h->hello_len == 0 && h->raw_len == 0);
		break;
	case SNI_OK:
		check(h->error == SNI_ERR_NONE);
		check(h->hello_len >= 4 && h->hello_len <= SNI_HELLO_MAX);
		check(h->raw_len <= len && h->raw_len >= h->hello_len + 5);
		check(h->raw_len <= SNI_PEEK_MAX + 256 * 64);
		check((h->record_version >> 8) == 3);
		check(h->alpn_count <= SNI_MAX_ALPN);
		if (h->has_sni) {
			check(h->name.len > 0);
			check(inside(h->name, buf, len) ||
			    inside(h->name, scratch, cap));
		} else {
			check(h->name.ptr == NULL && h->name.len == 0);
		}
		for (size_t i = 0; i < h->alpn_count; i++) {
			check(h->alpn[i].len > 0);
			check(inside(h->alpn[i], buf, len) ||
			    inside(h->alpn[i], scratch, cap));
		}
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t scratch[SNI_HELLO_MAX], scratch2[SNI_HELLO_MAX];
	static uint8_t msg[SNI_HELLO_MAX], framed[SNI_HELLO_MAX + 10];
	struct sni_hello whole, h;
	enum sni_result rw, r;
	size_t cuts[8], ncut = 0;

	rw = sni_parse_hello(data, size, scratch, sizeof(scratch), &whole);
	check_one(data, size, rw, &whole, scratch, sizeof(scratch));

	/* A handful of prefixes: fixed spots, the edges, and data-chosen. */
	cuts[ncut++] = size / 2;
	cuts[ncut++] = size > 0 ? size - 1 : 0;
	cuts[ncut++] = 5 < size ? 5 : size;
	cuts[ncut++] = 9 < size ? 9 : size;
	if (rw == SNI_OK) {
		cuts[ncut++] = whole.raw_len - 1;
		cuts[ncut++] = whole.raw_len;
	}
	if (size >= 2)
		cuts[ncut++] = ((size_t)data[size - 1] << 8 | data[size - 2]) %
		    size;

	for (size_t i = 0; i < ncut; i++) {
		size_t n = cuts[i];

		r = sni_parse_hello(data, n, scratch2, sizeof(scratch2), &h);
		check_one(data, n, r, &h, scratch2, sizeof(scratch2));
		if (r == SNI_NEED_MORE)
			continue;
		/* Decided early: the longer input must agree. */
		check(r == rw);
		if (r == SNI_ERROR)
			check(h.error == whole.error);
		else
			check(same_hello(&h, &whole) &&
			    h.raw_len == whole.raw_len);
		if (rw == SNI_OK)
			check(n >= whole.raw_len);
	}

	/* The message re-framed into two records must read the same. */
	if (rw == SNI_OK && whole.hello_len >= 2) {
		size_t n = whole.hello_len, split = 1 + size % (n - 1);
		uint16_t rv = whole.record_version;
		struct sni_hello w = whole;

		/* whole's views point into scratch: parse into scratch2. */
		memcpy(msg, scratch, n);
		framed[0] = 22;
		framed[1] = (uint8_t)(rv >> 8);
		framed[2] = (uint8_t)rv;
		framed[3] = (uint8_t)(split >> 8);
		framed[4] = (uint8_t)split;
		memcpy(framed + 5, msg, split);
		framed[5 + split] = 22;
		framed[6 + split] = (uint8_t)(rv >> 8);
		framed[7 + split] = (uint8_t)rv;
		framed[8 + split] = (uint8_t)((n - split) >> 8);
		framed[9 + split] = (uint8_t)(n - split);
		memcpy(framed + 10 + split, msg + split, n - split);
		r = sni_parse_hello(framed, n + 10, scratch2, sizeof(scratch2),
		    &h);
		/* A record may not exceed 16640 bytes; n - 1 always fits. */
		check(r == SNI_OK);
		check(same_hello(&h, &w) && h.raw_len == n + 10);
		r = sni_parse_hello(framed, n + 9, scratch2, sizeof(scratch2),
		    &h);
		check(r == SNI_NEED_MORE);
	}
	return 0;
}

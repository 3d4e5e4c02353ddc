/*
 * libFuzzer target for the two parsers of the relay's watch (sni/follow.c):
 * sni_parse_followup, what the client sends after the ClientHello that was
 * decided, and sni_server_answer, whether the server's first bytes ask for
 * a second hello. Each input is given to both. Beyond "does not crash":
 *
 *  - the outcome is monotone in the input length: a prefix gives NEED_MORE
 *    or the decision of the whole input (the same reason, the same hello,
 *    the same answer), so bytes arriving in pieces are judged as whole;
 *  - followup: *pass lies on a record boundary inside the input, grows
 *    with the input, and never covers a handshake record (a hello is never
 *    passed unjudged); on OK the hello lies inside the input after *pass,
 *    its name inside the input or the scratch;
 *  - answer: a RETRY needs the whole 38-byte head of the message in.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sni/sni.h"
#include "tests/fuzz/fuzzcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every record in data[0..pass) is whole and none is a handshake. */
static int
records_before(const uint8_t *data, size_t pass)
{
	size_t off = 0;

	while (off < pass) {
		if (pass - off < 5 || data[off] == 22)
			return 0;
		off += 5 + ((size_t)data[off + 3] << 8 | data[off + 4]);
	}
	return off == pass;
}

static void
check_followup(const uint8_t *data, size_t size, enum sni_result r,
    size_t pass, const struct sni_hello *h, const uint8_t *scratch,
    size_t cap)
{
	check(pass <= size && records_before(data, pass));
	switch (r) {
	case SNI_NEED_MORE:
		break;
	case SNI_ERROR:
		check(h->error != SNI_ERR_NONE && h->error != SNI_ERR_NOT_TLS);
		break;
	case SNI_OK:
		check(h->error == SNI_ERR_NONE);
		check(h->raw_len > 0 && h->raw_len <= size - pass);
		check(data[pass] == 22);
		if (h->has_sni)
			check(inside(h->name, data, size) ||
			    inside(h->name, scratch, cap));
		break;
	default:
		abort();
	}
}

static int
same_name(const struct sni_hello *a, const struct sni_hello *b)
{
	if (a->has_sni != b->has_sni)
		return 0;
	return !a->has_sni || (a->name.len == b->name.len &&
	    memcmp(a->name.ptr, b->name.ptr, a->name.len) == 0);
}

static void
fuzz_followup(const uint8_t *data, size_t size)
{
	static uint8_t scratch[SNI_HELLO_MAX], scratch2[SNI_HELLO_MAX];
	struct sni_hello whole, h;
	size_t pass_whole, pass, cuts[4];
	enum sni_result rw, r;

	rw = sni_parse_followup(data, size, scratch, sizeof(scratch),
	    &pass_whole, &whole);
	check_followup(data, size, rw, pass_whole, &whole, scratch,
	    sizeof(scratch));
	cuts[0] = size / 2;
	cuts[1] = size > 0 ? size - 1 : 0;
	cuts[2] = size >= 2 ? ((size_t)data[0] << 8 | data[1]) % size : 0;
	cuts[3] = rw == SNI_OK ? pass_whole + whole.raw_len : size;
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		r = sni_parse_followup(data, cuts[i], scratch2,
		    sizeof(scratch2), &pass, &h);
		check_followup(data, cuts[i], r, pass, &h, scratch2,
		    sizeof(scratch2));
		check(pass <= pass_whole);
		if (r == SNI_NEED_MORE)
			continue;
		check(r == rw);
		if (r == SNI_ERROR)
			check(h.error == whole.error);
		else
			check(pass == pass_whole && h.raw_len == whole.raw_len &&
			    same_name(&h, &whole));
	}
}

static void
fuzz_answer(const uint8_t *data, size_t size)
{
	enum sni_answer aw = sni_server_answer(data, size), a;

	check(aw == SNI_ANSWER_NEED_MORE || aw == SNI_ANSWER_RETRY ||
	    aw == SNI_ANSWER_OTHER);
	if (aw == SNI_ANSWER_RETRY)
		check(size >= 5 + 38);
	for (size_t n = 0; n < size && n < 96; n++) {
		a = sni_server_answer(data, n);
		check(a == SNI_ANSWER_NEED_MORE || a == aw);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_followup(data, size);
	fuzz_answer(data, size);
	return 0;
}

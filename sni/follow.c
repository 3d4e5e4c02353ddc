/*
 * After the first ClientHello: what the client sends next, and whether the
 * server's answer asks for a second hello (sni.h). Stateless, like the
 * hello parser: the caller parses again when more bytes arrive.
 */
#include <stdint.h>
#include <string.h>

#include "sni/sni.h"
#include "sni/cursor.h"

#define TLS_CT_HANDSHAKE    22
#define TLS_HS_SERVER_HELLO 2
/* TLSCiphertext.length may reach 2^14 + 2048 in TLS 1.2 (RFC 5246
 * section 6.2.3); nothing longer is a TLS record. */
#define FOLLOW_RECORD_MAX   (16384 + 2048)

/* RFC 8446 section 4.1.3: a ServerHello with this random is a
 * HelloRetryRequest (SHA-256 of "HelloRetryRequest"). */
static const uint8_t hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11,
	0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e,
	0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

/*
 * The records after the first ClientHello, as the client sends them:
 *
 *   u8   content_type (20 change_cipher_spec, 21 alert, 22 handshake,
 *        23 application_data: early data)
 *   u16  legacy_record_version (major byte 3)
 *   u16  length (1 .. 2^14 + 2048)
 *   length bytes
 *
 * Records other than handshake are opaque here (early data is encrypted)
 * and pass whole. A handshake record can only be a second ClientHello:
 * the client sends its other handshake messages after the server's
 * ServerHello, which ends the watch (and in TLS 1.3 encrypted, as
 * application_data).
 */
enum sni_result
sni_parse_followup(const uint8_t *buf, size_t len, uint8_t *scratch,
    size_t scratch_cap, size_t *pass, struct sni_hello *out)
{
	struct cur rec;
	size_t off = 0;
	enum sni_result r;

	memset(out, 0, sizeof(*out));
	*pass = 0;
	cur_init(&rec, buf, buf == NULL ? 0 : len);
	for (;;) {
		uint8_t type, major, minor;
		uint16_t rlen;

		if (cur_u8(&rec, &type) == -1)
			return SNI_NEED_MORE;
		if (type == TLS_CT_HANDSHAKE)
			break;
		if (cur_u8(&rec, &major) == -1)
			return SNI_NEED_MORE;
		if (major != 3)
			goto malformed;
		if (cur_u8(&rec, &minor) == -1 || cur_u16(&rec, &rlen) == -1)
			return SNI_NEED_MORE;
		if (rlen == 0 || rlen > FOLLOW_RECORD_MAX)
			goto malformed;
		if (cur_skip(&rec, rlen) == -1)
			return SNI_NEED_MORE;
		off += 5 + (size_t)rlen;
		*pass = off;
	}
	r = sni_parse_hello(buf + off, len - off, scratch, scratch_cap, out);
	/* A handshake record starts the stream handed over: it is TLS, so
	 * "not TLS" here can only be a wrong record version. */
	if (r == SNI_ERROR && out->error == SNI_ERR_NOT_TLS)
		out->error = SNI_ERR_MALFORMED;
	return r;

malformed:
	memset(out, 0, sizeof(*out));
	out->error = SNI_ERR_MALFORMED;
	return SNI_ERROR;
}

/*
 * The server's first handshake message, as far as needed:
 *
 *   u8   msg_type (2 = server_hello)
 *   u24  length
 *   u16  legacy_version
 *   32   random (hrr_random: a HelloRetryRequest)
 *
 * gathered from the payloads of consecutive handshake records. A first
 * record of another type (an alert) is an answer too: not a retry.
 */
enum sni_answer
sni_server_answer(const uint8_t *buf, size_t len)
{
	uint8_t msg[4 + 2 + 32];
	size_t have = 0;
	struct cur rec;

	cur_init(&rec, buf, buf == NULL ? 0 : len);
	while (have < sizeof(msg)) {
		uint8_t type, major, minor;
		uint16_t rlen;
		size_t n;
		const uint8_t *p;

		if (cur_u8(&rec, &type) == -1)
			return SNI_ANSWER_NEED_MORE;
		if (type != TLS_CT_HANDSHAKE)
			return SNI_ANSWER_OTHER;
		if (cur_u8(&rec, &major) == -1 || cur_u8(&rec, &minor) == -1 ||
		    cur_u16(&rec, &rlen) == -1)
			return SNI_ANSWER_NEED_MORE;
		if (major != 3 || rlen == 0)
			return SNI_ANSWER_OTHER;
		n = rlen < rec.len ? rlen : rec.len;
		if (n > sizeof(msg) - have)
			n = sizeof(msg) - have;
		if (n == 0 || cur_bytes(&rec, n, &p) == -1)
			return SNI_ANSWER_NEED_MORE;
		memcpy(msg + have, p, n);
		have += n;
		if (msg[0] != TLS_HS_SERVER_HELLO)
			return SNI_ANSWER_OTHER;
		if (have < sizeof(msg) && n < rlen)
			return SNI_ANSWER_NEED_MORE;    /* this record is not all in */
	}
	return memcmp(msg + 6, hrr_random, sizeof(hrr_random)) == 0 ?
	    SNI_ANSWER_RETRY : SNI_ANSWER_OTHER;
}

const char *
sni_answer_str(enum sni_answer a)
{
	switch (a) {
	case SNI_ANSWER_NEED_MORE:
		return "need_more";
	case SNI_ANSWER_RETRY:
		return "retry";
	case SNI_ANSWER_OTHER:
		return "other";
	}
	return "unknown";
}

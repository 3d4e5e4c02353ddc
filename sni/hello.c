/*
 * TLS ClientHello parser: record reassembly, then the hello itself.
 *
 * Stateless by design: the caller re-parses the whole buffer each time more
 * bytes arrive. That keeps the connection code free of parser state and
 * makes "every prefix of a valid hello returns NEED_MORE" a property that is
 * easy to test and to fuzz. Re-parsing stays cheap because an incomplete
 * hello costs only a walk over at most 64 record headers: the payload is
 * copied and parsed once, when all of it is there (see sni_parse_hello).
 */
#include <stdint.h>
#include <string.h>

#include "sni/sni.h"

/* Caps that follow from RFC 8446 section 5.1/5.2 and from sni.h. */
#define SNI_RECORD_MAX      (16384 + 256)   /* TLSCiphertext.length bound */
#define SNI_MAX_RECORDS     64              /* see SNI_PEEK_MAX */

#define TLS_CT_HANDSHAKE    22
#define TLS_HS_CLIENT_HELLO 1

#define EXT_SERVER_NAME         0x0000
#define EXT_ALPN                0x0010
#define EXT_SUPPORTED_VERSIONS  0x002b
#define EXT_ECH                 0xfe0d
/* Earlier ways to hide the name: ECH drafts 08 to 12 (0xfe08 to 0xfe0c)
 * and ESNI (0xffce). A server that still speaks one of them reads a name
 * the gateway cannot: for refuse_ech and the log they are ECH too. */
#define EXT_ECH_DRAFT_FIRST     0xfe08
#define EXT_ESNI                0xffce

#define SNI_NAME_TYPE_HOST  0
#define TLS_VERSION_13      0x0304

#include "sni/cursor.h"


/* A vector<floor..ceil> with a u8 length prefix, as its own cursor. */
static int
cur_vec8(struct cur *c, struct cur *sub)
{
	uint8_t n;

	if (cur_u8(c, &n) == -1)
		return -1;
	if (cur_sub(c, n, sub) == -1) {
		/* Put the length byte back so a failed fetch changes nothing. */
		c->p -= 1;
		c->len += 1;
		return -1;
	}
	return 0;
}

/* A vector with a u16 length prefix, as its own cursor. */
static int
cur_vec16(struct cur *c, struct cur *sub)
{
	uint16_t n;

	if (cur_u16(c, &n) == -1)
		return -1;
	if (cur_sub(c, n, sub) == -1) {
		c->p -= 2;
		c->len += 2;
		return -1;
	}
	return 0;
}

/*
 * server_name (RFC 6066 section 3), extension_data:
 *
 *   u16  server_name_list length (must cover the extension exactly, >= 1)
 *   repeated:
 *     u8   name_type (0 = host_name)
 *     u16  length, then that many bytes
 *
 * The list must hold exactly one entry, a host_name. RFC 6066 allows only
 * one name per type and defines only host_name, and OpenSSL and BoringSSL
 * refuse anything else; a gateway that decided on one entry while the
 * server might route on another would be bypassed, so any other list is
 * refused here rather than guessed at. The entries are still walked first
 * (other types taken to share the u16-length layout), so that a list whose
 * lengths do not add up is MALFORMED whatever it holds. A zero-length
 * host_name is malformed too (HostName<1..2^16-1>).
 */
static enum sni_error
parse_server_name(struct cur *ext, struct sni_hello *h)
{
	struct cur list, name = { NULL, 0 };
	size_t entries = 0;
	uint8_t type = SNI_NAME_TYPE_HOST;

	if (cur_vec16(ext, &list) == -1 || ext->len != 0 || list.len == 0)
		return SNI_ERR_MALFORMED;
	while (list.len > 0) {
		if (cur_u8(&list, &type) == -1 ||
		    cur_vec16(&list, &name) == -1)
			return SNI_ERR_MALFORMED;
		if (type == SNI_NAME_TYPE_HOST && name.len == 0)
			return SNI_ERR_MALFORMED;
		entries++;
	}
	if (entries > 1)
		return SNI_ERR_MULTIPLE_NAMES;
	if (type != SNI_NAME_TYPE_HOST)
		return SNI_ERR_NAME_TYPE;
	h->has_sni = 1;
	h->name.ptr = name.p;
	h->name.len = name.len;
	return SNI_ERR_NONE;
}

/*
 * application_layer_protocol_negotiation (RFC 7301 section 3.1):
 *
 *   u16  protocol_name_list length (covers the extension exactly, >= 2)
 *   repeated:
 *     u8   length (>= 1), then the protocol name
 *
 * The first SNI_MAX_ALPN names are kept as views; alpn_count is how many
 * were kept, so alpn[0..alpn_count) is always safe to walk. The rest are
 * still checked for well-formedness.
 */
static int
parse_alpn(struct cur *ext, struct sni_hello *h)
{
	struct cur list;

	if (cur_vec16(ext, &list) == -1 || ext->len != 0 || list.len == 0)
		return -1;
	while (list.len > 0) {
		struct cur proto;

		if (cur_vec8(&list, &proto) == -1 || proto.len == 0)
			return -1;
		if (h->alpn_count < SNI_MAX_ALPN) {
			h->alpn[h->alpn_count].ptr = proto.p;
			h->alpn[h->alpn_count].len = proto.len;
			h->alpn_count++;
		}
	}
	return 0;
}

/*
 * supported_versions in a ClientHello (RFC 8446 section 4.2.1):
 *
 *   u8   length (covers the extension exactly, even, >= 2)
 *   repeated: u16 ProtocolVersion
 */
static int
parse_supported_versions(struct cur *ext, struct sni_hello *h)
{
	struct cur list;

	if (cur_vec8(ext, &list) == -1 || ext->len != 0 ||
	    list.len < 2 || list.len % 2 != 0)
		return -1;
	while (list.len > 0) {
		uint16_t v;

		if (cur_u16(&list, &v) == -1)
			return -1;
		if (v == TLS_VERSION_13)
			h->tls13 = 1;
	}
	return 0;
}

/*
 * One bit per extension type, to reject duplicates (RFC 8446 section 4.2:
 * "There MUST NOT be more than one extension of the same type"). A bitmap
 * keeps this linear: a 16 KiB hello can carry thousands of extensions, and
 * a quadratic check would be re-run on every read.
 */
struct ext_seen {
	uint64_t bits[65536 / 64];
};

static int
ext_seen_test_and_set(struct ext_seen *s, uint16_t type)
{
	uint64_t bit = (uint64_t)1 << (type % 64);
	uint64_t *w = &s->bits[type / 64];
	int was = (*w & bit) != 0;

	*w |= bit;
	return was;
}

/*
 * ClientHello body (RFC 8446 section 4.1.2, RFC 5246 section 7.4.1.2),
 * after the 4-byte handshake header:
 *
 *   u16  legacy_version
 *   32   random
 *   u8   session_id length (0..32), then the session id
 *   u16  cipher_suites length (even, >= 2), then the suites
 *   u8   compression_methods length (>= 1), then the methods
 *   [u16 extensions length, then extensions; absent in old TLS 1.0-1.2
 *        hellos, in which case the body ends right after compression]
 *   each extension:
 *     u16  extension_type
 *     u16  extension_data length, then the data
 *
 * The extension block must be consumed exactly and nothing may follow it.
 * Extensions read here: server_name (0), ALPN (16), supported_versions
 * (43), encrypted_client_hello (0xfe0d, and the older drafts' codepoints
 * and ESNI's: only their presence is recorded).
 */
static enum sni_error
parse_client_hello(struct cur *body, struct sni_hello *h)
{
	struct cur v, exts;
	struct ext_seen seen;

	if (cur_u16(body, &h->client_version) == -1 ||
	    cur_skip(body, 32) == -1)
		return SNI_ERR_MALFORMED;
	if (cur_vec8(body, &v) == -1 || v.len > 32)
		return SNI_ERR_MALFORMED;
	if (cur_vec16(body, &v) == -1 || v.len < 2 || v.len % 2 != 0)
		return SNI_ERR_MALFORMED;
	if (cur_vec8(body, &v) == -1 || v.len < 1)
		return SNI_ERR_MALFORMED;
	if (body->len == 0)
		return SNI_ERR_NONE;
	if (cur_vec16(body, &exts) == -1 || body->len != 0)
		return SNI_ERR_MALFORMED;

	memset(&seen, 0, sizeof(seen));
	while (exts.len > 0) {
		uint16_t type;
		struct cur data;
		enum sni_error err = SNI_ERR_NONE;

		if (cur_u16(&exts, &type) == -1 ||
		    cur_vec16(&exts, &data) == -1)
			return SNI_ERR_MALFORMED;
		/* Covers server_name and encrypted_client_hello too: a
		 * second copy of either is refused before it is read. */
		if (ext_seen_test_and_set(&seen, type))
			return SNI_ERR_MALFORMED;
		switch (type) {
		case EXT_SERVER_NAME:
			err = parse_server_name(&data, h);
			break;
		case EXT_ALPN:
			if (parse_alpn(&data, h) == -1)
				err = SNI_ERR_MALFORMED;
			break;
		case EXT_SUPPORTED_VERSIONS:
			if (parse_supported_versions(&data, h) == -1)
				err = SNI_ERR_MALFORMED;
			break;
		default:
			if ((type >= EXT_ECH_DRAFT_FIRST && type <= EXT_ECH) ||
			    type == EXT_ESNI)
				h->ech = 1;
			break;
		}
		if (err != SNI_ERR_NONE)
			return err;
	}
	return SNI_ERR_NONE;
}

/* Where a walk over the records stands. */
struct rec_walk {
	uint16_t record_version;        /* of the first record */
	size_t have;                    /* message bytes seen so far */
	size_t need;                    /* 4, then 4 + the header's length */
	int header_done;
	uint8_t hdr[4];                 /* the handshake header, as far as in */
	size_t raw_len;                 /* records that carry the message */
};

/*
 * The record layer (RFC 8446 section 5.1), as the client sends it:
 *
 *   u8   content_type (22 = handshake)
 *   u16  legacy_record_version (major byte 3)
 *   u16  length (1 .. 2^14 + 256)
 *   length bytes of payload
 *
 * The handshake message may be split over any number of records (up to
 * SNI_MAX_RECORDS here), each split anywhere, including inside the 4-byte
 * handshake header:
 *
 *   u8   msg_type (1 = client_hello)
 *   u24  length of the body
 *   body
 *
 * Every check is made as soon as the bytes it needs have arrived, so junk
 * fails early, while a prefix of a valid hello only ever gets NEED_MORE:
 * no check below can fail on a byte that is merely absent.
 *
 * The first record decides whether this is TLS at all: a wrong content type
 * or major version there is NOT_TLS (plain HTTP, SSLv2, ...). The same fault
 * in a later record is MALFORMED: the client started speaking TLS.
 *
 * walk_records returns SNI_NEED_MORE while the message or its last record
 * is incomplete, SNI_OK once both are whole, SNI_ERROR with *err. limit
 * caps the message. With dst NULL nothing is copied: the work is one step
 * per record header (at most SNI_MAX_RECORDS), however many payload bytes
 * have arrived. With dst, the message is gathered there as well.
 */
/*
 * One record's header: a handshake record of TLS major version 3 (the
 * first one's version kept), 1 to SNI_RECORD_MAX bytes long, into *rlen.
 * A wrong first record is not TLS; a wrong later one is malformed.
 */
static enum sni_result
record_header(struct cur *rec, unsigned nrec, struct rec_walk *w,
    uint16_t *rlen, enum sni_error *err)
{
	uint8_t type, major, minor;

	if (cur_u8(rec, &type) == -1)
		return SNI_NEED_MORE;
	if (type != TLS_CT_HANDSHAKE) {
		*err = nrec == 0 ? SNI_ERR_NOT_TLS : SNI_ERR_MALFORMED;
		return SNI_ERROR;
	}
	if (cur_u8(rec, &major) == -1)
		return SNI_NEED_MORE;
	if (major != 3) {
		*err = nrec == 0 ? SNI_ERR_NOT_TLS : SNI_ERR_MALFORMED;
		return SNI_ERROR;
	}
	if (cur_u8(rec, &minor) == -1)
		return SNI_NEED_MORE;
	if (nrec == 0)
		w->record_version = (uint16_t)(major << 8 | minor);
	if (cur_u16(rec, rlen) == -1)
		return SNI_NEED_MORE;
	if (*rlen == 0 || *rlen > SNI_RECORD_MAX) {
		*err = SNI_ERR_MALFORMED;
		return SNI_ERROR;
	}
	return SNI_OK;
}

/*
 * The handshake message's bytes in pay (part of one record) appended to
 * dst, its header judged as far as it has arrived. At most two rounds:
 * the header, then the body. SNI_OK, or SNI_ERROR with *err.
 */
static enum sni_result
absorb_payload(struct rec_walk *w, struct cur *pay, size_t limit,
    uint8_t *dst, enum sni_error *err)
{
	while (pay->len > 0 && w->have < w->need) {
		size_t n = w->need - w->have;
		const uint8_t *p;
		struct cur hdr;
		uint8_t mtype;
		uint32_t blen;

		if (n > pay->len)
			n = pay->len;
		if (w->have + n > limit) {
			*err = SNI_ERR_TOO_LARGE;
			return SNI_ERROR;
		}
		if (cur_bytes(pay, n, &p) == -1) {
			*err = SNI_ERR_MALFORMED;       /* cannot happen */
			return SNI_ERROR;
		}
		if (dst != NULL)
			memcpy(dst + w->have, p, n);
		if (w->have < sizeof(w->hdr)) {
			size_t k = sizeof(w->hdr) - w->have;

			memcpy(w->hdr + w->have, p, k < n ? k : n);
		}
		w->have += n;
		cur_init(&hdr, w->hdr, w->have < sizeof(w->hdr) ?
		    w->have : sizeof(w->hdr));
		if (cur_u8(&hdr, &mtype) == -1 || mtype != TLS_HS_CLIENT_HELLO) {
			*err = SNI_ERR_MALFORMED;
			return SNI_ERROR;
		}
		if (!w->header_done && cur_u24(&hdr, &blen) == 0) {
			w->header_done = 1;
			w->need = 4 + (size_t)blen;
			/* Refuse as soon as the header says so. */
			if (w->need > limit) {
				*err = SNI_ERR_TOO_LARGE;
				return SNI_ERROR;
			}
		}
	}
	return SNI_OK;
}

static enum sni_result
walk_records(const uint8_t *buf, size_t len, size_t limit, uint8_t *dst,
    struct rec_walk *w, enum sni_error *err)
{
	struct cur rec, pay;
	enum sni_result r;
	uint16_t rlen;
	size_t avail;

	memset(w, 0, sizeof(*w));
	w->need = 4;
	cur_init(&rec, buf, buf == NULL ? 0 : len);
	for (unsigned nrec = 0;; nrec++) {
		/* Only reached while the message is still incomplete. */
		if (nrec == SNI_MAX_RECORDS) {
			*err = SNI_ERR_TOO_LARGE;
			return SNI_ERROR;
		}
		if ((r = record_header(&rec, nrec, w, &rlen, err)) != SNI_OK)
			return r;
		/* Whatever part of this record's payload has arrived. */
		avail = rlen < rec.len ? rlen : rec.len;
		if (cur_sub(&rec, avail, &pay) == -1) {
			*err = SNI_ERR_MALFORMED;       /* cannot happen */
			return SNI_ERROR;
		}
		if (absorb_payload(w, &pay, limit, dst, err) != SNI_OK)
			return SNI_ERROR;
		/*
		 * Wait for the end of the record even when the message is
		 * already complete, so that raw_len always covers whole
		 * records: that is what the caller forwards and logs.
		 */
		if (avail < rlen)
			return SNI_NEED_MORE;
		if (w->header_done && w->have == w->need)
			break;
	}
	w->raw_len = len - rec.len;
	return SNI_OK;
}

/*
 * The caller parses the whole buffer again after every read, so a hello
 * trickled one byte per segment must not cost a 16 KiB copy each time
 * (quadratic in the hello's size). The first walk therefore reads only
 * the record headers and the 4-byte handshake header, which is enough to
 * give every NEED_MORE and every record-layer error exactly as a full
 * reassembly would; the payload is gathered into scratch and parsed only
 * once the whole message and its last record have arrived.
 */
enum sni_result
sni_parse_hello(const uint8_t *buf, size_t len, uint8_t *scratch,
    size_t scratch_cap, struct sni_hello *out)
{
	struct sni_hello h;
	struct rec_walk w;
	struct cur msg;
	size_t limit;
	enum sni_result r;
	enum sni_error err = SNI_ERR_NONE;

	memset(&h, 0, sizeof(h));
	memset(out, 0, sizeof(*out));
	/* A short scratch buffer lowers the cap rather than overflowing. */
	limit = scratch == NULL ? 0 :
	    scratch_cap < SNI_HELLO_MAX ? scratch_cap : SNI_HELLO_MAX;

	r = walk_records(buf, len, limit, NULL, &w, &err);
	if (r == SNI_NEED_MORE)
		return SNI_NEED_MORE;
	if (r == SNI_ERROR)
		goto fail;
	/* Same bytes, same walk: it ends the same way, now copying. */
	if (walk_records(buf, len, limit, scratch, &w, &err) != SNI_OK) {
		err = SNI_ERR_MALFORMED;        /* cannot happen */
		goto fail;
	}

	h.record_version = w.record_version;
	h.hello_len = w.need;
	h.raw_len = w.raw_len;
	cur_init(&msg, scratch + 4, w.need - 4);
	if ((err = parse_client_hello(&msg, &h)) != SNI_ERR_NONE)
		goto fail;
	*out = h;
	return SNI_OK;

fail:
	memset(out, 0, sizeof(*out));
	out->error = err;
	return SNI_ERROR;
}

const char *
sni_result_str(enum sni_result r)
{
	switch (r) {
	case SNI_NEED_MORE:
		return "need_more";
	case SNI_OK:
		return "ok";
	case SNI_ERROR:
		return "error";
	}
	return "unknown";
}

/*
 * The first four are also the daemon's log reasons: keep them stable. The
 * others are refinements of malformed_hello, logged as its detail.
 */
const char *
sni_error_str(enum sni_error e)
{
	switch (e) {
	case SNI_ERR_NONE:
		return "none";
	case SNI_ERR_NOT_TLS:
		return "not_tls";
	case SNI_ERR_MALFORMED:
		return "malformed_hello";
	case SNI_ERR_TOO_LARGE:
		return "hello_too_large";
	case SNI_ERR_MULTIPLE_NAMES:
		return "server_name list holds more than one name";
	case SNI_ERR_NAME_TYPE:
		return "server_name entry is not a host_name";
	}
	return "unknown";
}

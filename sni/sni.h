/*
 * sni: incremental, allocation-free parsing of what a client says first.
 *
 * The caller owns every byte. Parsers read the bytes received so far and
 * return NEED_MORE, OK or ERROR (with a reason); they keep no state between
 * calls, so "parse again with more bytes" is how they resume. Outputs are
 * views (pointer + length) into the caller's buffers.
 *
 * Nothing here knows about sockets, events, policy or logging.
 */
#ifndef EGRESSD_SNI_H
#define EGRESSD_SNI_H

#include <stddef.h>
#include <stdint.h>

/* Largest ClientHello handshake message accepted (header included). */
#define SNI_HELLO_MAX      (16384 + 4)
/* Raw bytes of TLS records that may carry such a hello: one 5-byte header
 * per record, and records may be as small as one byte of payload, so the
 * raw cap is what the caller may buffer while peeking. */
#define SNI_PEEK_MAX       (SNI_HELLO_MAX + 5 * 64)
#define SNI_NAME_MAX       253
#define SNI_MAX_ALPN       16

enum sni_result {
	SNI_NEED_MORE = 0,
	SNI_OK,
	SNI_ERROR,
};

enum sni_error {
	SNI_ERR_NONE = 0,
	SNI_ERR_NOT_TLS,        /* first bytes are not a TLS handshake record */
	SNI_ERR_MALFORMED,      /* a length or field does not add up */
	SNI_ERR_TOO_LARGE,      /* hello longer than SNI_HELLO_MAX, or too many records */
	SNI_ERR_MULTIPLE_NAMES, /* server_name list with more than one entry */
	SNI_ERR_NAME_TYPE,      /* server_name entry that is not a host_name */
};

struct sni_view {
	const uint8_t *ptr;
	size_t len;
};

struct sni_hello {
	uint16_t record_version;        /* version field of the first record */
	uint16_t client_version;        /* legacy_version of the hello */
	int has_sni;                    /* server_name extension with a host_name */
	struct sni_view name;           /* raw host_name bytes (not normalised) */
	/* ALPN protocols kept: the first SNI_MAX_ALPN offered, so that
	 * alpn[0..alpn_count) is always in bounds (any beyond are checked for
	 * well-formedness but not counted). */
	size_t alpn_count;
	struct sni_view alpn[SNI_MAX_ALPN];
	int ech;                        /* encrypted_client_hello offered */
	int tls13;                      /* supported_versions offers TLS 1.3 */
	size_t hello_len;               /* handshake message length, header included */
	size_t raw_len;                 /* bytes of the record stream that carry it */
	enum sni_error error;           /* reason when SNI_ERROR */
};

/*
 * Parse a ClientHello from the raw bytes a client sent (TLS records as on
 * the wire). The hello may span any number of records; their payloads are
 * reassembled into scratch (capacity at least SNI_HELLO_MAX), and views in
 * *out point into buf or scratch, valid until either changes. scratch is
 * written only once the whole hello has arrived: until then a call reads
 * just the record headers (at most 64), so calling again after every read
 * stays linear in the hello's size however it is trickled.
 *
 * SNI_NEED_MORE: every prefix of a valid hello returns this, never a wrong
 * answer. SNI_OK: *out is filled (the name is raw: validate it with
 * sni_name_normalize before use). SNI_ERROR: out->error says why. A
 * server_name extension must hold exactly one entry, a host_name
 * (SNI_ERR_MULTIPLE_NAMES, SNI_ERR_NAME_TYPE otherwise); a repeated
 * extension of any type is SNI_ERR_MALFORMED.
 */
enum sni_result sni_parse_hello(const uint8_t *buf, size_t len,
    uint8_t *scratch, size_t scratch_cap, struct sni_hello *out);

/*
 * What the client sends after the ClientHello that was decided on, while
 * the server may still ask for another one (TLS 1.3 HelloRetryRequest,
 * RFC 8446 section 4.1.4). A server takes the second ClientHello as the
 * one that counts, server_name included: that one must be decided too.
 * Until the server has answered, a client sends nothing but
 * change_cipher_spec, early data (application_data records) and, after a
 * HelloRetryRequest, its second ClientHello.
 *
 * sni_parse_followup walks the whole records at the start of buf. Records
 * of other types than handshake may go on as they are; *pass says how
 * many bytes of them. At the first handshake record it stops and parses a
 * ClientHello from there (sni_parse_hello: out->raw_len counts from
 * buf + *pass). SNI_NEED_MORE: nothing to decide yet (pass *pass bytes,
 * wait for more); SNI_OK: a whole ClientHello at buf + *pass; SNI_ERROR:
 * out->error says why (a handshake record that is not a ClientHello, a
 * record that is not TLS, or one longer than TLS allows, is malformed).
 */
enum sni_result sni_parse_followup(const uint8_t *buf, size_t len,
    uint8_t *scratch, size_t scratch_cap, size_t *pass,
    struct sni_hello *out);

enum sni_answer {
	SNI_ANSWER_NEED_MORE = 0,
	SNI_ANSWER_RETRY,       /* a HelloRetryRequest: another hello follows */
	SNI_ANSWER_OTHER,       /* a ServerHello, an alert, anything else */
};

/*
 * The server's first bytes: does its first handshake message ask for a
 * second ClientHello? Only the first 38 bytes of the message are read
 * (type, length, legacy_version, random); they may span records.
 */
enum sni_answer sni_server_answer(const uint8_t *buf, size_t len);

/*
 * Validate and normalise a host name taken off the wire: lower case, one
 * trailing dot dropped, letters/digits/hyphens in dot-separated labels of
 * 1..63 bytes, no leading or trailing hyphen in a label, at most 253 bytes,
 * not an IP literal. out must hold SNI_NAME_MAX + 1 bytes; it receives a
 * NUL-terminated string. Returns 0, or -1 when the name is not acceptable.
 * Underscores are accepted (real-world names such as _dmarc use them).
 */
int sni_name_normalize(const uint8_t *in, size_t len, char *out);

const char *sni_result_str(enum sni_result r);
const char *sni_error_str(enum sni_error e);
const char *sni_answer_str(enum sni_answer a);

#endif

/*
 * http: incremental, allocation-free parsers for HTTP/1.x message heads
 * (RFC 9112 with RFC 9110 semantics): the request head a client sends to
 * the plain-HTTP and CONNECT listeners, and the response head an upstream
 * sends back (status, Location for redirect tracking, framing).
 *
 * Like sni/ and proxy/, the parsers are pure: they read the bytes received
 * so far, keep no state between calls ("parse again with more bytes" is how
 * they resume), never allocate and never read past len. Outputs are views
 * into the caller's buffer, except the host name, which is validated and
 * copied. Nothing here knows about sockets, events, policy or logging.
 *
 * Strict where laxness is a request-smuggling or confusion risk, because
 * the gateway decides on one reading of the head and forwards the bytes
 * verbatim to a server that may read them differently:
 *  - lines end in CRLF; a bare LF or a bare CR is an error (RFC 9112
 *    section 2.2 allows a recipient to accept bare LF; we do not);
 *  - the request line uses single spaces; leading empty lines are refused;
 *  - no whitespace between a field name and its colon (section 5.1), no
 *    obs-fold (section 5.2), no control characters in values;
 *  - Content-Length is digits only; repeated identical values are accepted,
 *    differing ones, lists ("5, 5") and values over 18 digits are not;
 *  - Transfer-Encoding must be exactly "chunked" (one coding, one field):
 *    "gzip, chunked" is valid HTTP but real clients do not send it, and
 *    parsers disagree about it; a Transfer-Encoding in an HTTP/1.0 message
 *    and one together with Content-Length are errors (section 6.1, 6.3);
 *  - Host: at most one; required in HTTP/1.1 origin-form and asterisk-form
 *    requests; when the request target carries an authority (absolute-form,
 *    CONNECT), the target decides (RFC 9112 section 3.2.2) but a Host that
 *    names another host or port is an error rather than ignored, so that no
 *    server behind us can route on a different name than the one we let
 *    through.
 */
#ifndef EGRESSD_HTTP_H
#define EGRESSD_HTTP_H

#include <stddef.h>
#include <stdint.h>

enum http_status { HTTP_NEED_MORE, HTTP_DONE, HTTP_ERROR };

#define HTTP_HEAD_MAX     16384 /* a head larger than this: error "head too large" */
#define HTTP_FIELDS_MAX   100   /* more header fields: error "too many header fields" */
#define HTTP_HOST_MAX     253   /* longest host name (an IPv6 literal is shorter) */

enum http_target_form {
	HTTP_ORIGIN,            /* "/path?query" */
	HTTP_ABSOLUTE,          /* "http://host[:port]/path" (to a proxy) */
	HTTP_AUTHORITY,         /* "host:port" (CONNECT only) */
	HTTP_ASTERISK,          /* "*" (OPTIONS only) */
};

enum http_scheme {
	HTTP_SCHEME_NONE,       /* the target has no scheme (not absolute-form) */
	HTTP_SCHEME_HTTP,       /* absolute-form "http://" */
	HTTP_SCHEME_HTTPS,      /* absolute-form "https://" */
};

struct http_request {
	/* The method, case-sensitive as on the wire (a token): a view. */
	const char *method;
	size_t method_len;
	enum http_target_form form;
	/* absolute-form only: which scheme (its default port is the
	 * caller's to apply: port stays 0 when the target gives none). */
	enum http_scheme scheme;
	/* The request target exactly as sent: a view. Visible ASCII only
	 * (0x21-0x7e), never a '#'. */
	const char *target;
	size_t target_len;
	int version_minor;      /* 0 or 1: HTTP/1.0 or HTTP/1.1 */
	/*
	 * The host the request is for: the absolute-form authority, the
	 * CONNECT authority, else the Host header. A copy, NUL-terminated:
	 * a DNS name lower-cased with one trailing dot dropped and checked
	 * by sni_name_normalize(), or an IP literal (host_is_ip) in
	 * inet_ntop() form, without brackets for IPv6. port is the one
	 * given with it, 0 when none was (always given for CONNECT).
	 * has_host is 0 only for an HTTP/1.0 origin-form or asterisk-form
	 * request without Host; then host is "" and port 0.
	 */
	char host[HTTP_HOST_MAX + 1];
	uint16_t port;
	int has_host;
	int host_field;         /* a Host header field was sent (absolute-form
	                         * requests may come without one) */
	int host_is_ip;         /* host is an IPv4 or IPv6 literal: policy may refuse */
	int64_t content_length; /* the Content-Length, -1 when none */
	int chunked;            /* Transfer-Encoding: chunked */
	/* The connection ends after this exchange: "Connection: close", or
	 * HTTP/1.0 without "Connection: keep-alive". */
	int connection_close;
	int expect_continue;    /* Expect: 100-continue */
	/* An Upgrade field and "upgrade" among the Connection options
	 * (websocket and h2c ask this way): bytes after this exchange may
	 * not be HTTP/1.x any more. */
	int upgrade;
	size_t head_len;        /* bytes up to and including the blank line */
};

struct http_response {
	int status;             /* 100..599 */
	int version_minor;      /* 0 or 1 */
	/* The Location field value with surrounding whitespace trimmed, a
	 * view (the caller resolves a relative reference); NULL and 0 when
	 * there is none. Its bytes are field-value bytes (no CR, LF, NUL). */
	const char *location;
	size_t location_len;
	int64_t content_length; /* -1 when none */
	int chunked;            /* Transfer-Encoding: chunked */
	int connection_close;   /* as in struct http_request */
	size_t head_len;        /* bytes up to and including the blank line */
};

/*
 * Parse a request head. buf holds everything received so far (len bytes).
 * HTTP_NEED_MORE: not enough bytes yet (every prefix of a valid head gets
 * this, never a wrong answer); HTTP_DONE: *out filled; HTTP_ERROR: *reason
 * is a short static text ("head too large", "bare LF", "no Host", ...; the
 * list is in http/head.c and each has a unit test).
 *  - On NEED_MORE and ERROR *out is zeroed; *reason is NULL except on
 *    ERROR. reason may be NULL when the caller does not want it.
 *  - Once a prefix of the input gets DONE or ERROR, every longer input gets
 *    the same answer (the same head, or the same reason): the caller may
 *    stop reading at the first decision. Bytes are checked in order, so
 *    garbage is refused as soon as it arrives. HTTP_HEAD_MAX bytes always
 *    suffice for a decision; DONE comes first at exactly head_len bytes.
 *  - Bytes after head_len (a body, a pipelined request) are not read.
 */
enum http_status http_parse_request(const uint8_t *buf, size_t len,
    struct http_request *out, const char **reason);

/* The same for a response head; contract as above. */
enum http_status http_parse_response(const uint8_t *buf, size_t len,
    struct http_response *out, const char **reason);

/*
 * Message body framing (RFC 9112 sections 6.3 and 7.1): which of the bytes
 * after a head belong to its body, so that the next message on a
 * keep-alive connection starts where this one ends. Unlike the head
 * parsers this one keeps state between calls (a body may be gigabytes and
 * is forwarded as it arrives), in a small struct the caller owns; it still
 * never allocates and never reads past len. Chunked bodies are checked as
 * strictly as heads: CRLF only, hex sizes of at most 15 digits, extension
 * and trailer lines of at most 4 KiB.
 */
enum http_body_mode {
	HTTP_BODY_NONE,         /* no body: the message ends with its head */
	HTTP_BODY_LENGTH,       /* Content-Length bytes */
	HTTP_BODY_CHUNKED,      /* chunks up to the last one and its trailers */
	HTTP_BODY_CLOSE,        /* a response that ends when the server closes */
};

struct http_body {
	enum http_body_mode mode;
	uint64_t remain;        /* LENGTH: bytes left; CHUNKED: of this chunk */
	int state;              /* CHUNKED: where in the chunk syntax */
	unsigned line;          /* bytes of the current size/trailer line */
	unsigned digits;
};

void http_body_init(struct http_body *b, enum http_body_mode mode,
    uint64_t length);
/*
 * Take up to len bytes of body. *used is how many belong to it. DONE: the
 * body ended after *used bytes (the rest is the next message); NEED_MORE:
 * all len bytes were body and more is to come; ERROR: *reason says why
 * (the framing cannot be trusted: close the connection).
 */
enum http_status http_body_scan(struct http_body *b, const uint8_t *buf,
    size_t len, size_t *used, const char **reason);

/* How a request's body is framed (the head parser refused what cannot be). */
enum http_body_mode http_request_body(const struct http_request *req);
/* How a response's body is framed, given what the request was: HEAD
 * (never a body) or CONNECT (a 2xx starts a tunnel, not a body). */
enum http_body_mode http_response_body(const struct http_response *resp,
    int head_request, int connect_request);

/*
 * Where a redirect points: the Location value loc (n bytes, a view) taken
 * against base, the absolute http(s) URL of the request that got it (RFC
 * 3986 section 5.2: absolute, "//host/p", "/p", "?q" and relative
 * references). out (outlen bytes) gets the absolute URL; *https, host
 * (hostlen at least SNI_NAME_MAX + 1: a normalised name, or an IP literal
 * as written, without brackets) and *port (the scheme's default when none
 * is given) are what the policy decides on. 0, or -1 when the Location has
 * no host that can be decided on (not http(s), an empty or invalid host, a
 * bad port, too long); out then holds what could be made of it, or "".
 */
int http_location_resolve(const char *base, const char *loc, size_t n,
    char *out, size_t outlen, int *https, char *host, size_t hostlen,
    uint16_t *port);

/*
 * Is a host that http_location_resolve() gave an address (kept as written)
 * rather than a name? The redirect line decides it as the request that
 * follows will be decided: no rule admits an address.
 */
int http_location_host_is_ip(const char *host);

const char *http_status_str(enum http_status s);
const char *http_target_form_str(enum http_target_form f);

#endif

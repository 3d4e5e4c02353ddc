/*
 * Unit tests for http/: the HTTP/1.x request-head and response-head parsers.
 *
 * Two sources of heads:
 *  - real ones, written by curl 7.88, Python 3.11 http.client / urllib,
 *    Python's http.server, `openssl s_server -www` and nginx 1.22 (Debian
 *    12), captured byte for byte: the real-*.bin files of
 *    tests/fuzz/corpus/http_request and http_response (capture.py and
 *    README.md there say how); each is "head + whatever followed";
 *  - hand-built ones, each case saying what it changes: every error reason
 *    of http/head.c, the request-smuggling shapes (CL+TE, differing CL,
 *    TE other than chunked, space before colon, obs-fold, bare LF/CR),
 *    the forms of Host, and the limits (HTTP_HEAD_MAX, HTTP_FIELDS_MAX).
 * Every valid head is also fed as every prefix and one byte at a time;
 * every error is checked to be the answer of every longer input too.
 * Each parse reads from a heap copy of exactly the bytes given, so a read
 * past len is an AddressSanitizer report.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "tests/unit/testbuf.h"
#include "tests/unit/tap.h"

#define BIG (HTTP_HEAD_MAX + 4096)

static const char *
str(const char *s)
{
	return s;
}

/* Parse from a heap copy of exactly n bytes, *out and *why poisoned first. */
static enum http_status
req_n(const uint8_t *p, size_t n, struct http_request *r, const char **why)
{
	uint8_t *copy = malloc(n > 0 ? n : 1);
	enum http_status st;

	if (copy == NULL)
		abort();
	if (n > 0)
		memcpy(copy, p, n);
	memset(r, 0xa5, sizeof(*r));
	*why = "poison";
	st = http_parse_request(copy, n, r, why);
	/* Views must point into the copy: rebase them onto p for the caller. */
	if (st == HTTP_DONE) {
		r->method = (const char *)p + ((const uint8_t *)r->method - copy);
		r->target = (const char *)p + ((const uint8_t *)r->target - copy);
	}
	free(copy);
	return st;
}

static enum http_status
resp_n(const uint8_t *p, size_t n, struct http_response *r, const char **why)
{
	uint8_t *copy = malloc(n > 0 ? n : 1);
	enum http_status st;

	if (copy == NULL)
		abort();
	if (n > 0)
		memcpy(copy, p, n);
	memset(r, 0xa5, sizeof(*r));
	*why = "poison";
	st = http_parse_response(copy, n, r, why);
	if (st == HTTP_DONE && r->location != NULL)
		r->location = (const char *)p +
		    ((const uint8_t *)r->location - copy);
	free(copy);
	return st;
}

/*
 * Every proper prefix of a head is NEED_MORE with nothing filled in, and
 * growing one buffer a byte at a time gives DONE first at exactly head_len,
 * with the same result from there on (payload or not).
 */
static void
check_req_growth(const char *what, const uint8_t *p, size_t n,
    const struct http_request *want)
{
	static uint8_t grow[BIG];
	struct http_request r;
	const char *why;
	size_t bad = 0, first = 0, done_at = 0, badgrow = 0;

	for (size_t i = 0; i < want->head_len; i++) {
		enum http_status st = req_n(p, i, &r, &why);

		if (st != HTTP_NEED_MORE || why != NULL || !is_zero(&r, sizeof(r)))
			if (bad++ == 0)
				first = i;
	}
	if (!tap_ok(bad == 0, "%s: every prefix is need_more", what))
		tap_diag("  %zu bad prefixes, first at %zu", bad, first);

	for (size_t len = 1; len <= n && len <= sizeof(grow); len++) {
		enum http_status st;

		grow[len - 1] = p[len - 1];
		st = http_parse_request(grow, len, &r, &why);
		if (st == HTTP_DONE && done_at == 0)
			done_at = len;
		if (st != (len < want->head_len ? HTTP_NEED_MORE : HTTP_DONE))
			badgrow++;
		else if (st == HTTP_DONE) {
			r.method = (const char *)p + ((const uint8_t *)r.method - grow);
			r.target = (const char *)p + ((const uint8_t *)r.target - grow);
			if (memcmp(&r, want, sizeof(r)) != 0)
				badgrow++;
		}
	}
	if (!tap_ok(badgrow == 0 && done_at == want->head_len,
	    "%s: byte by byte, done first at %zu with the same head", what,
	    want->head_len))
		tap_diag("  %zu bad lengths, done first at %zu", badgrow, done_at);
}

static void
check_resp_growth(const char *what, const uint8_t *p, size_t n,
    const struct http_response *want)
{
	static uint8_t grow[BIG];
	struct http_response r;
	const char *why;
	size_t bad = 0, first = 0, done_at = 0, badgrow = 0;

	for (size_t i = 0; i < want->head_len; i++) {
		enum http_status st = resp_n(p, i, &r, &why);

		if (st != HTTP_NEED_MORE || why != NULL || !is_zero(&r, sizeof(r)))
			if (bad++ == 0)
				first = i;
	}
	if (!tap_ok(bad == 0, "%s: every prefix is need_more", what))
		tap_diag("  %zu bad prefixes, first at %zu", bad, first);

	for (size_t len = 1; len <= n && len <= sizeof(grow); len++) {
		enum http_status st;

		grow[len - 1] = p[len - 1];
		st = http_parse_response(grow, len, &r, &why);
		if (st == HTTP_DONE && done_at == 0)
			done_at = len;
		if (st != (len < want->head_len ? HTTP_NEED_MORE : HTTP_DONE))
			badgrow++;
		else if (st == HTTP_DONE) {
			if (r.location != NULL)
				r.location = (const char *)p +
				    ((const uint8_t *)r.location - grow);
			if (memcmp(&r, want, sizeof(r)) != 0)
				badgrow++;
		}
	}
	if (!tap_ok(badgrow == 0 && done_at == want->head_len,
	    "%s: byte by byte, done first at %zu with the same head", what,
	    want->head_len))
		tap_diag("  %zu bad lengths, done first at %zu", badgrow, done_at);
}

/* Where the head ends, found independently of the parser. */
static size_t
blank_line_end(const uint8_t *p, size_t n)
{
	const uint8_t *e = memmem(p, n, "\r\n\r\n", 4);

	return e != NULL ? (size_t)(e - p) + 4 : 0;
}

/* ---- requests: expectations --------------------------------------------- */

struct rq {
	const char *what;
	const uint8_t *p;
	size_t n;
	const char *method;
	enum http_target_form form;
	enum http_scheme scheme;
	const char *target;
	int minor;
	int has_host;
	const char *host;
	int port, is_ip;
	long long cl;
	int chunked, close, expect, upgrade;
};

static void
view_is(const char *p, size_t n, const char *want, const char *what,
    const char *field)
{
	if (!tap_ok(p != NULL && n == strlen(want) && memcmp(p, want, n) == 0,
	    "%s: %s is \"%s\"", what, field, want))
		tap_diag("  got \"%.*s\"", p != NULL ? (int)n : 6,
		    p != NULL ? p : "(null)");
}

static void
run_rq(const struct rq *c)
{
	struct http_request r;
	const char *why;
	enum http_status st;
	size_t hl = blank_line_end(c->p, c->n);

	st = req_n(c->p, c->n, &r, &why);
	if (!tap_is_str(http_status_str(st), "done", "%s: done", c->what)) {
		tap_diag("  reason: %s", why != NULL ? why : "(none)");
		return;
	}
	tap_ok(why == NULL, "%s: no reason when done", c->what);
	view_is(r.method, r.method_len, c->method, c->what, "method");
	tap_is_str(http_target_form_str(r.form), http_target_form_str(c->form),
	    "%s: form", c->what);
	tap_is_int(r.scheme, c->scheme, "%s: scheme", c->what);
	view_is(r.target, r.target_len, c->target, c->what, "target");
	tap_ok(r.method == (const char *)c->p, "%s: method is a view", c->what);
	tap_is_int(r.version_minor, c->minor, "%s: version", c->what);
	tap_is_int(r.has_host, c->has_host, "%s: has_host", c->what);
	tap_is_str(str(r.host), c->host, "%s: host", c->what);
	tap_is_int(r.port, c->port, "%s: port", c->what);
	tap_is_int(r.host_is_ip, c->is_ip, "%s: host_is_ip", c->what);
	tap_is_int(r.content_length, c->cl, "%s: content_length", c->what);
	tap_ok(r.chunked == c->chunked && r.connection_close == c->close &&
	    r.expect_continue == c->expect && r.upgrade == c->upgrade,
	    "%s: chunked %d close %d expect %d upgrade %d", c->what,
	    c->chunked, c->close, c->expect, c->upgrade) ||
	    (tap_diag("  got %d %d %d %d", r.chunked, r.connection_close,
	    r.expect_continue, r.upgrade), 0);
	tap_is_int(r.head_len, hl, "%s: head_len", c->what);
	check_req_growth(c->what, c->p, c->n, &r);
}

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static void
test_requests_valid(void)
{
	static const struct rq cases[] = {
		{ "minimal 1.1", S("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		    "GET", HTTP_ORIGIN, HTTP_SCHEME_NONE, "/", 1, 1,
		    "example.com", 0, 0, -1, 0, 0, 0, 0 },
		{ "1.0 without Host", S("GET /x HTTP/1.0\r\n\r\n"),
		    "GET", HTTP_ORIGIN, HTTP_SCHEME_NONE, "/x", 0, 0, "", 0, 0,
		    -1, 0, 1, 0, 0 },
		{ "1.0 keep-alive", S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n"
		    "Host: a.example\r\n\r\n"), "GET", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/", 0, 1, "a.example", 0, 0, -1, 0, 0, 0, 0 },
		{ "Host upper case, trailing dot, port, OWS",
		    S("GET /p?q HTTP/1.1\r\nhOsT:\t EXAMPLE.Com.:8080 \t\r\n\r\nbody"),
		    "GET", HTTP_ORIGIN, HTTP_SCHEME_NONE, "/p?q", 1, 1,
		    "example.com", 8080, 0, -1, 0, 0, 0, 0 },
		{ "Host IPv6 literal with port",
		    S("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), "GET",
		    HTTP_ORIGIN, HTTP_SCHEME_NONE, "/", 1, 1, "::1", 8080, 1, -1,
		    0, 0, 0, 0 },
		{ "Host IPv6 literal canonicalised",
		    S("GET / HTTP/1.1\r\nHost: [2001:DB8:0::1]\r\n\r\n"), "GET",
		    HTTP_ORIGIN, HTTP_SCHEME_NONE, "/", 1, 1, "2001:db8::1", 0, 1,
		    -1, 0, 0, 0, 0 },
		{ "Host IPv4 literal",
		    S("GET / HTTP/1.1\r\nHost: 192.0.2.1:65535\r\n\r\n"), "GET",
		    HTTP_ORIGIN, HTTP_SCHEME_NONE, "/", 1, 1, "192.0.2.1", 65535,
		    1, -1, 0, 0, 0, 0 },
		{ "Host with underscore and punycode",
		    S("GET / HTTP/1.1\r\nHost: _dmarc.xn--bcher-kva.example\r\n\r\n"),
		    "GET", HTTP_ORIGIN, HTTP_SCHEME_NONE, "/", 1, 1,
		    "_dmarc.xn--bcher-kva.example", 0, 0, -1, 0, 0, 0, 0 },
		{ "absolute-form, Host same with default port",
		    S("GET http://Example.com/a HTTP/1.1\r\nHost: example.com:80\r\n\r\n"),
		    "GET", HTTP_ABSOLUTE, HTTP_SCHEME_HTTP, "http://Example.com/a",
		    1, 1, "example.com", 0, 0, -1, 0, 0, 0, 0 },
		{ "absolute-form https, port, query, no Host",
		    S("GET HTTPS://example.com:8443?x HTTP/1.1\r\n\r\n"), "GET",
		    HTTP_ABSOLUTE, HTTP_SCHEME_HTTPS, "HTTPS://example.com:8443?x", 1,
		    1, "example.com", 8443, 0, -1, 0, 0, 0, 0 },
		{ "absolute-form https, Host with 443",
		    S("GET https://example.com/ HTTP/1.1\r\nHost: EXAMPLE.COM.:443\r\n\r\n"),
		    "GET", HTTP_ABSOLUTE, HTTP_SCHEME_HTTPS, "https://example.com/", 1,
		    1, "example.com", 0, 0, -1, 0, 0, 0, 0 },
		{ "absolute-form IPv6",
		    S("GET http://[2001:db8::7]:81/ HTTP/1.1\r\nHost: [2001:db8::7]:81\r\n\r\n"),
		    "GET", HTTP_ABSOLUTE, HTTP_SCHEME_HTTP, "http://[2001:db8::7]:81/",
		    1, 1, "2001:db8::7", 81, 1, -1, 0, 0, 0, 0 },
		{ "CONNECT, Host without port",
		    S("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n\x16\x03\x01"),
		    "CONNECT", HTTP_AUTHORITY, HTTP_SCHEME_NONE, "example.com:443", 1,
		    1, "example.com", 443, 0, -1, 0, 0, 0, 0 },
		{ "CONNECT 1.0 without Host",
		    S("CONNECT 192.0.2.9:22 HTTP/1.0\r\n\r\n"), "CONNECT",
		    HTTP_AUTHORITY, HTTP_SCHEME_NONE, "192.0.2.9:22", 0, 1,
		    "192.0.2.9", 22, 1, -1, 0, 1, 0, 0 },
		{ "OPTIONS *", S("OPTIONS * HTTP/1.1\r\nHost: h.example\r\n\r\n"),
		    "OPTIONS", HTTP_ASTERISK, HTTP_SCHEME_NONE, "*", 1, 1,
		    "h.example", 0, 0, -1, 0, 0, 0, 0 },
		{ "repeated identical Content-Length, close among options",
		    S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
		    "content-length: 005\r\nConnection: keep-alive, CLOSE\r\n\r\nhello"),
		    "POST", HTTP_ORIGIN, HTTP_SCHEME_NONE, "/", 1, 1, "a", 0, 0, 5,
		    0, 1, 0, 0 },
		{ "Content-Length 0 and the largest",
		    S("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n"),
		    "PUT", HTTP_ORIGIN, HTTP_SCHEME_NONE, "/", 1, 1, "a", 0, 0,
		    999999999999999999LL, 0, 0, 0, 0 },
		{ "chunked any case, Expect, Upgrade without Connection",
		    S("POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n"
		    "Expect: 100-Continue\r\nUpgrade: h2c\r\n\r\n"), "POST",
		    HTTP_ORIGIN, HTTP_SCHEME_NONE, "/u", 1, 1, "a", 0, 0, -1, 1, 0,
		    1, 0 },
		{ "Upgrade with Connection: upgrade",
		    S("GET /ws HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n"
		    "Upgrade: websocket\r\nHost: a\r\n\r\n"), "GET", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/ws", 1, 1, "a", 0, 0, -1, 0, 0, 0, 1 },
		{ "token method, obs-text and empty values",
		    S("M-SEARCH!~ /%41 HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n"
		    "X-Utf8: caf\xc3\xa9\r\n\r\n"), "M-SEARCH!~", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/%41", 1, 1, "a", 0, 0, -1, 0, 0, 0, 0 },
		{ "pipelined second request is not read",
		    S("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\n"),
		    "GET", HTTP_ORIGIN, HTTP_SCHEME_NONE, "/1", 1, 1, "a", 0, 0, -1,
		    0, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_rq(&cases[i]);
}

/* ---- errors ------------------------------------------------------------- */

struct ecase {
	const char *what;
	const uint8_t *p;
	size_t n;
	const char *reason;
	size_t at;              /* bytes at which it is decided; 0: not stated */
};

/*
 * The error on the whole input, first given at c->at bytes when stated, and
 * from the first decision on the same error for every longer prefix.
 */
static void
run_ecase(const struct ecase *c, int response)
{
	struct http_request rq;
	struct http_response rs;
	const char *why;
	enum http_status st;
	size_t decided = 0, bad = 0;
	int zero = 1;

	for (size_t i = 0; i <= c->n; i++) {
		if (response) {
			st = resp_n(c->p, i, &rs, &why);
			zero = zero && is_zero(&rs, sizeof(rs));
		} else {
			st = req_n(c->p, i, &rq, &why);
			zero = zero && is_zero(&rq, sizeof(rq));
		}
		if (st == HTTP_NEED_MORE) {
			if (decided != 0 || why != NULL)
				bad++;
			continue;
		}
		if (decided == 0)
			decided = i;
		if (st != HTTP_ERROR || why == NULL || strcmp(why, c->reason) != 0)
			bad++;
	}
	if (!tap_is_str(decided ? why : "(undecided)", c->reason, "%s: \"%s\"",
	    c->what, c->reason))
		return;
	tap_ok(bad == 0 && zero, "%s: same error from %zu bytes on, nothing "
	    "filled in", c->what, decided);
	if (c->at != 0)
		tap_is_int(decided, c->at, "%s: decided at byte %zu", c->what,
		    c->at);
}

#define H "GET / HTTP/1.1\r\nHost: a.example\r\n"

static void
test_request_errors(void)
{
	static const struct ecase cases[] = {
		/* The request line. */
		{ "TLS on the HTTP port", S("\x16\x03\x01\x02\x00\x01\x00"),
		    "bad method", 1 },
		{ "leading empty line", S("\r\nGET / HTTP/1.1\r\n"), "bad method", 1 },
		{ "leading space", S(" GET / HTTP/1.1\r\n"), "bad method", 1 },
		{ "bad method char", S("G@T / HTTP/1.1\r\n"), "bad method", 2 },
		{ "tab after method", S("GET\t/ HTTP/1.1\r\n"), "bad method", 4 },
		{ "bare LF after method", S("GET\n"), "bare LF", 4 },
		{ "two spaces after method", S("GET  / HTTP/1.1\r\n"),
		    "bad request target", 5 },
		{ "control char in target", S("GET /a\x01 HTTP/1.1\r\n"),
		    "bad request target", 7 },
		{ "NUL in target", S("GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"),
		    "bad request target", 7 },
		{ "fragment in target", S("GET /a#b HTTP/1.1\r\n"),
		    "bad request target", 7 },
		{ "non-ASCII in target", S("GET /caf\xc3\xa9 HTTP/1.1\r\n"),
		    "bad request target", 9 },
		{ "space in target", S("GET /a b HTTP/1.1\r\n"), "bad HTTP version", 8 },
		{ "asterisk without OPTIONS", S("GET * HTTP/1.1\r\n\r\n"),
		    "bad request target", 0 },
		{ "authority-form without CONNECT",
		    S("GET example.com:80 HTTP/1.1\r\nHost: example.com\r\n\r\n"),
		    "bad request target", 0 },
		{ "relative target", S("GET a/b HTTP/1.1\r\n\r\n"), "bad request target", 0 },
		{ "lower-case version", S("GET / http/1.1\r\n"), "bad HTTP version", 7 },
		{ "HTTP/2.0", S("GET / HTTP/2.0\r\n"), "unsupported HTTP version", 12 },
		{ "HTTP/0.9", S("GET / HTTP/0.9\r\n"), "unsupported HTTP version", 12 },
		{ "HTTP/1.2", S("GET / HTTP/1.2\r\n"), "unsupported HTTP version", 14 },
		{ "HTTP/1.10", S("GET / HTTP/1.10\r\n"), "bad HTTP version", 15 },
		{ "space after version", S("GET / HTTP/1.1 \r\n"), "bad HTTP version", 15 },
		{ "bare LF after request line", S("GET / HTTP/1.1\nHost: a\n\n"),
		    "bare LF", 15 },
		{ "bare CR after request line", S("GET / HTTP/1.1\rHost: a\r\n\r\n"),
		    "bare CR", 16 },
		/* Field lines. */
		{ "bare LF after a field", S(H "X: 1\n\r\n"), "bare LF", 38 },
		{ "bare LF as the blank line", S(H "\n"), "bare LF", 34 },
		{ "bare CR in a value", S(H "X: a\rb\r\n\r\n"), "bare CR", 39 },
		{ "bare CR as the blank line", S(H "\rX"), "bare CR", 35 },
		{ "obs-fold", S(H "X-A: 1\r\n 2\r\n\r\n"), "obs-fold", 42 },
		{ "obs-fold with tab", S(H "X-A: 1\r\n\t2\r\n\r\n"), "obs-fold", 42 },
		{ "whitespace before the first field",
		    S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), "obs-fold", 17 },
		{ "space before colon (smuggling)",
		    S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n"
		    "Content-Length: 3\r\n\r\nabc"), "whitespace before colon", 44 },
		{ "tab before colon", S(H "Host\t: b\r\n\r\n"),
		    "whitespace before colon", 38 },
		{ "empty field name", S(H ": v\r\n\r\n"), "bad field name", 34 },
		{ "bad char in field name", S(H "X(y): v\r\n\r\n"), "bad field name", 35 },
		{ "field without colon", S(H "Xyz\r\n\r\n"), "field without colon", 37 },
		{ "NUL in value", S(H "X: a\0b\r\n\r\n"), "bad field value", 38 },
		{ "DEL in value", S(H "X: a\x7f\r\n\r\n"), "bad field value", 38 },
		{ "ESC in value", S(H "X: \x1b[0m\r\n\r\n"), "bad field value", 37 },
		/* Framing. */
		{ "Content-Length with sign", S(H "Content-Length: +5\r\n\r\n"),
		    "bad Content-Length", 0 },
		{ "Content-Length negative", S(H "Content-Length: -1\r\n\r\n"),
		    "bad Content-Length", 0 },
		{ "Content-Length list", S(H "Content-Length: 5, 5\r\n\r\n"),
		    "bad Content-Length", 0 },
		{ "Content-Length empty", S(H "Content-Length:\r\n\r\n"),
		    "bad Content-Length", 0 },
		{ "Content-Length hex", S(H "Content-Length: 0x10\r\n\r\n"),
		    "bad Content-Length", 0 },
		{ "Content-Length 19 digits",
		    S(H "Content-Length: 1000000000000000000\r\n\r\n"),
		    "bad Content-Length", 0 },
		{ "Content-Length inner space", S(H "Content-Length: 1 2\r\n\r\n"),
		    "bad Content-Length", 0 },
		{ "differing Content-Length (smuggling)",
		    S(H "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
		    "multiple differing Content-Length", 71 },
		{ "CL then TE (smuggling)",
		    S(H "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"),
		    "both Content-Length and Transfer-Encoding", 80 },
		{ "TE then CL (smuggling)",
		    S(H "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"),
		    "both Content-Length and Transfer-Encoding", 80 },
		{ "TE: chunked, gzip", S(H "Transfer-Encoding: chunked, gzip\r\n\r\n"),
		    "unsupported Transfer-Encoding", 0 },
		{ "TE: gzip, chunked", S(H "Transfer-Encoding: gzip, chunked\r\n\r\n"),
		    "unsupported Transfer-Encoding", 0 },
		{ "TE: gzip", S(H "Transfer-Encoding: gzip\r\n\r\n"),
		    "unsupported Transfer-Encoding", 0 },
		{ "TE: identity", S(H "Transfer-Encoding: identity\r\n\r\n"),
		    "unsupported Transfer-Encoding", 0 },
		{ "TE: xchunked", S(H "Transfer-Encoding: xchunked\r\n\r\n"),
		    "unsupported Transfer-Encoding", 0 },
		{ "TE: chunked twice",
		    S(H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
		    "unsupported Transfer-Encoding", 0 },
		{ "TE in HTTP/1.0",
		    S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
		    "Transfer-Encoding in HTTP/1.0", 0 },
		/* Host. */
		{ "duplicate Host", S(H "Host: a.example\r\n\r\n"), "duplicate Host", 50 },
		{ "no Host in 1.1", S("GET / HTTP/1.1\r\nX: y\r\n\r\n"), "no Host", 24 },
		{ "no Host in OPTIONS * 1.1", S("OPTIONS * HTTP/1.1\r\n\r\n"), "no Host", 0 },
		{ "empty Host", S("GET / HTTP/1.1\r\nHost: \r\n\r\n"), "bad host", 0 },
		{ "Host with userinfo", S("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"),
		    "bad host", 0 },
		{ "Host with space", S("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), "bad host", 0 },
		{ "Host with empty label", S("GET / HTTP/1.1\r\nHost: a..b\r\n\r\n"),
		    "bad host", 0 },
		{ "Host non-ASCII", S("GET / HTTP/1.1\r\nHost: caf\xc3\xa9.fr\r\n\r\n"),
		    "bad host", 0 },
		{ "Host numeric shorthand 127.1",
		    S("GET / HTTP/1.1\r\nHost: 127.1\r\n\r\n"), "bad host", 0 },
		{ "Host IPv4 leading zero", S("GET / HTTP/1.1\r\nHost: 010.0.0.1\r\n\r\n"),
		    "bad host", 0 },
		{ "Host unbracketed IPv6", S("GET / HTTP/1.1\r\nHost: ::1\r\n\r\n"),
		    "bad host", 0 },
		{ "Host unclosed bracket", S("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"),
		    "bad host", 0 },
		{ "Host bracketed name", S("GET / HTTP/1.1\r\nHost: [a.b]\r\n\r\n"),
		    "bad host", 0 },
		{ "Host IPv6 zone", S("GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n"),
		    "bad host", 0 },
		{ "Host junk after bracket", S("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"),
		    "bad host", 0 },
		{ "Host 254 bytes", S("GET / HTTP/1.1\r\nHost: "
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "\r\n\r\n"), "bad host", 0 },
		{ "Host port 0", S("GET / HTTP/1.1\r\nHost: a:0\r\n\r\n"), "bad port", 0 },
		{ "Host port 65536", S("GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n"),
		    "bad port", 0 },
		{ "Host empty port", S("GET / HTTP/1.1\r\nHost: a:\r\n\r\n"), "bad port", 0 },
		{ "Host port leading zero", S("GET / HTTP/1.1\r\nHost: a:080\r\n\r\n"),
		    "bad port", 0 },
		{ "Host port junk", S("GET / HTTP/1.1\r\nHost: a:80a\r\n\r\n"), "bad port", 0 },
		{ "Host two ports", S("GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n"),
		    "bad port", 0 },
		{ "absolute-form, other Host (confusion)",
		    S("GET http://allowed.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n"),
		    "Host differs from the request target", 0 },
		{ "absolute-form, other port",
		    S("GET http://a.example/ HTTP/1.1\r\nHost: a.example:8080\r\n\r\n"),
		    "Host differs from the request target", 0 },
		{ "absolute-form https, Host :80",
		    S("GET https://a.example/ HTTP/1.1\r\nHost: a.example:80\r\n\r\n"),
		    "Host differs from the request target", 0 },
		{ "CONNECT, Host other port",
		    S("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:8443\r\n\r\n"),
		    "Host differs from the request target", 0 },
		{ "CONNECT, Host other name",
		    S("CONNECT a.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n"),
		    "Host differs from the request target", 0 },
		{ "absolute-form userinfo",
		    S("GET http://u:p@a.example/ HTTP/1.1\r\n\r\n"),
		    "userinfo in request target", 0 },
		{ "absolute-form userinfo hiding the host",
		    S("GET http://a.example@b.example/ HTTP/1.1\r\n\r\n"),
		    "userinfo in request target", 0 },
		{ "CONNECT userinfo", S("CONNECT u@a.example:443 HTTP/1.1\r\n\r\n"),
		    "userinfo in request target", 0 },
		{ "absolute-form empty authority", S("GET http:///x HTTP/1.1\r\n\r\n"),
		    "bad host", 0 },
		{ "absolute-form bad port", S("GET http://a:99999/ HTTP/1.1\r\n\r\n"),
		    "bad port", 0 },
		{ "ftp scheme", S("GET ftp://a.example/ HTTP/1.1\r\n\r\n"),
		    "unsupported scheme", 0 },
		{ "ws scheme", S("GET ws://a.example/ HTTP/1.1\r\n\r\n"),
		    "unsupported scheme", 0 },
		{ "CONNECT without port", S("CONNECT a.example HTTP/1.1\r\n\r\n"),
		    "CONNECT target must be host:port", 0 },
		{ "CONNECT origin-form", S("CONNECT / HTTP/1.1\r\n\r\n"),
		    "CONNECT target must be host:port", 0 },
		{ "CONNECT absolute-form",
		    S("CONNECT http://a.example:443/ HTTP/1.1\r\n\r\n"),
		    "CONNECT target must be host:port", 0 },
		{ "CONNECT port 0", S("CONNECT a.example:0 HTTP/1.1\r\n\r\n"), "bad port", 0 },
		{ "CONNECT IPv6 unbracketed", S("CONNECT ::1:443 HTTP/1.1\r\n\r\n"),
		    "bad host", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_ecase(&cases[i], 0);
}

/* ---- limits ------------------------------------------------------------- */

/*
 * A head of exactly `total` bytes: the request line, then X-Pad fields
 * sized to fill, the last one trimmed to land exactly.
 */
static size_t
build_head(uint8_t *p, size_t total)
{
	static const char start[] = "GET / HTTP/1.1\r\nHost: a.example\r\n";
	size_t len = sizeof(start) - 1;

	memcpy(p, start, len);
	while (total - len - 2 > 0) {
		size_t room = total - len - 2;         /* before the blank line */
		size_t line = room > 1000 ? 1000 : room;

		if (room - line != 0 && room - line < 10)
			line = room - 10;               /* leave a whole line */
		if (line < 10)
			abort();
		memcpy(p + len, "X-Pad: ", 7);
		memset(p + len + 7, 'v', line - 9);
		memcpy(p + len + line - 2, "\r\n", 2);
		len += line;
	}
	memcpy(p + len, "\r\n", 2);
	return len + 2;
}

static void
test_limits(void)
{
	static uint8_t big[BIG];
	struct http_request r;
	const char *why;
	enum http_status st;
	size_t n;
	char line[64];
	int all = 1;

	n = build_head(big, HTTP_HEAD_MAX);
	tap_is_int(n, HTTP_HEAD_MAX, "built a head of exactly HTTP_HEAD_MAX");
	st = req_n(big, n, &r, &why);
	tap_is_str(http_status_str(st), "done", "head of exactly %d bytes: done",
	    HTTP_HEAD_MAX);
	tap_is_int(r.head_len, HTTP_HEAD_MAX, "head of HTTP_HEAD_MAX: head_len");
	memcpy(big + n, "GET /next", 9);
	st = req_n(big, n + 9, &r, &why);
	tap_ok(st == HTTP_DONE && r.head_len == HTTP_HEAD_MAX,
	    "head of HTTP_HEAD_MAX + following bytes: done, same head_len");
	st = req_n(big, n - 1, &r, &why);
	tap_is_str(http_status_str(st), "need_more",
	    "head of HTTP_HEAD_MAX less its last byte: need_more");
	check_req_growth("head of HTTP_HEAD_MAX", big, n + 9, &(struct http_request){
	    .method = (const char *)big, .method_len = 3, .form = HTTP_ORIGIN,
	    .target = (const char *)big + 4, .target_len = 1, .version_minor = 1,
	    .host = "a.example", .has_host = 1, .host_field = 1,
	    .content_length = -1, .head_len = HTTP_HEAD_MAX });

	n = build_head(big, HTTP_HEAD_MAX + 1);
	for (size_t i = HTTP_HEAD_MAX - 1; i <= n; i++) {
		st = req_n(big, i, &r, &why);
		if (i < HTTP_HEAD_MAX)
			all = all && st == HTTP_NEED_MORE;
		else
			all = all && st == HTTP_ERROR &&
			    strcmp(why, "head too large") == 0;
	}
	tap_ok(all, "head of HTTP_HEAD_MAX + 1: need_more until %d bytes, "
	    "then \"head too large\"", HTTP_HEAD_MAX);

	/* A field line that never ends. */
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	memset(big + 19, 'a', sizeof(big) - 19);
	st = req_n(big, HTTP_HEAD_MAX, &r, &why);
	tap_is_str(st == HTTP_ERROR ? why : "(no error)", "head too large",
	    "endless field: \"head too large\" at HTTP_HEAD_MAX");
	st = req_n(big, sizeof(big), &r, &why);
	tap_is_str(st == HTTP_ERROR ? why : "(no error)", "head too large",
	    "endless field, more bytes: same");
	st = req_n(big, HTTP_HEAD_MAX - 1, &r, &why);
	tap_is_str(http_status_str(st), "need_more",
	    "endless field, HTTP_HEAD_MAX - 1 bytes: need_more");
	/* A request line that never ends. */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', sizeof(big) - 5);
	st = req_n(big, HTTP_HEAD_MAX, &r, &why);
	tap_is_str(st == HTTP_ERROR ? why : "(no error)", "head too large",
	    "endless target: \"head too large\"");

	/* HTTP_FIELDS_MAX fields are fine, one more is not. */
	n = 0;
	memcpy(big, "GET / HTTP/1.1\r\n", 16);
	n = 16;
	for (int i = 0; i < HTTP_FIELDS_MAX; i++) {
		int w = i == 0 ? snprintf(line, sizeof(line), "Host: a.example\r\n") :
		    snprintf(line, sizeof(line), "X-%d: %d\r\n", i, i);

		memcpy(big + n, line, (size_t)w);
		n += (size_t)w;
	}
	memcpy(big + n, "\r\n", 2);
	st = req_n(big, n + 2, &r, &why);
	tap_ok(st == HTTP_DONE && r.head_len == n + 2,
	    "%d header fields: done", HTTP_FIELDS_MAX);
	memcpy(big + n, "X-last: 1\r\n\r\n", 13);
	{
		const struct ecase c = { "one field too many", big, n + 13,
		    "too many header fields", n + 1 };

		run_ecase(&c, 0);
	}
}

/* ---- responses ---------------------------------------------------------- */

struct rs {
	const char *what;
	const uint8_t *p;
	size_t n;
	int status, minor;
	const char *location;           /* NULL: none */
	long long cl;
	int chunked, close;
};

static void
run_rs(const struct rs *c)
{
	struct http_response r;
	const char *why;
	enum http_status st;

	st = resp_n(c->p, c->n, &r, &why);
	if (!tap_is_str(http_status_str(st), "done", "%s: done", c->what)) {
		tap_diag("  reason: %s", why != NULL ? why : "(none)");
		return;
	}
	tap_ok(why == NULL, "%s: no reason when done", c->what);
	tap_is_int(r.status, c->status, "%s: status", c->what);
	tap_is_int(r.version_minor, c->minor, "%s: version", c->what);
	if (c->location == NULL)
		tap_ok(r.location == NULL && r.location_len == 0,
		    "%s: no location", c->what);
	else {
		view_is(r.location, r.location_len, c->location, c->what,
		    "location");
		tap_ok(r.location > (const char *)c->p &&
		    r.location + r.location_len < (const char *)c->p + r.head_len,
		    "%s: location is a view into the head", c->what);
	}
	tap_is_int(r.content_length, c->cl, "%s: content_length", c->what);
	tap_is_int(r.chunked, c->chunked, "%s: chunked", c->what);
	tap_is_int(r.connection_close, c->close, "%s: connection_close", c->what);
	tap_is_int(r.head_len, blank_line_end(c->p, c->n), "%s: head_len", c->what);
	check_resp_growth(c->what, c->p, c->n, &r);
}

static void
test_responses(void)
{
	static const struct rs cases[] = {
		{ "200 keep-alive", S("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
		    200, 1, NULL, 2, 0, 0 },
		{ "no reason phrase, no space", S("HTTP/1.1 204\r\n\r\n"), 204, 1,
		    NULL, -1, 0, 0 },
		{ "empty reason phrase", S("HTTP/1.1 204 \r\n\r\n"), 204, 1, NULL,
		    -1, 0, 0 },
		{ "1.0 closes", S("HTTP/1.0 200 OK\r\n\r\n"), 200, 0, NULL, -1, 0, 1 },
		{ "redirect, OWS around Location",
		    S("HTTP/1.1 301 Moved\r\nLocation: \t/new?a=b \r\n\r\n"), 301, 1,
		    "/new?a=b", -1, 0, 0 },
		{ "chunked, close",
		    S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		    "Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), 200, 1, NULL,
		    -1, 1, 1 },
		{ "100 Continue", S("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
		    100, 1, NULL, -1, 0, 0 },
		{ "599 with obs-text reason", S("HTTP/1.1 599 \xe9t\xe9\r\n\r\n"),
		    599, 1, NULL, -1, 0, 0 },
	};
	static const struct ecase errors[] = {
		{ "not HTTP", S("SSH-2.0-OpenSSH_9.2\r\n"), "bad HTTP version", 1 },
		{ "HTTP/2 status", S("HTTP/2 200\r\n\r\n"), "unsupported HTTP version", 6 },
		{ "HTTP/1.2", S("HTTP/1.2 200 OK\r\n"), "unsupported HTTP version", 8 },
		{ "no status", S("HTTP/1.1\r\n\r\n"), "bad HTTP version", 9 },
		{ "two-digit status", S("HTTP/1.1 20 OK\r\n"), "bad status code", 12 },
		{ "status 600", S("HTTP/1.1 600 X\r\n"), "bad status code", 10 },
		{ "status 099", S("HTTP/1.1 099 X\r\n"), "bad status code", 10 },
		{ "four-digit status", S("HTTP/1.1 2000 X\r\n"), "bad status code", 13 },
		{ "control char in reason", S("HTTP/1.1 200 O\x01K\r\n"),
		    "bad reason phrase", 15 },
		{ "bare LF", S("HTTP/1.1 200 OK\n\n"), "bare LF", 16 },
		{ "bare LF in fields", S("HTTP/1.1 200 OK\r\nA: b\n"), "bare LF", 22 },
		{ "duplicate Location",
		    S("HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /b\r\n\r\n"),
		    "duplicate Location", 0 },
		{ "CL and TE",
		    S("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
		    "both Content-Length and Transfer-Encoding", 0 },
		{ "differing CL",
		    S("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
		    "multiple differing Content-Length", 0 },
		{ "TE gzip", S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
		    "unsupported Transfer-Encoding", 0 },
		{ "TE in 1.0", S("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
		    "Transfer-Encoding in HTTP/1.0", 0 },
		{ "obs-fold", S("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), "obs-fold", 24 },
		{ "space before colon", S("HTTP/1.1 200 OK\r\nLocation : /x\r\n\r\n"),
		    "whitespace before colon", 26 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_rs(&cases[i]);
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		run_ecase(&errors[i], 1);
}

/* ---- real captures ------------------------------------------------------ */

static uint8_t *
slurp(const char *path, size_t *n)
{
	static uint8_t buf[65536 + 1];
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return NULL;
	*n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return buf;
}

static void
test_real_requests(const char *srcdir)
{
	/* p and n are filled from the file. */
	static struct rq cases[] = {
		{ "real-curl-get.bin", NULL, 0, "GET", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/", 1, 1, "127.0.0.1", 28080, 1, -1, 0, 0, 0, 0 },
		{ "real-curl-get-localhost.bin", NULL, 0, "GET", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/a/b?c=d", 1, 1, "localhost", 28080, 0, -1, 0,
		    0, 0, 0 },
		{ "real-curl-post.bin", NULL, 0, "POST", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/form", 1, 1, "127.0.0.1", 28080, 1, 16, 0, 0,
		    0, 0 },
		{ "real-curl-http10.bin", NULL, 0, "GET", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/old", 0, 1, "127.0.0.1", 28080, 1, -1, 0, 1,
		    0, 0 },
		{ "real-curl-proxy-absolute.bin", NULL, 0, "GET", HTTP_ABSOLUTE,
		    HTTP_SCHEME_HTTP, "http://example.com/index.html", 1, 1,
		    "example.com", 0, 0, -1, 0, 0, 0, 0 },
		{ "real-curl-proxy-connect.bin", NULL, 0, "CONNECT", HTTP_AUTHORITY,
		    HTTP_SCHEME_NONE, "example.com:443", 1, 1, "example.com", 443, 0,
		    -1, 0, 0, 0, 0 },
		{ "real-curl-proxy-connect-ipv6.bin", NULL, 0, "CONNECT",
		    HTTP_AUTHORITY, HTTP_SCHEME_NONE, "[2001:db8::1]:8443", 1, 1,
		    "2001:db8::1", 8443, 1, -1, 0, 0, 0, 0 },
		{ "real-curl-expect.bin", NULL, 0, "POST", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/big", 1, 1, "127.0.0.1", 28080, 1, 2000, 0, 0,
		    1, 0 },
		{ "real-curl-websocket-upgrade.bin", NULL, 0, "GET", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/ws", 1, 1, "127.0.0.1", 28080, 1, -1, 0, 0, 0,
		    1 },
		{ "real-python-httpclient-post.bin", NULL, 0, "POST", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/submit?x=1", 1, 1, "127.0.0.1", 28080, 1, 8, 0,
		    0, 0, 0 },
		{ "real-python-httpclient-chunked.bin", NULL, 0, "PUT", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/upload", 1, 1, "127.0.0.1", 28080, 1, -1, 1, 0,
		    0, 0 },
		{ "real-python-urllib.bin", NULL, 0, "GET", HTTP_ORIGIN,
		    HTTP_SCHEME_NONE, "/index.html?q=%20a", 1, 1, "localhost", 28080,
		    0, -1, 0, 1, 0, 0 },
		{ "real-python-urllib-proxy.bin", NULL, 0, "GET", HTTP_ABSOLUTE,
		    HTTP_SCHEME_HTTP, "http://Example.COM/path", 1, 1, "example.com",
		    0, 0, -1, 0, 1, 0, 0 },
	};
	char path[2048];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/http_request/%s",
		    srcdir, cases[i].what);
		cases[i].p = slurp(path, &cases[i].n);
		if (!tap_ok(cases[i].p != NULL, "%s: read", cases[i].what))
			continue;
		run_rq(&cases[i]);
	}
}

static void
test_real_responses(const char *srcdir)
{
	static struct rs cases[] = {
		{ "real-python-httpserver-200.bin", NULL, 0, 200, 0, NULL, 25, 0, 1 },
		{ "real-python-httpserver-301.bin", NULL, 0, 301, 0, "/dir/", 0, 0, 1 },
		{ "real-python-httpserver-404.bin", NULL, 0, 404, 0, NULL, 335, 0, 1 },
		{ "real-openssl-s_server-www.bin", NULL, 0, 200, 0, NULL, -1, 0, 1 },
		{ "real-nginx-200.bin", NULL, 0, 200, 1, NULL, 25, 0, 1 },
		{ "real-nginx-301.bin", NULL, 0, 301, 1,
		    "https://www.example.org/new?x=1", 169, 0, 1 },
		{ "real-nginx-302-relative.bin", NULL, 0, 302, 1,
		    "http://localhost:28082/relative/path", 145, 0, 1 },
		{ "real-nginx-404-http10.bin", NULL, 0, 404, 1, NULL, 153, 0, 1 },
		{ "real-nginx-403-after-bare-lf-request.bin", NULL, 0, 403, 1, NULL,
		    153, 0, 0 },
		{ "real-nginx-head-keepalive.bin", NULL, 0, 200, 1, NULL, 25, 0, 0 },
	};
	char path[2048];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/http_response/%s",
		    srcdir, cases[i].what);
		cases[i].p = slurp(path, &cases[i].n);
		if (!tap_ok(cases[i].p != NULL, "%s: read", cases[i].what))
			continue;
		run_rs(&cases[i]);
	}
}

static void
test_call(void)
{
	struct http_request r;
	struct http_response s;
	enum http_status st;

	st = http_parse_request(NULL, 0, &r, NULL);
	tap_ok(st == HTTP_NEED_MORE && is_zero(&r, sizeof(r)),
	    "no bytes, reason NULL: need_more");
	st = http_parse_response(NULL, 0, &s, NULL);
	tap_ok(st == HTTP_NEED_MORE && is_zero(&s, sizeof(s)),
	    "response, no bytes: need_more");
	st = http_parse_request((const uint8_t *)"\x16", 1, &r, NULL);
	tap_is_str(http_status_str(st), "error", "error with reason NULL");
	tap_is_str(http_status_str(99), "unknown", "status_str out of range");
	tap_is_str(http_target_form_str(HTTP_ASTERISK), "asterisk", "form_str");
}

/* Where the corpus is: $top_srcdir (make check), else from __FILE__. */
static void
find_srcdir(char *out, size_t cap)
{
	const char *env = getenv("top_srcdir");
	const char *file = __FILE__, *tail = "tests/unit/test_http.c";
	size_t n = strlen(file), t = strlen(tail);

	if (env != NULL && env[0] != '\0') {
		snprintf(out, cap, "%s", env);
	} else if (n >= t && strcmp(file + n - t, tail) == 0) {
		snprintf(out, cap, "%.*s", (int)(n - t), file);
		if (out[0] == '\0')
			snprintf(out, cap, ".");
	} else {
		snprintf(out, cap, ".");
	}
}

/* Body framing: each case whole and one byte at a time, same answer. */
static void
test_bodies(void)
{
	static const struct {
		enum http_body_mode mode;
		uint64_t length;
		const char *in;
		enum http_status want;
		size_t used;            /* body bytes */
		const char *why;
	} cases[] = {
		{ HTTP_BODY_LENGTH, 5, "helloGET", HTTP_DONE, 5, NULL },
		{ HTTP_BODY_LENGTH, 9, "hello", HTTP_NEED_MORE, 5, NULL },
		{ HTTP_BODY_NONE, 0, "GET", HTTP_DONE, 0, NULL },
		{ HTTP_BODY_CLOSE, 0, "until the end", HTTP_NEED_MORE, 13, NULL },
		{ HTTP_BODY_CHUNKED, 0, "5\r\nhello\r\n0\r\n\r\nGET", HTTP_DONE, 15, NULL },
		{ HTTP_BODY_CHUNKED, 0, "A;x=1\r\n0123456789\r\n0\r\nT: v\r\n\r\n",
		  HTTP_DONE, 30, NULL },
		{ HTTP_BODY_CHUNKED, 0, "5\r\nhel", HTTP_NEED_MORE, 6, NULL },
		{ HTTP_BODY_CHUNKED, 0, "5\nhello\r\n", HTTP_ERROR, 1,
		  "bare LF after the chunk size" },
		{ HTTP_BODY_CHUNKED, 0, "x\r\n", HTTP_ERROR, 0, "chunk size is not hex" },
		{ HTTP_BODY_CHUNKED, 0, "2\r\nhello\r\n", HTTP_ERROR, 5,
		  "chunk data longer than its size" },
		{ HTTP_BODY_CHUNKED, 0, "1000000000000000\r\n", HTTP_ERROR, 15,
		  "chunk size too large" },
		{ HTTP_BODY_CHUNKED, 0, "0\r\nbad\nfield\r\n\r\n", HTTP_ERROR, 6,
		  "bad byte in a trailer field" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const uint8_t *in = (const uint8_t *)cases[i].in;
		size_t len = strlen(cases[i].in), used = 0, total = 0;
		struct http_body b;
		const char *why = NULL;
		enum http_status st;

		http_body_init(&b, cases[i].mode, cases[i].length);
		st = http_body_scan(&b, in, len, &used, &why);
		tap_ok(st == cases[i].want && used == cases[i].used &&
		    (cases[i].why == NULL ? why == NULL :
		    why != NULL && strcmp(why, cases[i].why) == 0),
		    "body %zu whole: %s, %zu bytes, %s", i, http_status_str(st), used,
		    why ? why : "-");
		http_body_init(&b, cases[i].mode, cases[i].length);
		st = HTTP_NEED_MORE;
		for (size_t k = 0; k < len && st == HTTP_NEED_MORE; k++) {
			st = http_body_scan(&b, in + k, 1, &used, &why);
			total += used;
		}
		if (len == 0 || cases[i].mode == HTTP_BODY_NONE)
			st = http_body_scan(&b, in, 0, &total, &why);
		tap_ok(st == cases[i].want && total == cases[i].used,
		    "body %zu byte by byte: the same answer", i);
	}
	{
		struct http_response resp;

		memset(&resp, 0, sizeof(resp));
		resp.status = 200;
		resp.content_length = -1;
		tap_ok(http_response_body(&resp, 0, 0) == HTTP_BODY_CLOSE,
		    "a response without framing ends at close");
		tap_ok(http_response_body(&resp, 1, 0) == HTTP_BODY_NONE,
		    "a HEAD response has no body");
		tap_ok(http_response_body(&resp, 0, 1) == HTTP_BODY_NONE,
		    "a 2xx to CONNECT starts a tunnel, not a body");
		resp.status = 304;
		tap_ok(http_response_body(&resp, 0, 0) == HTTP_BODY_NONE, "304: no body");
		resp.status = 200;
		resp.chunked = 1;
		tap_ok(http_response_body(&resp, 0, 0) == HTTP_BODY_CHUNKED, "chunked");
		resp.chunked = 0;
		resp.content_length = 0;
		tap_ok(http_response_body(&resp, 0, 0) == HTTP_BODY_NONE,
		    "Content-Length: 0 is no body");
	}
}

/* Location references against a request URL, as the redirect lines use. */
static void
test_locations(void)
{
	static const struct {
		const char *base, *loc, *out, *host;
		int https;
		unsigned port;
		int rc;
	} cases[] = {
		{ "http://a.test/x/y?q=1", "http://B.Test./z", "http://B.Test./z", "b.test", 0, 80, 0 },
		{ "http://a.test/x/y", "https://b.test:8443/z", "https://b.test:8443/z", "b.test", 1, 8443, 0 },
		{ "https://a.test/x", "//cdn.test/p", "https://cdn.test/p", "cdn.test", 1, 443, 0 },
		{ "http://a.test:8080/x/y?q", "/abs?k", "http://a.test:8080/abs?k", "a.test", 0, 8080, 0 },
		{ "http://a.test/x/y?q=1", "rel", "http://a.test/x/rel", "a.test", 0, 80, 0 },
		{ "http://a.test", "rel", "http://a.test/rel", "a.test", 0, 80, 0 },
		{ "http://a.test/x/y?q=1#f", "?k=2", "http://a.test/x/y?k=2", "a.test", 0, 80, 0 },
		{ "http://a.test/", "http://user:pw@b.test:81/", "http://user:pw@b.test:81/", "b.test", 0, 81, 0 },
		{ "http://a.test/", "http://[2001:db8::1]:8080/", "http://[2001:db8::1]:8080/", "2001:db8::1", 0, 8080, 0 },
		{ "http://a.test/", "http://192.0.2.7/", "http://192.0.2.7/", "192.0.2.7", 0, 80, 0 },
		{ "http://a.test/", "ftp://b.test/", NULL, "", 0, 0, -1 },
		{ "http://a.test/", "http:///nohost", NULL, "", 0, 0, -1 },
		{ "http://a.test/", "http://b.test:0/", NULL, "", 0, 0, -1 },
		{ "http://a.test/", "http://b.test:99999/", NULL, "", 0, 0, -1 },
		{ "http://a.test/", "http://b_test!/", NULL, "", 0, 0, -1 },
		{ "http://a.test/", "http://[2001:db8::1/", NULL, "", 0, 0, -1 },
		/* A browser goes to b.test, curl and Go to a.test. */
		{ "http://a.test/", "http://b.test\\@a.test/x", NULL, "", 0, 0, -1 },
		{ "http://a.test/", "https://b.test:443\\@a.test/", NULL, "", 0, 0, -1 },
		{ "http://a.test/", "http://a.test/p\\@x", "http://a.test/p\\@x", "a.test", 0, 80, 0 },
		{ "http://a.test/", "\\\\b.test/x", NULL, "", 0, 0, -1 },
		{ "http://a.test/", "/\\b.test/x", NULL, "", 0, 0, -1 },
		{ "http://a.test/", "\\/b.test/x", NULL, "", 0, 0, -1 },
		{ "http://a.test/d/", "x\\y", "http://a.test/d/x\\y", "a.test", 0, 80, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[256], host[256];
		int https = -1, rc;
		uint16_t port = 1;

		rc = http_location_resolve(cases[i].base, cases[i].loc,
		    strlen(cases[i].loc), out, sizeof(out), &https, host,
		    sizeof(host), &port);
		if (cases[i].rc != 0) {
			tap_ok(rc == -1, "Location %s against %s: refused (rc %d)",
			    cases[i].loc, cases[i].base, rc);
			continue;
		}
		tap_ok(rc == 0 && strcmp(out, cases[i].out) == 0 &&
		    strcmp(host, cases[i].host) == 0 && https == cases[i].https &&
		    port == cases[i].port, "Location %s against %s: %s, %s %s:%u",
		    cases[i].loc, cases[i].base, out, https ? "https" : "http", host,
		    (unsigned)port);
	}
	{
		char out[16], host[256];
		int https;
		uint16_t port;

		tap_ok(http_location_resolve("http://a.test/", "http://b.test/a-long-path",
		    25, out, sizeof(out), &https, host, sizeof(host), &port) == -1,
		    "a Location that does not fit the output is refused, not cut");
	}
}

/* Whether a Host field was sent: an absolute-form request may come
 * without one, and the gateway then adds the URL's (RFC 9112 3.2.2). */
static void
test_host_field(void)
{
	static const struct {
		const char *head;
		int host_field;
	} cases[] = {
		{ "GET http://a.test:8080/x HTTP/1.1\r\n\r\n", 0 },
		{ "GET http://a.test/x HTTP/1.0\r\n\r\n", 0 },
		{ "GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n", 1 },
		{ "GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n", 1 },
		{ "CONNECT a.test:443 HTTP/1.1\r\n\r\n", 0 },
	};
	struct http_request r;
	const char *why;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum http_status st = http_parse_request(
		    (const uint8_t *)cases[i].head, strlen(cases[i].head), &r, &why);

		tap_ok(st == HTTP_DONE && r.has_host == 1 &&
		    r.host_field == cases[i].host_field,
		    "host_field %d: %.40s", cases[i].host_field, cases[i].head);
	}
}

int
main(void)
{
	char srcdir[1024];

	find_srcdir(srcdir, sizeof(srcdir));
	test_call();
	test_requests_valid();
	test_request_errors();
	test_limits();
	test_responses();
	test_real_requests(srcdir);
	test_real_responses(srcdir);
	test_bodies();
	test_locations();
	test_host_field();
	return tap_done();
}

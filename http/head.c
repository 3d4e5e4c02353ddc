/*
 * HTTP/1.x request-head and response-head parsers (RFC 9112 sections 2-7,
 * RFC 9110 sections 5-8). See http/http.h for the contract and for where
 * these parsers are stricter than the RFC allows, and why.
 *
 * Wire format (RFC 9112 section 2.1), every line ending in CRLF:
 *
 *   request-line  = method SP request-target SP HTTP-version CRLF
 *   status-line   = HTTP-version SP status-code SP [ reason-phrase ] CRLF
 *   field-line    = field-name ":" OWS field-value OWS CRLF   (0..100 of them)
 *   end of head   = CRLF
 *
 *   method        = token            (tchar: ALPHA DIGIT !#$%&'*+-.^_`|~)
 *   HTTP-version  = "HTTP/1.0" | "HTTP/1.1"   (others refused)
 *   status-code   = 3DIGIT, 100..599
 *   field-name    = token
 *   field-value   = VCHAR, obs-text (0x80-0xff), SP, HTAB
 *   OWS           = *( SP / HTAB )
 *
 * Stateless, like proxy/proxy.c: the caller re-parses everything received
 * so far each time more arrives. The head is read strictly left to right,
 * and every check is made as soon as the bytes it needs are there, on
 * those bytes and the ones before them only: a prefix of a valid head only
 * ever gets NEED_MORE, and a decision taken on a prefix is the one every
 * longer input gets. Only the first HTTP_HEAD_MAX bytes are ever looked at:
 * running out of them before the blank line is "head too large".
 *
 * Per-field meaning (Host, Content-Length, ...) is applied when the field's
 * line is complete; what needs the whole head (no Host, Host against the
 * target) when the blank line arrives.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "sni/cursor.h"
#include "sni/sni.h"

/* Reasons: short, static, stable (logs and tests compare them). */
#define R_TOO_LARGE     "head too large"
#define R_TOO_MANY      "too many header fields"
#define R_BARE_LF       "bare LF"
#define R_BARE_CR       "bare CR"
#define R_BAD_METHOD    "bad method"
#define R_BAD_TARGET    "bad request target"
#define R_BAD_VERSION   "bad HTTP version"
#define R_UNSUP_VERSION "unsupported HTTP version"
#define R_BAD_STATUS    "bad status code"
#define R_BAD_REASON    "bad reason phrase"
#define R_OBS_FOLD      "obs-fold"
#define R_SPACE_COLON   "whitespace before colon"
#define R_BAD_NAME      "bad field name"
#define R_NO_COLON      "field without colon"
#define R_BAD_VALUE     "bad field value"
#define R_BAD_CL        "bad Content-Length"
#define R_DIFF_CL       "multiple differing Content-Length"
#define R_CL_TE         "both Content-Length and Transfer-Encoding"
#define R_BAD_TE        "unsupported Transfer-Encoding"
#define R_TE_10         "Transfer-Encoding in HTTP/1.0"
#define R_DUP_HOST      "duplicate Host"
#define R_BAD_HOST      "bad host"
#define R_BAD_PORT      "bad port"
#define R_NO_HOST       "no Host"
#define R_HOST_DIFFERS  "Host differs from the request target"
#define R_USERINFO      "userinfo in request target"
#define R_SCHEME        "unsupported scheme"
#define R_CONNECT       "CONNECT target must be host:port"
#define R_DUP_LOCATION  "duplicate Location"

#define CL_DIGITS_MAX   18      /* 10^18 - 1 fits an int64_t */

/* ---- reading ------------------------------------------------------------ */

struct px {
	struct cur c;           /* what is left of the first HTTP_HEAD_MAX bytes */
	const uint8_t *base;
	int capped;             /* c ends at HTTP_HEAD_MAX, not at len */
	const char *why;
};

/*
 * The next byte is needed and there is none: wait for more, unless the
 * window is already HTTP_HEAD_MAX bytes, when no head can end in time.
 */
static enum http_status
out_of_bytes(struct px *x)
{
	if (x->capped) {
		x->why = R_TOO_LARGE;
		return HTTP_ERROR;
	}
	return HTTP_NEED_MORE;
}

static enum http_status
fail(struct px *x, const char *why)
{
	x->why = why;
	return HTTP_ERROR;
}

static int
peek(const struct px *x, uint8_t *ch)
{
	if (x->c.len == 0)
		return -1;
	*ch = x->c.p[0];
	return 0;
}

static int
is_tchar(uint8_t ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9'))
		return 1;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int
is_digit(uint8_t ch)
{
	return ch >= '0' && ch <= '9';
}

/* field-vchar / obs-text / SP / HTAB */
static int
is_value_char(uint8_t ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

/* The CRLF that ends a line: the cursor is at the CR or at what should be. */
static enum http_status
crlf(struct px *x)
{
	uint8_t ch;

	if (peek(x, &ch) == -1)
		return out_of_bytes(x);
	if (ch == '\n')
		return fail(x, R_BARE_LF);
	if (ch != '\r')
		return fail(x, R_BARE_CR);      /* callers stop only at CR or LF */
	(void)cur_skip(&x->c, 1);
	if (peek(x, &ch) == -1)
		return out_of_bytes(x);
	if (ch != '\n')
		return fail(x, R_BARE_CR);
	(void)cur_skip(&x->c, 1);
	return HTTP_DONE;
}

/*
 * "HTTP/1.0" or "HTTP/1.1". Another major or minor digit is a version we
 * do not speak; anything else is not a version at all. The byte after it
 * is the caller's to check.
 */
static enum http_status
version(struct px *x, int *minor)
{
	static const char want[] = "HTTP/1.";
	uint8_t ch;

	for (size_t i = 0; i < sizeof(want) - 1; i++) {
		if (peek(x, &ch) == -1)
			return out_of_bytes(x);
		if (ch != (uint8_t)want[i])
			return fail(x, i == 5 && is_digit(ch) ?
			    R_UNSUP_VERSION : R_BAD_VERSION);
		(void)cur_skip(&x->c, 1);
	}
	if (peek(x, &ch) == -1)
		return out_of_bytes(x);
	if (ch != '0' && ch != '1')
		return fail(x, is_digit(ch) ? R_UNSUP_VERSION : R_BAD_VERSION);
	(void)cur_skip(&x->c, 1);
	*minor = ch - '0';
	return HTTP_DONE;
}

struct field {
	const uint8_t *name, *value;
	size_t name_len, value_len;     /* value without surrounding OWS */
};

/*
 * One field line, or the empty line that ends the head (*end set). The
 * first byte decides which: CR starts the end, SP/HTAB is obs-fold (or
 * whitespace before the first field, RFC 9112 section 2.2), anything else
 * starts a name, which must be a token ending in ':'.
 */
static enum http_status
field_line(struct px *x, size_t nfields, struct field *f, int *end)
{
	const uint8_t *start;
	enum http_status st;
	uint8_t ch;

	*end = 0;
	if (peek(x, &ch) == -1)
		return out_of_bytes(x);
	if (ch == '\r' || ch == '\n') {
		if ((st = crlf(x)) == HTTP_DONE)
			*end = 1;
		return st;
	}
	if (ch == ' ' || ch == '\t')
		return fail(x, R_OBS_FOLD);
	if (nfields == HTTP_FIELDS_MAX)
		return fail(x, R_TOO_MANY);

	f->name = x->c.p;
	while (peek(x, &ch) == 0 && is_tchar(ch))
		(void)cur_skip(&x->c, 1);
	f->name_len = (size_t)(x->c.p - f->name);
	if (peek(x, &ch) == -1)
		return out_of_bytes(x);
	if (ch == ' ' || ch == '\t')
		return fail(x, f->name_len > 0 ? R_SPACE_COLON : R_OBS_FOLD);
	if (ch == '\r' || ch == '\n')
		return fail(x, R_NO_COLON);
	if (ch != ':' || f->name_len == 0)
		return fail(x, R_BAD_NAME);
	(void)cur_skip(&x->c, 1);

	start = x->c.p;
	for (;;) {
		if (peek(x, &ch) == -1)
			return out_of_bytes(x);
		if (ch == '\r' || ch == '\n')
			break;
		if (!is_value_char(ch))
			return fail(x, R_BAD_VALUE);
		(void)cur_skip(&x->c, 1);
	}
	f->value = start;
	f->value_len = (size_t)(x->c.p - start);
	while (f->value_len > 0 &&
	    (f->value[0] == ' ' || f->value[0] == '\t')) {
		f->value++;
		f->value_len--;
	}
	while (f->value_len > 0 && (f->value[f->value_len - 1] == ' ' ||
	    f->value[f->value_len - 1] == '\t'))
		f->value_len--;
	return crlf(x);
}

static int
name_is(const struct field *f, const char *name)
{
	return f->name_len == strlen(name) &&
	    strncasecmp((const char *)f->name, name, f->name_len) == 0;
}

static int
bytes_are(const uint8_t *p, size_t n, const char *word)
{
	return n == strlen(word) && strncasecmp((const char *)p, word, n) == 0;
}

/* ---- fields both kinds of head share ------------------------------------ */

struct framing {
	int64_t content_length;         /* -1 none */
	int chunked, te_seen;
	int opt_close, opt_keepalive, opt_upgrade;
};

/*
 * Content-Length = 1*DIGIT (RFC 9110 section 8.6). A repeat of the same
 * value is harmless and accepted; a different value, or Content-Length
 * beside Transfer-Encoding (RFC 9112 section 6.3 point 3), is exactly the
 * ambiguity request smuggling lives on.
 */
static enum http_status
content_length(struct px *x, struct framing *fr, const struct field *f)
{
	int64_t v = 0;

	if (f->value_len == 0 || f->value_len > CL_DIGITS_MAX)
		return fail(x, R_BAD_CL);
	for (size_t i = 0; i < f->value_len; i++) {
		if (!is_digit(f->value[i]))
			return fail(x, R_BAD_CL);
		v = v * 10 + (f->value[i] - '0');
	}
	if (fr->content_length != -1 && fr->content_length != v)
		return fail(x, R_DIFF_CL);
	if (fr->te_seen)
		return fail(x, R_CL_TE);
	fr->content_length = v;
	return HTTP_DONE;
}

/*
 * Transfer-Encoding: exactly "chunked", once (see http.h). HTTP/1.0 has no
 * chunked coding, so a 1.0 message with one is faulty (RFC 9112 6.1).
 */
static enum http_status
transfer_encoding(struct px *x, struct framing *fr, const struct field *f,
    int minor)
{
	if (minor == 0)
		return fail(x, R_TE_10);
	if (fr->te_seen || !bytes_are(f->value, f->value_len, "chunked"))
		return fail(x, R_BAD_TE);
	if (fr->content_length != -1)
		return fail(x, R_CL_TE);
	fr->te_seen = 1;
	fr->chunked = 1;
	return HTTP_DONE;
}

/* Connection = #connection-option: the options we act on are flags. */
static void
connection(struct framing *fr, const struct field *f)
{
	const uint8_t *p = f->value, *end = f->value + f->value_len;

	while (p < end) {
		const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
		const uint8_t *e = comma != NULL ? comma : end;
		const uint8_t *s = p;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (bytes_are(s, (size_t)(e - s), "close"))
			fr->opt_close = 1;
		else if (bytes_are(s, (size_t)(e - s), "keep-alive"))
			fr->opt_keepalive = 1;
		else if (bytes_are(s, (size_t)(e - s), "upgrade"))
			fr->opt_upgrade = 1;
		p = comma != NULL ? comma + 1 : end;
	}
}

static int
closes(const struct framing *fr, int minor)
{
	if (fr->opt_close)
		return 1;
	return minor == 0 && !fr->opt_keepalive;
}

/* ---- authorities -------------------------------------------------------- */

struct authority {
	char host[HTTP_HOST_MAX + 1];
	uint16_t port;                  /* 0: none given */
	int is_ip;
};

/* port = 1*5DIGIT, 1..65535, no leading zero. */
static int
parse_port(const uint8_t *p, size_t n, uint16_t *port)
{
	unsigned long v = 0;

	if (n == 0 || n > 5 || p[0] == '0')
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return -1;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/*
 * authority = host [ ":" port ], with host one of
 *   "[" IPv6address "]"     -> is_ip, stored in inet_ntop form
 *   IPv4address             -> is_ip (inet_pton's strict dotted quad)
 *   reg-name                -> sni_name_normalize(): LDH labels, lower case
 * No userinfo (the caller refuses '@' first, with its own reason), no
 * IPvFuture, no zone identifier, no empty port: each has a meaning some
 * server would give it and none that a client of ours needs.
 * Returns NULL or the reason.
 */
static const char *
parse_authority(const uint8_t *p, size_t n, struct authority *a)
{
	const uint8_t *host = p, *colon;
	size_t hlen;
	char tmp[INET6_ADDRSTRLEN];

	memset(a, 0, sizeof(*a));
	if (n == 0)
		return R_BAD_HOST;
	if (p[0] == '[') {
		const uint8_t *close = memchr(p, ']', n);
		struct in6_addr in6;

		if (close == NULL)
			return R_BAD_HOST;
		hlen = (size_t)(close - p) - 1;
		if (hlen == 0 || hlen >= sizeof(tmp))
			return R_BAD_HOST;
		memcpy(tmp, p + 1, hlen);
		tmp[hlen] = '\0';
		if (inet_pton(AF_INET6, tmp, &in6) != 1 ||
		    inet_ntop(AF_INET6, &in6, a->host, sizeof(a->host)) == NULL)
			return R_BAD_HOST;
		a->is_ip = 1;
		colon = close + 1;
		if (colon == p + n)
			return NULL;
		if (*colon != ':')
			return R_BAD_HOST;
	} else {
		struct in_addr in4;

		colon = memchr(p, ':', n);
		hlen = colon != NULL ? (size_t)(colon - p) : n;
		if (hlen == 0)
			return R_BAD_HOST;
		if (hlen < sizeof(tmp)) {
			memcpy(tmp, host, hlen);
			tmp[hlen] = '\0';
			if (inet_pton(AF_INET, tmp, &in4) == 1) {
				a->is_ip = 1;
				if (inet_ntop(AF_INET, &in4, a->host,
				    sizeof(a->host)) == NULL)
					return R_BAD_HOST;
			}
		}
		if (!a->is_ip && sni_name_normalize(host, hlen, a->host) == -1)
			return R_BAD_HOST;
		if (colon == NULL)
			return NULL;
	}
	if (parse_port(colon + 1, (size_t)(p + n - colon - 1), &a->port) == -1) {
		a->host[0] = '\0';
		return R_BAD_PORT;
	}
	return NULL;
}

/* ---- requests ----------------------------------------------------------- */

static int
is_target_char(uint8_t ch)
{
	/* Visible ASCII. A fragment is never sent (RFC 9110 section 7.1),
	 * and servers disagree on whether '#' ends the path. */
	return ch > 0x20 && ch < 0x7f && ch != '#';
}

/*
 * The request target against the method (RFC 9112 section 3.2):
 *   CONNECT         authority-form, host:port with the port
 *   OPTIONS "*"     asterisk-form
 *   "/..."          origin-form
 *   "http://..." or "https://..." (scheme case-insensitive)  absolute-form:
 *                   the authority runs to the first '/' or '?'
 * Anything else, "*" with another method and authority-form without
 * CONNECT included, is a bad target.
 */
static enum http_status
classify_target(struct px *x, struct http_request *r, struct authority *ta)
{
	const uint8_t *t = (const uint8_t *)r->target, *a, *end;
	size_t n = r->target_len, skip;
	const char *why;

	if (r->method_len == 7 && memcmp(r->method, "CONNECT", 7) == 0) {
		r->form = HTTP_AUTHORITY;
		if (memchr(t, '@', n) != NULL)
			return fail(x, R_USERINFO);
		if (memchr(t, '/', n) != NULL || memchr(t, '?', n) != NULL)
			return fail(x, R_CONNECT);
		if ((why = parse_authority(t, n, ta)) != NULL)
			return fail(x, why);
		if (ta->port == 0)
			return fail(x, R_CONNECT);
		return HTTP_DONE;
	}
	if (n == 1 && t[0] == '*') {
		if (r->method_len != 7 || memcmp(r->method, "OPTIONS", 7) != 0)
			return fail(x, R_BAD_TARGET);
		r->form = HTTP_ASTERISK;
		return HTTP_DONE;
	}
	if (t[0] == '/') {
		r->form = HTTP_ORIGIN;
		return HTTP_DONE;
	}
	if (n >= 7 && strncasecmp((const char *)t, "http://", 7) == 0) {
		r->scheme = HTTP_SCHEME_HTTP;
		skip = 7;
	} else if (n >= 8 && strncasecmp((const char *)t, "https://", 8) == 0) {
		r->scheme = HTTP_SCHEME_HTTPS;
		skip = 8;
	} else {
		/* A scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
		size_t i = 0;

		while (i < n && (((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'z') ||
		    (i > 0 && (is_digit(t[i]) || t[i] == '+' || t[i] == '-' ||
		    t[i] == '.'))))
			i++;
		if (i > 0 && i + 2 < n && t[i] == ':' && t[i + 1] == '/' &&
		    t[i + 2] == '/')
			return fail(x, R_SCHEME);
		return fail(x, R_BAD_TARGET);
	}
	r->form = HTTP_ABSOLUTE;
	a = t + skip;
	end = a;
	while (end < t + n && *end != '/' && *end != '?')
		end++;
	if (memchr(a, '@', (size_t)(end - a)) != NULL)
		return fail(x, R_USERINFO);
	if ((why = parse_authority(a, (size_t)(end - a), ta)) != NULL)
		return fail(x, why);
	return HTTP_DONE;
}

/* method SP request-target SP HTTP-version CRLF, single spaces. */
static enum http_status
request_line(struct px *x, struct http_request *r)
{
	const uint8_t *start;
	enum http_status st;
	uint8_t ch;

	start = x->c.p;
	while (peek(x, &ch) == 0 && is_tchar(ch))
		(void)cur_skip(&x->c, 1);
	if (peek(x, &ch) == -1)
		return out_of_bytes(x);
	if (ch != ' ' || x->c.p == start)
		return fail(x, ch == '\n' ? R_BARE_LF : R_BAD_METHOD);
	r->method = (const char *)start;
	r->method_len = (size_t)(x->c.p - start);
	(void)cur_skip(&x->c, 1);

	start = x->c.p;
	while (peek(x, &ch) == 0 && is_target_char(ch))
		(void)cur_skip(&x->c, 1);
	if (peek(x, &ch) == -1)
		return out_of_bytes(x);
	if (ch != ' ' || x->c.p == start)
		return fail(x, ch == '\n' ? R_BARE_LF : R_BAD_TARGET);
	r->target = (const char *)start;
	r->target_len = (size_t)(x->c.p - start);
	(void)cur_skip(&x->c, 1);

	if ((st = version(x, &r->version_minor)) != HTTP_DONE)
		return st;
	if (peek(x, &ch) == -1)
		return out_of_bytes(x);
	if (ch != '\r' && ch != '\n')
		return fail(x, R_BAD_VERSION);
	return crlf(x);
}

static int
same_authority(const struct authority *a, const struct authority *b,
    uint16_t dflt)
{
	uint16_t pa = a->port != 0 ? a->port : dflt;
	uint16_t pb = b->port != 0 ? b->port : dflt;

	return strcmp(a->host, b->host) == 0 && pa == pb;
}

static enum http_status
parse_request(struct px *x, struct http_request *r)
{
	struct authority ta, hh;
	struct framing fr;
	struct field f;
	size_t nfields = 0;
	enum http_status st;
	int end = 0, has_hh = 0, has_upgrade = 0;
	const char *why;

	memset(&fr, 0, sizeof(fr));
	fr.content_length = -1;
	memset(&ta, 0, sizeof(ta));
	if ((st = request_line(x, r)) != HTTP_DONE)
		return st;
	if ((st = classify_target(x, r, &ta)) != HTTP_DONE)
		return st;

	for (;;) {
		if ((st = field_line(x, nfields, &f, &end)) != HTTP_DONE)
			return st;
		if (end)
			break;
		nfields++;
		if (name_is(&f, "host")) {
			if (has_hh)
				return fail(x, R_DUP_HOST);
			if (memchr(f.value, '@', f.value_len) != NULL)
				return fail(x, R_BAD_HOST);
			if ((why = parse_authority(f.value, f.value_len, &hh)) != NULL)
				return fail(x, why);
			has_hh = 1;
		} else if (name_is(&f, "content-length")) {
			if ((st = content_length(x, &fr, &f)) != HTTP_DONE)
				return st;
		} else if (name_is(&f, "transfer-encoding")) {
			st = transfer_encoding(x, &fr, &f, r->version_minor);
			if (st != HTTP_DONE)
				return st;
		} else if (name_is(&f, "connection")) {
			connection(&fr, &f);
		} else if (name_is(&f, "upgrade")) {
			has_upgrade |= f.value_len > 0;
		} else if (name_is(&f, "expect")) {
			if (bytes_are(f.value, f.value_len, "100-continue"))
				r->expect_continue = 1;
		}
	}

	switch (r->form) {
	case HTTP_ABSOLUTE:
		if (has_hh && !same_authority(&ta, &hh,
		    r->scheme == HTTP_SCHEME_HTTPS ? 443 : 80))
			return fail(x, R_HOST_DIFFERS);
		break;
	case HTTP_AUTHORITY:
		/* A Host without a port names the same place as the target. */
		if (has_hh && !same_authority(&ta, &hh, ta.port))
			return fail(x, R_HOST_DIFFERS);
		break;
	case HTTP_ORIGIN:
	case HTTP_ASTERISK:
		if (!has_hh && r->version_minor == 1)
			return fail(x, R_NO_HOST);
		if (has_hh)
			ta = hh;
		break;
	}
	if (r->form == HTTP_ABSOLUTE || r->form == HTTP_AUTHORITY || has_hh) {
		memcpy(r->host, ta.host, sizeof(r->host));
		r->port = ta.port;
		r->host_is_ip = ta.is_ip;
		r->has_host = 1;
	}
	r->host_field = has_hh;
	r->content_length = fr.content_length;
	r->chunked = fr.chunked;
	r->connection_close = closes(&fr, r->version_minor);
	r->upgrade = has_upgrade && fr.opt_upgrade;
	r->head_len = (size_t)(x->c.p - x->base);
	return HTTP_DONE;
}

/* ---- responses ---------------------------------------------------------- */

/*
 * HTTP-version SP 3DIGIT [ SP reason-phrase ] CRLF. The space before an
 * empty reason is often left out by real servers, and its absence is no
 * risk, so it is optional here.
 */
static enum http_status
status_line(struct px *x, struct http_response *r)
{
	enum http_status st;
	uint8_t ch;
	int code = 0;

	if ((st = version(x, &r->version_minor)) != HTTP_DONE)
		return st;
	if (peek(x, &ch) == -1)
		return out_of_bytes(x);
	if (ch != ' ')
		return fail(x, R_BAD_VERSION);
	(void)cur_skip(&x->c, 1);
	for (int i = 0; i < 3; i++) {
		if (peek(x, &ch) == -1)
			return out_of_bytes(x);
		if (!is_digit(ch) || (i == 0 && (ch < '1' || ch > '5')))
			return fail(x, R_BAD_STATUS);
		code = code * 10 + (ch - '0');
		(void)cur_skip(&x->c, 1);
	}
	r->status = code;
	if (peek(x, &ch) == -1)
		return out_of_bytes(x);
	if (ch == ' ') {
		(void)cur_skip(&x->c, 1);
		for (;;) {
			if (peek(x, &ch) == -1)
				return out_of_bytes(x);
			if (ch == '\r' || ch == '\n')
				break;
			if (!is_value_char(ch))
				return fail(x, R_BAD_REASON);
			(void)cur_skip(&x->c, 1);
		}
	} else if (ch != '\r' && ch != '\n') {
		return fail(x, R_BAD_STATUS);
	}
	return crlf(x);
}

static enum http_status
parse_response(struct px *x, struct http_response *r)
{
	struct framing fr;
	struct field f;
	size_t nfields = 0;
	enum http_status st;
	int end = 0;

	memset(&fr, 0, sizeof(fr));
	fr.content_length = -1;
	if ((st = status_line(x, r)) != HTTP_DONE)
		return st;
	for (;;) {
		if ((st = field_line(x, nfields, &f, &end)) != HTTP_DONE)
			return st;
		if (end)
			break;
		nfields++;
		if (name_is(&f, "content-length")) {
			if ((st = content_length(x, &fr, &f)) != HTTP_DONE)
				return st;
		} else if (name_is(&f, "transfer-encoding")) {
			st = transfer_encoding(x, &fr, &f, r->version_minor);
			if (st != HTTP_DONE)
				return st;
		} else if (name_is(&f, "connection")) {
			connection(&fr, &f);
		} else if (name_is(&f, "location")) {
			/* Two places to go: which one the client follows is
			 * anyone's guess, so the redirect log could lie. */
			if (r->location != NULL)
				return fail(x, R_DUP_LOCATION);
			r->location = (const char *)f.value;
			r->location_len = f.value_len;
		}
	}
	r->content_length = fr.content_length;
	r->chunked = fr.chunked;
	r->connection_close = closes(&fr, r->version_minor);
	r->head_len = (size_t)(x->c.p - x->base);
	return HTTP_DONE;
}

/* ---- entry points ------------------------------------------------------- */

static void
px_init(struct px *x, const uint8_t *buf, size_t len)
{
	size_t lim = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX;

	cur_init(&x->c, buf, buf != NULL ? lim : 0);
	x->base = buf;
	x->capped = buf != NULL && len >= HTTP_HEAD_MAX;
	x->why = NULL;
}

enum http_status
http_parse_request(const uint8_t *buf, size_t len, struct http_request *out,
    const char **reason)
{
	struct http_request r;
	struct px x;
	enum http_status st;

	memset(&r, 0, sizeof(r));
	px_init(&x, buf, len);
	st = parse_request(&x, &r);
	if (st == HTTP_DONE)
		*out = r;
	else
		memset(out, 0, sizeof(*out));
	if (reason != NULL)
		*reason = st == HTTP_ERROR ? x.why : NULL;
	return st;
}

enum http_status
http_parse_response(const uint8_t *buf, size_t len, struct http_response *out,
    const char **reason)
{
	struct http_response r;
	struct px x;
	enum http_status st;

	memset(&r, 0, sizeof(r));
	px_init(&x, buf, len);
	st = parse_response(&x, &r);
	if (st == HTTP_DONE)
		*out = r;
	else
		memset(out, 0, sizeof(*out));
	if (reason != NULL)
		*reason = st == HTTP_ERROR ? x.why : NULL;
	return st;
}

const char *
http_status_str(enum http_status s)
{
	switch (s) {
	case HTTP_NEED_MORE:
		return "need_more";
	case HTTP_DONE:
		return "done";
	case HTTP_ERROR:
		return "error";
	}
	return "unknown";
}

const char *
http_target_form_str(enum http_target_form f)
{
	switch (f) {
	case HTTP_ORIGIN:
		return "origin";
	case HTTP_ABSOLUTE:
		return "absolute";
	case HTTP_AUTHORITY:
		return "authority";
	case HTTP_ASTERISK:
		return "asterisk";
	}
	return "unknown";
}

/*
 * Body framing: Content-Length counting and the chunked syntax
 *
 *   chunk-size [ chunk-ext ] CRLF chunk-data CRLF ... "0" [ ext ] CRLF
 *   *( field-line CRLF ) CRLF
 *
 * as a byte-at-a-time state machine over the caller's bytes (RFC 9112
 * section 7.1). Data bytes are skipped in one step.
 */
#include "http/http.h"

#include <string.h>

#define LINE_MAX_BYTES  4096    /* a chunk-ext or trailer line */
#define SIZE_DIGITS_MAX 15      /* 16^15: no uint64 overflow */

enum {
	CK_SIZE = 0,    /* hex digits of the size */
	CK_EXT,         /* after ';' (or spaces) up to CR */
	CK_SIZE_LF,     /* CR seen after the size line */
	CK_DATA,        /* remain data bytes */
	CK_DATA_CR,     /* the CRLF after the data */
	CK_DATA_LF,
	CK_TRAILER,     /* start of a trailer line, or the final CRLF */
	CK_TRAILER_LINE,
	CK_TRAILER_LF,
	CK_END_LF,      /* the final CR seen */
	CK_DONE,
};

void
http_body_init(struct http_body *b, enum http_body_mode mode, uint64_t length)
{
	memset(b, 0, sizeof(*b));
	b->mode = mode;
	b->remain = mode == HTTP_BODY_LENGTH ? length : 0;
	b->state = CK_SIZE;
}

static int
hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One byte of the size line before any extension; the state moves on at
 * its end. NULL, or why the body is refused. */
static const char *
size_byte(struct http_body *b, uint8_t c)
{
	int h = hexval(c);

	if (h >= 0) {
		if (++b->digits > SIZE_DIGITS_MAX)
			return "chunk size too large";
		b->remain = b->remain * 16 + (uint64_t)h;
		return NULL;
	}
	if (b->digits == 0)
		return "chunk size is not hex";
	if (c == '\r') {
		b->state = CK_SIZE_LF;
	} else if (c == ';' || c == ' ' || c == '\t') {
		b->state = CK_EXT;
		b->line = 0;
	} else {
		return c == '\n' ? "bare LF after the chunk size" :
		    "bad byte after the chunk size";
	}
	return NULL;
}

/* One byte of a chunk extension or a trailer field: CR moves to next;
 * control bytes and lines over LINE_MAX_BYTES are refused (bad, toolong). */
static const char *
line_byte(struct http_body *b, uint8_t c, int next, const char *bad,
    const char *toolong)
{
	if (c == '\r')
		b->state = next;
	else if (c == '\n' || c == 0 || c == 0x7f || (c < 0x20 && c != '\t'))
		return bad;
	else if (++b->line > LINE_MAX_BYTES)
		return toolong;
	return NULL;
}

/* A byte that must be c, then the state moves to next. */
static const char *
expect_byte(struct http_body *b, uint8_t got, uint8_t want, int next,
    const char *bad)
{
	if (got != want)
		return bad;
	b->state = next;
	return NULL;
}

/* The size line's LF: data, or the trailers after the last chunk. */
static const char *
size_lf(struct http_body *b, uint8_t c)
{
	if (c != '\n')
		return "bare CR after the chunk size";
	b->digits = 0;
	b->state = b->remain == 0 ? CK_TRAILER : CK_DATA;
	b->line = 0;
	return NULL;
}

/* One byte in a state that reads bytes one at a time. */
static const char *
chunked_byte(struct http_body *b, uint8_t c)
{
	switch (b->state) {
	case CK_SIZE:
		return size_byte(b, c);
	case CK_EXT:
		return line_byte(b, c, CK_SIZE_LF, "bad byte in a chunk extension",
		    "chunk extension too long");
	case CK_SIZE_LF:
		return size_lf(b, c);
	case CK_DATA_CR:
		return expect_byte(b, c, '\r', CK_DATA_LF,
		    "chunk data longer than its size");
	case CK_DATA_LF:
		return expect_byte(b, c, '\n', CK_SIZE, "bare CR after chunk data");
	case CK_TRAILER:
		if (c == '\r') {
			b->state = CK_END_LF;
			return NULL;
		}
		b->state = CK_TRAILER_LINE;
		b->line = 0;
		/* FALLTHROUGH */
	case CK_TRAILER_LINE:
		return line_byte(b, c, CK_TRAILER_LF, "bad byte in a trailer field",
		    "trailer field too long");
	case CK_TRAILER_LF:
		return expect_byte(b, c, '\n', CK_TRAILER, "bare CR in the trailers");
	case CK_END_LF:
		return expect_byte(b, c, '\n', CK_DONE,
		    "bare CR at the end of the chunked body");
	}
	return NULL;
}

static enum http_status
chunked_scan(struct http_body *b, const uint8_t *buf, size_t len, size_t *used,
    const char **reason)
{
	size_t i = 0, take;

	while (i < len && b->state != CK_DONE) {
		if (b->state == CK_DATA) {
			/* Data bytes are skipped in one step. */
			take = len - i;
			if ((uint64_t)take > b->remain)
				take = (size_t)b->remain;
			i += take;
			b->remain -= take;
			if (b->remain == 0)
				b->state = CK_DATA_CR;
			continue;
		}
		if ((*reason = chunked_byte(b, buf[i])) != NULL) {
			*used = i;
			return HTTP_ERROR;
		}
		i++;
	}
	*used = i;
	return b->state == CK_DONE ? HTTP_DONE : HTTP_NEED_MORE;
}

enum http_status
http_body_scan(struct http_body *b, const uint8_t *buf, size_t len,
    size_t *used, const char **reason)
{
	const char *dummy;

	if (reason == NULL)
		reason = &dummy;
	*reason = NULL;
	switch (b->mode) {
	case HTTP_BODY_NONE:
		*used = 0;
		return HTTP_DONE;
	case HTTP_BODY_LENGTH:
		*used = (uint64_t)len < b->remain ? len : (size_t)b->remain;
		b->remain -= *used;
		return b->remain == 0 ? HTTP_DONE : HTTP_NEED_MORE;
	case HTTP_BODY_CLOSE:
		*used = len;
		return HTTP_NEED_MORE;
	case HTTP_BODY_CHUNKED:
		if (b->state == CK_DONE) {
			*used = 0;
			return HTTP_DONE;
		}
		return chunked_scan(b, buf, len, used, reason);
	}
	*used = 0;
	*reason = "unknown body framing";
	return HTTP_ERROR;
}

enum http_body_mode
http_request_body(const struct http_request *req)
{
	if (req->chunked)
		return HTTP_BODY_CHUNKED;
	if (req->content_length > 0)
		return HTTP_BODY_LENGTH;
	return HTTP_BODY_NONE;
}

enum http_body_mode
http_response_body(const struct http_response *resp, int head_request,
    int connect_request)
{
	/* RFC 9112 section 6.3, in its order. */
	if (head_request || (resp->status >= 100 && resp->status < 200) ||
	    resp->status == 204 || resp->status == 304)
		return HTTP_BODY_NONE;
	if (connect_request && resp->status >= 200 && resp->status < 300)
		return HTTP_BODY_NONE;  /* a tunnel follows */
	if (resp->chunked)
		return HTTP_BODY_CHUNKED;
	if (resp->content_length >= 0)
		return resp->content_length > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	return HTTP_BODY_CLOSE;
}

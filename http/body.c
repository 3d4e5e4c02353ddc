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

static enum http_status
chunked_scan(struct http_body *b, const uint8_t *buf, size_t len, size_t *used,
    const char **reason)
{
	size_t i = 0;

#define FAIL(why) do { *used = i; *reason = (why); return HTTP_ERROR; } while (0)
	while (i < len) {
		uint8_t c = buf[i];
		int h;

		switch (b->state) {
		case CK_SIZE:
			h = hexval(c);
			if (h >= 0) {
				if (++b->digits > SIZE_DIGITS_MAX)
					FAIL("chunk size too large");
				b->remain = b->remain * 16 + (uint64_t)h;
				i++;
				break;
			}
			if (b->digits == 0)
				FAIL("chunk size is not hex");
			if (c == '\r') {
				b->state = CK_SIZE_LF;
			} else if (c == ';' || c == ' ' || c == '\t') {
				b->state = CK_EXT;
				b->line = 0;
			} else if (c == '\n') {
				FAIL("bare LF after the chunk size");
			} else {
				FAIL("bad byte after the chunk size");
			}
			i++;
			break;
		case CK_EXT:
			if (c == '\r') {
				b->state = CK_SIZE_LF;
			} else if (c == '\n' || c == 0 || c == 0x7f ||
			    (c < 0x20 && c != '\t')) {
				FAIL("bad byte in a chunk extension");
			} else if (++b->line > LINE_MAX_BYTES) {
				FAIL("chunk extension too long");
			}
			i++;
			break;
		case CK_SIZE_LF:
			if (c != '\n')
				FAIL("bare CR after the chunk size");
			i++;
			b->digits = 0;
			b->state = b->remain == 0 ? CK_TRAILER : CK_DATA;
			b->line = 0;
			break;
		case CK_DATA: {
			size_t take = len - i;

			if ((uint64_t)take > b->remain)
				take = (size_t)b->remain;
			i += take;
			b->remain -= take;
			if (b->remain == 0)
				b->state = CK_DATA_CR;
			break;
		}
		case CK_DATA_CR:
			if (c != '\r')
				FAIL("chunk data longer than its size");
			b->state = CK_DATA_LF;
			i++;
			break;
		case CK_DATA_LF:
			if (c != '\n')
				FAIL("bare CR after chunk data");
			b->state = CK_SIZE;
			i++;
			break;
		case CK_TRAILER:
			if (c == '\r') {
				b->state = CK_END_LF;
				i++;
				break;
			}
			b->state = CK_TRAILER_LINE;
			b->line = 0;
			/* FALLTHROUGH */
		case CK_TRAILER_LINE:
			if (c == '\r') {
				b->state = CK_TRAILER_LF;
			} else if (c == '\n' || c == 0 || c == 0x7f ||
			    (c < 0x20 && c != '\t')) {
				FAIL("bad byte in a trailer field");
			} else if (++b->line > LINE_MAX_BYTES) {
				FAIL("trailer field too long");
			}
			i++;
			break;
		case CK_TRAILER_LF:
			if (c != '\n')
				FAIL("bare CR in the trailers");
			b->state = CK_TRAILER;
			i++;
			break;
		case CK_END_LF:
			if (c != '\n')
				FAIL("bare CR at the end of the chunked body");
			b->state = CK_DONE;
			*used = i + 1;
			return HTTP_DONE;
		default:
			*used = i;
			return HTTP_DONE;
		}
	}
#undef FAIL
	*used = i;
	return HTTP_NEED_MORE;
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

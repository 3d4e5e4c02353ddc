/*
 * Host name validation for names taken off the wire (SNI, and later Host
 * and CONNECT authorities). Policy matching and DNS only ever see what
 * comes out of here, so the grammar is strict and the output canonical:
 * normalising an output again returns it unchanged.
 */
#include <stdint.h>
#include <string.h>

#include "sni/sni.h"

#define SNI_LABEL_MAX 63

static int
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static int
is_hex(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

/*
 * Would a resolver library take this (already lower-cased) last label as
 * part of an IPv4 address? inet_aton(), which getaddrinfo() falls back to,
 * accepts "1.2.3.4" but also "127.1", "2130706433" and "0x7f000001". No
 * top-level domain is all digits (RFC 3696 section 2), so refusing an
 * all-digit or 0x-hex last label costs no real name and closes the door on
 * a name that means an address. IPv6 literals never get here: ':' and '['
 * are not name characters.
 */
static int
label_is_numeric(const char *label, size_t len)
{
	size_t i;

	if (len > 2 && label[0] == '0' && label[1] == 'x') {
		for (i = 2; i < len; i++)
			if (!is_hex((uint8_t)label[i]))
				return 0;
		return 1;
	}
	for (i = 0; i < len; i++)
		if (!is_digit((uint8_t)label[i]))
			return 0;
	return 1;
}

/*
 * Checks the label out[start..end): 1..63 bytes, no hyphen at either end.
 */
static int
label_ok(const char *out, size_t start, size_t end)
{
	size_t n = end - start;

	if (n == 0 || n > SNI_LABEL_MAX)
		return 0;
	if (out[start] == '-' || out[end - 1] == '-')
		return 0;
	return 1;
}

int
sni_name_normalize(const uint8_t *in, size_t len, char *out)
{
	size_t i, start = 0;

	/*
	 * out is written only behind the read position, so in == out
	 * (normalising in place) works.
	 */
	if (in == NULL || len == 0)
		goto fail;
	/* One trailing dot is the fully-qualified spelling of the same name. */
	if (in[len - 1] == '.')
		len--;
	if (len == 0 || len > SNI_NAME_MAX)
		goto fail;

	for (i = 0; i < len; i++) {
		uint8_t c = in[i];

		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (c == '.') {
			if (!label_ok(out, start, i))
				goto fail;
			start = i + 1;
		} else if (!((c >= 'a' && c <= 'z') || is_digit(c) ||
		    c == '-' || c == '_')) {
			/* NUL, space, '/', ':', '%', non-ASCII, ... */
			goto fail;
		}
		out[i] = (char)c;
	}
	/* A second trailing dot leaves an empty last label, caught here. */
	if (!label_ok(out, start, len))
		goto fail;
	if (label_is_numeric(out + start, len - start))
		goto fail;
	out[len] = '\0';
	return 0;

fail:
	out[0] = '\0';
	return -1;
}

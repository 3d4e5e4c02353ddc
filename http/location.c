/*
 * Where a redirect points: a Location field value resolved against the
 * absolute URL of the request that got it (RFC 3986 section 5.2, for the
 * forms a Location takes: absolute, scheme-relative, absolute-path,
 * query-only and relative-path references; dot segments are left as
 * they are, they do not change the host), and the scheme, host and port
 * that the policy decides on.
 */
#include "http/http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sni/sni.h"

static int
is_https(const char *url, size_t n)
{
	return n >= 6 && strncasecmp(url, "https:", 6) == 0;
}

/* Where the authority of an absolute "scheme://" URL starts, or NULL. */
static const char *
authority(const char *url)
{
	if (strncasecmp(url, "http://", 7) == 0)
		return url + 7;
	if (strncasecmp(url, "https://", 8) == 0)
		return url + 8;
	return NULL;
}

/* Does loc start with a scheme ("ALPHA *(ALPHA / DIGIT / + - .) :")? */
static int
has_scheme(const char *loc, size_t n)
{
	size_t i;

	if (n == 0 || !((loc[0] | 0x20) >= 'a' && (loc[0] | 0x20) <= 'z'))
		return 0;
	for (i = 1; i < n; i++) {
		char c = loc[i];

		if (c == ':')
			return 1;
		if (!(((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
			return 0;
	}
	return 0;
}

/* The absolute form of loc into out; 0, or -1 when it does not fit or
 * base is not an absolute http(s) URL. */
static int
absolute(const char *base, const char *loc, size_t n, char *out, size_t outlen)
{
	const char *auth = authority(base), *path, *q;
	size_t keep;
	int m;

	if (has_scheme(loc, n)) {
		/* Absolute: http(s) is decided on; another scheme is kept in
		 * out for the line, and refused by the caller. */
		m = snprintf(out, outlen, "%.*s", (int)n, loc);
		return m < 0 || (size_t)m >= outlen ? -1 : 0;
	}
	if (auth == NULL)
		return -1;
	if (n >= 2 && loc[0] == '/' && loc[1] == '/') {
		m = snprintf(out, outlen, "%s:%.*s", is_https(base, strlen(base)) ?
		    "https" : "http", (int)n, loc);
		return m < 0 || (size_t)m >= outlen ? -1 : 0;
	}
	path = auth + strcspn(auth, "/?#");
	if (n > 0 && loc[0] == '/') {
		keep = (size_t)(path - base);           /* the origin */
	} else if (n > 0 && loc[0] == '?') {
		keep = (size_t)(path - base) + strcspn(path, "?#");
	} else {
		/* Relative: after the last '/' of base's path (before its query). */
		q = path + strcspn(path, "?#");
		keep = (size_t)(path - base);
		for (const char *p = path; p < q; p++)
			if (*p == '/')
				keep = (size_t)(p + 1 - base);
		if (keep == (size_t)(path - base)) {
			m = snprintf(out, outlen, "%.*s/%.*s", (int)keep, base, (int)n, loc);
			return m < 0 || (size_t)m >= outlen ? -1 : 0;
		}
	}
	m = snprintf(out, outlen, "%.*s%.*s", (int)keep, base, (int)n, loc);
	return m < 0 || (size_t)m >= outlen ? -1 : 0;
}

int
http_location_host_is_ip(const char *host)
{
	return host[0] != '\0' && (strchr(host, ':') != NULL ||
	    strspn(host, "0123456789.") == strlen(host));
}

int
http_location_resolve(const char *base, const char *loc, size_t n, char *out,
    size_t outlen, int *https, char *host, size_t hostlen, uint16_t *port)
{
	const char *auth, *auth_end, *hp, *p, *colon = NULL;
	char raw[HTTP_HOST_MAX + 1];
	size_t hl;
	unsigned long v;

	*https = 0;
	*port = 0;
	if (hostlen > 0)
		host[0] = '\0';
	if (outlen == 0)
		return -1;
	out[0] = '\0';
	/* Control bytes have no place in a URL, and must not reach a line. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)loc[i] < 0x20 || loc[i] == 0x7f)
			return -1;
	for (p = base; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
	/* Likewise \\b.test/p, /\b.test/p and \/b.test/p: another host to a
	 * browser (as //b.test/p), a path on this one to others. */
	if (n >= 2 && (loc[0] == '\\' || loc[1] == '\\') &&
	    (loc[0] == '\\' || loc[0] == '/') && (loc[1] == '\\' || loc[1] == '/'))
		return -1;
	if (absolute(base, loc, n, out, outlen) != 0)
		return -1;
	auth = authority(out);
	if (auth == NULL)
		return -1;              /* ftp:, mailto:, ...: nothing to decide */
	*https = is_https(out, strlen(out));
	auth_end = auth + strcspn(auth, "/?#");
	/* A '\' there ends the host for a browser (WHATWG reads it as '/'),
	 * not for an RFC 3986 parser: http://b.test\@a.test/ is b.test to
	 * one client and a.test to another. No host can be named for it. */
	if (memchr(auth, '\\', (size_t)(auth_end - auth)) != NULL)
		return -1;
	hp = auth;
	for (p = auth; p < auth_end; p++)       /* userinfo@ is not the host */
		if (*p == '@')
			hp = p + 1;
	if (hp < auth_end && *hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(auth_end - hp));

		if (rb == NULL)
			return -1;
		hl = (size_t)(rb - hp - 1);
		if (hl == 0 || hl >= sizeof(raw))
			return -1;
		memcpy(raw, hp + 1, hl);
		if (rb + 1 < auth_end) {
			if (rb[1] != ':')
				return -1;
			colon = rb + 1;
		}
	} else {
		colon = memchr(hp, ':', (size_t)(auth_end - hp));
		hl = (size_t)((colon != NULL ? colon : auth_end) - hp);
		if (hl == 0 || hl >= sizeof(raw))
			return -1;
		memcpy(raw, hp, hl);
	}
	raw[hl] = '\0';
	*port = *https ? 443 : 80;
	if (colon != NULL && colon + 1 < auth_end) {
		v = 0;
		for (p = colon + 1; p < auth_end; p++) {
			if (*p < '0' || *p > '9' || v > 65535)
				return -1;
			v = v * 10 + (unsigned long)(*p - '0');
		}
		if (v == 0 || v > 65535)
			return -1;
		*port = (uint16_t)v;
	}
	if (hostlen <= hl)
		return -1;
	if (http_location_host_is_ip(raw)) {
		/* An address: kept for the line; no rule allows addresses. */
		memcpy(host, raw, hl + 1);
		return 0;
	}
	if (hostlen <= SNI_NAME_MAX ||
	    sni_name_normalize((const uint8_t *)raw, hl, host) != 0) {
		host[0] = '\0';
		return -1;
	}
	return 0;
}

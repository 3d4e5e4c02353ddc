/*
 * Host patterns, one meaning each (DESIGN §5):
 *
 *   example.com     that name only
 *   *.example.com   any subdomain, any depth; not example.com itself
 *   .example.com    example.com and any subdomain
 *   *               any name (never a connection without one)
 *
 * Everything else is refused with a hint naming what the author probably
 * meant, because a pattern that is silently read some other way is an
 * allow-list hole or an outage.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

#define LABEL_MAX 63

__attribute__((format(printf, 3, 4)))
static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
is_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_';
}

/* Every label all digits: an IPv4 address or something shaped like one. */
static int
looks_numeric(const char *s)
{
	int digit = 0;

	for (; *s != '\0'; s++) {
		if (*s >= '0' && *s <= '9')
			digit = 1;
		else if (*s != '.')
			return 0;
	}
	return digit;
}

/* IPv4/IPv6 literals, bracketed or not, with or without a /prefix. */
static int
is_ip_literal(const char *s)
{
	char buf[POL_NAME_MAX + 3];
	struct in6_addr a6;
	size_t len = strlen(s);
	char *slash, *colon;

	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, s, len + 1);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	/* "192.0.2.1:443": one colon is a port, more would be IPv6 */
	colon = strchr(buf, ':');
	if (colon != NULL && strchr(colon + 1, ':') == NULL)
		*colon = '\0';
	if (buf[0] == '[') {
		char *end = strchr(buf, ']');

		if (end == NULL)
			return 0;
		*end = '\0';
		return inet_pton(AF_INET6, buf + 1, &a6) == 1;
	}
	return inet_pton(AF_INET6, buf, &a6) == 1 || looks_numeric(buf);
}

/*
 * Checks the name part of a pattern: LDH labels (and '_', which real DNS
 * names such as _acme-challenge use), 1..63 bytes each, 253 in all.
 */
static int
check_name(const char *name, char *err, size_t errlen)
{
	const char *label = name;

	if (strlen(name) > POL_NAME_MAX)
		return fail(err, errlen, "host name is longer than %d characters",
		    POL_NAME_MAX);
	if (looks_numeric(name))
		return fail(err, errlen, "IP addresses are not host names; "
		    "allow the name clients connect to");
	for (;;) {
		const char *end = strchr(label, '.');
		size_t n = end != NULL ? (size_t)(end - label) : strlen(label);

		if (n == 0)
			return fail(err, errlen, "empty label (two dots in a row, "
			    "or a dot at the start or end)");
		if (n > LABEL_MAX)
			return fail(err, errlen, "label '%.*s...' is longer than %d "
			    "characters", 16, label, LABEL_MAX);
		if (label[0] == '-' || label[n - 1] == '-')
			return fail(err, errlen, "label '%.*s' starts or ends with "
			    "a hyphen", (int)n, label);
		for (size_t i = 0; i < n; i++) {
			if (label[i] == '*')
				return fail(err, errlen, "a wildcard must be a whole "
				    "leftmost label, as in *.example.com");
			if (!is_label_char((unsigned char)label[i]))
				return fail(err, errlen, "invalid character '%c' "
				    "(allowed: letters, digits, '-', '_' and '.')",
				    label[i]);
		}
		if (end == NULL)
			return 0;
		label = end + 1;
	}
}

int
pol_pattern_parse(const char *in, enum pol_pattern_kind *kind, char *out,
    size_t outlen, char *err, size_t errlen)
{
	/* room for "*." + name + "." + NUL */
	char buf[POL_NAME_MAX + 4];
	const char *name;
	size_t len;

	if (in == NULL || in[0] == '\0')
		return fail(err, errlen, "empty host pattern");
	len = strlen(in);
	/* Byte checks first: they explain more than the shape checks below. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c >= 0x80)
			return fail(err, errlen, "non-ASCII host name: use the "
			    "punycode (xn--) form");
		if (c <= 0x20 || c == 0x7f)
			return fail(err, errlen, "host patterns may not contain "
			    "spaces or control characters");
	}
	if (strstr(in, "://") != NULL)
		return fail(err, errlen, "a URL is not a host pattern; give the "
		    "host name only");
	if (is_ip_literal(in))
		return fail(err, errlen, "IP addresses are not host names; "
		    "allow the name clients connect to");
	if (strpbrk(in, "^$()[]{}|+?\\") != NULL)
		return fail(err, errlen, "regular expressions are not supported; "
		    "use example.com, *.example.com or .example.com");
	if (strchr(in, ':') != NULL)
		return fail(err, errlen, "a port does not belong in a host "
		    "pattern; use ports: [...]");
	if (strchr(in, '/') != NULL)
		return fail(err, errlen, "a path does not belong in a host "
		    "pattern; give the host name only");
	if (strcmp(in, ".") == 0 || strcmp(in, "*.") == 0 ||
	    strcmp(in, "..") == 0)
		return fail(err, errlen, "'%s' is not a pattern; use * for any name",
		    in);
	if (len >= sizeof(buf))
		return fail(err, errlen, "host name is longer than %d characters",
		    POL_NAME_MAX);

	for (size_t i = 0; i <= len; i++)
		buf[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
	/* One trailing dot is the DNS root, the same name; two is a mistake. */
	if (len > 1 && buf[len - 1] == '.')
		buf[--len] = '\0';

	if (strcmp(buf, "*") == 0) {
		*kind = POL_PAT_ANY;
		name = buf + len;
	} else if (buf[0] == '*' && buf[1] == '.') {
		*kind = POL_PAT_SUBDOMAINS;
		name = buf + 2;
	} else if (buf[0] == '*' && buf[1] == '*') {
		name = buf + strspn(buf, "*.");
		return fail(err, errlen, "'**' is not a pattern; *.%s already "
		    "matches any depth", *name != '\0' ? name : "example.com");
	} else if (buf[0] == '*') {
		/* "*foo.com": a glob meaning a subdomain, most likely. */
		return fail(err, errlen, "a wildcard must be a whole leftmost "
		    "label: *.%s", buf + 1);
	} else if (buf[0] == '.') {
		*kind = POL_PAT_DOMAIN;
		name = buf + 1;
	} else {
		*kind = POL_PAT_EXACT;
		name = buf;
	}
	if (*kind != POL_PAT_ANY && check_name(name, err, errlen) < 0)
		return -1;
	if (len + 1 > outlen)
		return fail(err, errlen, "host pattern too long");
	memcpy(out, buf, len + 1);
	return 0;
}

const char *
pol_pattern_describe(enum pol_pattern_kind kind, const char *suffix, char *buf,
    size_t len)
{
	switch (kind) {
	case POL_PAT_EXACT:
		snprintf(buf, len, "exactly %s", suffix);
		break;
	case POL_PAT_SUBDOMAINS:
		snprintf(buf, len, "any subdomain of %s at any depth, not %s itself",
		    suffix, suffix);
		break;
	case POL_PAT_DOMAIN:
		snprintf(buf, len, "%s itself and any subdomain of it at any depth",
		    suffix);
		break;
	case POL_PAT_ANY:
		snprintf(buf, len, "any name (not a connection without a name)");
		break;
	default:
		snprintf(buf, len, "unknown pattern kind");
		break;
	}
	return buf;
}

/*
 * Address ranges: a rule's sources and the namespaces' pod CIDRs.
 *
 * Parsing is strict on purpose: "10.1.2.3/8" (host bits set) is refused
 * rather than silently widened, because it is almost always a typo for a
 * narrower range, and a typo in a source list must not admit more clients
 * than the author meant.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

int
pol_cidr_parse(const char *text, struct pol_cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	unsigned long prefix;
	size_t alen, bytes;
	unsigned max;

	if (text == NULL)
		return -1;
	slash = strchr(text, '/');
	alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	prefix = max;
	if (slash != NULL) {
		const char *p = slash + 1;

		if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '\0'))
			return -1;
		for (prefix = 0; *p >= '0' && *p <= '9' && prefix <= max; p++)
			prefix = prefix * 10 + (unsigned long)(*p - '0');
		if (*p != '\0' || prefix > max)
			return -1;
	}
	out->prefix = (unsigned)prefix;
	/* Host bits must be zero. */
	bytes = max / 8;
	for (size_t i = 0; i < bytes; i++) {
		unsigned lo = (unsigned)i * 8;
		uint8_t mask;

		if (lo + 8 <= prefix)
			continue;
		mask = lo >= prefix ? 0 : (uint8_t)(0xff << (8 - (prefix - lo)));
		if (out->addr[i] & (uint8_t)~mask)
			return -1;
	}
	return 0;
}

static int
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int
pol_cidr_contains(const struct pol_cidr *c, const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		if (c->family != AF_INET)
			return 0;
		return prefix_equal(c->addr, (const uint8_t *)&in->sin_addr, c->prefix);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *a = in6->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		    0xff, 0xff };

		if (c->family == AF_INET6)
			return prefix_equal(c->addr, a, c->prefix);
		/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d. */
		if (memcmp(a, mapped, sizeof(mapped)) == 0)
			return prefix_equal(c->addr, a + 12, c->prefix);
	}
	return 0;
}

/*
 * A range in IPv6 terms: an IPv4 one as its IPv4-mapped range, which is
 * how pol_cidr_contains() matches a mapped client against it.
 */
static void
as_v6(const struct pol_cidr *c, uint8_t addr[16], unsigned *prefix)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	if (c->family == AF_INET6) {
		memcpy(addr, c->addr, 16);
		*prefix = c->prefix;
		return;
	}
	memcpy(addr, mapped, sizeof(mapped));
	memcpy(addr + 12, c->addr, 4);
	*prefix = c->prefix + 96;
}

int
pol_cidr_overlap(const struct pol_cidr *a, const struct pol_cidr *b)
{
	uint8_t aa[16], ba[16];
	unsigned ap, bp;

	as_v6(a, aa, &ap);
	as_v6(b, ba, &bp);
	/* Two prefixes share an address when the shorter holds the other. */
	return prefix_equal(aa, ba, ap < bp ? ap : bp);
}

void
pol_cidr_format(const struct pol_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%u", a, c->prefix);
}

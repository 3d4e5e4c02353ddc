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

/* ::ffff:0:0/96, where IPv4 addresses sit in IPv6 terms. */
static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0xff, 0xff };

/*
 * A range in IPv6 terms: an IPv4 one as its IPv4-mapped range, which is
 * how pol_cidr_contains() matches a mapped client against it.
 */
static void
as_v6(const struct pol_cidr *c, uint8_t addr[16], unsigned *prefix)
{
	if (c->family == AF_INET6) {
		memcpy(addr, c->addr, 16);
		*prefix = c->prefix;
		return;
	}
	memcpy(addr, v4_mapped, sizeof(v4_mapped));
	memcpy(addr + 12, c->addr, 4);
	*prefix = c->prefix + 96;
}

/*
 * An IPv4 client and an IPv4-mapped one are the same client, whichever
 * family the range is written in and the listener sees: "::ffff:10.0.0.0/104"
 * holds 10.1.2.3 on an IPv4 listener as 10.0.0.0/8 holds ::ffff:10.1.2.3 on
 * a dual-stack one. A deny written in one form must not miss the other.
 */
int
pol_cidr_contains(const struct pol_cidr *c, const struct sockaddr *sa)
{
	struct pol_cidr v4 = { .family = AF_INET, .prefix = 32 };
	uint8_t a6[16];
	unsigned p6;

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		memcpy(v4.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		if (c->family == AF_INET)
			return prefix_equal(c->addr, v4.addr, c->prefix);
		as_v6(&v4, a6, &p6);
		return prefix_equal(c->addr, a6, c->prefix);
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (c->family == AF_INET6)
			return prefix_equal(c->addr, a, c->prefix);
		if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0)
			return prefix_equal(c->addr, a + 12, c->prefix);
	}
	return 0;
}

int
pol_cidr_within(const struct pol_cidr *inner, const struct pol_cidr *outer)
{
	uint8_t ia[16], oa[16];
	unsigned ip, op;

	as_v6(inner, ia, &ip);
	as_v6(outer, oa, &op);
	return ip >= op && prefix_equal(ia, oa, op);
}

int
pol_cidr_overlap(const struct pol_cidr *a, const struct pol_cidr *b)
{
	/* Two prefixes share an address when one holds the other. */
	return pol_cidr_within(a, b) || pol_cidr_within(b, a);
}

void
pol_cidr_format(const struct pol_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%u", a, c->prefix);
}

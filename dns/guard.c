/*
 * dns/guard.c: is this address somewhere the gateway may connect to?
 *
 * The gateway resolves names itself and refuses upstreams that are not
 * public, so a name pointing at 169.254.169.254 (cloud metadata), the
 * loopback or the cluster's private ranges cannot be used to reach inside.
 * IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4,
 * Teredo) are judged by that IPv4 address: otherwise "::ffff:127.0.0.1" or
 * "64:ff9b::a9fe:a9fe" would walk straight past an IPv4-only check.
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include "dns/dns.h"

struct guard_v4_range {
	uint32_t net;
	unsigned bits;
	enum dns_addr_class cls;
};

/*
 * Most specific first is not needed: no two ranges overlap except
 * 255.255.255.255 inside 240/4, and both are "reserved".
 */
static const struct guard_v4_range guard_v4[] = {
	{ 0x00000000u,  8, DNS_ADDR_UNSPECIFIED },  /* 0.0.0.0/8 "this network" */
	{ 0x0a000000u,  8, DNS_ADDR_PRIVATE },      /* 10/8 */
	{ 0x64400000u, 10, DNS_ADDR_CGNAT },        /* 100.64/10 */
	{ 0x7f000000u,  8, DNS_ADDR_LOOPBACK },     /* 127/8 */
	{ 0xa9fe0000u, 16, DNS_ADDR_LINK_LOCAL },   /* 169.254/16, metadata */
	{ 0xac100000u, 12, DNS_ADDR_PRIVATE },      /* 172.16/12 */
	{ 0xc0000000u, 24, DNS_ADDR_RESERVED },     /* 192.0.0/24 IETF */
	{ 0xc0000200u, 24, DNS_ADDR_RESERVED },     /* 192.0.2/24 TEST-NET-1 */
	{ 0xc0a80000u, 16, DNS_ADDR_PRIVATE },      /* 192.168/16 */
	{ 0xc6120000u, 15, DNS_ADDR_RESERVED },     /* 198.18/15 benchmarking */
	{ 0xc6336400u, 24, DNS_ADDR_RESERVED },     /* 198.51.100/24 TEST-NET-2 */
	{ 0xcb007100u, 24, DNS_ADDR_RESERVED },     /* 203.0.113/24 TEST-NET-3 */
	{ 0xe0000000u,  4, DNS_ADDR_MULTICAST },    /* 224/4 */
	{ 0xf0000000u,  4, DNS_ADDR_RESERVED },     /* 240/4, incl. broadcast */
};

/* v4 in host byte order. */
static enum dns_addr_class
guard_classify_v4(uint32_t v4)
{
	size_t i;
	uint32_t mask;

	for (i = 0; i < sizeof(guard_v4) / sizeof(guard_v4[0]); i++) {
		mask = 0xffffffffu << (32 - guard_v4[i].bits);
		if ((v4 & mask) == guard_v4[i].net)
			return guard_v4[i].cls;
	}
	return DNS_ADDR_PUBLIC;
}

static uint32_t
guard_v4_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int
guard_all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* A translation mechanism wrapping a non-public v4 is itself non-public. */
static enum dns_addr_class
guard_translated(uint32_t v4)
{
	return guard_classify_v4(v4) == DNS_ADDR_PUBLIC ?
	    DNS_ADDR_PUBLIC : DNS_ADDR_TRANSLATED;
}

static enum dns_addr_class
guard_classify_v6(const uint8_t *a)
{
	static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
	static const uint8_t nat64_local[6] = { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 };

	if (guard_all_zero(a, 15)) {
		if (a[15] == 0)
			return DNS_ADDR_UNSPECIFIED;        /* :: */
		if (a[15] == 1)
			return DNS_ADDR_LOOPBACK;           /* ::1 */
	}
	/* ::/96 IPv4-compatible (deprecated), judged as its v4 itself. */
	if (guard_all_zero(a, 12))
		return guard_classify_v4(guard_v4_at(a + 12));
	/* ::ffff:0:0/96 IPv4-mapped: the kernel connects to the v4 itself. */
	if (guard_all_zero(a, 10) && a[10] == 0xff && a[11] == 0xff)
		return guard_classify_v4(guard_v4_at(a + 12));
	/* 64:ff9b::/96 well-known NAT64 prefix, v4 in the last 32 bits. */
	if (memcmp(a, nat64, sizeof(nat64)) == 0)
		return guard_translated(guard_v4_at(a + 12));
	/*
	 * 64:ff9b:1::/48 (RFC 8215) is for local NAT64 deployments whose
	 * embedding we cannot know: never public.
	 */
	if (memcmp(a, nat64_local, sizeof(nat64_local)) == 0)
		return DNS_ADDR_TRANSLATED;
	/* 100::/64 discard-only (RFC 6666). */
	if (a[0] == 0x01 && a[1] == 0x00 && guard_all_zero(a + 2, 6))
		return DNS_ADDR_RESERVED;
	/* 2001::/32 Teredo: the client's v4 is the last 32 bits, inverted. */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x00 && a[3] == 0x00)
		return guard_translated(~guard_v4_at(a + 12));
	/* 2001:2::/48 benchmarking (RFC 5180). */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x00 && a[3] == 0x02 &&
	    a[4] == 0x00 && a[5] == 0x00)
		return DNS_ADDR_RESERVED;
	/* 2001:db8::/32 documentation. */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		return DNS_ADDR_RESERVED;
	/* 2002::/16 6to4: v4 in bits 16..47. */
	if (a[0] == 0x20 && a[1] == 0x02)
		return guard_translated(guard_v4_at(a + 2));
	/* 3fff::/20 documentation (RFC 9637). */
	if (a[0] == 0x3f && a[1] == 0xff && (a[2] & 0xf0) == 0x00)
		return DNS_ADDR_RESERVED;
	/* fc00::/7 unique local. */
	if ((a[0] & 0xfe) == 0xfc)
		return DNS_ADDR_PRIVATE;
	/* fe80::/10 link-local. */
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return DNS_ADDR_LINK_LOCAL;
	/* fec0::/10 site-local: deprecated, but still routed inside sites. */
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		return DNS_ADDR_PRIVATE;
	/* ff00::/8 multicast. */
	if (a[0] == 0xff)
		return DNS_ADDR_MULTICAST;
	/*
	 * Global unicast is 2000::/3; the rest is unassigned, and an
	 * upstream there is a misconfiguration or a trick.
	 */
	if ((a[0] & 0xe0) != 0x20)
		return DNS_ADDR_RESERVED;
	return DNS_ADDR_PUBLIC;
}

enum dns_addr_class
dns_addr_classify(const struct sockaddr *sa)
{
	/* Anything we cannot read is not an address we may connect to. */
	if (sa == NULL)
		return DNS_ADDR_RESERVED;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		return guard_classify_v4(ntohl(sin->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		return guard_classify_v6(sin6->sin6_addr.s6_addr);
	}
	return DNS_ADDR_RESERVED;
}

const char *
dns_addr_class_str(enum dns_addr_class c)
{
	switch (c) {
	case DNS_ADDR_PUBLIC:
		return "public";
	case DNS_ADDR_UNSPECIFIED:
		return "unspecified";
	case DNS_ADDR_LOOPBACK:
		return "loopback";
	case DNS_ADDR_PRIVATE:
		return "private";
	case DNS_ADDR_LINK_LOCAL:
		return "link_local";
	case DNS_ADDR_CGNAT:
		return "cgnat";
	case DNS_ADDR_MULTICAST:
		return "multicast";
	case DNS_ADDR_RESERVED:
		return "reserved";
	case DNS_ADDR_TRANSLATED:
		return "translated";
	}
	return "reserved";
}

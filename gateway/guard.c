/*
 * The address guard of a configuration (gwconfig.h): where the gateway
 * may connect. The workers ask it of every address a name resolves to,
 * and again after a reload; egressctl trace asks it of the addresses it
 * resolves for a hop, so that what trace says of a hop is what the
 * gateway does with it. One copy: two would drift.
 */
#include <netinet/in.h>
#include <string.h>

#include "dns/dns.h"
#include "gateway/gwconfig.h"

const struct sockaddr *
gw_own_sock(const struct gw_config *cfg, size_t i)
{
	const struct gw_admin_addr *admin[] = { &cfg->admin,
	    &cfg->admin_health, &cfg->admin_prometheus };

	if (i < cfg->nlisteners)
		return (const struct sockaddr *)&cfg->listeners[i].addr;
	for (i -= cfg->nlisteners; i < sizeof(admin) / sizeof(admin[0]); i++)
		if (admin[i]->set)
			return (const struct sockaddr *)&admin[i]->addr;
	return NULL;
}

int
gw_sock_is_wildcard(const struct sockaddr *l)
{
	static const uint8_t any6[16];

	if (l->sa_family == AF_INET)
		return ((const struct sockaddr_in *)l)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	return l->sa_family == AF_INET6 && memcmp(
	    &((const struct sockaddr_in6 *)l)->sin6_addr, any6, 16) == 0;
}

int
gw_in_ranges(const struct pol_cidr *r, size_t n, const struct sockaddr *sa)
{
	for (size_t i = 0; i < n; i++)
		if (pol_cidr_contains(&r[i], sa))
			return 1;
	return 0;
}

/* One of our sockets: the same port, and the same address, or loopback
 * where it listens on a wildcard address. */
static int
is_own_addr(const struct sockaddr *l, const struct sockaddr *sa,
    uint16_t port)
{
	if (l->sa_family != sa->sa_family || dns_addr_port(l) != port)
		return 0;
	return dns_addr_same_ip(l, sa) || (gw_sock_is_wildcard(l) &&
	    dns_addr_classify(sa) == DNS_ADDR_LOOPBACK);
}

/*
 * Would connecting there come back to us? A name that resolves to the
 * gateway (or a redirected client aiming at it) must not make it connect
 * to itself over and over, nor reach its admin endpoints. Listeners on a
 * wildcard address are matched by port against loopback only: other local
 * addresses are not known here, and the guard refuses private addresses
 * anyway. An IPv4-mapped answer (::ffff:127.0.0.1) is compared as the IPv4
 * address the kernel connects to (listeners are IPV6_V6ONLY).
 */
static int
is_own_listener(const struct gw_config *cfg, const struct sockaddr *target,
    uint16_t port)
{
	struct sockaddr_storage ss;
	const struct sockaddr *sa = dns_addr_unmap(target, &ss);
	const struct sockaddr *o;

	for (size_t i = 0; (o = gw_own_sock(cfg, i)) != NULL; i++)
		if (is_own_addr(o, sa, port))
			return 1;
	return 0;
}

const char *
gw_guard(const struct gw_config *cfg, const struct sockaddr *sa,
    uint16_t port, int allow_private)
{
	enum dns_addr_class cls;

	if (is_own_listener(cfg, sa, port))
		return "this gateway's own listener";
	/* 0.0.0.0 and :: are this host to connect(): its loopback, where the
	 * admin endpoints listen, whatever a rule or range opens. */
	if (dns_addr_classify(sa) == DNS_ADDR_UNSPECIFIED)
		return "unspecified: connecting there reaches this gateway";
	if (gw_in_ranges(cfg->dns_deny_ranges, cfg->ndns_deny, sa))
		return "in dns.deny_ranges";
	if (allow_private)
		return NULL;
	cls = dns_addr_classify(sa);
	if (cls == DNS_ADDR_PUBLIC ||
	    gw_in_ranges(cfg->dns_allow_ranges, cfg->ndns_allow, sa))
		return NULL;
	return dns_addr_class_str(cls);
}

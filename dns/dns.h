/*
 * dns: the gateway's own resolver and the address guard.
 *
 * One resolver per worker: a c-ares channel driven by the worker's
 * event_base (never blocking), with a TTL cache. Lookups hand back a small
 * ticket; cancelling it guarantees the callback will not run, which is how
 * a connection that closes mid-lookup stays safe (c-ares 1.18 cannot cancel
 * a single query, so the query runs on and its answer is only cached).
 *
 * The address guard says whether an address is public; the gateway refuses
 * non-public upstreams unless the deciding rule allows them.
 */
#ifndef EGRESSD_DNS_H
#define EGRESSD_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

struct event_base;

#define DNS_MAX_ADDRS 16
#define DNS_MAX_SERVERS 8

enum dns_status {
	DNS_OK = 0,
	DNS_NXDOMAIN,           /* the name does not exist, or has no address
	                           of the families asked for */
	DNS_FAILURE,            /* servers refused, failed or answered badly */
	DNS_TIMEOUT,            /* no answer within the configured time */
};

/*
 * Which addresses an answer holds, and in which order. Each family keeps
 * the order DNS gave; the two families come from two queries whose
 * relative order is only arrival order, so there is no "as DNS gave" mode.
 * The *_ONLY modes do not ask for the other family at all; a name with
 * none of the family asked for is DNS_NXDOMAIN ("no address").
 */
enum dns_family {
	DNS_FAMILY_PREFER_V4 = 0,       /* A records, then AAAA (default) */
	DNS_FAMILY_PREFER_V6,           /* AAAA records, then A */
	DNS_FAMILY_V4_ONLY,             /* A records only */
	DNS_FAMILY_V6_ONLY,             /* AAAA records only */
};

/* dns_config.stale_ttl: never serve stale answers. */
#define DNS_STALE_OFF UINT32_MAX

struct dns_config {
	/* "host:port", "host" (port 53) or "[v6]:port"; none: /etc/resolv.conf */
	size_t nservers;
	const char *servers[DNS_MAX_SERVERS];
	uint64_t timeout_ms;    /* whole lookup, all tries; 0: 5000 */
	uint32_t min_ttl;       /* seconds; answers are cached at least this long */
	uint32_t max_ttl;       /* seconds; and at most this long; 0: 3600 */
	/*
	 * Seconds; upper bound on caching a negative answer (NXDOMAIN, or no
	 * address), which is otherwise cached as its SOA says (RFC 2308:
	 * min(SOA TTL, SOA MINIMUM)), at least 1 s; for exactly this long
	 * when the server sent no SOA. 0: 30.
	 */
	uint32_t neg_ttl;
	/*
	 * Seconds an expired positive answer is kept to stand in when DNS
	 * fails or times out (never for NXDOMAIN). 0: 300;
	 * DNS_STALE_OFF: never.
	 */
	uint32_t stale_ttl;
	enum dns_family family; /* 0: DNS_FAMILY_PREFER_V4 */
};

struct dns_answer {
	enum dns_status status;
	size_t naddrs;
	struct sockaddr_storage addrs[DNS_MAX_ADDRS];   /* port 0 */
	uint32_t ttl;           /* seconds left, after clamping; 0 when stale */
	int from_cache;
	/*
	 * DNS failed (DNS_FAILURE or DNS_TIMEOUT) and this DNS_OK answer is
	 * an expired one kept for that: stale_age is how many seconds past
	 * its expiry it is. from_cache is set too.
	 */
	int stale;
	uint32_t stale_age;
};

struct dns_resolver;
struct dns_ticket;

/*
 * Called once per ticket (unless cancelled), on the resolver's event_base.
 * The ticket is released just before its callback runs: forget the pointer
 * then, and do not dns_cancel() it from or after the callback.
 */
typedef void (*dns_cb)(void *arg, const struct dns_answer *ans);

/* Returns NULL with a message in err when the channel cannot be set up. */
struct dns_resolver *dns_resolver_new(struct event_base *base,
    const struct dns_config *cfg, char *err, size_t errlen);
/*
 * Pending callbacks are not called and outstanding tickets die with the
 * resolver. Not from inside a dns_cb; the event_base must still exist.
 */
void dns_resolver_free(struct dns_resolver *r);

/*
 * Answer from the cache at once if it can: returns 1 and fills *out
 * (status OK or NXDOMAIN). Returns 0 on a miss; an expired (stale) entry
 * is a miss here: it only stands in for a lookup that failed.
 */
int dns_lookup_cached(struct dns_resolver *r, const char *name, struct dns_answer *out);

/*
 * Start an asynchronous lookup of A and/or AAAA records, as the family
 * setting asks (DNS only: never /etc/hosts; a dotted-quad IPv4 literal is
 * answered as itself, ttl 0, uncached). The callback always runs later,
 * from the event loop, never from inside this call. Returns NULL when the
 * lookup cannot be started, including for a name that is not a host name
 * (LDH, '_' and dots, at most 253 bytes; matched case-insensitively, one
 * trailing dot ignored).
 */
struct dns_ticket *dns_resolve(struct dns_resolver *r, const char *name,
    dns_cb cb, void *arg);
/*
 * The callback of this ticket will not be called; the ticket is released.
 * NULL is ignored.
 */
void dns_cancel(struct dns_ticket *t);

/*
 * queries: lookups sent to DNS (concurrent lookups of a name share one;
 *   one lookup is an A and/or an AAAA query);
 * hits/misses: dns_lookup_cached() answers and misses, plus dns_resolve()
 *   calls answered from the cache (fresh entries only);
 * failures: lookups that ended in DNS_FAILURE or DNS_TIMEOUT, whether or
 *   not a stale answer then stood in;
 * negative: lookups that ended in DNS_NXDOMAIN (answers from the cache
 *   count as hits, not here);
 * stale: failures answered with a stale entry (one per lookup, however
 *   many tickets shared it).
 */
struct dns_stats {
	uint64_t queries, hits, misses, failures;
	uint64_t negative, stale;
};
void dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out);

/* Why an address is not public. */
enum dns_addr_class {
	DNS_ADDR_PUBLIC = 0,
	DNS_ADDR_UNSPECIFIED,   /* 0.0.0.0/8, :: */
	DNS_ADDR_LOOPBACK,      /* 127/8, ::1 */
	DNS_ADDR_PRIVATE,       /* 10/8, 172.16/12, 192.168/16, fc00::/7 */
	DNS_ADDR_LINK_LOCAL,    /* 169.254/16 (cloud metadata), fe80::/10 */
	DNS_ADDR_CGNAT,         /* 100.64/10 */
	DNS_ADDR_MULTICAST,     /* 224/4, ff00::/8 */
	DNS_ADDR_RESERVED,      /* 192.0.0/24, 198.18/15, 240/4, broadcast, docs nets */
	DNS_ADDR_TRANSLATED,    /* NAT64, 6to4, Teredo wrapping a non-public v4 */
};

/*
 * Classify an address (AF_INET or AF_INET6). IPv4-mapped, IPv4-compatible,
 * NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16) and Teredo
 * (2001::/32) addresses are judged by the IPv4 address they carry.
 */
enum dns_addr_class dns_addr_classify(const struct sockaddr *sa);
const char *dns_addr_class_str(enum dns_addr_class c);
const char *dns_status_str(enum dns_status s);
/* "prefer_v4", "prefer_v6", "v4_only", "v6_only" */
const char *dns_family_str(enum dns_family f);
/* The names dns_family_str() gives, exactly. Returns 0 or -1. */
int dns_family_parse(const char *text, enum dns_family *out);

/* The port of an AF_INET/AF_INET6 address, host order; 0 otherwise. */
uint16_t dns_addr_port(const struct sockaddr *sa);

/*
 * sa as the kernel connects to it: an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) as the AF_INET address it is, port kept; any other
 * address as it is. Points at out, or at sa when there is nothing to do.
 */
const struct sockaddr *dns_addr_unmap(const struct sockaddr *sa,
    struct sockaddr_storage *out);
/* Same family and same address (ports not compared). */
int dns_addr_same_ip(const struct sockaddr *a, const struct sockaddr *b);

/* "1.2.3.4:443" or "[2001:db8::1]:443" (port omitted when 0). */
void dns_addr_format(const struct sockaddr *sa, char *out, size_t outlen);
/*
 * Parse "host:port", "[v6]:port", "v4", "v6" (numeric only) into *out.
 * default_port applies when none is given. Returns 0 or -1.
 */
int dns_addr_parse(const char *text, uint16_t default_port,
    struct sockaddr_storage *out, socklen_t *outlen);

#endif

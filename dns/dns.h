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
	DNS_NXDOMAIN,           /* the name does not exist (or has no A/AAAA) */
	DNS_FAILURE,            /* servers refused, failed or answered badly */
	DNS_TIMEOUT,            /* no answer within the configured time */
};

struct dns_config {
	/* "host:port", "host" (port 53) or "[v6]:port"; none: /etc/resolv.conf */
	size_t nservers;
	const char *servers[DNS_MAX_SERVERS];
	uint64_t timeout_ms;    /* whole lookup, all tries; 0: 5000 */
	uint32_t min_ttl;       /* seconds; answers are cached at least this long */
	uint32_t max_ttl;       /* seconds; and at most this long; 0: 3600 */
	uint32_t neg_ttl;       /* seconds NXDOMAIN is cached; 0: 30 */
};

struct dns_answer {
	enum dns_status status;
	size_t naddrs;
	struct sockaddr_storage addrs[DNS_MAX_ADDRS];   /* port 0 */
	uint32_t ttl;           /* seconds left, after clamping */
	int from_cache;
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
 * (status OK or NXDOMAIN). Returns 0 on a miss.
 */
int dns_lookup_cached(struct dns_resolver *r, const char *name, struct dns_answer *out);

/*
 * Start an asynchronous lookup of A and AAAA records (DNS only: never
 * /etc/hosts). The callback always runs later, from the event loop, never
 * from inside this call. Returns NULL when the lookup cannot be started,
 * including for a name that is not a host name (LDH, '_' and dots, at most
 * 253 bytes; matched case-insensitively, one trailing dot ignored).
 */
struct dns_ticket *dns_resolve(struct dns_resolver *r, const char *name,
    dns_cb cb, void *arg);
/*
 * The callback of this ticket will not be called; the ticket is released.
 * NULL is ignored.
 */
void dns_cancel(struct dns_ticket *t);

/*
 * queries: lookups sent to c-ares (concurrent lookups of a name share one);
 * hits/misses: dns_lookup_cached() answers and misses, plus dns_resolve()
 * calls answered from the cache; failures: lookups that ended in
 * DNS_FAILURE or DNS_TIMEOUT.
 */
struct dns_stats {
	uint64_t queries, hits, misses, failures;
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

/* "1.2.3.4:443" or "[2001:db8::1]:443" (port omitted when 0). */
void dns_addr_format(const struct sockaddr *sa, char *out, size_t outlen);
/*
 * Parse "host:port", "[v6]:port", "v4", "v6" (numeric only) into *out.
 * default_port applies when none is given. Returns 0 or -1.
 */
int dns_addr_parse(const char *text, uint16_t default_port,
    struct sockaddr_storage *out, socklen_t *outlen);

#endif

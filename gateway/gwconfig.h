/*
 * The daemon's own configuration (docs/config.md): listeners, workers, DNS,
 * policy files, log sink, timeouts. Loaded whole from YAML; every problem is
 * reported as file:line:column and a config with any error is refused.
 */
#ifndef EGRESSD_GWCONFIG_H
#define EGRESSD_GWCONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns/dns.h"
#include "policy/policy.h"

#define GW_MAX_LISTENERS 16
#define GW_MAX_POLICY_PATHS 64
#define GW_MAX_NAMESPACES 256
#define GW_MAX_NS_CIDRS 32
#define GW_MAX_RANGES 64
#define GW_ADMIN_DEFAULT "127.0.0.1:15000"
#define GW_ADMIN_MAX_CONNS_DEFAULT 64
#define GW_ADMIN_MAX_CONNS_MAX 10000

enum gw_proto {
	GW_PROTO_TLS = 0,
	GW_PROTO_TRANSPARENT,   /* redirected by iptables: original
	                         * destination from the socket, TLS peeked
	                         * (plain HTTP goes to the HTTP code) */
	GW_PROTO_HTTP,          /* plain HTTP: every request decided on its Host */
	GW_PROTO_CONNECT,       /* a forward proxy: CONNECT and absolute-form */
};

struct gw_listener_conf {
	char *name;
	char *address_text;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum gw_proto proto;
	uint16_t upstream_port;         /* tls: 443, http: 80 (a Host without a
	                                 * port); transparent: the original */
	int proxy_protocol;             /* a PROXY v1/v2 header comes first */
	/* proxy_protocol_from: the front proxies whose headers are believed;
	 * required with proxy_protocol (and only with it), so a listener never
	 * takes its clients' addresses from whoever connects. */
	struct pol_cidr *proxy_from;
	size_t nproxy_from;
	/* defer_accept (default on): the kernel hands a connection over when
	 * its first bytes arrive, or after a second; every listener's client
	 * speaks first. */
	int defer_accept;
	unsigned line;
};

struct gw_timeouts {
	uint64_t hello_ms, dns_ms, connect_ms, idle_ms;
	uint64_t drain_ms;              /* drain.timeout (alias timeouts.drain) */
	uint64_t drain_delay_ms;        /* drain.delay: listeners stay open */
};

/* An admin address: the socket address, and its text for messages. */
struct gw_admin_addr {
	int set;
	int is_default;         /* not written in the file: a busy port is a
	                         * notice, not a reason to refuse to start */
	char *text;
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

struct gw_config {
	char *path;                     /* the file, as given */
	char *dir;                      /* its directory, for relative paths */
	char *source;                   /* the text it was read from */
	size_t source_len;
	size_t nlisteners;
	struct gw_listener_conf listeners[GW_MAX_LISTENERS];
	int workers;                    /* resolved: "auto" is the core count */
	size_t ndns_servers;
	char *dns_servers[8];
	uint32_t dns_min_ttl, dns_max_ttl, dns_neg_ttl;
	uint32_t dns_stale_ttl;         /* 0: the resolver's default */
	enum dns_family dns_family;
	/* Address guard adjustments (see conn.c conn_guard for precedence). */
	size_t ndns_allow, ndns_deny;
	struct pol_cidr *dns_allow_ranges, *dns_deny_ranges;
	size_t npolicy;
	char *policy_paths[GW_MAX_POLICY_PATHS];
	int policy_watch;               /* reload when the files change */
	int policy_redecide;            /* a reload decides live connections
	                                 * again: policy_revoked */
	enum pol_mode mode;             /* policy mode for files that do not say */
	size_t nnamespaces;             /* namespace -> client CIDRs */
	struct pol_namespace namespaces[GW_MAX_NAMESPACES];
	char *log_path;                 /* "-" is stdout */
	char *evidence_path;            /* log.evidence_pcap; NULL: off */
	uint64_t evidence_max_bytes;
	unsigned evidence_keep;
	uint64_t interim_ms;            /* log.interim_interval; 0: off */
	/* redirects: how long a 3xx waits to be followed; how long an allowed
	 * connection stays the "after" hint of a TLS denial. */
	uint64_t redirect_window_ms, after_window_ms;
	char *upstream_ca_file;         /* upstream_tls.ca_file; NULL: system */
	struct gw_timeouts timeouts;
	unsigned max_connections;
	int relay_splice;               /* TLS passthrough relays with splice(2) */
	int refuse_ech;                 /* refuse encrypted_client_hello */
	/* admin: everything on address; Istio's pair on the other two. */
	struct gw_admin_addr admin, admin_health, admin_prometheus;
	unsigned admin_max_conns;       /* open at once, all three together */
	char *user, *group;             /* drop to these after binding; NULL: stay */
};

/* Returns NULL after reporting every problem; report as in policy.h. */
struct gw_config *gw_config_load(const char *path, pol_report_fn report, void *arg);
/* The same from memory; dir anchors relative paths. */
struct gw_config *gw_config_load_buffer(const char *label, const char *dir,
    const char *text, size_t len, pol_report_fn report, void *arg);
void gw_config_free(struct gw_config *c);

/*
 * Has the file changed since c was read from it? The daemon reads its
 * configuration at start only; a reload asks this so that an edit it will
 * not apply is said, not silently ignored. Returns 0 when the file holds
 * the text c was read from; 1 when it differs, with out naming the
 * top-level sections whose text differs ("dns, namespaces"), or saying the
 * file no longer parses or cannot be read (why, from ydoc_read_file).
 */
int gw_config_changed(const struct gw_config *c, char *out, size_t outlen);

/* The options pol_load_ex needs to read this configuration's policy. */
void gw_config_policy_opts(const struct gw_config *c, struct pol_load_opts *out);

const char *gw_proto_str(enum gw_proto p);

/*
 * The address guard (gateway/guard.c). May the gateway connect to sa (a
 * resolved address; port, the one it connects to)? NULL if so, else why
 * not, in the words of a private_address line's detail. Precedence, first
 * match wins:
 *   0. one of this gateway's listeners, 0.0.0.0/8, or "::": never;
 *   1. dns.deny_ranges: never, not even for allow_private rules;
 *   2. the admitting allow rule has allow_private: yes;
 *   3. dns.allow_ranges: yes (the operator declared them reachable);
 *   4. otherwise only public addresses.
 */
const char *gw_guard(const struct gw_config *cfg, const struct sockaddr *sa,
    uint16_t port, int allow_private);
/* sa lies in one of the n ranges. */
int gw_in_ranges(const struct pol_cidr *r, size_t n, const struct sockaddr *sa);
/* The gateway's own sockets, one by one: the listeners, then the admin
 * addresses that are set. NULL after the last. */
const struct sockaddr *gw_own_sock(const struct gw_config *cfg, size_t i);
/* 0.0.0.0 or :: */
int gw_sock_is_wildcard(const struct sockaddr *l);

#endif

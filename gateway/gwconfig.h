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

#include "policy/policy.h"

#define GW_MAX_LISTENERS 16
#define GW_MAX_POLICY_PATHS 64

enum gw_proto {
	GW_PROTO_TLS = 0,
};

struct gw_listener_conf {
	char *name;
	char *address_text;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	enum gw_proto proto;
	uint16_t upstream_port;
	unsigned line;
};

struct gw_timeouts {
	uint64_t hello_ms, dns_ms, connect_ms, idle_ms, drain_ms;
};

struct gw_config {
	char *path;                     /* the file, as given */
	char *dir;                      /* its directory, for relative paths */
	size_t nlisteners;
	struct gw_listener_conf listeners[GW_MAX_LISTENERS];
	int workers;                    /* resolved: "auto" is the core count */
	size_t ndns_servers;
	char *dns_servers[8];
	uint32_t dns_min_ttl, dns_max_ttl, dns_neg_ttl;
	size_t npolicy;
	char *policy_paths[GW_MAX_POLICY_PATHS];
	char *log_path;                 /* "-" is stdout */
	struct gw_timeouts timeouts;
	unsigned max_connections;
};

/* Returns NULL after reporting every problem; report as in policy.h. */
struct gw_config *gw_config_load(const char *path, pol_report_fn report, void *arg);
/* The same from memory; dir anchors relative paths. */
struct gw_config *gw_config_load_buffer(const char *label, const char *dir,
    const char *text, size_t len, pol_report_fn report, void *arg);
void gw_config_free(struct gw_config *c);

const char *gw_proto_str(enum gw_proto p);

#endif

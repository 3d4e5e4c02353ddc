/*
 * The daemon configuration file. Every key is documented in docs/config.md;
 * unknown keys and wrong types are errors at their file:line:column, and
 * every error is reported before the load fails.
 */
#include "gateway/gwconfig.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "dns/dns.h"
#include "policy/yamldoc.h"

#define DEFAULT_HELLO_MS        (10 * 1000)
#define DEFAULT_DNS_MS          (5 * 1000)
#define DEFAULT_CONNECT_MS      (5 * 1000)
#define DEFAULT_IDLE_MS         (3600 * 1000)
#define DEFAULT_DRAIN_MS        (30 * 1000)
#define DEFAULT_MAX_CONNECTIONS 10000

struct cfg_load {
	struct ydoc_ctx cx;
	struct gw_config *c;
	int seen_doc;
};

void
gw_config_policy_opts(const struct gw_config *c, struct pol_load_opts *out)
{
	memset(out, 0, sizeof(*out));
	out->base_dir = NULL;   /* policy paths are already absolute or joined */
	out->mode = c->mode;
	out->nnamespaces = c->nnamespaces;
	out->namespaces = c->namespaces;
}

const char *
gw_proto_str(enum gw_proto p)
{
	switch (p) {
	case GW_PROTO_TLS:
		return "tls";
	case GW_PROTO_TRANSPARENT:
		return "transparent";
	case GW_PROTO_HTTP:
		return "http";
	case GW_PROTO_CONNECT:
		return "connect";
	}
	return "unknown";
}

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

/* Join a relative path onto the config file's directory. */
static char *
path_join(const char *dir, const char *p)
{
	char *out;

	if (p[0] == '/' || dir == NULL || dir[0] == '\0' || strcmp(dir, ".") == 0)
		return xstrdup(p);
	if (asprintf(&out, "%s/%s", dir, p) < 0)
		abort();
	return out;
}

static int
key_in(const char *k, const char *const *keys)
{
	for (size_t i = 0; keys[i] != NULL; i++)
		if (strcmp(k, keys[i]) == 0)
			return 1;
	return 0;
}

/*
 * Check a mapping's keys against the allowed set; report each unknown or
 * repeated key. Returns the number of problems.
 */
static int
check_keys(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *map,
    const char *where, const char *const *allowed)
{
	int bad = 0;

	YDOC_FOREACH_PAIR(doc, map, p) {
		yaml_node_t *k = YDOC_NODE(doc, p->key);
		const char *ks = ydoc_text(k);
		int known = 0;
		char list[256] = "";

		if (ks == NULL) {
			ydoc_error(&l->cx, k, "%s: keys must be strings", where);
			bad++;
			continue;
		}
		for (size_t i = 0; allowed[i] != NULL; i++) {
			if (strcmp(ks, allowed[i]) == 0)
				known = 1;
			if (i > 0)
				strncat(list, ", ", sizeof(list) - strlen(list) - 1);
			strncat(list, allowed[i], sizeof(list) - strlen(list) - 1);
		}
		if (!known) {
			ydoc_error(&l->cx, k, "%s: unknown key '%s' (expected one of: %s)",
			    where, ks, list);
			bad++;
			continue;
		}
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			const char *qs = ydoc_text(YDOC_NODE(doc, q->key));

			if (qs != NULL && strcmp(qs, ks) == 0) {
				ydoc_error(&l->cx, k, "%s: key '%s' given twice", where, ks);
				bad++;
				break;
			}
		}
	}
	return bad;
}

static int
string_list(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *n,
    const char *what, char **out, size_t max, size_t *count, const char *dir)
{
	if (ydoc_is_sequence(&l->cx, n, what) != 0)
		return -1;
	YDOC_FOREACH_ITEM(doc, n, it) {
		yaml_node_t *v = YDOC_NODE(doc, *it);
		const char *s;

		if (ydoc_scalar(&l->cx, v, what, &s) != 0)
			return -1;
		if (s[0] == '\0') {
			ydoc_error(&l->cx, v, "%s: empty string", what);
			return -1;
		}
		if (*count == max) {
			ydoc_error(&l->cx, v, "%s: at most %zu entries", what, max);
			return -1;
		}
		out[(*count)++] = dir ? path_join(dir, s) : xstrdup(s);
	}
	return 0;
}

static size_t cidr_list(struct cfg_load *, yaml_document_t *, yaml_node_t *,
    const char *, size_t, struct pol_cidr **);

/*
 * A whole number from min to max, written as digits; what names it in the
 * message. 0, or -1 after reporting.
 */
static int
uint_range(struct cfg_load *l, yaml_node_t *v, const char *what,
    unsigned long min, unsigned long max, unsigned long *out)
{
	const char *s = ydoc_text(v);
	size_t len = s != NULL ? v->data.scalar.length : 0;
	unsigned long u = 0;
	size_t i;

	for (i = 0; s != NULL && i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || u > (max - (unsigned long)
		    (s[i] - '0')) / 10) {
			s = NULL;       /* not digits, or past max */
			break;
		}
		u = u * 10 + (unsigned long)(s[i] - '0');
	}
	if (s == NULL || i == 0 || u < min) {
		ydoc_error(&l->cx, v, "%s must be a whole number from %lu to %lu",
		    what, min, max);
		return -1;
	}
	*out = u;
	return 0;
}

/* A listener's name: 1-64 of [A-Za-z0-9._-], not one an earlier has. */
static void
load_listener_name(struct cfg_load *l, struct gw_listener_conf *lc,
    yaml_node_t *v)
{
	struct gw_config *c = l->c;
	const char *s;

	if (ydoc_scalar(&l->cx, v, "listener name", &s) != 0)
		return;
	if (s[0] == '\0' || strlen(s) > 64 ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != strlen(s)) {
		ydoc_error(&l->cx, v, "listener name must be 1-64 letters, "
		    "digits, '-', '_' or '.'");
		return;
	}
	for (size_t i = 0; i + 1 < c->nlisteners; i++)
		if (strcmp(c->listeners[i].name, s) == 0)
			ydoc_error(&l->cx, v, "listener name '%s' used twice", s);
	lc->name = xstrdup(s);
}

/* address: IP:PORT or [IPv6]:PORT. -1 when it is not even a scalar (it
 * then counts as missing too), else 0 (errors reported). */
static int
load_listener_address(struct cfg_load *l, struct gw_listener_conf *lc,
    yaml_node_t *v)
{
	const char *s;

	if (ydoc_scalar(&l->cx, v, "listener address", &s) != 0)
		return -1;
	if (dns_addr_parse(s, 0, &lc->addr, &lc->addrlen) != 0 ||
	    dns_addr_port((const struct sockaddr *)&lc->addr) == 0) {
		ydoc_error(&l->cx, v, "listener address '%s' must be IP:PORT or "
		    "[IPv6]:PORT", s);
		return 0;
	}
	lc->address_text = xstrdup(s);
	return 0;
}

static void
load_listener_protocol(struct cfg_load *l, struct gw_listener_conf *lc,
    yaml_node_t *v)
{
	const char *s;

	if (ydoc_scalar(&l->cx, v, "listener protocol", &s) != 0)
		return;
	if (strcmp(s, "tls") == 0)
		lc->proto = GW_PROTO_TLS;
	else if (strcmp(s, "transparent") == 0)
		lc->proto = GW_PROTO_TRANSPARENT;
	else if (strcmp(s, "http") == 0)
		lc->proto = GW_PROTO_HTTP;
	else if (strcmp(s, "connect") == 0)
		lc->proto = GW_PROTO_CONNECT;
	else
		ydoc_error(&l->cx, v, "listener protocol '%s' is not supported "
		    "(supported: tls, http, connect, transparent)", s);
}

/* The keys that depend on each other, once all are read. */
struct listener_nodes {
	yaml_node_t *address, *upstream_port, *pp, *pp_from;
	int pp_bad;
};

static void
check_listener(struct cfg_load *l, struct gw_listener_conf *lc,
    yaml_node_t *n, const struct listener_nodes *ln)
{
	struct gw_config *c = l->c;

	if (ln->address == NULL)
		ydoc_error(&l->cx, n, "listener: 'address' is required");
	/*
	 * Fail closed: a header is believed only from the front proxies named
	 * here, so a listener never takes its clients' addresses (the ones
	 * sources: rules check) from whoever can connect to it.
	 */
	if (lc->proxy_protocol && ln->pp_from == NULL)
		ydoc_error(&l->cx, ln->pp, "proxy_protocol: true needs "
		    "proxy_protocol_from: the CIDRs of the front proxies whose "
		    "headers are believed");
	if (!lc->proxy_protocol && !ln->pp_bad && ln->pp_from != NULL)
		ydoc_error(&l->cx, ln->pp_from, "proxy_protocol_from needs "
		    "proxy_protocol: true (without it the listener reads no "
		    "PROXY header)");
	if (lc->proto == GW_PROTO_TRANSPARENT && ln->upstream_port != NULL)
		ydoc_error(&l->cx, ln->upstream_port, "upstream_port does not "
		    "apply to a transparent listener: it uses the port the "
		    "client aimed at");
	/* A Host without a port means 80; a proxy request names its port. */
	if ((lc->proto == GW_PROTO_HTTP || lc->proto == GW_PROTO_CONNECT) &&
	    ln->upstream_port == NULL)
		lc->upstream_port = 80;
	if (lc->name == NULL) {
		char def[32];

		snprintf(def, sizeof(def), "listener%zu", c->nlisteners - 1);
		lc->name = xstrdup(def);
	}
}

static void
load_listener(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *n)
{
	static const char *const keys[] = { "name", "address", "protocol",
	    "upstream_port", "proxy_protocol", "proxy_protocol_from",
	    "defer_accept", NULL };
	struct gw_config *c = l->c;
	struct gw_listener_conf *lc;
	struct listener_nodes ln;

	if (ydoc_is_mapping(&l->cx, n, "listeners[]") != 0)
		return;
	check_keys(l, doc, n, "listener", keys);
	if (c->nlisteners == GW_MAX_LISTENERS) {
		ydoc_error(&l->cx, n, "at most %d listeners", GW_MAX_LISTENERS);
		return;
	}
	memset(&ln, 0, sizeof(ln));
	lc = &c->listeners[c->nlisteners++];
	lc->line = n->start_mark.line + 1;
	lc->proto = GW_PROTO_TLS;
	lc->upstream_port = 443;
	lc->defer_accept = 1;
	YDOC_FOREACH_PAIR(doc, n, p) {
		const char *k = ydoc_text(YDOC_NODE(doc, p->key));
		yaml_node_t *v = YDOC_NODE(doc, p->value);
		unsigned long u;

		if (k == NULL)
			continue;  /* reported by check_keys */
		if (strcmp(k, "name") == 0) {
			load_listener_name(l, lc, v);
		} else if (strcmp(k, "address") == 0) {
			if (load_listener_address(l, lc, v) == 0)
				ln.address = v;
		} else if (strcmp(k, "protocol") == 0) {
			load_listener_protocol(l, lc, v);
		} else if (strcmp(k, "proxy_protocol") == 0) {
			ln.pp_bad = ydoc_bool(&l->cx, v, "proxy_protocol",
			    &lc->proxy_protocol) != 0;
			ln.pp = v;
		} else if (strcmp(k, "proxy_protocol_from") == 0) {
			free(lc->proxy_from);
			lc->nproxy_from = cidr_list(l, doc, v, "proxy_protocol_from",
			    GW_MAX_RANGES, &lc->proxy_from);
			ln.pp_from = v;
		} else if (strcmp(k, "defer_accept") == 0) {
			(void)ydoc_bool(&l->cx, v, "defer_accept",
			    &lc->defer_accept);
		} else if (strcmp(k, "upstream_port") == 0) {
			if (ydoc_uint(&l->cx, v, "upstream_port", 65535, &u) != 0)
				continue;
			if (u == 0) {
				ydoc_error(&l->cx, v, "upstream_port must be 1-65535");
				continue;
			}
			lc->upstream_port = (uint16_t)u;
			ln.upstream_port = v;
		}
	}
	check_listener(l, lc, n, &ln);
}

/*
 * A non-empty list of at most max CIDRs into a new array; what names it in
 * messages. Returns the count, 0 after reporting a problem.
 */
static size_t
cidr_list(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *v,
    const char *what, size_t max, struct pol_cidr **out)
{
	unsigned before = l->cx.errors;
	struct pol_cidr *cidrs;
	size_t n_items, n = 0;

	*out = NULL;
	if (ydoc_is_sequence(&l->cx, v, what) != 0)
		return 0;
	n_items = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (n_items == 0 || n_items > max) {
		ydoc_error(&l->cx, v, "%s: give 1 to %zu CIDRs", what, max);
		return 0;
	}
	cidrs = calloc(n_items, sizeof(*cidrs));
	if (cidrs == NULL)
		abort();
	YDOC_FOREACH_ITEM(doc, v, it) {
		yaml_node_t *item = YDOC_NODE(doc, *it);
		const char *text;

		if (ydoc_scalar(&l->cx, item, "CIDR", &text) != 0)
			continue;
		if (pol_cidr_parse(text, &cidrs[n]) != 0) {
			ydoc_error(&l->cx, item, "%s: '%s' is not a CIDR such as "
			    "10.8.0.0/16 (host bits must be zero)", what, text);
			continue;
		}
		n++;
	}
	if (l->cx.errors != before) {
		free(cidrs);
		return 0;
	}
	*out = cidrs;
	return n;
}

static void
load_dns(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *n)
{
	static const char *const keys[] = { "servers", "min_ttl", "max_ttl",
	    "negative_ttl", "stale_ttl", "family", "allow_ranges", "deny_ranges",
	    NULL };
	struct gw_config *c = l->c;

	if (ydoc_is_mapping(&l->cx, n, "dns") != 0)
		return;
	check_keys(l, doc, n, "dns", keys);
	YDOC_FOREACH_PAIR(doc, n, p) {
		const char *k = ydoc_text(YDOC_NODE(doc, p->key));
		yaml_node_t *v = YDOC_NODE(doc, p->value);
		uint64_t ms;

		if (k == NULL)
			continue;  /* reported by check_keys */
		if (strcmp(k, "family") == 0) {
			const char *s;

			if (ydoc_scalar(&l->cx, v, "dns.family", &s) == 0 &&
			    dns_family_parse(s, &c->dns_family) != 0)
				ydoc_error(&l->cx, v, "dns.family must be prefer_v4, "
				    "prefer_v6, v4_only or v6_only");
		} else if (strcmp(k, "stale_ttl") == 0) {
			const char *s = ydoc_text(v);

			/* 0 would read as "the default": off is spelled out. */
			if (s != NULL && (strcmp(s, "off") == 0 || strcmp(s, "0") == 0 ||
			    strcmp(s, "0s") == 0))
				c->dns_stale_ttl = DNS_STALE_OFF;
			else if (ydoc_duration_ms(&l->cx, v, "dns.stale_ttl", &ms) == 0)
				c->dns_stale_ttl = ms / 1000 >= DNS_STALE_OFF ?
				    DNS_STALE_OFF - 1 : ms < 1000 ? 1 :
				    (uint32_t)(ms / 1000);
		} else if (strcmp(k, "allow_ranges") == 0) {
			free(c->dns_allow_ranges);
			c->ndns_allow = cidr_list(l, doc, v, "dns.allow_ranges",
			    GW_MAX_RANGES, &c->dns_allow_ranges);
		} else if (strcmp(k, "deny_ranges") == 0) {
			free(c->dns_deny_ranges);
			c->ndns_deny = cidr_list(l, doc, v, "dns.deny_ranges",
			    GW_MAX_RANGES, &c->dns_deny_ranges);
		} else if (strcmp(k, "servers") == 0) {
			if (string_list(l, doc, v, "dns.servers", c->dns_servers,
			    8, &c->ndns_servers, NULL) != 0)
				continue;
			YDOC_FOREACH_ITEM(doc, v, it) {
				yaml_node_t *item = YDOC_NODE(doc, *it);
				const char *text = ydoc_text(item);
				struct sockaddr_storage ss;
				socklen_t sl;

				if (text != NULL && text[0] != '\0' &&
				    dns_addr_parse(text, 53, &ss, &sl) != 0)
					ydoc_error(&l->cx, item, "dns.servers: '%s' is "
					    "not IP, IP:PORT or [IPv6]:PORT", text);
			}
		} else if (k != NULL && strcmp(k, "servers") != 0 &&
		    (strcmp(k, "min_ttl") == 0 || strcmp(k, "max_ttl") == 0 ||
		    strcmp(k, "negative_ttl") == 0) &&
		    ydoc_duration_ms(&l->cx, v, k, &ms) == 0) {
			uint32_t secs = ms / 1000 > UINT32_MAX ? UINT32_MAX :
			    (uint32_t)(ms / 1000);

			if (strcmp(k, "min_ttl") == 0)
				c->dns_min_ttl = secs;
			else if (strcmp(k, "max_ttl") == 0)
				c->dns_max_ttl = secs;
			else
				c->dns_neg_ttl = secs;
		}
	}
	if (c->dns_max_ttl != 0 && c->dns_min_ttl > c->dns_max_ttl)
		ydoc_error(&l->cx, n, "dns: min_ttl is larger than max_ttl");
}

static int
namespace_given(const struct gw_config *c, const char *name)
{
	for (size_t i = 0; i < c->nnamespaces; i++)
		if (strcmp(c->namespaces[i].name, name) == 0)
			return 1;
	return 0;
}

/*
 * A client address in the ranges of two namespaces would be a client of
 * both: every rule exported to either would admit it, so a Sidecar that
 * narrows one of them would not narrow it ("payments: [10.8.0.0/16]"
 * beside "web: [10.0.0.0/8]" gives payments' pods all that web may use).
 * Each namespace's ranges must be its own. 1 (reported) if they are not.
 */
static int
namespace_overlaps(struct cfg_load *l, yaml_node_t *v, const char *name,
    const struct pol_cidr *cidrs, size_t ncidrs)
{
	const struct gw_config *c = l->c;
	char a[INET6_ADDRSTRLEN + 8], b[INET6_ADDRSTRLEN + 8];

	for (size_t i = 0; i < c->nnamespaces; i++)
		for (size_t j = 0; j < c->namespaces[i].ncidrs; j++)
			for (size_t k = 0; k < ncidrs; k++) {
				if (!pol_cidr_overlap(&cidrs[k],
				    &c->namespaces[i].cidrs[j]))
					continue;
				pol_cidr_format(&cidrs[k], a, sizeof(a));
				pol_cidr_format(&c->namespaces[i].cidrs[j], b,
				    sizeof(b));
				ydoc_error(&l->cx, v, "namespaces: %s of '%s' overlaps "
				    "%s of '%s': a client in both could use what "
				    "either may, and a Sidecar would not narrow it",
				    a, name, b, c->namespaces[i].name);
				return 1;
			}
	return 0;
}

/* namespaces: {NAME: [CIDR, ...], ...} */
static void
load_namespaces(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *n)
{
	struct gw_config *c = l->c;
	char what[128];

	if (ydoc_is_mapping(&l->cx, n, "namespaces") != 0)
		return;
	YDOC_FOREACH_PAIR(doc, n, p) {
		yaml_node_t *k = YDOC_NODE(doc, p->key);
		yaml_node_t *v = YDOC_NODE(doc, p->value);
		struct pol_cidr *cidrs;
		const char *name;
		size_t ncidrs;

		if (ydoc_scalar(&l->cx, k, "namespace name", &name) != 0)
			continue;
		/* Twice would leave the second's ranges out of reach of a
		 * Sidecar, which restricts the first one found. */
		if (namespace_given(c, name)) {
			ydoc_error(&l->cx, k, "namespaces: '%s' given twice", name);
			continue;
		}
		if (c->nnamespaces == GW_MAX_NAMESPACES) {
			ydoc_error(&l->cx, k, "at most %d namespaces", GW_MAX_NAMESPACES);
			return;
		}
		snprintf(what, sizeof(what), "namespaces.%.100s", name);
		ncidrs = cidr_list(l, doc, v, what, GW_MAX_NS_CIDRS, &cidrs);
		if (ncidrs == 0)
			continue;
		if (namespace_overlaps(l, v, name, cidrs, ncidrs)) {
			free(cidrs);
			continue;
		}
		c->namespaces[c->nnamespaces].name = xstrdup(name);
		c->namespaces[c->nnamespaces].cidrs = cidrs;
		c->namespaces[c->nnamespaces].ncidrs = ncidrs;
		c->nnamespaces++;
	}
}

/* One admin address: "IP:PORT", "[v6]:PORT", ":PORT" (all addresses), "off". */
static void
admin_addr(struct cfg_load *l, yaml_node_t *v, const char *what,
    struct gw_admin_addr *out)
{
	char buf[80];
	const char *s;

	if (ydoc_scalar(&l->cx, v, what, &s) != 0)
		return;
	free(out->text);
	memset(out, 0, sizeof(*out));
	if (strcmp(s, "off") == 0)
		return;
	if (s[0] == ':' && strlen(s) < sizeof(buf) - 8) {
		snprintf(buf, sizeof(buf), "0.0.0.0%s", s);
		s = buf;
	}
	if (dns_addr_parse(s, 0, &out->addr, &out->addrlen) != 0 ||
	    dns_addr_port((const struct sockaddr *)&out->addr) == 0) {
		ydoc_error(&l->cx, v, "%s must be IP:PORT, [IPv6]:PORT, :PORT "
		    "or off", what);
		return;
	}
	out->set = 1;
	out->text = xstrdup(s);
}

/* admin: {address, health_address, prometheus_address, max_connections} */
static void
load_admin(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *n)
{
	static const char *const keys[] = { "address", "health_address",
	    "prometheus_address", "max_connections", NULL };
	struct gw_config *c = l->c;

	if (ydoc_is_mapping(&l->cx, n, "admin") != 0)
		return;
	check_keys(l, doc, n, "admin", keys);
	YDOC_FOREACH_PAIR(doc, n, p) {
		const char *k = ydoc_text(YDOC_NODE(doc, p->key));
		yaml_node_t *v = YDOC_NODE(doc, p->value);

		if (k == NULL)
			continue;
		if (strcmp(k, "address") == 0)
			admin_addr(l, v, "admin.address", &c->admin);
		else if (strcmp(k, "health_address") == 0)
			admin_addr(l, v, "admin.health_address", &c->admin_health);
		else if (strcmp(k, "prometheus_address") == 0)
			admin_addr(l, v, "admin.prometheus_address", &c->admin_prometheus);
		else if (strcmp(k, "max_connections") == 0) {
			unsigned long u;

			if (uint_range(l, v, "admin.max_connections", 1,
			    GW_ADMIN_MAX_CONNS_MAX, &u) == 0)
				c->admin_max_conns = (unsigned)u;
		}
	}
}

/*
 * A section that is a mapping of durations: keys[i] sets *dst[i]. drain
 * ({delay, timeout}) and redirects ({window, after_window}).
 */
static void
load_durations(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *n,
    const char *section, const char *const keys[], uint64_t *const dst[])
{
	if (ydoc_is_mapping(&l->cx, n, section) != 0)
		return;
	check_keys(l, doc, n, section, keys);
	YDOC_FOREACH_PAIR(doc, n, p) {
		const char *k = ydoc_text(YDOC_NODE(doc, p->key));
		yaml_node_t *v = YDOC_NODE(doc, p->value);
		uint64_t ms;

		if (k == NULL || ydoc_duration_ms(&l->cx, v, k, &ms) != 0)
			continue;
		for (size_t i = 0; keys[i] != NULL; i++)
			if (strcmp(k, keys[i]) == 0)
				*dst[i] = ms;
	}
}

static void
load_timeouts(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *n)
{
	static const char *const keys[] = { "hello", "dns", "connect", "idle",
	    "drain", NULL };
	struct gw_timeouts *t = &l->c->timeouts;

	if (ydoc_is_mapping(&l->cx, n, "timeouts") != 0)
		return;
	check_keys(l, doc, n, "timeouts", keys);
	YDOC_FOREACH_PAIR(doc, n, p) {
		const char *k = ydoc_text(YDOC_NODE(doc, p->key));
		yaml_node_t *v = YDOC_NODE(doc, p->value);
		uint64_t ms;

		if (k == NULL)
			continue;  /* reported by check_keys */
		if (k == NULL || !key_in(k, keys) ||
		    ydoc_duration_ms(&l->cx, v, k, &ms) != 0)
			continue;
		if (ms == 0 && strcmp(k, "drain") != 0) {
			ydoc_error(&l->cx, v, "timeouts.%s must be more than 0", k);
			continue;
		}
		if (strcmp(k, "hello") == 0)
			t->hello_ms = ms;
		else if (strcmp(k, "dns") == 0)
			t->dns_ms = ms;
		else if (strcmp(k, "connect") == 0)
			t->connect_ms = ms;
		else if (strcmp(k, "idle") == 0)
			t->idle_ms = ms;
		else
			t->drain_ms = ms;
	}
}

/* log.interim_interval: 0 (off), or at least a second: the worker looks
 * once a second. */
static void
load_interim(struct cfg_load *l, yaml_node_t *v)
{
	uint64_t ms;

	if (ydoc_duration_ms(&l->cx, v, "log.interim_interval", &ms) != 0)
		return;
	if (ms != 0 && ms < 1000) {
		ydoc_error(&l->cx, v, "log.interim_interval must be 0 (off) or "
		    "at least 1s");
		return;
	}
	l->c->interim_ms = ms;
}

/* log: {path, evidence_pcap, evidence_max_bytes, evidence_keep,
 * interim_interval} */
static void
load_log(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *n)
{
	static const char *const keys[] = { "path", "evidence_pcap",
	    "evidence_max_bytes", "evidence_keep", "interim_interval", NULL };
	struct gw_config *c = l->c;

	if (ydoc_is_mapping(&l->cx, n, "log") != 0 ||
	    check_keys(l, doc, n, "log", keys) != 0)
		return;
	YDOC_FOREACH_PAIR(doc, n, p) {
		const char *k = ydoc_text(YDOC_NODE(doc, p->key));
		yaml_node_t *v = YDOC_NODE(doc, p->value);
		const char *s;
		unsigned long u;

		if (k == NULL)
			continue;
		if (strcmp(k, "evidence_max_bytes") == 0) {
			if (ydoc_uint(&l->cx, v, "log.evidence_max_bytes",
			    (1UL << 40), &u) != 0)
				continue;
			if (u < 4096)
				ydoc_error(&l->cx, v, "log.evidence_max_bytes must "
				    "be at least 4096");
			c->evidence_max_bytes = u;
			continue;
		}
		if (strcmp(k, "evidence_keep") == 0) {
			if (ydoc_uint(&l->cx, v, "log.evidence_keep", 1000, &u) == 0)
				c->evidence_keep = (unsigned)u;
			continue;
		}
		if (strcmp(k, "interim_interval") == 0) {
			load_interim(l, v);
			continue;
		}
		if (ydoc_scalar(&l->cx, v, k[0] == 'p' ? "log.path" :
		    "log.evidence_pcap", &s) != 0)
			continue;
		if (strcmp(k, "evidence_pcap") == 0) {
			if (s[0] == '\0' || strcmp(s, "-") == 0) {
				ydoc_error(&l->cx, v, "log.evidence_pcap must be a "
				    "file name");
				continue;
			}
			free(c->evidence_path);
			c->evidence_path = path_join(c->dir, s);
			continue;
		}
		if (s[0] == '\0') {
			ydoc_error(&l->cx, v, "log.path: empty (use \"-\" for stdout)");
			continue;
		}
		free(c->log_path);
		c->log_path = strcmp(s, "-") == 0 ? xstrdup(s) : path_join(c->dir, s);
	}
}

/* upstream_tls: {ca_file}: what TLS origination verifies upstreams with. */
static void
load_upstream_tls(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *n)
{
	static const char *const keys[] = { "ca_file", NULL };
	struct gw_config *c = l->c;

	if (ydoc_is_mapping(&l->cx, n, "upstream_tls") != 0)
		return;
	check_keys(l, doc, n, "upstream_tls", keys);
	YDOC_FOREACH_PAIR(doc, n, p) {
		const char *k = ydoc_text(YDOC_NODE(doc, p->key));
		yaml_node_t *v = YDOC_NODE(doc, p->value);
		const char *s;

		if (k == NULL || strcmp(k, "ca_file") != 0 ||
		    ydoc_scalar(&l->cx, v, "upstream_tls.ca_file", &s) != 0)
			continue;
		free(c->upstream_ca_file);
		c->upstream_ca_file = path_join(c->dir, s);
		if (access(c->upstream_ca_file, R_OK) != 0)
			ydoc_error(&l->cx, v, "upstream_tls.ca_file '%s' cannot "
			    "be read: %s", s, strerror(errno));
	}
}

/* workers: 1-256, or "auto" (0 here: one per core, decided at start). */
static void
load_workers(struct ydoc_ctx *cx, struct gw_config *c, yaml_node_t *v)
{
	const char *s = ydoc_text(v);
	unsigned long u;

	if (s != NULL && strcmp(s, "auto") == 0) {
		c->workers = 0;
	} else if (ydoc_uint(cx, v, "workers (a number or 'auto')", 256,
	    &u) == 0) {
		if (u == 0)
			ydoc_error(cx, v, "workers must be 1-256 or 'auto'");
		c->workers = (int)u;
	}
}

/* policy: {files, watch, redecide}. */
static void
load_policy(struct cfg_load *l, yaml_document_t *doc, yaml_node_t *v)
{
	static const char *const policy_keys[] = { "files", "watch",
	    "redecide", NULL };
	struct ydoc_ctx *cx = &l->cx;
	struct gw_config *c = l->c;

	if (ydoc_is_mapping(cx, v, "policy") != 0 ||
	    check_keys(l, doc, v, "policy", policy_keys) != 0)
		return;
	YDOC_FOREACH_PAIR(doc, v, q) {
		const char *pk = ydoc_text(YDOC_NODE(doc, q->key));
		yaml_node_t *pv = YDOC_NODE(doc, q->value);

		if (pk != NULL && strcmp(pk, "files") == 0)
			(void)string_list(l, doc, pv, "policy.files",
			    c->policy_paths, GW_MAX_POLICY_PATHS, &c->npolicy,
			    c->dir);
		else if (pk != NULL && strcmp(pk, "watch") == 0)
			(void)ydoc_bool(cx, pv, "policy.watch", &c->policy_watch);
		else if (pk != NULL && strcmp(pk, "redecide") == 0)
			(void)ydoc_bool(cx, pv, "policy.redecide",
			    &c->policy_redecide);
	}
}

/* mode: enforce or report. */
static void
load_mode(struct ydoc_ctx *cx, struct gw_config *c, yaml_node_t *v)
{
	const char *s;

	if (ydoc_scalar(cx, v, "mode", &s) != 0)
		return;
	if (strcmp(s, "enforce") == 0)
		c->mode = POL_MODE_ENFORCE;
	else if (strcmp(s, "report") == 0)
		c->mode = POL_MODE_REPORT;
	else
		ydoc_error(cx, v, "mode must be enforce or report");
}

/* user or group (k): a name or number to switch to after binding. */
static void
load_identity(struct ydoc_ctx *cx, struct gw_config *c, const char *k,
    yaml_node_t *v)
{
	char **dst = k[0] == 'u' ? &c->user : &c->group;
	const char *s;

	if (ydoc_scalar(cx, v, k, &s) != 0)
		return;
	if (s[0] == '\0') {
		ydoc_error(cx, v, "%s must not be empty (leave it out to keep "
		    "the starting identity)", k);
		return;
	}
	free(*dst);
	*dst = xstrdup(s);
}

static void
load_max_connections(struct ydoc_ctx *cx, struct gw_config *c,
    yaml_node_t *v)
{
	unsigned long u;

	if (ydoc_uint(cx, v, "max_connections", 1000000, &u) != 0)
		return;
	if (u == 0)
		ydoc_error(cx, v, "max_connections must be at least 1");
	c->max_connections = (unsigned)u;
}

static void
load_root(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *root, void *arg)
{
	static const char *const keys[] = { "listeners", "workers", "dns",
	    "policy", "log", "timeouts", "max_connections", "mode",
	    "namespaces", "admin", "drain", "user", "group", "redirects",
	    "upstream_tls", "refuse_ech", "relay_splice", NULL };
	static const char *const rkeys[] = { "window", "after_window", NULL };
	static const char *const dkeys[] = { "delay", "timeout", NULL };
	struct cfg_load *l = arg;
	struct gw_config *c = l->c;
	uint64_t *const rdst[] = { &c->redirect_window_ms, &c->after_window_ms };
	uint64_t *const ddst[] = { &c->timeouts.drain_delay_ms,
	    &c->timeouts.drain_ms };

	if (root == NULL)
		return;
	if (l->seen_doc++) {
		ydoc_error(cx, root, "the configuration is one YAML document");
		return;
	}
	if (ydoc_is_mapping(cx, root, "configuration") != 0)
		return;
	check_keys(l, doc, root, "configuration", keys);
	YDOC_FOREACH_PAIR(doc, root, p) {
		const char *k = ydoc_text(YDOC_NODE(doc, p->key));
		yaml_node_t *v = YDOC_NODE(doc, p->value);

		if (k == NULL)
			continue;  /* reported by check_keys */
		if (strcmp(k, "listeners") == 0) {
			if (ydoc_is_sequence(cx, v, "listeners") != 0)
				continue;
			YDOC_FOREACH_ITEM(doc, v, it)
				load_listener(l, doc, YDOC_NODE(doc, *it));
		} else if (strcmp(k, "workers") == 0) {
			load_workers(cx, c, v);
		} else if (strcmp(k, "dns") == 0) {
			load_dns(l, doc, v);
		} else if (strcmp(k, "policy") == 0) {
			load_policy(l, doc, v);
		} else if (strcmp(k, "log") == 0) {
			load_log(l, doc, v);
		} else if (strcmp(k, "redirects") == 0) {
			load_durations(l, doc, v, "redirects", rkeys, rdst);
		} else if (strcmp(k, "upstream_tls") == 0) {
			load_upstream_tls(l, doc, v);
		} else if (strcmp(k, "timeouts") == 0) {
			load_timeouts(l, doc, v);
		} else if (strcmp(k, "mode") == 0) {
			load_mode(cx, c, v);
		} else if (strcmp(k, "namespaces") == 0) {
			load_namespaces(l, doc, v);
		} else if (strcmp(k, "admin") == 0) {
			load_admin(l, doc, v);
		} else if (strcmp(k, "drain") == 0) {
			load_durations(l, doc, v, "drain", dkeys, ddst);
		} else if (strcmp(k, "user") == 0 || strcmp(k, "group") == 0) {
			load_identity(cx, c, k, v);
		} else if (strcmp(k, "refuse_ech") == 0) {
			(void)ydoc_bool(cx, v, "refuse_ech", &c->refuse_ech);
		} else if (strcmp(k, "relay_splice") == 0) {
			(void)ydoc_bool(cx, v, "relay_splice", &c->relay_splice);
		} else if (strcmp(k, "max_connections") == 0) {
			load_max_connections(cx, c, v);
		}
	}
}

static struct gw_config *
config_new(const char *label, const char *dir)
{
	struct gw_config *c = calloc(1, sizeof(*c));

	if (c == NULL)
		abort();
	c->path = xstrdup(label);
	c->dir = xstrdup(dir ? dir : ".");
	c->workers = 0;
	c->log_path = xstrdup("-");
	c->timeouts.hello_ms = DEFAULT_HELLO_MS;
	c->timeouts.dns_ms = DEFAULT_DNS_MS;
	c->timeouts.connect_ms = DEFAULT_CONNECT_MS;
	c->timeouts.idle_ms = DEFAULT_IDLE_MS;
	c->timeouts.drain_ms = DEFAULT_DRAIN_MS;
	c->max_connections = DEFAULT_MAX_CONNECTIONS;
	c->evidence_max_bytes = 64ULL << 20;
	c->evidence_keep = 4;
	c->redirect_window_ms = 30000;
	c->after_window_ms = 2000;
	c->policy_watch = 1;
	/* A rule removed during an incident must also end the tunnels it
	 * admitted; policy.redecide: false keeps them across reloads. */
	c->policy_redecide = 1;
	c->refuse_ech = 0;
	c->relay_splice = 1;
	c->admin_max_conns = GW_ADMIN_MAX_CONNS_DEFAULT;
	c->admin.set = c->admin.is_default = 1;
	c->admin.text = xstrdup(GW_ADMIN_DEFAULT);
	(void)dns_addr_parse(GW_ADMIN_DEFAULT, 0, &c->admin.addr, &c->admin.addrlen);
	return c;
}

/* Checks that need the whole file: what must be there. */
static void
config_finish(struct cfg_load *l)
{
	struct gw_config *c = l->c;

	if (l->cx.errors > 0)
		return;
	if (c->nlisteners == 0)
		ydoc_error(&l->cx, NULL, "no listeners: at least one is required");
	if (c->npolicy == 0)
		ydoc_error(&l->cx, NULL, "policy.files: at least one policy file "
		    "or directory is required (egressd never starts without a policy)");
	if (c->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		c->workers = n < 1 ? 1 : n > 256 ? 256 : (int)n;
	}
}

static struct gw_config *
config_run(struct cfg_load *l, int rc)
{
	config_finish(l);
	if (rc != 0 || l->cx.errors > 0) {
		gw_config_free(l->c);
		return NULL;
	}
	return l->c;
}

struct gw_config *
gw_config_load_buffer(const char *label, const char *dir, const char *text,
    size_t len, pol_report_fn report, void *arg)
{
	struct cfg_load l = { { label, report, arg, 0 }, NULL, 0 };

	l.c = config_new(label, dir);
	l.c->source = malloc(len + 1);
	if (l.c->source == NULL)
		abort();
	memcpy(l.c->source, text, len);
	l.c->source[len] = '\0';
	l.c->source_len = len;
	return config_run(&l, ydoc_parse_buffer(&l.cx, text, len, load_root, &l));
}

struct gw_config *
gw_config_load(const char *path, pol_report_fn report, void *arg)
{
	struct cfg_load l = { { path, report, arg, 0 }, NULL, 0 };
	char *copy = xstrdup(path);
	char *text;
	size_t len;

	l.c = config_new(path, dirname(copy));
	free(copy);
	if (ydoc_read_file(&l.cx, path, &text, &len) != 0)
		return config_run(&l, -1);
	/* Kept, so that a reload can tell an edit it does not apply. */
	l.c->source = text;
	l.c->source_len = len;
	return config_run(&l, ydoc_parse_buffer(&l.cx, text, len, load_root, &l));
}

/* key is one of the names in out ("a, b"). */
static int
listed(const char *out, const char *key)
{
	size_t k = strlen(key);

	for (const char *p = out; (p = strstr(p, key)) != NULL; p += k)
		if ((p == out || p[-1] == ' ') && (p[k] == ',' || p[k] == '\0'))
			return 1;
	return 0;
}

/* Appends key to out ("a, b"). */
static void
changed_add(char *out, size_t outlen, const char *key)
{
	size_t used = strlen(out);

	snprintf(out + used, outlen - used, "%s%s", used > 0 ? ", " : "", key);
}

static const struct ydoc_section *
section_find(const struct ydoc_section *s, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s[i].key, key) == 0)
			return &s[i];
	return NULL;
}

/* The sections of a that b lacks or holds other text for. */
static void
sections_diff(const char *at, const struct ydoc_section *a, int na,
    const char *bt, const struct ydoc_section *b, int nb, char *out,
    size_t outlen)
{
	for (int i = 0; i < na; i++) {
		const struct ydoc_section *o = section_find(b, nb, a[i].key);

		if (o != NULL && o->end - o->start == a[i].end - a[i].start &&
		    memcmp(at + a[i].start, bt + o->start,
		    a[i].end - a[i].start) == 0)
			continue;
		if (!listed(out, a[i].key))
			changed_add(out, outlen, a[i].key);
	}
}

#define GW_SECTIONS_MAX 64

struct changed_why {
	char *out;
	size_t outlen;
};

/* Why the file could not be read, for the caller's message. */
static void
changed_report(void *arg, enum pol_severity sev, const char *file,
    unsigned line, unsigned col, const char *msg)
{
	struct changed_why *w = arg;

	(void)sev;
	(void)file;
	(void)line;
	(void)col;
	snprintf(w->out, w->outlen, "it cannot be read (%s)", msg);
}

/* Names the sections that differ between the text c was read from and
 * text, or says the new text does not parse. */
static void
changed_sections(const struct gw_config *c, const char *text, size_t len,
    char *out, size_t outlen)
{
	struct ydoc_section *was, *now;
	int nw, nn;

	was = calloc(2 * GW_SECTIONS_MAX, sizeof(*was));
	if (was == NULL)
		abort();
	now = was + GW_SECTIONS_MAX;
	nw = ydoc_sections(c->source, c->source_len, was, GW_SECTIONS_MAX);
	nn = ydoc_sections(text, len, now, GW_SECTIONS_MAX);
	if (nn < 0) {
		snprintf(out, outlen, "it no longer parses");
	} else {
		sections_diff(c->source, was, nw, text, now, nn, out, outlen);
		sections_diff(text, now, nn, c->source, was, nw, out, outlen);
		if (out[0] == '\0')
			snprintf(out, outlen, "comments or layout only");
	}
	free(was);
}

int
gw_config_changed(const struct gw_config *c, char *out, size_t outlen)
{
	struct changed_why why = { out, outlen };
	struct ydoc_ctx cx = { NULL, changed_report, &why, 0 };
	char *text;
	size_t len;

	out[0] = '\0';
	if (ydoc_read_file(&cx, c->path, &text, &len) != 0)
		return 1;
	if (len == c->source_len && memcmp(text, c->source, len) == 0) {
		free(text);
		return 0;
	}
	changed_sections(c, text, len, out, outlen);
	free(text);
	return 1;
}

void
gw_config_free(struct gw_config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nlisteners; i++) {
		free(c->listeners[i].name);
		free(c->listeners[i].address_text);
		free(c->listeners[i].proxy_from);
	}
	for (size_t i = 0; i < c->ndns_servers; i++)
		free(c->dns_servers[i]);
	for (size_t i = 0; i < c->npolicy; i++)
		free(c->policy_paths[i]);
	for (size_t i = 0; i < c->nnamespaces; i++) {
		free((char *)c->namespaces[i].name);
		free((struct pol_cidr *)c->namespaces[i].cidrs);
	}
	free(c->dns_allow_ranges);
	free(c->dns_deny_ranges);
	free(c->admin.text);
	free(c->admin_health.text);
	free(c->admin_prometheus.text);
	free(c->user);
	free(c->group);
	free(c->log_path);
	free(c->evidence_path);
	free(c->upstream_ca_file);
	free(c->dir);
	free(c->source);
	free(c->path);
	free(c);
}

/*
 * Istio resources in allow-list files (DESIGN §5, docs/istio.md).
 *
 * What each kind means at an egress gateway:
 *
 *   ServiceEntry     its hosts are allowed names, on its ports; resolution
 *                    and endpoints say where the gateway connects; exportTo
 *                    says which clients (by namespace) may use it.
 *   Sidecar          never admits anything itself: it narrows which
 *                    ServiceEntry hosts the workloads of its namespace may
 *                    use, as it narrows what a sidecar proxy imports
 *                    (including the "~ns/host" exclusions).
 *   VirtualService   tls[].match[].sniHosts of routes bound to a gateway
 *                    (not only "mesh") are allowed names.
 *   DestinationRule  tls.mode SIMPLE/MUTUAL: the gateway originates TLS to
 *                    the hosts it names.
 *
 * Other kinds, and ServiceEntry/VirtualService of other apiVersions, are
 * skipped with a notice: skipping them admits less. A Sidecar or
 * DestinationRule of another apiVersion is an error, as is one in a
 * report-mode file: dropping or trialling a restriction must not widen
 * what the enforced policy admits. Fields egressd does not use are
 * ignored (Istio has many); fields it reads are checked the way Istio's
 * validation checks them, with file:line:column.
 *
 * A ServiceEntry's rules are added while its document is read, so the
 * file's mode and the rule order work as for native rules. What spans
 * documents waits for pol_k8s_finish(): Sidecars (which may come after the
 * ServiceEntries they scope) and DestinationRules.
 *
 * Namespaces become client addresses through the daemon's "namespaces:"
 * map. Without the map nothing can be scoped: a warning says so once and
 * the rules apply to every client. With the map, scoping is fail-closed:
 * a rule exported only to namespaces the map lacks admits nobody.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "policy/policy-int.h"
#include "policy/yamldoc.h"

#define NS_MAX 63               /* a DNS-1123 label */
#define MAX_ENDPOINTS 1024
#define PATTERN_BUF (POL_NAME_MAX + 3)
#define HINT_BUF 160
#define LIST_DEPTH_MAX 8        /* kind: List inside kind: List */

/*
 * Kubernetes puts a resource without metadata.namespace in the namespace
 * of the kubectl context, "default" unless set; scoping assumes that.
 */
#define DEFAULT_NS "default"

/* One ServiceEntry's rules, for Sidecar scoping in finish. */
struct k8s_se {
	size_t first, count;    /* its rules in ld->snap->rules */
	char *ns;               /* for scoping: DEFAULT_NS when absent */
	unsigned char *vis;     /* per map namespace: may use it; NULL: anyone */
};

/*
 * One "ns/host" of a Sidecar's egress hosts. An exclusion ("~ns/host",
 * "~/host") takes the host away again, within its own listener only:
 * Istio subtracts a listener's excluded hosts from what that listener
 * imports (pilot/pkg/model/sidecar.go).
 */
struct k8s_import {
	char *sidecar_ns;       /* the clients */
	char *from;             /* "*" or the namespace declaring the service */
	enum pol_pattern_kind kind;
	char *pattern;
	unsigned listener;      /* egress[] entry, numbered across the policy */
	int exclude;
};

/* A DestinationRule host with TLS origination on some or all ports. */
struct k8s_dr {
	char *pattern;
	enum pol_pattern_kind kind;
	char *file;
	unsigned line, col;
	int all;                        /* trafficPolicy.tls originates */
	size_t non, noff;
	uint16_t on[POL_MAX_PORTS];     /* portLevelSettings that originate */
	uint16_t off[POL_MAX_PORTS];    /* ... that do not (with all) */
};

/*
 * A Sidecar or DestinationRule of the file being read: it acts on every
 * file's rules, which a report-mode file must not do (checked at the end
 * of the file, once its mode is known).
 */
struct k8s_acts {
	const char *kind;       /* a literal */
	char name[POL_QUOTE_BUF];
	yaml_mark_t mark;
};

/*
 * Where a resource was first seen: for a second resource of the same
 * kind, namespace and name, and a second namespace-wide Sidecar in the
 * same namespace.
 */
struct k8s_seen {
	const char *kind;       /* a literal */
	char *ns;
	char *name;
	char *file;
	unsigned line, col;
};

/*
 * The rules of one gateway-bound tls match and the gateways it is bound
 * to ("namespace/name"), for dropping routes bound only to Istio's
 * ingress gateway once every Gateway has been read.
 */
struct k8s_bind {
	size_t first, count;    /* its rules in ld->snap->rules */
	char **refs;
	size_t nrefs;
	char *ns;               /* the VirtualService's */
	uint16_t port;          /* match.port; 0: any */
	struct k8s_host *hosts; /* the VirtualService's spec.hosts */
	size_t nhosts;
	char *file;
	unsigned line, col;
};

/* A host pattern: of a VirtualService, or a Gateway server's "ns/host". */
struct k8s_host {
	enum pol_pattern_kind kind;
	char *pattern;
	char *ns;               /* Gateway servers: "*" or a namespace */
	char *gw;               /* Gateway servers: the Gateway's ref */
	uint16_t port;          /* Gateway servers: port.number */
};

/* An istio Gateway of the policy, by "namespace/name". */
struct k8s_gw {
	char *ref;
	int ingress;            /* selector istio: ingressgateway */
	int trial;              /* its file says mode: report */
};

struct k8s_state {
	struct k8s_acts *acts;
	size_t nacts, acts_cap;
	struct k8s_se *se;
	size_t nse, se_cap;
	struct k8s_import *imp;
	size_t nimp, imp_cap;
	char **restricted;      /* namespaces with a namespace-wide Sidecar */
	size_t nrestricted, restricted_cap;
	struct k8s_seen *defaults;      /* Sidecars without workloadSelector */
	size_t ndefaults, defaults_cap;
	struct k8s_seen *objs;          /* every resource read */
	size_t nobjs, objs_cap;
	struct k8s_gw *gws;             /* every Gateway */
	size_t ngws, gws_cap;
	size_t gws_file;                /* the first of the file being read */
	struct k8s_host *gwhosts;       /* every Gateway server host */
	size_t ngwhosts, gwhosts_cap;
	struct k8s_bind *binds;
	size_t nbinds, binds_cap;
	struct k8s_dr *dr;
	size_t ndr, dr_cap;
	unsigned nlisteners;    /* Sidecar egress listeners read so far */
	int warned_no_map;
};

/* ---- small helpers ---------------------------------------------------- */

static void
oom(struct ydoc_ctx *cx, struct pol_loader *ld)
{
	if (!ld->oom)
		ydoc_error(cx, NULL, "out of memory loading the policy");
	ld->oom = 1;
}

/* Grows *arr to hold one more element of size sz; 0, or -1. */
static int
grow(void **arr, size_t n, size_t *cap, size_t sz)
{
	void *p;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	p = realloc(*arr, ncap * sz);
	if (p == NULL)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

static struct k8s_state *
state(struct ydoc_ctx *cx, struct pol_loader *ld)
{
	if (ld->k8s == NULL) {
		ld->k8s = calloc(1, sizeof(struct k8s_state));
		if (ld->k8s == NULL)
			oom(cx, ld);
	}
	return ld->k8s;
}

/* The value of key in a mapping, or NULL; a second occurrence is an error. */
static yaml_node_t *
get(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *map,
    const char *key)
{
	yaml_node_t *val = NULL;

	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	YDOC_FOREACH_PAIR(doc, map, p) {
		yaml_node_t *k = YDOC_NODE(doc, p->key);
		const char *ks = ydoc_text(k);

		if (ks == NULL || strcmp(ks, key) != 0)
			continue;
		if (val != NULL) {
			ydoc_error(cx, k, "duplicate key '%s'", key);
			continue;
		}
		val = YDOC_NODE(doc, p->value);
	}
	/* "key:" with nothing after it is the same as no key. */
	if (val != NULL && pol_yaml_is_null(val))
		return NULL;
	return val;
}

/*
 * A required, non-empty list under key: NULL after reporting missing (at
 * the parent, or at the empty list) or the type error.
 * pol_yaml_is_empty_list() is true only for sequences, so "key: x" reaches
 * the type check.
 */
static yaml_node_t *
required_list(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *parent,
    const char *key, const char *what, const char *missing)
{
	yaml_node_t *n = get(cx, doc, parent, key);

	if (n == NULL || pol_yaml_is_empty_list(n)) {
		ydoc_error(cx, n != NULL ? n : parent, "%s", missing);
		return NULL;
	}
	if (ydoc_is_sequence(cx, n, what) < 0)
		return NULL;
	return n;
}

/* A list, possibly absent; -1 when present and not a list. */
static int
opt_list(struct ydoc_ctx *cx, yaml_node_t *n, const char *what)
{
	if (n == NULL)
		return 0;
	return ydoc_is_sequence(cx, n, what);
}

int
pol_is_dns_label(const char *s, size_t n)
{
	if (n == 0 || n > NS_MAX || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '-'))
			return 0;
	return 1;
}

static int
is_dns_label(const char *s)
{
	return pol_is_dns_label(s, strlen(s));
}

static int
is_ip(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/*
 * Does pattern a admit every name pattern b admits? For DestinationRule
 * and Sidecar hosts against ServiceEntry hosts, as Istio's host.Name
 * SubsetOf: "*.example.com" covers "a.example.com" and "*.a.example.com".
 */
static int
covers(enum pol_pattern_kind ak, const char *a, enum pol_pattern_kind bk,
    const char *b)
{
	const char *as, *bs;
	size_t al, bl;

	if (ak == POL_PAT_ANY)
		return 1;
	if (bk == POL_PAT_ANY)
		return 0;
	if (ak == POL_PAT_EXACT)
		return bk == POL_PAT_EXACT && strcmp(a, b) == 0;
	/* a is "*.s" (Istio has no ".s" form); b exact or "*.t". */
	as = a + 2;
	bs = bk == POL_PAT_SUBDOMAINS ? b + 2 : b;
	if (bk == POL_PAT_SUBDOMAINS && strcmp(as, bs) == 0)
		return 1;
	al = strlen(as);
	bl = strlen(bs);
	return bl > al + 1 && bs[bl - al - 1] == '.' && strcmp(bs + bl - al, as) == 0;
}

/* Istio host syntax: no ".example.com" form (that is egressd's own). */
static int
parse_host(struct ydoc_ctx *cx, yaml_node_t *n, const char *text,
    enum pol_pattern_kind *kind, char *out)
{
	char qb[POL_QUOTE_BUF], hint[HINT_BUF];

	if (pol_pattern_parse(text, kind, out, PATTERN_BUF, hint, sizeof(hint)) < 0) {
		ydoc_error(cx, n, "bad host '%s': %s", pol_quote(text, qb, sizeof(qb)),
		    hint);
		return -1;
	}
	if (*kind == POL_PAT_DOMAIN) {
		ydoc_error(cx, n, "bad host '%s': Istio hosts have no leading-dot "
		    "form; write *.%s (subdomains) and %s (the name itself)",
		    pol_quote(text, qb, sizeof(qb)), out + 1, out + 1);
		return -1;
	}
	return 0;
}

/* Warns once per policy that the namespace map is missing. */
static void
warn_no_map(struct ydoc_ctx *cx, struct pol_loader *ld, yaml_node_t *n,
    const char *what)
{
	struct k8s_state *st = state(cx, ld);

	if (st == NULL || st->warned_no_map)
		return;
	st->warned_no_map = 1;
	ydoc_warning(cx, n, "%s cannot be enforced: the daemon configuration "
	    "has no namespaces: map, so every client may use these rules", what);
}

/* ---- scoping: exportTo ------------------------------------------------- */

/*
 * Reads exportTo into a visibility: *any = 1 for every client, else
 * vis[i] (i over the namespace map) says who may use it. Returns 0, or -1
 * on an error. A namespace the map lacks contributes nobody (fail-closed).
 */
static int
read_export_to(struct ydoc_ctx *cx, struct pol_loader *ld, yaml_document_t *doc,
    yaml_node_t *list, const char *ns, int allow_none, int *any,
    unsigned char *vis)
{
	const struct pol_load_opts *o = ld->opts;
	char qb[POL_QUOTE_BUF];
	int star = 0, tilde = 0, others = 0, rc = 0;
	size_t nitems = 0;

	*any = 1;
	if (list == NULL)
		return 0;
	if (ydoc_is_sequence(cx, list, "spec.exportTo") < 0)
		return -1;
	if (pol_yaml_is_empty_list(list))
		return 0;
	if (o->nnamespaces > 0)
		memset(vis, 0, o->nnamespaces);
	YDOC_FOREACH_ITEM(doc, list, it) {
		yaml_node_t *e = YDOC_NODE(doc, *it);
		const char *text, *name;
		const struct pol_namespace *pn;

		if (ydoc_scalar(cx, e, "an exportTo entry", &text) < 0) {
			rc = -1;
			continue;
		}
		/* Duplicates: Istio refuses them; "." counts as the namespace. */
		YDOC_FOREACH_ITEM(doc, list, jt) {
			const char *t2;

			if (jt == it)
				break;
			t2 = ydoc_text(YDOC_NODE(doc, *jt));
			if (t2 != NULL && (strcmp(t2, text) == 0 ||
			    (strcmp(t2, ".") == 0 && strcmp(text, ns) == 0) ||
			    (strcmp(text, ".") == 0 && strcmp(t2, ns) == 0))) {
				ydoc_error(cx, e, "duplicate exportTo entry '%s'",
				    pol_quote(text, qb, sizeof(qb)));
				rc = -1;
				break;
			}
		}
		nitems++;
		if (strcmp(text, "*") == 0) {
			star = 1;
			continue;
		}
		if (strcmp(text, "~") == 0) {
			if (!allow_none) {
				ydoc_error(cx, e, "exportTo '~' is only valid in a "
				    "ServiceEntry");
				rc = -1;
			}
			tilde = 1;
			continue;
		}
		others = 1;
		name = strcmp(text, ".") == 0 ? ns : text;
		if (!is_dns_label(name)) {
			ydoc_error(cx, e, "exportTo entry '%s' is not '*', '.', '~' "
			    "or a namespace name", pol_quote(text, qb, sizeof(qb)));
			rc = -1;
			continue;
		}
		if (o->nnamespaces == 0)
			continue;
		pn = pol_loader_namespace(ld, name);
		if (pn == NULL) {
			ydoc_warning(cx, e, "namespace %s is not in the namespaces: "
			    "map; its clients cannot be told apart and get nothing "
			    "from this entry", name);
			continue;
		}
		vis[pn - o->namespaces] = 1;
	}
	if ((star || tilde) && nitems > 1) {
		ydoc_error(cx, list, "exportTo '%s' cannot be combined with other "
		    "entries", star ? "*" : "~");
		return -1;
	}
	if (rc < 0 || star)
		return rc;
	if (tilde) {
		/* Visible to the service's own proxies only: no client here. */
		*any = 0;
		if (o->nnamespaces > 0)
			memset(vis, 0, o->nnamespaces);
		return 0;
	}
	if (others && o->nnamespaces == 0) {
		warn_no_map(cx, ld, list, "exportTo");
		return 0;
	}
	*any = 0;
	return 0;
}

/* The CIDRs of the namespaces vis marks; NULL with *n = 0 when none. */
static struct pol_cidr *
vis_cidrs(const struct pol_load_opts *o, const unsigned char *vis, size_t *n,
    int *failed)
{
	struct pol_cidr *c;
	size_t total = 0, k = 0;

	*failed = 0;
	for (size_t i = 0; i < o->nnamespaces; i++)
		if (vis[i])
			total += o->namespaces[i].ncidrs;
	*n = total;
	if (total == 0)
		return NULL;
	c = malloc(total * sizeof(*c));
	if (c == NULL) {
		*failed = 1;
		return NULL;
	}
	for (size_t i = 0; i < o->nnamespaces; i++) {
		if (!vis[i])
			continue;
		memcpy(c + k, o->namespaces[i].cidrs,
		    o->namespaces[i].ncidrs * sizeof(*c));
		k += o->namespaces[i].ncidrs;
	}
	return c;
}

/* ---- metadata ------------------------------------------------------------ */

struct k8s_meta {
	const char *kind, *name, *ns;   /* ns NULL when absent */
	const char *scope_ns;           /* ns, or DEFAULT_NS */
	yaml_node_t *name_node;         /* metadata.name, for diagnostics */
	yaml_node_t *spec;
};

/* Remembers that the current file holds a resource acting on every file. */
static void
note_acts(struct ydoc_ctx *cx, struct pol_loader *ld, const struct k8s_meta *m,
    const yaml_node_t *at)
{
	struct k8s_state *st = state(cx, ld);
	struct k8s_acts *a;

	if (st == NULL)
		return;
	if (grow((void **)&st->acts, st->nacts, &st->acts_cap,
	    sizeof(*st->acts)) < 0) {
		oom(cx, ld);
		return;
	}
	a = &st->acts[st->nacts++];
	a->kind = strcmp(m->kind, "Sidecar") == 0 ? "Sidecar" : "DestinationRule";
	pol_quote(m->name, a->name, sizeof(a->name));
	a->mark = at->start_mark;
}

static int
read_meta(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *root,
    struct k8s_meta *m)
{
	char qb[POL_QUOTE_BUF];
	yaml_node_t *md = get(cx, doc, root, "metadata"), *n;

	m->name = m->ns = NULL;
	if (md == NULL) {
		ydoc_error(cx, root, "kind %s: missing required key 'metadata'",
		    m->kind);
		return -1;
	}
	if (ydoc_is_mapping(cx, md, "metadata") < 0)
		return -1;
	n = get(cx, doc, md, "name");
	if (n == NULL) {
		ydoc_error(cx, md, "missing required key 'metadata.name'");
		return -1;
	}
	if (ydoc_scalar(cx, n, "metadata.name", &m->name) < 0)
		return -1;
	m->name_node = n;
	if (m->name[0] == '\0' || strlen(m->name) > POL_NAME_MAX) {
		ydoc_error(cx, n, "metadata.name must be 1 to %d characters",
		    POL_NAME_MAX);
		return -1;
	}
	n = get(cx, doc, md, "namespace");
	if (n != NULL) {
		if (ydoc_scalar(cx, n, "metadata.namespace", &m->ns) < 0)
			return -1;
		if (!is_dns_label(m->ns)) {
			ydoc_error(cx, n, "metadata.namespace '%s' is not a valid "
			    "namespace name", pol_quote(m->ns, qb, sizeof(qb)));
			return -1;
		}
	}
	m->scope_ns = m->ns != NULL ? m->ns : DEFAULT_NS;
	m->spec = get(cx, doc, root, "spec");
	if (m->spec == NULL) {
		ydoc_error(cx, root, "%s %s: missing required key 'spec'", m->kind,
		    pol_quote(m->name, qb, sizeof(qb)));
		return -1;
	}
	return ydoc_is_mapping(cx, m->spec, "spec");
}

static void
rule_init(struct ydoc_ctx *cx, struct pol_rule *r, const struct k8s_meta *m,
    const char *origin, uint16_t ports[POL_MAX_PORTS])
{
	memset(r, 0, sizeof(*r));
	r->ports = ports;
	r->action = POL_ALLOW;
	r->file = cx->file;
	r->name = m->name;
	r->ns = m->ns;
	r->origin = origin;
	r->resolution = POL_RES_DNS;
}

/* ---- ServiceEntry ------------------------------------------------------ */

/* Istio's protocol.Parse, case-insensitive; "" means sniffed. */
static int
known_protocol(const char *p)
{
	static const char *const names[] = {
		"HTTP", "HTTPS", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB",
		"TCP", "TLS", "UDP", "MONGO", "MYSQL", "REDIS",
	};

	if (p[0] == '\0')
		return 1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(p, names[i]) == 0)
			return 1;
	return 0;
}

struct se_port {
	const char *name;
	uint16_t number;
};

static int
read_se_ports(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *ports,
    struct pol_rule *r, struct se_port *sp)
{
	char qb[POL_QUOTE_BUF];
	int rc = 0;

	if (opt_list(cx, ports, "spec.ports") < 0)
		return -1;
	if (ports == NULL)
		return 0;
	YDOC_FOREACH_ITEM(doc, ports, it) {
		yaml_node_t *p = YDOC_NODE(doc, *it), *num, *name, *proto, *tp;
		const char *s;
		uint16_t v;

		if (ydoc_is_mapping(cx, p, "a port") < 0) {
			rc = -1;
			continue;
		}
		num = get(cx, doc, p, "number");
		name = get(cx, doc, p, "name");
		proto = get(cx, doc, p, "protocol");
		tp = get(cx, doc, p, "targetPort");
		if (num == NULL) {
			ydoc_error(cx, p, "missing required key 'number'");
			rc = -1;
			continue;
		}
		if (pol_read_port(cx, num, &v) < 0) {
			rc = -1;
			continue;
		}
		if (tp != NULL && pol_read_port(cx, tp, &(uint16_t){ 0 }) < 0)
			rc = -1;
		if (name == NULL) {
			/* Istio's ValidatePortName refuses an empty name. */
			ydoc_error(cx, p, "missing required key 'name'");
			rc = -1;
			continue;
		}
		if (ydoc_scalar(cx, name, "a port name", &s) < 0) {
			rc = -1;
			continue;
		}
		if (!is_dns_label(s)) {
			ydoc_error(cx, name, "invalid port name '%s' (lower-case "
			    "letters, digits and '-')", pol_quote(s, qb, sizeof(qb)));
			rc = -1;
			continue;
		}
		if (proto != NULL) {
			const char *ps;

			if (ydoc_scalar(cx, proto, "a port protocol", &ps) < 0) {
				rc = -1;
			} else if (!known_protocol(ps)) {
				ydoc_error(cx, proto, "unsupported protocol '%s' "
				    "(expected HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, "
				    "TLS, UDP, MONGO, MYSQL, REDIS)",
				    pol_quote(ps, qb, sizeof(qb)));
				rc = -1;
			}
		}
		for (size_t i = 0; i < r->nports; i++) {
			if (sp[i].number == v) {
				ydoc_error(cx, num, "port %u is defined twice", v);
				rc = -1;
			}
			if (strcmp(sp[i].name, s) == 0) {
				ydoc_error(cx, name, "port name '%s' is defined twice", s);
				rc = -1;
			}
		}
		if (r->nports == POL_MAX_PORTS) {
			ydoc_error(cx, p, "too many ports (at most %d)", POL_MAX_PORTS);
			return -1;
		}
		sp[r->nports].name = s;
		sp[r->nports].number = v;
		r->ports[r->nports++] = v;
	}
	return rc;
}

enum se_res {
	SE_NONE = 0,
	SE_STATIC,
	SE_DNS,
	SE_DNS_RR,
	SE_DYNAMIC_DNS,
};

static int
read_resolution(struct ydoc_ctx *cx, yaml_node_t *n, enum se_res *out)
{
	static const char *const names[] = {
		"NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS",
	};
	char qb[POL_QUOTE_BUF];
	const char *s;

	*out = SE_NONE;
	if (n == NULL)
		return 0;
	if (ydoc_scalar(cx, n, "spec.resolution", &s) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum se_res)i;
			return 0;
		}
	}
	ydoc_error(cx, n, "unknown resolution '%s' (expected NONE, STATIC, DNS, "
	    "DNS_ROUND_ROBIN or DYNAMIC_DNS)", pol_quote(s, qb, sizeof(qb)));
	return -1;
}

/*
 * endpoints[].address and .ports into eps. One endpoint has one port
 * here, and 0 means the request's. As in Istio, a service port the map
 * does not name is the endpoint's port too: the map's port is taken only
 * when every service port ends up there; otherwise 0 (a warning), so
 * that a request never reaches a port the entry gives another port's
 * traffic.
 */
static int
read_endpoints(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *list,
    enum se_res res, const struct se_port *sp, size_t nsp,
    struct pol_endpoint *eps, size_t *neps)
{
	char qb[POL_QUOTE_BUF];
	int rc = 0;

	*neps = 0;
	YDOC_FOREACH_ITEM(doc, list, it) {
		yaml_node_t *e = YDOC_NODE(doc, *it), *addr, *ports;
		uint16_t mapped[POL_MAX_PORTS] = { 0 };
		const char *a;
		uint16_t port = 0;
		int mixed = 0;

		if (ydoc_is_mapping(cx, e, "an endpoint") < 0) {
			rc = -1;
			continue;
		}
		addr = get(cx, doc, e, "address");
		if (addr == NULL) {
			ydoc_error(cx, e, "missing required key 'address'");
			rc = -1;
			continue;
		}
		if (ydoc_scalar(cx, addr, "an endpoint address", &a) < 0) {
			rc = -1;
			continue;
		}
		if (strncmp(a, "unix://", 7) == 0) {
			ydoc_error(cx, addr, "unix socket endpoints are not "
			    "supported by egressd");
			rc = -1;
			continue;
		}
		if (res == SE_STATIC && !is_ip(a)) {
			ydoc_error(cx, addr, "endpoint address '%s' is not an IP "
			    "address (required with resolution STATIC)",
			    pol_quote(a, qb, sizeof(qb)));
			rc = -1;
			continue;
		}
		if (!is_ip(a)) {
			enum pol_pattern_kind k;
			char pat[PATTERN_BUF], hint[HINT_BUF];

			if (pol_pattern_parse(a, &k, pat, sizeof(pat), hint,
			    sizeof(hint)) < 0 || k != POL_PAT_EXACT) {
				ydoc_error(cx, addr, "endpoint address '%s' is not a "
				    "valid FQDN or an IP address",
				    pol_quote(a, qb, sizeof(qb)));
				rc = -1;
				continue;
			}
		}
		ports = get(cx, doc, e, "ports");
		if (ports != NULL && ydoc_is_mapping(cx, ports, "endpoint ports") == 0) {
			YDOC_FOREACH_PAIR(doc, ports, p) {
				yaml_node_t *k = YDOC_NODE(doc, p->key);
				const char *ks = ydoc_text(k);
				uint16_t v;
				size_t i;

				if (pol_read_port(cx, YDOC_NODE(doc, p->value), &v) < 0) {
					rc = -1;
					continue;
				}
				for (i = 0; ks != NULL && i < nsp; i++)
					if (strcmp(sp[i].name, ks) == 0)
						break;
				if (ks == NULL || i == nsp) {
					ydoc_error(cx, k, "endpoint port '%s' is not defined "
					    "by the ServiceEntry", ks != NULL ?
					    pol_quote(ks, qb, sizeof(qb)) : "");
					rc = -1;
					continue;
				}
				mapped[i] = v;
				port = v;
			}
		} else if (ports != NULL) {
			rc = -1;
		}
		/* Each service port's endpoint port: mapped, or its own. */
		for (size_t i = 0; port != 0 && i < nsp; i++)
			if ((mapped[i] != 0 ? mapped[i] : sp[i].number) != port)
				mixed = 1;
		if (mixed) {
			ydoc_warning(cx, ports, "this endpoint maps service ports to "
			    "different ports; the gateway connects to the port of "
			    "the request");
			port = 0;
		}
		if (*neps == MAX_ENDPOINTS) {
			ydoc_error(cx, e, "too many endpoints (at most %d)",
			    MAX_ENDPOINTS);
			return -1;
		}
		eps[*neps].address = a;
		eps[*neps].port = port;
		(*neps)++;
	}
	return rc;
}

static void
remember_se(struct ydoc_ctx *cx, struct pol_loader *ld, size_t first,
    const struct k8s_meta *m, int any, const unsigned char *vis)
{
	struct k8s_state *st = state(cx, ld);
	struct k8s_se *se;
	size_t nn = ld->opts->nnamespaces;

	if (st == NULL)
		return;
	if (grow((void **)&st->se, st->nse, &st->se_cap, sizeof(*st->se)) < 0) {
		oom(cx, ld);
		return;
	}
	se = &st->se[st->nse];
	se->first = first;
	se->count = pol_snapshot_rule_count(ld->snap) - first;
	se->ns = strdup(m->scope_ns);
	se->vis = NULL;
	if (se->ns == NULL || (!any && (se->vis = malloc(nn ? nn : 1)) == NULL)) {
		free(se->ns);
		oom(cx, ld);
		return;
	}
	if (!any && nn > 0)
		memcpy(se->vis, vis, nn);
	st->nse++;
}

/* spec.location: MESH_EXTERNAL, or MESH_INTERNAL (treated alike). */
static void
read_se_location(struct ydoc_ctx *cx, yaml_node_t *n)
{
	char qb[POL_QUOTE_BUF];
	const char *s;

	if (n == NULL || ydoc_scalar(cx, n, "spec.location", &s) < 0)
		return;
	if (strcmp(s, "MESH_INTERNAL") == 0)
		ydoc_notice(cx, n, "location MESH_INTERNAL: the gateway "
		    "treats the service like MESH_EXTERNAL");
	else if (strcmp(s, "MESH_EXTERNAL") != 0)
		ydoc_error(cx, n, "unknown location '%s' (expected "
		    "MESH_EXTERNAL or MESH_INTERNAL)",
		    pol_quote(s, qb, sizeof(qb)));
}

/*
 * spec.endpoints, as the resolution allows them, into *eps (allocated,
 * *neps of them). 0, or -1 when out of memory (reported).
 */
static int
read_se_endpoints(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, yaml_node_t *eplist, enum se_res res,
    const struct se_port *sp, size_t nports, struct pol_endpoint **eps,
    size_t *neps)
{
	size_t cnt;

	if (opt_list(cx, eplist, "spec.endpoints") < 0 || eplist == NULL ||
	    pol_yaml_is_empty_list(eplist))
		return 0;
	cnt = (size_t)(eplist->data.sequence.items.top -
	    eplist->data.sequence.items.start);
	if (res == SE_NONE) {
		ydoc_error(cx, eplist, "no endpoints should be provided for "
		    "resolution NONE");
	} else if (res == SE_DNS_RR && cnt > 1) {
		ydoc_error(cx, eplist, "there must only be 0 or 1 endpoint "
		    "for resolution DNS_ROUND_ROBIN");
	} else if (res == SE_DYNAMIC_DNS) {
		ydoc_warning(cx, eplist, "endpoints are not used with "
		    "resolution DYNAMIC_DNS");
	} else {
		*eps = calloc(cnt < MAX_ENDPOINTS ? cnt : MAX_ENDPOINTS,
		    sizeof(**eps));
		if (*eps == NULL) {
			oom(cx, ld);
			return -1;
		}
		(void)read_endpoints(cx, doc, eplist, res, sp, nports, *eps,
		    neps);
	}
	return 0;
}

/* Where the gateway connects for a ServiceEntry's hosts. */
static enum pol_resolution
se_resolution(enum se_res res, size_t neps)
{
	switch (res) {
	case SE_NONE:
		return POL_RES_NONE;
	case SE_STATIC:
		return POL_RES_STATIC;
	case SE_DNS:
	case SE_DNS_RR:
		return neps > 0 ? POL_RES_ENDPOINTS : POL_RES_DNS;
	case SE_DYNAMIC_DNS:
		break;
	}
	return POL_RES_DNS;
}

/*
 * spec.exportTo: *any (every client), or the namespaces marked in *vis
 * (allocated) and their sources in r->sources (*src, allocated). 0; 1 when
 * exportTo has errors; -1 when out of memory (each reported).
 */
static int
read_rule_export(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, const struct k8s_meta *m, int allow_none,
    struct pol_rule *r, int *any, unsigned char **vis, struct pol_cidr **src)
{
	int fail;

	if (ld->opts->nnamespaces > 0) {
		*vis = calloc(ld->opts->nnamespaces, 1);
		if (*vis == NULL) {
			oom(cx, ld);
			return -1;
		}
	}
	if (read_export_to(cx, ld, doc, get(cx, doc, m->spec, "exportTo"),
	    m->scope_ns, allow_none, any, *vis) < 0)
		return 1;
	if (*any)
		return 0;
	*src = vis_cidrs(ld->opts, *vis, &r->nsources, &fail);
	if (fail) {
		oom(cx, ld);
		return -1;
	}
	r->sources = *src;
	return 0;
}

/*
 * spec.hosts, each checked (even when something before failed); a rule
 * for each when the ServiceEntry had no error since before, unless skip.
 */
static void
read_se_hosts(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, yaml_node_t *hosts, struct pol_rule *r,
    enum se_res res, int skip, unsigned before)
{
	char pattern[PATTERN_BUF];

	YDOC_FOREACH_ITEM(doc, hosts, it) {
		yaml_node_t *h = YDOC_NODE(doc, *it);
		const char *text;

		if (ydoc_scalar(cx, h, "a host", &text) < 0)
			continue;
		if (strcmp(text, "*") == 0) {
			ydoc_error(cx, h, "* is not a valid ServiceEntry host "
			    "(a ServiceEntry names the hosts it admits)");
			continue;
		}
		if (parse_host(cx, h, text, &r->kind, pattern) < 0)
			continue;
		if (r->kind == POL_PAT_SUBDOMAINS && r->nendpoints == 0 &&
		    (res == SE_DNS || res == SE_DNS_RR)) {
			ydoc_error(cx, h, "hosts must be FQDN if no endpoints are "
			    "provided for resolution %s (use NONE or DYNAMIC_DNS for "
			    "wildcard hosts)", res == SE_DNS ? "DNS" : "DNS_ROUND_ROBIN");
			continue;
		}
		if (cx->errors != before)
			continue;
		pol_rule_at(r, pattern, h);
		if (!skip)
			pol_loader_add(cx, ld, r);
	}
	r->pattern = NULL;
}

static void
read_service_entry(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, struct k8s_meta *m)
{
	char qb[POL_QUOTE_BUF];
	yaml_node_t *spec = m->spec, *hosts;
	struct se_port sp[POL_MAX_PORTS];
	struct pol_endpoint *eps = NULL;
	struct pol_cidr *src = NULL;
	unsigned char *vis = NULL;
	struct pol_rule r;
	uint16_t ports[POL_MAX_PORTS];
	enum se_res res;
	unsigned before = cx->errors;
	size_t neps = 0, first;
	int any = 1, skip;

	rule_init(cx, &r, m, "ServiceEntry", ports);
	hosts = required_list(cx, doc, spec, "hosts", "spec.hosts",
	    "a ServiceEntry must have at least one host in spec.hosts");
	if (hosts == NULL)
		return;
	(void)read_se_ports(cx, doc, get(cx, doc, spec, "ports"), &r, sp);
	(void)read_resolution(cx, get(cx, doc, spec, "resolution"), &res);
	read_se_location(cx, get(cx, doc, spec, "location"));
	if (read_se_endpoints(cx, ld, doc, get(cx, doc, spec, "endpoints"),
	    res, sp, r.nports, &eps, &neps) < 0)
		return;
	r.resolution = se_resolution(res, neps);
	r.endpoints = eps;
	r.nendpoints = neps;
	/* Every host is checked even when exportTo had errors. */
	if (read_rule_export(cx, ld, doc, m, 1, &r, &any, &vis, &src) < 0)
		goto out;
	skip = (res == SE_STATIC && neps == 0) || (!any && r.nsources == 0);
	first = pol_snapshot_rule_count(ld->snap);
	read_se_hosts(cx, ld, doc, hosts, &r, res, skip, before);
	if (cx->errors != before)
		goto out;
	if (res == SE_STATIC && neps == 0) {
		/* A workloadSelector's pods are nowhere the gateway can see. */
		ydoc_warning(cx, spec, "ServiceEntry %s: resolution STATIC without "
		    "endpoints gives the gateway nowhere to connect; skipped",
		    pol_quote(m->name, qb, sizeof(qb)));
		goto out;
	}
	if (skip) {
		ydoc_warning(cx, spec, "ServiceEntry %s: no client of the gateway "
		    "may use it (see exportTo); skipped",
		    pol_quote(m->name, qb, sizeof(qb)));
		goto out;
	}
	if (pol_snapshot_rule_count(ld->snap) > first)
		remember_se(cx, ld, first, m, any, vis);
out:
	free(eps);
	free(src);
	free(vis);
}

/* ---- Sidecar ------------------------------------------------------------- */

static void
add_import(struct ydoc_ctx *cx, struct pol_loader *ld, const char *sidecar_ns,
    const char *from, enum pol_pattern_kind kind, const char *pattern,
    unsigned listener, int exclude)
{
	struct k8s_state *st = state(cx, ld);
	struct k8s_import *im;

	if (st == NULL)
		return;
	if (grow((void **)&st->imp, st->nimp, &st->imp_cap, sizeof(*st->imp)) < 0) {
		oom(cx, ld);
		return;
	}
	im = &st->imp[st->nimp];
	im->sidecar_ns = strdup(sidecar_ns);
	im->from = strdup(from);
	im->pattern = strdup(pattern);
	im->kind = kind;
	im->listener = listener;
	im->exclude = exclude;
	if (im->sidecar_ns == NULL || im->from == NULL || im->pattern == NULL) {
		free(im->sidecar_ns);
		free(im->from);
		free(im->pattern);
		oom(cx, ld);
		return;
	}
	st->nimp++;
}

static void
add_restricted(struct ydoc_ctx *cx, struct pol_loader *ld, const char *ns)
{
	struct k8s_state *st = state(cx, ld);

	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nrestricted; i++)
		if (strcmp(st->restricted[i], ns) == 0)
			return;
	if (grow((void **)&st->restricted, st->nrestricted, &st->restricted_cap,
	    sizeof(*st->restricted)) < 0 ||
	    (st->restricted[st->nrestricted] = strdup(ns)) == NULL) {
		oom(cx, ld);
		return;
	}
	st->nrestricted++;
}

/* Adds a resource to a seen list. 0, or -1 when out of memory. */
static int
remember_seen(struct ydoc_ctx *cx, struct pol_loader *ld,
    struct k8s_seen **arr, size_t *n, size_t *cap, const char *kind,
    const struct k8s_meta *m, const yaml_node_t *at)
{
	struct k8s_seen *sn;

	if (grow((void **)arr, *n, cap, sizeof(**arr)) < 0) {
		oom(cx, ld);
		return -1;
	}
	sn = &(*arr)[*n];
	sn->kind = kind;
	sn->ns = strdup(m->scope_ns);
	sn->name = strdup(m->name);
	sn->file = strdup(cx->file != NULL ? cx->file : "-");
	sn->line = (unsigned)at->start_mark.line + 1;
	sn->col = (unsigned)at->start_mark.column + 1;
	if (sn->ns == NULL || sn->name == NULL || sn->file == NULL) {
		free(sn->ns);
		free(sn->name);
		free(sn->file);
		oom(cx, ld);
		return -1;
	}
	(*n)++;
	return 0;
}

static void
free_seen(struct k8s_seen *arr, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(arr[i].ns);
		free(arr[i].name);
		free(arr[i].file);
	}
	free(arr);
}

/*
 * Istio uses one Sidecar without workloadSelector per namespace and calls
 * more than one undefined (sidecar.proto; istioctl analyze IST0111,
 * MultipleSidecarsWithoutWorkloadSelectors): pilot keeps the oldest,
 * which a file does not say. Reading their union would admit what each
 * of them alone narrows away, so a second one is an error. 0, or -1.
 */
static int
one_default_sidecar(struct ydoc_ctx *cx, struct pol_loader *ld,
    const struct k8s_meta *m, yaml_node_t *at)
{
	char qb[POL_QUOTE_BUF], qb2[POL_QUOTE_BUF];
	struct k8s_state *st = state(cx, ld);

	if (st == NULL)
		return -1;
	for (size_t i = 0; i < st->ndefaults; i++) {
		const struct k8s_seen *sn = &st->defaults[i];

		if (strcmp(sn->ns, m->scope_ns) != 0)
			continue;
		ydoc_error(cx, at, "Sidecar %s: namespace %s already has a Sidecar "
		    "without workloadSelector (%s at %s:%u:%u); Istio uses only one "
		    "per namespace and which one is undefined, so merge them",
		    pol_quote(m->name, qb, sizeof(qb)), m->scope_ns,
		    pol_quote(sn->name, qb2, sizeof(qb2)), sn->file, sn->line,
		    sn->col);
		return -1;
	}
	return remember_seen(cx, ld, &st->defaults, &st->ndefaults,
	    &st->defaults_cap, "Sidecar", m, at);
}

/*
 * One egress[].hosts entry, "namespace/dnsName" (Istio's
 * ValidateNamespaceSlashWildcardHostname and sidecar.proto): the namespace
 * is "*" (any), "." (the Sidecar's own) or a name, optionally prefixed
 * with "~" to exclude instead of import; a bare "~" is the wildcard
 * namespace, so "~/api.example.com" excludes that host from every
 * namespace, and "~/" followed by "*" imports nothing. dnsName is "*",
 * "*.example.com" or an FQDN. Returns 0 with *from pointing into fbuf, or
 * -1 after an error.
 */
static int
read_sidecar_host(struct ydoc_ctx *cx, yaml_node_t *h, const char *text,
    char *fbuf, const char **from, int *exclude, enum pol_pattern_kind *kind,
    char *pattern)
{
	char qb[POL_QUOTE_BUF];
	const char *slash = strchr(text, '/'), *ns;
	size_t nlen;

	if (slash == NULL) {
		ydoc_error(cx, h, "host '%s' must be of the form namespace/dnsName",
		    pol_quote(text, qb, sizeof(qb)));
		return -1;
	}
	nlen = (size_t)(slash - text);
	if (nlen == 0 || slash[1] == '\0') {
		ydoc_error(cx, h, "namespace and dnsName in host '%s' cannot be "
		    "empty", pol_quote(text, qb, sizeof(qb)));
		return -1;
	}
	if (nlen > NS_MAX + 1) {
		ydoc_error(cx, h, "invalid namespace in host '%s'",
		    pol_quote(text, qb, sizeof(qb)));
		return -1;
	}
	memcpy(fbuf, text, nlen);
	fbuf[nlen] = '\0';
	*exclude = fbuf[0] == '~';
	ns = *exclude ? fbuf + 1 : fbuf;
	if (*exclude && ns[0] == '\0')
		ns = "*";
	if (strcmp(ns, "*") != 0 && strcmp(ns, ".") != 0 && !is_dns_label(ns)) {
		ydoc_error(cx, h, "invalid namespace '%s' in host '%s' (expected *, "
		    "., a namespace name, or one of these after ~)",
		    pol_quote(fbuf, qb, sizeof(qb)), text);
		return -1;
	}
	if (strcmp(slash + 1, "*") != 0 && strchr(slash + 1, '.') == NULL) {
		ydoc_error(cx, h, "host '%s': short names (non FQDN) are not "
		    "allowed", pol_quote(text, qb, sizeof(qb)));
		return -1;
	}
	if (parse_host(cx, h, slash + 1, kind, pattern) < 0)
		return -1;
	*from = ns;
	return 0;
}

/* The hosts of one egress listener, imported or excluded. */
static void
read_sidecar_listener(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, struct k8s_meta *m, yaml_node_t *hosts,
    unsigned listener, unsigned before)
{
	char qb[POL_QUOTE_BUF], pattern[PATTERN_BUF];

	YDOC_FOREACH_ITEM(doc, hosts, jt) {
		yaml_node_t *h = YDOC_NODE(doc, *jt);
		char fbuf[NS_MAX + 3];
		const char *text, *from;
		enum pol_pattern_kind kind;
		int exclude;

		if (ydoc_scalar(cx, h, "a host", &text) < 0)
			continue;
		if (read_sidecar_host(cx, h, text, fbuf, &from, &exclude, &kind,
		    pattern) < 0)
			continue;
		if (exclude && strcmp(from, "*") == 0 && kind == POL_PAT_ANY)
			ydoc_notice(cx, h, "host '%s' imports nothing",
			    pol_quote(text, qb, sizeof(qb)));
		if (cx->errors != before)
			continue;
		add_import(cx, ld, m->scope_ns,
		    strcmp(from, ".") == 0 ? m->scope_ns : from, kind, pattern,
		    listener, exclude);
	}
}


/*
 * Istio requires a workloadSelector to name one label or more; an empty
 * one is refused by its validation. Here it would read as selector-scoped
 * and narrow nothing, so it is refused too. 1 when it names labels.
 */
static int
selector_has_labels(struct ydoc_ctx *cx, yaml_document_t *doc,
    yaml_node_t *sel, const struct k8s_meta *m)
{
	char qb[POL_QUOTE_BUF];
	yaml_node_t *labels;

	if (ydoc_is_mapping(cx, sel, "workloadSelector") < 0)
		return 0;
	labels = get(cx, doc, sel, "labels");
	if (labels != NULL && labels->type == YAML_MAPPING_NODE &&
	    labels->data.mapping.pairs.top > labels->data.mapping.pairs.start)
		return 1;
	ydoc_error(cx, sel, "Sidecar %s: workloadSelector must name at least one "
	    "label in labels (Istio refuses it otherwise)",
	    pol_quote(m->name, qb, sizeof(qb)));
	return 0;
}

static void
read_sidecar(struct ydoc_ctx *cx, struct pol_loader *ld, yaml_document_t *doc,
    struct k8s_meta *m)
{
	char qb[POL_QUOTE_BUF];
	yaml_node_t *egress, *sel;
	struct k8s_state *st;
	unsigned before = cx->errors;
	int selector;

	sel = get(cx, doc, m->spec, "workloadSelector");
	selector = sel != NULL;
	if (selector && !selector_has_labels(cx, doc, sel, m))
		return;
	if (!selector && one_default_sidecar(cx, ld, m, m->name_node) < 0)
		return;
	egress = get(cx, doc, m->spec, "egress");
	if (egress == NULL) {
		/* Istio then imports everything the namespace may see. */
		ydoc_notice(cx, m->spec, "Sidecar %s has no egress: it does not "
		    "narrow what the namespace may use",
		    pol_quote(m->name, qb, sizeof(qb)));
		return;
	}
	if (ydoc_is_sequence(cx, egress, "spec.egress") < 0)
		return;
	st = state(cx, ld);
	if (st == NULL)
		return;
	YDOC_FOREACH_ITEM(doc, egress, it) {
		yaml_node_t *l = YDOC_NODE(doc, *it), *hosts;

		if (ydoc_is_mapping(cx, l, "an egress listener") < 0)
			continue;
		hosts = required_list(cx, doc, l, "hosts", "hosts", "an egress "
		    "listener must have at least one host in hosts");
		if (hosts == NULL)
			continue;
		read_sidecar_listener(cx, ld, doc, m, hosts, st->nlisteners++,
		    before);
	}
	if (cx->errors != before)
		return;
	note_acts(cx, ld, m, egress);
	if (ld->opts->nnamespaces == 0) {
		warn_no_map(cx, ld, m->spec, "Sidecar namespace scoping");
		return;
	}
	if (selector) {
		/* The gateway tells namespaces apart, not workloads. */
		ydoc_notice(cx, sel, "Sidecar %s: workloadSelector cannot be "
		    "enforced at the gateway; its hosts are added to what namespace "
		    "%s may use", pol_quote(m->name, qb, sizeof(qb)), m->scope_ns);
		return;
	}
	if (pol_loader_namespace(ld, m->scope_ns) == NULL)
		ydoc_warning(cx, m->spec, "Sidecar %s: namespace %s is not in the "
		    "namespaces: map; its clients cannot be told apart, so only "
		    "mapped namespaces keep the services it does not import",
		    pol_quote(m->name, qb, sizeof(qb)), m->scope_ns);
	add_restricted(cx, ld, m->scope_ns);
}

/* ---- VirtualService ------------------------------------------------------ */

/* Is any entry of a gateways list something other than "mesh"? */
static int
names_gateway(yaml_document_t *doc, yaml_node_t *list)
{
	if (list == NULL || list->type != YAML_SEQUENCE_NODE)
		return 0;
	YDOC_FOREACH_ITEM(doc, list, it) {
		const char *s = ydoc_text(YDOC_NODE(doc, *it));

		if (s != NULL && strcmp(s, "mesh") != 0)
			return 1;
	}
	return 0;
}

static int
check_gateways(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *list,
    const char *what)
{
	if (opt_list(cx, list, what) < 0)
		return -1;
	if (list == NULL)
		return 0;
	YDOC_FOREACH_ITEM(doc, list, it) {
		const char *s;

		if (ydoc_scalar(cx, YDOC_NODE(doc, *it), "a gateway name", &s) < 0)
			return -1;
	}
	return 0;
}

/* Is an SNI host within one of the VirtualService's hosts (Istio's rule)? */
static int
vs_hosts_cover(yaml_document_t *doc, yaml_node_t *vhosts,
    enum pol_pattern_kind kind, const char *pattern)
{
	char vpat[PATTERN_BUF];

	if (vhosts == NULL)
		return 0;
	YDOC_FOREACH_ITEM(doc, vhosts, vt) {
		const char *vs = ydoc_text(YDOC_NODE(doc, *vt));
		enum pol_pattern_kind vk;

		if (vs != NULL && pol_pattern_parse(vs, &vk, vpat, sizeof(vpat),
		    NULL, 0) == 0 && covers(vk, vpat, kind, pattern))
			return 1;
	}
	return 0;
}

/*
 * Istio forwards a matched SNI to the route's destination; egressd
 * connects to the name the client asked for. The same when the
 * destination is that name (or covers it), not otherwise: a warning
 * at each destination host that does not cover the SNI host. Only read
 * for this warning, so a malformed route is left to Istio's validation.
 */
static void
warn_destinations(struct ydoc_ctx *cx, yaml_document_t *doc,
    yaml_node_t *routes, const char *sni, enum pol_pattern_kind kind,
    const char *pattern)
{
	char qb[POL_QUOTE_BUF], qb2[POL_QUOTE_BUF], dpat[PATTERN_BUF];

	if (routes == NULL || routes->type != YAML_SEQUENCE_NODE)
		return;
	YDOC_FOREACH_ITEM(doc, routes, it) {
		yaml_node_t *dst = get(cx, doc, YDOC_NODE(doc, *it), "destination");
		yaml_node_t *dh = get(cx, doc, dst, "host");
		const char *text = ydoc_text(dh);
		enum pol_pattern_kind dk;

		if (text == NULL)
			continue;
		if (pol_pattern_parse(text, &dk, dpat, sizeof(dpat), NULL, 0) == 0 &&
		    dk != POL_PAT_DOMAIN && covers(dk, dpat, kind, pattern))
			continue;
		ydoc_warning(cx, dh, "the route sends SNI host '%s' to destination "
		    "'%s'; egressd connects to the name the client asked for, not "
		    "to the route's destination", pol_quote(sni, qb, sizeof(qb)),
		    pol_quote(text, qb2, sizeof(qb2)));
	}
}

/*
 * A gateways entry as "namespace/name": Istio reads a name without a
 * namespace as one in the VirtualService's. NULL when out of memory.
 */
static char *
gateway_ref(const char *ns, const char *s)
{
	size_t n = strlen(ns) + strlen(s) + 2;
	char *ref = malloc(n);

	if (ref == NULL)
		return NULL;
	if (strchr(s, '/') != NULL)
		snprintf(ref, n, "%s", s);
	else
		snprintf(ref, n, "%s/%s", ns, s);
	return ref;
}

/* Remembers the gateways (not mesh) the rules from first on are bound to. */
static void
remember_bind(struct ydoc_ctx *cx, struct pol_loader *ld, yaml_document_t *doc,
    yaml_node_t *gws, const char *ns, yaml_node_t *vhosts, uint16_t port,
    yaml_node_t *at, size_t first)
{
	struct k8s_state *st = state(cx, ld);
	struct k8s_bind *b;
	size_t cnt;

	if (st == NULL)
		return;
	if (grow((void **)&st->binds, st->nbinds, &st->binds_cap,
	    sizeof(*st->binds)) < 0)
		goto nomem;
	b = &st->binds[st->nbinds];
	memset(b, 0, sizeof(*b));
	b->first = first;
	b->count = pol_snapshot_rule_count(ld->snap) - first;
	b->line = (unsigned)at->start_mark.line + 1;
	b->col = (unsigned)at->start_mark.column + 1;
	cnt = (size_t)(gws->data.sequence.items.top - gws->data.sequence.items.start);
	b->refs = calloc(cnt, sizeof(*b->refs));
	b->file = strdup(cx->file != NULL ? cx->file : "-");
	b->ns = strdup(ns);
	b->port = port;
	cnt = vhosts != NULL ? (size_t)(vhosts->data.sequence.items.top -
	    vhosts->data.sequence.items.start) : 0;
	b->hosts = calloc(cnt ? cnt : 1, sizeof(*b->hosts));
	if (b->refs == NULL || b->file == NULL || b->ns == NULL ||
	    b->hosts == NULL)
		goto fail;
	st->nbinds++;
	if (vhosts != NULL) {
		YDOC_FOREACH_ITEM(doc, vhosts, it) {
			char pat[PATTERN_BUF];
			const char *h = ydoc_text(YDOC_NODE(doc, *it));
			struct k8s_host *kh = &b->hosts[b->nhosts];

			if (h == NULL || pol_pattern_parse(h, &kh->kind, pat,
			    sizeof(pat), NULL, 0) < 0 || kh->kind == POL_PAT_DOMAIN)
				continue;
			if ((kh->pattern = strdup(pat)) == NULL)
				goto nomem;
			b->nhosts++;
		}
	}
	YDOC_FOREACH_ITEM(doc, gws, it) {
		const char *g = ydoc_text(YDOC_NODE(doc, *it));

		if (g == NULL || strcmp(g, "mesh") == 0)
			continue;
		if ((b->refs[b->nrefs] = gateway_ref(ns, g)) == NULL)
			goto nomem;
		b->nrefs++;
	}
	return;
fail:
	free(b->refs);
	free(b->file);
	free(b->ns);
	free(b->hosts);
nomem:
	oom(cx, ld);
}

/*
 * One host of a Gateway server, "ns/host" ("./host": the Gateway's
 * namespace; "host" alone: any namespace), as Istio binds VirtualServices
 * to it. A host that does not parse is left out: it binds nothing.
 */
static void
add_gateway_host(struct ydoc_ctx *cx, struct pol_loader *ld,
    struct k8s_state *st, const char *ref, const char *gw_ns, uint16_t port,
    const char *text)
{
	char pat[PATTERN_BUF], nsb[NS_MAX + 1];
	const char *slash = strchr(text, '/'), *host = text, *ns = "*";
	struct k8s_host *h;

	if (slash != NULL) {
		size_t n = (size_t)(slash - text);

		if (n == 0 || n > NS_MAX)
			return;
		memcpy(nsb, text, n);
		nsb[n] = '\0';
		ns = strcmp(nsb, ".") == 0 ? gw_ns : nsb;
		host = slash + 1;
	}
	if (grow((void **)&st->gwhosts, st->ngwhosts, &st->gwhosts_cap,
	    sizeof(*st->gwhosts)) < 0) {
		oom(cx, ld);
		return;
	}
	h = &st->gwhosts[st->ngwhosts];
	if (strcmp(host, "*") == 0) {
		h->kind = POL_PAT_ANY;
		snprintf(pat, sizeof(pat), "*");
	} else if (pol_pattern_parse(host, &h->kind, pat, sizeof(pat), NULL,
	    0) < 0 || h->kind == POL_PAT_DOMAIN) {
		return;
	}
	h->pattern = strdup(pat);
	h->ns = strdup(ns);
	h->gw = strdup(ref);
	h->port = port;
	if (h->pattern == NULL || h->ns == NULL || h->gw == NULL) {
		free(h->pattern);
		free(h->ns);
		free(h->gw);
		oom(cx, ld);
		return;
	}
	st->ngwhosts++;
}

/*
 * An istio Gateway: its servers' ports and hosts say which VirtualServices
 * Istio binds to it (pilot's pickMatchingGatewayHosts: a host of the
 * VirtualService's namespace, or of any, that overlaps one of its hosts;
 * isPortMatch: match.port, when given, is the server's). One whose
 * selector is istio: ingressgateway configures Istio's ingress gateway:
 * routes bound to it bring traffic into the mesh (Istio's "Ingress
 * Gateway without TLS Termination" task binds sniHosts nginx.example.com
 * to one), and the egress gateway never sees them. Nothing is checked
 * here: a Gateway that does not parse binds nothing.
 */
static void
read_gateway(struct ydoc_ctx *cx, struct pol_loader *ld, yaml_document_t *doc,
    yaml_node_t *root)
{
	yaml_node_t *md = get(cx, doc, root, "metadata");
	yaml_node_t *spec = get(cx, doc, root, "spec");
	yaml_node_t *sel = get(cx, doc, spec, "selector");
	yaml_node_t *servers = get(cx, doc, spec, "servers");
	const char *name = ydoc_text(get(cx, doc, md, "name"));
	const char *ns = ydoc_text(get(cx, doc, md, "namespace"));
	const char *istio = ydoc_text(get(cx, doc, sel, "istio"));
	struct k8s_state *st = state(cx, ld);
	struct k8s_gw *g;

	if (st == NULL || name == NULL)
		return;
	if (ns == NULL || ns[0] == '\0')
		ns = DEFAULT_NS;
	if (grow((void **)&st->gws, st->ngws, &st->gws_cap, sizeof(*st->gws)) < 0 ||
	    (st->gws[st->ngws].ref = gateway_ref(ns, name)) == NULL) {
		oom(cx, ld);
		return;
	}
	g = &st->gws[st->ngws++];
	g->ingress = istio != NULL && strcmp(istio, "ingressgateway") == 0;
	if (g->ingress)
		ydoc_notice(cx, sel, "Gateway %s selects istio: ingressgateway "
		    "(Istio's ingress gateway): routes bound only to it admit "
		    "nothing at egressd", g->ref);
	if (servers == NULL || servers->type != YAML_SEQUENCE_NODE)
		return;
	YDOC_FOREACH_ITEM(doc, servers, it) {
		yaml_node_t *sv = YDOC_NODE(doc, *it);
		yaml_node_t *num = get(cx, doc, get(cx, doc, sv, "port"), "number");
		yaml_node_t *hosts = get(cx, doc, sv, "hosts");
		const char *t = ydoc_text(num);
		char *end;
		unsigned long v;

		if (t == NULL || hosts == NULL || hosts->type != YAML_SEQUENCE_NODE)
			continue;
		v = strtoul(t, &end, 10);
		if (*end != '\0' || v == 0 || v > 65535)
			continue;
		YDOC_FOREACH_ITEM(doc, hosts, ht) {
			const char *h = ydoc_text(YDOC_NODE(doc, *ht));

			if (h != NULL)
				add_gateway_host(cx, ld, st, st->gws[st->ngws - 1].ref,
				    ns, (uint16_t)v, h);
		}
	}
}

/*
 * One tls match: a rule for each of its SNI hosts, when the match is bound
 * to a gateway (*bound set) and the VirtualService had no error since
 * before; none when exportTo leaves no client.
 */
static void
read_vs_match(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, const char *ns, yaml_node_t *mt, yaml_node_t *vgw,
    yaml_node_t *vhosts, yaml_node_t *routes, struct pol_rule *r, int any,
    unsigned before, int *bound)
{
	char qb[POL_QUOTE_BUF], pattern[PATTERN_BUF];
	yaml_node_t *sni, *port, *mgw;
	size_t first;
	int on_gateway;

	if (ydoc_is_mapping(cx, mt, "a tls match") < 0)
		return;
	mgw = get(cx, doc, mt, "gateways");
	if (check_gateways(cx, doc, mgw, "match gateways") < 0)
		return;
	/* A match's gateways replace the VirtualService's. */
	if (mgw != NULL && !pol_yaml_is_empty_list(mgw))
		vgw = mgw;
	on_gateway = names_gateway(doc, vgw);
	first = pol_snapshot_rule_count(ld->snap);
	r->nports = 0;
	port = get(cx, doc, mt, "port");
	if (port != NULL) {
		if (pol_read_port(cx, port, &r->ports[0]) < 0)
			return;
		r->nports = 1;
	}
	sni = required_list(cx, doc, mt, "sniHosts", "sniHosts", "a "
	    "TLS match must have at least one SNI host in sniHosts");
	if (sni == NULL)
		return;
	YDOC_FOREACH_ITEM(doc, sni, kt) {
		yaml_node_t *h = YDOC_NODE(doc, *kt);
		const char *text;

		if (ydoc_scalar(cx, h, "an SNI host", &text) < 0)
			continue;
		/*
		 * Istio sends every SNI to the route's destination; egressd
		 * would connect to whatever name each client asks for.
		 */
		if (strcmp(text, "*") == 0) {
			ydoc_error(cx, h, "* is not a valid SNI host at egressd (a TLS "
			    "match names the hosts it admits; list them)");
			continue;
		}
		if (parse_host(cx, h, text, &r->kind, pattern) < 0)
			continue;
		if (!vs_hosts_cover(doc, vhosts, r->kind, pattern)) {
			ydoc_error(cx, h, "SNI host '%s' is not within the "
			    "VirtualService's hosts",
			    pol_quote(text, qb, sizeof(qb)));
			continue;
		}
		if (!on_gateway || cx->errors != before)
			continue;
		*bound = 1;
		warn_destinations(cx, doc, routes, text, r->kind, pattern);
		pol_rule_at(r, pattern, h);
		if (!any && r->nsources == 0)
			continue;
		pol_loader_add(cx, ld, r);
	}
	r->pattern = NULL;
	if (pol_snapshot_rule_count(ld->snap) > first)
		remember_bind(cx, ld, doc, vgw, ns, vhosts,
		    r->nports ? r->ports[0] : 0, mt, first);
}

static void
read_virtual_service(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, struct k8s_meta *m)
{
	char qb[POL_QUOTE_BUF];
	yaml_node_t *spec = m->spec, *vgw, *vhosts, *tls;
	struct pol_cidr *src = NULL;
	unsigned char *vis = NULL;
	unsigned before = cx->errors;
	struct pol_rule r;
	uint16_t ports[POL_MAX_PORTS];
	int any = 1, bound = 0;

	rule_init(cx, &r, m, "VirtualService", ports);
	vgw = get(cx, doc, spec, "gateways");
	if (check_gateways(cx, doc, vgw, "spec.gateways") < 0)
		return;
	vhosts = get(cx, doc, spec, "hosts");
	if (opt_list(cx, vhosts, "spec.hosts") < 0)
		return;
	tls = get(cx, doc, spec, "tls");
	if (tls == NULL) {
		ydoc_notice(cx, spec, "VirtualService %s has no tls routes: not "
		    "used by egressd", pol_quote(m->name, qb, sizeof(qb)));
		return;
	}
	if (ydoc_is_sequence(cx, tls, "spec.tls") < 0)
		return;
	if (read_rule_export(cx, ld, doc, m, 0, &r, &any, &vis, &src) != 0)
		goto out;
	YDOC_FOREACH_ITEM(doc, tls, it) {
		yaml_node_t *route = YDOC_NODE(doc, *it), *match, *routes;

		if (ydoc_is_mapping(cx, route, "a tls route") < 0)
			continue;
		match = required_list(cx, doc, route, "match", "match", "a TLS "
		    "route must have at least one match condition");
		if (match == NULL)
			continue;
		routes = get(cx, doc, route, "route");
		YDOC_FOREACH_ITEM(doc, match, jt)
			read_vs_match(cx, ld, doc, m->scope_ns, YDOC_NODE(doc, *jt),
			    vgw, vhosts,
			    routes, &r, any, before, &bound);
	}
	if (cx->errors == before && !bound)
		ydoc_notice(cx, spec, "VirtualService %s: no tls route is bound to "
		    "a gateway (only to mesh); not used by egressd",
		    pol_quote(m->name, qb, sizeof(qb)));
	else if (cx->errors == before && !any && r.nsources == 0)
		ydoc_warning(cx, spec, "VirtualService %s: no client of the "
		    "gateway may use it (see exportTo); skipped",
		    pol_quote(m->name, qb, sizeof(qb)));
out:
	free(src);
	free(vis);
}

/* ---- DestinationRule ----------------------------------------------------- */

enum tls_mode {
	TLS_NONE = -1,          /* no tls settings */
	TLS_DISABLE = 0,
	TLS_SIMPLE,
	TLS_MUTUAL,
	TLS_ISTIO_MUTUAL,
};

static int
read_tls_mode(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *holder,
    enum tls_mode *out)
{
	static const char *const names[] = {
		"DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL",
	};
	char qb[POL_QUOTE_BUF];
	yaml_node_t *tls, *mode;
	const char *s;

	*out = TLS_NONE;
	tls = get(cx, doc, holder, "tls");
	if (tls == NULL)
		return 0;
	if (ydoc_is_mapping(cx, tls, "tls") < 0)
		return -1;
	mode = get(cx, doc, tls, "mode");
	if (mode == NULL) {
		*out = TLS_DISABLE;     /* Istio's default mode */
		return 0;
	}
	if (ydoc_scalar(cx, mode, "tls.mode", &s) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum tls_mode)i;
			if (*out == TLS_MUTUAL)
				ydoc_warning(cx, mode, "tls.mode MUTUAL: egressd has no "
				    "client certificates; it originates TLS without one");
			return 0;
		}
	}
	ydoc_error(cx, mode, "unknown tls.mode '%s' (expected DISABLE, SIMPLE, "
	    "MUTUAL or ISTIO_MUTUAL)", pol_quote(s, qb, sizeof(qb)));
	return -1;
}

static int
originates(enum tls_mode m)
{
	return m == TLS_SIMPLE || m == TLS_MUTUAL;
}

static void
read_destination_rule(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, struct k8s_meta *m)
{
	char pattern[PATTERN_BUF];
	yaml_node_t *host, *tp, *pls;
	struct k8s_state *st;
	struct k8s_dr dr;
	enum pol_pattern_kind kind;
	enum tls_mode mode;
	unsigned before = cx->errors;
	const char *text;

	memset(&dr, 0, sizeof(dr));
	host = get(cx, doc, m->spec, "host");
	if (host == NULL) {
		ydoc_error(cx, m->spec, "missing required key 'spec.host'");
		return;
	}
	if (ydoc_scalar(cx, host, "spec.host", &text) < 0)
		return;
	if (parse_host(cx, host, text, &kind, pattern) < 0)
		return;
	tp = get(cx, doc, m->spec, "trafficPolicy");
	if (tp == NULL)
		return;
	if (ydoc_is_mapping(cx, tp, "spec.trafficPolicy") < 0)
		return;
	if (read_tls_mode(cx, doc, tp, &mode) == 0)
		dr.all = originates(mode);
	pls = get(cx, doc, tp, "portLevelSettings");
	if (opt_list(cx, pls, "portLevelSettings") < 0)
		return;
	if (pls != NULL) {
		YDOC_FOREACH_ITEM(doc, pls, it) {
			yaml_node_t *s = YDOC_NODE(doc, *it), *port, *num;
			uint16_t v;

			if (ydoc_is_mapping(cx, s, "a port level setting") < 0)
				continue;
			port = get(cx, doc, s, "port");
			if (port == NULL) {
				ydoc_error(cx, s, "missing required key 'port'");
				continue;
			}
			if (ydoc_is_mapping(cx, port, "port") < 0)
				continue;
			num = get(cx, doc, port, "number");
			if (num == NULL) {
				ydoc_error(cx, port, "missing required key 'number'");
				continue;
			}
			if (pol_read_port(cx, num, &v) < 0 ||
			    read_tls_mode(cx, doc, s, &mode) < 0 || mode == TLS_NONE)
				continue;
			if (dr.non == POL_MAX_PORTS || dr.noff == POL_MAX_PORTS) {
				ydoc_error(cx, s, "too many portLevelSettings (at most "
				    "%d)", POL_MAX_PORTS);
				break;
			}
			if (originates(mode))
				dr.on[dr.non++] = v;
			else
				dr.off[dr.noff++] = v;
		}
	}
	if (cx->errors != before || (!dr.all && dr.non == 0))
		return;
	note_acts(cx, ld, m, host);
	st = state(cx, ld);
	if (st == NULL)
		return;
	if (grow((void **)&st->dr, st->ndr, &st->dr_cap, sizeof(*st->dr)) < 0) {
		oom(cx, ld);
		return;
	}
	dr.kind = kind;
	dr.pattern = strdup(pattern);
	dr.file = strdup(cx->file != NULL ? cx->file : "-");
	dr.line = (unsigned)host->start_mark.line + 1;
	dr.col = (unsigned)host->start_mark.column + 1;
	if (dr.pattern == NULL || dr.file == NULL) {
		free(dr.pattern);
		free(dr.file);
		oom(cx, ld);
		return;
	}
	st->dr[st->ndr++] = dr;
}

/* ---- dispatch -------------------------------------------------------------- */

/*
 * Kubernetes holds one object per kind, namespace and name: applying a
 * second document of the same ones replaces the first, so the cluster
 * has only the last. Reading both would admit the hosts of one the
 * cluster no longer has (or narrow by a Sidecar it no longer has), and
 * which one is last depends on how the files are applied: an error,
 * at the second's metadata.name, naming the first. 0, or -1.
 */
static int
unique_object(struct ydoc_ctx *cx, struct pol_loader *ld,
    const struct k8s_meta *m)
{
	static const char *const kinds[] = {
		"ServiceEntry", "Sidecar", "VirtualService", "DestinationRule",
	};
	char qb[POL_QUOTE_BUF];
	struct k8s_state *st = state(cx, ld);
	const char *kind = NULL;

	if (st == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(m->kind, kinds[i]) == 0)
			kind = kinds[i];
	if (kind == NULL)
		return 0;
	for (size_t i = 0; i < st->nobjs; i++) {
		const struct k8s_seen *sn = &st->objs[i];

		if (sn->kind != kind || strcmp(sn->ns, m->scope_ns) != 0 ||
		    strcmp(sn->name, m->name) != 0)
			continue;
		ydoc_error(cx, m->name_node, "%s %s/%s is defined twice (first at "
		    "%s:%u:%u); Kubernetes keeps only the one applied last, so keep "
		    "one of them", kind, m->scope_ns,
		    pol_quote(m->name, qb, sizeof(qb)), sn->file, sn->line, sn->col);
		return -1;
	}
	return remember_seen(cx, ld, &st->objs, &st->nobjs, &st->objs_cap, kind,
	    m, m->name_node);
}

static int
istio_api(const char *v)
{
	return strcmp(v, "networking.istio.io/v1alpha3") == 0 ||
	    strcmp(v, "networking.istio.io/v1beta1") == 0 ||
	    strcmp(v, "networking.istio.io/v1") == 0;
}

static void read_resource(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, yaml_node_t *root, int depth);

/* "kind: List" (kubectl get -o yaml) holds its resources in items. */
static void
read_list(struct ydoc_ctx *cx, struct pol_loader *ld, yaml_document_t *doc,
    yaml_node_t *root, int depth)
{
	yaml_node_t *items = get(cx, doc, root, "items");

	if (items == NULL || ydoc_is_sequence(cx, items, "items") < 0)
		return;
	YDOC_FOREACH_ITEM(doc, items, it) {
		yaml_node_t *item = YDOC_NODE(doc, *it);

		if (ydoc_is_mapping(cx, item, "a list item") == 0)
			read_resource(cx, ld, doc, item, depth + 1);
	}
}

/*
 * The native top-level keys are not read in a resource: "mode: report"
 * there would leave the resource enforcing, and an "allow" or "deny"
 * would be dropped. Each is an error that says where it belongs.
 */
static void
check_native_keys(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *root)
{
	YDOC_FOREACH_PAIR(doc, root, p) {
		yaml_node_t *k = YDOC_NODE(doc, p->key);
		const char *ks = ydoc_text(k);

		if (ks == NULL)
			continue;
		if (strcmp(ks, "mode") == 0)
			ydoc_error(cx, k, "mode is not read in a Kubernetes resource "
			    "(a document with kind); to set this file's mode, write "
			    "'mode: report' as a document of its own, followed by ---");
		else if (strcmp(ks, "allow") == 0 || strcmp(ks, "deny") == 0)
			ydoc_error(cx, k, "%s is not read in a Kubernetes resource (a "
			    "document with kind); write native rules in a document of "
			    "their own, separated by ---", ks);
	}
}

static void
read_resource(struct ydoc_ctx *cx, struct pol_loader *ld, yaml_document_t *doc,
    yaml_node_t *root, int depth)
{
	char qb[POL_QUOTE_BUF], qb2[POL_QUOTE_BUF];
	yaml_node_t *kn = get(cx, doc, root, "kind");
	yaml_node_t *an = get(cx, doc, root, "apiVersion");
	struct k8s_meta m;
	const char *api;

	check_native_keys(cx, doc, root);
	if (kn == NULL) {
		ydoc_error(cx, root, "missing required key 'kind'");
		return;
	}
	if (ydoc_scalar(cx, kn, "kind", &m.kind) < 0)
		return;
	if (an == NULL) {
		ydoc_error(cx, root, "kind %s: missing required key 'apiVersion'",
		    pol_quote(m.kind, qb, sizeof(qb)));
		return;
	}
	if (ydoc_scalar(cx, an, "apiVersion", &api) < 0)
		return;
	/*
	 * A List's items may be Sidecars or DestinationRules, which must not
	 * be skipped: a List inside a List is read too, to a bounded depth.
	 */
	if (strcmp(m.kind, "List") == 0) {
		if (depth >= LIST_DEPTH_MAX) {
			ydoc_error(cx, kn, "kind List nested more than %d deep; "
			    "write its items as documents of their own",
			    LIST_DEPTH_MAX);
			return;
		}
		read_list(cx, ld, doc, root, depth);
		return;
	}
	/* The API's own lists (items without kind): skipping one of these
	 * would drop what it restricts. */
	if (strcmp(m.kind, "SidecarList") == 0 ||
	    strcmp(m.kind, "DestinationRuleList") == 0) {
		ydoc_error(cx, kn, "kind %s is not read; write its items as "
		    "documents of their own, or as a kind: List (kubectl get -o "
		    "yaml)", m.kind);
		return;
	}
	if (strcmp(m.kind, "Gateway") == 0 && istio_api(api)) {
		read_gateway(cx, ld, doc, root);
		return;
	}
	if (strcmp(m.kind, "ServiceEntry") != 0 && strcmp(m.kind, "Sidecar") != 0 &&
	    strcmp(m.kind, "VirtualService") != 0 &&
	    strcmp(m.kind, "DestinationRule") != 0) {
		ydoc_notice(cx, root, "kind %s: not used by egressd; skipped",
		    pol_quote(m.kind, qb, sizeof(qb)));
		return;
	}
	/*
	 * A ServiceEntry or VirtualService of an unknown version can only
	 * add names: skipping it admits less than the file says. A Sidecar
	 * only narrows, and a DestinationRule decides whether the gateway
	 * speaks TLS upstream: skipping either admits more, or less safely,
	 * than the file says, so it is refused.
	 */
	if (!istio_api(api)) {
		if (strcmp(m.kind, "Sidecar") == 0 ||
		    strcmp(m.kind, "DestinationRule") == 0) {
			ydoc_error(cx, an, "kind %s of apiVersion %s is not known to "
			    "egressd, and skipping it would drop what it restricts; use "
			    "networking.istio.io/v1, v1beta1 or v1alpha3", m.kind,
			    pol_quote(api, qb2, sizeof(qb2)));
			return;
		}
		ydoc_notice(cx, an, "kind %s of apiVersion %s: not used by egressd "
		    "(expected networking.istio.io/v1, v1beta1 or v1alpha3); skipped",
		    m.kind, pol_quote(api, qb2, sizeof(qb2)));
		return;
	}
	if (read_meta(cx, doc, root, &m) < 0 || unique_object(cx, ld, &m) < 0)
		return;
	if (strcmp(m.kind, "ServiceEntry") == 0)
		read_service_entry(cx, ld, doc, &m);
	else if (strcmp(m.kind, "Sidecar") == 0)
		read_sidecar(cx, ld, doc, &m);
	else if (strcmp(m.kind, "VirtualService") == 0)
		read_virtual_service(cx, ld, doc, &m);
	else
		read_destination_rule(cx, ld, doc, &m);
}

void
pol_k8s_read(struct ydoc_ctx *cx, struct pol_loader *ld, yaml_document_t *doc,
    yaml_node_t *root)
{
	read_resource(cx, ld, doc, root, 0);
}

/*
 * Report mode's promise is that a report-mode file only adds would_deny
 * lines. A Sidecar narrows, and a DestinationRule changes how the gateway
 * connects for, every file's rules, the enforced ones included; applying
 * it to report-mode rules only would keep that promise but show no
 * would_deny for the enforced traffic it would cut, so a trial would
 * report "nothing breaks". Refused instead, at each such resource.
 */
void
pol_k8s_end_file(struct ydoc_ctx *cx, struct pol_loader *ld)
{
	struct k8s_state *st = ld->k8s;

	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nacts && ld->file_mode == POL_MODE_REPORT; i++) {
		yaml_node_t at;

		memset(&at, 0, sizeof(at));
		at.start_mark = st->acts[i].mark;
		ydoc_error(cx, &at, "%s %s acts on every file's rules and cannot be "
		    "trialled in report mode (mode: report at line %u); put it in a "
		    "file without mode: report, or run the daemon with mode: report "
		    "to trial the whole policy", st->acts[i].kind, st->acts[i].name,
		    ld->file_mode_line);
	}
	st->nacts = 0;
	/* A Gateway only says which routes bind: on trial, it binds the
	 * report-mode routes and leaves the enforced ones as they were. */
	for (size_t i = st->gws_file; i < st->ngws; i++)
		st->gws[i].trial = ld->file_mode == POL_MODE_REPORT;
	st->gws_file = st->ngws;
}

/* ---- finish: Sidecar scoping, then DestinationRules ----------------------- */

/* Replaces rule i's sources (copied by pol_loader_add). 0, or -1. */
static int
set_sources(struct ydoc_ctx *cx, struct pol_loader *ld, size_t i,
    const struct pol_cidr *src, size_t n)
{
	struct pol_snapshot *s = ld->snap;
	struct pol_rule r = s->rules[i];        /* a copy: add may realloc */
	size_t last = s->nrules;

	r.sources = src;
	r.nsources = n;
	pol_loader_add(cx, ld, &r);
	if (ld->oom || s->nrules != last + 1)
		return -1;
	s->rules[i] = s->rules[last];
	s->nrules = last;
	return 0;
}

static void
delete_rule(struct pol_snapshot *s, size_t i)
{
	memmove(&s->rules[i], &s->rules[i + 1],
	    (s->nrules - i - 1) * sizeof(s->rules[0]));
	s->nrules--;
}

static int
import_matches(const struct k8s_import *im, const char *se_ns,
    const struct pol_rule *r)
{
	if (strcmp(im->from, "*") != 0 && strcmp(im->from, se_ns) != 0)
		return 0;
	return covers(im->kind, im->pattern, r->kind, r->pattern);
}

/*
 * Does some egress listener of client_ns's Sidecars import the rule's
 * host? A listener imports it when one of its hosts does and none of its
 * exclusions does (Istio: IstioEgressListenerWrapper.selectServices).
 * Imports are stored in listener order, so one pass per listener suffices.
 */
static int
imports(const struct k8s_state *st, const char *client_ns, const char *se_ns,
    const struct pol_rule *r)
{
	size_t i = 0;

	while (i < st->nimp) {
		unsigned l = st->imp[i].listener;
		int in = 0, out = 0;

		for (; i < st->nimp && st->imp[i].listener == l; i++) {
			const struct k8s_import *im = &st->imp[i];

			if (strcmp(im->sidecar_ns, client_ns) != 0 ||
			    !import_matches(im, se_ns, r))
				continue;
			if (im->exclude)
				out = 1;
			else
				in = 1;
		}
		if (in && !out)
			return 1;
	}
	return 0;
}

/*
 * A namespace with a namespace-wide Sidecar loses every ServiceEntry host
 * the Sidecar does not import. A host open to anyone becomes open to the
 * mapped namespaces that keep it: clients outside the map cannot be told
 * apart from the restricted namespace's, so they lose it too.
 */
static void
apply_sidecars(struct ydoc_ctx *cx, struct pol_loader *ld, struct k8s_state *st)
{
	const struct pol_load_opts *o = ld->opts;
	unsigned char *vis = NULL;

	if (st->nrestricted == 0)
		return;
	vis = malloc(o->nnamespaces ? o->nnamespaces : 1);
	if (vis == NULL) {
		oom(cx, ld);
		return;
	}
	/* Backwards, so deleting a rule moves only rules already done. */
	for (size_t k = st->nse; k-- > 0;) {
		const struct k8s_se *se = &st->se[k];

		for (size_t i = se->first + se->count; i-- > se->first;) {
			const struct pol_rule *r = &ld->snap->rules[i];
			struct pol_cidr *src;
			size_t n;
			int changed = 0, fail;

			if (se->vis != NULL)
				memcpy(vis, se->vis, o->nnamespaces);
			else
				memset(vis, 1, o->nnamespaces);
			for (size_t j = 0; j < st->nrestricted; j++) {
				const struct pol_namespace *pn;

				if (imports(st, st->restricted[j], se->ns, r))
					continue;
				if (se->vis == NULL)
					changed = 1;
				pn = pol_loader_namespace(ld, st->restricted[j]);
				if (pn != NULL && vis[pn - o->namespaces]) {
					vis[pn - o->namespaces] = 0;
					changed = 1;
				}
			}
			if (!changed)
				continue;
			src = vis_cidrs(o, vis, &n, &fail);
			if (fail) {
				oom(cx, ld);
				break;
			}
			if (n == 0)
				delete_rule(ld->snap, i);
			else if (set_sources(cx, ld, i, src, n) < 0)
				fail = 1;
			free(src);
			if (fail)
				break;
		}
	}
	free(vis);
}

static int
has_port(const uint16_t *p, size_t n, uint16_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == v)
			return 1;
	return 0;
}

static int
dr_port(const struct k8s_dr *dr, uint16_t port)
{
	if (has_port(dr->on, dr->non, port))
		return 1;
	return dr->all && !has_port(dr->off, dr->noff, port);
}

/*
 * Marks the rules a DestinationRule covers. When it originates on some of
 * a rule's ports only, the rule is split in two, so the other ports stay
 * passthrough. A rule without ports (443 for TLS, 80 for HTTP) is marked
 * when either default port originates.
 */
static void
apply_dr(struct ydoc_ctx *cx, struct pol_loader *ld, const struct k8s_dr *dr)
{
	struct pol_snapshot *s = ld->snap;
	size_t n = s->nrules, matched = 0;
	char msg[POL_NAME_MAX + 128];

	for (size_t i = 0; i < n; i++) {
		struct pol_rule *r = &s->rules[i];
		struct pol_rule on;
		/* r's ports may be shared with other hosts: not changed in
		 * place, but split into two new lists. */
		uint16_t on_ports[POL_MAX_PORTS], off_ports[POL_MAX_PORTS];
		size_t keep = 0;
		int nomem = 0;

		if (r->action != POL_ALLOW || r->origin == NULL ||
		    strcmp(r->origin, "native") == 0 ||
		    !covers(dr->kind, dr->pattern, r->kind, r->pattern))
			continue;
		matched++;
		if (r->nports == 0) {
			if (dr_port(dr, 443) || dr_port(dr, 80))
				r->originate_tls = 1;
			continue;
		}
		on = *r;
		on.nports = 0;
		on.ports = on_ports;
		for (size_t p = 0; p < r->nports; p++) {
			if (dr_port(dr, r->ports[p]))
				on_ports[on.nports++] = r->ports[p];
			else
				off_ports[keep++] = r->ports[p];
		}
		if (on.nports == 0)
			continue;
		if (keep == 0) {
			r->originate_tls = 1;
			continue;
		}
		r->ports = pol_snap_ports(s, off_ports, keep, &nomem);
		if (nomem) {
			oom(cx, ld);
			return;
		}
		r->nports = keep;
		on.originate_tls = 1;
		pol_loader_add(cx, ld, &on);    /* r may move: not used after */
		if (ld->oom)
			return;
	}
	if (matched == 0 && cx->report != NULL) {
		snprintf(msg, sizeof(msg), "DestinationRule host %s matches no "
		    "ServiceEntry or VirtualService host; its TLS settings are "
		    "not used", dr->pattern);
		cx->report(cx->arg, POL_NOTICE, dr->file, dr->line, dr->col, msg);
	}
}

/*
 * The Gateway ref names, as routes of a file in this mode see it: one of a
 * report-mode file is not there for enforced routes (a trial never cuts
 * enforced traffic), as if the policy did not hold it.
 */
static const struct k8s_gw *
find_gateway(const struct k8s_state *st, const char *ref, int trial)
{
	for (size_t i = 0; i < st->ngws; i++)
		if (strcmp(st->gws[i].ref, ref) == 0 &&
		    (trial || !st->gws[i].trial))
			return &st->gws[i];
	return NULL;
}

/*
 * Does Istio bind the match to Gateway g: a server on the match's port
 * (any, without one) with a host of the VirtualService's namespace (or of
 * any) that overlaps one of the VirtualService's hosts?
 */
static int
gateway_binds(const struct k8s_state *st, const struct k8s_gw *g,
    const struct k8s_bind *b)
{
	for (size_t i = 0; i < st->ngwhosts; i++) {
		const struct k8s_host *h = &st->gwhosts[i];

		if (strcmp(h->gw, g->ref) != 0 ||
		    (b->port != 0 && h->port != b->port) ||
		    (strcmp(h->ns, "*") != 0 && strcmp(h->ns, b->ns) != 0))
			continue;
		for (size_t j = 0; j < b->nhosts; j++)
			if (covers(h->kind, h->pattern, b->hosts[j].kind,
			    b->hosts[j].pattern) || covers(b->hosts[j].kind,
			    b->hosts[j].pattern, h->kind, h->pattern))
				return 1;
	}
	return 0;
}

/*
 * Drops the rules of tls matches that no gateway they are bound to
 * carries at an egress gateway: Gateways of the policy that select
 * Istio's ingress gateway, or whose servers Istio does not bind the
 * match to. A gateway the policy does not hold is taken to carry it.
 * A warning at the match; backwards, so that deleting moves only rules
 * already done; ServiceEntry rules after them move down.
 */
static void
drop_unbound_routes(struct ydoc_ctx *cx, struct pol_loader *ld,
    struct k8s_state *st)
{
	char msg[POL_NAME_MAX + 200];

	for (size_t k = st->nbinds; k-- > 0;) {
		const struct k8s_bind *b = &st->binds[k];
		const struct k8s_gw *g = NULL;
		int carried = 0, all_ingress = 1, trial;

		if (b->nrefs == 0 || b->count == 0)
			continue;
		trial = ld->snap->rules[b->first].trial;
		for (size_t j = 0; j < b->nrefs && !carried; j++) {
			g = find_gateway(st, b->refs[j], trial);
			if (g == NULL || (!g->ingress && gateway_binds(st, g, b)))
				carried = 1;
			else if (!g->ingress)
				all_ingress = 0;
		}
		if (carried)
			continue;
		for (size_t i = b->count; i-- > 0;)
			delete_rule(ld->snap, b->first + i);
		for (size_t i = 0; i < st->nse; i++)
			if (st->se[i].first > b->first)
				st->se[i].first -= b->count;
		if (cx->report == NULL)
			continue;
		if (all_ingress)
			snprintf(msg, sizeof(msg), "this tls match is bound only to "
			    "Istio's ingress gateway (%s selects istio: ingressgateway); "
			    "it admits nothing at egressd", b->refs[0]);
		else
			snprintf(msg, sizeof(msg), "no Gateway this tls match is bound "
			    "to has a server on its port with a host of namespace %s "
			    "matching the VirtualService's hosts, so Istio does not "
			    "bind it; it admits nothing at egressd", b->ns);
		cx->report(cx->arg, POL_WARNING, b->file, b->line, b->col, msg);
	}
}

void
pol_k8s_finish(struct ydoc_ctx *cx, struct pol_loader *ld, int errors)
{
	struct k8s_state *st = ld->k8s;

	if (st == NULL)
		return;
	if (!errors && !ld->oom) {
		drop_unbound_routes(cx, ld, st);
		if (ld->opts->nnamespaces > 0)
			apply_sidecars(cx, ld, st);
		for (size_t i = 0; i < st->ndr && !ld->oom; i++)
			apply_dr(cx, ld, &st->dr[i]);
	}
	for (size_t i = 0; i < st->nse; i++) {
		free(st->se[i].ns);
		free(st->se[i].vis);
	}
	for (size_t i = 0; i < st->nimp; i++) {
		free(st->imp[i].sidecar_ns);
		free(st->imp[i].from);
		free(st->imp[i].pattern);
	}
	for (size_t i = 0; i < st->nrestricted; i++)
		free(st->restricted[i]);
	free_seen(st->defaults, st->ndefaults);
	free_seen(st->objs, st->nobjs);
	for (size_t i = 0; i < st->ngws; i++)
		free(st->gws[i].ref);
	for (size_t i = 0; i < st->ngwhosts; i++) {
		free(st->gwhosts[i].pattern);
		free(st->gwhosts[i].ns);
		free(st->gwhosts[i].gw);
	}
	for (size_t i = 0; i < st->nbinds; i++) {
		for (size_t j = 0; j < st->binds[i].nrefs; j++)
			free(st->binds[i].refs[j]);
		for (size_t j = 0; j < st->binds[i].nhosts; j++)
			free(st->binds[i].hosts[j].pattern);
		free(st->binds[i].refs);
		free(st->binds[i].hosts);
		free(st->binds[i].ns);
		free(st->binds[i].file);
	}
	free(st->gws);
	free(st->gwhosts);
	free(st->binds);
	for (size_t i = 0; i < st->ndr; i++) {
		free(st->dr[i].pattern);
		free(st->dr[i].file);
	}
	free(st->acts);
	free(st->se);
	free(st->imp);
	free(st->restricted);
	free(st->dr);
	free(st);
	ld->k8s = NULL;
}

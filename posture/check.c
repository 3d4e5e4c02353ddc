/*
 * The checks: every way around the gateway the manifests show, one finding
 * each, with the object it is reported on, the line that causes it, and
 * the fix (docs/posture.md explains each code).
 *
 * What is not judged, and why:
 *  - the gateway's own workload: its egress is meant to be open, and it
 *    runs without a sidecar in its way (or excludes its own traffic);
 *  - kube-system, kube-public, kube-node-lease and istio-system: the
 *    platform's own components, which run without sidecars by design;
 *  - a Pod or ReplicaSet whose controller is in the input: the controller
 *    is reported instead, once, rather than every pod it made.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "posture/posture-int.h"

#define MSG_MAX 1024
#define PROXY_UID 1337L
#define ANNO "traffic.sidecar.istio.io/"

static const struct {
	const char *name;
	enum pst_severity sev;
} codes[PST_NCODES] = {
	[PST_SERVICE_ENTRY_BYPASS] = { "service_entry_bypass", PST_HIGH },
	[PST_EXTERNAL_NAME_SERVICE] = { "external_name_service", PST_MEDIUM },
	[PST_ALLOW_ANY] = { "allow_any", PST_HIGH },
	[PST_UID_1337] = { "uid_1337", PST_HIGH },
	[PST_EXCLUDE_ANNOTATION] = { "exclude_annotation", PST_HIGH },
	[PST_INJECTION_DISABLED] = { "injection_disabled", PST_HIGH },
	[PST_HOST_NETWORK] = { "host_network", PST_HIGH },
	[PST_NETWORKPOLICY_OPEN_EGRESS] = { "networkpolicy_open_egress", PST_MEDIUM },
	[PST_NO_EGRESS_NETWORKPOLICY] = { "no_egress_networkpolicy", PST_MEDIUM },
	[PST_PEER_AUTHENTICATION_PERMISSIVE] = { "peer_authentication_permissive", PST_LOW },
};

const char *
pst_code_str(enum pst_code code)
{
	return (unsigned)code < PST_NCODES ? codes[code].name : "unknown";
}

enum pst_severity
pst_code_severity(enum pst_code code)
{
	return (unsigned)code < PST_NCODES ? codes[code].sev : PST_HIGH;
}

const char *
pst_severity_str(enum pst_severity sev)
{
	switch (sev) {
	case PST_HIGH: return "high";
	case PST_MEDIUM: return "medium";
	case PST_LOW: return "low";
	}
	return "unknown";
}

/* ---- the cluster ------------------------------------------------------------ */

struct pst_cluster *
pst_new(const char *gateway)
{
	struct pst_cluster *c;
	const char *slash;

	if (gateway == NULL)
		gateway = "egress/egressd";
	slash = strchr(gateway, '/');
	/* A workload name may have dots (DNS-1123 subdomain); keep it simple. */
	if (slash == NULL || !pol_is_dns_label(gateway, (size_t)(slash - gateway)) ||
	    slash[1] == '\0' || strlen(slash + 1) > 253 || strchr(slash + 1, '/'))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->gw_name = pst_strdup(c, slash + 1);
	c->gw_ns = pst_alloc(c, (size_t)(slash - gateway) + 1);
	if (c->gw_name == NULL || c->gw_ns == NULL) {
		pst_free(c);
		return NULL;
	}
	memcpy((char *)c->gw_ns, gateway, (size_t)(slash - gateway));
	return c;
}

void
pst_free(struct pst_cluster *c)
{
	if (c == NULL)
		return;
	pst_arena_free(c);
	free(c->wl);
	free(c->ns);
	free(c->svc);
	free(c->se);
	free(c->vs);
	free(c->ob);
	free(c->pa);
	free(c->np);
	free(c->fd);
	free(c);
}

const struct pst_finding *
pst_finding(const struct pst_cluster *c, size_t i)
{
	return i < c->nfd ? &c->fd[i] : NULL;
}

/* ---- findings ------------------------------------------------------------------ */

__attribute__((format(printf, 5, 6)))
static void
add(struct pst_cluster *c, enum pst_code code, const struct pst_ref *ref,
    unsigned line, const char *fmt, ...)
{
	static const char *const fixes[PST_NCODES] = {
		[PST_SERVICE_ENTRY_BYPASS] = "add a VirtualService whose mesh "
		    "routes send these hosts to the gateway's Service, or export "
		    "the ServiceEntry to the gateway's namespace only",
		[PST_EXTERNAL_NAME_SERVICE] = "delete the Service and let clients "
		    "reach the name through the gateway, which decides on it",
		[PST_ALLOW_ANY] = "set outboundTrafficPolicy.mode: REGISTRY_ONLY, "
		    "or ALLOW_ANY with egressProxy.host set to the gateway's Service",
		[PST_UID_1337] = "run the container as another UID "
		    "(securityContext.runAsUser)",
		[PST_EXCLUDE_ANNOTATION] = "remove the annotation, and allow what "
		    "the workload needs at the gateway",
		[PST_INJECTION_DISABLED] = "label the namespace "
		    "istio-injection=enabled (or istio.io/rev) and drop "
		    "sidecar.istio.io/inject: \"false\"",
		[PST_HOST_NETWORK] = "drop hostNetwork: true, or keep the pod off "
		    "nodes whose own egress is not restricted",
		[PST_NETWORKPOLICY_OPEN_EGRESS] = "admit only the gateway's pods "
		    "and in-cluster destinations in the rule's 'to'",
		[PST_NO_EGRESS_NETWORKPOLICY] = "add a NetworkPolicy with "
		    "policyTypes [Egress] and podSelector {} that admits only the "
		    "gateway and the cluster DNS",
		[PST_PEER_AUTHENTICATION_PERMISSIVE] = "set mtls.mode: STRICT",
	};
	struct pst_finding *f;
	char msg[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f = PST_PUSH(c, fd);
	if (f == NULL)
		return;
	f->code = code;
	f->severity = pst_code_severity(code);
	f->kind = ref->kind;
	f->ns = ref->ns;
	f->name = ref->name;
	f->file = ref->file;
	f->line = line > 0 ? line : ref->line;
	f->message = pst_strdup_line(c, msg);
	f->fix = fixes[code];
	if (f->message != NULL)
		c->nfd++;
}

static int
finding_cmp(const void *a, const void *b)
{
	const struct pst_finding *x = a, *y = b;
	int d = strcmp(x->file, y->file);

	if (d != 0)
		return d;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->code != y->code)
		return x->code < y->code ? -1 : 1;
	return strcmp(x->message, y->message);
}

/* ---- the gateway ----------------------------------------------------------------- */

struct gw {
	const struct pst_workload *wl;  /* the named workload, if in the input */
	const struct pst_service *svc;  /* the Service of its name, if any */
};

static int
same(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

static struct gw
find_gateway(const struct pst_cluster *c)
{
	struct gw g = { NULL, NULL };

	for (size_t i = 0; i < c->nwl; i++) {
		const struct pst_workload *w = &c->wl[i];

		if (!w->skip && same(w->ref.ns, c->gw_ns) && same(w->ref.name, c->gw_name))
			g.wl = w;
	}
	for (size_t i = 0; i < c->nsvc; i++)
		if (same(c->svc[i].ref.ns, c->gw_ns) && same(c->svc[i].ref.name, c->gw_name))
			g.svc = &c->svc[i];
	return g;
}

/* The gateway's pods: the named workload, or what its Service selects. */
static int
is_gateway_workload(const struct pst_cluster *c, const struct gw *g,
    const struct pst_workload *w)
{
	if (w == g->wl)
		return 1;
	return same(w->ref.ns, c->gw_ns) && g->svc != NULL &&
	    pst_map_selects(&g->svc->selector, &w->labels);
}

/* A Service in front of the gateway: its name, or one selecting its pods. */
static int
is_gateway_service(const struct pst_cluster *c, const struct gw *g,
    const char *name, const char *ns)
{
	if (!same(ns, c->gw_ns))
		return 0;
	if (same(name, c->gw_name))
		return 1;
	for (size_t i = 0; g->wl != NULL && i < c->nsvc; i++) {
		const struct pst_service *s = &c->svc[i];

		if (same(s->ref.ns, ns) && same(s->ref.name, name) &&
		    pst_map_selects(&s->selector, &g->wl->labels))
			return 1;
	}
	return 0;
}

/*
 * A destination host naming the gateway's Service: "name" (in from_ns, as
 * Istio reads short names), "name.ns", "name.ns.svc[.cluster domain]".
 */
static int
is_gateway_host(const struct pst_cluster *c, const struct gw *g,
    const char *host, const char *from_ns)
{
	char name[254], ns[64];
	const char *dot = strchr(host, '.'), *rest;
	size_t nlen;

	if (dot == NULL)
		return strlen(host) < sizeof(name) &&
		    is_gateway_service(c, g, host, from_ns);
	nlen = (size_t)(dot - host);
	rest = strchr(dot + 1, '.');
	if (nlen >= sizeof(name) || (rest != NULL ? (size_t)(rest - dot - 1) :
	    strlen(dot + 1)) >= sizeof(ns))
		return 0;
	memcpy(name, host, nlen);
	name[nlen] = '\0';
	if (rest == NULL) {
		snprintf(ns, sizeof(ns), "%s", dot + 1);
	} else {
		memcpy(ns, dot + 1, (size_t)(rest - dot - 1));
		ns[rest - dot - 1] = '\0';
		if (!same(rest, ".svc") && !same(rest, ".svc.") &&
		    strncmp(rest, ".svc.", 5) != 0)
			return 0;
	}
	return is_gateway_service(c, g, name, ns);
}

/* ---- workloads -------------------------------------------------------------------- */

static int
system_namespace(const char *ns)
{
	static const char *const sys[] = {
		"kube-system", "kube-public", "kube-node-lease", "istio-system",
	};

	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
		if (same(ns, sys[i]))
			return 1;
	return 0;
}

/* A Pod or ReplicaSet whose controller is in the input is judged there. */
static void
mark_owned(struct pst_cluster *c)
{
	for (size_t i = 0; i < c->nwl; i++) {
		struct pst_workload *w = &c->wl[i];

		if (w->owner_kind == NULL || w->owner_name == NULL)
			continue;
		for (size_t j = 0; j < c->nwl; j++) {
			const struct pst_workload *o = &c->wl[j];

			if (j != i && same(o->ref.kind, w->owner_kind) &&
			    same(o->ref.name, w->owner_name) && same(o->ref.ns, w->ref.ns))
				w->skip = 1;
		}
	}
}

/* Workloads the checks judge: not owned, not the gateway, not the platform's. */
static int
judged(const struct pst_cluster *c, const struct gw *g, const struct pst_workload *w)
{
	return !w->skip && !system_namespace(w->ref.ns) &&
	    !is_gateway_workload(c, g, w);
}

static void
check_uid(struct pst_cluster *c, const struct pst_workload *w)
{
	for (size_t i = 0; i < w->nctr; i++) {
		const struct pst_container *ct = &w->ctr[i];
		long uid = ct->uid != PST_NO_UID ? ct->uid : w->pod_uid;

		/* istio-validation: the CNI plugin's check, which exits. */
		if (same(ct->name, "istio-proxy") ||
		    (ct->init && same(ct->name, "istio-validation")) || uid != PROXY_UID)
			continue;
		add(c, PST_UID_1337, &w->ref, ct->uid != PST_NO_UID ? ct->uid_line :
		    w->pod_uid_line, "container %s runs as UID 1337, Istio's proxy "
		    "UID: the sidecar's iptables rules let that UID's connections "
		    "out without redirecting them", ct->name);
	}
}

/* "0.0.0.0/0" (or "*") among a comma-separated list of ranges? */
static int
captures_all(const char *v)
{
	char buf[512];
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", v);
	for (char *t = strtok_r(buf, ", ", &save); t != NULL;
	    t = strtok_r(NULL, ", ", &save))
		if (same(t, "*") || same(t, "0.0.0.0/0"))
			return 1;
	return 0;
}

static void
check_annotations(struct pst_cluster *c, const struct pst_workload *w)
{
	static const char *const excl[] = {
		ANNO "excludeOutboundIPRanges", ANNO "excludeOutboundPorts",
	};
	const struct pst_kv *kv;

	for (size_t i = 0; i < 2; i++) {
		kv = pst_label_kv(&w->annotations, excl[i]);
		if (kv != NULL && kv->val[strspn(kv->val, " ")] != '\0')
			add(c, PST_EXCLUDE_ANNOTATION, &w->ref, kv->line, "annotation "
			    "%s: \"%s\" sends that traffic around the sidecar, so the "
			    "mesh never routes it to the gateway", kv->key, kv->val);
	}
	kv = pst_label_kv(&w->annotations, ANNO "includeOutboundIPRanges");
	if (kv != NULL && !captures_all(kv->val))
		add(c, PST_EXCLUDE_ANNOTATION, &w->ref, kv->line, "annotation %s: "
		    "\"%s\" leaves every other range out of the sidecar's "
		    "redirection", kv->key, kv->val);
}

static const struct pst_namespace *
find_namespace(const struct pst_cluster *c, const char *name)
{
	for (size_t i = 0; i < c->nns; i++)
		if (same(c->ns[i].ref.name, name))
			return &c->ns[i];
	return NULL;
}

static int
pod_says(const struct pst_workload *w, const char *key, const char *val,
    unsigned *line)
{
	const struct pst_kv *kv = pst_label_kv(&w->labels, key);

	if (kv == NULL)
		kv = pst_label_kv(&w->annotations, key);
	if (kv == NULL || (val != NULL && !same(kv->val, val)))
		return 0;
	if (line != NULL)
		*line = kv->line;
	return 1;
}

/*
 * Does w get a sidecar? As Istio's injection webhooks decide: a pod's
 * sidecar.istio.io/inject "false" wins; then the namespace's
 * istio-injection (disabled / enabled) or istio.io/rev; then the pod's own
 * "true" or istio.io/rev. An injected Pod shows its istio-proxy container;
 * an ambient namespace needs no sidecar. Returns 1 with a reason when it
 * gets none, 0 when it does, -1 when its namespace is not in the input.
 */
static int
no_sidecar(const struct pst_cluster *c, const struct pst_workload *w,
    char *why, size_t len, unsigned *line)
{
	const struct pst_namespace *ns;
	const char *inj;

	*line = 0;
	for (size_t i = 0; i < w->nctr; i++)
		if (same(w->ctr[i].name, "istio-proxy"))
			return 0;
	if (pod_says(w, "sidecar.istio.io/inject", "false", line)) {
		snprintf(why, len, "the pod template says sidecar.istio.io/inject: "
		    "\"false\"");
		return 1;
	}
	ns = find_namespace(c, w->ref.ns);
	if (ns == NULL)
		return pod_says(w, "sidecar.istio.io/inject", "true", NULL) ||
		    pod_says(w, "istio.io/rev", NULL, NULL) ? 0 : -1;
	inj = pst_label(&ns->labels, "istio-injection");
	if (inj != NULL && same(inj, "disabled")) {
		snprintf(why, len, "namespace %s is labelled istio-injection=disabled",
		    w->ref.ns);
		return 1;
	}
	if ((inj != NULL && same(inj, "enabled")) ||
	    pst_label(&ns->labels, "istio.io/rev") != NULL ||
	    (pst_label(&ns->labels, "istio.io/dataplane-mode") != NULL &&
	    same(pst_label(&ns->labels, "istio.io/dataplane-mode"), "ambient")) ||
	    pod_says(w, "sidecar.istio.io/inject", "true", NULL) ||
	    pod_says(w, "istio.io/rev", NULL, NULL))
		return 0;
	snprintf(why, len, "namespace %s is not labelled for injection "
	    "(istio-injection=enabled or istio.io/rev)", w->ref.ns);
	return 1;
}

/* The first judged workload of its namespace stands for the namespace. */
static int
first_in_namespace(const struct pst_cluster *c, const struct gw *g, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (judged(c, g, &c->wl[j]) && same(c->wl[j].ref.ns, c->wl[i].ref.ns))
			return 0;
	return 1;
}

static void
check_injection(struct pst_cluster *c, const struct gw *g, size_t i,
    pol_report_fn report, void *arg)
{
	const struct pst_workload *w = &c->wl[i];
	char why[256], msg[512];
	unsigned line;
	int r = no_sidecar(c, w, why, sizeof(why), &line);

	if (r > 0) {
		add(c, PST_INJECTION_DISABLED, &w->ref, line, "no sidecar: %s, so "
		    "its connections leave without the mesh routing them to the "
		    "gateway", why);
	} else if (r < 0 && report != NULL && first_in_namespace(c, g, i)) {
		snprintf(msg, sizeof(msg), "namespace %s is not in the input: "
		    "whether its workloads get a sidecar is not checked", w->ref.ns);
		report(arg, POL_NOTICE, w->ref.file, w->ref.line, w->ref.col, msg);
	}
}

static void
check_workloads(struct pst_cluster *c, const struct gw *g, pol_report_fn report,
    void *arg)
{
	for (size_t i = 0; i < c->nwl; i++) {
		const struct pst_workload *w = &c->wl[i];

		if (!judged(c, g, w))
			continue;
		if (w->host_network)
			add(c, PST_HOST_NETWORK, &w->ref, w->host_network_line,
			    "hostNetwork: true: the pod uses the node's network, where "
			    "neither a sidecar nor a NetworkPolicy applies");
		check_uid(c, w);
		check_annotations(c, w);
		check_injection(c, g, i, report, arg);
	}
}

/* ---- NetworkPolicies ---------------------------------------------------------------- */

static int
egress_selects(const struct pst_cluster *c, const struct pst_workload *w)
{
	for (size_t i = 0; i < c->nnp; i++) {
		const struct pst_netpol *np = &c->np[i];

		if (np->egress && same(np->ref.ns, w->ref.ns) &&
		    pst_selector_matches(&np->pods, &w->labels))
			return 1;
	}
	return 0;
}

static void
check_no_egress_policy(struct pst_cluster *c, const struct gw *g)
{
	for (size_t i = 0; i < c->nwl; i++) {
		const struct pst_workload *w = &c->wl[i], *first = NULL;
		const struct pst_namespace *ns;
		struct pst_ref ref;
		size_t more = 0;

		if (!judged(c, g, w) || !first_in_namespace(c, g, i))
			continue;
		for (size_t j = i; j < c->nwl; j++) {
			const struct pst_workload *o = &c->wl[j];

			if (!judged(c, g, o) || !same(o->ref.ns, w->ref.ns) ||
			    egress_selects(c, o))
				continue;
			if (first == NULL)
				first = o;
			else
				more++;
		}
		if (first == NULL)
			continue;
		ns = find_namespace(c, w->ref.ns);
		ref = ns != NULL ? ns->ref : (struct pst_ref){ "Namespace",
		    first->ref.ns, first->ref.ns, first->ref.file, first->ref.line,
		    first->ref.col };
		add(c, PST_NO_EGRESS_NETWORKPOLICY, &ref, 0, "no Egress "
		    "NetworkPolicy selects %s %s%s: its pods may connect anywhere "
		    "the network lets them", first->ref.kind, first->ref.name,
		    more > 0 ? " or other workloads of the namespace" : "");
	}
}

/* What an open NetworkPolicy selects, in words; 0 when only the gateway. */
static int
np_selection(const struct pst_cluster *c, const struct gw *g,
    const struct pst_netpol *np, char *buf, size_t len)
{
	const struct pst_workload *first = NULL;
	size_t n = 0, gateway = 0;

	for (size_t i = 0; i < c->nwl; i++) {
		const struct pst_workload *w = &c->wl[i];

		if (w->skip || !same(w->ref.ns, np->ref.ns) ||
		    !pst_selector_matches(&np->pods, &w->labels))
			continue;
		if (is_gateway_workload(c, g, w)) {
			gateway++;
			continue;
		}
		if (first == NULL)
			first = w;
		n++;
	}
	if (n == 0 && gateway > 0)
		return 0;
	/* Only the gateway's Service's pods, though none is in the input. */
	if (n == 0 && same(np->ref.ns, c->gw_ns) && g->svc != NULL &&
	    np->pods.match.n + np->pods.nexpr > 0 &&
	    pst_selector_matches(&np->pods, &g->svc->selector))
		return 0;
	if (n == 0)
		snprintf(buf, len, "the pods it selects");
	else
		snprintf(buf, len, "the pods of %s %s%s", first->ref.kind,
		    first->ref.name, n > 1 ? " and other workloads" : "");
	return 1;
}

static void
check_open_egress(struct pst_cluster *c, const struct gw *g)
{
	char sel[320];

	for (size_t i = 0; i < c->nnp; i++) {
		const struct pst_netpol *np = &c->np[i];

		if (!np->egress || np->open_why == NULL ||
		    system_namespace(np->ref.ns) ||
		    !np_selection(c, g, np, sel, sizeof(sel)))
			continue;
		add(c, PST_NETWORKPOLICY_OPEN_EGRESS, &np->ref, np->open_line,
		    "%s, for %s: they may connect to the internet without the "
		    "gateway", np->open_why, sel);
	}
}

/* ---- Istio -------------------------------------------------------------------------- */

/* Exported only to the gateway's namespace (or to nobody): no sidecar sees it. */
static int
se_hidden(const struct pst_cluster *c, const struct pst_serviceentry *se)
{
	if (se->nexport == 0)
		return 0;
	for (size_t i = 0; i < se->nexport; i++) {
		const char *e = se->export_to[i];

		if (same(e, "~") || same(e, c->gw_ns) ||
		    (same(e, ".") && same(se->ref.ns, c->gw_ns)))
			continue;
		return 0;
	}
	return 1;
}

/* How closely a VirtualService host names host: exact beats the longest
 * wildcard, which beats "*"; -1 when it does not cover it. */
static long
specificity(const char *pattern, const char *host)
{
	if (!pst_host_covers(pattern, host))
		return -1;
	if (strncmp(pattern, "*", 1) != 0)
		return 1000;
	return (long)strlen(pattern);
}

/*
 * Routed through the gateway: the VirtualServices that name the host most
 * closely (the ones a sidecar applies) send every mesh-bound route to the
 * gateway's Service. One mesh route elsewhere (a weight, a port) is a way
 * out, and so is a VirtualService with no mesh route at all.
 */
static int
routed(const struct pst_cluster *c, const struct gw *g, const char *host)
{
	long best = -1;
	int all = 0;

	for (size_t i = 0; i < c->nvs; i++) {
		const struct pst_virtualservice *vs = &c->vs[i];
		long sp = -1;
		int to_gw = vs->nmesh_dest > 0;

		for (size_t h = 0; h < vs->nhosts; h++) {
			long x = specificity(vs->hosts[h], host);

			if (x > sp)
				sp = x;
		}
		if (sp < 0 || sp < best)
			continue;
		for (size_t d = 0; to_gw && d < vs->nmesh_dest; d++)
			to_gw = is_gateway_host(c, g, vs->mesh_dest[d], vs->ref.ns);
		all = sp > best ? to_gw : all && to_gw;
		best = sp;
	}
	return best >= 0 && all;
}

static void
check_service_entries(struct pst_cluster *c, const struct gw *g)
{
	char hosts[MSG_MAX / 2];

	for (size_t i = 0; i < c->nse; i++) {
		const struct pst_serviceentry *se = &c->se[i];
		unsigned line = 0;
		size_t o = 0, n = 0;

		if (!se->external || se_hidden(c, se))
			continue;
		hosts[0] = '\0';
		for (size_t h = 0; h < se->nhosts; h++) {
			if (routed(c, g, se->hosts[h].name))
				continue;
			if (line == 0)
				line = se->hosts[h].line;
			if (o < sizeof(hosts))
				o += (size_t)snprintf(hosts + o, sizeof(hosts) - o, "%s%s",
				    n++ > 0 ? ", " : "", se->hosts[h].name);
		}
		if (line == 0)
			continue;
		add(c, PST_SERVICE_ENTRY_BYPASS, &se->ref, line, "no VirtualService "
		    "routes %s from mesh to the gateway's Service (%s.%s.svc): "
		    "sidecars connect there directly", hosts, c->gw_name, c->gw_ns);
	}
}

static void
check_external_names(struct pst_cluster *c)
{
	for (size_t i = 0; i < c->nsvc; i++) {
		const struct pst_service *s = &c->svc[i];

		if (s->external_name == NULL || pst_host_in_cluster(s->external_name))
			continue;
		add(c, PST_EXTERNAL_NAME_SERVICE, &s->ref, s->external_line,
		    "type ExternalName points at %s, outside the cluster: clients "
		    "resolve it and connect there directly", s->external_name);
	}
}

static void
check_outbound(struct pst_cluster *c, const struct gw *g)
{
	for (size_t i = 0; i < c->nob; i++) {
		const struct pst_outbound *ob = &c->ob[i];
		int any = ob->mode != NULL ? same(ob->mode, "ALLOW_ANY") : ob->mesh;

		if (!any || (ob->egress_proxy != NULL &&
		    is_gateway_host(c, g, ob->egress_proxy, ob->ref.ns)))
			continue;
		add(c, PST_ALLOW_ANY, &ob->ref, ob->mode_line, "%s: sidecars send "
		    "destinations the registry does not know straight out "
		    "(PassthroughCluster)%s%s%s", ob->mode != NULL ?
		    "outboundTrafficPolicy.mode ALLOW_ANY" : "the mesh config sets "
		    "no outboundTrafficPolicy.mode, and Istio's default is ALLOW_ANY",
		    ob->egress_proxy != NULL ? "; egressProxy " : "",
		    ob->egress_proxy != NULL ? ob->egress_proxy : "",
		    ob->egress_proxy != NULL ? " is not the gateway's Service" : "");
	}
}

static void
check_peer_auth(struct pst_cluster *c)
{
	for (size_t i = 0; i < c->npa; i++) {
		const struct pst_peerauth *pa = &c->pa[i];

		if (pa->mode == NULL)
			continue;
		add(c, PST_PEER_AUTHENTICATION_PERMISSIVE, &pa->ref, pa->mode_line,
		    "%s %s: sidecars accept plaintext from pods without one, so "
		    "workloads outside the mesh, which never pass the gateway, "
		    "keep working unnoticed", pa->port_level ? "portLevelMtls mode" :
		    "mtls.mode", pa->mode);
	}
}

long
pst_check(struct pst_cluster *c, pol_report_fn report, void *arg)
{
	struct gw g;

	c->nfd = 0;
	mark_owned(c);
	g = find_gateway(c);
	check_service_entries(c, &g);
	check_external_names(c);
	check_outbound(c, &g);
	check_workloads(c, &g, report, arg);
	check_open_egress(c, &g);
	check_no_egress_policy(c, &g);
	check_peer_auth(c);
	if (c->oom)
		return -1;
	if (c->nfd > 1)
		qsort(c->fd, c->nfd, sizeof(*c->fd), finding_cmp);
	return (long)c->nfd;
}

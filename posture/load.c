/*
 * Manifests in: the kinds posture reads, copied out of libyaml's document
 * (policy/yamldoc.c parses, reports file:line:column and refuses aliases)
 * into the cluster's lists.
 *
 * Read: Namespace, Pod and the controllers with a pod template
 * (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob), Service,
 * NetworkPolicy; Istio's ServiceEntry, VirtualService, Gateway, Sidecar,
 * DestinationRule, PeerAuthentication; the mesh config (the "istio"
 * ConfigMap's "mesh" key, an IstioOperator's meshConfig). "kind: List"
 * (kubectl get -o yaml) is read item by item. Anything else, including
 * documents without a kind, is skipped silently: a cluster dump holds many
 * kinds, and a directory of manifests holds kustomize patches and
 * configuration files. A field posture reads must have the right type;
 * when it has not, the input is unusable (an error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/yamldoc.h"
#include "posture/posture-int.h"

#define DEFAULT_NS "default"
#define CHUNK (64u * 1024)

struct pst_arena {
	struct pst_arena *next;
	size_t used, size;
	max_align_t data[];
};

void *
pst_alloc(struct pst_cluster *c, size_t size)
{
	struct pst_arena *a = c->arena;
	size_t need = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t);
	void *p;

	if (a == NULL || a->size - a->used < need) {
		size_t units = need > CHUNK / sizeof(max_align_t) ? need :
		    CHUNK / sizeof(max_align_t);

		a = malloc(sizeof(*a) + units * sizeof(max_align_t));
		if (a == NULL) {
			c->oom = 1;
			return NULL;
		}
		a->size = units;
		a->used = 0;
		a->next = c->arena;
		c->arena = a;
	}
	p = a->data + a->used;
	a->used += need;
	memset(p, 0, size);
	return p;
}

/*
 * A copy with control bytes written as \xNN: what a finding quotes from
 * the input stays on its one line in the text output.
 */
const char *
pst_strdup_line(struct pst_cluster *c, const char *s)
{
	size_t n = 1;
	char *p, *o;

	for (const char *q = s; *q != '\0'; q++)
		n += (unsigned char)*q < 0x20 || *q == 0x7f ? 4 : 1;
	p = pst_alloc(c, n);
	if (p == NULL)
		return NULL;
	for (o = p; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f) {
			snprintf(o, 5, "\\x%02x", ch);
			o += 4;
		} else {
			*o++ = (char)ch;
		}
	}
	*o = '\0';
	return p;
}

void
pst_arena_free(struct pst_cluster *c)
{
	struct pst_arena *a, *next;

	for (a = c->arena; a != NULL; a = next) {
		next = a->next;
		free(a);
	}
	c->arena = NULL;
}

const char *
pst_strdup(struct pst_cluster *c, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = pst_alloc(c, n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

void *
pst_grow(struct pst_cluster *c, void **arr, size_t n, size_t *cap, size_t size)
{
	char *p;

	if (n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;

		p = realloc(*arr, ncap * size);
		if (p == NULL) {
			c->oom = 1;
			return NULL;
		}
		*arr = p;
		*cap = ncap;
	}
	p = (char *)*arr + n * size;
	memset(p, 0, size);
	return p;
}

/* ---- reading helpers ---------------------------------------------------- */

struct rd {
	struct pst_cluster *c;
	struct ydoc_ctx *cx;
	yaml_document_t *doc;
};

static unsigned
line_of(const yaml_node_t *n)
{
	return (unsigned)n->start_mark.line + 1;
}

/* The value under key, or NULL; "key:" with nothing after it is absent. */
static yaml_node_t *
get(struct rd *r, yaml_node_t *map, const char *key)
{
	yaml_node_t *val = NULL;

	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	YDOC_FOREACH_PAIR(r->doc, map, p) {
		const char *k = ydoc_text(YDOC_NODE(r->doc, p->key));

		if (k != NULL && strcmp(k, key) == 0)
			val = YDOC_NODE(r->doc, p->value);
	}
	if (val != NULL && val->type == YAML_SCALAR_NODE &&
	    val->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (val->data.scalar.length == 0 || strcmp(ydoc_text(val), "null") == 0 ||
	    strcmp(ydoc_text(val), "~") == 0))
		return NULL;
	return val;
}

/* get() that must be a mapping when present: -1 after an error. */
static int
get_map(struct rd *r, yaml_node_t *map, const char *key, const char *what,
    yaml_node_t **out)
{
	*out = get(r, map, key);
	if (*out != NULL && ydoc_is_mapping(r->cx, *out, what) < 0)
		return -1;
	return 0;
}

static int
get_list(struct rd *r, yaml_node_t *map, const char *key, const char *what,
    yaml_node_t **out)
{
	*out = get(r, map, key);
	if (*out != NULL && ydoc_is_sequence(r->cx, *out, what) < 0)
		return -1;
	return 0;
}

/* A scalar's text, copied; NULL when absent. -1 after an error. */
static int
get_str(struct rd *r, yaml_node_t *map, const char *key, const char *what,
    const char **out, unsigned *line)
{
	yaml_node_t *n = get(r, map, key);
	const char *s;

	*out = NULL;
	if (n == NULL)
		return 0;
	if (ydoc_scalar(r->cx, n, what, &s) < 0)
		return -1;
	*out = pst_strdup(r->c, s);
	if (line != NULL)
		*line = line_of(n);
	return *out != NULL ? 0 : -1;
}

static size_t
nitems(const yaml_node_t *seq)
{
	return seq == NULL ? 0 : (size_t)(seq->data.sequence.items.top -
	    seq->data.sequence.items.start);
}

/* A list of strings (hosts, exportTo). */
static int
read_strings(struct rd *r, yaml_node_t *map, const char *key, const char *what,
    const char ***out, size_t *n, unsigned **lines)
{
	yaml_node_t *seq;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if (get_list(r, map, key, what, &seq) < 0)
		return -1;
	if (seq == NULL || nitems(seq) == 0)
		return 0;
	*out = pst_alloc(r->c, nitems(seq) * sizeof(**out));
	if (lines != NULL)
		*lines = pst_alloc(r->c, nitems(seq) * sizeof(**lines));
	if (*out == NULL || (lines != NULL && *lines == NULL))
		return -1;
	YDOC_FOREACH_ITEM(r->doc, seq, it) {
		yaml_node_t *e = YDOC_NODE(r->doc, *it);
		const char *s;

		if (ydoc_scalar(r->cx, e, what, &s) < 0)
			return -1;
		if (((*out)[k] = pst_strdup(r->c, s)) == NULL)
			return -1;
		if (lines != NULL)
			(*lines)[k] = line_of(e);
		k++;
	}
	*n = k;
	return 0;
}

/* A string map (labels, annotations, a Service selector). */
static int
read_labels(struct rd *r, yaml_node_t *map, const char *key, const char *what,
    struct pst_labels *out)
{
	yaml_node_t *m;
	size_t n;

	out->kv = NULL;
	out->n = 0;
	if (get_map(r, map, key, what, &m) < 0)
		return -1;
	if (m == NULL)
		return 0;
	n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
	if (n == 0)
		return 0;
	out->kv = pst_alloc(r->c, n * sizeof(*out->kv));
	if (out->kv == NULL)
		return -1;
	YDOC_FOREACH_PAIR(r->doc, m, p) {
		yaml_node_t *k = YDOC_NODE(r->doc, p->key), *v = YDOC_NODE(r->doc, p->value);
		struct pst_kv *kv = &out->kv[out->n];
		const char *ks, *vs;

		if (ydoc_scalar(r->cx, k, what, &ks) < 0 ||
		    ydoc_scalar(r->cx, v, what, &vs) < 0)
			return -1;
		kv->key = pst_strdup(r->c, ks);
		kv->val = pst_strdup(r->c, vs);
		kv->line = line_of(k);
		if (kv->key == NULL || kv->val == NULL)
			return -1;
		out->n++;
	}
	return 0;
}

static int
read_selector(struct rd *r, yaml_node_t *sel, struct pst_selector *out)
{
	static const char *const ops[] = { "In", "NotIn", "Exists", "DoesNotExist" };
	yaml_node_t *exprs;
	size_t k = 0;

	memset(out, 0, sizeof(*out));
	if (sel == NULL)
		return 0;
	if (ydoc_is_mapping(r->cx, sel, "a label selector") < 0 ||
	    read_labels(r, sel, "matchLabels", "matchLabels", &out->match) < 0 ||
	    get_list(r, sel, "matchExpressions", "matchExpressions", &exprs) < 0)
		return -1;
	if (nitems(exprs) == 0)
		return 0;
	out->expr = pst_alloc(r->c, nitems(exprs) * sizeof(*out->expr));
	if (out->expr == NULL)
		return -1;
	YDOC_FOREACH_ITEM(r->doc, exprs, it) {
		yaml_node_t *e = YDOC_NODE(r->doc, *it);
		struct pst_expr *x = &out->expr[k];
		const char *op;
		size_t i;

		if (ydoc_is_mapping(r->cx, e, "a match expression") < 0 ||
		    get_str(r, e, "key", "key", &x->key, NULL) < 0 ||
		    get_str(r, e, "operator", "operator", &op, NULL) < 0 ||
		    read_strings(r, e, "values", "values", &x->vals, &x->nvals,
		    NULL) < 0)
			return -1;
		for (i = 0; op != NULL && i < sizeof(ops) / sizeof(ops[0]); i++)
			if (strcmp(op, ops[i]) == 0)
				break;
		if (x->key == NULL || op == NULL || i == sizeof(ops) / sizeof(ops[0])) {
			ydoc_error(r->cx, e, "a match expression needs a key and an "
			    "operator In, NotIn, Exists or DoesNotExist");
			return -1;
		}
		x->op = (enum pst_op)i;
		k++;
	}
	out->nexpr = k;
	return 0;
}

/* runAsUser of a securityContext: PST_NO_UID when not set. */
static int
read_uid(struct rd *r, yaml_node_t *holder, long *uid, unsigned *line)
{
	yaml_node_t *sc, *u;
	unsigned long v;

	*uid = PST_NO_UID;
	if (get_map(r, holder, "securityContext", "securityContext", &sc) < 0)
		return -1;
	u = get(r, sc, "runAsUser");
	if (u == NULL)
		return 0;
	if (ydoc_uint(r->cx, u, "runAsUser", 2147483647ul, &v) < 0)
		return -1;
	*uid = (long)v;
	*line = line_of(u);
	return 0;
}

/* ---- workloads ------------------------------------------------------------ */

static int
read_containers(struct rd *r, struct pst_workload *w, yaml_node_t *spec)
{
	static const char *const keys[] = { "containers", "initContainers" };
	yaml_node_t *lists[2];
	size_t n = 0;

	for (int i = 0; i < 2; i++) {
		if (get_list(r, spec, keys[i], keys[i], &lists[i]) < 0)
			return -1;
		n += nitems(lists[i]);
	}
	if (n == 0)
		return 0;
	w->ctr = pst_alloc(r->c, n * sizeof(*w->ctr));
	if (w->ctr == NULL)
		return -1;
	for (int i = 0; i < 2; i++) {
		if (lists[i] == NULL)
			continue;
		YDOC_FOREACH_ITEM(r->doc, lists[i], it) {
			yaml_node_t *cn = YDOC_NODE(r->doc, *it);
			struct pst_container *ct = &w->ctr[w->nctr];

			if (ydoc_is_mapping(r->cx, cn, "a container") < 0 ||
			    get_str(r, cn, "name", "a container name", &ct->name,
			    NULL) < 0 ||
			    read_uid(r, cn, &ct->uid, &ct->uid_line) < 0)
				return -1;
			if (ct->name == NULL)
				ct->name = "";
			ct->init = i == 1;
			w->nctr++;
		}
	}
	return 0;
}

/* A pod's metadata and spec (a Pod's own, or a template's). */
static int
read_pod(struct rd *r, struct pst_workload *w, yaml_node_t *md, yaml_node_t *spec)
{
	yaml_node_t *hn;

	if (read_labels(r, md, "labels", "labels", &w->labels) < 0 ||
	    read_labels(r, md, "annotations", "annotations", &w->annotations) < 0)
		return -1;
	if (spec == NULL)
		return 0;
	if (ydoc_is_mapping(r->cx, spec, "a pod spec") < 0)
		return -1;
	hn = get(r, spec, "hostNetwork");
	if (hn != NULL) {
		if (ydoc_bool(r->cx, hn, "hostNetwork", &w->host_network) < 0)
			return -1;
		w->host_network_line = line_of(hn);
	}
	if (read_uid(r, spec, &w->pod_uid, &w->pod_uid_line) < 0)
		return -1;
	return read_containers(r, w, spec);
}

/* The controller that owns an object (ownerReferences with controller). */
static int
read_owner(struct rd *r, struct pst_workload *w, yaml_node_t *md)
{
	yaml_node_t *refs, *ctl;
	int is;

	if (get_list(r, md, "ownerReferences", "ownerReferences", &refs) < 0)
		return -1;
	if (refs == NULL)
		return 0;
	YDOC_FOREACH_ITEM(r->doc, refs, it) {
		yaml_node_t *o = YDOC_NODE(r->doc, *it);

		if (ydoc_is_mapping(r->cx, o, "an owner reference") < 0)
			return -1;
		ctl = get(r, o, "controller");
		if (ctl == NULL || ydoc_bool(r->cx, ctl, "controller", &is) < 0 || !is)
			continue;
		return get_str(r, o, "kind", "kind", &w->owner_kind, NULL) < 0 ||
		    get_str(r, o, "name", "name", &w->owner_name, NULL) < 0 ? -1 : 0;
	}
	return 0;
}

/*
 * Where the pod is: the object itself (Pod), spec.template (controllers),
 * spec.jobTemplate.spec.template (CronJob).
 */
static int
read_workload(struct rd *r, const struct pst_ref *ref, yaml_node_t *root,
    yaml_node_t *md)
{
	struct pst_workload *w = PST_PUSH(r->c, wl);
	yaml_node_t *spec, *tpl = root, *tmd;

	if (w == NULL)
		return -1;
	w->ref = *ref;
	w->pod_uid = PST_NO_UID;
	if (read_owner(r, w, md) < 0 || get_map(r, root, "spec", "spec", &spec) < 0)
		return -1;
	if (strcmp(ref->kind, "CronJob") == 0) {
		if (get_map(r, spec, "jobTemplate", "spec.jobTemplate", &tpl) < 0 ||
		    get_map(r, tpl, "spec", "spec.jobTemplate.spec", &spec) < 0)
			return -1;
	}
	if (strcmp(ref->kind, "Pod") != 0 &&
	    get_map(r, spec, "template", "spec.template", &tpl) < 0)
		return -1;
	if (tpl == NULL) {
		r->c->nwl++;
		return 0;
	}
	if (get_map(r, tpl, "metadata", "metadata", &tmd) < 0 ||
	    get_map(r, tpl, "spec", "spec", &spec) < 0 || read_pod(r, w, tmd, spec) < 0)
		return -1;
	r->c->nwl++;
	return 0;
}

/* ---- core kinds ------------------------------------------------------------ */

static int
read_namespace(struct rd *r, const struct pst_ref *ref, yaml_node_t *md)
{
	struct pst_namespace *n = PST_PUSH(r->c, ns);

	if (n == NULL)
		return -1;
	n->ref = *ref;
	if (read_labels(r, md, "labels", "labels", &n->labels) < 0)
		return -1;
	r->c->nns++;
	return 0;
}

static int
read_service(struct rd *r, const struct pst_ref *ref, yaml_node_t *root)
{
	struct pst_service *s = PST_PUSH(r->c, svc);
	yaml_node_t *spec;
	const char *type;
	unsigned line = 0;

	if (s == NULL || get_map(r, root, "spec", "spec", &spec) < 0)
		return -1;
	s->ref = *ref;
	if (get_str(r, spec, "type", "spec.type", &type, &line) < 0 ||
	    read_labels(r, spec, "selector", "spec.selector", &s->selector) < 0)
		return -1;
	if (type != NULL && strcmp(type, "ExternalName") == 0) {
		if (get_str(r, spec, "externalName", "spec.externalName",
		    &s->external_name, NULL) < 0)
			return -1;
		if (s->external_name == NULL)
			s->external_name = "";
		s->external_line = line;
	}
	r->c->nsvc++;
	return 0;
}

/*
 * Does an egress rule admit any destination? No "to" at all, or an
 * ipBlock reaching public addresses; "except" is not subtracted (a
 * 0.0.0.0/0 with holes in it still reaches the internet).
 */
static int
read_egress_rule(struct rd *r, struct pst_netpol *np, yaml_node_t *rule)
{
	char why[160];
	yaml_node_t *to, *ib;
	const char *cidr;

	if (ydoc_is_mapping(r->cx, rule, "an egress rule") < 0 ||
	    get_list(r, rule, "to", "to", &to) < 0)
		return -1;
	if (nitems(to) == 0) {
		np->open_why = "an egress rule without 'to' admits every destination";
		np->open_line = line_of(rule);
		return 0;
	}
	YDOC_FOREACH_ITEM(r->doc, to, it) {
		yaml_node_t *peer = YDOC_NODE(r->doc, *it);
		unsigned line = 0;
		int pub;

		if (ydoc_is_mapping(r->cx, peer, "a 'to' peer") < 0 ||
		    get_map(r, peer, "ipBlock", "ipBlock", &ib) < 0 ||
		    get_str(r, ib, "cidr", "ipBlock.cidr", &cidr, &line) < 0)
			return -1;
		if (cidr == NULL)
			continue;
		pub = pst_cidr_public(cidr);
		if (pub < 0) {
			ydoc_error(r->cx, YDOC_NODE(r->doc, *it), "ipBlock.cidr '%s' is "
			    "not a CIDR", cidr);
			return -1;
		}
		if (pub && np->open_why == NULL) {
			snprintf(why, sizeof(why), "egress to ipBlock %s reaches "
			    "public addresses", cidr);
			np->open_why = pst_strdup(r->c, why);
			np->open_line = line;
		}
	}
	return 0;
}

static int
read_netpol(struct rd *r, const struct pst_ref *ref, yaml_node_t *root)
{
	struct pst_netpol *np = PST_PUSH(r->c, np);
	yaml_node_t *spec, *sel, *egress;
	const char **types;
	size_t ntypes;

	if (np == NULL || get_map(r, root, "spec", "spec", &spec) < 0)
		return -1;
	np->ref = *ref;
	if (get_map(r, spec, "podSelector", "spec.podSelector", &sel) < 0 ||
	    read_selector(r, sel, &np->pods) < 0 ||
	    read_strings(r, spec, "policyTypes", "spec.policyTypes", &types,
	    &ntypes, NULL) < 0 ||
	    get_list(r, spec, "egress", "spec.egress", &egress) < 0)
		return -1;
	/* Without policyTypes, egress rules make it an Egress policy. */
	np->egress = ntypes == 0 && egress != NULL;
	for (size_t i = 0; i < ntypes; i++)
		if (strcmp(types[i], "Egress") == 0)
			np->egress = 1;
	if (np->egress && egress != NULL) {
		YDOC_FOREACH_ITEM(r->doc, egress, it)
			if (read_egress_rule(r, np, YDOC_NODE(r->doc, *it)) < 0)
				return -1;
	}
	r->c->nnp++;
	return 0;
}

/* ---- Istio kinds --------------------------------------------------------------- */

static int
read_service_entry(struct rd *r, const struct pst_ref *ref, yaml_node_t *spec)
{
	struct pst_serviceentry *se = PST_PUSH(r->c, se);
	const char **hosts, *loc;
	unsigned *lines = NULL;
	size_t n;

	if (se == NULL)
		return -1;
	se->ref = *ref;
	if (read_strings(r, spec, "hosts", "a host", &hosts, &n, &lines) < 0 ||
	    read_strings(r, spec, "exportTo", "an exportTo entry", &se->export_to,
	    &se->nexport, NULL) < 0 ||
	    get_str(r, spec, "location", "spec.location", &loc, NULL) < 0)
		return -1;
	/* MESH_EXTERNAL is the default (Istio's enum value 0). */
	se->external = loc == NULL || strcmp(loc, "MESH_EXTERNAL") == 0;
	se->hosts = n > 0 ? pst_alloc(r->c, n * sizeof(*se->hosts)) : NULL;
	if (n > 0 && se->hosts == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		se->hosts[i] = (struct pst_host){ hosts[i], lines[i] };
	se->nhosts = n;
	r->c->nse++;
	return 0;
}

/* Is "mesh" among a gateways list? An absent or empty list means mesh. */
static int
has_mesh(struct rd *r, yaml_node_t *gws)
{
	if (nitems(gws) == 0)
		return 1;
	YDOC_FOREACH_ITEM(r->doc, gws, it) {
		const char *g = ydoc_text(YDOC_NODE(r->doc, *it));

		if (g != NULL && strcmp(g, "mesh") == 0)
			return 1;
	}
	return 0;
}

/*
 * A route applies to sidecars when one of its matches does; a match with
 * its own gateways replaces the VirtualService's.
 */
static int
route_is_mesh(struct rd *r, yaml_node_t *route, yaml_node_t *vgws, int *mesh)
{
	yaml_node_t *match, *gws;

	*mesh = 0;
	if (get_list(r, route, "match", "match", &match) < 0)
		return -1;
	if (nitems(match) == 0) {
		*mesh = has_mesh(r, vgws);
		return 0;
	}
	YDOC_FOREACH_ITEM(r->doc, match, it) {
		yaml_node_t *m = YDOC_NODE(r->doc, *it);

		if (ydoc_is_mapping(r->cx, m, "a match") < 0 ||
		    get_list(r, m, "gateways", "gateways", &gws) < 0)
			return -1;
		if (nitems(gws) > 0 ? has_mesh(r, gws) : has_mesh(r, vgws))
			*mesh = 1;
	}
	return 0;
}

static int
add_dest(struct rd *r, struct pst_virtualservice *vs, yaml_node_t *dests)
{
	const char **grown;

	YDOC_FOREACH_ITEM(r->doc, dests, it) {
		yaml_node_t *d = YDOC_NODE(r->doc, *it), *dst;
		const char *host;

		if (ydoc_is_mapping(r->cx, d, "a route destination") < 0 ||
		    get_map(r, d, "destination", "destination", &dst) < 0 ||
		    get_str(r, dst, "host", "destination.host", &host, NULL) < 0)
			return -1;
		if (host == NULL)
			continue;
		grown = pst_alloc(r->c, (vs->nmesh_dest + 1) * sizeof(*grown));
		if (grown == NULL)
			return -1;
		if (vs->nmesh_dest > 0)
			memcpy(grown, vs->mesh_dest, vs->nmesh_dest * sizeof(*grown));
		grown[vs->nmesh_dest++] = host;
		vs->mesh_dest = grown;
	}
	return 0;
}

static int
read_virtual_service(struct rd *r, const struct pst_ref *ref, yaml_node_t *spec)
{
	static const char *const kinds[] = { "http", "tls", "tcp" };
	struct pst_virtualservice *vs = PST_PUSH(r->c, vs);
	yaml_node_t *vgws, *routes, *dests;
	int mesh;

	if (vs == NULL)
		return -1;
	vs->ref = *ref;
	if (read_strings(r, spec, "hosts", "a host", &vs->hosts, &vs->nhosts,
	    NULL) < 0 || get_list(r, spec, "gateways", "spec.gateways", &vgws) < 0)
		return -1;
	for (size_t k = 0; k < 3; k++) {
		if (get_list(r, spec, kinds[k], kinds[k], &routes) < 0)
			return -1;
		if (routes == NULL)
			continue;
		YDOC_FOREACH_ITEM(r->doc, routes, it) {
			yaml_node_t *rt = YDOC_NODE(r->doc, *it);

			if (ydoc_is_mapping(r->cx, rt, "a route") < 0 ||
			    route_is_mesh(r, rt, vgws, &mesh) < 0 ||
			    get_list(r, rt, "route", "route", &dests) < 0)
				return -1;
			if (mesh && dests != NULL && add_dest(r, vs, dests) < 0)
				return -1;
		}
	}
	r->c->nvs++;
	return 0;
}

/* outboundTrafficPolicy of a Sidecar spec or a mesh config. */
static int
read_outbound(struct rd *r, struct pst_outbound *ob, yaml_node_t *holder)
{
	yaml_node_t *otp, *ep;

	if (get_map(r, holder, "outboundTrafficPolicy", "outboundTrafficPolicy",
	    &otp) < 0 || get_str(r, otp, "mode", "outboundTrafficPolicy.mode",
	    &ob->mode, &ob->mode_line) < 0 ||
	    get_map(r, otp, "egressProxy", "egressProxy", &ep) < 0 ||
	    get_str(r, ep, "host", "egressProxy.host", &ob->egress_proxy, NULL) < 0)
		return -1;
	if (ob->mode == NULL && otp != NULL)
		ob->mode_line = line_of(otp);
	return 0;
}

static int
read_sidecar(struct rd *r, const struct pst_ref *ref, yaml_node_t *spec)
{
	struct pst_outbound *ob = PST_PUSH(r->c, ob);

	if (ob == NULL)
		return -1;
	ob->ref = *ref;
	if (read_outbound(r, ob, spec) < 0)
		return -1;
	r->c->nob++;
	return 0;
}

static int
bad_mode(const char *m)
{
	return m != NULL && (strcmp(m, "PERMISSIVE") == 0 || strcmp(m, "DISABLE") == 0);
}

static int
read_peer_auth(struct rd *r, const struct pst_ref *ref, yaml_node_t *spec)
{
	struct pst_peerauth *pa = PST_PUSH(r->c, pa);
	yaml_node_t *mtls, *plm;
	const char *mode;
	unsigned line = 0;

	if (pa == NULL)
		return -1;
	pa->ref = *ref;
	if (get_map(r, spec, "mtls", "spec.mtls", &mtls) < 0 ||
	    get_str(r, mtls, "mode", "spec.mtls.mode", &mode, &line) < 0 ||
	    get_map(r, spec, "portLevelMtls", "spec.portLevelMtls", &plm) < 0)
		return -1;
	if (bad_mode(mode)) {
		pa->mode = mode;
		pa->mode_line = line;
	}
	if (plm != NULL) {
		YDOC_FOREACH_PAIR(r->doc, plm, p) {
			yaml_node_t *v = YDOC_NODE(r->doc, p->value);

			if (ydoc_is_mapping(r->cx, v, "a portLevelMtls entry") < 0 ||
			    get_str(r, v, "mode", "mode", &mode, &line) < 0)
				return -1;
			if (bad_mode(mode) && pa->mode == NULL) {
				pa->mode = mode;
				pa->mode_line = line;
				pa->port_level = 1;
			}
		}
	}
	r->c->npa++;
	return 0;
}

/* ---- the mesh config ---------------------------------------------------------- */

/* The "mesh" text is YAML inside YAML: its lines are shifted by base. */
struct mesh_rd {
	struct rd *outer;
	struct pst_outbound *ob;
	unsigned base;
	int rc;
};

static void
mesh_report(void *arg, enum pol_severity sev, const char *file, unsigned line,
    unsigned col, const char *msg)
{
	struct mesh_rd *m = arg;

	m->outer->cx->report(m->outer->cx->arg, sev, file,
	    line > 0 ? line + m->base : m->base, line > 0 ? col : 0, msg);
	if (sev == POL_ERROR) {
		m->outer->cx->errors++;
		m->rc = -1;
	}
}

static void
mesh_doc(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *root, void *arg)
{
	struct mesh_rd *m = arg;
	struct rd r = { m->outer->c, cx, doc };
	unsigned before = cx->errors;

	if (root == NULL)
		return;         /* an empty mesh config: every default */
	if (ydoc_is_mapping(cx, root, "the mesh config") < 0 ||
	    read_outbound(&r, m->ob, root) < 0) {
		if (cx->errors == before)
			ydoc_error(cx, root, "out of memory");
		m->rc = -1;
		return;
	}
	if (m->ob->mode_line > 0)
		m->ob->mode_line += m->base;
}

static int
read_configmap(struct rd *r, const struct pst_ref *ref, yaml_node_t *root)
{
	struct ydoc_ctx sub;
	struct mesh_rd m = { r, NULL, 0, 0 };
	yaml_node_t *data, *mesh;
	int literal;

	/* istio, or istio-<revision>: Istio's mesh config. */
	if (strcmp(ref->name, "istio") != 0 && strncmp(ref->name, "istio-", 6) != 0)
		return 0;
	if (get_map(r, root, "data", "data", &data) < 0)
		return -1;
	mesh = get(r, data, "mesh");
	if (mesh == NULL)
		return 0;
	if (ydoc_scalar(r->cx, mesh, "data.mesh", &(const char *){ NULL }) < 0 ||
	    (m.ob = PST_PUSH(r->c, ob)) == NULL)
		return -1;
	m.ob->ref = *ref;
	m.ob->ref.line = line_of(mesh);
	m.ob->mesh = 1;
	/* "mesh: |" puts the text's line 1 on the line after the key. */
	literal = mesh->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
	    mesh->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
	m.base = literal ? line_of(mesh) : 0;
	memset(&sub, 0, sizeof(sub));
	sub.file = r->cx->file;
	sub.report = mesh_report;
	sub.arg = &m;
	if (ydoc_parse_buffer(&sub, (const char *)mesh->data.scalar.value,
	    mesh->data.scalar.length, mesh_doc, &m) < 0 || m.rc < 0)
		return -1;
	if (!literal)
		m.ob->mode_line = line_of(mesh);
	r->c->nob++;
	return 0;
}

static int
read_istio_operator(struct rd *r, const struct pst_ref *ref, yaml_node_t *spec)
{
	struct pst_outbound *ob = PST_PUSH(r->c, ob);
	yaml_node_t *mc;

	if (ob == NULL || get_map(r, spec, "meshConfig", "spec.meshConfig", &mc) < 0)
		return -1;
	ob->ref = *ref;
	ob->mesh = 1;
	if (read_outbound(r, ob, mc) < 0)
		return -1;
	if (mc != NULL && ob->mode_line == 0)
		ob->mode_line = line_of(mc);
	r->c->nob++;
	return 0;
}

/* ---- dispatch ---------------------------------------------------------------- */

enum kind_class { K_WORKLOAD, K_NAMESPACE, K_SERVICE, K_NETPOL, K_CONFIGMAP,
	K_SE, K_VS, K_SIDECAR, K_PA, K_OPERATOR, K_IGNORED };

static const struct {
	const char *kind;
	const char *apis;       /* accepted apiVersions, space-separated */
	enum kind_class cls;
} kinds[] = {
#define ISTIO_NET "networking.istio.io/v1 networking.istio.io/v1beta1 networking.istio.io/v1alpha3"
	{ "Namespace", "v1", K_NAMESPACE },
	{ "Pod", "v1", K_WORKLOAD },
	{ "Deployment", "apps/v1", K_WORKLOAD },
	{ "StatefulSet", "apps/v1", K_WORKLOAD },
	{ "DaemonSet", "apps/v1", K_WORKLOAD },
	{ "ReplicaSet", "apps/v1", K_WORKLOAD },
	{ "Job", "batch/v1", K_WORKLOAD },
	{ "CronJob", "batch/v1 batch/v1beta1", K_WORKLOAD },
	{ "Service", "v1", K_SERVICE },
	{ "NetworkPolicy", "networking.k8s.io/v1", K_NETPOL },
	{ "ConfigMap", "v1", K_CONFIGMAP },
	{ "ServiceEntry", ISTIO_NET, K_SE },
	{ "VirtualService", ISTIO_NET, K_VS },
	{ "Gateway", ISTIO_NET, K_IGNORED },
	{ "DestinationRule", ISTIO_NET, K_IGNORED },
	{ "Sidecar", ISTIO_NET, K_SIDECAR },
	{ "PeerAuthentication", "security.istio.io/v1 security.istio.io/v1beta1", K_PA },
	{ "IstioOperator", "install.istio.io/v1alpha1", K_OPERATOR },
#undef ISTIO_NET
};

static int
api_ok(const char *apis, const char *api)
{
	size_t n = strlen(api);

	for (const char *p = apis; *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

		if (len == n && strncmp(p, api, n) == 0)
			return 1;
		p += len + (e != NULL);
	}
	return 0;
}

static int
read_ref(struct rd *r, yaml_node_t *root, const char *kind, struct pst_ref *ref,
    yaml_node_t **md)
{
	yaml_node_t *n;
	const char *name, *ns;

	if (get_map(r, root, "metadata", "metadata", md) < 0)
		return -1;
	n = get(r, *md, "name");
	if (n == NULL) {
		ydoc_error(r->cx, *md != NULL ? *md : root, "kind %s: missing "
		    "metadata.name", kind);
		return -1;
	}
	if (ydoc_scalar(r->cx, n, "metadata.name", &name) < 0 ||
	    get_str(r, *md, "namespace", "metadata.namespace", &ns, NULL) < 0)
		return -1;
	ref->kind = kind;
	ref->name = pst_strdup_line(r->c, name);
	/* A Namespace is its own namespace; kubectl puts others in default. */
	ref->ns = strcmp(kind, "Namespace") == 0 ? ref->name :
	    ns != NULL ? pst_strdup_line(r->c, ns) : DEFAULT_NS;
	ref->file = pst_strdup(r->c, r->cx->file != NULL ? r->cx->file : "-");
	ref->line = line_of(root);
	ref->col = (unsigned)root->start_mark.column + 1;
	return ref->name != NULL && ref->ns != NULL && ref->file != NULL ? 0 : -1;
}

static int
read_object(struct rd *r, yaml_node_t *root, size_t k)
{
	struct pst_ref ref;
	yaml_node_t *md, *spec = NULL;

	if (read_ref(r, root, kinds[k].kind, &ref, &md) < 0)
		return -1;
	if (kinds[k].cls >= K_SE && kinds[k].cls <= K_OPERATOR &&
	    get_map(r, root, "spec", "spec", &spec) < 0)
		return -1;
	switch (kinds[k].cls) {
	case K_WORKLOAD: return read_workload(r, &ref, root, md);
	case K_NAMESPACE: return read_namespace(r, &ref, md);
	case K_SERVICE: return read_service(r, &ref, root);
	case K_NETPOL: return read_netpol(r, &ref, root);
	case K_CONFIGMAP: return read_configmap(r, &ref, root);
	case K_SE: return read_service_entry(r, &ref, spec);
	case K_VS: return read_virtual_service(r, &ref, spec);
	case K_SIDECAR: return read_sidecar(r, &ref, spec);
	case K_PA: return read_peer_auth(r, &ref, spec);
	case K_OPERATOR: return read_istio_operator(r, &ref, spec);
	case K_IGNORED: return 0;
	}
	return 0;
}

static int read_document(struct rd *r, yaml_node_t *root, int depth);

static int
read_items(struct rd *r, yaml_node_t *root, int depth)
{
	yaml_node_t *items;

	if (get_list(r, root, "items", "items", &items) < 0)
		return -1;
	if (items == NULL)
		return 0;
	YDOC_FOREACH_ITEM(r->doc, items, it)
		if (read_document(r, YDOC_NODE(r->doc, *it), depth + 1) < 0)
			return -1;
	return 0;
}

static int
read_document(struct rd *r, yaml_node_t *root, int depth)
{
	const char *kind, *api;

	if (root == NULL || root->type != YAML_MAPPING_NODE)
		return 0;
	kind = ydoc_text(get(r, root, "kind"));
	api = ydoc_text(get(r, root, "apiVersion"));
	if (kind == NULL || api == NULL)
		return 0;
	/* Lists do not nest in kubectl's output; one level is enough. */
	if (strcmp(kind, "List") == 0 && depth == 0)
		return read_items(r, root, depth);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		if (strcmp(kind, kinds[k].kind) != 0)
			continue;
		if (!api_ok(kinds[k].apis, api)) {
			ydoc_notice(r->cx, root, "kind %s of apiVersion %s: not read "
			    "(expected %s)", kind, api, kinds[k].apis);
			return 0;
		}
		return read_object(r, root, k);
	}
	return 0;
}

struct load_arg {
	struct pst_cluster *c;
	int rc;
};

static void
on_document(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *root,
    void *arg)
{
	struct load_arg *la = arg;
	struct rd r = { la->c, cx, doc };
	unsigned before = cx->errors;

	if (read_document(&r, root, 0) < 0) {
		la->rc = -1;
		if (cx->errors == before)
			ydoc_error(cx, root, "out of memory reading the manifests");
	}
}

int
pst_load_buffer(struct pst_cluster *c, const char *label, const char *text,
    size_t len, pol_report_fn report, void *arg)
{
	struct ydoc_ctx cx = { label, report, arg, 0 };
	struct load_arg la = { c, 0 };

	if (ydoc_parse_buffer(&cx, text, len, on_document, &la) < 0)
		return -1;
	return la.rc < 0 || cx.errors > 0 || c->oom ? -1 : 0;
}

int
pst_load_file(struct pst_cluster *c, const char *path, pol_report_fn report,
    void *arg)
{
	struct ydoc_ctx cx = { NULL, report, arg, 0 };
	struct load_arg la = { c, 0 };

	if (ydoc_parse_file(&cx, path, on_document, &la) < 0)
		return -1;
	return la.rc < 0 || cx.errors > 0 || c->oom ? -1 : 0;
}

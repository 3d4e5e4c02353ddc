/*
 * posture internals: the cluster as load.c reads it and check.c judges it.
 * Nothing outside posture/ includes this.
 *
 * Every string and array hangs off the cluster's arena and is freed with
 * it; the object lists grow with realloc. A YAML document is gone once
 * its callback returns, so load.c copies out what the checks need, with
 * the line it stood on.
 */
#ifndef EGRESSD_POSTURE_INT_H
#define EGRESSD_POSTURE_INT_H

#include <stddef.h>

#include "posture/posture.h"

#define PST_NO_UID (-1L)

/* Where an object stands and what it is called. */
struct pst_ref {
	const char *kind, *ns, *name;   /* ns: "default" when the file has none */
	const char *file;
	unsigned line, col;
};

struct pst_kv {
	const char *key, *val;
	unsigned line;
};

struct pst_labels {
	struct pst_kv *kv;
	size_t n;
};

enum pst_op { PST_OP_IN, PST_OP_NOTIN, PST_OP_EXISTS, PST_OP_DOESNOTEXIST };

struct pst_expr {
	const char *key;
	enum pst_op op;
	const char **vals;
	size_t nvals;
};

/* A Kubernetes label selector; empty (n == 0, nexpr == 0) selects all. */
struct pst_selector {
	struct pst_labels match;
	struct pst_expr *expr;
	size_t nexpr;
};

struct pst_container {
	const char *name;
	long uid;                       /* runAsUser, or PST_NO_UID */
	unsigned uid_line;
	int init;
};

/* A Pod, or a controller with a pod template. */
struct pst_workload {
	struct pst_ref ref;
	const char *owner_kind, *owner_name;    /* controller ownerReference */
	struct pst_labels labels, annotations;  /* of the pod (template) */
	int host_network;
	unsigned host_network_line;
	long pod_uid;
	unsigned pod_uid_line;
	struct pst_container *ctr;
	size_t nctr;
	int skip;                       /* its controller is in the input */
};

struct pst_namespace {
	struct pst_ref ref;
	struct pst_labels labels;
};

struct pst_service {
	struct pst_ref ref;
	const char *external_name;      /* type ExternalName, else NULL */
	unsigned external_line;
	struct pst_labels selector;
};

struct pst_host {
	const char *name;
	unsigned line;
};

struct pst_serviceentry {
	struct pst_ref ref;
	int external;                   /* location MESH_EXTERNAL (the default) */
	const char **export_to;
	size_t nexport;
	struct pst_host *hosts;
	size_t nhosts;
};

/* A VirtualService: its hosts, and where its mesh-bound routes go. */
struct pst_virtualservice {
	struct pst_ref ref;
	const char **hosts;
	size_t nhosts;
	const char **mesh_dest;         /* destination hosts, as written */
	size_t nmesh_dest;
};

/* A Sidecar or the mesh config: outboundTrafficPolicy. */
struct pst_outbound {
	struct pst_ref ref;
	const char *mode;               /* NULL: not set */
	unsigned mode_line;
	const char *egress_proxy;       /* egressProxy.host, or NULL */
	int mesh;                       /* mesh config: unset means ALLOW_ANY */
};

struct pst_peerauth {
	struct pst_ref ref;
	const char *mode;               /* PERMISSIVE or DISABLE found, or NULL */
	unsigned mode_line;
	int port_level;
};

/* Why an egress rule admits any destination, and where it stands. */
struct pst_netpol {
	struct pst_ref ref;
	struct pst_selector pods;
	int egress;                     /* an Egress policy */
	const char *open_why;           /* NULL: no rule admits everything */
	unsigned open_line;
};

struct pst_arena;

struct pst_cluster {
	const char *gw_ns, *gw_name;
	struct pst_arena *arena;
	int oom;
#define PST_LIST(type, name) type *name; size_t n##name, cap_##name
	PST_LIST(struct pst_workload, wl);
	PST_LIST(struct pst_namespace, ns);
	PST_LIST(struct pst_service, svc);
	PST_LIST(struct pst_serviceentry, se);
	PST_LIST(struct pst_virtualservice, vs);
	PST_LIST(struct pst_outbound, ob);
	PST_LIST(struct pst_peerauth, pa);
	PST_LIST(struct pst_netpol, np);
	PST_LIST(struct pst_finding, fd);
#undef PST_LIST
};

/* Zeroed memory from the arena; NULL (and c->oom) when out of memory. */
void *pst_alloc(struct pst_cluster *c, size_t size);
const char *pst_strdup(struct pst_cluster *c, const char *s);
void pst_arena_free(struct pst_cluster *c);
/* pst_strdup with control bytes written as \xNN (one line in any output). */
const char *pst_strdup_line(struct pst_cluster *c, const char *s);
/* Room for one more element at the end of a list; NULL when out of memory. */
void *pst_grow(struct pst_cluster *c, void **arr, size_t n, size_t *cap,
    size_t size);
#define PST_PUSH(c, list) \
	pst_grow((c), (void **)&(c)->list, (c)->n##list, &(c)->cap_##list, \
	    sizeof(*(c)->list))

/* select.c: labels, selectors, host names and address ranges. */
const char *pst_label(const struct pst_labels *l, const char *key);
const struct pst_kv *pst_label_kv(const struct pst_labels *l, const char *key);
int pst_selector_matches(const struct pst_selector *s, const struct pst_labels *l);
/* A Service selector (a plain map) matches: non-empty and a subset of l. */
int pst_map_selects(const struct pst_labels *sel, const struct pst_labels *l);
/* Istio host matching: does pattern (exact or "*.x", or "*") cover host? */
int pst_host_covers(const char *pattern, const char *host);
/* Is name inside the cluster (*.svc, *.svc.cluster.local, ...)? */
int pst_host_in_cluster(const char *name);
/* Does an ipBlock CIDR reach public addresses? -1 when it is not a CIDR. */
int pst_cidr_public(const char *cidr);

#endif

/*
 * policy internals shared by load.c (which builds) and match.c (which
 * compiles and decides). Nothing outside policy/ includes this.
 *
 * Life of a snapshot: pol_snap_new(), pol_snap_add() for every host of
 * every rule in file order, pol_snap_compile() once; then it is immutable
 * and only pol_decide() and the accessors read it. If loading fails the
 * half-built snapshot is thrown away with pol_snapshot_unref().
 */
#ifndef EGRESSD_POLICY_INT_H
#define EGRESSD_POLICY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"
#include "policy/yamldoc.h"

/* Indices are 32-bit to keep the table small; this is far above need. */
#define POL_MAX_RULES (16u * 1024 * 1024)

/* Strings live in chunks freed together with the snapshot. */
struct pol_chunk {
	struct pol_chunk *next;
	size_t used, size;
	char data[];
};

/* One distinct pattern name ("example.com") and the rules that use it. */
struct pol_slot {
	const char *key;        /* NULL: empty slot */
	uint32_t keylen;
	uint32_t hash;
	uint32_t start, count;  /* range in pol_snapshot.idx, in rule order */
	uint32_t kinds;         /* 1 << kind of every rule filed here */
};

struct pol_snapshot {
	uint32_t refs;          /* __atomic builtins only */
	uint64_t generation;

	struct pol_rule *rules;
	size_t nrules, rules_cap;
	struct pol_chunk *chunks;

	/*
	 * Strings of the rule added last: the hosts of one rule, and the
	 * rules of one file, share one copy (compared by content, since
	 * the loader's buffers are reused).
	 */
	const char *last_file, *last_name, *last_ns;
	uint16_t *last_ports;
	size_t last_nports;

	/* Compiled form: open addressing on the suffix, size a power of 2. */
	struct pol_slot *slots;
	size_t nslots;
	/*
	 * A two-bit-per-key filter in front of the table, 4 bits per slot:
	 * most suffixes a decision looks up are in no rule ("com",
	 * "example.com"), and the filter answers those from cache (128 KiB at
	 * 100k rules) instead of a slot in a table of megabytes.
	 */
	uint64_t *filter;
	uint32_t filter_mask;   /* number of bits - 1 */
	uint32_t *idx;          /* rule indices grouped by slot */
	uint32_t *any;          /* indices of "*" rules, in rule order */
	size_t nany;

	enum pol_mode mode;     /* what applies when no rule decides */
};

struct pol_snapshot *pol_snap_new(void);
/*
 * Copies r (its strings and arrays too, but not origin, a literal) into the
 * snapshot; r->suffix is derived from r->pattern and r->kind. Returns 0,
 * or -1 when out of memory or full.
 */
int pol_snap_add(struct pol_snapshot *s, const struct pol_rule *r);
/*
 * A copy of n ports in s (the previous copy when the same): what a rule
 * of s may point to. NULL for none, or when out of memory (*oom set).
 */
uint16_t *pol_snap_ports(struct pol_snapshot *s, const uint16_t *ports,
    size_t n, int *oom);
/* Builds the lookup table; 0, or -1 when out of memory. */
int pol_snap_compile(struct pol_snapshot *s);

/*
 * The loader's state while one policy is read; shared with the readers of
 * Kubernetes resources (istio.c).
 */
struct pol_loader {
	struct pol_snapshot *snap;
	int oom;                /* reported once, then every add is skipped */
	const struct pol_load_opts *opts;       /* never NULL */
	void *k8s;              /* istio.c's state across documents and files */
	/* The file being read: its rules start at file_first; its mode, when
	 * a document says (-1: it does not), is applied once it is read. */
	size_t file_first;
	int file_mode;
	unsigned file_mode_line;
};

/*
 * Adds one host pattern of a rule (pol_snap_add, with errors reported).
 * r->file, r->line, r->col, r->name must be set; r->origin must be a
 * string literal (it is kept as is). The other strings and the
 * sources/endpoints arrays are copied.
 */
void pol_loader_add(struct ydoc_ctx *cx, struct pol_loader *ld,
    const struct pol_rule *r);
/* r is for pattern, written at node n (its line and column, 1-based). */
void pol_rule_at(struct pol_rule *r, const char *pattern,
    const yaml_node_t *n);

/* The namespace of the daemon's map called name, or NULL. */
const struct pol_namespace *pol_loader_namespace(const struct pol_loader *ld,
    const char *name);

/* Config text for a message: one printable line, at most ~80 bytes. */
const char *pol_quote(const char *s, char *buf, size_t size);
#define POL_QUOTE_BUF 96

/* "", "~", "null" written plainly: a key present with nothing in it. */
int pol_yaml_is_null(const yaml_node_t *n);
/* A sequence with no items ("[]"). */
int pol_yaml_is_empty_list(const yaml_node_t *n);

/* A port number 1..65535; reports "port must be ..." and returns -1. */
int pol_read_port(struct ydoc_ctx *cx, yaml_node_t *n, uint16_t *out);

/*
 * istio.c: a document with a "kind" key. Reads the Istio kinds egressd
 * uses, skips the others with a notice, reports invalid values.
 */
void pol_k8s_read(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, yaml_node_t *root);
/*
 * Called after each file is read, once its mode is known: a Sidecar or
 * DestinationRule in a report-mode file is an error.
 */
void pol_k8s_end_file(struct ydoc_ctx *cx, struct pol_loader *ld);
/*
 * Called once after every file was read and before compiling, when there
 * were no errors: applies what spans documents (DestinationRule
 * originate_tls onto the rules of the hosts it names). Frees ld->k8s
 * (also called, with errors, just to free).
 */
void pol_k8s_finish(struct ydoc_ctx *cx, struct pol_loader *ld, int errors);

#endif

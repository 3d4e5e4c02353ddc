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
	size_t keylen;
	uint32_t hash;
	uint32_t start, count;  /* range in pol_snapshot.idx, in rule order */
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
	const char *last_file, *last_name;

	/* Compiled form: open addressing on the suffix, size a power of 2. */
	struct pol_slot *slots;
	size_t nslots;
	uint32_t *idx;          /* rule indices grouped by slot */
	uint32_t *any;          /* indices of "*" rules, in rule order */
	size_t nany;
};

struct pol_snapshot *pol_snap_new(void);
/*
 * Copies r (its strings too) into the snapshot; r->suffix is derived from
 * r->pattern and r->kind. Returns 0, or -1 when out of memory or full.
 */
int pol_snap_add(struct pol_snapshot *s, const struct pol_rule *r);
/* Builds the lookup table; 0, or -1 when out of memory. */
int pol_snap_compile(struct pol_snapshot *s);

#endif

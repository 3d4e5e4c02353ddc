/*
 * yamldoc: small helpers over libyaml's document API, shared by the policy
 * loader and the daemon's own configuration, so both report problems the
 * same way: "file:line:column: message", with 1-based line and column.
 */
#ifndef EGRESSD_YAMLDOC_H
#define EGRESSD_YAMLDOC_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "policy/policy.h"

struct ydoc_ctx {
	const char *file;       /* label used in messages */
	pol_report_fn report;
	void *arg;
	unsigned errors;        /* POL_ERROR diagnostics reported so far */
};

/* Report at a node's position (node may be NULL: line 0). printf-style. */
void ydoc_error(struct ydoc_ctx *cx, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ydoc_notice(struct ydoc_ctx *cx, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ydoc_warning(struct ydoc_ctx *cx, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Parse every document of a YAML stream. For each document calls fn with
 * its root node (NULL for an empty document). Syntax errors are reported
 * with their position. Returns 0 when the whole stream parsed, -1 if not.
 * A document using YAML anchors/aliases is reported as an error and not
 * passed to fn, so fn always sees a plain tree (no sharing, no cycles).
 * Errors reported so far are counted in cx->errors either way.
 */
typedef void (*ydoc_fn)(struct ydoc_ctx *cx, yaml_document_t *doc,
    yaml_node_t *root, void *arg);
int ydoc_parse_buffer(struct ydoc_ctx *cx, const char *text, size_t len,
    ydoc_fn fn, void *arg);
/* Reads the file (at most 16 MiB) and parses it; open errors are reported. */
int ydoc_parse_file(struct ydoc_ctx *cx, const char *path, ydoc_fn fn, void *arg);
/* Reads the file as ydoc_parse_file does: 0 with *text (malloc'd, the
 * caller frees it) and *len, or -1 after reporting why. */
int ydoc_read_file(struct ydoc_ctx *cx, const char *path, char **text,
    size_t *len);

/*
 * The top-level keys of a stream's first document, when it is a mapping,
 * and where each key's value lies in the text: to say which sections of a
 * file differ from another version of it. Returns how many (at most max;
 * keys longer than the field are cut), or -1 when the text does not parse
 * or its first document is not a mapping. Reports nothing.
 */
struct ydoc_section {
	char key[32];
	size_t start, end;      /* the value's bytes: text[start..end) */
};
int ydoc_sections(const char *text, size_t len, struct ydoc_section *out,
    size_t max);

/* Typed accessors: each returns 0, or reports "<what> must be ..." and -1. */
int ydoc_scalar(struct ydoc_ctx *cx, yaml_node_t *n, const char *what, const char **out);
int ydoc_bool(struct ydoc_ctx *cx, yaml_node_t *n, const char *what, int *out);
int ydoc_uint(struct ydoc_ctx *cx, yaml_node_t *n, const char *what,
    unsigned long max, unsigned long *out);
int ydoc_is_mapping(struct ydoc_ctx *cx, yaml_node_t *n, const char *what);
int ydoc_is_sequence(struct ydoc_ctx *cx, yaml_node_t *n, const char *what);
/* A duration: "250ms", "10s", "5m", "1h", "1d" or a bare number of seconds. */
int ydoc_duration_ms(struct ydoc_ctx *cx, yaml_node_t *n, const char *what, uint64_t *out);

/* Scalar text of a node, or NULL when it is not a scalar. */
const char *ydoc_text(const yaml_node_t *n);

/* Iterate mapping pairs / sequence items of a node. */
#define YDOC_FOREACH_PAIR(doc, map, p) \
	for (yaml_node_pair_t *p = (map)->data.mapping.pairs.start; \
	    p < (map)->data.mapping.pairs.top; p++)
#define YDOC_FOREACH_ITEM(doc, seq, it) \
	for (yaml_node_item_t *it = (seq)->data.sequence.items.start; \
	    it < (seq)->data.sequence.items.top; it++)
#define YDOC_NODE(doc, idx) yaml_document_get_node((doc), (idx))

#endif

/*
 * yamldoc: libyaml's document API with the error reporting both the policy
 * loader and the daemon configuration want.
 *
 * Limits, and why they are enough:
 *  - a file is read whole, at most YDOC_MAX_FILE bytes, so the document
 *    tree (libyaml keeps every node) grows at most linearly with that;
 *  - anchors and aliases are refused. libyaml's composer turns an alias
 *    into a second reference to the anchored node, so "billion laughs"
 *    costs nothing to load but explodes for any caller walking the tree,
 *    and an alias inside its own anchor ("&a [*a]") makes a cycle. An
 *    allow-list has no use for either; refusing them keeps every document
 *    a plain tree that callers may walk without limits of their own.
 *  - libyaml 0.2.5 composes without recursion, so deep nesting costs
 *    memory (bounded by the file size), not stack.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/yamldoc.h"

#define YDOC_MAX_FILE (16u * 1024 * 1024)
#define YDOC_MSG_MAX 1024

static void
ydoc_vreport(struct ydoc_ctx *cx, enum pol_severity sev, unsigned line,
    unsigned col, const char *fmt, va_list ap)
{
	char raw[YDOC_MSG_MAX], msg[YDOC_MSG_MAX];
	size_t o = 0;

	vsnprintf(raw, sizeof(raw), fmt, ap);
	/*
	 * Messages quote config text, and a YAML scalar may hold any control
	 * byte (a quoted "a\nb" is a newline). Whatever a caller forgot to
	 * quote, a diagnostic stays one line: editors, the log and egressctl
	 * all read it as one.
	 */
	for (const char *p = raw; *p != '\0' && o + 5 < sizeof(msg); p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(msg + o, sizeof(msg) - o, "\\x%02x", c);
		else
			msg[o++] = (char)c;
	}
	msg[o] = '\0';
	if (sev == POL_ERROR)
		cx->errors++;
	if (cx->report != NULL)
		cx->report(cx->arg, sev, cx->file, line, col, msg);
}

__attribute__((format(printf, 5, 6)))
static void
ydoc_report_at(struct ydoc_ctx *cx, enum pol_severity sev, unsigned line,
    unsigned col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ydoc_vreport(cx, sev, line, col, fmt, ap);
	va_end(ap);
}

/* libyaml marks are 0-based; people count from 1. */
static unsigned
node_line(const yaml_node_t *node)
{
	return node != NULL ? (unsigned)node->start_mark.line + 1 : 0;
}

static unsigned
node_col(const yaml_node_t *node)
{
	return node != NULL ? (unsigned)node->start_mark.column + 1 : 0;
}

void
ydoc_error(struct ydoc_ctx *cx, const yaml_node_t *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ydoc_vreport(cx, POL_ERROR, node_line(node), node_col(node), fmt, ap);
	va_end(ap);
}

void
ydoc_notice(struct ydoc_ctx *cx, const yaml_node_t *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ydoc_vreport(cx, POL_NOTICE, node_line(node), node_col(node), fmt, ap);
	va_end(ap);
}

void
ydoc_warning(struct ydoc_ctx *cx, const yaml_node_t *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ydoc_vreport(cx, POL_WARNING, node_line(node), node_col(node), fmt, ap);
	va_end(ap);
}

/*
 * Reader errors (bad UTF-8, control characters) carry a byte offset rather
 * than a mark; count lines up to it so they are reported like the others.
 */
static void
offset_position(const char *text, size_t len, size_t off, unsigned *line,
    unsigned *col)
{
	size_t bol = 0;

	*line = 1;
	if (off > len)
		off = len;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			bol = i + 1;
		}
	}
	*col = (unsigned)(off - bol) + 1;
}

static void
report_parser_error(struct ydoc_ctx *cx, const yaml_parser_t *p,
    const char *text, size_t len)
{
	unsigned line, col;
	const char *problem = p->problem != NULL ? p->problem : "unknown error";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		ydoc_report_at(cx, POL_ERROR, 0, 0, "out of memory while parsing");
		return;
	case YAML_READER_ERROR:
		offset_position(text, len, p->problem_offset, &line, &col);
		ydoc_report_at(cx, POL_ERROR, line, col, "syntax error: %s", problem);
		return;
	default:
		break;
	}
	line = (unsigned)p->problem_mark.line + 1;
	col = (unsigned)p->problem_mark.column + 1;
	if (p->context != NULL)
		ydoc_report_at(cx, POL_ERROR, line, col,
		    "syntax error: %s (%s at line %u)", problem, p->context,
		    (unsigned)p->context_mark.line + 1);
	else
		ydoc_report_at(cx, POL_ERROR, line, col, "syntax error: %s", problem);
}

/*
 * Without aliases a document is a tree: the root is nobody's child and
 * every other node is the child of exactly one collection. Any node
 * referenced more often was reached through an alias; report it at the
 * anchored node, which is where the '&' stands. Returns 0 for a tree.
 */
static int
check_tree(struct ydoc_ctx *cx, yaml_document_t *doc)
{
	size_t n = (size_t)(doc->nodes.top - doc->nodes.start);
	unsigned char *seen;
	int rc = 0;

	seen = calloc(n + 1, 1);
	if (seen == NULL) {
		ydoc_report_at(cx, POL_ERROR, 0, 0, "out of memory while parsing");
		return -1;
	}
	seen[1] = 1;            /* the root (node 1) may not be referenced */
	for (size_t i = 0; i < n && rc == 0; i++) {
		yaml_node_t *node = doc->nodes.start + i;
		int kids[2];
		int nk;

		if (node->type == YAML_SEQUENCE_NODE) {
			for (yaml_node_item_t *it = node->data.sequence.items.start;
			    it < node->data.sequence.items.top; it++) {
				if (*it < 1 || (size_t)*it > n || seen[*it]++) {
					rc = -1;
					ydoc_error(cx, YDOC_NODE(doc, *it),
					    "YAML anchors and aliases are not supported");
					break;
				}
			}
		} else if (node->type == YAML_MAPPING_NODE) {
			for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
			    p < node->data.mapping.pairs.top && rc == 0; p++) {
				kids[0] = p->key;
				kids[1] = p->value;
				for (nk = 0; nk < 2; nk++) {
					if (kids[nk] < 1 || (size_t)kids[nk] > n ||
					    seen[kids[nk]]++) {
						rc = -1;
						ydoc_error(cx, YDOC_NODE(doc, kids[nk]),
						    "YAML anchors and aliases are not supported");
						break;
					}
				}
			}
		}
	}
	free(seen);
	return rc;
}

/* "---" with nothing after it composes to an empty plain scalar. */
static int
is_empty_document(const yaml_node_t *root)
{
	return root->type == YAML_SCALAR_NODE &&
	    root->data.scalar.length == 0 &&
	    root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

int
ydoc_parse_buffer(struct ydoc_ctx *cx, const char *text, size_t len, ydoc_fn fn,
    void *arg)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc = -1;

	if (!yaml_parser_initialize(&parser)) {
		ydoc_report_at(cx, POL_ERROR, 0, 0, "out of memory while parsing");
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (;;) {
		yaml_node_t *root;

		if (!yaml_parser_load(&parser, &doc)) {
			report_parser_error(cx, &parser, text, len);
			goto out;
		}
		root = yaml_document_get_root_node(&doc);
		if (root == NULL) {
			/* libyaml's way of saying the stream has ended */
			yaml_document_delete(&doc);
			break;
		}
		if (check_tree(cx, &doc) == 0)
			fn(cx, &doc, is_empty_document(root) ? NULL : root, arg);
		yaml_document_delete(&doc);
	}
	rc = 0;
out:
	yaml_parser_delete(&parser);
	return rc;
}

int
ydoc_read_file(struct ydoc_ctx *cx, const char *path, char **text,
    size_t *len)
{
	const char *saved = cx->file;
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	int fd, rc = -1;

	if (cx->file == NULL)
		cx->file = path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ydoc_report_at(cx, POL_ERROR, 0, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		ydoc_report_at(cx, POL_ERROR, 0, 0, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ydoc_report_at(cx, POL_ERROR, 0, 0, "not a regular file");
		goto out;
	}
	/* One byte more than the cap, to tell "exactly the cap" from "more". */
	buf = malloc(YDOC_MAX_FILE + 1);
	if (buf == NULL) {
		ydoc_report_at(cx, POL_ERROR, 0, 0, "out of memory reading the file");
		goto out;
	}
	for (;;) {
		ssize_t got = read(fd, buf + n, YDOC_MAX_FILE + 1 - n);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			ydoc_report_at(cx, POL_ERROR, 0, 0, "cannot read: %s",
			    strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > YDOC_MAX_FILE) {
			ydoc_report_at(cx, POL_ERROR, 0, 0,
			    "file is larger than 16 MiB");
			goto out;
		}
	}
	*text = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	cx->file = saved;
	return rc;
}

int
ydoc_parse_file(struct ydoc_ctx *cx, const char *path, ydoc_fn fn, void *arg)
{
	const char *saved = cx->file;
	char *buf;
	size_t len;
	int rc;

	if (cx->file == NULL)
		cx->file = path;
	rc = ydoc_read_file(cx, path, &buf, &len);
	if (rc == 0) {
		rc = ydoc_parse_buffer(cx, buf, len, fn, arg);
		free(buf);
	}
	cx->file = saved;
	return rc;
}

int
ydoc_sections(const char *text, size_t len, struct ydoc_section *out,
    size_t max)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	int n = -1;

	if (!yaml_parser_initialize(&parser))
		return -1;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_parser_delete(&parser);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	if (root != NULL && root->type == YAML_MAPPING_NODE) {
		n = 0;
		YDOC_FOREACH_PAIR(&doc, root, p) {
			yaml_node_t *k = yaml_document_get_node(&doc, p->key);
			yaml_node_t *v = yaml_document_get_node(&doc, p->value);
			const char *t = ydoc_text(k);

			if ((size_t)n == max || t == NULL || v == NULL)
				continue;
			snprintf(out[n].key, sizeof(out[n].key), "%s", t);
			out[n].start = v->start_mark.index;
			out[n].end = v->end_mark.index;
			n++;
		}
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return n;
}

const char *
ydoc_text(const yaml_node_t *n)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

/*
 * A scalar may hold a NUL ("\0" in a double-quoted string); C code would
 * silently see a shorter string, so such a value is refused here.
 */
int
ydoc_scalar(struct ydoc_ctx *cx, yaml_node_t *n, const char *what,
    const char **out)
{
	const char *s = ydoc_text(n);

	if (s == NULL) {
		ydoc_error(cx, n, "%s must be a string", what);
		return -1;
	}
	if (strlen(s) != n->data.scalar.length) {
		ydoc_error(cx, n, "%s must not contain a NUL character", what);
		return -1;
	}
	*out = s;
	return 0;
}

/* YAML 1.2 core schema booleans only: "yes", "on" and "y" are not. */
int
ydoc_bool(struct ydoc_ctx *cx, yaml_node_t *n, const char *what, int *out)
{
	static const char *const yes[] = { "true", "True", "TRUE" };
	static const char *const no[] = { "false", "False", "FALSE" };
	const char *s = ydoc_text(n);

	if (s != NULL) {
		for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			if (strcmp(s, yes[i]) == 0) {
				*out = 1;
				return 0;
			}
			if (strcmp(s, no[i]) == 0) {
				*out = 0;
				return 0;
			}
		}
	}
	ydoc_error(cx, n, "%s must be true or false", what);
	return -1;
}

/* Digits only: no sign, no spaces, no 0x; -1 on overflow past max. */
static int
parse_digits(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int
ydoc_uint(struct ydoc_ctx *cx, yaml_node_t *n, const char *what,
    unsigned long max, unsigned long *out)
{
	const char *s = ydoc_text(n);

	if (s == NULL || parse_digits(s, n->data.scalar.length, max, out) < 0) {
		ydoc_error(cx, n, "%s must be a whole number from 0 to %lu", what, max);
		return -1;
	}
	return 0;
}

int
ydoc_is_mapping(struct ydoc_ctx *cx, yaml_node_t *n, const char *what)
{
	if (n == NULL || n->type != YAML_MAPPING_NODE) {
		ydoc_error(cx, n, "%s must be a mapping", what);
		return -1;
	}
	return 0;
}

int
ydoc_is_sequence(struct ydoc_ctx *cx, yaml_node_t *n, const char *what)
{
	if (n == NULL || n->type != YAML_SEQUENCE_NODE) {
		ydoc_error(cx, n, "%s must be a list", what);
		return -1;
	}
	return 0;
}

int
ydoc_duration_ms(struct ydoc_ctx *cx, yaml_node_t *n, const char *what,
    uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned long ms;
	} units[] = {
		{ "ms", 1 },
		{ "s", 1000 },
		{ "m", 60 * 1000 },
		{ "h", 60 * 60 * 1000 },
		{ "d", 24 * 60 * 60 * 1000 },
	};
	const char *s = ydoc_text(n);
	unsigned long mult = 1000, v;
	size_t len, digits;

	if (s == NULL)
		goto fail;
	len = n->data.scalar.length;
	for (digits = 0; digits < len && s[digits] >= '0' && s[digits] <= '9'; digits++)
		;
	if (digits < len) {
		size_t i;

		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(s + digits, units[i].suffix) == 0)
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			goto fail;
		mult = units[i].ms;
	}
	if (parse_digits(s, digits, ULONG_MAX / mult, &v) < 0)
		goto fail;
	*out = (uint64_t)v * mult;
	return 0;
fail:
	ydoc_error(cx, n, "%s must be a duration such as 250ms, 10s, 5m, 1h or 1d",
	    what);
	return -1;
}

const char *
pol_diag_format(char *buf, size_t len, enum pol_severity sev, const char *file,
    unsigned line, unsigned col, const char *msg)
{
	const char *prefix = sev == POL_NOTICE ? "notice: " :
	    sev == POL_WARNING ? "warning: " : "";

	if (file != NULL && line > 0)
		snprintf(buf, len, "%s:%u:%u: %s%s", file, line, col, prefix, msg);
	else if (file != NULL)
		snprintf(buf, len, "%s: %s%s", file, prefix, msg);
	else
		snprintf(buf, len, "%s%s", prefix, msg);
	return buf;
}

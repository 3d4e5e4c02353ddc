/*
 * Loading allow-list files into a snapshot.
 *
 * Native documents (the format security teams edit):
 *
 *   allow:                          # list of rules, may be absent or empty
 *     - name: github                # optional; default "allow[N]"
 *       hosts: ["api.github.com"]   # required, non-empty
 *       ports: [443]                # optional, 1..65535, at most 32
 *       allow_private: true         # optional, allow rules only
 *   deny:
 *     - hosts: ["*.pastebin.com"]   # no ports: every port
 *
 * A file may hold several documents separated by "---"; empty ones are
 * skipped. A document with a "kind" key is a Kubernetes resource and goes
 * to the kind dispatcher instead. Every problem is reported, not just the
 * first, so one edit-and-check round fixes a file; any error means no
 * snapshot at all.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/policy-int.h"
#include "policy/yamldoc.h"

#define RULE_NAME_MAX 256
#define QUOTE_MAX 80

struct pol_loader {
	struct pol_snapshot *snap;
	int oom;                /* reported once, then every add is skipped */
};

/*
 * Config text goes back into messages; keep them one printable line and
 * short, whatever the file holds.
 */
static const char *quote(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	for (; *s != '\0' && o + 8 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (o >= QUOTE_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c >= 0x7f || c == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

/* "", "~" and "null" written plainly: a key present with nothing in it. */
static int is_null(const yaml_node_t *n)
{
	const char *s = ydoc_text(n);

	return s != NULL && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (strcmp(s, "") == 0 || strcmp(s, "~") == 0 ||
	    strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
	    strcmp(s, "NULL") == 0);
}

/*
 * Reads a mapping's keys against a list of known ones: each known key's
 * value lands in vals[i]. Unknown, duplicate and non-string keys are
 * reported; the rest of the mapping is still read.
 */
static void read_keys(struct ydoc_ctx *cx, yaml_document_t *doc,
    yaml_node_t *map, const char *const *known, size_t nknown,
    const char *expected, yaml_node_t **vals, yaml_node_t **keys)
{
	char qb[QUOTE_MAX + 16];

	for (size_t i = 0; i < nknown; i++)
		vals[i] = keys[i] = NULL;
	YDOC_FOREACH_PAIR(doc, map, p) {
		yaml_node_t *k = YDOC_NODE(doc, p->key);
		const char *ks = ydoc_text(k);
		size_t i;

		if (ks == NULL) {
			ydoc_error(cx, k, "a key must be a string");
			continue;
		}
		for (i = 0; i < nknown; i++)
			if (strcmp(ks, known[i]) == 0)
				break;
		if (i == nknown) {
			ydoc_error(cx, k, "unknown key '%s' (expected one of: %s)",
			    quote(ks, qb, sizeof(qb)), expected);
			continue;
		}
		if (keys[i] != NULL) {
			ydoc_error(cx, k, "duplicate key '%s' (first at line %u)",
			    known[i], (unsigned)keys[i]->start_mark.line + 1);
			continue;
		}
		keys[i] = k;
		vals[i] = YDOC_NODE(doc, p->value);
	}
}

/* Ports are 1..65535; one message for every way of getting that wrong. */
static int read_port(struct ydoc_ctx *cx, yaml_node_t *n, uint16_t *out)
{
	const char *s = ydoc_text(n);
	unsigned long v = 0;
	size_t i;

	if (s == NULL)
		goto fail;
	for (i = 0; s[i] >= '0' && s[i] <= '9' && v <= 65535; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (i == 0 || i != n->data.scalar.length || v < 1 || v > 65535)
		goto fail;
	*out = (uint16_t)v;
	return 0;
fail:
	ydoc_error(cx, n, "port must be a number from 1 to 65535");
	return -1;
}

enum {
	K_HOSTS = 0,
	K_PORTS,
	K_NAME,
	K_ALLOW_PRIVATE,
	K_COUNT,
};

static const char *const rule_keys[K_COUNT] = {
	"hosts", "ports", "name", "allow_private",
};

static void add_rule(struct ydoc_ctx *cx, struct pol_loader *ld,
    const struct pol_rule *r)
{
	if (ld->oom)
		return;
	if (pol_snap_add(ld->snap, r) < 0) {
		ld->oom = 1;
		if (pol_snapshot_rule_count(ld->snap) >= POL_MAX_RULES)
			ydoc_error(cx, NULL, "too many host patterns (at most %u)",
			    POL_MAX_RULES);
		else
			ydoc_error(cx, NULL, "out of memory loading the policy");
	}
}

static void read_rule(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, yaml_node_t *node, enum pol_action action,
    size_t index)
{
	yaml_node_t *vals[K_COUNT], *keys[K_COUNT];
	char what[32], defname[32], qb[QUOTE_MAX + 16], hint[160];
	char pattern[POL_NAME_MAX + 3];
	struct pol_rule r;
	const char *listname = pol_action_str(action);

	snprintf(what, sizeof(what), "%s[%zu]", listname, index);
	if (ydoc_is_mapping(cx, node, what) < 0)
		return;
	/* "allow_private" is read in deny rules only to say it is misplaced. */
	read_keys(cx, doc, node, rule_keys, K_COUNT,
	    action == POL_ALLOW ? "hosts, ports, name, allow_private" :
	    "hosts, ports, name", vals, keys);
	memset(&r, 0, sizeof(r));
	r.action = action;
	r.file = cx->file;
	snprintf(defname, sizeof(defname), "%s[%zu]", listname, index);
	r.name = defname;

	if (vals[K_NAME] != NULL && ydoc_scalar(cx, vals[K_NAME], "name", &r.name) == 0) {
		if (r.name[0] == '\0')
			ydoc_error(cx, vals[K_NAME], "name must not be empty");
		else if (strlen(r.name) > RULE_NAME_MAX)
			ydoc_error(cx, vals[K_NAME], "name is longer than %d characters",
			    RULE_NAME_MAX);
	}
	if (vals[K_ALLOW_PRIVATE] != NULL) {
		if (action == POL_DENY)
			ydoc_error(cx, keys[K_ALLOW_PRIVATE],
			    "allow_private is only valid in allow rules");
		else
			(void)ydoc_bool(cx, vals[K_ALLOW_PRIVATE], "allow_private",
			    &r.allow_private);
	}
	if (vals[K_PORTS] != NULL) {
		yaml_node_t *ports = vals[K_PORTS];

		if (is_null(ports) || (ports->type == YAML_SEQUENCE_NODE &&
		    ports->data.sequence.items.top == ports->data.sequence.items.start)) {
			ydoc_error(cx, ports, "ports must not be empty "
			    "(leave it out for the default port)");
		} else if (ydoc_is_sequence(cx, ports, "ports") == 0) {
			YDOC_FOREACH_ITEM(doc, ports, it) {
				uint16_t port;

				if (read_port(cx, YDOC_NODE(doc, *it), &port) < 0)
					continue;
				if (r.nports == POL_MAX_PORTS) {
					ydoc_error(cx, ports, "too many ports (at most %d)",
					    POL_MAX_PORTS);
					break;
				}
				r.ports[r.nports++] = port;
			}
		}
	}

	if (vals[K_HOSTS] == NULL) {
		ydoc_error(cx, node, "missing required key 'hosts'");
		return;
	}
	if (is_null(vals[K_HOSTS]) || (vals[K_HOSTS]->type == YAML_SEQUENCE_NODE &&
	    vals[K_HOSTS]->data.sequence.items.top ==
	    vals[K_HOSTS]->data.sequence.items.start)) {
		ydoc_error(cx, vals[K_HOSTS], "hosts must not be empty");
		return;
	}
	if (ydoc_is_sequence(cx, vals[K_HOSTS], "hosts") < 0)
		return;
	YDOC_FOREACH_ITEM(doc, vals[K_HOSTS], it) {
		yaml_node_t *h = YDOC_NODE(doc, *it);
		const char *text;

		if (ydoc_scalar(cx, h, "host pattern", &text) < 0)
			continue;
		if (pol_pattern_parse(text, &r.kind, pattern, sizeof(pattern),
		    hint, sizeof(hint)) < 0) {
			ydoc_error(cx, h, "bad host pattern '%s': %s",
			    quote(text, qb, sizeof(qb)), hint);
			continue;
		}
		/* Once anything is wrong no snapshot is built: skip the work. */
		if (cx->errors != 0)
			continue;
		r.pattern = pattern;
		r.line = (unsigned)h->start_mark.line + 1;
		r.col = (unsigned)h->start_mark.column + 1;
		add_rule(cx, ld, &r);
	}
}

static void read_rule_list(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, yaml_node_t *list, enum pol_action action)
{
	size_t index = 0;

	if (is_null(list))
		return;
	if (ydoc_is_sequence(cx, list, pol_action_str(action)) < 0)
		return;
	YDOC_FOREACH_ITEM(doc, list, it)
		read_rule(cx, ld, doc, YDOC_NODE(doc, *it), action, index++);
}

/*
 * Kubernetes resources, by kind. Istio's ServiceEntry and Sidecar will be
 * handled here; until then every kind is skipped with a notice, which is
 * also what happens to kinds that carry no egress policy.
 */
typedef void (*kind_fn)(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, yaml_node_t *root);

static kind_fn kind_lookup(const char *kind)
{
	(void)kind;
	return NULL;
}

static void read_resource(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, yaml_node_t *root, yaml_node_t *kindval)
{
	char qb[QUOTE_MAX + 16];
	const char *kind;
	kind_fn fn;

	if (ydoc_scalar(cx, kindval, "kind", &kind) < 0)
		return;
	fn = kind_lookup(kind);
	if (fn != NULL) {
		fn(cx, ld, doc, root);
		return;
	}
	ydoc_notice(cx, root, "kind %s: Istio resources are read by a later "
	    "version; skipped", quote(kind, qb, sizeof(qb)));
}

static void read_document(struct ydoc_ctx *cx, yaml_document_t *doc,
    yaml_node_t *root, void *arg)
{
	static const char *const top_keys[] = { "allow", "deny" };
	struct pol_loader *ld = arg;
	yaml_node_t *vals[2], *keys[2];

	if (root == NULL)
		return;
	if (ydoc_is_mapping(cx, root, "a policy document") < 0)
		return;
	YDOC_FOREACH_PAIR(doc, root, p) {
		const char *ks = ydoc_text(YDOC_NODE(doc, p->key));

		if (ks != NULL && strcmp(ks, "kind") == 0) {
			read_resource(cx, ld, doc, root, YDOC_NODE(doc, p->value));
			return;
		}
	}
	read_keys(cx, doc, root, top_keys, 2, "allow, deny", vals, keys);
	if (vals[0] != NULL)
		read_rule_list(cx, ld, doc, vals[0], POL_ALLOW);
	if (vals[1] != NULL)
		read_rule_list(cx, ld, doc, vals[1], POL_DENY);
}

static struct pol_snapshot *finish(struct pol_loader *ld, unsigned errors,
    pol_report_fn report, void *arg)
{
	struct ydoc_ctx cx = { .file = NULL, .report = report, .arg = arg };

	if (errors == 0 && !ld->oom && pol_snap_compile(ld->snap) < 0) {
		ydoc_error(&cx, NULL, "out of memory compiling the policy");
		errors++;
	}
	if (errors != 0 || ld->oom) {
		pol_snapshot_unref(ld->snap);
		return NULL;
	}
	return ld->snap;
}

struct pol_snapshot *pol_load_buffer(const char *name, const char *text,
    size_t len, pol_report_fn report, void *arg)
{
	struct ydoc_ctx cx = {
		.file = name != NULL ? name : "<buffer>",
		.report = report,
		.arg = arg,
	};
	struct pol_loader ld = { .snap = pol_snap_new() };

	if (ld.snap == NULL) {
		ydoc_error(&cx, NULL, "out of memory loading the policy");
		return NULL;
	}
	(void)ydoc_parse_buffer(&cx, text != NULL ? text : "", text != NULL ? len : 0,
	    read_document, &ld);
	return finish(&ld, cx.errors, report, arg);
}

static int has_yaml_suffix(const char *name)
{
	size_t n = strlen(name);

	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	    (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_file(struct pol_loader *ld, const char *path,
    pol_report_fn report, void *arg, unsigned *errors)
{
	struct ydoc_ctx cx = { .file = path, .report = report, .arg = arg };

	(void)ydoc_parse_file(&cx, path, read_document, ld);
	*errors += cx.errors;
}

/*
 * A directory contributes its *.yaml and *.yml files, not recursively, in
 * strcmp order so the rule order (and "allow[N]" names across files) is
 * the same on every machine. Names starting with a dot are skipped: a
 * Kubernetes ConfigMap volume keeps its real files in "..data" and
 * timestamped "..2024_..." directories, next to the symlinks we want.
 * Returns the number of files read.
 */
static size_t load_dir(struct pol_loader *ld, const char *dir,
    pol_report_fn report, void *arg, unsigned *errors)
{
	struct ydoc_ctx cx = { .file = dir, .report = report, .arg = arg };
	char **names = NULL;
	size_t n = 0, cap = 0, files = 0;
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (d == NULL) {
		ydoc_error(&cx, NULL, "cannot open directory: %s", strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !has_yaml_suffix(de->d_name))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **p = realloc(names, ncap * sizeof(*p));

			if (p == NULL)
				goto oom;
			names = p;
			cap = ncap;
		}
		if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0)
			goto oom;
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		/* stat, not lstat: ConfigMap entries are symlinks. */
		if (stat(names[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			struct ydoc_ctx fcx = { .file = names[i], .report = report,
			    .arg = arg };

			ydoc_warning(&fcx, NULL, "a directory, not read "
			    "(directories are not read recursively)");
			continue;
		}
		load_file(ld, names[i], report, arg, errors);
		files++;
	}
	if (files == 0)
		ydoc_warning(&cx, NULL, "no *.yaml or *.yml files in this directory");
	goto out;
oom:
	ydoc_error(&cx, NULL, "out of memory reading the directory");
out:
	if (d != NULL)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	*errors += cx.errors;
	return files;
}

struct pol_snapshot *pol_load(const char *const *paths, size_t npaths,
    const char *base_dir, pol_report_fn report, void *arg)
{
	struct ydoc_ctx cx = { .file = NULL, .report = report, .arg = arg };
	struct pol_loader ld = { .snap = pol_snap_new() };
	unsigned errors = 0;
	size_t files = 0;

	if (ld.snap == NULL) {
		ydoc_error(&cx, NULL, "out of memory loading the policy");
		return NULL;
	}
	for (size_t i = 0; i < npaths; i++) {
		struct ydoc_ctx pcx = { .report = report, .arg = arg };
		char *full = NULL;
		struct stat st;

		if (paths[i] == NULL || paths[i][0] == '\0') {
			ydoc_error(&cx, NULL, "empty policy path");
			continue;
		}
		if (paths[i][0] == '/' || base_dir == NULL || base_dir[0] == '\0')
			full = strdup(paths[i]);
		else if (asprintf(&full, "%s/%s", base_dir, paths[i]) < 0)
			full = NULL;
		if (full == NULL) {
			ydoc_error(&cx, NULL, "out of memory loading the policy");
			continue;
		}
		pcx.file = full;
		if (stat(full, &st) < 0) {
			ydoc_error(&pcx, NULL, "cannot open: %s", strerror(errno));
			errors += pcx.errors;
		} else if (S_ISDIR(st.st_mode)) {
			files += load_dir(&ld, full, report, arg, &errors);
		} else {
			load_file(&ld, full, report, arg, &errors);
			files++;
		}
		free(full);
	}
	/* An empty allow-list denies everything: fail-closed, but surely a mistake. */
	if (files == 0 && errors == 0 && cx.errors == 0)
		ydoc_error(&cx, NULL, "no policy files found");
	return finish(&ld, errors + cx.errors, report, arg);
}

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

#define MAX_SOURCES 64

/*
 * Config text goes back into messages; keep them one printable line and
 * short, whatever the file holds.
 */
const char *
pol_quote(const char *s, char *buf, size_t size)
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
int
pol_yaml_is_null(const yaml_node_t *n)
{
	const char *s = ydoc_text(n);

	return s != NULL && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (strcmp(s, "") == 0 || strcmp(s, "~") == 0 ||
	    strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
	    strcmp(s, "NULL") == 0);
}

int
pol_yaml_is_empty_list(const yaml_node_t *n)
{
	return n->type == YAML_SEQUENCE_NODE &&
	    n->data.sequence.items.top == n->data.sequence.items.start;
}

/*
 * Reads a mapping's keys against a list of known ones: each known key's
 * value lands in vals[i]. Unknown, duplicate and non-string keys are
 * reported; the rest of the mapping is still read.
 */
static void
read_keys(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *map,
    const char *const *known, size_t nknown, const char *expected,
    yaml_node_t **vals, yaml_node_t **keys)
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
			    pol_quote(ks, qb, sizeof(qb)), expected);
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
int
pol_read_port(struct ydoc_ctx *cx, yaml_node_t *n, uint16_t *out)
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
	K_SOURCES,
	K_ORIGINATE_TLS,
	K_COUNT,
};

static const char *const rule_keys[K_COUNT] = {
	"hosts", "ports", "name", "allow_private", "sources", "originate_tls",
};

/* Is a node null or an empty sequence? */
static int
empty_list(yaml_node_t *n)
{
	return pol_yaml_is_null(n) || pol_yaml_is_empty_list(n);
}

/* A non-empty list of CIDRs; fills out[] and returns how many, 0 on error. */
static size_t
read_sources(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *list,
    struct pol_cidr *out)
{
	char qb[POL_QUOTE_BUF];
	size_t n = 0;
	unsigned before = cx->errors;

	if (empty_list(list)) {
		/* An empty list would read as "any client": say so instead. */
		ydoc_error(cx, list, "sources must not be empty (leave it out "
		    "for any client)");
		return 0;
	}
	if (ydoc_is_sequence(cx, list, "sources") < 0)
		return 0;
	YDOC_FOREACH_ITEM(doc, list, it) {
		yaml_node_t *item = YDOC_NODE(doc, *it);
		const char *text;

		if (ydoc_scalar(cx, item, "a source", &text) < 0)
			continue;
		if (n == MAX_SOURCES) {
			ydoc_error(cx, item, "too many sources (at most %d)",
			    MAX_SOURCES);
			break;
		}
		if (pol_cidr_parse(text, &out[n]) < 0) {
			ydoc_error(cx, item, "bad source '%s': expected an address "
			    "or a CIDR such as 10.8.0.0/16, with no host bits set",
			    pol_quote(text, qb, sizeof(qb)));
			continue;
		}
		n++;
	}
	return cx->errors == before ? n : 0;
}

void
pol_rule_at(struct pol_rule *r, const char *pattern, const yaml_node_t *n)
{
	r->pattern = pattern;
	r->line = (unsigned)n->start_mark.line + 1;
	r->col = (unsigned)n->start_mark.column + 1;
}

void
pol_loader_add(struct ydoc_ctx *cx, struct pol_loader *ld,
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

/* A rule's ports: absent for the default, else 1 to POL_MAX_PORTS. */
static void
read_rule_ports(struct ydoc_ctx *cx, yaml_document_t *doc,
    yaml_node_t *ports, struct pol_rule *r)
{
	uint16_t port;

	if (empty_list(ports)) {
		ydoc_error(cx, ports, "ports must not be empty "
		    "(leave it out for the default port)");
		return;
	}
	if (ydoc_is_sequence(cx, ports, "ports") < 0)
		return;
	YDOC_FOREACH_ITEM(doc, ports, it) {
		if (pol_read_port(cx, YDOC_NODE(doc, *it), &port) < 0)
			continue;
		if (r->nports == POL_MAX_PORTS) {
			ydoc_error(cx, ports, "too many ports (at most %d)",
			    POL_MAX_PORTS);
			return;
		}
		r->ports[r->nports++] = port;
	}
}

/* An allow rule's flag (allow_private, originate_tls); misplaced in a
 * deny rule. */
static void
read_allow_flag(struct ydoc_ctx *cx, enum pol_action action, yaml_node_t *key,
    yaml_node_t *val, const char *name, int *flag)
{
	if (val == NULL)
		return;
	if (action == POL_DENY)
		ydoc_error(cx, key, "%s is only valid in allow rules", name);
	else
		(void)ydoc_bool(cx, val, name, flag);
}

/* The rule r once for each of its host patterns. */
static void
read_rule_hosts(struct ydoc_ctx *cx, struct pol_loader *ld,
    yaml_document_t *doc, yaml_node_t *node, yaml_node_t *hosts,
    struct pol_rule *r)
{
	char pattern[POL_NAME_MAX + 3], qb[QUOTE_MAX + 16], hint[160];
	const char *text;

	if (hosts == NULL) {
		ydoc_error(cx, node, "missing required key 'hosts'");
		return;
	}
	if (empty_list(hosts)) {
		ydoc_error(cx, hosts, "hosts must not be empty");
		return;
	}
	if (ydoc_is_sequence(cx, hosts, "hosts") < 0)
		return;
	YDOC_FOREACH_ITEM(doc, hosts, it) {
		yaml_node_t *h = YDOC_NODE(doc, *it);

		if (ydoc_scalar(cx, h, "host pattern", &text) < 0)
			continue;
		if (pol_pattern_parse(text, &r->kind, pattern, sizeof(pattern),
		    hint, sizeof(hint)) < 0) {
			ydoc_error(cx, h, "bad host pattern '%s': %s",
			    pol_quote(text, qb, sizeof(qb)), hint);
			continue;
		}
		/* Once anything is wrong no snapshot is built: skip the work. */
		if (cx->errors != 0)
			continue;
		pol_rule_at(r, pattern, h);
		pol_loader_add(cx, ld, r);
	}
	r->pattern = NULL;
}

static void
read_rule(struct ydoc_ctx *cx, struct pol_loader *ld, yaml_document_t *doc,
    yaml_node_t *node, enum pol_action action, size_t index)
{
	yaml_node_t *vals[K_COUNT], *keys[K_COUNT];
	char what[32], defname[32];
	struct pol_cidr sources[MAX_SOURCES];
	struct pol_rule r;
	uint16_t ports_buf[POL_MAX_PORTS];
	const char *listname = pol_action_str(action);

	snprintf(what, sizeof(what), "%s[%zu]", listname, index);
	if (ydoc_is_mapping(cx, node, what) < 0)
		return;
	/* "allow_private" is read in deny rules only to say it is misplaced. */
	read_keys(cx, doc, node, rule_keys, K_COUNT,
	    action == POL_ALLOW ? "hosts, ports, name, sources, allow_private, "
	    "originate_tls" : "hosts, ports, name, sources", vals, keys);
	memset(&r, 0, sizeof(r));
	r.ports = ports_buf;
	r.action = action;
	r.file = cx->file;
	r.origin = "native";
	r.resolution = POL_RES_DNS;
	r.mode = ld->opts->mode;        /* the file's own mode comes later */
	snprintf(defname, sizeof(defname), "%s[%zu]", listname, index);
	r.name = defname;

	if (vals[K_NAME] != NULL && ydoc_scalar(cx, vals[K_NAME], "name", &r.name) == 0) {
		if (r.name[0] == '\0')
			ydoc_error(cx, vals[K_NAME], "name must not be empty");
		else if (strlen(r.name) > RULE_NAME_MAX)
			ydoc_error(cx, vals[K_NAME], "name is longer than %d characters",
			    RULE_NAME_MAX);
	}
	read_allow_flag(cx, action, keys[K_ALLOW_PRIVATE], vals[K_ALLOW_PRIVATE],
	    "allow_private", &r.allow_private);
	read_allow_flag(cx, action, keys[K_ORIGINATE_TLS], vals[K_ORIGINATE_TLS],
	    "originate_tls", &r.originate_tls);
	if (vals[K_SOURCES] != NULL) {
		r.nsources = read_sources(cx, doc, vals[K_SOURCES], sources);
		r.sources = sources;
	}
	if (vals[K_PORTS] != NULL)
		read_rule_ports(cx, doc, vals[K_PORTS], &r);
	read_rule_hosts(cx, ld, doc, node, vals[K_HOSTS], &r);
}

static void
read_rule_list(struct ydoc_ctx *cx, struct pol_loader *ld, yaml_document_t *doc,
    yaml_node_t *list, enum pol_action action)
{
	size_t index = 0;

	if (pol_yaml_is_null(list))
		return;
	if (ydoc_is_sequence(cx, list, pol_action_str(action)) < 0)
		return;
	YDOC_FOREACH_ITEM(doc, list, it)
		read_rule(cx, ld, doc, YDOC_NODE(doc, *it), action, index++);
}

/*
 * "mode: report|enforce" in any native document of a file sets the mode of
 * every rule of that file, Istio resources included: a team can trial a
 * whole file. Two documents of one file that disagree are an error.
 */
static void
read_file_mode(struct ydoc_ctx *cx, struct pol_loader *ld, yaml_node_t *n)
{
	char qb[POL_QUOTE_BUF];
	const char *text;
	int mode;

	if (ydoc_scalar(cx, n, "mode", &text) < 0)
		return;
	if (strcmp(text, "enforce") == 0) {
		mode = POL_MODE_ENFORCE;
	} else if (strcmp(text, "report") == 0) {
		mode = POL_MODE_REPORT;
	} else {
		ydoc_error(cx, n, "mode must be enforce or report, not '%s'",
		    pol_quote(text, qb, sizeof(qb)));
		return;
	}
	if (ld->file_mode >= 0 && ld->file_mode != mode) {
		ydoc_error(cx, n, "mode %s contradicts mode %s at line %u of "
		    "this file", text, pol_mode_str((enum pol_mode)ld->file_mode),
		    ld->file_mode_line);
		return;
	}
	ld->file_mode = mode;
	ld->file_mode_line = (unsigned)n->start_mark.line + 1;
}

static void
read_document(struct ydoc_ctx *cx, yaml_document_t *doc, yaml_node_t *root,
    void *arg)
{
	static const char *const top_keys[] = { "allow", "deny", "mode" };
	struct pol_loader *ld = arg;
	yaml_node_t *vals[3], *keys[3];

	if (root == NULL)
		return;
	if (ydoc_is_mapping(cx, root, "a policy document") < 0)
		return;
	YDOC_FOREACH_PAIR(doc, root, p) {
		const char *ks = ydoc_text(YDOC_NODE(doc, p->key));

		if (ks != NULL && strcmp(ks, "kind") == 0) {
			pol_k8s_read(cx, ld, doc, root);
			return;
		}
	}
	read_keys(cx, doc, root, top_keys, 3, "allow, deny, mode", vals, keys);
	if (vals[2] != NULL)
		read_file_mode(cx, ld, vals[2]);
	if (vals[0] != NULL)
		read_rule_list(cx, ld, doc, vals[0], POL_ALLOW);
	if (vals[1] != NULL)
		read_rule_list(cx, ld, doc, vals[1], POL_DENY);
}

static struct pol_snapshot *
finish(struct pol_loader *ld, unsigned errors, pol_report_fn report, void *arg)
{
	struct ydoc_ctx cx = { .file = NULL, .report = report, .arg = arg };

	pol_k8s_finish(&cx, ld, errors != 0 || ld->oom);
	errors += cx.errors;
	ld->snap->mode = ld->opts->mode;
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

static void
begin_file(struct pol_loader *ld)
{
	ld->file_first = pol_snapshot_rule_count(ld->snap);
	ld->file_mode = -1;
}

/* The file's mode covers every rule it contributed, whatever the order. */
static void
end_file(struct ydoc_ctx *cx, struct pol_loader *ld)
{
	size_t n = pol_snapshot_rule_count(ld->snap);

	pol_k8s_end_file(cx, ld);
	if (ld->file_mode < 0)
		return;
	for (size_t i = ld->file_first; i < n; i++) {
		ld->snap->rules[i].mode = (enum pol_mode)ld->file_mode;
		ld->snap->rules[i].trial = ld->file_mode == POL_MODE_REPORT;
	}
}

struct pol_snapshot *
pol_load_buffer(const char *name, const char *text, size_t len,
    pol_report_fn report, void *arg)
{
	static const struct pol_load_opts defaults;
	struct ydoc_ctx cx = {
		.file = name != NULL ? name : "<buffer>",
		.report = report,
		.arg = arg,
	};
	struct pol_loader ld = { .snap = pol_snap_new(), .opts = &defaults };

	if (ld.snap == NULL) {
		ydoc_error(&cx, NULL, "out of memory loading the policy");
		return NULL;
	}
	begin_file(&ld);
	(void)ydoc_parse_buffer(&cx, text != NULL ? text : "", text != NULL ? len : 0,
	    read_document, &ld);
	end_file(&cx, &ld);
	return finish(&ld, cx.errors, report, arg);
}

const struct pol_namespace *
pol_loader_namespace(const struct pol_loader *ld, const char *name)
{
	for (size_t i = 0; i < ld->opts->nnamespaces; i++)
		if (strcmp(ld->opts->namespaces[i].name, name) == 0)
			return &ld->opts->namespaces[i];
	return NULL;
}

static int
has_yaml_suffix(const char *name)
{
	size_t n = strlen(name);

	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	    (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
load_file(struct pol_loader *ld, const char *path, pol_report_fn report,
    void *arg, unsigned *errors)
{
	struct ydoc_ctx cx = { .file = path, .report = report, .arg = arg };

	begin_file(ld);
	(void)ydoc_parse_file(&cx, path, read_document, ld);
	end_file(&cx, ld);
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
static size_t
load_dir(struct pol_loader *ld, const char *dir, pol_report_fn report,
    void *arg, unsigned *errors)
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

struct pol_snapshot *
pol_load(const char *const *paths, size_t npaths, const char *base_dir,
    pol_report_fn report, void *arg)
{
	struct pol_load_opts opts = { .base_dir = base_dir };

	return pol_load_ex(paths, npaths, &opts, report, arg);
}

struct pol_snapshot *
pol_load_ex(const char *const *paths, size_t npaths,
    const struct pol_load_opts *opts, pol_report_fn report, void *arg)
{
	static const struct pol_load_opts defaults;
	struct ydoc_ctx cx = { .file = NULL, .report = report, .arg = arg };
	struct pol_loader ld = { .snap = pol_snap_new(),
	    .opts = opts != NULL ? opts : &defaults };
	const char *base_dir = ld.opts->base_dir;
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

/*
 * egressctl check: validate allow-lists the way the daemon loads them, show
 * how every rule was read, and point at rules that do not do what their
 * author probably meant:
 *
 *   duplicate   the same pattern, action and sources again, on overlapping
 *               ports: harmless, but one copy gets edited and the other not;
 *   shadowed    an allow rule that a deny rule covers entirely (pattern,
 *               every port, every source): deny wins, so it never allows;
 *   wide        an allow pattern that admits a whole public suffix ("*",
 *               "*.com", ".co.uk", "*.github.io"), or every one below a
 *               domain ("*.amazonaws.com"): almost certainly not an
 *               allow-list. The Public Suffix List decides (tools/psl.h);
 *               with no list at all such patterns are errors, not passed;
 *   namespace   Istio scoping (exportTo, Sidecar) needs the daemon's
 *               namespaces: map; the loader warns when there is none, and
 *               without -c CONFIG a notice says no map was used.
 *
 * The loader's own diagnostics come first, then one line per rule with its
 * findings under it, then a one-line summary.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "gateway/gwconfig.h"
#include "policy/policy.h"
#include "tools/ctl.h"
#include "tools/psl.h"

struct check {
	struct ctl_diag diag;
	int quiet;
	int have_config;        /* -c: the daemon's mode and namespaces: map */
	const struct pol_snapshot *snap;
	size_t nrules;
	const struct pol_rule **rules;  /* by index, rule order */
	size_t *dup_of;         /* index of the first earlier duplicate, or SIZE_MAX */
	size_t *shadow_by;      /* index of the first deny that shadows, or SIZE_MAX */
	struct ctl_psl *psl;    /* what "very wide" is measured with */
};

static void
check_usage(FILE *f)
{
	fprintf(f,
	    "usage: egressctl check [--quiet] FILE|DIR...\n"
	    "       egressctl check [--quiet] -c CONFIG\n"
	    "\n"
	    "  -c, --config CONFIG  check the daemon configuration and every policy\n"
	    "                       file it names, with its mode and namespaces: map\n"
	    "  -q, --quiet          print only diagnostics (no rules, no summary)\n"
	    "  -h, --help           print this help\n"
	    "\n"
	    "A directory contributes its *.yaml and *.yml files in name order.\n"
	    "Wildcards are weighed with the Public Suffix List of the publicsuffix\n"
	    "package (" CTL_PSL_ENV " names another list file).\n"
	    "Exit status: 0 valid (warnings allowed), 1 errors, 2 usage.\n");
}

static int
has_yaml_suffix(const char *name)
{
	size_t n = strlen(name);

	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
	    (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

/*
 * How many files the loader reads for these paths: the same walk as
 * policy/load.c (a directory's *.yaml and *.yml entries, not dot-files,
 * not subdirectories). A path that cannot be read still counts: it is
 * one of the files the summary is about.
 */
static size_t
count_files(char *const *paths, size_t npaths)
{
	size_t files = 0;

	for (size_t i = 0; i < npaths; i++) {
		struct dirent *de;
		struct stat st;
		DIR *d;

		if (stat(paths[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
			files++;
			continue;
		}
		d = opendir(paths[i]);
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			char *p;

			if (de->d_name[0] == '.' || !has_yaml_suffix(de->d_name))
				continue;
			if (asprintf(&p, "%s/%s", paths[i], de->d_name) < 0)
				break;
			if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
				files++;
			free(p);
		}
		closedir(d);
	}
	return files;
}

static const char *
plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* ------------------------------------------------------------------ */
/* Port and source sets. */

/* The ports an allow rule without ports admits, whatever the protocol. */
static const uint16_t default_ports[] = { 443, 80 };

/* Ports a rule applies to; NULL with *n = 0 means every port. */
static const uint16_t *
rule_port_list(const struct pol_rule *r, size_t *n)
{
	if (r->nports > 0) {
		*n = r->nports;
		return r->ports;
	}
	if (r->action == POL_DENY) {
		*n = 0;
		return NULL;
	}
	*n = sizeof(default_ports) / sizeof(default_ports[0]);
	return default_ports;
}

static int
rule_applies_to_port(const struct pol_rule *r, uint16_t port)
{
	size_t n;
	const uint16_t *p = rule_port_list(r, &n);

	if (p == NULL)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (p[i] == port)
			return 1;
	return 0;
}

static int
ports_overlap(const struct pol_rule *a, const struct pol_rule *b)
{
	size_t n;
	const uint16_t *p = rule_port_list(a, &n);

	if (p == NULL)
		return 1;       /* every port: b has at least one */
	for (size_t i = 0; i < n; i++)
		if (rule_applies_to_port(b, p[i]))
			return 1;
	return 0;
}

/* Every port of a is a port of d. */
static int
ports_cover(const struct pol_rule *d, const struct pol_rule *a)
{
	size_t n;
	const uint16_t *p = rule_port_list(a, &n);

	if (rule_port_list(d, &(size_t){ 0 }) == NULL)
		return 1;
	if (p == NULL)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!rule_applies_to_port(d, p[i]))
			return 0;
	return 1;
}

/* The same clients, in either form (policy/cidr.c counts an IPv4 range and
 * its IPv4-mapped form as one). */
static int
cidr_equal(const struct pol_cidr *a, const struct pol_cidr *b)
{
	return pol_cidr_within(a, b) && pol_cidr_within(b, a);
}

static int
sources_equal(const struct pol_rule *a, const struct pol_rule *b)
{
	if (a->nsources != b->nsources)
		return 0;
	for (size_t i = 0; i < a->nsources; i++) {
		size_t j;

		for (j = 0; j < b->nsources; j++)
			if (cidr_equal(&a->sources[i], &b->sources[j]))
				break;
		if (j == b->nsources)
			return 0;
	}
	return 1;
}

/* Every client a applies to, d applies to. */
static int
sources_cover(const struct pol_rule *d, const struct pol_rule *a)
{
	if (d->nsources == 0)
		return 1;
	if (a->nsources == 0)
		return 0;
	for (size_t i = 0; i < a->nsources; i++) {
		size_t j;

		for (j = 0; j < d->nsources; j++)
			if (pol_cidr_within(&a->sources[i], &d->sources[j]))
				break;
		if (j == d->nsources)
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ */
/* Patterns. */

/* name is suffix itself or a subdomain of it at any depth. */
static int
name_under(const char *name, const char *suffix, int or_equal)
{
	size_t n = strlen(name), s = strlen(suffix);

	if (n == s)
		return or_equal && strcmp(name, suffix) == 0;
	return n > s && name[n - s - 1] == '.' && strcmp(name + n - s, suffix) == 0;
}

/* Every name pattern a admits, pattern d admits too. */
static int
pattern_covers(const struct pol_rule *d, const struct pol_rule *a)
{
	switch (d->kind) {
	case POL_PAT_ANY:
		return 1;
	case POL_PAT_EXACT:
		return a->kind == POL_PAT_EXACT && strcmp(a->suffix, d->suffix) == 0;
	case POL_PAT_DOMAIN:
		/* .x.com admits x.com and everything under it */
		return a->kind != POL_PAT_ANY && name_under(a->suffix, d->suffix, 1);
	case POL_PAT_SUBDOMAINS:
		/* *.x.com: everything strictly under x.com */
		if (a->kind == POL_PAT_EXACT || a->kind == POL_PAT_DOMAIN)
			return name_under(a->suffix, d->suffix, 0);
		if (a->kind == POL_PAT_SUBDOMAINS)
			return name_under(a->suffix, d->suffix, 1);
		return 0;
	}
	return 0;
}

/*
 * How wide an allow pattern's names are: "*" is every name; "*.P" and
 * ".P" are too wide when P is a public suffix, by the same function
 * (tools/psl.h) that keeps --suggest from proposing such a wildcard. Here
 * only "*.P" and ".P" allow rules are weighed ("*" is reported apart;
 * deny rules are never too wide): any other rule is CTL_PSL_NARROW.
 */
static enum ctl_psl_width
rule_width(const struct check *ck, const struct pol_rule *r)
{
	if (r->action != POL_ALLOW ||
	    (r->kind != POL_PAT_SUBDOMAINS && r->kind != POL_PAT_DOMAIN))
		return CTL_PSL_NARROW;
	return ctl_psl_width(ck->psl, r->suffix);
}

/*
 * A wildcard admits names at any depth: over a registrable domain with
 * public suffixes below it ("*.amazonaws.com", ".amazonaws.com"), it
 * admits every name under those too (anyone's bucket.s3.amazonaws.com),
 * wider than "*.s3.amazonaws.com", which the private-section case flags.
 */
static void
covers_finding(struct check *ck, const struct pol_rule *r)
{
	const char *ex = "?";
	size_t k = ctl_psl_below(ck->psl, r->suffix, &ex);

	ctl_diagf(&ck->diag, POL_WARNING, r->file, r->line, r->col,
	    "very wide: allow '%s' (%s) admits every name under %zu public "
	    "suffix%s below '%s' (such as '%s': anyone can publish a name "
	    "under it); allow the names the workload needs instead",
	    r->pattern, r->name, k, k == 1 ? "" : "es", r->suffix, ex);
}

static void
wide_finding(struct check *ck, const struct pol_rule *r)
{
	struct ctl_diag *dg = &ck->diag;
	const char *p = r->pattern, *n = r->name, *s = r->suffix;

	if (r->action == POL_ALLOW && r->kind == POL_PAT_ANY) {
		ctl_diagf(dg, POL_WARNING, r->file, r->line, r->col,
		    "very wide: allow '*' (%s) admits any name: this is not an "
		    "allow-list; name the destinations instead", n);
		return;
	}
	switch (rule_width(ck, r)) {
	case CTL_PSL_NARROW:
		return;
	case CTL_PSL_TLD:
		ctl_diagf(dg, POL_WARNING, r->file, r->line, r->col,
		    "very wide: allow '%s' (%s) admits every name under a "
		    "top-level domain ('%s'); allow the organisation's own "
		    "domain instead", p, n, s);
		return;
	case CTL_PSL_ICANN:
		ctl_diagf(dg, POL_WARNING, r->file, r->line, r->col,
		    "very wide: allow '%s' (%s) admits every name under a public "
		    "suffix ('%s'); allow the organisation's own domain instead",
		    p, n, s);
		return;
	case CTL_PSL_PRIVATE:
		ctl_diagf(dg, POL_WARNING, r->file, r->line, r->col,
		    "very wide: allow '%s' (%s) admits every name under a public "
		    "suffix ('%s', of the list's private section: anyone can "
		    "publish a name under it); allow the organisation's own name "
		    "under it instead", p, n, s);
		return;
	case CTL_PSL_COVERS:
		covers_finding(ck, r);
		return;
	case CTL_PSL_UNKNOWN:
		/* Fail closed: a wildcard nobody could weigh is not accepted. */
		ctl_diagf(dg, POL_ERROR, r->file, r->line, r->col,
		    "no suffix list: cannot tell whether allow '%s' (%s) admits "
		    "every name under a public suffix: no public suffix list "
		    "could be loaded; install the publicsuffix package", p, n);
		return;
	}
}

/*
 * Say once, before the rules, which list is missing: the package's (a
 * notice: libpsl's builtin copy stands in, frozen when libpsl was built)
 * or every list (then only when a rule needs one). The no-list line is
 * not counted as an error: each rule it leaves unweighed is.
 */
static void
psl_notice(struct check *ck)
{
	const char *src = ctl_psl_source(ck->psl), *why = ctl_psl_problem(ck->psl);
	char msg[2048];

	if (src != NULL) {
		if (why != NULL)
			ctl_diagf(&ck->diag, POL_NOTICE, "egressctl check",
			    0, 0, "public suffix list: %s; using %s instead: "
			    "install the publicsuffix package, whose list apt "
			    "keeps current", why, src);
		if (ctl_psl_below_source(ck->psl) == NULL)
			ctl_diagf(&ck->diag, POL_NOTICE, "egressctl check",
			    0, 0, "public suffix list: %s has no text to search "
			    "for public suffixes below a wildcard's domain: "
			    "'*.NAME' is weighed by NAME alone; name the list's "
			    ".dat in %s", src, CTL_PSL_ENV);
		return;
	}
	for (size_t i = 0; i < ck->nrules; i++) {
		if (rule_width(ck, ck->rules[i]) != CTL_PSL_UNKNOWN)
			continue;
		snprintf(msg, sizeof(msg), "no public suffix list: %s: allow "
		    "rules '*.NAME' and '.NAME' cannot be checked and are "
		    "errors; install the publicsuffix package", why != NULL ?
		    why : "none loaded");
		ctl_report(NULL, POL_ERROR, "egressctl check", 0, 0, msg);
		return;
	}
}

/* ------------------------------------------------------------------ */

static int
cmp_rules(const void *pa, const void *pb, void *arg)
{
	const struct check *ck = arg;
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	const struct pol_rule *ra = ck->rules[a], *rb = ck->rules[b];
	int c = strcmp(ra->pattern, rb->pattern);

	if (c != 0)
		return c;
	if (ra->action != rb->action)
		return ra->action < rb->action ? -1 : 1;
	return a < b ? -1 : a > b;
}

/*
 * Only rules of one origin are compared: Istio's idiom names each host in
 * a ServiceEntry and again in the VirtualService that routes it through
 * the gateway, and that pairing is not a mistake worth a warning.
 */
static int
is_duplicate(const struct pol_rule *a, const struct pol_rule *b)
{
	return a->action == b->action && a->kind == b->kind &&
	    strcmp(a->pattern, b->pattern) == 0 &&
	    ctl_str_eq(a->origin, b->origin) && ctl_str_eq(a->ns, b->ns) &&
	    ports_overlap(a, b) && sources_equal(a, b);
}

/*
 * Duplicates: sort rule indices by (pattern, action, index), then compare
 * within each run. Each later rule names the first earlier one it repeats.
 */
static void
find_duplicates(struct check *ck)
{
	size_t n = ck->nrules, *ord;

	ord = calloc(n ? n : 1, sizeof(*ord));
	if (ord == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		ord[i] = i;
	qsort_r(ord, n, sizeof(*ord), cmp_rules, ck);
	for (size_t s = 0; s < n;) {
		size_t e = s + 1;

		while (e < n && strcmp(ck->rules[ord[e]]->pattern,
		    ck->rules[ord[s]]->pattern) == 0 &&
		    ck->rules[ord[e]]->action == ck->rules[ord[s]]->action)
			e++;
		for (size_t i = s + 1; i < e; i++)
			for (size_t j = s; j < i; j++)
				if (is_duplicate(ck->rules[ord[j]], ck->rules[ord[i]])) {
					ck->dup_of[ord[i]] = ord[j];
					break;
				}
		s = e;
	}
	free(ord);
}

/*
 * Shadowed allow rules: deny rules are few next to allow rules in real
 * policies, so this is allow x deny, not all pairs.
 */
static void
find_shadows(struct check *ck)
{
	size_t n = ck->nrules, ndeny = 0, *deny;

	deny = calloc(n ? n : 1, sizeof(*deny));
	if (deny == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		if (ck->rules[i]->action == POL_DENY)
			deny[ndeny++] = i;
	for (size_t i = 0; i < n && ndeny > 0; i++) {
		const struct pol_rule *a = ck->rules[i];

		if (a->action != POL_ALLOW)
			continue;
		for (size_t k = 0; k < ndeny; k++) {
			const struct pol_rule *d = ck->rules[deny[k]];

			if (pattern_covers(d, a) && ports_cover(d, a) &&
			    sources_cover(d, a)) {
				ck->shadow_by[i] = deny[k];
				break;
			}
		}
	}
	free(deny);
}

static void
print_rule(const struct pol_rule *r)
{
	char meaning[512], ports[POL_MAX_PORTS * 8 + 64], sources[2048];

	pol_pattern_describe(r->kind, r->suffix, meaning, sizeof(meaning));
	ctl_ports_str(r, ports, sizeof(ports));
	ctl_sources_str(r, sources, sizeof(sources));
	printf("%s:%u: %s %s (%s, %s", r->file, r->line,
	    pol_action_str(r->action), r->pattern, r->name,
	    r->origin != NULL ? r->origin : "native");
	if (r->ns != NULL)
		printf(", namespace %s", r->ns);
	printf("): %s; ports %s", meaning, ports);
	if (r->action == POL_ALLOW)
		printf("; resolution %s", pol_resolution_str(r->resolution));
	if (r->nendpoints > 0) {
		printf("; endpoints ");
		for (size_t i = 0; i < r->nendpoints; i++) {
			printf("%s%s", i > 0 ? ", " : "", r->endpoints[i].address);
			if (r->endpoints[i].port != 0)
				printf(" port %u", (unsigned)r->endpoints[i].port);
		}
	}
	printf("; sources %s; mode %s", sources, pol_mode_str(r->mode));
	if (r->action == POL_ALLOW)
		printf("; allow_private %s; originate_tls %s",
		    r->allow_private ? "yes" : "no", r->originate_tls ? "yes" : "no");
	printf("\n");
}

static void
rule_findings(struct check *ck, size_t i)
{
	const struct pol_rule *r = ck->rules[i], *o;
	struct ctl_diag *dg = &ck->diag;

	if (ck->dup_of[i] != SIZE_MAX) {
		o = ck->rules[ck->dup_of[i]];
		ctl_diagf(dg, POL_WARNING, r->file, r->line, r->col,
		    "duplicate: %s '%s' (%s) repeats %s:%u (%s): same pattern, "
		    "action and sources, overlapping ports; remove one",
		    pol_action_str(r->action), r->pattern, r->name, o->file,
		    o->line, o->name);
	}
	if (ck->shadow_by[i] != SIZE_MAX) {
		o = ck->rules[ck->shadow_by[i]];
		/* A report-mode deny only marks what the allow admits. */
		if (o->mode == POL_MODE_REPORT && r->mode == POL_MODE_ENFORCE)
			ctl_diagf(dg, POL_WARNING, r->file, r->line, r->col,
			    "shadowed when enforced: allow '%s' (%s) still "
			    "admits, but every connection it admits is "
			    "would_deny: report-mode deny '%s' at %s:%u (%s) "
			    "covers it on all its ports%s; once that file is "
			    "enforced this rule never allows anything",
			    r->pattern, r->name, o->pattern, o->file, o->line,
			    o->name, r->nsources > 0 ? " and sources" : "");
		else
			ctl_diagf(dg, POL_WARNING, r->file, r->line, r->col,
			    "shadowed: allow '%s' (%s) never allows anything: "
			    "deny '%s' at %s:%u (%s) covers it on all its "
			    "ports%s and deny rules win", r->pattern, r->name,
			    o->pattern, o->file, o->line, o->name,
			    r->nsources > 0 ? " and sources" : "");
	}
	wide_finding(ck, r);
}

/*
 * Namespace scoping needs the daemon's namespaces: map. The loader itself
 * warns, once, where a resource asks for scoping it cannot enforce
 * (exportTo, Sidecar); checked without -c there is no map to use at all,
 * so say once that the result is the daemon's only if it has none either.
 */
static void
namespace_notice(struct check *ck)
{
	if (ck->have_config)
		return;
	for (size_t i = 0; i < ck->nrules; i++) {
		const struct pol_rule *r = ck->rules[i];

		if (r->ns == NULL || ctl_str_eq(r->origin, "native"))
			continue;
		ctl_diagf(&ck->diag, POL_NOTICE, r->file, r->line, r->col,
		    "%s %s is in namespace %s: checked without -c CONFIG, "
		    "namespace scoping is read as by a daemon with no "
		    "namespaces: map (every client); check with -c CONFIG to "
		    "use the daemon's map", r->origin, r->name, r->ns);
		return;
	}
}

static void
summary(const struct check *ck, size_t files, const char *what)
{
	const struct ctl_diag *d = &ck->diag;

	if (ck->quiet)
		return;
	fflush(stderr);
	if (ck->snap != NULL)
		printf("%zu %s, %zu %s, %u %s, %u %s\n", files,
		    plural(files, "file", "files"), ck->nrules,
		    plural(ck->nrules, "rule", "rules"), d->errors,
		    plural(d->errors, "error", "errors"), d->warnings,
		    plural(d->warnings, "warning", "warnings"));
	else
		printf("%zu %s, %u %s, %u %s: the %s does not load\n", files,
		    plural(files, "file", "files"), d->errors,
		    plural(d->errors, "error", "errors"), d->warnings,
		    plural(d->warnings, "warning", "warnings"), what);
}

/* Every finding of a loaded snapshot, the rules printed unless quiet. */
static int
check_rules(struct check *ck, struct pol_snapshot *snap)
{
	size_t n = pol_snapshot_rule_count(snap);

	ck->snap = snap;
	ck->nrules = n;
	ck->rules = calloc(n ? n : 1, sizeof(*ck->rules));
	ck->dup_of = calloc(n ? n : 1, sizeof(*ck->dup_of));
	ck->shadow_by = calloc(n ? n : 1, sizeof(*ck->shadow_by));
	if (ck->rules == NULL || ck->dup_of == NULL || ck->shadow_by == NULL) {
		fprintf(stderr, "egressctl: out of memory\n");
		return -1;
	}
	for (size_t i = 0; i < ck->nrules; i++) {
		ck->rules[i] = pol_snapshot_rule(snap, i);
		ck->dup_of[i] = ck->shadow_by[i] = SIZE_MAX;
	}
	find_duplicates(ck);
	find_shadows(ck);
	ck->psl = ctl_psl_open();
	if (ck->psl == NULL) {
		fprintf(stderr, "egressctl: out of memory\n");
		return -1;
	}
	psl_notice(ck);
	for (size_t i = 0; i < ck->nrules; i++) {
		if (!ck->quiet)
			print_rule(ck->rules[i]);
		rule_findings(ck, i);
	}
	namespace_notice(ck);
	return 0;
}

int
ctl_check_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct check ck;
	struct gw_config *cfg = NULL;
	struct pol_load_opts lopts;
	struct pol_snapshot *snap = NULL;
	const char *config = NULL;
	char *const *paths;
	size_t npaths, files;
	int ch, rc = CTL_EXIT_FAIL;

	memset(&ck, 0, sizeof(ck));
	memset(&lopts, 0, sizeof(lopts));
	optind = 0;
	while ((ch = getopt_long(argc, argv, "c:qh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'q':
			ck.quiet = 1;
			break;
		case 'h':
			check_usage(stdout);
			return CTL_EXIT_OK;
		default:
			check_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if ((config == NULL) == (optind == argc)) {
		fprintf(stderr, "egressctl check: give policy files or "
		    "directories, or -c CONFIG%s\n\n", config != NULL ?
		    ", not both" : "");
		check_usage(stderr);
		return CTL_EXIT_USAGE;
	}

	if (config != NULL) {
		ck.have_config = 1;
		cfg = gw_config_load(config, ctl_report, &ck.diag);
		if (cfg == NULL) {
			summary(&ck, 1, "configuration");
			return CTL_EXIT_FAIL;
		}
		gw_config_policy_opts(cfg, &lopts);
		paths = cfg->policy_paths;
		npaths = cfg->npolicy;
	} else {
		paths = argv + optind;
		npaths = (size_t)(argc - optind);
	}
	files = count_files(paths, npaths) + (config != NULL);

	snap = pol_load_ex((const char *const *)paths, npaths, &lopts,
	    ctl_report, &ck.diag);
	if (snap == NULL) {
		summary(&ck, files, "policy");
		goto out;
	}
	if (check_rules(&ck, snap) < 0)
		goto out;
	fflush(stdout);
	summary(&ck, files, "policy");
	rc = ck.diag.errors > 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
out:
	free(ck.rules);
	free(ck.dup_of);
	free(ck.shadow_by);
	ctl_psl_close(ck.psl);
	pol_snapshot_unref(snap);
	gw_config_free(cfg);
	return rc;
}

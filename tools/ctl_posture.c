/*
 * egressctl posture: every way a pod can get around the gateway, from a
 * cluster's manifests (docs/posture.md). The engine is posture/; this is
 * the command line: which files, which format, which exit status.
 *
 *   egressctl posture [--format text|json] [--gateway NAMESPACE/NAME] FILE|DIR|- ...
 *
 * A directory contributes its *.yaml, *.yml and *.json files, and those of
 * its subdirectories, in name order (dot files skipped); "-" is standard
 * input. Exit 0 nothing found, 1 findings, 2 usage or unusable input.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posture/posture.h"
#include "tools/ctl.h"

#define STDIN_MAX (16u * 1024 * 1024)
#define DIR_DEPTH 16

static void
posture_usage(FILE *f)
{
	fprintf(f,
	    "usage: egressctl posture [--format text|json] [--gateway NAMESPACE/NAME]\n"
	    "                         FILE|DIR|- ...\n"
	    "\n"
	    "Reads Kubernetes and Istio manifests (kubectl get -A -o yaml output,\n"
	    "multi-document files, directories of either; - for standard input)\n"
	    "and reports every way a pod can reach the internet without the\n"
	    "gateway, one finding a line:\n"
	    "  file:line: severity: code: Kind namespace/name: message (fix: ...)\n"
	    "\n"
	    "  -f, --format FORMAT  text (default) or json (a list of objects)\n"
	    "  -g, --gateway NS/NAME  the gateway's workload (default egress/egressd)\n"
	    "  -h, --help           print this help\n"
	    "\n"
	    "Exit status: 0 nothing found, 1 findings, 2 usage error or unusable\n"
	    "input (reported as file:line:column). docs/posture.md lists the codes.\n");
}

static int
wanted_file(const char *name)
{
	size_t n = strlen(name);
	static const char *const ext[] = { ".yaml", ".yml", ".json" };

	if (name[0] == '.')
		return 0;
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		size_t e = strlen(ext[i]);

		if (n > e && strcmp(name + n - e, ext[i]) == 0)
			return 1;
	}
	return 0;
}

static int
name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int load_path(struct pst_cluster *c, const char *path, int depth,
    struct ctl_diag *d);

static int
load_dir(struct pst_cluster *c, const char *path, int depth, struct ctl_diag *d)
{
	struct dirent **ents;
	int n, rc = 0;

	if (depth > DIR_DEPTH) {
		ctl_diagf(d, POL_ERROR, path, 0, 0, "directories nested too deep");
		return -1;
	}
	n = scandir(path, &ents, NULL, name_cmp);
	if (n < 0) {
		ctl_diagf(d, POL_ERROR, path, 0, 0, "cannot read: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char sub[4096];
		struct stat st;
		const char *name = ents[i]->d_name;

		/* Every file is read, so every problem is reported at once. */
		if (name[0] != '.' &&
		    snprintf(sub, sizeof(sub), "%s/%s", path, name) < (int)sizeof(sub) &&
		    stat(sub, &st) == 0 &&
		    (S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && wanted_file(name))) &&
		    load_path(c, sub, depth + 1, d) < 0)
			rc = -1;
		free(ents[i]);
	}
	free(ents);
	return rc;
}

static int
load_stdin(struct pst_cluster *c, struct ctl_diag *d)
{
	char *buf = malloc(STDIN_MAX + 1);
	size_t len = 0, got;
	int rc;

	if (buf == NULL) {
		ctl_diagf(d, POL_ERROR, "-", 0, 0, "out of memory");
		return -1;
	}
	while ((got = fread(buf + len, 1, STDIN_MAX + 1 - len, stdin)) > 0) {
		len += got;
		if (len > STDIN_MAX)
			break;
	}
	if (ferror(stdin) || len > STDIN_MAX) {
		ctl_diagf(d, POL_ERROR, "-", 0, 0, ferror(stdin) ? "cannot read "
		    "standard input" : "standard input is larger than 16 MiB");
		free(buf);
		return -1;
	}
	rc = pst_load_buffer(c, "-", buf, len, ctl_report, d);
	free(buf);
	return rc;
}

static int
load_path(struct pst_cluster *c, const char *path, int depth, struct ctl_diag *d)
{
	struct stat st;

	if (strcmp(path, "-") == 0)
		return load_stdin(c, d);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return load_dir(c, path, depth, d);
	return pst_load_file(c, path, ctl_report, d);
}

static void
print_text(const struct pst_cluster *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct pst_finding *f = pst_finding(c, i);

		printf("%s:%u: %s: %s: %s %s/%s: %s (fix: %s)\n", f->file, f->line,
		    pst_severity_str(f->severity), pst_code_str(f->code), f->kind,
		    f->ns, f->name, f->message, f->fix);
	}
}

static void
json_field(const char *key, const char *val, int last)
{
	printf("\"%s\":", key);
	ctl_json_str(stdout, val);
	if (!last)
		putchar(',');
}

static void
print_json(const struct pst_cluster *c, size_t n)
{
	printf("[");
	for (size_t i = 0; i < n; i++) {
		const struct pst_finding *f = pst_finding(c, i);

		printf("%s\n{", i > 0 ? "," : "");
		json_field("code", pst_code_str(f->code), 0);
		json_field("severity", pst_severity_str(f->severity), 0);
		json_field("kind", f->kind, 0);
		json_field("namespace", f->ns, 0);
		json_field("name", f->name, 0);
		json_field("file", f->file, 0);
		printf("\"line\":%u,", f->line);
		json_field("message", f->message, 0);
		json_field("fix", f->fix, 1);
		printf("}");
	}
	printf("%s]\n", n > 0 ? "\n" : "");
}

int
ctl_posture_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "gateway", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *gateway = "egress/egressd";
	struct ctl_diag diag = { 0, 0, 0 };
	struct pst_cluster *c;
	int json = 0, ch, bad = 0;
	long n;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "f:g:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (strcmp(optarg, "text") != 0 && strcmp(optarg, "json") != 0) {
				fprintf(stderr, "egressctl posture: --format '%s': give "
				    "text or json\n", optarg);
				return CTL_EXIT_USAGE;
			}
			json = strcmp(optarg, "json") == 0;
			break;
		case 'g':
			gateway = optarg;
			break;
		case 'h':
			posture_usage(stdout);
			return CTL_EXIT_OK;
		default:
			posture_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		fprintf(stderr, "egressctl posture: no FILE, DIR or - given\n\n");
		posture_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	c = pst_new(gateway);
	if (c == NULL) {
		fprintf(stderr, "egressctl posture: --gateway '%s': give "
		    "NAMESPACE/NAME, e.g. egress/egressd\n", gateway);
		return CTL_EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++)
		if (load_path(c, argv[i], 0, &diag) < 0)
			bad = 1;
	if (bad || diag.errors > 0) {
		fprintf(stderr, "egressctl posture: the input is unusable (%u %s)\n",
		    diag.errors, diag.errors == 1 ? "error" : "errors");
		pst_free(c);
		return CTL_EXIT_USAGE;
	}
	n = pst_check(c, ctl_report, &diag);
	if (n < 0) {
		fprintf(stderr, "egressctl posture: out of memory\n");
		pst_free(c);
		return CTL_EXIT_USAGE;
	}
	if (json)
		print_json(c, (size_t)n);
	else
		print_text(c, (size_t)n);
	pst_free(c);
	return n > 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

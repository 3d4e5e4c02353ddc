/*
 * egressctl: main, subcommand dispatch, and what the subcommands share.
 *
 *   egressctl check FILE|DIR...      validate allow-lists, show how each
 *   egressctl check -c CONFIG        rule was read, warn about dead and
 *                                    too-wide rules
 *   egressctl explain -c CONFIG NAME which rule decides NAME, and why
 *   egressctl denials LOG...         what was denied, grouped; suggestions
 *   egressctl audit -c CONFIG PCAP   what a capture's flows would get
 *   egressctl trace URL              follow a redirect chain, verdict per hop
 *   egressctl reasons                the reasons a log line or metric carries
 *   egressctl posture FILE|DIR|-...  the ways around the gateway a cluster's
 *                                    manifests leave open
 *
 * Exit statuses: 0 valid/allowed, 1 errors/denied, 2 usage or nothing
 * usable. Diagnostics go to stderr in the daemon's own format so editors
 * and CI annotations read both the same way.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/gwconfig.h"
#include "logging/log.h"
#include "tools/ctl.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: egressctl check [--quiet] FILE|DIR...\n"
	    "       egressctl check [--quiet] -c CONFIG\n"
	    "       egressctl explain -c CONFIG [--port N] [--src IP]\n"
	    "                         [--proto tls|http|connect]\n"
	    "                         [--listener tls|http|connect|transparent]\n"
	    "                         [--ech] [--format text|json] NAME[:PORT]\n"
	    "       egressctl denials [--since DURATION] [--format text|json]\n"
	    "                         [--suggest native|serviceentry] LOG...\n"
	    "       egressctl audit -c CONFIG [--format text|json] [--port-map A=B]...\n"
	    "                       [--dns-port N]... CAPTURE...\n"
	    "       egressctl trace [-c CONFIG] [--via HOST:PORT] [--cacert FILE]\n"
	    "                       [--resolve HOST:PORT:ADDR] [--max-hops N]\n"
	    "                       [--timeout SECONDS] [--method GET|HEAD]\n"
	    "                       [--format text|json] URL\n"
	    "       egressctl reasons [--format text|json|tsv]\n"
	    "       egressctl posture [--format text|json] [--gateway NAMESPACE/NAME]\n"
	    "                         FILE|DIR|-...\n"
	    "       egressctl --version | --help\n"
	    "\n"
	    "  check    validate policy files (or the daemon configuration and every\n"
	    "           policy file it names), print each rule as it was read, warn\n"
	    "           about duplicate, shadowed and very wide rules;\n"
	    "           exit 0 valid, 1 errors, 2 usage\n"
	    "  explain  decide NAME against the daemon's policy as egressd would and\n"
	    "           say which rule decided and why the other matching rules did\n"
	    "           not; exit 0 allowed, 1 denied (report mode too), 2 when the\n"
	    "           configuration or the name cannot be used\n"
	    "  denials  group the deny lines of egressd logs per name and port, or\n"
	    "           suggest an allow-list that would admit them; exit 0 none,\n"
	    "           1 denials found, 2 usage or an unreadable log\n"
	    "  audit    read packet captures, find every TLS ClientHello, HTTP\n"
	    "           request and DNS query, and decide each flow as egressd\n"
	    "           would; exit 0 nothing denied, 1 denials, 2 usage\n"
	    "  trace    follow a URL's redirect chain (directly or through the\n"
	    "           gateway) and give the policy's verdict for every hop;\n"
	    "           exit 0 every hop allowed, 1 a hop denied, 2 usage/failure\n"
	    "  reasons  print the reasons egressd's log lines and metrics carry:\n"
	    "           event, TLS alert, HTTP status and what each means\n"
	    "  posture  read a cluster's manifests (kubectl get -A -o yaml) and\n"
	    "           report every way a pod can get around the gateway;\n"
	    "           exit 0 none, 1 findings, 2 usage or unusable input\n"
	    "\n"
	    "Run 'egressctl COMMAND --help' for the options of each;\n"
	    "docs/egressctl.md has examples.\n");
}

/* Diagnostics as file:line:column: message, as gateway/main.c prints them. */
void
ctl_report(void *arg, enum pol_severity sev, const char *file, unsigned line,
    unsigned col, const char *msg)
{
	struct ctl_diag *d = arg;
	char text[2048];

	if (d != NULL) {
		if (sev == POL_ERROR)
			d->errors++;
		else if (sev == POL_WARNING)
			d->warnings++;
		else
			d->notices++;
	}
	/* stdout may be the same pipe: keep the two in the order written. */
	fflush(stdout);
	fprintf(stderr, "%s\n", pol_diag_format(text, sizeof(text), sev, file,
	    line, col, msg));
}

void
ctl_diagf(struct ctl_diag *d, enum pol_severity sev, const char *file,
    unsigned line, unsigned col, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_report(d, sev, file, line, col, msg);
}

struct pol_snapshot *
ctl_load_policy(const char *cmd, const char *config_path,
    const char *policy_note, struct gw_config **cfg_out)
{
	struct ctl_diag diag;
	struct gw_config *cfg;
	struct pol_snapshot *snap;
	struct pol_load_opts lopts;

	*cfg_out = NULL;
	memset(&diag, 0, sizeof(diag));
	cfg = gw_config_load(config_path, ctl_report, &diag);
	if (cfg == NULL) {
		fprintf(stderr, "egressctl %s: %s: the configuration does "
		    "not load (%u %s)\n", cmd, config_path, diag.errors,
		    diag.errors == 1 ? "error" : "errors");
		return NULL;
	}
	gw_config_policy_opts(cfg, &lopts);
	snap = pol_load_ex((const char *const *)cfg->policy_paths, cfg->npolicy,
	    &lopts, ctl_report, &diag);
	if (snap == NULL) {
		fprintf(stderr, "egressctl %s: %s: the policy does not load "
		    "(%u %s)%s\n", cmd, config_path, diag.errors,
		    diag.errors == 1 ? "error" : "errors",
		    policy_note != NULL ? policy_note : "");
		gw_config_free(cfg);
		return NULL;
	}
	*cfg_out = cfg;
	return snap;
}

void
ctl_print_rule(FILE *f, const char *label, const struct pol_rule *r,
    const char *why)
{
	char ports[POL_MAX_PORTS * 8 + 64];

	fprintf(f, "%s%s:%u: %s %s (%s, %s); ports %s%s%s\n", label, r->file,
	    r->line, pol_action_str(r->action), r->pattern, r->name,
	    r->origin != NULL ? r->origin : "native",
	    ctl_ports_str(r, ports, sizeof(ports)), why != NULL ? ": " : "",
	    why != NULL ? why : "");
}

int
ctl_parse_port(const char *s, const char *end, unsigned *out)
{
	unsigned long v = 0;

	if (s == end || end - s > 5)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int
ctl_parse_src(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

int
ctl_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

const char *
ctl_ports_str(const struct pol_rule *r, char *buf, size_t len)
{
	size_t o = 0;

	if (r->nports == 0) {
		snprintf(buf, len, "%s", r->action == POL_DENY ? "all" :
		    "default (443 for tls/connect, 80 for http)");
		return buf;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < r->nports && o < len; i++) {
		int n = snprintf(buf + o, len - o, "%s%u", i > 0 ? ", " : "",
		    (unsigned)r->ports[i]);

		if (n < 0)
			break;
		o += (size_t)n;
	}
	return buf;
}

const char *
ctl_sources_str(const struct pol_rule *r, char *buf, size_t len)
{
	size_t o = 0;

	if (r->nsources == 0) {
		snprintf(buf, len, "any");
		return buf;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < r->nsources && o + 1 < len; i++) {
		char one[64];
		int n;

		pol_cidr_format(&r->sources[i], one, sizeof(one));
		n = snprintf(buf + o, len - o, "%s%s", i > 0 ? ", " : "", one);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	return buf;
}

/* Through the log writer's escaping: one way to write JSON strings. */
void
ctl_json_str(FILE *f, const char *s)
{
	if (s == NULL)
		fputs("null", f);
	else
		(void)log_json_fput(f, s, strlen(s));
}

void
ctl_json_rule_open(const struct pol_rule *r)
{
	printf("{\"file\":");
	ctl_json_str(stdout, r->file);
	printf(",\"line\":%u,\"col\":%u,\"name\":", r->line, r->col);
	ctl_json_str(stdout, r->name);
	printf(",\"action\":");
	ctl_json_str(stdout, pol_action_str(r->action));
	printf(",\"pattern\":");
	ctl_json_str(stdout, r->pattern);
	printf(",\"origin\":");
	ctl_json_str(stdout, r->origin != NULL ? r->origin : "native");
}

int
main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("egressctl %s\n", PACKAGE_VERSION);
		return CTL_EXIT_OK;
	}
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		usage(stdout);
		return CTL_EXIT_OK;
	}
	/* Each subcommand parses its own options from its own argv[0]. */
	if (strcmp(cmd, "check") == 0)
		return ctl_check_main(argc - 1, argv + 1);
	if (strcmp(cmd, "explain") == 0)
		return ctl_explain_main(argc - 1, argv + 1);
	if (strcmp(cmd, "denials") == 0)
		return ctl_denials_main(argc - 1, argv + 1);
	if (strcmp(cmd, "audit") == 0)
		return ctl_audit_main(argc - 1, argv + 1);
	if (strcmp(cmd, "trace") == 0)
		return ctl_trace_main(argc - 1, argv + 1);
	if (strcmp(cmd, "reasons") == 0)
		return ctl_reasons_main(argc - 1, argv + 1);
	if (strcmp(cmd, "posture") == 0)
		return ctl_posture_main(argc - 1, argv + 1);
	fprintf(stderr, "egressctl: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return CTL_EXIT_USAGE;
}

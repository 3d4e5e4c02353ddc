/*
 * egressctl explain: decide one request against the daemon's own policy,
 * as egressd would, and say why.
 *
 * It loads the configuration file the daemon reads (so the files, the
 * mode, the namespaces: map and refuse_ech are the daemon's), builds the
 * facts a listener would build for the request (listener, where the name
 * came from, source, port, ECH) and calls dc_decide(), the one decision
 * the workers call. It prints the enforced verdict, what report mode would
 * deny, whose settings apply (the admitting rule), what the daemon's log
 * line says, then every other rule whose pattern matches the name with
 * the reason it did not decide: its port, its sources, its specificity,
 * its mode, or "deny wins".
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decide/decide.h"
#include "gateway/gwconfig.h"
#include "policy/policy.h"
#include "sni/sni.h"
#include "tools/ctl.h"

struct explain {
	const char *config;
	char name[SNI_NAME_MAX + 1];
	unsigned port;                  /* 0: the protocol's default */
	enum pol_proto proto;
	int listener_set;               /* --listener given */
	enum dc_listener listener;
	int ech;                        /* --ech: the ClientHello offers ECH */
	const char *src_text;
	struct sockaddr_storage src;
	int json;
};

static void
explain_usage(FILE *f)
{
	fprintf(f,
	    "usage: egressctl explain -c CONFIG [--port N] [--src IP]\n"
	    "                         [--proto tls|http|connect]\n"
	    "                         [--listener tls|http|connect|transparent]\n"
	    "                         [--ech] [--format text|json] NAME[:PORT]\n"
	    "\n"
	    "  -c, --config CONFIG  the daemon's configuration file: explain uses the\n"
	    "                       policy files, mode, namespaces and refuse_ech\n"
	    "                       it names\n"
	    "  -p, --port N         destination port (default 443 for tls and\n"
	    "                       connect, 80 for http); NAME:PORT says the same\n"
	    "  -s, --src IP         the client's address, for rules with sources\n"
	    "                       (without it such rules do not apply)\n"
	    "  -P, --proto PROTO    tls (default: the name is a ClientHello's),\n"
	    "                       http (a request's Host) or connect (a CONNECT\n"
	    "                       authority)\n"
	    "  -l, --listener L     the kind of listener the request comes to\n"
	    "                       (default: tls for tls, http for http, connect\n"
	    "                       for connect)\n"
	    "  -e, --ech            the ClientHello offers ECH (tls only)\n"
	    "  -f, --format FORMAT  text (default) or json (one object)\n"
	    "  -h, --help           print this help\n"
	    "\n"
	    "Exit status: 0 allowed, 1 denied (a report-mode deny too), 2 when the\n"
	    "configuration, the name or the command line cannot be used.\n");
}

/*
 * NAME or NAME:PORT, normalised as the gateway normalises a name off the
 * wire. Prints why on failure.
 */
static int
parse_name(struct explain *ex, const char *arg)
{
	char buf[512], hint[256], pat[POL_NAME_MAX + 3];
	enum pol_pattern_kind kind;
	struct sockaddr_storage ip;
	const char *colon = strrchr(arg, ':');
	size_t len = strlen(arg);

	if (colon != NULL && strchr(arg, ':') == colon) {
		unsigned port;

		if (ctl_parse_port(colon + 1, arg + strlen(arg), &port) != 0) {
			fprintf(stderr, "egressctl explain: '%s': the port after "
			    "':' must be 1-65535\n", arg);
			return -1;
		}
		if (ex->port != 0 && ex->port != port) {
			fprintf(stderr, "egressctl explain: '%s' and --port %u "
			    "disagree\n", arg, ex->port);
			return -1;
		}
		ex->port = port;
		len = (size_t)(colon - arg);
	}
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, arg, len);
	buf[len] = '\0';
	if (sni_name_normalize((const uint8_t *)buf, len, ex->name) == 0)
		return 0;
	if (ctl_parse_src(buf, &ip) == 0 || (buf[0] == '[' && strchr(buf, ']')))
		fprintf(stderr, "egressctl explain: '%s' is an IP address: "
		    "egressd decides on the name a client asks for; give "
		    "that name\n", buf);
	else if (buf[0] == '*' || buf[0] == '.')
		fprintf(stderr, "egressctl explain: '%s' is a pattern, not a "
		    "name: give a name a client connects to, such as "
		    "a.example.com\n", buf);
	else if (pol_pattern_parse(buf, &kind, pat, sizeof(pat), hint,
	    sizeof(hint)) != 0)
		fprintf(stderr, "egressctl explain: '%s' is not a host name: "
		    "%s\n", buf, hint);
	else
		fprintf(stderr, "egressctl explain: '%s' is not a host name "
		    "egressd accepts (letters, digits, '-' and '_' in "
		    "dot-separated labels of 1-63 characters, not an IP "
		    "address)\n", buf);
	return -1;
}

/*
 * How specific a match is, in the order the policy walks: the exact name,
 * the name as ".name" apex, then each suffix from the longest, then "*".
 */
static size_t
specificity(const struct pol_rule *r)
{
	size_t len = strlen(r->suffix);

	switch (r->kind) {
	case POL_PAT_EXACT:
		return 2 * (len + 1) + 1;
	case POL_PAT_DOMAIN:
	case POL_PAT_SUBDOMAINS:
		return 2 * len;
	case POL_PAT_ANY:
		break;
	}
	return 0;
}

/* The name is the pattern's own apex: a ".name" rule met before suffixes. */
static size_t
rank(const struct pol_rule *r, const char *name)
{
	if (r->kind == POL_PAT_DOMAIN && strcmp(r->suffix, name) == 0)
		return 2 * (strlen(name) + 1);
	return specificity(r);
}

static int
src_in_rule(const struct pol_rule *r, const struct sockaddr *src)
{
	if (r->nsources == 0)
		return 1;
	if (src == NULL)
		return 0;
	for (size_t i = 0; i < r->nsources; i++)
		if (pol_cidr_contains(&r->sources[i], src))
			return 1;
	return 0;
}

/* A reason the policy gives, rather than the bytes before it is asked. */
static int
policy_reason(enum dc_reason r)
{
	return r == DC_ALLOWED || r == DC_NOT_ALLOWED ||
	    r == DC_DENIED_BY_RULE || r == DC_PORT_NOT_ALLOWED;
}

/*
 * The rule that won in m's layer: report-mode rules are a layer of their
 * own (policy.h), which decides would_deny, or in a report-mode policy
 * what the enforced rules leave open.
 */
static const struct pol_rule *
layer_winner(const struct dc_verdict *v, const struct pol_rule *m)
{
	if (m->mode == POL_MODE_REPORT && v->would_deny)
		return v->would_rule;
	if (v->rule != NULL && v->rule->mode != m->mode)
		return NULL;
	return v->rule;
}

/* Why a matching rule m is not the one that decided. */
static void
why_not(const struct explain *ex, const struct pol_snapshot *snap,
    const struct dc_verdict *v, const struct pol_rule *m,
    const struct sockaddr *src, unsigned port, char *buf, size_t len)
{
	const struct pol_rule *ref;
	char list[2048];

	if (!src_in_rule(m, src)) {
		ctl_sources_str(m, list, sizeof(list));
		if (src == NULL)
			snprintf(buf, len, "applies only to sources %s and no "
			    "--src was given", list);
		else
			snprintf(buf, len, "source %s is not in its sources (%s)",
			    ex->src_text, list);
		return;
	}
	if (port > 65535 ||
	    !pol_rule_admits_port(m, (uint16_t)port, ex->proto)) {
		if (m->nports == 0) {
			/* Only allow rules get here: a deny without ports
			 * covers every port. */
			snprintf(buf, len, "port %u is not admitted (no ports "
			    "listed: only the default, %u for %s)", port,
			    ex->proto == POL_PROTO_HTTP ? 80 : 443,
			    pol_proto_str(ex->proto));
			return;
		}
		ctl_ports_str(m, list, sizeof(list));
		snprintf(buf, len, "port %u is not %s (ports %s)", port,
		    m->action == POL_ALLOW ? "admitted" : "covered", list);
		return;
	}
	if (!policy_reason(v->reason)) {
		snprintf(buf, len, "not asked: refused before the policy (%s)",
		    dc_reason_str(v->reason));
		return;
	}
	if (m->mode == POL_MODE_REPORT) {
		if (m->action == POL_ALLOW &&
		    pol_snapshot_mode(snap) != POL_MODE_REPORT) {
			snprintf(buf, len, "report mode: a report-mode rule never "
			    "admits; it can only add would_deny");
			return;
		}
		if (m->action == POL_DENY && !v->allow) {
			snprintf(buf, len, "report mode: it only marks an admitted "
			    "connection would_deny; the enforced rules refuse "
			    "this one");
			return;
		}
	}
	ref = layer_winner(v, m);
	if (ref == NULL) {
		snprintf(buf, len, "not used");
		return;
	}
	if (m->action == POL_ALLOW && ref->action == POL_DENY) {
		snprintf(buf, len, "deny wins");
		return;
	}
	if (m->action == ref->action) {
		if (rank(m, ex->name) < rank(ref, ex->name))
			snprintf(buf, len, "lower specificity than the deciding "
			    "rule");
		else
			snprintf(buf, len, "same specificity; the deciding rule "
			    "comes first");
		return;
	}
	snprintf(buf, len, "not used");
}

/* The rule as an object, its closing brace left to the caller. */
static void
json_rule(const struct pol_rule *r)
{
	ctl_json_rule_open(r);
	printf(",\"ports\":");
	if (r->nports == 0) {
		printf("null");
	} else {
		for (size_t i = 0; i < r->nports; i++)
			printf("%c%u", i == 0 ? '[' : ',', (unsigned)r->ports[i]);
		printf("]");
	}
	printf(",\"mode\":");
	ctl_json_str(stdout, pol_mode_str(r->mode));
}

static void
json_rule_or_null(const struct pol_rule *r)
{
	if (r == NULL) {
		printf("null");
		return;
	}
	json_rule(r);
	printf("}");
}

/* Is m shown on a line of its own (deciding, would_deny, admitting)? */
static int
shown(const struct dc_verdict *v, const struct pol_rule *m)
{
	return m == v->rule || m == v->admit ||
	    (v->would_deny && m == v->would_rule);
}

/*
 * What egressd's line says about this decision: event, reason, rule
 * (dc_line_reason, dc_line_rule). A relayed connection's line may still
 * end otherwise (DNS, connect, resets): that is not the policy's.
 */
static const char *
line_event(const struct dc_verdict *v)
{
	if (v->allow && !v->would_deny)
		return dc_event_str(DC_EV_ALLOW);
	return dc_event_str(dc_reason_info(dc_line_reason(v))->event);
}

/* --format json: one object. */
static void
output_json(const struct explain *ex, const struct pol_snapshot *snap,
    const struct dc_facts *f, const struct dc_verdict *v,
    const struct pol_rule **m, size_t nm, unsigned port)
{
	const struct pol_rule *lr = dc_line_rule(v);
	char why[2304], where[1024];

	printf("{\"name\":");
	ctl_json_str(stdout, ex->name);
	printf(",\"port\":%u,\"proto\":", port);
	ctl_json_str(stdout, pol_proto_str(ex->proto));
	printf(",\"src\":");
	ctl_json_str(stdout, ex->src_text);
	printf(",\"verdict\":");
	ctl_json_str(stdout, v->allow ? "allow" : "deny");
	printf(",\"reason\":");
	ctl_json_str(stdout, dc_reason_str(v->reason));
	printf(",\"would_deny\":%s,\"rule\":", v->would_deny ? "true" : "false");
	json_rule_or_null(v->rule);
	printf(",\"others\":[");
	for (size_t i = 0, k = 0; i < nm; i++) {
		if (shown(v, m[i]))
			continue;
		why_not(ex, snap, v, m[i], f->src, port, why, sizeof(why));
		printf("%s", k++ > 0 ? "," : "");
		json_rule(m[i]);
		printf(",\"why\":");
		ctl_json_str(stdout, why);
		printf("}");
	}
	printf("],\"listener\":");
	ctl_json_str(stdout, dc_listener_str(f->listener));
	printf(",\"from\":");
	ctl_json_str(stdout, dc_from_str(f->from));
	printf(",\"ech\":%s,\"detail\":", f->ech ? "true" : "false");
	ctl_json_str(stdout, v->detail);
	printf(",\"would_deny_reason\":");
	ctl_json_str(stdout, v->would_deny ? dc_reason_str(v->would_reason) :
	    NULL);
	printf(",\"would_deny_rule\":");
	json_rule_or_null(v->would_deny ? v->would_rule : NULL);
	printf(",\"admitted_by\":");
	json_rule_or_null(v->allow ? v->admit : NULL);
	printf(",\"log\":{\"event\":");
	ctl_json_str(stdout, line_event(v));
	printf(",\"reason\":");
	ctl_json_str(stdout, dc_reason_str(dc_line_reason(v)));
	printf(",\"would_deny\":%s,\"rule\":", v->would_deny ? "true" : "false");
	if (lr != NULL) {
		snprintf(where, sizeof(where), "%s:%u", lr->file, lr->line);
		ctl_json_str(stdout, where);
	} else {
		printf("null");
	}
	printf(",\"rule_name\":");
	ctl_json_str(stdout, lr != NULL ? lr->name : NULL);
	printf("}}\n");
}

/* Text: the verdict's rules (deciding, report mode's, admitting). */
static void
output_text_rules(const struct explain *ex, const struct dc_verdict *v)
{
	if (v->would_deny) {
		printf("would_deny: report mode: egressd lets this connection "
		    "through and logs it as a deny with \"would_deny\": true\n");
		printf("would_deny_reason: %s\n", dc_reason_str(v->would_reason));
		if (v->would_rule != NULL)
			ctl_print_rule(stdout, "would_deny_rule: ", v->would_rule,
			    NULL);
		else
			printf("would_deny_rule: none (no rule admits %s)\n",
			    ex->name);
	}
	if (v->rule != NULL)
		ctl_print_rule(stdout, "rule: ", v->rule, NULL);
	else if (!policy_reason(v->reason))
		printf("rule: none (refused before the policy is asked)\n");
	else
		printf("rule: none (no rule admits %s)\n", ex->name);
	if (v->allow && v->admit != NULL)
		ctl_print_rule(stdout, "admitted_by: ", v->admit,
		    "its settings apply");
	else if (v->allow)
		printf("admitted_by: none (relayed by report mode; the "
		    "defaults apply: DNS resolution, no private addresses)\n");
	else
		printf("admitted_by: none (refused)\n");
}

static void
output_text(const struct explain *ex, const struct pol_snapshot *snap,
    const struct dc_facts *f, const struct dc_verdict *v,
    const struct pol_rule **m, size_t nm, unsigned port)
{
	const struct pol_rule *lr = dc_line_rule(v);
	char why[2304];
	size_t nothers = 0;

	printf("name: %s\nport: %u (%s)\n", ex->name, port,
	    pol_proto_str(ex->proto));
	printf("listener: %s (the name from %s)%s\n",
	    dc_listener_str(f->listener), dc_from_str(f->from),
	    f->ech ? "; the ClientHello offers ECH" : "");
	if (ex->src_text != NULL)
		printf("src: %s\n", ex->src_text);
	else
		printf("src: none given (rules with sources do not apply)\n");
	printf("verdict: %s\nreason: %s\n", v->allow ? "allow" : "deny",
	    dc_reason_str(v->reason));
	if (v->detail != NULL)
		printf("detail: %s\n", v->detail);
	output_text_rules(ex, v);
	printf("log: event %s, reason %s%s, rule ", line_event(v),
	    dc_reason_str(dc_line_reason(v)), v->would_deny ?
	    ", would_deny true" : "");
	if (lr != NULL)
		printf("%s:%u (%s)\n", lr->file, lr->line, lr->name);
	else
		printf("null\n");
	for (size_t i = 0; i < nm; i++)
		if (!shown(v, m[i]))
			nothers++;
	if (nothers == 0) {
		printf("other rules that match: none\n");
		return;
	}
	printf("other rules that match:\n");
	for (size_t i = 0; i < nm; i++) {
		if (shown(v, m[i]))
			continue;
		why_not(ex, snap, v, m[i], f->src, port, why, sizeof(why));
		ctl_print_rule(stdout, "  ", m[i], why);
	}
}

static void
output(const struct explain *ex, const struct pol_snapshot *snap,
    const struct dc_facts *f, const struct dc_verdict *v,
    const struct pol_rule **m, size_t nm, unsigned port)
{
	if (ex->json)
		output_json(ex, snap, f, v, m, nm, port);
	else
		output_text(ex, snap, f, v, m, nm, port);
}

/* tls, http, connect, transparent; -1 for anything else. */
static int
parse_listener(const char *s, enum dc_listener *out)
{
	static const enum dc_listener all[] = { DC_L_TLS, DC_L_HTTP,
	    DC_L_CONNECT, DC_L_TRANSPARENT };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcasecmp(s, dc_listener_str(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	return -1;
}

/*
 * The facts a listener builds for this request: the name from a
 * ClientHello (tls), a Host (http) or a CONNECT authority (connect). A
 * combination no listener meets is a usage error, said here.
 */
static int
build_facts(struct explain *ex, struct dc_facts *f)
{
	memset(f, 0, sizeof(*f));
	if (!ex->listener_set)
		ex->listener = ex->proto == POL_PROTO_HTTP ? DC_L_HTTP :
		    ex->proto == POL_PROTO_CONNECT ? DC_L_CONNECT : DC_L_TLS;
	if (ex->listener == DC_L_TLS && ex->proto != POL_PROTO_TLS) {
		fprintf(stderr, "egressctl explain: a tls listener reads "
		    "ClientHellos only: --proto tls (or give another "
		    "--listener)\n");
		return -1;
	}
	if ((ex->listener == DC_L_HTTP || ex->listener == DC_L_CONNECT) &&
	    ex->proto == POL_PROTO_TLS) {
		fprintf(stderr, "egressctl explain: --listener %s reads HTTP "
		    "requests: --proto http or connect (a ClientHello inside a "
		    "CONNECT tunnel must name the CONNECT host: --proto "
		    "connect)\n", dc_listener_str(ex->listener));
		return -1;
	}
	if (ex->ech && ex->proto != POL_PROTO_TLS) {
		fprintf(stderr, "egressctl explain: --ech is about a "
		    "ClientHello: --proto tls\n");
		return -1;
	}
	f->listener = ex->listener;
	f->from = ex->proto == POL_PROTO_HTTP ? DC_FROM_HOST :
	    ex->proto == POL_PROTO_CONNECT ? DC_FROM_AUTHORITY : DC_FROM_SNI;
	f->proto = ex->proto;
	f->src = ex->src_text != NULL ?
	    (const struct sockaddr *)&ex->src : NULL;
	f->name = ex->name;
	f->port = (uint16_t)ex->port;
	f->ech = ex->ech;
	return 0;
}

/* One option into ex. 0, or -1 (said on stderr). */
static int
explain_option(struct explain *ex, int ch, const char *arg)
{
	switch (ch) {
	case 'c':
		ex->config = arg;
		return 0;
	case 'p':
		if (ctl_parse_port(arg, arg + strlen(arg), &ex->port) == 0)
			return 0;
		fprintf(stderr, "egressctl explain: --port '%s': give a port "
		    "1-65535\n", arg);
		return -1;
	case 's':
		if (ctl_parse_src(arg, &ex->src) != 0) {
			fprintf(stderr, "egressctl explain: --src '%s': give an "
			    "IPv4 or IPv6 address\n", arg);
			return -1;
		}
		ex->src_text = arg;
		return 0;
	case 'P':
		if (strcasecmp(arg, "tls") == 0)
			ex->proto = POL_PROTO_TLS;
		else if (strcasecmp(arg, "http") == 0)
			ex->proto = POL_PROTO_HTTP;
		else if (strcasecmp(arg, "connect") == 0)
			ex->proto = POL_PROTO_CONNECT;
		else {
			fprintf(stderr, "egressctl explain: --proto '%s': give "
			    "tls, http or connect\n", arg);
			return -1;
		}
		return 0;
	case 'l':
		if (parse_listener(arg, &ex->listener) != 0) {
			fprintf(stderr, "egressctl explain: --listener '%s': give "
			    "tls, http, connect or transparent\n", arg);
			return -1;
		}
		ex->listener_set = 1;
		return 0;
	case 'e':
		ex->ech = 1;
		return 0;
	case 'f':
		if (strcmp(arg, "json") == 0)
			ex->json = 1;
		else if (strcmp(arg, "text") != 0) {
			fprintf(stderr, "egressctl explain: --format '%s': give "
			    "text or json\n", arg);
			return -1;
		}
		return 0;
	}
	explain_usage(stderr);
	return -1;
}

/* The command line into ex and the connection's facts. -1 when the
 * command is over, with its exit status in *rc; else 0. */
static int
explain_args(int argc, char **argv, struct explain *ex,
    struct dc_facts *facts, int *rc)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "src", required_argument, NULL, 's' },
		{ "proto", required_argument, NULL, 'P' },
		{ "listener", required_argument, NULL, 'l' },
		{ "ech", no_argument, NULL, 'e' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*rc = CTL_EXIT_USAGE;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "c:p:s:P:l:ef:h", opts,
	    NULL)) != -1) {
		if (ch == 'h') {
			explain_usage(stdout);
			*rc = CTL_EXIT_OK;
			return -1;
		}
		if (explain_option(ex, ch, optarg) != 0)
			return -1;
	}
	if (ex->config == NULL || optind + 1 != argc) {
		fprintf(stderr, "egressctl explain: %s\n\n", ex->config == NULL ?
		    "-c CONFIG is required (explain uses the daemon's own "
		    "configuration)" : "give exactly one NAME");
		explain_usage(stderr);
		return -1;
	}
	if (parse_name(ex, argv[optind]) != 0)
		return -1;
	if (ex->port == 0)
		ex->port = ex->proto == POL_PROTO_HTTP ? 80 : 443;
	return build_facts(ex, facts) != 0 ? -1 : 0;
}

int
ctl_explain_main(int argc, char **argv)
{
	struct explain ex;
	struct gw_config *cfg = NULL;
	struct pol_snapshot *snap = NULL;
	struct dc_facts facts;
	struct dc_opts dopts;
	struct dc_verdict v;
	const struct pol_rule *stackm[64], **m = stackm;
	size_t nm;
	int rc;

	memset(&ex, 0, sizeof(ex));
	if (explain_args(argc, argv, &ex, &facts, &rc) != 0)
		return rc;
	rc = CTL_EXIT_USAGE;
	snap = ctl_load_policy("explain", ex.config, "; egressd would not "
	    "start or would keep its old policy", &cfg);
	if (snap == NULL)
		return CTL_EXIT_USAGE;
	memset(&dopts, 0, sizeof(dopts));
	dopts.refuse_ech = cfg->refuse_ech;
	dc_decide(snap, &dopts, &facts, &v);
	nm = pol_matches(snap, ex.name, stackm, sizeof(stackm) / sizeof(stackm[0]));
	if (nm > sizeof(stackm) / sizeof(stackm[0])) {
		m = calloc(nm, sizeof(*m));
		if (m == NULL) {
			fprintf(stderr, "egressctl: out of memory\n");
			goto out;
		}
		nm = pol_matches(snap, ex.name, m, nm);
	}
	fflush(stderr);
	output(&ex, snap, &facts, &v, m, nm, v.port);
	/* Report mode's would_deny is still a deny by policy: exit 1. */
	rc = v.allow && !v.would_deny ? CTL_EXIT_OK : CTL_EXIT_FAIL;
out:
	if (m != stackm)
		free(m);
	pol_snapshot_unref(snap);
	gw_config_free(cfg);
	return rc;
}

/*
 * egressctl explain: decide one name against the daemon's own policy, as
 * egressd would, and say why.
 *
 * It loads the configuration file the daemon reads (so the files, the
 * mode and the namespaces: map are the daemon's), calls the same
 * pol_decide() the workers call, then lists every other rule whose pattern
 * matches the name with the reason it did not decide: its port, its
 * sources, its specificity, or "deny wins".
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gwconfig.h"
#include "policy/policy.h"
#include "sni/sni.h"
#include "tools/ctl.h"

struct explain {
	const char *config;
	char name[SNI_NAME_MAX + 1];
	unsigned port;                  /* 0: the protocol's default */
	enum pol_proto proto;
	const char *src_text;
	struct sockaddr_storage src;
	int json;
};

static void
explain_usage(FILE *f)
{
	fprintf(f,
	    "usage: egressctl explain -c CONFIG [--port N] [--src IP]\n"
	    "                         [--proto tls|http|connect] [--format text|json]\n"
	    "                         NAME[:PORT]\n"
	    "\n"
	    "  -c, --config CONFIG  the daemon's configuration file: explain uses the\n"
	    "                       policy files, mode and namespaces it names\n"
	    "  -p, --port N         destination port (default 443 for tls and\n"
	    "                       connect, 80 for http); NAME:PORT says the same\n"
	    "  -s, --src IP         the client's address, for rules with sources\n"
	    "                       (without it such rules do not apply)\n"
	    "  -P, --proto PROTO    tls (default), http or connect\n"
	    "  -f, --format FORMAT  text (default) or json (one object)\n"
	    "  -h, --help           print this help\n"
	    "\n"
	    "Exit status: 0 allowed, 1 denied (a report-mode deny too), 2 when the\n"
	    "configuration, the name or the command line cannot be used.\n");
}

static int
parse_src(const char *s, struct sockaddr_storage *ss)
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
	if (parse_src(buf, &ip) == 0 || (buf[0] == '[' && strchr(buf, ']')))
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
 * How specific a match is, in the order pol_decide walks: the exact name,
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

/* Why a matching rule m is not the one that decided. */
static void
why_not(const struct explain *ex, const struct pol_verdict *v,
    const struct pol_rule *m, const struct sockaddr *src, unsigned port,
    char *buf, size_t len)
{
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
	if (!ctl_rule_has_port(m, port, ex->proto)) {
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
	if (v->rule == NULL) {
		snprintf(buf, len, "not used");
		return;
	}
	if (m->action == POL_ALLOW && v->rule->action == POL_DENY) {
		snprintf(buf, len, "deny wins");
		return;
	}
	if (m->action == v->rule->action) {
		if (rank(m, ex->name) < rank(v->rule, ex->name))
			snprintf(buf, len, "lower specificity than the deciding "
			    "rule");
		else
			snprintf(buf, len, "same specificity; the deciding rule "
			    "comes first");
		return;
	}
	snprintf(buf, len, "not used");
}

static void
json_rule(const struct pol_rule *r)
{
	printf("{\"file\":");
	ctl_json_str(stdout, r->file);
	printf(",\"line\":%u,\"col\":%u,\"name\":", r->line, r->col);
	ctl_json_str(stdout, r->name);
	printf(",\"action\":\"%s\",\"pattern\":", pol_action_str(r->action));
	ctl_json_str(stdout, r->pattern);
	printf(",\"origin\":");
	ctl_json_str(stdout, r->origin != NULL ? r->origin : "native");
	printf(",\"ports\":");
	if (r->nports == 0) {
		printf("null");
	} else {
		for (size_t i = 0; i < r->nports; i++)
			printf("%c%u", i == 0 ? '[' : ',', (unsigned)r->ports[i]);
		printf("]");
	}
	printf(",\"mode\":\"%s\"", pol_mode_str(r->mode));
}

static void
output(const struct explain *ex, const struct pol_verdict *v,
    const struct pol_rule **m, size_t nm, const struct sockaddr *src,
    unsigned port)
{
	char why[2304];
	size_t nothers = 0;

	for (size_t i = 0; i < nm; i++)
		if (m[i] != v->rule)
			nothers++;
	if (ex->json) {
		printf("{\"name\":");
		ctl_json_str(stdout, ex->name);
		printf(",\"port\":%u,\"proto\":\"%s\",\"src\":", port,
		    pol_proto_str(ex->proto));
		ctl_json_str(stdout, ex->src_text);
		printf(",\"verdict\":\"%s\",\"reason\":\"%s\",\"would_deny\":%s,"
		    "\"rule\":", v->allow ? "allow" : "deny",
		    pol_reason_str(v->reason),
		    !v->allow && v->report ? "true" : "false");
		if (v->rule == NULL) {
			printf("null");
		} else {
			json_rule(v->rule);
			printf("}");
		}
		printf(",\"others\":[");
		for (size_t i = 0, k = 0; i < nm; i++) {
			if (m[i] == v->rule)
				continue;
			why_not(ex, v, m[i], src, port, why, sizeof(why));
			printf("%s", k++ > 0 ? "," : "");
			json_rule(m[i]);
			printf(",\"why\":");
			ctl_json_str(stdout, why);
			printf("}");
		}
		printf("]}\n");
		return;
	}

	printf("name: %s\nport: %u (%s)\n", ex->name, port,
	    pol_proto_str(ex->proto));
	if (ex->src_text != NULL)
		printf("src: %s\n", ex->src_text);
	else
		printf("src: none given (rules with sources do not apply)\n");
	printf("verdict: %s\nreason: %s\n", v->allow ? "allow" : "deny",
	    pol_reason_str(v->reason));
	if (!v->allow && v->report)
		printf("would_deny: report mode: egressd lets this connection "
		    "through and logs it as a deny with \"would_deny\": true\n");
	if (v->rule != NULL)
		ctl_print_rule(stdout, "rule: ", v->rule, NULL);
	else
		printf("rule: none (no rule admits %s)\n", ex->name);
	if (nothers == 0) {
		printf("other rules that match: none\n");
		return;
	}
	printf("other rules that match:\n");
	for (size_t i = 0; i < nm; i++) {
		if (m[i] == v->rule)
			continue;
		why_not(ex, v, m[i], src, port, why, sizeof(why));
		ctl_print_rule(stdout, "  ", m[i], why);
	}
}

int
ctl_explain_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "src", required_argument, NULL, 's' },
		{ "proto", required_argument, NULL, 'P' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct explain ex;
	struct gw_config *cfg = NULL;
	struct pol_snapshot *snap = NULL;
	struct pol_request req;
	struct pol_verdict v;
	const struct pol_rule *stackm[64], **m = stackm;
	const struct sockaddr *src = NULL;
	size_t nm;
	int ch, rc = CTL_EXIT_USAGE;

	memset(&ex, 0, sizeof(ex));
	optind = 0;
	while ((ch = getopt_long(argc, argv, "c:p:s:P:f:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ex.config = optarg;
			break;
		case 'p':
			if (ctl_parse_port(optarg, optarg + strlen(optarg),
			    &ex.port) != 0) {
				fprintf(stderr, "egressctl explain: --port '%s': "
				    "give a port 1-65535\n", optarg);
				return CTL_EXIT_USAGE;
			}
			break;
		case 's':
			if (parse_src(optarg, &ex.src) != 0) {
				fprintf(stderr, "egressctl explain: --src '%s': "
				    "give an IPv4 or IPv6 address\n", optarg);
				return CTL_EXIT_USAGE;
			}
			ex.src_text = optarg;
			break;
		case 'P':
			if (strcasecmp(optarg, "tls") == 0)
				ex.proto = POL_PROTO_TLS;
			else if (strcasecmp(optarg, "http") == 0)
				ex.proto = POL_PROTO_HTTP;
			else if (strcasecmp(optarg, "connect") == 0)
				ex.proto = POL_PROTO_CONNECT;
			else {
				fprintf(stderr, "egressctl explain: --proto '%s': "
				    "give tls, http or connect\n", optarg);
				return CTL_EXIT_USAGE;
			}
			break;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				ex.json = 1;
			else if (strcmp(optarg, "text") != 0) {
				fprintf(stderr, "egressctl explain: --format '%s': "
				    "give text or json\n", optarg);
				return CTL_EXIT_USAGE;
			}
			break;
		case 'h':
			explain_usage(stdout);
			return CTL_EXIT_OK;
		default:
			explain_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (ex.config == NULL || optind + 1 != argc) {
		fprintf(stderr, "egressctl explain: %s\n\n", ex.config == NULL ?
		    "-c CONFIG is required (explain uses the daemon's own "
		    "configuration)" : "give exactly one NAME");
		explain_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (parse_name(&ex, argv[optind]) != 0)
		return CTL_EXIT_USAGE;
	if (ex.port == 0)
		ex.port = ex.proto == POL_PROTO_HTTP ? 80 : 443;
	if (ex.src_text != NULL)
		src = (const struct sockaddr *)&ex.src;

	snap = ctl_load_policy("explain", ex.config, "; egressd would not "
	    "start or would keep its old policy", &cfg);
	if (snap == NULL)
		return CTL_EXIT_USAGE;

	memset(&req, 0, sizeof(req));
	req.name = ex.name;
	req.port = (uint16_t)ex.port;
	req.proto = ex.proto;
	req.src = src;
	pol_decide(snap, &req, &v);

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
	output(&ex, &v, m, nm, src, ex.port);
	rc = v.allow ? CTL_EXIT_OK : CTL_EXIT_FAIL;
out:
	if (m != stackm)
		free(m);
	pol_snapshot_unref(snap);
	gw_config_free(cfg);
	return rc;
}

/*
 * egressctl audit: read packet captures and decide every connection in
 * them as egressd would, before the allow-list is enforced.
 *
 * This file is the command line and the report; the packets are read by
 * the engine in tools/audit_engine.c (tools/audit.h), with the policy the
 * daemon's configuration names (loaded as explain loads it). What a
 * capture cannot show (what DNS would answer, the daemon's listener
 * ports) is in docs/egressctl-audit.md.
 */
#include "config.h"

#include <getopt.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gwconfig.h"
#include "http/http.h"
#include "policy/policy.h"
#include "tools/audit.h"
#include "tools/ctl.h"

#define AUD_SRC_SHOWN   3               /* sources listed in text, then +N */

static void
audit_usage(FILE *f)
{
	fprintf(f,
	    "usage: egressctl audit -c CONFIG [--format text|json]\n"
	    "                       [--port-map CAPTURED=POLICY]... [--dns-port N]...\n"
	    "                       CAPTURE...\n"
	    "\n"
	    "  -c, --config CONFIG    the daemon's configuration file: audit uses\n"
	    "                         the policy files, mode and namespaces it names\n"
	    "  -f, --format FORMAT    text (default) or json (one document)\n"
	    "  -m, --port-map A=B     decide flows captured towards port A as if\n"
	    "                         they were for port B (e.g. 8443=443 when the\n"
	    "                         capture shows a listener, not the upstream)\n"
	    "  -d, --dns-port N       UDP port of the DNS servers the clients ask\n"
	    "                         (default 53; repeat for several)\n"
	    "  -h, --help             print this help\n"
	    "\n"
	    "CAPTURE: pcap or pcapng files (tcpdump -w), Ethernet, Linux cooked\n"
	    "(tcpdump -i any), raw IP or loopback link types.\n"
	    "\n"
	    "Exit status: 0 nothing would be denied, 1 something would be, 2 for\n"
	    "usage errors, an unreadable capture or a configuration that does\n"
	    "not load.\n");
}

/* ---- output helpers ------------------------------------------------------ */

/* 2026-11-22T10:00:00.123Z, as egressd's log. */
static const char *
iso_time(int64_t us, char *buf, size_t len)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)((us % 1000000) / 1000));
	return buf;
}

static const char *
qtype_str(unsigned t, char *buf, size_t len)
{
	switch (t) {
	case 1: return "A";
	case 5: return "CNAME";
	case 12: return "PTR";
	case 15: return "MX";
	case 16: return "TXT";
	case 28: return "AAAA";
	case 33: return "SRV";
	case 64: return "SVCB";
	case 65: return "HTTPS";
	case 255: return "ANY";
	}
	snprintf(buf, len, "TYPE%u", t);
	return buf;
}

/* One capture file; flows do not continue from one file into the next. */
static int
audit_capture(struct audit *a, const char *path)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *hdr;
	const u_char *data;
	pcap_t *pc;
	int dlt, r, rc = 0;

	err[0] = '\0';
	pc = pcap_open_offline_with_tstamp_precision(path,
	    PCAP_TSTAMP_PRECISION_MICRO, err);
	if (pc == NULL) {
		fprintf(stderr, "egressctl audit: %s: cannot read the capture: "
		    "%s\n", path, err);
		return CTL_EXIT_USAGE;
	}
	dlt = pcap_datalink(pc);
	if (!audit_dlt_supported(dlt)) {
		const char *nm = pcap_datalink_val_to_name(dlt);

		fprintf(stderr, "egressctl audit: %s: link type %s (%d) is not "
		    "supported: capture with tcpdump -i any, or on an Ethernet "
		    "or loopback interface\n", path, nm != NULL ? nm : "unknown",
		    dlt);
		pcap_close(pc);
		return CTL_EXIT_USAGE;
	}
	while ((r = pcap_next_ex(pc, &hdr, &data)) == 1) {
		int64_t ts = (int64_t)hdr->ts.tv_sec * 1000000 + hdr->ts.tv_usec;

		if (audit_packet(a, dlt, data, hdr->caplen, ts) != 0) {
			rc = CTL_EXIT_USAGE;
			break;
		}
	}
	if (r == -1) {
		/* A truncated file still gave what it had: say so. */
		fprintf(stderr, "egressctl audit: %s: warning: %s; the packets "
		    "before it are used\n", path, pcap_geterr(pc));
	}
	if (audit_finish(a) != 0)
		rc = CTL_EXIT_USAGE;
	pcap_close(pc);
	return rc;
}

static const char *
sources_text(const struct aud_group *g, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < g->nsrc && i < AUD_SRC_SHOWN; i++)
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0,
		    "%s%s", i ? "," : "", g->src[i]);
	if (g->nsrc > AUD_SRC_SHOWN && off < len)
		snprintf(buf + off, len - off, ",+%zu", g->nsrc - AUD_SRC_SHOWN);
	return buf;
}

static const char *
rule_text(const struct pol_rule *r, char *buf, size_t len)
{
	if (r == NULL)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s:%u (%s)", r->file, r->line, r->name);
	return buf;
}

static const char *
types_text(const struct aud_group *g, char *buf, size_t len)
{
	size_t off = 0;
	char tb[16];

	buf[0] = '\0';
	for (size_t i = 0; i < g->nqtypes; i++)
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0,
		    "%s%s", i ? "," : "", qtype_str(g->qtypes[i], tb, sizeof(tb)));
	return buf;
}

static size_t
distinct_names(const struct aud_table *t)
{
	size_t n = 0;

	/* The table is sorted by count, not name: compare with all before.
	 * Flows without a name (no_sni, not_tls, ...) are not a name. */
	for (size_t i = 0; i < t->n; i++) {
		size_t j;

		if (t->g[i].name == NULL)
			continue;

		for (j = 0; j < i; j++)
			if (ctl_str_eq(t->g[i].name, t->g[j].name))
				break;
		if (j == i)
			n++;
	}
	return n;
}

/* One cell of a table: padded, or ending the line. */
static void
cell_out(const char *s, size_t w, int last)
{
	if (last)
		printf("%s\n", s);
	else
		printf("%-*s  ", (int)w, s);
}

#define COL(i, s) do {                                                  \
	size_t l_ = strlen(s);                                          \
	if (l_ > w[i])                                                  \
		w[i] = l_;                                              \
} while (0)

static void
print_text_groups(const struct aud_table *t, int denied)
{
	static const char *const hd[] = { "NAME", "PORT", "PROTO", "REASON",
	    "SOURCES", "COUNT", "FIRST SEEN", "LAST SEEN", "RULE" };
	size_t w[9];
	char cell[9][512];

	for (size_t i = 0; i < 9; i++)
		w[i] = strlen(hd[i]);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			for (size_t i = 0; i < 9; i++) {
				if (!denied && i == 3)
					continue;
				cell_out(hd[i], w[i], i == 8);
			}
		}
		for (size_t k = 0; k < t->n; k++) {
			const struct aud_group *g = &t->g[k];

			snprintf(cell[0], sizeof(cell[0]), "%s", g->name != NULL ?
			    g->name : "-");
			snprintf(cell[1], sizeof(cell[1]), "%u", g->port);
			snprintf(cell[2], sizeof(cell[2]), "%s",
			    pol_proto_str(g->proto));
			snprintf(cell[3], sizeof(cell[3]), "%s%s", g->reason,
			    g->report ? " (report)" : "");
			sources_text(g, cell[4], sizeof(cell[4]));
			snprintf(cell[5], sizeof(cell[5]), "%llu",
			    (unsigned long long)g->count);
			iso_time(g->first_us, cell[6], sizeof(cell[6]));
			iso_time(g->last_us, cell[7], sizeof(cell[7]));
			rule_text(g->rule, cell[8], sizeof(cell[8]));
			for (size_t i = 0; i < 9; i++) {
				if (pass == 0) {
					COL(i, cell[i]);
					continue;
				}
				if (!denied && i == 3)
					continue;
				cell_out(cell[i], w[i], i == 8);
			}
		}
	}
}

static void
print_text_dns(const struct aud_table *t)
{
	static const char *const hd[] = { "NAME", "TYPES", "ON 443", "SOURCES",
	    "COUNT", "FIRST SEEN", "LAST SEEN", "RULE" };
	size_t w[8];
	char cell[8][512];

	for (size_t i = 0; i < 8; i++)
		w[i] = strlen(hd[i]);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			for (size_t i = 0; i < 8; i++)
				cell_out(hd[i], w[i], i == 7);
		for (size_t k = 0; k < t->n; k++) {
			const struct aud_group *g = &t->g[k];

			snprintf(cell[0], sizeof(cell[0]), "%s", g->name);
			types_text(g, cell[1], sizeof(cell[1]));
			if (g->allow)
				snprintf(cell[2], sizeof(cell[2]), "allow");
			else
				snprintf(cell[2], sizeof(cell[2]), "deny %s%s",
				    g->reason, g->report ? " (report)" : "");
			sources_text(g, cell[3], sizeof(cell[3]));
			snprintf(cell[4], sizeof(cell[4]), "%llu",
			    (unsigned long long)g->count);
			iso_time(g->first_us, cell[5], sizeof(cell[5]));
			iso_time(g->last_us, cell[6], sizeof(cell[6]));
			rule_text(g->rule, cell[7], sizeof(cell[7]));
			for (size_t i = 0; i < 8; i++) {
				if (pass == 0)
					COL(i, cell[i]);
				else
					cell_out(cell[i], w[i], i == 7);
			}
		}
	}
}

/* host:port, an IPv6 literal in brackets. */
static const char *
authority_text(const char *host, unsigned port, char *buf, size_t len)
{
	int v6 = strchr(host, ':') != NULL;

	snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
	    port);
	return buf;
}

/*
 * What the rows refused inside a CONNECT tunnel asked for: the table
 * names the tunnel (the CONNECT host and port), this says what came in it.
 */
static void
print_text_inner(const struct aud_table *t)
{
	char tun[HTTP_HOST_MAX + 16], in[HTTP_HOST_MAX + 16];
	int any = 0;

	for (size_t k = 0; k < t->n; k++) {
		const struct aud_group *g = &t->g[k];

		if (g->inner == AUD_INNER_NONE)
			continue;
		if (!any)
			printf("\ninside CONNECT tunnels (sni_mismatch: the tunnel "
			    "was admitted for one host, the client asked for "
			    "another in it, or named none):\n");
		any = 1;
		authority_text(g->name != NULL ? g->name : "-", g->port, tun,
		    sizeof(tun));
		switch (g->inner) {
		case AUD_INNER_TLS:
			if (g->inner_name != NULL)
				printf("  %s: the ClientHello names %s", tun,
				    g->inner_name);
			else
				printf("  %s: the ClientHello's server name is "
				    "not a host name", tun);
			break;
		case AUD_INNER_TLS_NO_SNI:
			printf("  %s: the ClientHello names no server", tun);
			break;
		case AUD_INNER_HTTP:
			printf("  %s: the request in the tunnel is for %s", tun,
			    authority_text(g->inner_name != NULL ?
			    g->inner_name : "-", g->inner_port, in, sizeof(in)));
			break;
		default:
			printf("  %s: neither TLS nor HTTP in the tunnel", tun);
			break;
		}
		printf(" (%llu)\n", (unsigned long long)g->count);
	}
}

/*
 * ClientHellos that offered ECH: the name a capture (and the gateway)
 * sees is then the outer, public one, not the server the client reaches.
 */
static void
print_text_ech(const struct audit *a)
{
	static const enum aud_table_id ids[2] = { AUD_T_DENIED, AUD_T_ALLOWED };
	int any = 0;

	for (int t = 0; t < 2; t++) {
		const struct aud_table *tab = audit_table(a, ids[t]);

		for (size_t k = 0; k < tab->n; k++) {
			const struct aud_group *g = &tab->g[k];

			if (g->ech_count == 0)
				continue;
			if (!any)
				printf("\nECH offered (the name is the outer, "
				    "public one; the server reached is "
				    "encrypted):\n");
			any = 1;
			printf("  %s:%u %s %s: %llu of %llu ClientHello(s)\n",
			    g->name != NULL ? g->name : "-", g->port,
			    pol_proto_str(g->proto), g->allow ? "allowed" :
			    g->reason, (unsigned long long)g->ech_count,
			    (unsigned long long)g->hellos);
		}
	}
}

static void
print_summary(const struct audit *a, int ncap)
{
	const struct aud_counts *c = audit_counts(a);
	uint64_t skipped = audit_skipped_total(a);

	printf("audit: %llu flows in %d capture(s): %llu allowed, %llu would "
	    "be denied (%zu names)", (unsigned long long)c->decisions, ncap,
	    (unsigned long long)c->nallowed, (unsigned long long)c->ndenied,
	    distinct_names(audit_table(a, AUD_T_DENIED)));
	if (skipped > 0)
		printf(", %llu not judged", (unsigned long long)skipped);
	printf("; %llu DNS queries\n", (unsigned long long)c->nqueries);
}

static void
output_text(const struct audit *a, int ncap)
{
	const struct aud_counts *c = audit_counts(a);
	uint64_t skipped = audit_skipped_total(a);

	if (audit_table(a, AUD_T_DENIED)->n > 0) {
		printf("would be denied:\n");
		print_text_groups(audit_table(a, AUD_T_DENIED), 1);
		print_text_inner(audit_table(a, AUD_T_DENIED));
	} else {
		printf("would be denied: nothing\n");
	}
	printf("\n");
	if (audit_table(a, AUD_T_ALLOWED)->n > 0) {
		printf("allowed:\n");
		print_text_groups(audit_table(a, AUD_T_ALLOWED), 0);
	} else {
		printf("allowed: nothing\n");
	}
	printf("\n");
	if (audit_table(a, AUD_T_DNS)->n > 0) {
		printf("DNS queries (a name looked up is not a connection; "
		    "the verdict is the policy's for the name on port 443):\n");
		print_text_dns(audit_table(a, AUD_T_DNS));
	} else {
		printf("DNS queries: none\n");
	}
	if (skipped > 0) {
		printf("\nnot judged:\n");
		for (int i = 0; i < AUD_SKIP_MAX; i++)
			if (c->skipped[i] > 0)
				printf("  %llu %s: %s\n",
				    (unsigned long long)c->skipped[i],
				    aud_skip_str((enum aud_skip)i), aud_skip_text((enum aud_skip)i));
	}
	if (c->fragments > 0)
		printf("\nIP fragments ignored: %llu\n",
		    (unsigned long long)c->fragments);
	print_text_ech(a);
	printf("\n");
	print_summary(a, ncap);
}

static void
json_group(const struct aud_group *g, int dns)
{
	char ts[40], tb[16];

	printf("{\"name\":");
	if (g->name != NULL)
		ctl_json_str(stdout, g->name);
	else
		printf("null");
	if (dns) {
		printf(",\"types\":[");
		for (size_t i = 0; i < g->nqtypes; i++) {
			printf("%s", i ? "," : "");
			ctl_json_str(stdout, qtype_str(g->qtypes[i], tb,
			    sizeof(tb)));
		}
		printf("],\"verdict_443\":");
		ctl_json_str(stdout, g->allow ? "allow" : "deny");
	} else {
		printf(",\"port\":%u,\"proto\":", g->port);
		ctl_json_str(stdout, pol_proto_str(g->proto));
	}
	printf(",\"reason\":");
	ctl_json_str(stdout, g->reason);
	printf(",\"report_mode\":%s,\"rule\":", g->report ? "true" : "false");
	if (g->rule == NULL) {
		printf("null");
	} else {
		printf("{\"file\":");
		ctl_json_str(stdout, g->rule->file);
		printf(",\"line\":%u,\"name\":", g->rule->line);
		ctl_json_str(stdout, g->rule->name);
		printf(",\"action\":");
		ctl_json_str(stdout, pol_action_str(g->rule->action));
		printf(",\"pattern\":");
		ctl_json_str(stdout, g->rule->pattern);
		printf(",\"mode\":");
		ctl_json_str(stdout, pol_mode_str(g->rule->mode));
		printf("}");
	}
	/* null: no ClientHello was read for the row (HTTP, DNS, a hello
	 * that did not parse); true: at least one offered ECH. */
	printf(",\"ech\":%s,\"ech_count\":%llu", g->hellos == 0 ? "null" :
	    g->ech_count > 0 ? "true" : "false",
	    (unsigned long long)g->ech_count);
	printf(",\"count\":%llu,\"first_seen\":",
	    (unsigned long long)g->count);
	ctl_json_str(stdout, iso_time(g->first_us, ts, sizeof(ts)));
	printf(",\"last_seen\":");
	ctl_json_str(stdout, iso_time(g->last_us, ts, sizeof(ts)));
	printf(",\"sources\":[");
	for (size_t i = 0; i < g->nsrc; i++) {
		printf("%s", i ? "," : "");
		ctl_json_str(stdout, g->src[i]);
	}
	printf("]");
	if (g->inner != AUD_INNER_NONE) {
		/* Only on rows refused for what was inside a tunnel. */
		printf(",\"inner\":{\"proto\":");
		ctl_json_str(stdout, g->inner == AUD_INNER_TLS ||
		    g->inner == AUD_INNER_TLS_NO_SNI ? "tls" :
		    g->inner == AUD_INNER_HTTP ? "http" : NULL);
		printf(",\"name\":");
		if (g->inner_name != NULL)
			ctl_json_str(stdout, g->inner_name);
		else
			printf("null");
		if (g->inner == AUD_INNER_HTTP)
			printf(",\"port\":%u}", g->inner_port);
		else
			printf(",\"port\":null}");
	}
	printf("}");
}

/* Flows whose ClientHello offered ECH, over both tables. */
static uint64_t
ech_total(const struct audit *a)
{
	uint64_t n = 0;

	for (int t = AUD_T_DENIED; t <= AUD_T_ALLOWED; t++)
		for (size_t k = 0; k < audit_table(a, (enum aud_table_id)t)->n; k++)
			n += audit_table(a, (enum aud_table_id)t)->g[k].ech_count;
	return n;
}

static void
output_json(const struct audit *a, char **caps, int ncap)
{
	const struct aud_counts *c = audit_counts(a);
	const struct aud_table *tabs[3] = { audit_table(a, AUD_T_DENIED), audit_table(a, AUD_T_ALLOWED), audit_table(a, AUD_T_DNS) };
	static const char *const keys[3] = { "denied", "allowed", "dns" };

	printf("{\"captures\":[");
	for (int i = 0; i < ncap; i++) {
		printf("%s", i ? "," : "");
		ctl_json_str(stdout, caps[i]);
	}
	printf("],\"summary\":{\"flows\":%llu,\"allowed\":%llu,"
	    "\"would_deny\":%llu,\"denied_names\":%zu,\"not_judged\":%llu,"
	    "\"dns_queries\":%llu,\"connections\":%llu,\"packets\":%llu,"
	    "\"fragments\":%llu,\"ech_count\":%llu}",
	    (unsigned long long)c->decisions, (unsigned long long)c->nallowed,
	    (unsigned long long)c->ndenied, distinct_names(audit_table(a, AUD_T_DENIED)),
	    (unsigned long long)audit_skipped_total(a),
	    (unsigned long long)c->nqueries, (unsigned long long)c->flows,
	    (unsigned long long)c->packets,
	    (unsigned long long)c->fragments,
	    (unsigned long long)ech_total(a));
	for (int t = 0; t < 3; t++) {
		printf(",");
		ctl_json_str(stdout, keys[t]);
		printf(":[");
		for (size_t i = 0; i < tabs[t]->n; i++) {
			printf("%s", i ? "," : "");
			json_group(&tabs[t]->g[i], t == 2);
		}
		printf("]");
	}
	printf(",\"dns_note\":");
	ctl_json_str(stdout, "a name looked up is not a connection; "
	    "verdict_443 is the policy's verdict for the name on port 443");
	printf(",\"not_judged\":{");
	for (int i = 0; i < AUD_SKIP_MAX; i++) {
		printf("%s", i ? "," : "");
		ctl_json_str(stdout, aud_skip_str((enum aud_skip)i));
		printf(":%llu", (unsigned long long)c->skipped[i]);
	}
	printf("}}\n");
}

/* ---- main ---------------------------------------------------------------- */

static int
parse_portmap(struct aud_options *o, const char *arg)
{
	const char *eq = strchr(arg, '=');

	if (o->npmap == AUD_PORTMAP_MAX) {
		fprintf(stderr, "egressctl audit: at most %d --port-map\n",
		    AUD_PORTMAP_MAX);
		return -1;
	}
	if (eq == NULL ||
	    ctl_parse_port(arg, eq, &o->pmap[o->npmap].from) != 0 ||
	    ctl_parse_port(eq + 1, eq + strlen(eq),
	    &o->pmap[o->npmap].to) != 0) {
		fprintf(stderr, "egressctl audit: --port-map '%s': give "
		    "CAPTURED=POLICY, two ports 1-65535 (e.g. 8443=443)\n", arg);
		return -1;
	}
	o->npmap++;
	return 0;
}

int
ctl_audit_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "format", required_argument, NULL, 'f' },
		{ "port-map", required_argument, NULL, 'm' },
		{ "dns-port", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct aud_options o;
	struct audit *a = NULL;
	struct gw_config *cfg = NULL;
	struct pol_snapshot *snap = NULL;
	const char *config = NULL;
	int ch, ncap, json = 0, rc = CTL_EXIT_USAGE;

	memset(&o, 0, sizeof(o));
	optind = 0;
	while ((ch = getopt_long(argc, argv, "c:f:m:d:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				json = 1;
			else if (strcmp(optarg, "text") != 0) {
				fprintf(stderr, "egressctl audit: --format '%s': "
				    "give text or json\n", optarg);
				goto out;
			}
			break;
		case 'm':
			if (parse_portmap(&o, optarg) != 0)
				goto out;
			break;
		case 'd':
			if (o.ndns_ports == AUD_PORTMAP_MAX ||
			    ctl_parse_port(optarg, optarg + strlen(optarg),
			    &o.dns_ports[o.ndns_ports]) != 0) {
				fprintf(stderr, "egressctl audit: --dns-port '%s': "
				    "give a port 1-65535\n", optarg);
				goto out;
			}
			o.ndns_ports++;
			break;
		case 'h':
			audit_usage(stdout);
			rc = CTL_EXIT_OK;
			goto out;
		default:
			audit_usage(stderr);
			goto out;
		}
	}
	ncap = argc - optind;
	if (config == NULL || ncap < 1) {
		fprintf(stderr, "egressctl audit: %s\n\n", config == NULL ?
		    "-c CONFIG is required (audit decides with the daemon's own "
		    "configuration)" : "give at least one CAPTURE file");
		audit_usage(stderr);
		goto out;
	}

	snap = ctl_load_policy("audit", config, NULL, &cfg);
	if (snap == NULL)
		goto out;
	o.refuse_ech = cfg->refuse_ech;
	if ((a = audit_new(snap, &o)) == NULL) {
		fprintf(stderr, "egressctl: out of memory\n");
		goto out;
	}

	for (int i = optind; i < argc; i++)
		if (audit_capture(a, argv[i]) != 0)
			goto out;

	audit_sort(a);
	fflush(stderr);
	if (json)
		output_json(a, argv + optind, ncap);
	else
		output_text(a, ncap);
	rc = audit_counts(a)->ndenied > 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
out:
	audit_free(a);
	pol_snapshot_unref(snap);
	gw_config_free(cfg);
	return rc;
}

/*
 * egressctl reasons: the vocabulary of reasons (DESIGN §6), printed from
 * the one table the daemon reads (decide/reason.c): the name a log line's
 * "reason" and a metric's label carry, the event of a line refused or
 * ended for it, the TLS alert and HTTP status the client gets, and one
 * line of documentation. docs/log.md's table is checked against the tsv
 * form by tests/integration/reasons.sh.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "decide/decide.h"
#include "tools/ctl.h"

enum reasons_format { RF_TEXT, RF_JSON, RF_TSV };

static void
reasons_usage(FILE *f)
{
	fprintf(f,
	    "usage: egressctl reasons [--format text|json|tsv]\n"
	    "\n"
	    "  -f, --format FORMAT  text (default, a table), json (one object)\n"
	    "                       or tsv (a header line, then one line per\n"
	    "                       reason: reason, event, tls_alert,\n"
	    "                       http_status, doc; '-' for none)\n"
	    "  -h, --help           print this help\n"
	    "\n"
	    "Exit status: 0, or 2 for a usage error.\n");
}

/* The TLS alerts the table uses, by their RFC 8446 names. */
static const char *
alert_name(int alert)
{
	switch (alert) {
	case 49:
		return "access_denied";
	case 50:
		return "decode_error";
	case 80:
		return "internal_error";
	}
	return "alert";
}

/* "access_denied (49)", or "-" for none. */
static const char *
alert_text(int alert, char *buf, size_t len)
{
	if (alert == DC_NO_ALERT)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s (%d)", alert_name(alert), alert);
	return buf;
}

static const char *
status_text(int status, char *buf, size_t len)
{
	if (status == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%d", status);
	return buf;
}

static void
print_text(void)
{
	char a[40], h[16];
	int wn = (int)strlen("REASON"), wa = (int)strlen("TLS ALERT");

	for (int i = 0; i < DC_REASON_COUNT; i++) {
		const struct dc_reason_info *ri = dc_reason_info((enum dc_reason)i);
		int l = (int)strlen(ri->name);
		int la = (int)strlen(alert_text(ri->tls_alert, a, sizeof(a)));

		if (l > wn)
			wn = l;
		if (la > wa)
			wa = la;
	}
	printf("%-*s  %-5s  %-*s  %-4s  %s\n", wn, "REASON", "EVENT", wa,
	    "TLS ALERT", "HTTP", "WHAT HAPPENED");
	for (int i = 0; i < DC_REASON_COUNT; i++) {
		const struct dc_reason_info *ri = dc_reason_info((enum dc_reason)i);

		printf("%-*s  %-5s  %-*s  %-4s  %s\n", wn, ri->name,
		    dc_event_str(ri->event), wa,
		    alert_text(ri->tls_alert, a, sizeof(a)), status_text(
		    ri->http_status, h, sizeof(h)), ri->doc);
	}
}

static void
print_json(void)
{
	printf("{\"reasons\":[");
	for (int i = 0; i < DC_REASON_COUNT; i++) {
		const struct dc_reason_info *ri = dc_reason_info((enum dc_reason)i);

		printf("%s{\"name\":", i > 0 ? "," : "");
		ctl_json_str(stdout, ri->name);
		printf(",\"event\":");
		ctl_json_str(stdout, dc_event_str(ri->event));
		printf(",\"tls_alert\":");
		if (ri->tls_alert == DC_NO_ALERT)
			printf("null,\"tls_alert_name\":null");
		else {
			printf("%d,\"tls_alert_name\":", ri->tls_alert);
			ctl_json_str(stdout, alert_name(ri->tls_alert));
		}
		printf(",\"http_status\":");
		if (ri->http_status == 0)
			printf("null");
		else
			printf("%d", ri->http_status);
		printf(",\"doc\":");
		ctl_json_str(stdout, ri->doc);
		printf("}");
	}
	printf("]}\n");
}

/* Tabs and newlines have no place in a field: none in the table, but a
 * reader splitting on them must not be misled if one came. */
static void
tsv_field(const char *s)
{
	for (; *s != '\0'; s++)
		putchar(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s);
}

static void
print_tsv(void)
{
	char h[16];

	printf("reason\tevent\ttls_alert\thttp_status\tdoc\n");
	for (int i = 0; i < DC_REASON_COUNT; i++) {
		const struct dc_reason_info *ri = dc_reason_info((enum dc_reason)i);

		tsv_field(ri->name);
		printf("\t%s\t", dc_event_str(ri->event));
		if (ri->tls_alert == DC_NO_ALERT)
			printf("-");
		else
			printf("%d", ri->tls_alert);
		printf("\t%s\t", status_text(ri->http_status, h, sizeof(h)));
		tsv_field(ri->doc);
		printf("\n");
	}
}

int
ctl_reasons_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum reasons_format fmt = RF_TEXT;
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			if (strcmp(optarg, "text") == 0)
				fmt = RF_TEXT;
			else if (strcmp(optarg, "json") == 0)
				fmt = RF_JSON;
			else if (strcmp(optarg, "tsv") == 0)
				fmt = RF_TSV;
			else {
				fprintf(stderr, "egressctl reasons: --format '%s': "
				    "give text, json or tsv\n", optarg);
				return CTL_EXIT_USAGE;
			}
			break;
		case 'h':
			reasons_usage(stdout);
			return CTL_EXIT_OK;
		default:
			reasons_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "egressctl reasons: no arguments are taken\n\n");
		reasons_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	switch (fmt) {
	case RF_TEXT:
		print_text();
		break;
	case RF_JSON:
		print_json();
		break;
	case RF_TSV:
		print_tsv();
		break;
	}
	return CTL_EXIT_OK;
}

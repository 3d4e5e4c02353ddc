/*
 * policy: patterns, loading (with the exact diagnostics), and decisions.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy/yamldoc.h"
#include "tap.h"

/* Diagnostics collected as "file:line:col: msg" lines, errors only or all. */
struct diags {
	char text[16384];
	size_t len;
	unsigned errors, warnings, notices;
};

static void collect(void *arg, enum pol_severity sev, const char *file,
    unsigned line, unsigned col, const char *msg)
{
	struct diags *d = arg;
	int n;

	if (sev == POL_ERROR)
		d->errors++;
	else if (sev == POL_WARNING)
		d->warnings++;
	else
		d->notices++;
	n = snprintf(d->text + d->len, sizeof(d->text) - d->len, "%s%s:%u:%u: %s",
	    d->len ? "\n" : "", file ? file : "-", line, col, msg);
	if (n > 0 && (size_t)n < sizeof(d->text) - d->len)
		d->len += (size_t)n;
}

static struct pol_snapshot *load_str(const char *text, struct diags *d)
{
	memset(d, 0, sizeof(*d));
	return pol_load_buffer("t.yaml", text, strlen(text), collect, d);
}

static void test_strings(void)
{
	tap_is_str(pol_reason_str(POL_R_ALLOWED), "allowed", "reason allowed");
	tap_is_str(pol_reason_str(POL_R_NOT_ALLOWED), "not_allowed", "reason not_allowed");
	tap_is_str(pol_reason_str(POL_R_DENIED_BY_RULE), "denied_by_rule", "reason denied_by_rule");
	tap_is_str(pol_reason_str(POL_R_PORT_NOT_ALLOWED), "port_not_allowed",
	    "reason port_not_allowed");
	tap_is_str(pol_action_str(POL_ALLOW), "allow", "action allow");
	tap_is_str(pol_action_str(POL_DENY), "deny", "action deny");
	tap_is_str(pol_pattern_kind_str(POL_PAT_EXACT), "exact", "kind exact");
	tap_is_str(pol_pattern_kind_str(POL_PAT_SUBDOMAINS), "subdomains", "kind subdomains");
	tap_is_str(pol_pattern_kind_str(POL_PAT_DOMAIN), "domain", "kind domain");
	tap_is_str(pol_pattern_kind_str(POL_PAT_ANY), "any", "kind any");
	tap_is_str(pol_proto_str(POL_PROTO_TLS), "tls", "proto tls");
	tap_is_str(pol_proto_str(POL_PROTO_HTTP), "http", "proto http");
	tap_is_str(pol_proto_str(POL_PROTO_CONNECT), "connect", "proto connect");
}

#define HINT_WILD "a wildcard must be a whole leftmost label, as in *.example.com"
#define HINT_IP "IP addresses are not host names; allow the name clients connect to"
#define HINT_REGEX "regular expressions are not supported; use example.com, " \
	"*.example.com or .example.com"
#define HINT_EMPTY "empty label (two dots in a row, or a dot at the start or end)"

static void test_patterns(void)
{
	static const struct {
		const char *in;
		int kind;               /* -1: rejected */
		const char *want;       /* normalised pattern, or the hint */
	} cases[] = {
		{ "example.com", POL_PAT_EXACT, "example.com" },
		{ "Example.COM", POL_PAT_EXACT, "example.com" },
		{ "example.com.", POL_PAT_EXACT, "example.com" },
		{ "*.example.com", POL_PAT_SUBDOMAINS, "*.example.com" },
		{ "*.Example.Com.", POL_PAT_SUBDOMAINS, "*.example.com" },
		{ ".example.com", POL_PAT_DOMAIN, ".example.com" },
		{ ".example.com.", POL_PAT_DOMAIN, ".example.com" },
		{ "*", POL_PAT_ANY, "*" },
		{ "*.com", POL_PAT_SUBDOMAINS, "*.com" },
		{ "localhost", POL_PAT_EXACT, "localhost" },
		{ "_acme-challenge.example.com", POL_PAT_EXACT, "_acme-challenge.example.com" },
		{ "xn--bcher-kva.de", POL_PAT_EXACT, "xn--bcher-kva.de" },
		{ "a-b.c1.example", POL_PAT_EXACT, "a-b.c1.example" },
		{ "1password.com", POL_PAT_EXACT, "1password.com" },
		{ "", -1, "empty host pattern" },
		{ "*foo.com", -1, "a wildcard must be a whole leftmost label: *.foo.com" },
		{ "foo*.com", -1, HINT_WILD },
		{ "foo.*.com", -1, HINT_WILD },
		{ "foo.*", -1, HINT_WILD },
		{ "*.*.com", -1, HINT_WILD },
		{ ".*", -1, HINT_WILD },
		{ "**.x", -1, "'**' is not a pattern; *.x already matches any depth" },
		{ "**", -1, "'**' is not a pattern; *.example.com already matches any depth" },
		{ "^api\\.example\\.com$", -1, HINT_REGEX },
		{ "(a|b).example.com", -1, HINT_REGEX },
		{ "a+.example.com", -1, HINT_REGEX },
		{ "10.0.0.1", -1, HINT_IP },
		{ "10.0.0.0/8", -1, HINT_IP },
		{ "192.0.2.1:443", -1, HINT_IP },
		{ "::1", -1, HINT_IP },
		{ "2001:db8::1", -1, HINT_IP },
		{ "[2001:db8::1]", -1, HINT_IP },
		{ "*.10.0.0.1", -1, HINT_IP },
		{ "b\xc3\xbc" "cher.de", -1, "non-ASCII host name: use the punycode (xn--) form" },
		{ "a..b", -1, HINT_EMPTY },
		{ "example.com..", -1, HINT_EMPTY },
		{ "..example.com", -1, HINT_EMPTY },
		{ "*..example.com", -1, HINT_EMPTY },
		{ "-a.com", -1, "label '-a' starts or ends with a hyphen" },
		{ "a-.com", -1, "label 'a-' starts or ends with a hyphen" },
		{ "*.", -1, "'*.' is not a pattern; use * for any name" },
		{ ".", -1, "'.' is not a pattern; use * for any name" },
		{ "..", -1, "'..' is not a pattern; use * for any name" },
		{ "a.com:443", -1, "a port does not belong in a host pattern; use ports: [...]" },
		{ "https://a.com", -1, "a URL is not a host pattern; give the host name only" },
		{ "a.com/path", -1, "a path does not belong in a host pattern; give the host name only" },
		{ "a b.com", -1, "host patterns may not contain spaces or control characters" },
		{ "a\tb.com", -1, "host patterns may not contain spaces or control characters" },
		{ "a@b.com", -1, "invalid character '@' (allowed: letters, digits, '-', '_' and '.')" },
	};
	enum pol_pattern_kind kind;
	char out[POL_NAME_MAX + 3], err[200];
	const char *outp = out, *errp = err;
	char big[400];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		err[0] = out[0] = '\0';
		rc = pol_pattern_parse(cases[i].in, &kind, out, sizeof(out), err, sizeof(err));
		if (cases[i].kind >= 0) {
			tap_is_int(rc, 0, "pattern '%s' accepted", cases[i].in);
			tap_is_int(kind, cases[i].kind, "pattern '%s' is %s", cases[i].in,
			    pol_pattern_kind_str((enum pol_pattern_kind)cases[i].kind));
			tap_is_str(outp, cases[i].want, "pattern '%s' normalised", cases[i].in);
		} else {
			tap_is_int(rc, -1, "pattern '%s' rejected", cases[i].in);
			tap_is_str(errp, cases[i].want, "pattern '%s' hint", cases[i].in);
		}
	}

	/* Label and name lengths at and past the limits. */
	memset(big, 'a', 63);
	memcpy(big + 63, ".com", 5);
	tap_is_int(pol_pattern_parse(big, &kind, out, sizeof(out), err, sizeof(err)), 0,
	    "63-byte label accepted");
	memset(big, 'a', 64);
	memcpy(big + 64, ".com", 5);
	tap_is_int(pol_pattern_parse(big, &kind, out, sizeof(out), err, sizeof(err)), -1,
	    "64-byte label rejected");
	tap_is_str(errp, "label 'aaaaaaaaaaaaaaaa...' is longer than 63 characters",
	    "64-byte label hint");
	/* 4 x 63 + 3 dots = 255: too long; 3 x 63 + 61 + 3 = 253: fine. */
	memset(big, 'b', 63);
	memset(big + 64, 'c', 63);
	memset(big + 128, 'd', 63);
	memset(big + 192, 'e', 61);
	big[63] = big[127] = big[191] = '.';
	big[253] = '\0';
	tap_is_int(strlen(big), 253, "name of 253 bytes built");
	tap_is_int(pol_pattern_parse(big, &kind, out, sizeof(out), err, sizeof(err)), 0,
	    "253-byte name accepted");
	big[253] = '.';
	big[254] = '\0';
	tap_is_int(pol_pattern_parse(big, &kind, out, sizeof(out), err, sizeof(err)), 0,
	    "253-byte name with a trailing dot accepted");
	tap_is_int(strlen(out), 253, "trailing dot dropped from a 253-byte name");
	big[253] = 'e';
	tap_is_int(pol_pattern_parse(big, &kind, out, sizeof(out), err, sizeof(err)), -1,
	    "254-byte name rejected");
	tap_is_str(errp, "host name is longer than 253 characters", "254-byte name hint");
	big[253] = '\0';
	memmove(big + 2, big, 254);
	big[0] = '*';
	big[1] = '.';
	tap_is_int(pol_pattern_parse(big, &kind, out, sizeof(out), err, sizeof(err)), 0,
	    "*. + 253-byte name accepted (fills the output buffer)");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	tap_is_int(pol_pattern_parse(big, &kind, out, sizeof(out), err, sizeof(err)), -1,
	    "very long pattern rejected");
	tap_is_int(pol_pattern_parse("example.com", &kind, out, 5, err, sizeof(err)), -1,
	    "short output buffer rejected");
}

static const char main_policy[] =
	"allow:\n"
	"  - name: exact\n"
	"    hosts: [\"example.com\", \"*.wild.test\"]\n"
	"    ports: [443, 8443]\n"
	"  - hosts: [\".dom.test\"]\n"
	"  - hosts: [\"http.test\"]\n"
	"  - hosts: [\".corp.test\"]\n"
	"    ports: [443, 22]\n"
	"    allow_private: true\n"
	"deny:\n"
	"  - hosts: [\"secret.corp.test\"]\n"
	"  - hosts: [\"evil.wild.test\"]\n"
	"    ports: [443]\n"
	"    name: no-evil\n"
	"  - hosts: [\"*.bad.dom.test\"]\n";

/* Never NULL, so a missing rule shows in the diagnostics. */
static const char *rule_pattern(const struct pol_rule *r)
{
	return r != NULL ? r->pattern : "(no rule)";
}

static const char *rule_name(const struct pol_rule *r)
{
	return r != NULL ? r->name : "(no rule)";
}

struct decide_case {
	const char *name;
	unsigned port;
	enum pol_proto proto;
	enum pol_reason reason;
	const char *pattern;    /* deciding rule, NULL for none */
	const char *rule_name;
};

static void run_decide_cases(const struct pol_snapshot *s, const char *label,
    const struct decide_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pol_request req = {
			.name = c[i].name, .port = (uint16_t)c[i].port, .proto = c[i].proto,
		};
		struct pol_verdict v;

		pol_decide(s, &req, &v);
		tap_is_str(pol_reason_str(v.reason), pol_reason_str(c[i].reason),
		    "%s: %s:%u/%s -> %s", label, c[i].name ? c[i].name : "(null)",
		    c[i].port, pol_proto_str(c[i].proto), pol_reason_str(c[i].reason));
		tap_is_int(v.allow, c[i].reason == POL_R_ALLOWED, "%s: %s:%u allow flag",
		    label, c[i].name ? c[i].name : "(null)", c[i].port);
		if (c[i].pattern == NULL) {
			tap_ok(v.rule == NULL, "%s: %s:%u no rule", label,
			    c[i].name ? c[i].name : "(null)", c[i].port);
		} else {
			tap_is_str(rule_pattern(v.rule), c[i].pattern,
			    "%s: %s:%u decided by %s", label, c[i].name, c[i].port,
			    c[i].pattern);
			if (c[i].rule_name != NULL)
				tap_is_str(rule_name(v.rule), c[i].rule_name,
				    "%s: %s:%u rule name", label, c[i].name, c[i].port);
		}
	}
}

static void test_decide(void)
{
	static const struct decide_case cases[] = {
		/* exact */
		{ "example.com", 443, POL_PROTO_TLS, POL_R_ALLOWED, "example.com", "exact" },
		{ "example.com", 8443, POL_PROTO_TLS, POL_R_ALLOWED, "example.com", "exact" },
		{ "example.com", 80, POL_PROTO_HTTP, POL_R_PORT_NOT_ALLOWED, "example.com", "exact" },
		{ "a.example.com", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ "xexample.com", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ "com", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		/* names are normalised again: case and one trailing dot */
		{ "EXAMPLE.com", 443, POL_PROTO_TLS, POL_R_ALLOWED, "example.com", "exact" },
		{ "example.com.", 443, POL_PROTO_TLS, POL_R_ALLOWED, "example.com", "exact" },
		{ "example.com..", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		/* *.wild.test: any depth, not the apex, not a longer label */
		{ "a.wild.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, "*.wild.test", "exact" },
		{ "a.b.c.wild.test", 8443, POL_PROTO_CONNECT, POL_R_ALLOWED, "*.wild.test", NULL },
		{ "wild.test", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ "badwild.test", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ "a.badwild.test", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ "a.wild.test", 22, POL_PROTO_TLS, POL_R_PORT_NOT_ALLOWED, "*.wild.test", NULL },
		/* .dom.test: apex and any depth, default port per protocol */
		{ "dom.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, ".dom.test", "allow[1]" },
		{ "x.dom.test", 443, POL_PROTO_CONNECT, POL_R_ALLOWED, ".dom.test", "allow[1]" },
		{ "x.y.z.dom.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, ".dom.test", NULL },
		{ "baddom.test", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ "dom.test.evil", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ "dom.test", 80, POL_PROTO_TLS, POL_R_PORT_NOT_ALLOWED, ".dom.test", NULL },
		{ "dom.test", 80, POL_PROTO_HTTP, POL_R_ALLOWED, ".dom.test", NULL },
		{ "dom.test", 443, POL_PROTO_HTTP, POL_R_PORT_NOT_ALLOWED, ".dom.test", NULL },
		/* deny *.bad.dom.test beats the broader allow, on every port */
		{ "x.bad.dom.test", 443, POL_PROTO_TLS, POL_R_DENIED_BY_RULE,
		  "*.bad.dom.test", "deny[2]" },
		{ "x.bad.dom.test", 80, POL_PROTO_HTTP, POL_R_DENIED_BY_RULE, "*.bad.dom.test", NULL },
		{ "x.bad.dom.test", 9, POL_PROTO_TLS, POL_R_DENIED_BY_RULE, "*.bad.dom.test", NULL },
		{ "bad.dom.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, ".dom.test", NULL },
		/* default ports */
		{ "http.test", 80, POL_PROTO_HTTP, POL_R_ALLOWED, "http.test", "allow[2]" },
		{ "http.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, "http.test", NULL },
		{ "http.test", 443, POL_PROTO_CONNECT, POL_R_ALLOWED, "http.test", NULL },
		{ "http.test", 80, POL_PROTO_TLS, POL_R_PORT_NOT_ALLOWED, "http.test", NULL },
		{ "http.test", 8080, POL_PROTO_HTTP, POL_R_PORT_NOT_ALLOWED, "http.test", NULL },
		/* deny beats an allow that admits the name and port */
		{ "secret.corp.test", 443, POL_PROTO_TLS, POL_R_DENIED_BY_RULE,
		  "secret.corp.test", "deny[0]" },
		{ "secret.corp.test", 22, POL_PROTO_CONNECT, POL_R_DENIED_BY_RULE,
		  "secret.corp.test", NULL },
		{ "other.corp.test", 22, POL_PROTO_CONNECT, POL_R_ALLOWED, ".corp.test", "allow[3]" },
		{ "a.secret.corp.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, ".corp.test", NULL },
		/* a deny with ports covers only those */
		{ "evil.wild.test", 443, POL_PROTO_TLS, POL_R_DENIED_BY_RULE,
		  "evil.wild.test", "no-evil" },
		{ "evil.wild.test", 8443, POL_PROTO_TLS, POL_R_ALLOWED, "*.wild.test", "exact" },
		/* no name, or junk: never allowed, never a crash */
		{ NULL, 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ "", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ ".", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ "..", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ ".wild.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, "*.wild.test", NULL },
		{ "\xff\x01.dom.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, ".dom.test", NULL },
	};
	struct diags d;
	struct pol_snapshot *s = load_str(main_policy, &d);
	const struct pol_rule *r;

	if (!tap_ok(s != NULL, "main policy loads")) {
		tap_diag("%s", d.text);
		return;
	}
	tap_is_int(d.errors + d.warnings + d.notices, 0, "main policy: no diagnostics");
	tap_is_int(pol_snapshot_rule_count(s), 8, "one rule per host");
	run_decide_cases(s, "main", cases, sizeof(cases) / sizeof(cases[0]));

	/* where each rule came from */
	r = pol_snapshot_rule(s, 1);
	tap_is_str(r->pattern, "*.wild.test", "rule 1 pattern");
	tap_is_str(r->suffix, "wild.test", "rule 1 suffix");
	tap_is_str(r->file, "t.yaml", "rule 1 file");
	tap_is_int(r->line, 3, "rule 1 line");
	tap_is_int(r->col, 28, "rule 1 column");
	tap_is_str(r->name, "exact", "rule 1 name");
	tap_is_int(r->kind, POL_PAT_SUBDOMAINS, "rule 1 kind");
	tap_is_int(r->action, POL_ALLOW, "rule 1 action");
	tap_is_int(r->nports, 2, "rule 1 has two ports");
	tap_is_int(r->ports[1], 8443, "rule 1 second port");
	r = pol_snapshot_rule(s, 4);
	tap_is_str(r->pattern, ".corp.test", "rule 4 pattern");
	tap_is_str(r->suffix, "corp.test", "rule 4 suffix");
	tap_is_int(r->line, 7, "rule 4 line");
	tap_is_int(r->col, 13, "rule 4 column");
	tap_is_int(r->allow_private, 1, "rule 4 allow_private");
	tap_is_int(pol_snapshot_rule(s, 2)->allow_private, 0, "allow_private defaults to 0");
	r = pol_snapshot_rule(s, 7);
	tap_is_int(r->action, POL_DENY, "rule 7 is a deny");
	tap_is_str(r->name, "deny[2]", "rule 7 default name");
	tap_is_str(pol_snapshot_rule(s, 6)->name, "no-evil", "rule 6 named");
	tap_ok(pol_snapshot_rule(s, 8) == NULL, "rule past the end is NULL");

	tap_is_int(pol_snapshot_generation(s), 0, "generation starts at 0");
	pol_snapshot_set_generation(s, 42);
	tap_is_int(pol_snapshot_generation(s), 42, "generation set");
	tap_ok(pol_snapshot_ref(s) == s, "ref returns the snapshot");
	pol_snapshot_unref(s);
	tap_is_int(pol_snapshot_rule_count(s), 8, "still alive after ref+unref");
	pol_snapshot_unref(s);
}

static const char prec_policy[] =
	"allow:\n"
	"  - {name: star, hosts: [\"*\"], ports: [443, 80]}\n"
	"  - {name: p-domain, hosts: [\".p.test\"]}\n"
	"  - {name: a-sub, hosts: [\"*.a.p.test\"]}\n"
	"  - {name: b-exact, hosts: [\"b.a.p.test\"]}\n"
	"  - {name: b-domain, hosts: [\".b.a.p.test\"]}\n"
	"  - {name: first, hosts: [\"*.t.test\"]}\n"
	"  - {name: second, hosts: [\".t.test\"]}\n"
	"  - {name: dup1, hosts: [\"dup.test\"], ports: [1]}\n"
	"  - {name: dup2, hosts: [\"dup.test\"], ports: [2]}\n"
	"deny:\n"
	"  - {name: no-star-22, hosts: [\"*\"], ports: [22]}\n"
	"  - {name: deny-deep, hosts: [\"*.x.b.a.p.test\"]}\n"
	"  - {name: deny-b, hosts: [\".b.a.p.test\"], ports: [8443]}\n";

static void test_precedence(void)
{
	static const struct decide_case cases[] = {
		{ "b.a.p.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, "b.a.p.test", "b-exact" },
		{ "c.b.a.p.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, ".b.a.p.test", "b-domain" },
		{ "c.a.p.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, "*.a.p.test", "a-sub" },
		{ "a.p.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, ".p.test", "p-domain" },
		{ "p.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, ".p.test", "p-domain" },
		{ "zzz.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, "*", "star" },
		{ "localhost", 80, POL_PROTO_HTTP, POL_R_ALLOWED, "*", "star" },
		/* the most specific rule that admits the port decides */
		{ "b.a.p.test", 80, POL_PROTO_HTTP, POL_R_ALLOWED, "b.a.p.test", "b-exact" },
		{ "b.a.p.test", 80, POL_PROTO_TLS, POL_R_ALLOWED, "*", "star" },
		{ "b.a.p.test", 9999, POL_PROTO_TLS, POL_R_PORT_NOT_ALLOWED, "b.a.p.test", "b-exact" },
		{ "c.a.p.test", 9999, POL_PROTO_TLS, POL_R_PORT_NOT_ALLOWED, "*.a.p.test", "a-sub" },
		{ "zzz.test", 9999, POL_PROTO_TLS, POL_R_PORT_NOT_ALLOWED, "*", "star" },
		/* denies: the most specific deny that applies is reported */
		{ "zzz.test", 22, POL_PROTO_CONNECT, POL_R_DENIED_BY_RULE, "*", "no-star-22" },
		{ "y.x.b.a.p.test", 443, POL_PROTO_TLS, POL_R_DENIED_BY_RULE,
		  "*.x.b.a.p.test", "deny-deep" },
		{ "y.x.b.a.p.test", 22, POL_PROTO_TLS, POL_R_DENIED_BY_RULE,
		  "*.x.b.a.p.test", "deny-deep" },
		{ "x.b.a.p.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, ".b.a.p.test", "b-domain" },
		{ "x.b.a.p.test", 8443, POL_PROTO_TLS, POL_R_DENIED_BY_RULE,
		  ".b.a.p.test", "deny-b" },
		{ "b.a.p.test", 22, POL_PROTO_TLS, POL_R_DENIED_BY_RULE, "*", "no-star-22" },
		/* equal specificity: file order */
		{ "q.t.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, "*.t.test", "first" },
		{ "t.test", 443, POL_PROTO_TLS, POL_R_ALLOWED, ".t.test", "second" },
		/* duplicate exact patterns are both kept */
		{ "dup.test", 1, POL_PROTO_TLS, POL_R_ALLOWED, "dup.test", "dup1" },
		{ "dup.test", 2, POL_PROTO_TLS, POL_R_ALLOWED, "dup.test", "dup2" },
		{ "dup.test", 3, POL_PROTO_TLS, POL_R_PORT_NOT_ALLOWED, "dup.test", "dup1" },
		/* "*" does not admit a connection without a name */
		{ NULL, 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
		{ "", 443, POL_PROTO_TLS, POL_R_NOT_ALLOWED, NULL, NULL },
	};
	struct diags d;
	struct pol_snapshot *s = load_str(prec_policy, &d);

	if (!tap_ok(s != NULL, "precedence policy loads")) {
		tap_diag("%s", d.text);
		return;
	}
	run_decide_cases(s, "prec", cases, sizeof(cases) / sizeof(cases[0]));
	pol_snapshot_unref(s);
}

static void test_load_errors(void)
{
	static const struct {
		const char *what, *yaml, *want;
	} cases[] = {
		{ "unclosed flow sequence", "allow: [\n",
		  "t.yaml:2:1: syntax error: did not find expected node content "
		  "(while parsing a flow node at line 2)" },
		{ "bad indentation", "allow:\n  - hosts: [a.com]\n ports: [1]\n",
		  "t.yaml:3:2: syntax error: did not find expected key "
		  "(while parsing a block mapping at line 1)" },
		{ "invalid UTF-8", "allow:\n  - hosts: [a.com]\n  \xff\n",
		  "t.yaml:3:3: syntax error: invalid leading UTF-8 octet" },
		{ "alias", "a: &x [1]\nallow: *x\n",
		  "t.yaml:1:4: YAML anchors and aliases are not supported" },
		{ "document not a mapping", "- a\n",
		  "t.yaml:1:1: a policy document must be a mapping" },
		{ "unknown top key", "allow: []\nallows: []\n",
		  "t.yaml:2:1: unknown key 'allows' (expected one of: allow, deny, mode)" },
		{ "duplicate top key", "allow: []\ndeny: []\nallow: []\n",
		  "t.yaml:3:1: duplicate key 'allow' (first at line 1)" },
		{ "non-string key", "[a]: 1\n",
		  "t.yaml:1:1: a key must be a string" },
		{ "allow not a list", "allow: {hosts: [a.com]}\n",
		  "t.yaml:1:8: allow must be a list" },
		{ "deny not a list", "deny: a.com\n",
		  "t.yaml:1:7: deny must be a list" },
		{ "rule not a mapping", "allow:\n  - a.com\n",
		  "t.yaml:2:5: allow[0] must be a mapping" },
		{ "unknown rule key", "allow:\n  - hosts: [a.com]\n    port: [443]\n",
		  "t.yaml:3:5: unknown key 'port' (expected one of: hosts, ports, name, "
		  "sources, allow_private, originate_tls)" },
		{ "unknown deny rule key", "deny:\n  - hosts: [a.com]\n    why: x\n",
		  "t.yaml:3:5: unknown key 'why' (expected one of: hosts, ports, name, sources)" },
		{ "duplicate rule key", "allow:\n  - hosts: [a.com]\n    hosts: [b.com]\n",
		  "t.yaml:3:5: duplicate key 'hosts' (first at line 2)" },
		{ "unknown key, quoted", "allow:\n  - hosts: [a.com]\n    \"x\\ty\": 1\n",
		  "t.yaml:3:5: unknown key 'x\\x09y' (expected one of: hosts, ports, name, "
		  "sources, allow_private, originate_tls)" },
		{ "missing hosts", "allow:\n  - ports: [443]\n",
		  "t.yaml:2:5: missing required key 'hosts'" },
		{ "empty hosts", "allow:\n  - hosts: []\n",
		  "t.yaml:2:12: hosts must not be empty" },
		{ "null hosts", "allow:\n  - hosts:\n    ports: [1]\n",
		  "t.yaml:2:11: hosts must not be empty" },
		{ "hosts a string", "allow:\n  - hosts: a.com\n",
		  "t.yaml:2:12: hosts must be a list" },
		{ "host a list", "allow:\n  - hosts: [[a.com]]\n",
		  "t.yaml:2:13: host pattern must be a string" },
		{ "host with NUL", "allow:\n  - hosts: [\"a.com\\0.evil\"]\n",
		  "t.yaml:2:13: host pattern must not contain a NUL character" },
		{ "port 0", "allow:\n  - hosts: [a.com]\n    ports: [0]\n",
		  "t.yaml:3:13: port must be a number from 1 to 65535" },
		{ "port 70000", "allow:\n  - hosts: [a.com]\n    ports: [443, 70000]\n",
		  "t.yaml:3:18: port must be a number from 1 to 65535" },
		{ "port -1", "allow:\n  - hosts: [a.com]\n    ports: [-1]\n",
		  "t.yaml:3:13: port must be a number from 1 to 65535" },
		{ "port text", "allow:\n  - hosts: [a.com]\n    ports: [https]\n",
		  "t.yaml:3:13: port must be a number from 1 to 65535" },
		{ "port huge", "allow:\n  - hosts: [a.com]\n    ports: [99999999999999999999999]\n",
		  "t.yaml:3:13: port must be a number from 1 to 65535" },
		{ "ports a number", "allow:\n  - hosts: [a.com]\n    ports: 443\n",
		  "t.yaml:3:12: ports must be a list" },
		{ "ports empty", "allow:\n  - hosts: [a.com]\n    ports: []\n",
		  "t.yaml:3:12: ports must not be empty (leave it out for the default port)" },
		{ "too many ports", "allow:\n  - hosts: [a.com]\n    ports: [1,2,3,4,5,6,7,8,9,"
		  "10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33]\n",
		  "t.yaml:3:12: too many ports (at most 32)" },
		{ "allow_private in deny", "deny:\n  - hosts: [a.com]\n    allow_private: true\n",
		  "t.yaml:3:5: allow_private is only valid in allow rules" },
		{ "allow_private yes", "allow:\n  - hosts: [a.com]\n    allow_private: yes\n",
		  "t.yaml:3:20: allow_private must be true or false" },
		{ "name a list", "allow:\n  - hosts: [a.com]\n    name: [x]\n",
		  "t.yaml:3:11: name must be a string" },
		{ "name empty", "allow:\n  - hosts: [a.com]\n    name: \"\"\n",
		  "t.yaml:3:11: name must not be empty" },
		{ "kind not a string", "kind: [x]\n",
		  "t.yaml:1:7: kind must be a string" },
		/* every bad pattern is reported, each at its own column */
		{ "bad patterns",
		  "allow:\n  - hosts: [\"*foo.com\", \"foo.*.com\", \"**.x\", \"^a$\",\n"
		  "      \"10.0.0.1\", \"::1\", \"b\xc3\xbc" "cher.de\", \"a..b\", \"-a.com\",\n"
		  "      \"*.\", \".\", \"a_b.com\"]\n",
		  "t.yaml:2:13: bad host pattern '*foo.com': a wildcard must be a whole "
		  "leftmost label: *.foo.com\n"
		  "t.yaml:2:25: bad host pattern 'foo.*.com': " HINT_WILD "\n"
		  "t.yaml:2:38: bad host pattern '**.x': '**' is not a pattern; *.x already "
		  "matches any depth\n"
		  "t.yaml:2:46: bad host pattern '^a$': " HINT_REGEX "\n"
		  "t.yaml:3:7: bad host pattern '10.0.0.1': " HINT_IP "\n"
		  "t.yaml:3:19: bad host pattern '::1': " HINT_IP "\n"
		  "t.yaml:3:26: bad host pattern 'b\\xc3\\xbccher.de': non-ASCII host name: "
		  "use the punycode (xn--) form\n"
		  "t.yaml:3:39: bad host pattern 'a..b': " HINT_EMPTY "\n"
		  "t.yaml:3:47: bad host pattern '-a.com': label '-a' starts or ends with a "
		  "hyphen\n"
		  "t.yaml:4:7: bad host pattern '*.': '*.' is not a pattern; use * for any name\n"
		  "t.yaml:4:13: bad host pattern '.': '.' is not a pattern; use * for any name" },
		/* all errors of all rules, not just the first */
		{ "errors across rules",
		  "allow:\n  - hosts: [a.com]\n    ports: [0]\n  - hosts: []\n"
		  "deny:\n  - hosts: [\"*x.com\"]\n    allow_private: false\n",
		  "t.yaml:3:13: port must be a number from 1 to 65535\n"
		  "t.yaml:4:12: hosts must not be empty\n"
		  "t.yaml:7:5: allow_private is only valid in allow rules\n"
		  "t.yaml:6:13: bad host pattern '*x.com': a wildcard must be a whole "
		  "leftmost label: *.x.com" },
		/* errors in earlier documents are kept when a later one is broken */
		{ "error then syntax error",
		  "allow: 1\n---\nallow: [\n",
		  "t.yaml:1:8: allow must be a list\n"
		  "t.yaml:4:1: syntax error: did not find expected node content "
		  "(while parsing a flow node at line 4)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct diags d;
		struct pol_snapshot *s = load_str(cases[i].yaml, &d);

		tap_ok(s == NULL, "%s: load fails", cases[i].what);
		tap_ok(d.errors > 0, "%s: reported as an error", cases[i].what);
		tap_is_str(d.text, cases[i].want, "%s: message", cases[i].what);
		pol_snapshot_unref(s);
	}
}

static void test_load_ok(void)
{
	struct diags d;
	struct pol_snapshot *s;
	const struct pol_rule *r;
	static const char multi[] =
		"# first document\n"
		"allow:\n"
		"  - hosts: [one.test]\n"
		"---\n"
		"---\n"
		"apiVersion: networking.istio.io/v1alpha3\n"
		"kind: EnvoyFilter\n"
		"spec: {}\n"
		"---\n"
		"allow:\n"
		"  - hosts: [two.test, Three.Test.]\n"
		"deny: []\n"
		"---\n"
		"allow:\n"
		"deny:\n"
		"...\n";

	s = load_str(multi, &d);
	if (tap_ok(s != NULL, "multi-document file loads")) {
		tap_is_int(pol_snapshot_rule_count(s), 3, "multi-document: 3 rules");
		tap_is_str(d.text, "t.yaml:6:1: kind EnvoyFilter: not used by egressd; skipped",
		    "multi-document: notice for the kind");
		tap_is_int(d.notices, 1, "multi-document: one notice");
		tap_is_int(d.errors, 0, "multi-document: no error");
		r = pol_snapshot_rule(s, 0);
		tap_is_str(r->name, "allow[0]", "doc 1 rule name");
		tap_is_int(r->line, 3, "doc 1 rule line");
		r = pol_snapshot_rule(s, 2);
		tap_is_str(r->pattern, "three.test", "doc 3 pattern normalised");
		tap_is_str(r->name, "allow[0]", "names count per list, per document");
		tap_is_int(r->line, 11, "doc 3 rule line");
		tap_is_int(r->col, 23, "doc 3 rule column");
		pol_snapshot_unref(s);
	}

	s = load_str("", &d);
	tap_ok(s != NULL && pol_snapshot_rule_count(s) == 0,
	    "empty buffer: an empty policy (denies everything)");
	pol_snapshot_unref(s);
	s = load_str("allow: []\ndeny: ~\n", &d);
	tap_ok(s != NULL && pol_snapshot_rule_count(s) == 0, "empty lists are fine");
	pol_snapshot_unref(s);
	s = load_str("# only a comment\n", &d);
	tap_ok(s != NULL && pol_snapshot_rule_count(s) == 0, "comment-only file is fine");
	pol_snapshot_unref(s);
	memset(&d, 0, sizeof(d));
	s = pol_load_buffer(NULL, "x: 1\n", 5, collect, &d);
	tap_is_str(d.text, "<buffer>:1:1: unknown key 'x' (expected one of: allow, deny, mode)",
	    "NULL buffer name labelled <buffer>");
	s = pol_load_buffer("n", "x: 1\n", 5, NULL, NULL);
	tap_ok(s == NULL, "NULL report function is fine");
}

/* yamldoc's own accessors, as the daemon configuration uses them. */
struct ydoc_probe {
	int which;
	int rc;
	unsigned long u;
	uint64_t ms;
	int b;
};

static void probe_doc(struct ydoc_ctx *cx, yaml_document_t *doc,
    yaml_node_t *root, void *arg)
{
	struct ydoc_probe *p = arg;
	yaml_node_t *v;

	(void)doc;
	v = root;
	switch (p->which) {
	case 0:
		p->rc = ydoc_uint(cx, v, "workers", 1000, &p->u);
		break;
	case 1:
		p->rc = ydoc_duration_ms(cx, v, "timeout", &p->ms);
		break;
	default:
		p->rc = ydoc_bool(cx, v, "enabled", &p->b);
		break;
	}
}

static void test_yamldoc(void)
{
	static const struct {
		int which;
		const char *text;
		int rc;
		uint64_t value;
		const char *err;
	} cases[] = {
		{ 0, "0", 0, 0, NULL },
		{ 0, "1000", 0, 1000, NULL },
		{ 0, "007", 0, 7, NULL },
		{ 0, "1001", -1, 0, "c.yaml:1:1: workers must be a whole number from 0 to 1000" },
		{ 0, "-1", -1, 0, "c.yaml:1:1: workers must be a whole number from 0 to 1000" },
		{ 0, "+1", -1, 0, "c.yaml:1:1: workers must be a whole number from 0 to 1000" },
		{ 0, "0x10", -1, 0, "c.yaml:1:1: workers must be a whole number from 0 to 1000" },
		{ 0, "''", -1, 0, "c.yaml:1:1: workers must be a whole number from 0 to 1000" },
		{ 0, "[1]", -1, 0, "c.yaml:1:1: workers must be a whole number from 0 to 1000" },
		{ 0, "184467440737095516160", -1, 0,
		  "c.yaml:1:1: workers must be a whole number from 0 to 1000" },
		{ 1, "250ms", 0, 250, NULL },
		{ 1, "10s", 0, 10000, NULL },
		{ 1, "5m", 0, 300000, NULL },
		{ 1, "1h", 0, 3600000, NULL },
		{ 1, "1d", 0, 86400000, NULL },
		{ 1, "30", 0, 30000, NULL },
		{ 1, "0", 0, 0, NULL },
		{ 1, "-5s", -1, 0, "c.yaml:1:1: timeout must be a duration such as 250ms, 10s, "
		  "5m, 1h or 1d" },
		{ 1, "''", -1, 0, "c.yaml:1:1: timeout must be a duration such as 250ms, 10s, "
		  "5m, 1h or 1d" },
		{ 1, "s", -1, 0, "c.yaml:1:1: timeout must be a duration such as 250ms, 10s, "
		  "5m, 1h or 1d" },
		{ 1, "10 s", -1, 0, "c.yaml:1:1: timeout must be a duration such as 250ms, "
		  "10s, 5m, 1h or 1d" },
		{ 1, "1.5s", -1, 0, "c.yaml:1:1: timeout must be a duration such as 250ms, "
		  "10s, 5m, 1h or 1d" },
		{ 1, "10w", -1, 0, "c.yaml:1:1: timeout must be a duration such as 250ms, "
		  "10s, 5m, 1h or 1d" },
		{ 1, "99999999999999999999d", -1, 0, "c.yaml:1:1: timeout must be a duration "
		  "such as 250ms, 10s, 5m, 1h or 1d" },
		{ 1, "300000000000000d", -1, 0, "c.yaml:1:1: timeout must be a duration "
		  "such as 250ms, 10s, 5m, 1h or 1d" },
		{ 2, "true", 0, 1, NULL },
		{ 2, "True", 0, 1, NULL },
		{ 2, "TRUE", 0, 1, NULL },
		{ 2, "false", 0, 0, NULL },
		{ 2, "FALSE", 0, 0, NULL },
		{ 2, "yes", -1, 0, "c.yaml:1:1: enabled must be true or false" },
		{ 2, "on", -1, 0, "c.yaml:1:1: enabled must be true or false" },
		{ 2, "1", -1, 0, "c.yaml:1:1: enabled must be true or false" },
		{ 2, "tRUE", -1, 0, "c.yaml:1:1: enabled must be true or false" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct diags d;
		struct ydoc_ctx cx = { .file = "c.yaml", .report = collect, .arg = &d };
		struct ydoc_probe p = { .which = cases[i].which, .rc = 99 };
		uint64_t got;

		memset(&d, 0, sizeof(d));
		tap_is_int(ydoc_parse_buffer(&cx, cases[i].text, strlen(cases[i].text),
		    probe_doc, &p), 0, "ydoc '%s' parses", cases[i].text);
		tap_is_int(p.rc, cases[i].rc, "ydoc '%s' result", cases[i].text);
		got = cases[i].which == 0 ? p.u : cases[i].which == 1 ? p.ms :
		    (uint64_t)p.b;
		if (cases[i].rc == 0) {
			tap_is_int(got, cases[i].value, "ydoc '%s' value", cases[i].text);
			tap_is_int(cx.errors, 0, "ydoc '%s' no error", cases[i].text);
		} else {
			tap_is_str(d.text, cases[i].err, "ydoc '%s' message", cases[i].text);
			tap_is_int(cx.errors, 1, "ydoc '%s' counted", cases[i].text);
		}
	}
}

static int write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static void test_files(void)
{
	char tmpl[] = "/tmp/test_policy.XXXXXX";
	char *dir = mkdtemp(tmpl);
	char path[512], want[2048];
	const char *paths[3];
	struct diags d;
	struct pol_snapshot *s;

	if (!tap_ok(dir != NULL, "temporary directory")) {
		tap_diag("mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/pol", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/pol/sub.yaml", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/empty", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/pol", dir);
	write_file(path, "b.yaml", "allow:\n  - hosts: [b.test]\n");
	write_file(path, "a.yml", "allow:\n  - hosts: [a1.test, a2.test]\n");
	write_file(path, "c.yaml", "# no rules here\n");
	write_file(path, "z.txt", "not: yaml: at: all\n");
	write_file(path, ".hidden.yaml", "allow:\n  - hosts: [hidden.test]\n");
	write_file(path, "sub.yaml/inner.yaml", "allow:\n  - hosts: [inner.test]\n");
	write_file(dir, "single.yaml", "deny:\n  - hosts: [\"*.bad.test\"]\n");
	write_file(dir, "broken.yaml", "allow:\n  - hosts: [\"*x.test\"]\n    ports: [0]\n");

	/* a directory and a file, relative to base_dir */
	paths[0] = "pol";
	paths[1] = "single.yaml";
	memset(&d, 0, sizeof(d));
	s = pol_load(paths, 2, dir, collect, &d);
	if (tap_ok(s != NULL, "directory + file load")) {
		tap_is_int(pol_snapshot_rule_count(s), 4, "directory + file: 4 rules");
		snprintf(want, sizeof(want), "%s/pol/a.yml", dir);
		tap_is_str(pol_snapshot_rule(s, 0)->file, want, "a.yml read first");
		tap_is_str(pol_snapshot_rule(s, 1)->pattern, "a2.test", "a.yml rule order");
		snprintf(want, sizeof(want), "%s/pol/b.yaml", dir);
		tap_is_str(pol_snapshot_rule(s, 2)->file, want, "b.yaml read second");
		tap_is_int(pol_snapshot_rule(s, 2)->line, 2, "b.yaml rule line");
		tap_is_int(pol_snapshot_rule(s, 2)->col, 13, "b.yaml rule column");
		snprintf(want, sizeof(want), "%s/single.yaml", dir);
		tap_is_str(pol_snapshot_rule(s, 3)->file, want, "then the named file");
		tap_is_int(pol_snapshot_rule(s, 3)->action, POL_DENY, "its rule is a deny");
		snprintf(want, sizeof(want), "%s/pol/sub.yaml:0:0: a directory, not read "
		    "(directories are not read recursively)", dir);
		tap_is_str(d.text, want, "warning for a subdirectory");
		tap_is_int(d.warnings, 1, "one warning");
		tap_is_int(d.errors, 0, "no errors");
	}
	pol_snapshot_unref(s);

	/* absolute paths ignore base_dir */
	snprintf(path, sizeof(path), "%s/single.yaml", dir);
	paths[0] = path;
	memset(&d, 0, sizeof(d));
	s = pol_load(paths, 1, "/nonexistent", collect, &d);
	tap_ok(s != NULL && pol_snapshot_rule_count(s) == 1, "absolute path loads");
	pol_snapshot_unref(s);

	/* errors are reported for every file, with its path */
	paths[0] = "broken.yaml";
	paths[1] = "missing.yaml";
	paths[2] = "pol";
	memset(&d, 0, sizeof(d));
	s = pol_load(paths, 3, dir, collect, &d);
	tap_ok(s == NULL, "broken + missing: load fails");
	snprintf(want, sizeof(want),
	    "%s/broken.yaml:3:13: port must be a number from 1 to 65535\n"
	    "%s/broken.yaml:2:13: bad host pattern '*x.test': a wildcard must be a "
	    "whole leftmost label: *.x.test\n"
	    "%s/missing.yaml:0:0: cannot open: No such file or directory\n"
	    "%s/pol/sub.yaml:0:0: a directory, not read "
	    "(directories are not read recursively)", dir, dir, dir, dir);
	tap_is_str(d.text, want, "broken + missing: every message");
	tap_is_int(d.errors, 3, "broken + missing: three errors");

	/* a directory with no policy files, and no files at all */
	paths[0] = "empty";
	memset(&d, 0, sizeof(d));
	s = pol_load(paths, 1, dir, collect, &d);
	tap_ok(s == NULL, "no files at all: load fails");
	snprintf(want, sizeof(want),
	    "%s/empty:0:0: no *.yaml or *.yml files in this directory\n"
	    "-:0:0: no policy files found", dir);
	tap_is_str(d.text, want, "no files at all: messages");
	memset(&d, 0, sizeof(d));
	s = pol_load(paths, 0, dir, collect, &d);
	tap_ok(s == NULL, "no paths: load fails");
	tap_is_str(d.text, "-:0:0: no policy files found", "no paths: message");

	/* a file with no rules is fine on its own */
	paths[0] = "pol/c.yaml";
	memset(&d, 0, sizeof(d));
	s = pol_load(paths, 1, dir, collect, &d);
	tap_ok(s != NULL && pol_snapshot_rule_count(s) == 0, "file with no rules loads");
	pol_snapshot_unref(s);

	/* yamldoc on a missing file */
	{
		struct ydoc_ctx cx = { .file = NULL, .report = collect, .arg = &d };

		memset(&d, 0, sizeof(d));
		tap_is_int(ydoc_parse_file(&cx, "/nonexistent/x.yaml", NULL, NULL), -1,
		    "ydoc_parse_file on a missing file fails");
		tap_is_str(d.text, "/nonexistent/x.yaml:0:0: cannot open: No such file or "
		    "directory", "ydoc_parse_file names the path");
		tap_ok(cx.file == NULL, "ydoc_parse_file restores the label");
	}

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	tap_is_int(system(path), 0, "temporary directory removed");
}

/* The same questions against 10 rules and 100,000: the same answers. */
static void test_many_rules(void)
{
	static const char small[] =
		"allow:\n"
		"  - hosts: [api.github.com, \"*.atlassian.net\", .amazonaws.com]\n"
		"  - hosts: [plain.test]\n"
		"    ports: [80]\n"
		"  - hosts: [\"*.com\"]\n"
		"    ports: [8443]\n"
		"  - hosts: [deep.a.b.c.test, \"*.b.c.test\"]\n"
		"deny:\n"
		"  - hosts: [\"*.pastebin.com\", evil.amazonaws.com]\n"
		"  - hosts: [\".blocked.test\"]\n"
		"    ports: [443]\n";
	static const struct {
		const char *name;
		unsigned port;
	} qs[] = {
		{ "api.github.com", 443 }, { "github.com", 443 }, { "x.api.github.com", 443 },
		{ "a.atlassian.net", 443 }, { "atlassian.net", 443 },
		{ "s3.eu-west-1.amazonaws.com", 443 }, { "amazonaws.com", 443 },
		{ "evil.amazonaws.com", 443 }, { "x.pastebin.com", 443 },
		{ "pastebin.com", 8443 }, { "x.pastebin.com", 8443 },
		{ "plain.test", 80 }, { "plain.test", 443 }, { "blocked.test", 443 },
		{ "a.blocked.test", 80 }, { "random.example.org", 443 },
		{ "h5.gen.test", 80 }, { "nothing", 443 }, { "deep.a.b.c.test", 443 },
		{ "x.deep.a.b.c.test", 443 }, { "b.c.test", 443 },
	};
	struct diags d;
	struct pol_snapshot *s1, *s2;
	size_t cap = 100000 * 40 + sizeof(small) + 64, len;
	char *big = malloc(cap);

	if (!tap_ok(big != NULL, "allocate the big policy"))
		return;
	len = (size_t)snprintf(big, cap, "%s---\nallow:\n  - hosts:\n", small);
	/* 99,990 more exact names, all distinct from the questions above */
	for (int i = 0; i < 99990; i++)
		len += (size_t)snprintf(big + len, cap - len, "    - h%d.gen%d.test\n",
		    i, i % 97);
	s1 = load_str(small, &d);
	tap_ok(s1 != NULL && pol_snapshot_rule_count(s1) == 10, "10-rule policy loads");
	memset(&d, 0, sizeof(d));
	s2 = pol_load_buffer("big.yaml", big, len, collect, &d);
	tap_ok(s2 != NULL && pol_snapshot_rule_count(s2) == 100000,
	    "100,000-rule policy loads");
	free(big);
	if (s1 == NULL || s2 == NULL) {
		tap_diag("%s", d.text);
		goto out;
	}
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		struct pol_request req = { .name = qs[i].name, .port = (uint16_t)qs[i].port };
		struct pol_verdict v1, v2;

		pol_decide(s1, &req, &v1);
		pol_decide(s2, &req, &v2);
		tap_ok(v1.allow == v2.allow && v1.reason == v2.reason &&
		    (v1.rule == NULL) == (v2.rule == NULL) &&
		    (v1.rule == NULL || (strcmp(v1.rule->pattern, v2.rule->pattern) == 0 &&
		    v1.rule->line == v2.rule->line && v1.rule->col == v2.rule->col)),
		    "same verdict with 10 and 100,000 rules: %s:%u (%s)", qs[i].name,
		    qs[i].port, pol_reason_str(v1.reason));
	}
	{
		struct pol_request req = { .name = "h77777.gen80.test", .port = 443 };
		struct pol_verdict v;

		pol_decide(s2, &req, &v);
		tap_ok(v.allow && v.rule != NULL && strcmp(v.rule->pattern,
		    "h77777.gen80.test") == 0, "a generated name is allowed by its rule");
		tap_is_int(v.rule ? v.rule->line : 0, 77777 + 15, "and its rule's line");
		req.name = "h77777.gen81.test";
		pol_decide(s2, &req, &v);
		tap_is_int(v.reason, POL_R_NOT_ALLOWED, "a near miss is not allowed");
	}
	/* the known answers, so equality above is not two equal mistakes */
	{
		struct pol_request req = { .name = "evil.amazonaws.com", .port = 443 };
		struct pol_verdict v;

		pol_decide(s2, &req, &v);
		tap_is_int(v.reason, POL_R_DENIED_BY_RULE, "big: evil.amazonaws.com denied");
		req.name = "pastebin.com";
		req.port = 8443;
		pol_decide(s2, &req, &v);
		tap_is_str(rule_pattern(v.rule), "*.com",
		    "big: pastebin.com:8443 allowed by *.com");
	}
out:
	pol_snapshot_unref(s1);
	pol_snapshot_unref(s2);
}

static struct sockaddr_storage addr_of(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &a->sin_addr);
	}
	return ss;
}

static void test_cidr(void)
{
	static const struct { const char *in; int ok; const char *out; } cases[] = {
		{ "10.0.0.0/8", 1, "10.0.0.0/8" },
		{ "10.1.2.3", 1, "10.1.2.3/32" },
		{ "0.0.0.0/0", 1, "0.0.0.0/0" },
		{ "2001:db8::/32", 1, "2001:db8::/32" },
		{ "::1", 1, "::1/128" },
		{ "10.1.2.3/8", 0, NULL },      /* host bits set: a typo */
		{ "10.0.0.0/33", 0, NULL },
		{ "10.0.0.0/", 0, NULL },
		{ "10.0.0.0/08", 0, NULL },
		{ "10.0.0.0/8x", 0, NULL },
		{ "/8", 0, NULL },
		{ "example.com", 0, NULL },
		{ "2001:db8::1/32", 0, NULL },
		{ "", 0, NULL },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pol_cidr c;
		int r = pol_cidr_parse(cases[i].in, &c);

		tap_is_int(r == 0, cases[i].ok, "cidr parse '%s'", cases[i].in);
		if (r == 0 && cases[i].out != NULL) {
			pol_cidr_format(&c, buf, sizeof(buf));
			tap_is_str(buf, cases[i].out, "cidr format '%s'", cases[i].in);
		}
	}
	{
		static const struct { const char *cidr, *ip; int in; } m[] = {
			{ "10.8.0.0/16", "10.8.255.1", 1 },
			{ "10.8.0.0/16", "10.9.0.1", 0 },
			{ "10.8.0.0/13", "10.15.1.1", 1 },
			{ "10.8.0.0/13", "10.16.0.0", 0 },
			{ "10.8.0.0/16", "::ffff:10.8.1.1", 1 },   /* dual stack */
			{ "10.8.0.0/16", "2001:db8::1", 0 },
			{ "2001:db8::/32", "2001:db8:1::5", 1 },
			{ "2001:db8::/32", "2001:db9::5", 0 },
			{ "2001:db8::/32", "10.8.0.1", 0 },
			{ "0.0.0.0/0", "192.0.2.1", 1 },
			/* A mapped range holds the IPv4 client on an IPv4
			 * listener as on a dual-stack one. */
			{ "::ffff:10.8.0.0/112", "10.8.1.1", 1 },
			{ "::ffff:10.8.0.0/112", "::ffff:10.8.1.1", 1 },
			{ "::ffff:10.8.0.0/112", "10.9.0.1", 0 },
			{ "::ffff:10.8.0.0/111", "10.9.0.1", 1 },
			{ "::ffff:0:0/96", "192.0.2.1", 1 },
			{ "::/0", "192.0.2.1", 1 },
			{ "::/96", "192.0.2.1", 0 },
		};
		for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
			struct pol_cidr c;
			struct sockaddr_storage ss = addr_of(m[i].ip);

			pol_cidr_parse(m[i].cidr, &c);
			tap_is_int(pol_cidr_contains(&c, (struct sockaddr *)&ss), m[i].in,
			    "%s in %s", m[i].ip, m[i].cidr);
		}
		tap_is_int(pol_cidr_contains(&(struct pol_cidr){ .family = AF_INET },
		    NULL), 0, "no source is in no range");
	}
	{
		/* Overlap: the namespaces: map refuses two namespaces that
		 * share a client address. */
		static const struct { const char *a, *b; int both; } o[] = {
			{ "10.8.0.0/16", "10.0.0.0/8", 1 },
			{ "10.0.0.0/8", "10.8.0.0/16", 1 },
			{ "10.8.0.0/16", "10.9.0.0/16", 0 },
			{ "10.8.0.0/16", "10.8.255.255", 1 },
			{ "10.8.0.0/16", "::ffff:10.8.0.0/112", 1 },
			{ "10.8.0.0/16", "::ffff:10.9.0.0/112", 0 },
			{ "10.8.0.0/16", "::/0", 1 },      /* holds every mapped one */
			{ "10.8.0.0/16", "2001:db8::/32", 0 },
			{ "2001:db8::/32", "2001:db8:5::/48", 1 },
			{ "2001:db8::/32", "2001:db9::/32", 0 },
			{ "0.0.0.0/0", "192.0.2.1", 1 },
		};
		for (size_t i = 0; i < sizeof(o) / sizeof(o[0]); i++) {
			struct pol_cidr a, b;

			pol_cidr_parse(o[i].a, &a);
			pol_cidr_parse(o[i].b, &b);
			tap_is_int(pol_cidr_overlap(&a, &b), o[i].both,
			    "%s and %s overlap", o[i].a, o[i].b);
		}
	}
	{
		/* Within: egressctl check's shadowing, posture's internal
		 * ranges; the two forms of an IPv4 range are one. */
		static const struct { const char *in, *out; int w; } w[] = {
			{ "10.8.0.0/16", "10.0.0.0/8", 1 },
			{ "10.0.0.0/8", "10.8.0.0/16", 0 },
			{ "::ffff:10.8.0.0/112", "10.0.0.0/8", 1 },
			{ "10.8.0.0/16", "::ffff:10.0.0.0/104", 1 },
			{ "10.0.0.0/8", "::ffff:10.8.0.0/112", 0 },
			{ "10.8.0.0/16", "::/0", 1 },
			{ "2001:db8::/32", "10.0.0.0/8", 0 },
			{ "2001:db8:5::/48", "2001:db8::/32", 1 },
		};
		for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
			struct pol_cidr in, out;

			pol_cidr_parse(w[i].in, &in);
			pol_cidr_parse(w[i].out, &out);
			tap_is_int(pol_cidr_within(&in, &out), w[i].w,
			    "%s within %s", w[i].in, w[i].out);
		}
	}
}

static void decide_src(const struct pol_snapshot *s, const char *name,
    uint16_t port, const char *src, struct pol_verdict *v)
{
	struct sockaddr_storage ss;
	struct pol_request req = { .name = name, .port = port,
	    .proto = POL_PROTO_TLS };

	if (src != NULL) {
		ss = addr_of(src);
		req.src = (struct sockaddr *)&ss;
	}
	pol_decide(s, &req, v);
}

static void test_sources(void)
{
	static const char text[] =
		"allow:\n"
		"  - name: team-a\n"
		"    hosts: [\"*.a.test\"]\n"
		"    sources: [\"10.1.0.0/16\", \"2001:db8:a::/48\"]\n"
		"  - name: everyone\n"
		"    hosts: [pub.a.test]\n"
		"deny:\n"
		"  - name: not-b\n"
		"    hosts: [secret.a.test]\n"
		"    sources: [\"10.2.0.0/16\"]\n";
	struct pol_snapshot *s;
	struct pol_verdict v;
	struct diags d;

	s = load_str(text, &d);
	if (!tap_ok(s != NULL, "sources: loads"))
		return;
	tap_is_int(pol_snapshot_rule(s, 0)->nsources, 2, "sources: two ranges kept");
	decide_src(s, "x.a.test", 443, "10.1.3.4", &v);
	tap_is_int(v.allow, 1, "sources: client in range is allowed");
	decide_src(s, "x.a.test", 443, "2001:db8:a:1::9", &v);
	tap_is_int(v.allow, 1, "sources: IPv6 client in range is allowed");
	decide_src(s, "x.a.test", 443, "10.2.3.4", &v);
	tap_is_str(pol_reason_str(v.reason), "not_allowed",
	    "sources: client out of range is not_allowed");
	decide_src(s, "x.a.test", 443, NULL, &v);
	tap_is_int(v.allow, 0, "sources: unknown client never matches a scoped rule");
	decide_src(s, "pub.a.test", 443, "10.2.3.4", &v);
	tap_is_str(v.rule ? v.rule->name : "", "everyone",
	    "sources: an unscoped rule still applies to others");
	decide_src(s, "pub.a.test", 443, "10.1.3.4", &v);
	tap_is_str(v.rule ? v.rule->name : "", "everyone",
	    "sources: exact beats the scoped wildcard");
	decide_src(s, "secret.a.test", 443, "10.2.9.9", &v);
	tap_is_str(pol_reason_str(v.reason), "denied_by_rule",
	    "sources: a scoped deny applies in its range");
	decide_src(s, "secret.a.test", 443, "10.1.9.9", &v);
	tap_is_int(v.allow, 1, "sources: a scoped deny leaves other clients alone");
	pol_snapshot_unref(s);

	s = load_str("allow:\n  - hosts: [a.test]\n    sources: []\n", &d);
	tap_ok(s == NULL, "sources: empty list refused");
	tap_is_str(d.text, "t.yaml:3:14: sources must not be empty (leave it out "
	    "for any client)", "sources: empty list message");
	s = load_str("allow:\n  - hosts: [a.test]\n    sources: [\"10.1.2.3/8\"]\n", &d);
	tap_ok(s == NULL, "sources: host bits refused");
	tap_is_str(d.text, "t.yaml:3:15: bad source '10.1.2.3/8': expected an "
	    "address or a CIDR such as 10.8.0.0/16, with no host bits set",
	    "sources: bad CIDR message");
}

static void test_modes(void)
{
	struct pol_snapshot *s;
	struct pol_verdict v;
	struct diags d;

	/* Enforce by default. */
	s = load_str("allow:\n  - hosts: [a.test]\n", &d);
	decide_src(s, "b.test", 443, NULL, &v);
	tap_ok(v.allow == 0 && v.report == 0, "mode: enforce by default");
	tap_is_str(pol_mode_str(pol_snapshot_mode(s)), "enforce", "mode: snapshot enforce");
	pol_snapshot_unref(s);

	/* A file in report mode under an enforcing policy: its rules are a
	 * second layer that never admits; what no enforced rule admits is
	 * refused, whatever the report-mode file says (DESIGN §5). */
	s = load_str("mode: report\n"
	    "allow:\n  - hosts: [a.test]\n"
	    "deny:\n  - hosts: [\"*.a.test\"]\n"
	    "---\n"
	    "deny:\n  - hosts: [z.test]\n", &d);
	if (!tap_ok(s != NULL, "mode: report file loads"))
		return;
	tap_is_str(pol_mode_str(pol_snapshot_rule(s, 2)->mode), "report",
	    "mode: a later document of the file is in the file's mode");
	decide_src(s, "x.a.test", 443, NULL, &v);
	tap_ok(v.allow == 0 && v.report == 0 && v.reason == POL_R_NOT_ALLOWED &&
	    v.rule == NULL, "mode: a report-mode deny rule opens nothing");
	decide_src(s, "a.test", 8443, NULL, &v);
	tap_ok(v.allow == 0 && v.report == 0 && v.reason == POL_R_NOT_ALLOWED,
	    "mode: a report-mode allow rule on another port opens nothing");
	decide_src(s, "a.test", 443, NULL, &v);
	tap_ok(v.allow == 0 && v.admit == NULL && v.reason == POL_R_NOT_ALLOWED,
	    "mode: a report-mode allow rule admits nothing under enforce");
	decide_src(s, "b.test", 443, NULL, &v);
	tap_ok(v.allow == 0 && v.report == 0,
	    "mode: not_allowed follows the policy's enforce mode");
	pol_snapshot_unref(s);

	s = load_str("mode: report\n---\nmode: enforce\n", &d);
	tap_ok(s == NULL, "mode: contradicting documents refused");
	tap_is_str(d.text, "t.yaml:3:7: mode enforce contradicts mode report at "
	    "line 1 of this file", "mode: contradiction message");
	s = load_str("mode: audit\nallow: []\n", &d);
	tap_is_str(d.text, "t.yaml:1:7: mode must be enforce or report, not 'audit'",
	    "mode: unknown value message");
	pol_snapshot_unref(s);
}

static void test_matches(void)
{
	static const char text[] =
		"allow:\n"
		"  - hosts: [\"*.m.test\"]\n"
		"  - hosts: [x.m.test]\n"
		"    ports: [8443]\n"
		"  - hosts: [\".m.test\", \"*\"]\n"
		"deny:\n"
		"  - hosts: [\"*.x.m.test\"]\n";
	const struct pol_rule *out[8];
	struct pol_snapshot *s;
	struct diags d;
	char buf[160];
	const char *describe_buf = buf;
	size_t n;

	s = load_str(text, &d);
	if (!tap_ok(s != NULL, "matches: loads"))
		return;
	n = pol_matches(s, "X.m.test.", out, 8);
	tap_is_int(n, 4, "matches: four rules match x.m.test");
	if (n == 4) {
		tap_is_str(out[0]->pattern, "x.m.test", "matches: exact first");
		tap_is_str(out[1]->pattern, "*.m.test", "matches: then the suffix, file order");
		tap_is_str(out[2]->pattern, ".m.test", "matches: same suffix, later rule");
		tap_is_str(out[3]->pattern, "*", "matches: * last");
	}
	tap_is_int(pol_matches(s, "a.x.m.test", out, 2), 4,
	    "matches: the count is the total even when out is short");
	tap_is_str(out[0]->pattern, "*.x.m.test", "matches: longest suffix first");
	tap_is_int(pol_matches(s, "", out, 8), 0, "matches: no name, no rule");
	pol_snapshot_unref(s);

	pol_pattern_describe(POL_PAT_SUBDOMAINS, "example.com", buf, sizeof(buf));
	tap_is_str(describe_buf,
	    "any subdomain of example.com at any depth, not example.com itself",
	    "describe: subdomains");
	pol_pattern_describe(POL_PAT_DOMAIN, "example.com", buf, sizeof(buf));
	tap_is_str(describe_buf,
	    "example.com itself and any subdomain of it at any depth", "describe: domain");
	pol_pattern_describe(POL_PAT_EXACT, "example.com", buf, sizeof(buf));
	tap_is_str(describe_buf,
	    "exactly example.com", "describe: exact");
	pol_pattern_describe(POL_PAT_ANY, "", buf, sizeof(buf));
	tap_is_str(describe_buf,
	    "any name (not a connection without a name)", "describe: any");
	tap_is_str(pol_resolution_str(POL_RES_STATIC), "static", "resolution names");
}

/* A diagnostic is one line whatever control bytes the YAML quoted (a fuzzer
 * found a Sidecar host with a newline reaching a message unquoted). */
static void test_one_line_messages(void)
{
	struct diags d;

	(void)load_str("apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
	    "metadata: {name: s}\nspec: {egress: [{hosts: [\"~ns\\n/*\"]}]}\n", &d);
	tap_is_str(d.text, "t.yaml:4:26: invalid namespace '~ns\\x0a' in host "
	    "'~ns\\x0a/*' (expected *, ., a namespace name, or one of these after ~)",
	    "a newline in config text is escaped in the message");
}

/* Names no parser would pass still get a sound answer, never a crash. */
static void test_odd_names(void)
{
	struct pol_snapshot *s;
	struct pol_verdict v;
	struct diags d;
	char name[POL_NAME_MAX + 8];
	const struct pol_rule *out[4];

	s = load_str("allow:\n  - hosts: [\"*.deep.test\", \"*\"]\n"
	    "    ports: [443]\n", &d);
	if (!tap_ok(s != NULL, "odd names: loads"))
		return;
	memset(name, '.', POL_NAME_MAX);        /* 253 empty labels */
	name[POL_NAME_MAX] = '\0';
	decide_src(s, name, 443, NULL, &v);
	tap_ok(v.allow == 1 && strcmp(v.rule->pattern, "*") == 0,
	    "odd names: 253 dots reach only *");
	/* 126 one-letter labels under deep.test: the deepest walk there is. */
	for (int i = 0; i < 121; i++)
		memcpy(name + 2 * i, "a.", 2);
	memcpy(name + 242, "deep.test", 10);
	tap_is_int(strlen(name), 251, "odd names: a 251-byte name of 123 labels");
	decide_src(s, name, 443, NULL, &v);
	tap_is_str(v.rule ? v.rule->pattern : "", "*.deep.test",
	    "odd names: *.deep.test admits it at that depth");
	tap_is_int(pol_matches(s, name, out, 4), 2, "odd names: both rules match");
	decide_src(s, "x..deep.test", 443, NULL, &v);
	tap_is_str(v.rule ? v.rule->pattern : "", "*.deep.test",
	    "odd names: an empty label is still under the suffix");
	decide_src(s, ".deep.test", 443, NULL, &v);
	tap_is_str(v.rule ? v.rule->pattern : "", "*.deep.test",
	    "odd names: a leading dot is an empty first label");
	pol_snapshot_unref(s);
}

static void test_load_opts(void)
{
	struct pol_namespace ns = { .name = "team-a" };
	struct pol_load_opts opts = { .mode = POL_MODE_REPORT, .nnamespaces = 1,
	    .namespaces = &ns };
	char dir[] = "/tmp/egressd-test-opts-XXXXXX", path[128];
	const char *paths[] = { path };
	struct pol_snapshot *s;
	struct pol_verdict v;
	struct diags d;
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return;
	snprintf(path, sizeof(path), "%s/a.yaml", dir);
	f = fopen(path, "w");
	fputs("allow:\n  - hosts: [a.test]\n    originate_tls: true\n", f);
	fclose(f);
	memset(&d, 0, sizeof(d));
	s = pol_load_ex(paths, 1, &opts, collect, &d);
	if (tap_ok(s != NULL, "load_ex: loads")) {
		tap_is_str(pol_mode_str(pol_snapshot_mode(s)), "report",
		    "load_ex: the policy's mode comes from the options");
		tap_is_str(pol_mode_str(pol_snapshot_rule(s, 0)->mode), "report",
		    "load_ex: rules of a file that does not say take it too");
		tap_is_int(pol_snapshot_rule(s, 0)->originate_tls, 1,
		    "load_ex: originate_tls read");
		tap_is_str(pol_snapshot_rule(s, 0)->origin, "native", "load_ex: origin");
		decide_src(s, "b.test", 443, NULL, &v);
		tap_ok(v.allow == 1 && v.report == 1 &&
		    v.report_reason == POL_R_NOT_ALLOWED && v.admit == NULL,
		    "load_ex: a report-mode policy relays not_allowed, would_deny");
		decide_src(s, "a.test", 443, NULL, &v);
		tap_ok(v.allow == 1 && v.report == 0 && v.admit != NULL &&
		    v.admit->originate_tls,
		    "load_ex: ... and its admitting report-mode rule lends settings");
		pol_snapshot_unref(s);
	}
	unlink(path);
	rmdir(dir);
	s = load_str("deny:\n  - hosts: [a.test]\n    originate_tls: true\n", &d);
	tap_is_str(d.text, "t.yaml:3:5: originate_tls is only valid in allow rules",
	    "originate_tls in a deny rule refused");
}

int main(void)
{
	test_strings();
	test_patterns();
	test_decide();
	test_precedence();
	test_load_errors();
	test_load_ok();
	test_yamldoc();
	test_files();
	test_many_rules();
	test_cidr();
	test_sources();
	test_modes();
	test_matches();
	test_odd_names();
	test_one_line_messages();
	test_load_opts();
	return tap_done();
}

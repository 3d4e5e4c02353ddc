/*
 * libFuzzer target for dc_decide(), fed the way the gateway feeds it: from
 * what the wire parsers make of a client's first bytes.
 *
 * Input: byte 0 chooses the parser (modulo 3):
 *   0  a ClientHello (TLS records) for sni_parse_hello;
 *   1  an HTTP request head for http_parse_request;
 *   2  a PROXY header for proxy_parse, then a ClientHello if the payload
 *      starts with 0x16 (a TLS handshake record), else an HTTP request head.
 * Byte 1 is a set of flags that vary the rest of the facts (which listener,
 * a CONNECT tunnel, a redirect's Location, refuse_ech, ...; see F_*). The
 * bytes after them go to the parser. Input the parsers refuse never
 * reaches a decision (the gateway refuses it with its own reason), so it
 * ends the run.
 *
 * The facts are decided against four fixed policies, loaded once: native
 * rules in enforce mode, the same in a report-mode file, and an enforced
 * file plus a report-mode file under a policy in enforce and in report
 * mode. Beyond "no crash", with abort() so that libFuzzer and the make
 * check replay both notice:
 *  - allow == (reason == allowed): a refused verdict never has allow set;
 *  - would_deny only on an allowed verdict, with a reason of its own and
 *    its rule only then;
 *  - dc_allow_private() only when the admitting rule says allow_private,
 *    and an admitting rule only on an allowed verdict, an allow rule;
 *  - every reason has a name; the port is orig_dst's on a transparent
 *    listener, the request's otherwise;
 *  - in a policy in enforce mode, report-mode rules never admit, and adding
 *    the report-mode file changes nothing of the enforced verdict (allow,
 *    reason, deciding and admitting rule);
 *  - a refusal before the policy (no name, ECH refused, a tunnel for another
 *    name, ...) is the same in every policy, report mode included.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "decide/decide.h"
#include "http/http.h"
#include "policy/policy.h"
#include "proxy/proxy.h"
#include "sni/sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Byte 1. */
#define F_TRANSPARENT   0x01    /* a transparent listener (not for CONNECT) */
#define F_TUNNEL        0x02    /* inside a CONNECT tunnel */
#define F_OTHER_TUNNEL  0x04    /* ...that CONNECT opened for another name */
#define F_LOCATION      0x08    /* a redirect's target, not a request */
#define F_REFUSE_ECH    0x10
#define F_NO_OPTS       0x20    /* dc_decide with no options at all */
#define F_ORIG_DST      0x40    /* an original destination without PROXY */
#define F_NO_SRC        0x80    /* the client's address is unknown */

/* Enforced rules: the first file of the two-file policies, and alone. It
 * says so, or a policy in report mode would put it in report mode too. */
static const char enforce_text[] =
	"mode: enforce\n"
	"allow:\n"
	"  - hosts: [\"*.example.com\", \"api.github.com\", \"localhost\"]\n"
	"  - hosts: [\".corp.test\"]\n"
	"    ports: [80, 443, 8443]\n"
	"    allow_private: true\n"
	"    sources: [\"127.0.0.0/8\", \"::1\"]\n"
	"  - hosts: [\"*.example.org\", \"*.example.net\"]\n"
	"    ports: [8080]\n"
	"  - hosts: [\"www.example.org\"]\n"
	"    ports: [80]\n"
	"deny:\n"
	"  - hosts: [\"*.pastebin.com\", \"evil.example.com\"]\n"
	"  - hosts: [\"db.corp.test\"]\n"
	"    ports: [443]\n";

/* A team trialling rules: would-be denials, and allows that admit
 * nothing unless the whole policy is in report mode. */
static const char report_text[] =
	"mode: report\n"
	"allow:\n"
	"  - hosts: [\".report.test\", \"www.example.org\"]\n"
	"    allow_private: true\n"
	"  - hosts: [\"*\"]\n"
	"    ports: [8443]\n"
	"deny:\n"
	"  - hosts: [\"*.example.com\"]\n"
	"    ports: [443]\n"
	"  - hosts: [\".github.com\", \"x.report.test\"]\n";

enum { P_ENFORCE, P_REPORT_FILE, P_MIXED, P_MIXED_REPORT, NPOLICIES };

static struct pol_snapshot *policies[NPOLICIES];

static void check(int cond)
{
	if (!cond)
		abort();
}

static void quiet(void *arg, enum pol_severity sev, const char *file,
    unsigned line, unsigned col, const char *msg)
{
	(void)arg;
	(void)file;
	(void)line;
	(void)col;
	/* The fixed policies must load cleanly. */
	check(sev != POL_ERROR || msg == NULL);
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	size_t n = strlen(text);

	if (f == NULL)
		return -1;
	if (fwrite(text, 1, n, f) != n) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

/* Loaded once; the two-file policies need files, since report mode is a
 * file's property: they are written, loaded and removed. */
static void load_policies(void)
{
	char dir[] = "/tmp/egressd-fuzz-decide-XXXXXX";
	char a[sizeof(dir) + 16], b[sizeof(dir) + 16];
	const char *paths[2] = { a, b };
	struct pol_load_opts opts;

	policies[P_ENFORCE] = pol_load_buffer("enforce.yaml", enforce_text,
	    sizeof(enforce_text) - 1, quiet, NULL);
	policies[P_REPORT_FILE] = pol_load_buffer("report.yaml", report_text,
	    sizeof(report_text) - 1, quiet, NULL);
	check(policies[P_ENFORCE] != NULL && policies[P_REPORT_FILE] != NULL);
	if (mkdtemp(dir) == NULL)
		return;         /* the two-file policies are then left out */
	snprintf(a, sizeof(a), "%s/a.yaml", dir);
	snprintf(b, sizeof(b), "%s/b.yaml", dir);
	if (write_file(a, enforce_text) == 0 && write_file(b, report_text) == 0) {
		memset(&opts, 0, sizeof(opts));
		opts.mode = POL_MODE_ENFORCE;
		policies[P_MIXED] = pol_load_ex(paths, 2, &opts, quiet, NULL);
		opts.mode = POL_MODE_REPORT;
		policies[P_MIXED_REPORT] = pol_load_ex(paths, 2, &opts, quiet, NULL);
		check(policies[P_MIXED] != NULL && policies[P_MIXED_REPORT] != NULL);
	}
	unlink(a);
	unlink(b);
	rmdir(dir);
}

/* What the parsers gave, kept alive while the facts point into it. */
struct input {
	struct dc_facts f;
	struct dc_opts o;
	int has_opts;
	char name[SNI_NAME_MAX + 1];
	struct http_request req;
	struct proxy_header ph;
	struct sockaddr_in src, orig;
};

/* 0 when the parser did not give a request to decide. */
static int from_hello(struct input *in, const uint8_t *buf, size_t len,
    unsigned flags)
{
	static uint8_t scratch[SNI_HELLO_MAX];
	struct dc_facts *f = &in->f;
	struct sni_hello h;

	if (sni_parse_hello(buf, len, scratch, sizeof(scratch), &h) != SNI_OK)
		return 0;
	f->from = DC_FROM_SNI;
	f->proto = POL_PROTO_TLS;
	f->listener = flags & F_TRANSPARENT ? DC_L_TRANSPARENT : DC_L_TLS;
	f->port = 443;
	f->ech = h.ech;
	if (h.has_sni) {
		if (sni_name_normalize(h.name.ptr, h.name.len, in->name) == 0)
			f->name = in->name;
		else
			f->name_invalid = 1;
	}
	if (flags & F_TUNNEL) {
		f->listener = DC_L_CONNECT;
		f->from = DC_FROM_TUNNEL_SNI;
		f->tunnel_port = f->port;
		f->tunnel_name = flags & F_OTHER_TUNNEL ? "api.github.com" :
		    f->name;
	}
	return 1;
}

static int from_http(struct input *in, const uint8_t *buf, size_t len,
    unsigned flags)
{
	struct http_request *req = &in->req;
	struct dc_facts *f = &in->f;

	if (http_parse_request(buf, len, req, NULL) != HTTP_DONE)
		return 0;
	if (req->form == HTTP_AUTHORITY) {
		/* A CONNECT; on another listener it is refused. */
		f->from = DC_FROM_AUTHORITY;
		f->proto = POL_PROTO_CONNECT;
		f->listener = flags & F_TRANSPARENT ? DC_L_TRANSPARENT :
		    flags & F_OTHER_TUNNEL ? DC_L_HTTP : DC_L_CONNECT;
		f->port = req->port;
	} else {
		f->from = DC_FROM_HOST;
		f->proto = POL_PROTO_HTTP;
		f->listener = flags & F_TRANSPARENT ? DC_L_TRANSPARENT : DC_L_HTTP;
		f->url_https = req->scheme == HTTP_SCHEME_HTTPS;
		f->port = req->port != 0 ? req->port :
		    req->scheme == HTTP_SCHEME_HTTPS ? 443 : 80;
	}
	if (req->has_host && req->host[0] != '\0') {
		if (req->host_is_ip) {
			f->name = req->host;
			f->name_is_ip = 1;
		} else if (sni_name_normalize((const uint8_t *)req->host,
		    strlen(req->host), in->name) == 0) {
			f->name = in->name;
			/* http/ promises the host is already normalised. */
			check(strcmp(in->name, req->host) == 0);
		} else {
			f->name_invalid = 1;
		}
	}
	if ((flags & F_TUNNEL) && f->from == DC_FROM_HOST) {
		f->listener = DC_L_CONNECT;
		f->from = DC_FROM_TUNNEL_HOST;
		f->tunnel_port = f->port;
		f->tunnel_name = flags & F_OTHER_TUNNEL ? "api.github.com" :
		    f->name;
	}
	return 1;
}

static uint16_t sa_port(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static int is_policy_reason(enum dc_reason r)
{
	return r == DC_ALLOWED || r == DC_NOT_ALLOWED ||
	    r == DC_DENIED_BY_RULE || r == DC_PORT_NOT_ALLOWED;
}

static int rule_of(const struct pol_snapshot *s, const struct pol_rule *r)
{
	size_t n = pol_snapshot_rule_count(s);

	return r == NULL || (n > 0 && r >= pol_snapshot_rule(s, 0) &&
	    r <= pol_snapshot_rule(s, n - 1));
}

static int same_place(const struct pol_rule *a, const struct pol_rule *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return a->line == b->line && a->col == b->col &&
	    strcmp(a->pattern, b->pattern) == 0;
}

static void check_verdict(const struct pol_snapshot *s,
    const struct dc_facts *f, const struct dc_verdict *v)
{
	const struct dc_reason_info *info;
	uint16_t want_port = f->port;

	check((unsigned)v->reason < DC_REASON_COUNT);
	info = dc_reason_info(v->reason);
	check(info != NULL && info->name != NULL && info->name[0] != '\0');
	check(dc_reason_str(v->reason) != NULL);
	check(dc_reason_str(dc_line_reason(v)) != NULL);

	/* The enforced answer and its reason agree. */
	check(v->allow == 0 || v->allow == 1);
	check(v->allow == (v->reason == DC_ALLOWED));
	/* would_deny marks a relayed connection, for a reason of its own. */
	check(!v->would_deny || v->allow);
	if (v->would_deny) {
		check(v->would_reason != DC_ALLOWED &&
		    is_policy_reason(v->would_reason));
		check(dc_reason_str(v->would_reason) != NULL);
		check((v->would_rule == NULL) ==
		    (v->would_reason == DC_NOT_ALLOWED));
	} else {
		check(v->would_rule == NULL);
	}
	/* Only an admitting allow rule lends its settings. */
	check(!dc_allow_private(v) || (v->admit != NULL &&
	    v->admit->allow_private));
	check(v->admit == NULL || (v->allow && v->admit->action == POL_ALLOW));
	/* Rules that would refuse lend no settings: a report-mode allow
	 * admits only what report mode would not deny. */
	check(!v->would_deny || v->admit == NULL ||
	    v->admit->mode == POL_MODE_ENFORCE);
	check(rule_of(s, v->rule) && rule_of(s, v->admit) &&
	    rule_of(s, v->would_rule));
	if (v->reason == DC_DENIED_BY_RULE)
		check(v->rule != NULL && v->rule->action == POL_DENY &&
		    v->rule->mode == POL_MODE_ENFORCE);
	if (v->reason == DC_PORT_NOT_ALLOWED)
		check(v->rule != NULL && v->rule->action == POL_ALLOW);
	if (!is_policy_reason(v->reason))
		check(v->rule == NULL && v->admit == NULL && !v->would_deny);
	/* Report-mode rules never admit in a policy in enforce mode. */
	if (pol_snapshot_mode(s) == POL_MODE_ENFORCE && v->allow)
		check(v->admit != NULL && v->rule == v->admit &&
		    v->admit->mode == POL_MODE_ENFORCE);

	if (f->listener == DC_L_TRANSPARENT && f->from != DC_FROM_LOCATION &&
	    sa_port(f->orig_dst) != 0)
		want_port = sa_port(f->orig_dst);
	check(v->port == want_port);
}

static void decide_all(struct input *in)
{
	struct dc_verdict v[NPOLICIES];
	const struct dc_opts *o = in->has_opts ? &in->o : NULL;
	/* A Location without a host is refused not_allowed before the
	 * policy: a policy reason, but not the policy's answer. */
	int named = in->f.name != NULL && in->f.name[0] != '\0' &&
	    !in->f.name_invalid;

	for (int i = 0; i < NPOLICIES; i++) {
		if (policies[i] == NULL)
			continue;
		dc_decide(policies[i], o, &in->f, &v[i]);
		check_verdict(policies[i], &in->f, &v[i]);
		/* A refusal before the policy does not depend on the policy. */
		if (!is_policy_reason(v[P_ENFORCE].reason) ||
		    !is_policy_reason(v[i].reason))
			check(v[i].reason == v[P_ENFORCE].reason && !v[i].allow);
	}
	/* A file in report mode alone, in an enforcing policy: no admission. */
	check(!v[P_REPORT_FILE].allow);
	if (policies[P_MIXED] != NULL) {
		/* Adding a report-mode file changes no enforced verdict. */
		check(v[P_MIXED].allow == v[P_ENFORCE].allow &&
		    v[P_MIXED].reason == v[P_ENFORCE].reason &&
		    same_place(v[P_MIXED].rule, v[P_ENFORCE].rule) &&
		    same_place(v[P_MIXED].admit, v[P_ENFORCE].admit));
		check(!v[P_ENFORCE].would_deny);
		/* The policy's own mode relays what the enforced rules leave
		 * open, and keeps what they decide. */
		if (v[P_MIXED].allow)
			check(v[P_MIXED_REPORT].allow &&
			    same_place(v[P_MIXED_REPORT].admit, v[P_MIXED].admit));
		if (v[P_MIXED].reason == DC_DENIED_BY_RULE)
			check(!v[P_MIXED_REPORT].allow &&
			    same_place(v[P_MIXED_REPORT].rule, v[P_MIXED].rule));
		if (named && is_policy_reason(v[P_MIXED].reason) &&
		    v[P_MIXED].reason != DC_DENIED_BY_RULE)
			check(v[P_MIXED_REPORT].allow);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int loaded;
	static struct input in;
	unsigned kind, flags;
	const uint8_t *buf;
	size_t len;
	int ok;

	if (!loaded) {
		load_policies();
		loaded = 1;
	}
	if (size < 2)
		return 0;
	kind = data[0] % 3;
	flags = data[1];
	buf = data + 2;
	len = size - 2;

	memset(&in, 0, sizeof(in));
	in.src.sin_family = AF_INET;
	in.src.sin_port = htons(40000);
	in.src.sin_addr.s_addr = htonl(0x7f000001);     /* 127.0.0.1 */
	if (!(flags & F_NO_SRC))
		in.f.src = (const struct sockaddr *)&in.src;
	if (flags & F_ORIG_DST) {
		in.orig.sin_family = AF_INET;
		in.orig.sin_port = htons(8443);
		in.orig.sin_addr.s_addr = htonl(0xc0000201);    /* 192.0.2.1 */
		in.f.orig_dst = (const struct sockaddr *)&in.orig;
	}
	if (kind == 2) {
		if (proxy_parse(buf, len, &in.ph, NULL) != PROXY_DONE)
			return 0;
		check(in.ph.header_len <= len);
		if (!in.ph.local) {
			in.f.src = (const struct sockaddr *)&in.ph.src;
			in.f.orig_dst = (const struct sockaddr *)&in.ph.dst;
		}
		buf += in.ph.header_len;
		len -= in.ph.header_len;
		kind = len > 0 && buf[0] == 0x16 ? 0 : 1;
	}
	ok = kind == 0 ? from_hello(&in, buf, len, flags) :
	    from_http(&in, buf, len, flags);
	if (!ok)
		return 0;
	if (flags & F_LOCATION)
		in.f.from = DC_FROM_LOCATION;
	in.has_opts = !(flags & F_NO_OPTS);
	in.o.refuse_ech = (flags & F_REFUSE_ECH) != 0;
	decide_all(&in);
	return 0;
}

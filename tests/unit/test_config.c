/*
 * The daemon configuration loader: defaults, every key, relative paths,
 * and the exact file:line:column messages for what is wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "gateway/gwconfig.h"
#include "tap.h"

struct diags {
	char text[4096];
	unsigned errors;
};

static void
collect(void *arg, enum pol_severity sev, const char *file, unsigned line,
    unsigned col, const char *msg)
{
	struct diags *d = arg;
	size_t used = strlen(d->text);

	if (sev == POL_ERROR)
		d->errors++;
	snprintf(d->text + used, sizeof(d->text) - used, "%s:%u:%u: %s\n",
	    file ? file : "-", line, col, msg);
}

static struct gw_config *
load(const char *text, struct diags *d)
{
	memset(d, 0, sizeof(*d));
	return gw_config_load_buffer("t.yaml", "/etc/egressd", text, strlen(text),
	    collect, d);
}

static void
test_full(void)
{
	struct diags d;
	struct gw_config *c = load(
	    "listeners:\n"
	    "  - name: tls\n"
	    "    address: 127.0.0.1:8443\n"
	    "    protocol: tls\n"
	    "    upstream_port: 8444\n"
	    "    defer_accept: false\n"
	    "  - address: \"[::1]:9443\"\n"
	    "workers: 3\n"
	    "dns:\n"
	    "  servers: [\"127.0.0.1:5353\", \"::1\"]\n"
	    "  min_ttl: 5s\n"
	    "  max_ttl: 1h\n"
	    "  negative_ttl: 30s\n"
	    "policy:\n"
	    "  files: [\"allow.yaml\", \"/abs/dir\"]\n"
	    "log:\n"
	    "  path: egress.log\n"
	    "timeouts: {hello: 250ms, dns: 5s, connect: 2m, idle: 1h, drain: 0}\n"
	    "max_connections: 500\n", &d);

	if (!tap_ok(c != NULL, "a full configuration loads")) {
		tap_diag("%s", d.text);
		return;
	}
	tap_is_int(c->nlisteners, 2, "two listeners");
	tap_is_str(c->listeners[0].name, "tls", "listener name");
	tap_is_int(c->listeners[0].upstream_port, 8444, "upstream_port");
	tap_is_int(ntohs(((struct sockaddr_in *)&c->listeners[0].addr)->sin_port),
	    8443, "listener port");
	tap_is_str(c->listeners[1].name, "listener1", "unnamed listener gets a name");
	tap_is_int(c->listeners[1].addr.ss_family, AF_INET6, "IPv6 listener");
	tap_is_int(c->listeners[1].upstream_port, 443, "upstream_port defaults to 443");
	tap_is_int(c->listeners[0].defer_accept, 0, "defer_accept: false");
	tap_is_int(c->listeners[1].defer_accept, 1, "defer_accept defaults to true");
	tap_is_int(c->workers, 3, "workers: 3");
	tap_is_int(c->ndns_servers, 2, "two DNS servers");
	tap_is_int(c->dns_min_ttl, 5, "min_ttl 5 s");
	tap_is_int(c->dns_max_ttl, 3600, "max_ttl 1 h");
	tap_is_int(c->dns_neg_ttl, 30, "negative_ttl 30 s");
	tap_is_int(c->npolicy, 2, "two policy paths");
	tap_is_str(c->policy_paths[0], "/etc/egressd/allow.yaml",
	    "relative policy path is taken from the config file's directory");
	tap_is_str(c->policy_paths[1], "/abs/dir", "absolute path kept");
	tap_is_str(c->log_path, "/etc/egressd/egress.log", "relative log path too");
	tap_is_int(c->timeouts.hello_ms, 250, "hello 250ms");
	tap_is_int(c->timeouts.connect_ms, 120000, "connect 2m");
	tap_is_int(c->timeouts.idle_ms, 3600000, "idle 1h");
	tap_is_int(c->timeouts.drain_ms, 0, "drain 0 is allowed");
	tap_is_int(c->max_connections, 500, "max_connections");
	gw_config_free(c);
}

static void
test_defaults(void)
{
	struct diags d;
	struct gw_config *c = load(
	    "listeners: [{address: \"127.0.0.1:1\"}]\n"
	    "policy: {files: [p.yaml]}\n", &d);

	if (!tap_ok(c != NULL, "a minimal configuration loads")) {
		tap_diag("%s", d.text);
		return;
	}
	tap_ok(c->workers >= 1, "workers default to the core count (%d)", c->workers);
	tap_is_str(c->log_path, "-", "log defaults to stdout");
	tap_is_int(c->ndns_servers, 0, "no DNS servers: resolv.conf");
	tap_is_int(c->timeouts.hello_ms, 10000, "hello timeout default 10 s");
	tap_is_int(c->timeouts.dns_ms, 5000, "dns timeout default 5 s");
	tap_is_int(c->timeouts.connect_ms, 5000, "connect timeout default 5 s");
	tap_is_int(c->timeouts.idle_ms, 3600000, "idle timeout default 1 h");
	tap_is_int(c->timeouts.drain_ms, 30000, "drain timeout default 30 s");
	tap_is_int(c->max_connections, 10000, "max_connections default 10000");
	tap_is_int(c->listeners[0].proxy_protocol, 0, "proxy_protocol default off");
	tap_is_int(c->listeners[0].defer_accept, 1, "defer_accept default on");
	tap_ok(c->listeners[0].proxy_from == NULL &&
	    c->listeners[0].nproxy_from == 0, "no proxy_protocol_from by default");
	tap_is_int(c->refuse_ech, 0, "refuse_ech default false");
	tap_is_int(c->policy_redecide, 1, "policy.redecide default true");
	tap_is_int(c->policy_watch, 1, "policy.watch default true");
	tap_is_int(c->admin_max_conns, 64, "admin.max_connections default 64");
	gw_config_free(c);
}

static int
contains(const struct pol_cidr *c, const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
			return -1;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
			return -1;
	}
	return pol_cidr_contains(c, (const struct sockaddr *)&ss);
}

/* proxy_protocol_from: stored per listener, only where it is written. */
static void
test_proxy_from(void)
{
	struct diags d;
	const struct gw_listener_conf *lb, *direct;
	struct gw_config *c = load(
	    "listeners:\n"
	    "  - name: behind-lb\n"
	    "    address: 127.0.0.1:8443\n"
	    "    proxy_protocol: true\n"
	    "    proxy_protocol_from: [\"10.0.0.0/8\", \"192.0.2.7/32\", \"fd00:1::/64\"]\n"
	    "  - name: direct\n"
	    "    address: 127.0.0.1:8444\n"
	    "policy: {files: [p.yaml]}\n", &d);

	if (!tap_ok(c != NULL, "a listener with proxy_protocol and "
	    "proxy_protocol_from loads")) {
		tap_diag("%s", d.text);
		return;
	}
	lb = &c->listeners[0];
	direct = &c->listeners[1];
	tap_is_int(lb->proxy_protocol, 1, "proxy_protocol: true");
	tap_is_int(lb->nproxy_from, 3, "three front-proxy CIDRs");
	tap_is_int(lb->proxy_from[0].family, AF_INET, "the first is IPv4");
	tap_is_int(lb->proxy_from[0].prefix, 8, "10.0.0.0/8: prefix 8");
	tap_is_int(lb->proxy_from[1].prefix, 32, "192.0.2.7/32: prefix 32");
	tap_is_int(lb->proxy_from[2].family, AF_INET6, "the third is IPv6");
	tap_is_int(lb->proxy_from[2].prefix, 64, "fd00:1::/64: prefix 64");
	tap_is_int(contains(&lb->proxy_from[0], "10.200.3.4"), 1,
	    "10.200.3.4 is in 10.0.0.0/8");
	tap_is_int(contains(&lb->proxy_from[0], "11.0.0.1"), 0,
	    "11.0.0.1 is not");
	tap_is_int(contains(&lb->proxy_from[1], "192.0.2.7"), 1,
	    "192.0.2.7 is in 192.0.2.7/32");
	tap_is_int(contains(&lb->proxy_from[1], "192.0.2.8"), 0,
	    "192.0.2.8 is not");
	tap_is_int(contains(&lb->proxy_from[2], "fd00:1::9"), 1,
	    "fd00:1::9 is in fd00:1::/64");
	tap_is_int(contains(&lb->proxy_from[2], "fd00:2::9"), 0,
	    "fd00:2::9 is not");
	tap_ok(direct->proxy_protocol == 0 && direct->proxy_from == NULL &&
	    direct->nproxy_from == 0, "the other listener trusts no header");
	gw_config_free(c);
}

/* refuse_ech, policy.redecide, admin.max_connections: set and bounds. */
static void
test_switches(void)
{
	struct diags d;
	struct gw_config *c = load(
	    "listeners: [{address: \"127.0.0.1:1\"}]\n"
	    "policy: {files: [p.yaml], watch: false, redecide: false}\n"
	    "refuse_ech: true\n"
	    "admin: {address: \"127.0.0.1:2\", max_connections: 4}\n", &d);

	if (!tap_ok(c != NULL, "refuse_ech, policy.redecide and "
	    "admin.max_connections load")) {
		tap_diag("%s", d.text);
		return;
	}
	tap_is_int(c->refuse_ech, 1, "refuse_ech: true");
	tap_is_int(c->policy_redecide, 0, "policy.redecide: false");
	tap_is_int(c->policy_watch, 0, "policy.watch: false beside it");
	tap_is_int(c->admin_max_conns, 4, "admin.max_connections: 4");
	gw_config_free(c);

	c = load("listeners: [{address: \"127.0.0.1:1\"}]\n"
	    "policy: {files: [p.yaml], redecide: true}\n"
	    "refuse_ech: false\n"
	    "admin: {max_connections: 1}\n", &d);
	tap_ok(c != NULL && c->refuse_ech == 0 && c->policy_redecide == 1 &&
	    c->admin_max_conns == 1, "refuse_ech: false, redecide: true, "
	    "admin.max_connections: 1 (the least)");
	gw_config_free(c);

	c = load("listeners: [{address: \"127.0.0.1:1\"}]\n"
	    "policy: {files: [p.yaml]}\n"
	    "admin: {max_connections: \"10000\"}\n", &d);
	tap_ok(c != NULL && c->admin_max_conns == 10000,
	    "admin.max_connections: 10000 (the most)");
	gw_config_free(c);
}

static void
test_errors(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "listeners: [{address: \"127.0.0.1:1\", bogus: 1}]\npolicy: {files: [p]}\n",
		  "t.yaml:1:38: listener: unknown key 'bogus' (expected one of: name, address, protocol, upstream_port, proxy_protocol, proxy_protocol_from, defer_accept)\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\npolicy: {files: [q]}\n",
		  "t.yaml:3:1: configuration: key 'policy' given twice\n" },
		{ "listeners: [{address: \"127.0.0.1:0\"}]\npolicy: {files: [p]}\n",
		  "t.yaml:1:23: listener address '127.0.0.1:0' must be IP:PORT or [IPv6]:PORT\n" },
		{ "listeners: [{name: a, address: \"127.0.0.1:1\"}, {name: a, address: \"127.0.0.1:2\"}]\npolicy: {files: [p]}\n",
		  "t.yaml:1:55: listener name 'a' used twice\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nworkers: 0\n",
		  "t.yaml:3:10: workers must be 1-256 or 'auto'\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\ntimeouts: {idle: 0}\n",
		  "t.yaml:3:18: timeouts.idle must be more than 0\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\ndns: {min_ttl: 2h, max_ttl: 1h}\n",
		  "t.yaml:3:6: dns: min_ttl is larger than max_ttl\n" },
		{ "policy: {files: [p]}\n",
		  "t.yaml:0:0: no listeners: at least one is required\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\nlog: {path: \"\"}\npolicy: {files: [p]}\n",
		  "t.yaml:2:13: log.path: empty (use \"-\" for stdout)\n" },
		/* proxy_protocol_from: fail closed, and only with proxy_protocol. */
		{ "listeners: [{address: \"127.0.0.1:1\", proxy_protocol: true}]\npolicy: {files: [p]}\n",
		  "t.yaml:1:54: proxy_protocol: true needs proxy_protocol_from: the CIDRs of the front proxies whose headers are believed\n" },
		{ "listeners:\n  - address: \"127.0.0.1:1\"\n    proxy_protocol_from: [\"10.0.0.0/8\"]\npolicy: {files: [p]}\n",
		  "t.yaml:3:26: proxy_protocol_from needs proxy_protocol: true (without it the listener reads no PROXY header)\n" },
		{ "listeners:\n  - address: \"127.0.0.1:1\"\n    proxy_protocol: false\n    proxy_protocol_from: [\"10.0.0.0/8\"]\npolicy: {files: [p]}\n",
		  "t.yaml:4:26: proxy_protocol_from needs proxy_protocol: true (without it the listener reads no PROXY header)\n" },
		{ "listeners:\n  - address: \"127.0.0.1:1\"\n    proxy_protocol: true\n    proxy_protocol_from: [\"10.0.0.0/8\", \"10.0.0.1/8\"]\npolicy: {files: [p]}\n",
		  "t.yaml:4:41: proxy_protocol_from: '10.0.0.1/8' is not a CIDR such as 10.8.0.0/16 (host bits must be zero)\n" },
		{ "listeners:\n  - address: \"127.0.0.1:1\"\n    proxy_protocol: true\n    proxy_protocol_from: []\npolicy: {files: [p]}\n",
		  "t.yaml:4:26: proxy_protocol_from: give 1 to 64 CIDRs\n" },
		{ "listeners:\n  - address: \"127.0.0.1:1\"\n    proxy_protocol: true\n    proxy_protocol_from: 10.0.0.0/8\npolicy: {files: [p]}\n",
		  "t.yaml:4:26: proxy_protocol_from must be a list\n" },
		{ "listeners:\n  - address: \"127.0.0.1:1\"\n    proxy_protocol: yes\n    proxy_protocol_from: [\"10.0.0.0/8\"]\npolicy: {files: [p]}\n",
		  "t.yaml:3:21: proxy_protocol must be true or false\n" },
		{ "listeners:\n  - address: \"127.0.0.1:1\"\n    proxy_protocol: true\n    proxy_protocol_from: [\"10.0.0.0/8\"]\n    proxy_protocol_from: [\"10.1.0.0/16\"]\npolicy: {files: [p]}\n",
		  "t.yaml:5:5: listener: key 'proxy_protocol_from' given twice\n" },
		/* Every listener's problem is reported, not just the first. */
		{ "listeners:\n  - {address: \"127.0.0.1:1\", proxy_protocol: true}\n  - {address: \"127.0.0.1:2\", proxy_protocol_from: [\"::1/128\"]}\npolicy: {files: [p]}\n",
		  "t.yaml:2:46: proxy_protocol: true needs proxy_protocol_from: the CIDRs of the front proxies whose headers are believed\n"
		  "t.yaml:3:51: proxy_protocol_from needs proxy_protocol: true (without it the listener reads no PROXY header)\n" },
		{ "listeners: [{address: \"127.0.0.1:1\", defer_accept: later}]\npolicy: {files: [p]}\n",
		  "t.yaml:1:52: defer_accept must be true or false\n" },
		/* refuse_ech, policy.redecide: booleans, and known keys. */
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nrefuse_ech: maybe\n",
		  "t.yaml:3:13: refuse_ech must be true or false\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p], redecide: 1}\n",
		  "t.yaml:2:32: policy.redecide must be true or false\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p], redecid: true}\n",
		  "t.yaml:2:22: policy: unknown key 'redecid' (expected one of: files, watch, redecide)\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nrefuse_ECH: true\n",
		  "t.yaml:3:1: configuration: unknown key 'refuse_ECH' (expected one of: listeners, workers, dns, policy, log, timeouts, max_connections, mode, namespaces, admin, drain, user, group, redirects, upstream_tls, refuse_ech, relay_splice)\n" },
		/* A namespace given twice: a Sidecar would restrict only the
		 * first, and the second's ranges would keep what it forbids. */
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nnamespaces:\n  team-a: [\"10.1.0.0/16\"]\n  team-b: [\"10.2.0.0/16\"]\n  team-a: [\"10.3.0.0/16\"]\n",
		  "t.yaml:6:3: namespaces: 'team-a' given twice\n" },
		/* Overlapping ranges: a client in both would be a client of
		 * either, and a Sidecar narrowing one would not narrow it. An
		 * IPv4 range and its IPv4-mapped form are the same clients. */
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nnamespaces:\n  payments: [\"10.8.0.0/16\"]\n  web: [\"10.0.0.0/8\"]\n",
		  "t.yaml:5:8: namespaces: 10.0.0.0/8 of 'web' overlaps 10.8.0.0/16 of 'payments': a client in both could use what either may, and a Sidecar would not narrow it\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nnamespaces:\n  payments: [\"10.8.0.0/16\"]\n  web: [\"fd00::/8\", \"::ffff:10.8.4.0/120\"]\n",
		  "t.yaml:5:8: namespaces: ::ffff:10.8.4.0/120 of 'web' overlaps 10.8.0.0/16 of 'payments': a client in both could use what either may, and a Sidecar would not narrow it\n" },
		/* admin.max_connections: 1 to 10000. */
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nadmin: {max_connections: 0}\n",
		  "t.yaml:3:26: admin.max_connections must be a whole number from 1 to 10000\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nadmin: {max_connections: 10001}\n",
		  "t.yaml:3:26: admin.max_connections must be a whole number from 1 to 10000\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nadmin: {max_connections: 99999999999999999999999}\n",
		  "t.yaml:3:26: admin.max_connections must be a whole number from 1 to 10000\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nadmin: {max_connections: -1}\n",
		  "t.yaml:3:26: admin.max_connections must be a whole number from 1 to 10000\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nadmin: {max_connections: 4x}\n",
		  "t.yaml:3:26: admin.max_connections must be a whole number from 1 to 10000\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nadmin: {max_connections: \"\"}\n",
		  "t.yaml:3:26: admin.max_connections must be a whole number from 1 to 10000\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nadmin: {max_connections: [4]}\n",
		  "t.yaml:3:26: admin.max_connections must be a whole number from 1 to 10000\n" },
		{ "listeners: [{address: \"127.0.0.1:1\"}]\npolicy: {files: [p]}\nadmin: {max_conns: 4}\n",
		  "t.yaml:3:9: admin: unknown key 'max_conns' (expected one of: address, health_address, prometheus_address, max_connections)\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct diags d;
		struct gw_config *c = load(cases[i].text, &d);

		tap_ok(c == NULL, "case %zu is refused", i);
		tap_is_str(d.text, cases[i].want, "case %zu message", i);
		gw_config_free(c);
	}
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

/* A reload's question: has the file changed since it was read, where? */
static void
test_changed(void)
{
	static const char base[] =
	    "# the gateway\n"
	    "listeners:\n"
	    "  - {name: tls, address: \"127.0.0.1:8443\"}\n"
	    "dns: {servers: [\"127.0.0.1:53\"]}\n"
	    "policy: {files: [p.yaml]}\n";
	static const struct { const char *text, *want; int changed; } cases[] = {
		{ base, "", 0 },
		{ "# the gateway, commented\n"
		  "listeners:\n"
		  "  - {name: tls, address: \"127.0.0.1:8443\"}\n"
		  "dns: {servers: [\"127.0.0.1:53\"]}\n"
		  "policy: {files: [p.yaml]}\n", "comments or layout only", 1 },
		{ "listeners:\n"
		  "  - {name: tls, address: \"127.0.0.1:8443\"}\n"
		  "dns: {servers: [\"127.0.0.1:53\"], deny_ranges: [10.0.0.0/8]}\n"
		  "policy: {files: [p.yaml]}\n"
		  "namespaces: {shop: [10.1.0.0/16]}\n", "dns, namespaces", 1 },
		{ "listeners:\n"
		  "  - {name: tls, address: \"127.0.0.1:9443\"}\n"
		  "policy: {files: [p.yaml]}\n", "listeners, dns", 1 },
		{ "listeners: [\n", "it no longer parses", 1 },
	};
	char dir[] = "/tmp/egressd-test-changed.XXXXXX", path[64], out[256];
	struct gw_config *c;

	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/egressd.yaml", dir);
	write_file(path, base);
	c = gw_config_load(path, NULL, NULL);
	tap_ok(c != NULL, "the base configuration loads");
	if (c == NULL)
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_file(path, cases[i].text);
		tap_is_int(gw_config_changed(c, out, sizeof(out)), cases[i].changed,
		    "changed %zu", i);
		tap_is_str(out, cases[i].want, "changed %zu: what", i);
	}
	unlink(path);
	tap_is_int(gw_config_changed(c, out, sizeof(out)), 1, "a file gone is a change");
	tap_is_str(out, "it cannot be read (cannot open: No such file or directory)",
	    "and says why");
	rmdir(dir);
	gw_config_free(c);
}

int
main(void)
{
	test_full();
	test_defaults();
	test_proxy_from();
	test_switches();
	test_errors();
	test_changed();
	return tap_done();
}

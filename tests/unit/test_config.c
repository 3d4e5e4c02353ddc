/*
 * The daemon configuration loader: defaults, every key, relative paths,
 * and the exact file:line:column messages for what is wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>

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
	gw_config_free(c);
}

static void
test_errors(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "listeners: [{address: \"127.0.0.1:1\", bogus: 1}]\npolicy: {files: [p]}\n",
		  "t.yaml:1:38: listener: unknown key 'bogus' (expected one of: name, address, protocol, upstream_port, proxy_protocol)\n" },
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
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct diags d;
		struct gw_config *c = load(cases[i].text, &d);

		tap_ok(c == NULL, "case %zu is refused", i);
		tap_is_str(d.text, cases[i].want, "case %zu message", i);
		gw_config_free(c);
	}
}

int
main(void)
{
	test_full();
	test_defaults();
	test_errors();
	return tap_done();
}

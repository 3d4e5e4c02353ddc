/*
 * policy/istio.c: Istio resources read into rules (kinds, fields, the
 * exact diagnostics), namespace scoping through exportTo and Sidecar, and
 * DestinationRule TLS origination.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"
#include "tap.h"

struct diags {
	char text[16384];       /* every diagnostic, "file:line:col: msg" */
	char errors[8192];      /* errors only */
	size_t len, elen;
	unsigned nerr, nwarn, nnotice;
};

static void append(char *buf, size_t size, size_t *len, const char *line)
{
	int n = snprintf(buf + *len, size - *len, "%s%s", *len ? "\n" : "", line);

	if (n > 0 && (size_t)n < size - *len)
		*len += (size_t)n;
}

static void collect(void *arg, enum pol_severity sev, const char *file,
    unsigned line, unsigned col, const char *msg)
{
	struct diags *d = arg;
	char one[1200];

	snprintf(one, sizeof(one), "%s:%u:%u: %s", file ? file : "-", line, col, msg);
	append(d->text, sizeof(d->text), &d->len, one);
	if (sev == POL_ERROR) {
		d->nerr++;
		append(d->errors, sizeof(d->errors), &d->elen, one);
	} else if (sev == POL_WARNING) {
		d->nwarn++;
	} else {
		d->nnotice++;
	}
}

static struct pol_snapshot *load_str(const char *text, struct diags *d)
{
	memset(d, 0, sizeof(*d));
	return pol_load_buffer("t.yaml", text, strlen(text), collect, d);
}

static char tmpdir[64];

/* Writes text to a file and loads it with a namespace map. */
static struct pol_snapshot *load_ns(const char *text, const struct pol_load_opts *o,
    struct diags *d)
{
	char path[128];
	const char *paths[1] = { path };
	FILE *f;

	snprintf(path, sizeof(path), "%s/p.yaml", tmpdir);
	f = fopen(path, "w");
	if (f == NULL)
		return NULL;
	fputs(text, f);
	fclose(f);
	memset(d, 0, sizeof(*d));
	return pol_load_ex(paths, 1, o, collect, d);
}

static int contains(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

/* Finds the rule for a pattern and origin (NULL: any origin). */
static const struct pol_rule *find_rule(const struct pol_snapshot *s,
    const char *pattern, const char *origin, size_t nth)
{
	for (size_t i = 0; i < pol_snapshot_rule_count(s); i++) {
		const struct pol_rule *r = pol_snapshot_rule(s, i);

		if (strcmp(r->pattern, pattern) == 0 &&
		    (origin == NULL || strcmp(r->origin, origin) == 0) && nth-- == 0)
			return r;
	}
	return NULL;
}

static const struct pol_rule *decide(const struct pol_snapshot *s,
    const char *name, uint16_t port, enum pol_proto proto, const char *src,
    int *allow)
{
	struct sockaddr_in sin;
	struct pol_request req = { .name = name, .port = port, .proto = proto };
	struct pol_verdict v;

	if (src != NULL) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		inet_pton(AF_INET, src, &sin.sin_addr);
		req.src = (const struct sockaddr *)&sin;
	}
	pol_decide(s, &req, &v);
	*allow = v.allow;
	return v.rule;
}

#define ALLOWED(s, name, port, src, want, ...) do { \
	int allow_; \
	(void)decide((s), (name), (port), POL_PROTO_TLS, (src), &allow_); \
	tap_is_int(allow_, (want), __VA_ARGS__); \
} while (0)

/* The egress gateway task: TLS passthrough for edition.cnn.com. */
static const char passthrough[] =
	"apiVersion: networking.istio.io/v1\n"
	"kind: ServiceEntry\n"
	"metadata:\n"
	"  name: cnn\n"
	"spec:\n"
	"  hosts:\n"
	"  - edition.cnn.com\n"
	"  ports:\n"
	"  - number: 443\n"
	"    name: tls\n"
	"    protocol: TLS\n"
	"  resolution: DNS\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: Gateway\n"
	"metadata:\n"
	"  name: istio-egressgateway\n"
	"spec:\n"
	"  selector:\n"
	"    istio: egressgateway\n"
	"  servers:\n"
	"  - port: {number: 443, name: tls, protocol: TLS}\n"
	"    hosts: [edition.cnn.com]\n"
	"    tls: {mode: PASSTHROUGH}\n"
	"  - port: {number: 8443, name: tls-alt, protocol: TLS}\n"
	"    hosts: [edition.cnn.com]\n"
	"    tls: {mode: PASSTHROUGH}\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: DestinationRule\n"
	"metadata:\n"
	"  name: egressgateway-for-cnn\n"
	"spec:\n"
	"  host: istio-egressgateway.istio-system.svc.cluster.local\n"
	"  subsets:\n"
	"  - name: cnn\n"
	"---\n"
	"apiVersion: networking.istio.io/v1\n"
	"kind: VirtualService\n"
	"metadata:\n"
	"  name: direct-cnn-through-egress-gateway\n"
	"spec:\n"
	"  hosts:\n"
	"  - edition.cnn.com\n"
	"  gateways:\n"
	"  - mesh\n"
	"  - istio-egressgateway\n"
	"  tls:\n"
	"  - match:\n"
	"    - gateways: [mesh]\n"
	"      port: 443\n"
	"      sniHosts: [edition.cnn.com]\n"
	"    route:\n"
	"    - destination:\n"
	"        host: istio-egressgateway.istio-system.svc.cluster.local\n"
	"        subset: cnn\n"
	"        port: {number: 443}\n"
	"  - match:\n"
	"    - gateways: [istio-egressgateway]\n"
	"      port: 8443\n"
	"      sniHosts: [edition.cnn.com]\n"
	"    route:\n"
	"    - destination:\n"
	"        host: edition.cnn.com\n"
	"        port: {number: 443}\n"
	"      weight: 100\n";

static void test_passthrough(void)
{
	struct diags d;
	struct pol_snapshot *s = load_str(passthrough, &d);
	const struct pol_rule *r;

	tap_ok(s != NULL, "egress gateway passthrough manifests load");
	if (s == NULL) {
		tap_diag("%s", d.text);
		return;
	}
	tap_is_int(d.nerr, 0, "no errors");
	tap_ok(!contains(d.text, "Gateway"),
	    "an egress Gateway is read without a word");
	tap_is_int(pol_snapshot_rule_count(s), 2, "one ServiceEntry rule, one gateway route");
	r = find_rule(s, "edition.cnn.com", "ServiceEntry", 0);
	tap_ok(r != NULL, "ServiceEntry rule present");
	if (r != NULL) {
		tap_is_str(r->name, "cnn", "rule name is metadata.name");
		tap_ok(r->ns == NULL, "no metadata.namespace: ns is NULL");
		tap_is_int(r->nports, 1, "one port");
		tap_is_int(r->ports[0], 443, "port 443");
		tap_is_int(r->resolution, POL_RES_DNS, "resolution DNS");
		tap_is_int(r->line, 7, "host line");
		tap_is_int(r->col, 5, "host column");
		tap_is_int(r->originate_tls, 0, "no TLS origination");
		tap_is_int(r->nsources, 0, "any client");
	}
	r = find_rule(s, "edition.cnn.com", "VirtualService", 0);
	tap_ok(r != NULL, "the gateway-bound tls route is a rule");
	if (r != NULL) {
		tap_is_str(r->name, "direct-cnn-through-egress-gateway", "VirtualService name");
		tap_is_int(r->nports, 1, "route port");
		tap_is_int(r->ports[0], 8443, "port from match.port");
		tap_is_int(r->line, 61, "sniHost line");
	}
	tap_ok(find_rule(s, "edition.cnn.com", "VirtualService", 1) == NULL,
	    "the mesh-only route adds nothing");
	ALLOWED(s, "edition.cnn.com", 443, NULL, 1, "edition.cnn.com:443 allowed");
	ALLOWED(s, "edition.cnn.com", 8443, NULL, 1, "edition.cnn.com:8443 allowed (route)");
	ALLOWED(s, "edition.cnn.com", 80, NULL, 0, "edition.cnn.com:80 denied");
	ALLOWED(s, "www.cnn.com", 443, NULL, 0, "www.cnn.com denied");
	ALLOWED(s, "cnn.com", 443, NULL, 0, "cnn.com denied");
	tap_ok(contains(d.text, "DestinationRule") == 0,
	    "a DestinationRule without tls says nothing");
	pol_snapshot_unref(s);
}

static void test_wildcard(void)
{
	struct diags d;
	struct pol_snapshot *s = load_str(
	    "apiVersion: networking.istio.io/v1alpha3\n"
	    "kind: ServiceEntry\n"
	    "metadata: {name: wikipedia, namespace: web}\n"
	    "spec:\n"
	    "  hosts: [\"*.wikipedia.org\"]\n"
	    "  ports: [{number: 443, name: tls, protocol: tls}]\n", &d);
	const struct pol_rule *r;

	tap_ok(s != NULL, "wildcard ServiceEntry loads (protocol case-insensitive)");
	if (s == NULL) {
		tap_diag("%s", d.text);
		return;
	}
	r = pol_snapshot_rule(s, 0);
	tap_is_int(r->kind, POL_PAT_SUBDOMAINS, "*.wikipedia.org is a subdomain pattern");
	tap_is_int(r->resolution, POL_RES_NONE, "default resolution is NONE");
	tap_is_str(r->ns, "web", "namespace kept");
	ALLOWED(s, "en.wikipedia.org", 443, NULL, 1, "en.wikipedia.org allowed");
	ALLOWED(s, "a.b.wikipedia.org", 443, NULL, 1, "any depth allowed");
	ALLOWED(s, "wikipedia.org", 443, NULL, 0, "the apex is not");
	ALLOWED(s, "badwikipedia.org", 443, NULL, 0, "badwikipedia.org is not");
	pol_snapshot_unref(s);

	s = load_str(
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata: {name: dyn}\n"
	    "spec:\n"
	    "  hosts: [\"*.example.com\"]\n"
	    "  ports: [{number: 443, name: tls, protocol: TLS}]\n"
	    "  resolution: DYNAMIC_DNS\n", &d);
	tap_ok(s != NULL && pol_snapshot_rule(s, 0)->resolution == POL_RES_DNS,
	    "wildcard host with DYNAMIC_DNS resolves the requested name");
	pol_snapshot_unref(s);
}

static void test_origination(void)
{
	struct diags d;
	struct pol_snapshot *s = load_str(
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata: {name: edition-cnn-com}\n"
	    "spec:\n"
	    "  hosts: [edition.cnn.com]\n"
	    "  ports:\n"
	    "  - {number: 80, name: http-port, protocol: HTTP, targetPort: 443}\n"
	    "  - {number: 443, name: https-port, protocol: HTTPS}\n"
	    "  resolution: DNS\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: DestinationRule\n"
	    "metadata: {name: edition-cnn-com}\n"
	    "spec:\n"
	    "  host: edition.cnn.com\n"
	    "  trafficPolicy:\n"
	    "    portLevelSettings:\n"
	    "    - port: {number: 80}\n"
	    "      tls: {mode: SIMPLE}\n", &d);
	const struct pol_rule *r;
	int allow;

	tap_ok(s != NULL, "TLS origination manifests load");
	if (s == NULL) {
		tap_diag("%s", d.text);
		return;
	}
	tap_is_int(pol_snapshot_rule_count(s), 2, "the rule is split by port");
	r = decide(s, "edition.cnn.com", 80, POL_PROTO_HTTP, NULL, &allow);
	tap_ok(allow && r != NULL && r->originate_tls == 1, "port 80 originates TLS");
	r = decide(s, "edition.cnn.com", 443, POL_PROTO_TLS, NULL, &allow);
	tap_ok(allow && r != NULL && r->originate_tls == 0, "port 443 stays passthrough");
	pol_snapshot_unref(s);

	s = load_str(
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata: {name: w}\n"
	    "spec:\n"
	    "  hosts: [a.example.com, b.example.com, other.test]\n"
	    "  ports: [{number: 443, name: https, protocol: HTTPS}]\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1beta1\n"
	    "kind: DestinationRule\n"
	    "metadata: {name: all}\n"
	    "spec:\n"
	    "  host: \"*.example.com\"\n"
	    "  trafficPolicy: {tls: {mode: MUTUAL}}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1beta1\n"
	    "kind: DestinationRule\n"
	    "metadata: {name: none}\n"
	    "spec:\n"
	    "  host: nothing.example.org\n"
	    "  trafficPolicy: {tls: {mode: SIMPLE}}\n", &d);
	tap_ok(s != NULL, "wildcard DestinationRule loads");
	if (s != NULL) {
		tap_is_int(find_rule(s, "a.example.com", NULL, 0)->originate_tls, 1,
		    "*.example.com DR covers a.example.com");
		tap_is_int(find_rule(s, "b.example.com", NULL, 0)->originate_tls, 1,
		    "*.example.com DR covers b.example.com");
		tap_is_int(find_rule(s, "other.test", NULL, 0)->originate_tls, 0,
		    "not other.test");
	}
	tap_ok(contains(d.text, "t.yaml:13:31: tls.mode MUTUAL: egressd has no client "
	    "certificates; it originates TLS without one"), "MUTUAL warns");
	tap_ok(contains(d.text, "t.yaml:19:9: DestinationRule host nothing.example.org "
	    "matches no ServiceEntry or VirtualService host; its TLS settings are not used"),
	    "a DestinationRule for an unknown host gets a notice at its host");
	pol_snapshot_unref(s);
}

/* samples/external/aptget.yaml and github.yaml, as published. */
static void test_samples(void)
{
	struct diags d;
	struct pol_snapshot *s = load_str(
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata:\n"
	    "  name: make-aptget-work\n"
	    "spec:\n"
	    "  hosts:\n"
	    "  - deb.debian.org\n"
	    "  - cdn-fastly.deb.debian.org\n"
	    "  - security.debian.org\n"
	    "  - archive.ubuntu.com\n"
	    "  - security.ubuntu.com\n"
	    "  ports:\n"
	    "  - number: 80\n"
	    "    name: http\n"
	    "    protocol: HTTP\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata:\n"
	    "  name: github-tcp\n"
	    "spec:\n"
	    "  hosts:\n"
	    "  - dummy.github.com # not used\n"
	    "  addresses: [\"140.82.112.0/20\", \"192.30.252.0/22\"]\n"
	    "  ports:\n"
	    "  - name: tcp\n"
	    "    number: 22\n"
	    "    protocol: tcp\n"
	    "  location: MESH_EXTERNAL\n", &d);
	int allow;

	tap_ok(s != NULL, "samples/external load");
	if (s == NULL) {
		tap_diag("%s", d.text);
		return;
	}
	tap_is_int(pol_snapshot_rule_count(s), 6, "one rule per host");
	tap_is_int(d.nerr + d.nwarn + d.nnotice, 0, "no diagnostics");
	(void)decide(s, "security.ubuntu.com", 80, POL_PROTO_HTTP, NULL, &allow);
	tap_is_int(allow, 1, "security.ubuntu.com:80 over http allowed");
	(void)decide(s, "security.ubuntu.com", 443, POL_PROTO_TLS, NULL, &allow);
	tap_is_int(allow, 0, "security.ubuntu.com:443 denied");
	(void)decide(s, "ubuntu.com", 80, POL_PROTO_HTTP, NULL, &allow);
	tap_is_int(allow, 0, "ubuntu.com denied");
	pol_snapshot_unref(s);
}

static void test_endpoints(void)
{
	struct diags d;
	struct pol_snapshot *s = load_str(
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata: {name: st}\n"
	    "spec:\n"
	    "  hosts: [api.legacy.example]\n"
	    "  ports: [{number: 443, name: https, protocol: TLS}]\n"
	    "  resolution: STATIC\n"
	    "  endpoints:\n"
	    "  - address: 192.0.2.10\n"
	    "  - address: 192.0.2.11\n"
	    "    ports: {https: 8443}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata: {name: dn}\n"
	    "spec:\n"
	    "  hosts: [\"*.svc.example\"]\n"
	    "  ports: [{number: 443, name: tls, protocol: TLS}]\n"
	    "  resolution: DNS\n"
	    "  endpoints: [{address: lb.example.net}]\n", &d);
	const struct pol_rule *r;

	tap_ok(s != NULL, "STATIC and DNS endpoints load");
	if (s == NULL) {
		tap_diag("%s", d.text);
		return;
	}
	r = find_rule(s, "api.legacy.example", NULL, 0);
	tap_is_int(r->resolution, POL_RES_STATIC, "STATIC");
	tap_is_int(r->nendpoints, 2, "two endpoints");
	tap_is_str(r->endpoints[0].address, "192.0.2.10", "first address");
	tap_is_int(r->endpoints[0].port, 0, "no port map: the request's port");
	tap_is_int(r->endpoints[1].port, 8443, "port mapped by name");
	r = find_rule(s, "*.svc.example", NULL, 0);
	tap_is_int(r->resolution, POL_RES_ENDPOINTS, "DNS with endpoints");
	tap_is_str(r->endpoints[0].address, "lb.example.net", "endpoint name");
	pol_snapshot_unref(s);

	/*
	 * A map naming one of two service ports: the other is the endpoint's
	 * own port (Istio), so a TLS request on 443 must not go to the port
	 * given to http's traffic.
	 */
	s = load_str("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: legacy}\nspec:\n  hosts: [legacy.example]\n"
	    "  ports: [{number: 80, name: http, protocol: HTTP}, "
	    "{number: 443, name: https, protocol: TLS}]\n"
	    "  resolution: STATIC\n  endpoints:\n  - address: 192.0.2.10\n"
	    "    ports: {http: 8080}\n  - address: 192.0.2.11\n"
	    "    ports: {http: 8443, https: 8443}\n", &d);
	r = s != NULL ? find_rule(s, "legacy.example", NULL, 0) : NULL;
	tap_ok(r != NULL && r->nendpoints == 2, "a partial port map loads");
	if (r != NULL && r->nendpoints == 2) {
		tap_is_int(r->endpoints[0].port, 0,
		    "only http mapped: the request's port, not 8080 for 443");
		tap_is_int(r->endpoints[1].port, 8443, "every port mapped alike: taken");
	}
	tap_ok(contains(d.text, "t.yaml:10:12: this endpoint maps service ports "
	    "to different ports; the gateway connects to the port of the request"),
	    "the partial map is warned at the map");
	pol_snapshot_unref(s);
}

#define SE_HEAD "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n" \
	"metadata: {name: x}\nspec:\n"

static void test_errors(void)
{
	static const struct {
		const char *text;
		const char *want;       /* every error, in order */
	} cases[] = {
		{ SE_HEAD "  hosts: [\"*\"]\n",
		  "t.yaml:5:11: * is not a valid ServiceEntry host (a ServiceEntry "
		  "names the hosts it admits)" },
		{ SE_HEAD "  hosts: [10.0.0.1]\n",
		  "t.yaml:5:11: bad host '10.0.0.1': IP addresses are not host names; "
		  "allow the name clients connect to" },
		{ SE_HEAD "  hosts: [192.0.2.0/24]\n",
		  "t.yaml:5:11: bad host '192.0.2.0/24': IP addresses are not host "
		  "names; allow the name clients connect to" },
		{ SE_HEAD "  hosts: [\"foo*.com\"]\n",
		  "t.yaml:5:11: bad host 'foo*.com': a wildcard must be a whole "
		  "leftmost label, as in *.example.com" },
		{ SE_HEAD "  hosts: [.example.com]\n",
		  "t.yaml:5:11: bad host '.example.com': Istio hosts have no "
		  "leading-dot form; write *.example.com (subdomains) and example.com "
		  "(the name itself)" },
		{ SE_HEAD "  hosts: []\n",
		  "t.yaml:5:10: a ServiceEntry must have at least one host in spec.hosts" },
		{ SE_HEAD "  ports: [{number: 443, name: tls}]\n",
		  "t.yaml:5:3: a ServiceEntry must have at least one host in spec.hosts" },
		{ SE_HEAD "  hosts: [a.example]\n  ports: [{number: 443, name: t, protocol: QUIC}]\n",
		  "t.yaml:6:44: unsupported protocol 'QUIC' (expected HTTP, HTTPS, "
		  "HTTP2, GRPC, GRPC-WEB, TCP, TLS, UDP, MONGO, MYSQL, REDIS)" },
		{ SE_HEAD "  hosts: [a.example]\n  ports: [{number: 70000, name: t}]\n",
		  "t.yaml:6:20: port must be a number from 1 to 65535" },
		{ SE_HEAD "  hosts: [a.example]\n  ports: [{number: 443}]\n",
		  "t.yaml:6:11: missing required key 'name'" },
		{ SE_HEAD "  hosts: [a.example]\n  ports: [{number: 443, name: a}, "
		  "{number: 443, name: b}]\n",
		  "t.yaml:6:44: port 443 is defined twice" },
		{ SE_HEAD "  hosts: [a.example]\n  resolution: DNS_RR\n",
		  "t.yaml:6:15: unknown resolution 'DNS_RR' (expected NONE, STATIC, DNS, "
		  "DNS_ROUND_ROBIN or DYNAMIC_DNS)" },
		{ SE_HEAD "  hosts: [\"*.a.example\"]\n  resolution: DNS\n",
		  "t.yaml:5:11: hosts must be FQDN if no endpoints are provided for "
		  "resolution DNS (use NONE or DYNAMIC_DNS for wildcard hosts)" },
		{ SE_HEAD "  hosts: [a.example]\n  endpoints: [{address: 192.0.2.1}]\n",
		  "t.yaml:6:14: no endpoints should be provided for resolution NONE" },
		{ SE_HEAD "  hosts: [a.example]\n  resolution: STATIC\n"
		  "  endpoints: [{address: lb.example}]\n",
		  "t.yaml:7:25: endpoint address 'lb.example' is not an IP address "
		  "(required with resolution STATIC)" },
		{ SE_HEAD "  hosts: [a.example]\n  location: OUTSIDE\n",
		  "t.yaml:6:13: unknown location 'OUTSIDE' (expected MESH_EXTERNAL or "
		  "MESH_INTERNAL)" },
		{ SE_HEAD "  hosts: [a.example]\n  exportTo: [\"*\", \".\"]\n",
		  "t.yaml:6:13: exportTo '*' cannot be combined with other entries" },
		{ SE_HEAD "  hosts: a.example\n",
		  "t.yaml:5:10: spec.hosts must be a list" },
		{ "kind: ServiceEntry\nmetadata: {name: x}\n",
		  "t.yaml:1:1: kind ServiceEntry: missing required key 'apiVersion'" },
		{ "apiVersion: networking.istio.io/v1\nkind: [ServiceEntry]\n",
		  "t.yaml:2:7: kind must be a string" },
		{ "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nspec: {}\n",
		  "t.yaml:1:1: kind ServiceEntry: missing required key 'metadata'" },
		{ "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
		  "metadata: {namespace: Team_A, name: x}\nspec: {hosts: [a.b]}\n",
		  "t.yaml:3:23: metadata.namespace 'Team_A' is not a valid namespace name" },
		{ "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
		  "metadata: {name: x}\nspec:\n  host: a.example\n"
		  "  trafficPolicy: {tls: {mode: STRICT}}\n",
		  "t.yaml:6:31: unknown tls.mode 'STRICT' (expected DISABLE, SIMPLE, "
		  "MUTUAL or ISTIO_MUTUAL)" },
		{ "apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
		  "metadata: {name: x, namespace: a}\nspec:\n  egress:\n"
		  "  - hosts: [\"~Team_B/*\", \"api.example.com\", \"./api\", \"./\"]\n",
		  "t.yaml:6:13: invalid namespace '~Team_B' in host '~Team_B/*' (expected "
		  "*, ., a namespace name, or one of these after ~)\n"
		  "t.yaml:6:26: host 'api.example.com' must be of the form namespace/dnsName\n"
		  "t.yaml:6:45: host './api': short names (non FQDN) are not allowed\n"
		  "t.yaml:6:54: namespace and dnsName in host './' cannot be empty" },
		{ "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		  "metadata: {name: x}\nspec:\n  hosts: [a.example]\n  gateways: [eg]\n"
		  "  tls:\n  - match:\n    - sniHosts: [b.example]\n"
		  "    route: [{destination: {host: b.example}}]\n",
		  "t.yaml:9:18: SNI host 'b.example' is not within the VirtualService's hosts" },
	};
	struct diags d;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pol_snapshot *s = load_str(cases[i].text, &d);

		tap_ok(s == NULL, "error case %zu refused", i);
		tap_is_str(d.errors, cases[i].want, "error case %zu message", i);
		pol_snapshot_unref(s);
	}
}

static void test_notices(void)
{
	struct diags d;
	struct pol_snapshot *s = load_str(
	    "apiVersion: networking.istio.io/v1alpha3\n"
	    "kind: EnvoyFilter\n"
	    "metadata: {name: x}\n"
	    "---\n"
	    "apiVersion: v1\n"
	    "kind: ConfigMap\n"
	    "metadata: {name: y}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v2\n"
	    "kind: ServiceEntry\n"
	    "metadata: {name: z}\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: VirtualService\n"
	    "metadata: {name: mesh-only}\n"
	    "spec:\n"
	    "  hosts: [pypi.org]\n"
	    "  tls:\n"
	    "  - match: [{port: 443, sniHosts: [pypi.org]}]\n"
	    "    route: [{destination: {host: pypi.org}}]\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata: {name: ok}\n"
	    "spec:\n"
	    "  hosts: [a.example]\n"
	    "  location: MESH_INTERNAL\n"
	    "  futureField: {anything: [1, 2]}\n", &d);

	tap_ok(s != NULL, "skipped kinds are not errors");
	tap_is_str(d.text,
	    "t.yaml:1:1: kind EnvoyFilter: not used by egressd; skipped\n"
	    "t.yaml:5:1: kind ConfigMap: not used by egressd; skipped\n"
	    "t.yaml:9:13: kind ServiceEntry of apiVersion networking.istio.io/v2: not "
	    "used by egressd (expected networking.istio.io/v1, v1beta1 or v1alpha3); "
	    "skipped\n"
	    "t.yaml:17:3: VirtualService mesh-only: no tls route is bound to a gateway "
	    "(only to mesh); not used by egressd\n"
	    "t.yaml:27:13: location MESH_INTERNAL: the gateway treats the service like "
	    "MESH_EXTERNAL", "notices, with positions");
	tap_is_int(pol_snapshot_rule_count(s), 1, "only the valid ServiceEntry is a rule");
	pol_snapshot_unref(s);

	s = load_str(
	    "apiVersion: v1\n"
	    "kind: List\n"
	    "items:\n"
	    "- apiVersion: networking.istio.io/v1\n"
	    "  kind: ServiceEntry\n"
	    "  metadata: {name: a, namespace: ns1}\n"
	    "  spec: {hosts: [a.example], ports: [{number: 443, name: tls}]}\n"
	    "- apiVersion: networking.istio.io/v1\n"
	    "  kind: ServiceEntry\n"
	    "  metadata: {name: b}\n"
	    "  spec: {hosts: [b.example]}\n", &d);
	tap_ok(s != NULL && pol_snapshot_rule_count(s) == 2,
	    "kind: List (kubectl get -o yaml) is read item by item");
	pol_snapshot_unref(s);
}

static const struct pol_cidr *cidr(const char *text)
{
	static struct pol_cidr c[8];
	static size_t n;
	struct pol_cidr *p = &c[n++ % 8];

	pol_cidr_parse(text, p);
	return p;
}

/*
 * sidecar.proto's exclusions: "~ns/host" takes a host of namespace ns
 * away, "~/host" from every namespace; each within its own listener.
 */
static void test_exclusions(const char *se_doc, const struct pol_load_opts *o)
{
	static const char *const sidecars[] = {
		"  - hosts: [\"*/*\", \"~team-b/public.example\", \"~/a-only.example\"]\n",
		"  - hosts: [\"*/*\", \"~team-b/public.example\", \"~/a-only.example\"]\n"
		"  - hosts: [\"./a-only.example\"]\n",
	};
	struct pol_snapshot *s;
	struct diags d;
	char text[4096];

	for (size_t i = 0; i < 2; i++) {
		snprintf(text, sizeof(text), "%s---\n"
		    "apiVersion: networking.istio.io/v1\n"
		    "kind: Sidecar\n"
		    "metadata: {name: default, namespace: team-a}\n"
		    "spec:\n"
		    "  egress:\n%s", se_doc, sidecars[i]);
		s = load_ns(text, o, &d);
		tap_ok(s != NULL, "Sidecar with exclusions loads (%zu)", i);
		if (s == NULL) {
			tap_diag("%s", d.text);
			continue;
		}
		ALLOWED(s, "public.example", 443, "10.1.0.5", 0,
		    "~team-b/public.example: excluded for team-a");
		ALLOWED(s, "public.example", 443, "10.2.0.5", 1,
		    "... team-b keeps it");
		ALLOWED(s, "x.shared.example", 443, "10.1.0.5", 1,
		    "*/* still imports what is not excluded");
		ALLOWED(s, "a-only.example", 443, "10.1.0.5", (int)i,
		    i == 0 ? "~/a-only.example: excluded from every namespace" :
		    "an exclusion does not reach another listener");
		pol_snapshot_unref(s);
	}
}

/*
 * Scoping: team-a 10.1.0.0/16, team-b 10.2.0.0/16; 10.9.0.1 is in no
 * namespace of the map.
 */
static void test_scoping(void)
{
	struct pol_cidr a, b;
	struct pol_namespace ns[2];
	struct pol_load_opts o = { .nnamespaces = 2, .namespaces = ns };
	struct pol_load_opts nomap = { 0 };
	struct diags d;
	struct pol_snapshot *s;
	static const char se_doc[] =
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata: {name: private, namespace: team-a}\n"
	    "spec:\n"
	    "  hosts: [a-only.example]\n"
	    "  exportTo: [\".\"]\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata: {name: public, namespace: team-b}\n"
	    "spec:\n"
	    "  hosts: [public.example, \"*.shared.example\"]\n"
	    "---\n"
	    "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata: {name: ghost, namespace: team-b}\n"
	    "spec:\n"
	    "  hosts: [ghost.example]\n"
	    "  exportTo: [team-z]\n";

	a = *cidr("10.1.0.0/16");
	b = *cidr("10.2.0.0/16");
	ns[0] = (struct pol_namespace){ .name = "team-a", .ncidrs = 1, .cidrs = &a };
	ns[1] = (struct pol_namespace){ .name = "team-b", .ncidrs = 1, .cidrs = &b };

	s = load_ns(se_doc, &o, &d);
	tap_ok(s != NULL, "scoped ServiceEntries load");
	if (s == NULL) {
		tap_diag("%s", d.text);
		return;
	}
	ALLOWED(s, "a-only.example", 443, "10.1.0.5", 1, "exportTo .: own namespace allowed");
	ALLOWED(s, "a-only.example", 443, "10.2.0.5", 0, "exportTo .: other namespace denied");
	ALLOWED(s, "a-only.example", 443, "10.9.0.1", 0, "exportTo .: unmapped client denied");
	ALLOWED(s, "public.example", 443, "10.9.0.1", 1, "no exportTo: any client");
	ALLOWED(s, "ghost.example", 443, "10.1.0.5", 0, "exportTo to an unmapped namespace: nobody");
	tap_ok(contains(d.text, "p.yaml:19:14: namespace team-z is not in the namespaces: map"),
	    "unmapped exportTo namespace warned at the entry");
	tap_ok(contains(d.text, "p.yaml:18:3: ServiceEntry ghost: no client of the gateway "
	    "may use it (see exportTo); skipped"), "rule admitting nobody is skipped, said");
	pol_snapshot_unref(s);

	/* A namespace-wide Sidecar in team-a imports its own and team-b's *.shared. */
	{
		char text[4096];

		snprintf(text, sizeof(text), "%s---\n"
		    "apiVersion: networking.istio.io/v1\n"
		    "kind: Sidecar\n"
		    "metadata: {name: default, namespace: team-a}\n"
		    "spec:\n"
		    "  egress:\n"
		    "  - hosts: [\"./*\", \"team-b/*.shared.example\"]\n"
		    "  - hosts: [\"~/*\"]\n", se_doc);
		s = load_ns(text, &o, &d);
	}
	tap_ok(s != NULL, "Sidecar loads");
	if (s == NULL) {
		tap_diag("%s", d.text);
		return;
	}
	ALLOWED(s, "a-only.example", 443, "10.1.0.5", 1, "Sidecar ./*: own service kept");
	ALLOWED(s, "x.shared.example", 443, "10.1.0.5", 1, "Sidecar team-b/*.shared.example kept");
	ALLOWED(s, "public.example", 443, "10.1.0.5", 0, "not imported: team-a loses it");
	ALLOWED(s, "public.example", 443, "10.2.0.5", 1, "team-b (no Sidecar) keeps it");
	ALLOWED(s, "public.example", 443, "10.9.0.1", 0,
	    "unmapped clients lose it once a Sidecar narrows it (fail-closed)");
	ALLOWED(s, "x.shared.example", 443, "10.9.0.1", 1, "an imported host stays open to all");
	tap_ok(contains(d.text, "p.yaml:27:13: host '~/*' imports nothing"),
	    "~/ noticed");
	pol_snapshot_unref(s);
	test_exclusions(se_doc, &o);

	/* Without a map nothing can be scoped: one warning, rules for all. */
	s = load_ns(se_doc, &nomap, &d);
	tap_ok(s != NULL, "exportTo without a namespace map loads");
	if (s != NULL) {
		ALLOWED(s, "a-only.example", 443, "10.2.0.5", 1,
		    "without a map, exportTo cannot scope");
		ALLOWED(s, "ghost.example", 443, "10.2.0.5", 1, "... for any exportTo");
	}
	tap_is_int(d.nwarn, 1, "warned once");
	tap_ok(contains(d.text, "p.yaml:6:13: exportTo cannot be enforced: the daemon "
	    "configuration has no namespaces: map, so every client may use these rules"),
	    "the warning says why");
	pol_snapshot_unref(s);
}

/*
 * What a file says it restricts is never dropped: mode in a resource, a
 * Sidecar or DestinationRule of an unknown version, a Sidecar in a nested
 * List, "*" as an SNI host, and report-mode Sidecars/DestinationRules.
 */
#define DR_DOC(api) "apiVersion: " api "\nkind: DestinationRule\n" \
	"metadata: {name: dr}\nspec:\n  host: a.example\n" \
	"  trafficPolicy: {tls: {mode: SIMPLE}}\n"
#define SC_DOC(api) "apiVersion: " api "\nkind: Sidecar\n" \
	"metadata: {name: sc, namespace: team-a}\nspec:\n" \
	"  egress: [{hosts: [\"./*\"]}]\n"
#define SE_A "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n" \
	"metadata: {name: a, namespace: team-b}\nspec:\n  hosts: [a.example]\n" \
	"  ports: [{number: 80, name: http, protocol: HTTP}]\n"

static void test_restrictions_kept(void)
{
	static const struct {
		const char *text;
		const char *want;       /* every error, in order */
	} cases[] = {
		{ "mode: report\n"
		  "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
		  "metadata: {name: trial}\nspec:\n  hosts: [trial.example.com]\n"
		  "  ports: [{number: 443, name: tls, protocol: TLS}]\n"
		  "  resolution: DNS\n",
		  "t.yaml:1:1: mode is not read in a Kubernetes resource (a document "
		  "with kind); to set this file's mode, write 'mode: report' as a "
		  "document of its own, followed by ---" },
		{ "apiVersion: v1\nkind: List\nitems:\n"
		  "- apiVersion: networking.istio.io/v1\n  kind: ServiceEntry\n"
		  "  deny: [{hosts: [a.example]}]\n"
		  "  metadata: {name: x}\n  spec: {hosts: [b.example]}\n",
		  "t.yaml:6:3: deny is not read in a Kubernetes resource (a document "
		  "with kind); write native rules in a document of their own, "
		  "separated by ---" },
		{ SC_DOC("networking.istio.io/v1beta2"),
		  "t.yaml:1:13: kind Sidecar of apiVersion networking.istio.io/v1beta2 "
		  "is not known to egressd, and skipping it would drop what it "
		  "restricts; use networking.istio.io/v1, v1beta1 or v1alpha3" },
		{ DR_DOC("networking.istio.io/v2"),
		  "t.yaml:1:13: kind DestinationRule of apiVersion networking.istio.io/v2 "
		  "is not known to egressd, and skipping it would drop what it "
		  "restricts; use networking.istio.io/v1, v1beta1 or v1alpha3" },
		{ "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		  "metadata: {name: x}\nspec:\n  hosts: [\"*\"]\n  gateways: [eg]\n"
		  "  tls:\n  - match:\n    - sniHosts: [\"*\"]\n"
		  "    route: [{destination: {host: proxy.corp.example}}]\n",
		  "t.yaml:9:18: * is not a valid SNI host at egressd (a TLS match "
		  "names the hosts it admits; list them)" },
		{ "mode: report\n---\n" DR_DOC("networking.istio.io/v1"),
		  "t.yaml:7:9: DestinationRule dr acts on every file's rules and cannot "
		  "be trialled in report mode (mode: report at line 1); put it in a "
		  "file without mode: report, or run the daemon with mode: report to "
		  "trial the whole policy" },
		/* An empty workloadSelector would read as selector-scoped and
		 * narrow nothing; Istio requires one label or more. */
		{ "apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
		  "metadata: {name: sc, namespace: team-a}\nspec:\n"
		  "  workloadSelector: {}\n  egress: [{hosts: [\"./*\"]}]\n",
		  "t.yaml:5:21: Sidecar sc: workloadSelector must name at least one "
		  "label in labels (Istio refuses it otherwise)" },
		{ "apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
		  "metadata: {name: sc, namespace: team-a}\nspec:\n"
		  "  workloadSelector: {labels: {}}\n  egress: [{hosts: [\"./*\"]}]\n",
		  "t.yaml:5:21: Sidecar sc: workloadSelector must name at least one "
		  "label in labels (Istio refuses it otherwise)" },
		{ "apiVersion: networking.istio.io/v1\nkind: SidecarList\n"
		  "items:\n- metadata: {name: sc, namespace: team-a}\n"
		  "  spec: {egress: [{hosts: [\"./*\"]}]}\n",
		  "t.yaml:2:7: kind SidecarList is not read; write its items as "
		  "documents of their own, or as a kind: List (kubectl get -o yaml)" },
		/* Kubernetes keeps one object per kind, namespace and name:
		 * the union of two would admit hosts the cluster lost. */
		{ SE_A "---\n" SE_A,
		  "t.yaml:10:18: ServiceEntry team-b/a is defined twice (first at "
		  "t.yaml:3:18); Kubernetes keeps only the one applied last, so "
		  "keep one of them" },
		/* Istio uses one namespace-wide Sidecar (which one is
		 * undefined); the union would admit what each narrows away. */
		{ SC_DOC("networking.istio.io/v1") "---\n"
		  "apiVersion: networking.istio.io/v1\nkind: Sidecar\n"
		  "metadata: {name: legacy, namespace: team-a}\nspec:\n"
		  "  egress: [{hosts: [\"*/*\"]}]\n",
		  "t.yaml:9:18: Sidecar legacy: namespace team-a already has a Sidecar "
		  "without workloadSelector (sc at t.yaml:3:18); Istio uses only one "
		  "per namespace and which one is undefined, so merge them" },
		{ SC_DOC("networking.istio.io/v1") "---\nmode: report\n",
		  "t.yaml:5:11: Sidecar sc acts on every file's rules and cannot be "
		  "trialled in report mode (mode: report at line 7); put it in a file "
		  "without mode: report, or run the daemon with mode: report to trial "
		  "the whole policy" },
	};
	struct pol_cidr a, b;
	struct pol_namespace ns[2];
	struct pol_load_opts o = { .nnamespaces = 2, .namespaces = ns };
	struct diags d;
	struct pol_snapshot *s;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = load_str(cases[i].text, &d);
		tap_ok(s == NULL, "restriction case %zu refused", i);
		tap_is_str(d.errors, cases[i].want, "restriction case %zu message", i);
		pol_snapshot_unref(s);
	}

	/* The documented way: mode in a document of its own. */
	s = load_str("mode: report\n---\n" SE_A, &d);
	tap_ok(s != NULL && pol_snapshot_rule_count(s) == 1 &&
	    pol_snapshot_rule(s, 0)->mode == POL_MODE_REPORT,
	    "mode: report as its own document puts the ServiceEntry in report mode");
	pol_snapshot_unref(s);

	/* The same name in another namespace, or of another kind, is
	 * another object. */
	s = load_str(SE_A "---\n"
	    "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
	    "metadata: {name: a, namespace: team-a}\nspec:\n  hosts: [b.example]\n"
	    "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
	    "metadata: {name: a, namespace: team-b}\nspec:\n  host: a.example\n"
	    "  trafficPolicy: {tls: {mode: SIMPLE}}\n", &d);
	tap_ok(s != NULL && d.nerr == 0,
	    "one name in two namespaces, or for two kinds, loads");
	if (s == NULL)
		tap_diag("%s", d.text);
	pol_snapshot_unref(s);

	/* A ServiceEntry of an unknown version only adds: still a notice. */
	s = load_str("apiVersion: networking.istio.io/v2\nkind: ServiceEntry\n"
	    "metadata: {name: z}\nspec: {hosts: [z.example]}\n", &d);
	tap_ok(s != NULL && d.nnotice == 1, "unknown ServiceEntry version: a notice");
	pol_snapshot_unref(s);

	/* A Sidecar in a List in a List still narrows. */
	a = *cidr("10.1.0.0/16");
	b = *cidr("10.2.0.0/16");
	ns[0] = (struct pol_namespace){ .name = "team-a", .ncidrs = 1, .cidrs = &a };
	ns[1] = (struct pol_namespace){ .name = "team-b", .ncidrs = 1, .cidrs = &b };
	s = load_ns(SE_A "---\napiVersion: v1\nkind: List\nitems:\n"
	    "- apiVersion: v1\n  kind: List\n  items:\n"
	    "  - apiVersion: networking.istio.io/v1\n    kind: Sidecar\n"
	    "    metadata: {name: sc, namespace: team-a}\n"
	    "    spec: {egress: [{hosts: [\"./*\"]}]}\n", &o, &d);
	tap_ok(s != NULL, "nested List loads");
	if (s != NULL) {
		int allow;

		(void)decide(s, "a.example", 80, POL_PROTO_HTTP, "10.1.0.5", &allow);
		tap_is_int(allow, 0, "the nested List's Sidecar narrows team-a");
		(void)decide(s, "a.example", 80, POL_PROTO_HTTP, "10.2.0.5", &allow);
		tap_is_int(allow, 1, "... and not team-b");
	} else {
		tap_diag("%s", d.text);
	}
	pol_snapshot_unref(s);

	/* Too deep a List is an error, not a skip. */
	{
		char text[4096] = "";
		size_t n = 0;

		for (int i = 0; i < 10; i++)
			n += (size_t)snprintf(text + n, sizeof(text) - n,
			    "%s{apiVersion: v1, kind: List, items: [", i ? "" : "---\n");
		n += (size_t)snprintf(text + n, sizeof(text) - n, "{kind: Sidecar}");
		for (int i = 0; i < 10; i++)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "]}");
		snprintf(text + n, sizeof(text) - n, "\n");
		s = load_str(text, &d);
		tap_ok(s == NULL && contains(d.errors, "kind List nested more than 8 "
		    "deep; write its items as documents of their own"),
		    "a List nested too deep is refused");
		if (s != NULL || !contains(d.errors, "nested more than"))
			tap_diag("%s\n%s", text, d.text);
		pol_snapshot_unref(s);
	}

	/* A tls route to another destination: egressd still connects to the SNI. */
	s = load_str("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
	    "metadata: {name: x}\nspec:\n  hosts: [\"*.example.com\"]\n"
	    "  gateways: [eg]\n  tls:\n  - match:\n"
	    "    - sniHosts: [a.example.com]\n"
	    "    route: [{destination: {host: proxy.corp.example}}, "
	    "{destination: {host: \"*.example.com\"}}]\n", &d);
	tap_ok(s != NULL && d.nwarn == 1 && contains(d.text,
	    "t.yaml:10:34: the route sends SNI host 'a.example.com' to destination "
	    "'proxy.corp.example'; egressd connects to the name the client asked "
	    "for, not to the route's destination"),
	    "a route to another destination is warned, one that covers the SNI is not");
	if (d.nwarn != 1 || !contains(d.text, "egressd connects to the name"))
		tap_diag("%s", d.text);
	pol_snapshot_unref(s);

}

/*
 * Istio binds a tls match to a Gateway's server only when the server is
 * on the match's port and has a host, of the VirtualService's namespace
 * or of any, that overlaps the VirtualService's hosts (pilot's
 * pickMatchingGatewayHosts and isPortMatch). The egress gateway task's
 * Gateway names edition.cnn.com on 443: a route for another name, or on
 * another port, or from a namespace the server's hosts leave out, gets
 * no filter chain there.
 */
static void test_gateway_binding(const struct pol_load_opts *o)
{
	static const char text[] =
		"apiVersion: networking.istio.io/v1\nkind: Gateway\n"
		"metadata: {name: egress, namespace: istio-system}\nspec:\n"
		"  selector: {istio: egressgateway}\n"
		"  servers:\n"
		"  - port: {number: 443, name: tls, protocol: TLS}\n"
		"    hosts: [edition.cnn.com, \"team-a/*.team-a.example\"]\n"
		"    tls: {mode: PASSTHROUGH}\n"
		"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: cnn, namespace: team-b}\nspec:\n"
		"  hosts: [edition.cnn.com]\n  gateways: [istio-system/egress]\n"
		"  tls:\n  - match: [{port: 443, sniHosts: [edition.cnn.com]}]\n"
		"    route: [{destination: {host: edition.cnn.com}}]\n"
		"  - match: [{port: 8443, sniHosts: [edition.cnn.com]}]\n"
		"    route: [{destination: {host: edition.cnn.com}}]\n"
		"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: evil, namespace: team-b}\nspec:\n"
		"  hosts: [evil.example]\n  gateways: [istio-system/egress]\n"
		"  tls:\n  - match: [{sniHosts: [evil.example]}]\n"
		"    route: [{destination: {host: evil.example}}]\n"
		"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: a, namespace: team-a}\nspec:\n"
		"  hosts: [api.team-a.example]\n  gateways: [istio-system/egress]\n"
		"  tls:\n  - match: [{sniHosts: [api.team-a.example]}]\n"
		"    route: [{destination: {host: api.team-a.example}}]\n"
		"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: b, namespace: team-b}\nspec:\n"
		"  hosts: [x.team-a.example]\n  gateways: [istio-system/egress]\n"
		"  tls:\n  - match: [{sniHosts: [x.team-a.example]}]\n"
		"    route: [{destination: {host: x.team-a.example}}]\n";
	struct diags d;
	struct pol_snapshot *s = load_ns(text, o, &d);

	tap_ok(s != NULL, "Gateway binding manifests load");
	if (s == NULL) {
		tap_diag("%s", d.text);
		return;
	}
	ALLOWED(s, "edition.cnn.com", 443, NULL, 1, "a host and port of the server: bound");
	ALLOWED(s, "edition.cnn.com", 8443, NULL, 0, "no server on 8443: not bound");
	ALLOWED(s, "evil.example", 443, NULL, 0, "a host no server names: not bound");
	ALLOWED(s, "api.team-a.example", 443, NULL, 1, "team-a/ host, from team-a: bound");
	ALLOWED(s, "x.team-a.example", 443, NULL, 0, "team-a/ host, from team-b: not bound");
	tap_ok(contains(d.text, "p.yaml:30:13: no Gateway this tls match is bound to "
	    "has a server on its port with a host of namespace team-b matching the "
	    "VirtualService's hosts, so Istio does not bind it; it admits nothing "
	    "at egressd"), "said at the match");
	tap_ok(contains(d.text, "p.yaml:20:13: no Gateway") &&
	    contains(d.text, "p.yaml:50:13: no Gateway") && d.nwarn == 3,
	    "... at each unbound match");
	if (!contains(d.text, "p.yaml:30:13: no Gateway"))
		tap_diag("%s", d.text);
	pol_snapshot_unref(s);
}

/*
 * A Gateway in a report-mode file binds the report-mode routes only: for
 * an enforced route it is not there (the route is carried, as if the
 * policy did not hold it), so trialling a Gateway never cuts enforced
 * traffic. An enforced Gateway binds every route.
 */
static void test_gateway_trial(void)
{
	static const char gw[] =
		"mode: report\n---\n"
		"apiVersion: networking.istio.io/v1\nkind: Gateway\n"
		"metadata: {name: egress, namespace: istio-system}\nspec:\n"
		"  selector: {istio: egressgateway}\n"
		"  servers:\n"
		"  - port: {number: 443, name: tls, protocol: TLS}\n"
		"    hosts: [edition.cnn.com]\n"
		"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: trial, namespace: team-b}\nspec:\n"
		"  hosts: [trial.example]\n  gateways: [istio-system/egress]\n"
		"  tls:\n  - match: [{sniHosts: [trial.example]}]\n"
		"    route: [{destination: {host: trial.example}}]\n";
	static const char vs[] =
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: live, namespace: team-b}\nspec:\n"
		"  hosts: [live.example]\n  gateways: [istio-system/egress]\n"
		"  tls:\n  - match: [{sniHosts: [live.example]}]\n"
		"    route: [{destination: {host: live.example}}]\n";
	char p1[128], p2[128];
	const char *paths[2] = { p1, p2 };
	struct pol_load_opts o = { 0 };
	struct pol_snapshot *s;
	struct diags d;
	struct pol_request req = { .port = 443, .proto = POL_PROTO_TLS };
	struct pol_verdict v;
	FILE *f;

	snprintf(p1, sizeof(p1), "%s/gw.yaml", tmpdir);
	snprintf(p2, sizeof(p2), "%s/vs.yaml", tmpdir);
	if ((f = fopen(p1, "w")) == NULL)
		return;
	fputs(gw, f);
	fclose(f);
	if ((f = fopen(p2, "w")) == NULL)
		return;
	fputs(vs, f);
	fclose(f);
	memset(&d, 0, sizeof(d));
	s = pol_load_ex(paths, 2, &o, collect, &d);
	unlink(p1);
	unlink(p2);
	tap_ok(s != NULL, "a Gateway in a report-mode file loads");
	if (s == NULL) {
		tap_diag("%s", d.text);
		return;
	}
	req.name = "live.example";
	pol_decide(s, &req, &v);
	tap_ok(v.allow && !v.report, "an enforced route bound to a report-mode "
	    "Gateway that does not carry it still admits");
	tap_ok(find_rule(s, "trial.example", NULL, 0) == NULL &&
	    find_rule(s, "live.example", NULL, 0) != NULL,
	    "a report-mode route it does not carry is dropped; the enforced one kept");
	tap_ok(contains(d.text, "gw.yaml:19:13: no Gateway this tls match is bound "
	    "to") && !contains(d.text, "vs.yaml:") && d.nwarn == 1,
	    "the warning is at the report-mode match only");
	if (d.nwarn != 1 || !contains(d.text, "gw.yaml:19:13:"))
		tap_diag("%s", d.text);
	pol_snapshot_unref(s);
}

/*
 * Routes bound only to Istio's ingress gateway (a Gateway selecting
 * istio: ingressgateway) reach the mesh from outside; the egress gateway
 * never carries them, so they admit nothing, whichever comes first. The
 * ServiceEntry read after such a route is still scoped by its Sidecar.
 */
static void test_ingress_routes(void)
{
	static const char text[] =
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: nginx, namespace: team-b}\nspec:\n"
		"  hosts: [nginx.example.com]\n  gateways: [mygateway]\n"
		"  tls:\n  - match:\n    - port: 443\n      sniHosts: [nginx.example.com]\n"
		"    route: [{destination: {host: nginx.example.com}}]\n"
		"---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
		"metadata: {name: pub, namespace: team-b}\nspec:\n"
		"  hosts: [public.example]\n"
		"---\napiVersion: networking.istio.io/v1\nkind: Sidecar\n"
		"metadata: {name: default, namespace: team-a}\nspec:\n"
		"  egress: [{hosts: [\"./*\"]}]\n"
		"---\napiVersion: networking.istio.io/v1\nkind: VirtualService\n"
		"metadata: {name: both, namespace: team-b}\nspec:\n"
		"  hosts: [both.example.com]\n"
		"  gateways: [mygateway, istio-system/egress]\n"
		"  tls:\n  - match:\n    - sniHosts: [both.example.com]\n"
		"    route: [{destination: {host: both.example.com}}]\n"
		"---\napiVersion: networking.istio.io/v1\nkind: Gateway\n"
		"metadata: {name: mygateway, namespace: team-b}\nspec:\n"
		"  selector: {istio: ingressgateway}\n"
		"  servers: [{port: {number: 443, name: https, protocol: HTTPS}, "
		"tls: {mode: PASSTHROUGH}, hosts: [nginx.example.com]}]\n";
	struct pol_cidr a = *cidr("10.1.0.0/16"), b = *cidr("10.2.0.0/16");
	struct pol_namespace ns[2] = {
		{ .name = "team-a", .ncidrs = 1, .cidrs = &a },
		{ .name = "team-b", .ncidrs = 1, .cidrs = &b },
	};
	struct pol_load_opts o = { .nnamespaces = 2, .namespaces = ns };
	struct diags d;
	struct pol_snapshot *s = load_ns(text, &o, &d);

	tap_ok(s != NULL, "ingress-bound route loads");
	if (s == NULL) {
		tap_diag("%s", d.text);
		return;
	}
	ALLOWED(s, "nginx.example.com", 443, "10.2.0.5", 0,
	    "a route bound only to an ingress Gateway admits nothing");
	ALLOWED(s, "both.example.com", 443, "10.2.0.5", 1,
	    "a route bound to another gateway too still admits");
	ALLOWED(s, "public.example", 443, "10.2.0.5", 1,
	    "the ServiceEntry after it: team-b keeps it");
	ALLOWED(s, "public.example", 443, "10.1.0.5", 0,
	    "... and team-a's Sidecar still narrows it");
	tap_ok(contains(d.text, "p.yaml:9:7: this tls match is bound only to "
	    "Istio's ingress gateway (team-b/mygateway selects istio: "
	    "ingressgateway); it admits nothing at egressd"), "said at the match");
	if (!contains(d.text, "it admits nothing at egressd"))
		tap_diag("%s", d.text);
	pol_snapshot_unref(s);
	test_gateway_binding(&o);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_istio.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_passthrough();
	test_wildcard();
	test_origination();
	test_samples();
	test_endpoints();
	test_errors();
	test_notices();
	test_scoping();
	test_restrictions_kept();
	test_ingress_routes();
	test_gateway_trial();
	{
		char path[128];

		snprintf(path, sizeof(path), "%s/p.yaml", tmpdir);
		unlink(path);
		rmdir(tmpdir);
	}
	return tap_done();
}

/*
 * Labels and selectors as Kubernetes matches them, Istio host patterns,
 * and whether an address range reaches the internet.
 */
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "posture/posture-int.h"

const struct pst_kv *
pst_label_kv(const struct pst_labels *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->kv[i].key, key) == 0)
			return &l->kv[i];
	return NULL;
}

const char *
pst_label(const struct pst_labels *l, const char *key)
{
	const struct pst_kv *kv = pst_label_kv(l, key);

	return kv != NULL ? kv->val : NULL;
}

static int
expr_matches(const struct pst_expr *e, const struct pst_labels *l)
{
	const char *v = pst_label(l, e->key);
	int in = 0;

	if (e->op == PST_OP_EXISTS)
		return v != NULL;
	if (e->op == PST_OP_DOESNOTEXIST)
		return v == NULL;
	for (size_t i = 0; v != NULL && i < e->nvals; i++)
		if (strcmp(e->vals[i], v) == 0)
			in = 1;
	/* NotIn also selects objects without the label at all. */
	return e->op == PST_OP_IN ? in : !in;
}

/*
 * matchLabels and matchExpressions are ANDed; an empty selector selects
 * everything (a NetworkPolicy's "podSelector: {}").
 */
int
pst_selector_matches(const struct pst_selector *s, const struct pst_labels *l)
{
	for (size_t i = 0; i < s->match.n; i++) {
		const char *v = pst_label(l, s->match.kv[i].key);

		if (v == NULL || strcmp(v, s->match.kv[i].val) != 0)
			return 0;
	}
	for (size_t i = 0; i < s->nexpr; i++)
		if (!expr_matches(&s->expr[i], l))
			return 0;
	return 1;
}

/* A Service without a selector selects no pod (its endpoints are manual). */
int
pst_map_selects(const struct pst_labels *sel, const struct pst_labels *l)
{
	struct pst_selector s = { .match = *sel };

	return sel->n > 0 && pst_selector_matches(&s, l);
}

static int
ends_with_label(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n > s && name[n - s - 1] == '.' &&
	    strcasecmp(name + n - s, suffix) == 0;
}

/*
 * Istio's host.Name SubsetOf, seen from the pattern: "*" covers all,
 * "*.example.com" covers "a.example.com" and "*.a.example.com", an exact
 * pattern only itself.
 */
int
pst_host_covers(const char *pattern, const char *host)
{
	if (strcmp(pattern, "*") == 0)
		return 1;
	if (strncmp(pattern, "*.", 2) != 0)
		return strcasecmp(pattern, host) == 0;
	if (strncmp(host, "*.", 2) == 0 && strcasecmp(host + 2, pattern + 2) == 0)
		return 1;
	return ends_with_label(strncmp(host, "*.", 2) == 0 ? host + 2 : host,
	    pattern + 2);
}

/*
 * Service names: "name" (the search path finds it), "name.ns.svc", and
 * "name.ns.svc.<cluster domain>", usually cluster.local.
 */
int
pst_host_in_cluster(const char *name)
{
	size_t n = strlen(name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (memchr(name, '.', n) == NULL)
		return 1;
	if (n >= 4 && strncasecmp(name + n - 4, ".svc", 4) == 0)
		return 1;
	if (strcasestr(name, ".svc.") != NULL)
		return 1;
	return n >= 14 && strncasecmp(name + n - 14, ".cluster.local", 14) == 0;
}

/* The ranges that are not the internet: private, shared, loopback, local. */
static const char *const internal[] = {
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
	"127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8",
	"fc00::/7", "fe80::/10", "::1/128",
};

/*
 * "a.b.c.d/n" or "v6/n". Kubernetes (net.ParseCIDR) takes host bits, so
 * this does too, unlike the policy's strict pol_cidr_parse.
 */
static int
parse_cidr(const char *text, struct pol_cidr *c)
{
	char addr[64];
	const char *slash = strchr(text, '/');
	size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	unsigned long prefix = 0;
	const char *p;

	if (slash == NULL || alen == 0 || alen >= sizeof(addr) || slash[1] == '\0')
		return -1;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, addr, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, c->addr) == 1)
		c->family = AF_INET6;
	else
		return -1;
	for (p = slash + 1; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || p - slash > 3)
			return -1;
		prefix = prefix * 10 + (unsigned long)(*p - '0');
	}
	if (prefix > (c->family == AF_INET ? 32u : 128u))
		return -1;
	c->prefix = (unsigned)prefix;
	return 0;
}

int
pst_cidr_public(const char *text)
{
	struct pol_cidr c, r;

	if (parse_cidr(text, &c) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++) {
		if (pol_cidr_parse(internal[i], &r) == 0 && pol_cidr_within(&c, &r))
			return 0;
	}
	return 1;
}

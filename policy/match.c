/*
 * The compiled snapshot and the decision over it.
 *
 * Every pattern but "*" has a name part (its suffix): "example.com" for
 * example.com, *.example.com and .example.com alike. All of them go into
 * one hash table keyed by that suffix, each key holding its rules in file
 * order. A decision looks up the full name (exact patterns, and domain
 * patterns matching their apex), then each proper suffix from the longest
 * ("a.b.example.com" -> "b.example.com" -> "example.com" -> "com") for
 * subdomain and domain patterns, then the short list of "*" rules. So the
 * cost is a handful of lookups per label of the name, whatever the number
 * of rules.
 *
 * Specificity, most specific first, which is also the walk order:
 *   1. an exact pattern equal to the name;
 *   2. a domain pattern (.example.com) whose suffix is the name itself:
 *      it names exactly this name, but also others, so it ranks after 1;
 *   3. subdomain and domain patterns by suffix length, longest first;
 *      at one suffix, *.x and .x rank equal and file order decides;
 *   4. "*".
 * Deny rules are looked for along the same walk and win regardless of
 * specificity; the verdict names the most specific one that applies.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/policy-int.h"

#define CHUNK_SIZE (64u * 1024)

const char *
pol_reason_str(enum pol_reason r)
{
	switch (r) {
	case POL_R_ALLOWED:
		return "allowed";
	case POL_R_NOT_ALLOWED:
		return "not_allowed";
	case POL_R_DENIED_BY_RULE:
		return "denied_by_rule";
	case POL_R_PORT_NOT_ALLOWED:
		return "port_not_allowed";
	}
	return "unknown";
}

const char *
pol_action_str(enum pol_action a)
{
	switch (a) {
	case POL_ALLOW:
		return "allow";
	case POL_DENY:
		return "deny";
	}
	return "unknown";
}

const char *
pol_pattern_kind_str(enum pol_pattern_kind k)
{
	switch (k) {
	case POL_PAT_EXACT:
		return "exact";
	case POL_PAT_SUBDOMAINS:
		return "subdomains";
	case POL_PAT_DOMAIN:
		return "domain";
	case POL_PAT_ANY:
		return "any";
	}
	return "unknown";
}

const char *
pol_proto_str(enum pol_proto p)
{
	switch (p) {
	case POL_PROTO_TLS:
		return "tls";
	case POL_PROTO_HTTP:
		return "http";
	case POL_PROTO_CONNECT:
		return "connect";
	}
	return "unknown";
}

/*
 * FNV-1a over the bytes from the last to the first: a decision then gets
 * the hash of every suffix of a name in one pass from its right end. Keys
 * come from the policy, so no need for a keyed hash.
 */
#define HASH_INIT 2166136261u

static uint32_t
hash_step(uint32_t h, unsigned char c)
{
	return (h ^ c) * 16777619u;
}

static uint32_t
hash_bytes(const char *p, size_t n)
{
	uint32_t h = HASH_INIT;

	while (n > 0)
		h = hash_step(h, (unsigned char)p[--n]);
	return h;
}

/* The filter's two bits for a key hash. */
static uint32_t
filter_bit2(uint32_t h)
{
	h *= 0x9e3779b1u;
	return h ^ (h >> 15);
}

static int
filter_may_hold(const struct pol_snapshot *s, uint32_t h)
{
	uint32_t a = h & s->filter_mask, b = filter_bit2(h) & s->filter_mask;

	return (s->filter[a >> 6] >> (a & 63) & 1) &&
	    (s->filter[b >> 6] >> (b & 63) & 1);
}

static void
filter_add(struct pol_snapshot *s, uint32_t h)
{
	uint32_t a = h & s->filter_mask, b = filter_bit2(h) & s->filter_mask;

	s->filter[a >> 6] |= (uint64_t)1 << (a & 63);
	s->filter[b >> 6] |= (uint64_t)1 << (b & 63);
}

struct pol_snapshot *
pol_snap_new(void)
{
	struct pol_snapshot *s = calloc(1, sizeof(*s));

	if (s != NULL)
		s->refs = 1;
	return s;
}

/* Memory that lives as long as the snapshot; aligned for any field. */
static void *
snap_alloc(struct pol_snapshot *s, size_t n)
{
	struct pol_chunk *c = s->chunks;
	size_t used;
	void *p;

	n = (n + 7) & ~(size_t)7;
	if (c == NULL || c->size - c->used < n) {
		size_t size = n > CHUNK_SIZE ? n : CHUNK_SIZE;

		c = malloc(sizeof(*c) + size);
		if (c == NULL)
			return NULL;
		c->size = size;
		c->used = 0;
		/* A big block gets its own chunk; keep filling the current one. */
		if (s->chunks != NULL && n > CHUNK_SIZE) {
			c->next = s->chunks->next;
			s->chunks->next = c;
		} else {
			c->next = s->chunks;
			s->chunks = c;
		}
	}
	used = c->used;
	p = c->data + used;
	c->used = used + n;
	return p;
}

static const char *
snap_strdup(struct pol_snapshot *s, const char *str)
{
	size_t n = strlen(str) + 1;
	char *p = snap_alloc(s, n);

	if (p != NULL)
		memcpy(p, str, n);
	return p;
}

/* Rules of one resource or file share strings: compare with the last. */
static const char *
snap_strdup_last(struct pol_snapshot *s, const char *str, const char **last)
{
	if (str == NULL)
		return NULL;
	if (*last != NULL && strcmp(str, *last) == 0)
		return *last;
	*last = snap_strdup(s, str);
	return *last;
}

uint16_t *
pol_snap_ports(struct pol_snapshot *s, const uint16_t *ports, size_t n,
    int *oom)
{
	uint16_t *p;

	if (n == 0)
		return NULL;
	if (s->last_ports != NULL && s->last_nports == n &&
	    memcmp(s->last_ports, ports, n * sizeof(*ports)) == 0)
		return s->last_ports;
	p = snap_alloc(s, n * sizeof(*p));
	if (p == NULL) {
		*oom = 1;
		return NULL;
	}
	memcpy(p, ports, n * sizeof(*p));
	s->last_ports = p;
	s->last_nports = n;
	return p;
}

static int
copy_arrays(struct pol_snapshot *s, struct pol_rule *nr,
    const struct pol_rule *r)
{
	int oom = 0;

	nr->ports = pol_snap_ports(s, r->ports, nr->nports, &oom);
	if (oom)
		return -1;
	if (r->nsources > 0) {
		struct pol_cidr *c = snap_alloc(s, r->nsources * sizeof(*c));

		if (c == NULL)
			return -1;
		memcpy(c, r->sources, r->nsources * sizeof(*c));
		nr->sources = c;
	} else {
		nr->sources = NULL;
	}
	if (r->nendpoints > 0) {
		struct pol_endpoint *e = snap_alloc(s, r->nendpoints * sizeof(*e));

		if (e == NULL)
			return -1;
		for (size_t i = 0; i < r->nendpoints; i++) {
			e[i].port = r->endpoints[i].port;
			e[i].address = snap_strdup(s, r->endpoints[i].address);
			if (e[i].address == NULL)
				return -1;
		}
		nr->endpoints = e;
	} else {
		nr->endpoints = NULL;
	}
	return 0;
}

int
pol_snap_add(struct pol_snapshot *s, const struct pol_rule *r)
{
	struct pol_rule *nr;

	if (s->nrules >= POL_MAX_RULES)
		return -1;
	if (s->nrules == s->rules_cap) {
		size_t cap = s->rules_cap ? s->rules_cap * 2 : 64;
		struct pol_rule *p = realloc(s->rules, cap * sizeof(*p));

		if (p == NULL)
			return -1;
		s->rules = p;
		s->rules_cap = cap;
	}
	nr = &s->rules[s->nrules];
	*nr = *r;
	if (nr->nports > POL_MAX_PORTS)
		nr->nports = POL_MAX_PORTS;
	nr->pattern = snap_strdup(s, r->pattern);
	if (nr->pattern == NULL)
		return -1;
	switch (r->kind) {
	case POL_PAT_SUBDOMAINS:
		nr->suffix = nr->pattern + 2;
		break;
	case POL_PAT_DOMAIN:
		nr->suffix = nr->pattern + 1;
		break;
	case POL_PAT_ANY:
		nr->suffix = nr->pattern + strlen(nr->pattern);
		break;
	default:
		nr->suffix = nr->pattern;
		break;
	}
	nr->file = snap_strdup_last(s, r->file, &s->last_file);
	nr->name = snap_strdup_last(s, r->name, &s->last_name);
	nr->ns = snap_strdup_last(s, r->ns, &s->last_ns);
	if ((r->file != NULL && nr->file == NULL) ||
	    (r->name != NULL && nr->name == NULL) ||
	    (r->ns != NULL && nr->ns == NULL) || copy_arrays(s, nr, r) < 0)
		return -1;
	if (nr->origin == NULL)
		nr->origin = "native";
	s->nrules++;
	return 0;
}

static struct pol_slot *
slot_find(const struct pol_snapshot *s, const char *key, size_t keylen,
    uint32_t h)
{
	size_t mask = s->nslots - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct pol_slot *sl = &s->slots[i];

		if (sl->key == NULL)
			return sl;
		if (sl->hash == h && sl->keylen == keylen &&
		    memcmp(sl->key, key, keylen) == 0)
			return sl;
	}
}

int
pol_snap_compile(struct pol_snapshot *s)
{
	size_t nslots = 16, named = 0, nany = 0;
	uint32_t pos = 0;

	for (size_t i = 0; i < s->nrules; i++) {
		if (s->rules[i].kind == POL_PAT_ANY)
			nany++;
		else
			named++;
	}
	/* Load factor at most 1/2 keeps probe chains short. */
	while (nslots < named * 2)
		nslots *= 2;
	s->nslots = nslots;
	s->slots = calloc(nslots, sizeof(*s->slots));
	s->filter_mask = (uint32_t)(nslots * 4 - 1);
	s->filter = calloc(nslots * 4 / 64, sizeof(*s->filter));
	s->idx = malloc((named ? named : 1) * sizeof(*s->idx));
	s->any = malloc((nany ? nany : 1) * sizeof(*s->any));
	if (s->slots == NULL || s->filter == NULL || s->idx == NULL ||
	    s->any == NULL)
		return -1;

	/* Count per key, then lay the groups out, then fill in rule order. */
	for (size_t i = 0; i < s->nrules; i++) {
		const struct pol_rule *r = &s->rules[i];
		size_t len = strlen(r->suffix);
		uint32_t h = hash_bytes(r->suffix, len);
		struct pol_slot *sl;

		if (r->kind == POL_PAT_ANY) {
			s->any[s->nany++] = (uint32_t)i;
			continue;
		}
		sl = slot_find(s, r->suffix, len, h);
		if (sl->key == NULL) {
			sl->key = r->suffix;
			sl->keylen = (uint32_t)len;
			sl->hash = h;
			filter_add(s, h);
		}
		sl->kinds |= 1u << r->kind;
		sl->count++;
	}
	for (size_t i = 0; i < nslots; i++) {
		s->slots[i].start = pos;
		pos += s->slots[i].count;
		s->slots[i].count = 0;
	}
	for (size_t i = 0; i < s->nrules; i++) {
		const struct pol_rule *r = &s->rules[i];
		size_t len = strlen(r->suffix);
		struct pol_slot *sl;

		if (r->kind == POL_PAT_ANY)
			continue;
		sl = slot_find(s, r->suffix, len, hash_bytes(r->suffix, len));
		s->idx[sl->start + sl->count++] = (uint32_t)i;
	}
	return 0;
}

struct pol_snapshot *
pol_snapshot_ref(struct pol_snapshot *s)
{
	if (s != NULL)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void
pol_snapshot_unref(struct pol_snapshot *s)
{
	struct pol_chunk *c, *next;

	if (s == NULL)
		return;
	/* Release/acquire so the last owner sees every other's reads done. */
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (c = s->chunks; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(s->rules);
	free(s->slots);
	free(s->filter);
	free(s->idx);
	free(s->any);
	free(s);
}

size_t
pol_snapshot_rule_count(const struct pol_snapshot *s)
{
	return s != NULL ? s->nrules : 0;
}

const struct pol_rule *
pol_snapshot_rule(const struct pol_snapshot *s, size_t i)
{
	if (s == NULL || i >= s->nrules)
		return NULL;
	return &s->rules[i];
}

void
pol_snapshot_set_generation(struct pol_snapshot *s, uint64_t gen)
{
	s->generation = gen;
}

uint64_t
pol_snapshot_generation(const struct pol_snapshot *s)
{
	return s->generation;
}

int
pol_rule_admits_port(const struct pol_rule *r, uint16_t port,
    enum pol_proto proto)
{
	if (r->nports == 0) {
		if (r->action == POL_DENY)
			return 1;
		return port == (proto == POL_PROTO_HTTP ? 80 : 443);
	}
	for (size_t i = 0; i < r->nports; i++)
		if (r->ports[i] == port)
			return 1;
	return 0;
}

static int
rule_admits_src(const struct pol_rule *r, const struct sockaddr *src)
{
	if (r->nsources == 0)
		return 1;
	for (size_t i = 0; i < r->nsources; i++)
		if (pol_cidr_contains(&r->sources[i], src))
			return 1;
	return 0;
}

/*
 * One walk over the rules matching a name, most specific first. Deciding,
 * the first of each kind of hit is the one that counts, kept apart for
 * enforced rules and report-mode rules (layer 0 and 1); listing (out !=
 * NULL, for explain), every rule is collected whatever its ports or
 * sources.
 */
struct pol_hits {
	const struct pol_rule *deny;            /* deny rule covering the port */
	const struct pol_rule *allow;           /* allow rule admitting the port */
	const struct pol_rule *allow_name;      /* allow rule matching the name */
};

struct pol_walk {
	uint16_t port;
	enum pol_proto proto;
	const struct sockaddr *src;
	struct pol_hits layer[2];               /* enforce, report */
	const struct pol_rule **out;
	size_t max, n;
};

static void
walk_rule(struct pol_walk *w, const struct pol_rule *r)
{
	struct pol_hits *hit;
	int port_ok;

	if (w->out != NULL) {
		if (w->n < w->max)
			w->out[w->n] = r;
		w->n++;
		return;
	}
	/* A rule for other clients is, for this one, not there at all. */
	if (!rule_admits_src(r, w->src))
		return;
	hit = &w->layer[r->mode == POL_MODE_REPORT];
	port_ok = pol_rule_admits_port(r, w->port, w->proto);
	if (r->action == POL_DENY) {
		if (port_ok && hit->deny == NULL)
			hit->deny = r;
		return;
	}
	if (hit->allow_name == NULL)
		hit->allow_name = r;
	if (port_ok && hit->allow == NULL)
		hit->allow = r;
}

/* The slot filed under key, or NULL; the filter spares most lookups. */
static const struct pol_slot *
lookup(const struct pol_snapshot *s, const char *key, size_t keylen, uint32_t h)
{
	const struct pol_slot *sl;

	if (!filter_may_hold(s, h))
		return NULL;
	sl = slot_find(s, key, keylen, h);
	return sl->key != NULL ? sl : NULL;
}

/* Visits the rules of a slot whose kind is in the mask, in file order. */
static void
walk_slot(const struct pol_snapshot *s, struct pol_walk *w,
    const struct pol_slot *sl, unsigned kinds)
{
	if (sl == NULL || (sl->kinds & kinds) == 0)
		return;
	for (uint32_t i = 0; i < sl->count; i++) {
		const struct pol_rule *r = &s->rules[s->idx[sl->start + i]];

		if (kinds & (1u << r->kind))
			walk_rule(w, r);
	}
}

/*
 * Callers pass normalised names; normalising again costs little and keeps
 * a careless caller from slipping past a rule by case or a dot. A name
 * too long to be valid matches nothing, not even "*". Returns the length,
 * 0 for no usable name.
 */
static size_t
normalise(const char *in, char name[POL_NAME_MAX + 2])
{
	size_t len;

	if (in == NULL)
		return 0;
	len = strnlen(in, POL_NAME_MAX + 2);
	if (len == POL_NAME_MAX + 2)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		char c = in[i];

		name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	if (len > 0 && name[len - 1] == '.')
		name[--len] = '\0';
	return len > POL_NAME_MAX ? 0 : len;
}

/*
 * With many rules the table does not fit in cache and each lookup would
 * wait for memory in turn. Asking for every candidate slot first, then for
 * the keys and rule indices of those that matched the hash, lets those
 * waits overlap: a decision costs about two memory round trips, not one
 * or more per label: the slots, then their keys and rule indices.
 * (Prefetching the rules too needs the index loaded first; measured, it
 * cost more than it saved.)
 */
static void
prefetch_slots(const struct pol_snapshot *s, const uint32_t *hash, size_t n)
{
	size_t mask = s->nslots - 1;
	uint64_t maybe = 0;     /* suffixes past the filter (the 64 longest) */

	if (s->nslots < 4096)   /* small tables stay in cache anyway */
		return;
	for (size_t k = 0; k < n && k < 64; k++)
		if (filter_may_hold(s, hash[n - 1 - k])) {
			maybe |= (uint64_t)1 << k;
			__builtin_prefetch(&s->slots[hash[n - 1 - k] & mask]);
		}
	for (size_t k = 0; k < n && k < 64; k++) {
		const struct pol_slot *sl = &s->slots[hash[n - 1 - k] & mask];

		if (!(maybe >> k & 1))
			continue;
		if (sl->key != NULL && sl->hash == hash[n - 1 - k]) {
			__builtin_prefetch(sl->key);
			__builtin_prefetch(&s->idx[sl->start]);
		}
	}
}

static void
walk_name(const struct pol_snapshot *s, struct pol_walk *w, const char *name,
    size_t len)
{
	/* Suffix starts and hashes, from the shortest ("com") to the name. */
	uint32_t hash[POL_NAME_MAX + 1];      /* every dot may start one */
	uint8_t start[POL_NAME_MAX + 1];
	uint32_t h = HASH_INIT;
	size_t n = 0;

	if (s->nslots > 0) {
		const struct pol_slot *sl;

		for (size_t i = len; i > 0; i--) {
			h = hash_step(h, (unsigned char)name[i - 1]);
			if (i == 1 || name[i - 2] == '.') {
				hash[n] = h;
				start[n++] = (uint8_t)(i - 1);
			}
		}
		prefetch_slots(s, hash, n);
		/* The name itself: exact patterns, then .name (it names this
		 * one, but others too); then each proper suffix, longest first,
		 * for *.suffix and .suffix alike. */
		sl = lookup(s, name, len, hash[n - 1]);
		walk_slot(s, w, sl, 1u << POL_PAT_EXACT);
		walk_slot(s, w, sl, 1u << POL_PAT_DOMAIN);
		for (size_t k = n - 1; k-- > 0;)
			walk_slot(s, w, lookup(s, name + start[k], len - start[k],
			    hash[k]), (1u << POL_PAT_SUBDOMAINS) | (1u << POL_PAT_DOMAIN));
	}
	for (size_t i = 0; i < s->nany; i++)
		walk_rule(w, &s->rules[s->any[i]]);
}

/*
 * The verdict from the two layers of hits (DESIGN §5). Enforced rules
 * alone decide whether the connection goes through; report-mode rules can
 * only mark an admitted connection would_deny, and never lend a rule's
 * settings. The one exception is a policy that is itself in report mode
 * (the first step of a migration): what no enforced rule decides is then
 * relayed, and the report-mode rules say what would be denied.
 */
static void
verdict_from_hits(const struct pol_snapshot *s, const struct pol_walk *w,
    struct pol_verdict *out)
{
	const struct pol_hits *e = &w->layer[0], *r = &w->layer[1];

	if (e->deny != NULL) {
		out->reason = POL_R_DENIED_BY_RULE;
		out->rule = e->deny;
		return;
	}
	if (e->allow != NULL) {
		out->allow = 1;
		out->reason = POL_R_ALLOWED;
		out->rule = out->admit = e->allow;
		if (r->deny != NULL) {
			out->report = 1;
			out->report_reason = POL_R_DENIED_BY_RULE;
			out->report_rule = r->deny;
		}
		return;
	}
	if (s->mode != POL_MODE_REPORT) {
		if (e->allow_name != NULL) {
			out->reason = POL_R_PORT_NOT_ALLOWED;
			out->rule = e->allow_name;
		}
		return;
	}
	/* A report-mode policy relays what the enforced rules leave open. */
	out->allow = 1;
	out->reason = POL_R_ALLOWED;
	if (r->deny != NULL) {
		out->report = 1;
		out->report_reason = POL_R_DENIED_BY_RULE;
		out->report_rule = r->deny;
	} else if (r->allow != NULL) {
		out->rule = r->allow;
	} else {
		out->report = 1;
		out->report_rule = e->allow_name != NULL ? e->allow_name :
		    r->allow_name;
		out->report_reason = out->report_rule != NULL ?
		    POL_R_PORT_NOT_ALLOWED : POL_R_NOT_ALLOWED;
	}
	/* Only a rule in report mode because the configuration is (the
	 * policy on trial) lends its settings. A file that says "mode:
	 * report" was added to be watched: were its allow_private, endpoints
	 * or resolution lent, adding it would change where connections go
	 * and relax the address guard. */
	out->admit = r->deny == NULL && r->allow != NULL && !r->allow->trial ?
	    r->allow : NULL;
}

void
pol_decide(const struct pol_snapshot *s, const struct pol_request *req,
    struct pol_verdict *out)
{
	char name[POL_NAME_MAX + 2];
	struct pol_walk w = { .port = req->port, .proto = req->proto,
	    .src = req->src };
	size_t len;

	memset(out, 0, sizeof(*out));
	out->reason = POL_R_NOT_ALLOWED;
	out->report_reason = POL_R_ALLOWED;
	if (s == NULL)
		return;
	/* No usable name matches no rule, but a report-mode policy still
	 * relays it: the hits are simply empty. */
	len = normalise(req->name, name);
	if (len > 0)
		walk_name(s, &w, name, len);
	verdict_from_hits(s, &w, out);
}

size_t
pol_matches(const struct pol_snapshot *s, const char *name,
    const struct pol_rule **out, size_t max)
{
	char buf[POL_NAME_MAX + 2];
	struct pol_walk w = { .out = out, .max = max };
	size_t len;

	if (s == NULL || out == NULL)
		return 0;
	len = normalise(name, buf);
	if (len == 0)
		return 0;
	walk_name(s, &w, buf, len);
	return w.n;
}

enum pol_mode
pol_snapshot_mode(const struct pol_snapshot *s)
{
	return s != NULL ? s->mode : POL_MODE_ENFORCE;
}

const char *
pol_mode_str(enum pol_mode m)
{
	switch (m) {
	case POL_MODE_ENFORCE:
		return "enforce";
	case POL_MODE_REPORT:
		return "report";
	}
	return "unknown";
}

const char *
pol_resolution_str(enum pol_resolution r)
{
	switch (r) {
	case POL_RES_DNS:
		return "dns";
	case POL_RES_NONE:
		return "none";
	case POL_RES_STATIC:
		return "static";
	case POL_RES_ENDPOINTS:
		return "endpoints";
	}
	return "unknown";
}

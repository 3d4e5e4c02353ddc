/*
 * decide: dc_decide() checked against a reference model over generated
 * policies and generated requests, and the properties DESIGN §5 promises.
 *
 * The model below is a linear scan over the rules, written from the spec
 * (policy.h above pol_decide, DESIGN §5, decide.h), not from match.c: it
 * never calls pol_decide. Policies are several files in a temporary
 * directory, loaded with pol_load_ex() in enforce or report mode, because
 * report mode is a file's property. Names, patterns, ports and sources come
 * from small sets so that matches, ties and conflicts are frequent.
 *
 * The run is reproducible: DECIDE_SEED (default below) seeds everything,
 * DECIDE_CASES sets how many requests are decided (about 40 per policy),
 * and DECIDE_POLICY=k runs only the k-th generated policy of that seed. A
 * disagreement prints the seed, the policy's files and the request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "decide/decide.h"
#include "policy/policy.h"
#include "tap.h"

#define DEFAULT_SEED 20240611u
/* About 2 s; under AddressSanitizer every policy file read costs far more
 * (the loader's read buffer is a large allocation), so fewer. */
#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_CASES 4000u
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEFAULT_CASES 4000u
#endif
#endif
#ifndef DEFAULT_CASES
#define DEFAULT_CASES 200000u
#endif
#define REQS_PER_POLICY 40u
#define DETAILS_MAX 3           /* disagreements printed in full, per check */

#define MAX_FILES 4
#define MAX_RULES 160           /* host patterns of one policy */
#define FILE_TEXT_MAX 8192
#define PATH_MAX_LEN 512

/* ---- a small, fixed random generator (splitmix64) ---------------------- */

struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned rng_below(struct rng *r, unsigned n)
{
	return (unsigned)(rng_next(r) % n);
}

/* True with probability pct/100. */
static int rng_pct(struct rng *r, unsigned pct)
{
	return rng_below(r, 100) < pct;
}

/* ---- the vocabulary the generator draws from --------------------------- */

static const char *const labels[] = { "a", "b", "c", "x", "y" };
#define NLABELS (sizeof(labels) / sizeof(labels[0]))

static const uint16_t rule_ports[] = { 80, 443, 8080, 8443 };
static const uint16_t req_ports[] = { 80, 443, 8080, 8443, 22 };

/* Sources a rule may name, and the model's own reading of them. */
static const char *const cidr_text[] = {
	"127.0.0.0/8", "127.0.0.1", "127.0.0.2/31", "10.0.0.0/8", "::1",
	"127.0.0.0/30", "2001:db8::/32", "0.0.0.0/0",
};
#define NCIDRS (sizeof(cidr_text) / sizeof(cidr_text[0]))

struct m_cidr {
	int family;
	unsigned prefix;
	uint8_t addr[16];
};

static struct m_cidr cidrs[NCIDRS];

/* Clients; index 0 is "unknown" (no address). */
static const char *const src_text[] = {
	NULL, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.9.8.7", "10.1.2.3",
	"192.0.2.7", "::1", "::ffff:127.0.0.1", "2001:db8::5",
};
#define NSRCS (sizeof(src_text) / sizeof(src_text[0]))

static struct sockaddr_storage srcs[NSRCS];

static struct sockaddr_storage sockaddr_of(const char *text, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1)
			abort();
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		if (inet_pton(AF_INET, text, &in->sin_addr) != 1)
			abort();
	}
	return ss;
}

static void init_tables(void)
{
	for (size_t i = 0; i < NCIDRS; i++) {
		char buf[64], *slash;
		struct m_cidr *c = &cidrs[i];

		snprintf(buf, sizeof(buf), "%s", cidr_text[i]);
		slash = strchr(buf, '/');
		if (slash != NULL)
			*slash = '\0';
		c->family = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
		if (inet_pton(c->family, buf, c->addr) != 1)
			abort();
		c->prefix = slash != NULL ? (unsigned)atoi(slash + 1) :
		    (c->family == AF_INET ? 32u : 128u);
	}
	for (size_t i = 1; i < NSRCS; i++)
		srcs[i] = sockaddr_of(src_text[i], 40000);
}

static const struct sockaddr *src_addr(unsigned i)
{
	return i == 0 ? NULL : (const struct sockaddr *)&srcs[i];
}

static int bits_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	for (unsigned i = 0; i < bits; i++) {
		unsigned byte = i / 8, bit = 7 - i % 8;

		if (((a[byte] >> bit) & 1) != ((b[byte] >> bit) & 1))
			return 0;
	}
	return 1;
}

/* The spec: a source range holds the client; an IPv4 range also holds
 * the client as a dual-stack listener sees it (::ffff:a.b.c.d). */
static int m_cidr_holds(const struct m_cidr *c, unsigned srci)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	const struct sockaddr *sa = src_addr(srci);

	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return c->family == AF_INET && bits_equal(c->addr,
		    (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr,
		    c->prefix);
	{
		const uint8_t *a =
		    ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (c->family == AF_INET6)
			return bits_equal(c->addr, a, c->prefix);
		return memcmp(a, mapped, 12) == 0 &&
		    bits_equal(c->addr, a + 12, c->prefix);
	}
}

/* ---- generated policies ------------------------------------------------ */

struct m_rule {
	int file;
	enum pol_action action;
	enum pol_pattern_kind kind;
	char suffix[32];                /* "a.b"; "" for * */
	char pattern[40];               /* as normalised */
	unsigned line;                  /* of the pattern in its file */
	unsigned nports;
	uint16_t ports[4];
	unsigned nsources;
	unsigned sources[2];            /* indices into cidrs */
	int allow_private;
	int report;                     /* its file is in report mode */
};

struct m_file {
	char path[PATH_MAX_LEN];
	int mode;                       /* -1: says nothing; else its mode */
	int report;                     /* effective */
	char text[FILE_TEXT_MAX];
	size_t len;
	unsigned line;                  /* lines written so far */
};

struct m_policy {
	unsigned index;
	enum pol_mode global;
	unsigned nfiles;
	struct m_file files[MAX_FILES];
	unsigned nrules;
	struct m_rule rules[MAX_RULES];
	int dumped;                     /* printed once already */
};

static uint64_t g_seed;
static const char *g_dir;

__attribute__((format(printf, 2, 3)))
static void emit(struct m_file *f, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(f->text + f->len, sizeof(f->text) - f->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(f->text) - f->len)
		abort();
	for (int i = 0; i < n; i++)
		if (f->text[f->len + (size_t)i] == '\n')
			f->line++;
	f->len += (size_t)n;
}

static void gen_labels(struct rng *r, char *out, size_t size, unsigned n)
{
	size_t o = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < n; i++)
		o += (size_t)snprintf(out + o, size - o, "%s%s", i ? "." : "",
		    labels[rng_below(r, NLABELS)]);
}

/* A pattern as written in YAML (sometimes in upper case, or with the one
 * trailing dot the loader drops), and the model's reading of it. */
static void gen_pattern(struct rng *r, struct m_rule *m, char *written,
    size_t size)
{
	unsigned k = rng_below(r, 100);
	char suffix[sizeof(m->suffix)];

	gen_labels(r, suffix, sizeof(suffix), 1 + rng_below(r, 3) / 2 +
	    (rng_pct(r, 15) ? 1 : 0));
	if (k < 36) {
		m->kind = POL_PAT_EXACT;
		snprintf(m->pattern, sizeof(m->pattern), "%s", suffix);
	} else if (k < 64) {
		m->kind = POL_PAT_SUBDOMAINS;
		snprintf(m->pattern, sizeof(m->pattern), "*.%s", suffix);
	} else if (k < 93) {
		m->kind = POL_PAT_DOMAIN;
		snprintf(m->pattern, sizeof(m->pattern), ".%s", suffix);
	} else {
		m->kind = POL_PAT_ANY;
		suffix[0] = '\0';
		snprintf(m->pattern, sizeof(m->pattern), "*");
	}
	memcpy(m->suffix, suffix, sizeof(suffix));
	snprintf(written, size, "%s", m->pattern);
	if (m->kind != POL_PAT_ANY && rng_pct(r, 8))
		for (char *p = written; *p != '\0'; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
	if (m->kind != POL_PAT_ANY && rng_pct(r, 5)) {
		size_t n = strlen(written);

		if (n + 1 < size)
			memcpy(written + n, ".", 2);
	}
}

static void gen_rule(struct rng *r, struct m_policy *p, unsigned fi,
    enum pol_action action)
{
	struct m_file *f = &p->files[fi];
	struct m_rule proto;
	unsigned nhosts = 1 + rng_below(r, 3);

	memset(&proto, 0, sizeof(proto));
	proto.file = (int)fi;
	proto.action = action;
	proto.report = f->report;
	if (rng_pct(r, 45)) {
		proto.nports = 1 + rng_below(r, 3);
		for (unsigned i = 0; i < proto.nports; i++)
			proto.ports[i] = rule_ports[rng_below(r, 4)];
	}
	if (rng_pct(r, 22)) {
		proto.nsources = 1 + rng_below(r, 2);
		for (unsigned i = 0; i < proto.nsources; i++)
			proto.sources[i] = rng_below(r, NCIDRS);
	}
	if (action == POL_ALLOW && rng_pct(r, 30))
		proto.allow_private = 1;

	emit(f, "  - hosts:\n");
	for (unsigned h = 0; h < nhosts && p->nrules < MAX_RULES; h++) {
		struct m_rule *m = &p->rules[p->nrules++];
		char written[48];

		*m = proto;
		gen_pattern(r, m, written, sizeof(written));
		m->line = f->line + 1;
		emit(f, "      - \"%s\"\n", written);
	}
	if (proto.nports > 0) {
		emit(f, "    ports: [");
		for (unsigned i = 0; i < proto.nports; i++)
			emit(f, "%s%u", i ? ", " : "", proto.ports[i]);
		emit(f, "]\n");
	}
	if (proto.nsources > 0) {
		emit(f, "    sources: [");
		for (unsigned i = 0; i < proto.nsources; i++)
			emit(f, "%s\"%s\"", i ? ", " : "",
			    cidr_text[proto.sources[i]]);
		emit(f, "]\n");
	}
	if (action == POL_ALLOW && (proto.allow_private || rng_pct(r, 10)))
		emit(f, "    allow_private: %s\n",
		    proto.allow_private ? "true" : "false");
}

static int write_text(const char *path, const char *text, size_t len)
{
	FILE *fp;

	/* A new file, not a truncated one: ext4 writes back a file that was
	 * truncated and rewritten when it is closed, and thousands of those
	 * made this test wait on the disk. */
	(void)unlink(path);
	fp = fopen(path, "w");
	if (fp == NULL)
		return -1;
	if (fwrite(text, 1, len, fp) != len) {
		fclose(fp);
		return -1;
	}
	return fclose(fp);
}

static int gen_policy(struct rng *r, struct m_policy *p, unsigned index)
{
	memset(p, 0, sizeof(*p));
	p->index = index;
	p->global = rng_pct(r, 60) ? POL_MODE_ENFORCE : POL_MODE_REPORT;
	p->nfiles = 1 + rng_below(r, MAX_FILES);
	for (unsigned fi = 0; fi < p->nfiles; fi++) {
		struct m_file *f = &p->files[fi];
		unsigned k = rng_below(r, 100), nallow, ndeny;

		snprintf(f->path, sizeof(f->path), "%s/f%u.yaml", g_dir, fi);
		if (p->global == POL_MODE_ENFORCE)
			f->mode = k < 35 ? POL_MODE_REPORT : k < 45 ?
			    POL_MODE_ENFORCE : -1;
		else
			f->mode = k < 30 ? POL_MODE_ENFORCE : k < 50 ?
			    POL_MODE_REPORT : -1;
		f->report = f->mode == -1 ? p->global == POL_MODE_REPORT :
		    f->mode == POL_MODE_REPORT;
		if (f->mode != -1)
			emit(f, "mode: %s\n", pol_mode_str((enum pol_mode)f->mode));
		nallow = rng_below(r, 6);
		ndeny = rng_pct(r, 35) ? 0 : rng_below(r, 4);
		if (nallow == 0 && ndeny == 0)
			emit(f, "allow: []\n");
		if (nallow > 0) {
			emit(f, "allow:\n");
			for (unsigned i = 0; i < nallow; i++)
				gen_rule(r, p, fi, POL_ALLOW);
		}
		if (ndeny > 0) {
			emit(f, "deny:\n");
			for (unsigned i = 0; i < ndeny; i++)
				gen_rule(r, p, fi, POL_DENY);
		}
		if (write_text(f->path, f->text, f->len) < 0)
			return -1;
	}
	return 0;
}

struct diag_sink {
	unsigned errors;
	char first[512];
};

static void collect(void *arg, enum pol_severity sev, const char *file,
    unsigned line, unsigned col, const char *msg)
{
	struct diag_sink *d = arg;

	if (sev != POL_ERROR)
		return;
	if (d->errors++ == 0)
		pol_diag_format(d->first, sizeof(d->first), sev, file, line, col,
		    msg);
}

/* Loads the files of p (all, or only those in enforce mode) in order. */
static struct pol_snapshot *load_policy(const struct m_policy *p,
    int without_report, struct diag_sink *d)
{
	const char *paths[MAX_FILES + 1];
	struct pol_load_opts opts;
	size_t n = 0;
	static char empty[PATH_MAX_LEN];

	memset(&opts, 0, sizeof(opts));
	opts.mode = p->global;
	for (unsigned i = 0; i < p->nfiles; i++)
		if (!without_report || !p->files[i].report)
			paths[n++] = p->files[i].path;
	if (n == 0) {
		/* No file at all is a load error: an empty one means the same. */
		snprintf(empty, sizeof(empty), "%s/empty.yaml", g_dir);
		if (write_text(empty, "allow: []\n", 10) < 0)
			return NULL;
		paths[n++] = empty;
	}
	memset(d, 0, sizeof(*d));
	return pol_load_ex(paths, n, &opts, collect, d);
}

/* ---- the reference model ----------------------------------------------- */

static int ends_with_label(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);

	return n > s + 1 && name[n - s - 1] == '.' &&
	    strcmp(name + n - s, suffix) == 0;
}

static int m_matches(const struct m_rule *m, const char *name)
{
	switch (m->kind) {
	case POL_PAT_EXACT:
		return strcmp(name, m->suffix) == 0;
	case POL_PAT_SUBDOMAINS:
		return ends_with_label(name, m->suffix);
	case POL_PAT_DOMAIN:
		return strcmp(name, m->suffix) == 0 ||
		    ends_with_label(name, m->suffix);
	case POL_PAT_ANY:
		return name[0] != '\0';
	}
	return 0;
}

/*
 * Specificity of a matching rule, smaller is more specific: the exact name;
 * then ".name" naming the name itself; then *.s and .s by suffix length,
 * longest first; then "*". Ties go to file order (the rule's index).
 */
static unsigned m_rank(const struct m_rule *m, const char *name)
{
	if (m->kind == POL_PAT_EXACT)
		return 0;
	if (m->kind == POL_PAT_DOMAIN && strcmp(m->suffix, name) == 0)
		return 1;
	if (m->kind == POL_PAT_ANY)
		return 10000;
	return 2 + (1000 - (unsigned)strlen(m->suffix));
}

static int m_visible(const struct m_rule *m, unsigned srci)
{
	if (m->nsources == 0)
		return 1;
	for (unsigned i = 0; i < m->nsources; i++)
		if (m_cidr_holds(&cidrs[m->sources[i]], srci))
			return 1;
	return 0;
}

static int m_port_listed(const struct m_rule *m, uint16_t port)
{
	for (unsigned i = 0; i < m->nports; i++)
		if (m->ports[i] == port)
			return 1;
	return 0;
}

static int m_deny_covers(const struct m_rule *m, uint16_t port)
{
	return m->nports == 0 || m_port_listed(m, port);
}

static int m_allow_admits(const struct m_rule *m, uint16_t port,
    enum pol_proto proto)
{
	if (m->nports == 0)
		return port == (proto == POL_PROTO_HTTP ? 80 : 443);
	return m_port_listed(m, port);
}

struct m_hits {
	int deny, allow, allow_name;    /* rule index, -1: none */
};

/* Is rule i more specific than rule j (-1: none) for name? */
static int m_better(const struct m_policy *p, int i, int j, const char *name)
{
	unsigned ri, rj;

	if (j < 0)
		return 1;
	ri = m_rank(&p->rules[i], name);
	rj = m_rank(&p->rules[j], name);
	return ri < rj || (ri == rj && i < j);
}

static void m_scan(const struct m_policy *p, const char *name, uint16_t port,
    enum pol_proto proto, unsigned srci, struct m_hits layer[2])
{
	for (int l = 0; l < 2; l++)
		layer[l].deny = layer[l].allow = layer[l].allow_name = -1;
	if (name == NULL || name[0] == '\0')
		return;
	for (unsigned u = 0; u < p->nrules; u++) {
		const struct m_rule *m = &p->rules[u];
		struct m_hits *h = &layer[m->report ? 1 : 0];
		int i = (int)u;

		if (!m_visible(m, srci) || !m_matches(m, name))
			continue;
		if (m->action == POL_DENY) {
			if (m_deny_covers(m, port) && m_better(p, i, h->deny, name))
				h->deny = i;
			continue;
		}
		if (m_better(p, i, h->allow_name, name))
			h->allow_name = i;
		if (m_allow_admits(m, port, proto) && m_better(p, i, h->allow, name))
			h->allow = i;
	}
}

struct m_verdict {
	int allow;
	enum dc_reason reason;
	uint16_t port;
	int rule, admit;                /* rule index, -1: NULL */
	int would;
	enum dc_reason would_reason;
	int would_rule;
	int screened;                   /* refused before the policy */
};

static void m_policy_verdict(const struct m_policy *p, const char *name,
    uint16_t port, enum pol_proto proto, unsigned srci, struct m_verdict *v)
{
	struct m_hits h[2];
	const struct m_hits *e = &h[0], *r = &h[1];

	m_scan(p, name, port, proto, srci, h);
	v->allow = 0;
	v->reason = DC_NOT_ALLOWED;
	v->rule = v->admit = v->would_rule = -1;
	v->would = 0;
	v->would_reason = DC_ALLOWED;
	if (e->deny >= 0) {
		v->reason = DC_DENIED_BY_RULE;
		v->rule = e->deny;
	} else if (e->allow >= 0) {
		v->allow = 1;
		v->reason = DC_ALLOWED;
		v->rule = v->admit = e->allow;
		if (r->deny >= 0) {
			v->would = 1;
			v->would_reason = DC_DENIED_BY_RULE;
			v->would_rule = r->deny;
		}
	} else if (p->global == POL_MODE_ENFORCE) {
		if (e->allow_name >= 0) {
			v->reason = DC_PORT_NOT_ALLOWED;
			v->rule = e->allow_name;
		}
	} else {
		v->allow = 1;
		v->reason = DC_ALLOWED;
		if (r->deny >= 0) {
			v->would = 1;
			v->would_reason = DC_DENIED_BY_RULE;
			v->would_rule = r->deny;
		} else if (r->allow >= 0) {
			/* A file that says "mode: report" lends nothing. */
			v->rule = r->allow;
			v->admit = p->files[p->rules[r->allow].file].mode ==
			    POL_MODE_REPORT ? -1 : r->allow;
		} else {
			v->would = 1;
			v->would_rule = e->allow_name >= 0 ? e->allow_name :
			    r->allow_name;
			v->would_reason = v->would_rule >= 0 ?
			    DC_PORT_NOT_ALLOWED : DC_NOT_ALLOWED;
		}
	}
}

/* A request as generated: the facts plus what the model needs to know. */
struct m_request {
	struct dc_facts f;
	struct dc_opts o;
	int has_opts;
	unsigned srci;
	char name[64];
	char tunnel[64];
	struct sockaddr_storage orig;
};

static int is_http_from(enum dc_from from)
{
	return from == DC_FROM_HOST || from == DC_FROM_TUNNEL_HOST ||
	    from == DC_FROM_AUTHORITY;
}

static uint16_t sockaddr_port(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

/*
 * decide.h: refusals before the policy hold in every mode; a transparent
 * listener decides on (and connects to) the original destination's port.
 */
static void m_decide(const struct m_policy *p, const struct m_request *q,
    struct m_verdict *v)
{
	const struct dc_facts *f = &q->f;
	int http = is_http_from(f->from);
	int tunnel = f->from == DC_FROM_TUNNEL_SNI ||
	    f->from == DC_FROM_TUNNEL_HOST;

	memset(v, 0, sizeof(*v));
	v->rule = v->admit = v->would_rule = -1;
	v->would_reason = DC_ALLOWED;
	v->port = f->port;
	if (f->listener == DC_L_TRANSPARENT && f->from != DC_FROM_LOCATION &&
	    sockaddr_port(f->orig_dst) != 0)
		v->port = sockaddr_port(f->orig_dst);
	v->screened = 1;
	if (f->from == DC_FROM_AUTHORITY && f->listener != DC_L_CONNECT)
		v->reason = DC_BAD_HTTP;
	else if (f->url_https && f->from == DC_FROM_HOST)
		v->reason = DC_BAD_HTTP;
	else if (f->name_invalid)
		v->reason = http ? DC_BAD_HTTP : DC_MALFORMED_HELLO;
	else if (f->name == NULL || f->name[0] == '\0')
		v->reason = f->from == DC_FROM_TUNNEL_SNI ? DC_SNI_MISMATCH :
		    http ? DC_BAD_HTTP : f->from == DC_FROM_LOCATION ?
		    DC_NOT_ALLOWED : DC_NO_SNI;
	else if (tunnel && (f->tunnel_name == NULL ||
	    strcmp(f->tunnel_name, f->name) != 0 || f->port != f->tunnel_port))
		v->reason = DC_SNI_MISMATCH;
	else if (f->ech && q->has_opts && q->o.refuse_ech &&
	    f->from != DC_FROM_LOCATION)
		v->reason = DC_ECH_REFUSED;
	else
		v->screened = 0;
	if (v->screened)
		return;
	m_policy_verdict(p, f->name, v->port, f->proto, q->srci, v);
}

/* ---- generated requests ------------------------------------------------ */

static void gen_name(struct rng *r, const struct m_policy *p, char *out,
    size_t size)
{
	/* Often a name built on a rule's suffix, so that rules match. */
	if (p->nrules > 0 && rng_pct(r, 45)) {
		const struct m_rule *m = &p->rules[rng_below(r, p->nrules)];
		unsigned extra = rng_below(r, 3);
		char pre[32];

		if (m->suffix[0] == '\0')
			extra = 1 + extra;
		gen_labels(r, pre, sizeof(pre), extra);
		snprintf(out, size, "%s%s%s", pre, extra && m->suffix[0] ? "." : "",
		    m->suffix);
		return;
	}
	gen_labels(r, out, size, 1 + rng_below(r, 4));
}

static void gen_request(struct rng *r, const struct m_policy *p,
    struct m_request *q)
{
	static const enum dc_listener listeners[] = { DC_L_TLS,
	    DC_L_TRANSPARENT, DC_L_HTTP, DC_L_CONNECT };
	static const enum dc_from froms[] = { DC_FROM_SNI, DC_FROM_HOST,
	    DC_FROM_AUTHORITY, DC_FROM_TUNNEL_SNI, DC_FROM_TUNNEL_HOST,
	    DC_FROM_LOCATION };
	struct dc_facts *f = &q->f;
	unsigned k;

	memset(q, 0, sizeof(*q));
	f->proto = (enum pol_proto)rng_below(r, 3);
	/* Mostly what a listener of that kind sees; sometimes anything. */
	switch (f->proto) {
	case POL_PROTO_TLS:
		f->listener = rng_pct(r, 75) ? DC_L_TLS : DC_L_TRANSPARENT;
		f->from = DC_FROM_SNI;
		break;
	case POL_PROTO_HTTP:
		f->listener = rng_pct(r, 75) ? DC_L_HTTP : DC_L_TRANSPARENT;
		f->from = DC_FROM_HOST;
		break;
	case POL_PROTO_CONNECT:
		f->listener = DC_L_CONNECT;
		f->from = DC_FROM_AUTHORITY;
		break;
	}
	k = rng_below(r, 100);
	if (k < 8)
		f->from = f->proto == POL_PROTO_HTTP ? DC_FROM_TUNNEL_HOST :
		    DC_FROM_TUNNEL_SNI;
	else if (k < 12)
		f->from = DC_FROM_LOCATION;
	else if (k < 18)
		f->from = froms[rng_below(r, 6)];
	if (rng_pct(r, 8))
		f->listener = listeners[rng_below(r, 4)];

	gen_name(r, p, q->name, sizeof(q->name));
	k = rng_below(r, 100);
	if (k < 3)
		f->name = NULL;
	else if (k < 5)
		f->name = "";
	else
		f->name = q->name;
	f->name_invalid = rng_pct(r, 2);
	f->port = req_ports[rng_below(r, 5)];
	q->srci = rng_pct(r, 25) ? rng_below(r, NSRCS) : 1;
	f->src = src_addr(q->srci);
	f->ech = rng_pct(r, 12);
	f->url_https = rng_pct(r, 4);
	q->has_opts = !rng_pct(r, 5);
	q->o.refuse_ech = rng_pct(r, 50);

	if (f->from == DC_FROM_TUNNEL_SNI || f->from == DC_FROM_TUNNEL_HOST ||
	    rng_pct(r, 3)) {
		k = rng_below(r, 100);
		if (k < 80 && f->name != NULL) {
			snprintf(q->tunnel, sizeof(q->tunnel), "%s", f->name);
			f->tunnel_name = q->tunnel;
		} else if (k < 90) {
			gen_name(r, p, q->tunnel, sizeof(q->tunnel));
			f->tunnel_name = q->tunnel;
		}
		f->tunnel_port = rng_pct(r, 85) ? f->port :
		    req_ports[rng_below(r, 5)];
	}
	if (f->listener == DC_L_TRANSPARENT ? rng_pct(r, 85) : rng_pct(r, 5)) {
		uint16_t port = rng_pct(r, 5) ? 0 : req_ports[rng_below(r, 5)];

		q->orig = sockaddr_of(rng_pct(r, 70) ? "192.0.2.80" :
		    "2001:db8::80", port);
		f->orig_dst = (const struct sockaddr *)&q->orig;
	}
}

/* ---- comparing, and saying what differed -------------------------------- */

/* The model rule a snapshot rule stands for, by file and line; -1 for
 * NULL, -2 for a rule the model does not know. */
static int map_rule(const struct m_policy *p, const struct pol_rule *r)
{
	if (r == NULL)
		return -1;
	for (unsigned i = 0; i < p->nrules; i++)
		if (p->rules[i].line == r->line &&
		    strcmp(p->files[p->rules[i].file].path, r->file) == 0)
			return (int)i;
	return -2;      /* a rule the model does not know */
}

static const char *rule_where(const struct m_policy *p, int i, char *buf,
    size_t len)
{
	const char *base;

	if (i == -1)
		return "NULL";
	if (i < 0)
		return "(unknown rule)";
	base = strrchr(p->files[p->rules[i].file].path, '/');
	snprintf(buf, len, "%s:%u (%s %s)", base ? base + 1 : "?",
	    p->rules[i].line, pol_action_str(p->rules[i].action),
	    p->rules[i].pattern);
	return buf;
}

static void dump_policy(struct m_policy *p)
{
	if (p->dumped)
		return;
	p->dumped = 1;
	tap_diag("reproduce: DECIDE_SEED=%llu DECIDE_POLICY=%u",
	    (unsigned long long)g_seed, p->index);
	tap_diag("policy %u, loaded in %s mode, %u file(s) in this order:",
	    p->index, pol_mode_str(p->global), p->nfiles);
	for (unsigned i = 0; i < p->nfiles; i++) {
		const char *t = p->files[i].text, *nl;
		const char *base = strrchr(p->files[i].path, '/');
		unsigned line = 1;

		tap_diag("--- %s (%s)", base ? base + 1 : p->files[i].path,
		    p->files[i].report ? "report" : "enforce");
		for (; *t != '\0'; t = nl + 1, line++) {
			nl = strchr(t, '\n');
			if (nl == NULL)
				break;
			tap_diag("%3u| %.*s", line, (int)(nl - t), t);
		}
	}
}

static const char *sa_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (sa == NULL)
		return "NULL";
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a,
		    sizeof(a));
	else
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
		    a, sizeof(a));
	snprintf(buf, len, "%s port %u", a, sockaddr_port(sa));
	return buf;
}

static void dump_request(const struct m_request *q)
{
	const struct dc_facts *f = &q->f;
	char b1[80];

	tap_diag("request: listener=%s from=%s proto=%s name=%s%s%s port=%u "
	    "src=%s", dc_listener_str(f->listener), dc_from_str(f->from),
	    pol_proto_str(f->proto), f->name ? "\"" : "",
	    f->name ? f->name : "NULL", f->name ? "\"" : "", f->port,
	    q->srci ? src_text[q->srci] : "NULL");
	tap_diag("  name_invalid=%d url_https=%d ech=%d opts=%s tunnel=%s:%u "
	    "orig_dst=%s", f->name_invalid, f->url_https, f->ech,
	    !q->has_opts ? "NULL" :
	    q->o.refuse_ech ? "refuse_ech" : "{}",
	    f->tunnel_name ? f->tunnel_name : "NULL", f->tunnel_port,
	    sa_str(f->orig_dst, b1, sizeof(b1)));
}

static void dump_verdict(const char *what, const struct m_policy *p,
    int allow, enum dc_reason reason, unsigned port, int rule, int admit,
    int would, enum dc_reason would_reason, int would_rule)
{
	char b1[96], b2[96], b3[96];

	tap_diag("%s: allow=%d reason=%s port=%u rule=%s admit=%s "
	    "would_deny=%d would_reason=%s would_rule=%s", what, allow,
	    dc_reason_str(reason), port, rule_where(p, rule, b1, sizeof(b1)),
	    rule_where(p, admit, b2, sizeof(b2)), would,
	    would ? dc_reason_str(would_reason) : "-",
	    rule_where(p, would_rule, b3, sizeof(b3)));
}

/* A named check that runs over many cases: one TAP line in the end. */
struct check {
	const char *what;
	unsigned long cases, failed;
};

/* Set when a case's policy and request were printed: its verdicts follow. */
static int g_printed;

static struct check c_load = {
	.what = "generated policies load, rule for rule, as written" };
static struct check c_allow = {
	.what = "model: enforced allow/deny, reason and port" };
static struct check c_rule = { .what = "model: the deciding rule" };
static struct check c_admit = { .what = "model: the admitting rule" };
static struct check c_would = {
	.what = "model: would_deny, its reason and its rule" };
static struct check c_report_files = {
	.what = "(a) report-mode files never change the enforced verdict "
	"(allow, reason, deciding and admitting rule) of a policy in enforce "
	"mode" };
static struct check c_deny_wins = {
	.what = "(b) a matching enforced deny rule always wins, in either mode" };
static struct check c_specific = {
	.what = "(c) the most specific enforced allow rule decides and admits" };
static struct check c_private = {
	.what = "(d) dc_allow_private() only when the admitting rule says "
	"allow_private" };
static struct check c_no_name = {
	.what = "screen: no name -> no_sni/bad_http/sni_mismatch/not_allowed "
	"by where it came from" };
static struct check c_invalid = {
	.what = "screen: a name that is not one -> malformed_hello/bad_http" };
static struct check c_tunnel = {
	.what = "screen: a tunnel for another name or port -> sni_mismatch" };
static struct check c_ech = {
	.what = "screen: ECH with refuse_ech -> ech_refused (not for a Location)" };
static struct check c_connect = {
	.what = "screen: CONNECT on a non-connect listener -> bad_http" };
static struct check c_https = {
	.what = "screen: an https:// URL to a proxy (from Host) -> bad_http" };
static struct check c_screen_mode = {
	.what = "screen: refusals before the policy hold in report mode too" };
static struct check c_transparent = {
	.what = "transparent: the verdict's port is orig_dst's port" };

/* Counts a case; on failure prints the policy and request (a few times). */
static int check_case(struct check *c, int ok, struct m_policy *p,
    const struct m_request *q)
{
	c->cases++;
	if (ok)
		return 1;
	if (c->failed++ < DETAILS_MAX) {
		tap_diag("DISAGREEMENT in \"%s\" (seed %llu, policy %u):", c->what,
		    (unsigned long long)g_seed, p->index);
		dump_policy(p);
		if (q != NULL)
			dump_request(q);
		g_printed = 1;
	}
	return 0;
}

/* Set for a run too short to reach every case (DECIDE_POLICY, or a small
 * DECIDE_CASES): a check that saw no case is skipped, not failed. */
static int g_short_run;

static void check_report(const struct check *c)
{
	if (c->cases == 0 && g_short_run) {
		tap_ok(1, "%s # SKIP no case in this short run", c->what);
		return;
	}
	/* In a full run, a check no case reached means a broken generator. */
	tap_ok(c->failed == 0 && c->cases > 0, "%s (%lu cases%s)", c->what,
	    c->cases, c->failed ? ", see above" : "");
	if (c->failed)
		tap_diag("  %lu of %lu cases disagree", c->failed, c->cases);
}

static int load_matches_model(struct m_policy *p, const struct pol_snapshot *s)
{
	size_t n = pol_snapshot_rule_count(s);
	int ok = n == p->nrules;

	for (size_t i = 0; ok && i < n; i++) {
		const struct pol_rule *r = pol_snapshot_rule(s, i);
		int mi = map_rule(p, r);
		const struct m_rule *m;

		if (mi < 0) {
			ok = 0;
			break;
		}
		m = &p->rules[mi];
		ok = r->action == m->action && r->kind == m->kind &&
		    strcmp(r->pattern, m->pattern) == 0 &&
		    strcmp(r->suffix, m->suffix) == 0 &&
		    (r->mode == POL_MODE_REPORT) == m->report &&
		    r->nports == m->nports && r->nsources == m->nsources &&
		    !!r->allow_private == m->allow_private;
		for (unsigned j = 0; ok && j < m->nports; j++)
			ok = r->ports[j] == m->ports[j];
	}
	return ok;
}

static int same_rule_place(const struct pol_rule *a, const struct pol_rule *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return a->line == b->line && strcmp(a->file, b->file) == 0;
}

static void check_one(struct m_policy *p, const struct pol_snapshot *s,
    const struct pol_snapshot *reduced, const struct m_request *q)
{
	struct dc_verdict v;
	struct m_verdict m;
	const struct dc_facts *f = &q->f;
	int rule, admit, would_rule;

	dc_decide(s, q->has_opts ? &q->o : NULL, f, &v);
	m_decide(p, q, &m);
	rule = map_rule(p, v.rule);
	admit = map_rule(p, v.admit);
	would_rule = map_rule(p, v.would_rule);

	g_printed = 0;
	check_case(&c_allow, v.allow == m.allow && v.reason == m.reason &&
	    v.port == m.port, p, q);
	check_case(&c_rule, rule == m.rule, p, q);
	check_case(&c_admit, admit == m.admit, p, q);
	check_case(&c_would, v.would_deny == m.would &&
	    would_rule == m.would_rule &&
	    (!m.would || v.would_reason == m.would_reason), p, q);
	if (g_printed) {
		dump_verdict("  want", p, m.allow, m.reason, m.port, m.rule,
		    m.admit, m.would, m.would_reason, m.would_rule);
		dump_verdict("  got ", p, v.allow, v.reason, v.port, rule, admit,
		    v.would_deny, v.would_reason, would_rule);
	}

	/* (a) The same policy without its report-mode files. */
	if (reduced != NULL) {
		struct dc_verdict w;

		dc_decide(reduced, q->has_opts ? &q->o : NULL, f, &w);
		g_printed = 0;
		check_case(&c_report_files, v.allow == w.allow &&
		    v.reason == w.reason && same_rule_place(v.rule, w.rule) &&
		    same_rule_place(v.admit, w.admit) && w.would_deny == 0, p, q);
		if (g_printed) {
			tap_diag("  with report files: allow=%d reason=%s; without: "
			    "allow=%d reason=%s", v.allow, dc_reason_str(v.reason),
			    w.allow, dc_reason_str(w.reason));
		}
	}

	if (!m.screened) {
		struct m_hits h[2];

		m_scan(p, f->name, m.port, f->proto, q->srci, h);
		/* (b) Whatever the mode, an enforced deny that matches wins. */
		if (h[0].deny >= 0) {
			const struct pol_rule *r = v.rule;
			int ri = map_rule(p, r);

			check_case(&c_deny_wins, !v.allow &&
			    v.reason == DC_DENIED_BY_RULE && r != NULL &&
			    r->action == POL_DENY && r->mode == POL_MODE_ENFORCE &&
			    ri >= 0 && m_matches(&p->rules[ri], f->name) &&
			    m_deny_covers(&p->rules[ri], m.port) &&
			    m_visible(&p->rules[ri], q->srci) && !v.would_deny &&
			    v.admit == NULL && !dc_allow_private(&v), p, q);
		}
		/* (c) No enforced deny, an enforced allow: nothing enforced that
		 * admits the request is more specific than the admitting rule. */
		if (h[0].deny < 0 && h[0].allow >= 0) {
			int ai = map_rule(p, v.admit), ok;

			ok = v.allow && v.reason == DC_ALLOWED && v.admit != NULL &&
			    v.rule == v.admit && ai >= 0 &&
			    v.admit->mode == POL_MODE_ENFORCE &&
			    v.admit->action == POL_ALLOW;
			for (unsigned i = 0; ok && i < p->nrules; i++) {
				const struct m_rule *o = &p->rules[i];

				if (o->report || o->action != POL_ALLOW ||
				    !m_visible(o, q->srci) || !m_matches(o, f->name) ||
				    !m_allow_admits(o, m.port, f->proto))
					continue;
				ok = !m_better(p, (int)i, ai, f->name) || (int)i == ai;
			}
			check_case(&c_specific, ok, p, q);
		}
	}

	/* (d) Only the admitting rule's own allow_private counts. */
	{
		int priv = dc_allow_private(&v);
		int want = m.allow && m.admit >= 0 && p->rules[m.admit].allow_private;

		check_case(&c_private, priv == want &&
		    (!priv || (v.allow && v.admit != NULL &&
		    v.admit->allow_private)), p, q);
	}

	/* The screens, each counted where the model says it applies. */
	if (m.screened) {
		struct check *c;

		if (f->from == DC_FROM_AUTHORITY && f->listener != DC_L_CONNECT)
			c = &c_connect;
		else if (f->url_https && f->from == DC_FROM_HOST)
			c = &c_https;
		else if (f->name_invalid)
			c = &c_invalid;
		else if (f->name == NULL || f->name[0] == '\0')
			c = &c_no_name;
		else if (m.reason == DC_ECH_REFUSED)
			c = &c_ech;
		else
			c = &c_tunnel;
		check_case(c, !v.allow && v.reason == m.reason &&
		    v.rule == NULL && v.admit == NULL && !v.would_deny, p, q);
		if (p->global == POL_MODE_REPORT)
			check_case(&c_screen_mode, !v.allow && !v.would_deny, p, q);
	}
	if (f->listener == DC_L_TRANSPARENT && f->orig_dst != NULL &&
	    f->from != DC_FROM_LOCATION && sockaddr_port(f->orig_dst) != 0)
		check_case(&c_transparent, v.port == sockaddr_port(f->orig_dst),
		    p, q);
}

static int has_report_file(const struct m_policy *p)
{
	for (unsigned i = 0; i < p->nfiles; i++)
		if (p->files[i].report)
			return 1;
	return 0;
}

static unsigned long env_ulong(const char *name, unsigned long def, int *set)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n;

	if (set != NULL)
		*set = 0;
	if (v == NULL || v[0] == '\0')
		return def;
	errno = 0;
	n = strtoul(v, &end, 0);
	if (errno != 0 || *end != '\0') {
		tap_diag("%s=%s is not a number; using %lu", name, v, def);
		return def;
	}
	if (set != NULL)
		*set = 1;
	return n;
}

/* A new directory under $TMPDIR (or /tmp); NULL on failure. */
static char *make_tmpdir(char *buf, size_t len)
{
	const char *t = getenv("TMPDIR");

	snprintf(buf, len, "%s/egressd-test-decide-XXXXXX",
	    t != NULL && t[0] != '\0' ? t : "/tmp");
	return mkdtemp(buf);
}

static void test_generated(void)
{
	char tmpl[PATH_MAX_LEN - 32];
	unsigned long cases, npolicies, only;
	unsigned long policies_report = 0, policies_reduced = 0, requests = 0;
	int only_set;
	struct m_policy *p;
	struct timespec t0, t1;

	g_seed = env_ulong("DECIDE_SEED", DEFAULT_SEED, NULL);
	cases = env_ulong("DECIDE_CASES", DEFAULT_CASES, NULL);
	only = env_ulong("DECIDE_POLICY", 0, &only_set);
	npolicies = (cases + REQS_PER_POLICY - 1) / REQS_PER_POLICY;
	if (npolicies == 0)
		npolicies = 1;
	g_short_run = only_set || npolicies < 100;
	tap_diag("DECIDE_SEED=%llu DECIDE_CASES=%lu: %lu policies of %u requests",
	    (unsigned long long)g_seed, cases, only_set ? 1 : npolicies,
	    REQS_PER_POLICY);

	g_dir = make_tmpdir(tmpl, sizeof(tmpl));
	if (!tap_ok(g_dir != NULL, "temporary directory")) {
		tap_diag("mkdtemp: %s", strerror(errno));
		return;
	}
	p = malloc(sizeof(*p));
	if (p == NULL)
		abort();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long k = only_set ? only : 0;
	    k < (only_set ? only + 1 : npolicies); k++) {
		struct rng r = { .s = g_seed * 0x100000001b3ull ^ (k + 1) *
		    0x9e3779b97f4a7c15ull };
		struct pol_snapshot *s, *reduced = NULL;
		struct diag_sink d;

		if (gen_policy(&r, p, (unsigned)k) < 0) {
			tap_diag("writing policy files: %s", strerror(errno));
			break;
		}
		s = load_policy(p, 0, &d);
		if (!check_case(&c_load, s != NULL && load_matches_model(p, s),
		    p, NULL)) {
			if (s == NULL)
				tap_diag("  load failed: %s", d.first);
			pol_snapshot_unref(s);
			continue;
		}
		if (p->global == POL_MODE_REPORT)
			policies_report++;
		if (p->global == POL_MODE_ENFORCE && has_report_file(p)) {
			reduced = load_policy(p, 1, &d);
			if (reduced == NULL)
				tap_diag("policy %lu without report files: %s", k,
				    d.first);
			else
				policies_reduced++;
		}
		for (unsigned i = 0; i < REQS_PER_POLICY; i++) {
			struct m_request q;

			gen_request(&r, p, &q);
			check_one(p, s, reduced, &q);
			requests++;
		}
		pol_snapshot_unref(reduced);
		pol_snapshot_unref(s);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(p);
	for (unsigned i = 0; i < MAX_FILES; i++) {
		char path[PATH_MAX_LEN];

		snprintf(path, sizeof(path), "%s/f%u.yaml", g_dir, i);
		unlink(path);
	}
	{
		char path[PATH_MAX_LEN];

		snprintf(path, sizeof(path), "%s/empty.yaml", g_dir);
		unlink(path);
	}
	rmdir(g_dir);
	tap_diag("%lu requests over %lu policies (%lu in report mode, %lu "
	    "compared without their report files) in %.2f s", requests,
	    c_load.cases, policies_report, policies_reduced,
	    (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	check_report(&c_load);
	check_report(&c_allow);
	check_report(&c_rule);
	check_report(&c_admit);
	check_report(&c_would);
	check_report(&c_report_files);
	check_report(&c_deny_wins);
	check_report(&c_specific);
	check_report(&c_private);
	check_report(&c_no_name);
	check_report(&c_invalid);
	check_report(&c_tunnel);
	check_report(&c_ech);
	check_report(&c_connect);
	check_report(&c_https);
	check_report(&c_screen_mode);
	check_report(&c_transparent);
}

/* ---- the screens, case by case ------------------------------------------ */

static struct pol_snapshot *load_text(const char *dir, const char *text,
    enum pol_mode mode)
{
	char path[PATH_MAX_LEN];
	const char *paths[1] = { path };
	struct pol_load_opts opts;
	struct diag_sink d;
	struct pol_snapshot *s;

	snprintf(path, sizeof(path), "%s/fixed.yaml", dir);
	if (write_text(path, text, strlen(text)) < 0)
		return NULL;
	memset(&opts, 0, sizeof(opts));
	opts.mode = mode;
	memset(&d, 0, sizeof(d));
	s = pol_load_ex(paths, 1, &opts, collect, &d);
	if (s == NULL)
		tap_diag("fixed policy: %s", d.first);
	unlink(path);
	return s;
}

static void test_screens(void)
{
	static const char text[] =
		"allow:\n"
		"  - hosts: [\"*\"]\n"
		"    ports: [80, 443, 8443]\n"
		"    allow_private: true\n";
	/* Unset fields are 0: no name, no tunnel, no orig_dst, no ECH. */
	static const struct {
		const char *what;
		enum dc_listener listener;
		enum dc_from from;
		enum pol_proto proto;
		const char *name;
		int invalid, https, ech, refuse_ech;
		uint16_t port;
		const char *tunnel;
		uint16_t tunnel_port;
		int orig;               /* an orig_dst, with orig_port */
		uint16_t orig_port;
		enum dc_reason want;
		uint16_t want_port;
	} cases[] = {
#define L_TLS .listener = DC_L_TLS
#define L_TRANSPARENT .listener = DC_L_TRANSPARENT
#define L_HTTP .listener = DC_L_HTTP
#define L_CONNECT .listener = DC_L_CONNECT
#define SNI .from = DC_FROM_SNI, .proto = POL_PROTO_TLS
#define HOST .from = DC_FROM_HOST, .proto = POL_PROTO_HTTP
#define AUTHORITY .from = DC_FROM_AUTHORITY, .proto = POL_PROTO_CONNECT
#define TUNNEL_SNI .from = DC_FROM_TUNNEL_SNI, .proto = POL_PROTO_TLS
#define TUNNEL_HOST .from = DC_FROM_TUNNEL_HOST, .proto = POL_PROTO_HTTP
		{ "tls without SNI", L_TLS, SNI, .port = 443,
		  .want = DC_NO_SNI, .want_port = 443 },
		{ "tls with an empty SNI", L_TLS, SNI, .name = "", .port = 443,
		  .want = DC_NO_SNI, .want_port = 443 },
		{ "transparent without SNI", L_TRANSPARENT, SNI, .port = 443,
		  .orig = 1, .orig_port = 443, .want = DC_NO_SNI, .want_port = 443 },
		{ "http without Host", L_HTTP, HOST, .port = 80,
		  .want = DC_BAD_HTTP, .want_port = 80 },
		{ "CONNECT without a name", L_CONNECT, AUTHORITY, .port = 443,
		  .want = DC_BAD_HTTP, .want_port = 443 },
		{ "tunnel ClientHello without SNI", L_CONNECT, TUNNEL_SNI, .port = 443,
		  .tunnel = "a.x", .tunnel_port = 443,
		  .want = DC_SNI_MISMATCH, .want_port = 443 },
		{ "tunnel request without Host", L_CONNECT, TUNNEL_HOST, .port = 80,
		  .tunnel = "a.x", .tunnel_port = 80,
		  .want = DC_BAD_HTTP, .want_port = 80 },
		{ "Location without a host", .listener = DC_L_HTTP,
		  .from = DC_FROM_LOCATION, .proto = POL_PROTO_HTTP, .port = 80,
		  .want = DC_NOT_ALLOWED, .want_port = 80 },
		{ "SNI that is not a name", L_TLS, SNI, .name = "a..x", .invalid = 1,
		  .port = 443, .want = DC_MALFORMED_HELLO, .want_port = 443 },
		{ "Host that is not a name", L_HTTP, HOST, .name = "a..x",
		  .invalid = 1, .port = 80, .want = DC_BAD_HTTP, .want_port = 80 },
		{ "an https:// URL to a proxy", L_HTTP, HOST, .name = "a.x",
		  .https = 1, .port = 443, .want = DC_BAD_HTTP, .want_port = 443 },
		{ "tunnel for another name", L_CONNECT, TUNNEL_SNI, .name = "b.x",
		  .port = 443, .tunnel = "a.x", .tunnel_port = 443,
		  .want = DC_SNI_MISMATCH, .want_port = 443 },
		{ "tunnel for another port", L_CONNECT, TUNNEL_SNI, .name = "a.x",
		  .port = 443, .tunnel = "a.x", .tunnel_port = 8443,
		  .want = DC_SNI_MISMATCH, .want_port = 443 },
		{ "tunnel request for another Host", L_CONNECT, TUNNEL_HOST,
		  .name = "b.x", .port = 80, .tunnel = "a.x", .tunnel_port = 80,
		  .want = DC_SNI_MISMATCH, .want_port = 80 },
		{ "tunnel without the CONNECT's name", L_CONNECT, TUNNEL_SNI,
		  .name = "a.x", .port = 443, .tunnel_port = 443,
		  .want = DC_SNI_MISMATCH, .want_port = 443 },
		{ "tunnel for the CONNECT's name and port", L_CONNECT, TUNNEL_SNI,
		  .name = "a.x", .port = 443, .tunnel = "a.x", .tunnel_port = 443,
		  .want = DC_ALLOWED, .want_port = 443 },
		{ "ECH with refuse_ech", L_TLS, SNI, .name = "a.x", .ech = 1,
		  .refuse_ech = 1, .port = 443,
		  .want = DC_ECH_REFUSED, .want_port = 443 },
		{ "ECH without refuse_ech", L_TLS, SNI, .name = "a.x", .ech = 1,
		  .port = 443, .want = DC_ALLOWED, .want_port = 443 },
		{ "ECH in a tunnel with refuse_ech", L_CONNECT, TUNNEL_SNI,
		  .name = "a.x", .ech = 1, .refuse_ech = 1, .port = 443, .tunnel = "a.x",
		  .tunnel_port = 443, .want = DC_ECH_REFUSED, .want_port = 443 },
		{ "a Location is not refused for ECH", .listener = DC_L_TLS,
		  .from = DC_FROM_LOCATION, .proto = POL_PROTO_TLS, .name = "a.x",
		  .ech = 1, .refuse_ech = 1, .port = 443,
		  .want = DC_ALLOWED, .want_port = 443 },
		{ "CONNECT on an http listener", L_HTTP, AUTHORITY,
		  .name = "a.x", .port = 443, .want = DC_BAD_HTTP, .want_port = 443 },
		{ "CONNECT on a transparent listener", L_TRANSPARENT,
		  AUTHORITY, .name = "a.x", .port = 443,
		  .orig = 1, .orig_port = 443, .want = DC_BAD_HTTP, .want_port = 443 },
		{ "CONNECT on a tls listener", L_TLS, AUTHORITY,
		  .name = "a.x", .port = 443, .want = DC_BAD_HTTP, .want_port = 443 },
		{ "CONNECT on a connect listener", L_CONNECT, AUTHORITY, .name = "a.x",
		  .port = 443, .want = DC_ALLOWED, .want_port = 443 },
		{ "transparent: orig_dst's port, not the Host's", L_TRANSPARENT, HOST,
		  .name = "a.x", .port = 8080,
		  .orig = 1, .orig_port = 80, .want = DC_ALLOWED, .want_port = 80 },
		{ "transparent: orig_dst's port refused", L_TRANSPARENT, SNI,
		  .name = "a.x", .port = 443,
		  .orig = 1, .orig_port = 22,
		  .want = DC_PORT_NOT_ALLOWED, .want_port = 22 },
		{ "transparent: orig_dst port 0 keeps the request's",
		  L_TRANSPARENT, SNI, .name = "a.x", .port = 8443,
		  .orig = 1, .orig_port = 0, .want = DC_ALLOWED, .want_port = 8443 },
		{ "transparent: a Location keeps its own port",
		  .listener = DC_L_TRANSPARENT, .from = DC_FROM_LOCATION,
		  .proto = POL_PROTO_TLS, .name = "a.x", .port = 443, .orig = 1,
		  .orig_port = 22, .want = DC_ALLOWED, .want_port = 443 },
		{ "tls listener ignores orig_dst", L_TLS, SNI, .name = "a.x",
		  .port = 443, .orig = 1, .orig_port = 22,
		  .want = DC_ALLOWED, .want_port = 443 },
#undef L_TLS
#undef L_TRANSPARENT
#undef L_HTTP
#undef L_CONNECT
#undef SNI
#undef HOST
#undef AUTHORITY
#undef TUNNEL_SNI
#undef TUNNEL_HOST
	};
	char tmpl[PATH_MAX_LEN - 32];
	const char *dir = make_tmpdir(tmpl, sizeof(tmpl));
	struct pol_snapshot *enf, *rep;

	if (!tap_ok(dir != NULL, "screens: temporary directory"))
		return;
	enf = load_text(dir, text, POL_MODE_ENFORCE);
	rep = load_text(dir, "mode: report\nallow:\n  - hosts: [\"*\"]\n"
	    "    ports: [80, 443, 8443]\n", POL_MODE_REPORT);
	rmdir(dir);
	if (!tap_ok(enf != NULL && rep != NULL, "screens: fixed policies load")) {
		pol_snapshot_unref(enf);
		pol_snapshot_unref(rep);
		return;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage orig;
		struct dc_facts f;
		struct dc_opts o = { .refuse_ech = cases[i].refuse_ech };
		struct dc_verdict v, w;
		int screened = cases[i].want != DC_ALLOWED &&
		    cases[i].want != DC_PORT_NOT_ALLOWED;
		int ok;

		memset(&f, 0, sizeof(f));
		f.listener = cases[i].listener;
		f.from = cases[i].from;
		f.proto = cases[i].proto;
		f.name = cases[i].name;
		f.name_invalid = cases[i].invalid;
		f.port = cases[i].port;
		f.ech = cases[i].ech;
		f.url_https = cases[i].https;
		f.tunnel_name = cases[i].tunnel;
		f.tunnel_port = cases[i].tunnel_port;
		f.src = src_addr(1);
		if (cases[i].orig) {
			orig = sockaddr_of("192.0.2.80", cases[i].orig_port);
			f.orig_dst = (const struct sockaddr *)&orig;
		}
		dc_decide(enf, &o, &f, &v);
		dc_decide(rep, &o, &f, &w);
		ok = v.reason == cases[i].want && v.port == cases[i].want_port &&
		    v.allow == (cases[i].want == DC_ALLOWED) && !v.would_deny;
		if (screened) {
			/* Report mode relays what the policy would refuse, never
			 * what the bytes themselves refuse. */
			ok = ok && v.rule == NULL && v.admit == NULL &&
			    !dc_allow_private(&v) && w.reason == cases[i].want &&
			    !w.allow && !w.would_deny && w.port == cases[i].want_port;
		} else {
			ok = ok && w.allow && w.port == cases[i].want_port;
		}
		if (!tap_ok(ok, "screen: %s -> %s%s", cases[i].what,
		    dc_reason_str(cases[i].want), screened ? ", in both modes" : "")) {
			tap_diag("  enforce: allow=%d reason=%s port=%u; report: "
			    "allow=%d reason=%s port=%u would_deny=%d", v.allow,
			    dc_reason_str(v.reason), v.port, w.allow,
			    dc_reason_str(w.reason), w.port, w.would_deny);
		}
	}
	pol_snapshot_unref(enf);
	pol_snapshot_unref(rep);
}

/*
 * dc_same_route(): whether a connection admitted under one verdict still
 * goes where another would send it (a reload keeps a live upstream only
 * then). Rules built by hand: only the admitting rule's resolution and
 * endpoints matter.
 */
static void
test_routes(void)
{
	static const struct pol_endpoint ep_a[] = { { "192.0.2.1", 0 } };
	static const struct pol_endpoint ep_a2[] = { { "192.0.2.1", 0 } };
	static const struct pol_endpoint ep_b[] = { { "192.0.2.2", 0 } };
	static const struct pol_endpoint ep_port[] = { { "192.0.2.1", 8443 } };
	static const struct pol_endpoint ep_two[] = { { "192.0.2.1", 0 },
	    { "192.0.2.2", 0 } };
	struct pol_rule dns = { .action = POL_ALLOW, .resolution = POL_RES_DNS };
	struct pol_rule none = { .action = POL_ALLOW, .resolution = POL_RES_NONE };
	struct pol_rule st_a = { .action = POL_ALLOW, .resolution = POL_RES_STATIC,
	    .nendpoints = 1, .endpoints = ep_a };
	struct pol_rule st_a2 = st_a, st_b = st_a, st_port = st_a, st_two = st_a;
	struct pol_rule ep_host = { .action = POL_ALLOW,
	    .resolution = POL_RES_ENDPOINTS, .nendpoints = 1, .endpoints = ep_a };
	const struct {
		const struct pol_rule *a, *b;
		int same;
		const char *what;
	} cases[] = {
		{ &dns, &dns, 1, "both resolve the name" },
		{ &dns, &none, 1, "DNS and NONE: both lead to the name's addresses" },
		{ &st_a, &st_a2, 1, "STATIC, the same endpoints (another snapshot's copy)" },
		{ &dns, &st_a, 0, "the name, then STATIC endpoints" },
		{ &st_a, &dns, 0, "STATIC endpoints, then the name" },
		{ &st_a, &st_b, 0, "STATIC, an endpoint moved" },
		{ &st_a, &st_port, 0, "STATIC, an endpoint's port changed" },
		{ &st_a, &st_two, 0, "STATIC, an endpoint added" },
		{ &st_a, &ep_host, 0, "the same endpoint, STATIC then resolved by DNS" },
	};

	st_a2.endpoints = ep_a2;
	st_b.endpoints = ep_b;
	st_port.endpoints = ep_port;
	st_two.nendpoints = 2;
	st_two.endpoints = ep_two;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dc_verdict va = { .allow = 1, .admit = cases[i].a };
		struct dc_verdict vb = { .allow = 1, .admit = cases[i].b };

		tap_ok(dc_same_route(&va, &vb) == cases[i].same &&
		    dc_same_route(&vb, &va) == cases[i].same,
		    "route: %s: %s", cases[i].what, cases[i].same ? "same" : "changed");
	}
	{
		struct dc_verdict by_name = { .allow = 1, .admit = &dns };
		struct dc_verdict by_ep = { .allow = 1, .admit = &st_a };
		struct dc_verdict denied = { .allow = 0 };

		tap_ok(dc_routes_by_name(&by_name) && !dc_routes_by_name(&by_ep) &&
		    dc_routes_by_name(&denied),
		    "dc_routes_by_name: a rule with endpoints routes by them");
	}
}

int main(void)
{
	init_tables();
	test_routes();
	test_screens();
	test_generated();
	return tap_done();
}

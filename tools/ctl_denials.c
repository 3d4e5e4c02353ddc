/*
 * egressctl denials: what egressd refused, grouped, from its own logs
 * (docs/egressctl-denials.md).
 *
 * Reads JSON-lines logs (files, "-" for stdin, gzip files through
 * "gzip -dc"), keeps the deny lines (report-mode "would_deny" lines are
 * deny lines too), groups them per (name, port) and prints the groups, or
 * an allow-list (native or Istio ServiceEntry) that would admit them.
 *
 * Lines of the HTTP listener add what a TLS connection cannot show: the
 * redirects ("event":"redirect", with "chain", "status", "from", "to" and
 * the policy's "verdict" for the target) that send clients towards a
 * denied name, and, on TLS deny lines, the "after" hint (the same source
 * had an allowed connection to another name just before). Each group lists
 * the redirects that lead to it and the hints; a redirect whose target is
 * denied but was never requested makes a group of its own ("redirected to,
 * not yet requested"). Lines without these keys (older logs) read as before.
 *
 * Reasons are read into the reasons table's enum (dc_reason_parse): what
 * an allow rule could fix, and so what --suggest offers, is decided on the
 * enum, never on the words. A line's "ech" (the ClientHello offered ECH:
 * the name is then the outer, public one) is counted per group.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decide/decide.h"
#include "policy/policy.h"
#include "sni/sni.h"
#include "tools/ctl.h"
#include "tools/jsonl.h"
#include "tools/psl.h"

#define LINE_MAX_BYTES  65536

enum suggest { SUGGEST_NONE, SUGGEST_NATIVE, SUGGEST_SE };

/* A set of strings (open addressing; grows). */
struct strset {
	char **slot;
	size_t cap, n;
};

struct reason_count {
	char *reason;           /* as the log wrote it */
	int known;              /* a reason of the table: */
	enum dc_reason r;       /* ... this one */
	size_t count;
};

/* One way a denied (name, port) was reached: a redirect, by status and URL. */
struct via {
	unsigned status;        /* 0: unknown (its redirect line is not in the input) */
	char *from;             /* the URL that answered with the redirect; NULL: unknown */
	char **chains;          /* distinct chain ids, first-seen order */
	size_t nchains;
	struct strset chainset;
	size_t count;           /* distinct redirects (chain, from, to) */
};

/* "after" hints: an allowed connection to name came just before a deny. */
struct hint {
	char *name;
	size_t count;
	double max_ms;
};

struct group {
	char *name;             /* NULL: the client sent none */
	int requested;          /* 0: only redirected to, never requested */
	unsigned port;
	size_t count, would_deny;
	struct reason_count *reasons;
	size_t nreasons;
	struct strset srcs;
	char **srclist;         /* in first-seen order */
	size_t nsrclist;
	int64_t first_ms, last_ms;
	char first[40], last[40];
	size_t ech_known;       /* lines that said whether ECH was offered, */
	size_t ech_count;       /* and of them, those that offered it */
	struct via *via;
	size_t nvia;
	struct strset events;   /* redirects already counted in via */
	struct hint *hints;
	size_t nhints;
};

/* One deny line, kept until the newest ts is known (--since). */
struct denial {
	char *name, *reason, *src;
	char *chain;            /* the redirect chain this request is part of */
	char *after;            /* "after" hint: the earlier allowed name */
	double after_ms;
	unsigned port;
	int would_deny;
	int ech;                /* "ech": 1 true, 0 false, -1 null or absent */
	int64_t ts_ms;
	char ts[40];
};

/* One redirect line (any verdict: deny lines with a chain are joined to it). */
struct redir {
	char *name, *reason, *src, *from, *to, *chain;
	unsigned port, status;  /* status 0: null */
	int would_deny;
	int deny;               /* verdict deny, or report mode would deny */
	int64_t ts_ms;
	char ts[40];
};

struct den {
	struct denial *d;
	size_t nd, capd;
	struct redir *r;
	size_t nr, capr;
	size_t skipped, notices, not_json;
	int64_t newest_ms;
	int have_newest;
	struct group *g;
	size_t ng, capg;
};

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n == 0 ? 1 : n);
	if (p == NULL) {
		fprintf(stderr, "egressctl denials: out of memory\n");
		exit(CTL_EXIT_USAGE);
	}
	return p;
}

static char *
xstrdup(const char *s)
{
	size_t n;
	char *r;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	r = xrealloc(NULL, n);
	memcpy(r, s, n);
	return r;
}

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Adds s; returns 1 when it was new. */
static int
strset_add(struct strset *set, const char *s)
{
	size_t i;

	if ((set->n + 1) * 2 > set->cap) {
		struct strset big = { NULL, set->cap == 0 ? 16 : set->cap * 2, 0 };

		big.slot = xrealloc(NULL, big.cap * sizeof(char *));
		memset(big.slot, 0, big.cap * sizeof(char *));
		for (i = 0; i < set->cap; i++)
			if (set->slot[i] != NULL) {
				size_t j = hash_str(set->slot[i]) & (big.cap - 1);

				while (big.slot[j] != NULL)
					j = (j + 1) & (big.cap - 1);
				big.slot[j] = set->slot[i];
				big.n++;
			}
		free(set->slot);
		*set = big;
	}
	i = hash_str(s) & (set->cap - 1);
	while (set->slot[i] != NULL) {
		if (strcmp(set->slot[i], s) == 0)
			return 0;
		i = (i + 1) & (set->cap - 1);
	}
	set->slot[i] = xstrdup(s);
	set->n++;
	return 1;
}

static void
strset_free(struct strset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->slot[i]);
	free(set->slot);
	set->slot = NULL;
	set->cap = set->n = 0;
}

static void
denials_usage(FILE *f)
{
	fprintf(f,
	    "usage: egressctl denials [--since DURATION] [--format text|json]\n"
	    "                         [--suggest native|serviceentry]\n"
	    "                         [--max-sources N] LOG...\n"
	    "\n"
	    "  LOG                     an egressd log file (JSON lines), '-' for\n"
	    "                          stdin; gzip files are read through gzip -dc\n"
	    "  -S, --since DURATION    only lines within DURATION (30m, 2h, 1d,\n"
	    "                          1h30m) before the newest line of the input\n"
	    "  -f, --format FORMAT     text (default) or json (one object)\n"
	    "  -g, --suggest KIND      print an allow-list that would admit the\n"
	    "                          denied names: native or serviceentry\n"
	    "  -n, --max-sources N     sources listed per group in text (default 5)\n"
	    "  -h, --help              print this help\n"
	    "\n"
	    "Exit status: 0 no denials, 1 denials found, 2 usage error or a log\n"
	    "that cannot be read.\n");
}

/* "1h30m", "90s", "2d": milliseconds, or -1. */
static int64_t
parse_duration(const char *s)
{
	int64_t total = 0;
	int any = 0;

	while (*s != '\0') {
		int64_t v = 0, mul;
		int digits = 0;

		while (*s >= '0' && *s <= '9') {
			if (v > 100000000)
				return -1;
			v = v * 10 + (*s - '0');
			s++;
			digits++;
		}
		if (digits == 0)
			return -1;
		switch (*s) {
		case 's': mul = 1000; break;
		case 'm': mul = 60 * 1000; break;
		case 'h': mul = 3600 * 1000; break;
		case 'd': mul = 86400 * 1000; break;
		default: return -1;
		}
		s++;
		total += v * mul;
		any = 1;
	}
	return any ? total : -1;
}

static int
digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t
days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "2024-05-01T12:34:56.789Z" (milliseconds and Z optional): ms since epoch. */
static int
parse_ts(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, se, ms = 0;
	size_t n = strlen(s);

	if (n < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' &&
	    s[10] != ' ') || s[13] != ':' || s[16] != ':' ||
	    digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
	    digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) ||
	    digits(s + 17, 2, &se))
		return -1;
	s += 19;
	if (*s == '.') {
		int k = 0;

		s++;
		while (*s >= '0' && *s <= '9') {
			if (k < 3)
				ms = ms * 10 + (*s - '0');
			k++;
			s++;
		}
		if (k == 0)
			return -1;
		for (; k < 3; k++)
			ms *= 10;
	}
	if (*s == 'Z')
		s++;
	if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || se > 60)
		return -1;
	*out = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
	    (int64_t)se * 1000 + ms;
	return 0;
}

/* "1.2.3.4:5678" -> "1.2.3.4"; "[2001:db8::1]:5678" -> "2001:db8::1". */
static void
src_ip(const char *src, char *out, size_t len)
{
	const char *end;
	size_t n;

	if (src[0] == '[' && (end = strchr(src, ']')) != NULL) {
		src++;
	} else if ((end = strrchr(src, ':')) == NULL ||
	    strchr(src, ':') != end) {
		end = src + strlen(src);
	}
	n = (size_t)(end - src);
	if (n >= len)
		n = len - 1;
	memcpy(out, src, n);
	out[n] = '\0';
}

static const char *
str_or_null(const struct jsonl_obj *o, const char *key, int *bad)
{
	const struct jsonl_kv *kv = jsonl_get(o, key);

	if (kv == NULL || (kv->type != JSONL_STRING && kv->type != JSONL_NULL)) {
		*bad = 1;
		return NULL;
	}
	return kv->type == JSONL_STRING ? kv->str : NULL;
}

/* An optional key (absent in older logs): a string, null or absent. */
static const char *
opt_str(const struct jsonl_obj *o, const char *key, int *bad)
{
	const struct jsonl_kv *kv = jsonl_get(o, key);

	if (kv == NULL || kv->type == JSONL_NULL)
		return NULL;
	if (kv->type != JSONL_STRING) {
		*bad = 1;
		return NULL;
	}
	return kv->str;
}

/* An optional HTTP status: 100-599, null or absent (0). */
static unsigned
opt_status(const struct jsonl_obj *o, int *bad)
{
	const struct jsonl_kv *kv = jsonl_get(o, "status");

	if (kv == NULL || kv->type == JSONL_NULL)
		return 0;
	if (kv->type != JSONL_NUMBER || kv->num < 100 || kv->num > 599 ||
	    (double)(unsigned)kv->num != kv->num) {
		*bad = 1;
		return 0;
	}
	return (unsigned)kv->num;
}

/* An optional bool: 1, 0, or -1 for null or absent (older logs). */
static int
opt_bool(const struct jsonl_obj *o, const char *key, int *bad)
{
	const struct jsonl_kv *kv = jsonl_get(o, key);

	if (kv == NULL || kv->type == JSONL_NULL)
		return -1;
	if (kv->type != JSONL_BOOL) {
		*bad = 1;
		return -1;
	}
	return kv->b;
}

/* The "after" hint: {"name": string, "ms": number >= 0}, null or absent. */
static int
read_after(const struct jsonl_obj *o, const char **name, double *ms)
{
	const struct jsonl_kv *kv = jsonl_get(o, "after");
	const struct jsonl_kv *n, *m;

	*name = NULL;
	*ms = 0;
	if (kv == NULL || kv->type == JSONL_NULL)
		return 0;
	n = jsonl_member(kv, "name");
	m = jsonl_member(kv, "ms");
	if (n == NULL || n->type != JSONL_STRING || m == NULL ||
	    m->type != JSONL_NUMBER || m->num < 0)
		return -1;
	*name = n->str;
	*ms = m->num;
	return 0;
}

/* Any egressd line with a time counts for "newest" (--since). */
static void
seen_at(struct den *dn, int64_t ms)
{
	if (!dn->have_newest || ms > dn->newest_ms)
		dn->newest_ms = ms;
	dn->have_newest = 1;
}

/* The keys of a decision or redirect line that this command reads. */
struct line_fields {
	const char *name, *reason, *src, *chain, *after, *from, *to, *verdict;
	unsigned port, status;
	double after_ms;
	int would_deny, ech;
};

/* A connection or redirect line's keys into lf: 0, or -1 when one is
 * missing or of the wrong type (the line is skipped). */
static int
read_fields(const struct jsonl_obj *o, int redirect, struct line_fields *lf)
{
	const struct jsonl_kv *port, *wd;
	int bad = 0;

	lf->name = str_or_null(o, "name", &bad);
	lf->reason = str_or_null(o, "reason", &bad);
	lf->src = str_or_null(o, "src", &bad);
	port = jsonl_get(o, "port");
	wd = jsonl_get(o, "would_deny");
	/* The HTTP listener's keys: optional, so that older logs read. */
	lf->chain = opt_str(o, "chain", &bad);
	lf->from = opt_str(o, "from", &bad);
	lf->to = opt_str(o, "to", &bad);
	lf->verdict = opt_str(o, "verdict", &bad);
	lf->status = opt_status(o, &bad);
	lf->ech = opt_bool(o, "ech", &bad);
	if (read_after(o, &lf->after, &lf->after_ms) != 0)
		bad = 1;
	if (bad || lf->reason == NULL || lf->src == NULL || port == NULL ||
	    port->type != JSONL_NUMBER || port->num < 0 || port->num > 65535 ||
	    (double)(unsigned)port->num != port->num ||
	    wd == NULL || wd->type != JSONL_BOOL ||
	    (redirect && lf->verdict == NULL))
		return -1;
	lf->port = (unsigned)port->num;
	lf->would_deny = wd->b;
	return 0;
}

static void
add_redirect(struct den *dn, const struct line_fields *lf, const char *ip,
    int64_t ms, const char *ts)
{
	struct redir *r;

	if (dn->nr == dn->capr) {
		dn->capr = dn->capr == 0 ? 64 : dn->capr * 2;
		dn->r = xrealloc(dn->r, dn->capr * sizeof(*dn->r));
	}
	r = &dn->r[dn->nr++];
	memset(r, 0, sizeof(*r));
	r->name = xstrdup(lf->name);
	r->reason = xstrdup(lf->reason);
	r->src = xstrdup(ip);
	r->from = xstrdup(lf->from);
	r->to = xstrdup(lf->to);
	r->chain = xstrdup(lf->chain);
	r->port = lf->port;
	r->status = lf->status;
	r->would_deny = lf->would_deny;
	r->deny = strcmp(lf->verdict, "deny") == 0 || lf->would_deny;
	r->ts_ms = ms;
	snprintf(r->ts, sizeof(r->ts), "%s", ts);
}

static void
add_denial(struct den *dn, const struct line_fields *lf, const char *ip,
    int64_t ms, const char *ts)
{
	struct denial *d;

	if (dn->nd == dn->capd) {
		dn->capd = dn->capd == 0 ? 64 : dn->capd * 2;
		dn->d = xrealloc(dn->d, dn->capd * sizeof(*dn->d));
	}
	d = &dn->d[dn->nd++];
	memset(d, 0, sizeof(*d));
	d->name = xstrdup(lf->name);
	d->reason = xstrdup(lf->reason);
	d->src = xstrdup(ip);
	d->chain = xstrdup(lf->chain);
	d->after = xstrdup(lf->after);
	d->after_ms = lf->after_ms;
	d->port = lf->port;
	d->would_deny = lf->would_deny;
	d->ech = lf->ech;
	d->ts_ms = ms;
	snprintf(d->ts, sizeof(d->ts), "%s", ts);
}

static void
take_line(struct den *dn, char *line, size_t len)
{
	static struct jsonl_obj o;      /* large; egressctl is single-threaded */
	const struct jsonl_kv *ev, *ts;
	struct line_fields lf;
	int64_t ms;
	char ip[128];

	if (jsonl_parse(line, len, &o) != 0) {
		dn->skipped++;
		dn->not_json++;
		return;
	}
	ev = jsonl_get(&o, "event");
	ts = jsonl_get(&o, "ts");
	if (ev == NULL || ev->type != JSONL_STRING || ts == NULL ||
	    ts->type != JSONL_STRING || parse_ts(ts->str, &ms) != 0) {
		dn->skipped++;
		return;
	}
	if (strcmp(ev->str, "notice") == 0) {
		seen_at(dn, ms);
		dn->skipped++;
		dn->notices++;
		return;
	}
	/* An interim line (log.interim_interval) is a connection still open,
	 * not a decision: its final line is the one that counts. */
	if (strcmp(ev->str, "interim") == 0) {
		seen_at(dn, ms);
		return;
	}
	if ((strcmp(ev->str, "allow") != 0 && strcmp(ev->str, "deny") != 0 &&
	    strcmp(ev->str, "error") != 0 && strcmp(ev->str, "redirect") != 0) ||
	    read_fields(&o, strcmp(ev->str, "redirect") == 0, &lf) != 0) {
		dn->skipped++;
		return;
	}
	seen_at(dn, ms);
	src_ip(lf.src, ip, sizeof(ip));
	if (strcmp(ev->str, "redirect") == 0)
		add_redirect(dn, &lf, ip, ms, ts->str);
	else if (strcmp(ev->str, "deny") == 0)
		add_denial(dn, &lf, ip, ms, ts->str);
}

/*
 * "gzip -dc -- 'PATH'", the path single-quoted for the shell (a quote in
 * it as '\''), in a buffer of the worst case's size.
 */
static char *
gzip_command(const char *path)
{
	static const char pre[] = "gzip -dc -- '", quote[] = "'\\''";
	size_t cap = sizeof(pre) + strlen(path) * (sizeof(quote) - 1) + 2, o;
	char *cmd = xrealloc(NULL, cap);

	memcpy(cmd, pre, sizeof(pre) - 1);
	o = sizeof(pre) - 1;
	for (const char *p = path; *p != '\0'; p++) {
		if (*p == '\'') {
			memcpy(cmd + o, quote, sizeof(quote) - 1);
			o += sizeof(quote) - 1;
		} else {
			cmd[o++] = *p;
		}
	}
	cmd[o++] = '\'';
	cmd[o] = '\0';
	return cmd;
}

/* Read one input; returns 0, or -1 (message printed) when it cannot be read. */
static int
read_input(struct den *dn, const char *path, char *buf)
{
	FILE *f;
	int piped = 0, c;
	size_t n = 0;
	int overlong = 0;

	if (strcmp(path, "-") == 0) {
		f = stdin;
	} else {
		unsigned char magic[2];
		size_t got;

		f = fopen(path, "rb");
		if (f == NULL) {
			fprintf(stderr, "egressctl denials: %s: %s\n", path,
			    strerror(errno));
			return -1;
		}
		got = fread(magic, 1, 2, f);
		if (ferror(f)) {
			fprintf(stderr, "egressctl denials: %s: %s\n", path,
			    strerror(errno));
			fclose(f);
			return -1;
		}
		if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
			char *cmd = gzip_command(path);

			fclose(f);
			fflush(stdout);
			f = popen(cmd, "r");
			free(cmd);
			if (f == NULL) {
				fprintf(stderr, "egressctl denials: %s: cannot "
				    "run gzip -dc: %s\n", path, strerror(errno));
				return -1;
			}
			piped = 1;
		} else {
			rewind(f);
		}
	}
	while ((c = getc(f)) != EOF) {
		if (c != '\n') {
			if (n < LINE_MAX_BYTES)
				buf[n++] = (char)c;
			else
				overlong = 1;
			continue;
		}
		if (overlong)
			dn->skipped++, dn->not_json++;
		else if (n > 0)
			take_line(dn, buf, n);
		n = 0;
		overlong = 0;
	}
	if (overlong)
		dn->skipped++, dn->not_json++;
	else if (n > 0)
		take_line(dn, buf, n);
	if (ferror(f)) {
		fprintf(stderr, "egressctl denials: %s: read error: %s\n",
		    path, strerror(errno));
		if (piped)
			pclose(f);
		else if (f != stdin)
			fclose(f);
		return -1;
	}
	if (piped) {
		int st = pclose(f);

		if (st != 0) {
			fprintf(stderr, "egressctl denials: %s: gzip -dc "
			    "failed (not a valid gzip file?)\n", path);
			return -1;
		}
	} else if (f != stdin) {
		fclose(f);
	}
	return 0;
}

/* The group of (name, port); created (requested) when create is set. */
static struct group *
group_find(struct den *dn, const char *name, unsigned port, int create)
{
	struct group *g;

	/* Linear: the number of distinct (name, port) is small in practice. */
	for (size_t i = 0; i < dn->ng; i++)
		if (dn->g[i].port == port && ctl_str_eq(dn->g[i].name, name))
			return &dn->g[i];
	if (!create)
		return NULL;
	if (dn->ng == dn->capg) {
		dn->capg = dn->capg == 0 ? 32 : dn->capg * 2;
		dn->g = xrealloc(dn->g, dn->capg * sizeof(*dn->g));
	}
	g = &dn->g[dn->ng++];
	memset(g, 0, sizeof(*g));
	g->name = xstrdup(name);
	g->port = port;
	g->requested = 1;
	g->first_ms = INT64_MAX;
	g->last_ms = INT64_MIN;
	return g;
}

/* Count one line (a deny, or a redirect to a target never requested). */
static void
group_count(struct group *g, const char *reason, const char *src,
    int would_deny, int ech, int64_t ts_ms, const char *ts)
{
	size_t i;

	g->count++;
	if (would_deny)
		g->would_deny++;
	if (ts_ms < g->first_ms) {
		g->first_ms = ts_ms;
		snprintf(g->first, sizeof(g->first), "%s", ts);
	}
	if (ts_ms >= g->last_ms) {
		g->last_ms = ts_ms;
		snprintf(g->last, sizeof(g->last), "%s", ts);
	}
	for (i = 0; i < g->nreasons; i++)
		if (strcmp(g->reasons[i].reason, reason) == 0)
			break;
	if (i == g->nreasons) {
		g->reasons = xrealloc(g->reasons, (g->nreasons + 1) *
		    sizeof(*g->reasons));
		g->reasons[i].reason = xstrdup(reason);
		g->reasons[i].known = dc_reason_parse(reason,
		    &g->reasons[i].r) == 0;
		g->reasons[i].count = 0;
		g->nreasons++;
	}
	g->reasons[i].count++;
	if (ech >= 0)
		g->ech_known++;
	if (ech > 0)
		g->ech_count++;
	if (strset_add(&g->srcs, src)) {
		g->srclist = xrealloc(g->srclist, (g->nsrclist + 1) *
		    sizeof(char *));
		g->srclist[g->nsrclist++] = xstrdup(src);
	}
}

static void
hint_add(struct group *g, const char *name, double ms)
{
	size_t i;

	for (i = 0; i < g->nhints; i++)
		if (strcmp(g->hints[i].name, name) == 0)
			break;
	if (i == g->nhints) {
		g->hints = xrealloc(g->hints, (g->nhints + 1) *
		    sizeof(*g->hints));
		g->hints[i].name = xstrdup(name);
		g->hints[i].count = 0;
		g->hints[i].max_ms = 0;
		g->nhints++;
	}
	g->hints[i].count++;
	if (ms > g->hints[i].max_ms)
		g->hints[i].max_ms = ms;
}

static void
group_add(struct den *dn, const struct denial *d)
{
	struct group *g = group_find(dn, d->name, d->port, 1);

	group_count(g, d->reason, d->src, d->would_deny, d->ech, d->ts_ms,
	    d->ts);
	if (d->after != NULL)
		hint_add(g, d->after, d->after_ms);
}

/*
 * One redirect towards the group: counted once per (chain, from, to), so
 * that the redirect line and the denied request that followed it (same
 * chain) are one redirect, not two.
 */
static void
via_add(struct group *g, unsigned status, const char *from,
    const char *chain, const char *to)
{
	struct via *v = NULL;
	char *key;
	size_t klen;

	if (chain != NULL) {
		klen = strlen(chain) + (from ? strlen(from) : 1) +
		    (to ? strlen(to) : 1) + 3;
		key = xrealloc(NULL, klen);
		snprintf(key, klen, "%s\037%s\037%s", chain, from ? from : "-",
		    to ? to : "-");
		if (!strset_add(&g->events, key)) {
			free(key);
			return;
		}
		free(key);
	}
	for (size_t i = 0; i < g->nvia; i++)
		if (g->via[i].status == status &&
		    ctl_str_eq(g->via[i].from, from)) {
			v = &g->via[i];
			break;
		}
	if (v == NULL) {
		g->via = xrealloc(g->via, (g->nvia + 1) * sizeof(*g->via));
		v = &g->via[g->nvia++];
		memset(v, 0, sizeof(*v));
		v->status = status;
		v->from = xstrdup(from);
	}
	v->count++;
	if (chain != NULL && strset_add(&v->chainset, chain)) {
		v->chains = xrealloc(v->chains, (v->nchains + 1) *
		    sizeof(char *));
		v->chains[v->nchains++] = xstrdup(chain);
	}
}

static int
via_cmp(const void *a, const void *b)
{
	const struct via *x = a, *y = b;
	int c;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->from == NULL || y->from == NULL) {
		if (x->from != y->from)
			return x->from == NULL ? 1 : -1;
	} else if ((c = strcmp(x->from, y->from)) != 0) {
		return c;
	}
	return x->status < y->status ? -1 : x->status > y->status;
}

/* Redirects by chain, name, port, then time: chained denials look up here. */
static int
redir_key_cmp(const char *chain, const char *name, unsigned port,
    int64_t ts_ms, const struct redir *r)
{
	int c;

	if ((c = strcmp(chain, r->chain)) != 0)
		return c;
	if (name == NULL || r->name == NULL) {
		if (name != r->name)
			return name == NULL ? -1 : 1;
	} else if ((c = strcmp(name, r->name)) != 0) {
		return c;
	}
	if (port != r->port)
		return port < r->port ? -1 : 1;
	return ts_ms < r->ts_ms ? -1 : ts_ms > r->ts_ms;
}

static int
redir_cmp(const void *a, const void *b)
{
	const struct redir *x = *(const struct redir *const *)a;
	const struct redir *y = *(const struct redir *const *)b;

	return redir_key_cmp(x->chain, x->name, x->port, x->ts_ms, y);
}

/*
 * The last redirect of chain towards (name, port) at or before ts_ms, in
 * idx (n redirects sorted by redir_cmp), or NULL.
 */
static const struct redir *
redir_find(struct redir **idx, size_t n, const char *chain, const char *name,
    unsigned port, int64_t ts_ms)
{
	size_t lo = 0, hi = n;
	const struct redir *r;

	/* The first one after (chain, name, port, ts_ms)... */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (redir_key_cmp(chain, name, port, ts_ms, idx[mid]) >= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	/* ...and the one before it, if it is of the same chain and target. */
	r = idx[lo - 1];
	if (strcmp(r->chain, chain) != 0 || r->port != port ||
	    !ctl_str_eq(r->name, name))
		return NULL;
	return r;
}

static int
hint_cmp(const void *a, const void *b)
{
	const struct hint *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int
reason_cmp(const void *a, const void *b)
{
	const struct reason_count *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->reason, y->reason);
}

static int
group_cmp(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	int c;

	/* Redirect targets never requested come after every denial. */
	if (x->requested != y->requested)
		return x->requested ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->name == NULL || y->name == NULL) {
		if (x->name != y->name)
			return x->name == NULL ? 1 : -1;
	} else if ((c = strcmp(x->name, y->name)) != 0) {
		return c;
	}
	return x->port < y->port ? -1 : x->port > y->port;
}

/* ------------------------------------------------------------ suggest */

/*
 * Can an allow rule fix it? Only when no rule admitted the name, or none
 * the port. Everything else is refused whatever an allow rule says: a
 * deny rule wins, the bytes were refused before the policy was asked
 * (no_sni, bad_http, sni_mismatch, ech_refused, ...), the address guard
 * refused the upstream, a reload revoked it on purpose. A reason that is
 * not in the table (a newer daemon's) is not guessed at.
 */
static int
is_fixable(const struct reason_count *rc)
{
	return rc->known && (rc->r == DC_NOT_ALLOWED ||
	    rc->r == DC_PORT_NOT_ALLOWED);
}

static int
valid_host(const char *name)
{
	char norm[SNI_NAME_MAX + 1];

	if (name == NULL || sni_name_normalize((const uint8_t *)name,
	    strlen(name), norm) != 0 || strcmp(norm, name) != 0)
		return 0;
	return 1;
}

/*
 * Why "*.parent" may not be suggested, in words, or NULL when it may: the
 * answer egressctl check gives for the same pattern (tools/psl.h). No
 * list at all means no wildcard: a name that cannot be weighed is not
 * widened.
 */
static const char *
wildcard_refusal(const struct ctl_psl *psl, const char *parent)
{
	switch (ctl_psl_width(psl, parent)) {
	case CTL_PSL_NARROW:
		return NULL;
	case CTL_PSL_TLD:
		return "a top-level domain";
	case CTL_PSL_ICANN:
		return "a public suffix";
	case CTL_PSL_PRIVATE:
		return "a public suffix of the list's private section";
	case CTL_PSL_COVERS:
		return "public suffixes of the list lie below it";
	case CTL_PSL_UNKNOWN:
		return "no public suffix list was loaded";
	}
	return "?";
}

/* One suggested rule: hosts (exact names or one wildcard) and ports. */
struct srule {
	char **hosts;
	size_t nhosts;
	unsigned *ports;
	size_t nports;
	int wildcard;
	char *comment;
};

struct sname {
	char *name;
	unsigned *ports;
	size_t nports;
	int used;
	int refused;            /* its parent's wildcard was refused (said once) */
};

/* A wildcard that was not suggested: 3 or more names under parent. */
struct nowild {
	const char *parent;     /* into an sname's name */
	const char *why;
	size_t count;
};

static void
add_port(unsigned **ports, size_t *n, unsigned p)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if ((*ports)[i] == p)
			return;
	*ports = xrealloc(*ports, (*n + 1) * sizeof(unsigned));
	/* keep sorted */
	for (i = *n; i > 0 && (*ports)[i - 1] > p; i--)
		(*ports)[i] = (*ports)[i - 1];
	(*ports)[i] = p;
	(*n)++;
}

static int
ports_equal(const unsigned *a, size_t na, const unsigned *b, size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na * sizeof(unsigned)) == 0);
}

static int
sname_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sname *)a)->name,
	    ((const struct sname *)b)->name);
}

static const char *
parent_of(const char *name)
{
	const char *dot = strchr(name, '.');

	return dot == NULL ? NULL : dot + 1;
}

static void
print_ports(FILE *f, const unsigned *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%u", i > 0 ? ", " : "", p[i]);
}

/* snprintf at buf + *o, never past cap; *o stays within it. */
static void __attribute__((format(printf, 4, 5)))
append(char *buf, size_t cap, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*o >= cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *o, cap - *o, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*o = (size_t)n < cap - *o ? *o + (size_t)n : cap - 1;
}

/* What --suggest builds: the names, then rules and the wildcards not made. */
struct plan {
	struct sname *sn;
	size_t nsn;
	struct srule *r;
	size_t nr;
	struct nowild *nw;
	size_t nnw;
};

/* Does a group hold a reason an allow rule would fix? */
static int
group_fixable(const struct group *g)
{
	for (size_t j = 0; j < g->nreasons; j++)
		if (is_fixable(&g->reasons[j]))
			return 1;
	return 0;
}

/* Names that an allow rule would admit, with their denied ports, sorted. */
static void
plan_names(struct plan *pl, const struct den *dn)
{
	size_t i, j;

	for (i = 0; i < dn->ng; i++) {
		const struct group *g = &dn->g[i];

		if (!valid_host(g->name) || !group_fixable(g))
			continue;
		for (j = 0; j < pl->nsn; j++)
			if (strcmp(pl->sn[j].name, g->name) == 0)
				break;
		if (j == pl->nsn) {
			pl->sn = xrealloc(pl->sn, (pl->nsn + 1) * sizeof(*pl->sn));
			memset(&pl->sn[pl->nsn], 0, sizeof(*pl->sn));
			pl->sn[pl->nsn].name = xstrdup(g->name);
			pl->nsn++;
		}
		add_port(&pl->sn[j].ports, &pl->sn[j].nports, g->port);
	}
	if (pl->nsn > 1)
		qsort(pl->sn, pl->nsn, sizeof(*pl->sn), sname_cmp);
}

/* Is sn unused, and directly under parent? */
static int
under_parent(const struct sname *sn, const char *parent)
{
	const char *p = parent_of(sn->name);

	return !sn->used && p != NULL && strcmp(p, parent) == 0;
}

/* A wildcard rule for the unused names under parent, from sn[i] on. */
static void
plan_wildcard(struct plan *pl, size_t i, const char *parent, size_t under)
{
	struct srule *w;
	char *comment;
	size_t clen = 0, cap, j;

	pl->r = xrealloc(pl->r, (pl->nr + 1) * sizeof(*pl->r));
	w = &pl->r[pl->nr++];
	memset(w, 0, sizeof(*w));
	w->wildcard = 1;
	w->hosts = xrealloc(NULL, sizeof(char *));
	cap = strlen(parent) + 3;
	w->hosts[0] = xrealloc(NULL, cap);
	snprintf(w->hosts[0], cap, "*.%s", parent);
	w->nhosts = 1;
	cap = 128 + strlen(parent);
	for (j = i; j < pl->nsn; j++)
		cap += strlen(pl->sn[j].name) + 2;
	comment = xrealloc(NULL, cap);
	append(comment, cap, &clen, "%zu names under %s were denied: ",
	    under, parent);
	under = 0;
	for (j = i; j < pl->nsn; j++) {
		struct sname *sj = &pl->sn[j];

		if (!under_parent(sj, parent))
			continue;
		append(comment, cap, &clen, "%s%s", under++ > 0 ? ", " : "",
		    sj->name);
		for (size_t k = 0; k < sj->nports; k++)
			add_port(&w->ports, &w->nports, sj->ports[k]);
		sj->used = 1;
	}
	w->comment = comment;
}

/* Wildcards: 3 or more different names directly under one parent, unless
 * the public suffix list says the parent is too wide (said once). */
static void
plan_wildcards(struct plan *pl, const struct ctl_psl *psl)
{
	size_t i, j, under;
	const char *parent, *why;

	for (i = 0; i < pl->nsn; i++) {
		parent = parent_of(pl->sn[i].name);
		if (pl->sn[i].used || pl->sn[i].refused || parent == NULL)
			continue;
		under = 0;
		for (j = i; j < pl->nsn; j++)
			under += under_parent(&pl->sn[j], parent);
		if (under < 3)
			continue;
		if ((why = wildcard_refusal(psl, parent)) == NULL) {
			plan_wildcard(pl, i, parent, under);
			continue;
		}
		/* The names stay exact; say once why no wildcard. */
		for (j = i; j < pl->nsn; j++) {
			const char *pj = parent_of(pl->sn[j].name);

			if (pj != NULL && strcmp(pj, parent) == 0)
				pl->sn[j].refused = 1;
		}
		pl->nw = xrealloc(pl->nw, (pl->nnw + 1) * sizeof(*pl->nw));
		pl->nw[pl->nnw].parent = parent;
		pl->nw[pl->nnw].why = why;
		pl->nw[pl->nnw].count = under;
		pl->nnw++;
	}
}

/* Exact names, one rule per set of ports. */
static void
plan_exact(struct plan *pl)
{
	size_t i, j;
	struct srule *e;

	for (i = 0; i < pl->nsn; i++) {
		struct sname *sn = &pl->sn[i];

		if (sn->used)
			continue;
		for (j = 0; j < pl->nr; j++)
			if (!pl->r[j].wildcard && ports_equal(pl->r[j].ports,
			    pl->r[j].nports, sn->ports, sn->nports))
				break;
		if (j == pl->nr) {
			pl->r = xrealloc(pl->r, (pl->nr + 1) * sizeof(*pl->r));
			e = &pl->r[pl->nr++];
			memset(e, 0, sizeof(*e));
			for (size_t k = 0; k < sn->nports; k++)
				add_port(&e->ports, &e->nports, sn->ports[k]);
		}
		e = &pl->r[j];
		e->hosts = xrealloc(e->hosts, (e->nhosts + 1) * sizeof(char *));
		e->hosts[e->nhosts++] = xstrdup(sn->name);
		sn->used = 1;
	}
}

/* "#" once before the first note set apart from the header. */
static void
note_apart(int *any_apart)
{
	if (!*any_apart)
		printf("#\n");
	*any_apart = 1;
}

/* The header, the list used, and the wildcards not made. */
static void
print_suggest_head(const struct plan *pl, const struct ctl_psl *psl,
    size_t ndenied, enum suggest kind, int *any_apart)
{
	const char *psl_src = ctl_psl_source(psl);
	const char *psl_why = ctl_psl_problem(psl);

	printf("# Suggested by 'egressctl denials --suggest %s' from %zu denied\n"
	    "# connection(s). Review before use: each host below was refused by\n"
	    "# policy; admitting it lets every client reach it.\n",
	    kind == SUGGEST_NATIVE ? "native" : "serviceentry", ndenied);
	/* Wildcards are weighed with the public suffix list: which one. */
	if (psl_src == NULL)
		printf("# No public suffix list could be loaded (%s): no wildcard\n"
		    "# is suggested; install the publicsuffix package.\n",
		    psl_why != NULL ? psl_why : "none");
	else if (psl_why != NULL)
		printf("# Public suffix list: %s (%s); install the\n"
		    "# publicsuffix package, whose list apt keeps current.\n",
		    psl_src, psl_why);
	/* Three or more names under a parent too wide to cover: exact. */
	for (size_t i = 0; i < pl->nnw; i++) {
		note_apart(any_apart);
		printf("# no wildcard: *.%s (%s); its %zu names stay exact\n",
		    pl->nw[i].parent, pl->nw[i].why, pl->nw[i].count);
	}
}

/*
 * Redirect targets that were denied but never requested are included:
 * they are where clients break next, once enforced.
 */
static void
print_suggest_targets(const struct den *dn, int *any_apart)
{
	for (size_t i = 0; i < dn->ng; i++) {
		const struct group *g = &dn->g[i];

		if (g->requested || !valid_host(g->name) || !group_fixable(g))
			continue;
		note_apart(any_apart);
		printf("# redirected to, not yet requested (included): %s:%u "
		    "(%zu redirect%s", g->name, g->port, g->count,
		    g->count == 1 ? "" : "s");
		if (g->nvia > 0 && g->via[0].from != NULL)
			printf(", from %s", g->via[0].from);
		printf(")\n");
	}
}

/* Why a reason of a group is not suggested, or NULL when it is. */
static const char *
not_suggested_why(const struct group *g, const struct reason_count *rc,
    char *buf, size_t len)
{
	if (is_fixable(rc) && !valid_host(g->name))
		return g->name == NULL ? "no name" : "not a valid host name";
	if (rc->known && rc->r == DC_DENIED_BY_RULE)
		return "denied_by_rule: a deny rule wins over any allow";
	if (!rc->known) {
		snprintf(buf, len, "%.100s: a reason this egressctl does not "
		    "know", rc->reason);
		return buf;
	}
	return is_fixable(rc) ? NULL : rc->reason;
}

/* What is not suggested, and why. */
static void
print_suggest_skipped(const struct den *dn, int *any_apart)
{
	char unknown[160];
	const char *why;

	for (size_t i = 0; i < dn->ng; i++) {
		const struct group *g = &dn->g[i];

		for (size_t j = 0; j < g->nreasons; j++) {
			why = not_suggested_why(g, &g->reasons[j], unknown,
			    sizeof(unknown));
			if (why == NULL)
				continue;
			note_apart(any_apart);
			printf("# not suggested: ");
			if (g->name == NULL)
				printf("(no name)");
			else
				/* names may carry escaped raw bytes: keep them on one line */
				for (const char *p = g->name; *p != '\0'; p++)
					putchar((unsigned char)*p < 0x20 ? '?' : *p);
			printf(":%u (%s, %zu)\n", g->port, why, g->reasons[j].count);
		}
	}
}

static void
print_rules_native(const struct plan *pl)
{
	printf("allow:\n");
	for (size_t i = 0; i < pl->nr; i++) {
		const struct srule *r = &pl->r[i];

		if (r->comment != NULL)
			printf("  # %s\n", r->comment);
		printf("  - name: suggested-%zu\n    hosts: [", i + 1);
		for (size_t j = 0; j < r->nhosts; j++)
			printf("%s\"%s\"", j > 0 ? ", " : "", r->hosts[j]);
		printf("]\n    ports: [");
		print_ports(stdout, r->ports, r->nports);
		printf("]\n");
	}
}

static void
print_rules_se(const struct plan *pl)
{
	for (size_t i = 0; i < pl->nr; i++) {
		const struct srule *r = &pl->r[i];

		printf("---\n");
		if (r->comment != NULL)
			printf("# %s\n", r->comment);
		printf("apiVersion: networking.istio.io/v1\n"
		    "kind: ServiceEntry\n"
		    "metadata:\n"
		    "  name: suggested-%zu\n"
		    "spec:\n"
		    "  hosts:\n", i + 1);
		for (size_t j = 0; j < r->nhosts; j++)
			printf("  - \"%s\"\n", r->hosts[j]);
		printf("  location: MESH_EXTERNAL\n  ports:\n");
		for (size_t j = 0; j < r->nports; j++) {
			unsigned p = r->ports[j];
			int tls = p == 443 || p == 8443;

			printf("  - number: %u\n    name: %s-%u\n"
			    "    protocol: %s\n", p, tls ? "tls" : "tcp",
			    p, tls ? "TLS" : "TCP");
		}
		/* Istio: wildcard hosts cannot use DNS resolution. */
		printf("  resolution: %s\n", r->wildcard ? "NONE" : "DNS");
	}
}

static void
plan_free(struct plan *pl)
{
	size_t i, j;

	for (i = 0; i < pl->nsn; i++) {
		free(pl->sn[i].name);
		free(pl->sn[i].ports);
	}
	free(pl->sn);
	for (i = 0; i < pl->nr; i++) {
		for (j = 0; j < pl->r[i].nhosts; j++)
			free(pl->r[i].hosts[j]);
		free(pl->r[i].hosts);
		free(pl->r[i].ports);
		free(pl->r[i].comment);
	}
	free(pl->r);
	free(pl->nw);
}

static void
suggest(struct den *dn, size_t ndenied, enum suggest kind)
{
	struct plan pl;
	struct ctl_psl *psl;
	int any_apart = 0;

	psl = ctl_psl_open();
	if (psl == NULL) {
		fprintf(stderr, "egressctl denials: out of memory\n");
		exit(CTL_EXIT_USAGE);
	}
	memset(&pl, 0, sizeof(pl));
	plan_names(&pl, dn);
	plan_wildcards(&pl, psl);
	plan_exact(&pl);
	print_suggest_head(&pl, psl, ndenied, kind, &any_apart);
	print_suggest_targets(dn, &any_apart);
	print_suggest_skipped(dn, &any_apart);
	if (pl.nr == 0) {
		printf("#\n# nothing to suggest\n");
		if (kind == SUGGEST_NATIVE)
			printf("allow: []\n");
	} else if (kind == SUGGEST_NATIVE) {
		print_rules_native(&pl);
	} else {
		print_rules_se(&pl);
	}
	plan_free(&pl);
	ctl_psl_close(psl);
}

/* ------------------------------------------------------------ output */

static void
print_text(const struct den *dn, size_t max_sources)
{
	for (size_t i = 0; i < dn->ng; i++) {
		const struct group *g = &dn->g[i];
		size_t j;

		if (g->requested) {
			printf("%s:%u  %zu denied", g->name != NULL ? g->name :
			    "(no name)", g->port, g->count);
			if (g->would_deny > 0)
				printf(" (%zu would_deny)", g->would_deny);
			if (g->ech_count > 0)
				printf(" (%zu with ECH: the name is the outer one)",
				    g->ech_count);
		} else {
			printf("%s:%u  redirected to, not yet requested (%zu "
			    "redirect%s", g->name != NULL ? g->name : "(no name)",
			    g->port, g->count, g->count == 1 ? "" : "s");
			if (g->would_deny > 0)
				printf(", %zu would_deny", g->would_deny);
			printf(")");
		}
		printf("\n  reasons: ");
		for (j = 0; j < g->nreasons; j++)
			printf("%s%s %zu", j > 0 ? ", " : "",
			    g->reasons[j].reason, g->reasons[j].count);
		printf("\n  sources: ");
		for (j = 0; j < g->nsrclist && j < max_sources; j++)
			printf("%s%s", j > 0 ? ", " : "", g->srclist[j]);
		if (g->nsrclist > max_sources)
			printf(" and %zu more", g->nsrclist - max_sources);
		printf("\n  first %s, last %s\n", g->first, g->last);
		for (j = 0; j < g->nvia; j++) {
			const struct via *v = &g->via[j];

			if (v->from != NULL && v->status != 0)
				printf("  reached by redirect: %u from %s",
				    v->status, v->from);
			else if (v->from != NULL)
				printf("  reached by redirect: from %s", v->from);
			else
				printf("  reached by redirect: its redirect "
				    "line is not in this input");
			printf(" (");
			if (v->nchains == 1)
				printf("chain %s, ", v->chains[0]);
			else if (v->nchains > 1)
				printf("chains %s and %zu more, ", v->chains[0],
				    v->nchains - 1);
			printf("%zu time%s)\n", v->count, v->count == 1 ? "" :
			    "s");
		}
		for (j = 0; j < g->nhints && j < max_sources; j++)
			printf("  heuristic: often denied right after an allowed "
			    "connection to %s (%zu time%s, within %.15g ms)\n",
			    g->hints[j].name, g->hints[j].count,
			    g->hints[j].count == 1 ? "" : "s",
			    g->hints[j].max_ms);
		if (g->nhints > max_sources)
			printf("  heuristic: and %zu more names\n",
			    g->nhints - max_sources);
	}
}

static void
print_json(const struct den *dn, size_t ndenied, size_t nnames,
    size_t nsources, size_t nwd, size_t nech, size_t ntargets,
    const char *since)
{
	printf("{\"denied\":%zu,\"names\":%zu,\"sources\":%zu,"
	    "\"would_deny\":%zu,\"ech_count\":%zu,\"redirect_targets\":%zu,"
	    "\"skipped_lines\":%zu,\"since\":", ndenied, nnames, nsources,
	    nwd, nech, ntargets, dn->skipped);
	ctl_json_str(stdout, since);
	printf(",\"groups\":[");
	for (size_t i = 0; i < dn->ng; i++) {
		const struct group *g = &dn->g[i];
		size_t j;

		printf("%s{\"name\":", i > 0 ? "," : "");
		ctl_json_str(stdout, g->name);
		/* ech: null when no line said (older logs, HTTP), true
		 * when any of the group's ClientHellos offered it. */
		printf(",\"port\":%u,\"count\":%zu,\"would_deny\":%zu,"
		    "\"ech\":%s,\"ech_count\":%zu,\"reasons\":{", g->port,
		    g->count, g->would_deny, g->ech_known == 0 ? "null" :
		    g->ech_count > 0 ? "true" : "false", g->ech_count);
		for (j = 0; j < g->nreasons; j++) {
			printf("%s", j > 0 ? "," : "");
			ctl_json_str(stdout, g->reasons[j].reason);
			printf(":%zu", g->reasons[j].count);
		}
		printf("},\"sources\":[");
		for (j = 0; j < g->nsrclist; j++) {
			printf("%s", j > 0 ? "," : "");
			ctl_json_str(stdout, g->srclist[j]);
		}
		printf("],\"first_seen\":");
		ctl_json_str(stdout, g->first);
		printf(",\"last_seen\":");
		ctl_json_str(stdout, g->last);
		printf(",\"requested\":%s,\"redirects\":[",
		    g->requested ? "true" : "false");
		for (j = 0; j < g->nvia; j++) {
			const struct via *v = &g->via[j];

			printf("%s{\"status\":", j > 0 ? "," : "");
			if (v->status != 0)
				printf("%u", v->status);
			else
				printf("null");
			printf(",\"from\":");
			ctl_json_str(stdout, v->from);
			printf(",\"count\":%zu,\"chains\":[", v->count);
			for (size_t k = 0; k < v->nchains; k++) {
				printf("%s", k > 0 ? "," : "");
				ctl_json_str(stdout, v->chains[k]);
			}
			printf("]}");
		}
		printf("],\"after\":[");
		for (j = 0; j < g->nhints; j++) {
			printf("%s{\"name\":", j > 0 ? "," : "");
			ctl_json_str(stdout, g->hints[j].name);
			printf(",\"count\":%zu,\"max_ms\":%.15g}",
			    g->hints[j].count, g->hints[j].max_ms);
		}
		printf("]}");
	}
	printf("]}\n");
}

/* The command line of "egressctl denials". */
struct den_args {
	const char *since;
	int64_t since_ms;               /* -1: all */
	int json;
	enum suggest sg;
	size_t max_sources;
};

/* Options into a; the first log's index, or -1 with the exit status in *rc. */
static int
den_parse_args(int argc, char **argv, struct den_args *a, int *rc)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 'S' },
		{ "format", required_argument, NULL, 'f' },
		{ "suggest", required_argument, NULL, 'g' },
		{ "max-sources", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	*rc = CTL_EXIT_USAGE;
	a->since = NULL;
	a->since_ms = -1;
	a->json = 0;
	a->sg = SUGGEST_NONE;
	a->max_sources = 5;
	optind = 1;
	while ((c = getopt_long(argc, argv, "S:f:g:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'S':
			a->since = optarg;
			a->since_ms = parse_duration(optarg);
			if (a->since_ms < 0) {
				fprintf(stderr, "egressctl denials: --since "
				    "'%s': expected a duration such as 30m, 2h, "
				    "1d or 1h30m\n", optarg);
				return -1;
			}
			break;
		case 'f':
			if (strcmp(optarg, "json") == 0)
				a->json = 1;
			else if (strcmp(optarg, "text") == 0)
				a->json = 0;
			else {
				fprintf(stderr, "egressctl denials: --format "
				    "'%s': expected text or json\n", optarg);
				return -1;
			}
			break;
		case 'g':
			if (strcmp(optarg, "native") == 0)
				a->sg = SUGGEST_NATIVE;
			else if (strcmp(optarg, "serviceentry") == 0)
				a->sg = SUGGEST_SE;
			else {
				fprintf(stderr, "egressctl denials: --suggest "
				    "'%s': expected native or serviceentry\n",
				    optarg);
				return -1;
			}
			break;
		case 'n': {
			char *e;
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &e, 10);
			if (*optarg < '0' || *optarg > '9' || *e != '\0' ||
			    errno != 0 || v > 100000) {
				fprintf(stderr, "egressctl denials: "
				    "--max-sources '%s': expected a number\n",
				    optarg);
				return -1;
			}
			a->max_sources = v;
			break;
		}
		case 'h':
			denials_usage(stdout);
			*rc = CTL_EXIT_OK;
			return -1;
		default:
			denials_usage(stderr);
			return -1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "egressctl denials: no log given ('-' reads "
		    "stdin)\n");
		denials_usage(stderr);
		return -1;
	}
	if (a->json && a->sg != SUGGEST_NONE) {
		fprintf(stderr, "egressctl denials: --format json and "
		    "--suggest do not go together\n");
		return -1;
	}
	return optind;
}

/* What the summary counts, over the lines --since keeps. */
struct den_totals {
	size_t ndenied, nwd, nech, nnames, ntargets;
	struct strset names, srcs;
};

/* --since: relative to the newest line read, not to now. */
static int
den_too_old(const struct den *dn, const struct den_args *a, int64_t ts_ms)
{
	return a->since_ms >= 0 && ts_ms < dn->newest_ms - a->since_ms;
}

/* Denials into their groups; redirects towards a denied target (verdict
 * deny, or would_deny) into the target's group, made if need be. */
static void
den_group(struct den *dn, const struct den_args *a, struct den_totals *t)
{
	size_t i;

	for (i = 0; i < dn->nd; i++) {
		const struct denial *d = &dn->d[i];

		if (den_too_old(dn, a, d->ts_ms))
			continue;
		group_add(dn, d);
		t->ndenied++;
		if (d->would_deny)
			t->nwd++;
		if (d->ech > 0)
			t->nech++;
		if (d->name != NULL && strset_add(&t->names, d->name))
			t->nnames++;
		strset_add(&t->srcs, d->src);
	}
	for (i = 0; i < dn->nr; i++) {
		const struct redir *r = &dn->r[i];
		struct group *g;

		if (!r->deny || den_too_old(dn, a, r->ts_ms))
			continue;
		g = group_find(dn, r->name, r->port, 0);
		if (g == NULL) {
			g = group_find(dn, r->name, r->port, 1);
			g->requested = 0;
			t->ntargets++;
		}
		if (!g->requested)
			group_count(g, r->reason, r->src, r->would_deny, -1,
			    r->ts_ms, r->ts);
		via_add(g, r->status, r->from, r->chain, r->to);
	}
}

/*
 * Denied requests that are part of a redirect chain: joined to the
 * redirect line of that chain towards the same name and port (the last
 * one before the request), else listed as "its redirect line is not in
 * this input".
 */
static void
den_join_chains(struct den *dn, const struct den_args *a)
{
	struct redir **ridx = xrealloc(NULL, (dn->nr + 1) * sizeof(*ridx));
	size_t nridx = 0, i;

	for (i = 0; i < dn->nr; i++)
		if (dn->r[i].chain != NULL)
			ridx[nridx++] = &dn->r[i];
	if (nridx > 1)
		qsort(ridx, nridx, sizeof(*ridx), redir_cmp);
	for (i = 0; i < dn->nd; i++) {
		const struct denial *d = &dn->d[i];
		const struct redir *hit;
		struct group *g;

		if (d->chain == NULL || den_too_old(dn, a, d->ts_ms))
			continue;
		hit = redir_find(ridx, nridx, d->chain, d->name, d->port,
		    d->ts_ms);
		g = group_find(dn, d->name, d->port, 0);
		if (g == NULL)
			continue;       /* cannot happen: every kept deny has one */
		if (hit != NULL)
			via_add(g, hit->status, hit->from, hit->chain, hit->to);
		else
			via_add(g, 0, NULL, d->chain, NULL);
	}
	free(ridx);
}

static void
den_sort(struct den *dn)
{
	for (size_t i = 0; i < dn->ng; i++) {
		struct group *g = &dn->g[i];

		if (g->nreasons > 1)
			qsort(g->reasons, g->nreasons, sizeof(*g->reasons),
			    reason_cmp);
		if (g->nvia > 1)
			qsort(g->via, g->nvia, sizeof(*g->via), via_cmp);
		if (g->nhints > 1)
			qsort(g->hints, g->nhints, sizeof(*g->hints), hint_cmp);
	}
	if (dn->ng > 1)
		qsort(dn->g, dn->ng, sizeof(*dn->g), group_cmp);
}

static void
den_report(struct den *dn, const struct den_args *a, const struct den_totals *t)
{
	if (a->sg != SUGGEST_NONE) {
		suggest(dn, t->ndenied, a->sg);
	} else if (a->json) {
		print_json(dn, t->ndenied, t->nnames, t->srcs.n, t->nwd,
		    t->nech, t->ntargets, a->since);
	} else {
		print_text(dn, a->max_sources);
		printf("%zu denied connections, %zu names, %zu sources; "
		    "%zu would_deny (report mode)", t->ndenied, t->nnames,
		    t->srcs.n, t->nwd);
		if (t->ntargets > 0)
			printf("; %zu redirect target%s not yet requested",
			    t->ntargets, t->ntargets == 1 ? "" : "s");
		if (t->nech > 0)
			printf("; %zu with ECH", t->nech);
		printf("\n");
	}
	if (dn->skipped > 0) {
		fflush(stdout);
		fprintf(stderr, "egressctl denials: skipped %zu lines that are "
		    "not egressd connection lines (%zu notices, %zu not JSON)\n",
		    dn->skipped, dn->notices, dn->not_json);
	}
}

static void
group_free(struct group *g)
{
	free(g->name);
	for (size_t j = 0; j < g->nreasons; j++)
		free(g->reasons[j].reason);
	free(g->reasons);
	for (size_t j = 0; j < g->nsrclist; j++)
		free(g->srclist[j]);
	free(g->srclist);
	strset_free(&g->srcs);
	for (size_t j = 0; j < g->nvia; j++) {
		for (size_t k = 0; k < g->via[j].nchains; k++)
			free(g->via[j].chains[k]);
		free(g->via[j].chains);
		free(g->via[j].from);
		strset_free(&g->via[j].chainset);
	}
	free(g->via);
	strset_free(&g->events);
	for (size_t j = 0; j < g->nhints; j++)
		free(g->hints[j].name);
	free(g->hints);
}

static void
den_free(struct den *dn)
{
	size_t i;

	for (i = 0; i < dn->nd; i++) {
		free(dn->d[i].name);
		free(dn->d[i].reason);
		free(dn->d[i].src);
		free(dn->d[i].chain);
		free(dn->d[i].after);
	}
	free(dn->d);
	for (i = 0; i < dn->nr; i++) {
		free(dn->r[i].name);
		free(dn->r[i].reason);
		free(dn->r[i].src);
		free(dn->r[i].from);
		free(dn->r[i].to);
		free(dn->r[i].chain);
	}
	free(dn->r);
	for (i = 0; i < dn->ng; i++)
		group_free(&dn->g[i]);
	free(dn->g);
}

int
ctl_denials_main(int argc, char **argv)
{
	struct den dn;
	struct den_args a;
	struct den_totals t;
	int first, rc;
	char *buf;

	first = den_parse_args(argc, argv, &a, &rc);
	if (first < 0)
		return rc;
	memset(&dn, 0, sizeof(dn));
	memset(&t, 0, sizeof(t));
	buf = xrealloc(NULL, LINE_MAX_BYTES + 1);
	rc = CTL_EXIT_OK;
	for (int i = first; i < argc; i++)
		if (read_input(&dn, argv[i], buf) != 0) {
			rc = CTL_EXIT_USAGE;
			break;
		}
	if (rc == CTL_EXIT_OK) {
		den_group(&dn, &a, &t);
		den_join_chains(&dn, &a);
		den_sort(&dn);
		den_report(&dn, &a, &t);
		rc = t.ndenied > 0 || t.ntargets > 0 ? CTL_EXIT_FAIL :
		    CTL_EXIT_OK;
	}
	free(buf);
	den_free(&dn);
	strset_free(&t.names);
	strset_free(&t.srcs);
	return rc;
}

/*
 * gateway/metrics.c: per-worker counters and the Prometheus exposition.
 *
 * The writers (everything but gw_metrics_render) run on a worker's own
 * thread and touch only that worker's struct gw_metrics; the one reader,
 * gw_metrics_render, runs on the main thread when /stats/prometheus is
 * asked for and sums the workers. See metrics.h for the memory ordering.
 *
 * The exposition is the text format 0.0.4: a HELP and a TYPE line for
 * every metric, counters named *_total, base units (bytes, seconds).
 * Numbers are formatted from integers: printf's "%f" follows LC_NUMERIC.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include <event2/buffer.h>

#include "dns/dns.h"
#include "gateway/gateway.h"
#include "logging/evidence.h"
#include "logging/log.h"
#include "policy/policy.h"

_Static_assert(GW_METRICS_MAX_LISTENERS == GW_MAX_LISTENERS,
    "metrics keep one slot per listener");

/* One writer per counter: a plain add, published with a relaxed store. */
#define M_ADD(p, v) __atomic_store_n((p), \
	__atomic_load_n((p), __ATOMIC_RELAXED) + (v), __ATOMIC_RELAXED)
#define M_SET(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define M_GET(p) __atomic_load_n((p), __ATOMIC_RELAXED)

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* ClientHello sizes, bytes: typical hellos are 250-600 bytes, post-quantum
 * key shares push them past 1 KiB, the cap is 16 KiB plus headers. */
static const uint64_t hello_le[GW_HELLO_BUCKETS - 1] = {
	128, 256, 512, 1024, 2048, 4096, 8192, 16384,
};
static const char *const hello_le_text[GW_HELLO_BUCKETS] = {
	"128", "256", "512", "1024", "2048", "4096", "8192", "16384", "+Inf",
};

/* Accept to decision, microseconds; mostly the client's own pace. */
static const uint64_t decide_le[GW_DECIDE_BUCKETS - 1] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const char *const decide_le_text[GW_DECIDE_BUCKETS] = {
	"5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
	"0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
	"+Inf",
};

/* ---- writers: the worker's own thread ---------------------------------- */

static unsigned
listener_index(const struct gw_worker *w, const char *name)
{
	size_t i;

	if (name == NULL)
		return GW_METRICS_MAX_LISTENERS;
	for (i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].conf->name == name)
			return (unsigned)i;
	for (i = 0; i < w->nlisteners; i++)
		if (strcmp(w->listeners[i].conf->name, name) == 0)
			return (unsigned)i;
	return GW_METRICS_MAX_LISTENERS;
}

static unsigned
bucket_of(const uint64_t *le, size_t n, uint64_t v)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v <= le[i])
			break;
	return (unsigned)i;
}

/* The event of a connection or request line, by its first letter. */
static unsigned
event_index(const char *event)
{
	if (event != NULL && event[0] == 'd')
		return DC_EV_DENY;
	if (event != NULL && event[0] == 'e')
		return DC_EV_ERROR;
	return DC_EV_ALLOW;
}

/*
 * Which series a line counts in, by what the line itself says, so that
 * the metrics and the log add up the same way: a redirect line by its
 * event; an HTTP request line by its proto "http" (every request of a
 * keep-alive connection, the plain HTTP requests inside a tunnel, and on
 * an http listener the line of a connection that ended before its first
 * request); every other line (proto "tls" or "connect": a TLS connection,
 * a CONNECT tunnel, an accept failure) is a connection line.
 */
void
gw_metrics_conn(struct gw_worker *w, const struct log_record *r,
    enum dc_reason reason, uint32_t hello_bytes, uint32_t decide_us, uint32_t dns_us)
{
	struct gw_metrics *m = &w->metrics;
	unsigned li = listener_index(w, r->listener);
	unsigned row = li < GW_METRICS_MAX_LISTENERS ? li :
	    GW_METRICS_MAX_LISTENERS;

	if (r->event != NULL && strcmp(r->event, "redirect") == 0)
		M_ADD(&m->redirects[row][r->verdict != NULL &&
		    strcmp(r->verdict, "deny") == 0 ? 1 : 0], 1);
	else if ((unsigned)reason >= DC_REASON_COUNT)
		;       /* not a reason: no series to count it in */
	else if (r->proto != NULL && strcmp(r->proto, "http") == 0)
		M_ADD(&m->requests[row][event_index(r->event)][reason], 1);
	else
		M_ADD(&m->conns[row][event_index(r->event)][reason], 1);
	if (li < GW_METRICS_MAX_LISTENERS) {
		M_ADD(&m->bytes_in[li], r->bytes_in);
		M_ADD(&m->bytes_out[li], r->bytes_out);
		/* Both are 0 when no decision was made: nothing to observe. */
		if (hello_bytes > 0 || decide_us > 0) {
			M_ADD(&m->hello[li][bucket_of(hello_le,
			    GW_HELLO_BUCKETS - 1, hello_bytes)], 1);
			M_ADD(&m->hello_sum[li], hello_bytes);
			M_ADD(&m->decide[li][bucket_of(decide_le,
			    GW_DECIDE_BUCKETS - 1, decide_us)], 1);
			M_ADD(&m->decide_sum_us[li], decide_us);
		}
	}
	if (dns_us > 0) {
		M_ADD(&m->dns_lat[bucket_of(decide_le, GW_DECIDE_BUCKETS - 1,
		    dns_us)], 1);
		M_ADD(&m->dns_lat_sum_us, dns_us);
	}
	/* A connection has ended: its DNS work is over; publish it now so a
	 * scrape right after sees it. */
	gw_metrics_publish_dns(w);
}

const char *
gw_rule_verdict_str(enum gw_rule_verdict v)
{
	switch (v) {
	case GW_RULE_ALLOW:
		return "allow";
	case GW_RULE_DENY:
		return "deny";
	case GW_RULE_WOULD_DENY:
		return "would_deny";
	case GW_RULE_VERDICTS:
		break;
	}
	return "allow";
}

struct gw_rule_hits *
gw_rule_hits_new(void)
{
	return calloc(1, sizeof(struct gw_rule_hits));
}

void
gw_rule_hits_free(struct gw_rule_hits *t)
{
	if (t == NULL)
		return;
	for (uint32_t i = 0; i < t->n; i++)
		free(t->series[i]);
	free(t);
}

/* FNV-1a, over the key's parts. */
static uint32_t
rule_hash(uint32_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

/*
 * The series of (file, line, name, verdict): found, or made and published.
 * NULL when the table is full or out of memory.
 */
static struct gw_rule_series *
rule_series(struct gw_rule_hits *t, const char *file, size_t flen,
    unsigned line, const char *name, size_t nlen, enum gw_rule_verdict v)
{
	uint32_t h = 2166136261u, n, i;
	struct gw_rule_series *s;

	h = rule_hash(h, file, flen + 1);
	h = rule_hash(h, &line, sizeof(line));
	h = rule_hash(h, name, nlen + 1);
	h = rule_hash(h, &v, sizeof(v));
	/* At most half the slots are used: the probe ends at an empty one. */
	for (i = h & (GW_RULE_SLOTS - 1); t->slot[i] != 0;
	    i = (i + 1) & (GW_RULE_SLOTS - 1)) {
		s = t->series[t->slot[i] - 1];
		if (s->hash == h && s->line == line && s->verdict == v &&
		    strcmp(s->text, file) == 0 && strcmp(s->name, name) == 0)
			return s;
	}
	n = t->n;       /* only this thread writes it */
	if (n >= GW_RULE_SERIES_MAX)
		return NULL;
	s = malloc(sizeof(*s) + flen + 1 + nlen + 1);
	if (s == NULL)
		return NULL;
	s->hits = 0;
	s->hash = h;
	s->line = line;
	s->verdict = v;
	memcpy(s->text, file, flen + 1);
	memcpy(s->text + flen + 1, name, nlen + 1);
	s->name = s->text + flen + 1;
	t->series[n] = s;
	t->slot[i] = (uint16_t)(n + 1);
	__atomic_store_n(&t->n, n + 1, __ATOMIC_RELEASE);
	return s;
}

/* Count one hit of rule with verdict v. */
static void
rule_hit(struct gw_metrics *m, const struct pol_rule *rule,
    enum gw_rule_verdict v)
{
	struct gw_rule_series *s = NULL;
	const char *file = rule->file != NULL ? rule->file : "";
	const char *name = rule->name != NULL ? rule->name : "";
	size_t flen = strlen(file), nlen = strlen(name);

	if (m->rules != NULL && flen <= GW_RULE_TEXT_MAX &&
	    nlen <= GW_RULE_TEXT_MAX)
		s = rule_series(m->rules, file, flen, rule->line, name, nlen, v);
	if (s != NULL)
		M_ADD(&s->hits, 1);
	else
		M_ADD(&m->rule_unlabelled, 1);
}

void
gw_metrics_rule_hit(struct gw_worker *w, const struct log_record *r,
    const struct dc_verdict *v, enum dc_reason reason)
{
	struct gw_metrics *m = &w->metrics;

	if (v == NULL)
		return;
	if (r->would_deny) {
		/* Report mode let it through: the rule that admitted it (none
		 * when a report-mode policy relayed what no rule admits) and
		 * the report-mode rule that would have denied it. */
		if (v->rule != NULL)
			rule_hit(m, v->rule, GW_RULE_ALLOW);
		if (v->would_rule != NULL)
			rule_hit(m, v->would_rule, GW_RULE_WOULD_DENY);
		return;
	}
	if (v->rule == NULL)
		return;
	/* The policy's verdict, not how the line ended: a connection whose
	 * DNS lookup failed, or whose address the guard refused, was still
	 * admitted by its rule. An allow rule that matched the name but not
	 * the port (port_not_allowed, also after a reload) denied it. */
	rule_hit(m, v->rule, v->rule->action == POL_DENY ||
	    reason == DC_PORT_NOT_ALLOWED || reason == DC_POLICY_REVOKED ?
	    GW_RULE_DENY : GW_RULE_ALLOW);
}

void
gw_metrics_accepted(struct gw_worker *w, const struct gw_listener *l)
{
	size_t li = (size_t)(l - w->listeners);

	if (li < GW_METRICS_MAX_LISTENERS)
		M_ADD(&w->metrics.accepted[li], 1);
}

void
gw_metrics_active(struct gw_worker *w, unsigned nconns)
{
	M_SET(&w->metrics.active, (uint64_t)nconns);
}

void
gw_metrics_ech(struct gw_worker *w, unsigned li)
{
	if (li < GW_METRICS_MAX_LISTENERS)
		M_ADD(&w->metrics.ech[li], 1);
}

void
gw_metrics_accept_pause(struct gw_worker *w)
{
	M_ADD(&w->metrics.accept_pauses, 1);
}

void
gw_metrics_interim(struct gw_worker *w)
{
	M_ADD(&w->metrics.interims, 1);
}

void
gw_metrics_publish_dns(struct gw_worker *w)
{
	struct dns_stats st;
	struct dns_stats *d = &w->metrics.dns;

	if (w->dns == NULL)
		return;
	dns_resolver_stats(w->dns, &st);
	M_SET(&d->queries, st.queries);
	M_SET(&d->hits, st.hits);
	M_SET(&d->misses, st.misses);
	M_SET(&d->failures, st.failures);
	M_SET(&d->negative, st.negative);
	M_SET(&d->stale, st.stale);
}

/* ---- the reader: main thread ------------------------------------------ */

struct render {
	struct evbuffer *out;
	int failed;
};

static void
put(struct render *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct render *rd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (evbuffer_add_vprintf(rd->out, fmt, ap) < 0)
		rd->failed = 1;
	va_end(ap);
}

static void
head(struct render *rd, const char *name, const char *type, const char *help)
{
	put(rd, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * A label value: backslash, double quote and newline escaped, as the text
 * format wants. Label values must be UTF-8 (a file name need not be): a
 * byte that is not part of valid UTF-8, and any other control character,
 * becomes U+FFFD, so one odd file name cannot make the scrape fail.
 */
static void
put_label(struct render *rd, const char *v)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t left = strlen(v), used;
	char unit[6];

	while (left > 0) {
		size_t n = log_json_escape_char(p, left, unit, &used);

		if (*p == '\\')
			put(rd, "\\\\");
		else if (*p == '"')
			put(rd, "\\\"");
		else if (*p == '\n')
			put(rd, "\\n");
		else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && used == 1))
			put(rd, "\xef\xbf\xbd");
		else
			put(rd, "%.*s", (int)n, unit);
		p += used;
		left -= used;
	}
}

/* name{listener="x"<more>} value */
static void
put_listener_sample(struct render *rd, const char *name, const char *listener,
    const char *more, uint64_t v)
{
	put(rd, "%s{listener=\"", name);
	put_label(rd, listener);
	put(rd, "\"%s} %" PRIu64 "\n", more, v);
}

/* Microseconds as seconds, six decimals, without floating point. */
static void
put_seconds(struct render *rd, uint64_t us)
{
	put(rd, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
}

static void
simple(struct render *rd, const char *name, const char *type,
    const char *help, uint64_t v)
{
	head(rd, name, type, help);
	put(rd, "%s %" PRIu64 "\n", name, v);
}

/* Open descriptors, from /proc/self/fd; -1 when that cannot be read. */
static int64_t
open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	int64_t n = 0;

	if (dir == NULL)
		return -1;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n > 0 ? n - 1 : 0;       /* not the one opendir holds */
}

/*
 * /proc/self/stat, the fields the process_* metrics need (proc(5)): after
 * "pid (comm) ", where comm may hold spaces and parentheses, so the last
 * ')' ends it, come state (field 3) ... utime (14) and stime (15) in clock
 * ticks, starttime (22) in ticks since boot, vsize (23) in bytes and rss
 * (24) in pages. The fields are those of the whole process, every thread.
 */
struct proc_stat {
	uint64_t utime, stime, starttime, vsize, rss;
};

static int
read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	size_t off = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (off < len - 1) {
		n = read(fd, buf + off, len - 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	return off > 0 ? 0 : -1;
}

static int
proc_stat(struct proc_stat *ps)
{
	char buf[1024], *p, *end;
	unsigned field;
	uint64_t v;

	if (read_file("/proc/self/stat", buf, sizeof(buf)) != 0)
		return -1;
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return -1;
	p += 2;
	/* Field 3, the state, is a letter; the rest are numbers. */
	while (*p != ' ' && *p != '\0')
		p++;
	memset(ps, 0, sizeof(*ps));
	for (field = 4; field <= 24; field++) {
		if (*p != ' ')
			return -1;
		p++;
		errno = 0;
		v = strtoull(p, &end, 10);
		if (end == p || errno != 0)
			return -1;
		p = end;
		if (field == 14)
			ps->utime = v;
		else if (field == 15)
			ps->stime = v;
		else if (field == 22)
			ps->starttime = v;
		else if (field == 23)
			ps->vsize = v;
		else if (field == 24)
			ps->rss = v;
	}
	return 0;
}

/* The boot time, seconds since the epoch: /proc/stat's "btime" line,
 * read a piece at a time (the "intr" line before it can be long). */
static int
boot_time(uint64_t *out)
{
	FILE *f = fopen("/proc/stat", "re");
	char line[256], *end;
	int at_start = 1, rc = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (at_start && strncmp(line, "btime ", 6) == 0) {
			errno = 0;
			*out = strtoull(line + 6, &end, 10);
			rc = end == line + 6 || errno != 0 ? -1 : 0;
			break;
		}
		at_start = strchr(line, '\n') != NULL;
	}
	fclose(f);
	return rc;
}

/*
 * The process_* metrics every Prometheus client library exports, with
 * their usual names and meaning. A value that cannot be read is left out,
 * as the client libraries do, rather than written as 0.
 */
static void
render_process(struct render *rd, const struct gw_status *st)
{
	struct proc_stat ps;
	struct rlimit rl;
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	int have_stat = proc_stat(&ps) == 0 && hz > 0 && page > 0;
	int64_t fds = open_fds();
	uint64_t btime;

	if (have_stat) {
		head(rd, "process_cpu_seconds_total", "counter", "Total user and "
		    "system CPU time spent in seconds.");
		put(rd, "process_cpu_seconds_total ");
		put_seconds(rd, (ps.utime + ps.stime) * 1000000 / (uint64_t)hz);
		put(rd, "\n");
	}
	if (fds >= 0)
		simple(rd, "process_open_fds", "gauge", "Number of open file "
		    "descriptors.", (uint64_t)fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		simple(rd, "process_max_fds", "gauge", "Maximum number of open "
		    "file descriptors.", rl.rlim_cur == RLIM_INFINITY ?
		    UINT64_MAX : (uint64_t)rl.rlim_cur);
	if (have_stat) {
		simple(rd, "process_virtual_memory_bytes", "gauge", "Virtual "
		    "memory size in bytes.", ps.vsize);
		simple(rd, "process_resident_memory_bytes", "gauge", "Resident "
		    "memory size in bytes.", ps.rss * (uint64_t)page);
	}
	head(rd, "process_start_time_seconds", "gauge", "Start time of the "
	    "process since unix epoch in seconds.");
	put(rd, "process_start_time_seconds ");
	/* The kernel's own record; the daemon's clock at start if /proc
	 * cannot say (a few milliseconds later than the exec). */
	if (have_stat && boot_time(&btime) == 0)
		put_seconds(rd, btime * 1000000 +
		    ps.starttime * 1000000 / (uint64_t)hz);
	else
		put_seconds(rd, st->start_us);
	put(rd, "\n");
}

/* The listener label of row li (the last row: lines with no listener). */
static const char *
row_label(const struct gw_config *cfg, size_t li)
{
	return li < cfg->nlisteners ? cfg->listeners[li].name : "unknown";
}

static int
row_skipped(const struct gw_config *cfg, size_t li)
{
	return li >= cfg->nlisteners && li < GW_METRICS_MAX_LISTENERS;
}

/* Every worker's lines of one kind (offset: conns or requests), summed:
 * one series per listener, event and reason seen. */
static void
render_lines(struct render *rd, const struct gw_status *st, const char *name,
    const char *help, size_t offset)
{
	const struct gw_config *cfg = st->cfg;

	head(rd, name, "counter", help);
	for (size_t li = 0; li <= GW_METRICS_MAX_LISTENERS; li++) {
		if (row_skipped(cfg, li))
			continue;
		for (unsigned ev = 0; ev < GW_METRICS_EVENTS; ev++) {
			for (unsigned r = 0; r < DC_REASON_COUNT; r++) {
				uint64_t v = 0;

				for (size_t i = 0; i < st->nworkers; i++) {
					const uint64_t (*a)[GW_METRICS_EVENTS]
					    [DC_REASON_COUNT] = (const void *)
					    ((const char *)&st->workers[i]->metrics +
					    offset);

					v += M_GET(&a[li][ev][r]);
				}
				if (v == 0)
					continue;
				put(rd, "%s{listener=\"", name);
				put_label(rd, row_label(cfg, li));
				put(rd, "\",event=\"");
				put_label(rd, dc_event_str((enum dc_event)ev));
				put(rd, "\",reason=\"");
				put_label(rd, dc_reason_str((enum dc_reason)r));
				put(rd, "\"} %" PRIu64 "\n", v);
			}
		}
	}
}

static void
render_redirects(struct render *rd, const struct gw_status *st)
{
	static const char *const verdicts[GW_METRICS_VERDICTS] = {
		"allow", "deny",
	};
	const struct gw_config *cfg = st->cfg;

	head(rd, "egressd_redirects_total", "counter", "Redirect lines "
	    "written (a 3xx with a Location passed through), by listener and "
	    "the policy's verdict on the target.");
	for (size_t li = 0; li <= GW_METRICS_MAX_LISTENERS; li++) {
		if (row_skipped(cfg, li))
			continue;
		for (unsigned k = 0; k < GW_METRICS_VERDICTS; k++) {
			uint64_t v = 0;

			for (size_t i = 0; i < st->nworkers; i++)
				v += M_GET(&st->workers[i]->metrics.redirects[li][k]);
			if (v == 0)
				continue;
			put(rd, "egressd_redirects_total{listener=\"");
			put_label(rd, row_label(cfg, li));
			put(rd, "\",verdict=\"%s\"} %" PRIu64 "\n", verdicts[k], v);
		}
	}
}

static void
render_connections(struct render *rd, const struct gw_status *st)
{
	render_lines(rd, st, "egressd_connections_total", "Connection lines "
	    "written, one per TLS connection and per CONNECT tunnel (plus "
	    "accept failures), by listener, event and reason as in the log. "
	    "HTTP requests and redirects have series of their own.",
	    offsetof(struct gw_metrics, conns));
	simple(rd, "egressd_connections_unlabelled_total", "counter",
	    "Always 0: every line has its series (kept for dashboards that "
	    "read it).", 0);
	render_lines(rd, st, "egressd_http_requests_total", "HTTP request "
	    "lines written (proto http: one per request of a connection), by "
	    "listener, event and reason as in the log.",
	    offsetof(struct gw_metrics, requests));
	render_redirects(rd, st);
}

static void
render_per_listener(struct render *rd, const struct gw_status *st,
    const char *name, const char *help, size_t offset)
{
	const struct gw_config *cfg = st->cfg;

	head(rd, name, "counter", help);
	for (size_t li = 0; li < cfg->nlisteners; li++) {
		uint64_t v = 0;

		for (size_t i = 0; i < st->nworkers; i++) {
			const uint64_t *arr = (const uint64_t *)(const void *)
			    ((const char *)&st->workers[i]->metrics + offset);

			v += M_GET(&arr[li]);
		}
		put_listener_sample(rd, name, cfg->listeners[li].name, "", v);
	}
}

static void
render_hello(struct render *rd, const struct gw_status *st)
{
	const struct gw_config *cfg = st->cfg;
	const char *name = "egressd_client_hello_size_bytes";

	head(rd, name, "histogram", "Size of the ClientHello each decision "
	    "was made on, bytes (record headers included).");
	for (size_t li = 0; li < cfg->nlisteners; li++) {
		uint64_t b[GW_HELLO_BUCKETS] = { 0 }, sum = 0, cum = 0;
		char more[64];

		for (size_t i = 0; i < st->nworkers; i++) {
			const struct gw_metrics *m = &st->workers[i]->metrics;

			for (size_t k = 0; k < GW_HELLO_BUCKETS; k++)
				b[k] += M_GET(&m->hello[li][k]);
			sum += M_GET(&m->hello_sum[li]);
		}
		for (size_t k = 0; k < GW_HELLO_BUCKETS; k++) {
			cum += b[k];
			snprintf(more, sizeof(more), ",le=\"%s\"",
			    hello_le_text[k]);
			put_listener_sample(rd, "egressd_client_hello_size_bytes_bucket",
			    cfg->listeners[li].name, more, cum);
		}
		put_listener_sample(rd, "egressd_client_hello_size_bytes_sum",
		    cfg->listeners[li].name, "", sum);
		put_listener_sample(rd, "egressd_client_hello_size_bytes_count",
		    cfg->listeners[li].name, "", cum);
	}
}

static void
render_decide(struct render *rd, const struct gw_status *st)
{
	const struct gw_config *cfg = st->cfg;

	head(rd, "egressd_decision_duration_seconds", "histogram",
	    "Time from accept to the policy decision, seconds (mostly waiting "
	    "for the client's ClientHello).");
	for (size_t li = 0; li < cfg->nlisteners; li++) {
		uint64_t b[GW_DECIDE_BUCKETS] = { 0 }, sum = 0, cum = 0;
		char more[64];

		for (size_t i = 0; i < st->nworkers; i++) {
			const struct gw_metrics *m = &st->workers[i]->metrics;

			for (size_t k = 0; k < GW_DECIDE_BUCKETS; k++)
				b[k] += M_GET(&m->decide[li][k]);
			sum += M_GET(&m->decide_sum_us[li]);
		}
		for (size_t k = 0; k < GW_DECIDE_BUCKETS; k++) {
			cum += b[k];
			snprintf(more, sizeof(more), ",le=\"%s\"",
			    decide_le_text[k]);
			put_listener_sample(rd,
			    "egressd_decision_duration_seconds_bucket",
			    cfg->listeners[li].name, more, cum);
		}
		put(rd, "egressd_decision_duration_seconds_sum{listener=\"");
		put_label(rd, cfg->listeners[li].name);
		put(rd, "\"} ");
		put_seconds(rd, sum);
		put(rd, "\n");
		put_listener_sample(rd, "egressd_decision_duration_seconds_count",
		    cfg->listeners[li].name, "", cum);
	}
}

static void
render_dns_latency(struct render *rd, const struct gw_status *st)
{
	uint64_t b[GW_DECIDE_BUCKETS] = { 0 }, sum = 0, cum = 0;
	const char *name = "egressd_dns_lookup_duration_seconds";

	head(rd, name, "histogram", "Time a connection waited for its DNS "
	    "lookup, seconds (answers from the cache are not counted).");
	for (size_t i = 0; i < st->nworkers; i++) {
		const struct gw_metrics *m = &st->workers[i]->metrics;

		for (size_t k = 0; k < GW_DECIDE_BUCKETS; k++)
			b[k] += M_GET(&m->dns_lat[k]);
		sum += M_GET(&m->dns_lat_sum_us);
	}
	for (size_t k = 0; k < GW_DECIDE_BUCKETS; k++) {
		cum += b[k];
		put(rd, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name,
		    decide_le_text[k], cum);
	}
	put(rd, "%s_sum ", name);
	put_seconds(rd, sum);
	put(rd, "\n%s_count %" PRIu64 "\n", name, cum);
}

static void
render_dns(struct render *rd, const struct gw_status *st)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} dm[] = {
		{ "egressd_dns_queries_total", "Lookups sent to DNS (an A "
		    "and/or AAAA query each; concurrent lookups of a name "
		    "share one).", offsetof(struct dns_stats, queries) },
		{ "egressd_dns_cache_hits_total", "Lookups answered from the "
		    "DNS cache (fresh entries).", offsetof(struct dns_stats, hits) },
		{ "egressd_dns_cache_misses_total", "Lookups the DNS cache "
		    "could not answer.", offsetof(struct dns_stats, misses) },
		{ "egressd_dns_failures_total", "Lookups that failed or timed "
		    "out (whether or not a stale answer stood in).",
		    offsetof(struct dns_stats, failures) },
		{ "egressd_dns_negative_total", "Lookups answered NXDOMAIN by "
		    "DNS.", offsetof(struct dns_stats, negative) },
		{ "egressd_dns_stale_answers_total", "Failed lookups answered "
		    "with an expired cache entry.", offsetof(struct dns_stats, stale) },
	};

	for (size_t k = 0; k < sizeof(dm) / sizeof(dm[0]); k++) {
		uint64_t v = 0;

		for (size_t i = 0; i < st->nworkers; i++) {
			const uint64_t *p = (const uint64_t *)(const void *)
			    ((const char *)&st->workers[i]->metrics.dns + dm[k].off);

			v += M_GET(p);
		}
		simple(rd, dm[k].name, "counter", dm[k].help, v);
	}
}

/* ---- rule hits ------------------------------------------------------- */

struct hit_row {
	const struct gw_rule_series *s;
	uint64_t hits;
};

/* (file, line, name) of a series against a rule of the running policy. */
static int
key_cmp(const char *fa, unsigned la, const char *na, const char *fb,
    unsigned lb, const char *nb)
{
	int c = strcmp(fa, fb);

	if (c != 0)
		return c;
	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(na, nb);
}

static const char *
or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static int
row_cmp(const void *a, const void *b)
{
	const struct gw_rule_series *x = ((const struct hit_row *)a)->s;
	const struct gw_rule_series *y = ((const struct hit_row *)b)->s;
	int c = key_cmp(x->text, x->line, x->name, y->text, y->line, y->name);

	if (c != 0)
		return c;
	return (int)x->verdict - (int)y->verdict;
}

static int
rule_cmp(const void *a, const void *b)
{
	const struct pol_rule *x = *(const struct pol_rule *const *)a;
	const struct pol_rule *y = *(const struct pol_rule *const *)b;

	return key_cmp(or_empty(x->file), x->line, or_empty(x->name),
	    or_empty(y->file), y->line, or_empty(y->name));
}

static int
row_rule_cmp(const void *key, const void *elem)
{
	const struct gw_rule_series *x = key;
	const struct pol_rule *y = *(const struct pol_rule *const *)elem;

	return key_cmp(x->text, x->line, x->name, or_empty(y->file), y->line,
	    or_empty(y->name));
}

/*
 * egressd_rule_hits_total: every worker's series, summed by key, for the
 * rules of the running policy only (a reload that removes or moves a rule
 * ends its series), in file, line, name and verdict order.
 */
static void
render_rules(struct render *rd, const struct gw_status *st)
{
	struct hit_row *rows = NULL;
	const struct pol_rule **rules = NULL;
	uint32_t *counts = NULL;
	size_t nrows = 0, cap = 0, nrules = pol_snapshot_rule_count(st->snap);
	uint64_t unlabelled = 0;

	head(rd, "egressd_rule_hits_total", "counter", "Connection and HTTP "
	    "request lines that named a rule of the running policy, by the "
	    "rule (file:line and name, as the log's rule and rule_name) and "
	    "what it decided (allow, deny, would_deny).");
	counts = calloc(st->nworkers + 1, sizeof(*counts));
	if (counts == NULL) {
		rd->failed = 1;
		goto out;
	}
	/* Each worker's published series, counted once: a series published
	 * meanwhile waits for the next scrape, in every sum alike. */
	for (size_t i = 0; i < st->nworkers; i++) {
		const struct gw_metrics *m = &st->workers[i]->metrics;

		unlabelled += M_GET(&m->rule_unlabelled);
		if (m->rules != NULL)
			counts[i] = __atomic_load_n(&m->rules->n, __ATOMIC_ACQUIRE);
		cap += counts[i];
	}
	if (cap == 0 || nrules == 0)
		goto out;
	rows = calloc(cap, sizeof(*rows));
	rules = calloc(nrules, sizeof(*rules));
	if (rows == NULL || rules == NULL) {
		rd->failed = 1;
		goto out;
	}
	for (size_t i = 0; i < st->nworkers; i++) {
		const struct gw_rule_hits *t = st->workers[i]->metrics.rules;

		for (uint32_t k = 0; k < counts[i]; k++) {
			rows[nrows].s = t->series[k];
			rows[nrows++].hits = M_GET(&t->series[k]->hits);
		}
	}
	for (size_t k = 0; k < nrules; k++)
		rules[k] = pol_snapshot_rule(st->snap, k);
	qsort(rules, nrules, sizeof(*rules), rule_cmp);
	qsort(rows, nrows, sizeof(*rows), row_cmp);
	for (size_t k = 0, e; k < nrows; k = e) {
		const struct gw_rule_series *s = rows[k].s;
		uint64_t v = 0;

		/* The same key from every worker, summed. */
		for (e = k; e < nrows && row_cmp(&rows[k], &rows[e]) == 0; e++)
			v += rows[e].hits;
		if (v == 0 || bsearch(s, rules, nrules, sizeof(*rules),
		    row_rule_cmp) == NULL)
			continue;
		put(rd, "egressd_rule_hits_total{rule=\"");
		put_label(rd, s->text);
		put(rd, ":%u\",rule_name=\"", s->line);
		put_label(rd, s->name);
		put(rd, "\",verdict=\"%s\"} %" PRIu64 "\n",
		    gw_rule_verdict_str(s->verdict), v);
	}
out:
	free(counts);
	free(rows);
	free(rules);
	simple(rd, "egressd_rule_hits_unlabelled_total", "counter", "Rule hits "
	    "not in egressd_rule_hits_total: a worker already had "
	    STRINGIFY(GW_RULE_SERIES_MAX) " series, or the rule's file or name "
	    "is longer than " STRINGIFY(GW_RULE_TEXT_MAX) " bytes.", unlabelled);
}

/* The daemon itself: version, start, readiness, workers. */
static void
render_daemon(struct render *rd, const struct gw_status *st)
{
	head(rd, "egressd_build_info", "gauge", "Always 1; the version "
	    "is a label.");
	put(rd, "egressd_build_info{version=\"");
	put_label(rd, PACKAGE_VERSION);
	put(rd, "\"} 1\n");
	head(rd, "egressd_start_time_seconds", "gauge",
	    "When the daemon started, seconds since the epoch.");
	put(rd, "egressd_start_time_seconds ");
	put_seconds(rd, st->start_us);
	put(rd, "\n");
	simple(rd, "egressd_ready", "gauge", "1 when /ready answers 200: "
	    "policy loaded, listeners up, not draining.",
	    st->ready && !st->draining);
	simple(rd, "egressd_draining", "gauge", "1 after SIGTERM: "
	    "readiness is 503 and the daemon is on its way out.",
	    (uint64_t)st->draining);
	simple(rd, "egressd_workers", "gauge", "Worker threads.",
	    (uint64_t)st->nworkers);
}

/* Connections and bytes, by listener, and what is open now. */
static void
render_traffic(struct render *rd, const struct gw_status *st)
{
	uint64_t active = 0;

	for (size_t i = 0; i < st->nworkers; i++)
		active += M_GET(&st->workers[i]->metrics.active);
	render_connections(rd, st);
	render_per_listener(rd, st, "egressd_connections_accepted_total",
	    "Connections accepted, by listener.",
	    offsetof(struct gw_metrics, accepted));
	simple(rd, "egressd_connections_active", "gauge",
	    "Client connections open now (lingering denials included).", active);
	simple(rd, "egressd_max_connections", "gauge",
	    "The max_connections setting.", (uint64_t)st->cfg->max_connections);
	render_per_listener(rd, st, "egressd_client_hello_ech_total",
	    "ClientHellos that offered Encrypted Client Hello (the name decided "
	    "on is the outer one), by listener; GREASE ECH counts too.",
	    offsetof(struct gw_metrics, ech));
	render_per_listener(rd, st, "egressd_bytes_received_total",
	    "Bytes received from clients, by listener, counted when each "
	    "connection ends.", offsetof(struct gw_metrics, bytes_in));
	render_per_listener(rd, st, "egressd_bytes_sent_total",
	    "Bytes sent to clients, by listener, counted when each connection "
	    "ends.", offsetof(struct gw_metrics, bytes_out));
}

/* Accept pauses, interim lines, refused admin connections, descriptors. */
static void
render_limits(struct render *rd, const struct gw_status *st)
{
	uint64_t pauses = 0, interims = 0;
	int64_t fds;

	for (size_t i = 0; i < st->nworkers; i++) {
		pauses += M_GET(&st->workers[i]->metrics.accept_pauses);
		interims += M_GET(&st->workers[i]->metrics.interims);
	}
	simple(rd, "egressd_accept_pauses_total", "counter", "Times a worker "
	    "stopped accepting: at its share of max_connections or out of "
	    "descriptors (the overloaded log line).", pauses);
	simple(rd, "egressd_interim_lines_total", "counter", "Interim lines "
	    "written for connections still open (log.interim_interval); not "
	    "counted in egressd_connections_total.", interims);
	simple(rd, "egressd_admin_connections_refused_total", "counter",
	    "Admin connections closed at once: admin.max_connections were open.",
	    st->admin_refused);
	fds = open_fds();
	simple(rd, "egressd_open_files", "gauge", "Open file descriptors "
	    "(as process_open_fds).", fds > 0 ? (uint64_t)fds : 0);
	simple(rd, "egressd_open_files_limit", "gauge", "RLIMIT_NOFILE (soft) "
	    "as set at start.", st->nofile_limit);
}

/* Reloads, the running policy, and each rule's hits. */
static void
render_policy(struct render *rd, const struct gw_status *st)
{
	head(rd, "egressd_policy_reloads_total", "counter",
	    "Policy reloads (SIGHUP or files changed), by result.");
	put(rd, "egressd_policy_reloads_total{result=\"ok\"} %" PRIu64 "\n",
	    st->reloads_ok);
	put(rd, "egressd_policy_reloads_total{result=\"failed\"} %" PRIu64 "\n",
	    st->reloads_failed);
	simple(rd, "egressd_policy_generation", "gauge", "Generation of the "
	    "running policy (0 at start, +1 per successful reload).",
	    st->generation);
	simple(rd, "egressd_policy_rules", "gauge", "Rules (host patterns) "
	    "in the running policy.", (uint64_t)pol_snapshot_rule_count(st->snap));
	simple(rd, "egressd_config_last_reload_successful", "gauge", "1 when "
	    "the last reload worked (or none was tried: the policy loaded at "
	    "start), 0 when it failed and an older policy is running.",
	    (uint64_t)(st->last_reload_ok != 0));
	simple(rd, "egressd_config_file_changed", "gauge", "1 when, at the "
	    "last reload, the configuration file differed from the one "
	    "egressd started with (read at start only: restart to apply it).",
	    (uint64_t)(st->config_changed != 0));
	head(rd, "egressd_config_last_reload_success_timestamp_seconds",
	    "gauge", "When the running policy was loaded (at start or by the "
	    "last successful reload), seconds since the epoch.");
	put(rd, "egressd_config_last_reload_success_timestamp_seconds ");
	put_seconds(rd, st->policy_loaded_us);
	put(rd, "\n");
	render_rules(rd, st);
}

/* The log's lines and failures; the evidence file's, when there is one. */
static void
render_log(struct render *rd, const struct gw_status *st)
{
	struct log_sink_stats ls;
	struct evid_stats es;

	log_sink_stats(st->log, &ls);
	simple(rd, "egressd_log_lines_total", "counter", "Log lines written "
	    "(connection lines and notices).", ls.lines);
	simple(rd, "egressd_log_write_failures_total", "counter", "Log lines "
	    "that could not be written.", ls.failures);
	if (st->shared == NULL || st->shared->evidence == NULL)
		return;
	evid_stats(st->shared->evidence, &es);
	simple(rd, "egressd_evidence_records_total", "counter",
	    "Denied connections written to the evidence pcap.", es.records);
	simple(rd, "egressd_evidence_dropped_total", "counter",
	    "Denied connections not written: the evidence queue was full.",
	    es.dropped);
	simple(rd, "egressd_evidence_failures_total", "counter",
	    "Denied connections not written: the file could not be written.",
	    es.failures);
	simple(rd, "egressd_evidence_rotations_total", "counter",
	    "Evidence files rotated.", es.rotations);
}

int
gw_metrics_render(const struct gw_status *st, struct evbuffer *out)
{
	struct render rd = { out, 0 };

	render_daemon(&rd, st);
	render_traffic(&rd, st);
	render_hello(&rd, st);
	render_decide(&rd, st);
	render_dns_latency(&rd, st);
	render_limits(&rd, st);
	render_dns(&rd, st);
	render_process(&rd, st);
	render_policy(&rd, st);
	render_log(&rd, st);
	return rd.failed ? -1 : 0;
}

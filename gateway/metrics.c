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
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void
gw_metrics_conn(struct gw_worker *w, const struct log_record *r,
    enum dc_reason reason, uint32_t hello_bytes, uint32_t decide_us, uint32_t dns_us)
{
	struct gw_metrics *m = &w->metrics;
	unsigned li = listener_index(w, r->listener);
	unsigned ev = r->event != NULL && r->event[0] == 'r' ?
	    GW_METRICS_REDIRECT : r->event != NULL && r->event[0] == 'd' ?
	    DC_EV_DENY : r->event != NULL && r->event[0] == 'e' ? DC_EV_ERROR :
	    DC_EV_ALLOW;

	if ((unsigned)reason < DC_REASON_COUNT)
		M_ADD(&m->lines[li < GW_METRICS_MAX_LISTENERS ? li :
		    GW_METRICS_MAX_LISTENERS][ev][reason], 1);
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

/* A label value: backslash, double quote and newline escaped. */
static void
put_label(struct render *rd, const char *v)
{
	const char *p;

	for (p = v; *p != '\0'; p++) {
		if (*p == '\\')
			put(rd, "\\\\");
		else if (*p == '"')
			put(rd, "\\\"");
		else if (*p == '\n')
			put(rd, "\\n");
		else
			put(rd, "%c", *p);
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

/* Open descriptors, from /proc/self/fd; 0 when that cannot be read. */
static uint64_t
open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *de;
	uint64_t n = 0;

	if (dir == NULL)
		return 0;
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n > 0 ? n - 1 : 0;       /* not the one opendir holds */
}

static const char *
event_label(unsigned ev)
{
	return ev == GW_METRICS_REDIRECT ? "redirect" :
	    dc_event_str((enum dc_event)ev);
}

/* Every worker's lines, summed: one series per listener, event and reason
 * seen. */
static void
render_connections(struct render *rd, const struct gw_status *st)
{
	const struct gw_config *cfg = st->cfg;

	head(rd, "egressd_connections_total", "counter",
	    "Connection log lines written (one per connection, plus accept "
	    "failures), by listener, event and reason as in the log.");
	for (size_t li = 0; li <= GW_METRICS_MAX_LISTENERS; li++) {
		const char *lname = li < cfg->nlisteners ?
		    cfg->listeners[li].name : "unknown";

		if (li >= cfg->nlisteners && li < GW_METRICS_MAX_LISTENERS)
			continue;
		for (unsigned ev = 0; ev < GW_METRICS_EVENTS; ev++) {
			for (unsigned r = 0; r < DC_REASON_COUNT; r++) {
				uint64_t v = 0;

				for (size_t i = 0; i < st->nworkers; i++)
					v += M_GET(&st->workers[i]->metrics.lines[li][ev][r]);
				if (v == 0)
					continue;
				put(rd, "egressd_connections_total{listener=\"");
				put_label(rd, lname);
				put(rd, "\",event=\"");
				put_label(rd, event_label(ev));
				put(rd, "\",reason=\"");
				put_label(rd, dc_reason_str((enum dc_reason)r));
				put(rd, "\"} %" PRIu64 "\n", v);
			}
		}
	}
	simple(rd, "egressd_connections_unlabelled_total", "counter",
	    "Always 0: every line has its series (kept for dashboards that "
	    "read it).", 0);
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

int
gw_metrics_render(const struct gw_status *st, struct evbuffer *out)
{
	struct render rd = { out, 0 };
	struct log_sink_stats ls;
	uint64_t active = 0, pauses = 0;

	for (size_t i = 0; i < st->nworkers; i++) {
		active += M_GET(&st->workers[i]->metrics.active);
		pauses += M_GET(&st->workers[i]->metrics.accept_pauses);
	}

	head(&rd, "egressd_build_info", "gauge", "Always 1; the version "
	    "is a label.");
	put(&rd, "egressd_build_info{version=\"");
	put_label(&rd, PACKAGE_VERSION);
	put(&rd, "\"} 1\n");
	head(&rd, "egressd_start_time_seconds", "gauge",
	    "When the daemon started, seconds since the epoch.");
	put(&rd, "egressd_start_time_seconds ");
	put_seconds(&rd, st->start_us);
	put(&rd, "\n");
	simple(&rd, "egressd_ready", "gauge", "1 when /ready answers 200: "
	    "policy loaded, listeners up, not draining.",
	    st->ready && !st->draining);
	simple(&rd, "egressd_draining", "gauge", "1 after SIGTERM: "
	    "readiness is 503 and the daemon is on its way out.",
	    (uint64_t)st->draining);
	simple(&rd, "egressd_workers", "gauge", "Worker threads.",
	    (uint64_t)st->nworkers);

	render_connections(&rd, st);
	render_per_listener(&rd, st, "egressd_connections_accepted_total",
	    "Connections accepted, by listener.",
	    offsetof(struct gw_metrics, accepted));
	simple(&rd, "egressd_connections_active", "gauge",
	    "Client connections open now (lingering denials included).", active);
	simple(&rd, "egressd_max_connections", "gauge",
	    "The max_connections setting.", (uint64_t)st->cfg->max_connections);
	render_per_listener(&rd, st, "egressd_client_hello_ech_total",
	    "ClientHellos that offered Encrypted Client Hello (the name decided "
	    "on is the outer one), by listener; GREASE ECH counts too.",
	    offsetof(struct gw_metrics, ech));
	render_per_listener(&rd, st, "egressd_bytes_received_total",
	    "Bytes received from clients, by listener, counted when each "
	    "connection ends.", offsetof(struct gw_metrics, bytes_in));
	render_per_listener(&rd, st, "egressd_bytes_sent_total",
	    "Bytes sent to clients, by listener, counted when each connection "
	    "ends.", offsetof(struct gw_metrics, bytes_out));
	render_hello(&rd, st);
	render_decide(&rd, st);
	render_dns_latency(&rd, st);
	simple(&rd, "egressd_accept_pauses_total", "counter", "Times a worker "
	    "stopped accepting: at its share of max_connections or out of "
	    "descriptors (the overloaded log line).", pauses);
	simple(&rd, "egressd_admin_connections_refused_total", "counter",
	    "Admin connections closed at once: admin.max_connections were open.",
	    st->admin_refused);
	simple(&rd, "egressd_open_files", "gauge", "Open file descriptors.",
	    open_fds());
	simple(&rd, "egressd_open_files_limit", "gauge", "RLIMIT_NOFILE (soft) "
	    "as set at start.", st->nofile_limit);

	render_dns(&rd, st);

	head(&rd, "egressd_policy_reloads_total", "counter",
	    "Policy reloads (SIGHUP or files changed), by result.");
	put(&rd, "egressd_policy_reloads_total{result=\"ok\"} %" PRIu64 "\n",
	    st->reloads_ok);
	put(&rd, "egressd_policy_reloads_total{result=\"failed\"} %" PRIu64 "\n",
	    st->reloads_failed);
	simple(&rd, "egressd_policy_generation", "gauge", "Generation of the "
	    "running policy (0 at start, +1 per successful reload).",
	    st->generation);
	simple(&rd, "egressd_policy_rules", "gauge", "Rules (host patterns) "
	    "in the running policy.", (uint64_t)pol_snapshot_rule_count(st->snap));

	log_sink_stats(st->log, &ls);
	simple(&rd, "egressd_log_lines_total", "counter", "Log lines written "
	    "(connection lines and notices).", ls.lines);
	simple(&rd, "egressd_log_write_failures_total", "counter", "Log lines "
	    "that could not be written.", ls.failures);
	if (st->shared != NULL && st->shared->evidence != NULL) {
		struct evid_stats es;

		evid_stats(st->shared->evidence, &es);
		simple(&rd, "egressd_evidence_records_total", "counter",
		    "Denied connections written to the evidence pcap.", es.records);
		simple(&rd, "egressd_evidence_dropped_total", "counter",
		    "Denied connections not written: the evidence queue was full.",
		    es.dropped);
		simple(&rd, "egressd_evidence_failures_total", "counter",
		    "Denied connections not written: the file could not be "
		    "written.", es.failures);
		simple(&rd, "egressd_evidence_rotations_total", "counter",
		    "Evidence files rotated.", es.rotations);
	}
	return rd.failed ? -1 : 0;
}

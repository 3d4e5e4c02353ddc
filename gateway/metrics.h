/*
 * metrics: what each worker counts for itself, and the Prometheus text
 * exposition (format 0.0.4) that sums the workers when scraped.
 *
 * Nothing is locked on the connection path. Each worker's struct gw_metrics
 * is written only by that worker's thread, with relaxed atomic stores (a
 * load, an add and a store: there is one writer, so no read-modify-write
 * instruction is needed), and read by the main thread with atomic loads
 * when someone scrapes.
 * DNS counters belong to the worker's resolver; the worker copies them
 * into its struct after each connection and once a second.
 * Rule hits are series made on the connection path: each is filled in,
 * then published by a release store of the table's count, which the
 * scraper loads with acquire; a series is never changed or freed while
 * the worker lives, so the scraper may read it without a lock.
 */
#ifndef EGRESSD_GW_METRICS_H
#define EGRESSD_GW_METRICS_H

#include <stdint.h>

#include "decide/decide.h"
#include "dns/dns.h"

#define GW_METRICS_MAX_LISTENERS 16     /* == GW_MAX_LISTENERS */
#define GW_HELLO_BUCKETS 9              /* +Inf included */
#define GW_DECIDE_BUCKETS 18            /* +Inf included */

/* Events of a connection or request line: allow, deny, error (enum
 * dc_event). A redirect line has a verdict instead: allow, deny. */
#define GW_METRICS_EVENTS 3
#define GW_METRICS_VERDICTS 2

/*
 * Rule hits. Rules live in the policy snapshot, which a reload replaces,
 * so a series is keyed by what names the rule in the log (file, line,
 * name) and the verdict, copied into the worker's own table when first
 * hit. The table is bounded: GW_RULE_SERIES_MAX series per worker (the
 * hash index at most half full); a hit that finds it full, or a file or
 * name longer than GW_RULE_TEXT_MAX, is counted in rule_unlabelled.
 */
#define GW_RULE_SERIES_MAX 4096
#define GW_RULE_SLOTS 8192
#define GW_RULE_TEXT_MAX 1024

/* What the rule on a line decided. */
enum gw_rule_verdict {
	GW_RULE_ALLOW = 0,      /* it admitted the connection or request */
	GW_RULE_DENY,           /* a deny rule, or an allow rule that matched
	                         * the name but not the port */
	GW_RULE_WOULD_DENY,     /* report mode: let through, would be denied */
	GW_RULE_VERDICTS
};

const char *gw_rule_verdict_str(enum gw_rule_verdict v);

/* One series: everything but hits is written before it is published. */
struct gw_rule_series {
	uint64_t hits;
	uint32_t hash;
	unsigned line;
	enum gw_rule_verdict verdict;
	const char *name;               /* points into text, after the file */
	char text[];                    /* the file, NUL, the name, NUL */
};

struct gw_rule_hits {
	/* series[0..n) are readable: n is stored with release after the
	 * series is filled in, and loaded with acquire by the scraper. */
	uint32_t n;
	struct gw_rule_series *series[GW_RULE_SERIES_MAX];
	uint16_t slot[GW_RULE_SLOTS];   /* the writer's index: series + 1 */
};

struct gw_metrics {
	/* Lines by listener (the last row: no listener), event and reason,
	 * indexed by enum so counting compares no strings: connection lines
	 * (TLS connections, CONNECT tunnels, accept failures) and HTTP
	 * request lines apart; redirect lines by the verdict on the target. */
	uint64_t conns[GW_METRICS_MAX_LISTENERS + 1][GW_METRICS_EVENTS]
	    [DC_REASON_COUNT];
	uint64_t requests[GW_METRICS_MAX_LISTENERS + 1][GW_METRICS_EVENTS]
	    [DC_REASON_COUNT];
	uint64_t redirects[GW_METRICS_MAX_LISTENERS + 1][GW_METRICS_VERDICTS];
	uint64_t accepted[GW_METRICS_MAX_LISTENERS];
	/* ClientHellos (on TLS listeners and in tunnels) offering ECH. */
	uint64_t ech[GW_METRICS_MAX_LISTENERS];
	uint64_t bytes_in[GW_METRICS_MAX_LISTENERS];   /* from clients */
	uint64_t bytes_out[GW_METRICS_MAX_LISTENERS];  /* to clients */
	/* Per listener, per bucket (not cumulative: summed when rendered). */
	uint64_t hello[GW_METRICS_MAX_LISTENERS][GW_HELLO_BUCKETS];
	uint64_t hello_sum[GW_METRICS_MAX_LISTENERS];          /* bytes */
	uint64_t decide[GW_METRICS_MAX_LISTENERS][GW_DECIDE_BUCKETS];
	uint64_t decide_sum_us[GW_METRICS_MAX_LISTENERS];
	/* DNS lookups a connection waited for (cache answers excluded). */
	uint64_t dns_lat[GW_DECIDE_BUCKETS];
	uint64_t dns_lat_sum_us;
	uint64_t active;                /* the worker's open connections */
	uint64_t accept_pauses;
	uint64_t interims;              /* interim lines (log.interim_interval) */
	struct dns_stats dns;           /* copied from the worker's resolver */
	/* Rule hits (gw_metrics_rule_hit); the table is made before the
	 * worker starts (NULL: every hit is unlabelled). */
	struct gw_rule_hits *rules;
	uint64_t rule_unlabelled;
};

/* The rule-hit table, made before the worker's thread starts and freed
 * after it is joined (by whoever owns the worker). NULL: out of memory. */
struct gw_rule_hits *gw_rule_hits_new(void);
void gw_rule_hits_free(struct gw_rule_hits *t);

/*
 * Everything below runs on the owning worker's thread only.
 */
struct gw_worker;
struct gw_listener;
struct log_record;

/* A listener accepted a connection. */
void gw_metrics_accepted(struct gw_worker *w, const struct gw_listener *l);
/* The worker's connection count changed. */
void gw_metrics_active(struct gw_worker *w, unsigned nconns);
void gw_metrics_accept_pause(struct gw_worker *w);
void gw_metrics_interim(struct gw_worker *w);
/* A ClientHello that offers Encrypted Client Hello, on listener index li. */
void gw_metrics_ech(struct gw_worker *w, unsigned li);
/* Copy the resolver's counters where the scraper can read them. */
void gw_metrics_publish_dns(struct gw_worker *w);

/*
 * The rules behind a connection or request line: called once per such
 * line, after gw_metrics_conn, with the decision the line reports (NULL:
 * none was made, nothing is counted) and the line's reason. Each rule that
 * took part counts one hit, with what it decided: the deciding rule (allow
 * or deny), and on a line report mode let through (would_deny) both the
 * admitting rule (allow) and the report-mode rule (would_deny). Redirect
 * lines are not hits: they are the policy's view of a target the client
 * may never follow.
 */
void gw_metrics_rule_hit(struct gw_worker *w, const struct log_record *r,
    const struct dc_verdict *v, enum dc_reason reason);

/*
 * Render every metric (main thread). st is the daemon's status; see
 * gateway.h. Returns 0, or -1 when out of memory.
 */
struct evbuffer;
struct gw_status;
int gw_metrics_render(const struct gw_status *st, struct evbuffer *out);

#endif

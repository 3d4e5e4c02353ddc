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
 */
#ifndef EGRESSD_GW_METRICS_H
#define EGRESSD_GW_METRICS_H

#include <stdint.h>

#include "decide/decide.h"
#include "dns/dns.h"

#define GW_METRICS_MAX_LISTENERS 16     /* == GW_MAX_LISTENERS */
#define GW_METRICS_SERIES 96            /* distinct series per worker */
#define GW_METRICS_LABEL 40             /* event/reason text, NUL included */
#define GW_HELLO_BUCKETS 9              /* +Inf included */
#define GW_DECIDE_BUCKETS 18            /* +Inf included */

/* Events a line may have: allow, deny, error (enum dc_event), redirect. */
#define GW_METRICS_EVENTS 4
#define GW_METRICS_REDIRECT 3

struct gw_metrics {
	/* Lines by listener (the last row: no listener), event and reason:
	 * indexed by enum, so counting compares no strings. */
	uint64_t lines[GW_METRICS_MAX_LISTENERS + 1][GW_METRICS_EVENTS]
	    [DC_REASON_COUNT];
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
	struct dns_stats dns;           /* copied from the worker's resolver */
};

/*
 * Everything below runs on the owning worker's thread only.
 */
struct gw_worker;
struct gw_listener;

/* A listener accepted a connection. */
void gw_metrics_accepted(struct gw_worker *w, const struct gw_listener *l);
/* The worker's connection count changed. */
void gw_metrics_active(struct gw_worker *w, unsigned nconns);
void gw_metrics_accept_pause(struct gw_worker *w);
/* A ClientHello that offers Encrypted Client Hello, on listener index li. */
void gw_metrics_ech(struct gw_worker *w, unsigned li);
/* Copy the resolver's counters where the scraper can read them. */
void gw_metrics_publish_dns(struct gw_worker *w);

/*
 * Render every metric (main thread). st is the daemon's status; see
 * gateway.h. Returns 0, or -1 when out of memory.
 */
struct evbuffer;
struct gw_status;
int gw_metrics_render(const struct gw_status *st, struct evbuffer *out);

#endif

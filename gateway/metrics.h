/*
 * metrics: what each worker counts for itself, and the Prometheus text
 * exposition (format 0.0.4) that sums the workers when scraped.
 *
 * Nothing is locked on the connection path. Each worker's struct gw_metrics
 * is written only by that worker's thread, with relaxed atomic stores (a
 * load, an add and a store: there is one writer, so no read-modify-write
 * instruction is needed), and read by the main thread with atomic loads
 * when someone scrapes. The (listener, event, reason) series a worker has
 * seen are appended to a table whose length is published with a release
 * store, so a reader that loads the length with acquire sees whole entries.
 * DNS counters belong to the worker's resolver; the worker copies them
 * into its struct after each connection and once a second.
 */
#ifndef EGRESSD_GW_METRICS_H
#define EGRESSD_GW_METRICS_H

#include <stdint.h>

#include "dns/dns.h"

#define GW_METRICS_MAX_LISTENERS 16     /* == GW_MAX_LISTENERS */
#define GW_METRICS_SERIES 96            /* distinct series per worker */
#define GW_METRICS_LABEL 40             /* event/reason text, NUL included */
#define GW_HELLO_BUCKETS 9              /* +Inf included */
#define GW_DECIDE_BUCKETS 18            /* +Inf included */

/* One egressd_connections_total series as a worker has seen it. */
struct gw_metrics_series {
	unsigned listener;              /* index in the config's listeners */
	char event[GW_METRICS_LABEL];
	char reason[GW_METRICS_LABEL];
	uint64_t count;
};

struct gw_metrics {
	unsigned nseries;               /* release store / acquire load */
	struct gw_metrics_series series[GW_METRICS_SERIES];
	uint64_t series_dropped;        /* lines beyond the table: counted in
	                                 * egressd_connections_unlabelled_total */
	uint64_t accepted[GW_METRICS_MAX_LISTENERS];
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

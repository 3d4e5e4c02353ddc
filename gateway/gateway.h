/*
 * gateway: the daemon core. Workers each own an event_base, a resolver,
 * their listening sockets (SO_REUSEPORT) and their connections; nothing on
 * the connection path is shared between threads except the log sink (one
 * locked write per line) and the immutable policy snapshot (refcounted).
 */
#ifndef EGRESSD_GATEWAY_H
#define EGRESSD_GATEWAY_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>

#include "gateway/gwconfig.h"
#include "sni/sni.h"

struct event;
struct event_base;
struct evconnlistener;
struct dns_resolver;
struct log_sink;
struct pol_snapshot;
struct gw_conn;
struct gw_worker;

struct gw_listener {
	struct gw_worker *w;
	const struct gw_listener_conf *conf;
	int fd;
	struct evconnlistener *lev;
};

/* Counters a worker keeps for itself; summed by whoever reads them. */
struct gw_counters {
	uint64_t accepted, allowed, denied, errors;
	uint64_t accept_pauses;
};

struct gw_worker {
	unsigned id;
	pthread_t thread;
	int started;
	const struct gw_config *cfg;
	struct log_sink *log;
	struct event_base *base;
	struct dns_resolver *dns;
	struct pol_snapshot *snap;      /* holds a reference */

	size_t nlisteners;
	struct gw_listener listeners[GW_MAX_LISTENERS];
	int accepting;                  /* listeners enabled */
	struct event *resume_ev;        /* re-enable accept after EMFILE */

	/* Requests from the main thread, taken under ctl_lock. */
	pthread_mutex_t ctl_lock;
	int ctl_drain;
	struct pol_snapshot *ctl_snap;  /* a new snapshot to adopt */
	struct event *ctl_ev;

	int draining;
	struct event *drain_ev;

	TAILQ_HEAD(, gw_conn) conns;
	TAILQ_HEAD(, gw_conn) zombies;  /* closed, freed by reap_ev */
	struct event *reap_ev;
	unsigned nconns;
	unsigned max_conns;             /* this worker's share of max_connections */
	uint64_t conn_seq;
	struct gw_counters counters;

	/* Reassembly buffer for ClientHello parsing: parsing is synchronous,
	 * so one per worker serves every connection. */
	uint8_t scratch[SNI_HELLO_MAX];
	/* Text for a log line's detail, formatted just before it is written. */
	char detail_buf[256];
};

/* Create a worker: binds its listening sockets. Reports errors to err. */
struct gw_worker *gw_worker_new(unsigned id, const struct gw_config *cfg,
    struct log_sink *log, struct pol_snapshot *snap, char *err, size_t errlen);
int gw_worker_start(struct gw_worker *w);
/* Thread-safe requests from the main thread. */
void gw_worker_drain(struct gw_worker *w);
void gw_worker_set_policy(struct gw_worker *w, struct pol_snapshot *snap);
/* Join the thread and free everything. */
void gw_worker_join_free(struct gw_worker *w);

/*
 * Call cb (on base's loop) a moment after anything changes in the
 * directories holding these policy paths.
 */
struct gw_watch;
struct gw_watch *gw_watch_new(struct event_base *base, char *const *paths,
    size_t npaths, void (*cb)(void *), void *arg, char *err, size_t errlen);
void gw_watch_free(struct gw_watch *w);

/* Called by the connection code. */
void gw_worker_conn_gone(struct gw_worker *w);

#endif

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
#include <sys/socket.h>

#include "gateway/gwconfig.h"
#include "gateway/metrics.h"
#include "sni/sni.h"

struct event;
struct event_base;
struct evconnlistener;
struct dns_resolver;
struct log_sink;
struct pol_snapshot;
struct gw_conn;
struct gw_worker;

struct chain_table;
struct evid_writer;
struct ssl_ctx_st;

/*
 * What every worker shares besides the log and the policy, made by the
 * main thread before the workers start and freed after they end. Each
 * part is thread-safe on its own.
 */
struct gw_shared {
	struct chain_table *chains;     /* redirect chains, "after" hints */
	struct evid_writer *evidence;   /* NULL: log.evidence_pcap is off */
	struct ssl_ctx_st *tls_ctx;     /* TLS origination: verifies upstreams */
	struct gw_loops *loops;         /* our upstream sockets' local addresses */
};

/* loops.c: the local addresses of every open upstream connection, shared
 * by the workers; a client at one of them is this gateway itself. */
struct gw_loops;
struct gw_loops *gw_loops_new(void);
void gw_loops_free(struct gw_loops *t);
int gw_loops_add(struct gw_loops *t, const struct sockaddr *local,
    const struct sockaddr *remote);
void gw_loops_del(struct gw_loops *t, const struct sockaddr *local);
/* Is a client at peer, that reached local, one of our upstream sockets?
 * local NULL: is peer one of their addresses at all (a cheap first test). */
int gw_loops_has(struct gw_loops *t, const struct sockaddr *peer,
    const struct sockaddr *local);

struct gw_listener {
	struct gw_worker *w;
	const struct gw_listener_conf *conf;
	int fd;
	struct evconnlistener *lev;
};

/*
 * Counters a worker keeps for itself, read only on its own thread; what
 * other threads read is in struct gw_metrics (metrics.h).
 */
struct gw_counters {
	uint64_t accepted, allowed, denied, errors;
	uint64_t accept_pauses;
};

#define GW_SPARE_PIPES 8

struct gw_worker {
	unsigned id;
	pthread_t thread;
	int started;
	const struct gw_config *cfg;
	struct log_sink *log;
	const struct gw_shared *shared; /* set before the worker starts */
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
	struct gw_listing *ctl_list;    /* list the connections into it */
	struct event *ctl_ev;
	struct event *interim_ev;       /* log.interim_interval: each second */

	int draining;
	struct event *drain_ev;

	TAILQ_HEAD(, gw_conn) conns;
	TAILQ_HEAD(, gw_conn) zombies;  /* closed, freed by reap_ev */
	struct event *reap_ev;
	unsigned nconns;
	unsigned max_conns;             /* this worker's share of max_connections */
	uint64_t conn_seq;
	struct gw_counters counters;
	struct gw_metrics metrics;      /* read by the scraper: see metrics.h */
	struct event *publish_ev;       /* copies DNS counters once a second */

	/* Set (release) when the worker's loop has ended; exit_ev, an event
	 * of the main thread's base, is then made active. */
	int done;
	struct event *exit_ev;

	/* Empty pipes for the splice relay, kept for the next connection
	 * that has bytes in flight (gateway/relay.c). */
	int pipes[GW_SPARE_PIPES][2];
	unsigned npipes;
	int pipes_used;         /* a pipe was taken since the last tick */

	/* Reassembly buffer for ClientHello parsing: parsing is synchronous,
	 * so one per worker serves every connection. */
	uint8_t scratch[SNI_HELLO_MAX];
	/* Text for a log line's detail, formatted just before it is written. */
	char detail_buf[256];
};

/* Create a worker: binds its listening sockets. Reports errors to err. */
struct gw_worker *gw_worker_new(unsigned id, const struct gw_config *cfg,
    struct log_sink *log, struct pol_snapshot *snap, char *err, size_t errlen);
/* Start the thread; exit_ev (may be NULL) is activated when it ends. */
int gw_worker_start(struct gw_worker *w, struct event *exit_ev);
/* Has the worker's loop ended? (any thread) */
int gw_worker_done(const struct gw_worker *w);
/* Thread-safe requests from the main thread. */
void gw_worker_drain(struct gw_worker *w);
void gw_worker_set_policy(struct gw_worker *w, struct pol_snapshot *snap);
/* Join the thread and free everything. */
void gw_worker_join_free(struct gw_worker *w);
/*
 * The admin's /connections: every worker describes its own connections
 * on its own thread (gw_conn_describe), comma-separated, into out; the
 * caller waits up to timeout_ms. Returns how many, or -1 when a worker did
 * not answer in time (out then holds nothing).
 */
struct evbuffer;
long gw_workers_list(struct gw_worker **ws, size_t n, struct evbuffer *out,
    uint64_t timeout_ms);

/*
 * Call cb (on base's loop) a moment after anything changes in the
 * directories holding these policy paths.
 */
struct gw_watch;
struct gw_watch *gw_watch_new(struct event_base *base, char *const *paths,
    size_t npaths, void (*cb)(void *), void *arg, char *err, size_t errlen);
void gw_watch_free(struct gw_watch *w);

/*
 * metrics.c: called once per connection line, on the worker's thread, with
 * the line as written and its reason (both after report mode), the size of
 * the ClientHello decided on and the time from accept to the decision
 * (both 0 when no decision was made), and how long the connection waited
 * for a DNS lookup (0 when none was sent: cached, STATIC, or no decision).
 */
struct log_record;
void gw_metrics_conn(struct gw_worker *w, const struct log_record *r,
    enum dc_reason reason, uint32_t hello_bytes, uint32_t decide_us, uint32_t dns_us);

/* Called by the connection code. */
void gw_worker_conn_gone(struct gw_worker *w);

/*
 * What the main thread knows about the daemon, for the admin endpoints and
 * the metrics. Owned and written by the main thread only; the admin server
 * runs on the main thread's event_base, so it reads this without locks.
 */
struct gw_status {
	const struct gw_config *cfg;
	struct log_sink *log;
	struct pol_snapshot *snap;      /* the running policy */
	uint64_t generation;
	uint64_t reloads_ok, reloads_failed;
	int last_reload_ok;             /* the last attempt worked; 1 from the
	                                 * start (the first policy loaded) */
	uint64_t policy_loaded_us;      /* wall clock: when the running policy
	                                 * was loaded (at start or a reload) */
	struct gw_worker **workers;
	size_t nworkers;
	int ready;                      /* policy loaded, listeners up */
	int draining;                   /* SIGTERM seen: readiness is 503 */
	uint64_t start_us;              /* wall clock */
	uint64_t nofile_limit;          /* RLIMIT_NOFILE soft, as set */
	const struct gw_shared *shared; /* the evidence writer's counters */
	uint64_t admin_refused;         /* admin connections closed at once:
	                                 * admin.max_connections were open */
	int config_changed;             /* at the last reload, the configuration
	                                 * file differed from the running one */
};

/*
 * admin.c: the admin HTTP server (libevent evhttp) on base. Binds every
 * configured admin address; a default address that is busy is a notice in
 * the log, anything else that cannot be bound is an error (NULL, err set).
 */
struct gw_admin;
struct gw_admin *gw_admin_new(struct event_base *base, struct gw_status *st,
    char *err, size_t errlen);
void gw_admin_free(struct gw_admin *a);

#endif

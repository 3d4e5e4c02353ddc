/*
 * Workers: one thread, one event_base, one resolver and one set of
 * listening sockets each (SO_REUSEPORT spreads connections across them).
 * The main thread talks to a worker only through gw_worker_drain() and
 * gw_worker_set_policy(), which hand over a request under a lock and wake
 * the worker's loop. The other way, a worker publishes its counters in
 * w->metrics (atomics, see metrics.h) and, when its loop ends, sets
 * w->done and wakes the main thread's exit event.
 */
#include "gateway/gateway.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "dns/dns.h"
#include "gateway/conn.h"
#include "logging/log.h"
#include "policy/policy.h"

/* After the process runs out of descriptors, accept rests this long. */
#define ACCEPT_REST_MS 250
/* How often DNS counters are copied where the scraper can see them. */
#define PUBLISH_MS 1000

static int
listen_socket(const struct gw_listener_conf *lc, char *err, size_t errlen)
{
	int one = 1;
	int fd = socket(lc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
		goto fail;
	if (lc->addr.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
		goto fail;
	/*
	 * TPROXY delivers only to sockets marked transparent, which takes
	 * CAP_NET_ADMIN. REDIRECT needs neither, so without the capability
	 * the listener still serves REDIRECT (docs/steering.md).
	 */
	if (lc->proto == GW_PROTO_TRANSPARENT)
		(void)(lc->addr.ss_family == AF_INET6 ?
		    setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) :
		    setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)));
	/* Accepted sockets inherit TCP_NODELAY from the listener (Linux):
	 * see conn_connect_next for why a relay wants it. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		goto fail;
	/*
	 * Every listener's client speaks first (a ClientHello, a request, a
	 * PROXY header). Handed over with its first bytes, a connection costs
	 * one accept4 and one recv; handed over at the handshake's last ACK,
	 * as it is otherwise, the recv most often finds nothing yet, and the
	 * wait costs an epoll_ctl pair and a second recv (docs/bench.md). A
	 * client that says nothing is handed over after a second, and its
	 * hello timeout runs from then.
	 */
	if (lc->defer_accept &&
	    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof(one)) != 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&lc->addr, lc->addrlen) != 0)
		goto fail;
	if (listen(fd, 1024) != 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "listener %s: cannot listen on %s: %s", lc->name,
	    lc->address_text, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static void
worker_set_accepting(struct gw_worker *w, int on)
{
	if (w->accepting == on || w->draining)
		return;
	w->accepting = on;
	for (size_t i = 0; i < w->nlisteners; i++) {
		if (w->listeners[i].lev == NULL)
			continue;
		if (on)
			evconnlistener_enable(w->listeners[i].lev);
		else
			evconnlistener_disable(w->listeners[i].lev);
	}
	if (!on) {
		w->counters.accept_pauses++;
		gw_metrics_accept_pause(w);
	}
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct gw_listener *l = arg;
	struct gw_worker *w = l->w;

	gw_metrics_accepted(w, l);
	gw_conn_accept(l, fd, sa, salen);
	gw_metrics_active(w, w->nconns);
	if (w->nconns >= w->max_conns)
		worker_set_accepting(w, 0);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_worker *w = arg;

	if (w->nconns < w->max_conns)
		worker_set_accepting(w, 1);
}

/*
 * accept() failed. Out of descriptors or memory is overload: say so once
 * per pause, rest, and try again; the pending connections wait in the
 * kernel's backlog rather than being dropped.
 */
static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct gw_listener *l = arg;
	struct gw_worker *w = l->w;
	int err = EVUTIL_SOCKET_ERROR();
	struct log_record r;
	struct timeval tv = { 0, ACCEPT_REST_MS * 1000 };

	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return;
	memset(&r, 0, sizeof(r));
	r.ts_us = log_now_us();
	r.event = dc_event_str(DC_EV_ERROR);
	r.reason = dc_reason_str(DC_OVERLOADED);
	r.listener = l->conf->name;
	r.port = -1;
	r.proto = "tls";        /* tls and transparent listeners relay TLS */
	r.detail = strerror(err);
	log_write(w->log, &r);
	gw_metrics_conn(w, &r, DC_OVERLOADED, 0, 0, 0);
	worker_set_accepting(w, 0);
	evtimer_add(w->resume_ev, &tv);
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_worker *w = arg;
	struct gw_conn *c;

	while ((c = TAILQ_FIRST(&w->zombies)) != NULL) {
		TAILQ_REMOVE(&w->zombies, c, entry);
		/* The protocol's state goes with the struct, not at the
		 * close: a callback that closed the connection may still
		 * read it on its way out. */
		if (c->ops != NULL && c->ops->release != NULL)
			c->ops->release(c);
		free(c);
	}
}

static void
worker_close_pipes(struct gw_worker *w)
{
	while (w->npipes > 0) {
		w->npipes--;
		close(w->pipes[w->npipes][0]);
		close(w->pipes[w->npipes][1]);
	}
}

static void
publish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_worker *w = arg;

	gw_metrics_publish_dns(w);
	/* A worker with no connection that took no pipe for a whole tick
	 * closes its spares: a quiet gateway holds only its listeners' and
	 * its own descriptors, while one that is busy, even a connection at
	 * a time, does not make a new pipe for each. */
	if (w->nconns == 0 && !w->pipes_used)
		worker_close_pipes(w);
	w->pipes_used = 0;
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_worker *w = arg;
	struct gw_conn *c;

	while ((c = TAILQ_FIRST(&w->conns)) != NULL)
		gw_conn_close(c, c->state == GW_CONN_RELAYING ? DC_EV_ALLOW :
		    DC_EV_ERROR, DC_DRAINING);
}

static void
worker_start_drain(struct gw_worker *w)
{
	struct timeval tv;
	uint64_t ms = w->cfg->timeouts.drain_ms;

	if (w->draining)
		return;
	w->draining = 1;
	for (size_t i = 0; i < w->nlisteners; i++) {
		if (w->listeners[i].lev != NULL)
			evconnlistener_free(w->listeners[i].lev);
		w->listeners[i].lev = NULL;
	}
	evtimer_del(w->resume_ev);
	if (w->nconns == 0) {
		event_base_loopbreak(w->base);
		return;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(w->drain_ev, &tv);
}

/* A connection the new policy refuses closes, and moves to the zombies,
 * while we walk: take the next one before deciding this one. */
static void
worker_redecide(struct gw_worker *w)
{
	struct gw_conn *c, *next;

	for (c = TAILQ_FIRST(&w->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		gw_conn_redecide(c);
	}
}

static void
worker_wake(struct gw_worker *w)
{
	event_active(w->ctl_ev, EV_READ, 0);
}

/*
 * A listing of live connections for the admin thread. Reference-counted:
 * the admin stops waiting after its timeout, and a worker that answers
 * later must still find it.
 */
struct gw_listing {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned refs, pending;
	long count;
	struct evbuffer *out;
};

static void
listing_unref(struct gw_listing *l)
{
	unsigned left;

	pthread_mutex_lock(&l->lock);
	left = --l->refs;
	pthread_mutex_unlock(&l->lock);
	if (left > 0)
		return;
	evbuffer_free(l->out);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* On the worker's thread: its connections, then one reference less. */
static void
worker_list(struct gw_worker *w, struct gw_listing *l)
{
	struct evbuffer *mine = evbuffer_new();
	char buf[LOG_LINE_MAX + 64];
	long n = 0;
	struct gw_conn *c;
	size_t len;

	TAILQ_FOREACH(c, &w->conns, entry) {
		if (mine == NULL)
			break;
		len = gw_conn_describe(c, buf, sizeof(buf));
		if (len == 0)
			continue;
		if (n++ > 0)
			evbuffer_add(mine, ",\n", 2);
		evbuffer_add(mine, buf, len);
	}
	pthread_mutex_lock(&l->lock);
	if (mine != NULL && n > 0) {
		if (l->count > 0)
			evbuffer_add(l->out, ",\n", 2);
		evbuffer_add_buffer(l->out, mine);
		l->count += n;
	}
	l->pending--;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	if (mine != NULL)
		evbuffer_free(mine);
	listing_unref(l);
}

long
gw_workers_list(struct gw_worker **ws, size_t n, struct evbuffer *out,
    uint64_t timeout_ms)
{
	struct gw_listing *l = calloc(1, sizeof(*l));
	struct gw_listing *old;
	struct timespec until;
	long count = -1;

	if (l == NULL || (l->out = evbuffer_new()) == NULL) {
		free(l);
		return -1;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->refs = 1;
	for (size_t i = 0; i < n; i++) {
		if (gw_worker_done(ws[i]))
			continue;
		pthread_mutex_lock(&l->lock);
		l->refs++;
		l->pending++;
		pthread_mutex_unlock(&l->lock);
		pthread_mutex_lock(&ws[i]->ctl_lock);
		old = ws[i]->ctl_list;
		ws[i]->ctl_list = l;
		pthread_mutex_unlock(&ws[i]->ctl_lock);
		if (old != NULL)        /* one that timed out, never answered */
			listing_unref(old);
		worker_wake(ws[i]);
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(timeout_ms / 1000);
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->lock);
	while (l->pending > 0 &&
	    pthread_cond_timedwait(&l->cond, &l->lock, &until) == 0)
		;
	if (l->pending == 0) {
		evbuffer_add_buffer(out, l->out);
		count = l->count;
	}
	pthread_mutex_unlock(&l->lock);
	listing_unref(l);
	return count;
}

static void
interim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_worker *w = arg;
	struct gw_conn *c;

	TAILQ_FOREACH(c, &w->conns, entry)
		gw_conn_interim_due(c, w->cfg->interim_ms);
}

static void
ctl_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_worker *w = arg;
	struct pol_snapshot *snap;
	struct gw_listing *list;
	int drain;

	pthread_mutex_lock(&w->ctl_lock);
	snap = w->ctl_snap;
	w->ctl_snap = NULL;
	list = w->ctl_list;
	w->ctl_list = NULL;
	drain = w->ctl_drain;
	pthread_mutex_unlock(&w->ctl_lock);
	if (list != NULL)
		worker_list(w, list);
	if (snap != NULL) {
		pol_snapshot_unref(w->snap);
		w->snap = snap;
		/* Connections already admitted are decided again with it
		 * (policy.redecide); otherwise they keep their own reference
		 * to the snapshot they were decided with. */
		if (w->cfg->policy_redecide)
			worker_redecide(w);
	}
	if (drain)
		worker_start_drain(w);
}

void
gw_worker_conn_gone(struct gw_worker *w)
{
	w->nconns--;
	gw_metrics_active(w, w->nconns);
	if (w->draining) {
		if (w->nconns == 0)
			event_base_loopbreak(w->base);
		return;
	}
	if (!w->accepting && w->nconns < w->max_conns &&
	    !evtimer_pending(w->resume_ev, NULL))
		worker_set_accepting(w, 1);
}

struct gw_worker *
gw_worker_new(unsigned id, const struct gw_config *cfg, struct log_sink *log,
    struct pol_snapshot *snap, char *err, size_t errlen)
{
	struct gw_worker *w = calloc(1, sizeof(*w));
	struct dns_config dc;

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	static const struct gw_shared none;

	w->id = id;
	w->cfg = cfg;
	w->log = log;
	w->shared = &none;
	w->snap = pol_snapshot_ref(snap);
	TAILQ_INIT(&w->conns);
	TAILQ_INIT(&w->zombies);
	pthread_mutex_init(&w->ctl_lock, NULL);
	w->max_conns = cfg->max_connections / (unsigned)cfg->workers;
	if (w->max_conns == 0)
		w->max_conns = 1;
	w->base = event_base_new();
	if (w->base == NULL) {
		snprintf(err, errlen, "cannot create an event base");
		goto fail;
	}
	w->ctl_ev = event_new(w->base, -1, 0, ctl_cb, w);
	w->reap_ev = event_new(w->base, -1, 0, reap_cb, w);
	w->drain_ev = evtimer_new(w->base, drain_timeout_cb, w);
	w->resume_ev = evtimer_new(w->base, resume_cb, w);
	w->publish_ev = event_new(w->base, -1, EV_PERSIST, publish_cb, w);
	if (cfg->interim_ms > 0)
		w->interim_ev = event_new(w->base, -1, EV_PERSIST, interim_cb, w);
	if (!w->ctl_ev || !w->reap_ev || !w->drain_ev || !w->resume_ev ||
	    !w->publish_ev || (cfg->interim_ms > 0 && !w->interim_ev)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}

	memset(&dc, 0, sizeof(dc));
	dc.nservers = cfg->ndns_servers;
	for (size_t i = 0; i < cfg->ndns_servers; i++)
		dc.servers[i] = cfg->dns_servers[i];
	dc.timeout_ms = cfg->timeouts.dns_ms;
	dc.min_ttl = cfg->dns_min_ttl;
	dc.max_ttl = cfg->dns_max_ttl;
	dc.neg_ttl = cfg->dns_neg_ttl;
	dc.stale_ttl = cfg->dns_stale_ttl;
	dc.family = cfg->dns_family;
	w->dns = dns_resolver_new(w->base, &dc, err, errlen);
	if (w->dns == NULL)
		goto fail;

	for (size_t i = 0; i < cfg->nlisteners; i++) {
		struct gw_listener *l = &w->listeners[i];

		l->w = w;
		l->conf = &cfg->listeners[i];
		l->fd = listen_socket(l->conf, err, errlen);
		if (l->fd < 0)
			goto fail;
		w->nlisteners++;
		l->lev = evconnlistener_new(w->base, accept_cb, l,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, l->fd);
		if (l->lev == NULL) {
			close(l->fd);
			l->fd = -1;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		evconnlistener_set_error_cb(l->lev, accept_error_cb);
	}
	w->accepting = 1;
	return w;
fail:
	gw_worker_join_free(w);
	return NULL;
}

static void *
worker_main(void *arg)
{
	struct gw_worker *w = arg;
	struct timeval tv = { PUBLISH_MS / 1000, (PUBLISH_MS % 1000) * 1000 };

	event_add(w->publish_ev, &tv);
	if (w->interim_ev != NULL) {
		/* Each second: a line falls due at most a second late. */
		struct timeval sec = { 1, 0 };

		event_add(w->interim_ev, &sec);
	}
	event_base_dispatch(w->base);
	gw_metrics_publish_dns(w);
	/* Tell the main thread; event_active is thread-safe (the bases were
	 * made after evthread_use_pthreads). */
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	if (w->exit_ev != NULL)
		event_active(w->exit_ev, EV_READ, 0);
	return NULL;
}

int
gw_worker_start(struct gw_worker *w, struct event *exit_ev)
{
	w->exit_ev = exit_ev;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return -1;
	w->started = 1;
	return 0;
}

int
gw_worker_done(const struct gw_worker *w)
{
	return __atomic_load_n(&w->done, __ATOMIC_ACQUIRE);
}

void
gw_worker_drain(struct gw_worker *w)
{
	pthread_mutex_lock(&w->ctl_lock);
	w->ctl_drain = 1;
	pthread_mutex_unlock(&w->ctl_lock);
	worker_wake(w);
}

void
gw_worker_set_policy(struct gw_worker *w, struct pol_snapshot *snap)
{
	struct pol_snapshot *old;

	pol_snapshot_ref(snap);
	pthread_mutex_lock(&w->ctl_lock);
	old = w->ctl_snap;
	w->ctl_snap = snap;
	pthread_mutex_unlock(&w->ctl_lock);
	if (old != NULL)
		pol_snapshot_unref(old);
	worker_wake(w);
}

void
gw_worker_join_free(struct gw_worker *w)
{
	struct gw_conn *c;

	if (w == NULL)
		return;
	if (w->started)
		pthread_join(w->thread, NULL);
	/* The loop has stopped; close what is left without waiting. */
	w->draining = 1;
	while ((c = TAILQ_FIRST(&w->conns)) != NULL)
		gw_conn_close(c, c->state == GW_CONN_RELAYING ? DC_EV_ALLOW :
		    DC_EV_ERROR, DC_DRAINING);
	if (w->reap_ev != NULL)
		reap_cb(-1, 0, w);
	worker_close_pipes(w);
	for (size_t i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].lev != NULL)
			evconnlistener_free(w->listeners[i].lev);
	if (w->dns != NULL)
		dns_resolver_free(w->dns);
	if (w->ctl_ev)
		event_free(w->ctl_ev);
	if (w->reap_ev)
		event_free(w->reap_ev);
	if (w->drain_ev)
		event_free(w->drain_ev);
	if (w->resume_ev)
		event_free(w->resume_ev);
	if (w->publish_ev)
		event_free(w->publish_ev);
	if (w->interim_ev)
		event_free(w->interim_ev);
	if (w->ctl_list != NULL)
		listing_unref(w->ctl_list);
	if (w->base != NULL)
		event_base_free(w->base);
	if (w->ctl_snap != NULL)
		pol_snapshot_unref(w->ctl_snap);
	if (w->snap != NULL)
		pol_snapshot_unref(w->snap);
	pthread_mutex_destroy(&w->ctl_lock);
	free(w);
}

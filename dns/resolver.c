/*
 * dns/resolver.c: one c-ares channel per worker, driven by the worker's
 * event_base, with a TTL cache and detachable tickets.
 *
 * Shape of a lookup:
 *
 *   dns_resolve(name) ──► ticket ──► query (one per name in flight) ──► c-ares
 *                                      │        ▲
 *                                      │        └─ guard timer (timeout_ms)
 *                                      ▼
 *                           answer cached, then the query's event is made
 *                           active and delivers to each remaining ticket
 *
 * Every callback runs from the query's own event, never from inside
 * dns_resolve() or from inside c-ares: c-ares may complete a query
 * synchronously (numeric names, errors) and the caller must be able to
 * rely on "the callback runs later". The same event first serves as the
 * per-lookup guard timer, so a lookup is answered within timeout_ms even
 * when c-ares' own retry schedule would run longer.
 *
 * c-ares 1.18 cannot cancel a single query, so a query outlives its
 * tickets: cancelling a ticket only unlinks and frees it, and the query
 * lives on until c-ares hands back its result, which is then cached.
 *
 * Nothing here is shared between threads: each worker owns its resolver.
 * The only process-wide step is ares_library_init(), done once.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <ares.h>
#include <event2/event.h>

#include "dns/dns.h"

#define DNS_CACHE_MAX           10000   /* entries per resolver */
#define DNS_CACHE_BUCKETS       16384   /* power of two */
#define DNS_CACHE_EVICT_SCAN    64      /* expired entries looked at when full */
#define DNS_INFLIGHT_BUCKETS    1024    /* power of two */
#define DNS_NAME_MAX            253
#define DNS_DEFAULT_TIMEOUT_MS  5000
#define DNS_DEFAULT_MAX_TTL     3600
#define DNS_DEFAULT_NEG_TTL     30
#define DNS_TRIES               2

/* An address as the cache keeps it: no sockaddr padding per entry. */
struct dns_cache_addr {
	uint8_t family;
	uint8_t addr[16];
};

struct dns_cache_entry {
	struct dns_cache_entry *hnext;          /* bucket chain */
	struct dns_cache_entry *older, *newer;  /* insertion order, for eviction */
	uint64_t expires_ms;                    /* monotonic */
	uint32_t hash;
	enum dns_status status;                 /* DNS_OK or DNS_NXDOMAIN */
	size_t naddrs;
	char *name;                             /* after addrs, same allocation */
	struct dns_cache_addr addrs[];
};

struct dns_ticket {
	struct dns_query *q;
	struct dns_ticket *prev, *next;
	dns_cb cb;
	void *arg;
};

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *hnext;                /* in-flight bucket chain */
	struct dns_query *prev, *next;          /* every live query */
	struct dns_ticket *thead, *ttail;       /* waiting, in request order */
	struct event *ev;                       /* guard timer, then delivery */
	uint32_t hash;
	int in_flight;                          /* in the in-flight table */
	int ares_pending;                       /* c-ares holds a pointer to us */
	int done;                               /* ans is final */
	int delivered;                          /* tickets have been answered */
	struct dns_answer ans;
	char name[];
};

/* One per socket c-ares asks us to watch. */
struct dns_sock {
	struct dns_sock *next;
	struct dns_resolver *r;
	ares_socket_t fd;
	struct event *ev;
};

struct dns_resolver {
	struct event_base *base;
	ares_channel channel;
	int channel_ok;
	int freeing;
	struct event *timer;                    /* ares_timeout() */
	struct dns_sock *socks;
	struct dns_query *queries;
	struct dns_query *inflight[DNS_INFLIGHT_BUCKETS];
	struct dns_cache_entry **cache;         /* DNS_CACHE_BUCKETS */
	struct dns_cache_entry *oldest, *newest;
	size_t ncache;
	uint32_t seed;
	uint64_t timeout_ms;
	uint32_t min_ttl, max_ttl, neg_ttl;
	struct dns_stats stats;
};

static pthread_once_t dns_lib_once = PTHREAD_ONCE_INIT;
static int dns_lib_status = ARES_ENOTINITIALIZED;

static void
dns_lib_init(void)
{
	dns_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static uint64_t
dns_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Lower-case, drop one trailing dot, and accept only what a DNS host name
 * may hold. c-ares reads backslash escapes in names, so a name that slipped
 * past the gateway's own validation must not reach it with one.
 * Returns the length, or -1.
 */
static int
dns_name_norm(const char *in, char *out)
{
	size_t len, i, label = 0;
	unsigned char c;

	if (in == NULL)
		return -1;
	len = strnlen(in, DNS_NAME_MAX + 2);
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else {
			return -1;
		}
		out[i] = (char)c;
	}
	out[len] = '\0';
	return (int)len;
}

/* FNV-1a, seeded per resolver so chains cannot be precomputed. */
static uint32_t
dns_hash(const struct dns_resolver *r, const char *name)
{
	uint32_t h = 2166136261u ^ r->seed;

	for (; *name != '\0'; name++) {
		h ^= (unsigned char)*name;
		h *= 16777619u;
	}
	return h;
}

/* ---- cache ---- */

static void
dns_cache_unlink(struct dns_resolver *r, struct dns_cache_entry *e)
{
	struct dns_cache_entry **pp;

	pp = &r->cache[e->hash & (DNS_CACHE_BUCKETS - 1)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		r->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		r->newest = e->older;
	r->ncache--;
	free(e);
}

/* A fresh entry, or NULL; a stale one found on the way is dropped. */
static struct dns_cache_entry *
dns_cache_find(struct dns_resolver *r, const char *name, uint32_t hash,
    uint64_t now)
{
	struct dns_cache_entry *e;

	for (e = r->cache[hash & (DNS_CACHE_BUCKETS - 1)]; e != NULL;
	    e = e->hnext) {
		if (e->hash != hash || strcmp(e->name, name) != 0)
			continue;
		if (e->expires_ms <= now) {
			dns_cache_unlink(r, e);
			return NULL;
		}
		return e;
	}
	return NULL;
}

static void
dns_cache_evict(struct dns_resolver *r, uint64_t now)
{
	struct dns_cache_entry *e, *next;
	int scanned = 0;

	/* Expired entries first, within a bounded scan; else the oldest. */
	for (e = r->oldest; e != NULL && scanned < DNS_CACHE_EVICT_SCAN;
	    e = next, scanned++) {
		next = e->newer;
		if (e->expires_ms <= now)
			dns_cache_unlink(r, e);
	}
	if (r->ncache >= DNS_CACHE_MAX && r->oldest != NULL)
		dns_cache_unlink(r, r->oldest);
}

static void
dns_cache_put(struct dns_resolver *r, const char *name, uint32_t hash,
    const struct dns_answer *ans)
{
	struct dns_cache_entry *e, **bucket;
	uint64_t now = dns_now_ms();
	size_t i, namelen = strlen(name);

	if (ans->ttl == 0 ||
	    (ans->status != DNS_OK && ans->status != DNS_NXDOMAIN))
		return;
	e = dns_cache_find(r, name, hash, now);
	if (e != NULL)
		dns_cache_unlink(r, e);
	while (r->ncache >= DNS_CACHE_MAX)
		dns_cache_evict(r, now);

	e = calloc(1, sizeof(*e) + ans->naddrs * sizeof(e->addrs[0]) +
	    namelen + 1);
	if (e == NULL)
		return;         /* the cache is an optimisation: skip it */
	e->hash = hash;
	e->status = ans->status;
	e->expires_ms = now + (uint64_t)ans->ttl * 1000;
	e->naddrs = ans->naddrs;
	for (i = 0; i < ans->naddrs; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&ans->addrs[i];

		e->addrs[i].family = (uint8_t)sa->sa_family;
		if (sa->sa_family == AF_INET)
			memcpy(e->addrs[i].addr,
			    &((const struct sockaddr_in *)sa)->sin_addr, 4);
		else
			memcpy(e->addrs[i].addr,
			    &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
	e->name = (char *)(e->addrs + e->naddrs);
	memcpy(e->name, name, namelen + 1);

	bucket = &r->cache[hash & (DNS_CACHE_BUCKETS - 1)];
	e->hnext = *bucket;
	*bucket = e;
	e->older = r->newest;
	if (r->newest != NULL)
		r->newest->newer = e;
	else
		r->oldest = e;
	r->newest = e;
	r->ncache++;
}

static void
dns_cache_answer(const struct dns_cache_entry *e, uint64_t now,
    struct dns_answer *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	out->status = e->status;
	out->naddrs = e->naddrs;
	out->from_cache = 1;
	/* Round up: an entry with 300 ms left still has "1 second". */
	out->ttl = (uint32_t)((e->expires_ms - now + 999) / 1000);
	for (i = 0; i < e->naddrs; i++) {
		if (e->addrs[i].family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&out->addrs[i];

			sin->sin_family = AF_INET;
			memcpy(&sin->sin_addr, e->addrs[i].addr, 4);
		} else {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addrs[i];

			sin6->sin6_family = AF_INET6;
			memcpy(&sin6->sin6_addr, e->addrs[i].addr, 16);
		}
	}
}

int
dns_lookup_cached(struct dns_resolver *r, const char *name,
    struct dns_answer *out)
{
	char norm[DNS_NAME_MAX + 1];
	struct dns_cache_entry *e;
	uint64_t now;

	if (r == NULL || out == NULL)
		return 0;
	if (dns_name_norm(name, norm) < 0) {
		r->stats.misses++;
		return 0;
	}
	now = dns_now_ms();
	e = dns_cache_find(r, norm, dns_hash(r, norm), now);
	if (e == NULL) {
		r->stats.misses++;
		return 0;
	}
	r->stats.hits++;
	dns_cache_answer(e, now, out);
	return 1;
}

/* ---- c-ares <-> libevent ---- */

static void
dns_timer_rearm(struct dns_resolver *r)
{
	struct timeval tvbuf, *tv;

	if (r->freeing)
		return;
	tv = ares_timeout(r->channel, NULL, &tvbuf);
	if (tv != NULL)
		evtimer_add(r->timer, tv);
	else
		evtimer_del(r->timer);
}

static void
dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;

	(void)fd;
	(void)what;
	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_timer_rearm(r);
}

static void
dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	/* s may be freed by c-ares closing the socket inside ares_process_fd. */
	struct dns_sock *s = arg;
	struct dns_resolver *r = s->r;

	ares_process_fd(r->channel,
	    (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
	dns_timer_rearm(r);
}

static void
dns_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_resolver *r = data;
	struct dns_sock *s, **pp;
	short what;

	for (pp = &r->socks; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->fd == fd)
			break;
	s = *pp;
	if (!readable && !writable) {
		if (s != NULL) {
			*pp = s->next;
			event_free(s->ev);
			free(s);
		}
		return;
	}
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		/*
		 * No way to report this to c-ares: the query then ends by
		 * its own timeout or by our guard timer.
		 */
		if (s == NULL)
			return;
		s->r = r;
		s->fd = fd;
		s->next = r->socks;
		r->socks = s;
	} else {
		event_free(s->ev);
		s->ev = NULL;
	}
	what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	s->ev = event_new(r->base, (evutil_socket_t)fd, what, dns_sock_cb, s);
	if (s->ev == NULL || event_add(s->ev, NULL) < 0) {
		/* As above: the guard timer ends whatever needed this socket. */
		for (pp = &r->socks; *pp != s; pp = &(*pp)->next)
			;
		*pp = s->next;
		if (s->ev != NULL)
			event_free(s->ev);
		free(s);
	}
}

/* ---- queries and tickets ---- */

static void
dns_inflight_remove(struct dns_query *q)
{
	struct dns_query **pp;

	if (!q->in_flight)
		return;
	pp = &q->r->inflight[q->hash & (DNS_INFLIGHT_BUCKETS - 1)];
	while (*pp != q)
		pp = &(*pp)->hnext;
	*pp = q->hnext;
	q->hnext = NULL;
	q->in_flight = 0;
}

static struct dns_query *
dns_inflight_find(struct dns_resolver *r, const char *name, uint32_t hash)
{
	struct dns_query *q;

	for (q = r->inflight[hash & (DNS_INFLIGHT_BUCKETS - 1)]; q != NULL;
	    q = q->hnext)
		if (q->hash == hash && strcmp(q->name, name) == 0)
			return q;
	return NULL;
}

static void
dns_ticket_unlink(struct dns_ticket *t)
{
	struct dns_query *q = t->q;

	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		q->thead = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	else
		q->ttail = t->prev;
	t->q = NULL;
}

static void
dns_query_free(struct dns_query *q)
{
	struct dns_resolver *r = q->r;
	struct dns_ticket *t;

	while ((t = q->thead) != NULL) {
		dns_ticket_unlink(t);
		free(t);
	}
	dns_inflight_remove(q);
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		r->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	if (q->ev != NULL)
		event_free(q->ev);
	free(q);
}

/* The answer is final: no new tickets join, the failure is counted. */
static void
dns_query_finish(struct dns_query *q, const struct dns_answer *ans)
{
	q->ans = *ans;
	q->done = 1;
	dns_inflight_remove(q);
	if (ans->status == DNS_FAILURE || ans->status == DNS_TIMEOUT)
		q->r->stats.failures++;
}

static void
dns_query_deliver(struct dns_query *q)
{
	struct dns_ticket *t;
	dns_cb cb;
	void *arg;

	/*
	 * The ticket is released before its callback runs, so a callback
	 * may cancel other tickets (unlinking them here) or start new
	 * lookups, which never join this finished query.
	 */
	while ((t = q->thead) != NULL) {
		dns_ticket_unlink(t);
		cb = t->cb;
		arg = t->arg;
		free(t);
		cb(arg, &q->ans);
	}
	q->delivered = 1;
	if (!q->ares_pending)
		dns_query_free(q);
}

/* The guard timer expired, or the answer is ready for delivery. */
static void
dns_query_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_answer ans;

	(void)fd;
	(void)what;
	if (!q->done) {
		memset(&ans, 0, sizeof(ans));
		ans.status = DNS_TIMEOUT;
		dns_query_finish(q, &ans);
	}
	dns_query_deliver(q);
}

static struct dns_query *
dns_query_new(struct dns_resolver *r, const char *name, size_t namelen,
    uint32_t hash)
{
	struct dns_query *q;

	q = calloc(1, sizeof(*q) + namelen + 1);
	if (q == NULL)
		return NULL;
	q->ev = event_new(r->base, -1, 0, dns_query_event_cb, q);
	if (q->ev == NULL) {
		free(q);
		return NULL;
	}
	q->r = r;
	q->hash = hash;
	memcpy(q->name, name, namelen + 1);
	q->next = r->queries;
	if (r->queries != NULL)
		r->queries->prev = q;
	r->queries = q;
	return q;
}

static int
dns_addr_seen(const struct dns_answer *ans, const struct sockaddr *sa)
{
	size_t i;

	for (i = 0; i < ans->naddrs; i++) {
		const struct sockaddr *o = (const struct sockaddr *)&ans->addrs[i];

		if (o->sa_family != sa->sa_family)
			continue;
		if (sa->sa_family == AF_INET &&
		    memcmp(&((const struct sockaddr_in *)o)->sin_addr,
		    &((const struct sockaddr_in *)sa)->sin_addr, 4) == 0)
			return 1;
		if (sa->sa_family == AF_INET6 &&
		    memcmp(&((const struct sockaddr_in6 *)o)->sin6_addr,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, 16) == 0)
			return 1;
	}
	return 0;
}

/*
 * IPv4 first, then IPv6, each in answer order: deterministic, and many
 * egress networks have v4 only. (c-ares' own RFC 6724 sort opens a socket
 * per address and turns a failure to open one, e.g. at the fd limit, into
 * "not found", which would then be negatively cached; so it is off.)
 */
static void
dns_answer_from_ares(const struct dns_resolver *r, int status,
    const struct ares_addrinfo *res, struct dns_answer *ans)
{
	static const int families[2] = { AF_INET, AF_INET6 };
	const struct ares_addrinfo_node *n;
	uint32_t ttl = UINT32_MAX;
	size_t f;

	memset(ans, 0, sizeof(*ans));
	switch (status) {
	case ARES_SUCCESS:
		break;
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
		ans->status = DNS_NXDOMAIN;
		ans->ttl = r->neg_ttl;
		return;
	case ARES_ETIMEOUT:
		ans->status = DNS_TIMEOUT;
		return;
	default:
		ans->status = DNS_FAILURE;
		return;
	}
	for (f = 0; f < 2 && res != NULL; f++) {
		for (n = res->nodes; n != NULL; n = n->ai_next) {
			if (ans->naddrs == DNS_MAX_ADDRS)
				break;
			if (n->ai_family != families[f] || n->ai_addr == NULL)
				continue;
			if (n->ai_family == AF_INET &&
			    n->ai_addrlen < (ares_socklen_t)sizeof(struct sockaddr_in))
				continue;
			if (n->ai_family == AF_INET6 &&
			    n->ai_addrlen < (ares_socklen_t)sizeof(struct sockaddr_in6))
				continue;
			if (dns_addr_seen(ans, n->ai_addr))
				continue;
			memcpy(&ans->addrs[ans->naddrs], n->ai_addr,
			    n->ai_family == AF_INET ? sizeof(struct sockaddr_in) :
			    sizeof(struct sockaddr_in6));
			if (n->ai_family == AF_INET)
				((struct sockaddr_in *)&ans->addrs[ans->naddrs])->sin_port = 0;
			else
				((struct sockaddr_in6 *)&ans->addrs[ans->naddrs])->sin6_port = 0;
			ans->naddrs++;
			if (n->ai_ttl >= 0 && (uint32_t)n->ai_ttl < ttl)
				ttl = (uint32_t)n->ai_ttl;
		}
	}
	if (ans->naddrs == 0) {
		/* A name with neither A nor AAAA is "no address", like NXDOMAIN. */
		ans->status = DNS_NXDOMAIN;
		ans->ttl = r->neg_ttl;
		return;
	}
	if (ttl < r->min_ttl)
		ttl = r->min_ttl;
	if (ttl > r->max_ttl)
		ttl = r->max_ttl;
	ans->status = DNS_OK;
	ans->ttl = ttl;
}

static void
dns_gai_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_query *q = arg;
	struct dns_resolver *r = q->r;
	struct dns_answer ans;

	(void)timeouts;
	q->ares_pending = 0;
	/* Being torn down: dns_resolver_free() frees the query itself. */
	if (status == ARES_EDESTRUCTION || r->freeing) {
		if (res != NULL)
			ares_freeaddrinfo(res);
		return;
	}
	dns_answer_from_ares(r, status, res, &ans);
	if (res != NULL)
		ares_freeaddrinfo(res);
	/* Cached even when every ticket is gone or the guard fired first. */
	dns_cache_put(r, q->name, q->hash, &ans);
	if (!q->done) {
		dns_query_finish(q, &ans);
		/*
		 * Possibly inside dns_resolve() or ares_process_fd(): deliver
		 * from the event loop instead.
		 */
		event_del(q->ev);
		event_active(q->ev, EV_TIMEOUT, 1);
	} else if (q->delivered) {
		dns_query_free(q);
	}
}

static void
dns_ticket_append(struct dns_query *q, struct dns_ticket *t)
{
	t->q = q;
	t->prev = q->ttail;
	t->next = NULL;
	if (q->ttail != NULL)
		q->ttail->next = t;
	else
		q->thead = t;
	q->ttail = t;
}

struct dns_ticket *
dns_resolve(struct dns_resolver *r, const char *name, dns_cb cb, void *arg)
{
	char norm[DNS_NAME_MAX + 1];
	struct ares_addrinfo_hints hints;
	struct dns_cache_entry *e;
	struct dns_ticket *t = NULL;
	struct dns_query *q;
	struct timeval tv;
	uint64_t now;
	uint32_t hash;
	int len;

	if (r == NULL || cb == NULL || r->freeing)
		goto fail;
	len = dns_name_norm(name, norm);
	if (len < 0)
		goto fail;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto fail;
	t->cb = cb;
	t->arg = arg;
	hash = dns_hash(r, norm);

	q = dns_inflight_find(r, norm, hash);
	if (q != NULL) {
		dns_ticket_append(q, t);
		return t;
	}

	now = dns_now_ms();
	e = dns_cache_find(r, norm, hash, now);
	if (e != NULL) {
		/* A query of its own, already done, delivered on the next turn. */
		q = dns_query_new(r, norm, (size_t)len, hash);
		if (q == NULL)
			goto fail;
		r->stats.hits++;
		dns_cache_answer(e, now, &q->ans);
		q->done = 1;
		dns_ticket_append(q, t);
		event_active(q->ev, EV_TIMEOUT, 1);
		return t;
	}

	q = dns_query_new(r, norm, (size_t)len, hash);
	if (q == NULL)
		goto fail;
	q->in_flight = 1;
	q->hnext = r->inflight[hash & (DNS_INFLIGHT_BUCKETS - 1)];
	r->inflight[hash & (DNS_INFLIGHT_BUCKETS - 1)] = q;
	dns_ticket_append(q, t);
	r->stats.queries++;

	tv.tv_sec = (time_t)(r->timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(r->timeout_ms % 1000) * 1000;
	evtimer_add(q->ev, &tv);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = ARES_AI_NOSORT;
	q->ares_pending = 1;
	/* May call dns_gai_cb before returning; that only defers delivery. */
	ares_getaddrinfo(r->channel, q->name, NULL, &hints, dns_gai_cb, q);
	dns_timer_rearm(r);
	return t;
fail:
	free(t);
	return NULL;
}

void
dns_cancel(struct dns_ticket *t)
{
	/*
	 * The query keeps going (c-ares cannot stop it) and frees itself once
	 * its answer is in and delivered to whoever is left.
	 */
	if (t == NULL)
		return;
	if (t->q != NULL)
		dns_ticket_unlink(t);
	free(t);
}

void
dns_resolver_stats(const struct dns_resolver *r, struct dns_stats *out)
{
	if (out == NULL)
		return;
	if (r == NULL) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = r->stats;
}

/* "host:port" forms normalised to what ares_set_servers_ports_csv reads. */
static int
dns_servers_csv(const struct dns_config *cfg, char *csv, size_t csvlen,
    char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	char one[INET6_ADDRSTRLEN + 16];
	size_t i, used = 0, n;

	csv[0] = '\0';
	if (cfg->nservers > DNS_MAX_SERVERS) {
		snprintf(err, errlen, "too many DNS servers (%zu, at most %d)",
		    cfg->nservers, DNS_MAX_SERVERS);
		return -1;
	}
	for (i = 0; i < cfg->nservers; i++) {
		if (cfg->servers[i] == NULL ||
		    dns_addr_parse(cfg->servers[i], 53, &ss, NULL) < 0) {
			snprintf(err, errlen, "DNS server \"%s\": expected "
			    "\"ip\", \"ip:port\" or \"[ipv6]:port\"",
			    cfg->servers[i] ? cfg->servers[i] : "(null)");
			return -1;
		}
		dns_addr_format((struct sockaddr *)&ss, one, sizeof(one));
		n = strlen(one);
		if (used + n + 2 > csvlen) {
			snprintf(err, errlen, "DNS server list too long");
			return -1;
		}
		if (used > 0)
			csv[used++] = ',';
		memcpy(csv + used, one, n + 1);
		used += n;
	}
	return 0;
}

struct dns_resolver *
dns_resolver_new(struct event_base *base, const struct dns_config *cfg,
    char *err, size_t errlen)
{
	static const struct dns_config defaults;
	char csv[DNS_MAX_SERVERS * (INET6_ADDRSTRLEN + 16)];
	char lookups[] = "b";
	struct ares_options opts;
	struct dns_resolver *r = NULL;
	char dummy[1];
	uint64_t per_try;
	int optmask, rc;

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (base == NULL) {
		snprintf(err, errlen, "no event base");
		goto fail;
	}
	if (cfg == NULL)
		cfg = &defaults;
	pthread_once(&dns_lib_once, dns_lib_init);
	if (dns_lib_status != ARES_SUCCESS) {
		snprintf(err, errlen, "ares_library_init: %s",
		    ares_strerror(dns_lib_status));
		goto fail;
	}

	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r->base = base;
	r->cache = calloc(DNS_CACHE_BUCKETS, sizeof(*r->cache));
	r->timer = evtimer_new(base, dns_timer_cb, r);
	if (r->cache == NULL || r->timer == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (getrandom(&r->seed, sizeof(r->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(r->seed))
		r->seed = (uint32_t)(uintptr_t)r ^ (uint32_t)dns_now_ms();

	r->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
	r->min_ttl = cfg->min_ttl;
	r->max_ttl = cfg->max_ttl ? cfg->max_ttl : DNS_DEFAULT_MAX_TTL;
	r->neg_ttl = cfg->neg_ttl ? cfg->neg_ttl : DNS_DEFAULT_NEG_TTL;
	if (r->max_ttl < r->min_ttl)
		r->max_ttl = r->min_ttl;

	if (dns_servers_csv(cfg, csv, sizeof(csv), err, errlen) < 0)
		goto fail;

	/*
	 * c-ares doubles the per-try timeout on each round over the servers,
	 * so with one server and two tries a third of the budget for the
	 * first try fills it exactly; the guard timer enforces it anyway.
	 */
	per_try = r->timeout_ms / (DNS_TRIES + 1);
	if (per_try == 0)
		per_try = 1;
	if (per_try > INT32_MAX)
		per_try = INT32_MAX;
	memset(&opts, 0, sizeof(opts));
	/*
	 * Names from clients are looked up exactly as given: no search
	 * domains, no HOSTALIASES, no /etc/hosts ("b": DNS only).
	 */
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	opts.timeout = (int)per_try;
	opts.tries = DNS_TRIES;
	opts.ndomains = 0;
	opts.domains = NULL;
	opts.lookups = lookups;
	opts.sock_state_cb = dns_sock_state_cb;
	opts.sock_state_cb_data = r;
	optmask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	    ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB;
	rc = ares_init_options(&r->channel, &opts, optmask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "ares_init_options: %s", ares_strerror(rc));
		goto fail;
	}
	r->channel_ok = 1;
	if (cfg->nservers > 0) {
		rc = ares_set_servers_ports_csv(r->channel, csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "DNS servers \"%s\": %s", csv,
			    ares_strerror(rc));
			goto fail;
		}
	}
	return r;
fail:
	dns_resolver_free(r);
	return NULL;
}

void
dns_resolver_free(struct dns_resolver *r)
{
	struct dns_sock *s;

	if (r == NULL)
		return;
	r->freeing = 1;
	/* Ends every c-ares query with ARES_EDESTRUCTION; none is delivered. */
	if (r->channel_ok)
		ares_destroy(r->channel);
	while (r->queries != NULL)
		dns_query_free(r->queries);
	while ((s = r->socks) != NULL) {
		r->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	if (r->timer != NULL)
		event_free(r->timer);
	if (r->cache != NULL) {
		while (r->oldest != NULL)
			dns_cache_unlink(r, r->oldest);
		free(r->cache);
	}
	free(r);
}

/*
 * dns/resolver.c: one c-ares channel per worker, driven by the worker's
 * event_base, with a TTL cache and detachable tickets.
 *
 * Shape of a lookup:
 *
 *   dns_resolve(name) ──► ticket ──► query (one per name in flight) ──► c-ares
 *                                      │        ▲          A and/or AAAA,
 *                                      │        │          one part each
 *                                      │        └─ guard timer (timeout_ms)
 *                                      ▼
 *                           parts combined, answer cached, then the query's
 *                           event is made active and delivers to each
 *                           remaining ticket
 *
 * Each part is a plain ares_query() rather than ares_getaddrinfo(): the
 * latter hands back no SOA for a negative answer, and RFC 2308 says a
 * negative answer lives min(SOA TTL, SOA MINIMUM) seconds. The raw reply
 * of a negative part carries that SOA in its authority section, so no
 * second round trip is needed (ares_parse_soa_reply() reads only the
 * answer section, hence the small cursor below).
 *
 * Expired positive entries stay in the cache stale_ttl seconds more. They
 * are never served as hits: only a lookup that ends in DNS_FAILURE or
 * DNS_TIMEOUT falls back to one, marked stale. NXDOMAIN is an answer and
 * replaces whatever was cached.
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

#include <arpa/inet.h>
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
#define DNS_DEFAULT_STALE_TTL   300
#define DNS_TRIES               2

/* Wire constants (RFC 1035, RFC 3596). */
#define DNS_CLASS_IN            1
#define DNS_TYPE_A              1
#define DNS_TYPE_SOA            6
#define DNS_TYPE_AAAA           28
#define DNS_HEADER_LEN          12

/* An address as the cache keeps it: no sockaddr padding per entry. */
struct dns_cache_addr {
	uint8_t family;
	uint8_t addr[16];
};

struct dns_cache_entry {
	struct dns_cache_entry *hnext;          /* bucket chain */
	struct dns_cache_entry *older, *newer;  /* insertion order, for eviction */
	uint64_t expires_ms;                    /* monotonic; fresh before */
	uint64_t keep_ms;                       /* stale until, then dropped */
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

/* What one family's query came to. */
enum dns_part_state {
	DNS_PART_UNUSED = 0,    /* not asked: the family setting excludes it */
	DNS_PART_PENDING,       /* sent, no reply yet */
	DNS_PART_ADDRS,         /* at least one address */
	DNS_PART_NODATA,        /* the name exists, no record of this type */
	DNS_PART_NXDOMAIN,      /* the name does not exist */
	DNS_PART_TIMEOUT,
	DNS_PART_FAILURE,
};

struct dns_part {
	struct dns_query *q;
	enum dns_part_state state;
	uint32_t ttl;           /* ADDRS: least record TTL; NODATA/NXDOMAIN:
	                           negative TTL, already clamped */
	size_t naddrs;
	struct dns_cache_addr addrs[DNS_MAX_ADDRS];
};

#define DNS_PART_V4     0
#define DNS_PART_V6     1

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *hnext;                /* in-flight bucket chain */
	struct dns_query *prev, *next;          /* every live query */
	struct dns_ticket *thead, *ttail;       /* waiting, in request order */
	struct event *ev;                       /* guard timer, then delivery */
	uint32_t hash;
	int in_flight;                          /* in the in-flight table */
	int ares_pending;                       /* parts c-ares still holds */
	int done;                               /* ans is final */
	int delivered;                          /* tickets have been answered */
	struct dns_part part[2];                /* DNS_PART_V4, DNS_PART_V6 */
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
	uint64_t stale_ms;                      /* 0: stale answers off */
	uint32_t min_ttl, max_ttl, neg_ttl;
	enum dns_family family;
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

/*
 * The entry for name, fresh or stale, or NULL; one past its stale window
 * found on the way is dropped.
 */
static struct dns_cache_entry *
dns_cache_find(struct dns_resolver *r, const char *name, uint32_t hash,
    uint64_t now)
{
	struct dns_cache_entry *e;

	for (e = r->cache[hash & (DNS_CACHE_BUCKETS - 1)]; e != NULL;
	    e = e->hnext) {
		if (e->hash != hash || strcmp(e->name, name) != 0)
			continue;
		if (e->keep_ms <= now) {
			dns_cache_unlink(r, e);
			return NULL;
		}
		return e;
	}
	return NULL;
}

/* A fresh entry only: what hits are made of. */
static struct dns_cache_entry *
dns_cache_fresh(struct dns_resolver *r, const char *name, uint32_t hash,
    uint64_t now)
{
	struct dns_cache_entry *e = dns_cache_find(r, name, hash, now);

	return e != NULL && e->expires_ms > now ? e : NULL;
}

static void
dns_cache_evict(struct dns_resolver *r, uint64_t now)
{
	struct dns_cache_entry *e, *next;
	int scanned = 0;

	/* Entries past any use first, within a bounded scan; else the oldest. */
	for (e = r->oldest; e != NULL && scanned < DNS_CACHE_EVICT_SCAN;
	    e = next, scanned++) {
		next = e->newer;
		if (e->keep_ms <= now)
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

	if (ans->status != DNS_OK && ans->status != DNS_NXDOMAIN)
		return;
	/* A real answer replaces what was kept, stale or not, even uncached. */
	e = dns_cache_find(r, name, hash, now);
	if (e != NULL)
		dns_cache_unlink(r, e);
	if (ans->ttl == 0)
		return;
	while (r->ncache >= DNS_CACHE_MAX)
		dns_cache_evict(r, now);

	e = calloc(1, sizeof(*e) + ans->naddrs * sizeof(e->addrs[0]) +
	    namelen + 1);
	if (e == NULL)
		return;         /* the cache is an optimisation: skip it */
	e->hash = hash;
	e->status = ans->status;
	e->expires_ms = now + (uint64_t)ans->ttl * 1000;
	e->keep_ms = e->expires_ms;
	if (ans->status == DNS_OK)
		e->keep_ms += r->stale_ms;
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
	if (e->expires_ms > now) {
		/* Round up: an entry with 300 ms left still has "1 second". */
		out->ttl = (uint32_t)((e->expires_ms - now + 999) / 1000);
	} else {
		out->stale = 1;
		out->stale_age = (uint32_t)((now - e->expires_ms) / 1000);
	}
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
	e = dns_cache_fresh(r, norm, dns_hash(r, norm), now);
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

/*
 * The answer is final: no new tickets join, the outcome is counted, and a
 * failure falls back to a stale entry when one is kept.
 */
static void
dns_query_finish(struct dns_query *q, const struct dns_answer *ans)
{
	struct dns_resolver *r = q->r;
	struct dns_cache_entry *e;
	uint64_t now;

	q->ans = *ans;
	q->done = 1;
	dns_inflight_remove(q);
	switch (ans->status) {
	case DNS_OK:
		break;
	case DNS_NXDOMAIN:
		r->stats.negative++;
		break;
	case DNS_FAILURE:
	case DNS_TIMEOUT:
		r->stats.failures++;
		now = dns_now_ms();
		/*
		 * Fresh is possible too: an earlier query of this name that
		 * the guard gave up on may have been answered meanwhile.
		 */
		e = dns_cache_find(r, q->name, q->hash, now);
		if (e != NULL && e->status == DNS_OK) {
			dns_cache_answer(e, now, &q->ans);
			if (q->ans.stale)
				r->stats.stale++;
		}
		break;
	}
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

static void dns_query_combine(const struct dns_query *q, struct dns_answer *ans);

/*
 * The guard timer expired, or the answer is ready for delivery. On expiry
 * the parts still pending count as timed out: an address one family
 * already gave is still an answer.
 */
static void
dns_query_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	struct dns_answer ans;

	(void)fd;
	(void)what;
	if (!q->done) {
		dns_query_combine(q, &ans);
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

/*
 * A bounds-checked reader over a DNS message: every fetch fails once the
 * data runs out, and a failed cursor stays failed.
 */
struct dns_cur {
	const uint8_t *p;
	size_t left;
	int bad;
};

static void
cur_skip(struct dns_cur *c, size_t n)
{
	if (c->bad || c->left < n) {
		c->bad = 1;
		return;
	}
	c->p += n;
	c->left -= n;
}

static uint32_t
cur_be(struct dns_cur *c, size_t n)
{
	uint32_t v = 0;
	size_t i;

	if (c->bad || c->left < n) {
		c->bad = 1;
		return 0;
	}
	for (i = 0; i < n; i++)
		v = v << 8 | c->p[i];
	c->p += n;
	c->left -= n;
	return v;
}

/*
 * Skip a domain name: labels up to the root label or a compression
 * pointer. Pointers are not followed; only their 2 bytes are skipped.
 */
static void
cur_skip_name(struct dns_cur *c)
{
	uint32_t len;
	size_t total = 0;

	for (;;) {
		len = cur_be(c, 1);
		if (c->bad || len == 0)
			return;
		if ((len & 0xc0) == 0xc0) {
			cur_skip(c, 1);
			return;
		}
		/* 0x40 and 0x80 label types are obsolete and unused. */
		total += len + 1;
		if ((len & 0xc0) != 0 || total > 255) {
			c->bad = 1;
			return;
		}
		cur_skip(c, len);
	}
}

/*
 * The negative TTL a reply carries, RFC 2308 section 5: the first SOA of
 * the authority section, min(its TTL, its MINIMUM field). Layout:
 *
 *   header   id(2) flags(2) qdcount(2) ancount(2) nscount(2) arcount(2)
 *   question qname, qtype(2), qclass(2)                  qdcount times
 *   RR       owner, type(2), class(2), ttl(4), rdlength(2), rdata
 *   SOA rdata  mname, rname, serial(4) refresh(4) retry(4) expire(4)
 *              minimum(4)
 *
 * Returns 0 and sets *ttl, or -1 when there is no readable SOA.
 */
static int
dns_reply_soa_ttl(const unsigned char *buf, int len, uint32_t *ttl)
{
	struct dns_cur c, rd;
	uint32_t qd, an, ns, i, type, class, rttl, rdlen, minimum;

	if (buf == NULL || len < DNS_HEADER_LEN)
		return -1;
	c.p = buf;
	c.left = (size_t)len;
	c.bad = 0;
	cur_skip(&c, 4);
	qd = cur_be(&c, 2);
	an = cur_be(&c, 2);
	ns = cur_be(&c, 2);
	cur_skip(&c, 2);
	for (i = 0; i < qd && !c.bad; i++) {
		cur_skip_name(&c);
		cur_skip(&c, 4);
	}
	/* A CNAME chain may precede a negative answer: skip the answers. */
	for (i = 0; i < an && !c.bad; i++) {
		cur_skip_name(&c);
		cur_skip(&c, 8);
		cur_skip(&c, cur_be(&c, 2));
	}
	for (i = 0; i < ns && !c.bad; i++) {
		cur_skip_name(&c);
		type = cur_be(&c, 2);
		class = cur_be(&c, 2);
		rttl = cur_be(&c, 4);
		rdlen = cur_be(&c, 2);
		if (c.bad || rdlen > c.left)
			return -1;
		if (type != DNS_TYPE_SOA || class != DNS_CLASS_IN) {
			cur_skip(&c, rdlen);
			continue;
		}
		rd.p = c.p;
		rd.left = rdlen;
		rd.bad = 0;
		cur_skip_name(&rd);
		cur_skip_name(&rd);
		cur_skip(&rd, 16);
		minimum = cur_be(&rd, 4);
		if (rd.bad)
			return -1;
		/* RFC 2181 section 8: a TTL with the top bit set means 0. */
		if (rttl > INT32_MAX)
			rttl = 0;
		*ttl = rttl < minimum ? rttl : minimum;
		return 0;
	}
	return -1;
}

/* A negative part lives as its SOA says, within [1, neg_ttl]. */
static uint32_t
dns_negative_ttl(const struct dns_resolver *r, const unsigned char *buf,
    int len)
{
	uint32_t ttl;

	if (dns_reply_soa_ttl(buf, len, &ttl) < 0)
		return r->neg_ttl;
	if (ttl < 1)
		ttl = 1;
	if (ttl > r->neg_ttl)
		ttl = r->neg_ttl;
	return ttl;
}

static int
dns_part_seen(const struct dns_part *p, const struct dns_cache_addr *a,
    size_t alen)
{
	size_t i;

	for (i = 0; i < p->naddrs; i++)
		if (memcmp(p->addrs[i].addr, a->addr, alen) == 0)
			return 1;
	return 0;
}

/*
 * The addresses of a reply, in answer order, duplicates dropped. c-ares
 * follows the CNAME chain and lowers each TTL to the chain's.
 */
static void
dns_part_addrs(struct dns_part *p, int family, const unsigned char *buf,
    int len)
{
	struct ares_addrttl a4[DNS_MAX_ADDRS];
	struct ares_addr6ttl a6[DNS_MAX_ADDRS];
	struct dns_cache_addr one;
	uint32_t ttl = UINT32_MAX;
	int i, n = DNS_MAX_ADDRS, rc, rttl;

	if (family == AF_INET)
		rc = ares_parse_a_reply(buf, len, NULL, a4, &n);
	else
		rc = ares_parse_aaaa_reply(buf, len, NULL, a6, &n);
	if (rc != ARES_SUCCESS && rc != ARES_ENODATA) {
		p->state = DNS_PART_FAILURE;
		return;
	}
	memset(&one, 0, sizeof(one));
	one.family = (uint8_t)family;
	for (i = 0; i < n && rc == ARES_SUCCESS; i++) {
		if (family == AF_INET) {
			memcpy(one.addr, &a4[i].ipaddr, 4);
			rttl = a4[i].ttl;
		} else {
			memcpy(one.addr, &a6[i].ip6addr, 16);
			rttl = a6[i].ttl;
		}
		if (dns_part_seen(p, &one, family == AF_INET ? 4 : 16))
			continue;
		p->addrs[p->naddrs++] = one;
		if (rttl < 0)
			rttl = 0;
		if ((uint32_t)rttl < ttl)
			ttl = (uint32_t)rttl;
	}
	if (p->naddrs == 0) {
		/* A CNAME leading nowhere of this type: no data. */
		p->state = DNS_PART_NODATA;
		p->ttl = dns_negative_ttl(p->q->r, buf, len);
		return;
	}
	p->state = DNS_PART_ADDRS;
	p->ttl = ttl;
}

static void
dns_part_parse(struct dns_part *p, int family, int status,
    const unsigned char *buf, int len)
{
	switch (status) {
	case ARES_SUCCESS:
		dns_part_addrs(p, family, buf, len);
		break;
	case ARES_ENODATA:
		p->state = DNS_PART_NODATA;
		p->ttl = dns_negative_ttl(p->q->r, buf, len);
		break;
	case ARES_ENOTFOUND:
		p->state = DNS_PART_NXDOMAIN;
		p->ttl = dns_negative_ttl(p->q->r, buf, len);
		break;
	case ARES_ETIMEOUT:
		p->state = DNS_PART_TIMEOUT;
		break;
	default:
		p->state = DNS_PART_FAILURE;
		break;
	}
}

static void
dns_answer_put_addr(struct dns_answer *ans, const struct dns_cache_addr *a)
{
	struct sockaddr_storage *ss = &ans->addrs[ans->naddrs++];

	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a->addr, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->addr, 16);
	}
}

/*
 * One answer from the parts, pending ones counting as timed out:
 *   - any address: DNS_OK, the preferred family first, each in DNS order
 *     (a deterministic order: v4-only egress networks want A first, and
 *     c-ares' RFC 6724 sort opens a socket per address, turning a failure
 *     to open one, e.g. at the fd limit, into "not found");
 *   - else NXDOMAIN from either part (it is about the name, not a type),
 *     or "no data" from every part asked: DNS_NXDOMAIN, with the least
 *     negative TTL;
 *   - else DNS_TIMEOUT if a part timed out, DNS_FAILURE otherwise.
 */
static void
dns_query_combine(const struct dns_query *q, struct dns_answer *ans)
{
	const struct dns_resolver *r = q->r;
	const struct dns_part *p;
	uint32_t pos_ttl = UINT32_MAX, neg_ttl = UINT32_MAX;
	int order[2] = { DNS_PART_V4, DNS_PART_V6 };
	int nxdomain = 0, all_nodata = 1, timeout = 0, k;
	size_t i;

	if (r->family == DNS_FAMILY_PREFER_V6) {
		order[0] = DNS_PART_V6;
		order[1] = DNS_PART_V4;
	}
	memset(ans, 0, sizeof(*ans));
	for (k = 0; k < 2; k++) {
		p = &q->part[order[k]];
		switch (p->state) {
		case DNS_PART_UNUSED:
			break;
		case DNS_PART_ADDRS:
			all_nodata = 0;
			for (i = 0; i < p->naddrs && ans->naddrs < DNS_MAX_ADDRS; i++)
				dns_answer_put_addr(ans, &p->addrs[i]);
			if (p->ttl < pos_ttl)
				pos_ttl = p->ttl;
			break;
		case DNS_PART_NXDOMAIN:
			nxdomain = 1;
			/* FALLTHROUGH */
		case DNS_PART_NODATA:
			if (p->ttl < neg_ttl)
				neg_ttl = p->ttl;
			break;
		case DNS_PART_PENDING:
		case DNS_PART_TIMEOUT:
			timeout = 1;
			all_nodata = 0;
			break;
		case DNS_PART_FAILURE:
			all_nodata = 0;
			break;
		}
	}
	if (ans->naddrs > 0) {
		if (pos_ttl < r->min_ttl)
			pos_ttl = r->min_ttl;
		if (pos_ttl > r->max_ttl)
			pos_ttl = r->max_ttl;
		ans->status = DNS_OK;
		ans->ttl = pos_ttl;
	} else if (nxdomain || all_nodata) {
		ans->status = DNS_NXDOMAIN;
		ans->ttl = neg_ttl;
	} else {
		ans->status = timeout ? DNS_TIMEOUT : DNS_FAILURE;
	}
}

/* Every part is in: cache the whole answer, deliver it if not yet done. */
static void
dns_query_complete(struct dns_query *q)
{
	struct dns_answer ans;

	dns_query_combine(q, &ans);
	/* Cached even when every ticket is gone or the guard fired first. */
	dns_cache_put(q->r, q->name, q->hash, &ans);
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
dns_part_cb(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_part *p = arg;
	struct dns_query *q = p->q;

	(void)timeouts;
	q->ares_pending--;
	/* Being torn down: dns_resolver_free() frees the query itself. */
	if (status == ARES_EDESTRUCTION || q->r->freeing)
		return;
	dns_part_parse(p, p == &q->part[DNS_PART_V4] ? AF_INET : AF_INET6,
	    status, abuf, alen);
	if (q->ares_pending == 0)
		dns_query_complete(q);
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

/*
 * A query answered without asking (a cache hit or a literal): the caller
 * fills q->ans before returning, and the ticket's callback runs on the
 * loop's next turn, as for every other answer.
 */
static struct dns_query *
dns_query_done(struct dns_resolver *r, const char *norm, size_t len,
    uint32_t hash, struct dns_ticket *t)
{
	struct dns_query *q = dns_query_new(r, norm, len, hash);

	if (q == NULL)
		return NULL;
	q->done = 1;
	dns_ticket_append(q, t);
	event_active(q->ev, EV_TIMEOUT, 1);
	return q;
}

/* Puts q in flight: the in-flight table, its timeout and the c-ares parts. */
static void
dns_query_send(struct dns_resolver *r, struct dns_query *q, uint32_t hash)
{
	struct timeval tv;

	q->in_flight = 1;
	q->hnext = r->inflight[hash & (DNS_INFLIGHT_BUCKETS - 1)];
	r->inflight[hash & (DNS_INFLIGHT_BUCKETS - 1)] = q;
	r->stats.queries++;

	tv.tv_sec = (time_t)(r->timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(r->timeout_ms % 1000) * 1000;
	evtimer_add(q->ev, &tv);

	/*
	 * Both parts are marked before either is sent: c-ares may answer
	 * one from inside ares_query(), and the query must not look complete
	 * then. That only defers delivery, as everywhere else.
	 */
	q->part[DNS_PART_V4].q = q;
	q->part[DNS_PART_V6].q = q;
	if (r->family != DNS_FAMILY_V6_ONLY) {
		q->part[DNS_PART_V4].state = DNS_PART_PENDING;
		q->ares_pending++;
	}
	if (r->family != DNS_FAMILY_V4_ONLY) {
		q->part[DNS_PART_V6].state = DNS_PART_PENDING;
		q->ares_pending++;
	}
	if (q->part[DNS_PART_V4].state == DNS_PART_PENDING)
		ares_query(r->channel, q->name, DNS_CLASS_IN, DNS_TYPE_A,
		    dns_part_cb, &q->part[DNS_PART_V4]);
	if (q->part[DNS_PART_V6].state == DNS_PART_PENDING)
		ares_query(r->channel, q->name, DNS_CLASS_IN, DNS_TYPE_AAAA,
		    dns_part_cb, &q->part[DNS_PART_V6]);
	dns_timer_rearm(r);
}

struct dns_ticket *
dns_resolve(struct dns_resolver *r, const char *name, dns_cb cb, void *arg)
{
	char norm[DNS_NAME_MAX + 1];
	struct dns_cache_entry *e;
	struct dns_ticket *t = NULL;
	struct dns_query *q;
	struct dns_cache_addr lit;
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
	e = dns_cache_fresh(r, norm, hash, now);
	if (e != NULL) {
		/* A query of its own, already done, delivered on the next turn. */
		q = dns_query_done(r, norm, (size_t)len, hash, t);
		if (q == NULL)
			goto fail;
		r->stats.hits++;
		dns_cache_answer(e, now, &q->ans);
		return t;
	}

	/*
	 * A dotted-quad literal is its own answer (as ares_getaddrinfo() had
	 * it), never a question for DNS; ttl 0 keeps it out of the cache.
	 */
	memset(&lit, 0, sizeof(lit));
	if (inet_pton(AF_INET, norm, lit.addr) == 1) {
		q = dns_query_done(r, norm, (size_t)len, hash, t);
		if (q == NULL)
			goto fail;
		if (r->family == DNS_FAMILY_V6_ONLY) {
			q->ans.status = DNS_NXDOMAIN;
		} else {
			lit.family = AF_INET;
			dns_answer_put_addr(&q->ans, &lit);
		}
		return t;
	}

	q = dns_query_new(r, norm, (size_t)len, hash);
	if (q == NULL)
		goto fail;
	dns_ticket_append(q, t);
	dns_query_send(r, q, hash);
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

/* Timeouts, TTL bounds and the address family, defaults filled in. 0, or
 * -1 with the reason in err. */
static int
resolver_settings(struct dns_resolver *r, const struct dns_config *cfg,
    char *err, size_t errlen)
{
	r->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;
	r->min_ttl = cfg->min_ttl;
	r->max_ttl = cfg->max_ttl ? cfg->max_ttl : DNS_DEFAULT_MAX_TTL;
	r->neg_ttl = cfg->neg_ttl ? cfg->neg_ttl : DNS_DEFAULT_NEG_TTL;
	if (r->max_ttl < r->min_ttl)
		r->max_ttl = r->min_ttl;
	if (cfg->stale_ttl == DNS_STALE_OFF)
		r->stale_ms = 0;
	else
		r->stale_ms = (uint64_t)(cfg->stale_ttl ? cfg->stale_ttl :
		    DNS_DEFAULT_STALE_TTL) * 1000;
	switch (cfg->family) {
	case DNS_FAMILY_PREFER_V4:
	case DNS_FAMILY_PREFER_V6:
	case DNS_FAMILY_V4_ONLY:
	case DNS_FAMILY_V6_ONLY:
		r->family = cfg->family;
		return 0;
	}
	snprintf(err, errlen, "unknown address family setting %d",
	    (int)cfg->family);
	return -1;
}

/* The c-ares channel, on the configured servers (else resolv.conf's). 0,
 * or -1 with the reason in err. */
static int
resolver_channel(struct dns_resolver *r, const struct dns_config *cfg,
    char *err, size_t errlen)
{
	char csv[DNS_MAX_SERVERS * (INET6_ADDRSTRLEN + 16)];
	char lookups[] = "b";
	struct ares_options opts;
	uint64_t per_try;
	int optmask, rc;

	if (dns_servers_csv(cfg, csv, sizeof(csv), err, errlen) < 0)
		return -1;
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
		return -1;
	}
	r->channel_ok = 1;
	if (cfg->nservers > 0) {
		rc = ares_set_servers_ports_csv(r->channel, csv);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "DNS servers \"%s\": %s", csv,
			    ares_strerror(rc));
			return -1;
		}
	}
	return 0;
}

struct dns_resolver *
dns_resolver_new(struct event_base *base, const struct dns_config *cfg,
    char *err, size_t errlen)
{
	static const struct dns_config defaults;
	struct dns_resolver *r = NULL;
	char dummy[1];

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
	if (resolver_settings(r, cfg, err, errlen) != 0 ||
	    resolver_channel(r, cfg, err, errlen) != 0)
		goto fail;
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

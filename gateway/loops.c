/*
 * The loop table: the local addresses of every upstream connection this
 * gateway has open, across workers. A name that resolves to one of the
 * gateway's own addresses (its Service, its pod, a VM's public address)
 * would otherwise make it connect to itself, accept that connection as a
 * client, and chain connections until descriptors run out. A client whose
 * address and port are in the table, and which reached the address that
 * socket connected to, is one of our own sockets. Both ends are compared:
 * on one host, a client's source port may equal one of our upstream
 * sockets' (the kernel shares ephemeral ports between destinations), and
 * that client is no loop.
 *
 * Open hashing in striped buckets: one lock per stripe, so two workers
 * seldom wait for each other; entries are allocated per connection.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "gateway/gateway.h"

#define LOOP_STRIPES 64
#define LOOP_BUCKETS 1024       /* per stripe */

struct loop_key {
	uint8_t addr[16];
	uint16_t port;
	uint8_t family;
};

struct loop_ent {
	struct loop_ent *next;
	struct loop_key k;              /* our end */
	struct loop_key remote;         /* where it connected */
};

struct loop_stripe {
	pthread_mutex_t lock;
	struct loop_ent *b[LOOP_BUCKETS];
};

struct gw_loops {
	struct loop_stripe s[LOOP_STRIPES];
};

/* An IPv4-mapped address is keyed as the IPv4 one: our upstream socket
 * may say ::ffff:127.0.0.1 where the listener that accepts it says
 * 127.0.0.1. */
static int
key_of(const struct sockaddr *addr, struct loop_key *k)
{
	struct sockaddr_storage ss;
	const struct sockaddr *sa = dns_addr_unmap(addr, &ss);

	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(k->addr, &in->sin_addr, 4);
		k->port = in->sin_port;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(k->addr, &in6->sin6_addr, 16);
		k->port = in6->sin6_port;
	} else {
		return -1;
	}
	k->family = (uint8_t)sa->sa_family;
	return 0;
}

static uint32_t
key_hash(const struct loop_key *k)
{
	uint32_t h = 2166136261u;
	const uint8_t *p = (const uint8_t *)k;

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static int
key_eq(const struct loop_key *a, const struct loop_key *b)
{
	return a->family == b->family && a->port == b->port &&
	    memcmp(a->addr, b->addr, 16) == 0;
}

struct gw_loops *
gw_loops_new(void)
{
	struct gw_loops *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	for (size_t i = 0; i < LOOP_STRIPES; i++)
		pthread_mutex_init(&t->s[i].lock, NULL);
	return t;
}

void
gw_loops_free(struct gw_loops *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < LOOP_STRIPES; i++) {
		for (size_t j = 0; j < LOOP_BUCKETS; j++) {
			struct loop_ent *e, *next;

			for (e = t->s[i].b[j]; e != NULL; e = next) {
				next = e->next;
				free(e);
			}
		}
		pthread_mutex_destroy(&t->s[i].lock);
	}
	free(t);
}

int
gw_loops_add(struct gw_loops *t, const struct sockaddr *sa,
    const struct sockaddr *remote)
{
	struct loop_ent *e = malloc(sizeof(*e));
	struct loop_stripe *st;
	uint32_t h;

	if (e == NULL || key_of(sa, &e->k) != 0 ||
	    key_of(remote, &e->remote) != 0) {
		free(e);
		return -1;
	}
	h = key_hash(&e->k);
	st = &t->s[h % LOOP_STRIPES];
	pthread_mutex_lock(&st->lock);
	e->next = st->b[(h / LOOP_STRIPES) % LOOP_BUCKETS];
	st->b[(h / LOOP_STRIPES) % LOOP_BUCKETS] = e;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

void
gw_loops_del(struct gw_loops *t, const struct sockaddr *sa)
{
	struct loop_key k;
	struct loop_stripe *st;
	struct loop_ent **pp, *e = NULL;
	uint32_t h;

	if (t == NULL || key_of(sa, &k) != 0)
		return;
	h = key_hash(&k);
	st = &t->s[h % LOOP_STRIPES];
	pthread_mutex_lock(&st->lock);
	for (pp = &st->b[(h / LOOP_STRIPES) % LOOP_BUCKETS]; *pp != NULL;
	    pp = &(*pp)->next) {
		if (key_eq(&(*pp)->k, &k)) {
			e = *pp;
			*pp = e->next;
			break;
		}
	}
	pthread_mutex_unlock(&st->lock);
	free(e);
}

int
gw_loops_has(struct gw_loops *t, const struct sockaddr *sa,
    const struct sockaddr *local)
{
	struct loop_key k, lk;
	struct loop_stripe *st;
	const struct loop_ent *e;
	uint32_t h;
	int found = 0;

	if (key_of(sa, &k) != 0 || (local != NULL && key_of(local, &lk) != 0))
		return 0;
	h = key_hash(&k);
	st = &t->s[h % LOOP_STRIPES];
	pthread_mutex_lock(&st->lock);
	for (e = st->b[(h / LOOP_STRIPES) % LOOP_BUCKETS]; e != NULL; e = e->next)
		if (key_eq(&e->k, &k) &&
		    (local == NULL || key_eq(&e->remote, &lk))) {
			found = 1;
			break;
		}
	pthread_mutex_unlock(&st->lock);
	return found;
}

/*
 * The redirect-chain table: two kinds of entries in one slot array,
 * keyed by a hash of (kind, source IP[, host, port]). A key lives in one
 * bucket of PROBE slots; a full bucket loses its oldest entry, so the
 * table never grows and never refuses. Buckets are spread over LOCKS
 * mutexes: every TLS connection consults the table when it ends, and
 * workers should not queue behind one lock for that.
 */
#include "logging/chain.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#define PROBE   8               /* slots per bucket */
#define LOCKS   64

enum { K_FREE = 0, K_REDIRECT, K_ALLOWED };

struct slot {
	uint64_t hash;
	uint64_t at_ms;
	uint8_t kind;
	uint8_t ip[16];         /* IPv4 as v4-mapped */
	uint16_t port;
	char host[CHAIN_HOST_MAX + 1];
	char id[CHAIN_ID_MAX];
};

struct chain_table {
	pthread_mutex_t locks[LOCKS];
	size_t mask;                    /* buckets - 1 */
	uint64_t window_ms, after_ms;
	struct slot *slots;
};

struct chain_table *
chain_new(size_t slots, uint64_t window_ms, uint64_t after_ms)
{
	struct chain_table *t;
	size_t n = 16 * PROBE;

	if (slots == 0)
		slots = 4096;
	while (n < slots && n < ((size_t)1 << 24))
		n <<= 1;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->slots = calloc(n, sizeof(*t->slots));
	if (t->slots == NULL) {
		free(t);
		return NULL;
	}
	for (size_t i = 0; i < LOCKS; i++)
		pthread_mutex_init(&t->locks[i], NULL);
	t->mask = n / PROBE - 1;
	t->window_ms = window_ms;
	t->after_ms = after_ms;
	return t;
}

void
chain_free(struct chain_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < LOCKS; i++)
		pthread_mutex_destroy(&t->locks[i]);
	free(t->slots);
	free(t);
}

/* The client's IP as 16 bytes; 0 when the family is not IP. */
static int
ip_key(const struct sockaddr *sa, uint8_t out[16])
{
	memset(out, 0, 16);
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 1;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 1;
	}
	return 0;
}

/* FNV-1a, 64-bit: short keys, no adversary gains by colliding (a probe
 * window is bounded and its oldest entry simply goes). */
static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t
key_hash(int kind, const uint8_t ip[16], const char *host, uint16_t port)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	uint8_t k = (uint8_t)kind;

	h = fnv(h, &k, 1);
	h = fnv(h, ip, 16);
	if (host != NULL) {
		h = fnv(h, host, strlen(host));
		h = fnv(h, &port, sizeof(port));
	}
	return h | 1;
}

static int
slot_is(const struct slot *s, uint64_t h, int kind, const uint8_t ip[16],
    const char *host, uint16_t port)
{
	return s->kind == kind && s->hash == h && memcmp(s->ip, ip, 16) == 0 &&
	    (host == NULL || (s->port == port && strcmp(s->host, host) == 0));
}

static pthread_mutex_t *
lock_of(struct chain_table *t, uint64_t h)
{
	return &t->locks[(h & t->mask) % LOCKS];
}

/* The slot holding the key, else the free or oldest slot of its bucket;
 * called with the bucket's lock held. */
static struct slot *
find(struct chain_table *t, uint64_t h, int kind, const uint8_t ip[16],
    const char *host, uint16_t port, int *found)
{
	struct slot *bucket = &t->slots[(h & t->mask) * PROBE];
	struct slot *victim = NULL;

	*found = 0;
	for (size_t i = 0; i < PROBE; i++) {
		struct slot *s = &bucket[i];

		if (slot_is(s, h, kind, ip, host, port)) {
			*found = 1;
			return s;
		}
		if (victim == NULL || (victim->kind != K_FREE &&
		    (s->kind == K_FREE || s->at_ms < victim->at_ms)))
			victim = s;
	}
	return victim;
}

/* src into dst[cap], cut to fit, always terminated (no snprintf on the
 * path every allowed connection takes). */
static void
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n;

	if (cap == 0)
		return;
	n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
put(struct chain_table *t, int kind, const struct sockaddr *src,
    const char *host, uint16_t port, const char *id, uint64_t now_ms)
{
	uint8_t ip[16];
	uint64_t h;
	struct slot *s;
	int found;

	if (t == NULL || host == NULL || !ip_key(src, ip) ||
	    strlen(host) > CHAIN_HOST_MAX)
		return;
	/* A source has one "last allowed" entry: the key leaves the host out. */
	h = key_hash(kind, ip, kind == K_REDIRECT ? host : NULL, port);
	pthread_mutex_lock(lock_of(t, h));
	s = find(t, h, kind, ip, kind == K_REDIRECT ? host : NULL, port, &found);
	s->hash = h;
	s->kind = (uint8_t)kind;
	s->at_ms = now_ms;
	memcpy(s->ip, ip, 16);
	s->port = port;
	copy_str(s->host, sizeof(s->host), host);
	copy_str(s->id, sizeof(s->id), id != NULL ? id : "");
	pthread_mutex_unlock(lock_of(t, h));
}

void
chain_note_redirect(struct chain_table *t, const struct sockaddr *src,
    const char *host, uint16_t port, const char *id, uint64_t now_ms)
{
	put(t, K_REDIRECT, src, host, port, id, now_ms);
}

void
chain_note_allowed(struct chain_table *t, const struct sockaddr *src,
    const char *name, uint64_t now_ms)
{
	put(t, K_ALLOWED, src, name, 0, NULL, now_ms);
}

int
chain_follows(struct chain_table *t, const struct sockaddr *src,
    const char *host, uint16_t port, uint64_t now_ms, char *id, size_t idlen)
{
	uint8_t ip[16];
	uint64_t h;
	struct slot *s;
	int found, rc = 0;

	if (t == NULL || host == NULL || !ip_key(src, ip))
		return 0;
	h = key_hash(K_REDIRECT, ip, host, port);
	pthread_mutex_lock(lock_of(t, h));
	s = find(t, h, K_REDIRECT, ip, host, port, &found);
	if (found && now_ms - s->at_ms <= t->window_ms && now_ms >= s->at_ms) {
		copy_str(id, idlen, s->id);
		rc = 1;
	}
	pthread_mutex_unlock(lock_of(t, h));
	return rc;
}

int
chain_last_allowed(struct chain_table *t, const struct sockaddr *src,
    const char *name, uint64_t now_ms, char *out, size_t outlen,
    uint64_t *ago_ms)
{
	uint8_t ip[16];
	uint64_t h;
	struct slot *s;
	int found, rc = 0;

	if (t == NULL || !ip_key(src, ip))
		return 0;
	h = key_hash(K_ALLOWED, ip, NULL, 0);
	pthread_mutex_lock(lock_of(t, h));
	s = find(t, h, K_ALLOWED, ip, NULL, 0, &found);
	if (found && now_ms >= s->at_ms && now_ms - s->at_ms <= t->after_ms &&
	    (name == NULL || strcmp(name, s->host) != 0)) {
		copy_str(out, outlen, s->host);
		*ago_ms = now_ms - s->at_ms;
		rc = 1;
	}
	pthread_mutex_unlock(lock_of(t, h));
	return rc;
}

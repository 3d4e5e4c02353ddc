/*
 * bench/peers/common.h: what the load generator (loadgen.c) and the
 * stand-in upstream (upstream.c) of the side-by-side benchmark share.
 *
 * - The ClientHello template: a real ClientHello captured once from
 *   OpenSSL (run-peers.sh writes it with Python's ssl module), and the
 *   code that rebuilds it for another server name. Both sides build the
 *   same bytes for the same name, so the upstream can compare every byte it
 *   received with what the client sent.
 * - The reply pattern: deterministic bytes with a period of 65,521 (a
 *   prime, so a shifted or repeated block never lines up again), starting
 *   at an offset derived from the server name: a reply relayed to the
 *   wrong connection fails the check too.
 * - The allow-list the upstream keeps (its own copy, to catch a proxy that
 *   forwards a name it should have refused).
 *
 * Header-only (static functions) so each program compiles with one plain
 * "cc -O2" and no build-system changes. Not part of egressd.
 */
#ifndef BENCH_PEERS_COMMON_H
#define BENCH_PEERS_COMMON_H

#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAT_PERIOD 65521u
#define PAT_SLICE 65536u        /* the longest run compared or sent at once */
#define HELLO_MAX (16384 + 5)   /* one TLS record */
#define NAME_MAX_LEN 253

static uint8_t pat_buf[PAT_PERIOD + PAT_SLICE];

static inline void
pat_init(void)
{
	uint32_t i;

	for (i = 0; i < PAT_PERIOD + PAT_SLICE; i++) {
		uint32_t k = i % PAT_PERIOD;

		pat_buf[i] = (uint8_t)((k * 2654435761u) >> 24 ^ k);
	}
}

/* FNV-1a of the name: where the reply pattern starts for this name. */
static inline uint32_t
name_offset(const char *name, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (uint8_t)name[i];
		h *= 16777619u;
	}
	return h % PAT_PERIOD;
}

static inline uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- a bounds-checked cursor over wire bytes ---------------------------- */

struct cur {
	const uint8_t *p;
	size_t left;
	int bad;
};

static inline unsigned
cur_u8(struct cur *c)
{
	if (c->bad || c->left < 1) {
		c->bad = 1;
		return 0;
	}
	c->left--;
	return *c->p++;
}

static inline unsigned
cur_u16(struct cur *c)
{
	unsigned hi = cur_u8(c);

	return hi << 8 | cur_u8(c);
}

static inline unsigned
cur_u24(struct cur *c)
{
	unsigned hi = cur_u8(c);

	return hi << 16 | cur_u16(c);
}

static inline void
cur_skip(struct cur *c, size_t n)
{
	if (c->bad || c->left < n) {
		c->bad = 1;
		return;
	}
	c->p += n;
	c->left -= n;
}

/* ---- the ClientHello -----------------------------------------------------
 *
 * One TLS record holding one handshake message:
 *
 *   record:    type(1)=22 version(2) length(2)
 *   handshake: type(1)=1 length(3)
 *   hello:     version(2) random(32) session_id(1+n) cipher_suites(2+n)
 *              compression_methods(1+n) extensions_length(2)
 *   extension: type(2) length(2) data
 *   server_name (type 0): list_length(2) { name_type(1)=0 length(2) name }
 *
 * hello_locate() finds the offsets rebuilding needs; it fails unless every
 * length agrees with what is left, and unless there is exactly one record.
 */
struct hello_map {
	size_t ext_len_off;     /* the 2-byte extensions length */
	size_t sni_off;         /* the server_name extension's type field */
	size_t sni_end;         /* one past that extension */
	size_t name_off, name_len;
};

static inline int
hello_locate(const uint8_t *buf, size_t len, struct hello_map *m)
{
	struct cur c = { buf, len, 0 };
	size_t reclen, hslen, extlen, end;

	memset(m, 0, sizeof(*m));
	if (cur_u8(&c) != 22)
		return -1;
	cur_skip(&c, 2);
	reclen = cur_u16(&c);
	if (c.bad || reclen != c.left)
		return -1;
	if (cur_u8(&c) != 1)
		return -1;
	hslen = cur_u24(&c);
	if (c.bad || hslen != c.left)
		return -1;
	cur_skip(&c, 2 + 32);
	cur_skip(&c, cur_u8(&c));
	cur_skip(&c, cur_u16(&c));
	cur_skip(&c, cur_u8(&c));
	m->ext_len_off = len - c.left;
	extlen = cur_u16(&c);
	if (c.bad || extlen != c.left)
		return -1;
	while (c.left > 0) {
		size_t off = len - c.left;
		unsigned type = cur_u16(&c);
		size_t elen = cur_u16(&c);

		if (c.bad || elen > c.left)
			return -1;
		if (type == 0 && m->sni_end == 0) {
			struct cur s = { c.p, elen, 0 };
			size_t listlen = cur_u16(&s);

			if (s.bad || listlen != s.left || cur_u8(&s) != 0)
				return -1;
			m->name_len = cur_u16(&s);
			if (s.bad || m->name_len == 0 || m->name_len != s.left ||
			    m->name_len > NAME_MAX_LEN)
				return -1;
			m->name_off = len - c.left + 5;
			m->sni_off = off;
			m->sni_end = off + 4 + elen;
		}
		cur_skip(&c, elen);
	}
	end = len - c.left;
	if (c.bad || end != len || m->sni_end == 0)
		return -1;
	return 0;
}

struct hello_tmpl {
	uint8_t buf[HELLO_MAX];
	size_t len;
	struct hello_map map;
};

static inline int
hello_tmpl_load(const char *path, struct hello_tmpl *t)
{
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	t->len = fread(t->buf, 1, sizeof(t->buf), f);
	fclose(f);
	if (hello_locate(t->buf, t->len, &t->map) != 0) {
		fprintf(stderr, "%s: not one TLS record holding a ClientHello with a server_name\n",
		    path);
		return -1;
	}
	return 0;
}

static inline void
put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/*
 * The template with its server_name replaced by NAME: the record, handshake
 * and extensions lengths move by the difference. Returns the length, or 0
 * when it would not fit in CAP or in one record.
 */
static inline size_t
hello_build(const struct hello_tmpl *t, const char *name, size_t nlen, uint8_t *out, size_t cap)
{
	const struct hello_map *m = &t->map;
	size_t oldext = m->sni_end - m->sni_off, newext = 4 + 2 + 1 + 2 + nlen;
	size_t len = t->len - oldext + newext, p;
	size_t extlen;

	if (nlen == 0 || nlen > NAME_MAX_LEN || len > cap || len > HELLO_MAX)
		return 0;
	memcpy(out, t->buf, m->sni_off);
	p = m->sni_off;
	put16(out + p, 0);
	put16(out + p + 2, newext - 4);
	put16(out + p + 4, newext - 6);
	out[p + 6] = 0;
	put16(out + p + 7, nlen);
	memcpy(out + p + 9, name, nlen);
	p += newext;
	memcpy(out + p, t->buf + m->sni_end, t->len - m->sni_end);
	put16(out + 3, len - 5);
	out[6] = (uint8_t)((len - 9) >> 16);
	put16(out + 7, len - 9);
	extlen = (size_t)t->buf[m->ext_len_off] << 8 | t->buf[m->ext_len_off + 1];
	put16(out + m->ext_len_off, extlen - oldext + newext);
	return len;
}

/* ---- the allow-list: exact names and "*.suffix" ---------------------------- */

struct strset {
	char **slot;
	size_t mask, count;
};

static inline uint64_t
str_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603u;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 1099511628211u;
	}
	return h;
}

static inline int
strset_init(struct strset *s, size_t want)
{
	size_t cap = 16;

	while (cap < want * 2)
		cap <<= 1;
	s->slot = calloc(cap, sizeof(*s->slot));
	s->mask = cap - 1;
	s->count = 0;
	return s->slot == NULL ? -1 : 0;
}

static inline int
strset_has(const struct strset *s, const char *k, size_t n)
{
	size_t i = (size_t)str_hash(k, n) & s->mask;

	while (s->slot[i] != NULL) {
		if (strlen(s->slot[i]) == n && memcmp(s->slot[i], k, n) == 0)
			return 1;
		i = (i + 1) & s->mask;
	}
	return 0;
}

/* The set was sized for every line; never more than half full. */
static inline int
strset_add(struct strset *s, const char *k)
{
	size_t n = strlen(k), i = (size_t)str_hash(k, n) & s->mask;

	if (strset_has(s, k, n))
		return 0;
	if ((s->count + 1) * 2 > s->mask + 1)
		return -1;
	while (s->slot[i] != NULL)
		i = (i + 1) & s->mask;
	s->slot[i] = strdup(k);
	if (s->slot[i] == NULL)
		return -1;
	s->count++;
	return 0;
}

struct allow {
	struct strset exact, wild;      /* wild holds the suffix, without "*." */
};

/* The patterns file: one pattern a line, "name" or "*.suffix". */
static inline int
allow_load(const char *path, struct allow *a)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t lines = 0;

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL)
		lines++;
	rewind(f);
	if (strset_init(&a->exact, lines) != 0 || strset_init(&a->wild, lines) != 0) {
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strcspn(line, "\r\n");
		int rc;

		line[n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (line[0] == '*' && line[1] == '.')
			rc = strset_add(&a->wild, line + 2);
		else
			rc = strset_add(&a->exact, line);
		if (rc != 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

/* egressd's meaning: "x" admits x; "*.x" admits any name below x, not x. */
static inline int
allow_has(const struct allow *a, const char *name, size_t n)
{
	size_t i;

	if (strset_has(&a->exact, name, n))
		return 1;
	for (i = 1; i + 1 < n; i++)
		if (name[i] == '.' && strset_has(&a->wild, name + i + 1, n - i - 1))
			return 1;
	return 0;
}

/* Lower-case LDH labels and dots, as a name must be before anything uses it. */
static inline int
name_ok(const char *s, size_t n)
{
	size_t i, label = 0;

	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (islower(ch) || isdigit(ch) || ch == '-') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

/*
 * Keep freed heap memory mapped. With glibc's default trim threshold the
 * per-connection buffers, freed out of order, kept shrinking the heap
 * and growing it again: a brk and fresh page faults per connection, 10%
 * of the load core, which is the ceiling of several cells.
 */
static inline void
keep_heap(void)
{
	(void)mallopt(M_TRIM_THRESHOLD, 256 << 20);
	(void)mallopt(M_TOP_PAD, 16 << 20);
}

#endif

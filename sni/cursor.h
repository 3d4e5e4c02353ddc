/*
 * A bounds-checked read cursor over wire data, shared by the byte parsers
 * (sni/hello.c, proxy/proxy.c). Every fetch either succeeds and advances,
 * or fails and leaves the cursor as it was; callers never index into the
 * buffer themselves. Header-only: each parser inlines what it uses.
 */
#ifndef EGRESSD_SNI_CURSOR_H
#define EGRESSD_SNI_CURSOR_H

#include <stddef.h>
#include <stdint.h>

struct cur {
	const uint8_t *p;
	size_t len;
};

static inline void
cur_init(struct cur *c, const uint8_t *p, size_t len)
{
	c->p = p;
	c->len = len;
}

static inline int
cur_u8(struct cur *c, uint8_t *v)
{
	if (c->len < 1)
		return -1;
	*v = c->p[0];
	c->p += 1;
	c->len -= 1;
	return 0;
}

static inline int
cur_u16(struct cur *c, uint16_t *v)
{
	if (c->len < 2)
		return -1;
	*v = (uint16_t)(c->p[0] << 8 | c->p[1]);
	c->p += 2;
	c->len -= 2;
	return 0;
}

static inline int
cur_u24(struct cur *c, uint32_t *v)
{
	if (c->len < 3)
		return -1;
	*v = (uint32_t)c->p[0] << 16 | (uint32_t)c->p[1] << 8 | c->p[2];
	c->p += 3;
	c->len -= 3;
	return 0;
}

/* Take the next n bytes as a view. */
static inline int
cur_bytes(struct cur *c, size_t n, const uint8_t **v)
{
	if (c->len < n)
		return -1;
	*v = c->p;
	c->p += n;
	c->len -= n;
	return 0;
}

static inline int
cur_skip(struct cur *c, size_t n)
{
	const uint8_t *dummy;

	return cur_bytes(c, n, &dummy);
}

/* Split off the next n bytes as their own cursor. */
static inline int
cur_sub(struct cur *c, size_t n, struct cur *sub)
{
	const uint8_t *p;

	if (cur_bytes(c, n, &p) == -1)
		return -1;
	cur_init(sub, p, n);
	return 0;
}

#endif

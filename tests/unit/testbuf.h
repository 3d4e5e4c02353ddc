/*
 * Byte helpers shared by the parser tests and fuzz targets: a bounded
 * builder for wire bytes (define BB_MAX before including to size it) and
 * an all-zero check for "nothing was filled in".
 */
#ifndef EGRESSD_TESTBUF_H
#define EGRESSD_TESTBUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BB_MAX
#define BB_MAX 2048
#endif

struct bb {
	uint8_t p[BB_MAX];
	size_t len;
};

__attribute__((unused))
static void
bb_bytes(struct bb *b, const void *p, size_t n)
{
	if (b->len + n > sizeof(b->p)) {
		fprintf(stderr, "test builder overflow\n");
		abort();
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

__attribute__((unused))
static void
bb_u8(struct bb *b, unsigned int v)
{
	uint8_t x = (uint8_t)v;

	bb_bytes(b, &x, 1);
}

__attribute__((unused))
static void
bb_u16(struct bb *b, unsigned int v)
{
	bb_u8(b, v >> 8);
	bb_u8(b, v);
}

__attribute__((unused))
static void
bb_u24(struct bb *b, unsigned int v)
{
	bb_u8(b, v >> 16);
	bb_u16(b, v);
}

__attribute__((unused))
static void
bb_fill(struct bb *b, unsigned int v, size_t n)
{
	while (n-- > 0)
		bb_u8(b, v);
}

__attribute__((unused))
static int
is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

#endif

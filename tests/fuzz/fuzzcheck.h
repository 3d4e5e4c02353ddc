/*
 * What the sni fuzz targets check with: abort() on a broken property, so
 * that libFuzzer and the make-check replay both notice, and whether a
 * parser's view lies inside a buffer.
 */
#ifndef EGRESSD_FUZZCHECK_H
#define EGRESSD_FUZZCHECK_H

#include <stdlib.h>

#include "sni/sni.h"

static inline void
check(int cond)
{
	if (!cond)
		abort();
}

static inline int
inside(struct sni_view v, const uint8_t *base, size_t n)
{
	if (v.len == 0)
		return 1;
	return base != NULL && v.ptr >= base && v.len <= n &&
	    (size_t)(v.ptr - base) <= n - v.len;
}

#endif

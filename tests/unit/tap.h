/*
 * Minimal TAP producer for the unit tests: plan at the end ("1..N"), one
 * "ok"/"not ok" line per check, diagnostics on failure, exit status 1 when
 * anything failed so the harness and a human both see it.
 */
#ifndef EGRESSD_TAP_H
#define EGRESSD_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 2, 3), unused))
static int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		tap_failed++;
	fflush(stdout);
	return cond;
}

__attribute__((format(printf, 1, 2), unused))
static void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

#define tap_is_int(got, want, ...) \
	(tap_ok((long long)(got) == (long long)(want), __VA_ARGS__) ? 1 : \
	 (tap_diag("  got %lld, want %lld", (long long)(got), (long long)(want)), 0))

/* got is evaluated once, so it may be an array or a call. */
#define tap_is_str(got, want, ...) __extension__ ({ \
	const char *tap_got_ = (got), *tap_want_ = (want); \
	tap_ok(tap_got_ != NULL && strcmp(tap_got_, tap_want_) == 0, __VA_ARGS__) ? 1 : \
	 (tap_diag("  got \"%s\", want \"%s\"", tap_got_ ? tap_got_ : "(null)", \
	    tap_want_), 0); })

__attribute__((unused))
static int tap_done(void)
{
	printf("1..%d\n", tap_n);
	if (tap_n == 0) {
		printf("# no checks ran\n");
		return 1;
	}
	return tap_failed ? 1 : 0;
}

#endif

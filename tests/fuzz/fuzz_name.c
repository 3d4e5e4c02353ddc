/*
 * libFuzzer target for sni_name_normalize: whatever comes in, what comes
 * out is a canonical name policy and DNS can trust, or nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sni/sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

static int
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '.' || c == '-' || c == '_';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[SNI_NAME_MAX + 1], again[SNI_NAME_MAX + 1];
	char inplace[SNI_NAME_MAX + 2];
	size_t n;
	int rc;

	/* Poison the output so a missing terminator shows. */
	memset(out, 'X', sizeof(out));
	rc = sni_name_normalize(data, size, out);
	check(rc == 0 || rc == -1);
	if (rc == -1) {
		check(out[0] == '\0');
		return 0;
	}

	n = strnlen(out, sizeof(out));
	check(n < sizeof(out));
	check(n >= 1 && n <= SNI_NAME_MAX);
	/* Only the trailing dot may be dropped; case folds, nothing else. */
	check(n == size || (n == size - 1 && data[size - 1] == '.'));
	for (size_t i = 0; i < n; i++) {
		uint8_t c = data[i];

		check(name_char(out[i]));
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		check(out[i] == (char)c);
	}
	check(out[0] != '.' && out[n - 1] != '.' && strstr(out, "..") == NULL);

	/* Idempotent: the output is its own normal form. */
	memset(again, 'Y', sizeof(again));
	check(sni_name_normalize((const uint8_t *)out, n, again) == 0);
	check(strcmp(out, again) == 0);

	/* In place gives the same answer. */
	memcpy(inplace, data, size);
	check(sni_name_normalize((const uint8_t *)inplace, size, inplace) == 0);
	check(strcmp(out, inplace) == 0);
	return 0;
}

/*
 * A minimal, strict, bounded reader for the one-line JSON objects egressd
 * writes to its log (docs/log.md): string, number, true/false, null and
 * array-of-strings values, and objects of those one level deep (the
 * "after" hint). Anything else (an object inside an object value, an
 * object in an array) is refused (returns -1); it never reads outside the
 * line it is given.
 */
#ifndef EGRESSD_JSONL_H
#define EGRESSD_JSONL_H

#include <stddef.h>

#define JSONL_MAX_KEYS 48

enum jsonl_type { JSONL_STRING, JSONL_NUMBER, JSONL_BOOL, JSONL_NULL,
	JSONL_ARRAY, JSONL_OBJECT };

struct jsonl_kv {
	const char *key;
	enum jsonl_type type;
	const char *str;        /* JSONL_STRING: decoded, NUL-terminated */
	double num;             /* JSONL_NUMBER */
	int b;                  /* JSONL_BOOL */
	size_t nitems;          /* JSONL_ARRAY: number of strings;
	                         * JSONL_OBJECT: number of members, the
	                         * entries right after this one in kv[] */
};

/* Members of object values count against JSONL_MAX_KEYS too. */
struct jsonl_obj {
	struct jsonl_kv kv[JSONL_MAX_KEYS];
	size_t n;
};

/*
 * Parse line[0..len) (no NUL needed; it is decoded in place, so the
 * buffer must be writable and hold len + 1 bytes). Strings containing
 * \u0000 are refused. Returns 0 or -1.
 */
int jsonl_parse(char *line, size_t len, struct jsonl_obj *o);

/* The value of key at the top level, or NULL when absent. */
const struct jsonl_kv *jsonl_get(const struct jsonl_obj *o, const char *key);

/* The value of key in obj, a JSONL_OBJECT entry of a jsonl_obj, or NULL. */
const struct jsonl_kv *jsonl_member(const struct jsonl_kv *obj,
    const char *key);

#endif

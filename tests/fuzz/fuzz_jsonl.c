/*
 * libFuzzer target for jsonl_parse, the log-line reader of egressctl
 * (denials reads logs an attacker may have shaped through the names and
 * URLs it asked for). Beyond "does not crash", with abort():
 *
 *  - the line is parsed from the end of a heap block of exactly len + 1
 *    bytes, so a read or write past it is an AddressSanitizer report;
 *  - on success every key and string lies inside the buffer and is
 *    NUL-terminated there; object members follow their object and are
 *    counted in n; jsonl_get finds every top-level key (the first of
 *    duplicates) and jsonl_member every member;
 *  - written out again as JSON and parsed a second time, the result has the
 *    same keys, types, strings, counts and (finite) numbers.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

struct out {
	char *p;
	size_t len, cap;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->p = realloc(o->p, o->cap);
		check(o->p != NULL);
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void
put_str(struct out *o, const char *s)
{
	char esc[8];

	put(o, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\' || c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(o, esc, 6);
		} else {
			put(o, s, 1);
		}
	}
	put(o, "\"", 1);
}

static void
put_value(struct out *o, const struct jsonl_kv *kv)
{
	char num[64];

	switch (kv->type) {
	case JSONL_STRING:
		put_str(o, kv->str);
		break;
	case JSONL_NUMBER:
		snprintf(num, sizeof(num), "%.17g", isfinite(kv->num) ? kv->num : 0.0);
		put(o, num, strlen(num));
		break;
	case JSONL_BOOL:
		put(o, kv->b ? "true" : "false", kv->b ? 4 : 5);
		break;
	case JSONL_NULL:
		put(o, "null", 4);
		break;
	case JSONL_ARRAY:
		put(o, "[", 1);
		for (size_t i = 0; i < kv->nitems; i++)
			put(o, i ? ",\"\"" : "\"\"", i ? 3 : 2);
		put(o, "]", 1);
		break;
	case JSONL_OBJECT:
		put(o, "{", 1);
		for (size_t i = 0; i < kv->nitems; i++) {
			if (i)
				put(o, ",", 1);
			put_str(o, kv[1 + i].key);
			put(o, ":", 1);
			put_value(o, &kv[1 + i]);
		}
		put(o, "}", 1);
		break;
	}
}

static int
inside(const char *s, const char *buf, size_t len)
{
	return s >= buf && s < buf + len + 1 && memchr(s, '\0', (size_t)(buf + len + 1 - s)) != NULL;
}

static void
same(const struct jsonl_kv *a, const struct jsonl_kv *b)
{
	check(strcmp(a->key, b->key) == 0 && a->type == b->type);
	if (a->type == JSONL_STRING)
		check(strcmp(a->str, b->str) == 0);
	if (a->type == JSONL_NUMBER && isfinite(a->num))
		check(a->num == b->num);
	if (a->type == JSONL_BOOL)
		check(!a->b == !b->b);
	if (a->type == JSONL_ARRAY || a->type == JSONL_OBJECT)
		check(a->nitems == b->nitems);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jsonl_obj o, again;
	struct out w = { NULL, 0, 0 };
	char *buf = malloc(size + 1);
	size_t i;

	check(buf != NULL);
	memcpy(buf, data, size);
	if (jsonl_parse(buf, size, &o) != 0) {
		free(buf);
		return 0;
	}
	check(o.n <= JSONL_MAX_KEYS);
	put(&w, "{", 1);
	for (i = 0; i < o.n; i++) {
		const struct jsonl_kv *kv = &o.kv[i];

		check(inside(kv->key, buf, size));
		if (kv->type == JSONL_STRING)
			check(inside(kv->str, buf, size));
		if (kv->type == JSONL_OBJECT)
			check(i + kv->nitems < o.n);
		check(jsonl_get(&o, kv->key) != NULL);
		if (i > 0)
			put(&w, ",", 1);
		put_str(&w, kv->key);
		put(&w, ":", 1);
		put_value(&w, kv);
		if (kv->type == JSONL_OBJECT) {
			for (size_t m = 1; m <= kv->nitems; m++) {
				check(inside(kv[m].key, buf, size));
				check(kv[m].type != JSONL_OBJECT);
				check(jsonl_member(kv, kv[m].key) != NULL);
			}
			i += kv->nitems;
		}
	}
	put(&w, "}", 1);
	check(jsonl_parse(w.p, w.len, &again) == 0);
	check(again.n == o.n);
	for (i = 0; i < o.n; i++)
		same(&o.kv[i], &again.kv[i]);
	free(w.p);
	free(buf);
	return 0;
}

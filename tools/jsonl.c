/*
 * jsonl: see jsonl.h. Strings are decoded in place: an escape is never
 * shorter than what it decodes to, so the write position never passes
 * the read position.
 */
#include <stdlib.h>
#include <string.h>

#include "tools/jsonl.h"

struct cur {
	char *p, *end;
};

static void
skip_ws(struct cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
	    *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

static int
hex4(const char *p, const char *end, unsigned *out)
{
	unsigned v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char ch = p[i];

		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* At '"': decode the string in place; *out points at it, NUL-terminated. */
static int
parse_string(struct cur *c, const char **out)
{
	char *w;

	if (c->p >= c->end || *c->p != '"')
		return -1;
	c->p++;
	w = c->p;
	*out = w;
	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p;

		if (ch == '"') {
			c->p++;
			*w = '\0';      /* w < c->p: the closing quote's slot at worst */
			return 0;
		}
		if (ch < 0x20)
			return -1;
		if (ch != '\\') {
			*w++ = (char)ch;
			c->p++;
			continue;
		}
		if (c->end - c->p < 2)
			return -1;
		ch = (unsigned char)c->p[1];
		c->p += 2;
		switch (ch) {
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		case '/': *w++ = '/'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u': {
			unsigned cp, lo;

			if (hex4(c->p, c->end, &cp) != 0)
				return -1;
			c->p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (c->end - c->p < 6 || c->p[0] != '\\' ||
				    c->p[1] != 'u' ||
				    hex4(c->p + 2, c->end, &lo) != 0 ||
				    lo < 0xdc00 || lo > 0xdfff)
					return -1;
				c->p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				return -1;
			}
			if (cp == 0)
				return -1;
			if (cp < 0x80) {
				*w++ = (char)cp;
			} else if (cp < 0x800) {
				*w++ = (char)(0xc0 | (cp >> 6));
				*w++ = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				*w++ = (char)(0xe0 | (cp >> 12));
				*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
				*w++ = (char)(0x80 | (cp & 0x3f));
			} else {
				*w++ = (char)(0xf0 | (cp >> 18));
				*w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
				*w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
				*w++ = (char)(0x80 | (cp & 0x3f));
			}
			break;
		}
		default:
			return -1;
		}
	}
	return -1;
}

/* A JSON number, strictly: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
parse_number(struct cur *c, double *out)
{
	char tmp[64];
	char *s = c->p, *e;
	size_t n;

	if (c->p < c->end && *c->p == '-')
		c->p++;
	if (c->p >= c->end)
		return -1;
	if (*c->p == '0')
		c->p++;
	else if (*c->p >= '1' && *c->p <= '9')
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
			c->p++;
	else
		return -1;
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (c->p >= c->end || *c->p < '0' || *c->p > '9')
			return -1;
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
			c->p++;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (c->p >= c->end || *c->p < '0' || *c->p > '9')
			return -1;
		while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
			c->p++;
	}
	n = (size_t)(c->p - s);
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	*out = strtod(tmp, &e);
	return *e == '\0' ? 0 : -1;
}

static int
word(struct cur *c, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
		return -1;
	c->p += n;
	return 0;
}

static int parse_object(struct cur *c, struct jsonl_obj *o, int nested);

/*
 * The value of kv, an entry of o. An object value (when not nested
 * itself) puts its members in o->kv right after kv.
 */
static int
parse_value(struct cur *c, struct jsonl_obj *o, struct jsonl_kv *kv,
    int nested)
{
	size_t first;

	if (c->p >= c->end)
		return -1;
	switch (*c->p) {
	case '{':
		if (nested)
			return -1;
		kv->type = JSONL_OBJECT;
		first = o->n;
		if (parse_object(c, o, 1) != 0)
			return -1;
		kv->nitems = o->n - first;
		return 0;
	case '"':
		kv->type = JSONL_STRING;
		return parse_string(c, &kv->str);
	case 't':
		kv->type = JSONL_BOOL;
		kv->b = 1;
		return word(c, "true");
	case 'f':
		kv->type = JSONL_BOOL;
		kv->b = 0;
		return word(c, "false");
	case 'n':
		kv->type = JSONL_NULL;
		return word(c, "null");
	case '[':
		kv->type = JSONL_ARRAY;
		kv->nitems = 0;
		c->p++;
		skip_ws(c);
		if (c->p < c->end && *c->p == ']') {
			c->p++;
			return 0;
		}
		for (;;) {
			const char *ignored;

			skip_ws(c);
			if (parse_string(c, &ignored) != 0)
				return -1;
			kv->nitems++;
			skip_ws(c);
			if (c->p >= c->end)
				return -1;
			if (*c->p == ']') {
				c->p++;
				return 0;
			}
			if (*c->p != ',')
				return -1;
			c->p++;
		}
	default:
		kv->type = JSONL_NUMBER;
		return parse_number(c, &kv->num);
	}
}

/* At '{': the members, appended to o->kv. nested: inside an object value. */
static int
parse_object(struct cur *c, struct jsonl_obj *o, int nested)
{
	if (c->p >= c->end || *c->p != '{')
		return -1;
	c->p++;
	skip_ws(c);
	if (c->p < c->end && *c->p == '}') {
		c->p++;
		return 0;
	}
	for (;;) {
		struct jsonl_kv *kv;

		if (o->n >= JSONL_MAX_KEYS)
			return -1;
		kv = &o->kv[o->n++];
		memset(kv, 0, sizeof(*kv));
		skip_ws(c);
		if (parse_string(c, &kv->key) != 0)
			return -1;
		skip_ws(c);
		if (c->p >= c->end || *c->p != ':')
			return -1;
		c->p++;
		skip_ws(c);
		if (parse_value(c, o, kv, nested) != 0)
			return -1;
		skip_ws(c);
		if (c->p >= c->end)
			return -1;
		if (*c->p == '}') {
			c->p++;
			return 0;
		}
		if (*c->p != ',')
			return -1;
		c->p++;
	}
}

int
jsonl_parse(char *line, size_t len, struct jsonl_obj *o)
{
	struct cur c = { line, line + len };

	o->n = 0;
	skip_ws(&c);
	if (parse_object(&c, o, 0) != 0)
		return -1;
	skip_ws(&c);
	return c.p == c.end ? 0 : -1;
}

const struct jsonl_kv *
jsonl_get(const struct jsonl_obj *o, const char *key)
{
	for (size_t i = 0; i < o->n; i++) {
		if (strcmp(o->kv[i].key, key) == 0)
			return &o->kv[i];
		if (o->kv[i].type == JSONL_OBJECT)
			i += o->kv[i].nitems;   /* not its members */
	}
	return NULL;
}

const struct jsonl_kv *
jsonl_member(const struct jsonl_kv *obj, const char *key)
{
	if (obj->type != JSONL_OBJECT)
		return NULL;
	for (size_t i = 1; i <= obj->nitems; i++)
		if (strcmp(obj[i].key, key) == 0)
			return &obj[i];
	return NULL;
}

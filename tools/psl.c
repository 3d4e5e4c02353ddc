/*
 * The public suffix list through libpsl, for egressctl (tools/psl.h).
 *
 * Which list: EGRESSCTL_PSL_FILE when set (alone: an operator who names a
 * list wants that one, and a typo must not turn into another list
 * silently); else the file of the Debian package publicsuffix, which is
 * the one apt keeps current (libpsl's psl_dist_filename(), then the .dat
 * beside it); else libpsl's builtin copy, frozen when libpsl was built,
 * with a note saying so; else none.
 *
 * libpsl answers "is this name a public suffix", not "is there one below
 * it". The second question is what a wildcard over a registrable domain
 * needs ("*.amazonaws.com" admits every name under s3.amazonaws.com), so
 * the list's text is read once more into an index of every name that has
 * a public suffix below it. The text is the .dat in use, or the one beside
 * the package's .dafsa; a .dafsa named alone and the builtin copy have no
 * text, and then the question is not answered (ctl_psl_below_source()).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpsl.h>

#include "tools/psl.h"

#define PSL_PKG_DAFSA   "/usr/share/publicsuffix/public_suffix_list.dafsa"
#define PSL_PKG_DAT     "/usr/share/publicsuffix/public_suffix_list.dat"
#define PSL_TEXT_MAX    1280    /* a path, an error and a sentence */

/* A name with public suffixes below it: how many, and the first in order. */
struct psl_above {
	char *name;
	size_t count;
	const char *example;    /* points into the suffixes' strings */
};

struct ctl_psl {
	psl_ctx_t *ctx;         /* NULL: no list */
	int builtin;            /* ctx is libpsl's own: not freed */
	struct psl_above *above;        /* sorted by name; NULL: no index */
	size_t nabove;
	char **suffixes;        /* the list's rules, '*.' and exceptions left out */
	size_t nsuffixes;
	char below_source[PSL_TEXT_MAX];
	char source[PSL_TEXT_MAX];
	char problem[PSL_TEXT_MAX];     /* "": the package's list is in use */
};

/* Load one list file; on failure says why in why[] and returns NULL. */
static psl_ctx_t *
load_file(const char *path, char *why, size_t len)
{
	psl_ctx_t *ctx;

	errno = 0;
	ctx = psl_load_file(path);
	if (ctx == NULL) {
		snprintf(why, len, "%s: %s", path, errno != 0 ?
		    strerror(errno) : "not a public suffix list");
		return NULL;
	}
	/*
	 * libpsl reads any text file as a list, a line a rule: a wrong file
	 * loads and then calls everything narrow. Both sections' oldest
	 * entries must be there, or it is not the Public Suffix List.
	 */
	if (!psl_is_public_suffix2(ctx, "co.uk", PSL_TYPE_ICANN |
	    PSL_TYPE_NO_STAR_RULE) || !psl_is_public_suffix2(ctx, "github.io",
	    PSL_TYPE_PRIVATE | PSL_TYPE_NO_STAR_RULE)) {
		psl_free(ctx);
		snprintf(why, len, "%s: not the public suffix list (no ICANN "
		    "co.uk, or no private github.io)", path);
		return NULL;
	}
	return ctx;
}

/* The publicsuffix package's list: libpsl's idea of the file, then ours. */
static psl_ctx_t *
load_package(char *source, size_t slen, char *why, size_t wlen)
{
	const char *dist = psl_dist_filename();
	const char *paths[3];
	size_t n = 0;
	psl_ctx_t *ctx;

	if (dist != NULL && dist[0] != '\0')
		paths[n++] = dist;
	if (n == 0 || strcmp(paths[0], PSL_PKG_DAFSA) != 0)
		paths[n++] = PSL_PKG_DAFSA;
	paths[n++] = PSL_PKG_DAT;
	for (size_t i = 0; i < n; i++) {
		/* Report the first file's error: the one apt installs. */
		char other[PSL_TEXT_MAX];

		ctx = load_file(paths[i], i == 0 ? why : other, i == 0 ?
		    wlen : sizeof(other));
		if (ctx != NULL) {
			snprintf(source, slen, "%s", paths[i]);
			return ctx;
		}
	}
	return NULL;
}

/* ---- the index of names with public suffixes below them --------------- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
cmp_above(const void *a, const void *b)
{
	return strcmp(((const struct psl_above *)a)->name,
	    ((const struct psl_above *)b)->name);
}

/* Room for one more element of size elem in *v (n used of *cap); -1 when
 * out of memory. */
static int
grow(void **v, size_t n, size_t *cap, size_t elem)
{
	if (n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		void *nv = realloc(*v, ncap * elem);

		if (nv == NULL)
			return -1;
		*v = nv;
		*cap = ncap;
	}
	return 0;
}

/*
 * The suffixes of a list's text, lower case, sorted: each rule's first
 * word, "*." taken off (the parent of a wildcard rule counts, as
 * ctl_psl_width() has it), exception rules ("!") left out. -1 when the
 * file cannot be read or memory runs out.
 */
static int
read_suffixes(struct ctl_psl *p, const char *path)
{
	char line[512];
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *w = line + strspn(line, " \t");
		char *s;
		int ch;

		if (strchr(line, '\n') == NULL && !feof(f)) {
			/* Longer than any rule: not one; skip the rest. */
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			continue;
		}
		w[strcspn(w, " \t\r\n")] = '\0';
		if (w[0] == '\0' || w[0] == '!' || strncmp(w, "//", 2) == 0)
			continue;
		if (strncmp(w, "*.", 2) == 0)
			w += 2;
		for (char *c = w; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		if (strchr(w, '.') == NULL)
			continue;       /* a TLD has nothing above it */
		if (grow((void **)&p->suffixes, p->nsuffixes, &cap,
		    sizeof(*p->suffixes)) < 0 || (s = strdup(w)) == NULL) {
			fclose(f);
			return -1;
		}
		p->suffixes[p->nsuffixes++] = s;
	}
	fclose(f);
	qsort(p->suffixes, p->nsuffixes, sizeof(*p->suffixes), cmp_str);
	return 0;
}

/* Every proper ancestor of every suffix (but the TLDs), counted once per
 * suffix below it, into p->above. -1 when out of memory. */
static int
build_above(struct ctl_psl *p)
{
	size_t cap = 0, n = 0;
	struct psl_above *a = NULL;

	for (size_t i = 0; i < p->nsuffixes; i++) {
		const char *s = p->suffixes[i];

		for (const char *d = strchr(s, '.'); d != NULL &&
		    strchr(d + 1, '.') != NULL; d = strchr(d + 1, '.')) {
			if (grow((void **)&a, n, &cap, sizeof(*a)) < 0)
				goto fail;
			a[n].name = strdup(d + 1);
			if (a[n].name == NULL)
				goto fail;
			a[n].count = 1;
			a[n++].example = s;
		}
	}
	/* Merge: the suffixes were sorted, so the first example is the least. */
	qsort(a, n, sizeof(*a), cmp_above);
	p->nabove = 0;
	for (size_t i = 0; i < n; i++) {
		if (p->nabove > 0 && strcmp(a[p->nabove - 1].name, a[i].name) == 0) {
			struct psl_above *m = &a[p->nabove - 1];

			m->count++;
			if (strcmp(a[i].example, m->example) < 0)
				m->example = a[i].example;
			free(a[i].name);
		} else {
			a[p->nabove++] = a[i];
		}
	}
	p->above = a;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		free(a[i].name);
	free(a);
	return -1;
}

/* The index from the text at path; none (and why) when it cannot be read. */
static void
load_index(struct ctl_psl *p, const char *path)
{
	if (read_suffixes(p, path) == 0 && build_above(p) == 0) {
		snprintf(p->below_source, sizeof(p->below_source), "%s", path);
		return;
	}
	for (size_t i = 0; i < p->nsuffixes; i++)
		free(p->suffixes[i]);
	free(p->suffixes);
	p->suffixes = NULL;
	p->nsuffixes = 0;
}

/* The text of the list in use: the .dat itself, or the one beside the
 * package's .dafsa; NULL for a .dafsa named alone and the builtin. */
static const char *
index_text(const struct ctl_psl *p, int named)
{
	size_t n = strlen(p->source);

	if (p->ctx == NULL || p->builtin)
		return NULL;
	if (n > 4 && strcmp(p->source + n - 4, ".dat") == 0)
		return p->source;
	if (!named && strcmp(p->source, PSL_PKG_DAFSA) == 0)
		return PSL_PKG_DAT;
	return NULL;
}

struct ctl_psl *
ctl_psl_open(void)
{
	struct ctl_psl *p;
	const char *env = getenv(CTL_PSL_ENV);
	const psl_ctx_t *bi;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	if (env != NULL && env[0] != '\0') {
		p->ctx = load_file(env, p->problem, sizeof(p->problem));
		if (p->ctx != NULL) {
			snprintf(p->source, sizeof(p->source), "%s", env);
			/* Not the package's list, and asked for: no problem. */
			p->problem[0] = '\0';
			if (index_text(p, 1) != NULL)
				load_index(p, index_text(p, 1));
		} else {
			size_t o = strlen(p->problem);

			snprintf(p->problem + o, sizeof(p->problem) - o,
			    " (named by %s, so no other list is used)",
			    CTL_PSL_ENV);
		}
		return p;
	}
	p->ctx = load_package(p->source, sizeof(p->source), p->problem,
	    sizeof(p->problem));
	if (p->ctx != NULL) {
		if (index_text(p, 0) != NULL)
			load_index(p, index_text(p, 0));
		return p;
	}
	bi = psl_builtin();
	if (bi != NULL) {
		time_t t = psl_builtin_file_time();
		struct tm tm;
		char date[32] = "";

		if (t > 0 && gmtime_r(&t, &tm) != NULL)
			strftime(date, sizeof(date), " of %Y-%m-%d", &tm);
		/* libpsl's API is const-less here; the builtin is never freed. */
		p->ctx = (psl_ctx_t *)bi;
		p->builtin = 1;
		snprintf(p->source, sizeof(p->source),
		    "libpsl's builtin list%s", date);
	} else {
		size_t o = strlen(p->problem);

		snprintf(p->problem + o, sizeof(p->problem) - o,
		    "; libpsl has no builtin list");
	}
	return p;
}

void
ctl_psl_close(struct ctl_psl *p)
{
	if (p == NULL)
		return;
	if (p->ctx != NULL && !p->builtin)
		psl_free(p->ctx);
	for (size_t i = 0; i < p->nabove; i++)
		free(p->above[i].name);
	free(p->above);
	for (size_t i = 0; i < p->nsuffixes; i++)
		free(p->suffixes[i]);
	free(p->suffixes);
	free(p);
}

const char *
ctl_psl_source(const struct ctl_psl *p)
{
	return p->ctx != NULL ? p->source : NULL;
}

const char *
ctl_psl_problem(const struct ctl_psl *p)
{
	return p->problem[0] != '\0' ? p->problem : NULL;
}

enum ctl_psl_width
ctl_psl_width(const struct ctl_psl *p, const char *parent)
{
	const int exact = PSL_TYPE_NO_STAR_RULE;

	/*
	 * One label is a top-level domain whether the list names it or
	 * not: libpsl's "prevailing star rule" says the same, and no list
	 * is needed to know it. Past that, libpsl counts the parent of a
	 * wildcard rule as a public suffix too ("*.compute.amazonaws.com"
	 * makes compute.amazonaws.com one), which is what a wildcard over
	 * it needs: every name directly under it has its own owner.
	 */
	if (strchr(parent, '.') == NULL)
		return CTL_PSL_TLD;
	if (p == NULL || p->ctx == NULL)
		return CTL_PSL_UNKNOWN;
	if (psl_is_public_suffix2(p->ctx, parent, PSL_TYPE_ICANN | exact))
		return CTL_PSL_ICANN;
	if (psl_is_public_suffix2(p->ctx, parent, PSL_TYPE_PRIVATE | exact))
		return CTL_PSL_PRIVATE;
	if (ctl_psl_below(p, parent, NULL) > 0)
		return CTL_PSL_COVERS;
	return CTL_PSL_NARROW;
}

size_t
ctl_psl_below(const struct ctl_psl *p, const char *parent,
    const char **example)
{
	struct psl_above key = { (char *)parent, 0, NULL }, *hit;

	if (p == NULL || p->above == NULL)
		return 0;
	hit = bsearch(&key, p->above, p->nabove, sizeof(*p->above), cmp_above);
	if (hit == NULL)
		return 0;
	if (example != NULL)
		*example = hit->example;
	return hit->count;
}

const char *
ctl_psl_below_source(const struct ctl_psl *p)
{
	return p != NULL && p->above != NULL ? p->below_source : NULL;
}

const char *
ctl_psl_width_str(enum ctl_psl_width w)
{
	switch (w) {
	case CTL_PSL_NARROW:
		return "narrow";
	case CTL_PSL_TLD:
		return "tld";
	case CTL_PSL_ICANN:
		return "icann";
	case CTL_PSL_PRIVATE:
		return "private";
	case CTL_PSL_COVERS:
		return "covers";
	case CTL_PSL_UNKNOWN:
		return "unknown";
	}
	return "?";
}

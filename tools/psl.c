/*
 * The public suffix list through libpsl, for egressctl (tools/psl.h).
 *
 * Which list: EGRESSCTL_PSL_FILE when set (alone: an operator who names a
 * list wants that one, and a typo must not turn into another list
 * silently); else the file of the Debian package publicsuffix, which is
 * the one apt keeps current (libpsl's psl_dist_filename(), then the .dat
 * beside it); else libpsl's builtin copy, frozen when libpsl was built,
 * with a note saying so; else none.
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

struct ctl_psl {
	psl_ctx_t *ctx;         /* NULL: no list */
	int builtin;            /* ctx is libpsl's own: not freed */
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
	if (p->ctx != NULL)
		return p;
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
	return CTL_PSL_NARROW;
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
	case CTL_PSL_UNKNOWN:
		return "unknown";
	}
	return "?";
}

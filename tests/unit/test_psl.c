/*
 * How wide a wildcard's parent is (tools/psl.c): the answers egressctl
 * check and denials --suggest share, from a list this test writes (so the
 * answers do not move with the publicsuffix package), and the list that is
 * refused: a file that is not the Public Suffix List, or none at all.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/tap.h"
#include "tools/psl.h"

/* The two sections' markers, as the published list has them. */
static const char list[] =
    "// ===BEGIN ICANN DOMAINS===\n"
    "com\n"
    "uk\n"
    "co.uk\n"
    "// ===END ICANN DOMAINS===\n"
    "// ===BEGIN PRIVATE DOMAINS===\n"
    "github.io\n"
    "s3.amazonaws.com\n"
    "*.compute.amazonaws.com\n"
    "!www.ck\n"
    "// ===END PRIVATE DOMAINS===\n";

static char dir[] = "/tmp/egressd-test-psl.XXXXXX";

static const char *
path_of(const char *name)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static const char *
write_file(const char *name, const char *text)
{
	const char *path = path_of(name);
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
		printf("Bail out! cannot write %s\n", path);
		exit(1);
	}
	return path;
}

static void
test_list(void)
{
	char text[sizeof(list) + 700];
	const char *path;
	static const struct {
		const char *parent;
		enum ctl_psl_width want;
	} cases[] = {
		{ "com", CTL_PSL_TLD },
		{ "internal", CTL_PSL_TLD },            /* one label, listed or not */
		{ "co.uk", CTL_PSL_ICANN },
		{ "github.io", CTL_PSL_PRIVATE },
		/* The parent of a wildcard rule: every name under it has its
		 * own owner. */
		{ "compute.amazonaws.com", CTL_PSL_PRIVATE },
		{ "example.com", CTL_PSL_NARROW },
		{ "example.co.uk", CTL_PSL_NARROW },
		{ "team.github.io", CTL_PSL_NARROW },
		/* Not a suffix, but two lie below it: a wildcard over it
		 * admits anyone's names under them. */
		{ "amazonaws.com", CTL_PSL_COVERS },
		{ "bucket.s3.amazonaws.com", CTL_PSL_NARROW },
		{ "www.ck", CTL_PSL_NARROW },           /* an exception rule */
		{ "example.org", CTL_PSL_NARROW },      /* the overlong line */
		{ "api.example.com", CTL_PSL_NARROW },
	};
	const char *ex = NULL;
	struct ctl_psl *p;

	/* A line longer than any rule is not read as rules, in pieces or not:
	 * its tail would have put a suffix below example.org. */
	snprintf(text, sizeof(text), "%s%0600d.x.example.org\n", list, 0);
	path = write_file("list.dat", text);
	setenv(CTL_PSL_ENV, path, 1);
	p = ctl_psl_open();
	if (!tap_ok(p != NULL, "a list named by %s opens", CTL_PSL_ENV))
		return;
	tap_is_str(ctl_psl_source(p), path, "its source is the file");
	tap_ok(ctl_psl_problem(p) == NULL, "and it is no problem: it was asked for");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tap_is_str(ctl_psl_width_str(ctl_psl_width(p, cases[i].parent)),
		    ctl_psl_width_str(cases[i].want), "%s: %s", cases[i].parent,
		    ctl_psl_width_str(cases[i].want));
	tap_is_str(ctl_psl_below_source(p), path,
	    "the suffixes below a name are searched in the same file");
	tap_is_int(ctl_psl_below(p, "amazonaws.com", &ex), 2,
	    "two suffixes below amazonaws.com");
	tap_is_str(ex, "compute.amazonaws.com",
	    "the first in order is the example (a wildcard rule's parent)");
	tap_is_int(ctl_psl_below(p, "s3.amazonaws.com", NULL), 0,
	    "none below s3.amazonaws.com");
	tap_is_int(ctl_psl_below(p, "com", NULL), 0,
	    "a TLD is not searched: it is too wide already");
	ctl_psl_close(p);
}

/* A file named by the variable that cannot be used: no other list then. */
static void
test_refused(const char *what, const char *path, const char *problem)
{
	char want[512];
	struct ctl_psl *p;

	setenv(CTL_PSL_ENV, path, 1);
	p = ctl_psl_open();
	if (!tap_ok(p != NULL, "%s: opens all the same", what))
		return;
	tap_ok(ctl_psl_source(p) == NULL, "%s: no list in use", what);
	tap_ok(ctl_psl_below_source(p) == NULL, "%s: nothing to search below "
	    "a name", what);
	snprintf(want, sizeof(want), "%s: %s (named by %s, so no other list "
	    "is used)", path, problem, CTL_PSL_ENV);
	tap_is_str(ctl_psl_problem(p), want, "%s: the problem says why", what);
	tap_is_int(ctl_psl_width(p, "example.com"), CTL_PSL_UNKNOWN,
	    "%s: a name of two labels is unknown (callers treat it as wide)",
	    what);
	tap_is_int(ctl_psl_width(p, "com"), CTL_PSL_TLD,
	    "%s: one label is still a top-level domain", what);
	ctl_psl_close(p);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	test_list();
	/* libpsl reads any text as rules: a file without both sections'
	 * oldest entries is not taken for the list. */
	test_refused("a file that is not the list",
	    write_file("other.dat", "example.org\nlocal\n"),
	    "not the public suffix list (no ICANN co.uk, or no private "
	    "github.io)");
	test_refused("a file that is not there", path_of("absent.dat"),
	    "No such file or directory");
	tap_is_int(ctl_psl_width(NULL, "example.com"), CTL_PSL_UNKNOWN,
	    "no handle: unknown");
	tap_is_str(ctl_psl_width_str(CTL_PSL_ICANN), "icann", "width names");
	tap_is_str(ctl_psl_width_str(CTL_PSL_COVERS), "covers", "covers");

	unlink(path_of("list.dat"));
	unlink(path_of("other.dat"));
	rmdir(dir);
	return tap_done();
}

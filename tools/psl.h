/*
 * How wide a wildcard is: the one answer egressctl check (the "very wide"
 * finding) and egressctl denials --suggest (which wildcards it may
 * propose) both take, from the Public Suffix List through libpsl.
 *
 * A rule "*.P" or ".P" admits every name under P. When P is a public
 * suffix (com, co.uk, and the list's private section: github.io,
 * herokuapp.com, s3.amazonaws.com, workers.dev, ...), those names belong to
 * whoever registers or publishes them: an allow-list entry that anyone can
 * meet. The parent of one of the list's wildcard rules counts too
 * ("*.compute.amazonaws.com": compute.amazonaws.com), as libpsl reads it.
 *
 * The list is the one the Debian package publicsuffix installs
 * (/usr/share/publicsuffix/), else libpsl's builtin copy (with a note),
 * else none: then every answer about a name of more than one label is
 * CTL_PSL_UNKNOWN, which callers treat as too wide. EGRESSCTL_PSL_FILE
 * names another list file (.dat as published, or .dafsa), used alone.
 *
 * Only egressctl links libpsl; egressd does not need it.
 */
#ifndef EGRESSD_CTL_PSL_H
#define EGRESSD_CTL_PSL_H

/* The environment variable naming a list to use instead of the package's. */
#define CTL_PSL_ENV     "EGRESSCTL_PSL_FILE"

enum ctl_psl_width {
	CTL_PSL_NARROW,         /* a registrable domain, or a name under one */
	CTL_PSL_TLD,            /* one label: a top-level domain (listed or not) */
	CTL_PSL_ICANN,          /* a public suffix of the ICANN section: co.uk */
	CTL_PSL_PRIVATE,        /* ... of the private section: github.io */
	CTL_PSL_COVERS,         /* not one, but public suffixes lie below it:
	                         * amazonaws.com (s3.amazonaws.com, ...) */
	CTL_PSL_UNKNOWN,        /* no list loaded: cannot tell */
};

struct ctl_psl;

/*
 * Load the list (see above). Never fails for want of a list: that is
 * ctl_psl_source() == NULL. Returns NULL only when out of memory.
 */
struct ctl_psl *ctl_psl_open(void);
void ctl_psl_close(struct ctl_psl *psl);

/* The list in use, in words: its file, or "libpsl's builtin list (of
 * DATE)"; NULL when none could be loaded. */
const char *ctl_psl_source(const struct ctl_psl *psl);

/* Why the publicsuffix package's list is not the one in use ("FILE: No
 * such file or directory"); NULL when it is. */
const char *ctl_psl_problem(const struct ctl_psl *psl);

/*
 * How wide "every name under parent" is. parent is a normalised name
 * (lower case, no trailing dot, A-labels for IDNs), as policy patterns
 * and the names in egressd's log are. Anything but CTL_PSL_NARROW is too
 * wide for an allow-list wildcard: a wildcard admits names at any depth,
 * so one over a name with public suffixes below it (CTL_PSL_COVERS) admits
 * every name under those too.
 */
enum ctl_psl_width ctl_psl_width(const struct ctl_psl *psl, const char *parent);

/*
 * How many of the list's public suffixes lie below parent (strictly), and
 * in *example (when not NULL) the first of them in order; 0 when none, or
 * when the list in use has no text to search (ctl_psl_below_source()).
 */
size_t ctl_psl_below(const struct ctl_psl *psl, const char *parent,
    const char **example);

/* The file the suffixes below a name are searched in; NULL when none
 * could be (libpsl's builtin list, a .dafsa named alone). */
const char *ctl_psl_below_source(const struct ctl_psl *psl);

/* "narrow", "tld", "icann", "private", "covers", "unknown". */
const char *ctl_psl_width_str(enum ctl_psl_width w);

#endif

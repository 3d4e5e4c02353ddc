/*
 * egressctl: the command line for security and ops teams (docs/egressctl.md).
 *
 * One file per subcommand (ctl_check.c, ctl_explain.c); egressctl.c holds
 * main(), the dispatch and what the subcommands share: the diagnostic
 * printer (the daemon's file:line:column format, byte for byte) and the
 * words used to print a rule.
 */
#ifndef EGRESSD_CTL_H
#define EGRESSD_CTL_H

#include <stddef.h>
#include <stdio.h>

#include "policy/policy.h"

/* Exit statuses, the same for every subcommand. */
#define CTL_EXIT_OK     0       /* valid / allowed */
#define CTL_EXIT_FAIL   1       /* errors found / denied */
#define CTL_EXIT_USAGE  2       /* bad command line, or nothing usable */

/* Counts what was reported; pass as the arg of ctl_report. */
struct ctl_diag {
	unsigned errors, warnings, notices;
};

/*
 * A pol_report_fn: prints "file:line:col: [warning: |notice: ]message" on
 * stderr, as egressd does, and counts it.
 */
void ctl_report(void *arg, enum pol_severity sev, const char *file,
    unsigned line, unsigned col, const char *msg);

/* The same for egressctl's own findings, printf-style. */
void ctl_diagf(struct ctl_diag *d, enum pol_severity sev, const char *file,
    unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* "443, 8443"; "default (443 for tls/connect, 80 for http)" for an allow
 * rule without ports; "all" for a deny rule without ports. */
const char *ctl_ports_str(const struct pol_rule *r, char *buf, size_t len);

/* "10.0.0.0/8, fd00::/8", or "any" for a rule without sources. */
const char *ctl_sources_str(const struct pol_rule *r, char *buf, size_t len);

/* Does the rule admit (allow) or cover (deny) this port? As pol_decide. */
int ctl_rule_has_port(const struct pol_rule *r, unsigned port,
    enum pol_proto proto);

/* JSON string literal of s (quotes included) on f. */
void ctl_json_str(FILE *f, const char *s);

int ctl_check_main(int argc, char **argv);
int ctl_explain_main(int argc, char **argv);
int ctl_denials_main(int argc, char **argv);

#endif

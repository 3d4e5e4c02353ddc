/*
 * egressctl: the command line for security and ops teams (docs/egressctl.md).
 *
 * One file per subcommand (ctl_check.c, ctl_explain.c); egressctl.c holds
 * main(), the dispatch and what the subcommands share: the diagnostic
 * printer (the daemon's file:line:column format, byte for byte), loading
 * the daemon's configuration and policy, and the words used to print a
 * rule.
 */
#ifndef EGRESSD_CTL_H
#define EGRESSD_CTL_H

#include <stddef.h>
#include <stdio.h>

#include "policy/policy.h"

struct gw_config;

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

/*
 * Load the daemon's configuration file and the policy it names as egressd
 * does (its files, mode and namespaces), every diagnostic through
 * ctl_report. On failure prints "egressctl CMD: CONFIG: the configuration
 * (or: the policy) does not load (N errors)", the policy line followed by
 * policy_note when it is not NULL, and returns NULL: the caller exits
 * CTL_EXIT_USAGE. Otherwise returns the snapshot (pol_snapshot_unref) and
 * stores the configuration in *cfg_out (gw_config_free).
 */
struct pol_snapshot *ctl_load_policy(const char *cmd, const char *config_path,
    const char *policy_note, struct gw_config **cfg_out);

/*
 * One line on f for a rule, in the words explain uses:
 * "LABELfile:line: action pattern (name, origin); ports P[: why]".
 */
void ctl_print_rule(FILE *f, const char *label, const struct pol_rule *r,
    const char *why);

/* A port, 1-65535, from the decimal digits s[0..end), at most five. 0/-1. */
int ctl_parse_port(const char *s, const char *end, unsigned *out);

/* A client address (--src): an IPv4 or IPv6 literal, port 0. 0/-1. */
struct sockaddr_storage;
int ctl_parse_src(const char *s, struct sockaddr_storage *ss);

/* Equal strings, or both NULL. */
int ctl_str_eq(const char *a, const char *b);

/* "443, 8443"; "default (443 for tls/connect, 80 for http)" for an allow
 * rule without ports; "all" for a deny rule without ports. */
const char *ctl_ports_str(const struct pol_rule *r, char *buf, size_t len);

/* "10.0.0.0/8, fd00::/8", or "any" for a rule without sources. */
const char *ctl_sources_str(const struct pol_rule *r, char *buf, size_t len);

/* JSON string literal of s (quotes included) on f, escaped by the log
 * writer's log_json_fput; null when s is NULL. */
void ctl_json_str(FILE *f, const char *s);
/* A rule's identity as JSON on stdout, object left open: "{"file":...,
 * "line", "col", "name", "action", "pattern", "origin" (explain and trace
 * add their own keys, then close it). */
struct pol_rule;
void ctl_json_rule_open(const struct pol_rule *r);

int ctl_check_main(int argc, char **argv);
int ctl_explain_main(int argc, char **argv);
int ctl_denials_main(int argc, char **argv);
int ctl_audit_main(int argc, char **argv);
int ctl_trace_main(int argc, char **argv);
int ctl_reasons_main(int argc, char **argv);
int ctl_posture_main(int argc, char **argv);

#endif

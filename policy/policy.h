/*
 * policy: allow-list files in, an immutable compiled snapshot out, and a
 * pure decide() over it.
 *
 * A snapshot is built whole and validated whole; if anything is wrong no
 * snapshot is returned and every problem has been reported as
 * file:line:column. A snapshot is reference-counted and never changes, so
 * workers can share it and a reload can swap it without locks on the
 * connection path.
 */
#ifndef EGRESSD_POLICY_H
#define EGRESSD_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define POL_NAME_MAX 253
#define POL_MAX_PORTS 32

enum pol_severity {
	POL_NOTICE = 0,         /* e.g. a skipped document kind */
	POL_WARNING,
	POL_ERROR,              /* makes the load fail */
};

/* Called once per diagnostic. file may be NULL when no file is involved. */
typedef void (*pol_report_fn)(void *arg, enum pol_severity sev,
    const char *file, unsigned line, unsigned col, const char *msg);

/*
 * A diagnostic as every program of the project prints it, the form editors
 * jump to: "file:line:col: [warning: |notice: ]msg" ("file: msg" without a
 * line, "msg" without a file). Returns buf.
 */
const char *pol_diag_format(char *buf, size_t len, enum pol_severity sev,
    const char *file, unsigned line, unsigned col, const char *msg);

enum pol_action {
	POL_ALLOW = 0,
	POL_DENY,
};

enum pol_pattern_kind {
	POL_PAT_EXACT = 0,      /* example.com            */
	POL_PAT_SUBDOMAINS,     /* *.example.com: any depth, not the apex */
	POL_PAT_DOMAIN,         /* .example.com: apex and any subdomain */
	POL_PAT_ANY,            /* *: any name (not a connection without one) */
};

enum pol_proto {
	POL_PROTO_TLS = 0,
	POL_PROTO_HTTP,
	POL_PROTO_CONNECT,
};

/* Enforce denies; report lets the connection through and logs
 * "would_deny". Set for the whole policy and overridable per file. */
enum pol_mode {
	POL_MODE_ENFORCE = 0,
	POL_MODE_REPORT,
};

/* Where the gateway connects for a name this rule admits (DESIGN §5). */
enum pol_resolution {
	POL_RES_DNS = 0,        /* resolve the requested name (native rules;
	                         * ServiceEntry DNS/DNS_ROUND_ROBIN/DYNAMIC_DNS
	                         * without endpoints) */
	POL_RES_NONE,           /* ServiceEntry NONE: the original destination,
	                         * only if the name resolves to it */
	POL_RES_STATIC,         /* ServiceEntry STATIC: the endpoints' addresses */
	POL_RES_ENDPOINTS,      /* ServiceEntry DNS with endpoints: resolve the
	                         * endpoints' names */
};

/* An address range, e.g. a namespace's pod CIDR or a rule's sources. */
struct pol_cidr {
	int family;             /* AF_INET or AF_INET6 */
	unsigned prefix;        /* 0..32 or 0..128 */
	uint8_t addr[16];       /* network byte order, host bits zero */
};

struct pol_endpoint {
	const char *address;    /* IP literal (STATIC) or host name (DNS) */
	uint16_t port;          /* 0: the port of the request */
};

/*
 * One host pattern of one rule, as loaded. Read-only for callers. What a
 * decision reads comes first, so that it mostly sits in one cache line.
 */
struct pol_rule {
	enum pol_action action;
	enum pol_pattern_kind kind;
	size_t nports;          /* 0: default ports (see pol_decide) */
	size_t nsources;        /* 0: the rule applies to any client */
	/* Up to POL_MAX_PORTS. In a snapshot, the hosts of one rule share
	 * one copy (held out of line: 56 bytes less per host, which is most
	 * of a big allow-list's memory); a loader points it at its own. */
	uint16_t *ports;
	const struct pol_cidr *sources;
	enum pol_mode mode;     /* report: a deny by this rule is not enforced */
	int allow_private;      /* resolved addresses may be non-public */

	const char *pattern;    /* as normalised: "*.example.com" */
	const char *suffix;     /* the name part: "example.com"; "" for ANY */
	const char *file;       /* file the rule came from */
	unsigned line, col;     /* where the pattern stands in it */
	const char *name;       /* a name for the rule: "allow[2]" or metadata.name */
	const char *origin;     /* "native", "ServiceEntry", "Sidecar",
	                         * "VirtualService" */
	const char *ns;         /* namespace of the resource; NULL if none */
	enum pol_resolution resolution;
	size_t nendpoints;
	const struct pol_endpoint *endpoints;
	int originate_tls;      /* DestinationRule tls.mode SIMPLE / native
	                         * originate_tls: the gateway opens TLS */
	int trial;              /* its file says "mode: report": it never
	                         * admits, so lends no settings */
};

/* A namespace of the daemon's "namespaces:" map and its client ranges. */
struct pol_namespace {
	const char *name;
	size_t ncidrs;
	const struct pol_cidr *cidrs;
};

struct pol_load_opts {
	const char *base_dir;           /* relative paths; NULL: cwd */
	enum pol_mode mode;             /* for files that do not say */
	/* Gives Sidecar "ns/host" entries and ServiceEntry namespaces a
	 * meaning at the gateway: their rules apply to these sources. With
	 * no map, namespace scoping cannot be enforced (a warning says so). */
	size_t nnamespaces;
	const struct pol_namespace *namespaces;
};

struct pol_snapshot;

/*
 * Load and compile the policy from files and directories. A directory
 * contributes its *.yaml and *.yml files in name order. Relative paths are
 * taken relative to base_dir (NULL: the current directory). Every
 * diagnostic goes to report. Returns NULL when anything is an error,
 * including no file at all; the caller then keeps what it had.
 */
struct pol_snapshot *pol_load(const char *const *paths, size_t npaths,
    const char *base_dir, pol_report_fn report, void *arg);

/* pol_load with options (pol_load is this with all options zero). */
struct pol_snapshot *pol_load_ex(const char *const *paths, size_t npaths,
    const struct pol_load_opts *opts, pol_report_fn report, void *arg);

/* Same, from one YAML text in memory (tests and fuzzing); name labels it. */
struct pol_snapshot *pol_load_buffer(const char *name, const char *text,
    size_t len, pol_report_fn report, void *arg);

/* Reference counting is atomic: any thread may ref or unref. */
struct pol_snapshot *pol_snapshot_ref(struct pol_snapshot *s);
void pol_snapshot_unref(struct pol_snapshot *s);

size_t pol_snapshot_rule_count(const struct pol_snapshot *s);
const struct pol_rule *pol_snapshot_rule(const struct pol_snapshot *s, size_t i);
/* Set by the owner (the daemon counts reloads); starts at 0. */
void pol_snapshot_set_generation(struct pol_snapshot *s, uint64_t gen);
uint64_t pol_snapshot_generation(const struct pol_snapshot *s);

enum pol_reason {
	POL_R_ALLOWED = 0,
	POL_R_NOT_ALLOWED,      /* no rule admits the name */
	POL_R_DENIED_BY_RULE,   /* a deny rule matches the name (and port) */
	POL_R_PORT_NOT_ALLOWED, /* a rule admits the name, none admits the port */
};

struct pol_request {
	const char *name;       /* normalised host name; NULL or "" when none */
	uint16_t port;
	enum pol_proto proto;
	const struct sockaddr *src;     /* may be NULL */
};

struct pol_verdict {
	int allow;                      /* the enforced answer: 1 relay, 0 refuse */
	enum pol_reason reason;         /* allowed, or why it is refused */
	const struct pol_rule *rule;    /* the deciding rule: the deny rule, the
	                                 * admitting rule, the rule that matched
	                                 * the name for port_not_allowed; NULL */
	const struct pol_rule *admit;   /* the rule that admitted name, port and
	                                 * source: its settings (allow_private,
	                                 * resolution, endpoints, originate_tls)
	                                 * are the only ones that apply; NULL */
	int report;                     /* would_deny: relayed, but report-mode
	                                 * rules (or a report-mode policy) would
	                                 * refuse it, for report_reason */
	enum pol_reason report_reason;
	const struct pol_rule *report_rule;     /* NULL for not_allowed */
};

/*
 * Decide a request. Pure: depends only on the snapshot and the request.
 * Rules in enforce mode and rules in report mode (a file's "mode: report")
 * are two layers. The enforced answer comes from the enforced rules alone:
 *  - deny rules win: a deny rule whose pattern matches the name, and whose
 *    ports include the port (a deny rule without ports covers every port),
 *    denies with denied_by_rule;
 *  - otherwise the most specific allow rule that matches the name and
 *    admits the port allows (exact, then the longest suffix, then "*"); an
 *    allow rule without ports admits 443 for tls/connect and 80 for http;
 *  - a name matched by allow rules none of which admits the port is
 *    port_not_allowed; no match at all is not_allowed;
 *  - a rule with sources applies only when req->src lies in one of them
 *    (never when req->src is NULL).
 * Report-mode rules never admit and never lend settings: a report-mode deny
 * rule that would deny an admitted request marks it report (would_deny).
 * Only when the snapshot's own mode is report (every file that does not
 * say otherwise) is a request that no enforced rule decides relayed; the
 * report-mode rules then say whether, and why, it would be denied, and a
 * report-mode allow rule that admits it is its admitting rule, unless its
 * file itself says "mode: report" (rule->trial: it lends nothing).
 * The cost depends on the number of labels in the name, not on the number
 * of rules. Callers outside decide/ use dc_decide() (decide/decide.h).
 */
void pol_decide(const struct pol_snapshot *s, const struct pol_request *req,
    struct pol_verdict *out);

/*
 * Every rule whose host pattern matches name (whatever its ports, sources
 * or action), most specific first; at most max are stored in out. Returns
 * how many there are in all. For "explain".
 */
size_t pol_matches(const struct pol_snapshot *s, const char *name,
    const struct pol_rule **out, size_t max);

/* The snapshot's own mode: what applies when no rule decides. */
enum pol_mode pol_snapshot_mode(const struct pol_snapshot *s);

/* A pattern's meaning in words: "any subdomain of example.com at any
 * depth, not example.com itself". Returns buf. */
const char *pol_pattern_describe(enum pol_pattern_kind kind, const char *suffix,
    char *buf, size_t len);

/* Does r apply to port for proto? A rule without ports: an allow applies
 * to the protocol's default (443 for TLS and CONNECT, 80 for HTTP), a deny
 * to every port. The one answer pol_decide and egressctl give. */
int pol_rule_admits_port(const struct pol_rule *r, uint16_t port,
    enum pol_proto proto);

/* "10.0.0.0/8", "2001:db8::/32", or a single address. 0, or -1. */
int pol_cidr_parse(const char *text, struct pol_cidr *out);
int pol_cidr_contains(const struct pol_cidr *c, const struct sockaddr *sa);
/* 1 when some client address is in both (an IPv4 range and its
 * IPv4-mapped IPv6 form count as one), else 0. */
int pol_cidr_overlap(const struct pol_cidr *a, const struct pol_cidr *b);
/* 1 when every address of inner is in outer (the same counting), else 0. */
int pol_cidr_within(const struct pol_cidr *inner, const struct pol_cidr *outer);
/* "10.0.0.0/8" */
void pol_cidr_format(const struct pol_cidr *c, char *buf, size_t len);

/*
 * Parse one host pattern as the loader does (lower-cases, drops one
 * trailing dot). On success fills *kind and writes the normalised pattern
 * into out (POL_NAME_MAX + 3 bytes) and returns 0; on failure returns -1
 * with a one-line hint in err.
 */
int pol_pattern_parse(const char *in, enum pol_pattern_kind *kind,
    char *out, size_t outlen, char *err, size_t errlen);

const char *pol_reason_str(enum pol_reason r);
const char *pol_action_str(enum pol_action a);
const char *pol_pattern_kind_str(enum pol_pattern_kind k);
const char *pol_proto_str(enum pol_proto p);
const char *pol_mode_str(enum pol_mode m);              /* enforce, report */
const char *pol_resolution_str(enum pol_resolution r);  /* dns, none, static, endpoints */
/* s[0..n) is a DNS-1123 label (lower-case letters, digits and '-', not at
 * either end, at most 63): a Kubernetes namespace or object name part. */
int pol_is_dns_label(const char *s, size_t n);

#endif

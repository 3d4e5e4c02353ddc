/*
 * posture: the ways a pod can get around the egress gateway, found in a
 * cluster's manifests (docs/posture.md, issue 15).
 *
 * Load every manifest (what `kubectl get -A -o yaml` prints, plain
 * multi-document files) into one cluster, then run the checks once: most
 * of them span objects (a ServiceEntry and the VirtualServices that route
 * it, a NetworkPolicy and the pods it selects). Findings come out sorted
 * by file, line and code. No I/O besides reading the files named.
 */
#ifndef EGRESSD_POSTURE_H
#define EGRESSD_POSTURE_H

#include <stddef.h>

#include "policy/policy.h"

/* The finding codes: a contract, like the log's reasons. */
enum pst_code {
	PST_SERVICE_ENTRY_BYPASS = 0,
	PST_EXTERNAL_NAME_SERVICE,
	PST_ALLOW_ANY,
	PST_UID_1337,
	PST_EXCLUDE_ANNOTATION,
	PST_INJECTION_DISABLED,
	PST_HOST_NETWORK,
	PST_NETWORKPOLICY_OPEN_EGRESS,
	PST_NO_EGRESS_NETWORKPOLICY,
	PST_PEER_AUTHENTICATION_PERMISSIVE,
	PST_NCODES
};

enum pst_severity {
	PST_HIGH = 0,
	PST_MEDIUM,
	PST_LOW,
};

struct pst_finding {
	enum pst_code code;
	enum pst_severity severity;
	const char *kind, *ns, *name;   /* what it is reported on */
	const char *file;
	unsigned line;
	const char *message, *fix;
};

struct pst_cluster;

/* The gateway's workload, "NAMESPACE/NAME"; NULL or failure on a bad one. */
struct pst_cluster *pst_new(const char *gateway);
void pst_free(struct pst_cluster *c);

/*
 * Read one YAML stream (label names it in diagnostics and findings) or one
 * file. Problems go to report as file:line:column; an error means the
 * input is unusable: the return is -1 then, 0 otherwise. Kinds posture
 * does not read are skipped silently, so a whole cluster dump may be fed.
 */
int pst_load_buffer(struct pst_cluster *c, const char *label, const char *text,
    size_t len, pol_report_fn report, void *arg);
int pst_load_file(struct pst_cluster *c, const char *path, pol_report_fn report,
    void *arg);

/*
 * Run every check over what was loaded; notices (a namespace missing from
 * the input, so injection cannot be judged) go to report. Returns the
 * number of findings, or -1 when out of memory.
 */
long pst_check(struct pst_cluster *c, pol_report_fn report, void *arg);
const struct pst_finding *pst_finding(const struct pst_cluster *c, size_t i);

const char *pst_code_str(enum pst_code code);
const char *pst_severity_str(enum pst_severity sev);
/* The severity every finding of a code has. */
enum pst_severity pst_code_severity(enum pst_code code);

#endif

/*
 * The packet engine of egressctl audit: packets in (any link type audit
 * reads), decisions out, grouped into tables. No files, no output, no
 * egressctl: the CLI (tools/ctl_audit.c) reads the captures and prints the
 * tables, the fuzz target (tests/fuzz/fuzz_audit.c) feeds it packets.
 *
 *	a = audit_new(snap, &opts);
 *	for each capture:
 *		for each packet: audit_packet(a, dlt, p, caplen, ts_us);
 *		audit_finish(a);        flows do not continue into the next
 *	audit_sort(a);                  report order
 *	audit_table(a, AUD_T_DENIED), audit_counts(a): what was found
 *	audit_free(a);
 */
#ifndef EGRESSD_TOOLS_AUDIT_H
#define EGRESSD_TOOLS_AUDIT_H

#include <netinet/in.h>
#include <pcap/dlt.h>
#include <stddef.h>
#include <stdint.h>

#include "decide/decide.h"
#include "policy/policy.h"

#define AUD_PORTMAP_MAX 32              /* --port-map and --dns-port each */
#define AUD_ADDR_LEN    INET6_ADDRSTRLEN

/* The link types audit_packet reads are pcap's DLT_ numbers; older
 * headers lack some. */
#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2  276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4        228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6        229
#endif
#define LINKTYPE_RAW    101             /* what DLT_RAW is in a file */

/* Why a flow was not decided: it is counted, never guessed at. */
enum aud_skip {
	AUD_SKIP_NO_PAYLOAD = 0,        /* the client sent nothing */
	AUD_SKIP_INCOMPLETE,            /* capture ended, or segments missing */
	AUD_SKIP_MIDSTREAM,             /* no SYN, and no side starts a hello */
	AUD_SKIP_MAX,
};

/* "no_payload", ...: the JSON key; aud_skip_text: a sentence for text. */
const char *aud_skip_str(enum aud_skip s);
const char *aud_skip_text(enum aud_skip s);

/* What a client asked for inside a CONNECT tunnel, when it was not the
 * CONNECT host (an sni_mismatch row says which). */
enum aud_inner {
	AUD_INNER_NONE = 0,     /* not a tunnel refused for its content */
	AUD_INNER_TLS,          /* a ClientHello's server name */
	AUD_INNER_TLS_NO_SNI,   /* a ClientHello that names no server */
	AUD_INNER_HTTP,         /* a plain request's host and port */
	AUD_INNER_OTHER,        /* neither TLS nor HTTP */
};

/* One row of a table: a decision, or a DNS name, grouped. */
struct aud_group {
	char *name;                     /* NULL: the flow has no name */
	unsigned port;
	enum pol_proto proto;
	enum dc_reason why;             /* the reason egressd's line carries */
	const char *reason;             /* dc_reason_str(why) */
	int allow;                      /* relayed, nothing to report */
	int report;                     /* relayed: report mode would deny it
	                                 * (why and rule are report mode's) */
	const struct pol_rule *rule;    /* the rule egressd's line names */
	uint64_t count;
	int64_t first_us, last_us;
	char (*src)[AUD_ADDR_LEN];      /* client addresses, distinct */
	size_t nsrc, capsrc;
	uint64_t hellos;                /* flows whose ClientHello was read, */
	uint64_t ech_count;             /* and of them, those offering ECH */
	unsigned qtypes[8];             /* DNS only */
	size_t nqtypes;
	/* sni_mismatch in a tunnel: what the client asked for inside it. */
	enum aud_inner inner;
	char *inner_name;               /* NULL: none, or not a host name */
	unsigned inner_port;            /* AUD_INNER_HTTP only */
};

struct aud_table {
	struct aud_group *g;
	size_t n, cap;
};

enum aud_table_id {
	AUD_T_DENIED = 0,
	AUD_T_ALLOWED,
	AUD_T_DNS,
	AUD_T_MAX,
};

/* Counters over every packet given. */
struct aud_counts {
	uint64_t flows;                 /* TCP connections that ended: */
	uint64_t judged;                /* with one decision or more, */
	uint64_t skipped[AUD_SKIP_MAX]; /* or not judged, and why */
	uint64_t decisions;             /* = nallowed + ndenied */
	uint64_t nallowed, ndenied;
	uint64_t nqueries;              /* DNS questions read */
	uint64_t fragments, packets, other;
};

struct aud_portmap {
	unsigned from, to;
};

struct aud_options {
	/* Flows towards port from are decided as if for port to. */
	struct aud_portmap pmap[AUD_PORTMAP_MAX];
	size_t npmap;
	/* UDP ports whose datagrams are DNS queries; none: 53. */
	unsigned dns_ports[AUD_PORTMAP_MAX];
	size_t ndns_ports;
	int refuse_ech;                 /* the daemon's refuse_ech */
};

/*
 * snap is borrowed: it must outlive the engine. opt is copied (NULL: no
 * port map, DNS on 53). NULL when out of memory.
 */
struct audit *audit_new(const struct pol_snapshot *snap,
    const struct aud_options *opt);

/* Is dlt one audit_packet reads? */
int audit_dlt_supported(int dlt);

/*
 * One captured packet: p holds its n captured bytes from the link-layer
 * header on, ts_us its time. Anything malformed is skipped or counted;
 * -1 only when out of memory (a message is on stderr).
 */
int audit_packet(struct audit *a, int dlt, const uint8_t *p, size_t n,
    int64_t ts_us);

/* The end of a capture: every open flow is decided or counted as not
 * judged, then forgotten. 0, or -1 when out of memory. */
int audit_finish(struct audit *a);

/* Report order: denied by count, allowed and DNS by name; sources sorted. */
void audit_sort(struct audit *a);

const struct aud_table *audit_table(const struct audit *a,
    enum aud_table_id id);
const struct aud_counts *audit_counts(const struct audit *a);
uint64_t audit_skipped_total(const struct audit *a);

/* Open flows are dropped, not decided. NULL is fine. */
void audit_free(struct audit *a);

#endif

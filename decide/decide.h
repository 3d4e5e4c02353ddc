/*
 * decide: the one decision (DESIGN §1) and the one vocabulary of reasons
 * (DESIGN §6).
 *
 * Every path of the daemon that lets a client's bytes go somewhere (tls,
 * transparent, http per request, connect and the ClientHello inside its
 * tunnel, a redirect's target, a live connection after a reload) and every
 * egressctl command that gives a verdict (explain, trace, audit, denials
 * --suggest) calls dc_decide() with the facts of the request. Nothing else
 * calls pol_decide(): two copies of a decision drift, and a drift in a
 * gateway is a way past it. A test greps for it.
 *
 * Reasons are an enum with one table: its name (the log's "reason" and the
 * metrics' label), the event of a refusal for it, the TLS alert and HTTP
 * status the client gets, and one line of documentation, which
 * docs/log.md's table is checked against.
 */
#ifndef EGRESSD_DECIDE_H
#define EGRESSD_DECIDE_H

#include <stdint.h>
#include <sys/socket.h>

#include "policy/policy.h"

/* A line's event. */
enum dc_event {
	DC_EV_ALLOW = 0,
	DC_EV_DENY,
	DC_EV_ERROR,
	DC_EV_INTERIM,          /* a connection still open (log.interim_interval) */
};

enum dc_reason {
	DC_ALLOWED = 0,
	DC_NOT_ALLOWED,
	DC_DENIED_BY_RULE,
	DC_PORT_NOT_ALLOWED,
	DC_NO_SNI,
	DC_BAD_PROXY_HEADER,
	DC_UNTRUSTED_PROXY,
	DC_NOT_TLS,
	DC_MALFORMED_HELLO,
	DC_HELLO_TOO_LARGE,
	DC_HELLO_TIMEOUT,
	DC_REQUEST_TIMEOUT,
	DC_BAD_HTTP,
	DC_SNI_MISMATCH,
	DC_ECH_REFUSED,
	DC_UPSTREAM_TLS_FAILED,
	DC_PRIVATE_ADDRESS,
	DC_DST_MISMATCH,
	DC_GATEWAY_LOOP,
	DC_POLICY_REVOKED,
	DC_DNS_NXDOMAIN,
	DC_DNS_FAILURE,
	DC_DNS_TIMEOUT,
	DC_CONNECT_FAILED,
	DC_CONNECT_TIMEOUT,
	DC_CLIENT_CLOSED,
	DC_CLIENT_RESET,
	DC_UPSTREAM_RESET,
	DC_IDLE_TIMEOUT,
	DC_OVERLOADED,
	DC_DRAINING,
	DC_RELAYING,
	DC_REASON_COUNT
};

#define DC_NO_ALERT (-1)

struct dc_reason_info {
	const char *name;       /* log "reason", metric label */
	enum dc_event event;    /* of a connection refused or ended for it */
	int tls_alert;          /* the alert a TLS client gets, DC_NO_ALERT */
	int http_status;        /* the status an HTTP client gets; 0: none */
	const char *doc;        /* what happened, in one line */
};

const struct dc_reason_info *dc_reason_info(enum dc_reason r);
const char *dc_reason_str(enum dc_reason r);
/* The reason of that name, for readers of log lines; -1 if none. */
int dc_reason_parse(const char *name, enum dc_reason *out);
const char *dc_event_str(enum dc_event e);

/* Which kind of listener the request came to. */
enum dc_listener {
	DC_L_TLS = 0,
	DC_L_TRANSPARENT,
	DC_L_HTTP,
	DC_L_CONNECT,
};

/* Where the name came from. */
enum dc_from {
	DC_FROM_SNI = 0,        /* a ClientHello's server_name */
	DC_FROM_HOST,           /* an HTTP request's Host (or its URL's host) */
	DC_FROM_AUTHORITY,      /* a CONNECT request's authority */
	DC_FROM_TUNNEL_SNI,     /* the ClientHello inside a CONNECT tunnel */
	DC_FROM_TUNNEL_HOST,    /* a plain HTTP request inside a CONNECT tunnel */
	DC_FROM_LOCATION,       /* a redirect's target: what the policy says
	                         * now of the hop the client may follow */
};

/* The facts of one request: everything a verdict may depend on. */
struct dc_facts {
	enum dc_listener listener;
	enum dc_from from;
	enum pol_proto proto;           /* the rules' protocol for the port
	                                 * defaults: tls, http or connect */
	const struct sockaddr *src;     /* the client, after a trusted PROXY
	                                 * header; NULL when unknown */
	const struct sockaddr *orig_dst;/* transparent: where it aimed; NULL */
	const char *name;               /* normalised host name; NULL: none */
	int name_invalid;               /* a name was sent; it is not one */
	int name_is_ip;                 /* an IP literal (HTTP Host): no rule
	                                 * admits it, not even "*" */
	uint16_t port;                  /* requested */
	int ech;                        /* the ClientHello offers ECH */
	int url_https;                  /* an absolute-form https:// request to
	                                 * a proxy (only CONNECT reaches TLS) */
	const char *tunnel_name;        /* DC_FROM_TUNNEL_*: the CONNECT's name */
	uint16_t tunnel_port;           /* ...and port */
	int tunnel_connect;             /* DC_FROM_TUNNEL_HOST: the request in
	                                 * the tunnel is itself a CONNECT */
};

/* The daemon's settings that take part in decisions. */
struct dc_opts {
	int refuse_ech;
};

struct dc_verdict {
	int allow;                      /* enforced: 1 relay, 0 refuse */
	enum dc_reason reason;          /* DC_ALLOWED, or why it is refused */
	uint16_t port;                  /* the port decided on, and the one the
	                                 * gateway connects to */
	const struct pol_rule *rule;    /* the deciding rule; NULL */
	const struct pol_rule *admit;   /* whose settings apply; NULL: defaults */
	int would_deny;                 /* relayed, but report mode would not */
	enum dc_reason would_reason;
	const struct pol_rule *would_rule;
	const char *detail;             /* static words on a refusal; NULL */
};

/*
 * Decide. Pure: depends only on the snapshot, the options and the facts.
 * Refusals that come before the policy (no name, a name that is not one,
 * ECH when refused, a tunnel's ClientHello for another name than the
 * CONNECT's, CONNECT where no proxy is) are enforced in every mode. A
 * transparent listener's port is the original destination's, whatever a
 * Host header says.
 */
void dc_decide(const struct pol_snapshot *s, const struct dc_opts *o,
    const struct dc_facts *f, struct dc_verdict *v);

/* The admitting rule's settings, or the defaults when none admitted. */
int dc_allow_private(const struct dc_verdict *v);
int dc_originate_tls(const struct dc_verdict *v);
enum pol_resolution dc_resolution(const struct dc_verdict *v);
/*
 * Where the gateway connects comes from the requested name (resolved, or
 * the original destination it resolves to): 1; from the admitting rule's
 * endpoints (STATIC addresses, DNS endpoint hosts): 0.
 */
int dc_routes_by_name(const struct dc_verdict *v);
/* Both verdicts send the connection to the same place: both by the name,
 * or both by the same endpoints in the same way. A reload that changes
 * this leaves a live upstream somewhere the new policy does not lead. */
int dc_same_route(const struct dc_verdict *a, const struct dc_verdict *b);

/* What the line says: report mode's answer when it would deny. */
enum dc_reason dc_line_reason(const struct dc_verdict *v);
const struct pol_rule *dc_line_rule(const struct dc_verdict *v);

const char *dc_listener_str(enum dc_listener l);
const char *dc_from_str(enum dc_from f);

#endif

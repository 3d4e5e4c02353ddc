/*
 * The vocabulary of reasons (DESIGN §6): one table, indexed by the enum.
 * The log, the metrics, the refusals the clients get and docs/log.md all
 * read it; a test checks the docs against it. Add a reason only with a
 * test and a line in docs/log.md.
 */
#include <string.h>

#include "decide/decide.h"

#define A_DENIED        49      /* TLS alert access_denied */
#define A_DECODE        50      /* decode_error */
#define A_INTERNAL      80      /* internal_error */
#define NONE            DC_NO_ALERT

static const struct dc_reason_info reasons[DC_REASON_COUNT] = {
	[DC_ALLOWED] = { "allowed", DC_EV_ALLOW, NONE, 0,
	    "relayed until both sides closed" },
	[DC_NOT_ALLOWED] = { "not_allowed", DC_EV_DENY, A_DENIED, 403,
	    "no rule admits the name" },
	[DC_DENIED_BY_RULE] = { "denied_by_rule", DC_EV_DENY, A_DENIED, 403,
	    "a deny rule matches the name (and port)" },
	[DC_PORT_NOT_ALLOWED] = { "port_not_allowed", DC_EV_DENY, A_DENIED, 403,
	    "rules admit the name, none admits the port" },
	[DC_NO_SNI] = { "no_sni", DC_EV_DENY, A_DENIED, 403,
	    "the ClientHello carries no server name" },
	[DC_BAD_PROXY_HEADER] = { "bad_proxy_header", DC_EV_DENY, NONE, 0,
	    "no valid PROXY v1/v2 header where one was required" },
	[DC_UNTRUSTED_PROXY] = { "untrusted_proxy", DC_EV_DENY, NONE, 0,
	    "a PROXY listener's peer is not in proxy_protocol_from" },
	[DC_NOT_TLS] = { "not_tls", DC_EV_DENY, NONE, 400,
	    "the first bytes are not a TLS handshake" },
	[DC_MALFORMED_HELLO] = { "malformed_hello", DC_EV_DENY, A_DECODE, 0,
	    "the ClientHello does not parse, names more than one server, or "
	    "its server name is not a host name" },
	[DC_HELLO_TOO_LARGE] = { "hello_too_large", DC_EV_DENY, A_DECODE, 0,
	    "the ClientHello exceeds 16 KiB (or 64 records)" },
	[DC_HELLO_TIMEOUT] = { "hello_timeout", DC_EV_DENY, NONE, 0,
	    "the ClientHello did not arrive within timeouts.hello" },
	[DC_REQUEST_TIMEOUT] = { "request_timeout", DC_EV_DENY, NONE, 408,
	    "an HTTP request head did not arrive within timeouts.hello" },
	[DC_BAD_HTTP] = { "bad_http", DC_EV_DENY, NONE, 400,
	    "the HTTP request does not parse or cannot be decided here" },
	[DC_SNI_MISMATCH] = { "sni_mismatch", DC_EV_DENY, A_DENIED, 403,
	    "a CONNECT tunnel carries another name than CONNECT said, or none; "
	    "or a second ClientHello names another server than the first" },
	[DC_ECH_REFUSED] = { "ech_refused", DC_EV_DENY, A_DENIED, 403,
	    "the ClientHello offers ECH and refuse_ech is on" },
	[DC_UPSTREAM_TLS_FAILED] = { "upstream_tls_failed", DC_EV_DENY, NONE, 502,
	    "TLS origination: the upstream's certificate or handshake failed" },
	[DC_PRIVATE_ADDRESS] = { "private_address", DC_EV_DENY, A_DENIED, 403,
	    "every address found is refused by the address guard" },
	[DC_DST_MISMATCH] = { "dst_mismatch", DC_EV_DENY, A_DENIED, 403,
	    "resolution NONE: the name does not resolve to where the client aimed" },
	[DC_GATEWAY_LOOP] = { "gateway_loop", DC_EV_DENY, A_DENIED, 403,
	    "the client is one of this gateway's own upstream connections" },
	[DC_POLICY_REVOKED] = { "policy_revoked", DC_EV_DENY, NONE, 0,
	    "a reload's policy refuses a connection admitted before it, or "
	    "no longer leads to its upstream" },
	[DC_DNS_NXDOMAIN] = { "dns_nxdomain", DC_EV_ERROR, A_INTERNAL, 502,
	    "the name does not exist (or has no address)" },
	[DC_DNS_FAILURE] = { "dns_failure", DC_EV_ERROR, A_INTERNAL, 502,
	    "the DNS servers failed or refused" },
	[DC_DNS_TIMEOUT] = { "dns_timeout", DC_EV_ERROR, A_INTERNAL, 504,
	    "no DNS answer within timeouts.dns" },
	[DC_CONNECT_FAILED] = { "connect_failed", DC_EV_ERROR, A_INTERNAL, 502,
	    "every address refused or was unreachable" },
	[DC_CONNECT_TIMEOUT] = { "connect_timeout", DC_EV_ERROR, A_INTERNAL, 504,
	    "the last address tried did not answer within timeouts.connect" },
	[DC_CLIENT_CLOSED] = { "client_closed", DC_EV_ERROR, NONE, 0,
	    "the client closed before its request was whole" },
	[DC_CLIENT_RESET] = { "client_reset", DC_EV_ALLOW, NONE, 0,
	    "the client reset the connection" },
	[DC_UPSTREAM_RESET] = { "upstream_reset", DC_EV_ALLOW, NONE, 502,
	    "the upstream reset the connection or sent no whole response" },
	[DC_IDLE_TIMEOUT] = { "idle_timeout", DC_EV_ALLOW, NONE, 0,
	    "nothing moved either way for timeouts.idle" },
	[DC_OVERLOADED] = { "overloaded", DC_EV_ERROR, A_INTERNAL, 503,
	    "out of file descriptors or memory" },
	[DC_DRAINING] = { "draining", DC_EV_ALLOW, NONE, 503,
	    "still open when the drain timeout ran out" },
	[DC_RELAYING] = { "relaying", DC_EV_INTERIM, NONE, 0,
	    "still open: an interim line (log.interim_interval)" },
};

const struct dc_reason_info *
dc_reason_info(enum dc_reason r)
{
	if ((unsigned)r >= DC_REASON_COUNT)
		r = DC_NOT_ALLOWED;
	return &reasons[r];
}

const char *
dc_reason_str(enum dc_reason r)
{
	return dc_reason_info(r)->name;
}

int
dc_reason_parse(const char *name, enum dc_reason *out)
{
	for (int i = 0; i < DC_REASON_COUNT; i++)
		if (strcmp(reasons[i].name, name) == 0) {
			*out = (enum dc_reason)i;
			return 0;
		}
	return -1;
}

const char *
dc_event_str(enum dc_event e)
{
	switch (e) {
	case DC_EV_ALLOW:
		return "allow";
	case DC_EV_DENY:
		return "deny";
	case DC_EV_ERROR:
		return "error";
	case DC_EV_INTERIM:
		return "interim";
	}
	return "unknown";
}

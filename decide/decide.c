/*
 * The one decision (decide.h). First what the bytes themselves refuse,
 * whatever the policy says, then the policy's two layers (policy.h).
 */
#include <string.h>
#include <netinet/in.h>

#include "decide/decide.h"

static uint16_t
sa_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static enum dc_reason
from_pol(enum pol_reason r)
{
	switch (r) {
	case POL_R_ALLOWED:
		return DC_ALLOWED;
	case POL_R_DENIED_BY_RULE:
		return DC_DENIED_BY_RULE;
	case POL_R_PORT_NOT_ALLOWED:
		return DC_PORT_NOT_ALLOWED;
	case POL_R_NOT_ALLOWED:
		break;
	}
	return DC_NOT_ALLOWED;
}

static int
is_tunnel(const struct dc_facts *f)
{
	return f->from == DC_FROM_TUNNEL_SNI || f->from == DC_FROM_TUNNEL_HOST;
}

/*
 * Refusals before the policy: 0 with v->reason and v->detail set, or 1
 * when the policy is to be asked.
 */
static int
screen(const struct dc_opts *o, const struct dc_facts *f, struct dc_verdict *v)
{
	int http = f->from == DC_FROM_HOST || f->from == DC_FROM_TUNNEL_HOST ||
	    f->from == DC_FROM_AUTHORITY;

	if (f->from == DC_FROM_AUTHORITY && f->listener != DC_L_CONNECT) {
		v->reason = DC_BAD_HTTP;
		v->detail = f->listener == DC_L_TRANSPARENT ?
		    "CONNECT to a redirected connection: it is not a proxy" :
		    "CONNECT is for a connect listener";
		return 0;
	}
	if (f->url_https && f->from == DC_FROM_HOST) {
		/* A proxy cannot forward https:// without originating TLS for
		 * the client; clients use CONNECT for that. */
		v->reason = DC_BAD_HTTP;
		v->detail = "an https:// request to a proxy: use CONNECT";
		return 0;
	}
	if (f->name_invalid) {
		v->reason = http ? DC_BAD_HTTP : DC_MALFORMED_HELLO;
		v->detail = http ? "the host is not a valid host name" :
		    "server_name is not a valid host name";
		return 0;
	}
	if (f->name == NULL || f->name[0] == '\0') {
		if (f->from == DC_FROM_TUNNEL_SNI) {
			v->reason = DC_SNI_MISMATCH;
			v->detail = "the ClientHello in the tunnel names no server";
		} else if (http) {
			v->reason = DC_BAD_HTTP;
			v->detail = "no Host: nothing to decide on";
		} else if (f->from == DC_FROM_LOCATION) {
			v->reason = DC_NOT_ALLOWED;
			v->detail = "the Location has no host name the policy can "
			    "decide on";
		} else {
			v->reason = DC_NO_SNI;
		}
		return 0;
	}
	if (is_tunnel(f) && (f->tunnel_name == NULL ||
	    strcmp(f->name, f->tunnel_name) != 0 || f->port != f->tunnel_port)) {
		/* Domain fronting: admitted for one name, asking for another. */
		v->reason = DC_SNI_MISMATCH;
		v->detail = "the tunnel carries another name than CONNECT said";
		return 0;
	}
	if (f->from == DC_FROM_TUNNEL_HOST && f->tunnel_connect) {
		/* Inside a tunnel a CONNECT is the origin's to answer, and an
		 * origin that is a proxy would open a tunnel nobody decided. */
		v->reason = DC_SNI_MISMATCH;
		v->detail = "a CONNECT inside the tunnel asks for another tunnel";
		return 0;
	}
	if (f->ech && o != NULL && o->refuse_ech && f->from != DC_FROM_LOCATION) {
		v->reason = DC_ECH_REFUSED;
		v->detail = "the real server name is encrypted (ECH)";
		return 0;
	}
	return 1;
}

void
dc_decide(const struct pol_snapshot *s, const struct dc_opts *o,
    const struct dc_facts *f, struct dc_verdict *v)
{
	struct pol_request req;
	struct pol_verdict pv;

	memset(v, 0, sizeof(*v));
	v->reason = DC_NOT_ALLOWED;
	v->would_reason = DC_ALLOWED;
	v->port = f->port;
	/* Redirected traffic goes where it was aimed: its port is the
	 * original destination's, never one a Host header names. */
	if (f->listener == DC_L_TRANSPARENT && f->orig_dst != NULL &&
	    sa_port(f->orig_dst) != 0 && f->from != DC_FROM_LOCATION)
		v->port = sa_port(f->orig_dst);
	if (!screen(o, f, v))
		return;
	memset(&req, 0, sizeof(req));
	/* An IP literal is not a name: no rule admits it, not even "*" (a
	 * client would pick the address). A report-mode policy still relays
	 * it, with would_deny. */
	req.name = f->name_is_ip ? NULL : f->name;
	req.port = v->port;
	req.proto = f->proto;
	req.src = f->src;
	pol_decide(s, &req, &pv);
	v->allow = pv.allow;
	v->reason = from_pol(pv.reason);
	v->rule = pv.rule;
	v->admit = pv.admit;
	v->would_deny = pv.report;
	v->would_reason = pv.report ? from_pol(pv.report_reason) : DC_ALLOWED;
	v->would_rule = pv.report_rule;
	if (f->name_is_ip && (!v->allow || v->would_deny))
		v->detail = "an IP address is not a name any rule can allow";
}

int
dc_allow_private(const struct dc_verdict *v)
{
	return v->allow && v->admit != NULL && v->admit->allow_private;
}

int
dc_originate_tls(const struct dc_verdict *v)
{
	return v->allow && v->admit != NULL && v->admit->originate_tls;
}

enum pol_resolution
dc_resolution(const struct dc_verdict *v)
{
	return v->allow && v->admit != NULL ? v->admit->resolution : POL_RES_DNS;
}

int
dc_routes_by_name(const struct dc_verdict *v)
{
	enum pol_resolution r = dc_resolution(v);

	return !(v->allow && v->admit != NULL && v->admit->nendpoints > 0 &&
	    (r == POL_RES_STATIC || r == POL_RES_ENDPOINTS));
}

int
dc_same_route(const struct dc_verdict *a, const struct dc_verdict *b)
{
	const struct pol_rule *ra = a->admit, *rb = b->admit;

	if (dc_routes_by_name(a) || dc_routes_by_name(b))
		return dc_routes_by_name(a) && dc_routes_by_name(b);
	if (ra->resolution != rb->resolution || ra->nendpoints != rb->nendpoints)
		return 0;
	for (size_t i = 0; i < ra->nendpoints; i++)
		if (ra->endpoints[i].port != rb->endpoints[i].port ||
		    strcmp(ra->endpoints[i].address, rb->endpoints[i].address) != 0)
			return 0;
	return 1;
}

enum dc_reason
dc_line_reason(const struct dc_verdict *v)
{
	return v->allow && v->would_deny ? v->would_reason : v->reason;
}

const struct pol_rule *
dc_line_rule(const struct dc_verdict *v)
{
	return v->allow && v->would_deny ? v->would_rule : v->rule;
}

const char *
dc_listener_str(enum dc_listener l)
{
	switch (l) {
	case DC_L_TLS:
		return "tls";
	case DC_L_TRANSPARENT:
		return "transparent";
	case DC_L_HTTP:
		return "http";
	case DC_L_CONNECT:
		return "connect";
	}
	return "unknown";
}

const char *
dc_from_str(enum dc_from f)
{
	switch (f) {
	case DC_FROM_SNI:
		return "sni";
	case DC_FROM_HOST:
		return "host";
	case DC_FROM_AUTHORITY:
		return "authority";
	case DC_FROM_TUNNEL_SNI:
		return "tunnel_sni";
	case DC_FROM_TUNNEL_HOST:
		return "tunnel_host";
	case DC_FROM_LOCATION:
		return "location";
	}
	return "unknown";
}

/*
 * The packet engine of egressctl audit (tools/audit.h): decide every
 * connection in a packet capture as egressd would.
 *
 * Per packet: link layer (Ethernet with VLAN tags, Linux cooked v1/v2,
 * raw IP, BSD loopback) -> IPv4/IPv6 (extension headers skipped,
 * fragments counted and ignored) -> TCP streams reassembled client to
 * server by sequence number, or UDP port 53 queries. The client's bytes go
 * through the daemon's own parsers (sni_parse_hello, http_parse_request)
 * and the facts a listener builds from them (a ClientHello's name and
 * ECH, a Host, a CONNECT authority, the ClientHello or request inside a
 * tunnel) through dc_decide(), the one decision the workers call.
 *
 * Memory per flow is bounded: the client direction keeps at most
 * SNI_PEEK_MAX bytes, what the daemon itself buffers while peeking; a
 * hello that does not fit is hello_too_large, as in the daemon. Decided
 * flows drop their buffers. What a capture cannot show (what DNS would
 * answer, the daemon's listener ports) is in docs/egressctl-audit.md.
 *
 * HTTP request bodies of every framing are skipped with http_body_scan, so
 * that each head on a keep-alive connection is decided. After an admitted
 * CONNECT the client's next bytes are the tunnel's: as the daemon does, a
 * ClientHello (or plain request) in it that names another host than the
 * CONNECT did, or a ClientHello that names none, turns the tunnel's
 * decision into sni_mismatch. An absolute-form https:// request is
 * bad_http, as the daemon answers it: only CONNECT reaches https.
 *
 * Every input is untrusted: tests/fuzz/fuzz_audit.c feeds this file
 * arbitrary packets.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decide/decide.h"
#include "http/http.h"
#include "policy/policy.h"
#include "sni/sni.h"
#include "tools/audit.h"

#define AUD_STREAM_CAP  SNI_PEEK_MAX    /* client bytes kept per flow */
#define AUD_OOO_MAX     32              /* out-of-order ranges per flow */
#define AUD_PIECE       4096            /* a segment is read in pieces */
#define AUD_HASH_SIZE   4096

static const char *const skip_str[AUD_SKIP_MAX] = {
	"no_payload", "incomplete", "midstream",
};

static const char *const skip_text[AUD_SKIP_MAX] = {
	"the client sent no payload",
	("the capture ended (or lost segments) before the hello or request "
	    "head was complete"),
	"the capture started mid-connection",
};

/* Where a client stream is. */
enum aud_phase {
	AUD_PH_START = 0,       /* nothing read yet: TLS or HTTP? */
	AUD_PH_HTTP,            /* keep-alive: the next request head */
	AUD_PH_BODY,            /* a request body, skipped */
	AUD_PH_TUNNEL,          /* an admitted CONNECT: the tunnel's first bytes */
	AUD_PH_DONE,            /* nothing more to read */
};

struct aud_range {
	size_t start, end;              /* offsets from base, start > have */
};

/* One direction of a TCP connection. */
struct aud_stream {
	int seen;                       /* a segment was seen */
	int syn;                        /* its SYN was seen: base is exact */
	int base_set;
	uint32_t base;                  /* sequence number of buf[0] */
	uint8_t *buf;
	size_t have;                    /* contiguous bytes from base */
	size_t nooo;
	struct aud_range ooo[AUD_OOO_MAX];
	enum aud_phase phase;
	int decided;                    /* at least one decision was made */
	struct http_body body;          /* AUD_PH_BODY: where in the body */
};

/*
 * A CONNECT the policy admits (or would deny only in report mode) is
 * recorded once its tunnel's first bytes say whether the decision stands:
 * the daemon peeks into the tunnel and refuses another name there.
 */
struct aud_tunnel {
	int pending;                    /* decided, not recorded yet */
	int pinned;                     /* plain HTTP in the tunnel */
	char host[HTTP_HOST_MAX + 1];   /* the CONNECT authority */
	int is_ip;                      /* ... an IP literal */
	uint16_t port;
	int64_t ts;                     /* when the CONNECT head was complete */
};

struct aud_ep {
	uint8_t addr[16];
	uint16_t port;
};

struct aud_flow {
	struct aud_flow *next;
	int family;
	struct aud_ep ep[2];
	struct aud_stream st[2];
	int client;                     /* 0, 1, or -1 while unknown */
	int64_t first_us, last_us;
	struct aud_tunnel tun;
};

/* The inside of a tunnel, as a decision carries it to its row. */
struct aud_in {
	enum aud_inner kind;
	const char *name;
	unsigned port;
};

/* ECH in a row's ClientHello: none read (HTTP, a hello that did not
 * parse), offered, or not. */
enum aud_ech { AUD_ECH_UNKNOWN = -1, AUD_ECH_NO = 0, AUD_ECH_YES = 1 };

struct audit {
	const struct pol_snapshot *snap;
	struct aud_options opt;
	struct dc_opts dopts;
	struct aud_flow *hash[AUD_HASH_SIZE];
	struct aud_table tab[AUD_T_MAX];
	struct aud_counts c;
	uint8_t scratch[SNI_HELLO_MAX];
};

const char *
aud_skip_str(enum aud_skip s)
{
	return (unsigned)s < AUD_SKIP_MAX ? skip_str[s] : "?";
}

const char *
aud_skip_text(enum aud_skip s)
{
	return (unsigned)s < AUD_SKIP_MAX ? skip_text[s] : "?";
}

/* Both NULL, or the same string. */
static int
str_eq(const char *x, const char *y)
{
	if (x == NULL || y == NULL)
		return x == y;
	return strcmp(x, y) == 0;
}

/* ---- grouping ------------------------------------------------------------ */

static struct aud_group *
table_get(struct aud_table *t, const char *name, unsigned port,
    enum pol_proto proto, enum dc_reason reason, const struct pol_rule *rule,
    const struct aud_in *in)
{
	static const struct aud_in none;
	struct aud_group *g;

	if (in == NULL)
		in = &none;
	for (size_t i = 0; i < t->n; i++) {
		g = &t->g[i];
		if (str_eq(g->name, name) && g->port == port &&
		    g->proto == proto && g->why == reason && g->rule == rule &&
		    g->inner == in->kind && str_eq(g->inner_name, in->name) &&
		    g->inner_port == in->port)
			return g;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct aud_group *p = realloc(t->g, cap * sizeof(*p));

		if (p == NULL)
			return NULL;
		t->g = p;
		t->cap = cap;
	}
	g = &t->g[t->n];
	memset(g, 0, sizeof(*g));
	if (name != NULL && (g->name = strdup(name)) == NULL)
		return NULL;
	if (in->name != NULL && (g->inner_name = strdup(in->name)) == NULL) {
		free(g->name);
		return NULL;
	}
	g->inner = in->kind;
	g->inner_port = in->port;
	g->port = port;
	g->proto = proto;
	g->why = reason;
	g->reason = dc_reason_str(reason);
	g->rule = rule;
	t->n++;
	return g;
}

static int
group_add(struct aud_group *g, const char *src, int64_t ts, enum aud_ech ech)
{
	if (ech == AUD_ECH_YES)
		g->ech_count++;
	if (ech != AUD_ECH_UNKNOWN)
		g->hellos++;
	if (g->count == 0 || ts < g->first_us)
		g->first_us = ts;
	if (g->count == 0 || ts > g->last_us)
		g->last_us = ts;
	g->count++;
	for (size_t i = 0; i < g->nsrc; i++)
		if (strcmp(g->src[i], src) == 0)
			return 0;
	if (g->nsrc == g->capsrc) {
		size_t cap = g->capsrc ? g->capsrc * 2 : 4;
		char (*p)[AUD_ADDR_LEN] = realloc(g->src, cap * sizeof(*p));

		if (p == NULL)
			return -1;
		g->src = p;
		g->capsrc = cap;
	}
	snprintf(g->src[g->nsrc++], AUD_ADDR_LEN, "%s", src);
	return 0;
}

static void
table_free(struct aud_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->g[i].name);
		free(t->g[i].inner_name);
		free(t->g[i].src);
	}
	free(t->g);
}

/* ---- deciding ------------------------------------------------------------ */

static void
ep_sockaddr(int family, const struct aud_ep *ep, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(ep->port);
		memcpy(&sin->sin_addr, ep->addr, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(ep->port);
		memcpy(&sin6->sin6_addr, ep->addr, 16);
	}
}

static void
ep_addr_str(int family, const struct aud_ep *ep, char *buf, size_t len)
{
	if (inet_ntop(family, ep->addr, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

static unsigned
map_port(const struct audit *a, unsigned port)
{
	for (size_t i = 0; i < a->opt.npmap; i++)
		if (a->opt.pmap[i].from == port)
			return a->opt.pmap[i].to;
	return port;
}

/*
 * The facts of a request from this flow's client, as a listener builds
 * them: what the rest of the request says is the caller's to add.
 */
static void
flow_facts(const struct aud_flow *f, struct sockaddr_storage *src,
    enum dc_listener l, enum dc_from from, enum pol_proto proto,
    const char *name, unsigned port, struct dc_facts *fa)
{
	ep_sockaddr(f->family, &f->ep[f->client], src);
	memset(fa, 0, sizeof(*fa));
	fa->listener = l;
	fa->from = from;
	fa->proto = proto;
	fa->src = (const struct sockaddr *)src;
	fa->name = name;
	fa->port = (uint16_t)port;
}

/*
 * One row's worth: a verdict as the daemon's line would carry it. A
 * relayed connection report mode would deny is a row of the denied table
 * (with its report rule and reason, and report set); rows are keyed by the
 * line's reason and rule. in says what a tunnel refused for its content
 * asked for inside.
 */
static int
record_verdict(struct audit *a, const struct aud_flow *f, int64_t ts,
    const char *name, unsigned port, enum pol_proto proto,
    const struct dc_verdict *v, enum aud_ech ech, const struct aud_in *in)
{
	const struct aud_ep *cl = &f->ep[f->client];
	int allowed = v->allow && !v->would_deny;
	struct aud_group *g;
	char srcs[AUD_ADDR_LEN];

	ep_addr_str(f->family, cl, srcs, sizeof(srcs));
	a->c.decisions++;
	if (allowed) {
		a->c.nallowed++;
		g = table_get(&a->tab[AUD_T_ALLOWED], name, port, proto,
		    DC_ALLOWED, v->rule, in);
	} else {
		a->c.ndenied++;
		g = table_get(&a->tab[AUD_T_DENIED], name, port, proto,
		    dc_line_reason(v), dc_line_rule(v), in);
	}
	if (g == NULL || group_add(g, srcs, ts, ech) != 0) {
		fprintf(stderr, "egressctl: out of memory\n");
		return -1;
	}
	g->allow = allowed;
	g->report = v->would_deny;
	return 0;
}

/* Decide the facts as the daemon does, and record the verdict. */
static int
decide_record(struct audit *a, const struct aud_flow *f, int64_t ts,
    const struct dc_facts *fa, const char *name, const struct aud_in *in)
{
	struct dc_verdict v;

	dc_decide(a->snap, &a->dopts, fa, &v);
	return record_verdict(a, f, ts, name, v.port, fa->proto, &v,
	    fa->from == DC_FROM_SNI || fa->from == DC_FROM_TUNNEL_SNI ?
	    (fa->ech ? AUD_ECH_YES : AUD_ECH_NO) : AUD_ECH_UNKNOWN, in);
}

/*
 * A refusal the bytes give before the policy is asked (a hello that does
 * not parse, a request the daemon cannot decide): enforced in report mode
 * too.
 */
static int
refuse(struct audit *a, const struct aud_flow *f, int64_t ts,
    const char *name, unsigned port, enum pol_proto proto, enum dc_reason r,
    const struct aud_in *in)
{
	struct dc_verdict v;

	memset(&v, 0, sizeof(v));
	v.reason = r;
	return record_verdict(a, f, ts, name, port, proto, &v, AUD_ECH_UNKNOWN,
	    in);
}

/* [A-Z]+ and a space: a request line, whatever else is wrong with it. */
static int
looks_like_http(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && i < 20 && p[i] >= 'A' && p[i] <= 'Z')
		i++;
	return i > 0 && i < n && p[i] == ' ';
}

/*
 * Do these bytes start with a whole ClientHello or request head? Only a
 * complete one counts: mid-connection bytes often look like the start of
 * a request line, and a flow guessed wrong would be a false denial.
 */
static int
is_client_start(struct audit *a, const struct aud_stream *s)
{
	struct sni_hello h;
	struct http_request req;

	if (s->have == 0)
		return 0;
	if (s->buf[0] == 0x16)
		return sni_parse_hello(s->buf, s->have, a->scratch,
		    sizeof(a->scratch), &h) == SNI_OK;
	return http_parse_request(s->buf, s->have, &req, NULL) == HTTP_DONE;
}

/* Drop n bytes from the front of the stream (n may exceed what is held:
 * a body not captured yet is skipped as it arrives). */
static void
stream_consume(struct aud_stream *s, size_t n)
{
	size_t k = 0;

	if (n < s->have)
		memmove(s->buf, s->buf + n, s->have - n);
	s->have = n < s->have ? s->have - n : 0;
	s->base += (uint32_t)n;
	for (size_t i = 0; i < s->nooo; i++) {
		struct aud_range r = s->ooo[i];

		if (r.end <= n)
			continue;
		/* Out-of-order bytes past a skipped body are dropped: rare,
		 * and the next head is still found once they are resent. */
		if (r.start < n)
			continue;
		if (s->buf != NULL && r.start - n < AUD_STREAM_CAP)
			memmove(s->buf + (r.start - n), s->buf + r.start,
			    r.end - r.start);
		s->ooo[k].start = r.start - n;
		s->ooo[k].end = r.end - n;
		k++;
	}
	s->nooo = k;
}

static void
stream_release(struct aud_stream *s)
{
	free(s->buf);
	s->buf = NULL;
	s->have = 0;
	s->nooo = 0;
	s->phase = AUD_PH_DONE;
}

static int
decide_tls(struct audit *a, struct aud_flow *f, struct aud_stream *s,
    int64_t ts)
{
	struct sni_hello h;
	struct sockaddr_storage src;
	struct dc_facts fa;
	char name[SNI_NAME_MAX + 1];
	unsigned port = map_port(a, f->ep[!f->client].port);
	int rc;

	switch (sni_parse_hello(s->buf, s->have, a->scratch,
	    sizeof(a->scratch), &h)) {
	case SNI_NEED_MORE:
		if (s->have < AUD_STREAM_CAP)
			return 0;
		rc = refuse(a, f, ts, NULL, port, POL_PROTO_TLS,
		    DC_HELLO_TOO_LARGE, NULL);
		break;
	case SNI_OK:
		/* The name, none, or one that is not a host name: decided
		 * as the tls listener decides (no_sni, malformed_hello). */
		flow_facts(f, &src, DC_L_TLS, DC_FROM_SNI, POL_PROTO_TLS, NULL,
		    port, &fa);
		fa.ech = h.ech;
		if (h.has_sni) {
			if (sni_name_normalize(h.name.ptr, h.name.len, name) == 0)
				fa.name = name;
			else
				fa.name_invalid = 1;
		}
		rc = decide_record(a, f, ts, &fa, fa.name, NULL);
		break;
	default:
		rc = refuse(a, f, ts, NULL, port, POL_PROTO_TLS,
		    h.error == SNI_ERR_TOO_LARGE ? DC_HELLO_TOO_LARGE :
		    h.error == SNI_ERR_NOT_TLS ? DC_NOT_TLS : DC_MALFORMED_HELLO,
		    NULL);
		break;
	}
	s->decided = 1;
	stream_release(s);
	return rc;
}

/* The CONNECT's facts: its authority, on a connect listener. */
static void
connect_facts(const struct aud_flow *f, struct sockaddr_storage *src,
    const char *host, unsigned port, int is_ip, struct dc_facts *fa)
{
	flow_facts(f, src, DC_L_CONNECT, DC_FROM_AUTHORITY, POL_PROTO_CONNECT,
	    host, port, fa);
	fa->name_is_ip = is_ip;
}

/*
 * The tunnel's decision, once its first bytes (or the end of the
 * connection) say what it is, on the CONNECT host and port: fa NULL, the
 * CONNECT's own decision stands; else what the daemon decides for the
 * tunnel's content (fa's name against the CONNECT's); r, when not
 * DC_ALLOWED, a refusal the bytes give before that.
 */
static int
tunnel_record(struct audit *a, struct aud_flow *f, const struct dc_facts *fa,
    enum dc_reason r, const struct aud_in *in)
{
	struct aud_tunnel *t = &f->tun;
	struct sockaddr_storage src;
	struct dc_facts cf;
	struct dc_verdict v;

	t->pending = 0;
	if (r != DC_ALLOWED)
		return refuse(a, f, t->ts, t->host, t->port, POL_PROTO_CONNECT,
		    r, in);
	if (fa == NULL) {
		connect_facts(f, &src, t->host, t->port, t->is_ip, &cf);
		fa = &cf;
	}
	dc_decide(a->snap, &a->dopts, fa, &v);
	return record_verdict(a, f, t->ts, t->host, t->port, POL_PROTO_CONNECT,
	    &v, fa->from == DC_FROM_TUNNEL_SNI ? (fa->ech ? AUD_ECH_YES :
	    AUD_ECH_NO) : AUD_ECH_UNKNOWN, v.reason == DC_SNI_MISMATCH ? in :
	    NULL);
}

/* What the tunnel's content asks for, on the connect listener. */
static void
tunnel_facts(const struct aud_flow *f, struct sockaddr_storage *src,
    enum dc_from from, const char *name, unsigned port, struct dc_facts *fa)
{
	flow_facts(f, src, DC_L_CONNECT, from, POL_PROTO_CONNECT, name, port,
	    fa);
	fa->tunnel_name = f->tun.host;
	fa->tunnel_port = f->tun.port;
}

/*
 * The first bytes in an admitted tunnel, as the daemon peeks at them
 * (gateway/http.c): a ClientHello is decided as the tunnel's (it must
 * name the CONNECT host); plain HTTP is read request by request, each for
 * the CONNECT host and port (the stream goes on as pinned HTTP); anything
 * else is sni_mismatch. A CONNECT for the same authority again is the
 * client trying anew after the capture's proxy refused it (407 and
 * credentials): the tunnel has not started yet.
 */
static int
decide_tunnel(struct audit *a, struct aud_flow *f, struct aud_stream *s)
{
	struct sni_hello h;
	struct http_request req;
	struct sockaddr_storage src;
	struct dc_facts fa;
	struct aud_in in;
	char name[SNI_NAME_MAX + 1];
	int rc;

	memset(&in, 0, sizeof(in));
	switch (sni_parse_hello(s->buf, s->have, a->scratch,
	    sizeof(a->scratch), &h)) {
	case SNI_NEED_MORE:
		if (s->have < AUD_STREAM_CAP)
			return 0;
		rc = tunnel_record(a, f, NULL, DC_HELLO_TOO_LARGE, NULL);
		break;
	case SNI_OK:
		tunnel_facts(f, &src, DC_FROM_TUNNEL_SNI, NULL, f->tun.port,
		    &fa);
		fa.ech = h.ech;
		in.kind = AUD_INNER_TLS_NO_SNI;
		if (h.has_sni) {
			in.kind = AUD_INNER_TLS;
			if (sni_name_normalize(h.name.ptr, h.name.len,
			    name) == 0)
				in.name = fa.name = name;
			else
				fa.name_invalid = 1;
		}
		rc = tunnel_record(a, f, &fa, DC_ALLOWED, &in);
		break;
	default:
		if (h.error != SNI_ERR_NOT_TLS) {
			rc = tunnel_record(a, f, NULL, h.error ==
			    SNI_ERR_TOO_LARGE ? DC_HELLO_TOO_LARGE :
			    DC_MALFORMED_HELLO, NULL);
			break;
		}
		switch (http_parse_request(s->buf, s->have, &req, NULL)) {
		case HTTP_NEED_MORE:
			if (s->have < AUD_STREAM_CAP)
				return 0;
			/* The parser decides within HTTP_HEAD_MAX bytes. */
			/* FALLTHROUGH */
		case HTTP_ERROR:
			in.kind = AUD_INNER_OTHER;
			rc = tunnel_record(a, f, NULL, DC_SNI_MISMATCH, &in);
			break;
		case HTTP_DONE:
		default:
			if (req.form == HTTP_AUTHORITY &&
			    strcmp(req.host, f->tun.host) == 0 &&
			    req.port == f->tun.port) {
				stream_consume(s, req.head_len);
				return 0;
			}
			f->tun.pinned = 1;
			s->phase = AUD_PH_HTTP;
			return 0;
		}
		break;
	}
	s->decided = 1;
	stream_release(s);
	return rc;
}

/*
 * A request in a tunnel that carries plain HTTP: the daemon forwards it
 * only if it is for the CONNECT host and port (a port-less Host means the
 * tunnel's); another is fronting. 1 when the request passes, 0 when the
 * tunnel was recorded as refused, -1 on error.
 */
static int
tunnel_request(struct audit *a, struct aud_flow *f, const struct http_request *req)
{
	struct sockaddr_storage src;
	struct dc_facts fa;
	struct dc_verdict v;
	struct aud_in in;
	unsigned port;

	memset(&in, 0, sizeof(in));
	in.kind = AUD_INNER_HTTP;
	/* Refused before anything is decided, as gateway/http.c does. */
	if (req->has_host && req->form == HTTP_ABSOLUTE &&
	    req->scheme == HTTP_SCHEME_HTTPS)
		return tunnel_record(a, f, NULL, DC_BAD_HTTP, NULL) == 0 ? 0 : -1;
	port = req->port != 0 ? req->port : f->tun.port;
	tunnel_facts(f, &src, DC_FROM_TUNNEL_HOST, req->has_host ? req->host :
	    NULL, port, &fa);
	fa.name_is_ip = req->host_is_ip;
	/* A CONNECT inside the tunnel: refused by dc_decide, as the daemon's. */
	fa.tunnel_connect = req->form == HTTP_AUTHORITY;
	dc_decide(a->snap, &a->dopts, &fa, &v);
	if (v.allow)
		return 1;
	in.name = req->has_host ? req->host : NULL;
	in.port = port;
	return tunnel_record(a, f, &fa, DC_ALLOWED, &in) == 0 ? 0 : -1;
}

/*
 * Skip what the stream holds of a request body (http_body_scan: a
 * Content-Length, or chunks up to the last one and its trailers). A length
 * is skipped whole at once, bytes not captured yet included, so segments
 * after the body land where they belong. -1: the chunk framing is broken;
 * the daemon refuses the request then, and nothing after it can be read.
 */
static int
skip_body(struct aud_stream *s)
{
	enum http_status st;
	size_t used = 0;

	st = http_body_scan(&s->body, s->body.mode == HTTP_BODY_CHUNKED ?
	    s->buf : NULL, s->have, &used, NULL);
	if (st == HTTP_ERROR)
		return -1;
	if (st == HTTP_NEED_MORE && s->body.mode == HTTP_BODY_LENGTH) {
		used += (size_t)s->body.remain;
		s->body.remain = 0;
		st = HTTP_DONE;
	}
	stream_consume(s, used);
	if (st == HTTP_DONE)
		s->phase = AUD_PH_HTTP;
	return 0;
}

/*
 * Every request head of a keep-alive connection: each is decided as the
 * daemon decides a request, and its body (of any framing) skipped. After
 * an upgrade or "Connection: close" nothing more is read; after a CONNECT
 * the policy admits, the tunnel's first bytes are (decide_tunnel).
 */
/* A head that does not parse (or not within the parser's limit): the
 * tunnel's bad_http, or what the daemon's listener answers. The stream
 * ends. */
static int
http_unparsed(struct audit *a, struct aud_flow *f, struct aud_stream *s,
    int64_t ts)
{
	int notls, rc;

	if (f->tun.pinned) {
		/* The tunnel's next request does not parse. */
		rc = tunnel_record(a, f, NULL, DC_BAD_HTTP, NULL);
	} else {
		/* Neither a hello nor a request line: what the daemon's TLS
		 * listener calls not_tls. */
		notls = s->phase == AUD_PH_START &&
		    !looks_like_http(s->buf, s->have);
		rc = refuse(a, f, ts, NULL, map_port(a, f->ep[!f->client].port),
		    notls ? POL_PROTO_TLS : POL_PROTO_HTTP,
		    notls ? DC_NOT_TLS : DC_BAD_HTTP, NULL);
	}
	s->decided = 1;
	stream_release(s);
	return rc;
}

/*
 * A CONNECT, decided on its authority. Admitted (report mode's would_deny
 * too), the decision waits for the tunnel's first bytes: 1, the stream
 * goes on as the tunnel. Else the verdict is recorded and the stream ends:
 * 0, with the result in *rc.
 */
static int
http_connect(struct audit *a, struct aud_flow *f, struct aud_stream *s,
    int64_t ts, const struct http_request *req, int *rc)
{
	struct sockaddr_storage src;
	struct dc_facts fa;
	struct dc_verdict v;
	struct aud_tunnel *t = &f->tun;

	connect_facts(f, &src, req->host, req->port, req->host_is_ip, &fa);
	dc_decide(a->snap, &a->dopts, &fa, &v);
	if (v.allow) {
		t->pending = 1;
		snprintf(t->host, sizeof(t->host), "%s", req->host);
		t->port = (uint16_t)req->port;
		t->is_ip = req->host_is_ip;
		t->ts = ts;
		s->phase = AUD_PH_TUNNEL;
		stream_consume(s, req->head_len);
		return 1;
	}
	*rc = record_verdict(a, f, ts, req->host, v.port, POL_PROTO_CONNECT, &v,
	    AUD_ECH_UNKNOWN, NULL);
	stream_release(s);
	return 0;
}

/* A request in origin or absolute form, decided on its Host. */
static int
http_plain(struct audit *a, struct aud_flow *f, int64_t ts,
    const struct http_request *req)
{
	struct sockaddr_storage src;
	struct dc_facts fa;
	unsigned port;

	if (req->form == HTTP_ABSOLUTE)
		port = req->port != 0 ? req->port :
		    req->scheme == HTTP_SCHEME_HTTPS ? 443 : 80;
	else
		port = map_port(a, f->ep[!f->client].port);
	if (req->form == HTTP_ABSOLUTE && req->scheme == HTTP_SCHEME_HTTPS)
		/* The daemon's answer: only CONNECT reaches https (a proxy
		 * cannot forward https:// without originating TLS for the
		 * client). */
		return refuse(a, f, ts, req->host, port, POL_PROTO_HTTP,
		    DC_BAD_HTTP, NULL);
	/* A Host, or none (HTTP/1.0): bad_http then. */
	flow_facts(f, &src, DC_L_HTTP, DC_FROM_HOST, POL_PROTO_HTTP,
	    req->has_host ? req->host : NULL, port, &fa);
	fa.name_is_ip = req->host_is_ip;
	return decide_record(a, f, ts, &fa, fa.name, NULL);
}

/* A pinned tunnel's next request. 1: its body follows; else the stream
 * ended, with the result in *rc. */
static int
http_in_tunnel(struct audit *a, struct aud_flow *f, struct aud_stream *s,
    const struct http_request *req, int *rc)
{
	int pass = tunnel_request(a, f, req);

	if (pass != 1) {
		stream_release(s);
		*rc = pass < 0 ? -1 : 0;
		return 0;
	}
	if (req->connection_close || req->upgrade) {
		*rc = tunnel_record(a, f, NULL, DC_ALLOWED, NULL);
		stream_release(s);
		return 0;
	}
	return 1;
}

static int
decide_http(struct audit *a, struct aud_flow *f, struct aud_stream *s,
    int64_t ts)
{
	struct http_request req;
	int rc = 0;

	while (s->phase != AUD_PH_DONE && rc == 0) {
		if (s->phase == AUD_PH_BODY) {
			if (skip_body(s) != 0) {
				stream_release(s);
				return rc;
			}
			if (s->phase == AUD_PH_BODY)
				return rc;
			continue;
		}
		if (s->have == 0)
			return rc;
		if (s->phase == AUD_PH_TUNNEL) {
			size_t held = s->have;

			rc = decide_tunnel(a, f, s);
			/* A CONNECT sent again was consumed: what follows it
			 * in the same segment is the tunnel's, read now (no
			 * later segment may come to read it). */
			if (s->phase == AUD_PH_TUNNEL && s->have == held)
				return rc;
			continue;
		}
		switch (http_parse_request(s->buf, s->have, &req, NULL)) {
		case HTTP_NEED_MORE:
			if (s->have < AUD_STREAM_CAP)
				return 0;
			/* The parser decides within HTTP_HEAD_MAX bytes. */
			/* FALLTHROUGH */
		case HTTP_ERROR:
			return http_unparsed(a, f, s, ts);
		case HTTP_DONE:
			break;
		}
		s->decided = 1;
		if (f->tun.pinned) {
			if (http_in_tunnel(a, f, s, &req, &rc) == 0)
				return rc;
		} else if (req.form == HTTP_AUTHORITY) {
			if (http_connect(a, f, s, ts, &req, &rc) == 0)
				return rc;
			continue;
		} else {
			rc = http_plain(a, f, ts, &req);
			if (req.connection_close || req.upgrade) {
				stream_release(s);
				return rc;
			}
		}
		http_body_init(&s->body, http_request_body(&req),
		    req.content_length > 0 ? (uint64_t)req.content_length : 0);
		s->phase = AUD_PH_BODY;
		stream_consume(s, req.head_len);
	}
	return rc;
}

/* Read what the client stream holds now; decide what can be decided. */
static int
flow_advance(struct audit *a, struct aud_flow *f, int64_t ts)
{
	struct aud_stream *s;

	if (f->client < 0) {
		/* No SYN seen: the client is the side that starts with a
		 * complete hello or request head. */
		for (int i = 0; i < 2 && f->client < 0; i++)
			if (is_client_start(a, &f->st[i]))
				f->client = i;
		if (f->client < 0)
			return 0;
		stream_release(&f->st[!f->client]);
	}
	s = &f->st[f->client];
	if (s->phase == AUD_PH_DONE || s->have == 0)
		return 0;
	if (s->phase == AUD_PH_START && s->buf[0] == 0x16)
		return decide_tls(a, f, s, ts);
	return decide_http(a, f, s, ts);
}

/* ---- TCP reassembly ------------------------------------------------------ */

static void
stream_merge(struct aud_stream *s)
{
	int again = 1;

	while (again) {
		again = 0;
		for (size_t i = 0; i < s->nooo; i++) {
			if (s->ooo[i].start > s->have)
				continue;
			if (s->ooo[i].end > s->have)
				s->have = s->ooo[i].end;
			s->ooo[i] = s->ooo[--s->nooo];
			again = 1;
			break;
		}
	}
}

/* Put a segment's payload where its sequence number says. */
static int
stream_insert(struct aud_stream *s, uint32_t seq, const uint8_t *p, size_t n)
{
	int64_t off;
	size_t start, end;

	if (!s->base_set) {
		s->base = seq;
		s->base_set = 1;
	}
	off = (int32_t)(seq - s->base);
	if (off < 0) {
		/* Bytes already held or consumed: a retransmission. */
		if ((int64_t)n <= -off)
			return 0;
		p += -off;
		n -= (size_t)-off;
		off = 0;
	}
	start = (size_t)off;
	/* Beyond the cap: a hello that large is refused once the bytes
	 * before it are in. */
	if (start >= AUD_STREAM_CAP)
		return 0;
	end = start + n;
	if (end > AUD_STREAM_CAP)
		end = AUD_STREAM_CAP;
	if (s->buf == NULL && (s->buf = malloc(AUD_STREAM_CAP)) == NULL) {
		fprintf(stderr, "egressctl: out of memory\n");
		return -1;
	}
	/* Held bytes stay as first received; only new ones are written. */
	if (end > s->have) {
		size_t from = start > s->have ? start : s->have;

		memcpy(s->buf + from, p + (from - start), end - from);
	}
	if (start <= s->have) {
		if (end > s->have)
			s->have = end;
		stream_merge(s);
		return 0;
	}
	for (size_t i = 0; i < s->nooo; i++) {
		struct aud_range *r = &s->ooo[i];

		if (start <= r->end && end >= r->start) {
			r->start = start < r->start ? start : r->start;
			r->end = end > r->end ? end : r->end;
			return 0;
		}
	}
	if (s->nooo < AUD_OOO_MAX) {
		s->ooo[s->nooo].start = start;
		s->ooo[s->nooo].end = end;
		s->nooo++;
	}
	return 0;
}

static unsigned
flow_hash(int family, const struct aud_ep *e0, const struct aud_ep *e1)
{
	uint32_t h = 2166136261u;
	size_t alen = family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < alen; i++)
		h = (h ^ (e0->addr[i] ^ e1->addr[i])) * 16777619u;
	h = (h ^ (uint32_t)(e0->port ^ e1->port)) * 16777619u;
	return h % AUD_HASH_SIZE;
}

static int
ep_eq(const struct aud_ep *x, const struct aud_ep *y)
{
	return x->port == y->port && memcmp(x->addr, y->addr, 16) == 0;
}

/* Decide, or count as not judged, a flow that ends. */
static int
flow_finish(struct audit *a, struct aud_flow *f)
{
	int rc = 0;

	a->c.flows++;
	if (f->client < 0) {
		int any = f->st[0].have > 0 || f->st[1].have > 0 ||
		    f->st[0].nooo > 0 || f->st[1].nooo > 0;

		a->c.skipped[any ? AUD_SKIP_MIDSTREAM : AUD_SKIP_NO_PAYLOAD]++;
	} else {
		struct aud_stream *s = &f->st[f->client];

		/* An admitted CONNECT whose tunnel never showed its
		 * first bytes: its own decision stands. */
		if (f->tun.pending)
			rc = tunnel_record(a, f, NULL, DC_ALLOWED, NULL);
		/* A hello that filled the buffer was decided when it did:
		 * what is left is short of its end. */
		if (!s->decided)
			a->c.skipped[s->have > 0 || s->nooo > 0 ?
			    AUD_SKIP_INCOMPLETE : AUD_SKIP_NO_PAYLOAD]++;
		else
			a->c.judged++;
	}
	free(f->st[0].buf);
	free(f->st[1].buf);
	return rc;
}

static int
audit_tcp(struct audit *a, int family, const uint8_t *sa, const uint8_t *da,
    const uint8_t *p, size_t n, int64_t ts)
{
	struct aud_ep src, dst;
	struct aud_flow *f, **pp;
	unsigned h;
	size_t hl;
	uint32_t seq;
	uint8_t flags;
	int dir;

	if (n < 20)
		return 0;
	hl = (size_t)(p[12] >> 4) * 4;
	if (hl < 20 || hl > n)
		return 0;
	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	memcpy(src.addr, sa, family == AF_INET ? 4 : 16);
	memcpy(dst.addr, da, family == AF_INET ? 4 : 16);
	src.port = (uint16_t)(p[0] << 8 | p[1]);
	dst.port = (uint16_t)(p[2] << 8 | p[3]);
	seq = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
	    (uint32_t)p[6] << 8 | p[7];
	flags = p[13];

	h = flow_hash(family, &src, &dst);
	for (pp = &a->hash[h]; (f = *pp) != NULL; pp = &f->next)
		if (f->family == family &&
		    ((ep_eq(&f->ep[0], &src) && ep_eq(&f->ep[1], &dst)) ||
		    (ep_eq(&f->ep[1], &src) && ep_eq(&f->ep[0], &dst))))
			break;
	/* A new SYN on a known 4-tuple (not a retransmitted one) is a new
	 * connection. */
	dir = f != NULL && ep_eq(&f->ep[1], &src) ? 1 : 0;
	if (f != NULL && (flags & 0x12) == 0x02 &&
	    (f->st[dir].seen || f->st[!dir].seen) &&
	    (!f->st[dir].syn || f->st[dir].base != seq + 1)) {
		*pp = f->next;
		if (flow_finish(a, f) != 0) {
			free(f);
			return -1;
		}
		free(f);
		f = NULL;
	}
	if (f == NULL) {
		if ((f = calloc(1, sizeof(*f))) == NULL) {
			fprintf(stderr, "egressctl: out of memory\n");
			return -1;
		}
		f->family = family;
		f->ep[0] = src;
		f->ep[1] = dst;
		f->client = -1;
		f->first_us = ts;
		f->next = a->hash[h];
		a->hash[h] = f;
	}
	f->last_us = ts;
	dir = ep_eq(&f->ep[0], &src) ? 0 : 1;
	f->st[dir].seen = 1;
	if (flags & 0x02) {
		/* SYN: the sender of a bare SYN is the client, the sender of
		 * SYN-ACK the server. */
		if (!f->st[dir].decided && f->st[dir].have == 0) {
			f->st[dir].syn = 1;
			f->st[dir].base = seq + 1;
			f->st[dir].base_set = 1;
		}
		if (f->client < 0)
			f->client = (flags & 0x10) ? !dir : dir;
		seq++;
	}
	p += hl;
	n -= hl;
	if (n == 0)
		return 0;
	if (f->client >= 0 && dir != f->client)
		return 0;
	/* In pieces: a segment larger than the buffer (loopback, TSO)
	 * may carry a chunked body that is read as it goes, then the next
	 * head. */
	while (n > 0 && f->st[dir].phase != AUD_PH_DONE) {
		size_t k = n < AUD_PIECE ? n : AUD_PIECE;

		if (stream_insert(&f->st[dir], seq, p, k) != 0 ||
		    flow_advance(a, f, ts) != 0)
			return -1;
		seq += (uint32_t)k;
		p += k;
		n -= k;
		if (f->client >= 0 && dir != f->client)
			break;
	}
	return 0;
}

/* ---- DNS ----------------------------------------------------------------- */

/*
 * A query (QR 0, opcode QUERY): header (12 bytes), then QDCOUNT questions
 * of QNAME (length-prefixed labels, 0 ends) QTYPE QCLASS. Only the first
 * question is read; resolvers send one.
 */
static int
audit_dns(struct audit *a, int family, const uint8_t *sa, const uint8_t *p,
    size_t n, int64_t ts)
{
	char raw[256], name[SNI_NAME_MAX + 1], srcs[AUD_ADDR_LEN];
	size_t off = 12, len = 0;
	struct aud_ep src;
	struct sockaddr_storage ss;
	struct dc_facts fa;
	struct dc_verdict v;
	struct aud_group *g;
	unsigned qtype;

	if (n < 12 || (p[2] & 0x80) != 0 || (p[2] & 0x78) != 0 ||
	    (p[4] << 8 | p[5]) == 0)
		return 0;
	for (;;) {
		size_t l;

		if (off >= n)
			return 0;
		l = p[off++];
		if (l == 0)
			break;
		/* Compression pointers have no place in a question. */
		if (l > 63 || off + l > n || len + l + 1 >= sizeof(raw))
			return 0;
		if (len > 0)
			raw[len++] = '.';
		memcpy(raw + len, p + off, l);
		len += l;
		off += l;
	}
	if (off + 4 > n)
		return 0;
	qtype = (unsigned)(p[off] << 8 | p[off + 1]);
	a->c.nqueries++;
	if (len == 0 || sni_name_normalize((const uint8_t *)raw, len, name) != 0)
		snprintf(name, sizeof(name), "%s", len == 0 ? "." : "(invalid name)");

	memset(&src, 0, sizeof(src));
	memcpy(src.addr, sa, family == AF_INET ? 4 : 16);
	ep_sockaddr(family, &src, &ss);
	ep_addr_str(family, &src, srcs, sizeof(srcs));
	/* What a TLS connection to the name on 443 would get. */
	memset(&fa, 0, sizeof(fa));
	fa.listener = DC_L_TLS;
	fa.from = DC_FROM_SNI;
	fa.proto = POL_PROTO_TLS;
	fa.src = (const struct sockaddr *)&ss;
	fa.name = name;
	fa.port = 443;
	dc_decide(a->snap, &a->dopts, &fa, &v);
	g = table_get(&a->tab[AUD_T_DNS], name, 443, POL_PROTO_TLS,
	    v.allow && !v.would_deny ? DC_ALLOWED : dc_line_reason(&v),
	    v.allow && !v.would_deny ? v.rule : dc_line_rule(&v), NULL);
	if (g == NULL || group_add(g, srcs, ts, AUD_ECH_UNKNOWN) != 0) {
		fprintf(stderr, "egressctl: out of memory\n");
		return -1;
	}
	g->allow = v.allow && !v.would_deny;
	g->report = v.would_deny;
	for (size_t i = 0; i < g->nqtypes; i++)
		if (g->qtypes[i] == qtype)
			return 0;
	if (g->nqtypes < sizeof(g->qtypes) / sizeof(g->qtypes[0]))
		g->qtypes[g->nqtypes++] = qtype;
	return 0;
}

/* ---- IP and link layers -------------------------------------------------- */

static int
is_dns_port(const struct audit *a, unsigned port)
{
	if (a->opt.ndns_ports == 0)
		return port == 53;
	for (size_t i = 0; i < a->opt.ndns_ports; i++)
		if (a->opt.dns_ports[i] == port)
			return 1;
	return 0;
}

static int
audit_l4(struct audit *a, int family, const uint8_t *sa, const uint8_t *da,
    unsigned proto, const uint8_t *p, size_t n, int64_t ts)
{
	if (proto == 6)
		return audit_tcp(a, family, sa, da, p, n, ts);
	if (proto == 17 && n >= 8 && is_dns_port(a, (unsigned)(p[2] << 8 | p[3]))) {
		size_t ulen = (size_t)(p[4] << 8 | p[5]);

		if (ulen >= 8 && ulen < n)
			n = ulen;
		return audit_dns(a, family, sa, p + 8, n - 8, ts);
	}
	a->c.other++;
	return 0;
}

static int
audit_ipv4(struct audit *a, const uint8_t *p, size_t n, int64_t ts)
{
	size_t hl, tot;
	unsigned frag;

	if (n < 20 || (p[0] >> 4) != 4)
		return 0;
	hl = (size_t)(p[0] & 0x0f) * 4;
	tot = (size_t)(p[2] << 8 | p[3]);
	if (hl < 20 || tot < hl || hl > n)
		return 0;
	if (tot < n)
		n = tot;        /* Ethernet padding */
	frag = (unsigned)(p[6] << 8 | p[7]);
	if ((frag & 0x3fff) != 0) {
		/* More fragments, or not the first: the daemon never sees a
		 * fragment either; the kernel reassembles. */
		a->c.fragments++;
		return 0;
	}
	return audit_l4(a, AF_INET, p + 12, p + 16, p[9], p + hl, n - hl, ts);
}

static int
audit_ipv6(struct audit *a, const uint8_t *p, size_t n, int64_t ts)
{
	size_t off = 40, plen;
	unsigned nh;

	if (n < 40 || (p[0] >> 4) != 6)
		return 0;
	plen = (size_t)(p[4] << 8 | p[5]);
	if (40 + plen < n)
		n = 40 + plen;
	nh = p[6];
	for (int i = 0; i < 8; i++) {
		switch (nh) {
		case 0:         /* hop-by-hop */
		case 43:        /* routing */
		case 60:        /* destination options */
			if (off + 8 > n)
				return 0;
			nh = p[off];
			off += ((size_t)p[off + 1] + 1) * 8;
			continue;
		case 51:        /* AH */
			if (off + 8 > n)
				return 0;
			nh = p[off];
			off += ((size_t)p[off + 1] + 2) * 4;
			continue;
		case 44:        /* fragment */
			if (off + 8 > n)
				return 0;
			/* An atomic fragment (offset 0, no more) is whole. */
			if ((p[off + 2] << 8 | p[off + 3]) != 0) {
				a->c.fragments++;
				return 0;
			}
			nh = p[off];
			off += 8;
			continue;
		default:
			break;
		}
		break;
	}
	if (off > n)
		return 0;
	return audit_l4(a, AF_INET6, p + 8, p + 24, nh, p + off, n - off, ts);
}

static int
audit_ip(struct audit *a, const uint8_t *p, size_t n, int64_t ts)
{
	if (n < 1)
		return 0;
	if ((p[0] >> 4) == 4)
		return audit_ipv4(a, p, n, ts);
	if ((p[0] >> 4) == 6)
		return audit_ipv6(a, p, n, ts);
	a->c.other++;
	return 0;
}

static int
audit_ethertype(struct audit *a, unsigned type, const uint8_t *p, size_t n,
    int64_t ts)
{
	if (type == 0x0800 || type == 0x86dd)
		return audit_ip(a, p, n, ts);
	a->c.other++;
	return 0;
}

int
audit_packet(struct audit *a, int dlt, const uint8_t *p, size_t n, int64_t ts)
{
	a->c.packets++;
	switch (dlt) {
	case DLT_EN10MB: {
		size_t off = 12;
		unsigned type;

		if (n < 14)
			return 0;
		type = (unsigned)(p[off] << 8 | p[off + 1]);
		/* 802.1Q, 802.1ad and the old QinQ tag: 4 bytes each. */
		while ((type == 0x8100 || type == 0x88a8 || type == 0x9100) &&
		    off + 6 <= n) {
			off += 4;
			type = (unsigned)(p[off] << 8 | p[off + 1]);
		}
		return audit_ethertype(a, type, p + off + 2, n - off - 2, ts);
	}
	case DLT_LINUX_SLL:
		if (n < 16)
			return 0;
		return audit_ethertype(a, (unsigned)(p[14] << 8 | p[15]),
		    p + 16, n - 16, ts);
	case DLT_LINUX_SLL2:
		if (n < 20)
			return 0;
		return audit_ethertype(a, (unsigned)(p[0] << 8 | p[1]),
		    p + 20, n - 20, ts);
	case DLT_NULL:
	case DLT_LOOP:
		/* The family word's byte order varies; the IP version
		 * nibble says what follows. */
		if (n < 4)
			return 0;
		return audit_ip(a, p + 4, n - 4, ts);
	default:
		/* DLT_RAW, LINKTYPE_RAW, DLT_IPV4, DLT_IPV6. */
		return audit_ip(a, p, n, ts);
	}
}

int
audit_dlt_supported(int dlt)
{
	switch (dlt) {
	case DLT_EN10MB:
	case DLT_LINUX_SLL:
	case DLT_LINUX_SLL2:
	case DLT_NULL:
	case DLT_LOOP:
	case DLT_RAW:
	case LINKTYPE_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
		return 1;
	}
	return 0;
}

int
audit_finish(struct audit *a)
{
	int rc = 0;

	for (size_t i = 0; i < AUD_HASH_SIZE; i++) {
		struct aud_flow *f, *next;

		for (f = a->hash[i]; f != NULL; f = next) {
			next = f->next;
			if (flow_finish(a, f) != 0)
				rc = -1;
			free(f);
		}
		a->hash[i] = NULL;
	}
	return rc;
}

/* ---- report order -------------------------------------------------------- */

static int
cmp_count(const void *x, const void *y)
{
	const struct aud_group *g = x, *h = y;
	int c;

	if (g->count != h->count)
		return g->count > h->count ? -1 : 1;
	c = strcmp(g->name != NULL ? g->name : "", h->name != NULL ? h->name : "");
	if (c != 0)
		return c;
	if (g->port != h->port)
		return g->port < h->port ? -1 : 1;
	c = strcmp(g->reason, h->reason);
	if (c != 0 || g->inner == h->inner)
		return c;
	return (int)g->inner - (int)h->inner;
}

static int
cmp_name(const void *x, const void *y)
{
	const struct aud_group *g = x, *h = y;
	int c = strcmp(g->name != NULL ? g->name : "",
	    h->name != NULL ? h->name : "");

	if (c != 0)
		return c;
	if (g->port != h->port)
		return g->port < h->port ? -1 : 1;
	return (int)g->proto - (int)h->proto;
}

static int
cmp_src(const void *x, const void *y)
{
	return strcmp(x, y);
}

void
audit_sort(struct audit *a)
{
	for (int t = 0; t < AUD_T_MAX; t++) {
		struct aud_table *tab = &a->tab[t];

		/* qsort wants a non-NULL base even for no elements. */
		if (tab->n == 0)
			continue;
		qsort(tab->g, tab->n, sizeof(*tab->g), t == AUD_T_DENIED ?
		    cmp_count : cmp_name);
		for (size_t i = 0; i < tab->n; i++)
			if (tab->g[i].nsrc > 0)
				qsort(tab->g[i].src, tab->g[i].nsrc,
				    sizeof(*tab->g[i].src), cmp_src);
	}
}

/* ---- the engine ---------------------------------------------------------- */

struct audit *
audit_new(const struct pol_snapshot *snap, const struct aud_options *opt)
{
	struct audit *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->snap = snap;
	if (opt != NULL)
		a->opt = *opt;
	a->dopts.refuse_ech = a->opt.refuse_ech;
	if (a->opt.npmap > AUD_PORTMAP_MAX)
		a->opt.npmap = AUD_PORTMAP_MAX;
	if (a->opt.ndns_ports > AUD_PORTMAP_MAX)
		a->opt.ndns_ports = AUD_PORTMAP_MAX;
	return a;
}

const struct aud_table *
audit_table(const struct audit *a, enum aud_table_id id)
{
	return &a->tab[(unsigned)id < AUD_T_MAX ? id : AUD_T_DENIED];
}

const struct aud_counts *
audit_counts(const struct audit *a)
{
	return &a->c;
}

uint64_t
audit_skipped_total(const struct audit *a)
{
	uint64_t n = 0;

	for (int i = 0; i < AUD_SKIP_MAX; i++)
		n += a->c.skipped[i];
	return n;
}

void
audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < AUD_HASH_SIZE; i++) {
		struct aud_flow *f, *next;

		for (f = a->hash[i]; f != NULL; f = next) {
			next = f->next;
			free(f->st[0].buf);
			free(f->st[1].buf);
			free(f);
		}
	}
	for (int t = 0; t < AUD_T_MAX; t++)
		table_free(&a->tab[t]);
	free(a);
}

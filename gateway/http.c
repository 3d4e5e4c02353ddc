/*
 * HTTP egress (docs/http.md): the http and connect listeners, and plain
 * HTTP on a transparent listener. Per request, on one client connection:
 *
 *   HEAD -> (decide) -> UPSTREAM -> EXCHANGE -> HEAD ...     keep-alive
 *   HEAD -> (CONNECT) -> UPSTREAM -> TUNNEL_HELLO -> RELAY   a tunnel
 *   any  -> CLOSING: an answer (403, 502, ...) is flushed, then close
 *
 * Every request is decided anew on its own Host, and an upstream
 * connection only ever carries requests for the host and port it was
 * admitted for: a request for another host closes it and opens a new one.
 * Bodies are framed (Content-Length, chunked) so that the next request
 * starts where the last one ended, and each response head is read so that
 * a 3xx with a Location becomes a redirect line with the policy's verdict
 * on its target. Bytes are forwarded unchanged, except the request line of
 * an absolute-form request, which an origin server gets in origin-form.
 */
#include "gateway/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "dns/dns.h"
#include "gateway/gateway.h"
#include "http/http.h"
#include "logging/chain.h"
#include "logging/log.h"

#define GH_URL_MAX      2048
#define GH_HIGH_WATER   (256 * 1024)

enum gh_state {
	GH_HEAD = 0,            /* waiting for a request head */
	GH_UPSTREAM,            /* decided: resolving, connecting, handshaking */
	GH_EXCHANGE,            /* request body up, response down */
	GH_TUNNEL_HELLO,        /* CONNECT answered: peeking inside the tunnel */
	GH_RELAY,               /* bytes both ways (tunnel, upgrade) */
	GH_CLOSING,             /* an answer is being flushed */
};

struct gw_http {
	enum gh_state st;
	unsigned nexch;                 /* requests begun on this connection */
	/* What the upstream connection was admitted for. */
	char up_host[HTTP_HOST_MAX + 1];
	uint16_t up_port;
	int up_ready, up_tls, handshaking;
	struct sockaddr_storage up_addr;        /* for the lines of reused requests */
	uint64_t up_gen;                /* the policy it was admitted under */
	int up_by_name;                 /* its address came from the name */
	int pinned;                     /* plain HTTP inside a CONNECT tunnel:
	                                 * every request must be for up_host */
	struct timespec hs_start;

	/* The request being served. */
	char method[24];
	int is_head, is_connect, close_after, upgrade;
	int req_close;                  /* the client said it sends no other */
	char url[GH_URL_MAX];
	char chain[CHAIN_ID_MAX];
	int status;                     /* what the client got */
	size_t head_len;
	size_t path_off;                /* absolute-form: where the path starts
	                                 * in the target; 0: forward as is */
	size_t target_off, target_len;
	int add_host;                   /* absolute-form without Host: the
	                                 * origin gets one from the URL */
	char host_field[HTTP_HOST_MAX + 16];    /* "host[:port]" for it */
	size_t line_end;                /* request line length, CRLF included */
	size_t parsed_len;              /* the head's bytes at the last parse */
	size_t scanned;                 /* searched for the blank line so far */
	struct http_body req_body, resp_body;
	int req_done, resp_head, resp_done;
	int answered;                   /* bytes of a response went to the client */
	int hello_seen;                 /* a tunnel's ClientHello was read */
	/* A direct write's error (gh_write_now), kept for the line: the
	 * bufferevent's own next write sees only EPIPE. */
	int client_err, upstream_err;
};

static void gh_client_read(struct bufferevent *bev, void *arg);
static void gh_next(struct gw_conn *c);
static uint16_t gh_upstream_port(const struct gw_conn *c);

static uint64_t
now_ms(void)
{
	return log_now_us() / 1000;
}

/* ---- answering the client ------------------------------------------ */

static void
gh_client_write(struct bufferevent *bev, void *arg)
{
	struct gw_conn *c = arg;
	struct gw_http *h = c->http;

	clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	if (h->st == GH_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
			return;
		/* Flushed: close like a refused TLS client, with a linger so a
		 * client still sending its body reads the answer, not a reset.
		 * A client whose whole request is read, that said it sends no
		 * other (Connection: close) and has nothing in flight is
		 * closed at once. */
		gw_bev_free(c->cbev);
		c->cbev = NULL;
		c->answered = 1;
		if (h->req_close && (h->req_done ||
		    h->req_body.mode == HTTP_BODY_NONE) &&
		    gw_conn_client_quiet(c->cfd))
			c->quiet = 1;
		gw_conn_finish(c);
		return;
	}
	/* Backpressure: the response may flow again. */
	if (c->ubev != NULL && h->st == GH_EXCHANGE &&
	    !(bufferevent_get_enabled(c->ubev) & EV_READ) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) < GH_HIGH_WATER / 2)
		bufferevent_enable(c->ubev, EV_READ);
}

/*
 * Write what a bufferevent's output holds now, as its own write does: the
 * output is frozen at its front for anyone else (evbuffer_write would
 * write nothing). Only while the bufferevent is not writing itself. What
 * is left is written by the bufferevent, which then reports the failure:
 * 0, or the error (a reset is reported once, to this write) for the line.
 */
static int
gh_write_now(struct evbuffer *out, evutil_socket_t fd)
{
	int n, err = 0;

	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, fd);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		err = errno;
	evbuffer_freeze(out, 1);
	return err;
}

/*
 * Bytes were queued for the client. Its socket most often takes them at
 * once: write them now, and enable writing only for what is left (the
 * bufferevent then watches for writability until its output is empty).
 * Both bufferevents are made with writing off for this: enabled on an
 * empty buffer, libevent puts the socket in epoll for writability and
 * takes it out again when its callback finds nothing to write, two
 * epoll_ctl and a turn of the loop for nothing.
 */
static void
gh_client_flush(struct gw_conn *c)
{
	struct evbuffer *out;

	if (c->cbev == NULL || (bufferevent_get_enabled(c->cbev) & EV_WRITE))
		return;
	out = bufferevent_get_output(c->cbev);
	if (evbuffer_get_length(out) > 0 && c->http->client_err == 0)
		c->http->client_err = gh_write_now(out, c->cfd);
	if (evbuffer_get_length(out) > 0)
		bufferevent_enable(c->cbev, EV_WRITE);
}

/*
 * Bytes were queued for the upstream. A plain socket most often takes
 * them at once: write them now, and enable writing (see gh_client_flush)
 * only for what is left. TLS goes through its bufferevent.
 */
static void
gh_upstream_flush(struct gw_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->ubev);
	int writing = bufferevent_get_enabled(c->ubev) & EV_WRITE;

	if (!writing && c->ufd >= 0 && !c->http->up_tls &&
	    evbuffer_get_length(out) > 0)
		c->http->upstream_err = gh_write_now(out, c->ufd);
	if (!writing && evbuffer_get_length(out) > 0)
		bufferevent_enable(c->ubev, EV_WRITE);
}

/* Flush what is in the client's output, then close (no more lines). */
static void
gh_close_after_flush(struct gw_conn *c)
{
	struct gw_http *h = c->http;

	h->st = GH_CLOSING;
	gw_conn_release_upstream(c);
	/* The timer now only bounds the flush (gh_timeout). */
	gw_conn_set_state(c, GW_CONN_ANSWERING);
	evtimer_del(c->timer);
	bufferevent_disable(c->cbev, EV_READ);
	gw_conn_timer(c, 5000);         /* a client that never reads */
	gh_client_flush(c);
	gh_client_write(c->cbev, c);    /* closes if all is written */
}

static const char *
status_text(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 408: return "Request Timeout";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "Error";
}

static void
gh_refuse(struct gw_conn *c, enum dc_event ev, enum dc_reason reason)
{
	struct gw_http *h = c->http;
	char body[600], msg[900], what[300];
	int status = dc_reason_info(reason)->http_status, blen, mlen;

	if (status == 0)
		status = 403;
	if (h == NULL || h->st == GH_CLOSING || c->cbev == NULL) {
		gw_conn_close(c, ev, reason);
		return;
	}
	if (h->answered) {
		/* A response is already on its way: all we can do is cut it. */
		gw_conn_log_once(c, ev, reason);
		gh_close_after_flush(c);
		return;
	}
	if (c->has_name)
		snprintf(what, sizeof(what), "%.253s:%u", c->name, (unsigned)c->port);
	else
		snprintf(what, sizeof(what), "this request");
	blen = snprintf(body, sizeof(body), "egressd: %s: %s%s%.300s\n", what,
	    dc_reason_str(reason), c->detail != NULL ? ": " : "", c->detail != NULL ? c->detail : "");
	if (blen < 0 || (size_t)blen >= sizeof(body))
		blen = (int)strlen(body);
	mlen = snprintf(msg, sizeof(msg), "HTTP/1.1 %d %s\r\nContent-Type: text/plain"
	    "\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", status,
	    status_text(status), blen, body);
	if (mlen < 0 || (size_t)mlen >= sizeof(msg))
		mlen = 0;
	h->status = status;
	/* The line first, counting the answer: a client told "no" has its
	 * line whatever happens. */
	c->answer_len = (uint32_t)mlen;
	if (ev == DC_EV_DENY && h->head_len > 0 && c->cbev != NULL) {
		struct evbuffer *in = bufferevent_get_input(c->cbev);
		size_t n = evbuffer_get_length(in) < h->head_len ?
		    evbuffer_get_length(in) : h->head_len;

		gw_conn_evidence(c, evbuffer_pullup(in, (ev_ssize_t)n), n);
	}
	gw_conn_log_once(c, ev, reason);
	c->answer_len = 0;
	c->bytes_out += (uint64_t)mlen;
	bufferevent_write(c->cbev, msg, (size_t)mlen);
	h->answered = 1;
	gh_close_after_flush(c);
}

/* ---- the log ---------------------------------------------------------- */

static void
gh_fill_log(struct gw_conn *c, struct log_record *r)
{
	struct gw_http *h = c->http;

	if (h == NULL) {
		/* Refused before the first byte (the peer itself was). */
		r->proto = c->l->conf->proto == GW_PROTO_CONNECT ? "connect" : "http";
		return;
	}
	r->proto = h->is_connect ? "connect" : "http";
	/* A tunnel's ClientHello, once read, says whether it offered ECH. */
	r->has_ech = h->hello_seen;
	r->ech = c->ech;
	if (h->method[0] != '\0')
		r->method = h->method;
	if (h->url[0] != '\0')
		r->url = h->url;
	r->status = h->status;
	if (h->chain[0] != '\0')
		r->chain = h->chain;
}

/* ---- URLs --------------------------------------------------------------- */

/* "http://host[:port]" with the port only when it is not the scheme's. */
static int
origin_str(char *out, size_t len, int https, const char *host, uint16_t port)
{
	int v6 = strchr(host, ':') != NULL;

	if (port == (https ? 443 : 80))
		return snprintf(out, len, "%s://%s%s%s", https ? "https" : "http",
		    v6 ? "[" : "", host, v6 ? "]" : "");
	return snprintf(out, len, "%s://%s%s%s:%u", https ? "https" : "http",
	    v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)port);
}

/* ---- redirect lines ------------------------------------------------ */

/*
 * The verdict on a redirect's target: what the policy says now. A target
 * that is an address (http_location_resolve() keeps it as written) is
 * decided as one, as the request that follows it will be: no rule admits
 * it, not even "*".
 */
static void
gh_redirect_decide(struct gw_conn *c, const char *host, uint16_t port,
    int https, struct dc_verdict *v)
{
	struct dc_facts f;
	struct dc_opts o;

	memset(&f, 0, sizeof(f));
	memset(&o, 0, sizeof(o));
	f.listener = gw_conn_listener_kind(c);
	f.from = DC_FROM_LOCATION;
	f.proto = https ? POL_PROTO_TLS : POL_PROTO_HTTP;
	f.src = (const struct sockaddr *)&c->src;
	f.name = host[0] != '\0' ? host : NULL;
	f.name_is_ip = http_location_host_is_ip(host);
	f.port = port;
	dc_decide(c->w->snap, &o, &f, v);
}

static void
gh_redirect(struct gw_conn *c, const struct http_response *resp)
{
	struct gw_http *h = c->http;
	struct gw_worker *w = c->w;
	char to[GH_URL_MAX], host[SNI_NAME_MAX + 1] = "", rule[512];
	const struct pol_rule *lr;
	struct log_record r;
	struct dc_verdict v;
	struct timespec now;
	int https = 0, ok;
	uint16_t port = 0;

	ok = http_location_resolve(h->url, resp->location, resp->location_len,
	    to, sizeof(to), &https, host, sizeof(host), &port) == 0;
	if (!ok)
		host[0] = '\0';
	if (h->chain[0] == '\0')
		snprintf(h->chain, sizeof(h->chain), "%s.%u", c->id, h->nexch);
	gh_redirect_decide(c, host, port, https, &v);
	memset(&r, 0, sizeof(r));
	r.ts_us = log_now_us();
	r.event = "redirect";
	r.listener = c->l->conf->name;
	r.src = (const struct sockaddr *)&c->src;
	r.orig_dst = c->orig_dst.ss_family != 0 ?
	    (const struct sockaddr *)&c->orig_dst : NULL;
	r.proto = "http";
	r.conn = c->id;
	r.method = h->method;
	r.url = h->url;
	r.from = h->url;
	r.status = resp->status;
	r.chain = h->chain;
	r.verdict = v.allow && !v.would_deny ? "allow" : "deny";
	r.reason = dc_reason_str(dc_line_reason(&v));
	r.would_deny = v.allow && v.would_deny;
	r.detail = v.detail;
	if (!ok) {
		/* Nothing to decide on: said as it is, never silently. */
		snprintf(to, sizeof(to), "%.*s", (int)(resp->location_len <
		    sizeof(to) - 1 ? resp->location_len : sizeof(to) - 1),
		    resp->location);
		r.to = to;
		r.port = -1;
	} else {
		r.to = to;
		r.name = host;
		r.port = port;
		r.proto = https ? "tls" : "http";
		lr = dc_line_rule(&v);
		if (lr != NULL) {
			snprintf(rule, sizeof(rule), "%s:%u", lr->file, lr->line);
			r.rule = rule;
			r.rule_name = lr->name;
		}
		chain_note_redirect(w->shared->chains, (const struct sockaddr *)&c->src,
		    host, port, h->chain, now_ms());
	}
	if (c->upstream.ss_family != AF_UNSPEC)
		r.upstream = (const struct sockaddr *)&c->upstream;
	clock_gettime(CLOCK_MONOTONIC, &now);
	r.duration_ms = (double)(now.tv_sec - c->start_mono.tv_sec) * 1e3 +
	    (double)(now.tv_nsec - c->start_mono.tv_nsec) / 1e6;
	log_write(w->log, &r);
	/* Counted with the lines: event "redirect", the target's reason. */
	gw_metrics_conn(w, &r, dc_line_reason(&v), 0, 0, 0);
}

/* ---- requests ------------------------------------------------------- */

/* Reset for a new request; the previous one's line is written. */
static void
gh_reset(struct gw_conn *c)
{
	struct gw_http *h = c->http;

	h->method[0] = h->url[0] = h->chain[0] = '\0';
	h->is_head = h->is_connect = h->upgrade = 0;
	h->status = 0;
	h->head_len = h->path_off = h->target_off = h->target_len = 0;
	h->req_done = h->resp_head = h->resp_done = h->answered = 0;
	h->req_close = 0;
	h->add_host = 0;
	h->parsed_len = h->scanned = 0;
	c->detail = NULL;
	c->decided = 0;
	c->decide_us = c->dns_us = 0;
	c->dns_stale = 0;
}

/* The absolute URL of the request, for the log and for Locations. */
static void
gh_url(struct gw_conn *c, const struct http_request *req, int https)
{
	struct gw_http *h = c->http;
	char origin[HTTP_HOST_MAX + 32];
	const char *path = "";
	size_t plen = 0;

	if (req->form == HTTP_AUTHORITY) {
		snprintf(h->url, sizeof(h->url), "%s%s%s:%u",
		    req->host_is_ip && strchr(req->host, ':') ? "[" : "", req->host,
		    req->host_is_ip && strchr(req->host, ':') ? "]" : "",
		    (unsigned)c->port);
		return;
	}
	origin_str(origin, sizeof(origin), https, c->name, c->port);
	if (req->form == HTTP_ABSOLUTE) {
		path = req->target + h->path_off;
		plen = req->target_len - h->path_off;
	} else if (req->form == HTTP_ORIGIN) {
		path = req->target;
		plen = req->target_len;
	}
	snprintf(h->url, sizeof(h->url), "%s%.*s", origin,
	    plen > 0 ? (int)plen : 1, plen > 0 ? path : "/");
}

/* In an absolute-form target, where the path starts (after the
 * authority); the target length when it has none. */
static size_t
path_offset(const struct http_request *req)
{
	const char *t = req->target, *e = t + req->target_len;
	const char *p = memchr(t, ':', req->target_len);

	if (p == NULL || p + 3 > e)
		return req->target_len;
	for (p += 3; p < e && *p != '/' && *p != '?'; p++)
		;
	return (size_t)(p - t);
}

/* The request line's length, CRLF included (the parser accepted it). */
static size_t
line_length(const struct http_request *req, const uint8_t *base)
{
	const uint8_t *p = memchr(base, '\n', req->head_len);

	return p != NULL ? (size_t)(p - base) + 1 : 0;
}

/* The port asked for: the request's, else the tunnel's, the scheme's, or
 * the listener's (a transparent listener's is the original destination's,
 * which dc_decide applies). */
static uint16_t
gh_request_port(const struct gw_conn *c, const struct http_request *req)
{
	if (req->port != 0)
		return req->port;
	if (c->http->pinned)
		return c->http->up_port;
	if (req->form == HTTP_ABSOLUTE)
		return req->scheme == HTTP_SCHEME_HTTPS ? 443 : 80;
	return c->l->conf->upstream_port;
}

/* What the request says, for the log and the decision. */
static void
gh_take_request(struct gw_conn *c, const struct http_request *req,
    const uint8_t *base)
{
	struct gw_http *h = c->http;

	h->nexch++;
	h->head_len = req->head_len;
	snprintf(h->method, sizeof(h->method), "%.*s", (int)req->method_len,
	    req->method);
	h->is_head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
	h->is_connect = req->form == HTTP_AUTHORITY;
	h->upgrade = req->upgrade;
	h->close_after = req->connection_close;
	h->req_close = req->connection_close;
	if (req->form == HTTP_ABSOLUTE) {
		h->path_off = path_offset(req);
		h->target_off = (size_t)((const uint8_t *)req->target - base);
		h->target_len = req->target_len;
		/* RFC 9112 §3.2.2: a proxy forwarding an absolute-form request
		 * sends the Host of its URL; a request that had none gets it. */
		h->line_end = line_length(req, base);
		h->add_host = !req->host_field;
		snprintf(h->host_field, sizeof(h->host_field), "%s%s%s",
		    req->host_is_ip && strchr(req->host, ':') ? "[" : "", req->host,
		    req->host_is_ip && strchr(req->host, ':') ? "]" : "");
		if (req->port != 0) {
			size_t n = strlen(h->host_field);

			snprintf(h->host_field + n, sizeof(h->host_field) - n, ":%u",
			    (unsigned)req->port);
		}
	}
	http_body_init(&h->req_body, http_request_body(req),
	    req->content_length > 0 ? (uint64_t)req->content_length : 0);
	c->has_name = 0;
	c->name[0] = '\0';
	if (req->has_host) {
		snprintf(c->name, sizeof(c->name), "%s", req->host);
		c->name_len = 0;
		c->has_name = 1;
	}
	c->port = gh_request_port(c, req);
	c->hello_bytes = (uint32_t)req->head_len;
}

static void
gh_facts(struct gw_conn *c, const struct http_request *req)
{
	struct gw_http *h = c->http;
	struct dc_facts *f = &c->facts;

	memset(f, 0, sizeof(*f));
	f->from = h->pinned ? DC_FROM_TUNNEL_HOST :
	    h->is_connect ? DC_FROM_AUTHORITY : DC_FROM_HOST;
	/* Plain HTTP inside a tunnel is judged as the tunnel was: on the
	 * CONNECT's port, by the rules for connect (their default port is
	 * 443, not 80). */
	f->proto = h->is_connect || h->pinned ? POL_PROTO_CONNECT : POL_PROTO_HTTP;
	f->name = c->has_name ? c->name : NULL;
	f->name_is_ip = req->host_is_ip;
	f->port = c->port;
	f->url_https = req->scheme == HTTP_SCHEME_HTTPS && !h->is_connect;
	if (h->pinned) {
		f->tunnel_name = h->up_host;
		f->tunnel_port = h->up_port;
		f->tunnel_connect = h->is_connect;
	}
}

/*
 * An upstream opened under an older policy serves a request decided under
 * the one now in force only where a new connection would lead to the same
 * address: it came from the name, then and now (not from a rule's
 * endpoints), and it passes the address guard as the new admitting rule
 * sets it (allow_private dropped, dns.deny_ranges grown). 1 if so (and it
 * counts as admitted under this policy from now on); 0 with the reason in
 * the worker's detail_buf.
 */
static int
gh_upstream_kept(struct gw_conn *c)
{
	struct gw_http *h = c->http;
	uint64_t gen = pol_snapshot_generation(c->snap);

	if (h->up_gen == gen)
		return 1;
	if (!gw_conn_upstream_kept(c, (const struct sockaddr *)&h->up_addr,
	    h->up_by_name && dc_routes_by_name(&c->v)))
		return 0;
	h->up_gen = gen;
	return 1;
}

/*
 * Plain HTTP in a tunnel goes over the tunnel's own upstream or nowhere:
 * no other can be opened for it. Gone (closed while a head was coming),
 * or no longer where the policy leads after a reload: the request is
 * refused and the tunnel ends (1). 0: go on over it.
 */
static int
gh_tunnel_lost(struct gw_conn *c)
{
	struct gw_http *h = c->http;

	if (c->ubev == NULL || !h->up_ready) {
		c->detail = "the tunnel's upstream connection has closed";
		gh_refuse(c, DC_EV_ERROR, DC_UPSTREAM_RESET);
		return 1;
	}
	if (gh_upstream_kept(c))
		return 0;
	c->detail = c->w->detail_buf;
	gh_refuse(c, DC_EV_DENY, DC_POLICY_REVOKED);
	return 1;
}

static void
gh_decide(struct gw_conn *c, const struct http_request *req, const uint8_t *base)
{
	struct gw_http *h = c->http;
	int reuse, refused;

	gh_take_request(c, req, base);
	gh_facts(c, req);
	refused = gw_conn_decide(c) != 0;
	/* A request that follows a redirect carries its chain, refused or
	 * not: the chain is what shows how a client got to a denial. */
	if (c->w->shared->chains != NULL && c->has_name)
		(void)chain_follows(c->w->shared->chains,
		    (const struct sockaddr *)&c->src, c->name, c->port, now_ms(),
		    h->chain, sizeof(h->chain));
	if (refused) {
		/* The line names no upstream: none is used for this request,
		 * and a tunnel's is not reused for another host. */
		gw_conn_release_upstream(c);
		memset(&c->upstream, 0, sizeof(c->upstream));
		h->up_ready = 0;
		if (h->pinned && c->v.reason == DC_SNI_MISMATCH && !h->is_connect) {
			snprintf(c->w->detail_buf, sizeof(c->w->detail_buf),
			    "the request in the tunnel is for %.80s:%u; CONNECT "
			    "said %.80s:%u", c->name, (unsigned)c->port, h->up_host,
			    (unsigned)h->up_port);
			c->detail = c->w->detail_buf;
		}
		gh_url(c, req, req->scheme == HTTP_SCHEME_HTTPS);
		gh_refuse(c, DC_EV_DENY, c->v.reason);
		return;
	}
	gh_url(c, req, req->scheme == HTTP_SCHEME_HTTPS);
	if (h->pinned && gh_tunnel_lost(c))
		return;
	/* The upstream carries one host only: same host and port, and the
	 * same way of connecting, or a new connection. In a tunnel it is the
	 * tunnel's own, admitted for this host. */
	reuse = c->ubev != NULL && h->up_ready && !h->is_connect &&
	    strcmp(h->up_host, c->name) == 0 && h->up_port == c->port &&
	    h->up_tls == dc_originate_tls(&c->v) && gh_upstream_kept(c);
	if (reuse || h->pinned) {
		memcpy(&c->upstream, &h->up_addr, sizeof(c->upstream));
		gh_next(c);
		return;
	}
	gw_conn_release_upstream(c);
	h->up_ready = 0;
	memset(&c->upstream, 0, sizeof(c->upstream));
	h->st = GH_UPSTREAM;
	bufferevent_disable(c->cbev, EV_READ);
	gw_conn_resolve(c, gh_upstream_port(c));
}

/*
 * A head trickled a byte at a time must not cost a parse of the whole head
 * per byte: parse when the blank line that ends a head has arrived, when
 * the bytes have doubled since the last parse (so garbage is still refused
 * early, at a cost linear in the head), or at the size cap.
 */
static int
gh_parse_due(struct gw_http *h, struct evbuffer *in, size_t len)
{
	struct evbuffer_ptr from, found;
	size_t start = h->scanned > 3 ? h->scanned - 3 : 0;

	if (h->parsed_len == 0 || len >= 2 * h->parsed_len || len >= HTTP_HEAD_MAX)
		return 1;
	if (evbuffer_ptr_set(in, &from, start, EVBUFFER_PTR_SET) != 0)
		return 1;
	found = evbuffer_search(in, "\r\n\r\n", 4, &from);
	h->scanned = len;
	return found.pos >= 0;
}

static void
gh_read_head(struct gw_conn *c)
{
	struct gw_http *h = c->http;
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	size_t len = evbuffer_get_length(in);
	struct http_request req;
	const char *why = NULL;
	uint8_t *p;

	if (len == 0)
		return;
	if (c->state != GW_CONN_PEEKING) {
		/* The first bytes of a new request: its clock starts now, and
		 * nothing of the previous request is its (a line for a head
		 * that never completes names no host, rule or upstream). */
		gw_conn_set_state(c, GW_CONN_PEEKING);
		c->logged = 0;
		c->interims = 0;
		c->silent = 0;
		c->bytes_in = c->bytes_out = 0;
		c->start_us = log_now_us();
		clock_gettime(CLOCK_MONOTONIC, &c->start_mono);
		c->has_name = 0;
		c->name[0] = '\0';
		c->decided = 0;
		h->parsed_len = h->scanned = 0;
		memset(&c->upstream, 0, sizeof(c->upstream));
		gw_conn_timer(c, c->w->cfg->timeouts.hello_ms);
	}
	if (len > HTTP_HEAD_MAX)
		len = HTTP_HEAD_MAX;
	/* All of it is this head so far: a timeout's line says so. */
	c->bytes_in = len;
	if (!gh_parse_due(h, in, len))
		return;
	h->parsed_len = len;
	p = evbuffer_pullup(in, (ev_ssize_t)len);
	switch (http_parse_request(p, len, &req, &why)) {
	case HTTP_NEED_MORE:
		return;
	case HTTP_ERROR:
		c->detail = why;
		h->head_len = len;
		gw_conn_release_upstream(c);
		gh_refuse(c, DC_EV_DENY, DC_BAD_HTTP);
		return;
	case HTTP_DONE:
		break;
	}
	evtimer_del(c->timer);
	c->bytes_in = req.head_len;
	gw_conn_set_state(c, GW_CONN_DECIDED);
	gh_decide(c, &req, p);
}

/* ---- the exchange ---------------------------------------------------- */

/* Write the request head upstream: as received, except an absolute-form
 * target, which becomes origin-form. */
static void
gh_send_head(struct gw_conn *c)
{
	struct gw_http *h = c->http;
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	struct evbuffer *out = bufferevent_get_output(c->ubev);

	if (h->target_len > 0) {
		size_t tail = h->target_len - h->path_off;

		evbuffer_remove_buffer(in, out, h->target_off);
		evbuffer_drain(in, h->path_off);
		if (tail == 0)
			evbuffer_add(out, "/", 1);
		else if (*(const char *)evbuffer_pullup(in, 1) == '?')
			evbuffer_add(out, "/", 1);
		if (!h->add_host) {
			evbuffer_remove_buffer(in, out, h->head_len -
			    h->target_off - h->path_off);
			return;
		}
		/* The rest of the request line, then the Host of the URL. */
		evbuffer_remove_buffer(in, out, h->line_end - h->target_off -
		    h->path_off);
		evbuffer_add_printf(out, "Host: %s\r\n", h->host_field);
		evbuffer_remove_buffer(in, out, h->head_len - h->line_end);
	} else {
		evbuffer_remove_buffer(in, out, h->head_len);
	}
}

static void
gh_exchange_end(struct gw_conn *c)
{
	struct gw_http *h = c->http;

	if (!h->resp_done || !h->req_done)
		return;
	gw_conn_log_once(c, DC_EV_ALLOW, DC_ALLOWED);
	if (h->close_after) {
		gh_close_after_flush(c);
		return;
	}
	/* Keep-alive: the next request is decided on its own; until it
	 * comes, the connection is idle and a close says nothing more. */
	gh_reset(c);
	h->st = GH_HEAD;
	gw_conn_set_state(c, GW_CONN_RELAYING);
	clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	gw_conn_timer(c, c->w->cfg->timeouts.idle_ms);
	bufferevent_enable(c->cbev, EV_READ);
	gh_read_head(c);
}

static void
gh_forward_body(struct gw_conn *c)
{
	struct gw_http *h = c->http;
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	size_t len, used = 0;
	const char *why = NULL;
	enum http_status st;

	if (h->req_done || c->ubev == NULL)
		return;
	len = evbuffer_get_length(in);
	if (len == 0 && h->req_body.mode != HTTP_BODY_NONE)
		return;
	/* Chunk framing is checked on contiguous bytes; a length is not. */
	st = http_body_scan(&h->req_body, h->req_body.mode == HTTP_BODY_CHUNKED ?
	    evbuffer_pullup(in, (ev_ssize_t)len) : NULL, len, &used, &why);
	if (st == HTTP_ERROR) {
		c->detail = why;
		gh_refuse(c, DC_EV_DENY, DC_BAD_HTTP);
		return;
	}
	c->bytes_in += used;
	evbuffer_remove_buffer(in, bufferevent_get_output(c->ubev), used);
	gh_upstream_flush(c);
	if (st == HTTP_DONE) {
		h->req_done = 1;
		/* A pipelined next request waits in the buffer until this
		 * exchange is over; stop reading so it cannot grow. */
		bufferevent_disable(c->cbev, EV_READ);
		gh_exchange_end(c);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(c->ubev)) >= GH_HIGH_WATER)
		bufferevent_disable(c->cbev, EV_READ);
}

/* The upstream is ready for this request: send its head, then its body. */
static void
gh_next(struct gw_conn *c)
{
	struct gw_http *h = c->http;
	struct evbuffer *in = bufferevent_get_input(c->cbev);

	if (h->is_connect) {
		static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

		evbuffer_drain(in, h->head_len);
		bufferevent_write(c->cbev, ok, sizeof(ok) - 1);
		gh_client_flush(c);     /* at once, most often */
		c->bytes_out += sizeof(ok) - 1;
		h->status = 200;
		h->answered = 1;
		h->st = GH_TUNNEL_HELLO;
		gw_conn_set_state(c, GW_CONN_PEEKING);
		gw_conn_timer(c, c->w->cfg->timeouts.hello_ms);
		bufferevent_enable(c->cbev, EV_READ);
		gh_client_read(c->cbev, c);
		return;
	}
	gh_send_head(c);
	h->st = GH_EXCHANGE;
	gw_conn_set_state(c, GW_CONN_RELAYING);
	clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	gw_conn_timer(c, c->w->cfg->timeouts.idle_ms);
	gh_upstream_flush(c);
	bufferevent_enable(c->ubev, EV_READ);
	/* A request without a body is complete: its client is not read
	 * until the exchange ends (gh_forward_body would stop it at once). */
	if (h->req_body.mode != HTTP_BODY_NONE)
		bufferevent_enable(c->cbev, EV_READ);
	gh_forward_body(c);
}

/* Upgrade (101) and tunnels: from here on, bytes both ways. */
static void
gh_relay(struct gw_conn *c)
{
	c->http->st = GH_RELAY;
	evtimer_del(c->timer);
	if (gw_relay_splice_bevs(c) == 0)
		return;
	gw_conn_relay_bevs(c);
}

/*
 * The response is whole. Bytes behind it in the same read are no answer to
 * anything: the server frames otherwise than we do, and the next request
 * must not get them as its response. They are dropped and the connection
 * ends after this exchange. So does one whose request is not all sent
 * (answered early: the two cannot be brought back in step).
 */
static void
gh_response_done(struct gw_conn *c, struct evbuffer *in)
{
	struct gw_http *h = c->http;
	size_t extra = evbuffer_get_length(in);

	h->resp_done = 1;
	if (!h->req_done)
		h->close_after = 1;
	if (extra > 0) {
		evbuffer_drain(in, extra);
		h->close_after = 1;
		/* Said in the request's line (written now, or once the
		 * request's body is up: a static string outlives both). */
		c->detail = "the upstream sent bytes behind its response: "
		    "dropped, and the connection closed";
	}
}

/*
 * An idle keep-alive upstream went away (or spoke unasked): the next
 * request opens a new one. A tunnel's cannot be replaced, so the tunnel
 * ends with it, as a byte tunnel would; a head already begun gets its 502
 * (gh_tunnel_lost) when complete. Between requests there is no line to
 * write: each request had its own.
 */
static void
gh_upstream_gone(struct gw_conn *c)
{
	struct gw_http *h = c->http;

	gw_conn_release_upstream(c);
	h->up_ready = 0;
	if (h->pinned && h->st == GH_HEAD && c->cbev != NULL &&
	    evbuffer_get_length(bufferevent_get_input(c->cbev)) == 0) {
		c->silent = 1;
		gw_conn_close(c, DC_EV_ALLOW, DC_UPSTREAM_RESET);
	}
}

static void
gh_upstream_read(struct bufferevent *bev, void *arg)
{
	struct gw_conn *c = arg;
	struct gw_http *h = c->http;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(c->cbev);

	clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	if (h->st == GH_HEAD) {
		/* An idle upstream that speaks unasked is not reused. */
		gh_upstream_gone(c);
		return;
	}
	/* The next request may be decided, and given another upstream, from
	 * inside this loop (gh_exchange_end): only this one's bytes are read. */
	while (h->st == GH_EXCHANGE && c->ubev == bev &&
	    evbuffer_get_length(in) > 0) {
		size_t len = evbuffer_get_length(in), used = 0;
		const char *why = NULL;
		enum http_status st;

		if (!h->resp_head) {
			struct http_response resp;

			if (len > HTTP_HEAD_MAX)
				len = HTTP_HEAD_MAX;
			switch (http_parse_response(evbuffer_pullup(in,
			    (ev_ssize_t)len), len, &resp, &why)) {
			case HTTP_NEED_MORE:
				gh_client_flush(c);     /* a 100 Continue */
				return;
			case HTTP_ERROR:
				snprintf(c->w->detail_buf, sizeof(c->w->detail_buf),
				    "the upstream's response: %s", why);
				c->detail = c->w->detail_buf;
				gh_refuse(c, DC_EV_ERROR, DC_UPSTREAM_RESET);
				return;
			case HTTP_DONE:
				break;
			}
			h->answered = 1;
			c->bytes_out += resp.head_len;
			if (resp.status >= 300 && resp.status < 400 &&
			    resp.location != NULL)
				gh_redirect(c, &resp);
			evbuffer_remove_buffer(in, out, resp.head_len);
			if (resp.status == 101) {
				h->status = 101;
				gh_relay(c);
				return;
			}
			if (resp.status < 200)
				continue;       /* 100 Continue: the real one follows */
			h->status = resp.status;
			h->resp_head = 1;
			if (resp.connection_close || resp.version_minor == 0)
				h->close_after = 1;
			http_body_init(&h->resp_body, http_response_body(&resp,
			    h->is_head, 0), resp.content_length > 0 ?
			    (uint64_t)resp.content_length : 0);
			if (h->resp_body.mode == HTTP_BODY_CLOSE)
				h->close_after = 1;
			if (h->resp_body.mode == HTTP_BODY_NONE) {
				gh_response_done(c, in);
				gh_exchange_end(c);
			}
			continue;
		}
		st = http_body_scan(&h->resp_body, h->resp_body.mode ==
		    HTTP_BODY_CHUNKED ? evbuffer_pullup(in, (ev_ssize_t)len) : NULL,
		    len, &used, &why);
		if (st == HTTP_ERROR) {
			c->detail = why;
			gh_refuse(c, DC_EV_ERROR, DC_UPSTREAM_RESET);
			return;
		}
		c->bytes_out += used;
		evbuffer_remove_buffer(in, out, used);
		if (st == HTTP_DONE) {
			gh_response_done(c, in);
			gh_exchange_end(c);
		}
	}
	/* What this read brought goes out in one write (a head and the
	 * body behind it: one segment). An exchange that ended has been
	 * flushed already (gh_close_after_flush, or the next request). */
	gh_client_flush(c);
	if (c->cbev != NULL && h->st == GH_EXCHANGE && c->ubev == bev &&
	    evbuffer_get_length(out) >= GH_HIGH_WATER)
		bufferevent_disable(bev, EV_READ);
}

static void
gh_upstream_write(struct bufferevent *bev, void *arg)
{
	struct gw_conn *c = arg;
	struct gw_http *h = c->http;

	clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	if (h->st == GH_EXCHANGE && !h->req_done &&
	    !(bufferevent_get_enabled(c->cbev) & EV_READ) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) < GH_HIGH_WATER / 2) {
		bufferevent_enable(c->cbev, EV_READ);
		gh_forward_body(c);
	}
}

/* Why a TLS handshake with the upstream failed, for the line. */
static const char *
tls_failure(struct gw_conn *c, struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	unsigned long e = bufferevent_get_openssl_error(bev);
	long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	char buf[160];

	if (vr != X509_V_OK) {
		snprintf(c->w->detail_buf, sizeof(c->w->detail_buf),
		    "certificate verification failed: %s",
		    X509_verify_cert_error_string(vr));
	} else if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(c->w->detail_buf, sizeof(c->w->detail_buf),
		    "TLS handshake failed: %s", buf);
	} else {
		snprintf(c->w->detail_buf, sizeof(c->w->detail_buf),
		    "TLS handshake failed: %s", strerror(EVUTIL_SOCKET_ERROR()));
	}
	return c->w->detail_buf;
}

static void
gh_upstream_event(struct bufferevent *bev, short what, void *arg)
{
	struct gw_conn *c = arg;
	struct gw_http *h = c->http;

	if (what & BEV_EVENT_CONNECTED) {
		/* The TLS handshake is done and the chain and name verified. */
		h->handshaking = 0;
		h->up_ready = 1;
		gh_next(c);
		return;
	}
	if (h->handshaking) {
		c->detail = tls_failure(c, bev);
		gh_refuse(c, DC_EV_DENY, DC_UPSTREAM_TLS_FAILED);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		if (h->st == GH_EXCHANGE && h->resp_head &&
		    h->resp_body.mode == HTTP_BODY_CLOSE) {
			gh_upstream_read(bev, c);
			h->resp_done = 1;
			h->req_done = 1;
			h->close_after = 1;
			gh_exchange_end(c);
			return;
		}
		if (h->st == GH_HEAD || h->st == GH_CLOSING) {
			gh_upstream_gone(c);
			return;
		}
		c->detail = h->resp_head ? "the upstream closed in the middle "
		    "of the response" : "the upstream closed without a response";
	} else {
		c->detail = strerror(h->upstream_err != 0 ? h->upstream_err :
		    EVUTIL_SOCKET_ERROR());
	}
	gh_refuse(c, DC_EV_ERROR, DC_UPSTREAM_RESET);
}

static void
gh_connected(struct gw_conn *c)
{
	struct gw_http *h = c->http;
	struct gw_worker *w = c->w;
	SSL *ssl = NULL;

	if (c->uev != NULL) {       /* none when connected at once */
		event_free(c->uev);
		c->uev = NULL;
	}
	evtimer_del(c->timer);
	free(c->addrs);
	c->addrs = NULL;
	c->naddrs = c->next_addr = 0;
	snprintf(h->up_host, sizeof(h->up_host), "%s", c->name);
	h->up_port = c->port;
	memcpy(&h->up_addr, &c->upstream, sizeof(h->up_addr));
	h->up_gen = pol_snapshot_generation(c->snap);
	h->up_by_name = dc_routes_by_name(&c->v);
	h->up_tls = !h->is_connect && dc_originate_tls(&c->v);
	if (h->up_tls) {
		ssl = w->shared->tls_ctx != NULL ? SSL_new(w->shared->tls_ctx) : NULL;
		if (ssl == NULL || SSL_set_tlsext_host_name(ssl, c->name) != 1 ||
		    SSL_set1_host(ssl, c->name) != 1) {
			SSL_free(ssl);
			c->detail = "cannot set up TLS to the upstream";
			gh_refuse(c, DC_EV_ERROR, DC_UPSTREAM_TLS_FAILED);
			return;
		}
		/* The bufferevent owns the socket and the SSL from here on. */
		c->ubev = bufferevent_openssl_socket_new(w->base, c->ufd, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (c->ubev == NULL) {
			SSL_free(ssl);
		} else {
			c->ufd = -1;
			bufferevent_openssl_set_allow_dirty_shutdown(c->ubev, 1);
		}
	} else {
		c->ubev = bufferevent_socket_new(w->base, c->ufd, 0);
		if (c->ubev != NULL)    /* written by gh_upstream_flush */
			bufferevent_disable(c->ubev, EV_WRITE);
		h->upstream_err = 0;
	}
	if (c->ubev == NULL) {
		c->detail = "out of memory";
		gh_refuse(c, DC_EV_ERROR, DC_OVERLOADED);
		return;
	}
	bufferevent_setcb(c->ubev, gh_upstream_read, gh_upstream_write,
	    gh_upstream_event, c);
	if (h->up_tls) {
		h->handshaking = 1;
		clock_gettime(CLOCK_MONOTONIC, &h->hs_start);
		gw_conn_set_state(c, GW_CONN_RELAYING);
		clock_gettime(CLOCK_MONOTONIC, &c->last_active);
		gw_conn_timer(c, w->cfg->timeouts.connect_ms);
		bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
		return;
	}
	h->up_ready = 1;
	gh_next(c);
}

static uint16_t
gh_upstream_port(const struct gw_conn *c)
{
	/* Originating TLS for a request to port 80 means port 443 (Istio's
	 * ServiceEntry port 80 with targetPort 443); any other port is
	 * where the TLS server listens. */
	if (!c->http->is_connect && dc_originate_tls(&c->v) && c->port == 80)
		return 443;
	return c->port;
}

/* ---- CONNECT tunnels: the ClientHello must name the CONNECT host ---- */

/*
 * Plain HTTP came through the tunnel: the tunnel's own line is written,
 * and from here on each request is an exchange of its own, forwarded over
 * the tunnel's upstream connection only if it is for the tunnel's host.
 */
static void
gh_pin(struct gw_conn *c)
{
	struct gw_http *h = c->http;

	gw_conn_log_once(c, DC_EV_ALLOW, DC_ALLOWED);
	gh_reset(c);
	h->pinned = 1;
	h->st = GH_HEAD;
	gw_conn_set_state(c, GW_CONN_RELAYING);
	gh_read_head(c);
}

/* Refuse inside a tunnel with a TLS alert, as the TLS listener would. */
static void
gh_tunnel_refuse(struct gw_conn *c, enum dc_reason reason, const uint8_t *p,
    size_t len)
{
	uint8_t alert[7] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0 };
	int a = dc_reason_info(reason)->tls_alert;

	gw_conn_evidence(c, p, len);
	if (a == DC_NO_ALERT) {
		gw_conn_log_once(c, DC_EV_DENY, reason);
	} else {
		alert[6] = (uint8_t)a;
		c->answer_len = sizeof(alert);
		gw_conn_log_once(c, DC_EV_DENY, reason);
		c->answer_len = 0;
		c->bytes_out += sizeof(alert);
		bufferevent_write(c->cbev, alert, sizeof(alert));
	}
	gh_close_after_flush(c);
}

/*
 * What came through the tunnel is not TLS: plain HTTP is decided per
 * request (each pinned to the CONNECT host); anything else is refused.
 * 0: wait for more bytes.
 */
static int
gh_tunnel_plain(struct gw_conn *c, const uint8_t *p, size_t len)
{
	struct http_request req;

	switch (http_parse_request(p, len, &req, NULL)) {
	case HTTP_NEED_MORE:
		return 0;
	case HTTP_DONE:
		gh_pin(c);
		return 1;
	case HTTP_ERROR:
		break;
	}
	c->detail = "neither TLS nor HTTP in the tunnel";
	c->bytes_in += len;
	gh_tunnel_refuse(c, DC_SNI_MISMATCH, p, len);
	return 1;
}

static void
gh_tunnel_hello(struct gw_conn *c)
{
	struct gw_http *h = c->http;
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	size_t len = evbuffer_get_length(in);
	struct sni_hello hello;
	char inner[SNI_NAME_MAX + 1];
	const uint8_t *p;
	struct dc_facts *f = &c->facts;

	if (len == 0)
		return;
	if (len > SNI_PEEK_MAX)
		len = SNI_PEEK_MAX;
	p = evbuffer_pullup(in, (ev_ssize_t)len);
	switch (sni_parse_hello(p, len, c->w->scratch, sizeof(c->w->scratch),
	    &hello)) {
	case SNI_NEED_MORE:
		if (len < SNI_PEEK_MAX)
			return;
		/* All a ClientHello may take, and not whole yet: refused as
		 * the TLS listener refuses it, before the client's bytes pile
		 * up here until the hello timeout. */
		c->bytes_in += len;
		c->detail = sni_error_str(SNI_ERR_TOO_LARGE);
		gh_tunnel_refuse(c, DC_HELLO_TOO_LARGE, p, len);
		return;
	case SNI_OK:
		break;
	case SNI_ERROR:
		if (hello.error == SNI_ERR_NOT_TLS) {
			(void)gh_tunnel_plain(c, p, len);
			return;
		}
		/* A refusal's line counts what the client sent in the tunnel. */
		c->bytes_in += len;
		c->detail = sni_error_str(hello.error);
		gh_tunnel_refuse(c, hello.error == SNI_ERR_TOO_LARGE ?
		    DC_HELLO_TOO_LARGE : DC_MALFORMED_HELLO, p, len);
		return;
	}
	gw_conn_take_alpn(c, &hello);
	h->hello_seen = 1;
	c->hello_bytes = (uint32_t)len;
	/* The tunnel's ClientHello is decided too: it must name the CONNECT
	 * host (none at all is no better: the front end it reaches would
	 * route on whatever comes next). */
	memset(f, 0, sizeof(*f));
	f->from = DC_FROM_TUNNEL_SNI;
	f->proto = POL_PROTO_CONNECT;
	f->port = c->port;
	f->tunnel_name = h->up_host;
	f->tunnel_port = h->up_port;
	f->ech = hello.ech;
	if (hello.has_sni) {
		if (sni_name_normalize(hello.name.ptr, hello.name.len, inner) == 0)
			f->name = inner;
		else
			f->name_invalid = 1;
	}
	if (gw_conn_decide(c) != 0) {
		if (c->v.reason == DC_SNI_MISMATCH) {
			snprintf(c->w->detail_buf, sizeof(c->w->detail_buf),
			    "the ClientHello names %.100s; CONNECT said %.100s",
			    f->name != NULL ? inner : hello.has_sni ?
			    "(not a host name)" : "no server", h->up_host);
			c->detail = c->w->detail_buf;
		}
		f->name = NULL;         /* inner is about to go out of scope */
		c->bytes_in += len;
		gh_tunnel_refuse(c, c->v.reason, p, len);
		return;
	}
	/* Decided again later (a reload) on the CONNECT host's name. */
	f->name = c->name;
	/* A second ClientHello (after a HelloRetryRequest) is held to the
	 * same name by the relay. */
	if (gw_relay_watch(c, hello.raw_len) != 0) {
		c->detail = "out of memory";
		gw_conn_close(c, DC_EV_ERROR, DC_OVERLOADED);
		return;
	}
	gh_relay(c);
}

/* ---- client events --------------------------------------------------- */

static void
gh_client_read(struct bufferevent *bev, void *arg)
{
	struct gw_conn *c = arg;
	struct gw_http *h = c->http;

	(void)bev;
	clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	switch (h->st) {
	case GH_HEAD:
		gh_read_head(c);
		break;
	case GH_EXCHANGE:
		gh_forward_body(c);
		break;
	case GH_TUNNEL_HELLO:
		gh_tunnel_hello(c);
		break;
	default:
		/* Deciding or closing: leave the bytes where they are. */
		bufferevent_disable(c->cbev, EV_READ);
		break;
	}
}

/*
 * The client half-closed: it sends nothing more but may still be reading.
 * A request already whole is answered to its end (libevent stops reading
 * at the EOF; the exchange's end reads again, takes any request still
 * buffered, and meets the EOF anew), and what is still to be written is
 * flushed before the connection closes. 1 if so; 0: it ends now.
 */
static int
gh_client_eof(struct gw_conn *c, int mid_head)
{
	struct gw_http *h = c->http;

	if (h->st == GH_EXCHANGE && h->req_done)
		return 1;
	if (h->st == GH_HEAD && !mid_head && h->nexch > 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->cbev)) > 0) {
		gh_close_after_flush(c);
		return 1;
	}
	return 0;
}

static void
gh_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct gw_conn *c = arg;
	struct gw_http *h = c->http;
	int mid_head = h->st == GH_HEAD &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0;

	(void)bev;
	if (h->st == GH_CLOSING) {
		/* Answered and logged: the client left before reading all. */
		gw_bev_free(c->cbev);
		c->cbev = NULL;
		gw_conn_finish(c);
		return;
	}
	if (!(what & BEV_EVENT_ERROR) && gh_client_eof(c, mid_head))
		return;
	if (what & BEV_EVENT_ERROR)
		c->detail = strerror(h->client_err != 0 ? h->client_err :
		    EVUTIL_SOCKET_ERROR());
	else if (h->st == GH_HEAD)
		c->detail = mid_head ? "client closed during the request head" :
		    "client closed before sending a request";
	else
		c->detail = "client closed during the exchange";
	if (h->st == GH_HEAD && !mid_head && h->nexch > 0) {
		/* An idle keep-alive connection ends: nothing to log. */
		c->silent = 1;
	}
	gw_conn_close(c, h->st == GH_EXCHANGE || h->st == GH_TUNNEL_HELLO ?
	    DC_EV_ALLOW : DC_EV_ERROR, DC_CLIENT_CLOSED);
}

/* ---- timers ------------------------------------------------------------ */

static void
gh_timeout(struct gw_conn *c)
{
	struct gw_http *h = c->http;
	uint64_t quiet, limit;

	if (h->st == GH_CLOSING) {
		/* The answer could not be flushed in time; it is logged. */
		gw_conn_finish(c);
		return;
	}
	if (h->handshaking) {
		quiet = gw_mono_ms_since(&h->hs_start);
		if (quiet < c->w->cfg->timeouts.connect_ms) {
			gw_conn_timer(c, c->w->cfg->timeouts.connect_ms - quiet);
			return;
		}
		c->detail = "the TLS handshake timed out";
		gh_refuse(c, DC_EV_DENY, DC_UPSTREAM_TLS_FAILED);
		return;
	}
	limit = c->w->cfg->timeouts.idle_ms;
	quiet = gw_mono_ms_since(&c->last_active);
	if (quiet < limit) {
		gw_conn_timer(c, limit - quiet);
		return;
	}
	if (h->st == GH_HEAD)
		c->silent = 1;          /* idle between requests: no line */
	gw_conn_close(c, DC_EV_ALLOW, DC_IDLE_TIMEOUT);
}

/* ---- start and end ---------------------------------------------------- */

/* The peeked bytes become the start of the client's input. A socket
 * bufferevent keeps the end of its input frozen for everyone but itself. */
static int
add_input(struct bufferevent *bev, const void *data, size_t len)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	int rc;

	evbuffer_unfreeze(in, 0);
	rc = evbuffer_add(in, data, len);
	evbuffer_freeze(in, 0);
	return rc;
}

void
gw_http_take_over(struct gw_conn *c)
{
	struct gw_worker *w = c->w;

	c->ops = &gw_http_ops;
	c->http = calloc(1, sizeof(*c->http));
	if (c->http == NULL) {
		gw_conn_close(c, DC_EV_ERROR, DC_OVERLOADED);
		return;
	}
	if (c->cev != NULL) {
		event_free(c->cev);
		c->cev = NULL;
	}
	c->cbev = bufferevent_socket_new(w->base, c->cfd, 0);
	if (c->cbev == NULL || add_input(c->cbev, c->peek, c->peek_len) != 0) {
		gw_conn_close(c, DC_EV_ERROR, DC_OVERLOADED);
		return;
	}
	bufferevent_disable(c->cbev, EV_WRITE);         /* gh_client_flush */
	/* bytes_in counts per request from here on. */
	c->bytes_in = 0;
	free(c->peek);
	c->peek = NULL;
	c->peek_len = c->peek_cap = 0;
	c->http->st = GH_HEAD;
	/* Its first bytes are here: timeouts.hello counts from now (the
	 * same for every request on the connection). */
	gw_conn_set_state(c, GW_CONN_RELAYING);
	bufferevent_setcb(c->cbev, gh_client_read, gh_client_write,
	    gh_client_event, c);
	gh_read_head(c);
	/* Most heads come whole in the first read and are decided by now:
	 * the socket is watched (writes: gh_client_flush) only if not. */
	if (!c->freeing && c->http != NULL && c->http->st == GH_HEAD &&
	    c->cbev != NULL)
		bufferevent_enable(c->cbev, EV_READ);
}

static enum dc_reason
gh_peek_timeout(const struct gw_conn *c)
{
	/* Inside a tunnel a ClientHello is awaited; else a request head. */
	return c->http != NULL && c->http->st == GH_TUNNEL_HELLO ?
	    DC_HELLO_TIMEOUT : DC_REQUEST_TIMEOUT;
}

static void
gh_release(struct gw_conn *c)
{
	free(c->http);
	c->http = NULL;
}

const struct gw_proto_ops gw_http_ops = {
	.name = "http",
	.peek = gw_http_take_over,
	.connected = gh_connected,
	.refuse = gh_refuse,
	.timeout = gh_timeout,
	.fill_log = gh_fill_log,
	.peek_timeout = gh_peek_timeout,
	.release = gh_release,
};

/*
 * gateway/admin.c: the admin HTTP endpoints (DESIGN §8), libevent evhttp on
 * the main thread's event_base.
 *
 *   admin.address (default 127.0.0.1:15000):
 *     /ready             200 "ready\n"; 503 before the listeners are up
 *                        and from SIGTERM on (Kubernetes readiness)
 *     /live              200 "live\n" while the main loop runs
 *     /stats/prometheus  the metrics, text format 0.0.4
 *     /config_dump       the running configuration and policy, JSON
 *   admin.health_address (Istio's :15021):     /healthz/ready only
 *   admin.prometheus_address (Istio's :15090): /stats/prometheus only
 *
 * Unknown paths are 404; a known path asked with anything but GET or HEAD
 * is 405. Everything here reads struct gw_status, which only the main
 * thread writes, and the workers' metrics through atomics (metrics.c).
 *
 * The sockets are made here rather than by evhttp_bind_socket so that an
 * accept that fails for want of descriptors rests for a moment instead of
 * spinning the main loop (evconnlistener retries a level-triggered event).
 *
 * At most admin.max_connections admin connections are open at once, the
 * three addresses together, and each lives at most ADMIN_TIMEOUT_S without
 * progress: slow or idle clients on the health and metrics ports must not
 * take the descriptors the relay needs. A connection beyond the cap is
 * closed as soon as it is accepted and counted (admin_refused).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "dns/dns.h"
#include "gateway/gateway.h"
#include "logging/log.h"
#include "policy/policy.h"

#define ADMIN_TIMEOUT_S 10
#define ADMIN_MAX_HEADERS 8192
#define ADMIN_MAX_BODY 1024
#define ADMIN_REST_MS 250
#define ADMIN_CAP_NOTICE_S 60   /* at most one "at the cap" notice a minute */

enum admin_role {
	ADMIN_MAIN = 1,
	ADMIN_HEALTH = 2,
	ADMIN_PROMETHEUS = 4,
};

struct admin_srv {
	struct gw_admin *a;
	enum admin_role role;
	const char *what;               /* config key, for messages */
	const struct gw_admin_addr *conf;
	struct evhttp *http;
	struct evconnlistener *lev;     /* owned by http once bound */
	struct event *rest_ev;
	/* The connection accepted last, until conn_settle has seen it: the
	 * bufferevent made for it (one reference ours) and whether it was
	 * let in under the cap. */
	struct bufferevent *pending;
	int pending_admit;
	struct event *settle_ev;
};

struct gw_admin {
	struct event_base *base;
	struct gw_status *st;
	struct admin_srv srv[3];
	unsigned open;                  /* admin connections, all addresses */
	time_t cap_noticed;             /* the last "at the cap" notice */
};

/* ---- responses --------------------------------------------------------- */

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
    const char *ctype, struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, body);
}

static void
reply_str(struct evhttp_request *req, int code, const char *reason,
    const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add(b, text, strlen(text));
	reply_text(req, code, reason, "text/plain; charset=utf-8", b);
	evbuffer_free(b);
}

/* ---- JSON -------------------------------------------------------------- */

/*
 * A JSON string, or null, escaped as the log escapes: file names may hold
 * any bytes, and a byte that is not UTF-8 becomes \u00XX, so the document
 * always parses.
 */
static void
json_str(struct evbuffer *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t len, i, used;
	char out[8];

	if (str == NULL) {
		evbuffer_add(b, "null", 4);
		return;
	}
	len = strlen(str);
	evbuffer_add(b, "\"", 1);
	for (i = 0; i < len; i += used)
		evbuffer_add(b, out, log_json_escape_char(s + i, len - i, out, &used));
	evbuffer_add(b, "\"", 1);
}

static void
json_key(struct evbuffer *b, int *first, const char *key)
{
	if (!*first)
		evbuffer_add(b, ",", 1);
	*first = 0;
	json_str(b, key);
	evbuffer_add(b, ":", 1);
}

static void
json_cidr(struct evbuffer *b, const struct pol_cidr *c)
{
	char ip[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 8];

	if (inet_ntop(c->family, c->addr, ip, sizeof(ip)) == NULL) {
		evbuffer_add(b, "null", 4);
		return;
	}
	snprintf(text, sizeof(text), "%s/%u", ip, c->prefix);
	json_str(b, text);
}

static void
json_rule(struct evbuffer *b, const struct pol_rule *r)
{
	char where[4096 + 16];
	int first = 1;

	evbuffer_add(b, "{", 1);
	/* "file:line", as the log's rule key says it. */
	json_key(b, &first, "rule");
	snprintf(where, sizeof(where), "%s:%u", r->file != NULL ? r->file : "",
	    r->line);
	json_str(b, where);
	json_key(b, &first, "file");
	json_str(b, r->file);
	json_key(b, &first, "line");
	evbuffer_add_printf(b, "%u", r->line);
	json_key(b, &first, "col");
	evbuffer_add_printf(b, "%u", r->col);
	json_key(b, &first, "name");
	json_str(b, r->name);
	json_key(b, &first, "pattern");
	json_str(b, r->pattern);
	json_key(b, &first, "kind");
	json_str(b, pol_pattern_kind_str(r->kind));
	json_key(b, &first, "action");
	json_str(b, pol_action_str(r->action));
	json_key(b, &first, "origin");
	json_str(b, r->origin);
	json_key(b, &first, "namespace");
	json_str(b, r->ns);
	json_key(b, &first, "ports");
	if (r->nports == 0) {
		evbuffer_add(b, "null", 4);     /* the listener's default */
	} else {
		evbuffer_add(b, "[", 1);
		for (size_t i = 0; i < r->nports; i++)
			evbuffer_add_printf(b, "%s%u", i ? "," : "",
			    (unsigned)r->ports[i]);
		evbuffer_add(b, "]", 1);
	}
	json_key(b, &first, "sources");
	if (r->nsources == 0) {
		evbuffer_add(b, "null", 4);     /* any client */
	} else {
		evbuffer_add(b, "[", 1);
		for (size_t i = 0; i < r->nsources; i++) {
			if (i > 0)
				evbuffer_add(b, ",", 1);
			json_cidr(b, &r->sources[i]);
		}
		evbuffer_add(b, "]", 1);
	}
	json_key(b, &first, "mode");
	json_str(b, pol_mode_str(r->mode));
	json_key(b, &first, "allow_private");
	evbuffer_add_printf(b, "%s", r->allow_private ? "true" : "false");
	json_key(b, &first, "resolution");
	json_str(b, pol_resolution_str(r->resolution));
	json_key(b, &first, "endpoints");
	evbuffer_add(b, "[", 1);
	for (size_t i = 0; i < r->nendpoints; i++) {
		int f = 1;

		evbuffer_add(b, i ? ",{" : "{", i ? 2 : 1);
		json_key(b, &f, "address");
		json_str(b, r->endpoints[i].address);
		json_key(b, &f, "port");
		if (r->endpoints[i].port == 0)
			evbuffer_add(b, "null", 4);
		else
			evbuffer_add_printf(b, "%u", (unsigned)r->endpoints[i].port);
		evbuffer_add(b, "}", 1);
	}
	evbuffer_add(b, "]", 1);
	json_key(b, &first, "originate_tls");
	evbuffer_add_printf(b, "%s", r->originate_tls ? "true" : "false");
	evbuffer_add(b, "}", 1);
}

static void
json_admin_addr(struct evbuffer *b, const struct gw_admin_addr *aa)
{
	json_str(b, aa->set ? aa->text : NULL);
}

/* The running configuration and policy; one rule per host pattern. */
static void
config_dump(struct evbuffer *b, const struct gw_status *st)
{
	const struct gw_config *cfg = st->cfg;
	size_t n = pol_snapshot_rule_count(st->snap);
	int first = 1, f;

	evbuffer_add(b, "{", 1);
	json_key(b, &first, "version");
	json_str(b, PACKAGE_VERSION);
	json_key(b, &first, "config");
	json_str(b, cfg->path);
	json_key(b, &first, "generation");
	evbuffer_add_printf(b, "%" PRIu64, st->generation);
	json_key(b, &first, "reloads");
	evbuffer_add_printf(b, "{\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 "}",
	    st->reloads_ok, st->reloads_failed);
	json_key(b, &first, "mode");
	json_str(b, pol_mode_str(pol_snapshot_mode(st->snap)));
	json_key(b, &first, "files");
	evbuffer_add(b, "[", 1);
	for (size_t i = 0; i < cfg->npolicy; i++) {
		if (i > 0)
			evbuffer_add(b, ",", 1);
		json_str(b, cfg->policy_paths[i]);
	}
	evbuffer_add(b, "]", 1);
	json_key(b, &first, "workers");
	evbuffer_add_printf(b, "%zu", st->nworkers);
	json_key(b, &first, "max_connections");
	evbuffer_add_printf(b, "%u", cfg->max_connections);
	json_key(b, &first, "draining");
	evbuffer_add_printf(b, "%s", st->draining ? "true" : "false");
	json_key(b, &first, "refuse_ech");
	evbuffer_add_printf(b, "%s", cfg->refuse_ech ? "true" : "false");
	json_key(b, &first, "policy_redecide");
	evbuffer_add_printf(b, "%s", cfg->policy_redecide ? "true" : "false");
	json_key(b, &first, "listeners");
	evbuffer_add(b, "[", 1);
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct gw_listener_conf *lc = &cfg->listeners[i];

		f = 1;
		evbuffer_add(b, i ? ",{" : "{", i ? 2 : 1);
		json_key(b, &f, "name");
		json_str(b, lc->name);
		json_key(b, &f, "address");
		json_str(b, lc->address_text);
		json_key(b, &f, "proto");
		json_str(b, gw_proto_str(lc->proto));
		json_key(b, &f, "proxy_protocol");
		evbuffer_add_printf(b, "%s", lc->proxy_protocol ? "true" : "false");
		/* Whose PROXY headers are believed: null when none is read. */
		json_key(b, &f, "proxy_protocol_from");
		if (lc->nproxy_from == 0) {
			evbuffer_add(b, "null", 4);
		} else {
			evbuffer_add(b, "[", 1);
			for (size_t j = 0; j < lc->nproxy_from; j++) {
				if (j > 0)
					evbuffer_add(b, ",", 1);
				json_cidr(b, &lc->proxy_from[j]);
			}
			evbuffer_add(b, "]", 1);
		}
		json_key(b, &f, "defer_accept");
		evbuffer_add_printf(b, "%s", lc->defer_accept ? "true" : "false");
		evbuffer_add(b, "}", 1);
	}
	evbuffer_add(b, "]", 1);
	json_key(b, &first, "admin");
	f = 1;
	evbuffer_add(b, "{", 1);
	json_key(b, &f, "address");
	json_admin_addr(b, &cfg->admin);
	json_key(b, &f, "health_address");
	json_admin_addr(b, &cfg->admin_health);
	json_key(b, &f, "prometheus_address");
	json_admin_addr(b, &cfg->admin_prometheus);
	json_key(b, &f, "max_connections");
	evbuffer_add_printf(b, "%u", cfg->admin_max_conns);
	evbuffer_add(b, "}", 1);
	json_key(b, &first, "rule_count");
	evbuffer_add_printf(b, "%zu", n);
	json_key(b, &first, "rules");
	evbuffer_add(b, "[", 1);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			evbuffer_add(b, ",", 1);
		json_rule(b, pol_snapshot_rule(st->snap, i));
	}
	evbuffer_add(b, "]}\n", 3);
}

/* ---- endpoints ---------------------------------------------------------- */

static void
ep_ready(struct admin_srv *s, struct evhttp_request *req)
{
	const struct gw_status *st = s->a->st;

	if (st->draining)
		reply_str(req, 503, "Service Unavailable", "draining\n");
	else if (!st->ready)
		reply_str(req, 503, "Service Unavailable", "not ready\n");
	else
		reply_str(req, 200, "OK", "ready\n");
}

static void
ep_live(struct admin_srv *s, struct evhttp_request *req)
{
	reply_str(req, 200, "OK", "live\n");
}

static void
ep_prometheus(struct admin_srv *s, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL || gw_metrics_render(s->a->st, b) != 0) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		goto out;
	}
	reply_text(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
out:
	if (b != NULL)
		evbuffer_free(b);
}

static void
ep_config_dump(struct admin_srv *s, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	config_dump(b, s->a->st);
	reply_text(req, 200, "OK", "application/json", b);
	evbuffer_free(b);
}

/*
 * Live connections, each as its line would say now (gw_conn_describe):
 * the workers answer on their own threads; the admin loop waits for them,
 * a second at most.
 */
#define ADMIN_LIST_WAIT_MS 1000

static void
ep_connections(struct admin_srv *s, struct evhttp_request *req)
{
	const struct gw_status *st = s->a->st;
	struct evbuffer *items = evbuffer_new(), *b = evbuffer_new();
	long n;

	if (items == NULL || b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		goto out;
	}
	n = gw_workers_list(st->workers, st->nworkers, items, ADMIN_LIST_WAIT_MS);
	if (n < 0) {
		reply_str(req, 503, "Service Unavailable",
		    "a worker did not answer within a second\n");
		goto out;
	}
	evbuffer_add_printf(b, "{\"count\":%ld,\"connections\":[%s", n,
	    n > 0 ? "\n" : "");
	evbuffer_add_buffer(b, items);
	evbuffer_add(b, n > 0 ? "\n]}\n" : "]}\n", n > 0 ? 4 : 3);
	reply_text(req, 200, "OK", "application/json", b);
out:
	if (items != NULL)
		evbuffer_free(items);
	if (b != NULL)
		evbuffer_free(b);
}

static const struct admin_route {
	const char *path;
	unsigned roles;
	void (*fn)(struct admin_srv *, struct evhttp_request *);
} routes[] = {
	{ "/ready", ADMIN_MAIN, ep_ready },
	{ "/live", ADMIN_MAIN, ep_live },
	{ "/stats/prometheus", ADMIN_MAIN | ADMIN_PROMETHEUS, ep_prometheus },
	{ "/config_dump", ADMIN_MAIN, ep_config_dump },
	{ "/connections", ADMIN_MAIN, ep_connections },
	{ "/healthz/ready", ADMIN_HEALTH, ep_ready },
};

static void
admin_request(struct evhttp_request *req, void *arg)
{
	struct admin_srv *s = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (path == NULL || path[0] == '\0')
		path = "/";
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if ((routes[i].roles & s->role) == 0 ||
		    strcmp(routes[i].path, path) != 0)
			continue;
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Allow", "GET, HEAD");
			reply_str(req, 405, "Method Not Allowed",
			    "method not allowed\n");
			return;
		}
		routes[i].fn(s, req);
		return;
	}
	reply_str(req, 404, "Not Found", "not found\n");
}

/* ---- the connection cap ------------------------------------------------ */

/*
 * libevent 2.1.12 (Debian 12) has no evhttp_set_max_connections and no
 * evhttp_set_newreqcb (both 2.2), and no public way to hand evhttp an
 * accepted descriptor, so the cap hooks evhttp's own accept: evhttp asks
 * admin_bev (evhttp_set_bevcb) for the bufferevent of every connection it
 * accepts, just before it builds the evhttp_connection around it, and
 * points that bufferevent's callbacks (their argument) at the connection.
 * Once evhttp is done with it (at the next accept, or in settle_ev, which
 * runs before the loop waits again) conn_settle finds the connection that
 * way and either sets its close callback, which gives the place back, or
 * frees it: the client sees the connection closed, without an answer.
 * With libevent 2.2 all of this is evhttp_set_max_connections().
 */

static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct gw_admin *a = arg;

	if (a->open > 0)
		a->open--;
}

static void
conn_settle(struct admin_srv *s)
{
	struct gw_admin *a = s->a;
	struct bufferevent *bev = s->pending;
	struct evhttp_connection *evcon = NULL;
	bufferevent_data_cb readcb;
	void *cbarg;

	if (bev == NULL)
		return;
	s->pending = NULL;
	/* Callbacks cleared: evhttp failed to set the connection up and has
	 * freed it already (our reference kept the bufferevent). */
	bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
	if (readcb != NULL && cbarg != NULL &&
	    evhttp_connection_get_bufferevent(cbarg) == bev)
		evcon = cbarg;
	if (s->pending_admit) {
		if (evcon != NULL)
			evhttp_connection_set_closecb(evcon, conn_closed, a);
		else
			conn_closed(NULL, a);
	} else {
		struct timeval now;

		a->st->admin_refused++;
		if (evcon != NULL)
			evhttp_connection_free(evcon);
		event_base_gettimeofday_cached(a->base, &now);
		if (a->cap_noticed == 0 ||
		    now.tv_sec - a->cap_noticed >= ADMIN_CAP_NOTICE_S) {
			a->cap_noticed = now.tv_sec;
			log_notice_level(a->st->log, LOG_LEVEL_WARNING,
			    "admin: %u connections open "
			    "(admin.max_connections); closing new ones at once, "
			    "%llu so far", a->open,
			    (unsigned long long)a->st->admin_refused);
		}
	}
	bufferevent_decref(bev);
}

static void
settle_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_settle(arg);
}

static struct bufferevent *
admin_bev(struct event_base *base, void *arg)
{
	struct admin_srv *s = arg;
	struct gw_admin *a = s->a;
	struct bufferevent *bev;

	/* evhttp is done with the connection before: settle it first. */
	conn_settle(s);
	/* Options as evhttp's own (no CLOSE_ON_FREE): evhttp closes the
	 * descriptor itself when it frees the connection. */
	bev = bufferevent_socket_new(base, -1, 0);
	if (bev == NULL)
		return NULL;    /* evhttp tries its own; that one goes uncounted */
	bufferevent_incref(bev);
	s->pending = bev;
	s->pending_admit = a->open < a->st->cfg->admin_max_conns;
	if (s->pending_admit)
		a->open++;
	event_active(s->settle_ev, EV_TIMEOUT, 1);
	return bev;
}

/* ---- sockets ------------------------------------------------------------ */

static void
rest_cb(evutil_socket_t fd, short what, void *arg)
{
	struct admin_srv *s = arg;

	evconnlistener_enable(s->lev);
}

/* Out of descriptors: rest instead of spinning on the pending connection. */
static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct admin_srv *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, ADMIN_REST_MS * 1000 };

	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return;
	evconnlistener_disable(lev);
	evtimer_add(s->rest_ev, &tv);
}

static int
admin_socket(const struct gw_admin_addr *aa)
{
	int one = 1, e;
	int fd = socket(aa->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	/* SO_REUSEADDR only: a port someone else listens on stays busy. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
		goto fail;
	if (aa->addr.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&aa->addr, aa->addrlen) != 0 ||
	    listen(fd, 128) != 0)
		goto fail;
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* 0: serving (or a default address that is busy); -1: err is set. */
static int
srv_open(struct admin_srv *s, char *err, size_t errlen)
{
	struct gw_admin *a = s->a;
	int fd;

	if (!s->conf->set)
		return 0;
	fd = admin_socket(s->conf);
	if (fd < 0) {
		if (s->conf->is_default) {
			log_notice_level(a->st->log, LOG_LEVEL_WARNING,
			    "admin: cannot listen on %s (the "
			    "default %s): %s; carrying on without it (set %s to "
			    "another address, or off)", s->conf->text, s->what,
			    strerror(errno), s->what);
			return 0;
		}
		snprintf(err, errlen, "%s: cannot listen on %s: %s", s->what,
		    s->conf->text, strerror(errno));
		return -1;
	}
	s->http = evhttp_new(a->base);
	s->rest_ev = evtimer_new(a->base, rest_cb, s);
	s->settle_ev = event_new(a->base, -1, 0, settle_cb, s);
	if (s->http == NULL || s->rest_ev == NULL || s->settle_ev == NULL)
		goto oom;
	s->lev = evconnlistener_new(a->base, NULL, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (s->lev == NULL)
		goto oom;
	fd = -1;
	if (evhttp_bind_listener(s->http, s->lev) == NULL) {
		evconnlistener_free(s->lev);
		s->lev = NULL;
		goto oom;
	}
	evconnlistener_set_error_cb(s->lev, accept_error_cb);
	evhttp_set_bevcb(s->http, admin_bev, s);
	evhttp_set_timeout(s->http, ADMIN_TIMEOUT_S);
	evhttp_set_max_headers_size(s->http, ADMIN_MAX_HEADERS);
	evhttp_set_max_body_size(s->http, ADMIN_MAX_BODY);
	/* Let every method through to admin_request, which answers 405
	 * (evhttp itself would say 501 Not Implemented). */
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(s->http, admin_request, s);
	log_notice(a->st->log, "admin: %s listening on %s", s->what,
	    s->conf->text);
	return 0;
oom:
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, "%s: out of memory", s->what);
	return -1;
}

struct gw_admin *
gw_admin_new(struct event_base *base, struct gw_status *st, char *err,
    size_t errlen)
{
	struct gw_admin *a = calloc(1, sizeof(*a));
	static const struct {
		enum admin_role role;
		const char *what;
	} kinds[3] = {
		{ ADMIN_MAIN, "admin.address" },
		{ ADMIN_HEALTH, "admin.health_address" },
		{ ADMIN_PROMETHEUS, "admin.prometheus_address" },
	};

	if (a == NULL) {
		snprintf(err, errlen, "admin: out of memory");
		return NULL;
	}
	a->base = base;
	a->st = st;
	for (size_t i = 0; i < 3; i++) {
		struct admin_srv *s = &a->srv[i];

		s->a = a;
		s->role = kinds[i].role;
		s->what = kinds[i].what;
		s->conf = i == 0 ? &st->cfg->admin : i == 1 ?
		    &st->cfg->admin_health : &st->cfg->admin_prometheus;
		if (srv_open(s, err, errlen) != 0) {
			gw_admin_free(a);
			return NULL;
		}
	}
	return a;
}

void
gw_admin_free(struct gw_admin *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < 3; i++) {
		struct admin_srv *s = &a->srv[i];

		if (s->settle_ev != NULL)
			event_free(s->settle_ev);
		/* evhttp_free frees the listener it was bound to, and every
		 * connection (conn_closed only counts). */
		if (s->http != NULL)
			evhttp_free(s->http);
		if (s->pending != NULL)
			bufferevent_decref(s->pending);
		if (s->rest_ev != NULL)
			event_free(s->rest_ev);
	}
	free(a);
}

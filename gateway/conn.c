/*
 * The per-connection state machine (DESIGN §3). Each function below moves a
 * connection forward by one step; every way out goes through
 * gw_conn_close(), which writes the connection's one log line.
 */
#include "gateway/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>,
 * which do not mix with the libc headers. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "decide/decide.h"
#include "dns/dns.h"
#include "gateway/gateway.h"
#include "logging/chain.h"
#include "logging/evidence.h"
#include "proxy/proxy.h"
#include "logging/log.h"

#define PEEK_INITIAL    1024    /* most ClientHellos fit; larger ones grow it */
/* After a deny, wait this long for the client to read the alert and close,
 * so it sees the alert and not a reset. */
#define LINGER_MS       1000


static void conn_connect_next(struct gw_conn *c);
static int conn_send_early(struct gw_conn *c);

const char *
gw_conn_state_str(enum gw_conn_state s)
{
	switch (s) {
	case GW_CONN_ACCEPTED:
		return "accepted";
	case GW_CONN_PEEKING:
		return "peeking";
	case GW_CONN_DECIDED:
		return "decided";
	case GW_CONN_RESOLVING:
		return "resolving";
	case GW_CONN_CONNECTING:
		return "connecting";
	case GW_CONN_RELAYING:
		return "relaying";
	case GW_CONN_ANSWERING:
		return "answering";
	case GW_CONN_CLOSING:
		return "closing";
	}
	return "unknown";
}

/* Nanoseconds from t to now: the sum first, so that dividing it later
 * rounds down (a negative tv_nsec difference divided alone rounds up,
 * and a timer would then fire up to a unit early). */
static int64_t
mono_ns_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)(now.tv_sec - t->tv_sec) * 1000000000 +
	    (now.tv_nsec - t->tv_nsec);
}

static uint32_t
mono_us_since(const struct timespec *t)
{
	int64_t us = mono_ns_since(t) / 1000;

	return us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

uint64_t
gw_mono_ms_since(const struct timespec *t)
{
	int64_t ms = mono_ns_since(t) / 1000000;

	return ms < 0 ? 0 : (uint64_t)ms;
}

static void
timer_arm(struct gw_conn *c, uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(c->timer, &tv);
}

/*
 * The transitions of DESIGN §3, and those HTTP adds: a keep-alive
 * connection goes back to PEEKING for its next request, a reused upstream
 * goes from DECIDED straight to RELAYING, and a CONNECT tunnel peeks at
 * its ClientHello once the upstream is up. ANSWERING and CLOSING are
 * reachable from everywhere; ANSWERING is left only for CLOSING.
 */
#define ST(s) (1u << (s))
static const unsigned conn_next_ok[] = {
	[GW_CONN_ACCEPTED] = ST(GW_CONN_PEEKING),
	[GW_CONN_PEEKING] = ST(GW_CONN_DECIDED) | ST(GW_CONN_RELAYING),
	[GW_CONN_DECIDED] = ST(GW_CONN_RESOLVING) | ST(GW_CONN_RELAYING) |
	    ST(GW_CONN_PEEKING),
	[GW_CONN_RESOLVING] = ST(GW_CONN_CONNECTING),
	[GW_CONN_CONNECTING] = ST(GW_CONN_CONNECTING) | ST(GW_CONN_RELAYING) |
	    ST(GW_CONN_PEEKING),
	[GW_CONN_RELAYING] = ST(GW_CONN_PEEKING) | ST(GW_CONN_RELAYING),
	[GW_CONN_ANSWERING] = 0,
	[GW_CONN_CLOSING] = 0,
};

void
gw_conn_set_state(struct gw_conn *c, enum gw_conn_state s)
{
	if (s != GW_CONN_CLOSING && !(s == GW_CONN_ANSWERING &&
	    c->state != GW_CONN_CLOSING) && !(conn_next_ok[c->state] & ST(s))) {
		/* A bug in the state machine, never reachable from input. */
		fprintf(stderr, "egressd: %s: state %s -> %s is not a transition\n",
		    c->id, gw_conn_state_str(c->state), gw_conn_state_str(s));
		abort();
	}
	c->state = s;
}

static int conn_is_loop(struct gw_conn *c);

/* ---- the log line ----------------------------------------------------- */

/* The "chain" and "after" keys of a TLS connection's line. */
static void
conn_chain_keys(struct gw_conn *c, enum dc_event ev, struct log_record *r,
    char *chain, size_t chainlen, char *after, size_t afterlen)
{
	struct chain_table *chains = c->w->shared->chains;
	uint64_t now_ms = r->ts_us / 1000;

	if (c->has_name != 1 || chains == NULL)
		return;
	/* A TLS connection that follows a redirect seen in HTTP. */
	if (chain_follows(chains, (const struct sockaddr *)&c->src, c->name,
	    c->port, now_ms, chain, chainlen))
		r->chain = chain;
	/* Responses are invisible here: a denial right after an allowed
	 * connection from the same client is a hint. */
	if ((ev == DC_EV_DENY || r->would_deny) &&
	    chain_last_allowed(chains, (const struct sockaddr *)&c->src, c->name,
	    now_ms, after, afterlen, &r->after_ms))
		r->after_name = after;
}

/*
 * Digits of v at p (base 10 or 16, at least min digits): the per-connection
 * id and the rule's "file:line" are written without snprintf, which was a
 * tenth of a connection's instructions.
 */
static size_t
conn_put_uint(char *p, uint64_t v, unsigned base, unsigned min)
{
	char tmp[24];
	size_t n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v != 0 || n < min);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/* "file:line" into out[cap] (cap at least 24), the file cut to fit. */
static void
conn_rule_text(char *out, size_t cap, const struct pol_rule *r)
{
	size_t n = strnlen(r->file, cap - 22);

	memcpy(out, r->file, n);
	out[n++] = ':';
	n += conn_put_uint(out + n, r->line, 10, 1);
	out[n] = '\0';
}

/* "w<worker>-<sequence, 8 hex digits at least>" into id[cap]. */
static void
conn_make_id(char *id, size_t cap, unsigned worker, uint64_t seq)
{
	char tmp[48];
	size_t n = 0;

	tmp[n++] = 'w';
	n += conn_put_uint(tmp + n, worker, 10, 1);
	tmp[n++] = '-';
	n += conn_put_uint(tmp + n, seq, 16, 8);
	if (n > cap - 1)
		n = cap - 1;
	memcpy(id, tmp, n);
	id[n] = '\0';
}

/* A line's record and the storage its strings point into. */
struct conn_line {
	struct log_record r;
	char rule[512], ended[96], stale[80];
	char chain[CHAIN_ID_MAX], after[SNI_NAME_MAX + 1];
};

/*
 * The record of the connection's line as of now: its final line (ev and
 * reason say how it ended), or an interim one (DC_EV_INTERIM), which says
 * what the final line would say so far and leaves the redirect chain
 * tables alone.
 */
static void
conn_record(struct gw_conn *c, enum dc_event ev, enum dc_reason reason,
    struct conn_line *L)
{
	struct log_record *r = &L->r;
	const struct pol_rule *lr = c->decided ? c->v.rule : NULL;
	struct timespec now;
	/* would_deny belongs to a relayed connection; a refusal after the
	 * admission (the address guard) is a real denial. */
	int report = c->decided && c->v.allow && c->v.would_deny &&
	    ev != DC_EV_DENY;

	memset(r, 0, sizeof(*r));
	r->ts_us = log_now_us();
	r->event = dc_event_str(ev);
	r->reason = dc_reason_str(reason);
	r->would_deny = report;
	if (report && ev == DC_EV_ALLOW) {
		/* Report mode: the policy's answer is what the line is about;
		 * how the relayed connection ended goes to detail. */
		snprintf(L->ended, sizeof(L->ended), "report mode let it "
		    "through; ended: %s", dc_reason_str(reason));
		r->event = dc_event_str(DC_EV_DENY);
		r->reason = dc_reason_str(c->v.would_reason);
		r->detail = L->ended;
	}
	if (report)
		lr = c->v.would_rule;
	r->listener = c->l->conf->name;
	r->src = (const struct sockaddr *)&c->src;
	r->orig_dst = c->orig_dst.ss_family != 0 ?
	    (const struct sockaddr *)&c->orig_dst : NULL;
	if (c->has_name) {
		r->name = c->name;
		r->name_len = c->name_len;
	}
	r->port = c->port;
	r->proto = "tls";
	c->ops->fill_log(c, r);
	if (c->ops == &gw_tls_ops && ev != DC_EV_INTERIM)
		conn_chain_keys(c, ev, r, L->chain, sizeof(L->chain), L->after,
		    sizeof(L->after));
	r->has_alpn = c->has_alpn;
	r->nalpn = c->nalpn;
	for (size_t i = 0; i < c->nalpn && i < LOG_MAX_ALPN; i++) {
		r->alpn[i] = c->alpn_buf + c->alpn_off[i];
		r->alpn_len[i] = c->alpn_len[i];
	}
	if (lr != NULL) {
		conn_rule_text(L->rule, sizeof(L->rule), lr);
		r->rule = L->rule;
		r->rule_name = lr->name;
	}
	if (c->upstream.ss_family != AF_UNSPEC)
		r->upstream = (const struct sockaddr *)&c->upstream;
	if (c->upstream_local.ss_family != AF_UNSPEC)
		r->upstream_local = (const struct sockaddr *)&c->upstream_local;
	r->bytes_in = c->bytes_in;
	r->bytes_out = c->bytes_out + c->answer_len;
	clock_gettime(CLOCK_MONOTONIC, &now);
	r->duration_ms = (double)(now.tv_sec - c->start_mono.tv_sec) * 1e3 +
	    (double)(now.tv_nsec - c->start_mono.tv_nsec) / 1e6;
	r->conn = c->id;
	if (r->detail == NULL)
		r->detail = c->detail;
	if (c->dns_stale && r->detail == NULL) {
		snprintf(L->stale, sizeof(L->stale), "DNS failed; served a stale "
		    "answer (expired %us ago)", (unsigned)c->dns_stale_age);
		r->detail = L->stale;
	}
}

static void
conn_log(struct gw_conn *c, enum dc_event ev, enum dc_reason reason)
{
	struct conn_line L;
	int report = c->decided && c->v.allow && c->v.would_deny &&
	    ev == DC_EV_ALLOW;

	conn_record(c, ev, reason, &L);
	log_write(c->w->log, &L.r);
	gw_metrics_conn(c->w, &L.r, report ? c->v.would_reason : reason,
	    c->hello_bytes, c->decide_us, c->dns_us);
	gw_metrics_rule_hit(c->w, &L.r, c->decided ? &c->v : NULL, reason);
}

void
gw_conn_interim_due(struct gw_conn *c, uint64_t interval_ms)
{
	struct conn_line L;

	/* Relaying, this exchange's line not yet written (an HTTP
	 * connection idle between requests has written it). */
	if (c->state != GW_CONN_RELAYING || !c->decided || c->logged ||
	    c->silent || interval_ms == 0 ||
	    gw_mono_ms_since(&c->start_mono) < (uint64_t)(c->interims + 1) *
	    interval_ms)
		return;
	c->interims++;
	conn_record(c, DC_EV_INTERIM, DC_RELAYING, &L);
	log_write(c->w->log, &L.r);
	gw_metrics_interim(c->w);
}

size_t
gw_conn_describe(struct gw_conn *c, char *buf, size_t len)
{
	struct conn_line L;
	char line[LOG_LINE_MAX];
	const char *st = gw_conn_state_str(c->state);
	size_t n, stlen = strlen(st);

	conn_record(c, DC_EV_INTERIM, c->state == GW_CONN_RELAYING ?
	    DC_RELAYING : DC_REASON_COUNT, &L);
	if (c->state != GW_CONN_RELAYING)
		L.r.reason = NULL;      /* nothing decided how it goes yet */
	n = log_format(&L.r, line, sizeof(line));
	/* The line is one object ending in "}\n": put "state" first. */
	if (n < 3 || line[0] != '{' || 14 + stlen + n > len)
		return 0;
	memcpy(buf, "{\"state\":\"", 10);
	memcpy(buf + 10, st, stlen);
	memcpy(buf + 10 + stlen, "\",", 2);
	memcpy(buf + 12 + stlen, line + 1, n - 2);
	return 12 + stlen + n - 2;
}

/* The connection's one line, and its count; later calls do nothing. */
void
gw_conn_log_once(struct gw_conn *c, enum dc_event ev, enum dc_reason reason)
{
	struct gw_worker *w = c->w;

	if (c->logged || c->silent)
		return;
	c->logged = 1;
	/* What a refused TLS client sent, for the evidence file (HTTP
	 * hands its request head over itself). */
	if (ev == DC_EV_DENY && c->ops == &gw_tls_ops)
		gw_conn_evidence(c, c->peek, c->peek_len);
	conn_log(c, ev, reason);
	if (ev == DC_EV_ALLOW)
		w->counters.allowed++;
	else if (ev == DC_EV_DENY)
		w->counters.denied++;
	else
		w->counters.errors++;
}

void
gw_conn_evidence(struct gw_conn *c, const void *bytes, size_t len)
{
	struct sockaddr_storage dst;
	socklen_t dlen = sizeof(dst);
	struct evid_writer *ev = c->w->shared->evidence;

	if (ev == NULL || len == 0 || bytes == NULL)
		return;
	/* Where the client aimed: its original destination when redirected,
	 * else this gateway's listening address as the client saw it. */
	if (c->orig_dst.ss_family != 0)
		memcpy(&dst, &c->orig_dst, sizeof(dst));
	else if (getsockname(c->cfd, (struct sockaddr *)&dst, &dlen) != 0)
		return;
	(void)evid_record(ev, (const struct sockaddr *)&c->src,
	    (const struct sockaddr *)&dst, bytes, len, c->start_us);
}

void
gw_conn_timer(struct gw_conn *c, uint64_t ms)
{
	evtimer_del(c->timer);
	timer_arm(c, ms);
}

/* ---- teardown --------------------------------------------------------- */

/*
 * Free a bufferevent whose socket may be closed, and its number given to
 * a new socket, in this turn of the loop. Freed inside one of its own
 * callbacks, a bufferevent keeps its events until the callback returns:
 * libevent would count the new socket's events as already in epoll (the
 * kernel dropped the old registration with the close) and never watch it.
 * Disabled first, they leave epoll now, while the socket is still open.
 */
void
gw_bev_free(struct bufferevent *bev)
{
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	bufferevent_free(bev);
}

void
gw_conn_release_upstream(struct gw_conn *c)
{
	gw_relay_release(c);
	if (c->looped) {
		gw_loops_del(c->w->shared->loops,
		    (const struct sockaddr *)&c->upstream_local);
		c->looped = 0;
	}
	memset(&c->upstream_local, 0, sizeof(c->upstream_local));
	if (c->ticket != NULL) {
		dns_cancel(c->ticket);
		c->ticket = NULL;
	}
	if (c->uev != NULL) {
		event_free(c->uev);
		c->uev = NULL;
	}
	if (c->ubev != NULL) {
		gw_bev_free(c->ubev);
		c->ubev = NULL;
	}
	if (c->ufd >= 0) {
		close(c->ufd);
		c->ufd = -1;
	}
	free(c->addrs);
	c->addrs = NULL;
	c->naddrs = c->next_addr = 0;
}

/*
 * Release everything but the struct itself, which is freed from the
 * worker's reaper: a callback that led here may still be on the stack.
 */
static void
conn_destroy(struct gw_conn *c)
{
	struct gw_worker *w = c->w;

	if (c->freeing)
		return;
	c->freeing = 1;
	gw_conn_release_upstream(c);
	if (c->cev != NULL)
		event_free(c->cev);
	if (c->cbev != NULL)
		gw_bev_free(c->cbev);
	if (c->timer != NULL)
		event_free(c->timer);
	c->cev = c->timer = NULL;
	c->cbev = NULL;
	if (c->cfd >= 0)
		close(c->cfd);
	c->cfd = -1;
	free(c->peek);
	c->peek = NULL;
	if (c->snap != NULL)
		pol_snapshot_unref(c->snap);
	c->snap = NULL;
	c->decided = 0;
	TAILQ_REMOVE(&w->conns, c, entry);
	TAILQ_INSERT_TAIL(&w->zombies, c, entry);
	event_active(w->reap_ev, EV_READ, 0);
	gw_worker_conn_gone(w);
}

static void
linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_conn *c = arg;
	uint8_t buf[4096];
	ssize_t n;

	for (int i = 0; i < 16; i++) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		break;
	}
	conn_destroy(c);
}

/*
 * Has the client nothing more in flight? Then a close right after the
 * answer sends the FIN that follows it, not a reset that could overtake
 * it, and the wait for the client's own close (three system calls and a
 * timer) is not needed. Asked before a TLS alert (a TLS client waits for
 * an answer before it sends again; a refusal decided on a read that left
 * the socket empty knows already: c->peek_dry) and after an HTTP answer
 * to a request read whole whose client said Connection: close; any other
 * HTTP client may be between two writes of a body. Bytes it sent after
 * its request are read and dropped here, and then the connection lingers
 * as before.
 */
int
gw_conn_client_quiet(int fd)
{
	uint8_t buf[512];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EINTR);
}

void
gw_conn_close(struct gw_conn *c, enum dc_event ev, enum dc_reason reason)
{
	struct gw_worker *w = c->w;
	int linger = 0;

	if (c->freeing)
		return;
	if (c->state == GW_CONN_CLOSING) {
		/* Already logged and lingering; a drain does not wait for it. */
		if (w->draining)
			conn_destroy(c);
		return;
	}
	gw_conn_log_once(c, ev, reason);
	/* A client we answered before relaying gets time to read the answer. */
	linger = c->cbev == NULL && c->answered && !w->draining;
	gw_conn_set_state(c, GW_CONN_CLOSING);
	gw_conn_release_upstream(c);
	if (!linger) {
		conn_destroy(c);
		return;
	}
	if (c->quiet) {
		conn_destroy(c);        /* the close sends the FIN */
		return;
	}
	shutdown(c->cfd, SHUT_WR);
	if (c->cev != NULL)
		event_free(c->cev);
	c->cev = event_new(w->base, c->cfd, EV_READ | EV_PERSIST, linger_cb, c);
	if (c->cev == NULL) {
		conn_destroy(c);
		return;
	}
	event_add(c->cev, NULL);
	evtimer_del(c->timer);
	timer_arm(c, LINGER_MS);
}

void
gw_conn_finish(struct gw_conn *c)
{
	/* The line names how it ended; this reason is never written. */
	gw_conn_close(c, DC_EV_DENY, c->v.reason);
}

void
gw_conn_refuse(struct gw_conn *c, enum dc_event ev, enum dc_reason reason)
{
	c->ops->refuse(c, ev, reason);
}

/* ---- refusing a client in its own protocol ----------------------------- */

/*
 * Answer the client (a TLS alert, an HTTP 400) and close. The line is
 * written before the answer is sent, counting it in bytes_out: a client
 * that was told "denied" has its line even if the daemon dies right after,
 * or the log blocks. An alert to a quiet client is held back (MSG_MORE)
 * until the close just after it, which sends it and the FIN as one
 * segment: one packet, one ACK and one wake-up of the client fewer.
 */
static void
conn_answer_and_close(struct gw_conn *c, enum dc_event ev,
    enum dc_reason reason, const void *answer, size_t len)
{
	int flags = MSG_NOSIGNAL | MSG_DONTWAIT;
	ssize_t n;

	if (answer != NULL && len > 0 && c->cbev == NULL && !c->logged) {
		c->answer_len = (uint32_t)len;
		gw_conn_log_once(c, ev, reason);
		c->answer_len = 0;
		if (c->alerted &&
		    (c->peek_dry || gw_conn_client_quiet(c->cfd))) {
			c->quiet = 1;
			flags |= MSG_MORE;
		}
		n = send(c->cfd, answer, len, flags);
		if (n > 0) {
			c->bytes_out += (uint64_t)n;
			c->answered = 1;
		}
	}
	gw_conn_close(c, ev, reason);
}

/* A fatal TLS alert record: what a TLS client can print as a reason. */
static void
tls_refuse(struct gw_conn *c, enum dc_event ev, enum dc_reason reason)
{
	uint8_t rec[7] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0 };
	int alert = dc_reason_info(reason)->tls_alert;

	rec[6] = (uint8_t)alert;
	c->alerted = alert != DC_NO_ALERT;
	conn_answer_and_close(c, ev, reason, rec,
	    alert != DC_NO_ALERT ? sizeof(rec) : 0);
}

/*
 * Plain text on a TLS port is most often an HTTP client pointed at the
 * wrong port: tell it so in HTTP rather than leave it guessing.
 */
static void
conn_refuse_not_tls(struct gw_conn *c)
{
	char body[160], msg[400];
	int blen, mlen;

	if (c->peek_len > 0 && c->peek[0] >= 'A' && c->peek[0] <= 'Z') {
		blen = snprintf(body, sizeof(body), "egressd: listener %s expects "
		    "TLS; this request was not sent (not_tls)\n", c->l->conf->name);
		mlen = snprintf(msg, sizeof(msg), "HTTP/1.1 400 Bad Request\r\n"
		    "Content-Type: text/plain\r\nConnection: close\r\n"
		    "Content-Length: %d\r\n\r\n%s", blen, body);
		if (mlen > 0 && (size_t)mlen < sizeof(msg)) {
			conn_answer_and_close(c, DC_EV_DENY, DC_NOT_TLS, msg,
			    (size_t)mlen);
			return;
		}
	}
	gw_conn_close(c, DC_EV_DENY, DC_NOT_TLS);
}

/* ---- connect ------------------------------------------------------------ */

/* This address did not answer: the line's detail, then the next one. */
static void
conn_connect_failed(struct gw_conn *c, int err)
{
	c->detail = strerror(err);
	c->last_connect_timeout = 0;
	if (c->uev != NULL) {
		event_free(c->uev);
		c->uev = NULL;
	}
	close(c->ufd);
	c->ufd = -1;
	conn_connect_next(c);
}

static void
connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_conn *c = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == 0) {
		c->ops->connected(c);
		return;
	}
	conn_connect_failed(c, err);
}

/*
 * A connection to a near upstream has most often completed by the time
 * connect() returns (the handshake runs in the same system call): go on
 * at once, and skip the wait for writability, an epoll_ctl pair and a
 * getsockopt. Passthrough sends its peeked bytes, as the splice relay's
 * first act would; the other protocols, which answer the client or start
 * TLS once connected, ask with a send of no bytes. A far upstream costs
 * one send that says EAGAIN. 1: taken further (connected, or the next
 * address tried); 0: wait as before.
 */
static int
conn_send_early(struct gw_conn *c)
{
	/* The hello only: what follows it goes through the relay's watch. */
	size_t len = c->ops == &gw_tls_ops && c->w->cfg->relay_splice ?
	    (c->hello_raw < c->peek_len ? c->hello_raw : c->peek_len) : 0;
	ssize_t n;

	/* With nothing to send, a send of no bytes asks the same question:
	 * 0 once connected, EAGAIN while not, the error if it failed. */
	n = send(c->ufd, len > 0 ? c->peek : (const void *)"", len,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return 0;
		conn_connect_failed(c, errno);
		return 1;
	}
	if (len > 0) {
		memmove(c->peek, c->peek + n, c->peek_len - (size_t)n);
		c->peek_len -= (size_t)n;
		c->hello_raw -= (size_t)n;
	}
	c->ops->connected(c);
	return 1;
}

/*
 * Our end of the upstream connection: for the line (to join with NAT,
 * firewall and flow logs) and for the loop table, so that a connection
 * that comes back to one of our listeners from it is recognised.
 */
static void
conn_note_local(struct gw_conn *c)
{
	socklen_t len = sizeof(c->upstream_local);
	struct gw_loops *loops = c->w->shared->loops;

	if (c->looped) {        /* the address tried before this one */
		gw_loops_del(loops, (const struct sockaddr *)&c->upstream_local);
		c->looped = 0;
	}
	if (getsockname(c->ufd, (struct sockaddr *)&c->upstream_local, &len) != 0) {
		memset(&c->upstream_local, 0, sizeof(c->upstream_local));
		return;
	}
	if (loops != NULL && gw_loops_add(loops,
	    (const struct sockaddr *)&c->upstream_local,
	    (const struct sockaddr *)&c->upstream) == 0)
		c->looped = 1;
}

/* One of our sockets on a wildcard address, of r's family, on port. */
static int
wildcard_port(const struct sockaddr *l, const struct sockaddr *r,
    uint16_t port)
{
	return l->sa_family == r->sa_family && dns_addr_port(l) == port &&
	    gw_sock_is_wildcard(l);
}

/*
 * The guard knows our listeners' and admin addresses, and loopback for
 * those on a wildcard address, not the host's other addresses. The kernel
 * does: it connects to a local address from that same address. When it
 * did, the connection (handshaken, nothing sent) is dropped and the next
 * address tried if it would reach one of our sockets on a wildcard
 * address, or any service of this host on an address other than loopback
 * (a name made to resolve to the gateway's own pod or public address must
 * not reach the node's kubelet or sshd; ranges the operator opened are
 * opened towards other hosts, and loopback is private and only ever opened
 * by name). 1 if so, with the detail written.
 */
static int
conn_reaches_self(struct gw_conn *c)
{
	const struct gw_config *cfg = c->w->cfg;
	const struct sockaddr *o;
	struct sockaddr_storage a, b;
	const struct sockaddr *l = dns_addr_unmap(
	    (const struct sockaddr *)&c->upstream_local, &a);
	const struct sockaddr *r = dns_addr_unmap(
	    (const struct sockaddr *)&c->upstream, &b);
	uint16_t port = dns_addr_port(r);
	char addr[64];
	int own = 0;

	if (!dns_addr_same_ip(l, r))
		return 0;
	own = dns_addr_classify(r) != DNS_ADDR_LOOPBACK;
	for (size_t i = 0; !own && (o = gw_own_sock(cfg, i)) != NULL; i++)
		own = wildcard_port(o, r, port);
	if (!own)
		return 0;
	/* The address alone, as the guard's own details say it. */
	memcpy(&a, r, r->sa_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6));
	if (a.ss_family == AF_INET)
		((struct sockaddr_in *)&a)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&a)->sin6_port = 0;
	dns_addr_format((const struct sockaddr *)&a, addr, sizeof(addr));
	snprintf(c->w->detail_buf, sizeof(c->w->detail_buf), "%.150s resolves "
	    "to %s (this gateway's own address)", c->name, addr);
	c->reached_self = 1;
	return 1;
}

static void
conn_connect_next(struct gw_conn *c)
{
	struct gw_worker *w = c->w;

	evtimer_del(c->timer);
	while (c->next_addr < c->naddrs) {
		struct sockaddr_storage *sa = &c->addrs[c->next_addr++];
		socklen_t len = sa->ss_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
		int fd, one = 1;

		memcpy(&c->upstream, sa, sizeof(*sa));
		fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			c->detail = strerror(errno);
			if (errno == EMFILE || errno == ENFILE) {
				gw_conn_refuse(c, DC_EV_ERROR, DC_OVERLOADED);
				return;
			}
			continue;
		}
		/* Nagle off: a relay that holds a small write until the last
		 * one is acknowledged turns a client's write-write-read into
		 * a wait for the origin's delayed ACK (40 ms on Linux). Bytes
		 * meant to go together are sent with MSG_MORE instead. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, (struct sockaddr *)sa, len) != 0 &&
		    errno != EINPROGRESS) {
			c->detail = strerror(errno);
			close(fd);
			continue;
		}
		c->ufd = fd;
		conn_note_local(c);
		if (conn_reaches_self(c)) {
			close(c->ufd);
			c->ufd = -1;
			continue;
		}
		gw_conn_set_state(c, GW_CONN_CONNECTING);
		clock_gettime(CLOCK_MONOTONIC, &c->attempt_start);
		if (conn_send_early(c))
			return;
		c->uev = event_new(w->base, fd, EV_WRITE, connect_cb, c);
		if (c->uev == NULL) {
			c->detail = "out of memory";
			gw_conn_refuse(c, DC_EV_ERROR, DC_OVERLOADED);
			return;
		}
		event_add(c->uev, NULL);
		timer_arm(c, w->cfg->timeouts.connect_ms);
		return;
	}
	if (c->reached_self) {
		/* A real denial even in report mode, as the guard's are. */
		c->detail = c->w->detail_buf;
		gw_conn_refuse(c, DC_EV_DENY, DC_PRIVATE_ADDRESS);
		return;
	}
	gw_conn_refuse(c, DC_EV_ERROR, c->last_connect_timeout ?
	    DC_CONNECT_TIMEOUT : DC_CONNECT_FAILED);
}

/* ---- resolve ------------------------------------------------------------ */

int
gw_conn_upstream_kept(struct gw_conn *c, const struct sockaddr *sa,
    int same_route)
{
	char *detail = c->w->detail_buf;
	const char *why;
	char a[64];

	if (!same_route) {
		snprintf(detail, sizeof(c->w->detail_buf), "the reloaded policy "
		    "sends %.120s elsewhere (the admitting rule's endpoints or "
		    "resolution changed)", c->name);
		return 0;
	}
	if (sa == NULL)
		return 1;
	why = gw_guard(c->w->cfg, sa, dns_addr_port(sa), dc_allow_private(&c->v));
	if (why == NULL)
		return 1;
	dns_addr_format(sa, a, sizeof(a));
	snprintf(detail, sizeof(c->w->detail_buf), "the reloaded policy refuses "
	    "its upstream %s (%s)", a, why);
	return 0;
}

/*
 * After a reload that still admits the connection by the same route: the
 * address it is connected or connecting to, and those it would try next,
 * must pass the guard under the new verdict (a rule that lost
 * allow_private, a range added to dns.deny_ranges). 1 if they do; else 0
 * with the worker's detail_buf saying which.
 */
static int
conn_addrs_kept(struct gw_conn *c, int same_route)
{
	if (!gw_conn_upstream_kept(c, c->upstream.ss_family != AF_UNSPEC ?
	    (const struct sockaddr *)&c->upstream : NULL, same_route))
		return 0;
	for (size_t i = c->next_addr; i < c->naddrs; i++)
		if (!gw_conn_upstream_kept(c,
		    (const struct sockaddr *)&c->addrs[i], 1))
			return 0;
	return 1;
}

/* An allowed ServiceEntry with resolution NONE, on a transparent listener. */
static int
conn_uses_orig_dst(const struct gw_conn *c)
{
	return c->orig_dst.ss_family != 0 &&
	    dc_resolution(&c->v) == POL_RES_NONE && c->v.admit->nendpoints == 0;
}

/*
 * The original destination, as the only address of the answer, when the
 * name resolves to it. Otherwise the connection is denied (dst_mismatch:
 * the client aimed somewhere the name it gave does not lead) and NULL is
 * returned.
 */
static const struct dns_answer *
conn_match_orig_dst(struct gw_conn *c, const struct dns_answer *ans,
    struct dns_answer *only)
{
	const struct sockaddr *orig = (const struct sockaddr *)&c->orig_dst;
	char aimed[64], got[64] = "no address";

	for (size_t i = 0; i < ans->naddrs; i++) {
		if (dns_addr_same_ip((const struct sockaddr *)&ans->addrs[i], orig)) {
			*only = *ans;
			only->naddrs = 1;
			memcpy(&only->addrs[0], orig, sizeof(only->addrs[0]));
			/* Connect to the port the client aimed at, as always. */
			if (orig->sa_family == AF_INET)
				((struct sockaddr_in *)&only->addrs[0])->sin_port = 0;
			else
				((struct sockaddr_in6 *)&only->addrs[0])->sin6_port = 0;
			return only;
		}
	}
	dns_addr_format(orig, aimed, sizeof(aimed));
	if (ans->naddrs > 0)
		dns_addr_format((const struct sockaddr *)&ans->addrs[0], got, sizeof(got));
	snprintf(c->w->detail_buf, sizeof(c->w->detail_buf),
	    "the client aimed at %s; %.120s resolves to %s%s", aimed, c->name, got,
	    ans->naddrs > 1 ? " and others" : "");
	c->detail = c->w->detail_buf;
	/* Where to connect is never relaxed, not even in report mode. */
	gw_conn_refuse(c, DC_EV_DENY, DC_DST_MISMATCH);
	c->detail = NULL;
	return NULL;
}

static void
conn_on_answer(struct gw_conn *c, const struct dns_answer *ans)
{
	char *detail = c->w->detail_buf;
	const char *refused = NULL;
	char first_refused[64] = "";
	struct dns_answer only;
	size_t n = 0;
	int allow_private;

	evtimer_del(c->timer);
	if (ans->status != DNS_OK) {
		gw_conn_refuse(c, DC_EV_ERROR, ans->status == DNS_NXDOMAIN ?
		    DC_DNS_NXDOMAIN : ans->status == DNS_TIMEOUT ? DC_DNS_TIMEOUT :
		    DC_DNS_FAILURE);
		return;
	}
	if (ans->stale) {
		/* Said in the line: the servers failed, an old answer stood in. */
		c->dns_stale = 1;
		c->dns_stale_age = ans->stale_age;
	}
	if (conn_uses_orig_dst(c)) {
		/* resolution: NONE: where the client aimed, if the name is there. */
		ans = conn_match_orig_dst(c, ans, &only);
		if (ans == NULL)
			return;
	}
	c->addrs = calloc(ans->naddrs ? ans->naddrs : 1, sizeof(*c->addrs));
	if (c->addrs == NULL) {
		gw_conn_refuse(c, DC_EV_ERROR, DC_OVERLOADED);
		return;
	}
	/* Only addresses the name resolved to, and only public ones unless
	 * the deciding allow rule says otherwise: the client never picks.
	 * Report mode relaxes the allow-list, never this guard. */
	allow_private = dc_allow_private(&c->v);
	for (size_t i = 0; i < ans->naddrs; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&ans->addrs[i];
		const char *why = gw_guard(c->w->cfg, sa, dns_addr_port(sa) != 0 ?
		    dns_addr_port(sa) : c->dst_port, allow_private);

		if (why != NULL) {
			if (refused == NULL) {
				refused = why;
				dns_addr_format(sa, first_refused, sizeof(first_refused));
			}
			continue;
		}
		/* A STATIC endpoint may carry its own port; DNS answers do not. */
		memcpy(&c->addrs[n], sa, sizeof(c->addrs[n]));
		if (sa->sa_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&c->addrs[n];

			if (in->sin_port == 0)
				in->sin_port = htons(c->dst_port);
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&c->addrs[n];

			if (in6->sin6_port == 0)
				in6->sin6_port = htons(c->dst_port);
		}
		n++;
	}
	c->naddrs = n;
	c->reached_self = 0;
	if (n == 0) {
		/* The worker's buffer: the line is written before anything else
		 * runs on this worker. */
		snprintf(detail, sizeof(c->w->detail_buf), "%.180s resolves to %s (%s)", c->name,
		    first_refused, refused);
		c->detail = detail;
		/* A real denial even in report mode: the guard is not relaxed. */
		gw_conn_refuse(c, DC_EV_DENY, DC_PRIVATE_ADDRESS);
		c->detail = NULL;
		return;
	}
	conn_connect_next(c);
}

static void
conn_dns_cb(void *arg, const struct dns_answer *ans)
{
	struct gw_conn *c = arg;

	c->ticket = NULL;
	c->dns_us = mono_us_since(&c->dns_start);
	if (c->dns_us == 0)
		c->dns_us = 1;  /* 0 means "no lookup" to the metrics */
	conn_on_answer(c, ans);
}

/* A STATIC ServiceEntry's endpoint addresses, as if DNS had answered. */
static void
conn_static_answer(const struct pol_rule *r,
    struct dns_answer *ans)
{
	memset(ans, 0, sizeof(*ans));
	ans->status = DNS_OK;
	for (size_t i = 0; i < r->nendpoints && ans->naddrs < DNS_MAX_ADDRS; i++) {
		socklen_t sl;

		/* The loader accepted only IP literals here; port 0 is "the
		 * requested port", filled in by conn_on_answer. */
		if (dns_addr_parse(r->endpoints[i].address, 0,
		    &ans->addrs[ans->naddrs], &sl) != 0)
			continue;
		if (ans->addrs[ans->naddrs].ss_family == AF_INET)
			((struct sockaddr_in *)&ans->addrs[ans->naddrs])->sin_port =
			    htons(r->endpoints[i].port);
		else
			((struct sockaddr_in6 *)&ans->addrs[ans->naddrs])->sin6_port =
			    htons(r->endpoints[i].port);
		ans->naddrs++;
	}
	if (ans->naddrs == 0)
		ans->status = DNS_FAILURE;
}

void
gw_conn_resolve(struct gw_conn *c, uint16_t dst_port)
{
	struct gw_worker *w = c->w;
	struct dns_answer ans;
	const struct pol_rule *r = c->v.admit;
	const char *target = c->name;

	c->dst_port = dst_port;
	gw_conn_set_state(c, GW_CONN_RESOLVING);
	/* The client waits for our answer; what it may still send stays in
	 * the kernel until the relay starts. */
	if (c->cev != NULL)
		event_del(c->cev);
	/*
	 * Where to connect comes from the admitting rule (DESIGN §5), never
	 * from the client, nor from a rule that merely matched the name: a
	 * ServiceEntry with STATIC resolution names its addresses, one with
	 * DNS and endpoints names the hosts to resolve. Everything else
	 * resolves the requested name.
	 */
	if (c->v.allow && r != NULL && r->nendpoints > 0) {
		if (r->resolution == POL_RES_STATIC) {
			conn_static_answer(r, &ans);
			conn_on_answer(c, &ans);
			return;
		}
		if (r->resolution == POL_RES_ENDPOINTS) {
			target = r->endpoints[0].address;
			if (r->endpoints[0].port != 0)
				c->dst_port = r->endpoints[0].port;
		}
	}
	if (dns_lookup_cached(w->dns, target, &ans)) {
		conn_on_answer(c, &ans);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &c->dns_start);
	c->ticket = dns_resolve(w->dns, target, conn_dns_cb, c);
	if (c->ticket == NULL) {
		gw_conn_refuse(c, DC_EV_ERROR, DC_DNS_FAILURE);
		return;
	}
	/* The resolver reports its own timeout; this only backs it up. */
	timer_arm(c, w->cfg->timeouts.dns_ms + 1000);
}

/* ---- decide --------------------------------------------------------------- */

void
gw_conn_take_alpn(struct gw_conn *c, const struct sni_hello *h)
{
	size_t off = 0;

	c->ech = h->ech;
	if (h->ech)
		gw_metrics_ech(c->w, (unsigned)(c->l - c->w->listeners));
	c->has_alpn = h->alpn_count > 0;
	for (size_t i = 0; i < h->alpn_count && c->nalpn < 8; i++) {
		size_t len = h->alpn[i].len;

		if (len > 255 || off + len > sizeof(c->alpn_buf))
			break;
		memcpy(c->alpn_buf + off, h->alpn[i].ptr, len);
		c->alpn_off[c->nalpn] = (uint8_t)off;
		c->alpn_len[c->nalpn] = (uint8_t)len;
		c->nalpn++;
		off += len;
		if (off > 255)
			break;
	}
}

static void
conn_take_hello(struct gw_conn *c, const struct sni_hello *h)
{
	gw_conn_take_alpn(c, h);
	if (h->has_sni) {
		c->has_name = 1;
		if (sni_name_normalize(h->name.ptr, h->name.len, c->name) == 0) {
			c->name_len = 0;
		} else {
			/* Keep the raw bytes for the log; the writer escapes them. */
			c->name_len = h->name.len < SNI_NAME_MAX ? h->name.len : SNI_NAME_MAX;
			memcpy(c->name, h->name.ptr, c->name_len);
			c->name[c->name_len] = '\0';
			c->has_name = 2;
		}
	}
}

enum dc_listener
gw_conn_listener_kind(const struct gw_conn *c)
{
	switch (c->l->conf->proto) {
	case GW_PROTO_TLS:
		break;
	case GW_PROTO_TRANSPARENT:
		return DC_L_TRANSPARENT;
	case GW_PROTO_HTTP:
		return DC_L_HTTP;
	case GW_PROTO_CONNECT:
		return DC_L_CONNECT;
	}
	return DC_L_TLS;
}

/* The decision's options from the daemon's configuration. */
static void
conn_dc_opts(const struct gw_conn *c, struct dc_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->refuse_ech = c->w->cfg->refuse_ech;
}

int
gw_conn_decide(struct gw_conn *c)
{
	struct gw_worker *w = c->w;
	struct chain_table *chains = w->shared->chains;
	struct dc_opts o;

	if (c->snap != w->snap) {
		pol_snapshot_unref(c->snap);
		c->snap = pol_snapshot_ref(w->snap);
	}
	conn_dc_opts(c, &o);
	c->facts.listener = gw_conn_listener_kind(c);
	c->facts.src = (const struct sockaddr *)&c->src;
	c->facts.orig_dst = c->orig_dst.ss_family != 0 ?
	    (const struct sockaddr *)&c->orig_dst : NULL;
	dc_decide(c->snap, &o, &c->facts, &c->v);
	c->decided = 1;
	c->port = c->v.port;
	/*
	 * The loop check again, now that the client has spoken. At accept it
	 * can come too early: connect() to a local address completes in the
	 * kernel before the connecting worker has put its socket in the loop
	 * table, and another worker may accept the other end first. Our own
	 * upstream socket sends the first byte only after that, so by now the
	 * table knows it.
	 */
	if (c->v.allow && w->shared->loops != NULL && conn_is_loop(c)) {
		c->v.allow = 0;
		c->v.would_deny = 0;
		c->v.reason = DC_GATEWAY_LOOP;
		c->detail = "the client is this gateway's own upstream connection";
	}
	if (!c->v.allow) {
		if (c->detail == NULL)
			c->detail = c->v.detail;
		return -1;
	}
	if (chains != NULL && c->has_name == 1 && !c->v.would_deny)
		/* For the "after" hint of a denial that may follow. */
		chain_note_allowed(chains, (const struct sockaddr *)&c->src,
		    c->name, log_now_us() / 1000);
	return 0;
}

/*
 * A reload: the connection was admitted by an older policy. Decided again
 * on the same facts, it goes on under the new one, or is closed with its
 * own reason and line. The line names the new policy's deciding rule, and
 * detail the reason it gives.
 */
void
gw_conn_redecide(struct gw_conn *c)
{
	struct gw_worker *w = c->w;
	struct dc_verdict nv;
	struct dc_opts o;
	int same_route;

	if (!c->decided || !c->v.allow || c->freeing || c->logged ||
	    c->state >= GW_CONN_ANSWERING || c->snap == w->snap)
		return;
	conn_dc_opts(c, &o);
	dc_decide(w->snap, &o, &c->facts, &nv);
	/* The old rules live in the old snapshot: compare before letting go. */
	same_route = dc_same_route(&c->v, &nv);
	pol_snapshot_unref(c->snap);
	c->snap = pol_snapshot_ref(w->snap);
	c->v = nv;
	if (nv.allow && conn_addrs_kept(c, same_route))
		return;
	if (!nv.allow)
		snprintf(w->detail_buf, sizeof(w->detail_buf), "the reloaded "
		    "policy refuses it: %s", dc_reason_str(nv.reason));
	c->detail = w->detail_buf;
	gw_conn_close(c, DC_EV_DENY, DC_POLICY_REVOKED);
}

static void
tls_decide(struct gw_conn *c, const struct sni_hello *h)
{
	evtimer_del(c->timer);
	conn_take_hello(c, h);
	gw_conn_set_state(c, GW_CONN_DECIDED);
	c->hello_bytes = (uint32_t)c->peek_len;
	c->hello_raw = h->raw_len;
	c->decide_us = mono_us_since(&c->start_mono);
	memset(&c->facts, 0, sizeof(c->facts));
	c->facts.from = DC_FROM_SNI;
	c->facts.proto = POL_PROTO_TLS;
	c->facts.name = c->has_name == 1 ? c->name : NULL;
	c->facts.name_invalid = c->has_name == 2;
	c->facts.port = c->port;
	c->facts.ech = c->ech;
	if (gw_conn_decide(c) != 0) {
		gw_conn_refuse(c, DC_EV_DENY, c->v.reason);
		return;
	}
	gw_conn_resolve(c, c->v.port);
}

/* ---- peek ------------------------------------------------------------------ */

/*
 * A listener with proxy_protocol: true trusts the PROXY v1/v2 header a
 * front proxy puts first: its source is the client the policy and the log
 * see, and on a transparent listener its destination is where the client
 * aimed. Without a valid header the connection is refused: trusting the
 * socket's address instead would give every client the proxy's. Returns 1
 * when the header is consumed and bytes remain for the ClientHello, 0 to
 * wait for more, -1 when the connection was closed.
 */
static int
conn_take_proxy_header(struct gw_conn *c)
{
	struct proxy_header ph;
	const char *reason = NULL;

	switch (proxy_parse(c->peek, c->peek_len, &ph, &reason)) {
	case PROXY_NEED_MORE:
		return 0;
	case PROXY_ERROR:
		c->detail = reason;
		gw_conn_close(c, DC_EV_DENY, DC_BAD_PROXY_HEADER);
		return -1;
	case PROXY_DONE:
		break;
	}
	if (!ph.local) {
		memcpy(&c->src, &ph.src, sizeof(c->src));
		if (c->l->conf->proto == GW_PROTO_TRANSPARENT) {
			memcpy(&c->orig_dst, &ph.dst, sizeof(c->orig_dst));
			c->port = dns_addr_port((const struct sockaddr *)&c->orig_dst);
		}
	}
	c->proxied = 1;
	/* The header is for us; the upstream gets the client's bytes only. */
	memmove(c->peek, c->peek + ph.header_len, c->peek_len - ph.header_len);
	c->peek_len -= ph.header_len;
	return c->peek_len > 0;
}

static void
peek_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_conn *c = arg;
	size_t room;
	ssize_t n;

	if (c->peek_len == c->peek_cap) {
		size_t cap = c->peek_cap ? c->peek_cap * 2 : PEEK_INITIAL;
		uint8_t *p;

		if (cap > SNI_PEEK_MAX)
			cap = SNI_PEEK_MAX;
		if (cap == c->peek_cap) {
			gw_conn_refuse(c, DC_EV_DENY, DC_HELLO_TOO_LARGE);
			return;
		}
		p = realloc(c->peek, cap);
		if (p == NULL) {
			gw_conn_refuse(c, DC_EV_ERROR, DC_OVERLOADED);
			return;
		}
		c->peek = p;
		c->peek_cap = cap;
	}
	room = c->peek_cap - c->peek_len;
	n = recv(fd, c->peek + c->peek_len, room, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		c->detail = strerror(errno);
		gw_conn_close(c, DC_EV_ERROR, DC_CLIENT_RESET);
		return;
	}
	if (n == 0) {
		c->detail = c->peek_len ? "client closed during the ClientHello" :
		    "client closed before sending anything";
		gw_conn_close(c, DC_EV_ERROR, DC_CLIENT_CLOSED);
		return;
	}
	c->peek_len += (size_t)n;
	c->bytes_in += (uint64_t)n;
	if (c->l->conf->proxy_protocol && !c->proxied &&
	    conn_take_proxy_header(c) <= 0)
		return;
	/* A read that did not fill its room emptied the socket: a refusal
	 * made now need not ask again (gw_conn_client_quiet). The struct
	 * outlives a close made inside: the reaper frees it. */
	c->peek_dry = (size_t)n < room;
	c->ops->peek(c);
	c->peek_dry = 0;
}

/* TLS passthrough: the ClientHello, whole, then the one decision. */
static void
tls_peek(struct gw_conn *c)
{
	struct gw_worker *w = c->w;
	struct sni_hello h;

	switch (sni_parse_hello(c->peek, c->peek_len, w->scratch,
	    sizeof(w->scratch), &h)) {
	case SNI_NEED_MORE:
		return;
	case SNI_OK:
		tls_decide(c, &h);
		return;
	case SNI_ERROR:
		break;
	}
	switch (h.error) {
	case SNI_ERR_NOT_TLS:
		/* Plain HTTP redirected to us is decided per request too. */
		if (c->l->conf->proto == GW_PROTO_TRANSPARENT &&
		    c->peek[0] >= 'A' && c->peek[0] <= 'Z') {
			gw_http_take_over(c);
			break;
		}
		conn_refuse_not_tls(c);
		break;
	case SNI_ERR_TOO_LARGE:
		gw_conn_refuse(c, DC_EV_DENY, DC_HELLO_TOO_LARGE);
		break;
	default:
		c->detail = sni_error_str(h.error);
		gw_conn_refuse(c, DC_EV_DENY, DC_MALFORMED_HELLO);
		break;
	}
}

/* ---- timeouts ------------------------------------------------------------ */

static void
tls_timeout(struct gw_conn *c)
{
	uint64_t idle = c->w->cfg->timeouts.idle_ms;
	uint64_t quiet = gw_mono_ms_since(&c->last_active);

	if (quiet >= idle)
		gw_conn_close(c, DC_EV_ALLOW, DC_IDLE_TIMEOUT);
	else
		timer_arm(c, idle - quiet);
}

static enum dc_reason
tls_peek_timeout(const struct gw_conn *c)
{
	(void)c;
	return DC_HELLO_TIMEOUT;
}

static void
tls_fill_log(struct gw_conn *c, struct log_record *r)
{
	/* Whether the ClientHello offered ECH, once one was read. */
	r->has_ech = c->hello_bytes > 0;
	r->ech = c->ech;
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_conn *c = arg;
	uint64_t quiet;

	switch (c->state) {
	case GW_CONN_ACCEPTED:
	case GW_CONN_PEEKING:
	case GW_CONN_DECIDED:
		/* libevent arms timers from its cached loop time, which can lag
		 * when a loop iteration ran long: never cut a client early. */
		quiet = gw_mono_ms_since(&c->start_mono);
		if (quiet < c->w->cfg->timeouts.hello_ms) {
			timer_arm(c, c->w->cfg->timeouts.hello_ms - quiet);
			break;
		}
		/* A client that says nothing is not told anything either. */
		gw_conn_close(c, DC_EV_DENY, c->ops->peek_timeout(c));
		break;
	case GW_CONN_RESOLVING:
		gw_conn_refuse(c, DC_EV_ERROR, DC_DNS_TIMEOUT);
		break;
	case GW_CONN_CONNECTING:
		/* As for the hello: the timer may run ahead of the clock. */
		quiet = gw_mono_ms_since(&c->attempt_start);
		if (quiet < c->w->cfg->timeouts.connect_ms) {
			timer_arm(c, c->w->cfg->timeouts.connect_ms - quiet);
			break;
		}
		c->last_connect_timeout = 1;
		c->detail = "connect timed out";
		event_free(c->uev);
		c->uev = NULL;
		close(c->ufd);
		c->ufd = -1;
		conn_connect_next(c);
		break;
	case GW_CONN_RELAYING:
	case GW_CONN_ANSWERING:
		c->ops->timeout(c);
		break;
	case GW_CONN_CLOSING:
		conn_destroy(c);
		break;
	}
}

/* ---- accept ---------------------------------------------------------------- */

/*
 * Where a redirected client aimed: conntrack keeps it for REDIRECT/DNAT
 * (SO_ORIGINAL_DST); with TPROXY, or with no NAT at all, the socket's own
 * local address is it. Its port is the port the policy checks and the
 * upstream port. The address only ever decides where to connect for a
 * resolution: NONE rule, and only when the name resolves to it.
 */
static void
conn_original_dst(struct gw_conn *c)
{
	struct sockaddr_storage *o = &c->orig_dst;
	socklen_t len = sizeof(*o);
	int ok;

	memset(o, 0, sizeof(*o));
	if (c->l->conf->addr.ss_family == AF_INET6)
		ok = getsockopt(c->cfd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, o, &len) == 0;
	else
		ok = getsockopt(c->cfd, SOL_IP, SO_ORIGINAL_DST, o, &len) == 0;
	if (!ok) {
		len = sizeof(*o);
		if (getsockname(c->cfd, (struct sockaddr *)o, &len) != 0)
			memset(o, 0, sizeof(*o));
	}
	c->port = dns_addr_port((const struct sockaddr *)o);
}

/*
 * Is this client one of our own upstream sockets? Its address and port
 * must be one of theirs, and where it arrived (the original destination
 * when redirected, else this socket's local address) where that socket
 * connected to.
 */
static int
conn_is_loop(struct gw_conn *c)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);

	/* Most clients are at no address of ours: no syscall for them. */
	if (!gw_loops_has(c->w->shared->loops,
	    (const struct sockaddr *)&c->peer, NULL))
		return 0;
	/* Where it arrived before any NAT: a REDIRECT on this host that sends
	 * our upstream connection back to a listener (any listener, not only
	 * a transparent one) is a loop too. */
	if (c->orig_dst.ss_family != 0)
		memcpy(&local, &c->orig_dst, sizeof(local));
	else if (getsockopt(c->cfd, c->l->conf->addr.ss_family == AF_INET6 ?
	    SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST, &local, &len) != 0) {
		len = sizeof(local);
		if (getsockname(c->cfd, (struct sockaddr *)&local, &len) != 0)
			return 0;
	}
	return gw_loops_has(c->w->shared->loops,
	    (const struct sockaddr *)&c->peer, (const struct sockaddr *)&local);
}

/*
 * Who may talk to this listener at all, before a byte is read: a PROXY
 * header is believed only from the front proxies proxy_protocol_from
 * names (anyone else could claim any source and pass sources: rules), and
 * a connection from one of this gateway's own upstream sockets is a loop.
 * 0: go on; -1: refused and closed, the line naming the real peer.
 */
static int
conn_screen_peer(struct gw_conn *c)
{
	const struct gw_listener_conf *lc = c->l->conf;
	const struct sockaddr *peer = (const struct sockaddr *)&c->peer;
	char buf[64];

	if (c->w->shared->loops != NULL && conn_is_loop(c)) {
		c->detail = "the client is this gateway's own upstream connection";
		gw_conn_refuse(c, DC_EV_DENY, DC_GATEWAY_LOOP);
		return -1;
	}
	if (lc->proxy_protocol && !gw_in_ranges(lc->proxy_from, lc->nproxy_from, peer)) {
		dns_addr_format(peer, buf, sizeof(buf));
		snprintf(c->w->detail_buf, sizeof(c->w->detail_buf), "%s is not in "
		    "proxy_protocol_from: its PROXY header is not believed", buf);
		c->detail = c->w->detail_buf;
		gw_conn_close(c, DC_EV_DENY, DC_UNTRUSTED_PROXY);
		return -1;
	}
	return 0;
}

void
gw_conn_accept(struct gw_listener *l, int fd, const struct sockaddr *sa, int salen)
{
	struct gw_worker *w = l->w;
	struct gw_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		return;
	}
	c->w = w;
	c->l = l;
	c->ops = l->conf->proto == GW_PROTO_HTTP ||
	    l->conf->proto == GW_PROTO_CONNECT ? &gw_http_ops : &gw_tls_ops;
	c->cfd = fd;
	c->ufd = -1;
	if (salen > 0 && (size_t)salen <= sizeof(c->src)) {
		memcpy(&c->src, sa, (size_t)salen);
		memcpy(&c->peer, sa, (size_t)salen);
	}
	c->port = l->conf->upstream_port;
	if (l->conf->proto == GW_PROTO_TRANSPARENT)
		conn_original_dst(c);
	conn_make_id(c->id, sizeof(c->id), w->id, ++w->conn_seq);
	c->start_us = log_now_us();
	clock_gettime(CLOCK_MONOTONIC, &c->start_mono);
	c->last_active = c->start_mono;
	TAILQ_INSERT_TAIL(&w->conns, c, entry);
	w->nconns++;
	w->counters.accepted++;
	c->cev = event_new(w->base, fd, EV_READ | EV_PERSIST, peek_cb, c);
	c->timer = evtimer_new(w->base, timer_cb, c);
	if (c->cev == NULL || c->timer == NULL) {
		gw_conn_close(c, DC_EV_ERROR, DC_OVERLOADED);
		return;
	}
	gw_conn_set_state(c, GW_CONN_PEEKING);
	if (conn_screen_peer(c) != 0)
		return;
	timer_arm(c, w->cfg->timeouts.hello_ms);
	/*
	 * The client speaks first, and its first bytes have most often
	 * arrived by the accept: read them now, and wait on the socket only
	 * if they are not all here (an epoll_ctl pair fewer per connection).
	 */
	peek_cb(fd, EV_READ, c);
	if (!c->freeing && c->state == GW_CONN_PEEKING && c->cev != NULL &&
	    !event_pending(c->cev, EV_READ, NULL))
		event_add(c->cev, NULL);
}

const struct gw_proto_ops gw_tls_ops = {
	.name = "tls",
	.peek = tls_peek,
	.connected = gw_relay_start,
	.refuse = tls_refuse,
	.timeout = tls_timeout,
	.fill_log = tls_fill_log,
	.peek_timeout = tls_peek_timeout,
	.release = NULL,
};

/*
 * The relay: once both sockets are up, bytes both ways, unmodified, with
 * half-close honoured, until both directions have finished.
 *
 * TLS passthrough relays with splice(2): the kernel moves the bytes from
 * one socket into a pipe and from the pipe into the other socket, and they
 * never enter userspace. A pipe is held only while bytes are in flight:
 * each worker keeps a few empty pipes for reuse, so an idle relayed
 * connection holds no pipe and no buffer, only its two sockets. Where
 * splice cannot be used (relay_splice: false, no pipe to be had, or a
 * kernel that refuses splice on these sockets) the relay is two libevent
 * bufferevents, as for HTTP, for upgraded connections and for CONNECT
 * tunnels, whose first bytes are already in a bufferevent's input.
 *
 * A relay that starts right after a ClientHello watches until the server
 * has answered (below): on splice, with one peek at the server's first
 * bytes, when the client sends nothing meanwhile and no second hello is
 * asked for; otherwise on bufferevents, which read and judge the client's
 * bytes, and then it moves to splice where it can.
 *
 * Both count bytes as they are taken from a socket (bytes_in from the
 * client, bytes_out from the upstream), pass a FIN on once everything
 * before it is written, and end with one line when both directions are
 * done, or on the first error.
 */
#include "gateway/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "gateway/gateway.h"
#include "sni/sni.h"

/* Relay backpressure (as libevent's le-proxy): stop reading one side while
 * the other's output holds this much, resume when it falls to half. */
#define RELAY_HIGH_WATER (256 * 1024)
/* One splice(2) moves at most this much; a pipe holds 64 KiB by default. */
#define SPLICE_CHUNK    (64 * 1024)
/* Chunks moved per event before others get their turn. */
#define SPLICE_BURST    16

/* ---- the watch: a second ClientHello --------------------------------- */

/*
 * A TLS 1.3 server that answers a ClientHello with a HelloRetryRequest
 * takes the client's second ClientHello as the one that counts: OpenSSL
 * picks its certificate and virtual host by that hello's server_name. A
 * gateway that decided on the first hello alone would relay a handshake
 * for a name it never decided (its line naming another). So until the
 * server has answered, the client's bytes are read before they go on
 * (sni_parse_followup): every ClientHello among them must name what the
 * first one named (RFC 8446 section 4.1.2 says it must), else the
 * connection ends with sni_mismatch. The server's first bytes say when
 * the watch ends: at its answer if that is no HelloRetryRequest, else
 * once the second hello has gone. TLS 1.2 renegotiation is encrypted and
 * out of sight (docs/steering.md).
 */
#define WATCH_SERVER_MAX 256
/* What the client may have in flight that is not yet passed on: a whole
 * ClientHello, or one opaque record. */
#define WATCH_HOLD_MAX  (SNI_PEEK_MAX + 5 + 16384 + 2048)

struct gw_watch {
	struct evbuffer *hold;          /* the client's bytes not passed on */
	size_t first;                   /* bytes of the client's input that
	                                 * are the hello decided on */
	uint8_t srv[WATCH_SERVER_MAX];  /* the server's first bytes */
	size_t srv_len;
	enum sni_answer answer;
	unsigned hellos;                /* ClientHellos passed since the first */
	unsigned splice_after:1;        /* move to splice once it ends */
};

static void relay_try_splice(struct gw_conn *c);

static void
watch_free(struct gw_conn *c)
{
	if (c->watch == NULL)
		return;
	if (c->watch->hold != NULL)
		evbuffer_free(c->watch->hold);
	free(c->watch);
	c->watch = NULL;
}

int
gw_relay_watch(struct gw_conn *c, size_t first)
{
	struct gw_watch *wt;

	if (c->watch != NULL)
		return 0;
	wt = calloc(1, sizeof(*wt));
	if (wt == NULL)
		return -1;
	wt->hold = evbuffer_new();
	if (wt->hold == NULL) {
		free(wt);
		return -1;
	}
	wt->first = first;
	wt->splice_after = c->w->cfg->relay_splice;
	c->watch = wt;
	return 0;
}

/* The server has answered so that no other ClientHello may follow: what
 * the client sent since goes on, and the relay may move to splice. */
static void
watch_end(struct gw_conn *c)
{
	struct gw_watch *wt = c->watch;

	if (evbuffer_get_length(wt->hold) > 0 && c->ubev != NULL)
		evbuffer_add_buffer(bufferevent_get_output(c->ubev), wt->hold);
	c->splice_later = wt->splice_after;
	watch_free(c);
}

static void
watch_refuse(struct gw_conn *c, enum dc_reason reason, const char *detail)
{
	/* The relayed handshake is not the one admitted: the line names no
	 * rule, and a reload has nothing left to decide again. */
	c->v.allow = 0;
	c->v.would_deny = 0;
	c->v.reason = reason;
	c->v.rule = NULL;
	c->detail = detail;
	gw_conn_close(c, DC_EV_DENY, reason);
}

/*
 * A ClientHello after the first: the same server name (normalised), or
 * why not. DC_ALLOWED when it may go on; the detail in the worker's
 * detail_buf otherwise.
 */
static enum dc_reason
watch_judge(struct gw_conn *c, const struct sni_hello *h)
{
	char name[SNI_NAME_MAX + 1];
	const char *said = "no server";
	int same = 0;

	if (h->has_sni) {
		if (sni_name_normalize(h->name.ptr, h->name.len, name) == 0) {
			said = name;
			same = strcmp(name, c->name) == 0;
		} else {
			said = "(not a host name)";
		}
	}
	if (!same) {
		snprintf(c->w->detail_buf, sizeof(c->w->detail_buf), "a second "
		    "ClientHello names %.100s; the first named %.100s", said,
		    c->name);
		return DC_SNI_MISMATCH;
	}
	if (h->ech && c->w->cfg->refuse_ech) {
		snprintf(c->w->detail_buf, sizeof(c->w->detail_buf), "a second "
		    "ClientHello offers ECH");
		return DC_ECH_REFUSED;
	}
	return DC_ALLOWED;
}

/*
 * The client's held bytes: whole records that are no handshake go on, a
 * ClientHello goes on once whole and judged. 0: go on; -1: the
 * connection was closed. Each turn passes a whole hello or returns.
 */
static int
watch_client(struct gw_conn *c)
{
	struct gw_watch *wt = c->watch;
	struct evbuffer *out = bufferevent_get_output(c->ubev);

	while (c->watch != NULL) {
		size_t len = evbuffer_get_length(wt->hold), pass;
		struct sni_hello h;
		enum dc_reason why;
		const uint8_t *p;

		if (len == 0)
			return 0;
		if (len > WATCH_HOLD_MAX) {
			watch_refuse(c, DC_HELLO_TOO_LARGE, "the client sent more "
			    "than a ClientHello before the server answered");
			return -1;
		}
		p = evbuffer_pullup(wt->hold, (ev_ssize_t)len);
		if (p == NULL) {
			c->detail = "out of memory";
			gw_conn_close(c, DC_EV_ERROR, DC_OVERLOADED);
			return -1;
		}
		switch (sni_parse_followup(p, len, c->w->scratch,
		    sizeof(c->w->scratch), &pass, &h)) {
		case SNI_NEED_MORE:
			evbuffer_remove_buffer(wt->hold, out, pass);
			return 0;
		case SNI_ERROR:
			watch_refuse(c, h.error == SNI_ERR_TOO_LARGE ?
			    DC_HELLO_TOO_LARGE : DC_MALFORMED_HELLO,
			    sni_error_str(h.error));
			return -1;
		case SNI_OK:
			break;
		}
		if ((why = watch_judge(c, &h)) != DC_ALLOWED) {
			watch_refuse(c, why, c->w->detail_buf);
			return -1;
		}
		evbuffer_remove_buffer(wt->hold, out, pass + h.raw_len);
		wt->hellos++;
		if (wt->answer == SNI_ANSWER_RETRY)
			watch_end(c);
	}
	return 0;
}

/* The server's first bytes in `in` (not taken from it): has it answered,
 * and how? */
static void
watch_server(struct gw_conn *c, struct evbuffer *in)
{
	struct gw_watch *wt = c->watch;
	size_t room = sizeof(wt->srv) - wt->srv_len;
	ev_ssize_t n;

	if (wt->answer != SNI_ANSWER_NEED_MORE || room == 0)
		return;
	n = evbuffer_copyout(in, wt->srv + wt->srv_len, room);
	if (n > 0)
		wt->srv_len += (size_t)n;
	wt->answer = sni_server_answer(wt->srv, wt->srv_len);
	/* A server that takes this long to say it is no retry is no
	 * retry: only a retry lets another hello through. */
	if (wt->answer == SNI_ANSWER_NEED_MORE && wt->srv_len == sizeof(wt->srv))
		wt->answer = SNI_ANSWER_OTHER;
	if (wt->answer == SNI_ANSWER_OTHER ||
	    (wt->answer == SNI_ANSWER_RETRY && wt->hellos > 0))
		watch_end(c);
}

/* ---- bufferevents ------------------------------------------------------ */

static int
bev_relay_done(struct gw_conn *c)
{
	return c->c_eof && c->u_eof &&
	    evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->ubev)) == 0;
}

/* Half-close: once one side has finished and everything it sent is
 * written, pass the FIN on to the other side. */
static void
bev_pass_fin(struct gw_conn *c)
{
	if (c->c_eof && !c->u_shut &&
	    evbuffer_get_length(bufferevent_get_output(c->ubev)) == 0) {
		c->u_shut = 1;
		shutdown(c->ufd, SHUT_WR);
	}
	if (c->u_eof && !c->c_shut &&
	    evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0) {
		c->c_shut = 1;
		shutdown(c->cfd, SHUT_WR);
	}
	if (bev_relay_done(c))
		gw_conn_close(c, DC_EV_ALLOW, DC_ALLOWED);
}

static void
relay_read_cb(struct bufferevent *src, void *arg)
{
	struct gw_conn *c = arg;
	struct bufferevent *dst = src == c->cbev ? c->ubev : c->cbev;
	struct evbuffer *in = bufferevent_get_input(src);
	struct evbuffer *out = bufferevent_get_output(dst);
	size_t n = evbuffer_get_length(in);

	if (src == c->cbev)
		c->bytes_in += n;
	else
		c->bytes_out += n;
	clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	if (c->watch != NULL && src == c->cbev) {
		evbuffer_add_buffer(c->watch->hold, in);
		if (watch_client(c) != 0)
			return;
	} else if (c->watch != NULL) {
		watch_server(c, in);
	}
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= RELAY_HIGH_WATER) {
		bufferevent_disable(src, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, RELAY_HIGH_WATER / 2, 0);
	}
	relay_try_splice(c);
}

static void
relay_write_cb(struct bufferevent *dst, void *arg)
{
	struct gw_conn *c = arg;
	struct bufferevent *src = dst == c->cbev ? c->ubev : c->cbev;
	int src_eof = src == c->cbev ? c->c_eof : c->u_eof;

	clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	if (!src_eof && !(bufferevent_get_enabled(src) & EV_READ)) {
		bufferevent_setwatermark(dst, EV_WRITE, 0, 0);
		bufferevent_enable(src, EV_READ);
	}
	bev_pass_fin(c);
	relay_try_splice(c);
}

/*
 * Write what bev's output holds, as far as its socket takes it now. The
 * bufferevent keeps the start of its output frozen for everyone but
 * itself.
 */
static void
relay_flush_now(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);

	if (evbuffer_get_length(out) == 0)
		return;
	evbuffer_unfreeze(out, 1);
	(void)evbuffer_write(out, bufferevent_getfd(bev));
	evbuffer_freeze(out, 1);
}

static void
relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct gw_conn *c = arg;
	int client = bev == c->cbev;

	if (what & BEV_EVENT_ERROR) {
		int err = EVUTIL_SOCKET_ERROR();
		struct bufferevent *other = client ? c->ubev : c->cbev;

		/* What was read before the error still goes to the other
		 * side, as far as its socket takes it now (the splice relay
		 * writes it before it ends, too). */
		relay_flush_now(other);
		c->detail = strerror(err);
		gw_conn_close(c, DC_EV_ALLOW, client ? DC_CLIENT_RESET : DC_UPSTREAM_RESET);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		bufferevent_disable(bev, EV_READ);
		/* Held bytes are at most an unfinished record, which the
		 * server could not have read either: dropped. */
		if (client) {
			watch_free(c);
			c->c_eof = 1;
		} else {
			c->u_eof = 1;
		}
		bev_pass_fin(c);
	}
}

void
gw_conn_relay_bevs(struct gw_conn *c)
{
	struct evbuffer *cin = bufferevent_get_input(c->cbev);
	struct evbuffer *uin = bufferevent_get_input(c->ubev);

	/* What either side sent before the switch goes first; behind a
	 * ClientHello, through the watch. */
	c->bytes_in += evbuffer_get_length(cin);
	c->bytes_out += evbuffer_get_length(uin);
	if (c->watch != NULL) {
		evbuffer_remove_buffer(cin, bufferevent_get_output(c->ubev),
		    c->watch->first);
		c->watch->first = 0;
		evbuffer_add_buffer(c->watch->hold, cin);
	}
	evbuffer_add_buffer(bufferevent_get_output(c->ubev), cin);
	evbuffer_add_buffer(bufferevent_get_output(c->cbev), uin);
	bufferevent_setcb(c->cbev, relay_read_cb, relay_write_cb, relay_event_cb, c);
	bufferevent_setcb(c->ubev, relay_read_cb, relay_write_cb, relay_event_cb, c);
	bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
	bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
	gw_conn_set_state(c, GW_CONN_RELAYING);
	clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	gw_conn_timer(c, c->w->cfg->timeouts.idle_ms);
	if (c->watch != NULL)
		(void)watch_client(c);
}

/* ---- splice ------------------------------------------------------------- */

/*
 * One direction: from src into the pipe, from the pipe into dst. Direction
 * 0 is client to upstream, 1 upstream to client.
 */
struct splice_dir {
	int src, dst;
	int pipe[2];            /* -1 while no bytes are in flight */
	size_t pending;         /* bytes in the pipe */
	int err;                /* a read error behind the bytes in the pipe */
	unsigned eof:1, shut:1, blocked:1;
};

struct gw_splice {
	struct splice_dir d[2];
	/* client readable, upstream writable, upstream readable, client
	 * writable: the two ends of direction 0, then of direction 1. */
	struct event ev[4];
	/* Which of ev are added: libevent takes the base's lock for every
	 * event_add and event_del, even of an event in the state asked for,
	 * and splice_arm asks for all four after every pump. */
	unsigned armed;
	/* The watch, on splice (splice_watch): the server has not answered
	 * yet, so the client's next bytes must be judged. */
	unsigned watch:1;
};

static void splice_cb(evutil_socket_t fd, short what, void *arg);

/* An empty pipe from the worker's spares, or a new one. 0, or -1. */
static int
pipe_get(struct gw_worker *w, int p[2])
{
	w->pipes_used = 1;
	if (w->npipes > 0) {
		w->npipes--;
		p[0] = w->pipes[w->npipes][0];
		p[1] = w->pipes[w->npipes][1];
		return 0;
	}
	return pipe2(p, O_NONBLOCK | O_CLOEXEC);
}

/* Back to the spares when empty (it holds no one's bytes), else closed. */
static void
pipe_put(struct gw_worker *w, int p[2], size_t pending)
{
	if (p[0] < 0)
		return;
	if (pending == 0 && w->npipes < GW_SPARE_PIPES) {
		w->pipes[w->npipes][0] = p[0];
		w->pipes[w->npipes][1] = p[1];
		w->npipes++;
	} else {
		close(p[0]);
		close(p[1]);
	}
	p[0] = p[1] = -1;
}

void
gw_relay_release(struct gw_conn *c)
{
	struct gw_splice *sp = c->splice;

	watch_free(c);
	if (sp == NULL)
		return;
	for (int i = 0; i < 4; i++)
		if (sp->armed & (1u << i))
			event_del(&sp->ev[i]);
	for (int d = 0; d < 2; d++)
		pipe_put(c->w, sp->d[d].pipe, sp->d[d].pending);
	free(sp);
	c->splice = NULL;
}

static void
splice_ended(struct gw_conn *c, int d, int dst_side, int err)
{
	int client = (d == 0) != dst_side;

	c->detail = strerror(err);
	gw_conn_close(c, DC_EV_ALLOW, client ? DC_CLIENT_RESET : DC_UPSTREAM_RESET);
}

/* Event i of sp added (on) or not, touching libevent only for a change. */
static void
splice_want(struct gw_splice *sp, int i, int on)
{
	unsigned bit = 1u << i;

	if (on && !(sp->armed & bit)) {
		if (event_add(&sp->ev[i], NULL) == 0)
			sp->armed |= bit;
	} else if (!on && (sp->armed & bit)) {
		event_del(&sp->ev[i]);
		sp->armed &= ~bit;
	}
}

/* Which events direction d waits for now. */
static void
splice_arm(struct gw_splice *sp, int d)
{
	struct splice_dir *sd = &sp->d[d];

	splice_want(sp, d * 2, !sd->eof && !sd->blocked);
	splice_want(sp, d * 2 + 1, sd->blocked);
}

/* Up to room bytes from d's source into its pipe: n > 0, 0 at EOF, -1. */
static ssize_t
splice_in(struct gw_conn *c, int d, size_t room)
{
	struct splice_dir *sd = &c->splice->d[d];
	ssize_t n;

	n = splice(sd->src, NULL, sd->pipe[1], NULL, room,
	    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n == 0) {
		sd->eof = 1;
	} else if (n > 0) {
		sd->pending += (size_t)n;
		if (d == 0)
			c->bytes_in += (uint64_t)n;
		else
			c->bytes_out += (uint64_t)n;
		clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	}
	return n;
}

/*
 * Fill d's empty pipe. A source that gave less than a chunk is read once
 * more before anything is written: an EOF right behind the bytes is then
 * known in time for their last write to carry the FIN, one segment where
 * there were two (the second read is the one the next turn would make).
 * 0: bytes or EOF, and *dry when the source had nothing more just now;
 * 1: nothing to move now; -1: the connection was closed or handed over.
 */
static int
splice_fill(struct gw_conn *c, int d, int *dry)
{
	struct gw_splice *sp = c->splice;
	struct splice_dir *sd = &sp->d[d];
	ssize_t n;

	if (sd->pipe[0] < 0 && pipe_get(c->w, sd->pipe) != 0) {
		/* Out of descriptors. With no byte in either pipe, the
		 * sockets alone hold the stream: go on through userspace
		 * without losing any. */
		if (sp->d[!d].pending == 0) {
			gw_relay_release(c);
			(void)gw_relay_bevs_start(c);
			return -1;
		}
		c->detail = strerror(errno);
		gw_conn_close(c, DC_EV_ERROR, DC_OVERLOADED);
		return -1;
	}
	n = splice_in(c, d, SPLICE_CHUNK);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 1;
		if (errno == EINVAL && sp->d[!d].pending == 0) {
			/* This kernel will not splice these sockets: relay
			 * through userspace. */
			gw_relay_release(c);
			(void)gw_relay_bevs_start(c);
			return -1;
		}
		splice_ended(c, d, 0, errno);
		return -1;
	}
	if (n > 0 && (size_t)n < SPLICE_CHUNK) {
		n = splice_in(c, d, SPLICE_CHUNK - sd->pending);
		/* An error waits until the bytes before it are written. */
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			sd->err = errno;
		*dry = n < 0;
	}
	return 0;
}

/*
 * The watch, on splice. Almost always the client sends nothing between its
 * hello and the server's answer, and that answer is no HelloRetryRequest:
 * then the watch costs one peek at the server's first bytes. Anything else
 * (the client's bytes, a retry, an answer too short to tell, an EOF or an
 * error first) goes to the bufferevent relay's watch, which reads and
 * judges. Nothing has been moved either way yet, so the pipes are empty
 * and the sockets hold the whole stream: the hand-over loses nothing.
 */
#define WATCH_PEEK      64      /* a ServerHello's first 38 bytes, framed */

static int
splice_watch_handover(struct gw_conn *c)
{
	gw_relay_release(c);
	if (gw_relay_watch(c, 0) != 0) {
		c->detail = "out of memory";
		gw_conn_close(c, DC_EV_ERROR, DC_OVERLOADED);
		return 1;
	}
	(void)gw_relay_bevs_start(c);
	return 1;
}

/* 0: the watch is over, go on with direction d; 1: handed over; 2:
 * nothing to read yet (no byte may move unseen meanwhile). */
static int
splice_watch(struct gw_conn *c, int d)
{
	uint8_t buf[WATCH_PEEK];
	ssize_t n;

	if (d == 0)
		return splice_watch_handover(c);
	n = recv(c->ufd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 2;
	if (n > 0 && sni_server_answer(buf, (size_t)n) == SNI_ANSWER_OTHER) {
		c->splice->watch = 0;
		return 0;
	}
	return splice_watch_handover(c);
}

/*
 * Move what there is in direction d. 0: go on; 1: the connection was
 * closed (or handed to the bufferevent relay) and must not be touched.
 */
static int
splice_pump(struct gw_conn *c, int d)
{
	struct gw_splice *sp = c->splice;
	struct splice_dir *sd = &sp->d[d];
	unsigned int more;
	ssize_t n;
	int dry, r;

	if (sp->watch && (r = splice_watch(c, d)) != 0)
		return r == 1;

	for (int burst = 0; burst < SPLICE_BURST; burst++) {
		dry = 0;
		if (sd->pending == 0 && !sd->eof && sd->err == 0) {
			r = splice_fill(c, d, &dry);
			if (r < 0)
				return 1;
			if (r > 0)
				break;
		}
		/* Before an EOF the last write is held for the FIN. */
		more = sd->eof ? SPLICE_F_MORE : 0;
		while (sd->pending > 0) {
			n = splice(sd->pipe[0], NULL, sd->dst, NULL, sd->pending,
			    SPLICE_F_MOVE | SPLICE_F_NONBLOCK | more);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN) {
					/* dst is full: stop reading src until it
					 * drains (backpressure, with no buffer). */
					sd->blocked = 1;
					return 0;
				}
				splice_ended(c, d, 1, errno);
				return 1;
			}
			sd->pending -= (size_t)n;
			clock_gettime(CLOCK_MONOTONIC, &c->last_active);
		}
		sd->blocked = 0;
		/* Idle connections hold no pipe. */
		pipe_put(c->w, sd->pipe, 0);
		if (sd->err != 0) {
			splice_ended(c, d, 0, sd->err);
			return 1;
		}
		if (sd->eof || dry)
			break;
	}
	if (sd->eof && sd->pending == 0 && !sd->shut) {
		/* Half-close: everything before the FIN is written (the FIN
		 * goes with the last of it). When the other way is done too,
		 * the close just below sends this FIN (nothing is left unread
		 * on either socket: no reset). */
		sd->shut = 1;
		if (!sp->d[!d].shut)
			shutdown(sd->dst, SHUT_WR);
	}
	if (sp->d[0].shut && sp->d[1].shut) {
		gw_conn_close(c, DC_EV_ALLOW, DC_ALLOWED);
		return 1;
	}
	return 0;
}

static void
splice_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gw_conn *c = arg;
	int d;

	/* The client's read end and the upstream's write end serve
	 * direction 0; the other two, direction 1. */
	if (what & EV_READ)
		d = fd == c->cfd ? 0 : 1;
	else
		d = fd == c->ufd ? 0 : 1;
	if (c->splice->d[d].blocked)
		c->splice->d[d].blocked = 0;
	if (splice_pump(c, d) != 0)
		return;
	splice_arm(c->splice, d);
}

/*
 * The peeked bytes first, as they were, then everything else; watch: the
 * server has yet to answer a ClientHello among them (splice_watch). 0:
 * relaying with splice; 1: not possible here (the caller relays
 * otherwise).
 */
static int
splice_start(struct gw_conn *c, int watch)
{
	struct event_base *base = c->w->base;
	struct gw_splice *sp;
	ssize_t n;

	if (!c->w->cfg->relay_splice)
		return 1;
	/* The hello fits the socket's fresh send buffer; if not all of it
	 * went, the bufferevent relay sends the rest. */
	n = c->peek_len == 0 ? 0 :
	    send(c->ufd, c->peek, c->peek_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		n = 0;
	if ((size_t)n < c->peek_len) {
		memmove(c->peek, c->peek + n, c->peek_len - (size_t)n);
		c->peek_len -= (size_t)n;
		c->hello_raw = c->hello_raw > (size_t)n ? c->hello_raw - (size_t)n : 0;
		return 1;
	}
	c->peek_len = 0;
	sp = calloc(1, sizeof(*sp));
	if (sp == NULL)
		return 1;
	for (int d = 0; d < 2; d++) {
		sp->d[d].src = d == 0 ? c->cfd : c->ufd;
		sp->d[d].dst = d == 0 ? c->ufd : c->cfd;
		sp->d[d].pipe[0] = sp->d[d].pipe[1] = -1;
	}
	event_assign(&sp->ev[0], base, c->cfd, EV_READ | EV_PERSIST, splice_cb, c);
	event_assign(&sp->ev[1], base, c->ufd, EV_WRITE | EV_PERSIST, splice_cb, c);
	event_assign(&sp->ev[2], base, c->ufd, EV_READ | EV_PERSIST, splice_cb, c);
	event_assign(&sp->ev[3], base, c->cfd, EV_WRITE | EV_PERSIST, splice_cb, c);
	sp->watch = watch != 0;
	c->splice = sp;
	splice_arm(sp, 0);
	splice_arm(sp, 1);
	return 0;
}

/* ---- starting ------------------------------------------------------------ */

int
gw_relay_bevs_start(struct gw_conn *c)
{
	struct event_base *base = c->w->base;
	size_t first;

	c->cbev = bufferevent_socket_new(base, c->cfd, 0);
	c->ubev = bufferevent_socket_new(base, c->ufd, 0);
	if (c->cbev == NULL || c->ubev == NULL) {
		c->detail = "out of memory";
		gw_conn_close(c, DC_EV_ERROR, DC_OVERLOADED);
		return -1;
	}
	/* The peeked bytes go first and unchanged, those behind the hello
	 * through the watch; then everything else. */
	first = c->watch != NULL && c->hello_raw < c->peek_len ?
	    c->hello_raw : c->peek_len;
	if ((first > 0 && evbuffer_add(bufferevent_get_output(c->ubev),
	    c->peek, first) != 0) || (c->peek_len > first &&
	    evbuffer_add(c->watch->hold, c->peek + first,
	    c->peek_len - first) != 0)) {
		c->detail = "out of memory";
		gw_conn_close(c, DC_EV_ERROR, DC_OVERLOADED);
		return -1;
	}
	c->peek_len = 0;
	gw_conn_relay_bevs(c);
	return 0;
}

/*
 * A relay about to start on bufferevents (a CONNECT tunnel whose
 * ClientHello is decided) moves to splice when their buffers hold nothing
 * but what the client sent last: that goes first, as passthrough's peeked
 * hello does. The splice events are added before the bufferevents are
 * freed, so the client's socket stays in epoll untouched. 0: splicing;
 * 1: not here (TLS to the upstream, bytes queued, relay_splice off).
 */
int
gw_relay_splice_bevs(struct gw_conn *c)
{
	struct evbuffer *cin;
	size_t len;

	if (!c->w->cfg->relay_splice || c->cbev == NULL || c->ubev == NULL ||
	    c->ufd < 0 || c->peek != NULL ||
	    evbuffer_get_length(bufferevent_get_input(c->ubev)) != 0 ||
	    evbuffer_get_length(bufferevent_get_output(c->ubev)) != 0 ||
	    evbuffer_get_length(bufferevent_get_output(c->cbev)) != 0)
		return 1;
	cin = bufferevent_get_input(c->cbev);
	len = evbuffer_get_length(cin);
	/* A tunnel's ClientHello alone, the server not heard from yet: the
	 * splice relay's watch takes over from the bufferevents'. */
	if (c->watch != NULL && (len != c->watch->first ||
	    evbuffer_get_length(c->watch->hold) != 0 || c->watch->srv_len != 0))
		return 1;
	if (len > 0) {
		c->peek = malloc(len);
		if (c->peek == NULL)
			return 1;
		c->peek_cap = c->peek_len = len;
		evbuffer_copyout(cin, c->peek, len);
	}
	if (splice_start(c, c->watch != NULL) != 0) {
		/* Whatever of it was sent is gone from the buffer too, and
		 * counted: gw_conn_relay_bevs counts what is left. */
		evbuffer_drain(cin, len - c->peek_len);
		c->bytes_in += len - c->peek_len;
		if (c->watch != NULL)
			c->watch->first = c->peek_len;
		free(c->peek);
		c->peek = NULL;
		c->peek_len = c->peek_cap = 0;
		return 1;
	}
	c->bytes_in += len;
	free(c->peek);
	c->peek = NULL;
	c->peek_cap = 0;
	watch_free(c);
	/* The splice events on the same sockets are added: they stay in
	 * epoll when the bufferevents' events go. */
	gw_bev_free(c->cbev);
	gw_bev_free(c->ubev);
	c->cbev = c->ubev = NULL;
	gw_conn_set_state(c, GW_CONN_RELAYING);
	clock_gettime(CLOCK_MONOTONIC, &c->last_active);
	gw_conn_timer(c, c->w->cfg->timeouts.idle_ms);
	return 0;
}

/* The watch has ended: the relay moves to splice once nothing is queued
 * (gw_relay_splice_bevs checks), and stays on bufferevents after an EOF. */
static void
relay_try_splice(struct gw_conn *c)
{
	if (!c->splice_later || c->freeing || c->state != GW_CONN_RELAYING ||
	    c->c_eof || c->u_eof)
		return;
	if (gw_relay_splice_bevs(c) == 0)
		c->splice_later = 0;
}

void
gw_relay_start(struct gw_conn *c)
{
	if (c->uev != NULL) {       /* none when the hello went at once */
		event_free(c->uev);
		c->uev = NULL;
	}
	evtimer_del(c->timer);
	if (c->cev != NULL) {
		event_free(c->cev);
		c->cev = NULL;
	}
	/* Connected: the other candidate addresses are not needed any more,
	 * and an idle relayed connection should cost as little as it can. */
	free(c->addrs);
	c->addrs = NULL;
	c->naddrs = c->next_addr = 0;
	/* What follows the hello is judged until the server has answered
	 * (the watch): on splice when nothing follows it yet, else by the
	 * bufferevent relay, which reads it. */
	if (c->peek_len <= c->hello_raw && splice_start(c, 1) == 0) {
		gw_conn_set_state(c, GW_CONN_RELAYING);
		clock_gettime(CLOCK_MONOTONIC, &c->last_active);
		gw_conn_timer(c, c->w->cfg->timeouts.idle_ms);
	} else if (gw_relay_watch(c, 0) != 0) {
		c->detail = "out of memory";
		gw_conn_close(c, DC_EV_ERROR, DC_OVERLOADED);
		return;
	} else if (gw_relay_bevs_start(c) != 0) {
		return;
	}
	free(c->peek);
	c->peek = NULL;
	c->peek_cap = 0;
}

/*
 * One client connection, end to end (DESIGN §3):
 *
 *   ACCEPTED -> PEEKING -> DECIDED -> RESOLVING -> CONNECTING -> RELAYING
 *
 * and from any of them to ANSWERING (an HTTP refusal being flushed) and
 * to CLOSING. Every exit goes through gw_conn_close(),
 * which writes exactly one log line; a denied client is then given a short
 * linger so the alert is read before the socket goes away.
 */
#ifndef EGRESSD_GW_CONN_H
#define EGRESSD_GW_CONN_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include "decide/decide.h"
#include "policy/policy.h"
#include "sni/sni.h"

struct gw_worker;
struct gw_listener;
struct bufferevent;
struct dns_ticket;
struct dns_answer;
struct gw_http;
struct gw_splice;
struct gw_watch;
struct gw_conn;
struct log_record;

/*
 * What differs per protocol, behind one table (as relayd's struct
 * protocol): the core (conn.c) accepts, reads a PROXY header, peeks,
 * decides, resolves, connects and closes; these say what the bytes mean
 * and how to answer in the protocol's own words.
 */
struct gw_proto_ops {
	const char *name;
	/* The client's first bytes (after any PROXY header) are in c->peek. */
	void (*peek)(struct gw_conn *c);
	/* The upstream TCP connection is up (c->ufd). */
	void (*connected)(struct gw_conn *c);
	/* Refuse in the protocol's own words, then close. */
	void (*refuse)(struct gw_conn *c, enum dc_event ev, enum dc_reason r);
	/* The timer fired while GW_CONN_RELAYING. */
	void (*timeout)(struct gw_conn *c);
	/* The protocol's own keys of the connection's line. */
	void (*fill_log)(struct gw_conn *c, struct log_record *r);
	/* What a client that never finished its first message is told. */
	enum dc_reason (*peek_timeout)(const struct gw_conn *c);
	/* Release what the protocol holds (may be NULL). */
	void (*release)(struct gw_conn *c);
};

extern const struct gw_proto_ops gw_tls_ops;   /* conn.c: passthrough */
extern const struct gw_proto_ops gw_http_ops;  /* http.c: HTTP, CONNECT */

enum gw_conn_state {
	GW_CONN_ACCEPTED = 0,
	GW_CONN_PEEKING,
	GW_CONN_DECIDED,
	GW_CONN_RESOLVING,
	GW_CONN_CONNECTING,
	GW_CONN_RELAYING,
	GW_CONN_ANSWERING,      /* a refusal is flushed to the client (HTTP) */
	GW_CONN_CLOSING,
};

#define GW_ALPN_BUF 96

struct gw_conn {
	TAILQ_ENTRY(gw_conn) entry;
	struct gw_worker *w;
	const struct gw_listener *l;
	const struct gw_proto_ops *ops;
	enum gw_conn_state state;       /* changed by gw_conn_set_state() only */
	char id[24];

	int cfd, ufd;
	struct sockaddr_storage src;
	struct sockaddr_storage peer;           /* the socket's peer, before any
	                                         * PROXY header */
	struct sockaddr_storage orig_dst;       /* transparent: where the client
	                                         * aimed; family 0 otherwise */
	struct sockaddr_storage upstream;       /* AF_UNSPEC until connected */
	struct sockaddr_storage upstream_local; /* our end of it */

	/* What the client sent before the decision; forwarded first. */
	uint8_t *peek;
	size_t peek_len, peek_cap;

	struct event *cev;              /* client readable: peek, linger */
	struct event *uev;              /* upstream writable: connect */
	struct event *timer;            /* the current state's timeout */
	struct bufferevent *cbev, *ubev;
	struct gw_splice *splice;       /* the splice relay, when relaying so */
	struct gw_watch *watch;         /* the relay still reads what follows
	                                 * the ClientHello (relay.c) */
	struct dns_ticket *ticket;

	/* The facts decided on (kept to decide again after a reload) and
	 * the verdict; its rules live in snap, which holds a reference. */
	struct dc_facts facts;
	struct dc_verdict v;
	struct pol_snapshot *snap;
	char name[SNI_NAME_MAX + 1];
	size_t name_len;                /* raw bytes kept when invalid */
	int has_name;
	uint16_t port;                  /* requested: what the policy checks */
	uint16_t dst_port;              /* to connect to where DNS gave none */
	int has_alpn, ech;
	size_t nalpn;
	uint8_t alpn_off[8], alpn_len[8];
	char alpn_buf[GW_ALPN_BUF];

	/* Upstream candidates, in the order they will be tried. */
	struct sockaddr_storage *addrs;
	size_t naddrs, next_addr;
	int last_connect_timeout;
	int reached_self;               /* an address was one of ours */

	uint64_t bytes_in, bytes_out;
	uint32_t answer_len;            /* a refusal being sent: counted in the
	                                 * line, which is written before it */
	uint32_t interims;              /* interim lines of this exchange */
	uint64_t start_us;              /* wall clock, for the log */
	struct timespec start_mono, last_active;
	struct timespec attempt_start;  /* the current upstream connect */
	unsigned c_eof:1, u_eof:1, c_shut:1, u_shut:1, logged:1, freeing:1;
	unsigned decided:1;             /* facts and v hold a decision */
	unsigned answered:1;            /* the client was told something before
	                                 * the relay: linger so it reads it */
	unsigned alerted:1;             /* ... a TLS alert: a TLS client sends
	                                 * nothing more before it reads it */
	unsigned quiet:1;               /* ... and it has nothing in flight
	                                 * (after an alert, or an HTTP answer
	                                 * to Connection: close): close at once */
	unsigned silent:1;              /* ends without a line (an HTTP
	                                 * connection idle between requests) */
	unsigned proxied:1;             /* the PROXY header has been read */
	unsigned dns_stale:1;           /* DNS failed; a stale answer served */
	unsigned looped:1;              /* registered in the loop table */
	unsigned splice_later:1;        /* the watch has ended: move the
	                                 * relay to splice (relay.c) */
	unsigned peek_dry:1;            /* the read just made left nothing
	                                 * unread: set only while the peek
	                                 * it filled is being decided */
	uint32_t hello_bytes;           /* the ClientHello as decided on */
	size_t hello_raw;               /* passthrough: the bytes at the start
	                                 * of peek that are that ClientHello */
	uint32_t decide_us;             /* accept to policy decision */
	uint32_t dns_us;                /* waiting for a DNS lookup */
	struct timespec dns_start;
	uint32_t dns_stale_age;         /* seconds past its TTL */
	const char *detail;
	/* HTTP and CONNECT (gateway/http.c): the exchange in progress; NULL
	 * for TLS passthrough, which keeps its connections small. */
	struct gw_http *http;
};

/* Take over an accepted socket (non-blocking). Closes it on failure. */
void gw_conn_accept(struct gw_listener *l, int fd, const struct sockaddr *sa,
    int salen);
/* End a connection: one log line, then release (or linger after an answer). */
void gw_conn_close(struct gw_conn *c, enum dc_event ev, enum dc_reason reason);
/* Close a connection whose line is already written (an answer flushed). */
void gw_conn_finish(struct gw_conn *c);
/* Free a bufferevent (its events out of epoll at once: its socket may be
 * closed and the number reused before the loop turns). */
void gw_bev_free(struct bufferevent *bev);
/* Nothing more in flight from this client (one non-blocking recv; bytes
 * found are dropped): 1, and a close now sends a FIN, not a reset. */
int gw_conn_client_quiet(int fd);
/* Refuse in the connection's protocol (its ops' refuse). */
void gw_conn_refuse(struct gw_conn *c, enum dc_event ev, enum dc_reason reason);
/* Every state change, checked against the transitions of DESIGN §3. */
void gw_conn_set_state(struct gw_conn *c, enum gw_conn_state s);
/* A reload: decide again with the worker's new snapshot; a connection the
 * new policy refuses is closed (policy_revoked). */
void gw_conn_redecide(struct gw_conn *c);

const char *gw_conn_state_str(enum gw_conn_state s);
/* log.interim_interval: an interim line (event "interim") for a connection
 * relaying longer than that since its start or its last interim line. */
void gw_conn_interim_due(struct gw_conn *c, uint64_t interval_ms);
/* The connection as the admin's /connections lists it: a JSON object,
 * "state" and then the keys of its line as it would be written now.
 * Returns the length (no newline), 0 if it did not fit. */
size_t gw_conn_describe(struct gw_conn *c, char *buf, size_t len);

/* ---- between conn.c and http.c (the gateway's own use only) ---- */

/* conn.c: the connection's one line (per exchange on HTTP), once. */
void gw_conn_log_once(struct gw_conn *c, enum dc_event ev, enum dc_reason reason);
/* conn.c: decide c->facts (filled by the caller, pointing at c's own
 * storage) with the worker's snapshot. 0: admitted, go on; -1: refused,
 * c->v.reason says why and the caller answers. */
int gw_conn_decide(struct gw_conn *c);
/* conn.c: resolve the verdict's destination and connect to dst_port;
 * ends in ops->connected() or ops->refuse(). */
void gw_conn_resolve(struct gw_conn *c, uint16_t dst_port);
/* conn.c: after a reload, may the connection, as its verdict now stands,
 * keep this upstream address (NULL: none yet)? same_route: the new
 * admitting rule leads where the old one did (dc_same_route). 1 if so;
 * else 0, and the worker's detail_buf says why (policy_revoked's detail). */
int gw_conn_upstream_kept(struct gw_conn *c, const struct sockaddr *sa,
    int same_route);
/* conn.c: drop the upstream socket, its events and candidates. */
void gw_conn_release_upstream(struct gw_conn *c);
/* relay.c: cbev and ubev exist: relay bytes both ways from now on. */
void gw_conn_relay_bevs(struct gw_conn *c);
/* relay.c: cbev and ubev exist, with only the client's last bytes in
 * them: relay with splice instead. 0, or 1 (use gw_conn_relay_bevs). */
int gw_relay_splice_bevs(struct gw_conn *c);
/* relay.c: TLS passthrough is connected: the peeked bytes, then a relay
 * (splice where it can, bufferevents otherwise). */
void gw_relay_start(struct gw_conn *c);
/* relay.c: the bufferevent relay over cfd and ufd, peeked bytes first;
 * 0, or -1 when the connection was closed. */
int gw_relay_bevs_start(struct gw_conn *c);
/* relay.c: drop the splice relay's events and pipes (if any), and the
 * watch. */
void gw_relay_release(struct gw_conn *c);
/* relay.c: the ClientHello decided on is the first `first` bytes of the
 * client's bufferevent input (a CONNECT tunnel's); what follows it is
 * read by the relay until the server has answered, so that a second
 * ClientHello (after a HelloRetryRequest) is held to the same name. 0, or
 * -1 out of memory. Passthrough watches by itself (gw_relay_start). */
int gw_relay_watch(struct gw_conn *c, size_t first);
/* conn.c: keep the ALPN list and ECH flag of a ClientHello for the log. */
void gw_conn_take_alpn(struct gw_conn *c, const struct sni_hello *h);
/* conn.c: the client's bytes of a denied connection to the evidence file. */
void gw_conn_evidence(struct gw_conn *c, const void *bytes, size_t len);
void gw_conn_timer(struct gw_conn *c, uint64_t ms);
/* conn.c: whole milliseconds since t (CLOCK_MONOTONIC), rounded down. */
uint64_t gw_mono_ms_since(const struct timespec *t);
/* conn.c: the facts' listener kind for this connection's listener. */
enum dc_listener gw_conn_listener_kind(const struct gw_conn *c);

/* http.c: the client speaks HTTP; its first bytes are in c->peek. */
void gw_http_take_over(struct gw_conn *c);

#endif

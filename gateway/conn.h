/*
 * One client connection, end to end (DESIGN §3):
 *
 *   ACCEPTED -> PEEKING -> DECIDED -> RESOLVING -> CONNECTING -> RELAYING
 *
 * and from any of them to CLOSING. Every exit goes through gw_conn_close(),
 * which writes exactly one log line; a denied client is then given a short
 * linger so the alert is read before the socket goes away.
 */
#ifndef EGRESSD_GW_CONN_H
#define EGRESSD_GW_CONN_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include "policy/policy.h"
#include "sni/sni.h"

struct gw_worker;
struct gw_listener;
struct bufferevent;
struct dns_ticket;
struct dns_answer;
struct gw_http;

enum gw_conn_state {
	GW_CONN_ACCEPTED = 0,
	GW_CONN_PEEKING,
	GW_CONN_DECIDED,
	GW_CONN_RESOLVING,
	GW_CONN_CONNECTING,
	GW_CONN_RELAYING,
	GW_CONN_CLOSING,
};

/* How a connection ended: the log's event and reason. */
enum gw_event {
	GW_EV_ALLOW = 0,
	GW_EV_DENY,
	GW_EV_ERROR,
};

#define GW_ALPN_BUF 96

struct gw_conn {
	TAILQ_ENTRY(gw_conn) entry;
	struct gw_worker *w;
	const struct gw_listener *l;
	enum gw_conn_state state;
	char id[24];

	int cfd, ufd;
	struct sockaddr_storage src;
	struct sockaddr_storage orig_dst;       /* transparent: where the client
	                                         * aimed; family 0 otherwise */
	struct sockaddr_storage upstream;       /* AF_UNSPEC until connected */

	/* What the client sent before the decision; forwarded first. */
	uint8_t *peek;
	size_t peek_len, peek_cap;

	struct event *cev;              /* client readable: peek, linger */
	struct event *uev;              /* upstream writable: connect */
	struct event *timer;            /* the current state's timeout */
	struct bufferevent *cbev, *ubev;
	struct dns_ticket *ticket;

	/* Facts for the decision and the log. */
	struct pol_snapshot *snap;      /* holds a reference once decided */
	const struct pol_rule *rule;
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

	uint64_t bytes_in, bytes_out;
	uint64_t start_us;              /* wall clock, for the log */
	struct timespec start_mono, last_active;
	struct timespec attempt_start;  /* the current upstream connect */
	unsigned c_eof:1, u_eof:1, c_shut:1, u_shut:1, logged:1, freeing:1;
	unsigned would_deny:1;          /* report mode let a denial through */
	unsigned proxied:1;             /* the PROXY header has been read */
	unsigned dns_stale:1;           /* DNS failed; a stale answer served */
	uint32_t hello_bytes;           /* the ClientHello as decided on */
	uint32_t decide_us;             /* accept to policy decision */
	uint32_t dns_us;                /* waiting for a DNS lookup */
	struct timespec dns_start;
	uint32_t dns_stale_age;         /* seconds past its TTL */
	const char *deny_reason;        /* ...and this is what it would have been */
	const char *detail;
	/* HTTP and CONNECT (gateway/http.c): the exchange in progress; NULL
	 * for TLS passthrough, which keeps its connections small. */
	struct gw_http *http;
};

/* Take over an accepted socket (non-blocking). Closes it on failure. */
void gw_conn_accept(struct gw_listener *l, int fd, const struct sockaddr *sa,
    int salen);
/* End a connection: one log line, then release (or linger after a deny). */
void gw_conn_close(struct gw_conn *c, enum gw_event ev, const char *reason);

const char *gw_conn_state_str(enum gw_conn_state s);
const char *gw_event_str(enum gw_event e);

/* ---- between conn.c and http.c (the gateway's own use only) ---- */

/* conn.c: the connection's one line (per exchange on HTTP), once. */
void gw_conn_log_once(struct gw_conn *c, enum gw_event ev, const char *reason);
/* conn.c: resolve c->name and connect to c->dst_port; ends in
 * gw_http_connected() or gw_http_refuse() for HTTP connections. */
void gw_conn_resolve(struct gw_conn *c);
/* conn.c: drop the upstream socket, its events and candidates. */
void gw_conn_release_upstream(struct gw_conn *c);
/* conn.c: cbev and ubev exist: relay bytes both ways from now on. */
void gw_conn_relay_bevs(struct gw_conn *c);
/* conn.c: take the policy's verdict (rule, report mode, the "after"
 * hint's memory). 0: go on; -1: a denial for the caller to answer. */
struct pol_verdict;
int gw_conn_verdict(struct gw_conn *c, const struct pol_verdict *v);
/* conn.c: keep the ALPN list of a ClientHello for the log. */
void gw_conn_take_alpn(struct gw_conn *c, const struct sni_hello *h);
/* conn.c: the client's bytes of a denied connection to the evidence file. */
void gw_conn_evidence(struct gw_conn *c, const void *bytes, size_t len);
void gw_conn_timer(struct gw_conn *c, uint64_t ms);
/* conn.c: whole milliseconds since t (CLOCK_MONOTONIC), rounded down. */
uint64_t gw_mono_ms_since(const struct timespec *t);

/* http.c: the client speaks HTTP; its first bytes are in c->peek. */
void gw_http_take_over(struct gw_conn *c);
/* http.c: the upstream TCP connection is up (c->ufd). */
void gw_http_connected(struct gw_conn *c);
/* http.c: refuse in HTTP (403/502/504 with a one-line body) and close. */
void gw_http_refuse(struct gw_conn *c, enum gw_event ev, const char *reason);
/* http.c: the port to connect to for an allowed request. */
uint16_t gw_http_upstream_port(const struct gw_conn *c);
/* http.c: a timer fired in GW_CONN_RELAYING. */
void gw_http_timeout(struct gw_conn *c);
/* http.c: the HTTP keys of the connection's line. */
struct log_record;
void gw_http_fill_log(struct gw_conn *c, struct log_record *r);
void gw_http_free(struct gw_conn *c);
/* http.c: waiting for the ClientHello inside a CONNECT tunnel? */
int gw_http_in_tunnel(const struct gw_conn *c);

#endif

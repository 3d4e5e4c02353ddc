/*
 * bench/peers/upstream.c: the stand-in upstream of the side-by-side
 * benchmark (bench/run-peers.sh, issue 13). One thread, epoll.
 *
 *   upstream -a ADDR:PORT -t HELLO.bin -f ALLOW.txt [-r BYTES] [-L SECS]
 *
 * For each connection it reads the request and checks it before answering:
 *
 * - a TLS record (first byte 22): the whole ClientHello. It takes the
 *   server name out of it, rebuilds the hello the load generator must have
 *   sent for that name from the same template, and compares every byte: a
 *   proxy that altered, cut or merged anything fails here.
 * - an HTTP request head (anything else): its Host header's name.
 *
 * The name must be one its own copy of the allow-list admits (ALLOW.txt,
 * the patterns the proxies were given, with egressd's meaning): a denied
 * name that reaches the upstream is a failed cell, printed on stderr and
 * counted. A request that fails a check is closed without a reply.
 *
 * The answer depends on the first label of the name:
 *   bulk-dN / bulk-uN / bulk-bN   N MiB down, up or both ways (the bytes
 *                  sent up are checked too), then one status byte, 'K' or
 *                  'F', then close;
 *   idle-...       BYTES of reply, then hold the connection until the
 *                  client closes;
 *   anything else  BYTES of reply (after an HTTP response head for HTTP),
 *                  then close.
 * Replies are the pattern of common.h starting at the name's offset.
 *
 * On SIGTERM or SIGINT, or after -L seconds (default 900), it prints one
 * line of counters on stdout and exits: 0 when every check passed, 1 if not.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define HEAD_MAX 16384

enum ust {
	U_REQ,          /* reading the ClientHello or the HTTP head */
	U_REPLY,        /* writing the reply (and, in bulk, reading) */
	U_HOLD,         /* idle: reply sent, reading until EOF */
};

struct uconn {
	int fd;
	enum ust st;
	uint8_t *in;            /* the request, until it is checked */
	size_t inlen;
	char name[NAME_MAX_LEN + 1];
	uint32_t patoff;
	char head[160];         /* HTTP response head */
	size_t headlen, headdone;
	uint64_t out_total, out_done;
	int hold;               /* idle-: hold after the reply */
	/* bulk */
	int bulk;
	uint64_t up_total, up_got;
	int up_bad, status_sent;
};

static struct {
	struct hello_tmpl tmpl;
	struct allow allow;
	uint64_t reply;
	int ep;
	/* counters */
	uint64_t conns, tls_ok, http_ok, mismatch, denied, badreq, bulk_ok, bulk_bad, replies;
	uint64_t unfinished;
	unsigned printed;
} U;

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
complain(const char *what, const char *name)
{
	if (U.printed++ < 20)
		fprintf(stderr, "upstream: %s%s%s\n", what, name ? ": " : "", name ? name : "");
}

static void
uconn_close(struct uconn *c)
{
	close(c->fd);
	free(c->in);
	free(c);
}

static void
set_events(struct uconn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	epoll_ctl(U.ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* Bytes the client sent in a bulk-u/b transfer: the pattern from patoff. */
static void
bulk_take(struct uconn *c, const uint8_t *p, size_t n)
{
	while (n > 0 && !c->up_bad) {
		size_t k = n < PAT_SLICE ? n : PAT_SLICE;
		size_t off = (size_t)((c->patoff + c->up_got) % PAT_PERIOD);

		if (c->up_got + k > c->up_total || memcmp(p, pat_buf + off, k) != 0)
			c->up_bad = 1;
		c->up_got += k;
		p += k;
		n -= k;
	}
}

/* The name has passed every check: decide what to send from its first label. */
static void
start_reply(struct uconn *c, int http, const uint8_t *extra, size_t extralen)
{
	size_t n = strlen(c->name);

	c->patoff = name_offset(c->name, n);
	c->out_total = U.reply;
	if (strncmp(c->name, "bulk-", 5) == 0 && !http) {
		char dir = c->name[5];
		uint64_t mib = strtoull(c->name + 6, NULL, 10);

		c->bulk = 1;
		c->out_total = (dir == 'd' || dir == 'b') ? mib << 20 : 0;
		c->up_total = (dir == 'u' || dir == 'b') ? mib << 20 : 0;
		if (mib == 0 || mib > 65536 || (dir != 'd' && dir != 'u' && dir != 'b')) {
			complain("bad bulk name", c->name);
			U.badreq++;
			c->bulk = 0;
			c->out_total = 0;
			c->st = U_HOLD;
			shutdown(c->fd, SHUT_RDWR);
			return;
		}
		bulk_take(c, extra, extralen);
	} else if (strncmp(c->name, "idle-", 5) == 0) {
		c->hold = 1;
	}
	if (http) {
		c->headlen = (size_t)snprintf(c->head, sizeof(c->head),
		    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
		    "Content-Length: %llu\r\nConnection: close\r\n\r\n",
		    (unsigned long long)c->out_total);
	}
	free(c->in);
	c->in = NULL;
	c->st = U_REPLY;
	set_events(c, EPOLLIN | EPOLLOUT);
}

/* A whole ClientHello is in c->in: check it byte for byte. 1 ok, -1 refused. */
static int
check_hello(struct uconn *c, size_t reclen)
{
	struct hello_map m;
	uint8_t want[HELLO_MAX];
	size_t wlen;

	if (hello_locate(c->in, reclen, &m) != 0) {
		complain("not a ClientHello with a server_name", NULL);
		U.badreq++;
		return -1;
	}
	memcpy(c->name, c->in + m.name_off, m.name_len);
	c->name[m.name_len] = '\0';
	if (!name_ok(c->name, m.name_len)) {
		complain("server_name is not a lower-case host name", NULL);
		U.badreq++;
		return -1;
	}
	wlen = hello_build(&U.tmpl, c->name, m.name_len, want, sizeof(want));
	if (wlen != reclen || memcmp(want, c->in, reclen) != 0) {
		complain("ClientHello differs from the one sent", c->name);
		U.mismatch++;
		return -1;
	}
	if (!allow_has(&U.allow, c->name, m.name_len)) {
		complain("FAIL: a name the allow-list refuses reached the upstream", c->name);
		U.denied++;
		return -1;
	}
	U.tls_ok++;
	return 1;
}

/* An HTTP head ending in CRLF CRLF: its Host header names the request. */
static int
check_http(struct uconn *c)
{
	const char *p = (const char *)c->in, *end = p + c->inlen;
	size_t n;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (eol == NULL)
			break;
		if ((size_t)(eol - p) > 5 && strncasecmp(p, "host:", 5) == 0) {
			const char *v = p + 5;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			n = strcspn(v, ":\r\n");
			if (n == 0 || n > NAME_MAX_LEN)
				break;
			memcpy(c->name, v, n);
			c->name[n] = '\0';
			if (!name_ok(c->name, n))
				break;
			if (!allow_has(&U.allow, c->name, n)) {
				complain("FAIL: a name the allow-list refuses reached the upstream",
				    c->name);
				U.denied++;
				return -1;
			}
			U.http_ok++;
			return 1;
		}
		p = eol + 1;
	}
	complain("HTTP request without a usable Host", NULL);
	U.badreq++;
	return -1;
}

static void
on_request(struct uconn *c)
{
	for (;;) {
		ssize_t r;
		size_t need;

		if (c->inlen == HEAD_MAX) {
			complain("request larger than 16 KiB", NULL);
			U.badreq++;
			uconn_close(c);
			return;
		}
		r = read(c->fd, c->in + c->inlen, HEAD_MAX - c->inlen);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			/* A client (or a probe) that left before its request ended. */
			uconn_close(c);
			return;
		}
		c->inlen += (size_t)r;
		if (c->in[0] == 22) {
			if (c->inlen < 5)
				continue;
			need = 5 + ((size_t)c->in[3] << 8 | c->in[4]);
			if (need > HELLO_MAX) {
				complain("TLS record larger than 16 KiB", NULL);
				U.badreq++;
				uconn_close(c);
				return;
			}
			if (c->inlen < need)
				continue;
			if (check_hello(c, need) < 0) {
				uconn_close(c);
				return;
			}
			start_reply(c, 0, c->in + need, c->inlen - need);
			return;
		}
		if (c->inlen >= 4 && memmem(c->in, c->inlen, "\r\n\r\n", 4) != NULL) {
			if (check_http(c) < 0) {
				uconn_close(c);
				return;
			}
			start_reply(c, 1, NULL, 0);
			return;
		}
	}
}

/* Writes what it can; returns 1 when everything (and the status byte) went. */
static int
write_reply(struct uconn *c)
{
	while (c->headdone < c->headlen) {
		ssize_t w = write(c->fd, c->head + c->headdone, c->headlen - c->headdone);

		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->headdone += (size_t)w;
	}
	while (c->out_done < c->out_total) {
		size_t off = (size_t)((c->patoff + c->out_done) % PAT_PERIOD);
		uint64_t left = c->out_total - c->out_done;
		size_t k = left < PAT_SLICE ? (size_t)left : PAT_SLICE;
		ssize_t w = write(c->fd, pat_buf + off, k);

		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->out_done += (size_t)w;
	}
	if (c->bulk && !c->status_sent) {
		char s;

		if (c->up_got < c->up_total)
			return 0;       /* the status waits for every byte sent up */
		s = c->up_bad || c->up_got != c->up_total ? 'F' : 'K';
		if (write(c->fd, &s, 1) != 1)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->status_sent = 1;
		if (s == 'K')
			U.bulk_ok++;
		else {
			complain("bulk: the bytes sent up were not the pattern", c->name);
			U.bulk_bad++;
		}
	}
	return 1;
}

static void
on_reply(struct uconn *c, uint32_t ev)
{
	static uint8_t sink[262144];
	int rc;

	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			ssize_t r = read(c->fd, sink, sizeof(sink));

			if (r > 0) {
				if (c->bulk)
					bulk_take(c, sink, (size_t)r);
				else if (c->st == U_REPLY) {
					complain("bytes after the request", c->name);
					U.badreq++;
				}
				continue;
			}
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			/* EOF or error: the client is gone. */
			/* A client that left mid-reply: counted, not a failed check (the
			 * load generator drops what is in flight when a cell ends). */
			if (c->st == U_REPLY && !(c->bulk && c->status_sent))
				U.unfinished++;
			uconn_close(c);
			return;
		}
	}
	if (c->st != U_REPLY)
		return;
	rc = write_reply(c);
	if (rc < 0) {
		U.unfinished++;
		complain("write failed", c->name);
		uconn_close(c);
		return;
	}
	if (rc == 0) {
		/* Waiting for room, or (bulk) for the bytes still to come up. */
		set_events(c, c->out_done < c->out_total || c->headdone < c->headlen ?
		    EPOLLIN | EPOLLOUT : EPOLLIN);
		return;
	}
	U.replies++;
	if (c->hold) {
		c->st = U_HOLD;
		set_events(c, EPOLLIN);
		return;
	}
	uconn_close(c);
}

static void
on_accept(int lfd)
{
	int i;

	for (i = 0; i < 256; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct uconn *c;
		struct epoll_event e;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				complain("accept failed", strerror(errno));
			return;
		}
		c = calloc(1, sizeof(*c));
		if (c != NULL)
			c->in = malloc(HEAD_MAX);
		if (c == NULL || c->in == NULL) {
			complain("out of memory", NULL);
			free(c);
			close(fd);
			return;
		}
		c->fd = fd;
		c->st = U_REQ;
		U.conns++;
		e.events = EPOLLIN;
		e.data.ptr = c;
		if (epoll_ctl(U.ep, EPOLL_CTL_ADD, fd, &e) != 0)
			uconn_close(c);
	}
}

static int
listen_on(const char *spec)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, one = 1;

	if (colon == NULL || (size_t)(colon - spec) >= sizeof(host))
		return -1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4096) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
usage(void)
{
	fprintf(stderr, "usage: upstream -a ADDR:PORT -t HELLO.bin -f ALLOW.txt [-r BYTES] [-L SECS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *addr = NULL, *tpath = NULL, *apath = NULL;
	double life = 900;
	int opt, lfd, failed;
	uint64_t t_end;
	struct epoll_event e;
	struct sigaction sa;
	struct rlimit rl;

	U.reply = 1024;
	keep_heap();
	while ((opt = getopt(argc, argv, "a:t:f:r:L:")) != -1) {
		switch (opt) {
		case 'a': addr = optarg; break;
		case 't': tpath = optarg; break;
		case 'f': apath = optarg; break;
		case 'r': U.reply = strtoull(optarg, NULL, 10); break;
		case 'L': life = atof(optarg); break;
		default: usage();
		}
	}
	if (addr == NULL || tpath == NULL || apath == NULL || life <= 0 || life > 86400)
		usage();
	pat_init();
	if (hello_tmpl_load(tpath, &U.tmpl) != 0 || allow_load(apath, &U.allow) != 0)
		return 2;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	lfd = listen_on(addr);
	if (lfd < 0) {
		fprintf(stderr, "upstream: cannot listen on %s: %s\n", addr, strerror(errno));
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	U.ep = epoll_create1(EPOLL_CLOEXEC);
	e.events = EPOLLIN;
	e.data.ptr = NULL;
	epoll_ctl(U.ep, EPOLL_CTL_ADD, lfd, &e);
	printf("LISTENING %s allow=%zu+%zu reply=%llu\n", addr, U.allow.exact.count,
	    U.allow.wild.count, (unsigned long long)U.reply);
	fflush(stdout);

	t_end = now_ns() + (uint64_t)(life * 1e9);
	while (!stop && now_ns() < t_end) {
		struct epoll_event evs[256];
		int n = epoll_wait(U.ep, evs, 256, 200), i;

		for (i = 0; i < n; i++) {
			struct uconn *c = evs[i].data.ptr;

			if (c == NULL)
				on_accept(lfd);
			else if (c->st == U_REQ)
				on_request(c);
			else
				on_reply(c, evs[i].events);
		}
	}
	failed = U.mismatch || U.denied || U.badreq || U.bulk_bad;
	printf("UPSTREAM conns=%llu tls_ok=%llu http_ok=%llu replies=%llu mismatch=%llu "
	    "denied_reached=%llu bad_requests=%llu bulk_ok=%llu bulk_bad=%llu unfinished=%llu\n",
	    (unsigned long long)U.conns, (unsigned long long)U.tls_ok,
	    (unsigned long long)U.http_ok, (unsigned long long)U.replies,
	    (unsigned long long)U.mismatch, (unsigned long long)U.denied,
	    (unsigned long long)U.badreq, (unsigned long long)U.bulk_ok,
	    (unsigned long long)U.bulk_bad, (unsigned long long)U.unfinished);
	return failed ? 1 : 0;
}

/*
 * bench/peers/loadgen.c: the load generator of the side-by-side benchmark
 * (bench/run-peers.sh, issue 13). One thread, epoll, non-blocking sockets.
 *
 *   loadgen MODE -a ADDR:PORT -t HELLO.bin -n NAMES [options]
 *
 * Modes:
 *   rate     closed loop: -c connections at once for -T seconds. Each one
 *            connects, sends a ClientHello for a name from NAMES, reads the
 *            whole reply of -r bytes (every byte checked against the
 *            pattern of common.h for that name), and waits for the close.
 *            Reports connections/s and latency percentiles (connect to the
 *            last reply byte).
 *   latency  the same with one connection at a time.
 *   deny     rate, with names the proxy must refuse: counts TLS alerts,
 *            closes and resets received per second. Any other byte back is
 *            a failure (the upstream answered a refused name).
 *   connect  rate through an HTTP proxy: "CONNECT name:PORT" (-x PORT), a
 *            200 answer, then the ClientHello and the reply as in rate.
 *   http     rate of "GET http://name:PORT/" requests with Connection:
 *            close; the response must be 200 with Content-Length -r and the
 *            pattern as body.
 *   bulk     one connection: -m MiB down (-d d), up (-d u) or both ways
 *            (-d b), every byte checked, then the upstream's status byte.
 *            Reports MB/s (bytes both ways / time).
 *   idle     opens -k connections (each reads its reply, so bytes crossed
 *            the proxy both ways), prints "READY ok=N failed=F", holds them
 *            until SIGTERM or -T seconds, closes them and reports.
 *
 * Names: one a line. A "*" label is replaced per connection by "lN", N drawn
 * from -l LO-HI (default 0-63); in bulk and idle modes by "bulk-dN..." and
 * "idle-lN", so the upstream knows what to do (those modes need a "*"
 * line). -w first opens one connection for every distinct name (the DNS
 * caches of the proxies that resolve are then warm), not counted, for at
 * most -W seconds (default 60).
 *
 * Sources: -s A.B.C.X-Y binds each connection to the next of those
 * addresses with IP_BIND_ADDRESS_NO_PORT, so the port is chosen at
 * connect() for the whole 4-tuple and 127.x sources do not run out of
 * ports.
 *
 * -p PID: the CPU time (utime + stime, children included) of PID and every
 * process below it, read from /proc at the start and at the end of the
 * measured window, and reported as cpu_s.
 *
 * Helpers for the script (no load):
 *   loadgen freeport             prints a free TCP port on 127.0.0.1
 *   loadgen listening PORT SECS  waits until something listens on PORT
 *   loadgen mem PID              VmRSS and Pss of PID's process tree, KiB
 *
 * Every loop is bounded: by -T and a grace period, by the warm-up limit,
 * by counts. Output: one "RESULT key=value ..." line on stdout;
 * the first errors on stderr. Exit 0, or 1 when any connection failed,
 * 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
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

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define GRACE_NS 2000000000ull          /* in-flight connections after the window */
#define MAX_SAMPLES (4u << 20)
#define MAX_NAMES 1000000
#define MAX_CONNS 60000

enum mode { M_RATE, M_LATENCY, M_DENY, M_CONNECT, M_HTTP, M_BULK, M_IDLE };
static const char *mode_names[] = { "rate", "latency", "deny", "connect", "http", "bulk", "idle" };

enum cst {
	C_FREE,
	C_CONNECTING,
	C_SEND_CONNECT,         /* the CONNECT request */
	C_READ_CONNECT,         /* its answer */
	C_SEND,                 /* the ClientHello or the GET */
	C_READ_HEAD,            /* http: the response head */
	C_READ,                 /* the reply, until EOF */
	C_HOLD,                 /* idle: reply read, held */
};

struct conn {
	int fd;
	enum cst st;
	int warm;
	uint64_t t0, tlast;
	char name[NAME_MAX_LEN + 1];
	size_t nlen;
	uint8_t *out;
	size_t outlen, outoff;
	char head[1024];
	size_t headlen;
	uint64_t got, want;
	uint32_t patoff;
	uint64_t up_total, up_sent;
	int status;
	uint8_t first[8];
	size_t nfirst, nback;
};

static struct {
	enum mode mode;
	struct sockaddr_in dst;
	uint32_t src_base;
	unsigned src_lo, src_hi, src_next;
	struct hello_tmpl tmpl;
	char **names;
	size_t nnames;
	unsigned lab_lo, lab_hi;
	uint64_t reply, bulk_mib;
	char bulk_dir;
	unsigned xport;
	unsigned conc, idle_k;
	double secs, warm_secs;
	int warmup;
	int pid;
	uint64_t rng;
	int ep;
	struct conn *conns;
	unsigned nconns, inflight;
	/* the measured window */
	uint64_t w_start, w_end;
	int in_window;
	uint64_t ok, errors, alerts, closed, resets;
	uint64_t warm_ok, warm_errors;
	uint32_t *lat;          /* latencies, 0.1 us units */
	size_t nlat;
	uint64_t last_ns;       /* bulk: the duration of the transfer */
	uint64_t bytes;         /* bulk: bytes checked both ways */
	unsigned printed;
} G;

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t
rnd(void)
{
	G.rng ^= G.rng << 13;
	G.rng ^= G.rng >> 7;
	G.rng ^= G.rng << 17;
	return G.rng;
}

/* ---- /proc: CPU and memory of a process tree ------------------------------ */

struct pinfo {
	int pid, ppid;
	unsigned long long ticks;
};

/* Every process in /proc with its parent and utime+stime+cutime+cstime. */
static size_t
proc_scan(struct pinfo *out, size_t cap)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < cap) {
		char path[300], buf[1024], *p;
		unsigned long long ut, st, cut, cst;
		int ppid;
		FILE *f;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		p = fgets(buf, sizeof(buf), f);
		fclose(f);
		if (p == NULL || (p = strrchr(buf, ')')) == NULL)
			continue;
		/* after "comm)": state ppid pgrp session tty tpgid flags minflt
		 * cminflt majflt cmajflt utime stime cutime cstime */
		if (sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
		    &ppid, &ut, &st, &cut, &cst) != 5)
			continue;
		out[n].pid = atoi(de->d_name);
		out[n].ppid = ppid;
		out[n].ticks = ut + st + cut + cst;
		n++;
	}
	closedir(d);
	return n;
}

/* Marks the processes of ROOT's tree in IN (tree[i] = 1); returns how many. */
static size_t
proc_tree(const struct pinfo *pi, size_t n, int root, char *in)
{
	size_t i, count = 0;
	int grew = 1, rounds = 0;

	memset(in, 0, n);
	for (i = 0; i < n; i++)
		if (pi[i].pid == root) {
			in[i] = 1;
			count++;
		}
	while (grew && rounds++ < 64) {
		size_t j;

		grew = 0;
		for (i = 0; i < n; i++) {
			if (in[i])
				continue;
			for (j = 0; j < n; j++)
				if (in[j] && pi[j].pid == pi[i].ppid) {
					in[i] = 1;
					count++;
					grew = 1;
					break;
				}
		}
	}
	return count;
}

#define PROC_CAP 8192
static struct pinfo proc_buf[PROC_CAP];
static char proc_in[PROC_CAP];

static double
tree_cpu(int root)
{
	size_t n = proc_scan(proc_buf, PROC_CAP), i;
	unsigned long long t = 0;

	proc_tree(proc_buf, n, root, proc_in);
	for (i = 0; i < n; i++)
		if (proc_in[i])
			t += proc_buf[i].ticks;
	return (double)t / (double)sysconf(_SC_CLK_TCK);
}

static unsigned long
status_kb(int pid, const char *file, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	unsigned long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0) {
			v = strtoul(line + klen, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static int
cmd_mem(int root)
{
	size_t n = proc_scan(proc_buf, PROC_CAP), i, count;
	unsigned long rss = 0, pss = 0;

	count = proc_tree(proc_buf, n, root, proc_in);
	for (i = 0; i < n; i++)
		if (proc_in[i]) {
			rss += status_kb(proc_buf[i].pid, "status", "VmRSS:");
			pss += status_kb(proc_buf[i].pid, "smaps_rollup", "Pss:");
		}
	printf("rss_kb=%lu pss_kb=%lu procs=%zu\n", rss, pss, count);
	return count > 0 ? 0 : 1;
}

static int
cmd_freeport(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		return 1;
	printf("%u\n", ntohs(sa.sin_port));
	close(fd);
	return 0;
}

/* Waits (at most SECS) for a LISTEN socket on PORT in /proc/net/tcp. */
static int
cmd_listening(unsigned port, double secs)
{
	uint64_t end = now_ns() + (uint64_t)(secs * 1e9);

	do {
		FILE *f = fopen("/proc/net/tcp", "r");
		char line[512];

		if (f != NULL) {
			while (fgets(line, sizeof(line), f) != NULL) {
				unsigned lport, st;

				if (sscanf(line, " %*u: %*x:%x %*x:%*x %x", &lport, &st) == 2 &&
				    lport == port && st == 0x0a) {
					fclose(f);
					return 0;
				}
			}
			fclose(f);
		}
		usleep(50000);
	} while (now_ns() < end);
	return 1;
}

/* ---- names ------------------------------------------------------------------ */

static int
names_load(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t cap = 0;

	if (f == NULL) {
		fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL && G.nnames < MAX_NAMES) {
		size_t n = strcspn(line, "\r\n");

		line[n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (G.nnames == cap) {
			cap = cap ? cap * 2 : 256;
			G.names = realloc(G.names, cap * sizeof(*G.names));
			if (G.names == NULL)
				return -1;
		}
		G.names[G.nnames++] = strdup(line);
	}
	fclose(f);
	if (G.nnames == 0) {
		fprintf(stderr, "loadgen: %s: no names\n", path);
		return -1;
	}
	return 0;
}

/* Line LINE with its "*" replaced by the label for LAB. 0 when unusable. */
static size_t
name_make(const char *line, unsigned lab, char *out, size_t cap)
{
	const char *star = strchr(line, '*');
	char label[48];
	int n;

	if (star == NULL) {
		if (G.mode == M_BULK || G.mode == M_IDLE)
			return 0;
		n = snprintf(out, cap, "%s", line);
	} else {
		if (G.mode == M_BULK)
			snprintf(label, sizeof(label), "bulk-%c%llu", G.bulk_dir,
			    (unsigned long long)G.bulk_mib);
		else if (G.mode == M_IDLE)
			snprintf(label, sizeof(label), "idle-l%u", lab);
		else
			snprintf(label, sizeof(label), "l%u", lab);
		n = snprintf(out, cap, "%.*s%s%s", (int)(star - line), line, label, star + 1);
	}
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* ---- connections ---------------------------------------------------------------- */

static void
fail(struct conn *c, const char *why)
{
	if (G.printed++ < 10)
		fprintf(stderr, "loadgen: %s: %s\n", c->name, why);
}

static void
conn_free(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	c->out = NULL;
	c->fd = -1;
	c->st = C_FREE;
	G.inflight--;
}

static void
record(struct conn *c, int ok, uint64_t t)
{
	if (c->warm) {
		if (ok)
			G.warm_ok++;
		else
			G.warm_errors++;
		return;
	}
	if (!G.in_window || t > G.w_end || c->t0 < G.w_start)
		return;
	if (!ok) {
		G.errors++;
		return;
	}
	G.ok++;
	G.last_ns = t - c->t0;
	if (G.nlat < MAX_SAMPLES) {
		uint64_t d = (t - c->t0) / 100;     /* 0.1 us units: up to 429 s */

		G.lat[G.nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	}
}

/* The connection is over (EOF, reset or error): judge it and free it. */
static void
conn_end(struct conn *c, int reset, const char *err)
{
	uint64_t now = now_ns();
	int ok = 0;

	if (err != NULL) {
		fail(c, err);
	} else if (G.mode == M_DENY) {
		static const uint8_t alert[5] = { 0x15, 0x03 };

		if (c->nback == 0) {
			ok = 1;
			if (!c->warm && G.in_window && now <= G.w_end) {
				if (reset)
					G.resets++;
				else
					G.closed++;
			}
		} else if (c->nback == 7 && memcmp(c->first, alert, 2) == 0 &&
		    c->first[3] == 0 && c->first[4] == 2 && c->first[5] == 2) {
			ok = 1;
			if (!c->warm && G.in_window && now <= G.w_end)
				G.alerts++;
		} else {
			fail(c, "FAIL: a refused name got bytes that are not a TLS alert");
		}
		c->tlast = now;
	} else if (c->got != c->want) {
		char why[96];

		snprintf(why, sizeof(why), "%s after %llu of %llu reply bytes",
		    reset ? "reset" : "closed", (unsigned long long)c->got,
		    (unsigned long long)c->want);
		fail(c, why);
	} else if (G.mode == M_BULK && c->status != 'K') {
		fail(c, c->status == 'F' ? "the upstream saw wrong bytes" :
		    "no status byte from the upstream");
	} else {
		ok = 1;
	}
	record(c, ok, c->tlast);
	conn_free(c);
}

static void
want_events(struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* Sets c->out to the ClientHello, the CONNECT or the GET for c->name. */
static int
build_request(struct conn *c, int hello)
{
	size_t cap = HELLO_MAX;
	int n;

	free(c->out);
	c->out = malloc(cap);
	if (c->out == NULL)
		return -1;
	c->outoff = 0;
	if (hello) {
		c->outlen = hello_build(&G.tmpl, c->name, c->nlen, c->out, cap);
		return c->outlen ? 0 : -1;
	}
	if (G.mode == M_CONNECT)
		n = snprintf((char *)c->out, cap, "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n\r\n",
		    c->name, G.xport, c->name, G.xport);
	else
		n = snprintf((char *)c->out, cap,
		    "GET http://%s:%u/ HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: egressd-bench\r\n"
		    "Accept: */*\r\nConnection: close\r\n\r\n",
		    c->name, G.xport, c->name, G.xport);
	c->outlen = n > 0 ? (size_t)n : 0;
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int
conn_start(const char *name, size_t nlen, int warm)
{
	struct conn *c = NULL;
	struct sockaddr_in src = { .sin_family = AF_INET };
	struct epoll_event e;
	unsigned i;
	int one = 1;

	for (i = 0; i < G.nconns; i++)
		if (G.conns[i].st == C_FREE) {
			c = &G.conns[i];
			break;
		}
	if (c == NULL)
		return -1;
	memset(c, 0, sizeof(*c));
	G.inflight++;
	memcpy(c->name, name, nlen);
	c->name[nlen] = '\0';
	c->nlen = nlen;
	c->warm = warm;
	c->patoff = name_offset(name, nlen);
	c->want = G.reply;
	if (G.mode == M_BULK) {
		c->want = (G.bulk_dir == 'd' || G.bulk_dir == 'b') ? G.bulk_mib << 20 : 0;
		c->up_total = (G.bulk_dir == 'u' || G.bulk_dir == 'b') ? G.bulk_mib << 20 : 0;
	}
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->st = C_CONNECTING;
	c->t0 = now_ns();
	if (c->fd < 0) {
		conn_end(c, 0, strerror(errno));
		return 0;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (G.src_base != 0) {
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		src.sin_addr.s_addr = htonl(G.src_base + G.src_lo + G.src_next);
		G.src_next = (G.src_next + 1) % (G.src_hi - G.src_lo + 1);
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
			conn_end(c, 0, strerror(errno));
			return 0;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&G.dst, sizeof(G.dst)) != 0 &&
	    errno != EINPROGRESS) {
		conn_end(c, 0, strerror(errno));
		return 0;
	}
	e.events = EPOLLOUT;
	e.data.ptr = c;
	if (epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &e) != 0) {
		conn_end(c, 0, strerror(errno));
		return 0;
	}
	return 0;
}

/* Checks reply bytes against the pattern; the bulk status byte comes last. */
static int
take_reply(struct conn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (c->got == c->want) {
			if (G.mode == M_BULK && c->status == 0 && n == 1) {
				c->status = p[0];
				c->tlast = now_ns();
				return 0;
			}
			return -1;
		}
		{
			uint64_t left = c->want - c->got;
			size_t k = n < PAT_SLICE ? n : PAT_SLICE;
			size_t off = (size_t)((c->patoff + c->got) % PAT_PERIOD);

			if (k > left)
				k = (size_t)left;
			if (memcmp(p, pat_buf + off, k) != 0)
				return -2;
			c->got += k;
			G.bytes += G.mode == M_BULK ? k : 0;
			p += k;
			n -= k;
		}
		if (c->got == c->want && G.mode != M_BULK)
			c->tlast = now_ns();
	}
	return 0;
}

/* A response head in c->head: its status must be 200 (and the length R). */
static int
head_ok(struct conn *c)
{
	const char *h = c->head, *p;

	if (strncmp(h, "HTTP/1.", 7) != 0 || strncmp(h + 8, " 200", 4) != 0)
		return 0;
	if (G.mode != M_HTTP)
		return 1;
	for (p = h; (p = strchr(p, '\n')) != NULL; p++)
		if (strncasecmp(p + 1, "content-length:", 15) == 0)
			return strtoull(p + 16, NULL, 10) == c->want;
	return 0;
}

/*
 * rdhup: epoll said the peer's FIN had arrived. A read that then returns
 * less than asked for took everything before it, so the EOF is known
 * without the read that would return 0 (deny mode: a proxy that answers
 * with an alert costs the load core no more reads than one that closes).
 */
/*
 * A read that returned no bytes (r <= 0, not EAGAIN): the connection ends,
 * well or not, by its state.
 */
static void
read_ended(struct conn *c, ssize_t r)
{
	if (c->st == C_HOLD) {
		/* held connections are not in flight: no conn_free() */
		fail(c, "a held connection was closed");
		G.errors++;
		close(c->fd);
		c->fd = -1;
		c->st = C_FREE;
	} else if (r < 0 && errno == ECONNRESET) {
		conn_end(c, 1, NULL);
	} else if (r < 0) {
		conn_end(c, 0, strerror(errno));
	} else if (c->st == C_READ) {
		conn_end(c, 0, NULL);
	} else {
		conn_end(c, 0, "closed before the response head");
	}
}

/*
 * Bytes of a proxy's answer head (CONNECT's or a GET's): 1 when the head is
 * not all here yet, -1 when the connection ended or went back to sending,
 * 0 when *p and *n are what follows the head (the reply).
 */
static int
take_head(struct conn *c, const uint8_t **p, size_t *n)
{
	size_t room = sizeof(c->head) - 1 - c->headlen, k = *n < room ? *n : room;
	char *end;

	memcpy(c->head + c->headlen, *p, k);
	c->headlen += k;
	c->head[c->headlen] = '\0';
	end = strstr(c->head, "\r\n\r\n");
	if (end == NULL) {
		if (c->headlen < sizeof(c->head) - 1)
			return 1;
		conn_end(c, 0, "response head over 1 KiB");
		return -1;
	}
	if (!head_ok(c)) {
		char why[96];
		int len = (int)strcspn(c->head, "\r\n");

		/* The status line only. */
		snprintf(why, sizeof(why), "answer: %.*s", len < 60 ? len : 60,
		    c->head);
		conn_end(c, 0, why);
		return -1;
	}
	/* What came after the head is reply. */
	k = (size_t)(end + 4 - c->head) - (c->headlen - k);
	*p += k;
	*n -= k;
	if (c->st == C_READ_CONNECT) {
		if (*n != 0) {
			conn_end(c, 0, "tunnel bytes before the ClientHello");
			return -1;
		}
		if (build_request(c, 1) != 0) {
			conn_end(c, 0, "cannot build the ClientHello");
			return -1;
		}
		c->st = C_SEND;
		want_events(c, EPOLLOUT);
		return -1;
	}
	c->st = C_READ;
	return 0;
}

static void
on_readable(struct conn *c, int rdhup)
{
	static uint8_t buf[262144];
	int i;

	for (i = 0; i < 64; i++) {
		ssize_t r = read(c->fd, buf, sizeof(buf));
		const uint8_t *p = buf;
		size_t n;

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			read_ended(c, r);
			return;
		}
		n = (size_t)r;
		if (c->st == C_READ_CONNECT || c->st == C_READ_HEAD) {
			int h = take_head(c, &p, &n);

			if (h > 0)
				continue;
			if (h < 0)
				return;
		}
		if (c->st == C_HOLD) {
			fail(c, "bytes on a held connection");
			continue;
		}
		if (G.mode == M_DENY) {
			size_t k = n;

			if (c->nfirst + k > sizeof(c->first))
				k = sizeof(c->first) - c->nfirst;
			memcpy(c->first + c->nfirst, p, k);
			c->nfirst += k;
			c->nback += n;
			if (rdhup && (size_t)r < sizeof(buf)) {
				conn_end(c, 0, NULL);
				return;
			}
			continue;
		}
		switch (take_reply(c, p, n)) {
		case -1:
			conn_end(c, 0, "more bytes than the reply");
			return;
		case -2:
			conn_end(c, 0, "FAIL: reply bytes differ from the pattern");
			return;
		}
		if (G.mode == M_IDLE && c->got == c->want) {
			c->st = C_HOLD;
			if (c->warm)
				G.warm_ok++;
			else
				G.ok++;
			G.inflight--;   /* held, no longer in flight */
			return;
		}
	}
}

static void
on_writable(struct conn *c)
{
	if (c->st == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			conn_end(c, 0, strerror(err));
			return;
		}
		if (build_request(c, G.mode != M_CONNECT && G.mode != M_HTTP) != 0) {
			conn_end(c, 0, "cannot build the request");
			return;
		}
		c->st = G.mode == M_CONNECT ? C_SEND_CONNECT : C_SEND;
	}
	while (c->outoff < c->outlen) {
		ssize_t w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);

		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_end(c, 0, strerror(errno));
			return;
		}
		c->outoff += (size_t)w;
	}
	if (c->st == C_SEND_CONNECT) {
		c->st = C_READ_CONNECT;
		want_events(c, EPOLLIN);
		return;
	}
	if (c->st == C_SEND) {
		free(c->out);
		c->out = NULL;
		c->st = G.mode == M_HTTP ? C_READ_HEAD : C_READ;
	}
	/* bulk up: the pattern, as long as the socket takes it */
	while (c->up_sent < c->up_total) {
		size_t off = (size_t)((c->patoff + c->up_sent) % PAT_PERIOD);
		uint64_t left = c->up_total - c->up_sent;
		size_t k = left < PAT_SLICE ? (size_t)left : PAT_SLICE;
		ssize_t w = write(c->fd, pat_buf + off, k);

		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				conn_end(c, 0, strerror(errno));
				return;
			}
			want_events(c, EPOLLIN | EPOLLOUT);
			return;
		}
		c->up_sent += (size_t)w;
		G.bytes += (size_t)w;
	}
	want_events(c, G.mode == M_DENY ? EPOLLIN | EPOLLRDHUP : EPOLLIN);
}

static void
dispatch(struct epoll_event *e)
{
	struct conn *c = e->data.ptr;

	if (c->st == C_FREE)
		return;
	if (c->st == C_CONNECTING || c->st == C_SEND || c->st == C_SEND_CONNECT) {
		if (e->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_writable(c);
		return;
	}
	if ((e->events & EPOLLOUT) && c->up_sent < c->up_total) {
		on_writable(c);
		if (c->st == C_FREE)
			return;
	}
	if (e->events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
		on_readable(c, (e->events & EPOLLRDHUP) != 0);
}

static void
poll_once(int ms)
{
	struct epoll_event evs[512];
	int n = epoll_wait(G.ep, evs, 512, ms), i;

	for (i = 0; i < n; i++)
		dispatch(&evs[i]);
}

/* ---- the runs ------------------------------------------------------------------ */

static void
start_random(void)
{
	const char *line = G.names[rnd() % G.nnames];

	/* bulk and idle names carry their instructions in the "*" label */
	if (G.mode == M_BULK || G.mode == M_IDLE) {
		size_t i, k = 0, pick;

		for (i = 0; i < G.nnames; i++)
			k += strchr(G.names[i], '*') != NULL;
		if (k == 0) {
			fprintf(stderr, "loadgen: %s mode needs a \"*\" line in the names\n",
			    mode_names[G.mode]);
			exit(2);
		}
		pick = (size_t)(rnd() % k);
		for (i = 0; i < G.nnames; i++)
			if (strchr(G.names[i], '*') != NULL && pick-- == 0) {
				line = G.names[i];
				break;
			}
	}
	unsigned lab = G.lab_lo + (unsigned)(rnd() % (G.lab_hi - G.lab_lo + 1));
	char name[NAME_MAX_LEN + 1];
	size_t n = name_make(line, lab, name, sizeof(name));

	if (n == 0) {
		fprintf(stderr, "loadgen: unusable name line: %s\n", line);
		exit(2);
	}
	conn_start(name, n, 0);
}

/* One connection for every distinct name, C at a time; not counted. */
static void
warm_up(void)
{
	uint64_t end = now_ns() + (uint64_t)(G.warm_secs * 1e9);
	size_t li = 0;
	unsigned lab = G.lab_lo;

	while ((li < G.nnames || G.inflight > 0) && now_ns() < end && !stop) {
		while (G.inflight < G.conc && li < G.nnames) {
			char name[NAME_MAX_LEN + 1];
			size_t n = name_make(G.names[li], lab, name, sizeof(name));

			if (strchr(G.names[li], '*') == NULL || lab == G.lab_hi) {
				li++;
				lab = G.lab_lo;
			} else {
				lab++;
			}
			if (n > 0)
				conn_start(name, n, 1);
		}
		poll_once(100);
	}
}

static void
drain(uint64_t until)
{
	unsigned i;

	while (G.inflight > 0 && now_ns() < until)
		poll_once(50);
	for (i = 0; i < G.nconns; i++)
		if (G.conns[i].st != C_FREE && G.conns[i].st != C_HOLD)
			conn_free(&G.conns[i]);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double q)
{
	size_t i;

	if (G.nlat == 0)
		return 0;
	i = (size_t)(q * (double)(G.nlat - 1) + 0.5);
	return G.lat[i] / 10.0;
}

static void
report(double cpu)
{
	double secs = (double)(G.w_end - G.w_start) / 1e9;

	qsort(G.lat, G.nlat, sizeof(*G.lat), cmp_u32);
	printf("RESULT mode=%s ok=%llu errors=%llu secs=%.3f rate=%.1f "
	    "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
	    "cpu_s=%.3f cpu_us_per_conn=%.2f alerts=%llu closed=%llu resets=%llu "
	    "mbps=%.1f warm_ok=%llu warm_errors=%llu conc=%u\n",
	    mode_names[G.mode], (unsigned long long)G.ok, (unsigned long long)G.errors, secs,
	    secs > 0 ? (double)G.ok / secs : 0, pct(0.5), pct(0.9), pct(0.99), pct(0.999),
	    pct(1.0), cpu, G.ok ? cpu * 1e6 / (double)G.ok : 0,
	    (unsigned long long)G.alerts, (unsigned long long)G.closed,
	    (unsigned long long)G.resets, secs > 0 ? (double)G.bytes / secs / 1e6 : 0,
	    (unsigned long long)G.warm_ok, (unsigned long long)G.warm_errors, G.conc);
	fflush(stdout);
}

static double
cpu_now(void)
{
	return G.pid > 0 ? tree_cpu(G.pid) : 0;
}

static int
run_closed_loop(void)
{
	double cpu0, cpu1;

	if (G.warmup)
		warm_up();
	G.in_window = 1;
	cpu0 = cpu_now();
	G.w_start = now_ns();
	G.w_end = G.w_start + (uint64_t)(G.secs * 1e9);
	while (!stop && now_ns() < G.w_end) {
		uint64_t left;
		unsigned k;

		for (k = 0; k < G.conc && G.inflight < G.conc; k++)
			start_random();
		left = (G.w_end - now_ns()) / 1000000;
		poll_once(left < 100 ? (int)left + 1 : 100);
	}
	if (now_ns() < G.w_end)
		G.w_end = now_ns();
	cpu1 = cpu_now();
	drain(G.w_end + GRACE_NS);
	report(cpu1 - cpu0);
	return G.errors || G.warm_errors ? 1 : 0;
}

static int
run_bulk(void)
{
	double cpu0, cpu1;
	uint64_t limit;

	if (G.warmup)
		warm_up();
	G.in_window = 1;
	cpu0 = cpu_now();
	G.w_start = now_ns();
	G.w_end = G.w_start + (uint64_t)(G.secs * 1e9);    /* a limit, not a window */
	start_random();
	limit = G.w_end;
	while (!stop && G.inflight > 0 && now_ns() < limit)
		poll_once(100);
	if (G.inflight > 0) {
		fprintf(stderr, "loadgen: bulk: not done after %.0f s\n", G.secs);
		G.errors++;
	}
	G.w_end = G.ok ? G.w_start + G.last_ns : now_ns();
	cpu1 = cpu_now();
	drain(now_ns());
	report(cpu1 - cpu0);
	return G.errors || G.ok != 1 ? 1 : 0;
}

static int
run_idle(void)
{
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(G.secs * 1e9);
	unsigned launched = 0, i;

	G.in_window = 1;
	G.w_start = t0;
	G.w_end = UINT64_MAX;
	while (!stop && now_ns() < end && (launched < G.idle_k || G.inflight > 0)) {
		while (G.inflight < G.conc && launched < G.idle_k) {
			start_random();
			launched++;
		}
		poll_once(100);
	}
	printf("READY ok=%llu failed=%llu secs=%.2f\n", (unsigned long long)G.ok,
	    (unsigned long long)G.errors, (double)(now_ns() - t0) / 1e9);
	fflush(stdout);
	while (!stop && now_ns() < end)
		poll_once(200);
	G.w_end = now_ns();
	for (i = 0; i < G.nconns; i++)
		if (G.conns[i].st == C_HOLD) {
			close(G.conns[i].fd);
			G.conns[i].fd = -1;
			G.conns[i].st = C_FREE;
		} else if (G.conns[i].st != C_FREE) {
			conn_free(&G.conns[i]);
		}
	G.nlat = 0;
	report(0);
	return G.errors || G.ok < G.idle_k ? 1 : 0;
}

/* ---- arguments ------------------------------------------------------------------ */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen rate|latency|deny|connect|http|bulk|idle -a ADDR:PORT -t HELLO.bin -n NAMES\n"
	    "         [-s A.B.C.X-Y] [-l LO-HI] [-r BYTES] [-c CONC] [-T SECS] [-w] [-W SECS] [-p PID]\n"
	    "         [-x PORT] [-m MIB] [-d d|u|b] [-k COUNT] [-S SEED]\n"
	    "       loadgen freeport | listening PORT SECS | mem PID\n");
	exit(2);
}

static int
parse_addr(const char *spec, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(spec, ':');

	if (colon == NULL || (size_t)(colon - spec) >= sizeof(host))
		return -1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 && sa->sin_port != 0 ? 0 : -1;
}

/* "127.0.1.1-254": the first three octets, and the range of the last. */
static int
parse_sources(const char *spec)
{
	unsigned a, b, c, lo, hi;

	if (sscanf(spec, "%u.%u.%u.%u-%u", &a, &b, &c, &lo, &hi) != 5 || a != 127 ||
	    b > 255 || c > 255 || lo > hi || hi > 255)
		return -1;
	G.src_base = a << 24 | b << 16 | c << 8;
	G.src_lo = lo;
	G.src_hi = hi;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *addr = NULL, *tpath = NULL, *npath = NULL;
	struct sigaction sa;
	struct rlimit rl;
	int opt, i;

	keep_heap();
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "freeport") == 0)
		return cmd_freeport();
	if (strcmp(argv[1], "listening") == 0 && argc == 4)
		return cmd_listening((unsigned)atoi(argv[2]), atof(argv[3]));
	if (strcmp(argv[1], "mem") == 0 && argc == 3)
		return cmd_mem(atoi(argv[2]));
	for (i = 0; i < (int)(sizeof(mode_names) / sizeof(*mode_names)); i++)
		if (strcmp(argv[1], mode_names[i]) == 0)
			break;
	if (i == (int)(sizeof(mode_names) / sizeof(*mode_names)))
		usage();
	G.mode = (enum mode)i;
	G.reply = 1024;
	G.conc = 50;
	G.secs = 5;
	G.warm_secs = 60;
	G.lab_lo = 0;
	G.lab_hi = 63;
	G.bulk_mib = 1024;
	G.bulk_dir = 'd';
	G.idle_k = 1000;
	G.rng = 0x9e3779b97f4a7c15ull;
	optind = 2;
	while ((opt = getopt(argc, argv, "a:t:n:s:l:r:c:T:wW:p:x:m:d:k:S:")) != -1) {
		switch (opt) {
		case 'a':
			if (parse_addr(optarg, &G.dst) != 0)
				usage();
			addr = optarg;
			break;
		case 't': tpath = optarg; break;
		case 'n': npath = optarg; break;
		case 's':
			if (parse_sources(optarg) != 0)
				usage();
			break;
		case 'l':
			if (sscanf(optarg, "%u-%u", &G.lab_lo, &G.lab_hi) != 2 || G.lab_lo > G.lab_hi)
				usage();
			break;
		case 'r': G.reply = strtoull(optarg, NULL, 10); break;
		case 'c': G.conc = (unsigned)atoi(optarg); break;
		case 'T': G.secs = atof(optarg); break;
		case 'w': G.warmup = 1; break;
		case 'W': G.warm_secs = atof(optarg); break;
		case 'p': G.pid = atoi(optarg); break;
		case 'x': G.xport = (unsigned)atoi(optarg); break;
		case 'm': G.bulk_mib = strtoull(optarg, NULL, 10); break;
		case 'd': G.bulk_dir = optarg[0]; break;
		case 'k': G.idle_k = (unsigned)atoi(optarg); break;
		case 'S': G.rng = strtoull(optarg, NULL, 10) * 0x9e3779b97f4a7c15ull + 1; break;
		default: usage();
		}
	}
	if (addr == NULL || tpath == NULL || npath == NULL || G.secs <= 0 || G.secs > 600 ||
	    G.warm_secs <= 0 || G.warm_secs > 600 ||
	    G.conc == 0 || G.conc > MAX_CONNS || G.idle_k == 0 || G.idle_k > MAX_CONNS ||
	    G.bulk_mib == 0 || G.bulk_mib > 65536 || G.reply > (1ull << 30) ||
	    !strchr("dub", G.bulk_dir) || ((G.mode == M_CONNECT || G.mode == M_HTTP) && G.xport == 0))
		usage();
	if (G.mode == M_LATENCY || G.mode == M_BULK)
		G.conc = 1;
	pat_init();
	if (hello_tmpl_load(tpath, &G.tmpl) != 0 || names_load(npath) != 0)
		return 2;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	G.nconns = G.mode == M_IDLE ? G.idle_k + G.conc : G.conc;
	G.conns = calloc(G.nconns, sizeof(*G.conns));
	G.lat = malloc(MAX_SAMPLES * sizeof(*G.lat));
	if (G.conns == NULL || G.lat == NULL)
		return 2;
	for (i = 0; i < (int)G.nconns; i++)
		G.conns[i].fd = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	G.ep = epoll_create1(EPOLL_CLOEXEC);
	if (G.mode == M_BULK)
		return run_bulk();
	if (G.mode == M_IDLE)
		return run_idle();
	return run_closed_loop();
}

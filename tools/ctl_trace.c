/*
 * egressctl trace: follow a URL's redirect chain and give the policy's
 * verdict for every hop (docs/egressctl-trace.md).
 *
 * The usual way a move to allow-list-only egress breaks is a redirect: a
 * GET to an allowed host answers 301 to another host, then 302 to a CDN,
 * and each hop needs its own entry. trace sends one HTTP/1.1 request per
 * hop itself (directly, or through the gateway's connect/http listener
 * with --via), reads the response head with the project's own strict
 * parser, resolves Location with the daemon's own http_location_resolve()
 * (the host and port it reads are the ones the gateway's redirect lines
 * decide on), and decides every hop with dc_decide(), the daemon's one
 * decision, over its own policy loaded from its own configuration exactly
 * as explain loads it: the facts a listener builds for the request trace
 * sends (a ClientHello's name directly, a CONNECT through --via for
 * https; a Host, or an absolute-form URL through --via, for http).
 *
 * It is a one-shot command line tool: blocking in spirit, but every socket
 * is non-blocking and waited on with poll() against one deadline per hop,
 * so that no peer can hold it longer than --timeout.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "decide/decide.h"
#include "dns/dns.h"
#include "gateway/gwconfig.h"
#include "http/http.h"
#include "policy/policy.h"
#include "sni/sni.h"
#include "tools/ctl.h"

#define URL_MAX         8192    /* a longer URL (or Location) is refused */
#define HOPS_MAX        100     /* --max-hops at most this */
#define RESOLVE_MAX     16      /* --resolve options */
#define BODY_LINE_MAX   256     /* the gateway's one-line reason */
#define PHRASE_MAX      64

/* A URL trace can request: http or https, a host, a port, a target. */
struct url {
	int https;
	char host[HTTP_HOST_MAX + 1];   /* a normalised name, or an IP literal
	                                 * (IPv6 without brackets) */
	int host_is_ip;
	unsigned port;
	char target[URL_MAX];           /* "/path?query", percent-encoded */
};

struct override {                       /* --resolve HOST:PORT:ADDR */
	char host[HTTP_HOST_MAX + 1];
	unsigned port;
	struct sockaddr_storage addr;
};

enum hop_end {
	END_NONE = 0,
	END_FINAL,              /* a non-3xx answer */
	END_NO_LOCATION,        /* a 3xx without Location */
	END_LOOP,
	END_MAX_HOPS,
	END_REFUSED,            /* the gateway refused the hop */
	END_ERROR,              /* network, TLS, protocol or Location failure */
};

struct hop {
	char url[URL_MAX + HTTP_HOST_MAX + 32];
	struct url u;
	int decided;                    /* a policy was given */
	int ip_literal;                 /* the host is an address, not a name */
	int has_src;                    /* the client is known: src */
	struct sockaddr_storage src;    /* ... as the gateway sees it */
	struct dc_facts facts;          /* what the gateway would decide on */
	struct dc_verdict v;
	char guard_detail[256];         /* v.detail of a private_address */
	int status;                     /* 0: no answer */
	char phrase[PHRASE_MAX];
	int from_gateway;               /* the answer is the gateway's */
	int connect_refused;            /* ... to the CONNECT */
	char gw_body[BODY_LINE_MAX];
	int has_location;
	char location[URL_MAX + HTTP_HOST_MAX + 32];    /* resolved */
	char error[768];
};

struct trace {
	const char *config;
	const char *via;
	const char *cacert;
	const char *src_text;           /* --src: the client, direct */
	struct sockaddr_storage src;
	unsigned max_hops, timeout_s;
	int head;                       /* --method HEAD */
	int json;
	size_t noverrides;
	struct override overrides[RESOLVE_MAX];
	/* --via, resolved once */
	char via_host[HTTP_HOST_MAX + 1];
	unsigned via_port;
	/* The kind of the configuration's listener --via reached (connect
	 * when none of its listeners is that address). */
	enum dc_listener via_listener;

	struct gw_config *cfg;
	struct pol_snapshot *snap;
	struct dc_opts dopts;
	struct event_base *base;
	struct dns_resolver *dns;
	SSL_CTX *ssl_ctx;

	struct hop *hops;
	size_t nhops;
	enum hop_end end;
	size_t loop_to;                 /* END_LOOP: the hop seen before (1-based) */
	char next_url[URL_MAX + HTTP_HOST_MAX + 32];
};

/* One connection: a socket, maybe TLS on it, and the hop's deadline. */
struct tconn {
	int fd;
	SSL *ssl;
	uint64_t deadline;              /* CLOCK_MONOTONIC, ms */
};

static void
trace_usage(FILE *f)
{
	fprintf(f,
	    "usage: egressctl trace [-c CONFIG] [--via HOST:PORT | --src IP]\n"
	    "                       [--cacert FILE] [--resolve HOST:PORT:ADDR]...\n"
	    "                       [--max-hops N]\n"
	    "                       [--timeout SECONDS] [--method GET|HEAD]\n"
	    "                       [--format text|json] URL\n"
	    "\n"
	    "  -c, --config CONFIG  the daemon's configuration: each hop gets the\n"
	    "                       verdict egressd would give it, and direct\n"
	    "                       requests resolve names with its dns.servers\n"
	    "  -x, --via HOST:PORT  go through the gateway's connect or http\n"
	    "                       listener instead of connecting directly; the\n"
	    "                       client the policy sees is trace's own address\n"
	    "                       on that connection\n"
	    "  -s, --src IP         direct requests: the client's address, for\n"
	    "                       rules with sources and namespaces (without it\n"
	    "                       such rules do not apply)\n"
	    "      --cacert FILE    CA certificates for https hops (default: the\n"
	    "                       system store)\n"
	    "      --resolve H:P:A  connect to address A for host H, port P (as\n"
	    "                       curl); direct requests only\n"
	    "  -m, --max-hops N     follow at most N hops (default 10, at most %d)\n"
	    "  -t, --timeout S      seconds per hop (default 10)\n"
	    "  -X, --method M       GET (default) or HEAD\n"
	    "  -f, --format FORMAT  text (default) or json (one object)\n"
	    "  -h, --help           print this help\n"
	    "\n"
	    "Exit status: 0 every hop allowed (without -c: the chain ended), 1 a hop\n"
	    "denied by policy or refused by the gateway, 2 usage, a network or TLS\n"
	    "failure, a loop, or more than --max-hops redirects.\n", HOPS_MAX);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 9)
		return -1;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* ------------------------------------------------------------ URLs */

static int
is_default_port(const struct url *u)
{
	return u->port == (u->https ? 443u : 80u);
}

/* "host", "host:port", "[v6]:port": the authority as a request carries it. */
static void
url_authority(const struct url *u, int with_port, char *buf, size_t len)
{
	int v6 = u->host_is_ip && strchr(u->host, ':') != NULL;

	if (with_port || !is_default_port(u))
		snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", u->host,
		    v6 ? "]" : "", u->port);
	else
		snprintf(buf, len, "%s%s%s", v6 ? "[" : "", u->host,
		    v6 ? "]" : "");
}

/* The canonical text: loops are found by comparing these. */
static void
url_format(const struct url *u, char *buf, size_t len)
{
	char auth[HTTP_HOST_MAX + 16];

	url_authority(u, 0, auth, sizeof(auth));
	snprintf(buf, len, "%s://%s%s", u->https ? "https" : "http", auth,
	    u->target);
}

/*
 * Append the bytes of a path or query, percent-encoding what may not stand
 * in a request target (controls, space, '"', '<', '>', '\\', '^', '`',
 * '{', '|', '}', non-ASCII): a Location is a field value and may hold
 * them; the request line may not (http_parse_request would refuse it).
 */
static int
append_encoded(char *buf, size_t cap, size_t *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > 0x20 && c < 0x7f && strchr("\"<>\\^`{|}", c) == NULL) {
			if (*o + 1 >= cap)
				return -1;
			buf[(*o)++] = (char)c;
		} else {
			if (*o + 3 >= cap)
				return -1;
			buf[(*o)++] = '%';
			buf[(*o)++] = hex[c >> 4];
			buf[(*o)++] = hex[c & 15];
		}
	}
	buf[*o] = '\0';
	return 0;
}

/*
 * RFC 3986 section 5.2.4: remove "." and ".." segments, in place (the
 * output is never longer than the input).
 */
static void
remove_dot_segments(char *path)
{
	char *in = path, *out = path;

	while (*in != '\0') {
		if (strncmp(in, "../", 3) == 0)
			in += 3;
		else if (strncmp(in, "./", 2) == 0)
			in += 2;
		else if (strncmp(in, "/./", 3) == 0)
			in += 2;
		else if (strcmp(in, "/.") == 0)
			in[1] = '\0';
		else if (strncmp(in, "/../", 4) == 0 || strcmp(in, "/..") == 0) {
			in += 3;
			if (*in == '\0') {
				in--;
				*in = '/';
			}
			while (out > path && *--out != '/')
				;
		} else if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0)
			in += strlen(in);
		else {
			/* move the first segment, its leading '/' included */
			do
				*out++ = *in++;
			while (*in != '\0' && *in != '/');
		}
	}
	*out = '\0';
}

/*
 * Parse an absolute http or https URL: scheme "://" authority, then an
 * optional path-abempty, "?query" and "#fragment" (dropped: it is never
 * sent). No userinfo: a URL with one is refused rather than sent with
 * credentials nobody meant to hand to every hop.
 */
/*
 * The authority auth..aend: the host into host (brackets kept) and the
 * port into u (the scheme's when none). 0, or -1 with err.
 */
static int
url_authority_parse(const char *auth, const char *aend, struct url *u,
    char *host, size_t hostcap, char *err, size_t errlen)
{
	const char *hend, *colon = NULL;
	char port[8];
	size_t hlen, plen;

	if (memchr(auth, '@', (size_t)(aend - auth)) != NULL) {
		snprintf(err, errlen, "the URL carries user information "
		    "(user@): trace does not send credentials");
		return -1;
	}
	if (*auth == '[') {
		hend = memchr(auth, ']', (size_t)(aend - auth));
		if (hend == NULL) {
			snprintf(err, errlen, "an IPv6 address without its ']'");
			return -1;
		}
		hend++;
		if (hend < aend && *hend != ':') {
			snprintf(err, errlen, "unexpected text after ']'");
			return -1;
		}
		if (hend < aend)
			colon = hend;
	} else {
		colon = memchr(auth, ':', (size_t)(aend - auth));
		hend = colon != NULL ? colon : aend;
	}
	hlen = (size_t)(hend - auth);
	if (hlen == 0 || hlen >= hostcap) {
		snprintf(err, errlen, "%s host", hlen == 0 ? "no" : "too long a");
		return -1;
	}
	memcpy(host, auth, hlen);
	host[hlen] = '\0';
	u->port = u->https ? 443 : 80;
	if (colon == NULL || colon + 1 >= aend)
		return 0;
	plen = (size_t)(aend - colon - 1);
	if (plen < sizeof(port)) {
		memcpy(port, colon + 1, plen);
		port[plen] = '\0';
		if (parse_uint(port, 1, 65535, &u->port) == 0)
			return 0;
	}
	snprintf(err, errlen, "the port must be 1-65535");
	return -1;
}

/* The host as egressd would see it: an address, or a normalised name. */
static int
url_host_set(struct url *u, char *host, char *err, size_t errlen)
{
	size_t hlen = strlen(host);
	struct in6_addr a6;
	struct in_addr a4;

	if (host[0] == '[') {
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6) != 1) {
			snprintf(err, errlen, "'%s]' is not an IPv6 address", host);
			return -1;
		}
		inet_ntop(AF_INET6, &a6, u->host, sizeof(u->host));
		u->host_is_ip = 1;
	} else if (inet_pton(AF_INET, host, &a4) == 1) {
		inet_ntop(AF_INET, &a4, u->host, sizeof(u->host));
		u->host_is_ip = 1;
	} else if (sni_name_normalize((const uint8_t *)host, hlen,
	    u->host) != 0) {
		snprintf(err, errlen, "'%s' is not a host name egressd accepts",
		    host);
		return -1;
	}
	return 0;
}

/* Path and query from p (up to a '#'), encoded, dot segments resolved. */
static int
url_target_set(struct url *u, const char *p, char *err, size_t errlen)
{
	size_t o = 0, tlen = strcspn(p, "#");
	char query[URL_MAX];

	if (tlen == 0 || p[0] == '?')
		u->target[o++] = '/';
	u->target[o] = '\0';
	if (append_encoded(u->target, sizeof(u->target), &o, p, tlen) != 0) {
		snprintf(err, errlen, "the URL is longer than %d bytes", URL_MAX);
		return -1;
	}
	/* "." and ".." segments of the path are resolved, as clients do
	 * before they send it (RFC 3986 section 5.2.4); the query keeps
	 * its bytes. */
	tlen = strcspn(u->target, "?");
	if (tlen > 0 && tlen < sizeof(u->target)) {
		snprintf(query, sizeof(query), "%s", u->target + tlen);
		u->target[tlen] = '\0';
		remove_dot_segments(u->target);
		if (u->target[0] == '\0')
			snprintf(u->target, sizeof(u->target), "/");
		o = strlen(u->target);
		snprintf(u->target + o, sizeof(u->target) - o, "%s", query);
	}
	return 0;
}

static int
url_parse(const char *s, struct url *u, char *err, size_t errlen)
{
	const char *auth, *aend;
	char host[HTTP_HOST_MAX + 3];

	memset(u, 0, sizeof(*u));
	if (strncasecmp(s, "http://", 7) == 0) {
		auth = s + 7;
	} else if (strncasecmp(s, "https://", 8) == 0) {
		u->https = 1;
		auth = s + 8;
	} else {
		snprintf(err, errlen, "only http:// and https:// URLs can be "
		    "traced");
		return -1;
	}
	aend = auth + strcspn(auth, "/?#");
	if (url_authority_parse(auth, aend, u, host, sizeof(host), err,
	    errlen) != 0 || url_host_set(u, host, err, errlen) != 0)
		return -1;
	return url_target_set(u, aend, err, errlen);
}

/*
 * Where a Location points, as the gateway reads it: http_location_resolve()
 * (the daemon's own, for its redirect lines) gives the absolute URL and
 * the scheme, host and port decided on; url_parse() only makes the request
 * target of it. Both must agree on the host and port, or the hop is not
 * followed: trace never requests a host other than the one it decided.
 */
static int
location_follow(const struct url *base, const char *ref, size_t reflen,
    struct url *out, char *err, size_t errlen)
{
	char from[URL_MAX + HTTP_HOST_MAX + 32], abs[URL_MAX + HTTP_HOST_MAX + 32];
	char host[SNI_NAME_MAX + 1], why[512];
	struct sockaddr_storage x, y;
	uint16_t port;
	int https, n = (int)(reflen > 200 ? 200 : reflen);

	url_format(base, from, sizeof(from));
	if (http_location_resolve(from, ref, reflen, abs, sizeof(abs), &https,
	    host, sizeof(host), &port) != 0) {
		if (abs[0] != '\0' && strncasecmp(abs, "http://", 7) != 0 &&
		    strncasecmp(abs, "https://", 8) != 0 &&
		    strcspn(abs, ":") < strcspn(abs, "/?#"))
			snprintf(err, errlen, "Location '%.*s' is not http or "
			    "https: not followed", n, ref);
		else
			snprintf(err, errlen, "Location '%.*s' cannot be followed: "
			    "it has no host the policy can decide on", n, ref);
		return -1;
	}
	if (url_parse(abs, out, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "Location '%.*s' cannot be followed: %.200s",
		    n, ref, why);
		return -1;
	}
	if (out->https != https || out->port != port ||
	    (out->host_is_ip ? dns_addr_parse(host, 0, &x, NULL) != 0 ||
	    dns_addr_parse(out->host, 0, &y, NULL) != 0 ||
	    x.ss_family != y.ss_family || (x.ss_family == AF_INET ?
	    memcmp(&((struct sockaddr_in *)&x)->sin_addr,
	    &((struct sockaddr_in *)&y)->sin_addr, 4) :
	    memcmp(&((struct sockaddr_in6 *)&x)->sin6_addr,
	    &((struct sockaddr_in6 *)&y)->sin6_addr, 16)) != 0 :
	    strcmp(out->host, host) != 0)) {
		snprintf(err, errlen, "Location '%.*s' cannot be followed: the "
		    "gateway reads it as %s:%u", n, ref, host, (unsigned)port);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ network */

static int
wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		uint64_t now = now_ms();
		int n;

		if (now >= deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&pfd, 1, (int)(deadline - now));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* Connect to the first address that answers, before the deadline. */
static int
tcp_connect(const struct sockaddr_storage *addrs, size_t n, unsigned port,
    uint64_t deadline, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage sa = addrs[i];
		socklen_t salen;
		char text[INET6_ADDRSTRLEN + 16];
		int fd, soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (sa.ss_family == AF_INET) {
			((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)port);
			salen = sizeof(struct sockaddr_in);
		} else {
			((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)port);
			salen = sizeof(struct sockaddr_in6);
		}
		dns_addr_format((struct sockaddr *)&sa, text, sizeof(text));
		fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, (struct sockaddr *)&sa, salen) == 0)
			return fd;
		if (errno == EINPROGRESS) {
			if (wait_fd(fd, POLLOUT, deadline) != 0)
				soerr = errno;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
			    &sl) != 0)
				soerr = errno;
			if (soerr == 0)
				return fd;
		} else {
			soerr = errno;
		}
		snprintf(err, errlen, "connect to %s: %s", text,
		    soerr == ETIMEDOUT ? "timed out" : strerror(soerr));
		close(fd);
		if (soerr == ETIMEDOUT)
			break;
	}
	if (n == 0)
		snprintf(err, errlen, "no address to connect to");
	return -1;
}

static int
tconn_write(struct tconn *c, const void *buf, size_t len, char *err,
    size_t errlen)
{
	const uint8_t *p = buf;

	while (len > 0) {
		if (c->ssl != NULL) {
			int n;

			ERR_clear_error();
			n = SSL_write(c->ssl, p, (int)len);
			if (n > 0) {
				p += n;
				len -= (size_t)n;
				continue;
			}
			switch (SSL_get_error(c->ssl, n)) {
			case SSL_ERROR_WANT_READ:
				if (wait_fd(c->fd, POLLIN, c->deadline) == 0)
					continue;
				break;
			case SSL_ERROR_WANT_WRITE:
				if (wait_fd(c->fd, POLLOUT, c->deadline) == 0)
					continue;
				break;
			default:
				errno = EPIPE;
				break;
			}
		} else {
			ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

			if (n > 0) {
				p += n;
				len -= (size_t)n;
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR) &&
			    wait_fd(c->fd, POLLOUT, c->deadline) == 0)
				continue;
		}
		snprintf(err, errlen, "sending the request: %s",
		    errno == ETIMEDOUT ? "timed out" : strerror(errno));
		return -1;
	}
	return 0;
}

/* > 0 bytes read, 0 end of stream, -1 error (err says which). */
static ssize_t
tconn_read(struct tconn *c, void *buf, size_t len, char *err, size_t errlen)
{
	for (;;) {
		if (c->ssl != NULL) {
			int n;
			unsigned long e;

			ERR_clear_error();
			errno = 0;
			n = SSL_read(c->ssl, buf, (int)len);
			if (n > 0)
				return n;
			switch (SSL_get_error(c->ssl, n)) {
			case SSL_ERROR_ZERO_RETURN:
				return 0;
			case SSL_ERROR_WANT_READ:
				if (wait_fd(c->fd, POLLIN, c->deadline) == 0)
					continue;
				goto sysfail;
			case SSL_ERROR_WANT_WRITE:
				if (wait_fd(c->fd, POLLOUT, c->deadline) == 0)
					continue;
				goto sysfail;
			case SSL_ERROR_SYSCALL:
				if (ERR_peek_error() == 0 && errno == 0)
					return 0;
				goto sysfail;
			default:
				e = ERR_get_error();
				snprintf(err, errlen, "reading the response: %s",
				    e != 0 ? ERR_reason_error_string(e) :
				    "TLS error");
				return -1;
			}
		} else {
			ssize_t n = recv(c->fd, buf, len, 0);

			if (n >= 0)
				return n;
			if ((errno == EAGAIN || errno == EINTR) &&
			    wait_fd(c->fd, POLLIN, c->deadline) == 0)
				continue;
			goto sysfail;
		}
	}
sysfail:
	snprintf(err, errlen, "reading the response: %s",
	    errno == ETIMEDOUT ? "timed out" : strerror(errno));
	return -1;
}

static void
tconn_close(struct tconn *c)
{
	if (c->ssl != NULL) {
		/* No close_notify dance: the answer is read, the hop is over. */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/*
 * TLS on c->fd for host: SNI for a name, the chain verified against
 * --cacert or the system store, the name (or IP) checked against the
 * certificate.
 */
static int
tls_start(struct trace *tr, struct tconn *c, const struct url *u, char *err,
    size_t errlen)
{
	long vr;
	unsigned long e;

	c->ssl = SSL_new(tr->ssl_ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(err, errlen, "TLS: cannot set up a connection");
		return -1;
	}
	if (u->host_is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
		    u->host) != 1)
			goto setup;
	} else if (SSL_set_tlsext_host_name(c->ssl, u->host) != 1 ||
	    SSL_set1_host(c->ssl, u->host) != 1) {
		goto setup;
	}
	SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
	for (;;) {
		int n;

		ERR_clear_error();
		errno = 0;
		n = SSL_connect(c->ssl);
		if (n == 1)
			return 0;
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			if (wait_fd(c->fd, POLLIN, c->deadline) == 0)
				continue;
			snprintf(err, errlen, "TLS handshake with %s: %s", u->host,
			    errno == ETIMEDOUT ? "timed out" : strerror(errno));
			return -1;
		case SSL_ERROR_WANT_WRITE:
			if (wait_fd(c->fd, POLLOUT, c->deadline) == 0)
				continue;
			snprintf(err, errlen, "TLS handshake with %s: %s", u->host,
			    errno == ETIMEDOUT ? "timed out" : strerror(errno));
			return -1;
		default:
			break;
		}
		break;
	}
	vr = SSL_get_verify_result(c->ssl);
	e = ERR_peek_error();
	if (vr != X509_V_OK)
		snprintf(err, errlen, "TLS handshake with %s: certificate "
		    "verify failed: %s", u->host,
		    X509_verify_cert_error_string(vr));
	else if (e != 0)
		snprintf(err, errlen, "TLS handshake with %s: %s", u->host,
		    ERR_reason_error_string(e) != NULL ?
		    ERR_reason_error_string(e) : "error");
	else
		snprintf(err, errlen, "TLS handshake with %s: the connection "
		    "closed during the handshake", u->host);
	return -1;
setup:
	snprintf(err, errlen, "TLS: cannot set the name to verify (%s)", u->host);
	return -1;
}

/* Copy the printable bytes of s[0..n) into out, one line. */
static void
printable(char *out, size_t outlen, const uint8_t *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < outlen; i++)
		out[o++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	out[o] = '\0';
}

/*
 * Read a response head into buf, skipping interim (1xx) heads. On success
 * *have is how many bytes buf holds (the head and whatever followed it).
 */
static int
read_head(struct tconn *c, uint8_t *buf, size_t cap, size_t *have,
    struct http_response *rsp, char *phrase, size_t phraselen, char *err,
    size_t errlen)
{
	const char *why;

	*have = 0;
	for (;;) {
		enum http_status st = http_parse_response(buf, *have, rsp, &why);
		ssize_t n;

		if (st == HTTP_DONE) {
			if (rsp->status >= 200 || rsp->status == 101) {
				/* "HTTP/1.1 301 Moved Permanently": the
				 * parser vouched for the status line. */
				const uint8_t *eol = memchr(buf, '\r', *have);
				size_t l = eol != NULL ? (size_t)(eol - buf) : 0;

				phrase[0] = '\0';
				if (l > 13)
					printable(phrase, phraselen, buf + 13,
					    l - 13);
				return 0;
			}
			memmove(buf, buf + rsp->head_len, *have - rsp->head_len);
			*have -= rsp->head_len;
			continue;
		}
		if (st == HTTP_ERROR) {
			snprintf(err, errlen, "malformed response head: %s", why);
			return -1;
		}
		if (*have >= cap) {
			snprintf(err, errlen, "malformed response head: head too "
			    "large");
			return -1;
		}
		n = tconn_read(c, buf + *have, cap - *have, err, errlen);
		if (n < 0)
			return -1;
		if (n == 0) {
			snprintf(err, errlen, "%s", *have == 0 ? "the server closed "
			    "the connection without answering" : "the server "
			    "closed the connection in the middle of the response "
			    "head");
			return -1;
		}
		*have += (size_t)n;
	}
}

/* The first line of a (short) body: the gateway's reason for refusing. */
static void
body_line(struct tconn *c, uint8_t *buf, size_t cap, size_t have,
    const struct http_response *rsp, char *out, size_t outlen)
{
	size_t want = BODY_LINE_MAX, got;
	const uint8_t *b, *eol;
	char err[128];

	if (rsp->content_length >= 0 && (uint64_t)rsp->content_length < want)
		want = (size_t)rsp->content_length;
	if (cap > rsp->head_len + want)
		cap = rsp->head_len + want;
	while (have < cap && !rsp->chunked &&
	    memchr(buf + rsp->head_len, '\n', have - rsp->head_len) == NULL) {
		ssize_t n = tconn_read(c, buf + have, cap - have, err,
		    sizeof(err));

		if (n <= 0)
			break;
		have += (size_t)n;
	}
	b = buf + rsp->head_len;
	got = have > rsp->head_len ? have - rsp->head_len : 0;
	if (got > want)
		got = want;
	if (rsp->chunked) {
		/* "1f\r\nline\n\r\n": skip the chunk size line */
		eol = memchr(b, '\n', got);
		if (eol != NULL) {
			got -= (size_t)(eol + 1 - b);
			b = eol + 1;
		}
	}
	eol = memchr(b, '\n', got);
	if (eol != NULL)
		got = (size_t)(eol - b);
	if (got > 0 && b[got - 1] == '\r')
		got--;
	printable(out, outlen, b, got);
}

/* ------------------------------------------------------------ resolving */

struct dns_wait {
	int done;
	struct dns_answer ans;
};

static void
dns_done(void *arg, const struct dns_answer *ans)
{
	struct dns_wait *w = arg;

	w->ans = *ans;
	w->done = 1;
}

/*
 * The addresses to connect to for host:port: --resolve first, then the
 * configuration's DNS servers through the daemon's own resolver, else the
 * system's resolver.
 */
static int
resolve(struct trace *tr, const char *host, unsigned port,
    struct sockaddr_storage *out, size_t max, size_t *nout, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[8];
	int gai;

	*nout = 0;
	for (size_t i = 0; i < tr->noverrides; i++)
		if (strcmp(tr->overrides[i].host, host) == 0 &&
		    tr->overrides[i].port == port) {
			out[0] = tr->overrides[i].addr;
			*nout = 1;
			return 0;
		}
	if (dns_addr_parse(host, 0, &out[0], NULL) == 0) {
		*nout = 1;
		return 0;
	}
	if (tr->dns != NULL) {
		struct dns_wait w;

		memset(&w, 0, sizeof(w));
		if (dns_resolve(tr->dns, host, dns_done, &w) == NULL) {
			snprintf(err, errlen, "cannot look %s up", host);
			return -1;
		}
		while (!w.done)
			if (event_base_loop(tr->base, EVLOOP_ONCE) != 0)
				break;
		if (!w.done) {
			snprintf(err, errlen, "resolving %s: no answer", host);
			return -1;
		}
		if (w.ans.status != DNS_OK) {
			snprintf(err, errlen, "resolving %s with the configuration's "
			    "dns.servers: %s", host, dns_status_str(w.ans.status));
			return -1;
		}
		for (size_t i = 0; i < w.ans.naddrs && *nout < max; i++)
			out[(*nout)++] = w.ans.addrs[i];
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%u", port);
	gai = getaddrinfo(host, portstr, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "resolving %s: %s", host, gai_strerror(gai));
		return -1;
	}
	for (ai = res; ai != NULL && *nout < max; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		memset(&out[*nout], 0, sizeof(out[0]));
		memcpy(&out[*nout], ai->ai_addr, ai->ai_addrlen);
		(*nout)++;
	}
	freeaddrinfo(res);
	return 0;
}

/* ------------------------------------------------------------ one hop */

/*
 * Decide the hop with the daemon's policy and dc_decide(), on the facts
 * the listener the request goes to builds: directly, https is a
 * ClientHello's server name (an address is never sent as one) and http a
 * Host; through --via, https is a CONNECT authority and http an
 * absolute-form request, both on the connect listener trace talks to. The
 * client is h->src when known (--src; through --via, trace's own end of
 * the connection, decided again once it is made): rules with sources, and
 * Istio's namespace scoping, apply to it as at the gateway.
 */
static void
decide_hop(const struct trace *tr, struct hop *h)
{
	struct dc_facts *f = &h->facts;

	if (tr->snap == NULL)
		return;
	h->decided = 1;
	h->ip_literal = h->u.host_is_ip;
	memset(f, 0, sizeof(*f));
	f->src = h->has_src ? (const struct sockaddr *)&h->src : NULL;
	f->name = h->u.host;
	f->name_is_ip = h->u.host_is_ip;
	f->port = (uint16_t)h->u.port;
	if (h->u.https && tr->via != NULL) {
		f->listener = tr->via_listener;
		f->from = DC_FROM_AUTHORITY;
		f->proto = POL_PROTO_CONNECT;
	} else if (h->u.https) {
		f->listener = DC_L_TLS;
		f->from = DC_FROM_SNI;
		f->proto = POL_PROTO_TLS;
		if (h->u.host_is_ip) {
			/* TLS clients send no server_name for an address. */
			f->name = NULL;
			f->name_is_ip = 0;
		}
	} else {
		f->listener = tr->via != NULL ? tr->via_listener : DC_L_HTTP;
		f->from = DC_FROM_HOST;
		f->proto = POL_PROTO_HTTP;
	}
	dc_decide(tr->snap, &tr->dopts, f, &h->v);
}

/*
 * Send the hop's request and read the answer's head. Returns 0 with
 * h->status set, or -1 with h->error set. Through --via, a refusal by the
 * gateway (to the CONNECT, or a 403/502/504 to an absolute-form request
 * the policy denies) is an answer, marked from_gateway.
 */
/* One hop's connection, buffer and response head. */
struct hop_io {
	struct tconn c;
	uint8_t *buf;
	size_t cap, have;
	struct http_response rsp;
	char err[512];
};

/* err, prefixed: "PREFIX: the reason", the reason cut at max bytes. */
static void
err_prefix(char *err, size_t len, const char *prefix, int max)
{
	char why[512];

	snprintf(why, sizeof(why), "%s", err);
	if (snprintf(err, len, "%s: %.*s", prefix, max, why) < 0)
		err[0] = '\0';
}

/*
 * Which of the configuration's listeners fd is connected to, by address
 * and port (one on a wildcard address by port), into tr->via_listener:
 * an http listener refuses CONNECT (bad_http), and the decision says so.
 * None of them (a configuration of another gateway, an address
 * translated on the way): a connect listener, as --via asks for.
 */
static void
via_listener(struct trace *tr, int fd)
{
	struct sockaddr_storage peer, a, b;
	const struct sockaddr *p, *l;

	tr->via_listener = DC_L_CONNECT;
	if (tr->cfg == NULL || getpeername(fd, (struct sockaddr *)&peer,
	    &(socklen_t){ sizeof(peer) }) != 0)
		return;
	p = dns_addr_unmap((const struct sockaddr *)&peer, &a);
	for (size_t i = 0; i < tr->cfg->nlisteners; i++) {
		const struct gw_listener_conf *lc = &tr->cfg->listeners[i];

		l = dns_addr_unmap((const struct sockaddr *)&lc->addr, &b);
		if (l->sa_family != p->sa_family ||
		    dns_addr_port(l) != dns_addr_port(p) ||
		    (!dns_addr_same_ip(l, p) && !gw_sock_is_wildcard(l)))
			continue;
		if (lc->proto == GW_PROTO_HTTP)
			tr->via_listener = DC_L_HTTP;
		return;
	}
}

/*
 * Through --via: the gateway connected and, for https, a CONNECT answered
 * 200. 0; 1 when the gateway refused the CONNECT (recorded in h, the hop
 * is over); -1 with the reason in io->err.
 */
static int
hop_via(struct trace *tr, struct hop *h, struct hop_io *io)
{
	struct sockaddr_storage addrs[DNS_MAX_ADDRS];
	char auth[HTTP_HOST_MAX + 16], req[2 * HTTP_HOST_MAX + 256], pre[400];
	size_t naddrs;

	if (resolve(tr, tr->via_host, tr->via_port, addrs, DNS_MAX_ADDRS,
	    &naddrs, io->err, sizeof(io->err)) != 0)
		return -1;
	io->c.fd = tcp_connect(addrs, naddrs, tr->via_port, io->c.deadline,
	    io->err, sizeof(io->err));
	if (io->c.fd < 0) {
		snprintf(pre, sizeof(pre), "the gateway (--via %.64s)", tr->via);
		err_prefix(io->err, sizeof(io->err), pre, 300);
		return -1;
	}
	via_listener(tr, io->c.fd);
	/* The gateway decides on the client it accepted: this end. */
	if (getsockname(io->c.fd, (struct sockaddr *)&h->src,
	    &(socklen_t){ sizeof(h->src) }) == 0) {
		((struct sockaddr_in *)&h->src)->sin_port = 0;
		if (h->src.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&h->src)->sin6_port = 0;
		h->has_src = 1;
		decide_hop(tr, h);
	}
	if (!h->u.https)
		return 0;
	/* CONNECT names the port always. */
	url_authority(&h->u, 1, auth, sizeof(auth));
	snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: egressctl-trace/%s\r\n\r\n", auth, auth,
	    PACKAGE_VERSION);
	if (tconn_write(&io->c, req, strlen(req), io->err,
	    sizeof(io->err)) != 0)
		return -1;
	if (read_head(&io->c, io->buf, io->cap, &io->have, &io->rsp, h->phrase,
	    sizeof(h->phrase), io->err, sizeof(io->err)) != 0) {
		snprintf(pre, sizeof(pre), "CONNECT %s through the gateway", auth);
		err_prefix(io->err, sizeof(io->err), pre, 200);
		return -1;
	}
	if (io->rsp.status != 200) {
		h->status = io->rsp.status;
		h->from_gateway = 1;
		h->connect_refused = 1;
		body_line(&io->c, io->buf, io->cap, io->have, &io->rsp,
		    h->gw_body, sizeof(h->gw_body));
		return 1;
	}
	if (io->have != io->rsp.head_len) {
		snprintf(io->err, sizeof(io->err), "CONNECT %s: the gateway sent "
		    "bytes after its 200", auth);
		return -1;
	}
	return 0;
}

/*
 * The gateway connects to a name's addresses only where its address guard
 * lets it (gw_guard(), the workers' own): an admitted hop whose addresses
 * it refuses all is private_address, as the gateway's line says, even in
 * report mode. Only where the addresses come from the name: a rule's
 * endpoints send the gateway elsewhere than trace goes.
 */
static void
guard_hop(const struct trace *tr, struct hop *h,
    const struct sockaddr_storage *addrs, size_t naddrs)
{
	const struct sockaddr *first = NULL;
	struct sockaddr_storage ss;
	const char *why = NULL;
	char a[INET6_ADDRSTRLEN + 8];

	if (!h->decided || !h->v.allow || !dc_routes_by_name(&h->v))
		return;
	for (size_t i = 0; i < naddrs; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&addrs[i];
		const char *w = gw_guard(tr->cfg, sa, (uint16_t)h->u.port,
		    dc_allow_private(&h->v));

		if (w == NULL)
			return;
		if (why == NULL) {
			why = w;
			first = sa;
		}
	}
	if (why == NULL)
		return;
	/* The address alone, as the gateway's detail says it. */
	memcpy(&ss, first, first->sa_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	dns_addr_format((const struct sockaddr *)&ss, a, sizeof(a));
	snprintf(h->guard_detail, sizeof(h->guard_detail), "%.180s resolves "
	    "to %s (%s)", h->u.host, a, why);
	h->v.allow = 0;
	h->v.would_deny = 0;
	h->v.reason = DC_PRIVATE_ADDRESS;
	h->v.detail = h->guard_detail;
}

/* Direct: the hop's own host connected. 0, or -1 with io->err. */
static int
hop_direct(struct trace *tr, struct hop *h, struct hop_io *io)
{
	struct sockaddr_storage addrs[DNS_MAX_ADDRS];
	size_t naddrs;

	if (resolve(tr, h->u.host, h->u.port, addrs, DNS_MAX_ADDRS, &naddrs,
	    io->err, sizeof(io->err)) != 0)
		return -1;
	/* Still connected to: trace shows the chain whatever the gateway
	 * would do, as for any hop the policy denies. */
	guard_hop(tr, h, addrs, naddrs);
	io->c.fd = tcp_connect(addrs, naddrs, h->u.port, io->c.deadline,
	    io->err, sizeof(io->err));
	return io->c.fd < 0 ? -1 : 0;
}

/* The request (GET or HEAD, absolute through the http listener) and the
 * response's head. 0, or -1 with io->err. */
static int
hop_exchange(struct trace *tr, struct hop *h, struct hop_io *io)
{
	const struct url *u = &h->u;
	const char *method = tr->head ? "HEAD" : "GET";
	char auth[HTTP_HOST_MAX + 16], req[URL_MAX + 2 * HTTP_HOST_MAX + 256];

	url_authority(u, 0, auth, sizeof(auth));
	if (tr->via != NULL && !u->https)
		snprintf(req, sizeof(req), "%s http://%s%s HTTP/1.1\r\n",
		    method, auth, u->target);
	else
		snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\n", method,
		    u->target);
	snprintf(req + strlen(req), sizeof(req) - strlen(req),
	    "Host: %s\r\nUser-Agent: egressctl-trace/%s\r\nAccept: */*\r\n"
	    "Connection: close\r\n\r\n", auth, PACKAGE_VERSION);
	if (tconn_write(&io->c, req, strlen(req), io->err,
	    sizeof(io->err)) != 0)
		return -1;
	return read_head(&io->c, io->buf, io->cap, &io->have, &io->rsp,
	    h->phrase, sizeof(h->phrase), io->err, sizeof(io->err));
}

/* What the response says: the gateway's refusal, or where it redirects.
 * 0, or -1 with io->err. */
static int
hop_judge(struct trace *tr, struct hop *h, struct hop_io *io)
{
	const struct http_response *rsp = &io->rsp;
	struct url next;

	h->status = rsp->status;
	/*
	 * Through the http listener a refusal and an upstream's own 403
	 * look alike: a 403 for a hop the policy denies (or when no policy
	 * says) is taken as the gateway's, and 502/504 always are.
	 */
	if (tr->via != NULL && !h->u.https && ((rsp->status == 403 &&
	    (!h->decided || !h->v.allow)) || rsp->status == 502 ||
	    rsp->status == 504)) {
		h->from_gateway = 1;
		body_line(&io->c, io->buf, io->cap, io->have, rsp, h->gw_body,
		    sizeof(h->gw_body));
		return 0;
	}
	if (rsp->status < 300 || rsp->status >= 400 || rsp->location == NULL)
		return 0;
	h->has_location = 1;
	if (location_follow(&h->u, rsp->location, rsp->location_len, &next,
	    io->err, sizeof(io->err)) != 0) {
		printable(h->location, sizeof(h->location),
		    (const uint8_t *)rsp->location, rsp->location_len);
		return -1;
	}
	url_format(&next, h->location, sizeof(h->location));
	return 0;
}

static int
do_hop(struct trace *tr, struct hop *h)
{
	struct hop_io io;
	int r;

	memset(&io, 0, sizeof(io));
	io.c.fd = -1;
	io.cap = HTTP_HEAD_MAX + BODY_LINE_MAX;
	io.buf = malloc(io.cap);
	if (io.buf == NULL) {
		snprintf(h->error, sizeof(h->error), "out of memory");
		return -1;
	}
	io.c.deadline = now_ms() + (uint64_t)tr->timeout_s * 1000;
	r = tr->via != NULL ? hop_via(tr, h, &io) : hop_direct(tr, h, &io);
	if (r == 0 && h->u.https &&
	    tls_start(tr, &io.c, &h->u, io.err, sizeof(io.err)) != 0)
		r = -1;
	if (r == 0)
		r = hop_exchange(tr, h, &io);
	if (r == 0)
		r = hop_judge(tr, h, &io);
	if (r < 0)
		snprintf(h->error, sizeof(h->error), "%s", io.err);
	tconn_close(&io.c);
	free(io.buf);
	return r < 0 ? -1 : 0;
}

/* ------------------------------------------------------------ output */

static const char *
hop_proto(const struct hop *h)
{
	return h->u.https ? "tls" : "http";
}

/* Denied by policy (report mode's would_deny too), or refused by the
 * gateway. */
static int
hop_denied(const struct hop *h)
{
	return (h->decided && (!h->v.allow || h->v.would_deny)) ||
	    (h->from_gateway && h->status == 403);
}

/* The reason egressd's line gives the hop: report mode's when it would
 * deny. */
static enum dc_reason
hop_reason(const struct hop *h)
{
	return dc_line_reason(&h->v);
}

static void
print_verdict_text(const struct hop *h)
{
	const struct pol_rule *r = dc_line_rule(&h->v);

	char src[INET6_ADDRSTRLEN + 8];

	if (h->decided && h->has_src) {
		dns_addr_format((const struct sockaddr *)&h->src, src,
		    sizeof(src));
		printf("   src:      %s\n", src);
	}
	printf("   policy:   ");
	if (!h->decided) {
		printf("none (no policy given)\n");
		return;
	}
	printf("%s %s:%u (%s): %s", !h->v.allow ? "deny" : h->v.would_deny ?
	    "would deny" : "allow", h->u.host, h->u.port, hop_proto(h),
	    dc_reason_str(hop_reason(h)));
	if (h->v.would_deny)
		printf(" (report mode: egressd lets it through and logs "
		    "would_deny)");
	if (h->v.detail != NULL)
		printf(" (%s)", h->v.detail);
	if (h->ip_literal)
		printf("; an IP address: egressd decides on names\n");
	else if (r != NULL)
		ctl_print_rule(stdout, "; rule ", r, NULL);
	else if (hop_reason(h) != DC_NOT_ALLOWED)
		printf("; rule: none (refused before the policy is asked)\n");
	else
		printf("; rule: none (no rule admits %s)\n", h->u.host);
	if (h->v.allow && h->v.admit != NULL && h->v.admit != r)
		ctl_print_rule(stdout, "   admitted by ", h->v.admit,
		    "its settings apply");
}

static void
print_hop_text(const struct trace *tr, const struct hop *h, size_t n)
{
	printf("hop %zu: %s %s\n", n, tr->head ? "HEAD" : "GET", h->url);
	print_verdict_text(h);
	if (h->status != 0) {
		if (h->connect_refused)
			printf("   response: %d%s%s from the gateway to CONNECT: "
			    "%s\n", h->status, h->phrase[0] ? " " : "",
			    h->phrase, h->gw_body[0] ? h->gw_body : "(no body)");
		else if (h->from_gateway)
			printf("   response: %d%s%s from the gateway: %s\n",
			    h->status, h->phrase[0] ? " " : "", h->phrase,
			    h->gw_body[0] ? h->gw_body : "(no body)");
		else
			printf("   response: %d%s%s\n", h->status,
			    h->phrase[0] ? " " : "", h->phrase);
	}
	if (h->has_location && h->error[0] == '\0')
		printf("   location: %s\n", h->location);
	if (h->error[0] != '\0')
		printf("   error:    %s\n", h->error);
}

/* The (host, port, proto) of a hop an allow rule could admit: no rule
 * admitted the name, or none the port. */
static int
suggestable(const struct hop *h)
{
	return hop_denied(h) && !h->ip_literal && (!h->decided ||
	    hop_reason(h) == DC_NOT_ALLOWED ||
	    hop_reason(h) == DC_PORT_NOT_ALLOWED);
}

/* Is hop i the first of its (host, port, proto) among suggestable ones? */
static int
first_of_kind(const struct trace *tr, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (suggestable(&tr->hops[j]) &&
		    strcmp(tr->hops[j].u.host, tr->hops[i].u.host) == 0 &&
		    tr->hops[j].u.port == tr->hops[i].u.port &&
		    tr->hops[j].u.https == tr->hops[i].u.https)
			return 0;
	return 1;
}

/* An Istio resource name: a DNS-1123 label from the host. */
static void
se_name(const struct hop *h, char *buf, size_t len)
{
	size_t o = (size_t)snprintf(buf, len, "trace-");

	for (const char *p = h->u.host; *p != '\0' && o + 1 < len && o < 63; p++)
		buf[o++] = (*p >= 'a' && *p <= 'z') || (*p >= '0' &&
		    *p <= '9') ? *p : '-';
	while (o > 0 && buf[o - 1] == '-')
		o--;
	buf[o] = '\0';
}

static void
suggest_native(FILE *f, const struct hop *h)
{
	char name[80];

	se_name(h, name, sizeof(name));
	fprintf(f, "allow:\n  - name: %s\n    hosts: [\"%s\"]\n"
	    "    ports: [%u]\n", name, h->u.host, h->u.port);
}

static void
suggest_se(FILE *f, const struct hop *h)
{
	char name[80];

	se_name(h, name, sizeof(name));
	fprintf(f, "apiVersion: networking.istio.io/v1\n"
	    "kind: ServiceEntry\n"
	    "metadata:\n"
	    "  name: %s\n"
	    "spec:\n"
	    "  hosts:\n"
	    "  - \"%s\"\n"
	    "  location: MESH_EXTERNAL\n"
	    "  ports:\n"
	    "  - number: %u\n"
	    "    name: %s-%u\n"
	    "    protocol: %s\n"
	    "  resolution: DNS\n", name, h->u.host, h->u.port,
	    h->u.https ? "tls" : "http", h->u.port, h->u.https ? "TLS" : "HTTP");
}

static size_t
count_denied(const struct trace *tr)
{
	size_t n = 0;

	for (size_t i = 0; i < tr->nhops; i++)
		if (hop_denied(&tr->hops[i]))
			n++;
	return n;
}

static void
print_end_text(const struct trace *tr)
{
	const struct hop *last = tr->nhops > 0 ? &tr->hops[tr->nhops - 1] : NULL;
	size_t nd = count_denied(tr);

	switch (tr->end) {
	case END_LOOP:
		printf("trace: loop: hop %zu redirects to %s, which is hop %zu\n",
		    tr->nhops, tr->next_url, tr->loop_to);
		break;
	case END_MAX_HOPS:
		printf("trace: stopped at --max-hops %u: hop %zu redirects to "
		    "%s\n", tr->max_hops, tr->nhops, tr->next_url);
		break;
	case END_NO_LOCATION:
		printf("trace: hop %zu answered %d without a Location\n",
		    tr->nhops, last->status);
		break;
	case END_REFUSED:
		printf("trace: the gateway refused hop %zu\n", tr->nhops);
		break;
	case END_ERROR:
		printf("trace: stopped at hop %zu: %s\n", tr->nhops, last->error);
		break;
	case END_FINAL:
	case END_NONE:
		break;
	}
	printf("trace: %zu %s, %zu denied\n", tr->nhops,
	    tr->nhops == 1 ? "hop" : "hops", nd);
	for (size_t i = 0; i < tr->nhops; i++) {
		const struct hop *h = &tr->hops[i];

		if (hop_denied(h) && !suggestable(h)) {
			printf("\nnot suggested: hop %zu, %s:%u: %s\n", i + 1,
			    h->u.host, h->u.port, h->ip_literal ? "an IP "
			    "address: egressd decides on names" :
			    hop_reason(h) == DC_DENIED_BY_RULE ?
			    "denied_by_rule: a deny rule wins over any allow" :
			    dc_reason_str(hop_reason(h)));
			continue;
		}
		if (!suggestable(h) || !first_of_kind(tr, i))
			continue;
		printf("\nhop %zu, %s:%u (%s) is %s; an allow-list entry that "
		    "admits it, native:\n\n", i + 1, h->u.host, h->u.port,
		    hop_proto(h), h->decided ? (h->v.would_deny ? "denied in "
		    "report mode" : "denied") : "refused by the gateway");
		suggest_native(stdout, h);
		printf("\nor as an Istio ServiceEntry:\n\n");
		suggest_se(stdout, h);
	}
}

static void
json_str_n(FILE *f, const char *s)
{
	ctl_json_str(f, s != NULL && s[0] != '\0' ? s : NULL);
}

static const char *
end_str(enum hop_end e)
{
	switch (e) {
	case END_FINAL:
		return "final";
	case END_NO_LOCATION:
		return "no_location";
	case END_LOOP:
		return "loop";
	case END_MAX_HOPS:
		return "max_hops";
	case END_REFUSED:
		return "refused";
	case END_ERROR:
		return "error";
	case END_NONE:
		break;
	}
	return "none";
}

/* A rule as trace's JSON shows it, or null. */
static void
json_rule(const struct pol_rule *r)
{
	if (r == NULL) {
		printf("null");
		return;
	}
	ctl_json_rule_open(r);
	printf(",\"mode\":");
	ctl_json_str(stdout, pol_mode_str(r->mode));
	printf("}");
}

/* A hop's verdict keys: the enforced verdict, its reason and deciding
 * rule; report mode's would_deny apart. All null when not decided. */
static void
json_hop_verdict(const struct hop *h)
{
	if (!h->decided) {
		printf("null,\"reason\":null,\"would_deny\":false,"
		    "\"rule\":null,\"would_deny_reason\":null,"
		    "\"would_deny_rule\":null,\"admitted_by\":null,"
		    "\"listener\":null,\"detail\":null,\"src\":null");
		return;
	}
	ctl_json_str(stdout, h->v.allow ? "allow" : "deny");
	printf(",\"reason\":");
	ctl_json_str(stdout, dc_reason_str(h->v.reason));
	printf(",\"would_deny\":%s,\"rule\":", h->v.would_deny ? "true" :
	    "false");
	json_rule(h->v.rule);
	printf(",\"would_deny_reason\":");
	ctl_json_str(stdout, h->v.would_deny ?
	    dc_reason_str(h->v.would_reason) : NULL);
	printf(",\"would_deny_rule\":");
	json_rule(h->v.would_deny ? h->v.would_rule : NULL);
	printf(",\"admitted_by\":");
	json_rule(h->v.allow ? h->v.admit : NULL);
	printf(",\"listener\":");
	ctl_json_str(stdout, dc_listener_str(h->facts.listener));
	printf(",\"detail\":");
	ctl_json_str(stdout, h->v.detail);
	printf(",\"src\":");
	if (h->has_src) {
		char src[INET6_ADDRSTRLEN + 8];

		dns_addr_format((const struct sockaddr *)&h->src, src,
		    sizeof(src));
		ctl_json_str(stdout, src);
	} else {
		printf("null");
	}
}

static void
json_hop(const struct hop *h, size_t i)
{
	printf("%s{\"hop\":%zu,\"url\":", i > 0 ? "," : "", i + 1);
	ctl_json_str(stdout, h->url);
	printf(",\"host\":");
	ctl_json_str(stdout, h->u.host);
	printf(",\"port\":%u,\"proto\":", h->u.port);
	ctl_json_str(stdout, hop_proto(h));
	printf(",\"verdict\":");
	json_hop_verdict(h);
	printf(",\"denied\":%s,\"status\":", hop_denied(h) ? "true" : "false");
	if (h->status != 0)
		printf("%d", h->status);
	else
		printf("null");
	printf(",\"phrase\":");
	json_str_n(stdout, h->status != 0 ? h->phrase : NULL);
	printf(",\"from_gateway\":%s,\"gateway_body\":",
	    h->from_gateway ? "true" : "false");
	json_str_n(stdout, h->from_gateway ? h->gw_body : NULL);
	printf(",\"location\":");
	json_str_n(stdout, h->has_location ? h->location : NULL);
	printf(",\"error\":");
	json_str_n(stdout, h->error);
	printf("}");
}

/* What suggest(mf, h) writes, as a JSON string (null if it cannot). */
static void
json_suggestion(void (*suggest)(FILE *, const struct hop *),
    const struct hop *h)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mf = open_memstream(&text, &len);

	if (mf != NULL) {
		suggest(mf, h);
		fclose(mf);
	}
	ctl_json_str(stdout, text);
	free(text);
}

static void
print_json(const struct trace *tr, const char *start)
{
	int first = 1;

	printf("{\"url\":");
	ctl_json_str(stdout, start);
	printf(",\"method\":");
	ctl_json_str(stdout, tr->head ? "HEAD" : "GET");
	printf(",\"via\":");
	ctl_json_str(stdout, tr->via);
	printf(",\"config\":");
	ctl_json_str(stdout, tr->config);
	printf(",\"hops\":[");
	for (size_t i = 0; i < tr->nhops; i++)
		json_hop(&tr->hops[i], i);
	printf("],\"end\":");
	ctl_json_str(stdout, end_str(tr->end));
	printf(",\"next\":");
	json_str_n(stdout, tr->end == END_LOOP || tr->end == END_MAX_HOPS ?
	    tr->next_url : NULL);
	printf(",\"loop_to\":");
	if (tr->end == END_LOOP)
		printf("%zu", tr->loop_to);
	else
		printf("null");
	printf(",\"denied\":%zu,\"suggestions\":[", count_denied(tr));
	for (size_t i = 0; i < tr->nhops; i++) {
		const struct hop *h = &tr->hops[i];

		if (!suggestable(h) || !first_of_kind(tr, i))
			continue;
		printf("%s{\"hop\":%zu,\"host\":", first ? "" : ",", i + 1);
		first = 0;
		ctl_json_str(stdout, h->u.host);
		printf(",\"port\":%u,\"proto\":", h->u.port);
		ctl_json_str(stdout, hop_proto(h));
		printf(",\"native\":");
		json_suggestion(suggest_native, h);
		printf(",\"serviceentry\":");
		json_suggestion(suggest_se, h);
		printf("}");
	}
	printf("]}\n");
}

/* ------------------------------------------------------------ set-up */

/* --resolve HOST:PORT:ADDR, ADDR an IPv4 or [IPv6] address. */
static int
add_override(struct trace *tr, const char *arg)
{
	struct override *o;
	const char *c1 = strchr(arg, ':'), *c2;
	char port[8], addr[INET6_ADDRSTRLEN + 3];
	size_t alen;

	if (tr->noverrides == RESOLVE_MAX)
		return -1;
	o = &tr->overrides[tr->noverrides];
	if (c1 == NULL || (c2 = strchr(c1 + 1, ':')) == NULL ||
	    (size_t)(c2 - c1 - 1) >= sizeof(port))
		return -1;
	memcpy(port, c1 + 1, (size_t)(c2 - c1 - 1));
	port[c2 - c1 - 1] = '\0';
	if (parse_uint(port, 1, 65535, &o->port) != 0)
		return -1;
	if (sni_name_normalize((const uint8_t *)arg, (size_t)(c1 - arg),
	    o->host) != 0)
		return -1;
	alen = strlen(c2 + 1);
	if (alen >= sizeof(addr))
		return -1;
	memcpy(addr, c2 + 1, alen + 1);
	if (addr[0] == '[' && alen > 2 && addr[alen - 1] == ']') {
		memmove(addr, addr + 1, alen - 2);
		addr[alen - 2] = '\0';
	}
	if (dns_addr_parse(addr, 0, &o->addr, NULL) != 0)
		return -1;
	tr->noverrides++;
	return 0;
}

static int
parse_via(struct trace *tr, const char *arg)
{
	const char *colon = strrchr(arg, ':');
	size_t hlen;

	if (colon == NULL || parse_uint(colon + 1, 1, 65535, &tr->via_port) != 0)
		return -1;
	hlen = (size_t)(colon - arg);
	if (hlen > 2 && arg[0] == '[' && arg[hlen - 1] == ']') {
		arg++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(tr->via_host))
		return -1;
	memcpy(tr->via_host, arg, hlen);
	tr->via_host[hlen] = '\0';
	return 0;
}

static int
load_policy(struct trace *tr)
{
	struct dns_config dc;
	char err[256];

	/* As explain loads it: the daemon's files, mode and namespaces. */
	tr->snap = ctl_load_policy("trace", tr->config, NULL, &tr->cfg);
	if (tr->snap == NULL)
		return -1;
	tr->dopts.refuse_ech = tr->cfg->refuse_ech;
	if (tr->cfg->ndns_servers == 0)
		return 0;
	/* The daemon's resolver on a private event_base, driven per lookup. */
	tr->base = event_base_new();
	if (tr->base == NULL) {
		fprintf(stderr, "egressctl trace: cannot create an event base\n");
		return -1;
	}
	memset(&dc, 0, sizeof(dc));
	dc.nservers = tr->cfg->ndns_servers;
	for (size_t i = 0; i < tr->cfg->ndns_servers && i < DNS_MAX_SERVERS; i++)
		dc.servers[i] = tr->cfg->dns_servers[i];
	dc.timeout_ms = (uint64_t)tr->timeout_s * 1000;
	dc.family = tr->cfg->dns_family;
	dc.stale_ttl = DNS_STALE_OFF;
	tr->dns = dns_resolver_new(tr->base, &dc, err, sizeof(err));
	if (tr->dns == NULL) {
		fprintf(stderr, "egressctl trace: %s: dns.servers: %s\n",
		    tr->config, err);
		return -1;
	}
	return 0;
}

static int
tls_setup(struct trace *tr)
{
	unsigned long e;

	tr->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (tr->ssl_ctx == NULL)
		goto fail;
	SSL_CTX_set_min_proto_version(tr->ssl_ctx, TLS1_2_VERSION);
	/* A server that closes without close_notify after its answer is
	 * common and harmless here: the head is all trace reads. */
	SSL_CTX_set_options(tr->ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (tr->cacert != NULL) {
		if (SSL_CTX_load_verify_locations(tr->ssl_ctx, tr->cacert,
		    NULL) != 1)
			goto fail;
	} else if (SSL_CTX_set_default_verify_paths(tr->ssl_ctx) != 1) {
		goto fail;
	}
	return 0;
fail:
	e = ERR_get_error();
	if (tr->cacert != NULL)
		fprintf(stderr, "egressctl trace: --cacert %s: cannot load it: "
		    "%s\n", tr->cacert, e != 0 && ERR_reason_error_string(e) !=
		    NULL ? ERR_reason_error_string(e) : "no certificates");
	else
		fprintf(stderr, "egressctl trace: TLS set-up failed: %s\n",
		    e != 0 && ERR_reason_error_string(e) != NULL ?
		    ERR_reason_error_string(e) : "error");
	return -1;
}

static void
follow(struct trace *tr, const char *start)
{
	struct url next;
	char err[512];

	if (url_parse(start, &next, err, sizeof(err)) != 0) {
		/* checked by the caller */
		tr->end = END_ERROR;
		return;
	}
	for (;;) {
		struct hop *h = &tr->hops[tr->nhops++];

		h->u = next;
		url_format(&h->u, h->url, sizeof(h->url));
		if (tr->src_text != NULL) {
			h->src = tr->src;
			h->has_src = 1;
		}
		decide_hop(tr, h);
		if (do_hop(tr, h) != 0) {
			tr->end = END_ERROR;
			fflush(stdout);
			fprintf(stderr, "egressctl trace: hop %zu (%s): %s\n",
			    tr->nhops, h->url, h->error);
		} else if (h->from_gateway) {
			tr->end = END_REFUSED;
		} else if (h->status < 300 || h->status > 399) {
			tr->end = END_FINAL;
		} else if (!h->has_location) {
			tr->end = END_NO_LOCATION;
		}
		if (!tr->json)
			print_hop_text(tr, h, tr->nhops);
		if (tr->end != END_NONE)
			return;
		/* Follow: unless it was seen, or it would be one too many. */
		url_parse(h->location, &next, err, sizeof(err));
		snprintf(tr->next_url, sizeof(tr->next_url), "%s", h->location);
		for (size_t i = 0; i < tr->nhops; i++)
			if (strcmp(tr->hops[i].url, h->location) == 0) {
				tr->end = END_LOOP;
				tr->loop_to = i + 1;
				return;
			}
		if (tr->nhops == tr->max_hops) {
			tr->end = END_MAX_HOPS;
			return;
		}
	}
}

/* One option into tr. 0, or -1 (said on stderr). */
static int
trace_option(struct trace *tr, int ch, const char *arg)
{
	switch (ch) {
	case 'c':
		tr->config = arg;
		return 0;
	case 'x':
		tr->via = arg;
		if (parse_via(tr, arg) == 0)
			return 0;
		fprintf(stderr, "egressctl trace: --via '%s': give HOST:PORT (the "
		    "gateway's connect or http listener)\n", arg);
		return -1;
	case 'C':
		tr->cacert = arg;
		return 0;
	case 's':
		if (ctl_parse_src(arg, &tr->src) == 0) {
			tr->src_text = arg;
			return 0;
		}
		fprintf(stderr, "egressctl trace: --src '%s': give an IPv4 or "
		    "IPv6 address\n", arg);
		return -1;
	case 'r':
		if (add_override(tr, arg) == 0)
			return 0;
		fprintf(stderr, "egressctl trace: --resolve '%s': give "
		    "HOST:PORT:ADDR with an IP address (at most %d)\n", arg,
		    RESOLVE_MAX);
		return -1;
	case 'm':
		if (parse_uint(arg, 1, HOPS_MAX, &tr->max_hops) == 0)
			return 0;
		fprintf(stderr, "egressctl trace: --max-hops '%s': give 1-%d\n",
		    arg, HOPS_MAX);
		return -1;
	case 't':
		if (parse_uint(arg, 1, 3600, &tr->timeout_s) == 0)
			return 0;
		fprintf(stderr, "egressctl trace: --timeout '%s': give whole "
		    "seconds, 1-3600\n", arg);
		return -1;
	case 'X':
		if (strcmp(arg, "HEAD") == 0)
			tr->head = 1;
		else if (strcmp(arg, "GET") != 0) {
			fprintf(stderr, "egressctl trace: --method '%s': give GET "
			    "or HEAD\n", arg);
			return -1;
		}
		return 0;
	case 'f':
		if (strcmp(arg, "json") == 0)
			tr->json = 1;
		else if (strcmp(arg, "text") != 0) {
			fprintf(stderr, "egressctl trace: --format '%s': give text "
			    "or json\n", arg);
			return -1;
		}
		return 0;
	}
	return -1;
}

/* The command line into tr and start. -1 when the command is over, with
 * its exit status in *rc; else 0. */
static int
trace_args(int argc, char **argv, struct trace *tr, struct url *start,
    int *rc)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "via", required_argument, NULL, 'x' },
		{ "cacert", required_argument, NULL, 'C' },
		{ "src", required_argument, NULL, 's' },
		{ "resolve", required_argument, NULL, 'r' },
		{ "max-hops", required_argument, NULL, 'm' },
		{ "timeout", required_argument, NULL, 't' },
		{ "method", required_argument, NULL, 'X' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char err[512];
	int ch;

	*rc = CTL_EXIT_USAGE;
	tr->max_hops = 10;
	tr->timeout_s = 10;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "c:x:s:m:t:X:f:h", opts,
	    NULL)) != -1) {
		if (ch == 'h') {
			trace_usage(stdout);
			*rc = CTL_EXIT_OK;
			return -1;
		}
		if (ch == '?' || ch == ':') {
			trace_usage(stderr);
			return -1;
		}
		if (trace_option(tr, ch, optarg) != 0)
			return -1;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "egressctl trace: give exactly one URL\n\n");
		trace_usage(stderr);
		return -1;
	}
	if (url_parse(argv[optind], start, err, sizeof(err)) != 0) {
		fprintf(stderr, "egressctl trace: '%s': %s\n", argv[optind], err);
		return -1;
	}
	if (tr->via != NULL && tr->noverrides > 0) {
		fprintf(stderr, "egressctl trace: --resolve applies to direct "
		    "requests; through --via the gateway resolves names\n");
		return -1;
	}
	if (tr->via != NULL && tr->src_text != NULL) {
		fprintf(stderr, "egressctl trace: --src applies to direct "
		    "requests; through --via the client is trace's own address, "
		    "as the gateway sees it\n");
		return -1;
	}
	return 0;
}

/* A failure leaves the chain unknown; a loop, a chain longer than
 * --max-hops, or a gateway that could not reach a hop (502, 504) does not
 * end it: those fail after denials are counted. */
static int
trace_status(const struct trace *tr)
{
	if (tr->end == END_ERROR)
		return CTL_EXIT_USAGE;
	if (count_denied(tr) > 0)
		return CTL_EXIT_FAIL;
	if (tr->end == END_LOOP || tr->end == END_MAX_HOPS ||
	    tr->end == END_REFUSED)
		return CTL_EXIT_USAGE;
	return CTL_EXIT_OK;
}

int
ctl_trace_main(int argc, char **argv)
{
	struct trace tr;
	struct url start;
	int rc;

	memset(&tr, 0, sizeof(tr));
	tr.via_listener = DC_L_CONNECT;
	if (trace_args(argc, argv, &tr, &start, &rc) != 0)
		return rc;
	rc = CTL_EXIT_USAGE;
	/* A peer closing mid-write is an error to report, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	tr.hops = calloc(HOPS_MAX, sizeof(*tr.hops));
	if (tr.hops == NULL) {
		fprintf(stderr, "egressctl: out of memory\n");
		return CTL_EXIT_USAGE;
	}
	if ((tr.config != NULL && load_policy(&tr) != 0) || tls_setup(&tr) != 0)
		goto out;
	url_format(&start, tr.next_url, sizeof(tr.next_url));
	if (!tr.json)
		printf("trace: %s%s%s, %s%s\n", tr.next_url, tr.via != NULL ?
		    " via " : " direct", tr.via != NULL ? tr.via : "",
		    tr.config != NULL ? "policy from " : "no policy given",
		    tr.config != NULL ? tr.config : "");
	follow(&tr, argv[optind]);
	if (tr.json)
		print_json(&tr, argv[optind]);
	else
		print_end_text(&tr);
	rc = trace_status(&tr);
out:
	fflush(stdout);
	free(tr.hops);
	SSL_CTX_free(tr.ssl_ctx);
	if (tr.dns != NULL)
		dns_resolver_free(tr.dns);
	if (tr.base != NULL)
		event_base_free(tr.base);
	pol_snapshot_unref(tr.snap);
	gw_config_free(tr.cfg);
	return rc;
}

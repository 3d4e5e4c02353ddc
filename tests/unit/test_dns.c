/*
 * test_dns: the address guard, numeric address text, and the resolver
 * against real dnsmasq servers on loopback ports this test picks and
 * starts: a forwarder-style one (--local, no SOA in negative answers) and
 * an authoritative one (--auth-zone, SOA TTL and MINIMUM both --auth-ttl),
 * which the stale-answer test kills half-way.
 *
 * dnsmasq missing or not starting is a failure, not a skip: the resolver
 * tests are the point. Everything is bounded: each wait has a deadline and
 * an alarm ends the whole run (killing dnsmasq) if something hangs.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns/dns.h"
#include "tests/unit/tap.h"

#define DNSMASQ "/usr/sbin/dnsmasq"

/* Test-only state: the alarm handler must be able to kill the servers. */
#define DNSMASQ_MAIN    0
#define DNSMASQ_AUTH    1
#define AUTH_TTL        2       /* the auth server's TTLs, SOA's included */
static volatile pid_t dnsmasq_pid[2] = { -1, -1 };
static char auth_hosts[64];     /* the auth server's --addn-hosts file */
#define STALE_TTL       3       /* test_stale's window */
static int in_resolve;          /* set around dns_resolve() calls */

/* ---- guard ---- */

struct guard_case {
	const char *addr;
	const char *cls;
};

static const struct guard_case guard_cases[] = {
	/* IPv4: each range, its first and last address, and the neighbours. */
	{ "0.0.0.0", "unspecified" },
	{ "0.255.255.255", "unspecified" },
	{ "1.0.0.0", "public" },
	{ "1.1.1.1", "public" },
	{ "8.8.8.8", "public" },
	{ "9.255.255.255", "public" },
	{ "10.0.0.0", "private" },
	{ "10.255.255.255", "private" },
	{ "11.0.0.0", "public" },
	{ "100.63.255.255", "public" },
	{ "100.64.0.0", "cgnat" },
	{ "100.127.255.255", "cgnat" },
	{ "100.128.0.0", "public" },
	{ "126.255.255.255", "public" },
	{ "127.0.0.0", "loopback" },
	{ "127.0.0.1", "loopback" },
	{ "127.255.255.255", "loopback" },
	{ "128.0.0.0", "public" },
	{ "169.253.255.255", "public" },
	{ "169.254.0.0", "link_local" },
	{ "169.254.169.254", "link_local" },
	{ "169.254.255.255", "link_local" },
	{ "169.255.0.0", "public" },
	{ "172.15.255.255", "public" },
	{ "172.16.0.0", "private" },
	{ "172.31.255.255", "private" },
	{ "172.32.0.0", "public" },
	{ "191.255.255.255", "public" },
	{ "192.0.0.0", "reserved" },
	{ "192.0.0.255", "reserved" },
	{ "192.0.1.0", "public" },
	{ "192.0.2.0", "reserved" },
	{ "192.0.2.255", "reserved" },
	{ "192.0.3.0", "public" },
	{ "192.167.255.255", "public" },
	{ "192.168.0.0", "private" },
	{ "192.168.255.255", "private" },
	{ "192.169.0.0", "public" },
	{ "198.17.255.255", "public" },
	{ "198.18.0.0", "reserved" },
	{ "198.19.255.255", "reserved" },
	{ "198.20.0.0", "public" },
	{ "198.51.99.255", "public" },
	{ "198.51.100.0", "reserved" },
	{ "198.51.100.255", "reserved" },
	{ "198.51.101.0", "public" },
	{ "203.0.112.255", "public" },
	{ "203.0.113.0", "reserved" },
	{ "203.0.113.255", "reserved" },
	{ "203.0.114.0", "public" },
	{ "223.255.255.255", "public" },
	{ "224.0.0.0", "multicast" },
	{ "239.255.255.255", "multicast" },
	{ "240.0.0.0", "reserved" },
	{ "255.255.255.254", "reserved" },
	{ "255.255.255.255", "reserved" },
	/* IPv6 natives. */
	{ "::", "unspecified" },
	{ "::1", "loopback" },
	{ "2606:4700::1", "public" },
	{ "2001:4860:4860::8888", "public" },
	{ "2001:db8::1", "reserved" },
	{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "reserved" },
	{ "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "public" },
	{ "2001:db9::", "public" },
	{ "2001:2::1", "reserved" },
	{ "100::1", "reserved" },
	{ "3fff::1", "reserved" },
	{ "3fff:fff:ffff::", "reserved" },
	{ "3fff:1000::", "public" },
	{ "3ffe:ffff::1", "public" },
	{ "4000::1", "reserved" },
	{ "1fff:ffff::1", "reserved" },
	{ "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved" },
	{ "fc00::", "private" },
	{ "fd12:3456::1", "private" },
	{ "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private" },
	{ "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved" },
	{ "fe80::", "link_local" },
	{ "fe80::1", "link_local" },
	{ "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link_local" },
	{ "fec0::1", "private" },
	{ "ff00::", "multicast" },
	{ "ff02::1", "multicast" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast" },
	/* IPv4-compatible and IPv4-mapped: the embedded class itself. */
	{ "::2", "unspecified" },
	{ "::808:808", "public" },
	{ "::a00:1", "private" },
	{ "::7f00:1", "loopback" },
	{ "::ffff:0.0.0.0", "unspecified" },
	{ "::ffff:127.0.0.1", "loopback" },
	{ "::ffff:10.0.0.5", "private" },
	{ "::ffff:169.254.169.254", "link_local" },
	{ "::ffff:100.64.0.1", "cgnat" },
	{ "::ffff:224.0.0.1", "multicast" },
	{ "::ffff:255.255.255.255", "reserved" },
	{ "::ffff:8.8.8.8", "public" },
	{ "::fffe:808:808", "reserved" },       /* neither form: outside 2000::/3 */
	/* NAT64. */
	{ "64:ff9b::a00:5", "translated" },
	{ "64:ff9b::7f00:1", "translated" },
	{ "64:ff9b::a9fe:a9fe", "translated" },
	{ "64:ff9b::", "translated" },
	{ "64:ff9b::808:808", "public" },
	{ "64:ff9b::ffff:ffff", "translated" },
	{ "64:ff9b:1::808:808", "translated" },
	{ "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "translated" },
	{ "64:ff9b:2::808:808", "reserved" },
	{ "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", "reserved" },
	/* 6to4. */
	{ "2002:0a00:0005::", "translated" },
	{ "2002:7f00:0001::1", "translated" },
	{ "2002:a9fe:a9fe::", "translated" },
	{ "2002:c0a8:0101::1", "translated" },
	{ "2002:0808:0808::", "public" },
	{ "2002:0808:0808:ffff:ffff:ffff:ffff:ffff", "public" },
	/* Teredo: client v4 inverted in the last 32 bits. */
	{ "2001:0:4136:e378:8000:63bf:f5ff:fffa", "translated" },   /* 10.0.0.5 */
	{ "2001:0:4136:e378:8000:63bf:3fff:fdd2", "translated" },   /* 192.0.2.45 */
	{ "2001::80ff:fffe", "translated" },                        /* 127.0.0.1 */
	{ "2001:0:4136:e378:8000:63bf:5601:5601", "translated" },   /* 169.254.169.254 */
	{ "2001:0:4136:e378:8000:63bf:f7f7:f7f7", "public" },       /* 8.8.8.8 */
	{ "2001:0:a00:1:8000:63bf:f7f7:f7f7", "public" },   /* server private: client decides */
};

static int
make_sa(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return 0;
	}
	return -1;
}

static void
test_guard(void)
{
	struct sockaddr_storage ss;
	const char *got;
	size_t i, bad = 0, n = sizeof(guard_cases) / sizeof(guard_cases[0]);
	int c;

	for (i = 0; i < n; i++) {
		if (make_sa(guard_cases[i].addr, &ss) < 0) {
			tap_diag("unparsable test address %s", guard_cases[i].addr);
			bad++;
			continue;
		}
		got = dns_addr_class_str(dns_addr_classify((struct sockaddr *)&ss));
		if (strcmp(got, guard_cases[i].cls) != 0) {
			tap_diag("%s: got %s, want %s", guard_cases[i].addr, got,
			    guard_cases[i].cls);
			bad++;
		}
	}
	tap_ok(n >= 60, "guard table has %zu addresses", n);
	tap_is_int(bad, 0, "guard table: every address classified as expected");

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	tap_is_str(dns_addr_class_str(dns_addr_classify((struct sockaddr *)&ss)),
	    "reserved", "other families are not public");
	tap_is_str(dns_addr_class_str(dns_addr_classify(NULL)), "reserved",
	    "NULL is not public");

	{
		static const char *const names[] = { "public", "unspecified",
		    "loopback", "private", "link_local", "cgnat", "multicast",
		    "reserved", "translated" };
		int ok = 1;

		for (c = DNS_ADDR_PUBLIC; c <= DNS_ADDR_TRANSLATED; c++)
			ok &= strcmp(dns_addr_class_str((enum dns_addr_class)c),
			    names[c]) == 0;
		tap_ok(ok, "dns_addr_class_str names every class");
	}
	tap_ok(strcmp(dns_status_str(DNS_OK), "ok") == 0 &&
	    strcmp(dns_status_str(DNS_NXDOMAIN), "dns_nxdomain") == 0 &&
	    strcmp(dns_status_str(DNS_FAILURE), "dns_failure") == 0 &&
	    strcmp(dns_status_str(DNS_TIMEOUT), "dns_timeout") == 0,
	    "dns_status_str gives the log reasons");
}

/* ---- addr parse / format ---- */

struct parse_case {
	const char *text;
	uint16_t def;
	int family;
	uint16_t port;
	const char *formatted;
};

static const struct parse_case parse_ok[] = {
	{ "1.2.3.4", 443, AF_INET, 443, "1.2.3.4:443" },
	{ "1.2.3.4:53", 443, AF_INET, 53, "1.2.3.4:53" },
	{ "1.2.3.4", 0, AF_INET, 0, "1.2.3.4" },
	{ "0.0.0.0:65535", 0, AF_INET, 65535, "0.0.0.0:65535" },
	{ "255.255.255.255:1", 0, AF_INET, 1, "255.255.255.255:1" },
	{ "[::1]:53", 443, AF_INET6, 53, "[::1]:53" },
	{ "::1", 53, AF_INET6, 53, "[::1]:53" },
	{ "[2001:db8::1]", 443, AF_INET6, 443, "[2001:db8::1]:443" },
	{ "2001:db8::1", 0, AF_INET6, 0, "2001:db8::1" },
	{ "[2001:DB8:0:0:0:0:0:1]:8443", 0, AF_INET6, 8443, "[2001:db8::1]:8443" },
	{ "::ffff:10.0.0.1", 0, AF_INET6, 0, "::ffff:10.0.0.1" },
	{ "::1:53", 7, AF_INET6, 7, "[::0.1.0.83]:7" },  /* bare v6: no port */
};

static const char *const parse_bad[] = {
	"", "example.com", "example.com:53", "localhost", "1.2.3.4:",
	"1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:99999", "1.2.3.4:123456",
	"1.2.3.4:5a", "1.2.3.4: 53", "1.2.3.4:+53", "1.2.3.4:-1", "1.2.3",
	"1.2.3.4.5", "256.1.1.1", "01.2.3.4", " 1.2.3.4", "1.2.3.4 ",
	"[1.2.3.4]:53", "[::1", "[::1]x", "[::1]:", "[]:53", "[]",
	"[fe80::1%eth0]:53", "fe80::1%eth0", ":::1", "1::2::3", "[::1]:65536",
	"::g", "0x7f.1", "1.2.3.4:53:53",
};

static void
test_addr(void)
{
	struct sockaddr_storage ss, ss2;
	socklen_t len;
	char out[64], tiny[6];
	size_t i;
	int bad = 0;

	/* Port and address comparison, for the loop guard and NONE. */
	dns_addr_parse("192.0.2.1:443", 0, &ss, &len);
	dns_addr_parse("192.0.2.1:80", 0, &ss2, &len);
	tap_is_int(dns_addr_port((struct sockaddr *)&ss), 443, "dns_addr_port v4");
	tap_ok(dns_addr_same_ip((struct sockaddr *)&ss, (struct sockaddr *)&ss2),
	    "same_ip ignores ports");
	dns_addr_parse("192.0.2.2:443", 0, &ss2, &len);
	tap_ok(!dns_addr_same_ip((struct sockaddr *)&ss, (struct sockaddr *)&ss2),
	    "same_ip: other v4 address");
	dns_addr_parse("[2001:db8::1]:8443", 0, &ss, &len);
	tap_is_int(dns_addr_port((struct sockaddr *)&ss), 8443, "dns_addr_port v6");
	dns_addr_parse("[2001:db8::1]", 0, &ss2, &len);
	tap_ok(dns_addr_same_ip((struct sockaddr *)&ss, (struct sockaddr *)&ss2),
	    "same_ip v6");
	dns_addr_parse("192.0.2.1", 0, &ss2, &len);
	tap_ok(!dns_addr_same_ip((struct sockaddr *)&ss, (struct sockaddr *)&ss2),
	    "same_ip: families differ");

	for (i = 0; i < sizeof(parse_ok) / sizeof(parse_ok[0]); i++) {
		const struct parse_case *c = &parse_ok[i];
		uint16_t port;

		len = 0;
		if (dns_addr_parse(c->text, c->def, &ss, &len) < 0) {
			tap_diag("\"%s\" rejected", c->text);
			bad++;
			continue;
		}
		port = ntohs(ss.ss_family == AF_INET ?
		    ((struct sockaddr_in *)&ss)->sin_port :
		    ((struct sockaddr_in6 *)&ss)->sin6_port);
		dns_addr_format((struct sockaddr *)&ss, out, sizeof(out));
		if (ss.ss_family != c->family || port != c->port ||
		    len != (c->family == AF_INET ? sizeof(struct sockaddr_in) :
		    sizeof(struct sockaddr_in6)) || strcmp(out, c->formatted) != 0) {
			tap_diag("\"%s\": family %d port %u len %u \"%s\"", c->text,
			    ss.ss_family, port, (unsigned)len, out);
			bad++;
			continue;
		}
		/* Round trip: the formatted text parses back to the same address. */
		if (dns_addr_parse(out, 0, &ss2, NULL) < 0 ||
		    memcmp(&ss, &ss2, sizeof(ss)) != 0) {
			tap_diag("\"%s\" does not round-trip", out);
			bad++;
		}
	}
	tap_is_int(bad, 0, "parse + format + round trip of %zu good forms",
	    sizeof(parse_ok) / sizeof(parse_ok[0]));

	bad = 0;
	for (i = 0; i < sizeof(parse_bad) / sizeof(parse_bad[0]); i++) {
		if (dns_addr_parse(parse_bad[i], 53, &ss, &len) == 0) {
			tap_diag("\"%s\" accepted", parse_bad[i]);
			bad++;
		}
	}
	tap_is_int(bad, 0, "%zu bad forms rejected", sizeof(parse_bad) / sizeof(parse_bad[0]));
	tap_ok(dns_addr_parse(NULL, 53, &ss, &len) < 0, "NULL text rejected");

	dns_addr_format(NULL, out, sizeof(out));
	tap_ok(out[0] == '\0', "NULL address formats as empty");
	make_sa("2001:db8::1", &ss);
	dns_addr_format((struct sockaddr *)&ss, tiny, sizeof(tiny));
	tap_ok(strlen(tiny) < sizeof(tiny), "a short buffer is never overrun");
}

/* ---- dnsmasq ---- */

static void
kill_dnsmasq(int which)
{
	pid_t pid = dnsmasq_pid[which];
	int i, status;

	if (pid <= 0)
		return;
	dnsmasq_pid[which] = -1;
	kill(pid, SIGTERM);
	for (i = 0; i < 200; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(10 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static void
on_alarm(int sig)
{
	static const char msg[] = "Bail out! test_dns took too long\n";
	pid_t pid0 = dnsmasq_pid[0], pid1 = dnsmasq_pid[1];

	(void)sig;
	if (pid0 > 0)
		kill(pid0, SIGKILL);
	if (pid1 > 0)
		kill(pid1, SIGKILL);
	if (auth_hosts[0] != '\0')
		unlink(auth_hosts);
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

/* Bind addr:port (0: any) with the given type; returns the fd, or -1. */
static int
bind_loopback(int family, int type, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	}
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;
	}
	if (bound != NULL) {
		len = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &len);
		*bound = ntohs(family == AF_INET ?
		    ((struct sockaddr_in *)&ss)->sin_port :
		    ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return fd;
}

/* A port free for UDP and TCP on 127.0.0.1 (and on ::1 when v6 is wanted). */
static int
free_port(int want_v6, uint16_t *port)
{
	int i, fds[4], k, ok;

	for (i = 0; i < 50; i++) {
		fds[0] = bind_loopback(AF_INET, SOCK_DGRAM, 0, port);
		if (fds[0] < 0)
			return -1;
		fds[1] = bind_loopback(AF_INET, SOCK_STREAM, *port, NULL);
		fds[2] = want_v6 ? bind_loopback(AF_INET6, SOCK_DGRAM, *port, NULL) : -2;
		fds[3] = want_v6 ? bind_loopback(AF_INET6, SOCK_STREAM, *port, NULL) : -2;
		ok = fds[1] != -1 && fds[2] != -1 && fds[3] != -1;
		for (k = 0; k < 4; k++)
			if (fds[k] >= 0)
				close(fds[k]);
		if (ok)
			return 0;
	}
	return -1;
}

static int
have_v6_loopback(void)
{
	int fd = bind_loopback(AF_INET6, SOCK_DGRAM, 0, NULL);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/*
 * Start dnsmasq with the common options plus args (NULL-terminated) on a
 * free loopback port; it is dnsmasq_pid[which] until killed.
 */
static int
spawn_dnsmasq(int which, int v6, char *const *args, uint16_t *port_out)
{
	char port_arg[32], *argv[64];
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	uint16_t port;
	pid_t pid;
	int i, n = 0, fd, status, devnull;

	if (access(DNSMASQ, X_OK) != 0) {
		tap_diag("%s: %s (install dnsmasq-base)", DNSMASQ, strerror(errno));
		return -1;
	}
	if (free_port(v6, &port) < 0) {
		tap_diag("no free loopback port");
		return -1;
	}
	snprintf(port_arg, sizeof(port_arg), "--port=%u", port);
	argv[n++] = DNSMASQ;
	argv[n++] = "--keep-in-foreground";
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--bind-interfaces";
	argv[n++] = v6 ? "--listen-address=127.0.0.1,::1" :
	    "--listen-address=127.0.0.1";
	argv[n++] = port_arg;
	argv[n++] = "--user=root";
	argv[n++] = "--pid-file=";
	argv[n++] = "--conf-file=/dev/null";
	for (i = 0; args[i] != NULL && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Dies with us even if this test crashes. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
			dup2(devnull, STDERR_FILENO);
		}
		execv(DNSMASQ, argv);
		_exit(127);
	}
	dnsmasq_pid[which] = pid;
	/* Up when its port is taken; gone if it exited. Five seconds at most. */
	for (i = 0; i < 250; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			dnsmasq_pid[which] = -1;
			tap_diag("dnsmasq exited early (status %d)", status);
			return -1;
		}
		fd = bind_loopback(AF_INET, SOCK_DGRAM, port, NULL);
		if (fd < 0 && errno == EADDRINUSE) {
			*port_out = port;
			return 0;
		}
		if (fd >= 0)
			close(fd);
		nanosleep(&pause, NULL);
	}
	tap_diag("dnsmasq did not start listening");
	kill_dnsmasq(which);
	return -1;
}

/* Answers --local names with their records, NXDOMAIN without an SOA. */
static int
start_dnsmasq(int v6, uint16_t *port_out)
{
	static char many[20][48];
	char *argv[48];
	int i, n = 0;

	argv[n++] = "--local=/test/";
	argv[n++] = "--local-ttl=60";
	argv[n++] = "--host-record=a.test,127.0.0.2";
	argv[n++] = "--host-record=b.test,127.0.0.3,fd00::3";
	argv[n++] = "--host-record=six.test,fd00::6";
	argv[n++] = "--host-record=c.test,127.0.0.4";
	argv[n++] = "--host-record=d.test,127.0.0.5";
	argv[n++] = "--host-record=e.test,127.0.0.6";
	argv[n++] = "--host-record=f.test,127.0.0.9";
	argv[n++] = "--host-record=g.test,127.0.0.8";
	argv[n++] = "--host-record=h.test,127.0.0.10";
	argv[n++] = "--host-record=ttl.test,127.0.0.7,1";
	argv[n++] = "--cname=alias.test,a.test";
	for (i = 0; i < 20; i++) {
		snprintf(many[i], sizeof(many[i]),
		    "--host-record=many.test,127.0.1.%d", i + 1);
		argv[n++] = many[i];
	}
	argv[n] = NULL;
	return spawn_dnsmasq(DNSMASQ_MAIN, v6, argv, port_out);
}

/*
 * Authoritative for "test": every reply carries the zone's SOA, whose TTL
 * and MINIMUM are both --auth-ttl (AUTH_TTL), as are the records' TTLs.
 * gone.test lives in a hosts file the test empties and then SIGHUPs.
 */
static int
start_dnsmasq_auth(uint16_t *port_out)
{
	static char hosts_arg[96], ttl_arg[32];
	char *argv[16];
	int n = 0, fd;

	snprintf(auth_hosts, sizeof(auth_hosts), "/tmp/test_dns_hosts.XXXXXX");
	fd = mkstemp(auth_hosts);
	if (fd < 0) {
		auth_hosts[0] = '\0';
		tap_diag("mkstemp: %s", strerror(errno));
		return -1;
	}
	if (write(fd, "127.0.0.9 gone.test\n", 20) != 20) {
		close(fd);
		return -1;
	}
	close(fd);
	snprintf(hosts_arg, sizeof(hosts_arg), "--addn-hosts=%s", auth_hosts);
	snprintf(ttl_arg, sizeof(ttl_arg), "--auth-ttl=%d", AUTH_TTL);
	argv[n++] = "--auth-server=ns.test,127.0.0.1";
	argv[n++] = "--auth-zone=test";
	argv[n++] = ttl_arg;
	argv[n++] = "--auth-soa=1,hostmaster.test,1200,180,1209600";
	argv[n++] = "--host-record=a.test,127.0.0.2";
	argv[n++] = "--host-record=b.test,127.0.0.3,fd00::3";
	argv[n++] = "--host-record=six.test,fd00::6";
	argv[n++] = hosts_arg;
	argv[n] = NULL;
	return spawn_dnsmasq(DNSMASQ_AUTH, 0, argv, port_out);
}

/* ---- event loop helpers ---- */

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Run the loop until *count reaches want or ms pass; 0 when reached. */
static int
run_until(struct event_base *base, const int *count, int want, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *deadline;
	int expired = 0, i;

	deadline = evtimer_new(base, deadline_cb, &expired);
	evtimer_add(deadline, &tv);
	for (i = 0; i < 100000 && !expired && (count == NULL || *count < want); i++)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
	return count != NULL && *count >= want ? 0 : -1;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop until the monotonic clock reads at_ms (now_ms() scale). */
static void
run_until_at(struct event_base *base, uint64_t at_ms)
{
	uint64_t now = now_ms();

	if (now < at_ms)
		run_until(base, NULL, 0, (int)(at_ms - now));
}

struct result {
	int calls;
	int reentrant;          /* called from inside dns_resolve() */
	struct dns_answer ans;
	uint64_t at_ms;
	struct dns_ticket *cancel_me;   /* cancelled from this callback */
	int *counter;           /* shared completion count */
};

static void
result_cb(void *arg, const struct dns_answer *ans)
{
	struct result *res = arg;

	res->calls++;
	if (in_resolve)
		res->reentrant = 1;
	res->ans = *ans;
	res->at_ms = now_ms();
	if (res->cancel_me != NULL) {
		dns_cancel(res->cancel_me);
		res->cancel_me = NULL;
	}
	if (res->counter != NULL)
		(*res->counter)++;
}

static struct dns_ticket *
resolve(struct dns_resolver *r, const char *name, struct result *res)
{
	struct dns_ticket *t;

	in_resolve = 1;
	t = dns_resolve(r, name, result_cb, res);
	in_resolve = 0;
	return t;
}

/* Resolve and wait (at most 3 s); 0 when the callback ran exactly once. */
static int
resolve_wait(struct event_base *base, struct dns_resolver *r,
    const char *name, struct result *res)
{
	memset(res, 0, sizeof(*res));
	if (resolve(r, name, res) == NULL)
		return -1;
	if (res->calls != 0)
		return -1;
	if (run_until(base, &res->calls, 1, 3000) < 0)
		return -1;
	return res->calls == 1 && !res->reentrant ? 0 : -1;
}

static int
addr_is(const struct sockaddr_storage *ss, const char *text)
{
	char out[64];

	dns_addr_format((const struct sockaddr *)ss, out, sizeof(out));
	if (strcmp(out, text) != 0) {
		tap_diag("  address %s, want %s", out, text);
		return 0;
	}
	return 1;
}

static struct dns_resolver *
new_resolver(struct event_base *base, const char *server, uint64_t timeout_ms,
    uint32_t min_ttl, uint32_t max_ttl)
{
	struct dns_config cfg;
	char err[256];
	struct dns_resolver *r;

	memset(&cfg, 0, sizeof(cfg));
	cfg.nservers = 1;
	cfg.servers[0] = server;
	cfg.timeout_ms = timeout_ms;
	cfg.min_ttl = min_ttl;
	cfg.max_ttl = max_ttl;
	err[0] = '\0';
	r = dns_resolver_new(base, &cfg, err, sizeof(err));
	if (r == NULL)
		tap_diag("dns_resolver_new(%s): %s", server, err);
	return r;
}

static void test_shared(struct event_base *base, struct dns_resolver *r);
static void test_cancel(struct event_base *base, struct dns_resolver *r,
    const char *server);
static void test_family(struct event_base *base, const char *server);

/* Any setting; the rest of cfg as the caller left it (0: defaults). */
static struct dns_resolver *
new_resolver_cfg(struct event_base *base, const char *server,
    struct dns_config *cfg)
{
	char err[256];
	struct dns_resolver *r;

	cfg->nservers = 1;
	cfg->servers[0] = server;
	err[0] = '\0';
	r = dns_resolver_new(base, cfg, err, sizeof(err));
	if (r == NULL)
		tap_diag("dns_resolver_new(%s): %s", server, err);
	return r;
}

static struct dns_resolver *
new_resolver_family(struct event_base *base, const char *server,
    enum dns_family family)
{
	struct dns_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.timeout_ms = 2000;
	cfg.family = family;
	return new_resolver_cfg(base, server, &cfg);
}

static struct dns_stats
stats_of(const struct dns_resolver *r)
{
	struct dns_stats st;

	dns_resolver_stats(r, &st);
	return st;
}

static void
test_resolver(struct event_base *base, uint16_t port, int v6)
{
	char server[64], server6[64];
	struct dns_resolver *r, *r2;
	struct dns_answer ans;
	struct dns_stats st, st0;
	struct result res, res2, res3;
	struct dns_ticket *t1, *t2, *t3;
	int i, ok, done;

	snprintf(server, sizeof(server), "127.0.0.1:%u", port);
	r = new_resolver(base, server, 2000, 0, 0);
	if (!tap_ok(r != NULL, "resolver for %s", server))
		return;

	/* A first lookup goes to the server and answers later, from the loop. */
	memset(&res, 0, sizeof(res));
	t1 = resolve(r, "a.test", &res);
	tap_ok(t1 != NULL && res.calls == 0, "a.test: ticket, no callback yet");
	run_until(base, &res.calls, 1, 3000);
	tap_ok(res.calls == 1 && !res.reentrant, "a.test: callback once, from the loop");
	tap_ok(res.ans.status == DNS_OK && res.ans.naddrs == 1 &&
	    addr_is(&res.ans.addrs[0], "127.0.0.2") && !res.ans.from_cache,
	    "a.test: OK, 127.0.0.2, not from cache");
	tap_ok(res.ans.ttl > 0 && res.ans.ttl <= 60, "a.test: ttl %u in (0, 60]",
	    res.ans.ttl);
	dns_resolver_stats(r, &st);
	tap_is_int(st.queries, 1, "one query so far");

	/* The cache answers the second time. */
	memset(&ans, 0, sizeof(ans));
	tap_ok(dns_lookup_cached(r, "a.test", &ans) == 1 && ans.status == DNS_OK &&
	    ans.from_cache && ans.naddrs == 1 && addr_is(&ans.addrs[0], "127.0.0.2"),
	    "dns_lookup_cached: hit with the same address");
	tap_ok(dns_lookup_cached(r, "A.Test.", &ans) == 1,
	    "cache key is case-insensitive, trailing dot ignored");
	tap_ok(dns_lookup_cached(r, "b.test", &ans) == 0, "dns_lookup_cached: miss");
	dns_resolver_stats(r, &st);
	tap_ok(st.hits == 2 && st.misses == 1, "hits %llu misses %llu counted",
	    (unsigned long long)st.hits, (unsigned long long)st.misses);

	/* dns_resolve on a cached name: still deferred, no new query. */
	tap_ok(resolve_wait(base, r, "a.test", &res) == 0 && res.ans.from_cache &&
	    res.ans.status == DNS_OK, "dns_resolve of a cached name: from cache, deferred");
	dns_resolver_stats(r, &st);
	tap_is_int(st.queries, 1, "cached answer sent no query");

	/* Both families, v4 first. */
	tap_ok(resolve_wait(base, r, "b.test", &res) == 0 &&
	    res.ans.status == DNS_OK && res.ans.naddrs == 2 &&
	    addr_is(&res.ans.addrs[0], "127.0.0.3") &&
	    addr_is(&res.ans.addrs[1], "fd00::3"),
	    "b.test: A then AAAA");
	tap_ok(resolve_wait(base, r, "six.test", &res) == 0 &&
	    res.ans.status == DNS_OK && res.ans.naddrs == 1 &&
	    addr_is(&res.ans.addrs[0], "fd00::6"), "six.test: AAAA only");
	tap_ok(resolve_wait(base, r, "alias.test", &res) == 0 &&
	    res.ans.status == DNS_OK && res.ans.naddrs == 1 &&
	    addr_is(&res.ans.addrs[0], "127.0.0.2"), "alias.test: CNAME followed");
	tap_ok(resolve_wait(base, r, "many.test", &res) == 0 &&
	    res.ans.status == DNS_OK && res.ans.naddrs == DNS_MAX_ADDRS,
	    "many.test: 20 records, %d kept", DNS_MAX_ADDRS);

	/* NXDOMAIN, negatively cached. */
	tap_ok(resolve_wait(base, r, "nx.test", &res) == 0 &&
	    res.ans.status == DNS_NXDOMAIN && res.ans.naddrs == 0,
	    "nx.test: DNS_NXDOMAIN");
	tap_is_int(res.ans.ttl, 30, "nx.test: no SOA in the reply: neg_ttl "
	    "(default 30)");
	ok = dns_lookup_cached(r, "nx.test", &ans);
	tap_ok(ok == 1 && ans.status == DNS_NXDOMAIN && ans.ttl == 30 &&
	    ans.from_cache && !ans.stale, "nx.test: negative answer cached, "
	    "ttl %u", ans.ttl);
	tap_is_int(stats_of(r).negative, 1, "stats: one negative answer");

	/* A refusing server is a failure, and failures are not cached. */
	dns_resolver_stats(r, &st0);
	tap_ok(resolve_wait(base, r, "example.com", &res) == 0 &&
	    res.ans.status == DNS_FAILURE, "example.com (REFUSED): DNS_FAILURE");
	tap_ok(dns_lookup_cached(r, "example.com", &ans) == 0, "failure not cached");
	dns_resolver_stats(r, &st);
	tap_is_int(st.failures - st0.failures, 1, "failure counted");

	/* Names that must never reach c-ares. */
	{
		char longname[300];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		for (i = 0; i < 250; i += 50)
			longname[i] = '.';
		memset(&res, 0, sizeof(res));
		ok = resolve(r, "", &res) == NULL &&
		    resolve(r, "a..test", &res) == NULL &&
		    resolve(r, ".a.test", &res) == NULL &&
		    resolve(r, "a b.test", &res) == NULL &&
		    resolve(r, "a\\.test", &res) == NULL &&
		    resolve(r, longname, &res) == NULL &&
		    resolve(r, NULL, &res) == NULL &&
		    dns_resolve(r, "a.test", NULL, NULL) == NULL;
		run_until(base, NULL, 0, 20);
		tap_ok(ok && res.calls == 0, "invalid names rejected, no callback");
	}

	/* TTL: the record's own, and clamped by min_ttl / max_ttl. */
	tap_ok(resolve_wait(base, r, "ttl.test", &res) == 0 &&
	    res.ans.status == DNS_OK && res.ans.ttl == 1, "ttl.test: ttl 1");
	r2 = new_resolver(base, server, 2000, 10, 0);
	tap_ok(r2 != NULL && resolve_wait(base, r2, "ttl.test", &res) == 0 &&
	    res.ans.ttl == 10, "min_ttl 10 raises ttl 1 to 10");
	tap_ok(r2 != NULL && dns_lookup_cached(r2, "b.test", &ans) == 0,
	    "two resolvers keep separate caches");
	dns_resolver_free(r2);
	r2 = new_resolver(base, server, 2000, 0, 5);
	tap_ok(r2 != NULL && resolve_wait(base, r2, "a.test", &res) == 0 &&
	    res.ans.ttl == 5, "max_ttl 5 lowers ttl 60 to 5");
	tap_ok(r2 != NULL && dns_lookup_cached(r2, "a.test", &ans) == 1 &&
	    ans.ttl == 5, "and it is cached for 5 s (ttl %u)", ans.ttl);
	dns_resolver_free(r2);
	r2 = new_resolver(base, server, 2000, 20, 5);
	tap_ok(r2 != NULL && resolve_wait(base, r2, "ttl.test", &res) == 0 &&
	    res.ans.ttl == 20, "min_ttl 20 above max_ttl 5: min_ttl wins (%u)",
	    res.ans.ttl);
	tap_ok(r2 != NULL && resolve_wait(base, r2, "nx.test", &res) == 0 &&
	    res.ans.status == DNS_NXDOMAIN && res.ans.ttl == 30,
	    "min_ttl does not stretch negative answers (%u)", res.ans.ttl);
	dns_resolver_free(r2);
	r2 = new_resolver(base, server, 2000, 0, 0);
	tap_ok(r2 != NULL && resolve_wait(base, r2, "a.test", &res) == 0 &&
	    res.ans.ttl == 60, "max_ttl 0: default 3600 keeps ttl 60");
	dns_resolver_free(r2);
	run_until(base, NULL, 0, 1100);
	tap_ok(dns_lookup_cached(r, "ttl.test", &ans) == 0, "ttl.test expired after 1 s");
	tap_ok(dns_lookup_cached(r, "a.test", &ans) == 1, "a.test still cached");

	/* Three lookups of one name share one query; a cancelled one stays silent. */
	dns_resolver_stats(r, &st0);
	memset(&res, 0, sizeof(res));
	memset(&res2, 0, sizeof(res2));
	memset(&res3, 0, sizeof(res3));
	done = 0;
	res.counter = res3.counter = &done;
	t1 = resolve(r, "e.test", &res);
	t2 = resolve(r, "e.test", &res2);
	t3 = resolve(r, "e.test", &res3);
	tap_ok(t1 && t2 && t3 && t1 != t2 && t2 != t3, "three tickets for e.test");
	dns_cancel(t2);
	run_until(base, &done, 2, 3000);
	run_until(base, NULL, 0, 50);
	dns_resolver_stats(r, &st);
	tap_is_int(st.queries - st0.queries, 1, "three concurrent lookups: one query");
	tap_ok(res.calls == 1 && res3.calls == 1 && res.ans.status == DNS_OK &&
	    res3.ans.status == DNS_OK && addr_is(&res3.ans.addrs[0], "127.0.0.6"),
	    "the two live tickets got the answer once each");
	tap_is_int(res2.calls, 0, "the cancelled ticket's callback never ran");

	/* One callback cancels a sibling ticket of the same query. */
	memset(&res, 0, sizeof(res));
	memset(&res2, 0, sizeof(res2));
	t1 = resolve(r, "g.test", &res);
	t2 = resolve(r, "g.test", &res2);
	res.cancel_me = t2;
	run_until(base, &res.calls, 1, 3000);
	run_until(base, NULL, 0, 50);
	tap_ok(res.calls == 1 && res2.calls == 0,
	    "a ticket cancelled from a sibling's callback is not called");

	test_shared(base, r);
	test_cancel(base, r, server);
	test_family(base, server);

	/* Every ticket cancelled: the answer is still cached. */
	memset(&res, 0, sizeof(res));
	t1 = resolve(r, "d.test", &res);
	dns_cancel(t1);
	ok = 0;
	for (i = 0; i < 100 && !ok; i++) {
		run_until(base, NULL, 0, 20);
		ok = dns_lookup_cached(r, "d.test", &ans) == 1;
	}
	tap_ok(ok && ans.status == DNS_OK && addr_is(&ans.addrs[0], "127.0.0.5"),
	    "answer of a fully cancelled query is cached");
	tap_is_int(res.calls, 0, "and its callback never ran");

	/* Cancelling an answer served from the cache. */
	memset(&res, 0, sizeof(res));
	t1 = resolve(r, "a.test", &res);
	dns_cancel(t1);
	dns_cancel(NULL);
	run_until(base, NULL, 0, 50);
	tap_is_int(res.calls, 0, "cancelled cache answer: no callback");

	/*
	 * The cache is bounded: 10,100 names, the oldest are evicted. In
	 * batches of 100: bigger bursts overflow dnsmasq's socket buffer and
	 * turn into c-ares retries, which only makes the test slow.
	 */
	{
		static struct result many[100];
		char name[32];
		int batch, k, launched = 0, answered = 0, first_gone, last_kept;

		for (batch = 0; batch < 101; batch++) {
			done = 0;
			for (k = 0; k < 100; k++) {
				memset(&many[k], 0, sizeof(many[k]));
				many[k].counter = &done;
				snprintf(name, sizeof(name), "nx%d.test", batch * 100 + k);
				launched += resolve(r, name, &many[k]) != NULL;
			}
			run_until(base, &done, 100, 5000);
			for (k = 0; k < 100; k++)
				answered += many[k].calls == 1 &&
				    many[k].ans.status == DNS_NXDOMAIN;
			if (done < 100)
				break;
		}
		first_gone = dns_lookup_cached(r, "nx0.test", &ans) == 0;
		last_kept = dns_lookup_cached(r, "nx10099.test", &ans) == 1;
		tap_ok(launched == 10100 && answered == 10100,
		    "10100 lookups answered NXDOMAIN (%d/%d)", answered, launched);
		tap_ok(first_gone && last_kept,
		    "cache bounded: oldest evicted, newest kept");
	}

	/* The same resolver over IPv6 transport. */
	if (v6) {
		snprintf(server6, sizeof(server6), "[::1]:%u", port);
		r2 = new_resolver(base, server6, 2000, 0, 0);
		tap_ok(r2 != NULL && resolve_wait(base, r2, "c.test", &res) == 0 &&
		    res.ans.status == DNS_OK && addr_is(&res.ans.addrs[0], "127.0.0.4"),
		    "server [::1]:%u answers", port);
		dns_resolver_free(r2);
	} else {
		tap_diag("no IPv6 loopback: [::1] server not tested");
	}

	/* Freed with a cache answer waiting for delivery and a query in flight. */
	memset(&res, 0, sizeof(res));
	memset(&res2, 0, sizeof(res2));
	t1 = resolve(r, "a.test", &res);
	t2 = resolve(r, "pending.test", &res2);
	tap_ok(t1 != NULL && t2 != NULL, "two lookups pending at free");
	dns_resolver_free(r);
	run_until(base, NULL, 0, 100);
	tap_ok(res.calls == 0 && res2.calls == 0, "dns_resolver_free: pending callbacks not called");
}


/* N lookups of one name in flight at once: one query, N callbacks. */
#define SHARED_N 50

static void
test_shared(struct event_base *base, struct dns_resolver *r)
{
	static struct result many[SHARED_N];
	struct dns_stats st0, st;
	int k, done = 0, started = 0, once = 0, right = 0;

	st0 = stats_of(r);
	for (k = 0; k < SHARED_N; k++) {
		memset(&many[k], 0, sizeof(many[k]));
		many[k].counter = &done;
		started += resolve(r, "f.test", &many[k]) != NULL;
	}
	run_until(base, &done, SHARED_N, 3000);
	run_until(base, NULL, 0, 50);
	st = stats_of(r);
	for (k = 0; k < SHARED_N; k++) {
		once += many[k].calls == 1 && !many[k].reentrant;
		right += many[k].ans.status == DNS_OK && many[k].ans.naddrs == 1 &&
		    !many[k].ans.from_cache &&
		    addr_is(&many[k].ans.addrs[0], "127.0.0.9");
	}
	tap_is_int(started, SHARED_N, "%d concurrent lookups of f.test started",
	    SHARED_N);
	tap_is_int(st.queries - st0.queries, 1, "%d concurrent lookups: one query",
	    SHARED_N);
	tap_ok(once == SHARED_N && right == SHARED_N && done == SHARED_N,
	    "%d callbacks, each once, each with 127.0.0.9 (%d, %d)", SHARED_N,
	    once, right);
	tap_ok(st.hits == st0.hits && st.failures == st0.failures,
	    "no hits or failures counted for them");
}

/*
 * A callback that acts on other tickets as a closing connection would:
 * cancels a list of them, and starts then cancels a new lookup.
 */
struct canceller {
	struct result res;
	struct dns_resolver *r;
	struct dns_ticket *cancel[4];
	size_t ncancel;
	const char *again;              /* lookup started, then cancelled */
	struct result again_res;
	int again_started;
};

static void
canceller_cb(void *arg, const struct dns_answer *ans)
{
	struct canceller *c = arg;
	struct dns_ticket *t;
	size_t i;

	result_cb(&c->res, ans);
	for (i = 0; i < c->ncancel; i++)
		dns_cancel(c->cancel[i]);
	c->ncancel = 0;
	if (c->again != NULL) {
		t = dns_resolve(c->r, c->again, result_cb, &c->again_res);
		c->again_started = t != NULL;
		dns_cancel(t);
		c->again = NULL;
	}
}

static void
test_cancel(struct event_base *base, struct dns_resolver *r,
    const char *server)
{
	struct canceller c;
	struct result res[4], idle;
	struct dns_ticket *t[4], *tc;
	struct dns_resolver *r2;
	int k, silent;

	/*
	 * The first of five tickets of one query cancels the next three and
	 * a ticket of another query still in flight, then starts and cancels
	 * a new lookup of the same name: only the first and last are called.
	 */
	memset(&c, 0, sizeof(c));
	memset(res, 0, sizeof(res));
	memset(&idle, 0, sizeof(idle));
	c.r = r;
	tc = dns_resolve(r, "h.test", canceller_cb, &c);
	for (k = 0; k < 4; k++)
		t[k] = resolve(r, "h.test", &res[k]);
	c.cancel[0] = t[0];
	c.cancel[1] = t[1];
	c.cancel[2] = t[2];
	c.cancel[3] = resolve(r, "nx-cancel.test", &idle);
	c.ncancel = 4;
	c.again = "h.test";
	tap_ok(tc != NULL && t[3] != NULL && c.cancel[3] != NULL,
	    "five tickets for h.test, one for nx-cancel.test");
	run_until(base, &res[3].calls, 1, 3000);
	run_until(base, NULL, 0, 200);
	tap_ok(c.res.calls == 1 && res[3].calls == 1 &&
	    res[0].calls + res[1].calls + res[2].calls == 0,
	    "cancelled from a sibling's callback: not called; the rest once");
	tap_ok(c.again_started && c.again_res.calls == 0,
	    "a lookup started and cancelled inside a callback: not called");
	tap_is_int(idle.calls, 0, "a ticket of another query, cancelled from a "
	    "callback: not called");
	tap_ok(dns_lookup_cached(r, "nx-cancel.test", &c.res.ans) == 1 &&
	    c.res.ans.status == DNS_NXDOMAIN,
	    "its query still ran and was cached");

	/* Cancelled before any answer: never called, the answers cached. */
	silent = 1;
	memset(res, 0, sizeof(res));
	for (k = 0; k < 4; k++)
		t[k] = resolve(r, k % 2 ? "c.test" : "nx-early.test", &res[k]);
	for (k = 0; k < 4; k++)
		dns_cancel(t[k]);
	run_until(base, NULL, 0, 200);
	for (k = 0; k < 4; k++)
		silent &= res[k].calls == 0;
	tap_ok(silent && dns_lookup_cached(r, "c.test", &idle.ans) == 1 &&
	    dns_lookup_cached(r, "nx-early.test", &idle.ans) == 1,
	    "tickets cancelled before the answer: never called, answers cached");

	/*
	 * A resolver freed with queries at c-ares, some tickets cancelled,
	 * some live: nothing is called, nothing leaks (the sanitizer build
	 * checks the latter).
	 */
	r2 = new_resolver(base, server, 2000, 0, 0);
	if (!tap_ok(r2 != NULL, "second resolver"))
		return;
	memset(res, 0, sizeof(res));
	for (k = 0; k < 4; k++)
		t[k] = resolve(r2, k % 2 ? "b.test" : "nx-free.test", &res[k]);
	dns_cancel(t[0]);
	dns_cancel(t[3]);
	dns_resolver_free(r2);
	run_until(base, NULL, 0, 200);
	silent = 1;
	for (k = 0; k < 4; k++)
		silent &= res[k].calls == 0;
	tap_ok(silent, "resolver freed mid-lookup, tickets half cancelled: "
	    "no callback");
}

/* Which addresses, in which order, for each family setting. */
static void
test_family(struct event_base *base, const char *server)
{
	static const struct {
		enum dns_family family;
		const char *name;
		enum dns_status status;
		size_t naddrs;
		const char *first, *second;
	} cases[] = {
		{ DNS_FAMILY_PREFER_V4, "b.test", DNS_OK, 2, "127.0.0.3", "fd00::3" },
		{ DNS_FAMILY_PREFER_V6, "b.test", DNS_OK, 2, "fd00::3", "127.0.0.3" },
		{ DNS_FAMILY_V4_ONLY, "b.test", DNS_OK, 1, "127.0.0.3", NULL },
		{ DNS_FAMILY_V6_ONLY, "b.test", DNS_OK, 1, "fd00::3", NULL },
		{ DNS_FAMILY_PREFER_V6, "a.test", DNS_OK, 1, "127.0.0.2", NULL },
		{ DNS_FAMILY_PREFER_V4, "six.test", DNS_OK, 1, "fd00::6", NULL },
		{ DNS_FAMILY_V4_ONLY, "six.test", DNS_NXDOMAIN, 0, NULL, NULL },
		{ DNS_FAMILY_V6_ONLY, "a.test", DNS_NXDOMAIN, 0, NULL, NULL },
		{ DNS_FAMILY_V6_ONLY, "alias.test", DNS_NXDOMAIN, 0, NULL, NULL },
		{ DNS_FAMILY_PREFER_V4, "192.0.2.1", DNS_OK, 1, "192.0.2.1", NULL },
		{ DNS_FAMILY_V6_ONLY, "192.0.2.1", DNS_NXDOMAIN, 0, NULL, NULL },
	};
	struct dns_resolver *r;
	struct dns_answer ans;
	struct dns_stats st;
	struct result res;
	size_t i;
	int ok, cached;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = new_resolver_family(base, server, cases[i].family);
		if (r == NULL) {
			tap_ok(0, "resolver for %s", dns_family_str(cases[i].family));
			continue;
		}
		ok = resolve_wait(base, r, cases[i].name, &res) == 0 &&
		    res.ans.status == cases[i].status &&
		    res.ans.naddrs == cases[i].naddrs &&
		    (cases[i].first == NULL || addr_is(&res.ans.addrs[0], cases[i].first)) &&
		    (cases[i].second == NULL || addr_is(&res.ans.addrs[1], cases[i].second));
		/* The cache holds the answer as the setting shaped it. */
		memset(&ans, 0, sizeof(ans));
		cached = dns_lookup_cached(r, cases[i].name, &ans);
		if (cases[i].first != NULL && strcmp(cases[i].name, "192.0.2.1") != 0)
			ok = ok && cached == 1 && ans.naddrs == cases[i].naddrs &&
			    addr_is(&ans.addrs[0], cases[i].first) &&
			    (cases[i].second == NULL ||
			    addr_is(&ans.addrs[1], cases[i].second));
		tap_ok(ok, "%s %s: %s, %zu address(es)%s%s%s%s",
		    dns_family_str(cases[i].family), cases[i].name,
		    dns_status_str(cases[i].status), cases[i].naddrs,
		    cases[i].first ? ", " : "", cases[i].first ? cases[i].first : "",
		    cases[i].second ? " then " : "",
		    cases[i].second ? cases[i].second : "");
		if (strcmp(cases[i].name, "192.0.2.1") == 0) {
			dns_resolver_stats(r, &st);
			tap_ok(res.ans.ttl == 0 && cached == 0 && st.queries == 0,
			    "an IPv4 literal: no query, ttl 0, not cached");
		}
		dns_resolver_free(r);
	}
}

/*
 * Negative answers live as the SOA says (RFC 2308), clamped to
 * [1, neg_ttl]; the auth server's SOA TTL and MINIMUM are AUTH_TTL.
 */
static void
test_negative(struct event_base *base, uint16_t port)
{
	struct dns_config cfg;
	struct dns_resolver *r, *r1;
	struct dns_answer ans;
	struct dns_stats st;
	struct result res;
	char server[64];

	snprintf(server, sizeof(server), "127.0.0.1:%u", port);
	memset(&cfg, 0, sizeof(cfg));
	cfg.timeout_ms = 2000;
	r = new_resolver_cfg(base, server, &cfg);
	if (!tap_ok(r != NULL, "resolver for the auth server %s", server))
		return;
	tap_ok(resolve_wait(base, r, "a.test", &res) == 0 &&
	    res.ans.status == DNS_OK && res.ans.ttl == AUTH_TTL,
	    "auth a.test: OK, ttl %u", res.ans.ttl);
	tap_ok(resolve_wait(base, r, "nx.test", &res) == 0 &&
	    res.ans.status == DNS_NXDOMAIN && !res.ans.from_cache,
	    "auth nx.test: DNS_NXDOMAIN");
	tap_is_int(res.ans.ttl, AUTH_TTL, "NXDOMAIN ttl from the SOA, not "
	    "neg_ttl 30");
	tap_ok(dns_lookup_cached(r, "nx.test", &ans) == 1 &&
	    ans.status == DNS_NXDOMAIN && ans.ttl == AUTH_TTL,
	    "cached for the SOA's %d s (ttl %u)", AUTH_TTL, ans.ttl);

	/* NODATA: six.test has AAAA only; v4_only never asks for it. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.timeout_ms = 2000;
	cfg.family = DNS_FAMILY_V4_ONLY;
	r1 = new_resolver_cfg(base, server, &cfg);
	tap_ok(r1 != NULL && resolve_wait(base, r1, "six.test", &res) == 0 &&
	    res.ans.status == DNS_NXDOMAIN && res.ans.ttl == AUTH_TTL,
	    "v4_only six.test: no data, ttl %u from the SOA", res.ans.ttl);
	dns_resolver_free(r1);

	/* neg_ttl is the upper clamp. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.timeout_ms = 2000;
	cfg.neg_ttl = 1;
	r1 = new_resolver_cfg(base, server, &cfg);
	tap_ok(r1 != NULL && resolve_wait(base, r1, "nx.test", &res) == 0 &&
	    res.ans.status == DNS_NXDOMAIN && res.ans.ttl == 1,
	    "neg_ttl 1 clamps the SOA's %d s to 1 (ttl %u)", AUTH_TTL,
	    res.ans.ttl);
	dns_resolver_free(r1);

	/* Gone after AUTH_TTL seconds: asked again, not answered from cache. */
	run_until(base, NULL, 0, AUTH_TTL * 1000 + 100);
	tap_ok(dns_lookup_cached(r, "nx.test", &ans) == 0,
	    "NXDOMAIN expired after %d s", AUTH_TTL);
	st = stats_of(r);
	tap_ok(resolve_wait(base, r, "nx.test", &res) == 0 &&
	    res.ans.status == DNS_NXDOMAIN && !res.ans.from_cache &&
	    stats_of(r).queries == st.queries + 1,
	    "and asked again");
	st = stats_of(r);
	tap_ok(st.negative == 2 && st.failures == 0 && st.stale == 0,
	    "stats: negative %llu", (unsigned long long)st.negative);
	dns_resolver_free(r);
}

/* Empty the auth server's hosts file and make it reread it. */
static int
auth_forget_gone(void)
{
	int fd = open(auth_hosts, O_WRONLY | O_TRUNC);

	if (fd < 0)
		return -1;
	close(fd);
	return kill(dnsmasq_pid[DNSMASQ_AUTH], SIGHUP);
}

/*
 * Stale answers, against the auth server (records live AUTH_TTL s), which
 * this test first changes, then silences, then kills.
 */
static void
test_stale(struct event_base *base, uint16_t port)
{
	struct dns_config cfg;
	struct dns_resolver *r, *roff;
	struct dns_answer ans;
	struct dns_stats st0, st;
	struct result res, res2;
	char server[64];
	uint64_t t0, t_nx;
	int fd, ok;

	snprintf(server, sizeof(server), "127.0.0.1:%u", port);
	memset(&cfg, 0, sizeof(cfg));
	cfg.timeout_ms = 500;
	cfg.stale_ttl = STALE_TTL;
	cfg.neg_ttl = 1;        /* gone.test's NXDOMAIN expires within the window */
	r = new_resolver_cfg(base, server, &cfg);
	memset(&cfg, 0, sizeof(cfg));
	cfg.timeout_ms = 500;
	cfg.stale_ttl = DNS_STALE_OFF;
	roff = new_resolver_cfg(base, server, &cfg);
	if (!tap_ok(r != NULL && roff != NULL, "resolvers with stale_ttl %d and off",
	    STALE_TTL))
		goto out;

	t0 = now_ms();
	tap_ok(resolve_wait(base, r, "a.test", &res) == 0 &&
	    res.ans.status == DNS_OK && !res.ans.stale && res.ans.ttl == AUTH_TTL,
	    "a.test: fresh, ttl %u", res.ans.ttl);
	tap_ok(resolve_wait(base, roff, "a.test", &res) == 0 &&
	    res.ans.status == DNS_OK, "a.test (stale off): fresh");
	tap_ok(resolve_wait(base, r, "gone.test", &res) == 0 &&
	    res.ans.status == DNS_OK && addr_is(&res.ans.addrs[0], "127.0.0.9"),
	    "gone.test: 127.0.0.9, for now");
	tap_ok(auth_forget_gone() == 0, "gone.test removed from the server");

	/* Expired: a stale entry is no hit, and NXDOMAIN replaces it. */
	run_until_at(base, t0 + AUTH_TTL * 1000 + 100);
	st0 = stats_of(r);
	tap_ok(dns_lookup_cached(r, "a.test", &ans) == 0,
	    "expired a.test: dns_lookup_cached misses");
	tap_ok(resolve_wait(base, r, "gone.test", &res) == 0 &&
	    res.ans.status == DNS_NXDOMAIN && !res.ans.stale,
	    "gone.test now NXDOMAIN: an answer, not replaced by stale data");
	t_nx = now_ms();

	/* Silenced: a socket on its port that never answers. */
	kill_dnsmasq(DNSMASQ_AUTH);
	fd = bind_loopback(AF_INET, SOCK_DGRAM, port, NULL);
	tap_ok(fd >= 0, "auth server replaced by a silent socket");
	tap_ok(resolve_wait(base, r, "a.test", &res) == 0 &&
	    res.ans.status == DNS_OK && res.ans.stale && res.ans.from_cache &&
	    res.ans.ttl == 0 && res.ans.stale_age <= 1 && res.ans.naddrs == 1 &&
	    addr_is(&res.ans.addrs[0], "127.0.0.2"),
	    "DNS timed out: stale a.test served (stale_age %u s)",
	    res.ans.stale_age);
	tap_ok(resolve_wait(base, roff, "a.test", &res2) == 0 &&
	    res2.ans.status == DNS_TIMEOUT && !res2.ans.stale,
	    "stale_ttl off: DNS_TIMEOUT");
	if (fd >= 0)
		close(fd);

	/*
	 * Gone: the port refuses. gone.test's NXDOMAIN (neg_ttl 1) has
	 * expired by now; its old address would still be in the window.
	 */
	run_until_at(base, t_nx + 1100);
	tap_ok(now_ms() < t0 + (AUTH_TTL + STALE_TTL) * 1000,
	    "still inside the stale window");
	tap_ok(resolve_wait(base, r, "gone.test", &res) == 0 &&
	    res.ans.status == DNS_FAILURE && !res.ans.stale,
	    "gone.test: DNS_FAILURE, its stale entry died with the NXDOMAIN");
	ok = resolve_wait(base, r, "a.test", &res) == 0;
	tap_ok(ok && res.ans.status == DNS_OK && res.ans.stale,
	    "DNS refused: stale a.test served (stale_age %u s)",
	    res.ans.stale_age);
	st = stats_of(r);
	tap_is_int(st.failures - st0.failures, 3, "stats: 3 failures");
	tap_is_int(st.stale - st0.stale, 2, "stats: 2 of them answered stale");
	tap_is_int(st.negative - st0.negative, 1, "stats: 1 negative");

	/* Past the stale window: the failure itself. */
	run_until_at(base, t0 + (AUTH_TTL + STALE_TTL) * 1000 + 200);
	tap_ok(resolve_wait(base, r, "a.test", &res) == 0 &&
	    res.ans.status == DNS_FAILURE && !res.ans.stale,
	    "past stale_ttl: DNS_FAILURE");
out:
	dns_resolver_free(r);
	dns_resolver_free(roff);
}

static void
test_family_names(void)
{
	static const char *const names[] = { "prefer_v4", "prefer_v6",
	    "v4_only", "v6_only" };
	enum dns_family f;
	size_t i;
	int ok = 1;

	for (i = 0; i < 4; i++) {
		ok &= dns_family_parse(names[i], &f) == 0 &&
		    strcmp(dns_family_str(f), names[i]) == 0 && (size_t)f == i;
	}
	tap_ok(ok, "dns_family_parse and dns_family_str round-trip");
	tap_ok(dns_family_parse("any", &f) < 0 &&
	    dns_family_parse("V4_ONLY", &f) < 0 &&
	    dns_family_parse("", &f) < 0 && dns_family_parse(NULL, &f) < 0,
	    "unknown family names rejected");
	tap_is_str(dns_family_str((enum dns_family)99), "prefer_v4",
	    "out-of-range family prints as the default");
}

static void
test_timeouts(struct event_base *base)
{
	struct dns_resolver *r;
	struct dns_stats st;
	struct dns_answer ans;
	struct result res, res2;
	char server[64];
	uint64_t t0, elapsed;
	uint16_t port;
	int fd;

	/* A server that never answers: a socket we bind and never read. */
	fd = bind_loopback(AF_INET, SOCK_DGRAM, 0, &port);
	if (!tap_ok(fd >= 0, "black-hole UDP socket"))
		return;
	snprintf(server, sizeof(server), "127.0.0.1:%u", port);
	r = new_resolver(base, server, 500, 0, 0);
	if (r != NULL) {
		t0 = now_ms();
		tap_ok(resolve_wait(base, r, "slow.test", &res) == 0 &&
		    res.ans.status == DNS_TIMEOUT, "silent server: DNS_TIMEOUT");
		elapsed = res.at_ms - t0;
		tap_ok(res.calls == 1 && elapsed < 2500,
		    "timeout reported within bounds (%llu ms for timeout_ms 500)",
		    (unsigned long long)elapsed);
		tap_ok(dns_lookup_cached(r, "slow.test", &ans) == 0, "timeout not cached");
		dns_resolver_stats(r, &st);
		tap_ok(st.queries == 1 && st.failures == 1, "timeout counted as a failure");

		/* Freed with the query in flight: no callback, nothing leaked. */
		memset(&res2, 0, sizeof(res2));
		tap_ok(resolve(r, "slow2.test", &res2) != NULL, "lookup in flight");
		run_until(base, NULL, 0, 50);
		dns_resolver_free(r);
		run_until(base, NULL, 0, 100);
		tap_is_int(res2.calls, 0, "freed mid-query: callback not called");
	} else {
		tap_ok(0, "resolver for the black hole");
	}
	close(fd);

	/* A closed port: refused at once, a failure rather than a timeout. */
	fd = bind_loopback(AF_INET, SOCK_DGRAM, 0, &port);
	close(fd);
	snprintf(server, sizeof(server), "127.0.0.1:%u", port);
	r = new_resolver(base, server, 2000, 0, 0);
	if (r != NULL) {
		int rc = resolve_wait(base, r, "refused.test", &res);

		tap_ok(rc == 0 && res.ans.status == DNS_FAILURE,
		    "closed port: DNS_FAILURE (got %s)", dns_status_str(res.ans.status));
		dns_resolver_free(r);
	} else {
		tap_ok(0, "resolver for the closed port");
	}
}

static void
test_config(struct event_base *base)
{
	struct dns_config cfg;
	struct dns_resolver *r;
	char err[256];
	size_t i;
	static const char *const bad[] = { "dns.google", "1.2.3.4:99999",
	    "[::1", "1.2.3.4:0" };

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&cfg, 0, sizeof(cfg));
		cfg.nservers = 1;
		cfg.servers[0] = bad[i];
		err[0] = '\0';
		r = dns_resolver_new(base, &cfg, err, sizeof(err));
		tap_ok(r == NULL && err[0] != '\0', "server \"%s\" refused: %s",
		    bad[i], err);
		dns_resolver_free(r);
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.nservers = 3;
	cfg.servers[0] = "127.0.0.1";
	cfg.servers[1] = "[::1]:5353";
	cfg.servers[2] = "::1";
	r = dns_resolver_new(base, &cfg, err, sizeof(err));
	tap_ok(r != NULL, "three server forms accepted (%s)", r ? "" : err);
	dns_resolver_free(r);
	memset(&cfg, 0, sizeof(cfg));
	r = dns_resolver_new(base, &cfg, err, sizeof(err));
	tap_ok(r != NULL, "no servers: /etc/resolv.conf (%s)", r ? "" : err);
	dns_resolver_free(r);
	r = dns_resolver_new(NULL, &cfg, err, sizeof(err));
	tap_ok(r == NULL, "no event base: refused (%s)", err);
	memset(&cfg, 0, sizeof(cfg));
	cfg.family = (enum dns_family)7;
	err[0] = '\0';
	r = dns_resolver_new(base, &cfg, err, sizeof(err));
	tap_ok(r == NULL && err[0] != '\0', "unknown family refused: %s", err);
	dns_resolver_free(r);
}

int
main(void)
{
	struct event_base *base;
	uint16_t port = 0, auth_port = 0;
	int v6, rc;

	signal(SIGALRM, on_alarm);
	alarm(60);
	test_guard();
	test_addr();
	test_family_names();

	base = event_base_new();
	if (!tap_ok(base != NULL, "event_base_new"))
		return tap_done();
	test_config(base);
	test_timeouts(base);

	v6 = have_v6_loopback();
	rc = start_dnsmasq(v6, &port);
	if (tap_ok(rc == 0, "dnsmasq started on port %u", port))
		test_resolver(base, port, v6);
	kill_dnsmasq(DNSMASQ_MAIN);
	rc = start_dnsmasq_auth(&auth_port);
	if (tap_ok(rc == 0, "authoritative dnsmasq started on port %u",
	    auth_port)) {
		test_negative(base, auth_port);
		test_stale(base, auth_port);
	}
	kill_dnsmasq(DNSMASQ_AUTH);
	if (auth_hosts[0] != '\0')
		unlink(auth_hosts);
	event_base_free(base);
	return tap_done();
}

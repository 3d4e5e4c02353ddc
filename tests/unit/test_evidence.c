/*
 * logging/evidence: the pcap written for denied flows, read back with
 * libpcap and checked packet by packet (addresses, ports, flags, sequence
 * numbers, both checksums recomputed, payload reassembled), then rotation,
 * append, a foreign or damaged file, a full queue and failing writes.
 *
 * With EVID_TSHARK_DIR set, the flows file is left there as flows.pcap for
 * tests/integration/evidence.sh, which asks the real tshark what it sees;
 * the addresses and names below are repeated there.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logging/evidence.h"
#include "logging/log.h"
#include "tests/unit/tap.h"
#define BB_MAX 8192
#include "tests/unit/testbuf.h"

#define TS0 1795000000123456ull         /* 2026-11-19, some microseconds */

static char dir[256];

/* ------------------------------------------------------------ inputs */

static struct sockaddr_storage
sa(const char *addr, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	} else {
		fprintf(stderr, "bad test address %s\n", addr);
		abort();
	}
	return ss;
}

static void
bb_vec16(struct bb *b, const struct bb *in)
{
	bb_u16(b, (unsigned)in->len);
	bb_bytes(b, in->p, in->len);
}

/*
 * A TLS 1.3 ClientHello as a browser sends it, in one record: SNI,
 * supported_versions, supported_groups, signature_algorithms, key_share,
 * ALPN, and a padding extension of pad bytes (so it can span segments).
 */
static void
build_hello(struct bb *out, const char *sni, size_t pad)
{
	static struct bb body, exts, x, y;
	size_t i;

	body.len = exts.len = 0;
	/* server_name: list of (type 0, name) */
	x.len = y.len = 0;
	bb_u8(&y, 0);
	bb_u16(&y, (unsigned)strlen(sni));
	bb_bytes(&y, sni, strlen(sni));
	bb_vec16(&x, &y);
	bb_u16(&exts, 0x0000);
	bb_vec16(&exts, &x);
	/* supported_versions: TLS 1.3, 1.2 */
	bb_u16(&exts, 0x002b);
	bb_u16(&exts, 5);
	bb_u8(&exts, 4);
	bb_u16(&exts, 0x0304);
	bb_u16(&exts, 0x0303);
	/* supported_groups: x25519, secp256r1 */
	bb_u16(&exts, 0x000a);
	bb_u16(&exts, 6);
	bb_u16(&exts, 4);
	bb_u16(&exts, 0x001d);
	bb_u16(&exts, 0x0017);
	/* signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256 */
	bb_u16(&exts, 0x000d);
	bb_u16(&exts, 6);
	bb_u16(&exts, 4);
	bb_u16(&exts, 0x0403);
	bb_u16(&exts, 0x0804);
	/* key_share: x25519, 32 bytes */
	bb_u16(&exts, 0x0033);
	bb_u16(&exts, 38);
	bb_u16(&exts, 36);
	bb_u16(&exts, 0x001d);
	bb_u16(&exts, 32);
	for (i = 0; i < 32; i++)
		bb_u8(&exts, 0x40 + i);
	/* ALPN: h2, http/1.1 */
	bb_u16(&exts, 0x0010);
	bb_u16(&exts, 14);
	bb_u16(&exts, 12);
	bb_u8(&exts, 2);
	bb_bytes(&exts, "h2", 2);
	bb_u8(&exts, 8);
	bb_bytes(&exts, "http/1.1", 8);
	if (pad > 0) {
		bb_u16(&exts, 0x0015);
		bb_u16(&exts, (unsigned)pad);
		bb_fill(&exts, 0, pad);
	}

	bb_u16(&body, 0x0303);                  /* legacy_version */
	for (i = 0; i < 32; i++)                /* random */
		bb_u8(&body, i * 7);
	bb_u8(&body, 32);                       /* legacy_session_id */
	for (i = 0; i < 32; i++)
		bb_u8(&body, 0xa0 + i);
	bb_u16(&body, 6);                       /* cipher_suites */
	bb_u16(&body, 0x1301);
	bb_u16(&body, 0x1302);
	bb_u16(&body, 0xc02f);
	bb_u8(&body, 1);                        /* compression: null */
	bb_u8(&body, 0);
	bb_vec16(&body, &exts);

	out->len = 0;
	bb_u8(out, 22);                         /* handshake record */
	bb_u16(out, 0x0301);
	bb_u16(out, (unsigned)body.len + 4);
	bb_u8(out, 1);                          /* ClientHello */
	bb_u24(out, (unsigned)body.len);
	bb_bytes(out, body.p, body.len);
}

struct flow {
	const char *src, *dst;          /* as given to evid_record */
	int sport, dport;
	const char *want_src, *want_dst; /* as expected in the file */
	const uint8_t *bytes;
	size_t len;
	uint64_t ts_us;
};

/* ------------------------------------------------------------ reading back */

struct pkt {
	int v6;
	uint8_t src[16], dst[16];
	int sport, dport;
	uint32_t seq, ack;
	int flags;
	const uint8_t *data;
	size_t dlen;
	int ip_sum_ok, tcp_sum_ok, len_ok;
	uint64_t ts_us;
};

static uint32_t
get16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t
get32(const uint8_t *p)
{
	return get16(p) << 16 | get16(p + 2);
}

/* Sum of 16-bit words, folded: 0xffff over data whose checksum is right. */
static uint32_t
sum16(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += get16(p + i);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static int
folds_to_ffff(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s == 0xffff;
}

/* Parse an IPv4/IPv6 + TCP packet as a reader would; -1 if it is not one. */
static int
parse_pkt(const struct pcap_pkthdr *h, const uint8_t *p, struct pkt *out)
{
	uint8_t ph[40];
	const uint8_t *tcp;
	size_t iphl, tcplen, thl;
	uint32_t s;

	memset(out, 0, sizeof(*out));
	out->ts_us = (uint64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
	if (h->caplen != h->len || h->caplen < 20)
		return -1;
	if (p[0] >> 4 == 4) {
		iphl = (size_t)(p[0] & 15) * 4;
		if (iphl != 20 || p[9] != 6 || h->caplen < iphl + 20)
			return -1;
		out->len_ok = get16(p + 2) == h->caplen;
		out->ip_sum_ok = folds_to_ffff(sum16(0, p, iphl));
		memcpy(out->src, p + 12, 4);
		memcpy(out->dst, p + 16, 4);
		tcplen = h->caplen - iphl;
		memcpy(ph, p + 12, 8);
		ph[8] = 0;
		ph[9] = 6;
		ph[10] = tcplen >> 8;
		ph[11] = tcplen & 0xff;
		s = sum16(0, ph, 12);
	} else if (p[0] >> 4 == 6) {
		iphl = 40;
		if (p[6] != 6 || h->caplen < iphl + 20)
			return -1;
		out->v6 = 1;
		out->len_ok = get16(p + 4) + 40 == h->caplen;
		out->ip_sum_ok = 1;     /* IPv6 has none */
		memcpy(out->src, p + 8, 16);
		memcpy(out->dst, p + 24, 16);
		tcplen = h->caplen - iphl;
		memcpy(ph, p + 8, 32);
		ph[32] = tcplen >> 24;
		ph[33] = (tcplen >> 16) & 0xff;
		ph[34] = (tcplen >> 8) & 0xff;
		ph[35] = tcplen & 0xff;
		ph[36] = ph[37] = ph[38] = 0;
		ph[39] = 6;
		s = sum16(0, ph, 40);
	} else
		return -1;
	tcp = p + iphl;
	thl = (size_t)(tcp[12] >> 4) * 4;
	if (thl < 20 || thl > tcplen)
		return -1;
	out->tcp_sum_ok = folds_to_ffff(sum16(s, tcp, tcplen));
	out->sport = (int)get16(tcp);
	out->dport = (int)get16(tcp + 2);
	out->seq = get32(tcp + 4);
	out->ack = get32(tcp + 8);
	out->flags = tcp[13];
	out->data = tcp + thl;
	out->dlen = tcplen - thl;
	return 0;
}

static int
addr_is(const struct pkt *k, const char *want)
{
	uint8_t a[16];

	if (inet_pton(AF_INET, want, a) == 1)
		return !k->v6 && memcmp(k->src, a, 4) == 0 ? 1 :
		    (!k->v6 && memcmp(k->dst, a, 4) == 0 ? 2 : 0);
	if (inet_pton(AF_INET6, want, a) == 1)
		return k->v6 && memcmp(k->src, a, 16) == 0 ? 1 :
		    (k->v6 && memcmp(k->dst, a, 16) == 0 ? 2 : 0);
	return 0;
}

#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10

static int
next_pkt(pcap_t *pc, struct pkt *k)
{
	struct pcap_pkthdr *h;
	const u_char *p;

	if (pcap_next_ex(pc, &h, &p) != 1)
		return -1;
	return parse_pkt(h, p, k);
}

/*
 * One flow, as it must appear: SYN, SYN|ACK, ACK, the data in order in
 * PSH|ACK segments of at most 1460 bytes, RST|ACK from the destination
 * acknowledging all of it; both checksums right on every packet.
 */
static void
check_flow(pcap_t *pc, const struct flow *f, const char *what)
{
	static uint8_t got[65536];
	struct pkt k;
	size_t glen = 0, nseg = 0, want_seg;
	uint32_t cisn = 0, sisn = 0;
	uint64_t last_ts = 0;
	int bad_sum = 0, bad_dir = 0, bad_seq = 0, bad_flags = 0, bad_len = 0;
	int bad_ts = 0, n = 0, fam_v6;

	want_seg = (f->len + 1459) / 1460;
	fam_v6 = strchr(f->want_src, ':') != NULL;
	for (;;) {
		if (next_pkt(pc, &k) < 0) {
			tap_ok(0, "%s: packet %d is there and is IP/TCP", what, n);
			return;
		}
		if (!k.ip_sum_ok || !k.tcp_sum_ok)
			bad_sum++;
		if (!k.len_ok || k.v6 != fam_v6)
			bad_len++;
		if (n == 0 ? k.ts_us != f->ts_us : k.ts_us <= last_ts)
			bad_ts++;
		last_ts = k.ts_us;
		if (n == 0) {
			cisn = k.seq;
			if (k.flags != F_SYN || k.ack != 0)
				bad_flags++;
		} else if (n == 1) {
			sisn = k.seq;
			if (k.flags != (F_SYN | F_ACK) || k.ack != cisn + 1)
				bad_flags++;
		} else if (n == 2) {
			if (k.flags != F_ACK || k.seq != cisn + 1 ||
			    k.ack != sisn + 1 || k.dlen != 0)
				bad_flags++;
		} else if (k.flags & F_RST) {
			if (k.flags != (F_RST | F_ACK) || k.seq != sisn + 1 ||
			    k.ack != cisn + 1 + (uint32_t)f->len || k.dlen != 0)
				bad_flags++;
		} else {
			if (k.flags != (F_PSH | F_ACK) || k.ack != sisn + 1 ||
			    k.dlen == 0 || k.dlen > 1460)
				bad_flags++;
			if (k.seq != cisn + 1 + (uint32_t)glen ||
			    glen + k.dlen > sizeof(got))
				bad_seq++;
			else {
				memcpy(got + glen, k.data, k.dlen);
				glen += k.dlen;
			}
			nseg++;
		}
		/* Client to destination, except SYN|ACK and RST. */
		if (n == 1 || (k.flags & F_RST)) {
			if (addr_is(&k, f->want_dst) != 1 ||
			    addr_is(&k, f->want_src) != 2 ||
			    k.sport != f->dport || k.dport != f->sport)
				bad_dir++;
		} else if (addr_is(&k, f->want_src) != 1 ||
		    addr_is(&k, f->want_dst) != 2 ||
		    k.sport != f->sport || k.dport != f->dport)
			bad_dir++;
		n++;
		if (k.flags & F_RST)
			break;
		if (n > 100) {
			tap_ok(0, "%s: ends with a RST", what);
			return;
		}
	}
	tap_is_int(n, 4 + want_seg, "%s: %zu packets (3 handshake, %zu data, "
	    "RST)", what, 4 + want_seg, want_seg);
	tap_is_int(bad_dir, 0, "%s: addresses %s:%d -> %s:%d, replies reversed",
	    what, f->want_src, f->sport, f->want_dst, f->dport);
	tap_is_int(bad_sum, 0, "%s: IP and TCP checksums right on every packet",
	    what);
	tap_is_int(bad_len, 0, "%s: IPv%d, lengths in the headers right", what,
	    fam_v6 ? 6 : 4);
	tap_is_int(bad_flags, 0, "%s: SYN, SYN|ACK, ACK, PSH|ACK..., RST|ACK "
	    "with matching seq/ack", what);
	tap_is_int(bad_ts, 0, "%s: first packet at ts_us, then increasing",
	    what);
	tap_ok(bad_seq == 0 && nseg == want_seg && glen == f->len &&
	    memcmp(got, f->bytes, f->len) == 0,
	    "%s: the %zu bytes reassemble exactly", what, f->len);
}

/* ------------------------------------------------------------ helpers */

static struct evid_writer *
open_writer(const char *path, uint64_t max_bytes, unsigned keep,
    size_t queue_bytes, struct log_sink *log)
{
	struct evid_opts o;
	struct evid_writer *w;
	char err[512];

	memset(&o, 0, sizeof(o));
	o.path = path;
	o.max_bytes = max_bytes;
	o.keep = keep;
	o.queue_bytes = queue_bytes;
	o.log = log;
	w = evid_open(&o, err, sizeof(err));
	if (w == NULL)
		tap_diag("evid_open %s: %s", path, err);
	return w;
}

/* Wait (at most 10 s) until the writer has dealt with n records. */
static void
wait_done(struct evid_writer *w, uint64_t n, struct evid_stats *st)
{
	for (int i = 0; i < 1000; i++) {
		evid_stats(w, st);
		if (st->records + st->failures + st->dropped >= n)
			return;
		usleep(10000);
	}
}

static int
record(struct evid_writer *w, const struct flow *f)
{
	struct sockaddr_storage s = sa(f->src, f->sport), d = sa(f->dst, f->dport);

	return evid_record(w, (struct sockaddr *)&s, (struct sockaddr *)&d,
	    f->bytes, f->len, f->ts_us);
}

static int
count_packets(const char *path)
{
	char eb[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *p;
	pcap_t *pc;
	int n = 0, rc;

	pc = pcap_open_offline(path, eb);
	if (pc == NULL)
		return -1;
	while ((rc = pcap_next_ex(pc, &h, &p)) == 1)
		n++;
	pcap_close(pc);
	return rc == PCAP_ERROR_BREAK ? n : -1;
}

/* The payload's first bytes of the idx-th data packet in the file. */
static int
first_payloads(const char *path, char out[][16], int max)
{
	char eb[PCAP_ERRBUF_SIZE];
	pcap_t *pc;
	struct pkt k;
	int n = 0;

	pc = pcap_open_offline(path, eb);
	if (pc == NULL)
		return -1;
	while (n < max && next_pkt(pc, &k) == 0)
		if (k.dlen > 0) {
			snprintf(out[n], 16, "%.*s", (int)(k.dlen < 15 ?
			    k.dlen : 15), (const char *)k.data);
			n++;
		}
	pcap_close(pc);
	return n;
}

static int
exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

static off_t
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

static int
count_in_file(const char *path, const char *needle)
{
	char line[4096];
	FILE *f;
	int n = 0;

	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strstr(line, needle) != NULL)
			n++;
	fclose(f);
	return n;
}

/* ------------------------------------------------------------ tests */

static void
test_flows(const char *outdir)
{
	static struct bb hello4, hello6;
	static const char http4[] = "GET /index.html HTTP/1.1\r\n"
	    "Host: plain.example.test\r\nUser-Agent: curl/7.88.1\r\n"
	    "Accept: */*\r\n\r\n";
	static const char http6[] = "POST /upload HTTP/1.1\r\n"
	    "Host: v6.example.test:8080\r\nContent-Length: 0\r\n\r\n";
	char path[512], eb[PCAP_ERRBUF_SIZE];
	struct evid_writer *w;
	struct evid_stats st;
	pcap_t *pc;
	struct pkt k;
	int rc = 0;

	build_hello(&hello4, "polaris.synopsys.com", 0);
	/* Over two segments' worth: the reader must reassemble it. */
	build_hello(&hello6, "big.example.test", 3000);
	struct flow flows[] = {
		{ "10.1.2.3", "203.0.113.7", 51234, 443, "10.1.2.3",
		    "203.0.113.7", hello4.p, hello4.len, TS0 },
		{ "2001:db8::5", "2001:db8:1::7", 40000, 443, "2001:db8::5",
		    "2001:db8:1::7", hello6.p, hello6.len, TS0 + 1000 },
		/* Dual-stack listener: IPv4 seen as ::ffff: is written IPv4. */
		{ "::ffff:10.9.8.7", "::ffff:198.51.100.1", 5555, 80,
		    "10.9.8.7", "198.51.100.1", (const uint8_t *)http4,
		    sizeof(http4) - 1, TS0 + 2000 },
		{ "2001:db8::6", "2001:db8:1::8", 41000, 8080, "2001:db8::6",
		    "2001:db8:1::8", (const uint8_t *)http6, sizeof(http6) - 1,
		    TS0 + 3000 },
		/* Nothing sent before the refusal: the handshake and RST. */
		{ "192.0.2.1", "192.0.2.2", 1024, 443, "192.0.2.1",
		    "192.0.2.2", (const uint8_t *)"", 0, TS0 + 4000 },
		/* An IPv4 client facing an IPv6 address: both IPv6. */
		{ "10.0.0.1", "2001:db8::99", 3333, 443, "::ffff:10.0.0.1",
		    "2001:db8::99", hello4.p, hello4.len, TS0 + 5000 },
	};
	size_t nflows = sizeof(flows) / sizeof(flows[0]);

	snprintf(path, sizeof(path), "%s/flows.pcap", outdir);
	unlink(path);
	w = open_writer(path, 0, 0, 0, NULL);
	if (!tap_ok(w != NULL, "evid_open creates %s", path))
		return;
	for (size_t i = 0; i < nflows; i++)
		rc |= record(w, &flows[i]);
	tap_is_int(rc, 0, "evid_record queues every flow (returns 0)");
	wait_done(w, nflows, &st);
	tap_is_int(st.records, nflows, "stats: %zu records written", nflows);
	tap_ok(st.dropped == 0 && st.failures == 0 && st.rotations == 0,
	    "stats: nothing dropped, failed or rotated");
	/* Flushed per record: the file reads whole before evid_close. */
	tap_ok(count_packets(path) > 0, "the file reads before evid_close");
	evid_close(w);

	pc = pcap_open_offline(path, eb);
	if (!tap_ok(pc != NULL, "pcap_open_offline reads it back"))
		return;
	tap_is_int(pcap_datalink(pc), DLT_RAW, "link type RAW (DLT_RAW)");
	tap_is_int(pcap_snapshot(pc), 65535, "snaplen 65535");
	check_flow(pc, &flows[0], "IPv4 TLS ClientHello");
	check_flow(pc, &flows[1], "IPv6 TLS ClientHello of 3 segments");
	check_flow(pc, &flows[2], "v4-mapped HTTP head");
	check_flow(pc, &flows[3], "IPv6 HTTP head");
	check_flow(pc, &flows[4], "empty flow");
	check_flow(pc, &flows[5], "IPv4 client, IPv6 destination");
	tap_ok(next_pkt(pc, &k) < 0, "nothing after the last flow");
	pcap_close(pc);
	tap_ok(hello6.len > 2 * 1460, "(the big ClientHello is %zu bytes)",
	    hello6.len);
}

static void
test_append(void)
{
	static const char garbage[] = "{\"ts\":\"not a pcap\"}\n";
	struct flow f = { "10.0.0.1", "10.0.0.2", 1000, 443, "10.0.0.1",
	    "10.0.0.2", (const uint8_t *)"one", 3, TS0 };
	struct evid_writer *w;
	struct evid_stats st;
	struct evid_opts o;
	char path[512], logp[512], err[512], eb[PCAP_ERRBUF_SIZE];
	struct log_sink *log;
	pcap_t *pc;
	off_t sz;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/append.pcap", dir);
	snprintf(logp, sizeof(logp), "%s/append.log", dir);
	log = log_sink_open(logp, err, sizeof(err));
	w = open_writer(path, 0, 0, 0, log);
	record(w, &f);
	evid_close(w);
	w = open_writer(path, 0, 0, 0, log);
	f.bytes = (const uint8_t *)"two";
	f.ts_us += 1000;
	record(w, &f);
	wait_done(w, 1, &st);
	evid_close(w);
	tap_is_int(count_packets(path), 10, "append: reopening adds to the "
	    "file (2 flows, 10 packets, one header)");

	/* A write cut short: the partial packet is cut off, the rest kept. */
	sz = file_size(path);
	tap_ok(truncate(path, sz - 2) == 0, "append: cut 2 bytes off the end");
	w = open_writer(path, 0, 0, 0, log);
	tap_ok(w != NULL, "append: a file ending in a partial packet opens");
	f.bytes = (const uint8_t *)"three";
	f.len = 5;
	record(w, &f);
	wait_done(w, 1, &st);
	evid_close(w);
	tap_is_int(count_packets(path), 14, "append: the partial RST is gone, "
	    "the next flow follows whole (9 + 5 packets)");
	tap_is_int(count_in_file(logp, "ended in a partial packet"), 1,
	    "append: the cut is said in the log");
	pc = pcap_open_offline(path, eb);
	if (pc != NULL) {
		struct pkt k;
		int i;

		for (i = 0; i < 10 && next_pkt(pc, &k) == 0; i++)
			;
		/* Packets 0-8: the old flows; 9-11: the handshake; 12: data. */
		for (; i < 13 && next_pkt(pc, &k) == 0; i++)
			;
		tap_ok(i == 13 && k.dlen == 5 && memcmp(k.data, "three", 5) == 0,
		    "append: the new flow's data is where it belongs");
		pcap_close(pc);
	}

	/* Not a pcap: never appended to, never touched. */
	snprintf(path, sizeof(path), "%s/notpcap", dir);
	fp = fopen(path, "w");
	fputs(garbage, fp);
	fclose(fp);
	memset(&o, 0, sizeof(o));
	o.path = path;
	w = evid_open(&o, err, sizeof(err));
	tap_ok(w == NULL, "a file that is not a pcap: evid_open fails");
	tap_ok(strstr(err, "not a pcap file") != NULL && strstr(err, path),
	    "  saying so: %s", err);
	tap_is_int(file_size(path), sizeof(garbage) - 1, "  and the file is "
	    "left as it was");
	evid_close(w);

	/* A pcap of another link type (Ethernet). */
	{
		pcap_t *pd = pcap_open_dead(DLT_EN10MB, 65535);
		pcap_dumper_t *d;

		snprintf(path, sizeof(path), "%s/ether.pcap", dir);
		d = pcap_dump_open(pd, path);
		pcap_dump_close(d);
		pcap_close(pd);
	}
	o.path = path;
	w = evid_open(&o, err, sizeof(err));
	tap_ok(w == NULL && strstr(err, "link type RAW") != NULL,
	    "an Ethernet pcap: not appended to (%s)", err);
	tap_is_int(file_size(path), 24, "  and left as it was");

	o.path = "/dev/full";
	w = evid_open(&o, err, sizeof(err));
	tap_ok(w == NULL && err[0] != '\0', "a file that cannot be written "
	    "(/dev/full): evid_open fails (%s)", err);
	evid_close(w);
	o.path = "";
	tap_ok(evid_open(&o, err, sizeof(err)) == NULL, "no path: NULL");
	log_sink_close(log);
}

static void
test_rotation(void)
{
	struct flow f = { "10.0.0.1", "10.0.0.2", 1000, 443, "10.0.0.1",
	    "10.0.0.2", NULL, 0, TS0 };
	char path[512], p1[520], p2[520], p3[520], pay[11][16], got[4][16];
	struct evid_writer *w;
	struct evid_stats st;
	int i, n;

	snprintf(path, sizeof(path), "%s/rot.pcap", dir);
	snprintf(p1, sizeof(p1), "%s.1", path);
	snprintf(p2, sizeof(p2), "%s.2", path);
	snprintf(p3, sizeof(p3), "%s.3", path);
	/* A flow of 100 bytes over IPv4 is 388 bytes in the file: two fit
	 * under 1000 with the 24-byte header, a third would pass it. */
	w = open_writer(path, 1000, 2, 0, NULL);
	if (!tap_ok(w != NULL, "rotation: open with max_bytes 1000, keep 2"))
		return;
	for (i = 1; i <= 10; i++) {
		static uint8_t buf[11][100];

		snprintf(pay[i], sizeof(pay[i]), "record %d", i);
		memset(buf[i], '.', 100);
		memcpy(buf[i], pay[i], strlen(pay[i]));
		f.bytes = buf[i];
		f.len = 100;
		f.ts_us = TS0 + (uint64_t)i * 1000;
		record(w, &f);
	}
	wait_done(w, 10, &st);
	tap_is_int(st.records, 10, "rotation: 10 records written");
	tap_is_int(st.rotations, 4, "rotation: 4 rotations (2 records a file)");
	tap_is_int(st.failures, 0, "rotation: no failures");
	evid_close(w);
	tap_ok(exists(path) && exists(p1) && exists(p2) && !exists(p3),
	    "rotation: path, path.1, path.2 exist, path.3 does not");
	tap_ok(file_size(path) <= 1000 && file_size(p1) <= 1000 &&
	    file_size(p2) <= 1000, "rotation: no file passes max_bytes");
	n = first_payloads(path, got, 4);
	tap_ok(n == 2 && strncmp(got[0], "record 9.", 9) == 0 &&
	    strncmp(got[1], "record 10", 9) == 0,
	    "rotation: path holds the newest (records 9, 10)");
	n = first_payloads(p1, got, 4);
	tap_ok(n == 2 && strncmp(got[0], "record 7.", 9) == 0 &&
	    strncmp(got[1], "record 8.", 9) == 0, "rotation: path.1 records 7, 8");
	n = first_payloads(p2, got, 4);
	tap_ok(n == 2 && strncmp(got[0], "record 5.", 9) == 0 &&
	    strncmp(got[1], "record 6.", 9) == 0, "rotation: path.2 records 5, 6");

	/* keep 0: the full file is removed, only path remains. */
	unlink(path);
	unlink(p1);
	unlink(p2);
	w = open_writer(path, 1000, 0, 0, NULL);
	for (i = 1; i <= 5; i++) {
		static uint8_t buf[100];

		memset(buf, 'x', sizeof(buf));
		f.bytes = buf;
		f.len = 100;
		record(w, &f);
	}
	wait_done(w, 5, &st);
	evid_close(w);
	tap_ok(st.records == 5 && st.rotations == 2, "keep 0: 5 records, "
	    "2 rotations");
	tap_ok(exists(path) && !exists(p1), "keep 0: only path, no path.1");
	tap_is_int(count_packets(path), 5, "keep 0: path holds the last "
	    "record only");

	/* A record larger than max_bytes goes alone into its own file. */
	unlink(path);
	w = open_writer(path, 100, 1, 0, NULL);
	for (i = 0; i < 2; i++) {
		static uint8_t buf[500];

		f.bytes = buf;
		f.len = sizeof(buf);
		record(w, &f);
	}
	wait_done(w, 2, &st);
	evid_close(w);
	tap_ok(st.records == 2 && st.rotations == 1 &&
	    count_packets(path) == 5 && count_packets(p1) == 5,
	    "a record over max_bytes is written, alone in its file");
	unlink(path);
	unlink(p1);
}

static void
test_queue_full(void)
{
	static uint8_t buf[1000];
	struct flow f = { "10.0.0.1", "10.0.0.2", 1000, 443, "10.0.0.1",
	    "10.0.0.2", buf, sizeof(buf), TS0 };
	char path[512], logp[512], err[512];
	struct evid_writer *w;
	struct evid_stats st;
	struct log_sink *log;
	int i, refused = 0, n = 3000;

	snprintf(path, sizeof(path), "%s/queue.pcap", dir);
	snprintf(logp, sizeof(logp), "%s/queue.log", dir);
	log = log_sink_open(logp, err, sizeof(err));
	w = open_writer(path, 0, 0, 4096, log);
	if (!tap_ok(w != NULL, "queue: open with queue_bytes 4096"))
		return;
	for (i = 0; i < n; i++)
		if (record(w, &f) < 0)
			refused++;
	wait_done(w, (uint64_t)n, &st);
	tap_is_int(st.records + st.dropped, n, "queue: records + dropped == "
	    "%d submitted", n);
	tap_ok(st.dropped > 0 && st.records > 0, "queue: some dropped (%llu), "
	    "some written (%llu)", (unsigned long long)st.dropped,
	    (unsigned long long)st.records);
	tap_is_int(refused, st.dropped, "queue: evid_record returned -1 for "
	    "each one dropped");
	/* A record that can never fit is dropped, not stuck. */
	{
		static uint8_t big[8192];

		f.bytes = big;
		f.len = sizeof(big);
		tap_is_int(record(w, &f), -1, "queue: a record over queue_bytes "
		    "is dropped");
	}
	evid_close(w);
	tap_is_int(count_packets(path), (int)st.records * 5, "queue: the file "
	    "holds exactly the written records");
	tap_ok(count_in_file(logp, "queue full") >= 1, "queue: the drops are "
	    "said in the log");
	tap_ok(count_in_file(logp, "queue full") <= count_in_file(logp,
	    "queue drained") + 1, "queue: said once per streak, not per drop "
	    "(%d lines for %llu drops)", count_in_file(logp, "queue full"),
	    (unsigned long long)st.dropped);
	log_sink_close(log);
}

static void
test_failure(void)
{
	static uint8_t buf[100];
	struct flow f = { "10.0.0.1", "10.0.0.2", 1000, 443, "10.0.0.1",
	    "10.0.0.2", buf, sizeof(buf), TS0 };
	char sub[300], path[512], p1[520], logp[512], err[512];
	struct evid_writer *w;
	struct evid_stats st;
	struct log_sink *log;
	int i;

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(path, sizeof(path), "%s/e.pcap", sub);
	snprintf(p1, sizeof(p1), "%s.1", path);
	snprintf(logp, sizeof(logp), "%s/fail.log", dir);
	mkdir(sub, 0700);
	log = log_sink_open(logp, err, sizeof(err));
	/* max_bytes 1: each record after the first in a file rotates. */
	w = open_writer(path, 1, 1, 0, log);
	if (!tap_ok(w != NULL, "failure: open in %s", sub))
		return;
	record(w, &f);
	wait_done(w, 1, &st);
	tap_is_int(st.records, 1, "failure: the first record is written");

	/* The directory goes away (root ignores permissions, so removal is
	 * what fails for everyone): rename and open fail. */
	unlink(path);
	tap_ok(rmdir(sub) == 0, "failure: the directory is removed");
	for (i = 0; i < 3; i++)
		tap_is_int(record(w, &f), 0, "failure: evid_record still queues "
		    "(%d)", i);
	wait_done(w, 4, &st);
	tap_is_int(st.failures, 3, "failure: 3 failures counted");
	tap_is_int(st.records, 1, "failure: still 1 record");
	tap_is_int(count_in_file(logp, "until writing works again"), 1,
	    "failure: said once in the log for the streak");
	tap_ok(count_in_file(logp, "\"event\":\"notice\"") >= 1 &&
	    count_in_file(logp, sub) >= 1, "failure: a notice line naming "
	    "the path");

	mkdir(sub, 0700);
	record(w, &f);
	wait_done(w, 5, &st);
	tap_is_int(st.records, 2, "failure: written again once the directory "
	    "is back");
	tap_is_int(count_in_file(logp, "again; 3 denied flow(s) were not "
	    "written"), 1, "failure: the recovery is said, with the count");
	record(w, &f);
	wait_done(w, 6, &st);
	tap_ok(st.records == 3 && st.failures == 3 && st.rotations == 1,
	    "failure: and it goes on (3 records, 3 failures, 1 rotation)");
	evid_close(w);
	tap_is_int(count_in_file(logp, "until writing works again"), 1,
	    "failure: no more failure lines");
	tap_ok(exists(path) && exists(p1), "failure: path and path.1 exist");
	log_sink_close(log);
	unlink(path);
	unlink(p1);
	rmdir(sub);
}

/*
 * A write that fails half-way (a full disk, here a file size limit): the
 * record is a failure, the file is cut back to whole records, and the next
 * record after the limit is lifted appends cleanly.
 */
static void
test_write_failure(void)
{
	static uint8_t small[1000], big[20000];
	struct flow f = { "10.0.0.1", "10.0.0.2", 1000, 443, "10.0.0.1",
	    "10.0.0.2", small, 100, TS0 };
	char path[512], logp[512], err[512];
	struct evid_writer *w;
	struct evid_stats st;
	struct log_sink *log;
	struct rlimit old, lim;
	off_t sz;

	snprintf(path, sizeof(path), "%s/efbig.pcap", dir);
	snprintf(logp, sizeof(logp), "%s/efbig.log", dir);
	log = log_sink_open(logp, err, sizeof(err));
	w = open_writer(path, 0, 0, 0, log);
	if (!tap_ok(w != NULL, "write failure: open"))
		return;
	record(w, &f);
	wait_done(w, 1, &st);
	sz = file_size(path);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)sz + 100;
	if (!tap_ok(setrlimit(RLIMIT_FSIZE, &lim) == 0, "write failure: file "
	    "size limited to %lld bytes", (long long)sz + 100))
		return;
	f.bytes = small;
	f.len = sizeof(small);          /* through the stdio buffer */
	record(w, &f);
	f.bytes = big;
	f.len = sizeof(big);            /* larger than the stdio buffer */
	record(w, &f);
	wait_done(w, 3, &st);
	setrlimit(RLIMIT_FSIZE, &old);
	tap_ok(st.records == 1 && st.failures == 2, "write failure: 2 "
	    "failures counted, 1 record");
	tap_is_int(file_size(path), sz, "write failure: the file is cut back "
	    "to the last whole record");
	tap_is_int(count_in_file(logp, "cannot write"), 1, "write failure: "
	    "said once");
	tap_is_int(count_in_file(logp, "partial packet"), 0, "write failure: "
	    "cut by the writer itself, not found on reopening");
	f.bytes = small;
	f.len = 100;
	record(w, &f);
	wait_done(w, 4, &st);
	evid_close(w);
	tap_is_int(st.records, 2, "write failure: the next record is written");
	tap_is_int(count_packets(path), 10, "write failure: the file reads "
	    "whole (2 flows)");
	tap_is_int(count_in_file(logp, "again; 2 denied flow(s)"), 1,
	    "write failure: the recovery is said");
	log_sink_close(log);
}

static void
test_null(void)
{
	struct evid_stats st;

	memset(&st, 0xff, sizeof(st));
	evid_close(NULL);
	evid_stats(NULL, &st);
	tap_ok(st.records == 0 && st.dropped == 0, "evid_close(NULL), "
	    "evid_stats(NULL): fine, zero");
	tap_is_int(evid_record(NULL, NULL, NULL, "x", 1, 0), -1,
	    "evid_record(NULL): -1");
}

int
main(void)
{
	const char *keep = getenv("EVID_TSHARK_DIR");
	char cmd[300];

	snprintf(dir, sizeof(dir), "%s/evid.XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_flows(keep != NULL && keep[0] != '\0' ? keep : dir);
	test_append();
	test_rotation();
	test_queue_full();
	test_failure();
	test_write_failure();
	test_null();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done();
}

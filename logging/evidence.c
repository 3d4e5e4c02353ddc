/*
 * logging/evidence: denied flows as synthesized TCP conversations in a pcap
 * file (log.evidence_pcap), written by a thread of its own.
 *
 * Each record becomes, in link type LINKTYPE_RAW (so IPv4 and IPv6 share
 * one file), with the record's own addresses and ports:
 *
 *	client -> dst	SYN			(MSS 1460)
 *	dst -> client	SYN|ACK			(MSS 1460)
 *	client -> dst	ACK
 *	client -> dst	PSH|ACK + data		one per 1460 bytes of the client's bytes
 *	dst -> client	RST|ACK			acknowledges all the data: refused
 *
 * A RST rather than a FIN: a FIN reads as an orderly end of a conversation,
 * a RST that acknowledges every byte reads as "received, then refused",
 * which is what happened. The packets are 10 us apart from ts_us on; the
 * checksums are real so Wireshark shows no checksum errors.
 *
 * The file: opened for append when it is a pcap this writer could have
 * written (microsecond, native byte order, LINKTYPE_RAW, snaplen 65535); a
 * trailing partial record (a crash or a full disk in the middle of a write)
 * is cut back to the last whole record. Anything else at the path is never
 * appended to, truncated or renamed: evid_open() fails with a message, and
 * at run time it is a failure like any other. Bytes this writer did not
 * write are not its to destroy.
 *
 * Rotation, failures and the queue are described in docs/evidence.md.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logging/evidence.h"
#include "logging/log.h"

#define EVID_QUEUE_DEFAULT	(4u << 20)
#define EVID_SNAPLEN		65535
#define EVID_LINKTYPE_RAW	101	/* in the file; DLT_RAW in the API */
#define EVID_MSS		1460
#define EVID_FILE_HDR		24
#define EVID_REC_HDR		16	/* per packet in the file */
#define EVID_IP4_HDR		20
#define EVID_IP6_HDR		40
#define EVID_TCP_HDR		20
#define EVID_TCP_OPT		4	/* MSS, on SYN and SYN|ACK */
#define EVID_PKT_MAX		(EVID_IP6_HDR + EVID_TCP_HDR + EVID_TCP_OPT + EVID_MSS)
#define EVID_STEP_US		10

#define TH_SYN	0x02
#define TH_RST	0x04
#define TH_PSH	0x08
#define TH_ACK	0x10

struct evid_rec {
	struct evid_rec *next;
	struct sockaddr_storage src, dst;
	uint64_t ts_us;
	size_t len;
	unsigned char bytes[];
};

/* One end of a synthesized flow: IPv4 or IPv6 address and port. */
struct evid_ep {
	int v6;                 /* -1: family not known */
	uint8_t addr[16];       /* IPv4 in the first 4 bytes */
	uint16_t port;
};

struct evid_writer {
	pthread_mutex_t lock;   /* guards the queue, closing and st */
	pthread_cond_t cond;
	struct evid_rec *head, **tailp;
	size_t queued, queue_cap;
	int closing;
	struct evid_stats st;

	/* The writer thread's own (evid_open's before the thread starts). */
	pthread_t thread;
	char *path, *rot_from, *rot_to;
	size_t rot_len;
	uint64_t max_bytes;
	unsigned keep;
	struct log_sink *log;
	pcap_t *pcap;
	pcap_dumper_t *dump;
	int64_t size;           /* the file's length, whole records only */
	int failing;            /* in a failure streak, already said */
	uint64_t streak;        /* records lost in this streak */
	int dropping;           /* in a queue-full streak, already said */
	uint64_t dropped_seen;
	uint32_t flow;          /* flows written: seeds sequence numbers */
	uint16_t ip_id;
	uint8_t pkt[EVID_PKT_MAX];
};

static void
evid_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void
evid_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

/* The Internet checksum's running sum; n is even except for the last call. */
static uint32_t
evid_sum(uint32_t sum, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t
evid_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void
evid_sockaddr_copy(struct sockaddr_storage *to, const struct sockaddr *sa)
{
	memset(to, 0, sizeof(*to));
	if (sa == NULL)
		to->ss_family = AF_UNSPEC;
	else if (sa->sa_family == AF_INET)
		memcpy(to, sa, sizeof(struct sockaddr_in));
	else if (sa->sa_family == AF_INET6)
		memcpy(to, sa, sizeof(struct sockaddr_in6));
	else
		to->ss_family = AF_UNSPEC;
}

static void
evid_ep_from(struct evid_ep *ep, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

	memset(ep, 0, sizeof(*ep));
	if (ss->ss_family == AF_INET) {
		memcpy(ep->addr, &sin->sin_addr, 4);
		ep->port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		/* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			memcpy(ep->addr, sin6->sin6_addr.s6_addr + 12, 4);
		} else {
			memcpy(ep->addr, &sin6->sin6_addr, 16);
			ep->v6 = 1;
		}
		ep->port = ntohs(sin6->sin6_port);
	} else
		ep->v6 = -1;
}

static void
evid_ep_to_mapped(struct evid_ep *ep)
{
	memmove(ep->addr + 12, ep->addr, 4);
	memset(ep->addr, 0, 10);
	ep->addr[10] = ep->addr[11] = 0xff;
	ep->v6 = 1;
}

/*
 * Both ends in one family: an unknown end becomes the unspecified address
 * of the other's (port 0), and an IPv4 end facing an IPv6 one is written as
 * IPv4-mapped IPv6, so the bytes are kept whatever the sockaddrs were.
 */
static void
evid_ep_pair(struct evid_ep *c, struct evid_ep *s)
{
	if (c->v6 < 0 && s->v6 < 0)
		c->v6 = s->v6 = 0;
	else if (c->v6 < 0)
		c->v6 = s->v6;
	else if (s->v6 < 0)
		s->v6 = c->v6;
	else if (c->v6 != s->v6) {
		if (c->v6 == 0)
			evid_ep_to_mapped(c);
		else
			evid_ep_to_mapped(s);
	}
}

static size_t
evid_pkt_len(int v6, int syn, size_t dlen)
{
	return (v6 ? EVID_IP6_HDR : EVID_IP4_HDR) + EVID_TCP_HDR +
	    (syn ? EVID_TCP_OPT : 0) + dlen;
}

/* Bytes the record takes in the file: it decides rotation beforehand. */
static uint64_t
evid_rec_file_len(int v6, size_t len)
{
	uint64_t n;
	size_t nseg = (len + EVID_MSS - 1) / EVID_MSS;

	n = 2 * (EVID_REC_HDR + evid_pkt_len(v6, 1, 0));       /* SYN, SYN|ACK */
	n += 2 * (EVID_REC_HDR + evid_pkt_len(v6, 0, 0));      /* ACK, RST */
	n += nseg * (EVID_REC_HDR + evid_pkt_len(v6, 0, 0)) + len;
	return n;
}

/* Build one IP+TCP packet in w->pkt and hand it to pcap_dump. */
static void
evid_packet(struct evid_writer *w, const struct evid_ep *from,
    const struct evid_ep *to, uint32_t seq, uint32_t ack, uint8_t flags,
    const uint8_t *data, size_t dlen, uint64_t ts_us)
{
	struct pcap_pkthdr h;
	uint8_t *ip = w->pkt, *tcp, pseudo[40];
	size_t iphl, thl, tcplen, len;
	uint32_t sum;
	int syn = (flags & TH_SYN) != 0;

	iphl = from->v6 ? EVID_IP6_HDR : EVID_IP4_HDR;
	thl = EVID_TCP_HDR + (syn ? EVID_TCP_OPT : 0);
	tcplen = thl + dlen;
	len = iphl + tcplen;
	tcp = ip + iphl;

	memset(ip, 0, iphl + thl);
	if (from->v6) {
		ip[0] = 0x60;
		evid_put16(ip + 4, (uint16_t)tcplen);
		ip[6] = IPPROTO_TCP;
		ip[7] = 64;
		memcpy(ip + 8, from->addr, 16);
		memcpy(ip + 24, to->addr, 16);
		memcpy(pseudo, from->addr, 16);
		memcpy(pseudo + 16, to->addr, 16);
		evid_put32(pseudo + 32, (uint32_t)tcplen);
		memset(pseudo + 36, 0, 3);
		pseudo[39] = IPPROTO_TCP;
		sum = evid_sum(0, pseudo, 40);
	} else {
		ip[0] = 0x45;
		evid_put16(ip + 2, (uint16_t)len);
		evid_put16(ip + 4, w->ip_id++);
		ip[6] = 0x40;   /* DF */
		ip[8] = 64;
		ip[9] = IPPROTO_TCP;
		memcpy(ip + 12, from->addr, 4);
		memcpy(ip + 16, to->addr, 4);
		evid_put16(ip + 10, evid_fold(evid_sum(0, ip, EVID_IP4_HDR)));
		memcpy(pseudo, from->addr, 4);
		memcpy(pseudo + 4, to->addr, 4);
		pseudo[8] = 0;
		pseudo[9] = IPPROTO_TCP;
		evid_put16(pseudo + 10, (uint16_t)tcplen);
		sum = evid_sum(0, pseudo, 12);
	}

	evid_put16(tcp, from->port);
	evid_put16(tcp + 2, to->port);
	evid_put32(tcp + 4, seq);
	evid_put32(tcp + 8, ack);
	tcp[12] = (uint8_t)((thl / 4) << 4);
	tcp[13] = flags;
	evid_put16(tcp + 14, (flags & TH_RST) ? 0 : 64240);
	if (syn) {
		tcp[20] = 2;    /* MSS */
		tcp[21] = 4;
		evid_put16(tcp + 22, EVID_MSS);
	}
	if (dlen > 0)
		memcpy(tcp + thl, data, dlen);
	evid_put16(tcp + 16, evid_fold(evid_sum(sum, tcp, tcplen)));

	memset(&h, 0, sizeof(h));
	h.ts.tv_sec = (time_t)(ts_us / 1000000);
	h.ts.tv_usec = (suseconds_t)(ts_us % 1000000);
	h.caplen = h.len = (bpf_u_int32)len;
	pcap_dump((u_char *)w->dump, &h, w->pkt);
}

static void
evid_conversation(struct evid_writer *w, const struct evid_ep *c,
    const struct evid_ep *s, const struct evid_rec *r)
{
	uint64_t ts = r->ts_us;
	uint32_t cisn, sisn, n = w->flow++;
	size_t off, seg;

	/* Distinct per flow and per run, so flows that reuse a 4-tuple
	 * across an append do not look like retransmissions. */
	cisn = (uint32_t)(r->ts_us * 2654435761u) ^ (n * 0x9e3779b9u);
	sisn = cisn ^ 0x5a5a5a5au;

	evid_packet(w, c, s, cisn, 0, TH_SYN, NULL, 0, ts);
	evid_packet(w, s, c, sisn, cisn + 1, TH_SYN | TH_ACK, NULL, 0,
	    ts += EVID_STEP_US);
	evid_packet(w, c, s, cisn + 1, sisn + 1, TH_ACK, NULL, 0,
	    ts += EVID_STEP_US);
	for (off = 0; off < r->len; off += seg) {
		seg = r->len - off < EVID_MSS ? r->len - off : EVID_MSS;
		evid_packet(w, c, s, cisn + 1 + (uint32_t)off, sisn + 1,
		    TH_PSH | TH_ACK, r->bytes + off, seg, ts += EVID_STEP_US);
	}
	evid_packet(w, s, c, sisn + 1, cisn + 1 + (uint32_t)r->len,
	    TH_RST | TH_ACK, NULL, 0, ts += EVID_STEP_US);
}

/*
 * An existing file may be appended to only if it is a pcap this writer
 * could have written. Wire format (native byte order, as pcap_dump writes):
 *	file header (24): magic a1b2c3d4, version 2.4, thiszone, sigfigs,
 *	                  snaplen, linktype
 *	per packet  (16): ts_sec, ts_usec, caplen, len; then caplen bytes
 * A packet that does not fit in the file is a write that was cut short:
 * the file is cut back to the packet before it. That may leave the first
 * packets of a flow; a reader shows them as an unfinished conversation.
 * Returns 0 (absent, empty, or fit to append) or -1 with err.
 */
static int
evid_check_file(struct evid_writer *w, char *err, size_t errlen)
{
	struct stat sb;
	const uint8_t *m;
	uint32_t v32, caplen;
	uint16_t v16a, v16b;
	off_t off, end;
	int fd, rc = -1;

	fd = open(w->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", w->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "%s: %s", w->path, strerror(errno));
		goto out;
	}
	/* A device or a pipe: nothing to check, pcap says the rest. */
	if (!S_ISREG(sb.st_mode) || sb.st_size == 0) {
		rc = 0;
		goto out;
	}
	if (sb.st_size < EVID_FILE_HDR) {
		snprintf(err, errlen, "%s: exists and is not a pcap file "
		    "(%lld bytes); not appending to it", w->path,
		    (long long)sb.st_size);
		goto out;
	}
	m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "%s: %s", w->path, strerror(errno));
		goto out;
	}
	memcpy(&v32, m, 4);
	memcpy(&v16a, m + 4, 2);
	memcpy(&v16b, m + 6, 2);
	memcpy(&caplen, m + 16, 4);
	if (v32 != 0xa1b2c3d4 || v16a != 2 || v16b != 4 ||
	    caplen != EVID_SNAPLEN ||
	    (memcpy(&v32, m + 20, 4), v32 != EVID_LINKTYPE_RAW)) {
		snprintf(err, errlen, "%s: exists and is not a pcap file of "
		    "link type RAW (microseconds, snaplen %d, this byte "
		    "order); not appending to it", w->path, EVID_SNAPLEN);
		goto unmap;
	}
	end = sb.st_size;
	for (off = EVID_FILE_HDR; end - off >= EVID_REC_HDR;
	    off += EVID_REC_HDR + caplen) {
		memcpy(&caplen, m + off + 8, 4);
		if (caplen > EVID_SNAPLEN) {
			snprintf(err, errlen, "%s: damaged pcap file (packet "
			    "of %u bytes at offset %lld); not appending to it",
			    w->path, caplen, (long long)off);
			goto unmap;
		}
		if (end - off - EVID_REC_HDR < (off_t)caplen)
			break;
	}
	if (off < end) {
		if (ftruncate(fd, off) < 0) {
			snprintf(err, errlen, "%s: cannot cut a partial packet: "
			    "%s", w->path, strerror(errno));
			goto unmap;
		}
		log_notice_level(w->log, LOG_LEVEL_WARNING,
		    "evidence: %s ended in a partial packet; "
		    "cut %lld bytes back to the last whole one", w->path,
		    (long long)(end - off));
	}
	rc = 0;
unmap:
	munmap((void *)m, (size_t)sb.st_size);
out:
	close(fd);
	return rc;
}

static int
evid_file_open(struct evid_writer *w, char *err, size_t errlen)
{
	FILE *f;

	if (evid_check_file(w, err, errlen) < 0)
		return -1;
	/* Appends to a pcap of the same link type, or writes the header. */
	w->dump = pcap_dump_open_append(w->pcap, w->path);
	if (w->dump == NULL) {
		snprintf(err, errlen, "%s", pcap_geterr(w->pcap));
		return -1;
	}
	f = pcap_dump_file(w->dump);
	(void)fcntl(fileno(f), F_SETFD, FD_CLOEXEC);
	if (pcap_dump_flush(w->dump) < 0) {
		snprintf(err, errlen, "%s: %s", w->path, strerror(errno));
		goto fail;
	}
	w->size = pcap_dump_ftell64(w->dump);
	if (w->size < 0) {
		snprintf(err, errlen, "%s: %s", w->path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	pcap_dump_close(w->dump);
	w->dump = NULL;
	return -1;
}

/* path.(keep-1) -> path.keep ... path -> path.1; keep 0: path is removed. */
static int
evid_rotate(struct evid_writer *w, char *err, size_t errlen)
{
	unsigned i;

	pcap_dump_close(w->dump);
	w->dump = NULL;
	if (w->keep == 0) {
		if (unlink(w->path) < 0 && errno != ENOENT) {
			snprintf(err, errlen, "cannot remove %s: %s", w->path,
			    strerror(errno));
			return -1;
		}
		goto done;
	}
	for (i = w->keep; i > 1; i--) {
		snprintf(w->rot_from, w->rot_len, "%s.%u", w->path, i - 1);
		snprintf(w->rot_to, w->rot_len, "%s.%u", w->path, i);
		if (rename(w->rot_from, w->rot_to) < 0 && errno != ENOENT) {
			snprintf(err, errlen, "cannot rename %s to %s: %s",
			    w->rot_from, w->rot_to, strerror(errno));
			return -1;
		}
	}
	snprintf(w->rot_to, w->rot_len, "%s.1", w->path);
	if (rename(w->path, w->rot_to) < 0) {
		snprintf(err, errlen, "cannot rename %s to %s: %s", w->path,
		    w->rot_to, strerror(errno));
		return -1;
	}
done:
	pthread_mutex_lock(&w->lock);
	w->st.rotations++;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* Counted per record; said once per streak, with what went wrong first. */
static void
evid_failed(struct evid_writer *w, const char *why)
{
	pthread_mutex_lock(&w->lock);
	w->st.failures++;
	pthread_mutex_unlock(&w->lock);
	w->streak++;
	if (w->failing)
		return;
	w->failing = 1;
	log_notice_level(w->log, LOG_LEVEL_ERROR,
	    "evidence: %s; denied flows are not written to %s "
	    "(counted as failures) until writing works again", why, w->path);
}

static void
evid_write(struct evid_writer *w, const struct evid_rec *r)
{
	struct evid_ep c, s;
	uint64_t need;
	char err[512];
	int saved;

	evid_ep_from(&c, &r->src);
	evid_ep_from(&s, &r->dst);
	evid_ep_pair(&c, &s);
	need = evid_rec_file_len(c.v6, r->len);

	if (w->dump == NULL && evid_file_open(w, err, sizeof(err)) < 0)
		goto fail;
	/* A record larger than max_bytes goes alone into a fresh file. */
	if (w->max_bytes > 0 && w->size > EVID_FILE_HDR &&
	    (uint64_t)w->size + need > w->max_bytes) {
		if (evid_rotate(w, err, sizeof(err)) < 0 ||
		    evid_file_open(w, err, sizeof(err)) < 0)
			goto fail;
	}
	evid_conversation(w, &c, &s, r);
	/* Flushed per record so a reader never sees half a conversation. */
	errno = 0;
	/* ferror too: a packet larger than the stdio buffer is written by
	 * fwrite itself, and its error may leave nothing for fflush. */
	if (pcap_dump_flush(w->dump) < 0 || ferror(pcap_dump_file(w->dump))) {
		saved = errno ? errno : EIO;
		snprintf(err, sizeof(err), "cannot write %s: %s", w->path,
		    strerror(saved));
		pcap_dump_close(w->dump);
		w->dump = NULL;
		/* Leave whole records only; reopened on the next record. If
		 * even that fails, the reader stops at the torn record. */
		if (truncate(w->path, w->size) != 0)
			saved = saved ? saved : errno;
		goto fail;
	}
	w->size = pcap_dump_ftell64(w->dump);
	pthread_mutex_lock(&w->lock);
	w->st.records++;
	pthread_mutex_unlock(&w->lock);
	if (w->failing) {
		log_notice(w->log, "evidence: writing %s again; %llu denied "
		    "flow(s) were not written", w->path,
		    (unsigned long long)w->streak);
		w->failing = 0;
		w->streak = 0;
	}
	return;
fail:
	evid_failed(w, err);
}

/* Drops happen on the connection path, which must not write a log line:
 * the writer says them, once per streak. */
static void
evid_say_drops(struct evid_writer *w, uint64_t dropped, int empty)
{
	if (dropped != w->dropped_seen && !w->dropping) {
		w->dropping = 1;
		log_notice_level(w->log, LOG_LEVEL_WARNING,
		    "evidence: queue full (%zu bytes): denied "
		    "flows are dropped (counted) until it drains",
		    w->queue_cap);
	} else if (w->dropping && dropped == w->dropped_seen && empty) {
		w->dropping = 0;
		log_notice(w->log, "evidence: queue drained; %llu denied "
		    "flow(s) dropped in all so far",
		    (unsigned long long)dropped);
	}
	w->dropped_seen = dropped;
}

static void *
evid_thread(void *arg)
{
	struct evid_writer *w = arg;
	struct evid_rec *batch, *r;
	uint64_t dropped;
	int empty;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (w->head == NULL && !w->closing)
			pthread_cond_wait(&w->cond, &w->lock);
		batch = w->head;
		w->head = NULL;
		w->tailp = &w->head;
		pthread_mutex_unlock(&w->lock);
		if (batch == NULL)
			break;  /* closing, and all written */
		while ((r = batch) != NULL) {
			batch = r->next;
			evid_write(w, r);
			pthread_mutex_lock(&w->lock);
			w->queued -= sizeof(*r) + r->len;
			pthread_mutex_unlock(&w->lock);
			free(r);
		}
		pthread_mutex_lock(&w->lock);
		dropped = w->st.dropped;
		empty = w->head == NULL;
		pthread_mutex_unlock(&w->lock);
		evid_say_drops(w, dropped, empty);
	}
	return NULL;
}

static void
evid_free(struct evid_writer *w)
{
	if (w->dump != NULL)
		pcap_dump_close(w->dump);
	if (w->pcap != NULL)
		pcap_close(w->pcap);
	free(w->path);
	free(w->rot_from);
	free(w->rot_to);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

struct evid_writer *
evid_open(const struct evid_opts *o, char *err, size_t errlen)
{
	struct evid_writer *w;
	sigset_t all, old;
	char e[512];
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (o == NULL || o->path == NULL || o->path[0] == '\0') {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "evidence: no file name");
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		goto nomem;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->tailp = &w->head;
	w->queue_cap = o->queue_bytes ? o->queue_bytes : EVID_QUEUE_DEFAULT;
	w->max_bytes = o->max_bytes;
	w->keep = o->keep;
	w->log = o->log;
	w->path = strdup(o->path);
	w->rot_len = strlen(o->path) + sizeof(".4294967295");
	w->rot_from = malloc(w->rot_len);
	w->rot_to = malloc(w->rot_len);
	if (w->path == NULL || w->rot_from == NULL || w->rot_to == NULL) {
		evid_free(w);
		goto nomem;
	}
	w->pcap = pcap_open_dead(DLT_RAW, EVID_SNAPLEN);
	if (w->pcap == NULL) {
		evid_free(w);
		goto nomem;
	}
	if (evid_file_open(w, e, sizeof(e)) < 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s", e);
		evid_free(w);
		return NULL;
	}
	/* Signals are the daemon's main thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, evid_thread, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "evidence: cannot start the "
			    "writer thread: %s", strerror(rc));
		evid_free(w);
		return NULL;
	}
	return w;
nomem:
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "evidence: out of memory");
	return NULL;
}

int
evid_record(struct evid_writer *w, const struct sockaddr *src,
    const struct sockaddr *dst, const void *bytes, size_t len, uint64_t ts_us)
{
	struct evid_rec *r;
	size_t need;

	if (w == NULL)
		return -1;
	if (len > SIZE_MAX - sizeof(*r))
		len = SIZE_MAX - sizeof(*r);    /* cannot fit: dropped below */
	need = sizeof(*r) + len;
	/* Reserve first, so a full queue costs no allocation or copy. */
	pthread_mutex_lock(&w->lock);
	if (w->closing || need > w->queue_cap - w->queued) {
		w->st.dropped++;
		pthread_mutex_unlock(&w->lock);
		return -1;
	}
	w->queued += need;
	pthread_mutex_unlock(&w->lock);

	r = malloc(need);
	if (r == NULL) {
		pthread_mutex_lock(&w->lock);
		w->queued -= need;
		w->st.dropped++;
		pthread_mutex_unlock(&w->lock);
		return -1;
	}
	r->next = NULL;
	evid_sockaddr_copy(&r->src, src);
	evid_sockaddr_copy(&r->dst, dst);
	r->ts_us = ts_us ? ts_us : log_now_us();
	r->len = len;
	if (len > 0)
		memcpy(r->bytes, bytes, len);

	pthread_mutex_lock(&w->lock);
	if (w->closing) {
		/* A caller racing evid_close: the thread may be gone. */
		w->queued -= need;
		w->st.dropped++;
		pthread_mutex_unlock(&w->lock);
		free(r);
		return -1;
	}
	*w->tailp = r;
	w->tailp = &r->next;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void
evid_stats(struct evid_writer *w, struct evid_stats *out)
{
	if (w == NULL) {
		memset(out, 0, sizeof(*out));
		return;
	}
	pthread_mutex_lock(&w->lock);
	*out = w->st;
	pthread_mutex_unlock(&w->lock);
}

void
evid_close(struct evid_writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->closing = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	evid_free(w);
}

/*
 * Evidence of denied flows (log.evidence_pcap): the bytes a denied client
 * sent before the decision (its ClientHello, its HTTP request head) written
 * as synthesized TCP/IP packets with libpcap's pcap_dump, carrying the real
 * client and destination addresses and ports, so that Wireshark or tshark
 * open the file and show the SNI or Host as if captured on the wire.
 *
 * The file is written by a thread of its own, off the connection path:
 * evid_record() copies the bytes into a bounded queue and returns at once.
 * A full queue or a failed write is counted (and said once in the log),
 * never waited for: evidence must not slow down or break denials.
 */
#ifndef EGRESSD_EVIDENCE_H
#define EGRESSD_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct log_sink;
struct evid_writer;

struct evid_opts {
	const char *path;       /* the pcap file; rotated files are path.1 .. path.N */
	uint64_t max_bytes;     /* rotate before the file would pass this; 0: never */
	unsigned keep;          /* rotated files kept (path.1 newest) */
	size_t queue_bytes;     /* bytes queued at most; 0: 4 MiB */
	struct log_sink *log;   /* where write failures are said; may be NULL */
};

struct evid_stats {
	uint64_t records;       /* flows written */
	uint64_t dropped;       /* not written: queue full */
	uint64_t failures;      /* not written: open/write/rotate failed */
	uint64_t rotations;
};

/* Opens (creates or appends to) the file and starts the writer thread.
 * NULL with a message in err when the file cannot be opened, or when it
 * exists and is not a RAW pcap this writer could have written (such a file
 * is left untouched; docs/evidence.md). */
struct evid_writer *evid_open(const struct evid_opts *o, char *err,
    size_t errlen);

/*
 * Queue one denied flow: the client src, the destination it aimed at (the
 * original destination, or the gateway's listener address), and the bytes
 * it sent. Thread-safe; never blocks on I/O. 0 queued, -1 dropped (counted).
 * ts_us: the time of the denial (microseconds since the epoch; 0: now).
 */
int evid_record(struct evid_writer *w, const struct sockaddr *src,
    const struct sockaddr *dst, const void *bytes, size_t len, uint64_t ts_us);

void evid_stats(struct evid_writer *w, struct evid_stats *out);

/* Writes what is queued, stops the thread, closes the file. NULL is fine. */
void evid_close(struct evid_writer *w);

#endif

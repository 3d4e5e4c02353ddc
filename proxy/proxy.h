/*
 * proxy: the PROXY protocol header (HAProxy's proxy-protocol.txt, v1 text
 * and v2 binary) that a front proxy or load balancer puts before the first
 * byte of a connection so that the client's real address survives.
 *
 * Like sni/, the parser is pure: it reads the bytes received so far, keeps
 * no state between calls ("parse again with more bytes" is how it resumes),
 * never allocates and never reads past len. Nothing here knows about
 * sockets, events, policy or logging.
 */
#ifndef EGRESSD_PROXY_H
#define EGRESSD_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum proxy_status { PROXY_NEED_MORE, PROXY_DONE, PROXY_ERROR };

struct proxy_header {
	int version;                 /* 1 or 2 */
	int local;                   /* v2 LOCAL / v1 UNKNOWN: no addresses, keep the socket's */
	struct sockaddr_storage src, dst;   /* valid unless local */
	size_t header_len;           /* bytes the header took: the rest is payload */
};

/* Parse the start of a connection. buf holds everything received so far (len bytes).
 * NEED_MORE: not enough bytes yet (never a wrong answer on a prefix);
 * DONE: *out filled; ERROR: *reason is a short static reason text
 * ("not a PROXY header", "v1 line too long", "bad v1 address", "unsupported v2 version",
 *  "v2 address block too short", ...). Never allocates, never reads past len. */
enum proxy_status proxy_parse(const uint8_t *buf, size_t len, struct proxy_header *out, const char **reason);
#define PROXY_MAX_HEADER 536         /* v1 is at most 107 bytes; v2 16 + up to 520 of what we accept */

/*
 * Details of the contract above:
 *  - src/dst are a struct sockaddr_in (TCP4, v2 0x11) or sockaddr_in6
 *    (TCP6, v2 0x21), ports in network byte order as in any sockaddr;
 *    when local, both are zeroed (ss_family AF_UNSPEC).
 *  - On NEED_MORE and ERROR *out is zeroed; *reason is NULL except on
 *    ERROR. reason may be NULL when the caller does not want it.
 *  - Once a prefix of the input gets DONE or ERROR, every longer input
 *    gets the same answer: the caller may stop reading at the first
 *    decision. PROXY_MAX_HEADER bytes always suffice for a decision.
 *  - v2 LOCAL, and v2 PROXY with family UNSPEC (0x00), are local: the
 *    spec says to discard that address block, so it is skipped unparsed.
 */
const char *proxy_status_str(enum proxy_status s);

#endif

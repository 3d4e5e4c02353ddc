/*
 * Redirect chains across connections (DESIGN §7): when the gateway sees a
 * 3xx with a Location, it remembers "this source was sent to host:port"
 * under a chain id; when the same source then asks for that host and port
 * within the window, on any connection or listener, the request's line
 * carries the same chain id. It also remembers each source's last allowed
 * connection, for the "after" hint on TLS passthrough denials, where
 * responses are invisible.
 *
 * One table is shared by every worker: a fixed array of slots in buckets
 * under striped mutexes, so memory is bounded whatever clients do; the
 * oldest entry of a full bucket is replaced. Sources are compared by IP
 * only: a client follows a redirect from a new connection, so a new port.
 */
#ifndef EGRESSD_CHAIN_H
#define EGRESSD_CHAIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CHAIN_ID_MAX    48      /* "w0-000001f3.12" and room to spare */
#define CHAIN_HOST_MAX  253

struct chain_table;

/* slots: entries kept at most (a power of two, at least 128; 0: 4096).
 * window_ms: how long a redirect waits to be followed; after_ms: how long
 * an allowed connection stays the "after" hint. */
struct chain_table *chain_new(size_t slots, uint64_t window_ms,
    uint64_t after_ms);
void chain_free(struct chain_table *t);

/* A 3xx sent src towards host:port, as part of chain id. */
void chain_note_redirect(struct chain_table *t, const struct sockaddr *src,
    const char *host, uint16_t port, const char *id, uint64_t now_ms);

/*
 * Does a request from src for host:port follow a redirect seen within the
 * window? Copies the chain id into id and returns 1; else 0. The entry
 * stays: a client may retry, or follow the same redirect twice.
 */
int chain_follows(struct chain_table *t, const struct sockaddr *src,
    const char *host, uint16_t port, uint64_t now_ms, char *id, size_t idlen);

/* src was allowed a connection to name. */
void chain_note_allowed(struct chain_table *t, const struct sockaddr *src,
    const char *name, uint64_t now_ms);

/* The last allowed connection from src, if within after_ms and not to
 * name itself: its name (into out) and how long ago. Returns 1 or 0. */
int chain_last_allowed(struct chain_table *t, const struct sockaddr *src,
    const char *name, uint64_t now_ms, char *out, size_t outlen,
    uint64_t *ago_ms);

#endif

/*
 * logging: one JSON object per line, per connection (DESIGN §7).
 *
 * A sink is shared by all workers. Each record is formatted into a local
 * buffer and written with one write(2) under the sink's lock, so lines never
 * interleave. Writes block rather than drop: a denial is never lost because
 * the reader is slow.
 */
#ifndef EGRESSD_LOG_H
#define EGRESSD_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define LOG_LINE_MAX 8192
#define LOG_MAX_ALPN 8

struct log_sink;

/* path "-" (or NULL) is stdout; anything else is opened for append. */
struct log_sink *log_sink_open(const char *path, char *err, size_t errlen);
/* Reopen the same path (after rotation). Keeps the old fd on failure. */
int log_sink_reopen(struct log_sink *s, char *err, size_t errlen);
void log_sink_close(struct log_sink *s);

struct log_sink_stats {
	uint64_t lines, failures;
};
void log_sink_stats(struct log_sink *s, struct log_sink_stats *out);

/*
 * The decision record. Every key of the schema is always written; pointers
 * left NULL (and sockaddrs with family AF_UNSPEC) become JSON null.
 */
struct log_record {
	uint64_t ts_us;                 /* wall clock, microseconds since epoch; 0: now */
	const char *event;              /* allow, deny, error, redirect */
	const char *reason;
	int would_deny;                 /* report mode: denied by policy, let through */
	const char *listener;
	const struct sockaddr *src;
	const struct sockaddr *orig_dst;
	const char *name;               /* may hold raw bytes: escaped */
	size_t name_len;                /* 0: strlen(name) */
	int port;                       /* -1: null */
	const char *proto;
	size_t nalpn;                   /* alpn: null when has_alpn is 0 */
	int has_alpn;
	const char *alpn[LOG_MAX_ALPN];
	size_t alpn_len[LOG_MAX_ALPN];
	int has_ech, ech;               /* ech: null when has_ech is 0 */
	const char *rule;               /* "file:line" */
	const char *rule_name;          /* written as "rule_name" */
	const struct sockaddr *upstream;
	const struct sockaddr *upstream_local;  /* our end: for NAT and flow logs */
	uint64_t bytes_in, bytes_out;   /* from the client, to the client */
	double duration_ms;
	const char *conn;               /* connection id */
	const char *detail;             /* optional extra text; key "detail" */
	/* HTTP (null elsewhere). On a request line: the method, the absolute
	 * URL, the status the client got. On a redirect line (event
	 * "redirect"): the request that got the 3xx, from and to URLs, and
	 * the policy's verdict ("allow"/"deny") for the target, whose name,
	 * port, rule and reason fill the usual keys. */
	const char *method;
	const char *url;
	int status;                     /* 0: null */
	const char *chain;              /* the redirect chain id */
	const char *from, *to;
	const char *verdict;
	/* TLS passthrough heuristic: an allowed connection from the same
	 * source to after_name, after_ms before. NULL: null. */
	const char *after_name;
	uint64_t after_ms;
};

/* Format into buf (at least LOG_LINE_MAX); returns the length with '\n'. */
size_t log_format(const struct log_record *r, char *buf, size_t buflen);
/* Format and write one line. Returns 0, or -1 (counted as a failure). */
int log_write(struct log_sink *s, const struct log_record *r);
/*
 * How much an operational message matters, the notice line's "level":
 * info (start, stop, a reload that worked), warning (the daemon carries on
 * with less than it was asked for: a lower open-file limit, no file watch,
 * a full evidence queue), error (something it was asked to do failed: a
 * reload, a log reopen, the evidence file).
 */
enum log_level {
	LOG_LEVEL_INFO = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_ERROR,
};

const char *log_level_str(enum log_level l);

/* Write a free-form operational message as a JSON line (event "notice")
 * with its level. */
void log_notice_level(struct log_sink *s, enum log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same at level info. */
void log_notice(struct log_sink *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Microseconds since the epoch, from CLOCK_REALTIME. */
uint64_t log_now_us(void);

/*
 * JSON string escaping as the log does it, for other JSON writers (the
 * admin endpoints): the escaped form of the character at s goes to out (at
 * least 6 bytes); returns its length and sets *used to the input bytes
 * taken. Valid UTF-8 passes as is; control and stray bytes become \u00XX.
 */
size_t log_json_escape_char(const unsigned char *s, size_t left, char *out,
    size_t *used);

/* s[0..len) as a JSON string, quotes included, on f, every character
 * through log_json_escape_char (egressctl's JSON). 0, or -1 when f fails. */
int log_json_fput(FILE *f, const char *s, size_t len);

#endif

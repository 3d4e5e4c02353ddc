/*
 * egressd: the daemon's entry point. Loads and checks everything before it
 * binds anything, runs in the foreground, and leaves the connection path to
 * the workers. The main thread handles signals (SIGTERM/SIGINT drain,
 * SIGHUP reloads the policy, SIGUSR1 reopens the log file) and serves the
 * admin endpoints.
 *
 * Start-up order: configuration and policy, the open-file limit, the log,
 * the listeners (one set per worker) and the admin sockets, then the switch
 * to user:/group: (so ports below 1024 and a root-owned log directory work),
 * and only then the worker threads, so no connection is accepted as root.
 *
 * Drain (SIGTERM): readiness turns 503 at once; the listeners stay open for
 * drain.delay (load balancers and Kubernetes endpoints take a moment to stop
 * sending), then close; connections get up to drain.timeout, and survivors
 * are closed with reason "draining". The admin endpoints answer throughout.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "dns/dns.h"
#include "gateway/gwconfig.h"
#include "gateway/gateway.h"
#include "gateway/notify.h"
#include "logging/chain.h"
#include "logging/evidence.h"
#include "logging/log.h"
#include "policy/policy.h"

#define EXIT_CONFIG 1

/*
 * Descriptors the daemon holds besides its connections: stdio, the log, the
 * main loop, signals, the file watch and the admin sockets (BASE); each
 * worker's event loop, wake-up and DNS sockets (PER_WORKER) and listeners.
 * Below room for MIN_CONNS connections the daemon refuses to start.
 */
#define NOFILE_BASE             24
#define NOFILE_PER_WORKER       8
#define NOFILE_MIN_CONNS        4

struct daemon {
	const char *config_path;
	struct gw_shared shared;        /* chains, evidence, upstream TLS */
	struct gw_config *cfg;
	struct log_sink *log;
	struct gw_status st;    /* snap, generation, reloads, workers, ready */
	size_t nworkers;
	struct gw_worker **workers;
	struct event_base *base;
	struct gw_watch *watch;
	struct gw_admin *admin;
	struct event *exit_ev;  /* a worker's loop has ended */
	struct event *delay_ev; /* drain.delay is over */
	int workers_draining;
	unsigned errors;        /* errors reported by the current load */
	int reloading;          /* send diagnostics to the log too */
	int ca_loaded;          /* the upstream TLS context's trust store */
};

/* Does any rule of the policy originate TLS? */
static int
snap_originates(const struct pol_snapshot *s)
{
	size_t n = pol_snapshot_rule_count(s);

	for (size_t i = 0; i < n; i++)
		if (pol_snapshot_rule(s, i)->originate_tls)
			return 1;
	return 0;
}

/*
 * The trust store of the upstream TLS context: upstream_tls.ca_file at
 * start; the system's store (some 140 certificates: a tenth of a second
 * and a MiB of memory) only once a policy has a rule that originates TLS,
 * at start or at the reload that brings the first one. Loaded on the main
 * thread before any worker has a snapshot that could use it, never
 * replaced (a worker may be verifying with it).
 */
static int
upstream_ca(struct daemon *d, const struct pol_snapshot *s, char *err,
    size_t errlen)
{
	const struct gw_config *cfg = d->cfg;

	if (d->ca_loaded || (cfg->upstream_ca_file == NULL &&
	    !snap_originates(s)))
		return 0;
	if ((cfg->upstream_ca_file != NULL ?
	    SSL_CTX_load_verify_locations(d->shared.tls_ctx, cfg->upstream_ca_file,
	    NULL) : SSL_CTX_set_default_verify_paths(d->shared.tls_ctx)) != 1) {
		snprintf(err, errlen, "upstream_tls: cannot load %s",
		    cfg->upstream_ca_file != NULL ? cfg->upstream_ca_file :
		    "the system's CA store");
		return -1;
	}
	d->ca_loaded = 1;
	return 0;
}

/*
 * What the workers share: the redirect-chain table, the evidence writer
 * (log.evidence_pcap), the TLS context for origination, which verifies
 * upstreams against upstream_tls.ca_file or the system's store, and the
 * loop table of our upstream sockets.
 */
static int
shared_new(struct daemon *d, char *err, size_t errlen)
{
	const struct gw_config *cfg = d->cfg;

	d->shared.chains = chain_new(0, cfg->redirect_window_ms,
	    cfg->after_window_ms);
	d->shared.tls_ctx = SSL_CTX_new(TLS_client_method());
	d->shared.loops = gw_loops_new();
	if (d->shared.chains == NULL || d->shared.tls_ctx == NULL ||
	    d->shared.loops == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	SSL_CTX_set_min_proto_version(d->shared.tls_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(d->shared.tls_ctx, SSL_VERIFY_PEER, NULL);
	if (upstream_ca(d, d->st.snap, err, errlen) != 0)
		return -1;
	if (cfg->evidence_path != NULL) {
		struct evid_opts o;

		memset(&o, 0, sizeof(o));
		o.path = cfg->evidence_path;
		o.max_bytes = cfg->evidence_max_bytes;
		o.keep = cfg->evidence_keep;
		o.log = d->log;
		d->shared.evidence = evid_open(&o, err, errlen);
		if (d->shared.evidence == NULL)
			return -1;
	}
	return 0;
}

static void
shared_free(struct daemon *d)
{
	evid_close(d->shared.evidence);
	chain_free(d->shared.chains);
	SSL_CTX_free(d->shared.tls_ctx);
	gw_loops_free(d->shared.loops);
	memset(&d->shared, 0, sizeof(d->shared));
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: egressd -c FILE [-t]\n"
	    "\n"
	    "  -c, --config FILE  daemon configuration (YAML, see docs/config.md)\n"
	    "  -t, --test         check the configuration and policy files, print\n"
	    "                     \"configuration OK\" or every error, and exit 0 or 1\n"
	    "  -V, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n"
	    "\n"
	    "Runs in the foreground and logs one JSON line per connection.\n"
	    "Signals: TERM/INT drain and exit, HUP reloads the policy, USR1 reopens\n"
	    "the log file.\n");
}

/* Diagnostics as file:line:column: message, the form editors jump to. */
static void
report(void *arg, enum pol_severity sev, const char *file, unsigned line,
    unsigned col, const char *msg)
{
	struct daemon *d = arg;
	char line_buf[2048];

	if (sev == POL_ERROR)
		d->errors++;
	pol_diag_format(line_buf, sizeof(line_buf), sev, file, line, col, msg);
	fprintf(stderr, "%s\n", line_buf);
	if (d->reloading && d->log != NULL)
		log_notice_level(d->log, sev == POL_ERROR ? LOG_LEVEL_ERROR :
		    sev == POL_WARNING ? LOG_LEVEL_WARNING : LOG_LEVEL_INFO,
		    "reload: %s", line_buf);
}

static struct pol_snapshot *
load_policy(struct daemon *d, const struct gw_config *cfg)
{
	struct pol_load_opts opts;

	struct pol_snapshot *s;

	d->errors = 0;
	gw_config_policy_opts(cfg, &opts);
	s = pol_load_ex((const char *const *)cfg->policy_paths, cfg->npolicy,
	    &opts, report, d);
	/* Reading the files built and freed a YAML tree several times the
	 * snapshot's size (about 0.4 KB per pattern); give those pages back
	 * rather than keep them resident for the daemon's life. */
	malloc_trim(0);
	return s;
}

/*
 * Each relayed connection holds two descriptors. Raise the soft limit to
 * what max_connections needs, up to the hard limit; say so when the hard
 * limit is lower (accept then pauses at the limit rather than failing), and
 * refuse to start when it leaves room for almost nothing.
 */
static int
set_nofile(struct daemon *d, char *err, size_t errlen)
{
	const struct gw_config *c = d->cfg;
	struct rlimit rl;
	unsigned long long fixed, need, min, target, admin;

	/* A worker's own descriptors include its spare splice pipes. */
	fixed = NOFILE_BASE + (unsigned long long)c->workers *
	    (NOFILE_PER_WORKER + 2 * GW_SPARE_PIPES + c->nlisteners);
	/* The admin listeners' connections have a budget of their own, so
	 * the relay's is never spent on them. */
	admin = c->admin_max_conns;
	need = fixed + admin + 2ULL * c->max_connections;
	min = fixed + 2ULL * NOFILE_MIN_CONNS;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		snprintf(err, errlen, "getrlimit(RLIMIT_NOFILE): %s",
		    strerror(errno));
		return -1;
	}
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < min) {
		snprintf(err, errlen, "open-file limit: the hard limit is %llu; "
		    "egressd needs at least %llu (%llu for %d worker(s) and %zu "
		    "listener(s), 2 per connection for %d connections); raise it "
		    "(ulimit -Hn, systemd LimitNOFILE=)",
		    (unsigned long long)rl.rlim_max, min, fixed, c->workers,
		    c->nlisteners, NOFILE_MIN_CONNS);
		return -1;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		target = need;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
			target = rl.rlim_max;
		if (target > rl.rlim_cur) {
			struct rlimit nr = rl;

			nr.rlim_cur = (rlim_t)target;
			if (setrlimit(RLIMIT_NOFILE, &nr) == 0)
				rl = nr;
			else
				log_notice_level(d->log, LOG_LEVEL_WARNING,
				    "open-file limit: cannot raise the soft "
				    "limit from %llu to %llu: %s",
				    (unsigned long long)rl.rlim_cur, target,
				    strerror(errno));
		}
		if (rl.rlim_cur < need)
			log_notice_level(d->log, LOG_LEVEL_WARNING,
			    "open-file limit: max_connections %u "
			    "needs %llu descriptors (2 per connection + %llu, + %llu "
			    "for admin connections) but "
			    "the limit is %llu (hard %llu): about %llu connections "
			    "fit; beyond that accepting pauses (reason overloaded). "
			    "Raise the hard limit (ulimit -Hn, systemd "
			    "LimitNOFILE=, docker --ulimit nofile=) or lower "
			    "max_connections", c->max_connections, need, fixed,
			    admin, (unsigned long long)rl.rlim_cur,
			    (unsigned long long)rl.rlim_max,
			    rl.rlim_cur > fixed + admin ?
			    ((unsigned long long)rl.rlim_cur - fixed - admin) / 2 : 0);
	}
	d->st.nofile_limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX :
	    (uint64_t)rl.rlim_cur;
	return 0;
}

/* A decimal id ("65532"), for users and groups with no entry. */
static int
parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno != 0 || *end != '\0' || *out >= 0xffffffffUL ? -1 : 0;
}

/* Who user:/group: name, looked up before anything is bound. */
struct identity {
	int change;             /* 0: stay as started */
	uid_t uid;
	gid_t gid;
	char *name;             /* for initgroups; NULL with group: only */
};

/*
 * Resolve user:/group: and (with check_root) check that the switch can be
 * made, so that an unknown name or a daemon not started as root fails
 * before it binds anything. Returns 0 or -1 with err set.
 */
static int
identity_resolve(const struct gw_config *c, int check_root,
    struct identity *id, char *err, size_t errlen)
{
	struct passwd *pw = NULL;
	struct group *gr;
	unsigned long num;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	memset(id, 0, sizeof(*id));
	if (c->user == NULL && c->group == NULL)
		return 0;
	id->uid = geteuid();
	id->gid = getegid();
	if (c->user != NULL) {
		errno = 0;
		pw = getpwnam(c->user);
		if (pw == NULL && parse_id(c->user, &num) == 0) {
			/* A number: its entry if there is one; else that uid,
			 * with the same number as gid unless group: says. */
			pw = getpwuid((uid_t)num);
			if (pw == NULL) {
				id->uid = (uid_t)num;
				id->gid = (gid_t)num;
			}
		} else if (pw == NULL) {
			snprintf(err, errlen, "user %s: %s", c->user, errno != 0 ?
			    strerror(errno) : "no such user");
			return -1;
		}
		if (pw != NULL) {
			id->uid = pw->pw_uid;
			id->gid = pw->pw_gid;
			id->name = strdup(pw->pw_name);
			if (id->name == NULL) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
		}
	}
	if (c->group != NULL) {
		errno = 0;
		gr = getgrnam(c->group);
		if (gr != NULL) {
			id->gid = gr->gr_gid;
		} else if (parse_id(c->group, &num) == 0) {
			id->gid = (gid_t)num;
		} else {
			snprintf(err, errlen, "group %s: %s", c->group, errno != 0 ?
			    strerror(errno) : "no such group");
			return -1;
		}
	}
	if (!check_root)
		return 0;
	if (geteuid() != 0) {
		/* Already that identity (a unit that sets User= and also
		 * names it here): nothing to do. */
		if (getresuid(&ru, &eu, &su) == 0 && ru == id->uid &&
		    eu == id->uid && su == id->uid &&
		    getresgid(&rg, &eg, &sg) == 0 && rg == id->gid &&
		    eg == id->gid && sg == id->gid)
			return 0;
		snprintf(err, errlen, "cannot switch to %s%s%s%s%s (uid %u, gid "
		    "%u): not running as root (uid %u); start as root or leave "
		    "user: and group: out", c->user ? "user " : "",
		    c->user ? c->user : "", c->user && c->group ? ", " : "",
		    c->group ? "group " : "", c->group ? c->group : "",
		    (unsigned)id->uid, (unsigned)id->gid, (unsigned)geteuid());
		return -1;
	}
	id->change = 1;
	return 0;
}

/*
 * Become that identity for good, after everything that needs root is bound
 * and opened. Groups first, then the gid, then the uid (once the uid is not
 * 0 the others can no longer change); then check that root cannot come
 * back. Returns 0 or -1 with err set.
 */
static int
identity_switch(const struct identity *id, char *err, size_t errlen)
{
	uid_t ru, eu, su, uid = id->uid;
	gid_t rg, eg, sg, gid = id->gid;

	if (!id->change)
		return 0;
	if (id->name != NULL ? initgroups(id->name, gid) != 0 :
	    setgroups(1, &gid) != 0) {
		snprintf(err, errlen, "setting supplementary groups: %s",
		    strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) != 0) {
		snprintf(err, errlen, "setresgid(%u): %s", (unsigned)gid,
		    strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) != 0) {
		snprintf(err, errlen, "setresuid(%u): %s", (unsigned)uid,
		    strerror(errno));
		return -1;
	}
	if (getresuid(&ru, &eu, &su) != 0 || ru != uid || eu != uid ||
	    su != uid || getresgid(&rg, &eg, &sg) != 0 || rg != gid ||
	    eg != gid || sg != gid) {
		snprintf(err, errlen, "after switching to uid %u gid %u the "
		    "process still holds another identity", (unsigned)uid,
		    (unsigned)gid);
		return -1;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "root could be regained after switching "
		    "to uid %u", (unsigned)uid);
		return -1;
	}
	if (uid != 0 && gid != 0 && (setgid(0) == 0 || setegid(0) == 0)) {
		snprintf(err, errlen, "group root could be regained after "
		    "switching to gid %u", (unsigned)gid);
		return -1;
	}
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer stops the process's threads with ptrace at exit,
	 * which a process that changed uid (not dumpable) refuses. Only the
	 * sanitizer build: a production daemon stays non-dumpable. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
	return 0;
}

static void
check_done(struct daemon *d)
{
	for (size_t i = 0; i < d->nworkers; i++)
		if (!gw_worker_done(d->workers[i]))
			return;
	event_base_loopbreak(d->base);
}

/* A worker's loop ended: once they all have, so does the main loop. */
static void
on_worker_exit(evutil_socket_t fd, short what, void *arg)
{
	check_done(arg);
}

/* Close the listeners; connections get up to drain.timeout. */
static void
drain_workers(struct daemon *d)
{
	if (d->workers_draining)
		return;
	d->workers_draining = 1;
	evtimer_del(d->delay_ev);
	for (size_t i = 0; i < d->nworkers; i++)
		gw_worker_drain(d->workers[i]);
	check_done(d);
}

static void
on_delay_over(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	log_notice(d->log, "drain: delay over; listeners closed, connections "
	    "get up to %llu ms", (unsigned long long)d->cfg->timeouts.drain_ms);
	drain_workers(d);
}

static void
on_drain(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	uint64_t delay = d->cfg->timeouts.drain_delay_ms;
	struct timeval tv;

	if (d->st.draining) {
		/* A second signal: stop waiting for the delay. */
		if (!d->workers_draining) {
			log_notice(d->log, "signal %d again: closing the "
			    "listeners now", (int)sig);
			drain_workers(d);
		}
		return;
	}
	d->st.draining = 1;     /* readiness says 503 from here on */
	gw_notify("STOPPING=1");
	if (delay == 0) {
		log_notice(d->log, "signal %d: draining (up to %llu ms), then "
		    "exiting", (int)sig,
		    (unsigned long long)d->cfg->timeouts.drain_ms);
		drain_workers(d);
		return;
	}
	log_notice(d->log, "signal %d: draining: readiness is 503 now; the "
	    "listeners stay open for %llu ms, then connections get up to %llu "
	    "ms, then exiting", (int)sig, (unsigned long long)delay,
	    (unsigned long long)d->cfg->timeouts.drain_ms);
	tv.tv_sec = (time_t)(delay / 1000);
	tv.tv_usec = (suseconds_t)((delay % 1000) * 1000);
	evtimer_add(d->delay_ev, &tv);
}

/*
 * The configuration file is read at start only (its listeners, workers and
 * identity cannot change under a running daemon). An edit to it would be
 * ignored by a reload while egressctl, reading the file, answered with it:
 * say so at every reload until the file and the running settings agree.
 */
static void
config_drift(struct daemon *d, const char *why)
{
	char what[512];

	d->st.config_changed = gw_config_changed(d->cfg, what, sizeof(what));
	if (d->st.config_changed)
		log_notice_level(d->log, LOG_LEVEL_WARNING, "reload (%s): %s has "
		    "changed since egressd started (%s); it is read only at "
		    "start, so those settings are not applied: restart egressd "
		    "to apply them. The policy files are reloaded with the "
		    "running settings", why, d->cfg->path, what);
}

/* Build a new snapshot off the connection path; swap it in only whole. */
static void
reload(struct daemon *d, const char *why)
{
	struct gw_status *st = &d->st;
	struct pol_snapshot *s;
	char err[256];

	if (!d->st.draining)
		gw_notify("RELOADING=1");
	config_drift(d, why);
	d->reloading = 1;
	s = load_policy(d, d->cfg);
	d->reloading = 0;
	if (s != NULL && upstream_ca(d, s, err, sizeof(err)) != 0) {
		/* A rule that originates TLS with nothing to verify with. */
		log_notice_level(d->log, LOG_LEVEL_ERROR, "reload: %s", err);
		d->errors++;
		pol_snapshot_unref(s);
		s = NULL;
	}
	if (s == NULL) {
		st->reloads_failed++;
		st->last_reload_ok = 0;
		log_notice_level(d->log, LOG_LEVEL_ERROR, "reload (%s) failed "
		    "with %u error(s); keeping policy generation %llu (reloads "
		    "ok %llu, failed %llu)", why,
		    d->errors, (unsigned long long)st->generation,
		    (unsigned long long)st->reloads_ok,
		    (unsigned long long)st->reloads_failed);
		if (!d->st.draining)
			gw_notify("READY=1");
		return;
	}
	st->reloads_ok++;
	st->last_reload_ok = 1;
	st->policy_loaded_us = log_now_us();
	pol_snapshot_set_generation(s, ++st->generation);
	for (size_t i = 0; i < d->nworkers; i++)
		gw_worker_set_policy(d->workers[i], s);
	pol_snapshot_unref(st->snap);
	st->snap = s;
	log_notice(d->log, "reload (%s): policy generation %llu, %zu rules",
	    why, (unsigned long long)st->generation, pol_snapshot_rule_count(s));
	if (!d->st.draining)
		gw_notify("READY=1");
}

static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	reload(arg, "SIGHUP");
}

static void
on_files_changed(void *arg)
{
	reload(arg, "files changed");
}

static void
on_reopen(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	char err[256];

	if (log_sink_reopen(d->log, err, sizeof(err)) != 0)
		log_notice_level(d->log, LOG_LEVEL_ERROR, "log reopen failed: "
		    "%s; still writing to the old file", err);
}

/* The workers, listeners bound, each with its rule counters made before
 * its thread starts (the scraper finds them). 0, or -1 (said on stderr). */
static int
make_workers(struct daemon *d)
{
	char err[512];

	for (size_t i = 0; i < d->nworkers; i++) {
		d->workers[i] = gw_worker_new((unsigned)i, d->cfg, d->log,
		    d->st.snap, err, sizeof(err));
		if (d->workers[i] == NULL) {
			fprintf(stderr, "egressd: %s\n", err);
			return -1;
		}
		d->workers[i]->shared = &d->shared;
		d->st.nworkers = i + 1;
		d->workers[i]->metrics.rules = gw_rule_hits_new();
		if (d->workers[i]->metrics.rules == NULL) {
			fprintf(stderr, "egressd: out of memory\n");
			return -1;
		}
	}
	return 0;
}

/* SIGTERM and SIGINT drain, SIGHUP reloads, SIGUSR1 reopens the log; the
 * policy files are watched if asked. 0, or -1 (said on stderr). */
static int
add_signals(struct daemon *d, struct event *sigs[4])
{
	char err[512];

	sigs[0] = evsignal_new(d->base, SIGTERM, on_drain, d);
	sigs[1] = evsignal_new(d->base, SIGINT, on_drain, d);
	sigs[2] = evsignal_new(d->base, SIGHUP, on_reload, d);
	sigs[3] = evsignal_new(d->base, SIGUSR1, on_reopen, d);
	for (size_t i = 0; i < 4; i++) {
		if (sigs[i] == NULL) {
			fprintf(stderr, "egressd: out of memory\n");
			return -1;
		}
		evsignal_add(sigs[i], NULL);
	}
	if (d->cfg->policy_watch) {
		d->watch = gw_watch_new(d->base, d->cfg->policy_paths,
		    d->cfg->npolicy, on_files_changed, d, err, sizeof(err));
		if (d->watch == NULL)
			log_notice_level(d->log, LOG_LEVEL_WARNING, "not watching "
			    "the policy files (%s); reload with SIGHUP", err);
	}
	return 0;
}

/* Every worker's thread, then the lines that say so. 0, or -1 (those
 * started are told to drain). */
static int
start_workers(struct daemon *d)
{
	for (size_t i = 0; i < d->nworkers; i++) {
		if (gw_worker_start(d->workers[i], d->exit_ev) != 0) {
			fprintf(stderr, "egressd: cannot start worker %zu\n", i);
			for (size_t j = 0; j < i; j++)
				gw_worker_drain(d->workers[j]);
			return -1;
		}
	}
	for (size_t i = 0; i < d->cfg->nlisteners; i++)
		log_notice(d->log, "listening on %s (%s, listener %s)",
		    d->cfg->listeners[i].address_text,
		    gw_proto_str(d->cfg->listeners[i].proto),
		    d->cfg->listeners[i].name);
	d->st.ready = 1;
	log_notice(d->log, "egressd %s started: %zu worker(s), policy generation "
	    "%llu with %zu rules, running as uid %u gid %u, open-file limit %llu",
	    PACKAGE_VERSION, d->nworkers, (unsigned long long)d->st.generation,
	    pol_snapshot_rule_count(d->st.snap), (unsigned)geteuid(),
	    (unsigned)getegid(), (unsigned long long)d->st.nofile_limit);
	return 0;
}

/* The workers' loops have ended (or never began): everything goes. */
static void
run_teardown(struct daemon *d, struct event *sigs[4], int rc)
{
	gw_watch_free(d->watch);
	d->watch = NULL;
	for (size_t i = 0; i < 4; i++)
		if (sigs[i] != NULL)
			event_free(sigs[i]);
	/* The admin server goes first, as it reads the workers' counters. */
	gw_admin_free(d->admin);
	d->admin = NULL;
	for (size_t i = 0; i < d->nworkers; i++) {
		/* Closing what is left counts too: the table goes last. */
		struct gw_rule_hits *rules = d->workers[i] != NULL ?
		    d->workers[i]->metrics.rules : NULL;

		gw_worker_join_free(d->workers[i]);
		gw_rule_hits_free(rules);
	}
	shared_free(d);
	if (rc == 0)
		log_notice(d->log, "egressd stopped");
	if (d->exit_ev != NULL)
		event_free(d->exit_ev);
	if (d->delay_ev != NULL)
		event_free(d->delay_ev);
	free(d->workers);
	event_base_free(d->base);
}

static int
run(struct daemon *d)
{
	struct event *sigs[4] = { NULL, NULL, NULL, NULL };
	struct identity id;
	char err[512];
	int rc = 1;

	d->st.cfg = d->cfg;
	d->st.log = d->log;
	d->st.start_us = log_now_us();
	if (identity_resolve(d->cfg, 1, &id, err, sizeof(err)) != 0 ||
	    set_nofile(d, err, sizeof(err)) != 0) {
		fprintf(stderr, "egressd: %s\n", err);
		free(id.name);
		return 1;
	}
	d->nworkers = (size_t)d->cfg->workers;
	d->workers = calloc(d->nworkers, sizeof(*d->workers));
	d->base = event_base_new();
	if (d->workers == NULL || d->base == NULL) {
		fprintf(stderr, "egressd: out of memory\n");
		free(d->workers);
		if (d->base != NULL)
			event_base_free(d->base);
		free(id.name);
		return 1;
	}
	d->st.workers = d->workers;
	d->exit_ev = event_new(d->base, -1, 0, on_worker_exit, d);
	d->delay_ev = evtimer_new(d->base, on_delay_over, d);
	if (d->exit_ev == NULL || d->delay_ev == NULL) {
		fprintf(stderr, "egressd: out of memory\n");
		goto out;
	}
	if (shared_new(d, err, sizeof(err)) != 0) {
		fprintf(stderr, "egressd: %s\n", err);
		goto out;
	}
	d->st.shared = &d->shared;
	if (make_workers(d) != 0)
		goto out;
	d->admin = gw_admin_new(d->base, &d->st, err, sizeof(err));
	if (d->admin == NULL) {
		fprintf(stderr, "egressd: %s\n", err);
		goto out;
	}
	/* Everything that needs root is bound or open: the listeners, the
	 * admin sockets, the log. No connection has been accepted yet. */
	if (identity_switch(&id, err, sizeof(err)) != 0) {
		fprintf(stderr, "egressd: %s\n", err);
		goto out;
	}
	if (add_signals(d, sigs) != 0 || start_workers(d) != 0)
		goto out;
	gw_notify("READY=1");
	event_base_dispatch(d->base);
	rc = 0;
out:
	run_teardown(d, sigs, rc);
	free(id.name);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d;
	int test = 0, ch, rc;
	char err[512];

	memset(&d, 0, sizeof(d));
	while ((ch = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.config_path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("egressd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || d.config_path == NULL) {
		usage(stderr);
		return 2;
	}

	d.cfg = gw_config_load(d.config_path, report, &d);
	if (d.cfg == NULL)
		return EXIT_CONFIG;
	d.st.snap = load_policy(&d, d.cfg);
	if (d.st.snap == NULL) {
		gw_config_free(d.cfg);
		return EXIT_CONFIG;
	}
	/* The first load counts as a successful one: a daemon that starts
	 * runs the policy it was given. */
	d.st.last_reload_ok = 1;
	d.st.policy_loaded_us = log_now_us();
	if (test) {
		struct identity id;

		/* user:/group: must name someone; whether the switch can be
		 * made depends on who starts the daemon, not on the file. */
		rc = identity_resolve(d.cfg, 0, &id, err, sizeof(err));
		free(id.name);
		if (rc != 0) {
			fprintf(stderr, "%s: %s\n", d.config_path, err);
			pol_snapshot_unref(d.st.snap);
			gw_config_free(d.cfg);
			return EXIT_CONFIG;
		}
		printf("configuration OK\n");
		pol_snapshot_unref(d.st.snap);
		gw_config_free(d.cfg);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "egressd: libevent has no thread support\n");
		return 1;
	}
	d.log = log_sink_open(d.cfg->log_path, err, sizeof(err));
	if (d.log == NULL) {
		fprintf(stderr, "egressd: log: %s\n", err);
		pol_snapshot_unref(d.st.snap);
		gw_config_free(d.cfg);
		return 1;
	}
	rc = run(&d);
	pol_snapshot_unref(d.st.snap);
	log_sink_close(d.log);
	gw_config_free(d.cfg);
	libevent_global_shutdown();
	return rc;
}

/*
 * egressd: the daemon's entry point. Loads and checks everything before it
 * binds anything, runs in the foreground, and leaves the connection path to
 * the workers. The main thread only handles signals: SIGTERM/SIGINT drain,
 * SIGHUP reloads the policy, SIGUSR1 reopens the log file.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "dns/dns.h"
#include "gateway/gwconfig.h"
#include "gateway/gateway.h"
#include "logging/log.h"
#include "policy/policy.h"

#define EXIT_CONFIG 1

struct daemon {
	const char *config_path;
	struct gw_config *cfg;
	struct log_sink *log;
	struct pol_snapshot *snap;
	uint64_t generation;
	size_t nworkers;
	struct gw_worker **workers;
	struct event_base *base;
	struct gw_watch *watch;
	unsigned errors;        /* errors reported by the current load */
	uint64_t reloads_ok, reloads_failed;
	int reloading;          /* send diagnostics to the log too */
};

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
		log_notice(d->log, "reload: %s", line_buf);
}

static struct pol_snapshot *
load_policy(struct daemon *d, const struct gw_config *cfg)
{
	struct pol_load_opts opts;

	d->errors = 0;
	gw_config_policy_opts(cfg, &opts);
	return pol_load_ex((const char *const *)cfg->policy_paths, cfg->npolicy,
	    &opts, report, d);
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	/* Each relayed connection holds two descriptors; take what we may. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
on_drain(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	log_notice(d->log, "signal %d: draining (up to %llu ms), then exiting",
	    (int)sig, (unsigned long long)d->cfg->timeouts.drain_ms);
	for (size_t i = 0; i < d->nworkers; i++)
		gw_worker_drain(d->workers[i]);
	event_base_loopbreak(d->base);
}

/* Build a new snapshot off the connection path; swap it in only whole. */
static void
reload(struct daemon *d, const char *why)
{
	struct pol_snapshot *s;

	d->reloading = 1;
	s = load_policy(d, d->cfg);
	d->reloading = 0;
	if (s == NULL) {
		d->reloads_failed++;
		log_notice(d->log, "reload (%s) failed with %u error(s); keeping "
		    "policy generation %llu (reloads ok %llu, failed %llu)", why,
		    d->errors, (unsigned long long)d->generation,
		    (unsigned long long)d->reloads_ok,
		    (unsigned long long)d->reloads_failed);
		return;
	}
	d->reloads_ok++;
	pol_snapshot_set_generation(s, ++d->generation);
	for (size_t i = 0; i < d->nworkers; i++)
		gw_worker_set_policy(d->workers[i], s);
	pol_snapshot_unref(d->snap);
	d->snap = s;
	log_notice(d->log, "reload (%s): policy generation %llu, %zu rules",
	    why, (unsigned long long)d->generation, pol_snapshot_rule_count(s));
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
		log_notice(d->log, "log reopen failed: %s; still writing to the "
		    "old file", err);
}

static int
run(struct daemon *d)
{
	struct event *sigs[4];
	char err[512];
	int rc = 1;

	d->nworkers = (size_t)d->cfg->workers;
	d->workers = calloc(d->nworkers, sizeof(*d->workers));
	d->base = event_base_new();
	if (d->workers == NULL || d->base == NULL) {
		fprintf(stderr, "egressd: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < d->nworkers; i++) {
		d->workers[i] = gw_worker_new((unsigned)i, d->cfg, d->log, d->snap,
		    err, sizeof(err));
		if (d->workers[i] == NULL) {
			fprintf(stderr, "egressd: %s\n", err);
			goto out;
		}
	}
	sigs[0] = evsignal_new(d->base, SIGTERM, on_drain, d);
	sigs[1] = evsignal_new(d->base, SIGINT, on_drain, d);
	sigs[2] = evsignal_new(d->base, SIGHUP, on_reload, d);
	sigs[3] = evsignal_new(d->base, SIGUSR1, on_reopen, d);
	for (size_t i = 0; i < 4; i++)
		evsignal_add(sigs[i], NULL);
	if (d->cfg->policy_watch) {
		d->watch = gw_watch_new(d->base, d->cfg->policy_paths,
		    d->cfg->npolicy, on_files_changed, d, err, sizeof(err));
		if (d->watch == NULL)
			log_notice(d->log, "not watching the policy files (%s); "
			    "reload with SIGHUP", err);
	}
	for (size_t i = 0; i < d->nworkers; i++) {
		if (gw_worker_start(d->workers[i]) != 0) {
			fprintf(stderr, "egressd: cannot start worker %zu\n", i);
			for (size_t j = 0; j < i; j++)
				gw_worker_drain(d->workers[j]);
			goto out_sigs;
		}
	}
	for (size_t i = 0; i < d->cfg->nlisteners; i++)
		log_notice(d->log, "listening on %s (%s, listener %s)",
		    d->cfg->listeners[i].address_text,
		    gw_proto_str(d->cfg->listeners[i].proto),
		    d->cfg->listeners[i].name);
	log_notice(d->log, "egressd %s started: %zu worker(s), policy generation "
	    "%llu with %zu rules", PACKAGE_VERSION, d->nworkers,
	    (unsigned long long)d->generation, pol_snapshot_rule_count(d->snap));
	event_base_dispatch(d->base);
	rc = 0;
out_sigs:
	gw_watch_free(d->watch);
	d->watch = NULL;
	for (size_t i = 0; i < 4; i++)
		event_free(sigs[i]);
out:
	for (size_t i = 0; i < d->nworkers; i++)
		gw_worker_join_free(d->workers[i]);
	if (rc == 0)
		log_notice(d->log, "egressd stopped");
	free(d->workers);
	event_base_free(d->base);
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
	d.snap = load_policy(&d, d.cfg);
	if (d.snap == NULL) {
		gw_config_free(d.cfg);
		return EXIT_CONFIG;
	}
	if (test) {
		printf("configuration OK\n");
		pol_snapshot_unref(d.snap);
		gw_config_free(d.cfg);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "egressd: libevent has no thread support\n");
		return 1;
	}
	d.log = log_sink_open(d.cfg->log_path, err, sizeof(err));
	if (d.log == NULL) {
		fprintf(stderr, "egressd: log: %s\n", err);
		pol_snapshot_unref(d.snap);
		gw_config_free(d.cfg);
		return 1;
	}
	rc = run(&d);
	pol_snapshot_unref(d.snap);
	log_sink_close(d.log);
	gw_config_free(d.cfg);
	libevent_global_shutdown();
	return rc;
}

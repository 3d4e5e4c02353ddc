/*
 * policy_bench: how the policy scales with the number of host patterns
 * (issue 3). Not a test: it prints numbers and says, for information,
 * whether each target is met.
 *
 *   policy_bench [-t SECONDS] [-r RUNS] DIR N [N...]
 *
 * For each N it reads DIR/rules-N.yaml, DIR/rules-N.yaml.hits and
 * DIR/rules-N.yaml.misses, as written by bench/gen_rules.py, and reports:
 *  - the wall-clock time of pol_load() (median of RUNS loads);
 *  - the memory the snapshot holds: heap bytes in use (mallinfo2, exact
 *    for malloc'd memory), and RSS growth and peak RSS during the load
 *    (from /proc, page-granular, including what the loader frees again);
 *  - ns per decision and decisions per second over the hit names and the
 *    miss names, after checking that every name gets the reason the
 *    generator expects (a benchmark of the wrong outcome measures nothing);
 * then, with the largest N, the reload check: a snapshot held by a
 * connection outlives the reload that replaced it, and its memory goes
 * back once the connection lets go.
 *
 * Exit status: 0, or 1 if a policy did not load, a name file was
 * unusable, or a name got the wrong verdict. Missing a target is not a
 * failure here.
 */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/policy.h"

#define BENCH_MAX_SIZES 16
#define BENCH_MAX_RUNS 15
#define BENCH_ROUNDS 5          /* timed rounds per decision figure */
#define BENCH_HOT 64            /* names in the "hot" working set */
#define NO_TCACHE "glibc.malloc.tcache_count=0"
#define MIB (1024.0 * 1024.0)

/* The names one list holds and the reason each must get. */
struct bench_names {
	char *text;                     /* the file, names NUL-terminated in place */
	size_t n;
	struct pol_request *reqs;
	enum pol_reason *want;
};

struct bench_result {
	unsigned long size;
	size_t rules;
	double load_ms;                 /* median */
	double load_min_ms, load_max_ms;
	long heap;                      /* bytes the snapshot holds */
	long rss, peak;                 /* RSS growth after / peak during load */
	size_t nhits, nmisses;
	double hit_ns, miss_ns, hot_ns;
};

/* Results feed this so the compiler cannot drop the decisions. */
static volatile uintptr_t bench_sink;

static double bench_budget = 0.4;       /* seconds per decision figure */
static int bench_runs = 5;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Heap in use: arena chunks plus mmap()ed ones. Exact, unlike RSS. */
static long heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (long)(mi.uordblks + mi.hblkhd);
}

static long rss_bytes(void)
{
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	int n;

	if (f == NULL)
		return -1;
	n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	if (n != 2)
		return -1;
	return (long)resident * sysconf(_SC_PAGESIZE);
}

/*
 * Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0), so
 * the high-water mark read afterwards belongs to the load alone. -1 when
 * that is not possible (then the peak is not reported).
 */
static int peak_reset(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	int rc;

	if (f == NULL)
		return -1;
	rc = fputs("5", f) < 0 ? -1 : 0;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

static long peak_bytes(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

static void report(void *arg, enum pol_severity sev, const char *file,
    unsigned line, unsigned col, const char *msg)
{
	unsigned *errors = arg;

	if (sev == POL_NOTICE)
		return;
	if (sev == POL_ERROR)
		(*errors)++;
	fprintf(stderr, "%s:%u:%u: %s: %s\n", file != NULL ? file : "policy",
	    line, col, sev == POL_ERROR ? "error" : "warning", msg);
}

static struct pol_snapshot *load(const char *path)
{
	unsigned errors = 0;
	struct pol_snapshot *s;

	s = pol_load(&path, 1, NULL, report, &errors);
	if (s == NULL)
		fprintf(stderr, "policy_bench: %s: did not load (%u errors)\n",
		    path, errors);
	return s;
}

static int parse_reason(const char *text, enum pol_reason *out)
{
	static const enum pol_reason all[] = {
		POL_R_ALLOWED, POL_R_NOT_ALLOWED, POL_R_DENIED_BY_RULE,
		POL_R_PORT_NOT_ALLOWED,
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(text, pol_reason_str(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	}
	return -1;
}

static void names_free(struct bench_names *nl)
{
	free(nl->text);
	free(nl->reqs);
	free(nl->want);
	memset(nl, 0, sizeof(*nl));
}

/*
 * Reads "name reason" lines. Every request is for port 443 over TLS, which
 * every generated allow rule admits, so a hit is decided by the name.
 */
static int names_read(const char *path, struct bench_names *nl)
{
	FILE *f = fopen(path, "r");
	size_t len = 0, cap = 0, lines = 0, lineno = 0;
	char *p, *end;

	memset(nl, 0, sizeof(*nl));
	if (f == NULL) {
		fprintf(stderr, "policy_bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t got;

		if (cap - len < 4096) {
			char *t = realloc(nl->text, cap ? cap * 2 : 65536);

			if (t == NULL)
				goto oom;
			nl->text = t;
			cap = cap ? cap * 2 : 65536;
		}
		got = fread(nl->text + len, 1, cap - len - 1, f);
		if (got == 0)
			break;
		len += got;
	}
	if (ferror(f)) {
		fprintf(stderr, "policy_bench: %s: read error\n", path);
		goto fail;
	}
	nl->text[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (nl->text[i] == '\n')
			lines++;
	nl->reqs = calloc(lines ? lines : 1, sizeof(*nl->reqs));
	nl->want = calloc(lines ? lines : 1, sizeof(*nl->want));
	if (nl->reqs == NULL || nl->want == NULL)
		goto oom;
	for (p = nl->text; (end = strchr(p, '\n')) != NULL; p = end + 1) {
		char *sp;

		*end = '\0';
		sp = strchr(p, ' ');
		lineno++;
		if (sp == NULL || sp == p || parse_reason(sp + 1, &nl->want[nl->n]) < 0) {
			fprintf(stderr, "policy_bench: %s:%zu: expected \"name reason\"\n",
			    path, lineno);
			goto fail;
		}
		*sp = '\0';
		nl->reqs[nl->n].name = p;
		nl->reqs[nl->n].port = 443;
		nl->reqs[nl->n].proto = POL_PROTO_TLS;
		nl->n++;
	}
	fclose(f);
	if (nl->n == 0) {
		fprintf(stderr, "policy_bench: %s: no names\n", path);
		names_free(nl);
		return -1;
	}
	return 0;
oom:
	fprintf(stderr, "policy_bench: %s: out of memory\n", path);
fail:
	fclose(f);
	names_free(nl);
	return -1;
}

/* Every name must get the reason the generator meant. Returns mismatches. */
static size_t names_check(const struct pol_snapshot *s,
    const struct bench_names *nl, const char *what)
{
	size_t bad = 0;

	for (size_t i = 0; i < nl->n; i++) {
		struct pol_verdict v;

		pol_decide(s, &nl->reqs[i], &v);
		if (v.reason == nl->want[i])
			continue;
		if (bad++ < 5)
			fprintf(stderr, "policy_bench: %s name %s: got %s, want %s\n",
			    what, nl->reqs[i].name, pol_reason_str(v.reason),
			    pol_reason_str(nl->want[i]));
	}
	return bad;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One pass over the list; the verdicts go into the sink. */
static uintptr_t decide_pass(const struct pol_snapshot *s,
    const struct bench_names *nl)
{
	uintptr_t acc = 0;

	for (size_t i = 0; i < nl->n; i++) {
		struct pol_verdict v;

		pol_decide(s, &nl->reqs[i], &v);
		acc += (uintptr_t)v.rule + (uintptr_t)v.reason + (uintptr_t)v.allow;
	}
	return acc;
}

/*
 * ns per decision: the median of BENCH_ROUNDS rounds, each of whole passes
 * over the list lasting about budget / BENCH_ROUNDS. Whole passes keep
 * every name equally represented; the median shrugs off a round that
 * another process on the machine interrupted.
 */
static double time_decisions(const struct pol_snapshot *s,
    const struct bench_names *nl)
{
	double ns[BENCH_ROUNDS];
	uint64_t round_ns = (uint64_t)(bench_budget / BENCH_ROUNDS * 1e9);
	uintptr_t acc = decide_pass(s, nl);     /* warm the caches */
	size_t batch = nl->n >= 4096 ? 1 : 4096 / nl->n;

	for (int r = 0; r < BENCH_ROUNDS; r++) {
		uint64_t t0 = now_ns(), t;
		size_t passes = 0;

		do {
			/* Reading the clock less often than every pass keeps
			 * its cost out of a short list's figure. */
			for (size_t k = 0; k < batch; k++)
				acc += decide_pass(s, nl);
			passes += batch;
			t = now_ns();
		} while (t - t0 < round_ns);
		ns[r] = (double)(t - t0) / ((double)passes * (double)nl->n);
	}
	bench_sink += acc;
	return median(ns, BENCH_ROUNDS);
}

static int bench_size(const char *dir, unsigned long size, struct bench_result *res)
{
	struct bench_names hits, misses, hot;
	struct pol_snapshot *s;
	char path[4096], hpath[4200], mpath[4200];
	double ms[BENCH_MAX_RUNS];
	long heap0, rss0;
	int have_peak, rc = -1;
	uint64_t t0;
	size_t bad;

	memset(res, 0, sizeof(*res));
	res->size = size;
	snprintf(path, sizeof(path), "%s/rules-%lu.yaml", dir, size);
	snprintf(hpath, sizeof(hpath), "%s.hits", path);
	snprintf(mpath, sizeof(mpath), "%s.misses", path);
	if (names_read(hpath, &hits) < 0)
		return -1;
	if (names_read(mpath, &misses) < 0) {
		names_free(&hits);
		return -1;
	}

	/*
	 * The first load is also the memory measurement: trimming first
	 * gives the RSS figures a clean start (the heap figure needs none).
	 */
	malloc_trim(0);
	heap0 = heap_bytes();
	rss0 = rss_bytes();
	have_peak = peak_reset() == 0;
	t0 = now_ns();
	s = load(path);
	ms[0] = (double)(now_ns() - t0) / 1e6;
	if (s == NULL)
		goto out;
	res->heap = heap_bytes() - heap0;
	res->rss = rss_bytes() - rss0;
	res->peak = have_peak ? peak_bytes() - rss0 : -1;
	res->rules = pol_snapshot_rule_count(s);
	res->load_min_ms = res->load_max_ms = ms[0];

	/* Later loads reuse the address space the first one grew. */
	for (int r = 1; r < bench_runs; r++) {
		struct pol_snapshot *again;

		t0 = now_ns();
		again = load(path);
		ms[r] = (double)(now_ns() - t0) / 1e6;
		if (again == NULL)
			goto out;
		pol_snapshot_unref(again);
		if (ms[r] < res->load_min_ms)
			res->load_min_ms = ms[r];
		if (ms[r] > res->load_max_ms)
			res->load_max_ms = ms[r];
	}
	res->load_ms = median(ms, (size_t)bench_runs);

	bad = names_check(s, &hits, "hit") + names_check(s, &misses, "miss");
	if (bad != 0) {
		fprintf(stderr, "policy_bench: %s: %zu names got the wrong verdict\n",
		    path, bad);
		goto out;
	}
	res->nhits = hits.n;
	res->nmisses = misses.n;
	res->hit_ns = time_decisions(s, &hits);
	res->miss_ns = time_decisions(s, &misses);
	/*
	 * The same code over a few names that stay in cache: the gap
	 * between this and hit_ns is what the snapshot's size costs in
	 * cache misses, the rest is per-label work.
	 */
	hot = hits;
	hot.n = hits.n < BENCH_HOT ? hits.n : BENCH_HOT;
	res->hot_ns = time_decisions(s, &hot);
	rc = 0;
out:
	pol_snapshot_unref(s);
	names_free(&hits);
	names_free(&misses);
	return rc;
}

static void print_bytes(const char *label, long v)
{
	if (v < 0)
		printf("  %-44s n/a\n", label);
	else
		printf("  %-44s %8.1f MiB (%ld bytes)\n", label, (double)v / MIB, v);
}

/*
 * A reload as the daemon does it: snapshot A serves, a connection takes
 * a reference, B replaces A and the daemon drops its own reference. A's
 * memory must stay until the connection ends, then go back whole. Same
 * file twice: what matters is that A and B are separate snapshots.
 *
 * Runs in a process of its own with glibc's tcache off: mallinfo2 counts
 * chunks parked in the tcache as in use, which would make "released in
 * full" off by a few KiB for no fault of the policy code.
 * Returns 1 when all is released as it should be, 0 when not, -1 when the
 * policy did not load.
 */
static int bench_reload(const char *dir, unsigned long size)
{
	struct pol_snapshot *a, *conn, *b;
	struct pol_request req = { .name = "nothing.invalid", .port = 443 };
	struct pol_verdict v;
	char path[4096];
	long h0, ha, hb, hdrop, hend, hall, r0, rdrop, rend, rtrim;
	int held, released, clean;

	snprintf(path, sizeof(path), "%s/rules-%lu.yaml", dir, size);
	printf("\nReload, %lu patterns (heap = mallinfo2 uordblks + hblkhd, "
	    "tcache %s):\n", size, getenv("GLIBC_TUNABLES") != NULL &&
	    strstr(getenv("GLIBC_TUNABLES"), NO_TCACHE) != NULL ? "off, exact" :
	    "ON, may be off by a few KiB");
	fflush(stdout);
	/* A first load pays libc's one-time allocations outside the figures. */
	a = load(path);
	if (a == NULL)
		return -1;
	pol_snapshot_unref(a);
	(void)rss_bytes();
	malloc_trim(0);

	h0 = heap_bytes();
	r0 = rss_bytes();
	a = load(path);
	if (a == NULL)
		return -1;
	ha = heap_bytes();
	conn = pol_snapshot_ref(a);             /* a connection starts on A */
	b = load(path);                         /* the reload */
	if (b == NULL) {
		pol_snapshot_unref(conn);
		pol_snapshot_unref(a);
		return -1;
	}
	hb = heap_bytes();
	pol_snapshot_unref(a);                  /* the daemon swaps to B */
	hdrop = heap_bytes();
	rdrop = rss_bytes();
	pol_decide(conn, &req, &v);             /* the connection still reads A */
	bench_sink += (uintptr_t)v.reason;
	pol_snapshot_unref(conn);               /* its last connection ends */
	hend = heap_bytes();
	rend = rss_bytes();
	/* What the allocator could give back if asked (see docs/bench.md). */
	malloc_trim(0);
	rtrim = rss_bytes();
	pol_snapshot_unref(b);
	hall = heap_bytes();

	/* A snapshot of no bytes means mallinfo2 sees nothing (valgrind,
	 * another malloc): then nothing here is shown, and it must not pass. */
	held = ha - h0 > 0 && hdrop == hb;
	released = held && hdrop - hend == ha - h0;
	clean = held && hall == h0;
	print_bytes("snapshot A loaded", ha - h0);
	print_bytes("A and the reloaded B", hb - h0);
	print_bytes("daemon dropped A, a connection holds it", hdrop - h0);
	print_bytes("that connection ended", hend - h0);
	print_bytes("released when it ended", hdrop - hend);
	print_bytes("B dropped too", hall - h0);
	printf("  RSS over the start (page-granular, informational): %+.1f MiB "
	    "with A held,\n  %+.1f MiB when the connection ended, %+.1f MiB "
	    "after malloc_trim(0)\n", (double)(rdrop - r0) / MIB,
	    (double)(rend - r0) / MIB, (double)(rtrim - r0) / MIB);
	printf("  A held while a connection uses it: %s; all of A released when "
	    "it ends: %s;\n  heap back to the start after B: %s\n",
	    held ? "yes" : "NO", released ? "yes" : "NO", clean ? "yes" : "NO");
	return held && released && clean ? 1 : 0;
}

/* Runs "policy_bench -R dir size" again with the tcache off; no return. */
static void reload_exec(const char *argv0, const char *dir, const char *size)
{
	const char *old = getenv("GLIBC_TUNABLES");
	char *tun = NULL;
	char *args[] = { (char *)argv0, (char *)"-R", (char *)dir, (char *)size,
	    NULL };

	if (asprintf(&tun, "%s%s%s", old != NULL ? old : "",
	    old != NULL && *old != '\0' ? ":" : "", NO_TCACHE) < 0 ||
	    setenv("GLIBC_TUNABLES", tun, 1) < 0 ||
	    setenv("POLICY_BENCH_CHILD", "1", 1) < 0) {
		fprintf(stderr, "policy_bench: out of memory\n");
		_exit(1);
	}
	execv("/proc/self/exe", args);
	fprintf(stderr, "policy_bench: cannot run myself again: %s\n",
	    strerror(errno));
	_exit(1);
}

/* 1 pass, 0 miss, -1 failure, from a child process running -R. */
static int reload_child(const char *argv0, const char *dir, unsigned long size)
{
	char sizestr[32];
	int status;
	pid_t pid;

	snprintf(sizestr, sizeof(sizestr), "%lu", size);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "policy_bench: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0)
		reload_exec(argv0, dir, sizestr);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	switch (WEXITSTATUS(status)) {
	case 0:
		return 1;
	case 3:
		return 0;
	}
	return -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: policy_bench [-t SECONDS] [-r RUNS] DIR N [N...]\n"
	    "       policy_bench -R DIR N\n"
	    "  reads DIR/rules-N.yaml{,.hits,.misses} from bench/gen_rules.py\n"
	    "  -t  seconds of timing per decision figure (default 0.4)\n"
	    "  -r  loads per size, median reported (default 5, at most %d)\n"
	    "  -R  only the reload check (exit 0 pass, 3 miss, 1 failure)\n",
	    BENCH_MAX_RUNS);
	exit(2);
}

static void print_target(int pass, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void print_target(int pass, const char *fmt, ...)
{
	va_list ap;

	printf("  %-4s ", pass ? "PASS" : "MISS");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* One size's line of the table. */
static void
print_row(const struct bench_result *r)
{
	char range[32], peak[16];

	snprintf(range, sizeof(range), "(%.2f..%.2f)", r->load_min_ms,
	    r->load_max_ms);
	if (r->peak < 0)
		snprintf(peak, sizeof(peak), "n/a");
	else
		snprintf(peak, sizeof(peak), "%.1f", (double)r->peak / MIB);
	printf("%8lu | %8.2f %17s | %8.2f %7.1f %8s | %7.1f %7.2f | "
	    "%7.1f %7.2f | %7.1f\n", r->size, r->load_ms, range,
	    (double)r->heap / MIB, (double)r->rss / MIB, peak,
	    r->hit_ns, 1e3 / r->hit_ns, r->miss_ns, 1e3 / r->miss_ns,
	    r->hot_ns);
	fflush(stdout);
}

static void
print_targets(const struct bench_result *lo, const struct bench_result *hi,
    int reload_ok)
{
	printf("\nTargets (issue 3; for information, not a test):\n");
	print_target(hi->load_ms < 1000, "load of %lu patterns under 1 s: %.0f ms",
	    hi->size, hi->load_ms);
	print_target(hi->hit_ns <= 1.5 * lo->hit_ns, "hit decision at %lu within "
	    "1.5x of at %lu: %.1f ns vs %.1f ns = %.2fx", hi->size, lo->size,
	    hi->hit_ns, lo->hit_ns, hi->hit_ns / lo->hit_ns);
	print_target(hi->miss_ns <= 1.5 * lo->miss_ns, "miss decision at %lu "
	    "within 1.5x of at %lu: %.1f ns vs %.1f ns = %.2fx", hi->size,
	    lo->size, hi->miss_ns, lo->miss_ns, hi->miss_ns / lo->miss_ns);
	print_target(reload_ok, "a reload releases the old snapshot's memory "
	    "once its last connection ends");
}

int main(int argc, char **argv)
{
	struct bench_result res[BENCH_MAX_SIZES];
	const struct bench_result *lo, *hi;
	size_t nres = 0;
	int c, reload_only = 0, reload_ok;
	const char *dir;

	while ((c = getopt(argc, argv, "t:r:R")) != -1) {
		switch (c) {
		case 't':
			bench_budget = strtod(optarg, NULL);
			if (!(bench_budget > 0 && bench_budget <= 60))
				usage();
			break;
		case 'r':
			bench_runs = atoi(optarg);
			if (bench_runs < 1 || bench_runs > BENCH_MAX_RUNS)
				usage();
			break;
		case 'R':
			reload_only = 1;
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 2 || argc - optind - 1 > BENCH_MAX_SIZES)
		usage();
	dir = argv[optind++];

	if (reload_only) {
		char *end;
		unsigned long size = strtoul(argv[optind], &end, 10);

		if (*end != '\0' || size == 0 || argc - optind != 1)
			usage();
		/* Run by hand: start again with the tcache off, once. */
		if (getenv("POLICY_BENCH_CHILD") == NULL)
			reload_exec(argv[0], dir, argv[optind]);
		reload_ok = bench_reload(dir, size);
		return reload_ok < 0 ? 1 : reload_ok ? 0 : 3;
	}

	printf("%8s | %8s %17s | %8s %7s %8s | %7s %7s | %7s %7s | %7s\n",
	    "patterns", "load ms", "(min..max)", "heap MiB", "RSS MiB",
	    "peak MiB", "hit ns", "hit M/s", "miss ns", "miss M/s", "hot ns");
	for (; optind < argc; optind++) {
		struct bench_result *r = &res[nres];
		char *end;
		unsigned long size = strtoul(argv[optind], &end, 10);

		if (*end != '\0' || size == 0)
			usage();
		if (bench_size(dir, size, r) < 0)
			return 1;
		if (r->rules != size) {
			fprintf(stderr, "policy_bench: rules-%lu.yaml holds %zu "
			    "patterns\n", size, r->rules);
			return 1;
		}
		print_row(r);
		nres++;
	}
	/* The targets compare the smallest and the largest size measured. */
	lo = hi = &res[0];
	for (size_t i = 1; i < nres; i++) {
		if (res[i].size < lo->size)
			lo = &res[i];
		if (res[i].size > hi->size)
			hi = &res[i];
	}
	printf("  load: wall clock of pol_load, median of %d loads; heap: bytes "
	    "the snapshot holds;\n  RSS: growth over the first load; peak: RSS "
	    "high-water mark during that load, over\n  its start; ns: per "
	    "pol_decide at port 443/tls, median of %d rounds over %.1f s;\n  "
	    "hit/miss: the generated lists (%zu and %zu names); hot: the first "
	    "%d hit names\n", bench_runs, BENCH_ROUNDS, bench_budget,
	    lo->nhits, lo->nmisses, BENCH_HOT);

	reload_ok = reload_child(argv[0], dir, hi->size);
	if (reload_ok < 0) {
		fprintf(stderr, "policy_bench: the reload check failed to run\n");
		return 1;
	}

	print_targets(lo, hi, reload_ok);
	return 0;
}

/*
 * The redirect-chain table: follows within the window only, by source IP
 * (any port) and exact host:port; the "after" hint; bounded memory.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "logging/chain.h"
#include "tests/unit/tap.h"

static struct sockaddr_storage
addr(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
	}
	return ss;
}

#define SA(x) ((const struct sockaddr *)&(x))

/* Workers share the table: each thread notes and finds its own clients. */
struct worker_arg {
	struct chain_table *t;
	unsigned id, found;
};

static void *
worker(void *p)
{
	struct worker_arg *a = p;
	char id[CHAIN_ID_MAX], ip[32];

	for (unsigned i = 0; i < 20000; i++) {
		struct sockaddr_storage s;

		snprintf(ip, sizeof(ip), "10.%u.%u.%u", a->id, (i >> 8) & 255, i & 255);
		s = addr(ip, 1);
		chain_note_redirect(a->t, SA(s), "b.test", 80, "w", 1000);
		a->found += chain_follows(a->t, SA(s), "b.test", 80, 1001, id,
		    sizeof(id));
		chain_note_allowed(a->t, SA(s), "a.test", 1000);
	}
	return NULL;
}

int
main(void)
{
	struct chain_table *t = chain_new(0, 30000, 2000);
	struct sockaddr_storage a1 = addr("10.0.0.1", 40000);
	struct sockaddr_storage a1b = addr("10.0.0.1", 40001);
	struct sockaddr_storage a2 = addr("10.0.0.2", 40000);
	struct sockaddr_storage v6 = addr("2001:db8::7", 5555);
	char id[CHAIN_ID_MAX], name[300];
	uint64_t ago = 0;
	int hits = 0;

	tap_ok(t != NULL, "table made");
	tap_ok(!chain_follows(t, SA(a1), "b.test", 80, 1000, id, sizeof(id)),
	    "nothing follows an empty table");
	chain_note_redirect(t, SA(a1), "b.test", 80, "w0-00000001.1", 1000);
	tap_ok(chain_follows(t, SA(a1b), "b.test", 80, 1500, id, sizeof(id)) &&
	    strcmp(id, "w0-00000001.1") == 0,
	    "the same source from another port follows (got %s)", id);
	tap_ok(!chain_follows(t, SA(a2), "b.test", 80, 1500, id, sizeof(id)),
	    "another source does not");
	tap_ok(!chain_follows(t, SA(a1), "b.test", 443, 1500, id, sizeof(id)),
	    "another port does not");
	tap_ok(!chain_follows(t, SA(a1), "c.test", 80, 1500, id, sizeof(id)),
	    "another host does not");
	tap_ok(chain_follows(t, SA(a1), "b.test", 80, 31000, id, sizeof(id)),
	    "at the end of the window it still follows");
	tap_ok(!chain_follows(t, SA(a1), "b.test", 80, 31001, id, sizeof(id)),
	    "after the window it does not");
	chain_note_redirect(t, SA(a1), "b.test", 80, "w1-00000009.2", 40000);
	tap_ok(chain_follows(t, SA(a1), "b.test", 80, 40001, id, sizeof(id)) &&
	    strcmp(id, "w1-00000009.2") == 0, "a newer redirect replaces the entry");
	chain_note_redirect(t, SA(v6), "c.test", 443, "w0-0000000a.1", 40000);
	tap_ok(chain_follows(t, SA(v6), "c.test", 443, 40002, id, sizeof(id)),
	    "IPv6 sources");

	chain_note_allowed(t, SA(a2), "a.test", 50000);
	tap_ok(chain_last_allowed(t, SA(a2), "x.test", 50120, name, sizeof(name),
	    &ago) && strcmp(name, "a.test") == 0 && ago == 120,
	    "after hint: a.test 120 ms before (got %s %llu)", name,
	    (unsigned long long)ago);
	tap_ok(!chain_last_allowed(t, SA(a2), "a.test", 50120, name, sizeof(name),
	    &ago), "no hint towards the name itself");
	tap_ok(!chain_last_allowed(t, SA(a2), "x.test", 52001, name, sizeof(name),
	    &ago), "no hint after after_ms");
	chain_note_allowed(t, SA(a2), "b.test", 53000);
	tap_ok(chain_last_allowed(t, SA(a2), "x.test", 53001, name, sizeof(name),
	    &ago) && strcmp(name, "b.test") == 0, "the last allowed wins");

	/* Bounded: 100,000 sources in a 64-slot table; the newest are found. */
	chain_free(t);
	t = chain_new(64, 30000, 2000);
	for (unsigned i = 0; i < 100000; i++) {
		struct sockaddr_storage s;
		char ip[32];

		snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 255,
		    (i >> 8) & 255, i & 255);
		s = addr(ip, 1);
		chain_note_redirect(t, SA(s), "b.test", 80, "x", 60000 + i / 100);
	}
	for (unsigned i = 100000 - 8; i < 100000; i++) {
		struct sockaddr_storage s;
		char ip[32];

		snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 255,
		    (i >> 8) & 255, i & 255);
		s = addr(ip, 1);
		hits += chain_follows(t, SA(s), "b.test", 80, 61000, id, sizeof(id));
	}
	tap_ok(hits >= 6, "a small table keeps the newest entries (%d of 8)", hits);
	chain_free(t);

	{
		struct worker_arg args[4];
		pthread_t th[4];
		unsigned found = 0;

		t = chain_new(1 << 20, 30000, 2000);
		for (unsigned i = 0; i < 4; i++) {
			args[i].t = t;
			args[i].id = i;
			args[i].found = 0;
			pthread_create(&th[i], NULL, worker, &args[i]);
		}
		for (unsigned i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			found += args[i].found;
		}
		/* A full bucket may lose an entry to another thread between
		 * the two calls: by design, and rare in a table this size. */
		tap_ok(found >= 79990, "4 threads at once: the redirects are "
		    "found right after they were noted (%u of 80000)", found);
		chain_free(t);
	}
	chain_free(NULL);
	return tap_done();
}

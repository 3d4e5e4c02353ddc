/*
 * libFuzzer target for the packet engine of egressctl audit
 * (tools/audit_engine.c), which reads captures an attacker may have
 * shaped: every packet a client on the audited network sent is in them.
 *
 * The input is a sequence of records:
 *
 *	+------+--------+--------+---------------------------+
 *	| kind | len hi | len lo | len bytes of packet        |
 *	+------+--------+--------+---------------------------+
 *
 * kind < 0xf0 chooses the link type (kind % 9: Ethernet, Linux cooked v1
 * and v2, raw IP as DLT_RAW and as LINKTYPE_RAW, BSD loopback as NULL and
 * LOOP, IPv4, IPv6); a short last record takes what is left. kind >= 0xf0
 * is the end of a capture (audit_finish), and has no length. Each packet
 * is copied into a heap block of exactly its size, so a read past it is an
 * AddressSanitizer report. Timestamps increase by one millisecond.
 *
 * Beyond "does not crash" and "does not leak", with abort():
 *  - decisions = allowed + denied, and each table's counts add up to its
 *    counter; every connection is either judged (one decision or more) or
 *    counted once as not judged;
 *  - every row has a reason; a row without a name is one whose reason says
 *    there is none; an allowed row has a name and the policy's "allowed";
 *    only sni_mismatch rows say what was inside a tunnel;
 *  - no two rows of a table have the same key; sources are distinct
 *    addresses, at most one per decision; times lie within the input's;
 *  - after audit_sort, denied rows by count and the others by name.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "tools/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0_US   INT64_C(1795000000000000)       /* 2026-11-18 */
#define STEP_US 1000

static const char policy[] =
    "allow:\n"
    "  - hosts: [a.test, \"*.b.test\"]\n"
    "    ports: [443, 80]\n"
    "  - hosts: [src.test]\n"
    "    ports: [443]\n"
    "    sources: [10.0.0.0/8, \"fd00::/8\"]\n"
    "deny:\n"
    "  - hosts: [evil.b.test]\n";

static const int dlts[] = {
	DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_RAW, LINKTYPE_RAW,
	DLT_NULL, DLT_LOOP, DLT_IPV4, DLT_IPV6,
};

static void
check(int cond)
{
	if (!cond)
		abort();
}

static void
report(void *arg, enum pol_severity sev, const char *file, unsigned line,
    unsigned col, const char *msg)
{
	(void)arg;
	(void)sev;
	(void)col;
	fprintf(stderr, "fuzz_audit: the fixed policy: %s:%u: %s\n", file, line,
	    msg);
}

static struct pol_snapshot *
snapshot(void)
{
	static struct pol_snapshot *snap;

	if (snap == NULL) {
		/* Loaded once and kept: LeakSanitizer counts only what a
		 * run leaves unreachable. */
		snap = pol_load_buffer("fuzz-audit.yaml", policy,
		    sizeof(policy) - 1, report, NULL);
		check(snap != NULL);
	}
	return snap;
}

static int
str_eq(const char *x, const char *y)
{
	if (x == NULL || y == NULL)
		return x == y;
	return strcmp(x, y) == 0;
}

/* The refusals made before the policy is asked, which carry no name. */
static int
nameless_reason(const char *r)
{
	static const char *const ok[] = { "no_sni", "malformed_hello",
	    "hello_too_large", "not_tls", "bad_http" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(r, ok[i]) == 0)
			return 1;
	return 0;
}

static int
same_key(const struct aud_group *g, const struct aud_group *h)
{
	return str_eq(g->name, h->name) && g->port == h->port &&
	    g->proto == h->proto && g->reason == h->reason &&
	    g->rule == h->rule && g->inner == h->inner &&
	    str_eq(g->inner_name, h->inner_name) &&
	    g->inner_port == h->inner_port;
}

static uint64_t
check_table(const struct aud_table *t, enum aud_table_id id, int64_t tmax,
    int sorted)
{
	const char *allowed = pol_reason_str(POL_R_ALLOWED);
	uint64_t sum = 0;

	check(t->n <= t->cap);
	for (size_t k = 0; k < t->n; k++) {
		const struct aud_group *g = &t->g[k];

		check(g->count >= 1);
		sum += g->count;
		check(g->reason != NULL && g->reason[0] != '\0');
		if (g->name == NULL)
			check(id != AUD_T_DNS && nameless_reason(g->reason));
		else
			check(g->name[0] != '\0');
		check(g->first_us <= g->last_us);
		check(g->first_us >= T0_US && g->last_us <= tmax);
		check(g->nsrc >= 1 && g->nsrc <= g->count &&
		    g->nsrc <= g->capsrc);
		for (size_t i = 0; i < g->nsrc; i++) {
			check(memchr(g->src[i], '\0', AUD_ADDR_LEN) != NULL);
			check(g->src[i][0] != '\0');
			for (size_t j = 0; j < i; j++)
				check(strcmp(g->src[i], g->src[j]) != 0);
			if (sorted && i > 0)
				check(strcmp(g->src[i - 1], g->src[i]) < 0);
		}
		switch (id) {
		case AUD_T_ALLOWED:
			check(g->allow && !g->report && g->name != NULL);
			check(strcmp(g->reason, allowed) == 0);
			check(g->rule != NULL);
			break;
		case AUD_T_DENIED:
			check(!g->allow);
			check(strcmp(g->reason, allowed) != 0);
			break;
		default:
			check(g->port == 443 && g->proto == POL_PROTO_TLS);
			check(g->nqtypes >= 1 && g->nqtypes <= 8);
			check(g->allow == (strcmp(g->reason, allowed) == 0));
			break;
		}
		if (id != AUD_T_DNS)
			check(g->nqtypes == 0);
		if (g->inner != AUD_INNER_NONE) {
			check(id == AUD_T_DENIED && g->proto == POL_PROTO_CONNECT);
			check(strcmp(g->reason, "sni_mismatch") == 0);
			check(g->name != NULL);
		}
		if (g->inner_name != NULL)
			check(g->inner == AUD_INNER_TLS ||
			    g->inner == AUD_INNER_HTTP);
		if (g->inner != AUD_INNER_HTTP)
			check(g->inner_port == 0);
		for (size_t j = 0; j < k; j++)
			check(!same_key(g, &t->g[j]));
		if (sorted && k > 0) {
			const struct aud_group *p = &t->g[k - 1];

			if (id == AUD_T_DENIED)
				check(p->count >= g->count);
			else
				check(strcmp(p->name != NULL ? p->name : "",
				    g->name != NULL ? g->name : "") <= 0);
		}
	}
	return sum;
}

static void
check_all(const struct audit *a, uint64_t npackets, int64_t tmax, int sorted)
{
	const struct aud_counts *c = audit_counts(a);
	uint64_t skipped = audit_skipped_total(a);

	check(c->packets == npackets);
	check(c->decisions == c->nallowed + c->ndenied);
	check(check_table(audit_table(a, AUD_T_DENIED), AUD_T_DENIED, tmax,
	    sorted) == c->ndenied);
	check(check_table(audit_table(a, AUD_T_ALLOWED), AUD_T_ALLOWED, tmax,
	    sorted) == c->nallowed);
	check(check_table(audit_table(a, AUD_T_DNS), AUD_T_DNS, tmax,
	    sorted) == c->nqueries);
	/* Every ended connection is judged or not judged, never both: a
	 * judged one made at least one decision. */
	check(c->flows == c->judged + skipped);
	check(c->judged <= c->decisions);
	check(c->fragments + c->other <= c->packets);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aud_options o;
	struct audit *a;
	uint64_t npackets = 0;
	int64_t ts = T0_US;
	size_t off = 0;

	memset(&o, 0, sizeof(o));
	o.pmap[o.npmap++] = (struct aud_portmap){ 8443, 443 };
	o.pmap[o.npmap++] = (struct aud_portmap){ 8080, 80 };
	o.dns_ports[o.ndns_ports++] = 53;
	o.dns_ports[o.ndns_ports++] = 5353;
	a = audit_new(snapshot(), &o);
	check(a != NULL);
	while (off < size) {
		uint8_t kind = data[off++];
		size_t len;
		uint8_t *pkt;

		if (kind >= 0xf0) {
			check(audit_finish(a) == 0);
			check_all(a, npackets, ts, 0);
			continue;
		}
		len = 0;
		if (off < size)
			len = (size_t)data[off++] << 8;
		if (off < size)
			len |= data[off++];
		if (len > size - off)
			len = size - off;
		/* malloc(0) may be NULL: keep one byte, give none. */
		pkt = malloc(len > 0 ? len : 1);
		check(pkt != NULL);
		memcpy(pkt, data + off, len);
		off += len;
		check(audit_dlt_supported(dlts[kind % 9]));
		check(audit_packet(a, dlts[kind % 9], pkt, len, ts) == 0);
		free(pkt);
		npackets++;
		ts += STEP_US;
	}
	check(audit_finish(a) == 0);
	check_all(a, npackets, ts, 0);
	audit_sort(a);
	check_all(a, npackets, ts, 1);
	audit_free(a);
	return 0;
}

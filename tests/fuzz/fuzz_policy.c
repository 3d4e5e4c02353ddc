/*
 * libFuzzer target for the policy loader and decide().
 *
 * Beyond "no crash", it checks what must hold for any input:
 *  - every diagnostic is labelled with the buffer's name (or no file), is
 *    one non-empty line, and points inside the text;
 *  - a snapshot comes back exactly when no error was reported;
 *  - every rule re-parses to itself, and a rule admits its own name on
 *    its own port unless a deny rule takes it;
 *  - verdicts are self-consistent for names taken from the input.
 * Then the same text goes through yamldoc's typed accessors.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "policy/yamldoc.h"

#define LABEL "fuzz.yaml"

struct fuzz_state {
	unsigned lines;         /* lines in the input, at least */
	unsigned errors;
};

static void check(int cond)
{
	if (!cond)
		abort();
}

static void report(void *arg, enum pol_severity sev, const char *file,
    unsigned line, unsigned col, const char *msg)
{
	struct fuzz_state *st = arg;

	check(sev == POL_NOTICE || sev == POL_WARNING || sev == POL_ERROR);
	check(file == NULL || strcmp(file, LABEL) == 0);
	check(msg != NULL && msg[0] != '\0' && strchr(msg, '\n') == NULL);
	/* libyaml may place end-of-stream errors one line past the last. */
	check(line <= st->lines + 1);
	check(line != 0 || col == 0);
	if (sev == POL_ERROR)
		st->errors++;
}

static void check_verdict(const struct pol_snapshot *s, const struct pol_verdict *v)
{
	size_t n = pol_snapshot_rule_count(s);

	check(v->allow == (v->reason == POL_R_ALLOWED));
	check((v->rule == NULL) == (v->reason == POL_R_NOT_ALLOWED));
	if (v->rule == NULL)
		return;
	check(n > 0 && v->rule >= pol_snapshot_rule(s, 0) &&
	    v->rule <= pol_snapshot_rule(s, n - 1));
	check(v->rule->action == (v->reason == POL_R_DENIED_BY_RULE ? POL_DENY : POL_ALLOW));
}

static void decide(const struct pol_snapshot *s, const char *name, uint16_t port,
    enum pol_proto proto, struct pol_verdict *v)
{
	struct pol_request req = { .name = name, .port = port, .proto = proto };

	pol_decide(s, &req, v);
	check_verdict(s, v);
}

static void check_rule(const struct pol_snapshot *s, const struct pol_rule *r)
{
	enum pol_pattern_kind kind;
	char out[POL_NAME_MAX + 3], err[200], name[POL_NAME_MAX + 8];
	struct pol_verdict v;
	uint16_t port;

	check(r->file != NULL && strcmp(r->file, LABEL) == 0);
	check(r->line >= 1 && r->col >= 1);
	check(r->name != NULL && r->name[0] != '\0');
	check(r->nports <= POL_MAX_PORTS);
	for (size_t i = 0; i < r->nports; i++)
		check(r->ports[i] != 0);
	check(r->action == POL_ALLOW || !r->allow_private);
	check(pol_pattern_parse(r->pattern, &kind, out, sizeof(out), err, sizeof(err)) == 0);
	check(kind == r->kind && strcmp(out, r->pattern) == 0);

	switch (r->kind) {
	case POL_PAT_EXACT:
	case POL_PAT_DOMAIN:
		strcpy(name, r->suffix);
		break;
	case POL_PAT_SUBDOMAINS:
		if (strlen(r->suffix) + 2 > POL_NAME_MAX)
			return;
		name[0] = 'x';
		name[1] = '.';
		strcpy(name + 2, r->suffix);
		break;
	default:
		strcpy(name, "any.example");
		break;
	}
	port = r->nports > 0 ? r->ports[0] : 443;
	decide(s, name, port, POL_PROTO_TLS, &v);
	if (r->action == POL_ALLOW)
		check(v.reason == POL_R_ALLOWED || v.reason == POL_R_DENIED_BY_RULE);
	else
		check(v.reason == POL_R_DENIED_BY_RULE);
	/* Upper case and a trailing dot change nothing. */
	{
		struct pol_verdict v2;
		size_t len = strlen(name);

		for (size_t i = 0; i < len; i++)
			if (name[i] >= 'a' && name[i] <= 'z')
				name[i] = (char)(name[i] - 'a' + 'A');
		name[len] = '.';
		name[len + 1] = '\0';
		decide(s, name, port, POL_PROTO_TLS, &v2);
		check(v2.reason == v.reason && v2.rule == v.rule);
	}
}

/* Names from the input: each run of up to 253 bytes between newlines. */
static void decide_input_names(const struct pol_snapshot *s, const uint8_t *data,
    size_t size)
{
	char name[POL_NAME_MAX + 2];
	struct pol_verdict v;
	size_t start = 0, tries = 0;

	decide(s, NULL, 443, POL_PROTO_TLS, &v);
	check(v.reason == POL_R_NOT_ALLOWED);
	decide(s, "", 443, POL_PROTO_TLS, &v);
	check(v.reason == POL_R_NOT_ALLOWED);
	while (start < size && tries++ < 8) {
		size_t end = start, n;

		while (end < size && data[end] != '\n')
			end++;
		n = end - start;
		if (n > POL_NAME_MAX)
			n = POL_NAME_MAX;
		memcpy(name, data + start, n);
		name[n] = '\0';
		decide(s, name, 443, POL_PROTO_TLS, &v);
		decide(s, name, 80, POL_PROTO_HTTP, &v);
		decide(s, name, (uint16_t)(n * 257), POL_PROTO_CONNECT, &v);
		start = end + 1;
	}
}

static void accessors(struct ydoc_ctx *cx, yaml_document_t *doc,
    yaml_node_t *root, void *arg)
{
	(void)root;
	(void)arg;
	for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++) {
		const char *s;
		unsigned long u;
		uint64_t ms;
		int b;

		(void)ydoc_scalar(cx, n, "value", &s);
		(void)ydoc_bool(cx, n, "value", &b);
		(void)ydoc_uint(cx, n, "value", 65535, &u);
		(void)ydoc_uint(cx, n, "value", (unsigned long)-1, &u);
		if (ydoc_duration_ms(cx, n, "value", &ms) == 0 && ydoc_text(n) != NULL)
			check(ydoc_text(n)[0] >= '0' && ydoc_text(n)[0] <= '9');
		(void)ydoc_is_mapping(cx, n, "value");
		(void)ydoc_is_sequence(cx, n, "value");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_state st = { .lines = 1 };
	struct pol_snapshot *s;

	/* Over-counts on purpose: CR LF, and NEL/LS/PS in UTF-8 (0x85, 0xa8, 0xa9). */
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n' || data[i] == '\r' || data[i] == 0x85 ||
		    data[i] == 0xa8 || data[i] == 0xa9)
			st.lines++;
	s = pol_load_buffer(LABEL, (const char *)data, size, report, &st);
	check((s != NULL) == (st.errors == 0));
	if (s != NULL) {
		for (size_t i = 0; i < pol_snapshot_rule_count(s); i++)
			check_rule(s, pol_snapshot_rule(s, i));
		decide_input_names(s, data, size);
		pol_snapshot_unref(pol_snapshot_ref(s));
		pol_snapshot_unref(s);
	}
	{
		struct ydoc_ctx cx = { .file = LABEL, .report = report, .arg = &st };

		(void)ydoc_parse_buffer(&cx, (const char *)data, size, accessors, NULL);
	}
	return 0;
}

/*
 * libFuzzer target for egressctl posture's manifest walker and checks.
 *
 * Beyond "no crash", it checks what must hold for any input:
 *  - every diagnostic is labelled with the buffer's name, is one non-empty
 *    line, and points inside the text (a mesh config's lines, shifted
 *    into the outer file, too);
 *  - a load fails exactly when an error was reported;
 *  - every finding has a known code, its code's severity, a kind, a
 *    namespace, a name, a message and a fix, all on one line, and a line
 *    inside the text;
 *  - findings come sorted by line, and a second run finds the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "posture/posture.h"

#define LABEL "fuzz.yaml"

struct fuzz_state {
	unsigned lines;
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
	check(line <= st->lines + 1);
	check(line != 0 || col == 0);
	if (sev == POL_ERROR)
		st->errors++;
}

static void check_finding(const struct pst_finding *f, const struct fuzz_state *st)
{
	check((unsigned)f->code < PST_NCODES);
	check(f->severity == pst_code_severity(f->code));
	check(strcmp(pst_code_str(f->code), "unknown") != 0);
	check(f->kind != NULL && f->kind[0] != '\0');
	check(f->ns != NULL && f->ns[0] != '\0');
	check(f->name != NULL && f->name[0] != '\0');
	check(f->message != NULL && f->message[0] != '\0' &&
	    strchr(f->message, '\n') == NULL);
	check(strchr(f->ns, '\n') == NULL && strchr(f->name, '\n') == NULL);
	check(f->fix != NULL && f->fix[0] != '\0');
	check(f->file != NULL && strcmp(f->file, LABEL) == 0);
	check(f->line >= 1 && f->line <= st->lines + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_state st = { .lines = 1 };
	struct pst_cluster *c = pst_new(NULL);
	long n, again;
	int rc;

	check(c != NULL);
	/* Over-counts on purpose: CR LF, and NEL/LS/PS in UTF-8. */
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n' || data[i] == '\r' || data[i] == 0x85 ||
		    data[i] == 0xa8 || data[i] == 0xa9)
			st.lines++;
	rc = pst_load_buffer(c, LABEL, (const char *)data, size, report, &st);
	check((rc == 0) == (st.errors == 0));
	if (rc == 0) {
		n = pst_check(c, report, &st);
		check(n >= 0);
		for (long i = 0; i < n; i++) {
			check_finding(pst_finding(c, (size_t)i), &st);
			if (i > 0)
				check(pst_finding(c, (size_t)i - 1)->line <=
				    pst_finding(c, (size_t)i)->line);
		}
		check(pst_finding(c, (size_t)n) == NULL);
		again = pst_check(c, NULL, NULL);
		check(again == n);
	}
	pst_free(c);
	return 0;
}

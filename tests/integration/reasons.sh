#!/bin/sh
# docs/log.md's table of reasons against the one table the daemon reads
# (decide/reason.c, printed by "egressctl reasons --format tsv"): the same
# set of names, and for each the event the docs give first (the words
# before a '/': "error/allow" means an error, sometimes an allow) is the
# table's. A reason added to the code without a line in the docs, or one
# documented that the code does not have, fails here (DESIGN §6).
. "$(dirname "$0")/lib.sh"
need python3
: "${EGRESSCTL:=$top_builddir/egressctl}"
[ -x "$EGRESSCTL" ] || bail "no egressctl binary at $EGRESSCTL"
DOC="$top_srcdir/docs/log.md"
[ -r "$DOC" ] || bail "no $DOC"

"$EGRESSCTL" reasons --format tsv > "$T/reasons.tsv" 2>"$T/reasons.err" ||
    bail "egressctl reasons --format tsv failed: $(cat "$T/reasons.err")"

python3 - "$DOC" "$T/reasons.tsv" <<'EOF'
import re
import sys

doc, tsv = sys.argv[1], sys.argv[2]

# The code's table: a header, then reason, event, alert, status, doc.
code = {}
with open(tsv) as f:
    head = f.readline().rstrip("\n").split("\t")
    assert head[:2] == ["reason", "event"], head
    for line in f:
        cols = line.rstrip("\n").split("\t")
        code[cols[0]] = cols[1]

# The docs' table: the rows under the "| reason | event |" header, up to
# the first line that is not a row.
docs, order, inside = {}, [], False
with open(doc) as f:
    for line in f:
        if re.match(r"^\|\s*reason\s*\|\s*event\s*\|", line):
            inside = True
            continue
        if not inside:
            continue
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set(cells[0]) <= set("-: "):
            continue            # the |---|---| line
        m = re.match(r"^`([a-z0-9_]+)`$", cells[0])
        if m is None:
            print("# not a reason cell: %r" % cells[0])
            continue
        docs[m.group(1)] = cells[1].split("/")[0].strip()
        order.append(m.group(1))

n = 0
fails = 0

def check(cond, what, detail=""):
    global n, fails
    n += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n, what))
    if not cond:
        fails += 1
        for l in detail.splitlines():
            print("# " + l)

check(len(docs) > 0, "docs/log.md has a reason table (%d rows)" % len(docs))
check(len(order) == len(set(order)), "no reason is documented twice",
      ", ".join(sorted(r for r in set(order) if order.count(r) > 1)))
missing = sorted(set(code) - set(docs))
check(not missing, "every reason of the code is in docs/log.md",
      "not documented: " + ", ".join(missing))
extra = sorted(set(docs) - set(code))
check(not extra, "every reason in docs/log.md is one of the code",
      "not in the code: " + ", ".join(extra))
wrong = ["%s: docs say %s, the table %s" % (r, docs[r], code[r])
         for r in sorted(set(docs) & set(code)) if docs[r] != code[r]]
check(not wrong, "the docs' event (its first word) is the table's, for every reason",
      "\n".join(wrong))
print("1..%d" % n)
sys.exit(1 if fails else 0)
EOF

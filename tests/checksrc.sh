#!/bin/sh
# checksrc: source rules a compiler does not enforce, over every .c and .h
# of the tree (comments and string literals aside):
#  - banned functions (STYLE.md, after curl's CODE_STYLE): sprintf,
#    vsprintf, strcpy, strcat, gets, strtok and strncpy, which write
#    without a bound or leave a string unterminated; snprintf, memcpy with
#    a checked length and strtok_r are the bounded forms;
#  - one decision (DESIGN §1): pol_decide() is called by decide/decide.c
#    only, and by the policy module's own code, unit tests, fuzz target
#    and benchmark; everything else calls dc_decide().
# Prints TAP; each failure names file:line and the offending line.
top=$(cd "$(dirname "$0")/.." && pwd) || exit 99
command -v python3 >/dev/null 2>&1 || { echo "1..0 # SKIP no python3"; exit 0; }
exec python3 - "$top" <<'EOF'
import os
import re
import sys

top = sys.argv[1]
DIRS = ["sni", "policy", "http", "dns", "logging", "gateway", "proxy", "tools",
        "decide", "posture", "tests/unit", "bench"]
BANNED = ["sprintf", "vsprintf", "strcpy", "strcat", "gets", "strtok", "strncpy"]
# Who may call pol_decide(): decide/ and the policy module's own tests.
POL_DECIDE_OK = ["decide/decide.c", "policy/", "tests/unit/test_policy.c",
                 "tests/unit/test_istio.c", "tests/fuzz/fuzz_policy.c", "bench/"]


def strip(text):
    """Comments, string and character literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sources(dirs):
    for d in dirs:
        base = os.path.join(top, d)
        for root, subdirs, files in os.walk(base):
            subdirs[:] = sorted(x for x in subdirs if not x.startswith("."))
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    p = os.path.join(root, f)
                    yield os.path.relpath(p, top), p


def scan(dirs, pattern):
    """Every (file, line number, line) whose code matches pattern."""
    rx = re.compile(pattern)
    hits = []
    for rel, path in sources(dirs):
        with open(path, encoding="utf-8", errors="replace") as fh:
            raw = fh.read()
        lines = raw.split("\n")
        for k, line in enumerate(strip(raw).split("\n")):
            if rx.search(line):
                hits.append((rel, k + 1, lines[k].strip()))
    return hits


tests = []
for fn in BANNED:
    # A call or a pointer taken: the name as a whole word, then "(".
    hits = scan(DIRS, r"(?<![A-Za-z0-9_.>])" + fn + r"\s*\(")
    tests.append(("no %s() in %s" % (fn, " ".join(DIRS)), hits))
hits = [h for h in scan(DIRS + ["tests/fuzz"],
                        r"(?<![A-Za-z0-9_.>])pol_decide\s*\(")
        if not any(h[0] == ok or (ok.endswith("/") and h[0].startswith(ok))
                   for ok in POL_DECIDE_OK)]
tests.append(("pol_decide() is called only by decide/decide.c (and the policy "
              "module, its tests, fuzz target and benchmark): everything else "
              "calls dc_decide()", hits))

print("1..%d" % len(tests))
failed = 0
for k, (what, hits) in enumerate(tests, 1):
    if hits:
        failed += 1
        print("not ok %d - %s" % (k, what))
        for rel, line, text in hits:
            print("# %s:%d: %s" % (rel, line, text))
    else:
        print("ok %d - %s" % (k, what))
sys.exit(1 if failed else 0)
EOF

#!/usr/bin/env python3
"""Query egressd's JSON-lines log in tests.

logq FILE [--count | --one | --schema] [KEY=VALUE ...]

Selects connection lines (event allow/deny/error/redirect/interim) whose keys equal
the given values. VALUE is read as JSON when it parses (443, null, true,
["h2"]) and as a string otherwise. KEY~TEXT selects lines whose KEY is a
string containing TEXT.
  (default)  print the matching lines
  --count    print how many lines match
  --one      exit 0 when exactly one line matches, else print what was seen
  --schema   exit 0 when every connection line has exactly the documented
             keys, in the documented order
"""
import json
import sys

KEYS = ["ts", "event", "reason", "would_deny", "listener", "src", "orig_dst", "name", "port",
        "proto", "alpn", "ech", "rule", "rule_name", "upstream", "upstream_local_address", "bytes_in",
        "bytes_out", "duration_ms", "conn", "detail", "method", "url",
        "status", "chain", "from", "to", "verdict", "after"]
EVENTS = {"allow", "deny", "error", "redirect", "interim"}


def parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv):
    path, args = argv[1], argv[2:]
    mode = "print"
    if args and args[0] in ("--count", "--one", "--schema"):
        mode, args = args[0][2:], args[1:]
    want, contains = {}, {}
    for a in args:
        eq, tilde = a.find("="), a.find("~")
        if tilde > 0 and (eq < 0 or tilde < eq):
            k, _, v = a.partition("~")
            contains[k] = v
        else:
            k, _, v = a.partition("=")
            want[k] = parse_value(v)
    lines = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            try:
                rec = json.loads(raw, object_pairs_hook=lambda p: p)
            except ValueError as e:
                print(f"# line {n} is not JSON ({e}): {raw!r}")
                return 1
            keys = [k for k, _ in rec]
            d = dict(rec)
            if d.get("event") not in EVENTS:
                continue
            if mode == "schema" and keys != KEYS:
                print(f"# line {n} keys {keys} != {KEYS}")
                return 1
            lines.append((d, raw.rstrip("\n")))
    if mode == "schema":
        return 0 if lines else 1
    hits = [raw for d, raw in lines
            if all(k in d and d[k] == v for k, v in want.items()) and
            all(isinstance(d.get(k), str) and v in d[k]
                for k, v in contains.items())]
    if mode == "count":
        print(len(hits))
        return 0
    if mode == "one":
        if len(hits) == 1:
            return 0
        print(f"# {len(hits)} lines match {want}; connection lines were:")
        for _, raw in lines:
            print("#   " + raw)
        return 1
    for h in hits:
        print(h)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

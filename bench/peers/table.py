#!/usr/bin/env python3
"""The tables of bench/run-peers.sh (issue 13).

    table.py RESDIR REPEAT "TLS PEERS" "HTTP PEERS" IDLE

RESDIR holds one KIND.PEER.REP.lg file per cell (the loadgen's RESULT line,
the script's CELL line, the upstream's UPSTREAM line, and for idle cells a
HELD line); a KIND.PEER.REP.failed file marks a failed cell, left out.
Every figure is the median over the rounds that did not fail. Prints two
markdown tables: TLS passthrough against HAProxy, nginx and sniproxy, and
CONNECT/HTTP against Squid. Lines without any figure are left out.
"""

import os
import statistics
import sys

NAMES = {"direct": "direct", "egressd": "egressd", "base": "base", "haproxy": "HAProxy",
         "nginx": "nginx", "sniproxy": "sniproxy", "squid": "Squid"}
TLS_KINDS = ("rate", "latency", "deny", "bulk", "rate100k", "idle")


def kv(line):
    out = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def load(resdir):
    cells = {}
    for fn in os.listdir(resdir):
        if not fn.endswith(".lg"):
            continue
        kind, peer, _rep = fn[:-3].split(".")
        if os.path.exists(os.path.join(resdir, fn[:-3] + ".failed")):
            continue
        d = {}
        with open(os.path.join(resdir, fn)) as f:
            for line in f:
                if line.startswith("RESULT"):
                    d["r"] = kv(line)
                elif line.startswith("CELL"):
                    d["c"] = kv(line)
                elif line.startswith("HELD"):
                    d["h"] = kv(line)
        cells.setdefault((kind, peer), []).append(d)
    return cells


def fmt(v, digits):
    if v is None:
        return "–"
    if digits == 0:
        return "{:,.0f}".format(v)
    return "{:.{}f}".format(v, digits)


class Table:
    def __init__(self, cells):
        self.cells = cells

    def med(self, kind, peer, fn):
        vals = []
        for d in self.cells.get((kind, peer), []):
            try:
                v = fn(d)
            except (KeyError, ZeroDivisionError):
                continue
            if v is not None:
                vals.append(v)
        return statistics.median(vals) if vals else None

    def row(self, label, kind, fn, digits, peers, direct=True, ratio=None, base=None,
            cmp_peer="haproxy"):
        """Prints one line: the figure for direct and for each peer. ratio
        "direct" adds (× direct) to each peer's figure, "self10" (× the same
        peer's 10-pattern rate); the last column is egressd ÷ cmp_peer."""
        dv = self.med(base or kind, "direct", fn) if direct else None
        vals = {p: self.med(kind, p, fn) for p in peers}
        if all(v is None for v in vals.values()):
            return
        cols = [label, fmt(dv, digits) if direct else "–"]
        for p in peers:
            v = vals[p]
            s = fmt(v, digits)
            if ratio == "direct" and v is not None and dv:
                s += " ({:.2f}×)".format(v / dv)
            elif ratio == "self10" and v is not None:
                v10 = self.med("rate", p, lambda d: d["r"]["rate"])
                if v10:
                    s += " ({:.2f}× of 10)".format(v / v10)
            cols.append(s)
        e, h = vals.get("egressd"), vals.get(cmp_peer)
        cols.append("{:.2f}".format(e / h) if e is not None and h else "–")
        print("| " + " | ".join(cols) + " |")

    def paired(self, label, kind, fn, digits):
        """egressd against base round by round (the same round ran both
        within seconds): each round's ratio, and their median."""
        by_rep = {}
        for p in ("egressd", "base"):
            for d in self.cells.get((kind, p), []):
                try:
                    by_rep.setdefault(int(d["c"]["rep"]), {})[p] = fn(d)
                except (KeyError, ZeroDivisionError):
                    pass
        pairs = [(r, v["egressd"], v["base"]) for r, v in sorted(by_rep.items())
                 if "egressd" in v and "base" in v and v["base"]]
        if not pairs:
            return
        ratios = [e / b for _, e, b in pairs]
        rounds = ", ".join("{} / {}".format(fmt(e, digits), fmt(b, digits)) for _, e, b in pairs)
        print("| {} | {} | {:.3f} |".format(label, rounds, statistics.median(ratios)))

    def deny_kind(self, p):
        ds = self.cells.get(("deny", p), [])
        if not ds:
            return "–"
        r = ds[0]["r"]
        kinds = [("TLS alert", r["alerts"]), ("close", r["closed"]), ("reset", r["resets"])]
        return max(kinds, key=lambda x: x[1])[0]


def main(argv):
    resdir, repeat, tls, http, idle = argv[1], int(argv[2]), argv[3].split(), argv[4].split(), int(argv[5])
    cells = load(resdir)
    t = Table(cells)

    rate = lambda d: d["r"]["rate"]
    cpu = lambda d: d["r"]["cpu_us_per_conn"]
    busy = lambda d: 100.0 * d["r"]["cpu_s"] / d["r"]["secs"]
    idle_b = lambda d: (d["h"]["pss_kb"] - d["c"]["pss_kb"]) * 1024.0 / d["h"]["ok"]

    if tls and any(k in TLS_KINDS for k, _ in cells):
        print("TLS passthrough, 10 patterns unless said; each figure the median of %d round(s)." % repeat)
        print()
        print("| figure | direct | " + " | ".join(NAMES[p] for p in tls) + " | egressd ÷ HAProxy |")
        print("|---|---:|" + "---:|" * len(tls) + "---:|")
        t.row("allowed connections/s (× direct)", "rate", rate, 0, tls, ratio="direct")
        t.row("proxy CPU per allowed connection, µs", "rate", cpu, 1, tls, direct=False)
        t.row("proxy core busy in that cell, %", "rate", busy, 0, tls, direct=False)
        t.row("latency p50, ms, one connection at a time (× direct)", "latency",
              lambda d: d["r"]["p50_us"] / 1000, 3, tls, ratio="direct")
        t.row("latency p99, ms (× direct)", "latency", lambda d: d["r"]["p99_us"] / 1000, 3, tls,
              ratio="direct")
        t.row("denials/s", "deny", rate, 0, tls, direct=False)
        if any(("deny", p) in cells for p in tls):
            print("| how a denial ends | – | " + " | ".join(t.deny_kind(p) for p in tls) + " | |")
        t.row("proxy CPU per denial, µs", "deny", cpu, 1, tls, direct=False)
        t.row("proxy core busy in the deny cell, %", "deny", busy, 0, tls, direct=False)
        t.row("one bulk connection, MB/s (× direct)", "bulk", lambda d: d["r"]["mbps"], 0, tls,
              ratio="direct")
        t.row("proxy core busy during bulk, %", "bulk", busy, 0, tls, direct=False)
        t.row("allowed connections/s, 100,000 patterns", "rate100k", rate, 0, tls, direct=False,
              ratio="self10")
        t.row("proxy CPU per connection, 100,000 patterns, µs", "rate100k", cpu, 1, tls,
              direct=False)
        t.row("RSS at start, 10 patterns, MiB", "rate", lambda d: d["c"]["rss_kb"] / 1024, 1, tls,
              direct=False)
        t.row("RSS at start, 100,000 patterns, MiB", "rate100k", lambda d: d["c"]["rss_kb"] / 1024,
              1, tls, direct=False)
        t.row("PSS at start, 100,000 patterns, MiB", "rate100k", lambda d: d["c"]["pss_kb"] / 1024,
              1, tls, direct=False)
        t.row("start to listening, 100,000 patterns, s", "rate100k",
              lambda d: d["c"]["startup_ms"] / 1000, 2, tls, direct=False)
        if idle > 0:
            t.row("per idle relayed connection, bytes (PSS growth, %d held)" % idle, "idle",
                  idle_b, 0, tls, direct=False)
        print()
    if http and any(k in ("connect", "http") for k, _ in cells):
        print("CONNECT and plain HTTP through a forward proxy (egressd's connect listener), "
              "10 patterns; each figure the median of %d round(s)." % repeat)
        print()
        print("| figure | direct | " + " | ".join(NAMES[p] for p in http) + " | egressd ÷ Squid |")
        print("|---|---:|" + "---:|" * len(http) + "---:|")
        t.row("CONNECT, ClientHello, reply: tunnels/s (× direct TLS)", "connect", rate, 0, http,
              ratio="direct", base="rate", cmp_peer="squid")
        t.row("proxy CPU per CONNECT tunnel, µs", "connect", cpu, 1, http, direct=False,
              cmp_peer="squid")
        t.row("GET http://… one request per connection: requests/s (× direct)", "http", rate, 0,
              http, ratio="direct", cmp_peer="squid")
        t.row("proxy CPU per GET, µs", "http", cpu, 1, http, direct=False, cmp_peer="squid")
        print()
    if "base" in tls or "base" in http:
        print("egressd against base (BASE=...), round by round; the ratio is the median of the")
        print("rounds' ratios, egressd ÷ base.")
        print()
        print("| figure | egressd / base, each round | egressd ÷ base |")
        print("|---|---|---:|")
        for label, kind, fn, digits in (
                ("allowed connections/s", "rate", rate, 0),
                ("proxy CPU per allowed connection, µs", "rate", cpu, 1),
                ("latency p50, µs", "latency", lambda d: d["r"]["p50_us"], 1),
                ("latency p99, µs", "latency", lambda d: d["r"]["p99_us"], 1),
                ("denials/s", "deny", rate, 0),
                ("proxy CPU per denial, µs", "deny", cpu, 1),
                ("one bulk connection, MB/s", "bulk", lambda d: d["r"]["mbps"], 0),
                ("proxy CPU per connection, 100,000 patterns, µs", "rate100k", cpu, 1),
                ("per idle relayed connection, bytes", "idle", idle_b, 0),
                ("CONNECT tunnels/s", "connect", rate, 0),
                ("proxy CPU per CONNECT tunnel, µs", "connect", cpu, 1),
                ("GET requests/s", "http", rate, 0),
                ("proxy CPU per GET, µs", "http", cpu, 1)):
            t.paired(label, kind, fn, digits)
        print()
    print("Higher is better for /s and MB/s, lower for µs, ms, MiB and bytes. The last column")
    print("divides egressd's figure by the peer's on the same line.")
    loads = [d["c"]["load1"] for ds in cells.values() for d in ds if "load1" in d.get("c", {})]
    if loads:
        print("Load average (1 min) at the end of the cells: %.2f to %.2f, median %.2f." % (
            min(loads), max(loads), statistics.median(loads)))
    logs = []
    for p in tls:
        for d in sorted(cells.get(("deny", p), []), key=lambda d: d["c"]["rep"])[:1]:
            if "loglines" in d.get("c", {}):
                logs.append("%s %d for %d" % (NAMES[p], d["c"]["loglines"], d["r"]["ok"]))
    if logs:
        print("Lines each proxy logged in its first deny cell, for the denials counted in the")
        print("window (a few connections end just before or after it): " + "; ".join(logs) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

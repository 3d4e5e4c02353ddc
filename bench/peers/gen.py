#!/usr/bin/env python3
"""Inputs of the side-by-side benchmark (bench/run-peers.sh, issue 13).

    gen.py hello OUT.bin
        A real ClientHello, made by OpenSSL through the ssl module (TLS 1.3
        with 1.2 fallback, ALPN h2 and http/1.1), for the server name
        "template.test". loadgen and upstream rewrite its server_name.

    gen.py lists DIR N SEED UPADDR UPPORT
        One allow-list of N host patterns, half exact names, half "*.x"
        wildcards, the same for the same N and SEED, written in the form
        of every proxy, all meaning exactly what egressd's patterns mean
        ("x" admits x only; "*.x" admits any name below x, never x):

        allow-N.txt          the patterns, one a line (the upstream's copy)
        names-N.txt          names the load generator draws from: all the
                             patterns for N <= 100, else every (N/1000)th, so
                             the names spread over the whole table
        deny-N.txt           names no pattern admits, with traps: the apex of
                             each wildcard, a label below each exact name,
                             a label glued to a wildcard's suffix without a
                             dot ("l5zone-1.test"), and unrelated names
        egressd-N.yaml       native policy, ports [UPPORT]
        hap-N.acl            HAProxy "acl" and "tcp-request content" lines:
                             exact names through an ebtree (-m str -f), and
                             "*.x" by one exact lookup per suffix depth
                             (field(-1,.,d)) plus "has more than d labels",
                             both on the lower-cased SNI
        hap-N-exact.lst, hap-N-wildD.lst   the lists they read
        nginx-N-map.conf     the body of a "map ... { hostnames; }" block
        sniproxy-N-table.conf  the body of a sniproxy table (anchored regexes)
        squid-N-dom.txt      dstdomain list (exact names and ".x")
        squid-N-apex.txt     the wildcards' apexes, which ".x" would admit
                             and "*.x" does not: denied first

    All names end in ".test" (RFC 2606). Exact names use the labels svc-,
    env-, team-, example-; wildcards zone-, dc-, corp-, so no pattern
    admits another's names.
"""

import os
import random
import ssl
import sys


def hello(out):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outb, server_hostname="template.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = outb.read()
    if len(data) < 10 or data[0] != 0x16 or len(data) != 5 + int.from_bytes(data[3:5], "big"):
        sys.exit("gen.py: could not make a one-record ClientHello")
    with open(out, "wb") as f:
        f.write(data)


def patterns(n, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 2 == 0:
            depth = rng.randint(2, 5)
            labels = ["svc-%d" % i]
            if depth >= 5:
                labels.append("env-%d" % rng.randrange(8))
            if depth >= 4:
                labels.append("team-%d" % rng.randrange(100))
            if depth >= 3:
                labels.append("example-%d" % rng.randrange(1000))
            out.append(("exact", ".".join(labels + ["test"])))
        else:
            depth = rng.randint(2, 4)
            labels = ["zone-%d" % i]
            if depth >= 4:
                labels.append("dc-%d" % rng.randrange(16))
            if depth >= 3:
                labels.append("corp-%d" % rng.randrange(1000))
            out.append(("wild", ".".join(labels + ["test"])))
    return out


def rx(name):
    # sniproxy's configuration parser takes a backslash as an escape of its
    # own: the file must say \\. for PCRE to see \. (a \. alone reaches PCRE
    # as ".", any character, and "*.zone-1.test" then admits "l5zone-1.test").
    return name.replace(".", "\\\\.")


def lists(d, n, seed, upaddr, upport):
    pats = patterns(n, seed)
    up = "%s:%d" % (upaddr, upport)

    def w(name, lines):
        with open(os.path.join(d, name), "w") as f:
            for line in lines:
                f.write(line + "\n")

    text = [p if k == "exact" else "*." + p for k, p in pats]
    w("allow-%d.txt" % n, text)
    step = 1 if n <= 100 else n // 1000
    w("names-%d.txt" % n, text[::step])

    deny = []
    for k, p in pats[::step][:40]:
        if k == "wild":
            deny.append(p)                      # the apex: "*.x" never admits x
            deny.append("*" + p)                # "l5zone-1.test": no dot
        else:
            deny.append("*." + p)               # below an exact name
    deny += ["*.nomatch-%d.test" % i for i in range(4)]
    w("deny-%d.txt" % n, deny)

    rules = ["allow:"]
    for i in range(0, n, 100):
        chunk = ", ".join('"%s"' % t for t in text[i:i + 100])
        rules.append("  - hosts: [%s]" % chunk)
        rules.append("    ports: [%d]" % upport)
    w("egressd-%d.yaml" % n, rules)

    exact = [p for k, p in pats if k == "exact"]
    w("hap-%d-exact.lst" % n, exact)
    acl = ["    acl ex req.ssl_sni,lower -m str -f %s/hap-%d-exact.lst" % (d, n)]
    rules = ["    tcp-request content accept if ex"]
    for depth in range(2, 5):
        wild = [p for k, p in pats if k == "wild" and p.count(".") + 1 == depth]
        if not wild:
            continue
        w("hap-%d-wild%d.lst" % (n, depth), wild)
        acl.append("    acl w%d req.ssl_sni,lower,field(-1,.,%d) -m str -f %s/hap-%d-wild%d.lst"
                   % (depth, depth, d, n, depth))
        acl.append("    acl d%d req.ssl_sni,field(-%d,.) -m len gt 0" % (depth, depth + 1))
        rules.append("    tcp-request content accept if w%d d%d" % (depth, depth))
    rules.append("    tcp-request content reject")
    w("hap-%d.acl" % n, acl + rules)

    w("nginx-%d-map.conf" % n,
      ["%s allowed;" % (p if k == "exact" else "*." + p) for k, p in pats])
    w("sniproxy-%d-table.conf" % n,
      ["    ^%s$ %s" % (rx(p), up) if k == "exact" else "    ^.+\\\\.%s$ %s" % (rx(p), up)
       for k, p in pats])
    w("squid-%d-dom.txt" % n, [p if k == "exact" else "." + p for k, p in pats])
    w("squid-%d-apex.txt" % n, [p for k, p in pats if k == "wild"] or ["apex.invalid"])


def main(argv):
    if len(argv) == 3 and argv[1] == "hello":
        hello(argv[2])
        return 0
    if len(argv) == 7 and argv[1] == "lists":
        lists(argv[2], int(argv[3]), int(argv[4]), argv[5], int(argv[6]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

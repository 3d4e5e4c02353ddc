#!/bin/sh
# One decision (DESIGN §1): what "egressctl explain" says egressd does with
# a request is what egressd does with it.
#
# A generated policy (exact, *.x, .x and * patterns; allow and deny; ports
# and sources; a file in enforce mode, one in report mode, one that takes
# the configuration's mode) and a few hundred generated requests (names,
# ports, TLS or HTTP, each from its own loopback address, in or out of the
# rules' sources), from a fixed seed (SEED=N for another). Each request is sent for real to egressd on loopback (a
# ClientHello with that server name to a tls listener whose upstream_port
# is the port; an HTTP request with that Host to an http listener), and the
# line egressd writes for it (event, reason, rule, would_deny) must be the
# one explain --format json predicts ("log"). Admitted requests reach a
# real upstream, so their lines are about the decision, not about DNS or
# connect errors. Twice: with the configuration's mode enforce, then report.
. "$(dirname "$0")/lib.sh"
need dnsmasq python3
: "${EGRESSCTL:=$top_builddir/egressctl}"
[ -x "$EGRESSCTL" ] || bail "no egressctl binary at $EGRESSCTL"
SEED_GIVEN=${SEED:+1}
: "${SEED:=20261122}"
: "${SV_REQUESTS:=150}"
UP_ADDR=127.0.0.61
cd "$T" || bail "no temp dir"
diag "SEED=$SEED, $SV_REQUESTS requests per mode"

T1=$(free_port); T2=$(free_port); T3=$(free_port)
H0=$(free_port); H1=$(free_port); H2=$(free_port)
DNS_PORT=$(free_port)

# ---------------------------------------------------------------- generate
python3 - "$SEED" "$SV_REQUESTS" "$T1,$T2,$T3" "$H0,$H1,$H2" <<'EOF' || bail "cannot generate"
import random, sys

seed, n = int(sys.argv[1]), int(sys.argv[2])
tls_ports = [int(p) for p in sys.argv[3].split(",")]
http_ports = [int(p) for p in sys.argv[4].split(",")]
rnd = random.Random(seed)
# Wildcards are over these; omega.sv.test only "*" covers.
bases = ["alpha.sv.test", "beta.sv.test", "gamma.sv.test", "delta.sv.test"]
labels = ["a", "b", "api", "www", "cdn", "x-1", "deep"]

def rand_name():
    depth = rnd.choice([0, 1, 1, 1, 2, 3])
    return ".".join([rnd.choice(labels) for _ in range(depth)] +
                    [rnd.choice(bases + ["omega.sv.test"])])

exact = []

def rand_rule(action):
    k = rnd.random()
    if k < 0.35:
        name = rand_name()
        exact.append(name)
        pat = name
    elif k < 0.65:
        pat = "*." + rnd.choice(bases)
    elif k < 0.9 or action == "allow":
        pat = "." + rnd.choice(bases)
    else:
        # An allow "*" would match every name (not_allowed would never be
        # seen): "*" denies only, on one port.
        pat = "*"
    r = {"hosts": [pat]}
    if pat == "*":
        r["ports"] = [rnd.choice(tls_ports + http_ports)]
    elif rnd.random() < 0.65:
        r["ports"] = sorted(set(rnd.sample(tls_ports + http_ports,
                                           rnd.choice([1, 2, 3]))))
    if rnd.random() < 0.2:
        r["sources"] = ["127.2.0.0/16"]
    return r

def write(path, mode, nallow, ndeny):
    with open(path, "w") as f:
        if mode:
            f.write("mode: %s\n" % mode)
        for action, count in (("allow", nallow), ("deny", ndeny)):
            if count == 0:
                continue
            f.write("%s:\n" % action)
            for _ in range(count):
                r = rand_rule(action)
                f.write('  - hosts: ["%s"]\n' % r["hosts"][0])
                if "ports" in r:
                    f.write("    ports: [%s]\n" %
                            ", ".join(str(p) for p in r["ports"]))
                if "sources" in r:
                    f.write('    sources: ["%s"]\n' % r["sources"][0])

write("enforce.yaml", "enforce", 8, 3)
write("plain.yaml", None, 5, 2)
write("report.yaml", "report", 3, 3)

names = set()
with open("requests.txt", "w") as f:
    for i in range(n):
        proto = "tls" if rnd.random() < 0.6 else "http"
        name = rnd.choice(exact) if exact and rnd.random() < 0.3 else rand_name()
        port = rnd.choice(tls_ports if proto == "tls" else http_ports)
        # Every request from its own address: its line's "src" names it
        # alone. 127.2/16 is what rules with sources admit.
        src = "127.%d.%d.%d" % (rnd.choice([1, 1, 2]), i // 250, i % 250 + 1)
        # A Host without a port means the listener's upstream_port.
        with_port = 1 if proto == "http" and (port != http_ports[0] or
                                              rnd.random() < 0.5) else 0
        f.write("%d %s %s %d %s %d\n" % (i, proto, name, port, src, with_port))
        names.add(name)
with open("names.txt", "w") as f:
    for name in sorted(names):
        f.write(name + "\n")
EOF

# Every generated name resolves to the upstream's address.
# shellcheck disable=SC2046
start_dns "$DNS_PORT" $(sed "s/\$/=$UP_ADDR/" names.txt)

# ---------------------------------------------------------------- upstream
# One address, every port: TLS ports read the ClientHello and close; HTTP
# ports answer 204 and close.
python3 - "$UP_ADDR" "$T1,$T2,$T3" "$H0,$H1,$H2" > upstream.log 2>&1 <<'EOF' &
import socket, sys, threading

addr = sys.argv[1]
tls = [int(p) for p in sys.argv[2].split(",")]
http = [int(p) for p in sys.argv[3].split(",")]

def serve(c, is_http):
    try:
        c.settimeout(2)
        data = b""
        while True:
            b = c.recv(65536)
            if not b:
                break
            data += b
            if not is_http or b"\r\n\r\n" in data:
                break
        if is_http:
            c.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n"
                      b"Connection: close\r\n\r\n")
    except OSError:
        pass
    finally:
        c.close()

def listen(port, is_http):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(128)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, is_http), daemon=True).start()

for p in tls:
    threading.Thread(target=listen, args=(p, False), daemon=True).start()
for p in http:
    threading.Thread(target=listen, args=(p, True), daemon=True).start()
print("listening", flush=True)
threading.Event().wait()
EOF
PIDS="$PIDS $!"
for p in $T1 $T2 $T3 $H0 $H1 $H2; do
	wait_port "$UP_ADDR:$p" 10 || bail "the upstream did not listen on $p"
done

# ---------------------------------------------------------------- one mode
# run_mode MODE: egressd with the configuration's mode MODE; every request
# sent; explain asked about each; the answers compared.
run_mode() {
	mode=$1
	L1=$(free_port); L2=$(free_port); L3=$(free_port); LH=$(free_port)
	LOG="$T/sv-$mode.log"
	cat > "sv-$mode.yaml" <<EOF
listeners:
  - {name: tls1, address: "127.0.0.1:$L1", upstream_port: $T1}
  - {name: tls2, address: "127.0.0.1:$L2", upstream_port: $T2}
  - {name: tls3, address: "127.0.0.1:$L3", upstream_port: $T3}
  - {name: http, address: "127.0.0.1:$LH", protocol: http, upstream_port: $H0}
workers: 2
mode: $mode
admin: {address: "off"}
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["$UP_ADDR/32"]
policy: {files: [enforce.yaml, plain.yaml, report.yaml]}
log: {path: sv-$mode.log}
timeouts: {connect: 2s, hello: 2s, idle: 5s}
EOF
	start_egressd "$T/sv-$mode.yaml"

	# Send: the client's address and port name the line.
	python3 - "$top_srcdir/tests/integration" "$T1:$L1,$T2:$L2,$T3:$L3" "$LH" \
	    "$H0" > "sent-$mode.txt" <<'EOF' || bail "cannot send the requests"
import socket, sys
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, sys.argv[1])
from audit_pcap import first_flight

tls_listener = dict((int(a), int(b)) for a, b in
                    (x.split(":") for x in sys.argv[2].split(",")))
http_listener, h0 = int(sys.argv[3]), int(sys.argv[4])

def send(req):
    i, proto, name, port, src, with_port = req.split()
    port, with_port = int(port), int(with_port)
    s = socket.socket()
    s.settimeout(5)
    s.bind((src, 0))
    lp = tls_listener[port] if proto == "tls" else http_listener
    s.connect(("127.0.0.1", lp))
    local = s.getsockname()[0]
    if proto == "tls":
        s.sendall(first_flight(name))
        try:
            s.recv(65536)       # an alert, the upstream's EOF
        except OSError:
            pass
    else:
        host = "%s:%d" % (name, port) if with_port else name
        s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % host).encode())
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
    s.close()
    return "%s %s" % (i, local)

reqs = [l for l in open("requests.txt").read().splitlines() if l]
with ThreadPoolExecutor(16) as ex:
    for line in ex.map(send, reqs):
        print(line)
EOF
	# Ask explain, for each request, what egressd does with it.
	python3 - "$EGRESSCTL" "$T/sv-$mode.yaml" > "explain-$mode.jsonl" <<'EOF' || bail "explain failed"
import json, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

ctl, cfg = sys.argv[1], sys.argv[2]

def ask(req):
    i, proto, name, port, src, _ = req.split()
    p = subprocess.run([ctl, "explain", "-c", cfg, "--format", "json",
                        "--proto", proto, "--port", port, "--src", src, name],
                       capture_output=True, text=True)
    if p.returncode not in (0, 1):
        sys.exit("explain %s: exit %d: %s" % (req, p.returncode, p.stderr))
    o = json.loads(p.stdout)
    o["id"], o["rc"] = int(i), p.returncode
    return json.dumps(o)

reqs = [l for l in open("requests.txt").read().splitlines() if l]
with ThreadPoolExecutor(8) as ex:
    for line in ex.map(ask, reqs):
        print(line)
EOF
	# Every request's line is written (admitted ones when they end).
	i=0
	while [ $i -lt 200 ]; do
		[ "$(logq "$LOG" --count)" -ge "$SV_REQUESTS" ] && break
		sleep 0.05
		i=$((i + 1))
	done
	kill -TERM "$EGRESSD_PID"
	wait "$EGRESSD_PID"

	python3 - "$mode" "$LOG" "${SEED_GIVEN:-0}" <<'EOF'
import collections, json, sys

mode, log, seed_given = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
reqs = {}
for l in open("requests.txt"):
    i, proto, name, port, src, _ = l.split()
    reqs[int(i)] = (proto, name, int(port), src)
local = dict((int(a), b) for a, b in
             (l.split() for l in open("sent-%s.txt" % mode)))
lines = collections.defaultdict(list)
for raw in open(log):
    d = json.loads(raw)
    if d.get("event") in ("allow", "deny", "error"):
        lines[d["src"].rsplit(":", 1)[0]].append(d)
exp = dict((o["id"], o) for o in map(json.loads, open("explain-%s.jsonl" % mode)))

bad, missing, seen = [], [], collections.Counter()
for i, (proto, name, port, src) in sorted(reqs.items()):
    got = lines.get(local[i], [])
    if len(got) != 1:
        missing.append("%d %s %s:%d from %s: %d lines" % (i, proto, name, port,
                                                          src, len(got)))
        continue
    d, e = got[0], exp[i]["log"]
    want = {"event": e["event"], "would_deny": e["would_deny"], "rule": e["rule"],
            "name": name, "port": port}
    have = {k: d[k] for k in want}
    if e["event"] != "allow":
        want["reason"], have["reason"] = e["reason"], d["reason"]
    if have != want:
        bad.append("%d %s %s:%d from %s: explain %s, egressd %s" % (
            i, proto, name, port, src, json.dumps(want, sort_keys=True),
            json.dumps(have, sort_keys=True)))
    # explain's exit status says the same: 0 only when relayed, no report.
    if (exp[i]["rc"] == 0) != (e["event"] == "allow"):
        bad.append("%d: explain exits %d for a %s line" % (i, exp[i]["rc"],
                                                           e["event"]))
    seen[e["reason"] + (" (would_deny)" if e["would_deny"] else "")] += 1

n = 0
fails = 0
tap_base = int(open("tap_n").read()) if __import__("os").path.exists("tap_n") else 0

def check(cond, what, detail=()):
    global n, fails
    n += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", tap_base + n, what))
    if not cond:
        fails += 1
        for l in list(detail)[:20]:
            print("# " + l)

check(not missing, "mode %s: every request has exactly one line" % mode, missing)
check(not bad, "mode %s: %d requests: egressd's line (event, reason, rule, "
      "would_deny) is explain's answer" % (mode, len(reqs)), bad)
print("# mode %s outcomes: %s" % (mode, ", ".join(
    "%s %d" % kv for kv in sorted(seen.items()))))
# The default seed must reach every kind of outcome, or the test proves
# little; another seed may not.
want = {"allowed", "not_allowed", "denied_by_rule", "port_not_allowed"}
if mode == "report":
    want = {"allowed", "not_allowed (would_deny)", "denied_by_rule (would_deny)"}
if not seed_given:
    got = set(seen)
    check(want <= got, "mode %s: the requests reach %s" % (mode, ", ".join(sorted(want))),
          ["missing: " + ", ".join(sorted(want - got))])
open("tap_n", "w").write(str(tap_base + n))
open("tap_fail", "a").write("x" * fails)
EOF
	[ $? -eq 0 ] || { echo x >> tap_fail; diag "mode $mode: the comparison failed"; }
}

run_mode enforce
run_mode report
N=$(cat tap_n 2>/dev/null) || bail "no comparison ran"
echo "1..$N"
[ -s tap_fail ] && exit 1
exit 0

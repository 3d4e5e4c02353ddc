#!/bin/sh
# Two workers: both serve connections (the conn ids say w0-... and w1-...),
# the metrics sum them, a SIGHUP reload reaches both (each then admits the
# new name), and a drain reaches both: the listeners stay open for
# drain.delay, relayed connections still open after drain.timeout are
# closed on both workers with reason draining, and the daemon exits 0.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki a.test b.test held.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
A=$(free_port)
start_dns "$DNS_PORT" a.test=127.0.0.2 b.test=127.0.0.3 held.test=127.0.0.4
start_tls_www "127.0.0.2:$UP" a.test
start_tls_www "127.0.0.3:$UP" b.test
# The held connections need a server that takes many at once.
python3 "$top_srcdir/tests/integration/tls_relay.py" server 127.0.0.4 "$UP" \
    "$T/pki/held.test.pem" "$T/pki/held.test.key" 0 >"$T/relay.log" 2>&1 &
PIDS="$PIDS $!"
wait_port "127.0.0.4:$UP" 10 || bail "the TLS server for held.test did not listen"

LOG="$T/egressd.log"
mkdir "$T/policy.d"
cat > "$T/policy.d/10-a.yaml" <<EOF
allow:
  - hosts: [a.test, held.test]
    ports: [$UP]
    allow_private: true
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 2
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.d], watch: false}
log: {path: egressd.log}
admin: {address: "127.0.0.1:$A"}
drain: {delay: 1s, timeout: 2s}
EOF
start_egressd "$T/egressd.yaml"

# many NAME N: N connections through the gateway; prints how many failed.
many() {
	python3 - "$GW" "$T/pki/ca.pem" "$1" "$2" "${3:-}" <<'EOF'
import os, socket, ssl, sys, time
gw, ca, name, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
go = sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
failed = 0
# With a go file: start now (python is slow to start on a busy machine),
# connect only once it exists.
if go:
    open(go + ".ready", "w").close()
    for _ in range(1000):
        if os.path.exists(go):
            break
        time.sleep(0.01)
for i in range(n):
    try:
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", gw), 5),
                             server_hostname=name) as s:
            s.settimeout(5)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            if b"s_server" not in data:
                failed += 1
    except (OSError, ssl.SSLError):
        failed += 1
print(failed)
EOF
}
# workers_of NAME REASON: the distinct worker prefixes of those lines.
workers_of() {
	logq "$LOG" name="$1" reason="$2" | python3 -c '
import json, sys
print(" ".join(sorted({json.loads(l)["conn"].split("-")[0] for l in sys.stdin})))'
}
metric() {
	scrape_metric "$A" "$1"
}

failed=$(many a.test 40)
[ "$failed" = 0 ]
ok $? "40 connections to a.test through two workers: none failed ($failed)"
wait_log "$LOG" 40 event=allow reason=allowed name=a.test
ok $? "40 allow lines"
w=$(workers_of a.test allowed)
[ "$w" = "w0 w1" ]
ok $? "both workers served some of them (connection ids from: $w)"
v=$(metric 'egressd_connections_total{listener="tls",event="allow",reason="allowed"}')
[ "$v" = 40 ]
ok $? "the metrics sum both workers: 40 allowed (got $v)"
v=$(metric 'egressd_connections_accepted_total{listener="tls"}')
[ "$v" = 40 ]
ok $? "and 40 accepted (got $v)"
v=$(metric egressd_workers)
[ "$v" = 2 ]
ok $? "egressd_workers 2 (got $v)"

failed=$(many b.test 1)
[ "$failed" = 1 ]
ok $? "b.test is not allowed before the reload"
cat > "$T/policy.d/20-b.yaml" <<EOF
allow:
  - hosts: [b.test]
    ports: [$UP]
    allow_private: true
EOF
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "policy generation 1" 10 || bail "the reload did not happen"
failed=$(many b.test 40)
[ "$failed" = 0 ]
ok $? "after SIGHUP, 40 connections to b.test: none failed ($failed)"
w=$(workers_of b.test allowed)
[ "$w" = "w0 w1" ]
ok $? "the reload reached both workers: each admitted b.test (ids from: $w)"

# Drain: 16 relayed connections held open (spread over both workers).
python3 - "$GW" "$T/pki/ca.pem" "$T/held.out" <<'EOF' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
socks = []
for i in range(16):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5),
                        server_hostname="held.test")
    socks.append(s)
open(sys.argv[3], "w").write("connected\n")
closed = 0
for s in socks:
    s.settimeout(20)
    try:
        while s.recv(4096):
            pass
        closed += 1
    except OSError:
        closed += 1
open(sys.argv[3], "a").write("closed %d\n" % closed)
EOF
client=$!
wait_for "$T/held.out" connected 10 || bail "the held connections did not connect"
v=$(metric egressd_connections_active)
[ "$v" = 16 ]
ok $? "16 connections are active (got $v)"
many a.test 1 "$T/go" >"$T/during.out" &
during=$!
i=0
while [ ! -e "$T/go.ready" ] && [ $i -lt 400 ]; do
	sleep 0.05
	i=$((i + 1))
done
[ -e "$T/go.ready" ] || bail "the client did not start"
start=$(date +%s%N)
kill -TERM "$EGRESSD_PID"
sleep 0.3
: > "$T/go"
wait "$during"
failed=$(cat "$T/during.out")
[ "$failed" = 0 ]
ok $? "during drain.delay new connections are still served"
wait "$EGRESSD_PID"
rc=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc -eq 0 ] && [ $took -ge 2900 ] && [ $took -le 6000 ]
ok $? "exit 0 after drain.delay (1 s) + drain.timeout (2 s) (took ${took} ms, rc $rc)"
wait_log "$LOG" 16 event=allow reason=draining name=held.test
ok $? "all 16 held connections were closed with reason draining"
w=$(workers_of held.test draining)
[ "$w" = "w0 w1" ]
ok $? "the drain reached both workers (ids from: $w)"
wait "$client"
grep -q "closed 16" "$T/held.out"
ok $? "every held client saw its connection closed"
grep -q '"msg":"egressd stopped"' "$LOG"
ok $? "the log ends with egressd stopped"

finish

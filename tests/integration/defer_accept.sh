#!/bin/sh
# defer_accept: a listener hands a connection to egressd with its client's
# first bytes (TCP_DEFER_ACCEPT), or a second after the handshake for a
# client that sends none; defer_accept: false hands it over at once. What a
# user sees: the accepted counter of each listener while a client is still
# silent, the denial a late ClientHello still gets (alert and line), and the
# hello_timeout a silent client gets, a second later with deferral. The
# denied names resolve to a recording origin (bypass_origin.py), which must
# get no connection from any of it.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki ok.test default
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
GW2=$(free_port)
A=$(free_port)
start_dns "$DNS_PORT" ok.test=127.0.0.2 nope.test=127.0.0.4
start_tls_www "127.0.0.2:$UP" ok.test
REC="$T/origin.rec"
python3 "$top_srcdir/tests/integration/bypass_origin.py" "$REC" \
    "tls:127.0.0.4:$UP:$T/pki" >"$T/origin.out" 2>&1 &
PIDS="$PIDS $!"
wait_for "$T/origin.out" listening 10 || bail "the recording origin did not start"
origin_conns() {
	python3 "$top_srcdir/tests/integration/bypass_origin.py" --query "$REC" 0 |
	    sed -n 's/^conns=\([0-9]*\) .*/\1/p'
}

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [ok.test]
    ports: [$UP]
    allow_private: true
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: deferred, address: "127.0.0.1:$GW", upstream_port: $UP}
  - {name: at-once, address: "127.0.0.1:$GW2", upstream_port: $UP, defer_accept: false}
workers: 1
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.yaml], watch: false}
log: {path: egressd.log}
admin: {address: "127.0.0.1:$A"}
timeouts: {hello: 1s}
EOF
start_egressd "$T/egressd.yaml"

metric() {
	scrape_metric "$A" "$1"
}
ACC_D='egressd_connections_accepted_total{listener="deferred"}'
ACC_N='egressd_connections_accepted_total{listener="at-once"}'

# The config view says which listener defers.
cfg=$(curl -s --max-time 5 "http://127.0.0.1:$A/config_dump")
echo "$cfg" | python3 -c '
import json, sys
ls = {l["name"]: l["defer_accept"] for l in json.load(sys.stdin)["listeners"]}
sys.exit(0 if ls == {"deferred": True, "at-once": False} else 1)'
ok $? "/config_dump shows defer_accept true on the default listener, false where it is turned off"

# --- one silent client on each listener -------------------------------------
# Each connects and stays silent until the counters have been read (the
# file "go"), then the one on "deferred" sends a ClientHello for a name no
# rule admits and reads the answer; the one on "at-once" says nothing and
# reads until EOF.
python3 - "$GW" "$GW2" "$T" <<'EOF' &
import os, socket, ssl, sys, time
gw, gw2, t = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
a = socket.create_connection(("127.0.0.1", gw))
b = socket.create_connection(("127.0.0.1", gw2))
open(t + "/connected", "w").close()
for _ in range(500):
    if os.path.exists(t + "/go"):
        break
    time.sleep(0.01)
ctx = ssl.create_default_context()
try:
    ctx.wrap_socket(a, server_hostname="nope.test")
    res = "handshake completed"
except ssl.SSLError as e:
    res = "alert: " + e.reason
except OSError as e:
    res = "error: " + str(e)
open(t + "/late.out", "w").write(res + "\n")
b.settimeout(10)
try:
    res = "eof" if b.recv(10) == b"" else "bytes"
except OSError as e:
    res = "error: " + str(e)
open(t + "/silent.out", "w").write(res + "\n")
EOF
CLIENTS=$!
PIDS="$PIDS $CLIENTS"
wait_for_file() { i=0; while [ $i -lt 100 ] && [ ! -e "$1" ]; do sleep 0.05; i=$((i + 1)); done; }
wait_for_file "$T/connected"
# The at-once listener's client connected second: once it is accepted, the
# deferring listener's would have been too, were it handed over at once.
i=0
while [ "$(metric "$ACC_N")" != 1 ] && [ $i -lt 100 ]; do sleep 0.01; i=$((i + 1)); done
n=$(metric "$ACC_N")
d=$(metric "$ACC_D")
touch "$T/go"
[ "$n" = 1 ]
ok $? "a silent client on the defer_accept: false listener is accepted at once (accepted $n)"
[ "$d" = 0 ]
ok $? "a silent client on the deferring listener is not handed over yet (accepted $d)"

wait "$CLIENTS"
grep -qx 'alert: TLSV1_ALERT_ACCESS_DENIED' "$T/late.out"
ok $? "its late ClientHello for a name no rule admits gets the access-denied alert ($(cat "$T/late.out"))"
wait_log "$LOG" 1 event=deny reason=not_allowed name=nope.test listener=deferred
ok $? "and one deny line, reason not_allowed, on the deferring listener"
grep -qx 'eof' "$T/silent.out"
ok $? "the silent client on the other listener is closed ($(cat "$T/silent.out"))"
wait_log "$LOG" 1 event=deny reason=hello_timeout listener=at-once bytes_in=0
ok $? "with one hello_timeout line"
[ "$(metric "$ACC_D")" = 1 ]
ok $? "the deferring listener counted the connection once it spoke"

# --- a silent client on the deferring listener ------------------------------
# Handed over a second after its handshake, then given the hello timeout (1 s):
# closed no sooner than 2 s after it connected, with its line.
el=$(python3 - "$GW" <<'EOF'
import socket, sys, time
t0 = time.monotonic()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(15)
try:
    r = s.recv(10)
    print("%.2f %s" % (time.monotonic() - t0, "eof" if r == b"" else "bytes"))
except OSError as e:
    print("%.2f error" % (time.monotonic() - t0))
EOF
)
secs=${el% *}
echo "$el" | awk '$2 == "eof" && $1 >= 1.9 && $1 < 8 { f = 1 } END { exit !f }'
ok $? "a client that never speaks is closed after the second's deferral and the hello timeout (${secs} s)"
wait_log "$LOG" 1 event=deny reason=hello_timeout listener=deferred bytes_in=0
ok $? "with one hello_timeout line on the deferring listener"
[ "$(origin_conns)" = 0 ]
ok $? "the origin nope.test resolves to got no connection from any of it"

# --- an allowed client through the deferring listener -----------------------
out=$(curl -sS --max-time 10 --cacert "$T/pki/ca.pem" \
    --connect-to "ok.test:$UP:127.0.0.1:$GW" "https://ok.test:$UP/" 2>&1)
echo "$out" | grep -q "s_server"
ok $? "an allowed client reaches its origin through the deferring listener"
wait_log "$LOG" 1 event=allow name=ok.test listener=deferred
ok $? "with its allow line"

finish

#!/bin/sh
# An upstream connection outlives the policy that admitted it: a reload that
# still admits the name but no longer leads to that address must not leave
# the address reachable. Attacked as a pod would: a TLS tunnel held open, an
# http keep-alive connection and a CONNECT tunnel carrying plain HTTP, each
# opened while the rule had allow_private and used again after a reload
# without it; then (a second daemon) a ServiceEntry whose STATIC endpoint
# moves. The origins record what reaches them; the requests made after the
# reload must not. A name whose rule is unchanged keeps its tunnel. Also a
# CONNECT tunnel whose origin closes its idle keep-alive connection: the
# tunnel ends (or the head already begun gets a 502), and egressd carries on.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl python3 curl

make_pki t.test k.test v.test default
DNS_PORT=$(free_port)
UP=$(free_port)
UP2=$(free_port)
H_GW=$(free_port)
C_GW=$(free_port)
T_GW=$(free_port)
start_dns "$DNS_PORT" a.test=127.0.0.21 t.test=127.0.0.22 k.test=127.0.0.22
H=$top_srcdir/tests/integration
python3 "$H/origin.py" --log "$T/origin-a.log" "127.0.0.21:$UP" 2>"$T/origin-a.err" &
PIDS="$PIDS $!"
python3 "$H/origin.py" --log "$T/origin-c.log" "127.0.0.23:$UP" 2>"$T/origin-c.err" &
PIDS="$PIDS $!"
REC="$T/tls.rec"
python3 "$H/bypass_origin.py" "$REC" "tls:127.0.0.22:$UP2:$T/pki" \
    "tls:127.0.0.24:$UP2:$T/pki" >"$T/tls-origin.out" 2>&1 &
PIDS="$PIDS $!"
wait_port "127.0.0.21:$UP" 10 || bail "origin.py did not listen"
wait_port "127.0.0.23:$UP" 10 || bail "origin.py did not listen"
wait_for "$T/tls-origin.out" listening 10 || bail "the recording origin did not start"

LOG="$T/egressd.log"
mkdir -p "$T/policy.d"
# policy FILE PRIVATE: a.test and t.test with allow_private PRIVATE; k.test
# always with it (its tunnel must survive the reload).
policy() {
	cat >"$1.new" <<EOF
allow:
  - name: a
    hosts: [a.test, t.test]
    ports: [$UP, $UP2]
    allow_private: $2
  - name: k
    hosts: [k.test]
    ports: [$UP2]
    allow_private: true
EOF
	mv "$1.new" "$1"
}
policy "$T/policy.d/allow.yaml" true
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: http, address: "127.0.0.1:$H_GW", protocol: http}
  - {name: connect, address: "127.0.0.1:$C_GW", protocol: connect}
  - {name: tls, address: "127.0.0.1:$T_GW", upstream_port: $UP2}
workers: 1
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.d], watch: false}
log: {path: egressd.log}
EOF
start_egressd "$T/egressd.yaml"

# ------------------------------------------------ a tunnel's origin says bye
# CONNECT a.test, plain HTTP inside. /bye is answered, then the origin
# closes its idle keep-alive connection: the tunnel ends with it. In a
# second tunnel the next head is half sent when that happens: completed, it
# gets a 502 (there is no other upstream a tunnel's request may use).
PYTHONPATH=$H python3 - "$C_GW" "$UP" "$T/origin-a.log" >"$T/bye.out" 2>&1 <<'EOF'
import socket, sys, time
from rawhttp import response
gw, up, olog = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
host = b"a.test:%d" % up

def tunnel():
    s = socket.create_connection(("127.0.0.1", gw))
    s.settimeout(5)
    s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (host, host))
    print("connect", response(s))
    return s

s = tunnel()
s.sendall(b"GET /bye HTTP/1.1\r\nHost: %s\r\n\r\n" % host)
print("bye", response(s))
t0 = time.monotonic()
print("after bye", response(s), "%.1f" % (time.monotonic() - t0))
s = tunnel()
s.sendall(b"GET /bye HTTP/1.1\r\nHost: %s\r\n\r\n" % host)
print("bye2", response(s))
s.sendall(b"GET /late HTTP/1.1\r\nHo")
# Until the origin has closed its side (it logs that), then a moment for
# egressd to read the FIN on its one worker.
for _ in range(500):
    if open(olog).read().count("closed by the server") >= 2:
        break
    time.sleep(0.01)
time.sleep(0.2)
s.sendall(b"st: %s\r\n\r\n" % host)
print("late", response(s))
print("then", response(s))
EOF
grep -qx "bye 200 a.test:$UP GET /bye n=1" "$T/bye.out" &&
    grep -q "^after bye eof " "$T/bye.out"
ok $? "the origin closed a tunnel's idle keep-alive connection: the tunnel ends ($(grep '^after bye' "$T/bye.out"))" ||
    diag "$(cat "$T/bye.out")"
grep -qx "late 502 egressd: a.test:$UP: upstream_reset: the tunnel's upstream connection has closed" "$T/bye.out" &&
    grep -qx "then eof" "$T/bye.out"
ok $? "a head begun as it closed: 502 upstream_reset, then the tunnel ends" ||
    diag "$(cat "$T/bye.out")"
wait_log "$LOG" 1 event=error reason=upstream_reset listener=connect name=a.test url="http://a.test:$UP/late"
ok $? "with its line"
! grep -q " /late " "$T/origin-a.log"
ok $? "the origin never got the late request" || diag "$(cat "$T/origin-a.log")"
out=$(curl -sS --max-time 5 -x "http://127.0.0.1:$C_GW" "http://a.test:$UP/still" 2>&1)
[ "$out" = "a.test:$UP GET /still n=1" ]
ok $? "egressd carries on: a new request through the connect listener is answered ($out)"

# ------------------------------------------------ allow_private withdrawn
# hold FILE SNI: a TLS tunnel through the tls listener, echoing a byte every
# 200 ms for at most 8 s.
hold() {
	hold_tls "$1" "$T_GW" --sni "$2" --hold 8
}
hold "$T/hold-t" t.test
HT=$HOLD_PID
hold "$T/hold-k" k.test
HK=$HOLD_PID
# An http keep-alive connection and a CONNECT tunnel with plain HTTP, each
# with one request answered before the reload ("ready") and one after ("go").
# python3 -u: its output is read while it still runs.
PYTHONPATH=$H python3 -u - "$H_GW" "$C_GW" "$UP" "$T" >"$T/ka.out" 2>&1 <<'EOF' &
import os, socket, sys, time
from rawhttp import get, response
hgw, cgw, up, t = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
host = b"a.test:%d" % up

h = socket.create_connection(("127.0.0.1", hgw))
h.settimeout(5)
print("http before", get(h, b"/before", host))
k = socket.create_connection(("127.0.0.1", cgw))
k.settimeout(5)
k.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (host, host))
print("connect", response(k))
print("tunnel before", get(k, b"/one", host))
open(t + "/ready", "w").close()
for _ in range(1000):
    if os.path.exists(t + "/go"):
        break
    time.sleep(0.01)
print("http after", get(h, b"/after", host))
print("tunnel after", get(k, b"/two", host))
print("tunnel then", response(k))
EOF
KA=$!
PIDS="$PIDS $KA"
i=0
while [ $i -lt 100 ] && { [ ! -e "$T/ready" ] || [ "$(echoes "$T/hold-t")" -lt 3 ] ||
    [ "$(echoes "$T/hold-k")" -lt 3 ]; }; do
	sleep 0.1
	i=$((i + 1))
done
[ -e "$T/ready" ] && grep -qx "http before 200 a.test:$UP GET /before n=1" "$T/ka.out" &&
    grep -qx "tunnel before 200 a.test:$UP GET /one n=1" "$T/ka.out" &&
    [ "$(echoes "$T/hold-t")" -ge 3 ] && [ "$(echoes "$T/hold-k")" -ge 3 ]
ok $? "allow_private: true: a.test answers over http and in a tunnel, t.test and k.test tunnels echo" ||
    diag "$(cat "$T/ka.out" "$T/hold-t" "$T/hold-k" | tail -n 12)"
MARK=$(wc -l <"$REC")
policy "$T/policy.d/allow.yaml" false
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "reload (SIGHUP): policy generation 1" 5
ok $? "the reload without allow_private for a.test and t.test took"
touch "$T/go"
wait "$KA"

grep -qx "http after 403 egressd: a.test:$UP: private_address: a.test resolves to 127.0.0.21 (loopback)" "$T/ka.out"
ok $? "the next request on the http keep-alive connection is not sent over the old upstream: 403 private_address" ||
    diag "$(cat "$T/ka.out")"
wait_log "$LOG" 1 event=deny reason=private_address listener=http name=a.test url="http://a.test:$UP/after"
ok $? "with its line"
grep -qx "tunnel after 403 egressd: a.test:$UP: policy_revoked: the reloaded policy refuses its upstream 127.0.0.21:$UP (loopback)" "$T/ka.out" &&
    grep -qx "tunnel then eof" "$T/ka.out"
ok $? "the next request in the CONNECT tunnel: 403 policy_revoked, and the tunnel ends" ||
    diag "$(cat "$T/ka.out")"
wait_log "$LOG" 1 event=deny reason=policy_revoked listener=connect name=a.test url="http://a.test:$UP/two"
ok $? "with its line"
! grep -q " /after \| /two " "$T/origin-a.log"
ok $? "the origin got neither request made after the reload" || diag "$(cat "$T/origin-a.log")"

i=0
while [ $i -lt 50 ] && kill -0 "$HT" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
grep -q '^closed after' "$T/hold-t"
ok $? "the TLS tunnel to t.test is closed within 5 s of the reload ($(tail -n 1 "$T/hold-t"))"
wait_log "$LOG" 1 event=deny reason=policy_revoked listener=tls name=t.test \
    "detail=the reloaded policy refuses its upstream 127.0.0.22:$UP2 (loopback)"
ok $? "with a policy_revoked line that names the address"
wait "$HK"
case $(tail -n 1 "$T/hold-k") in "alive after"*) true ;; *) false ;; esac
ok $? "the tunnel to k.test, whose rule kept allow_private, lives on ($(tail -n 1 "$T/hold-k"))"
out=$(curl -sS --max-time 5 -H "Host: a.test:$UP" "http://127.0.0.1:$H_GW/fresh" 2>&1)
case $out in *"private_address"*) true ;; *) false ;; esac
ok $? "a new connection for a.test is refused as well ($out)"
stop_pid "$EGRESSD_PID" >/dev/null

# ------------------------------------------------ a STATIC endpoint moves
# A ServiceEntry sends s.test (HTTP) and v.test (TLS) to fixed addresses;
# the reload moves them. The kept upstreams must not go on to the old ones.
# dns.allow_ranges makes loopback reachable here: only the route changes.
mesh() {
	cat >"$T/mesh.d/se.yaml.new" <<EOF
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s-se}
spec:
  hosts: [s.test]
  ports: [{number: $UP, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: $1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: v-se}
spec:
  hosts: [v.test]
  ports: [{number: $UP2, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: $2}]
EOF
	mv "$T/mesh.d/se.yaml.new" "$T/mesh.d/se.yaml"
}
mkdir -p "$T/mesh.d"
mesh 127.0.0.21 127.0.0.22
LOG="$T/egressd2.log"
cat > "$T/egressd2.yaml" <<EOF
listeners:
  - {name: http, address: "127.0.0.1:$H_GW", protocol: http}
  - {name: tls, address: "127.0.0.1:$T_GW", upstream_port: $UP2}
workers: 1
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
policy: {files: [mesh.d], watch: false}
log: {path: egressd2.log}
EOF
start_egressd "$T/egressd2.yaml"
rm -f "$T/ready" "$T/go"
hold "$T/hold-v" v.test
HV=$HOLD_PID
PYTHONPATH=$H python3 -u - "$H_GW" "$UP" "$T" >"$T/se.out" 2>&1 <<'EOF' &
import os, socket, sys, time
from rawhttp import get
hgw, up, t = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
host = b"s.test:%d" % up
s = socket.create_connection(("127.0.0.1", hgw))
s.settimeout(5)

print("before", get(s, b"/se-before", host))
open(t + "/ready", "w").close()
for _ in range(1000):
    if os.path.exists(t + "/go"):
        break
    time.sleep(0.01)
print("after", get(s, b"/se-after", host))
EOF
SE=$!
PIDS="$PIDS $SE"
i=0
while [ $i -lt 100 ] && { [ ! -e "$T/ready" ] || [ "$(echoes "$T/hold-v")" -lt 3 ]; }; do
	sleep 0.1
	i=$((i + 1))
done
grep -qx "before 200 s.test:$UP GET /se-before n=1" "$T/se.out" && [ "$(echoes "$T/hold-v")" -ge 3 ]
ok $? "STATIC endpoints 127.0.0.21 (http) and 127.0.0.22 (tls): both answer" ||
    diag "$(cat "$T/se.out" "$T/hold-v")"
mesh 127.0.0.23 127.0.0.24
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "reload (SIGHUP): policy generation 1" 5
ok $? "the reload that moves both endpoints took"
touch "$T/go"
wait "$SE"
grep -qx "after 200 s.test:$UP GET /se-after n=1" "$T/se.out" &&
    grep -q " GET /se-after host=s.test:$UP " "$T/origin-c.log" &&
    ! grep -q "/se-after" "$T/origin-a.log"
ok $? "the next request on the keep-alive connection goes to the new endpoint over a new connection, not the old one" ||
    diag "$(cat "$T/se.out" "$T/origin-a.log" "$T/origin-c.log")"
i=0
while [ $i -lt 50 ] && kill -0 "$HV" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
grep -q '^closed after' "$T/hold-v"
ok $? "the TLS tunnel to the old endpoint is closed within 5 s ($(tail -n 1 "$T/hold-v"))"
wait_log "$LOG" 1 event=deny reason=policy_revoked listener=tls name=v.test \
    "detail=the reloaded policy sends v.test elsewhere (the admitting rule's endpoints or resolution changed)"
ok $? "with a policy_revoked line saying the route changed"
out=$(python3 "$H/bypass_client.py" tls "127.0.0.1:$T_GW" --ca "$T/pki/ca.pem" --sni v.test 2>&1 | tail -n 1)
python3 "$H/bypass_origin.py" --query "$REC" "$MARK" | grep -q "at=.*127\.0\.0\.24:$UP2"
ok $? "a new connection to v.test reaches the new endpoint ($out)"

finish

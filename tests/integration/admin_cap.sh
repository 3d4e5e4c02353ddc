#!/bin/sh
# admin.max_connections and the admin timeout: the three admin addresses
# together hold at most that many connections; one more is closed at once
# without an answer, and a notice says so; a place comes back when a client
# goes, and when the 10 s timeout drops a silent one; the relay is untouched
# meanwhile. The settings show in /config_dump.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki one.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
LB=$(free_port)
A=$(free_port)
H=$(free_port)
P=$(free_port)
start_dns "$DNS_PORT" one.test=127.0.0.2
start_tls_www "127.0.0.2:$UP" one.test

LOG="$T/egressd.log"
cat > "$T/allow.yaml" <<EOF
allow:
  - hosts: [one.test]
    ports: [$UP]
    allow_private: true      # the test upstream lives on loopback
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
  - {name: lb, address: "127.0.0.1:$LB", upstream_port: $UP, proxy_protocol: true,
     proxy_protocol_from: ["127.0.0.0/8", "fd00::/8"]}
workers: 1
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [allow.yaml], watch: false}
log: {path: egressd.log}
admin:
  address: "127.0.0.1:$A"
  health_address: "127.0.0.1:$H"
  prometheus_address: "127.0.0.1:$P"
  max_connections: 4
EOF
start_egressd "$T/egressd.yaml"

# probe PORT PATH: one HTTP/1.0 request; prints "answered CODE", "closed"
# (EOF or reset before any byte) or "silent" (nothing within 5 s), then
# the milliseconds it took.
probe() {
	python3 - "$1" "$2" <<'EOF'
import socket, sys, time
t0 = time.monotonic()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.settimeout(5)
try:
    s.sendall(b"GET " + sys.argv[2].encode() + b" HTTP/1.0\r\n\r\n")
    data = s.recv(4096)
    out = "answered " + data.split(b" ")[1].decode() if data else "closed"
except (ConnectionResetError, BrokenPipeError):
    out = "closed"
except socket.timeout:
    out = "silent"
print(out, int((time.monotonic() - t0) * 1000))
EOF
}

# hold WHAT PORT...: in the background, one connection to each port.
# WHAT is "silent" (never sends a byte) or "keepalive" (one HTTP/1.1
# request, its 200 read, then idle on the open connection). Writes
# "open N" to $T/hold-WHAT once all are up; closes the first when
# $T/drop-WHAT appears; at $T/end-WHAT (or after 30 s) waits until the
# server has closed every connection left, at most until 20 s after they
# were opened, and writes "left" and, for each, "eof" or "open", then
# "after S" (seconds from opening to the last close).
hold() {
	what=$1
	shift
	python3 - "$T" "$what" "$@" <<'EOF' &
import os, select, socket, sys, time
T, what, ports = sys.argv[1], sys.argv[2], sys.argv[3:]
out = os.path.join(T, "hold-" + what)
socks = []
for p in ports:
    s = socket.create_connection(("127.0.0.1", int(p)), 5)
    if what == "keepalive":
        path = b"/healthz/ready" if len(socks) == 2 else b"/ready"
        if len(socks) == 3:
            path = b"/stats/prometheus"
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        got = b""
        while b"\r\n\r\n" not in got:
            b = s.recv(65536)
            if not b:
                break
            got += b
        head, _, body = got.partition(b"\r\n\r\n")
        n = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        while len(body) < n:
            b = s.recv(65536)
            if not b:
                break
            body += b
        if not head.startswith(b"HTTP/1.1 200"):
            open(out, "a").write("not answered: %r\n" % head[:40])
            sys.exit(1)
    socks.append(s)
t_open = time.monotonic()
open(out, "a").write("open %d\n" % len(socks))
def wait(name):
    deadline = time.time() + 30
    while not os.path.exists(os.path.join(T, name)) and time.time() < deadline:
        time.sleep(0.05)
wait("drop-" + what)
socks.pop(0).close()
open(out, "a").write("dropped\n")
wait("end-" + what)
states = ["open"] * len(socks)
last = 0.0
while "open" in states and time.monotonic() < t_open + 20:
    live = [s for s, st in zip(socks, states) if st == "open"]
    r, _, _ = select.select(live, [], [], 0.1)
    for s in r:
        try:
            st = "eof" if s.recv(1) == b"" else "data"
        except OSError:
            st = "eof"
        states[socks.index(s)] = st
        last = time.monotonic() - t_open
open(out, "a").write("left %s after %.1f\n" % (" ".join(states), last))
EOF
	PIDS="$PIDS $!"
}

CURL="curl -sS --max-time 10 --cacert $T/pki/ca.pem"

curl -s --max-time 5 -o "$T/dump" "http://127.0.0.1:$A/config_dump"
python3 - "$T/dump" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ls = {l["name"]: l for l in d["listeners"]}
want = (4, False, True, False, None, True, ["127.0.0.0/8", "fd00::/8"])
got = (d["admin"]["max_connections"], d["refuse_ech"], d["policy_redecide"],
       ls["tls"]["proxy_protocol"], ls["tls"]["proxy_protocol_from"],
       ls["lb"]["proxy_protocol"], ls["lb"]["proxy_protocol_from"])
if got != want:
    print("# got %r" % (got,))
sys.exit(0 if got == want else 1)
EOF
ok $? "/config_dump shows admin.max_connections, refuse_ech, policy_redecide and whose PROXY headers each listener believes"

# ---- four silent connections fill the cap --------------------------------
out=$(probe "$A" /ready)
case $out in "answered 200 "*) true ;; *) false ;; esac
ok $? "before: /ready answers 200 ($out)"

hold silent "$A" "$A" "$H" "$P"
wait_for "$T/hold-silent" "open 4" 10 || bail "could not open 4 admin connections"

# The fifth: evhttp accepts the holders as their SYNs arrive; allow for it.
i=0
while :; do
	out=$(probe "$A" /ready)
	case $out in "answered "*) ;; *) break ;; esac
	i=$((i + 1))
	[ $i -lt 20 ] || break
	sleep 0.1
done
ms=${out##* }
case $out in "closed "*) [ "$ms" -lt 1000 ] ;; *) false ;; esac
ok $? "4 connections open: a 5th on admin.address is closed at once, without an answer ($out)"
out=$(probe "$H" /healthz/ready)
case $out in "closed "*) true ;; *) false ;; esac
ok $? "the cap is shared: health_address closes its first connection too ($out)"
out=$(probe "$P" /stats/prometheus)
case $out in "closed "*) true ;; *) false ;; esac
ok $? "and so does prometheus_address ($out)"
wait_for "$LOG" "admin: 4 connections open (admin.max_connections); closing new ones at once, 1 so far" 5
ok $? "the first refusal is a notice in the log"
n=$(grep -c '"msg":"admin: 4 connections open' "$LOG")
[ "$n" -eq 1 ]
ok $? "one notice, not one per refused connection (got $n)"

# ---- the relay is untouched ----------------------------------------------
out=$($CURL --connect-to "one.test:$UP:127.0.0.1:$GW" "https://one.test:$UP/" 2>&1)
echo "$out" | grep -q s_server
ok $? "at the admin cap, a TLS connection through the gateway is relayed"
err=$($CURL --connect-to "nope.test:$UP:127.0.0.1:$GW" "https://nope.test:$UP/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "and a name no rule admits still gets 'alert access denied'"

# ---- a place comes back when a client goes -------------------------------
touch "$T/drop-silent"
wait_for "$T/hold-silent" dropped 5 || bail "the holder did not close its connection"
i=0
while :; do
	out=$(probe "$A" /ready)
	case $out in "answered 200 "*) break ;; esac
	i=$((i + 1))
	[ $i -lt 20 ] || break
	sleep 0.1
done
case $out in "answered 200 "*) true ;; *) false ;; esac
ok $? "one closed: /ready answers 200 again ($out)"
out=$(probe "$H" /healthz/ready)
case $out in "answered 200 "*) true ;; *) false ;; esac
ok $? "and so does /healthz/ready ($out)"

# ---- the admin timeout drops silent clients, and gives their places back --
# The admin timeout is 10 s: the three left are closed by the server then,
# not before.
touch "$T/end-silent"
wait_for "$T/hold-silent" "left " 25 || bail "the holder did not report"
left=$(grep "^left " "$T/hold-silent")
secs=${left##* after }
case $left in "left eof eof eof after "*) [ "${secs%.*}" -ge 9 ] ;; *) false ;; esac
ok $? "silent admin connections are closed by the server after the 10 s timeout ($left)"

# Four connections that each got an answer and stay open (HTTP/1.1
# keep-alive) fit again, so no place was lost; a fifth does not.
hold keepalive "$A" "$A" "$H" "$P"
wait_for "$T/hold-keepalive" "open 4" 10
ok $? "after the timeout, 4 new connections are admitted and answered ($(cat "$T/hold-keepalive"))"
out=$(probe "$A" /ready)
case $out in "closed "*) true ;; *) false ;; esac
ok $? "and a 5th is closed again ($out)"

stop_pid "$EGRESSD_PID"
rc=$?
[ $rc -eq 0 ]
ok $? "egressd exits 0 (got $rc)"

finish

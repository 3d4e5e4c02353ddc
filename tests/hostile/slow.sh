#!/bin/sh
# Slowloris on the ClientHello: 2,000 connections each send the first half
# of a real ClientHello (python ssl's, as on the wire) and then say nothing.
# Every one is closed at timeouts.hello (3 s) with its own hello_timeout
# deny line, having been sent nothing; meanwhile allowed clients, doing full
# verified handshakes, are all served. Their connect-to-first-byte p99 with
# and without the attack is reported (diag), not asserted.
. "$(dirname "$0")/../integration/lib.sh"
need dnsmasq openssl python3
H="python3 $top_srcdir/tests/hostile/hostile.py"
N=2000

# The attacker holds up to N sockets; the daemon raises its own limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((N + 100)) ] ||
    bail "the open-file limit ($(ulimit -n)) is below $((N + 100))"

make_pki www.ok.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
A=$(free_port)
start_dns "$DNS_PORT" www.ok.test=127.42.0.2
start_tls_www "127.42.0.2:$UP" www.ok.test

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [www.ok.test]
    ports: [$UP]
    allow_private: true
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 2
max_connections: 5000
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.yaml], watch: false}
log: {path: egressd.log}
admin: {address: "127.0.0.1:$A"}
timeouts: {hello: 3s, idle: 30s}
EOF
start_egressd "$T/egressd.yaml"

$H hello www.ok.test "$T/hello.bin" >/dev/null || bail "cannot make a ClientHello"
HALF=$(( $(wc -c < "$T/hello.bin") / 2 ))

# p99 of "ok MS" lines (nearest rank), and how many were served.
stats() {
	python3 - "$1" <<'EOF'
import math, sys
ms = sorted(float(l.split()[1]) for l in open(sys.argv[1]) if l.startswith("ok "))
n = sum(1 for _ in open(sys.argv[1]))
p = lambda q: ms[max(0, math.ceil(q * len(ms)) - 1)] if ms else float("nan")
print("%d %d %.1f %.1f %.1f" % (len(ms), n, p(0.5), p(0.99), ms[-1] if ms else float("nan")))
EOF
}

# --- without the attack: 50 sequential clients -----------------------------
$H probe "127.0.0.1:$GW" www.ok.test "$T/pki/ca.pem" 50 0.02 "$T/quiet.txt"
set -- $(stats "$T/quiet.txt")
[ "$1" = 50 ] && [ "$2" = 50 ]
ok $? "without the attack, 50 of 50 allowed clients are served (verified handshake + GET)"
QUIET_P50=$3 QUIET_P99=$4
diag "connect-to-first-byte without attack: p50 $3 ms, p99 $4 ms (50 clients)"
wait_log "$LOG" 50 event=allow reason=allowed name=www.ok.test
ok $? "50 allow lines"

# --- the attack: N half-hellos at 500/s, each held until the gateway closes it
$H slow "127.0.0.1:$GW" "$T/hello.bin" $N 500 20 "$T/slow.txt" &
ATTACKER=$!
PIDS="$PIDS $ATTACKER"
wait_for "$T/slow.txt.started" started 20 || bail "the attacker did not start"
# 50 allowed clients while the half-hellos pile up and time out.
$H probe "127.0.0.1:$GW" www.ok.test "$T/pki/ca.pem" 50 0.05 "$T/attack.txt"
wait "$ATTACKER"
diag "attacker: $(cat "$T/slow.txt")"
set -- $(stats "$T/attack.txt")
[ "$1" = 50 ] && [ "$2" = 50 ]
ok $? "during the attack, 50 of 50 allowed clients are served ($1 ok)"
grep -v '^ok' "$T/attack.txt" | head -5 | sed 's/^/# failed: /'
ATTACK_P50=$3 ATTACK_P99=$4
diag "connect-to-first-byte during attack: p50 $3 ms, p99 $4 ms, max $5 ms (50 clients)"
diag "p99 without attack $QUIET_P99 ms, with $N half-hellos $ATTACK_P99 ms"

grep -qx "connected $N failed 0 closed $N still_open 0 bytes_received 0 send_seconds [0-9.]*" "$T/slow.txt"
ok $? "all $N half-hello connections were accepted and each was closed by the gateway having received nothing"

# Every one has its own line: exactly N hello_timeout lines, nothing else.
i=0
while [ $i -lt 100 ]; do
	n=$(logq "$LOG" --count event=deny reason=hello_timeout)
	[ "$n" -ge $N ] && break
	sleep 0.1
	i=$((i + 1))
done
sleep 0.5
n=$(logq "$LOG" --count event=deny reason=hello_timeout)
[ "$n" = $N ]
ok $? "exactly $N hello_timeout lines (got $n)"
n=$(logq "$LOG" --count event=deny reason=hello_timeout name=null bytes_in=$HALF bytes_out=0 upstream=null)
[ "$n" = $N ]
ok $? "each says name null, bytes_in $HALF (the half hello), bytes_out 0 (got $n)"
# Not asserted to the millisecond: libevent arms a timer from the time its
# loop iteration began, so under load one can fire a few ms early.
set -- $(python3 - "$LOG" <<'EOF'
import json, sys
d = [json.loads(l)["duration_ms"] for l in open(sys.argv[1]) if '"hello_timeout"' in l]
print("%.1f %.1f %d" % (min(d), max(d), sum(1 for x in d if x < 3000)))
EOF
)
diag "hello_timeout durations: min $1 ms, max $2 ms; $3 under 3000 ms"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 2500 else 1)" "$1"
ok $? "none was closed well before the 3 s hello timeout (earliest $1 ms)"
n=$(logq "$LOG" --count event=allow reason=allowed name=www.ok.test)
[ "$n" = 100 ]
ok $? "100 allow lines in all, one per allowed client (got $n)"
n=$(logq "$LOG" --count)
[ "$n" = $((N + 100)) ]
ok $? "no other connection line: $((N + 100)) in all (got $n)"
logq "$LOG" --schema
ok $? "every line has the documented keys"

v=$(curl -s --max-time 5 "http://127.0.0.1:$A/stats/prometheus" | awk '$1 == "egressd_connections_active" { print $2 }')
[ "$v" = 0 ]
ok $? "egressd_connections_active is back to 0 (got $v)"
stop_pid "$EGRESSD_PID"
ok $? "SIGTERM: exit 0"

finish

#!/bin/sh
# Bytes through the relay arrive unchanged, both ways, with half-close:
# a TLS client uploads 8 MiB and half-closes, a TLS server hashes what it
# received, then sends 16 MiB back. Both ends compare hashes. Done through
# the splice(2) relay and through the bufferevent relay.
#
# And small exchanges are not held back: an interactive client (Nagle off)
# writes two small records and waits for the answer. A relay with Nagle on
# holds the second record until the origin acknowledges the first, and the
# origin delays that ACK (up to 40 ms) hoping to send it with an answer
# that cannot come: a stall on many exchanges. egressd sets TCP_NODELAY on
# both sockets of a relayed connection. Checked with each relay and on a
# CONNECT tunnel, against the same exchanges made directly.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl python3

make_pki bulk.test pp.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
PX=$(free_port)
N=100
start_dns "$DNS_PORT" bulk.test=127.0.0.2 pp.test=127.0.0.3
python3 "$top_srcdir/tests/integration/tls_relay.py" server 127.0.0.2 "$UP" \
    "$T/pki/bulk.test.pem" "$T/pki/bulk.test.key" 16777216 >"$T/server.log" 2>&1 &
PIDS="$PIDS $!"
python3 "$top_srcdir/tests/integration/tls_relay.py" pingserver 127.0.0.3 "$UP" \
    "$T/pki/pp.test.pem" "$T/pki/pp.test.key" >"$T/pingserver.log" 2>&1 &
PIDS="$PIDS $!"
wait_port "127.0.0.2:$UP" || bail "test server did not start"
wait_port "127.0.0.3:$UP" || bail "ping-pong server did not start"

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [bulk.test, pp.test]
    ports: [$UP]
    allow_private: true
EOF

# exchanges HOST PORT [CONNECT:PORT]: the client's summary line
exchanges() {
	timeout 60 python3 "$top_srcdir/tests/integration/tls_relay.py" exchanges \
	    "$1" "$2" pp.test "$T/pki/ca.pem" $N $3 2>&1
}
stalls() { echo "$1" | sed -n 's/.*stalls=\([0-9]*\).*/\1/p'; }
direct=$(exchanges 127.0.0.3 "$UP")
diag "direct: $direct"
base=$(stalls "$direct")
# a baseline that stalls itself would let a stalling relay pass
[ -n "$base" ] && [ "$base" -le 5 ]
ok $? "direct: $N small exchanges, at most 5 stalls ($base)"
# The same transfers through each relay: splice(2) (the default) and the
# bufferevent copy (relay_splice: false), one fresh egressd each.
round() {
	mode=$1
	: > "$LOG"
cat > "$T/egressd.yaml" <<EOF
relay_splice: $mode
listeners:
  - {name: tls, address: "127.0.0.1:$GW", protocol: tls, upstream_port: $UP}
  - {name: px, address: "127.0.0.1:$PX", protocol: connect}
workers: 1
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.yaml]}
log: {path: egressd.log}
EOF
start_egressd "$T/egressd.yaml"

out=$(timeout 60 python3 "$top_srcdir/tests/integration/tls_relay.py" client 127.0.0.1 "$GW" \
    bulk.test "$T/pki/ca.pem" 8388608 16777216 2>&1)
ok $? "relay_splice $mode: 8 MiB up and 16 MiB down arrive byte for byte (hashes compared at both ends)"
diag "$out"
wait_log "$LOG" 1 event=allow reason=allowed name=bulk.test
ok $? "relay_splice $mode: one allow line for the transfer"
logq "$LOG" event=allow | python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
sys.exit(0 if r["bytes_in"] > 8388608 and r["bytes_out"] > 16777216 else 1)'
ok $? "relay_splice $mode: the line counts more than 8 MiB in and 16 MiB out (payload plus TLS framing)"

# Three transfers at once, to exercise backpressure between the two sides.
pids=""
for i in 1 2 3; do
	timeout 60 python3 "$top_srcdir/tests/integration/tls_relay.py" client 127.0.0.1 "$GW" \
	    bulk.test "$T/pki/ca.pem" 4194304 16777216 >"$T/c$i.out" 2>&1 &
	pids="$pids $!"
done
fails=0
for p in $pids; do
	wait "$p" || fails=$((fails + 1))
done
[ $fails -eq 0 ]
ok $? "relay_splice $mode: three concurrent transfers all arrive intact ($fails failed)"
wait_log "$LOG" 4 event=allow reason=allowed name=bulk.test
ok $? "relay_splice $mode: four allow lines in all"

out=$(exchanges 127.0.0.1 "$GW")
diag "tls listener, relay_splice $mode: $out"
s=$(stalls "$out")
[ -n "$s" ] && [ "$s" -le $((base + 3)) ]
ok $? "relay_splice $mode: $N small exchanges, no more stalls than direct ($s, direct $base; with Nagle on 10 to 50)"
want=1
if [ "$mode" = true ]; then
	out=$(exchanges 127.0.0.1 "$PX" "CONNECT:$UP")
	diag "CONNECT tunnel: $out"
	s=$(stalls "$out")
	[ -n "$s" ] && [ "$s" -le $((base + 3)) ]
	ok $? "CONNECT tunnel: $N small exchanges, no more stalls than direct ($s, direct $base)"
	want=2
fi
wait_log "$LOG" $want event=allow reason=allowed name=pp.test
ok $? "relay_splice $mode: an allow line for each connection of exchanges ($want)"
	stop_pid "$EGRESSD_PID"
}
round true
round false
finish

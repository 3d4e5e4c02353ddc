#!/bin/sh
# Small exchanges are not held back by the relay. An interactive client
# (Nagle off) writes two small records and waits for the answer; a relay
# with Nagle on holds the second record until the origin acknowledges the
# first, and the origin delays that ACK (up to 40 ms) hoping to send it
# with an answer that cannot come: a stall on many exchanges. egressd sets
# TCP_NODELAY on both sockets of a relayed connection. Checked on the TLS
# listener with each relay (splice and bufferevent) and on a CONNECT
# tunnel, against the same exchanges made directly.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl python3

make_pki pp.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
PX=$(free_port)
N=100
start_dns "$DNS_PORT" pp.test=127.0.0.2
python3 "$top_srcdir/tests/integration/pingpong.py" server 127.0.0.2 "$UP" \
    "$T/pki/pp.test.pem" "$T/pki/pp.test.key" >"$T/server.log" 2>&1 &
PIDS="$PIDS $!"
wait_port "127.0.0.2:$UP" || bail "test server did not start"

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [pp.test]
    ports: [$UP]
    allow_private: true
EOF

# exchanges HOST PORT [CONNECT]: the client's summary line
exchanges() {
	SERVER_PORT=$UP timeout 60 python3 "$top_srcdir/tests/integration/pingpong.py" \
	    client "$1" "$2" pp.test "$T/pki/ca.pem" $N $3 2>&1
}
stalls() { echo "$1" | sed -n 's/.*stalls=\([0-9]*\).*/\1/p'; }

direct=$(exchanges 127.0.0.2 "$UP")
diag "direct: $direct"
base=$(stalls "$direct")
[ -n "$base" ]
ok $? "direct: $N exchanges made"

for mode in true false; do
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
	want=1
	out=$(exchanges 127.0.0.1 "$GW")
	diag "tls listener, relay_splice $mode: $out"
	s=$(stalls "$out")
	[ -n "$s" ] && [ "$s" -le $((base + 3)) ]
	ok $? "tls listener, relay_splice $mode: $N exchanges, no more stalls than direct ($s, direct $base; with Nagle on about 40)"
	if [ "$mode" = true ]; then
		out=$(exchanges 127.0.0.1 "$PX" CONNECT)
		diag "CONNECT tunnel: $out"
		s=$(stalls "$out")
		[ -n "$s" ] && [ "$s" -le $((base + 3)) ]
		ok $? "CONNECT tunnel: $N exchanges, no more stalls than direct ($s, direct $base)"
		want=2
	fi
	wait_log "$LOG" $want event=allow reason=allowed name=pp.test >/dev/null
	ok $? "relay_splice $mode: each connection of exchanges has its allow line ($want)"
	stop_pid "$EGRESSD_PID" >/dev/null
done
finish

#!/bin/sh
# The gateway never connects to itself in a chain. A name that resolves to
# one of the gateway's own addresses (here its address on the "internet"
# side, which the address guard does not know as its own: the listener is
# on 0.0.0.0) makes egressd connect to its own listener; that connection
# comes from one of its own upstream sockets and is refused with reason
# gateway_loop, so the attempt ends after one hop, with two lines, instead
# of chaining connections until descriptors run out.
. "$(dirname "$0")/world.sh"

make_pki loop.test
world_build
world_dns 60 loop.test=$GW_INET_IP

mkdir "$T/policy"
cat >"$T/policy/allow.yaml" <<EOF
allow:
  - hosts: [loop.test]
    ports: [8443]
EOF
LOG="$T/egressd.log"
cat >"$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "0.0.0.0:8443", protocol: tls, upstream_port: 8443}
workers: 2
dns:
  servers: ["$DNS_IP:53"]
  allow_ranges: ["198.51.100.0/24"]
policy: {files: [policy/allow.yaml]}
log: {path: egressd.log}
timeouts: {hello: 3s, dns: 2s, connect: 2s, idle: 10s}
EOF
world_egressd "$T/egressd.yaml"

err=$(pod_curl --connect-to "loop.test:8443:$GW_POD_IP:8443" "https://loop.test:8443/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "a name that resolves to the gateway itself: the client gets access_denied"
diag "$err"

wait_log "$LOG" 1 event=deny reason=gateway_loop
ok $? "the connection back to the gateway is refused: one gateway_loop line"
wait_log "$LOG" 1 name=loop.test reason=allowed
ok $? "the client's own connection ends with its line"
# A chain, if there were one, would show itself in more lines.
sleep 1
n=$(logq "$LOG" --count)
[ "$n" = 2 ]
ok $? "two connection lines in all, the client's and the refused hop (got $n)"
logq "$LOG" | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
outer = [l for l in lines if l["reason"] != "gateway_loop"]
inner = [l for l in lines if l["reason"] == "gateway_loop"]
ok = (len(outer) == 1 and len(inner) == 1 and
      outer[0]["upstream"] == sys.argv[1] + ":8443" and
      outer[0]["upstream_local_address"] == inner[0]["src"])
sys.exit(0 if ok else 1)' "$GW_INET_IP"
ok $? "the refused hop's src is the client connection's upstream_local_address"
logq "$LOG" | sed 's/^/# /'

kill -0 "$EGRESSD_PID"
ok $? "egressd is still running"
finish

#!/bin/sh
# The gateway never connects to itself in a chain.
#
# 1. A name that resolves to one of the gateway's own addresses (here its
#    address on the "internet" side, which the address guard does not know
#    as its own: the listener is on 0.0.0.0): the kernel connects to a local
#    address from that same address, so egressd sees that the connection
#    would reach its own listener, drops it before sending a byte, and
#    denies with private_address (the listener logs the dropped handshake
#    as client_closed, or gateway_loop if it accepts it first).
#    The same for any other service of the gateway host on that address (a
#    kubelet, an sshd), on a port that is not egressd's: the host service
#    gets no request, though dns.allow_ranges covers the address.
# 2. A redirect on the gateway (an iptables REDIRECT in its OUTPUT chain,
#    as a transparent set-up gone wrong) that sends egressd's own upstream
#    connection back to its listener: nothing in the address says so, and
#    the loop table does: the connection back comes from one of egressd's
#    upstream sockets and is refused with gateway_loop, so the attempt ends
#    after one hop, with two lines, instead of chaining connections until
#    descriptors run out.
. "$(dirname "$0")/world.sh"

REDIR_IP=198.51.100.7           # nothing listens there: the redirect answers
make_pki loop.test loop2.test host.test
world_build
world_dns 60 loop.test=$GW_INET_IP loop2.test=$REDIR_IP adm.test=$GW_INET_IP host.test=$GW_INET_IP

mkdir "$T/policy"
cat >"$T/policy/allow.yaml" <<EOF2
allow:
  - hosts: [loop.test, loop2.test]
    ports: [8443]
  - hosts: [adm.test]
    ports: [15001]
  - hosts: [host.test]
    ports: [9443, 9080]
    allow_private: true
EOF2
LOG="$T/egressd.log"
cat >"$T/egressd.yaml" <<EOF2
listeners:
  - {name: tls, address: "0.0.0.0:8443", protocol: tls, upstream_port: 8443}
  - {name: http, address: "0.0.0.0:8080", protocol: http}
  - {name: tls9443, address: "0.0.0.0:9444", protocol: tls, upstream_port: 9443}
admin: {address: ":15001"}
workers: 2
dns:
  servers: ["$DNS_IP:53"]
  allow_ranges: ["198.51.100.0/24"]
policy: {files: [policy/allow.yaml]}
log: {path: egressd.log}
timeouts: {hello: 3s, dns: 2s, connect: 2s, idle: 10s}
EOF2
world_egressd "$T/egressd.yaml"

# 1: the gateway's own address.
err=$(pod_curl --connect-to "loop.test:8443:$GW_POD_IP:8443" "https://loop.test:8443/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "a name that resolves to the gateway itself: the client gets access_denied"
diag "$err"
wait_log "$LOG" 1 event=deny reason=private_address name=loop.test \
    detail="loop.test resolves to $GW_INET_IP (this gateway's own address)"
ok $? "denied as private_address, naming the gateway's own address"
# The connection to itself was handshaken by the kernel and closed before
# a byte was sent: the listener logs it as client_closed, from the address
# of the dropped upstream socket. Nothing more: no hop, no chain.
# Whether the listener accepts it before or after the upstream socket
# leaves the loop table decides its reason: client_closed or gateway_loop.
i=0
while [ $i -lt 100 ] && [ "$(logq "$LOG" --count)" -lt 2 ]; do
	sleep 0.05
	i=$((i + 1))
done
[ "$(logq "$LOG" --count)" -ge 2 ]
ok $? "the listener saw the dropped handshake: its line is written"
logq "$LOG" | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
outer = [l for l in lines if l["reason"] == "private_address"]
inner = [l for l in lines if l["reason"] in ("client_closed", "gateway_loop")]
ok = (len(lines) == 2 and len(outer) == 1 and len(inner) == 1 and
      outer[0]["upstream_local_address"] == inner[0]["src"] and
      inner[0]["bytes_in"] == 0 and inner[0]["name"] is None)
sys.exit(0 if ok else 1)'
ok $? "two lines: the denial, and the listener's line for the dropped handshake"
logq "$LOG" | sed 's/^/# /'

# 1b: the admin endpoints on a wildcard address, through the http listener.
out=$(in_pod curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H "Host: adm.test:15001" \
    "http://$GW_POD_IP:8080/ready" 2>&1)
[ "$out" = 403 ]
ok $? "the admin port behind an allowed name that resolves to the gateway: 403 (got $out)"
wait_log "$LOG" 1 event=deny reason=private_address name=adm.test \
    detail="adm.test resolves to $GW_INET_IP (this gateway's own address)"
ok $? "denied as private_address, naming the gateway's own address"

# 1c: another service of the gateway host, on its own address, on ports
# that are not egressd's, behind a rule with allow_private.
HREC="$T/host.rec"
world_server "$GW" "$HREC" \
    "tls:$GW_INET_IP:9443:$T/pki/host.test.pem:$T/pki/host.test.key:the host service" \
    "http:$GW_INET_IP:9080:the host service over HTTP"
err=$(pod_curl --connect-to "host.test:9443:$GW_POD_IP:9444" "https://host.test:9443/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "a host service behind a name that resolves to the gateway: access_denied"
diag "$err"
echo "$err" | grep -q "the host service"
[ $? -ne 0 ]
ok $? "the client did not get the host service's answer"
wait_log "$LOG" 1 event=deny reason=private_address name=host.test \
    detail="host.test resolves to $GW_INET_IP (this gateway's own address)"
ok $? "denied as private_address, naming the gateway's own address"
out=$(in_pod curl -sS --max-time 10 -w ' %{http_code}' -H "Host: host.test:9080" \
    "http://$GW_POD_IP:8080/secret" 2>&1)
case $out in *" 403") r=0 ;; *) r=1 ;; esac
ok $r "the same over the http listener: 403 (got: $out)"
wait_log "$LOG" 2 event=deny reason=private_address name=host.test
ok $? "both denied as private_address"
[ "$(count_rec "$HREC" '^http ')" = 0 ]
ok $? "the host service got no request"
sed 's/^/# host service: /' "$HREC"

# 2: a redirect back to the listener.
in_gw iptables -w 5 -t nat -A OUTPUT -p tcp -d "$REDIR_IP" --dport 8443 \
    -j REDIRECT --to-ports 8443 || bail "cannot add the iptables REDIRECT rule in $GW"
from=$(($(wc -l <"$LOG") + 1))
err=$(pod_curl --connect-to "loop2.test:8443:$GW_POD_IP:8443" "https://loop2.test:8443/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "redirected back to the gateway: the client gets access_denied"
diag "$err"
i=0
while [ $i -lt 100 ] && [ "$(tail -n +"$from" "$LOG" | logq /dev/stdin --count event=deny reason=gateway_loop)" != 1 ]; do
	sleep 0.05
	i=$((i + 1))
done
[ "$(tail -n +"$from" "$LOG" | logq /dev/stdin --count event=deny reason=gateway_loop)" = 1 ]
ok $? "the connection back to the gateway is refused: one gateway_loop line"
wait_log "$LOG" 1 name=loop2.test reason=allowed
ok $? "the client's own connection ends with its line"
# A chain, if there were one, would show itself in more lines.
sleep 1
tail -n +"$from" "$LOG" >"$T/second.log"
n=$(logq "$T/second.log" --count)
[ "$n" = 2 ]
ok $? "two connection lines, the client's and the refused hop (got $n)"
logq "$T/second.log" | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
outer = [l for l in lines if l["reason"] != "gateway_loop"]
inner = [l for l in lines if l["reason"] == "gateway_loop"]
ok = (len(outer) == 1 and len(inner) == 1 and
      outer[0]["upstream"] == sys.argv[1] + ":8443" and
      outer[0]["upstream_local_address"] == inner[0]["src"])
sys.exit(0 if ok else 1)' "$REDIR_IP"
ok $? "the refused hop's src is the client connection's upstream_local_address"
logq "$T/second.log" | sed 's/^/# /'

kill -0 "$EGRESSD_PID"
ok $? "egressd is still running"
finish

#!/bin/sh
# protocol: transparent on loopback, without iptables: a client connecting
# straight to the listener is what TPROXY delivers (the socket's local
# address is the original destination). Checks the original port driving
# the policy and the upstream, orig_dst in the log, resolution: NONE
# (dst_mismatch), the loop guard, plain HTTP, and the configuration check.
# tests/netns/ does the same through real iptables REDIRECT.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki a.test none.test self.test
DNS_PORT=$(free_port)
P=$(free_port)
start_dns "$DNS_PORT" a.test=127.0.0.2 none.test=127.0.0.3 self.test=127.0.0.1 \
    off.test=127.0.0.2
# The upstream listens on the same port as the gateway, on another address:
# a transparent gateway connects to the port the client aimed at.
start_tls_www "127.0.0.2:$P" a.test

cat > "$T/allow.yaml" <<EOF
allow:
  - hosts: [a.test]
    ports: [$P]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: passthrough}
spec:
  hosts: [none.test, self.test]
  ports: [{number: $P, name: tls, protocol: TLS}]
  resolution: NONE
EOF
LOG="$T/egressd.log"
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: redirected, address: "127.0.0.1:$P", protocol: transparent}
workers: 1
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
policy: {files: [allow.yaml]}
log: {path: egressd.log}
EOF
"$EGRESSD" -t -c "$T/egressd.yaml" > "$T/t.out" 2>&1
ok $? "egressd -t accepts a transparent listener"
start_egressd "$T/egressd.yaml"
grep -q "\"msg\":\"listening on 127.0.0.1:$P (transparent, listener redirected)\"" "$LOG"
ok $? "the start notice names the transparent listener"

CURL="curl -sS --max-time 10 --cacert $T/pki/ca.pem"
out=$($CURL --resolve "a.test:$P:127.0.0.1" "https://a.test:$P/" 2>&1)
echo "$out" | grep -q s_server
ok $? "an allowed name reaches its server on the port the client aimed at"
wait_log "$LOG" 1 event=allow reason=allowed listener=redirected name=a.test \
    port="$P" proto=tls orig_dst="127.0.0.1:$P" upstream="127.0.0.2:$P"
ok $? "its line has orig_dst, the original port and the resolved upstream"

err=$($CURL --resolve "none.test:$P:127.0.0.1" "https://none.test:$P/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "resolution NONE, the client aimed elsewhere than the name: access denied"
wait_log "$LOG" 1 event=deny reason=dst_mismatch name=none.test orig_dst="127.0.0.1:$P" \
    rule_name=passthrough upstream=null \
    detail="the client aimed at 127.0.0.1:$P; none.test resolves to 127.0.0.3"
ok $? "logged as dst_mismatch with both addresses"

err=$($CURL --resolve "self.test:$P:127.0.0.1" "https://self.test:$P/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "resolution NONE to the gateway's own listener is refused, not looped"
wait_log "$LOG" 1 event=deny reason=private_address name=self.test \
    detail="self.test resolves to 127.0.0.1 (this gateway's own listener)"
ok $? "logged as private_address naming the gateway's own listener"
n=$(logq "$LOG" --count event=deny name=self.test)
[ "$n" -eq 1 ]
ok $? "exactly one line for it: the gateway did not connect to itself ($n)"

resp=$(printf 'GET / HTTP/1.1\r\nHost: b.test\r\n\r\n' |
    timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(sys.stdin.buffer.read())
print(s.recv(4096).decode("latin-1").splitlines()[0])' "$P")
[ "$resp" = "HTTP/1.1 403 Forbidden" ]
ok $? "plain HTTP on a transparent listener is decided on its Host: 403 for b.test (got '$resp')"
wait_log "$LOG" 1 event=deny reason=not_allowed proto=http name=b.test port="$P" \
    orig_dst="127.0.0.1:$P" url="http://b.test:$P/" status=403
ok $? "and a deny line with proto http, the port aimed at and orig_dst"

cat > "$T/bad.yaml" <<EOF
listeners:
  - name: redirected
    address: "127.0.0.1:$P"
    protocol: transparent
    upstream_port: 443
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [allow.yaml]}
EOF
out=$("$EGRESSD" -t -c "$T/bad.yaml" 2>&1)
st=$?
[ $st -eq 1 ] && [ "$out" = "$T/bad.yaml:5:20: upstream_port does not apply to a transparent listener: it uses the port the client aimed at" ]
ok $? "upstream_port on a transparent listener is a configuration error (got $st: $out)"

finish

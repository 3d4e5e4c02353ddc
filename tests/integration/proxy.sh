#!/bin/sh
# The PROXY protocol, with a real front proxy (HAProxy, send-proxy-v2) and
# real clients: on a listener with proxy_protocol: true the header's source
# is the client the policy (sources:) and the log (src) see; a connection
# without a valid header is refused with bad_proxy_header; a listener
# without proxy_protocol never trusts a header.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3 haproxy

make_pki scoped.test open.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
PLAIN=$(free_port)
FRONT=$(free_port)
start_dns "$DNS_PORT" scoped.test=127.0.0.2 open.test=127.0.0.2
start_tls_www "127.0.0.2:$UP" scoped.test

cat > "$T/allow.yaml" <<EOF
allow:
  - name: scoped
    hosts: [scoped.test]
    ports: [$UP]
    sources: ["10.9.9.9/32", "127.0.0.9/32"]
EOF
LOG="$T/egressd.log"
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: behind-lb, address: "127.0.0.1:$GW", upstream_port: $UP, proxy_protocol: true,
     proxy_protocol_from: ["127.0.0.0/8"]}
  - {name: direct, address: "127.0.0.1:$PLAIN", upstream_port: $UP}
workers: 1
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
policy: {files: [allow.yaml]}
log: {path: egressd.log}
EOF
start_egressd "$T/egressd.yaml"

# A client behind a load balancer: PROXY v1 naming 10.9.9.9, then TLS.
client() {
	timeout 20 python3 - "$@" <<'PY'
import socket, ssl, sys
port, ca, header, name = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", port), 5)
if header:
    s.sendall(header.encode().decode("unicode_escape").encode("latin-1"))
ctx = ssl.create_default_context(cafile=ca)
try:
    with ctx.wrap_socket(s, server_hostname=name) as t:
        t.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            b = t.recv(65536)
            if not b:
                break
            data += b
        print("reached" if b"s_server" in data else "no page")
except (ssl.SSLError, OSError) as e:
    print("refused:", e)
PY
}

out=$(client "$GW" "$T/pki/ca.pem" 'PROXY TCP4 10.9.9.9 192.0.2.1 40001 443\r\n' scoped.test)
[ "$out" = "reached" ]
ok $? "PROXY v1 from 10.9.9.9: the scoped rule admits the real client ($out)"
wait_log "$LOG" 1 event=allow listener=behind-lb src="10.9.9.9:40001" name=scoped.test \
    rule_name=scoped
ok $? "the line's src is the header's client"

out=$(client "$GW" "$T/pki/ca.pem" 'PROXY TCP4 10.7.7.7 192.0.2.1 40002 443\r\n' scoped.test)
case $out in refused:*) true ;; *) false ;; esac
ok $? "PROXY v1 from 10.7.7.7: not in the rule's sources, refused ($out)"
wait_log "$LOG" 1 event=deny reason=not_allowed src="10.7.7.7:40002" name=scoped.test
ok $? "logged as not_allowed for 10.7.7.7"

out=$(client "$GW" "$T/pki/ca.pem" '' scoped.test)
case $out in refused:*) true ;; *) false ;; esac
ok $? "no PROXY header on a proxy_protocol listener: refused ($out)"
wait_log "$LOG" 1 event=deny reason=bad_proxy_header listener=behind-lb \
    detail="not a PROXY header"
ok $? "logged as bad_proxy_header"

out=$(client "$PLAIN" "$T/pki/ca.pem" 'PROXY TCP4 10.9.9.9 192.0.2.1 40003 443\r\n' scoped.test)
case $out in refused:*) true ;; *) false ;; esac
ok $? "a listener without proxy_protocol never trusts a header ($out)"
wait_log "$LOG" 1 event=deny reason=not_tls listener=direct src~127.0.0.1
ok $? "it is not TLS there: not_tls, from the socket's own address"

# A real front proxy: HAProxy with send-proxy-v2, the client on 127.0.0.9.
cat > "$T/haproxy.cfg" <<EOF
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend front
    bind 127.0.0.1:$FRONT
    default_backend gw
backend gw
    server egressd 127.0.0.1:$GW send-proxy-v2
EOF
haproxy -f "$T/haproxy.cfg" -db > "$T/haproxy.out" 2>&1 &
HAPROXY_PID=$!
PIDS="$PIDS $HAPROXY_PID"
wait_port "127.0.0.1:$FRONT" || bail "haproxy did not listen"
out=$(curl -sS --max-time 10 --cacert "$T/pki/ca.pem" --interface 127.0.0.9 \
    --connect-to "scoped.test:$UP:127.0.0.1:$FRONT" "https://scoped.test:$UP/" 2>&1)
echo "$out" | grep -q s_server
ok $? "curl from 127.0.0.9 through HAProxy (PROXY v2) reaches the scoped name"
wait_log "$LOG" 1 event=allow listener=behind-lb src~127.0.0.9: name=scoped.test
ok $? "the line names the client behind HAProxy (127.0.0.9), not HAProxy"

out=$(curl -sS --max-time 10 --cacert "$T/pki/ca.pem" \
    --connect-to "scoped.test:$UP:127.0.0.1:$FRONT" "https://scoped.test:$UP/" 2>&1)
echo "$out" | grep -q "alert access denied"
ok $? "the same through HAProxy from 127.0.0.1: not in sources, access denied"

finish

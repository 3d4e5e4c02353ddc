#!/bin/sh
# Where the gateway connects for an Istio ServiceEntry, with real clients:
#  - STATIC: to the endpoints' addresses, whatever DNS says of the name,
#    and to an endpoint's own port when its ports map gives one;
#  - DNS with endpoints: to what the endpoint's host name resolves to;
#  - DNS without endpoints: to what the requested name resolves to.
# Each name is served by a different s_server whose page names it, so the
# bytes that arrive say where the connection went.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki static.test viaep.test plain.test moved.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
UP2=$(free_port)
# DNS points every name at 127.0.0.2: reaching anything else proves the
# gateway followed the ServiceEntry, not the name.
start_dns "$DNS_PORT" static.test=127.0.0.2 viaep.test=127.0.0.2 \
    plain.test=127.0.0.2 moved.test=127.0.0.2 backend.test=127.0.0.4
start_tls_www "127.0.0.2:$UP" plain.test
start_tls_www "127.0.0.3:$UP" static.test
start_tls_www "127.0.0.4:$UP" viaep.test
start_tls_www "127.0.0.5:$UP2" moved.test

cat > "$T/mesh.yaml" <<EOF
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static-se, namespace: egress}
spec:
  hosts: [static.test]
  ports: [{number: $UP, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.3}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: moved-se}
spec:
  hosts: [moved.test]
  ports: [{number: $UP, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.5, ports: {tls: $UP2}}]
---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: endpoint-se}
spec:
  hosts: [viaep.test]
  ports: [{number: $UP, name: tls, protocol: TLS}]
  resolution: DNS
  endpoints: [{address: backend.test}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: dns-se}
spec:
  hosts: [plain.test]
  ports: [{number: $UP, name: tls, protocol: TLS}]
  resolution: DNS
EOF
LOG="$T/egressd.log"
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 1
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
policy: {files: [mesh.yaml]}
log: {path: egressd.log}
EOF
start_egressd "$T/egressd.yaml"
CURL="curl -sS --max-time 10 --cacert $T/pki/ca.pem"

# s_server -www prints the certificate it serves: its subject names it.
for case in "static.test 127.0.0.3:$UP static-se" "viaep.test 127.0.0.4:$UP endpoint-se" \
    "plain.test 127.0.0.2:$UP dns-se" "moved.test 127.0.0.5:$UP2 moved-se"; do
	set -- $case
	out=$($CURL --connect-to "$1:$UP:127.0.0.1:$GW" "https://$1:$UP/" 2>&1)
	echo "$out" | grep -q s_server
	ok $? "$1: the TLS handshake with the real server succeeds"
	wait_log "$LOG" 1 event=allow name="$1" port="$UP" upstream="$2" rule_name="$3"
	ok $? "$1: relayed to $2 by ServiceEntry $3"
done

finish

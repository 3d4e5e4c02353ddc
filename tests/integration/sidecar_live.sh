#!/bin/sh
# Istio's Sidecar exclusions (~ns/host, ~/host, ~ns/*) against a running
# egressd, as a pod would meet them: the reference's example
# (tests/fixtures/istio/sidecar-exclusion.yaml, its port moved to a free
# one) with clients in each namespace's address range. For a pod of
# prod-us1 an excluded host is refused with access_denied and the origin
# receives no connection at all; the host it still imports reaches the
# origin; a pod of prod-us2, which no Sidecar scopes, reaches a host
# prod-us1 excluded. Then routes Istio never carries through an egress
# gateway (bound only to the ingress gateway, or to a Gateway whose servers
# name other hosts; tests/fixtures/istio): the client is refused and the
# origin receives no connection, while the route the Gateway does carry
# reaches it.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl python3

H="$top_srcdir/tests/integration"
make_pki default foo.example.com bar.example.com baz.example.com api.us2.example.com \
    api.example.com secret.example.com nginx.example.com
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
start_dns "$DNS_PORT" foo.example.com=127.0.0.2 bar.example.com=127.0.0.2 \
    baz.example.com=127.0.0.2 api.us2.example.com=127.0.0.2 api.example.com=127.0.0.2 \
    secret.example.com=127.0.0.2 nginx.example.com=127.0.0.2

REC="$T/origin.rec"
python3 "$H/bypass_origin.py" "$REC" "tls:127.0.0.2:$UP:$T/pki" >"$T/origin.out" 2>&1 &
PIDS="$PIDS $!"
wait_for "$T/origin.out" listening 10 || bail "the origin did not start"

sed "s/number: 443/number: $UP/" "$top_srcdir/tests/fixtures/istio/sidecar-exclusion.yaml" \
    >"$T/sidecar.yaml"
for f in gateway-hosts ingress-passthrough; do
	sed "s/443/$UP/g" "$top_srcdir/tests/fixtures/istio/$f.yaml" >"$T/$f.yaml"
done
LOG="$T/egressd.log"
cat >"$T/egressd.yaml" <<EOF
listeners: [{name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}]
workers: 1
dns: {servers: ["127.0.0.1:$DNS_PORT"], allow_ranges: ["127.0.0.2/32"]}
policy: {files: [sidecar.yaml, gateway-hosts.yaml, ingress-passthrough.yaml], watch: false}
log: {path: egressd.log}
admin: {address: "off"}
namespaces:
  prod-us1: ["127.0.4.0/24"]
  prod-us2: ["127.0.5.0/24"]
  prod-apis: ["127.0.6.0/24"]
EOF
start_egressd "$T/egressd.yaml"

# try SRC NAME: the client's last line in GOT; origin_since reads what the
# origin got after the attempt began. The gateway connects upstream only
# after an allow; a refusal is final once its line is written, so the
# origin is read after the line, not after a pause.
try() {
	mark=$(wc -l <"$REC")
	GOT=$(python3 "$H/bypass_client.py" tls "127.0.0.1:$GW" --src "$1" --sni "$2" \
	    --ca "$T/pki/ca.pem" 2>&1 | tail -n 1)
}
origin_since() {
	ORIGIN=$(python3 "$H/bypass_origin.py" --query "$REC" "$mark")
}

# refused SRC NAME WHY: one not_allowed line, access_denied, no connection
refused() {
	try "$1" "$2"
	wait_log "$LOG" 1 event=deny reason=not_allowed name="$2" src~"$1":
	ok $? "$3: one deny line, not_allowed"
	origin_since
	case $GOT in "alert access_denied") ;; *) false ;; esac &&
	    case $ORIGIN in "conns=0 "*) ;; *) false ;; esac
	ok $? "... the client got access_denied, the origin no connection" ||
	    diag "client: $GOT; origin: $ORIGIN"
}
# reaches SRC NAME WHY: the origin got one connection for NAME
reaches() {
	try "$1" "$2"
	origin_since
	case $GOT in "reached hello from $2"*) ;; *) false ;; esac &&
	    case $ORIGIN in "conns=1 "*"sni=$2"*) ;; *) false ;; esac
	ok $? "$3: reaches the origin" || diag "client: $GOT; origin: $ORIGIN"
}

for name in foo.example.com bar.example.com api.us2.example.com; do
	refused 127.0.4.5 "$name" "prod-us1 pod, $name (excluded)"
done
reaches 127.0.4.5 baz.example.com "prod-us1 pod, baz.example.com (still imported)"
reaches 127.0.5.5 foo.example.com "prod-us2 pod (no Sidecar), foo.example.com"
for name in secret.example.com nginx.example.com; do
	refused 127.0.5.5 "$name" "$name (a route no egress Gateway carries)"
done
reaches 127.0.5.5 api.example.com "api.example.com (the route the Gateway's server carries)"
finish

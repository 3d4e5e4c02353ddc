#!/bin/sh
# The built-in example: egressd between curl and a local TLS server, all on
# loopback, with its own DNS server (dnsmasq) and test certificates. Runs in
# the foreground and prints its log; Ctrl-C stops everything it started.
#
#   gateway   127.0.0.1:8443  (TLS listener), 127.0.0.1:3128 (proxy listener)
#   DNS       127.0.0.1:5353  (dnsmasq: *.demo.test)
#   upstream  127.0.0.2:8444  (openssl s_server for api.demo.test)
#             127.0.0.2:8080  (a plain HTTP origin for api.demo.test)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
EGRESSD=${EGRESSD:-$top/egressd}
EGRESSCTL=${EGRESSCTL:-$top/egressctl}
D=$(mktemp -d "${TMPDIR:-/tmp}/egressd-demo.XXXXXX")
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

for prog in dnsmasq openssl curl python3; do
	command -v $prog >/dev/null || { echo "demo: $prog is missing: run ./bootstrap.sh deps" >&2; exit 1; }
done

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$D/ca.key" -out "$D/ca.pem" -days 30 -subj "/CN=egressd demo CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/api.key" \
    -out "$D/api.csr" -subj "/CN=api.demo.test" 2>/dev/null
printf 'subjectAltName=DNS:api.demo.test\n' > "$D/api.ext"
openssl x509 -req -in "$D/api.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial \
    -days 30 -extfile "$D/api.ext" -out "$D/api.pem" 2>/dev/null

dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address=127.0.0.1 --port=5353 --local=/test/ \
    --host-record=api.demo.test,127.0.0.2 --host-record=blocked.demo.test,127.0.0.3 \
    --host-record=metadata.demo.test,169.254.169.254 --pid-file= \
    --user=root --group=root --log-facility=/dev/null &
pids="$pids $!"
openssl s_server -accept 127.0.0.2:8444 -cert "$D/api.pem" -key "$D/api.key" \
    -www -quiet >/dev/null 2>&1 &
pids="$pids $!"
# A plain HTTP origin for api.demo.test: /status/301?to=URL answers a redirect.
python3 "$top/tests/integration/origin.py" --log /dev/null 127.0.0.2:8080 &
pids="$pids $!"

cat > "$D/allow.yaml" <<YAML
# Names the demo's clients may reach. Deny rules win over allow rules.
allow:
  - hosts: ["api.demo.test"]
    ports: [8444, 8080]
    allow_private: true          # the demo upstreams live on loopback
  - hosts: ["*.demo.test"]       # any other demo name, but never private addresses
    ports: [8444]
deny:
  - hosts: ["blocked.demo.test"]
YAML
cat > "$D/egressd.yaml" <<YAML
listeners:
  - name: tls
    address: 127.0.0.1:8443
    protocol: tls
    upstream_port: 8444
  - name: proxy                  # HTTP_PROXY / HTTPS_PROXY clients
    address: 127.0.0.1:3128
    protocol: connect
workers: auto
dns:
  servers: ["127.0.0.1:5353"]
policy:
  files: ["allow.yaml"]
log:
  path: "-"
timeouts: {hello: 10s, dns: 5s, connect: 5s, idle: 1h}
YAML
CA="${TMPDIR:-/tmp}/egressd-demo-ca.pem"
cp "$D/ca.pem" "$CA"

cat >&2 <<MSG
egressd demo: gateway on 127.0.0.1:8443 (TLS) and 127.0.0.1:3128 (proxy),
configuration in $D/egressd.yaml
Try, from another terminal:

  # allowed: a real TLS handshake with the upstream, verified end to end
  curl --cacert $CA --connect-to api.demo.test:8444:127.0.0.1:8443 https://api.demo.test:8444/

  # denied by rule: curl prints "tlsv1 alert access denied"
  curl --cacert $CA --connect-to blocked.demo.test:8444:127.0.0.1:8443 https://blocked.demo.test:8444/

  # not on the allow-list at all
  curl --cacert $CA --connect-to example.com:8444:127.0.0.1:8443 https://example.com:8444/

  # allowed name, but it resolves to the cloud metadata address: private_address
  curl --cacert $CA --connect-to metadata.demo.test:8444:127.0.0.1:8443 https://metadata.demo.test:8444/

  # through the proxy listener: HTTPS by CONNECT, plain HTTP per request
  curl --cacert $CA -x http://127.0.0.1:3128 https://api.demo.test:8444/
  curl -x http://127.0.0.1:3128 http://api.demo.test:8080/hello

  # a redirect towards a denied host: a "redirect" line with verdict deny, then the 403
  curl -L -x http://127.0.0.1:3128 "http://api.demo.test:8080/status/301?to=http://blocked.demo.test:8080/x"

  # follow that chain hop by hop, with the policy's verdict for each
  $EGRESSCTL trace -c $D/egressd.yaml --via 127.0.0.1:3128 "http://api.demo.test:8080/status/301?to=http://blocked.demo.test:8080/x"

  # why is a name denied? the deciding rule and every other match
  $EGRESSCTL explain -c $D/egressd.yaml --port 8444 blocked.demo.test

  # edit the allow-list: the running gateway reloads it by itself
  \$EDITOR $D/allow.yaml

Each connection prints one JSON line below. Ctrl-C stops the demo.

MSG
"$EGRESSD" -c "$D/egressd.yaml" &
pids="$pids $!"
wait $!

#!/bin/sh
# DNS as the gateway uses it, with a real dnsmasq that the test kills:
# a stale answer stands in while the servers are down, within
# dns.stale_ttl, and the line says so; past the window the lookup fails;
# dns.family v6_only turns an IPv4-only name into dns_nxdomain.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki a.test b.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
DNS_TTL=1 start_dns "$DNS_PORT" a.test=127.0.0.2 b.test=127.0.0.2
start_tls_www "127.0.0.2:$UP" a.test

printf 'allow:\n  - hosts: [a.test, b.test]\n    ports: [%s]\n' "$UP" > "$T/allow.yaml"
LOG="$T/egressd.log"
cat > "$T/egressd.yaml" <<YAML
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 1
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
  stale_ttl: 4s
timeouts: {dns: 1s}
policy: {files: [allow.yaml]}
log: {path: egressd.log}
YAML
start_egressd "$T/egressd.yaml"
CURL="curl -sS --max-time 10 --cacert $T/pki/ca.pem"
get() { $CURL --connect-to "$1:$UP:127.0.0.1:$GW" "https://$1:$UP/" 2>&1; }

get a.test | grep -q s_server
ok $? "a.test is reached while DNS answers (TTL 1 s)"
wait_log "$LOG" 1 event=allow name=a.test detail=null
ok $? "an ordinary allow line"

kill "$DNS_PID"
wait "$DNS_PID" 2>/dev/null
sleep 2         # the 1 s answer has expired; the server is gone
get a.test | grep -q s_server
ok $? "with DNS down, a.test is still reached on the stale answer"
n=$(logq "$LOG" --count event=allow name=a.test)
line=$(grep '"name":"a.test"' "$LOG" | tail -1)
echo "$line" | grep -q '"detail":"DNS failed; served a stale answer (expired [12]s ago)"'
ok $? "its line says the answer was stale and how old ($n lines; $line)"

get b.test | grep -q "alert internal error"
ok $? "a name never resolved before has nothing stale: internal_error alert"
n=$(logq "$LOG" --count event=error name=b.test reason=dns_failure)
m=$(logq "$LOG" --count event=error name=b.test reason=dns_timeout)
[ $((n + m)) -eq 1 ]
ok $? "logged as dns_failure or dns_timeout"

sleep 4         # past the 4 s stale window
get a.test | grep -q "alert internal error"
ok $? "past dns.stale_ttl the stale answer is gone: internal_error alert"
n=$(logq "$LOG" --count event=error name=a.test reason=dns_failure)
m=$(logq "$LOG" --count event=error name=a.test reason=dns_timeout)
[ $((n + m)) -eq 1 ]
ok $? "and one dns_failure/dns_timeout line for it"

# v6_only: an IPv4-only name has no usable address.
kill -TERM "$EGRESSD_PID"
wait "$EGRESSD_PID"
DNS_TTL=60 start_dns "$DNS_PORT" a.test=127.0.0.2
sed -i 's/  stale_ttl: 4s/  family: v6_only/' "$T/egressd.yaml"
start_egressd "$T/egressd.yaml"
get a.test | grep -q "alert internal error"
ok $? "dns.family v6_only: an IPv4-only name is refused"
wait_log "$LOG" 1 event=error name=a.test reason=dns_nxdomain
ok $? "as dns_nxdomain"

sed -i 's/  family: v6_only/  family: ipv6/' "$T/egressd.yaml"
out=$("$EGRESSD" -t -c "$T/egressd.yaml" 2>&1)
[ "$out" = "$T/egressd.yaml:7:11: dns.family must be prefer_v4, prefer_v6, v4_only or v6_only" ]
ok $? "a wrong dns.family is a configuration error at its position ($out)"

finish

#!/bin/sh
# Metrics by kind of line and by rule, against the log. Real curl through
# an http listener (keep-alive, a deny, two redirects, a client that says
# nothing), a connect listener (tunnels and a proxied GET) and a TLS
# listener, with a report-mode rule in the policy. Checked:
#  - egressd_connections_total counts connection lines only (TLS
#    connections, CONNECT tunnels), egressd_http_requests_total the HTTP
#    request lines, egressd_redirects_total the redirect lines; each equals
#    what the log holds, and together they are every line of the log;
#  - a keep-alive connection is one accepted connection and two requests;
#  - egressd_rule_hits_total has one series per rule and verdict that took
#    part in a decision (a redirect's target is not a hit), and comparing
#    `egressctl check` with those series finds exactly the rule nothing used;
#  - the scrape passes promtool check metrics.
. "$(dirname "$0")/lib.sh"
need dnsmasq curl python3 openssl promtool
: "${EGRESSCTL:=$top_builddir/egressctl}"

make_pki c.test p.test
DNS_PORT=$(free_port)
UP=$(free_port)
TUP=$(free_port)
GW=$(free_port)
TGW=$(free_port)
PX=$(free_port)
A=$(free_port)
start_dns "$DNS_PORT" a.test=127.0.0.21 b.test=127.0.0.22 c.test=127.0.0.23 \
    p.test=127.0.0.24
python3 "$top_srcdir/tests/integration/origin.py" --log "$T/origin-a.log" \
    "127.0.0.21:$UP" &
PIDS="$PIDS $!"
wait_port "127.0.0.21:$UP" 10 || bail "the HTTP origin did not listen"
python3 "$top_srcdir/tests/integration/origin.py" --tls "$T/pki/c.test.pem" \
    "$T/pki/c.test.key" --log "$T/origin-c.log" "127.0.0.23:$TUP" &
PIDS="$PIDS $!"
wait_port "127.0.0.23:$TUP" 10 || bail "the TLS origin did not listen"

LOG="$T/egressd.log"
mkdir "$T/policy.d"
cat > "$T/policy.d/10-rules.yaml" <<EOF
allow:
  - name: a-http
    hosts: [a.test]
    ports: [$UP]
  - name: c-tls
    hosts: [c.test]
    ports: [$TUP]
  - name: never-used
    hosts: [never.test]
  - name: wrong-port
    hosts: [p.test]
    ports: [1]
deny:
  - name: no-b
    hosts: [b.test]
EOF
# A trial: report-mode rules only mark what the enforced ones admit.
cat > "$T/policy.d/20-trial.yaml" <<EOF
mode: report
deny:
  - name: trial
    hosts: [c.test]
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: http, address: "127.0.0.1:$GW", protocol: http, upstream_port: $UP}
  - {name: tls, address: "127.0.0.1:$TGW", upstream_port: $TUP}
  - {name: proxy, address: "127.0.0.1:$PX", protocol: connect}
workers: 2
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
policy: {files: [policy.d], watch: false}
log: {path: egressd.log}
admin: {address: "127.0.0.1:$A"}
EOF
start_egressd "$T/egressd.yaml"

CURL="curl -sS --max-time 10"
HA="--connect-to a.test:$UP:127.0.0.1:$GW"
# http listener: two requests on one keep-alive connection; a denied one;
# two redirects (to a denied and to an allowed target), not followed; a
# client that connects and says nothing.
$CURL $HA "http://a.test:$UP/one" "http://a.test:$UP/two" >/dev/null || bail "a.test was not served"
$CURL --connect-to "b.test:$UP:127.0.0.1:$GW" "http://b.test:$UP/" >/dev/null
$CURL $HA "http://a.test:$UP/status/302?to=http://b.test:$UP/x" >/dev/null || bail "no 302"
$CURL $HA "http://a.test:$UP/status/301?to=http://a.test:$UP/y" >/dev/null || bail "no 301"
python3 -c '
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5).close()' "$GW"
# connect listener: a tunnel report mode lets through, a refused CONNECT,
# and a plain GET through the proxy.
PXY="-x http://127.0.0.1:$PX"
$CURL --cacert "$T/pki/ca.pem" $PXY "https://c.test:$TUP/" >/dev/null ||
    bail "the tunnel to c.test failed"
$CURL $PXY "https://b.test:$UP/" >/dev/null 2>&1 && bail "the tunnel to b.test was made"
$CURL $PXY "http://a.test:$UP/p" >/dev/null || bail "the proxied GET failed"
# tls listener: report mode lets c.test through; p.test is on a port its
# rule does not list.
$CURL --cacert "$T/pki/ca.pem" --connect-to "c.test:$TUP:127.0.0.1:$TGW" \
    "https://c.test:$TUP/" >/dev/null || bail "c.test was not relayed"
$CURL --cacert "$T/pki/ca.pem" --connect-to "p.test:$TUP:127.0.0.1:$TGW" \
    "https://p.test:$TUP/" >/dev/null 2>&1 && bail "p.test was relayed"

wait_log "$LOG" 4 listener=http event=allow reason=allowed &&
    wait_log "$LOG" 1 listener=http event=deny reason=denied_by_rule &&
    wait_log "$LOG" 1 listener=http event=error reason=client_closed &&
    wait_log "$LOG" 2 event=redirect &&
    wait_log "$LOG" 2 listener=proxy event=deny reason=denied_by_rule &&
    wait_log "$LOG" 1 listener=proxy event=allow reason=allowed &&
    wait_log "$LOG" 1 listener=tls would_deny=true &&
    wait_log "$LOG" 1 listener=tls reason=port_not_allowed ||
    bail "the log does not hold the expected lines"
wait_log "$LOG" 13 || bail "the log holds other lines than expected"

scrape() {
	curl -s --max-time 5 -o "$T/metrics" "http://127.0.0.1:$A/stats/prometheus"
}
metric() {
	awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"
}
expect_metric() {
	v=$(metric "$1")
	[ "$v" = "$2" ]
	ok $? "$3: $1 = $2 (got ${v:-nothing})"
}
# Denied clients linger a moment to read the answer: wait until none is open.
i=0
while [ $i -lt 100 ]; do
	scrape
	[ "$(metric egressd_connections_active)" = 0 ] && break
	sleep 0.1
	i=$((i + 1))
done
scrape

# Every series against the log: a redirect line counts by its verdict, a
# line with proto "http" is an HTTP request, any other is a connection.
python3 - "$LOG" "$T/metrics" <<'EOF' > "$T/compare.out"
import collections, json, re, sys
want = collections.Counter()
lines = 0
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["event"] == "notice":
        continue
    lines += 1
    if r["event"] == "redirect":
        want['egressd_redirects_total{listener="%s",verdict="%s"}' % (r["listener"], r["verdict"])] += 1
    else:
        fam = "egressd_http_requests_total" if r["proto"] == "http" else "egressd_connections_total"
        want['%s{listener="%s",event="%s",reason="%s"}' % (fam, r["listener"], r["event"], r["reason"])] += 1
got = collections.Counter()
for l in open(sys.argv[2]):
    if re.match(r"egressd_(connections|http_requests|redirects)_total\{", l):
        k, v = l.rsplit(" ", 1)
        got[k] = int(v)
bad = 0
for k in sorted(set(want) | set(got)):
    if want[k] != got[k]:
        print("# %s: log %d, metrics %d" % (k, want[k], got[k]))
        bad += 1
print("# %d lines, %d series, %d differ; sum of the series %d" % (lines, len(got), bad, sum(got.values())))
sys.exit(1 if bad or sum(got.values()) != lines else 0)
EOF
rc=$?
cat "$T/compare.out"
ok $rc "every connection, HTTP request and redirect series equals the log's lines, and they add up to all of them"

expect_metric 'egressd_http_requests_total{listener="http",event="allow",reason="allowed"}' 4 \
    "http: two keep-alive requests and the two that got a 3xx"
expect_metric 'egressd_http_requests_total{listener="http",event="deny",reason="denied_by_rule"}' 1 "http: b.test"
expect_metric 'egressd_http_requests_total{listener="http",event="error",reason="client_closed"}' 1 \
    "http: the line of a connection that ended before its first request"
expect_metric 'egressd_connections_accepted_total{listener="http"}' 5 \
    "http: five connections for those six lines (one kept alive)"
n=$(grep -c '^egressd_connections_total{listener="http"' "$T/metrics")
[ "$n" = 0 ]
ok $? "an http listener writes no connection lines (got $n series)"
expect_metric 'egressd_redirects_total{listener="http",verdict="deny"}' 1 "the 302 to b.test"
expect_metric 'egressd_redirects_total{listener="http",verdict="allow"}' 1 "the 301 to a.test"
expect_metric 'egressd_connections_total{listener="proxy",event="deny",reason="denied_by_rule"}' 2 \
    "proxy: the tunnel report mode let through and the refused CONNECT"
expect_metric 'egressd_http_requests_total{listener="proxy",event="allow",reason="allowed"}' 1 \
    "proxy: the plain GET"
expect_metric 'egressd_connections_total{listener="tls",event="deny",reason="denied_by_rule"}' 1 \
    "tls: the connection report mode let through"
expect_metric 'egressd_connections_total{listener="tls",event="deny",reason="port_not_allowed"}' 1 "tls: p.test"

# Rule hits. The rules' file:line as the daemon reads them (the log names
# the deciding rule the same way).
R="$T/policy.d/10-rules.yaml"
TR="$T/policy.d/20-trial.yaml"
[ "$(logq "$LOG" listener=http reason=denied_by_rule | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["rule"])')" = "$R:15" ]
ok $? "the log names no-b as $R:15"
hits() {
	expect_metric "egressd_rule_hits_total{rule=\"$1\",rule_name=\"$2\",verdict=\"$3\"}" "$4" "$5"
}
hits "$R:3" a-http allow 5 "a-http: four requests on the http listener and the proxied GET"
hits "$R:15" no-b deny 2 "no-b: the request and the CONNECT; the redirect towards b.test is no hit"
hits "$R:6" c-tls allow 2 "c-tls admitted the tunnel and the TLS connection"
hits "$TR:4" trial would_deny 2 "the report-mode rule would have denied both"
hits "$R:11" wrong-port deny 1 "wrong-port matched p.test, not its port"
n=$(grep -c '^egressd_rule_hits_total{' "$T/metrics")
[ "$n" = 5 ]
ok $? "exactly five rule series (got $n)"
expect_metric egressd_rule_hits_unlabelled_total 0 "every hit has its series"

# What a security team does (docs/operations.md, "Unused rules"): the rules
# egressctl check lists, less those with a series, are the rules nothing used.
"$EGRESSCTL" check -c "$T/egressd.yaml" > "$T/check.out" 2>&1 || bail "egressctl check failed"
sed -n 's/^\(.*:[0-9]*\): \(allow\|deny\) .*/\1/p' "$T/check.out" | sort -u > "$T/rules.txt"
sed -n 's/^egressd_rule_hits_total{rule="\([^"]*\)".*/\1/p' "$T/metrics" | sort -u > "$T/used.txt"
unused=$(comm -23 "$T/rules.txt" "$T/used.txt")
[ "$(wc -l < "$T/rules.txt")" = 6 ] && [ "$unused" = "$R:9" ]
ok $? "egressctl check's six rules less the series: only never-used ($R:9) is unused (got $unused)"

promtool check metrics < "$T/metrics" > "$T/promtool.out" 2>&1
rc=$?
sed 's/^/# promtool: /' "$T/promtool.out"
[ $rc -eq 0 ] && [ ! -s "$T/promtool.out" ]
ok $? "promtool check metrics passes with nothing to say"

stop_pid "$EGRESSD_PID"
ok $? "egressd exits 0"

finish

#!/bin/sh
# Prometheus metrics: after a known mix of allowed, denied and failed
# connections and two reloads, /stats/prometheus holds exactly those
# counts (connections by listener, event and reason; bytes equal to the
# log's sums; histograms; DNS; reloads; log lines), passes promtool's
# checks, and a real Prometheus server scraping the daemon every second
# reads the same value back through its HTTP API.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3 promtool prometheus

make_pki one.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
A=$(free_port)
P=$(free_port)
start_dns "$DNS_PORT" one.test=127.0.0.2
start_tls_www "127.0.0.2:$UP" one.test

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [one.test, missing.test]
    ports: [$UP]
    allow_private: true
deny:
  - hosts: [".blocked.test"]
EOF
# One worker: each worker has its own DNS cache, so the DNS counts below
# are exact only with one (tests/integration/drain.sh sums two workers).
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 1
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.yaml], watch: false}
log: {path: egressd.log}
admin: {address: "127.0.0.1:$A", prometheus_address: "127.0.0.1:$P"}
EOF
start_egressd "$T/egressd.yaml"

scrape() {
	curl -s --max-time 5 -o "$T/metrics" -w '%{http_code}' "http://127.0.0.1:$P/stats/prometheus"
}
# metric 'NAME{LABELS}': its value in $T/metrics (empty when absent).
metric() {
	awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"
}
# expect_metric 'NAME{LABELS}' VALUE DESCRIPTION
expect_metric() {
	v=$(metric "$1")
	[ "$v" = "$2" ]
	ok $? "$3: $1 = $2 (got ${v:-nothing})"
}

scrape >/dev/null
expect_metric 'egressd_connections_accepted_total{listener="tls"}' 0 "before any traffic"
grep -q '^egressd_connections_total{' "$T/metrics"
[ $? -ne 0 ]
ok $? "before any traffic no egressd_connections_total series is written"

CURL="curl -sS --max-time 10 --cacert $T/pki/ca.pem"
tls() {
	$CURL --connect-to "$1:$UP:127.0.0.1:$GW" "https://$1:$UP/" >/dev/null 2>&1
}
for i in 1 2 3; do
	tls one.test || bail "one.test was not relayed"
done
tls other.test && bail "other.test was relayed"
tls another.test && bail "another.test was relayed"
tls x.blocked.test && bail "x.blocked.test was relayed"
tls missing.test && bail "missing.test was relayed"
printf 'GET / HTTP/1.0\r\n\r\n' | python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(sys.stdin.buffer.read()); s.settimeout(5)
try:
    while s.recv(4096): pass
except OSError: pass' "$GW"
wait_log "$LOG" 3 event=allow reason=allowed &&
    wait_log "$LOG" 2 event=deny reason=not_allowed &&
    wait_log "$LOG" 1 event=deny reason=denied_by_rule &&
    wait_log "$LOG" 1 event=error reason=dns_nxdomain &&
    wait_log "$LOG" 1 event=deny reason=not_tls || bail "the log does not hold the expected lines"

# Denied clients linger a moment to read the alert: wait until none is open.
i=0
while [ $i -lt 100 ]; do
	scrape >/dev/null
	[ "$(metric egressd_connections_active)" = 0 ] && break
	sleep 0.1
	i=$((i + 1))
done
got=$(scrape)
[ "$got" = 200 ]
ok $? "/stats/prometheus answers 200 (got $got)"
expect_metric 'egressd_connections_total{listener="tls",event="allow",reason="allowed"}' 3 "allowed"
expect_metric 'egressd_connections_total{listener="tls",event="deny",reason="not_allowed"}' 2 "no rule"
expect_metric 'egressd_connections_total{listener="tls",event="deny",reason="denied_by_rule"}' 1 "deny rule"
expect_metric 'egressd_connections_total{listener="tls",event="error",reason="dns_nxdomain"}' 1 "NXDOMAIN"
expect_metric 'egressd_connections_total{listener="tls",event="deny",reason="not_tls"}' 1 "plain HTTP on the TLS listener"
n=$(grep -c '^egressd_connections_total{' "$T/metrics")
[ "$n" = 5 ]
ok $? "exactly those five series (got $n)"
expect_metric 'egressd_connections_accepted_total{listener="tls"}' 8 "accepted"
expect_metric 'egressd_connections_active' 0 "all closed"
sums=$(python3 -c '
import json, sys
i = o = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["event"] in ("allow", "deny", "error"):
        i += r["bytes_in"]; o += r["bytes_out"]
print(i, o)' "$LOG")
expect_metric 'egressd_bytes_received_total{listener="tls"}' "${sums% *}" "bytes from clients = the log's bytes_in"
expect_metric 'egressd_bytes_sent_total{listener="tls"}' "${sums#* }" "bytes to clients = the log's bytes_out"
# Seven decisions (not the plain HTTP one, which never got that far).
expect_metric 'egressd_client_hello_size_bytes_count{listener="tls"}' 7 "hello histogram"
expect_metric 'egressd_client_hello_size_bytes_bucket{listener="tls",le="+Inf"}' 7 "hello histogram"
expect_metric 'egressd_client_hello_size_bytes_bucket{listener="tls",le="128"}' 0 "no ClientHello is that small"
# The lines that end at the decision (deny, NXDOMAIN) received the
# ClientHello and nothing else; curl's hellos are padded to one size, so
# the seven hellos add up to seven times that.
hello=$(python3 -c '
import json, sys
sizes = {json.loads(l)["bytes_in"] for l in open(sys.argv[1])
         if json.loads(l).get("reason") in ("not_allowed", "denied_by_rule", "dns_nxdomain")}
print(sizes.pop() if len(sizes) == 1 else "")' "$LOG")
[ -n "$hello" ] || bail "the denied ClientHellos differ in size"
expect_metric 'egressd_client_hello_size_bytes_sum{listener="tls"}' $((7 * hello)) "hello sizes: 7 x $hello bytes"
expect_metric 'egressd_decision_duration_seconds_count{listener="tls"}' 7 "decision histogram"
expect_metric 'egressd_decision_duration_seconds_bucket{listener="tls",le="+Inf"}' 7 "decision histogram"
# DNS (one worker, one cache): one.test is asked once then cached twice;
# missing.test is asked once and is NXDOMAIN.
expect_metric egressd_dns_queries_total 2 "DNS"
expect_metric egressd_dns_cache_hits_total 2 "DNS"
expect_metric egressd_dns_negative_total 1 "DNS"
expect_metric egressd_dns_failures_total 0 "DNS"
expect_metric egressd_dns_stale_answers_total 0 "DNS"
# Two connections waited for a lookup (one.test the first time, missing.test);
# the cached ones did not.
expect_metric egressd_dns_lookup_duration_seconds_count 2 "DNS latency histogram"
expect_metric 'egressd_dns_lookup_duration_seconds_bucket{le="+Inf"}' 2 "DNS latency histogram"
expect_metric egressd_policy_rules 3 "policy"
expect_metric egressd_policy_generation 0 "policy"
expect_metric 'egressd_policy_reloads_total{result="ok"}' 0 "reloads"

# Reloads: one good, one broken.
echo "# reload" >> "$T/policy.yaml"
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "policy generation 1" 10 || bail "the reload did not happen"
cp "$T/policy.yaml" "$T/policy.good"
echo 'allow: [{hosts: ["*bad"]}]' > "$T/policy.yaml"
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "reload (SIGHUP) failed" 10 || bail "the broken reload was not reported"
cp "$T/policy.good" "$T/policy.yaml"
scrape >/dev/null
expect_metric 'egressd_policy_reloads_total{result="ok"}' 1 "reloads"
expect_metric 'egressd_policy_reloads_total{result="failed"}' 1 "reloads"
expect_metric egressd_policy_generation 1 "policy"
lines=$(wc -l < "$LOG")
expect_metric egressd_log_lines_total "$lines" "log lines = the lines in the file"
expect_metric egressd_log_write_failures_total 0 "log"

# Every metric has HELP and TYPE; promtool agrees the text is well formed.
python3 - "$T/metrics" <<'EOF'
import re, sys
helps, types, samples = set(), {}, set()
for line in open(sys.argv[1]):
    if line.startswith("# HELP "):
        helps.add(line.split()[2])
    elif line.startswith("# TYPE "):
        types[line.split()[2]] = line.split()[3]
    elif line.strip():
        samples.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
bad = []
for s in samples:
    base = re.sub(r"_(bucket|sum|count)$", "", s) if s not in types else s
    if base not in types or base not in helps:
        bad.append(s)
for name, t in types.items():
    if t == "counter" and not name.endswith("_total"):
        bad.append(name + " (a counter not named _total)")
for b in bad:
    print("# " + b)
sys.exit(1 if bad else 0)
EOF
ok $? "every sample has HELP and TYPE lines, and every counter is named *_total"
promtool check metrics < "$T/metrics" > "$T/promtool.out" 2>&1
rc=$?
sed 's/^/# promtool: /' "$T/promtool.out"
[ $rc -eq 0 ] && [ ! -s "$T/promtool.out" ]
ok $? "promtool check metrics passes with nothing to say"

# A real Prometheus server scraping the prometheus_address every second.
PP=$(free_port)
cat > "$T/prometheus.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: egressd
    metrics_path: /stats/prometheus
    static_configs: [{targets: ["127.0.0.1:$P"]}]
EOF
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom-data" \
    --web.listen-address="127.0.0.1:$PP" --storage.tsdb.retention.time=1h \
    >"$T/prometheus.log" 2>&1 &
PROM_PID=$!
PIDS="$PIDS $PROM_PID"
wait_port "127.0.0.1:$PP" 30 || { sed 's/^/# /' "$T/prometheus.log"; bail "prometheus did not listen"; }
# query PROMQL: the first result's value, or nothing.
query() {
	curl -s --max-time 5 -G --data-urlencode "query=$1" \
	    "http://127.0.0.1:$PP/api/v1/query" | python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")'
}
q='egressd_connections_total{job="egressd",listener="tls",event="deny",reason="not_allowed"}'
i=0
v=""
while [ $i -lt 60 ]; do
	v=$(query "$q")
	[ -n "$v" ] && break
	sleep 0.5
	i=$((i + 1))
done
[ "$v" = 2 ]
ok $? "Prometheus scraped the daemon and reads back $q = 2 (got ${v:-nothing})"
v=$(query 'up{job="egressd"}')
[ "$v" = 1 ]
ok $? "Prometheus reports the target up (got ${v:-nothing})"
v=$(query 'sum(egressd_connections_total{job="egressd"})')
[ "$v" = 8 ]
ok $? "and the sum over every series is 8 (got ${v:-nothing})"
kill "$PROM_PID"
i=0
while kill -0 "$PROM_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 "$PROM_PID" 2>/dev/null
[ $? -ne 0 ]
ok $? "the Prometheus server stopped on SIGTERM"

stop_pid "$EGRESSD_PID"
ok $? "egressd exits 0"

finish

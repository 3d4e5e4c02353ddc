#!/bin/sh
# Prometheus metrics: after a known mix of allowed, denied and failed
# connections and three reloads (good, broken, good), /stats/prometheus
# holds exactly those counts (connections by listener, event and reason;
# rule hits equal to the log's rule keys; bytes equal to the log's sums;
# histograms; DNS; reloads and whether the last one worked; log lines), the
# process_* metrics agree with /proc, every scrape passes promtool's
# checks, and a real Prometheus server scraping the daemon every second
# reads the same value back through its HTTP API. (HTTP requests and
# redirects: tests/integration/metrics_rules.sh.)
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
# promtool_ok WHEN: promtool check metrics on $T/metrics says nothing.
promtool_ok() {
	promtool check metrics < "$T/metrics" > "$T/promtool.out" 2>&1
	rc=$?
	sed 's/^/# promtool: /' "$T/promtool.out"
	[ $rc -eq 0 ] && [ ! -s "$T/promtool.out" ]
	ok $? "promtool check metrics passes with nothing to say ($1)"
}
# float_ok 'PYTHON EXPRESSION' DESCRIPTION: m("NAME") is a metric's value.
float_ok() {
	python3 - "$T/metrics" "$1" <<'EOF'
import sys
vals = {}
for line in open(sys.argv[1]):
    if line.strip() and not line.startswith("#"):
        k, v = line.rsplit(" ", 1)
        vals[k] = float(v)
def m(k):
    return vals[k]
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
	ok $? "$2"
}

scrape >/dev/null
expect_metric 'egressd_connections_accepted_total{listener="tls"}' 0 "before any traffic"
grep -q '^egressd_connections_total{' "$T/metrics"
[ $? -ne 0 ]
ok $? "before any traffic no egressd_connections_total series is written"
grep -q '^egressd_rule_hits_total{' "$T/metrics"
[ $? -ne 0 ]
ok $? "before any traffic no egressd_rule_hits_total series is written"
promtool_ok "before any traffic: series with no samples yet"
expect_metric egressd_config_last_reload_successful 1 "at start the policy loaded"
float_ok '0 <= m("egressd_start_time_seconds") - m("egressd_config_last_reload_success_timestamp_seconds") < 5' \
    "the running policy was loaded just before the daemon said it started"
# The standard process metrics, with the standard meaning. The kernel
# counts the start in ticks after a boot time given in whole seconds: up
# to a second early, never later than the daemon's own clock at start.
float_ok '0 <= m("egressd_start_time_seconds") - m("process_start_time_seconds") < 5' \
    "process_start_time_seconds is when the process started"
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$EGRESSD_PID/limits")
expect_metric process_max_fds "$soft" "the soft open-file limit in /proc/PID/limits"
expect_metric process_max_fds "$(metric egressd_open_files_limit)" "as egressd_open_files_limit"

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
n=$(grep -c '^egressd_http_requests_total{\|^egressd_redirects_total{' "$T/metrics")
[ "$n" = 0 ]
ok $? "a TLS listener writes no HTTP request or redirect series (got $n)"

# Rule hits: one series per rule and verdict the log's lines name. one.test
# three times and missing.test (admitted, then NXDOMAIN) by allow[0]; the
# deny rule once; the names no rule matches and the plain HTTP are no hit.
RULE_A=$(logq "$LOG" event=allow name=one.test | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["rule"])')
RULE_D=$(logq "$LOG" reason=denied_by_rule | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["rule"])')
[ "$RULE_A" = "$T/policy.yaml:2" ] && [ "$RULE_D" = "$T/policy.yaml:6" ]
ok $? "the log names the rules by file:line ($RULE_A, $RULE_D)"
expect_metric "egressd_rule_hits_total{rule=\"$RULE_A\",rule_name=\"allow[0]\",verdict=\"allow\"}" 4 \
    "the allow rule: three relayed, one admitted then NXDOMAIN"
expect_metric "egressd_rule_hits_total{rule=\"$RULE_D\",rule_name=\"deny[0]\",verdict=\"deny\"}" 1 "the deny rule"
n=$(grep -c '^egressd_rule_hits_total{' "$T/metrics")
[ "$n" = 2 ]
ok $? "exactly those two rule series (got $n)"
expect_metric egressd_rule_hits_unlabelled_total 0 "every hit has its series"

# The process_* metrics against /proc/PID, read around one scrape.
# procstat FIELD: a numeric field of /proc/PID/stat (proc(5) numbering).
procstat() {
	python3 -c '
import sys
s = open("/proc/%s/stat" % sys.argv[1]).read()
f = s[s.rindex(")") + 2:].split()
print(f[int(sys.argv[2]) - 3])' "$EGRESSD_PID" "$1"
}
hz=$(getconf CLK_TCK)
page=$(getconf PAGESIZE)
cpu0=$(( $(procstat 14) + $(procstat 15) ))
fds0=$(ls "/proc/$EGRESSD_PID/fd" | wc -l)
scrape >/dev/null
cpu1=$(( $(procstat 14) + $(procstat 15) ))
vsz=$(procstat 23)
rss=$(( $(procstat 24) * page ))
float_ok "$cpu0 / $hz <= m('process_cpu_seconds_total') <= $cpu1 / $hz" \
    "process_cpu_seconds_total is utime + stime ($cpu0..$cpu1 ticks at $hz Hz)"
float_ok "$fds0 <= m('process_open_fds') <= $fds0 + 2 and m('process_open_fds') == m('egressd_open_files')" \
    "process_open_fds counts /proc/PID/fd ($fds0, and the scrape's own connection)"
float_ok "0.8 * $rss <= m('process_resident_memory_bytes') <= 1.25 * $rss" \
    "process_resident_memory_bytes is rss x page size (about $rss)"
float_ok "0.8 * $vsz <= m('process_virtual_memory_bytes') <= 1.25 * $vsz" \
    "process_virtual_memory_bytes is vsize (about $vsz)"
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
T0=$(metric egressd_config_last_reload_success_timestamp_seconds)
echo "# reload" >> "$T/policy.yaml"
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "policy generation 1" 10 || bail "the reload did not happen"
scrape >/dev/null
expect_metric egressd_config_last_reload_successful 1 "after a good reload"
float_ok "m('egressd_config_last_reload_success_timestamp_seconds') > $T0" \
    "a good reload moves the success timestamp on"
T1=$(metric egressd_config_last_reload_success_timestamp_seconds)
# The rules stand where they stood: the same series go on.
expect_metric "egressd_rule_hits_total{rule=\"$RULE_A\",rule_name=\"allow[0]\",verdict=\"allow\"}" 4 \
    "a reload that keeps a rule keeps its series"
cp "$T/policy.yaml" "$T/policy.good"
echo 'allow: [{hosts: ["*bad"]}]' > "$T/policy.yaml"
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "reload (SIGHUP) failed" 10 || bail "the broken reload was not reported"
cp "$T/policy.good" "$T/policy.yaml"
scrape >/dev/null
expect_metric 'egressd_policy_reloads_total{result="ok"}' 1 "reloads"
expect_metric 'egressd_policy_reloads_total{result="failed"}' 1 "reloads"
expect_metric egressd_policy_generation 1 "policy"
expect_metric egressd_config_last_reload_successful 0 \
    "a broken reload: 0 for as long as it is the last attempt"
expect_metric egressd_config_last_reload_success_timestamp_seconds "$T1" \
    "a broken reload leaves the success timestamp where it was"
expect_metric "egressd_rule_hits_total{rule=\"$RULE_D\",rule_name=\"deny[0]\",verdict=\"deny\"}" 1 \
    "the old policy runs on, and so do its series"
# Notices say how much they matter.
grep -q '"event":"notice","level":"error","msg":"reload (SIGHUP) failed with 1 error(s)' "$LOG" &&
    grep -q '"event":"notice","level":"error","msg":"reload: [^"]*policy.yaml:1:' "$LOG" &&
    grep -q '"event":"notice","level":"info","msg":"reload (SIGHUP): policy generation 1' "$LOG"
ok $? "a failed reload and its diagnostic are error notices, a good one is info"
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
promtool_ok "after traffic and two reloads"

# A third reload, good again, without the deny rule: its series ends (the
# metrics show the running policy's rules), the allow rule's goes on.
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [one.test, missing.test]
    ports: [$UP]
    allow_private: true
EOF
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "policy generation 2" 10 || bail "the third reload did not happen"
scrape >/dev/null
expect_metric egressd_config_last_reload_successful 1 "the next good reload"
float_ok "m('egressd_config_last_reload_success_timestamp_seconds') > $T1" \
    "the success timestamp moves on again"
expect_metric egressd_policy_rules 2 "policy"
expect_metric "egressd_rule_hits_total{rule=\"$RULE_A\",rule_name=\"allow[0]\",verdict=\"allow\"}" 4 \
    "the kept rule's series"
n=$(grep -c '^egressd_rule_hits_total{' "$T/metrics")
[ "$n" = 1 ]
ok $? "the removed deny rule has no series any more (got $n series)"
promtool_ok "after the third reload"

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

#!/bin/sh
# Nothing lost from the log, whatever happens around it:
#  (a) 20,000 denied connections while the log is a pipe read slowly: one
#      deny line per denied connection, exactly, for exactly those names;
#  (b) kill -9 of the daemon in the middle of a mixed run: every connection
#      the client saw refused with an access_denied alert has its deny line,
#      with the log a file, and with the log a pipe whose reader is stalled;
#  (c) the log file moved away and SIGUSR1 during a steady stream: a new file
#      is opened, the lines of both files add up to the connections, and no
#      line is split between them.
# Each denied client uses a name of its own (d0001234.denied.test), and
# records it when it has read the 7-byte alert and then EOF.
. "$(dirname "$0")/../integration/lib.sh"
need dnsmasq openssl python3 curl
H="python3 $top_srcdir/tests/hostile/hostile.py"
READER="python3 $top_srcdir/tests/hostile/slowreader.py"
ulimit -n "$(ulimit -Hn)" 2>/dev/null

make_pki www.ok.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
A=$(free_port)
start_dns "$DNS_PORT" www.ok.test=127.42.1.2
start_tls_www "127.42.1.2:$UP" www.ok.test
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [www.ok.test]
    ports: [$UP]
    allow_private: true
EOF
# config LOGPATH: the daemon configuration, logging there.
config() {
	cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 2
max_connections: 5000
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.yaml], watch: false}
log: {path: "$1"}
admin: {address: "127.0.0.1:$A"}
timeouts: {hello: 5s, idle: 30s}
EOF
}
$H hello d0000000.denied.test "$T/template.bin" >/dev/null || bail "cannot make a ClientHello"

# the daemon with its stdout on a fifo read by a slow reader into $1
start_piped() {
	rm -f "$T/fifo"
	mkfifo "$T/fifo"
	$READER "$1" "$2" "$3" < "$T/fifo" &
	READER_PID=$!
	PIDS="$PIDS $READER_PID"
	"$EGRESSD" -c "$T/egressd.yaml" > "$T/fifo" 2>"$T/stderr" &
	EGRESSD_PID=$!
	PIDS="$PIDS $EGRESSD_PID"
	wait_for "$1" '"egressd ' 10 || bail "egressd did not start"
}

# missing NAMES LOG: names of NAMES without a deny line in LOG (count, then
# the first few)
missing() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
names = [l.strip() for l in open(sys.argv[1]) if l.strip()]
logged = set()
for l in open(sys.argv[2], errors="replace"):
    try:
        r = json.loads(l)
    except ValueError:
        continue
    if r.get("event") == "deny" and r.get("reason") == "not_allowed":
        logged.add(r["name"])
gone = [n for n in names if n not in logged]
print(len(gone), " ".join(gone[:5]))
EOF
}

# --- (a) 20,000 denied connections, log on a slow pipe -----------------------
N=20000
config "-"
start_piped "$T/a.log" 200 0.01
FLOOD_SECONDS=60 $H flood "127.0.0.1:$GW" "$T/template.bin" $N 4 "$T/a.flood" "$T/a.names"
diag "flood: $(cat "$T/a.flood")"
grep -q "^denied $N other 0 errors 0 " "$T/a.flood"
ok $? "(a) all $N clients were refused with the access_denied alert"
i=0
while [ $i -lt 300 ]; do
	n=$(grep -c '"reason":"not_allowed"' "$T/a.log")
	[ "$n" -ge $N ] && break
	sleep 0.1
	i=$((i + 1))
done
sleep 0.5
n=$(logq "$T/a.log" --count event=deny reason=not_allowed)
[ "$n" = $N ]
ok $? "(a) exactly $N deny lines came through the slow pipe (got $n)"
set -- $(missing "$T/a.names" "$T/a.log")
[ "$1" = 0 ]
ok $? "(a) every name refused has its line ($1 missing${2:+: $*})"
n=$(logq "$T/a.log" --count)
[ "$n" = $N ]
ok $? "(a) and no other connection line ($n)"
v=$(curl -s --max-time 5 "http://127.0.0.1:$A/stats/prometheus" | awk '$1 == "egressd_log_write_failures_total" { print $2 }')
[ "$v" = 0 ]
ok $? "(a) egressd_log_write_failures_total 0 (got $v)"
stop_pid "$EGRESSD_PID"
ok $? "(a) SIGTERM: exit 0"
wait "$READER_PID"

# --- (b) kill -9 in the middle of a mixed run, log to a file ------------------
config egressd.log
LOG="$T/egressd.log"
start_egressd "$T/egressd.yaml"
: > "$T/b.names"
$H probe "127.0.0.1:$GW" www.ok.test "$T/pki/ca.pem" 200 0 "$T/b.probe" &
PROBE=$!
PIDS="$PIDS $PROBE"
FLOOD_STOP_FILE="$T/b.stop" FLOOD_SECONDS=30 FLOOD_TIMEOUT=3 $H flood "127.0.0.1:$GW" "$T/template.bin" 100000 4 \
    "$T/b.flood" "$T/b.names" &
FLOOD=$!
PIDS="$PIDS $FLOOD"
i=0
while [ $i -lt 200 ] && [ "$(wc -l < "$T/b.names" 2>/dev/null || echo 0)" -lt 3000 ]; do
	sleep 0.05
	i=$((i + 1))
done
kill -9 "$EGRESSD_PID"
wait "$EGRESSD_PID" 2>/dev/null
touch "$T/b.stop"
wait "$FLOOD"
kill "$PROBE" 2>/dev/null
wait "$PROBE" 2>/dev/null
diag "flood: $(cat "$T/b.flood"); allowed clients served before the kill: $(grep -c '^ok' "$T/b.probe")"
nd=$(wc -l < "$T/b.names")
[ "$nd" -ge 1000 ]
ok $? "(b) the kill came in the middle of the run ($nd clients refused before it)"
set -- $(missing "$T/b.names" "$LOG")
[ "$1" = 0 ]
ok $? "(b) log file: each of the $nd refused clients has its deny line ($1 missing${2:+: $*})"
python3 - "$LOG" <<'EOF'
import json, sys
for l in open(sys.argv[1]):
    json.loads(l)
EOF
ok $? "(b) log file: every line is whole JSON"

# The same with the log on a pipe whose reader stops: the workers block in
# the write (waiting, never dropping); a client must still never see the
# alert of a connection whose line is not written yet.
config "-"
start_piped "$T/b2.log" 1000000 0
kill -STOP "$READER_PID"
FLOOD_SECONDS=4 FLOOD_TIMEOUT=2 $H flood "127.0.0.1:$GW" "$T/template.bin" 5000 2 \
    "$T/b2.flood" "$T/b2.names"
kill -9 "$EGRESSD_PID"
wait "$EGRESSD_PID" 2>/dev/null
kill -CONT "$READER_PID"
wait "$READER_PID"
diag "flood: $(cat "$T/b2.flood")"
nd=$(wc -l < "$T/b2.names")
set -- $(missing "$T/b2.names" "$T/b2.log")
[ "$1" = 0 ] && [ "$nd" -gt 0 ]
ok $? "(b) stalled log pipe: each of the $nd refused clients has its deny line ($1 missing${2:+: $*})"

# --- (c) the log file moved away, SIGUSR1, during a steady stream ------------
config egressd.log
rm -f "$LOG"
start_egressd "$T/egressd.yaml"
N=10000
: > "$T/c.names"
FLOOD_SECONDS=60 $H flood "127.0.0.1:$GW" "$T/template.bin" $N 2 "$T/c.flood" "$T/c.names" &
FLOOD=$!
PIDS="$PIDS $FLOOD"
i=0
while [ $i -lt 400 ] && [ "$(wc -l < "$T/c.names" 2>/dev/null || echo 0)" -lt 3000 ]; do
	sleep 0.05
	i=$((i + 1))
done
mv "$LOG" "$LOG.1"
kill -USR1 "$EGRESSD_PID"
wait "$FLOOD"
diag "flood: $(cat "$T/c.flood")"
grep -q "^denied $N other 0 errors 0 " "$T/c.flood"
ok $? "(c) all $N clients were refused with the alert"
i=0
while [ $i -lt 100 ]; do
	n1=$(logq "$LOG.1" --count 2>/dev/null)
	n2=$(logq "$LOG" --count 2>/dev/null)
	[ $((n1 + n2)) -ge $N ] && break
	sleep 0.1
	i=$((i + 1))
done
[ -s "$LOG" ] && [ "$n2" -gt 0 ] && [ "$n1" -gt 0 ]
ok $? "(c) SIGUSR1 opened a new file, and both are in use ($n1 lines in the moved file, $n2 in the new one)"
[ $((n1 + n2)) = $N ]
ok $? "(c) the connection lines of both files add up to $N (got $((n1 + n2)))"
cat "$LOG.1" "$LOG" > "$T/c.all"
set -- $(missing "$T/c.names" "$T/c.all")
[ "$1" = 0 ]
ok $? "(c) every refused name is in one of them ($1 missing${2:+: $*})"
python3 - "$LOG.1" "$LOG" <<'EOF'
import json, sys
bad = 0
for f in sys.argv[1:]:
    data = open(f, "rb").read()
    if data and not data.endswith(b"\n"):
        bad += 1
    for l in data.splitlines():
        try:
            json.loads(l)
        except ValueError:
            bad += 1
sys.exit(bad != 0)
EOF
ok $? "(c) no line is split between the files: every line of both is whole JSON, each file ends with a newline"
stop_pid "$EGRESSD_PID"
ok $? "(c) SIGTERM: exit 0"

finish

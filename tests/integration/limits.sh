#!/bin/sh
# The open-file limit: at start egressd raises the soft RLIMIT_NOFILE to
# what max_connections needs (2 per connection + its own), up to the hard
# limit, and says so when the hard limit is lower; below a minimum it
# refuses to start. Run out of descriptors (prlimit 64:64), accepting
# pauses with an "overloaded" line instead of failing, and resumes once
# connections close.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3 prlimit

make_pki one.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
A=$(free_port)
start_dns "$DNS_PORT" one.test=127.0.0.2
start_tls_www "127.0.0.2:$UP" one.test

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [one.test]
    ports: [$UP]
    allow_private: true
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 1
max_connections: 1000
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.yaml], watch: false}
log: {path: egressd.log}
admin: {address: "127.0.0.1:$A"}
timeouts: {hello: 30s}
EOF
# 1 worker, 1 listener: 24 + (8 + 2 x 8 spare pipes + 1) = 49 of its own,
# 64 for admin connections (admin.max_connections), + 2 x 1000.
NEED=2113

# limited SOFT:HARD: run egressd under that limit (exec keeps the PID).
limited() {
	cat > "$T/egressd-limited" <<EOF
#!/bin/sh
exec prlimit --nofile=$1 "$REAL_EGRESSD" "\$@"
EOF
	chmod +x "$T/egressd-limited"
	EGRESSD="$T/egressd-limited"
}
REAL_EGRESSD=$EGRESSD
CURL="curl -sS --max-time 10 --cacert $T/pki/ca.pem"
get() {
	$CURL --connect-to "one.test:$UP:127.0.0.1:$GW" "https://one.test:$UP/" >/dev/null 2>&1
}
soft_limit() {
	awk '/^Max open files/ { print $4 }' "/proc/$EGRESSD_PID/limits"
}

# A soft limit below the need and a hard limit above it: raised to the need.
# (The hard limit cannot be raised here; the test's own must be enough.)
HARD=$(ulimit -Hn)
[ "$HARD" = unlimited ] || [ "$HARD" -gt "$NEED" ] || bail "the hard open-file limit ($HARD) is below $NEED"
limited "64:$HARD"
start_egressd "$T/egressd.yaml"
got=$(soft_limit)
[ "$got" = "$NEED" ]
ok $? "soft limit 64, hard $HARD: raised to what 1000 connections need, $NEED (got $got)"
grep -q '"msg":"open-file limit' "$LOG"
[ $? -ne 0 ]
ok $? "and nothing to say about it"
stop_pid "$EGRESSD_PID"

# A hard limit below the need: the soft limit goes up to it, with a notice.
: > "$LOG"
limited 64:1000
start_egressd "$T/egressd.yaml"
got=$(soft_limit)
[ "$got" = 1000 ]
ok $? "hard limit 1000: the soft limit is raised to it (got $got)"
grep -qF "open-file limit: max_connections 1000 needs $NEED descriptors (2 per connection + 49, + 64 for admin connections) but the limit is 1000 (hard 1000): about 443 connections fit" "$LOG"
ok $? "and a notice names the numbers"
stop_pid "$EGRESSD_PID"

# Below the minimum: refuse to start.
limited 32:32
"$EGRESSD" -c "$T/egressd.yaml" >"$T/min.out" 2>"$T/min.err"
rc=$?
[ $rc -eq 1 ] && grep -qF "egressd: open-file limit: the hard limit is 32; egressd needs at least 57" "$T/min.err"
ok $? "hard limit 32: exit 1, \"$(cat "$T/min.err")\""

# Out of descriptors: 64 in all. 90 idle clients (no ClientHello) take
# everything; accept pauses and says overloaded; service resumes when they
# go.
: > "$LOG"
limited 64:64
start_egressd "$T/egressd.yaml"
get
ok $? "under prlimit 64:64 a connection is relayed"
python3 - "$GW" "$T/hold.out" "$T/release" <<'EOF' &
import os, socket, sys, time
socks = []
for i in range(90):
    socks.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5))
open(sys.argv[2], "w").write("connected %d\n" % len(socks))
deadline = time.time() + 30
while not os.path.exists(sys.argv[3]) and time.time() < deadline:
    time.sleep(0.05)
for s in socks:
    s.close()
EOF
holder=$!
wait_for "$T/hold.out" "connected 90" 10 || bail "could not open 90 connections"
wait_for "$LOG" '"reason":"overloaded"' 10
ok $? "out of descriptors: an overloaded line"
n=$(logq "$LOG" --count event=error reason=overloaded listener=tls detail="Too many open files")
[ "$n" -ge 1 ]
ok $? "it says event error, reason overloaded, listener tls, Too many open files ($n such lines: one per pause)"
kill -0 "$EGRESSD_PID"
ok $? "the daemon is still running"
touch "$T/release"
wait "$holder"
i=0
while [ $i -lt 50 ]; do
	get && break
	sleep 0.2
	i=$((i + 1))
done
[ $i -lt 50 ]
ok $? "after the idle clients close, service resumes (after $i retries)"
v=$(curl -s --max-time 5 "http://127.0.0.1:$A/stats/prometheus" | awk '$1 == "egressd_accept_pauses_total" { print $2 }')
[ -n "$v" ] && [ "$v" -ge 1 ]
ok $? "egressd_accept_pauses_total counts the pauses ($v)"
v=$(curl -s --max-time 5 "http://127.0.0.1:$A/stats/prometheus" | awk '$1 == "egressd_open_files_limit" { print $2 }')
[ "$v" = 64 ]
ok $? "egressd_open_files_limit 64 (got $v)"
stop_pid "$EGRESSD_PID"
ok $? "exit 0"

finish

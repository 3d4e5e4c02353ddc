#!/bin/sh
# Nothing leaks: after a mixed run (allowed, denied, client and upstream
# resets, hello and idle timeouts, NXDOMAIN, refused upstream, garbage), the
# daemon's open descriptors return to their idle count. An ASan build must
# exit 0 on SIGTERM with LeakSanitizer silent; a normal build runs the same
# mix under valgrind --leak-check=full when valgrind is there.
. "$(dirname "$0")/../integration/lib.sh"
need dnsmasq openssl python3
H="python3 $top_srcdir/tests/hostile/hostile.py"

make_pki www.ok.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
start_dns "$DNS_PORT" www.ok.test=127.42.3.2 talk.up.test=127.42.3.3 \
    rst.up.test=127.42.3.4 stall.up.test=127.42.3.5 closed.up.test=127.42.3.9
start_tls_www "127.42.3.2:$UP" www.ok.test
$H upstreams "$UP" 127.42.3.3=talk 127.42.3.4=reset 127.42.3.5=stall &
PIDS="$PIDS $!"
for ip in 3 4 5; do
	wait_port "127.42.3.$ip:$UP" 10 || bail "the test upstream on 127.42.3.$ip did not listen"
done

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [www.ok.test, "*.up.test", nx.test]
    ports: [$UP]
    allow_private: true
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 2
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.yaml], watch: false}
log: {path: egressd.log}
admin: {address: "off"}
timeouts: {hello: 1s, idle: 1s, connect: 2s, dns: 2s}
drain: {timeout: 5s}
EOF
CA="$T/pki/ca.pem"
GWA="127.0.0.1:$GW"
$H hello d0000000.denied.test "$T/template.bin" >/dev/null || bail "cannot make a ClientHello"
$H hello www.ok.test "$T/hello.bin" >/dev/null || bail "cannot make a ClientHello"

# mixed K: K connections of each of 9 kinds; 9*K log lines.
mixed() {
	k=$1
	$H probe "$GWA" www.ok.test "$CA" "$k" 0 "$T/m.probe" &
	p1=$!
	$H slow "$GWA" "$T/hello.bin" "$k" 50 15 "$T/m.slow" &
	p2=$!
	i=0
	ps=""
	while [ $i -lt "$k" ]; do
		$H stalled "$GWA" stall.up.test wait >/dev/null &
		ps="$ps $!"
		i=$((i + 1))
	done
	FLOOD_SECONDS=30 $H flood "$GWA" "$T/template.bin" "$k" 2 "$T/m.flood"
	$H make_garbage 11 "$k" | cut -d' ' -f1 > "$T/m.garbage"
	$H garbage "$GWA" "$T/m.garbage" >/dev/null
	i=0
	while [ $i -lt "$k" ]; do
		$H client_reset "$GWA" talk.up.test >/dev/null
		$H upstream_reset "$GWA" rst.up.test >/dev/null
		$H handshake "$GWA" nx.test "$CA" normal >/dev/null
		$H handshake "$GWA" closed.up.test "$CA" normal >/dev/null
		i=$((i + 1))
	done
	# only the clients: the servers are children of this shell too
	for p in $p1 $p2 $ps; do
		wait "$p"
	done
}
# expect K: the line counts a mixed run must leave (the log is new each time)
expect() {
	k=$1
	for sel in "event=allow reason=allowed" "event=deny reason=not_allowed" \
	    "event=allow reason=client_reset" "event=allow reason=upstream_reset" \
	    "event=deny reason=hello_timeout" "event=allow reason=idle_timeout" \
	    "event=error reason=dns_nxdomain" "event=error reason=connect_failed"; do
		# shellcheck disable=SC2086
		wait_log "$LOG" "$k" $sel >/dev/null || { echo "# not $k lines: $sel"; return 1; }
	done
	n=$(logq "$LOG" --count)
	[ "$n" = $((9 * k)) ] || { echo "# $n lines, not $((9 * k))"; return 1; }
}
nfd() { ls "/proc/$EGRESSD_PID/fd" | wc -l; }
npipes() { ls -l "/proc/$EGRESSD_PID/fd" | grep -c 'pipe:'; }

# --- descriptors ---------------------------------------------------------------
K=10
start_egressd "$T/egressd.yaml"
start_fds=$(nfd)
start_pipes=$(npipes)
# warm-up: one allowed, one denied (anything opened lazily is counted idle)
$H probe "$GWA" www.ok.test "$CA" 1 0 "$T/w.probe"
FLOOD_SECONDS=10 $H flood "$GWA" "$T/template.bin" 1 1 "$T/w.flood"
wait_log "$LOG" 1 event=allow reason=allowed >/dev/null
# A worker closes its spare splice pipes after a second or two with no
# connection: the idle count is taken once they are gone (the pipes it
# had at start are its own).
i=0
while [ "$(npipes)" != "$start_pipes" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
idle=$(nfd)
: > "$LOG"
mixed $K
expect $K
ok $? "a mixed run of $K of each of 9 kinds gives $((9 * K)) lines, $K of each reason"
i=0
while [ $i -lt 50 ]; do
	now=$(nfd)
	[ "$now" = "$idle" ] && break
	sleep 0.2
	i=$((i + 1))
done
diag "open descriptors: $start_fds at start, $idle idle after a warm-up, $now after the run"
[ "$now" = "$idle" ]
ok $? "after the run the daemon's descriptors are back to the idle count ($idle, got $now)"
grep -q "ok " "$T/m.probe" && ! grep -qv "^ok " "$T/m.probe"
ok $? "every allowed client of the run was served"
kill "$EGRESSD_PID"
wait "$EGRESSD_PID"
rc=$?
[ $rc = 0 ]
ok $? "SIGTERM: exit 0 (got $rc)"

# --- leak checkers ---------------------------------------------------------------
if [ $is_asan = 1 ]; then
	if grep -q "LeakSanitizer\|AddressSanitizer\|runtime error" "$T/stderr"; then
		sed 's/^/# /' "$T/stderr" | head -40
		false
	else
		true
	fi
	ok $? "ASan build: after the mixed run, LeakSanitizer and ASan report nothing"
elif command -v valgrind >/dev/null 2>&1; then
	cat > "$T/egressd-vg" <<EOF
#!/bin/sh
exec valgrind -q --leak-check=full --error-exitcode=9 --log-file="$T/valgrind.log" "$EGRESSD" "\$@"
EOF
	chmod +x "$T/egressd-vg"
	REAL_EGRESSD=$EGRESSD
	EGRESSD="$T/egressd-vg"
	: > "$LOG"
	start_egressd "$T/egressd.yaml"
	EGRESSD=$REAL_EGRESSD
	: > "$LOG"
	mixed 2
	expect 2
	ok $? "under valgrind, a mixed run of 2 of each kind gives 18 lines"
	kill "$EGRESSD_PID"
	wait "$EGRESSD_PID"
	rc=$?
	[ $rc = 0 ] && ! [ -s "$T/valgrind.log" ]
	ok $? "valgrind --leak-check=full: exit $rc, $(grep -c . "$T/valgrind.log") lines of report"
	sed 's/^/# /' "$T/valgrind.log" | head -60
else
	echo "ok $((TAP_N + 1)) # SKIP valgrind is not installed and this is not an ASan build"
	TAP_N=$((TAP_N + 1))
fi

finish

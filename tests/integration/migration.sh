#!/bin/sh
# The migration walkthrough of docs/migration.md, end to end, step by step:
# open egress in report mode with a near-empty policy, a fixed workload of
# real clients (curl, openssl s_client, python3 ssl) towards real TLS
# servers (openssl s_server, python3 ssl), "egressctl denials --suggest"
# on the log, "egressctl check", the suggestion copied into the watched
# policy directory, no would_deny left after the reload, enforce mode (a
# restart: SIGHUP does not re-read the daemon configuration's mode), the
# same workload passing and a name outside the suggestion refused; then
# the ServiceEntry suggestion instead of the native one, admitting the same.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3 timeout
: "${EGRESSCTL:=$top_builddir/egressctl}"
[ -x "$EGRESSCTL" ] || bail "no egressctl binary at $EGRESSCTL"

NAMES="api.pay.test cdn1.assets.test cdn2.assets.test cdn3.assets.test auth.test"
make_pki $NAMES evil.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
# 127.0.0.16/28 stands for "the internet" (dns.allow_ranges below); meta.test
# is the cloud metadata address, refused whatever the mode.
start_dns "$DNS_PORT" api.pay.test=127.0.0.21 cdn1.assets.test=127.0.0.22 \
    cdn2.assets.test=127.0.0.23 cdn3.assets.test=127.0.0.24 \
    auth.test=127.0.0.25 evil.test=127.0.0.26 meta.test=169.254.169.254

# Servers: openssl s_server -www for api.pay.test, auth.test and evil.test;
# one python3 ssl server (three sockets) for the cdn names, answering
# "hello from NAME".
start_tls_www "127.0.0.21:$UP" api.pay.test
start_tls_www "127.0.0.25:$UP" auth.test
start_tls_www "127.0.0.26:$UP" evil.test
cat > "$T/server.py" <<'EOF'
import socket, ssl, sys, threading
pki, port = sys.argv[1], int(sys.argv[2])

def serve(addr, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{pki}/{name}.pem", f"{pki}/{name}.key")
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(16)
    while True:
        c, _ = ls.accept()
        c.settimeout(10)
        try:
            with ctx.wrap_socket(c, server_side=True) as t:
                req = b""
                while b"\r\n\r\n" not in req and len(req) < 8192:
                    got = t.recv(4096)
                    if not got:
                        break
                    req += got
                body = f"hello from {name}\n".encode()
                t.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: " +
                          str(len(body)).encode() + b"\r\n\r\n" + body)
        except (OSError, ssl.SSLError):
            c.close()

for i, a in enumerate(sys.argv[3:]):
    addr, name = a.split("=")
    threading.Thread(target=serve, args=(addr, name), daemon=True).start()
threading.Event().wait()
EOF
python3 "$T/server.py" "$T/pki" "$UP" 127.0.0.22=cdn1.assets.test \
    127.0.0.23=cdn2.assets.test 127.0.0.24=cdn3.assets.test \
    >"$T/pyserver.log" 2>&1 &
PIDS="$PIDS $!"
for a in 22 23 24; do
	wait_port "127.0.0.$a:$UP" 10 || bail "the python TLS server did not listen on 127.0.0.$a"
done

cat > "$T/client.py" <<'EOF'
# client.py GWPORT NAME CA: one HTTPS GET through the gateway; prints the
# response; on failure prints the error and exits 1.
import socket, ssl, sys
gw, name, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
try:
    with socket.create_connection(("127.0.0.1", gw), 10) as s:
        s.settimeout(10)
        with ctx.wrap_socket(s, server_hostname=name) as t:
            t.sendall(f"GET / HTTP/1.0\r\nHost: {name}\r\n\r\n".encode())
            data = b""
            while True:
                got = t.recv(65536)
                if not got:
                    break
                data += got
except (OSError, ssl.SSLError) as e:
    print(f"error: {e}")
    sys.exit(1)
sys.stdout.write(data.decode(errors="replace"))
EOF

# The layout of docs/migration.md: the configuration in conf/ (not watched),
# the policy directory policy.d/ (watched), the log in log/, egressctl's
# output in work/.
mkdir -p "$T/conf" "$T/policy.d" "$T/log" "$T/work"
LOG="$T/log/egressd.log"
cat > "$T/policy.d/00-base.yaml" <<'EOF'
# The allow-list starts empty: report mode lets everything through and logs
# what it would deny.
allow: []
EOF
cat > "$T/conf/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 1
mode: report
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.16/28"]
policy: {files: [../policy.d]}
log: {path: ../log/egressd.log}
admin: {address: off}
EOF
"$EGRESSD" -t -c "$T/conf/egressd.yaml" > "$T/t.out" 2>&1
ok $? "egressd -t: the report-mode configuration with an empty allow-list loads" || diag "$(cat "$T/t.out")"
start_egressd "$T/conf/egressd.yaml"

CA="$T/pki/ca.pem"
# One request per client; each checks the server certificate against the
# test CA for the name, so a success means the right server answered.
req_curl() {
	curl -sS --max-time 10 --cacert "$CA" --connect-to "$1:$UP:127.0.0.1:$GW" \
	    "https://$1:$UP/" 2>&1
}
req_s_client() {
	printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" |
	    timeout 15 openssl s_client -connect "127.0.0.1:$GW" -servername "$1" \
	    -CAfile "$CA" -verify_return_error -verify_hostname "$1" -quiet 2>&1
}
req_python() {
	timeout 15 python3 "$T/client.py" "$GW" "$1" "$CA" 2>&1
}
# What each server answers: s_server -www its status page, python its name.
expect() {
	case $1 in
	cdn*) echo "hello from $1" ;;
	*) echo "Ciphers supported in s_server binary" ;;
	esac
}
# The fixed workload: seven requests, three kinds of client, five names.
WORKLOAD="curl:api.pay.test s_client:api.pay.test curl:cdn1.assets.test
python:cdn2.assets.test s_client:cdn3.assets.test python:auth.test curl:auth.test"
# workload LABEL: runs it; one TAP line per request (the answer arrived).
workload() {
	for w in $WORKLOAD; do
		client=${w%%:*}
		name=${w#*:}
		out=$(req_$client "$name")
		printf '%s\n' "$out" | grep -qF "$(expect "$name")"
		ok $? "$1: $client gets $name through the gateway" || diag "$out"
	done
}
# since_mark FILE: the log lines after the mark (line count) into FILE.
mark() { MARK=$(wc -l < "$LOG"); }
since_mark() { tail -n +"$((MARK + 1))" "$LOG" > "$1"; }
# wait_lines N: wait until the log has N connection lines after the mark.
wait_lines() {
	i=0
	while [ $i -lt 200 ]; do
		since_mark "$T/part.log"
		[ "$(logq "$T/part.log" --count)" -ge "$1" ] && return 0
		sleep 0.05
		i=$((i + 1))
	done
	diag "wanted $1 connection lines after line $MARK; got:"
	diag "$(cat "$T/part.log")"
	return 1
}

# ------------------------------------------------------------ 1. report mode
workload "report mode"
# would_deny lines are written when the connection ends.
wait_log "$LOG" 7 event=deny reason=not_allowed would_deny=true
ok $? "report mode: seven would_deny lines (reason not_allowed), one per request"
for n in api.pay.test auth.test; do
	[ "$(logq "$LOG" --count event=deny reason=not_allowed would_deny=true name=$n port="$UP" rule=null)" = 2 ]
	ok $? "report mode: $n has two would_deny lines, no rule decided"
done
for n in cdn1.assets.test cdn2.assets.test cdn3.assets.test; do
	[ "$(logq "$LOG" --count event=deny reason=not_allowed would_deny=true name=$n port="$UP")" = 1 ]
	ok $? "report mode: $n has one would_deny line"
done
[ "$(logq "$LOG" --count event=deny would_deny=true "detail=report mode let it through; ended: allowed")" = 7 ]
ok $? "report mode: every would_deny line says the connection was let through and ended normally"
[ "$(logq "$LOG" --count event=allow)" = 0 ]
ok $? "report mode: no allow line (nothing is allowed by the empty policy)"

# Two strays an allow rule cannot fix: the cloud metadata address (report
# mode never relaxes the address guard) and a name that is not a host name.
out=$(req_curl meta.test)
printf '%s\n' "$out" | grep -qF "alert access denied"
ok $? "report mode: meta.test (169.254.169.254) is refused all the same; curl sees the alert" || diag "$out"
wait_log "$LOG" 1 event=deny reason=private_address would_deny=false name=meta.test
ok $? "report mode: a private_address deny line, would_deny false"
out=$(printf '' | timeout 15 openssl s_client -connect "127.0.0.1:$GW" -servername 'bad_name!.test' 2>&1)
wait_log "$LOG" 1 event=deny reason=malformed_hello
ok $? "report mode: a ClientHello whose server name is not a host name is malformed_hello" || diag "$out"

# ------------------------------------------------------------ 2. suggest, check
cd "$T/work" || bail "no work dir"
cp "$LOG" report.log
"$EGRESSCTL" denials report.log > denials.txt 2> denials.err
[ $? -eq 1 ]
ok $? "egressctl denials: exit 1, there were denials"
grep -qxF "9 denied connections, 7 names, 1 sources; 7 would_deny (report mode)" denials.txt
ok $? "egressctl denials: 9 denied (7 would_deny) over 7 names" || diag "$(cat denials.txt)"
grep -qxF "api.pay.test:$UP  2 denied (2 would_deny)" denials.txt && head -1 denials.txt | grep -qxF "api.pay.test:$UP  2 denied (2 would_deny)"
ok $? "egressctl denials: the largest group first, with its would_deny count" || diag "$(cat denials.txt)"

"$EGRESSCTL" denials --suggest native report.log > suggested.yaml 2>/dev/null
"$EGRESSCTL" check suggested.yaml > check.out 2>&1
ok $? "egressctl check on the native suggestion: exit 0" || diag "$(cat suggested.yaml check.out)"
grep -qxF "1 file, 3 rules, 0 errors, 0 warnings" check.out
ok $? "egressctl check: one file, three rules (two exact names, one wildcard), no warning" || diag "$(cat check.out)"
grep -qxF '  # 3 names under assets.test were denied: cdn1.assets.test, cdn2.assets.test, cdn3.assets.test' suggested.yaml &&
    grep -qxF '    hosts: ["*.assets.test"]' suggested.yaml &&
    grep -qxF '    hosts: ["api.pay.test", "auth.test"]' suggested.yaml &&
    [ "$(grep -cxF "    ports: [$UP]" suggested.yaml)" = 2 ]
ok $? "the suggestion: *.assets.test (three cdn names) and the two exact names, on the denied port" || diag "$(cat suggested.yaml)"
grep -qxF "# not suggested: meta.test:$UP (private_address, 1)" suggested.yaml &&
    grep -q "^# not suggested: .*:$UP (malformed_hello, 1)\$" suggested.yaml &&
    ! grep -q '^[^#]*meta\.test' suggested.yaml && ! grep -q '^[^#]*bad_name' suggested.yaml
ok $? "private_address and malformed_hello denials are listed apart, never suggested" || diag "$(cat suggested.yaml)"
! grep -q 'evil\.test' suggested.yaml
ok $? "evil.test was never requested, so it is not in the suggestion"

# ------------------------------------------------------------ 3. into the policy, reload by the file watch
cp suggested.yaml "$T/policy.d/.50-suggested.yaml.tmp" &&
    mv "$T/policy.d/.50-suggested.yaml.tmp" "$T/policy.d/50-suggested.yaml"
"$EGRESSCTL" check --quiet -c "$T/conf/egressd.yaml" > check.out 2>&1
ok $? "egressctl check -c: the configuration with the suggestion loads" || diag "$(cat check.out)"
wait_for "$LOG" '"msg":"reload (files changed): policy generation 1, 3 rules"'
ok $? "the file watch reloads: policy generation 1, 3 rules" || diag "$(grep notice "$LOG")"
mark
workload "after the reload"
wait_lines 7
since_mark "$T/part.log"
[ "$(logq "$T/part.log" --count event=deny)" = 0 ]
ok $? "after the reload: zero deny (and zero would_deny) lines" || diag "$(cat "$T/part.log")"
[ "$(logq "$T/part.log" --count event=allow reason=allowed would_deny=false)" = 7 ]
ok $? "after the reload: seven allow lines" || diag "$(cat "$T/part.log")"
[ "$(logq "$T/part.log" --count event=allow rule_name=suggested-1)" = 3 ] &&
    [ "$(logq "$T/part.log" --count event=allow rule_name=suggested-2)" = 4 ]
ok $? "after the reload: the suggested rules decide (wildcard: 3, exact names: 4)" || diag "$(cat "$T/part.log")"
"$EGRESSCTL" denials "$T/part.log" > since.txt 2>/dev/null
[ $? -eq 0 ] && grep -qxF "0 denied connections, 0 names, 0 sources; 0 would_deny (report mode)" since.txt
ok $? "egressctl denials on the log since the reload: nothing, exit 0" || diag "$(cat since.txt)"

# ------------------------------------------------------------ 4. enforce
sed -i 's/^mode: report$/mode: enforce/' "$T/conf/egressd.yaml"
# SIGHUP reloads the policy files, not the daemon configuration: the
# configuration's mode (what applies to names no rule admits) needs a restart.
mark
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" '"msg":"reload (SIGHUP): policy generation 2, 3 rules"'
ok $? "SIGHUP: policy generation 2"
out=$(req_curl evil.test)
printf '%s\n' "$out" | grep -qF "Ciphers supported in s_server binary"
ok $? "after SIGHUP the daemon is still in report mode: evil.test gets through" || diag "$out"
wait_log "$LOG" 1 event=deny reason=not_allowed would_deny=true name=evil.test
ok $? "and is logged as would_deny"
kill -TERM "$EGRESSD_PID"
wait "$EGRESSD_PID"
ok $? "SIGTERM: egressd drains and exits 0"
mark
start_egressd "$T/conf/egressd.yaml"
workload "enforce mode"
wait_lines 7
since_mark "$T/part.log"
[ "$(logq "$T/part.log" --count event=deny)" = 0 ] &&
    [ "$(logq "$T/part.log" --count event=allow reason=allowed)" = 7 ]
ok $? "enforce mode: seven allow lines, zero deny lines" || diag "$(cat "$T/part.log")"
out=$(req_curl evil.test)
rc=$?
[ $rc -eq 35 ] && printf '%s\n' "$out" | grep -qF "tlsv1 alert access denied"
ok $? "enforce mode: curl to evil.test fails with 'tlsv1 alert access denied' (exit 35)" || diag "exit $rc: $out"
out=$(req_python evil.test)
[ $? -eq 1 ] && printf '%s\n' "$out" | grep -qF "ALERT_ACCESS_DENIED"
ok $? "enforce mode: python3 ssl to evil.test fails with ALERT_ACCESS_DENIED" || diag "$out"
wait_log "$LOG" 2 event=deny reason=not_allowed would_deny=false name=evil.test rule=null
ok $? "enforce mode: two deny lines for evil.test, reason not_allowed, would_deny false"
since_mark "$T/part.log"
[ "$(logq "$T/part.log" --count event=deny)" = 2 ]
ok $? "enforce mode: evil.test's are the only deny lines" || diag "$(cat "$T/part.log")"
"$EGRESSCTL" explain -c "$T/conf/egressd.yaml" --port "$UP" evil.test > ex.out 2>&1
[ $? -eq 1 ] && grep -qxF "reason: not_allowed" ex.out && ! grep -q '^would_deny:' ex.out
ok $? "egressctl explain evil.test: denied (exit 1), not_allowed, enforced" || diag "$(cat ex.out)"

# ------------------------------------------------------------ 5. the ServiceEntry suggestion instead
"$EGRESSCTL" denials --suggest serviceentry report.log > se.yaml 2>/dev/null
"$EGRESSCTL" check se.yaml > check.out 2>&1
ok $? "egressctl check on the ServiceEntry suggestion: exit 0" || diag "$(cat se.yaml check.out)"
grep -q "allow \*\.assets\.test (suggested-1, ServiceEntry):.*; ports $UP; resolution none;" check.out &&
    grep -q "allow api\.pay\.test (suggested-2, ServiceEntry):.*; ports $UP; resolution dns;" check.out &&
    grep -q "allow auth\.test (suggested-2, ServiceEntry):.*; ports $UP; resolution dns;" check.out
ok $? "ServiceEntries: resolution NONE for *.assets.test, DNS for the exact names" || diag "$(cat check.out)"
mark
cp se.yaml "$T/policy.d/.50-suggested.yaml.tmp" &&
    mv "$T/policy.d/.50-suggested.yaml.tmp" "$T/policy.d/50-suggested.yaml"
i=0
while [ $i -lt 100 ]; do
	since_mark "$T/part.log"
	grep -qF '"msg":"reload (files changed): policy generation 1, 3 rules"' "$T/part.log" && break
	sleep 0.1
	i=$((i + 1))
done
grep -qF '"msg":"reload (files changed): policy generation 1, 3 rules"' "$T/part.log"
ok $? "the ServiceEntry file replaces the native one: reloaded, 3 rules" || diag "$(cat "$T/part.log")"
for n in $NAMES; do
	"$EGRESSCTL" explain -c "$T/conf/egressd.yaml" --port "$UP" "$n" > ex.out 2>&1
	ok $? "explain $n with the ServiceEntries: allowed (exit 0)" || diag "$(cat ex.out)"
done
"$EGRESSCTL" explain -c "$T/conf/egressd.yaml" --port "$UP" evil.test > ex.out 2>&1
[ $? -eq 1 ]
ok $? "explain evil.test with the ServiceEntries: still denied (exit 1)" || diag "$(cat ex.out)"
mark
workload "ServiceEntries, enforce mode"
wait_lines 7
since_mark "$T/part.log"
[ "$(logq "$T/part.log" --count event=deny)" = 0 ] &&
    [ "$(logq "$T/part.log" --count event=allow reason=allowed)" = 7 ] &&
    [ "$(logq "$T/part.log" --count event=allow rule_name=suggested-1)" = 3 ]
ok $? "ServiceEntries: the same seven requests allowed, zero deny lines" || diag "$(cat "$T/part.log")"
out=$(req_curl evil.test)
[ $? -eq 35 ]
ok $? "ServiceEntries: evil.test still refused" || diag "$out"

kill -TERM "$EGRESSD_PID"
wait "$EGRESSD_PID"
ok $? "egressd exits 0 on SIGTERM"
finish

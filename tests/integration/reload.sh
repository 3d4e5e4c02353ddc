#!/bin/sh
# Hot reload under load: 50 policy changes through the file watcher (files
# replaced by rename, as editors and ConfigMap updates do), alternating
# valid and broken files, while a client loop keeps connecting and one
# relayed connection stays open across all of them.
# Zero failed allowed connections, zero relayed connections cut, and after
# each step exactly the expected names are admitted.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki a.test b.test long.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
start_dns "$DNS_PORT" a.test=127.0.0.2 b.test=127.0.0.3 long.test=127.0.0.4
start_tls_www "127.0.0.2:$UP" a.test
start_tls_www "127.0.0.3:$UP" b.test
# s_server -www serves one connection at a time: the long connection gets
# its own server so it does not hold up the client loop.
start_tls_www "127.0.0.4:$UP" long.test

LOG="$T/egressd.log"
mkdir "$T/policy.d" "$T/staging"
valid() {
	# valid '"a.test"' or valid '"a.test", "b.test"'; long.test always
	printf 'allow:\n  - hosts: ["long.test", %s]\n    ports: [%s]\n    allow_private: true\n' "$1" "$UP"
}
valid '"a.test"' > "$T/policy.d/allow.yaml"
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 2
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.d]}
log: {path: egressd.log}
EOF
start_egressd "$T/egressd.yaml"

# The client loop: a.test is admitted by every valid policy, so every one
# of its handshakes must succeed, whatever the reloads do. Bounded: it
# stops at the stop file, after 3000 connections, or after 180 s.
python3 - "$GW" "$T/pki/ca.pem" "$T/stop" "$T/loop.out" <<'EOF' &
import os, socket, ssl, sys, time
gw, ca, stop, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ok = fail = 0
deadline = time.time() + 180
while not os.path.exists(stop) and ok + fail < 3000 and time.time() < deadline:
    try:
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", gw), 5),
                             server_hostname="a.test") as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            if b"s_server" in data:
                ok += 1
            else:
                fail += 1
    except (OSError, ssl.SSLError) as e:
        fail += 1
        print("failed:", e, file=sys.stderr)
    time.sleep(0.02)
open(out, "w").write("%d %d\n" % (ok, fail))
EOF
LOOP=$!
PIDS="$PIDS $LOOP"

# One connection relayed across all the reloads (to long.test, admitted
# by every valid policy).
python3 - "$GW" "$T/pki/ca.pem" "$T/stop" "$T/long.out" <<'EOF' &
import os, socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5),
                    server_hostname="long.test")
open(sys.argv[4], "w").write("connected\n")
deadline = time.time() + 180
while not os.path.exists(sys.argv[3]) and time.time() < deadline:
    time.sleep(0.1)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
open(sys.argv[4], "a").write("survived %s\n" % (b"s_server" in data))
EOF
LONG=$!
PIDS="$PIDS $LONG"
wait_for "$T/long.out" connected 10 || bail "the long connection did not connect"

admitted() {
	curl -sS --max-time 10 --cacert "$T/pki/ca.pem" \
	    --connect-to "$1:$UP:127.0.0.1:$GW" "https://$1:$UP/" >/dev/null 2>&1
}
reloads() {
	grep -c '"msg":"reload (files changed)' "$LOG"
}

step_fail=0
b_allowed=0
for i in $(seq 1 50); do
	case $((i % 4)) in
	1) valid '"a.test", "b.test"' > "$T/staging/allow.yaml"; b_allowed=1 ;;
	3) valid '"a.test"' > "$T/staging/allow.yaml"; b_allowed=0 ;;
	*) printf 'allow:\n  - hosts: ["a.test"\n' > "$T/staging/allow.yaml" ;;  # broken YAML
	esac
	mv "$T/staging/allow.yaml" "$T/policy.d/allow.yaml"
	n=0
	while [ "$(reloads)" -lt "$i" ] && [ $n -lt 200 ]; do
		sleep 0.05
		n=$((n + 1))
	done
	if [ "$(reloads)" -ne "$i" ]; then
		diag "step $i: expected $i reloads, log has $(reloads)"
		step_fail=$((step_fail + 1))
		continue
	fi
	admitted a.test || { diag "step $i: a.test refused"; step_fail=$((step_fail + 1)); }
	if admitted b.test; then got=1; else got=0; fi
	[ $got -eq $b_allowed ] || { diag "step $i: b.test admitted=$got, expected $b_allowed"; step_fail=$((step_fail + 1)); }
done
[ $step_fail -eq 0 ]
ok $? "50 reloads by file change: after each, exactly the expected names are admitted ($step_fail bad steps)"
okn=$(grep -c 'reload (files changed): policy generation' "$LOG")
badn=$(grep -c 'reload (files changed) failed' "$LOG")
[ "$okn" -eq 25 ] && [ "$badn" -eq 25 ]
ok $? "25 reloads took effect and 25 broken ones were refused (got $okn and $badn)"
grep -q '"msg":"reload: [^"]*allow.yaml:[0-9]*:[0-9]*: ' "$LOG"
ok $? "a refused reload names the broken file and position in the log"

touch "$T/stop"
wait "$LOOP"
wait "$LONG"
read -r good bad < "$T/loop.out"
[ "$bad" -eq 0 ] && [ "$good" -gt 50 ]
ok $? "the client loop: $good connections to an always-allowed name, $bad failed"
grep -q "survived True" "$T/long.out"
ok $? "a connection relayed across all 50 reloads still works at the end"
n=$(logq "$LOG" --count event=allow reason=allowed name=a.test)
[ "$n" -ge "$good" ]
ok $? "every one of them has its allow line ($n)"

finish

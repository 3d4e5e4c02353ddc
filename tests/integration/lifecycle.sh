#!/bin/sh
# Reload and drain with real traffic: SIGHUP swaps the policy (a broken one
# is refused and the running policy keeps deciding), SIGTERM lets relayed
# connections finish within the drain timeout, then exits 0.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki one.test two.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
start_dns "$DNS_PORT" one.test=127.0.0.2 two.test=127.0.0.3
start_tls_www "127.0.0.2:$UP" one.test
start_tls_www "127.0.0.3:$UP" two.test

LOG="$T/egressd.log"
mkdir "$T/policy.d"
cat > "$T/policy.d/10-one.yaml" <<EOF
allow:
  - hosts: [one.test]
    ports: [$UP]
    allow_private: true
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 2
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.d], watch: false}   # SIGHUP is what is tested here
log: {path: egressd.log}
timeouts: {drain: 3s}
EOF
start_egressd "$T/egressd.yaml"
CURL="curl -sS --max-time 10 --cacert $T/pki/ca.pem"
get() {
	$CURL --connect-to "$1:$UP:127.0.0.1:$GW" "https://$1:$UP/" >/dev/null 2>&1
}

get one.test
ok $? "one.test is allowed by the first policy"
get two.test
[ $? -ne 0 ]
ok $? "two.test is not"

# A good reload: a second file in the directory.
cat > "$T/policy.d/20-two.yaml" <<EOF
allow:
  - hosts: [two.test]
    ports: [$UP]
    allow_private: true
EOF
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "policy generation 1" 10
ok $? "SIGHUP: the log announces policy generation 1"
get two.test
ok $? "two.test is allowed after the reload"

# A broken reload: the running policy stays.
echo 'allow: [{hosts: ["*bad"]}]' > "$T/policy.d/30-broken.yaml"
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "reload (SIGHUP) failed" 10
ok $? "SIGHUP with a broken file: the log says the reload failed"
grep -q '30-broken.yaml:1:' "$LOG"
ok $? "and names the broken file with its position"
get one.test && get two.test
ok $? "both names are still allowed by the running policy"
rm "$T/policy.d/30-broken.yaml"

# Drain: a relayed connection in flight survives SIGTERM until it ends.
python3 - "$GW" "$T/pki/ca.pem" "$T/drain.out" <<'EOF' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))),
                    server_hostname="one.test")
open(sys.argv[3], "w").write("connected\n")
time.sleep(1.5)                      # SIGTERM arrives meanwhile
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
open(sys.argv[3], "a").write("got %d bytes %s\n" % (len(data), b"s_server" in data))
EOF
client=$!
wait_for "$T/drain.out" connected 10 || bail "drain client did not connect"
kill -TERM "$EGRESSD_PID"
wait_for "$LOG" "draining" 5
ok $? "SIGTERM: the log says the daemon is draining"
sleep 0.3
python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$GW))==0)"
ok $? "the listener is closed while draining"
wait "$client"
grep -q "True" "$T/drain.out"
ok $? "the connection in flight completed its request during the drain"
wait "$EGRESSD_PID"
rc=$?
[ $rc -eq 0 ]
ok $? "egressd exits 0 after the drain (got $rc)"

# Drain timeout: an idle connection is cut with reason draining.
start_egressd "$T/egressd.yaml"
python3 - "$GW" "$T/pki/ca.pem" "$T/idle.out" <<'EOF' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))),
                    server_hostname="two.test")
open(sys.argv[3], "w").write("connected\n")
s.settimeout(20)
try:
    s.recv(10)
except OSError:
    pass
EOF
client=$!
wait_for "$T/idle.out" connected 10 || bail "idle client did not connect"
start=$(date +%s)
kill -TERM "$EGRESSD_PID"
wait "$EGRESSD_PID"
rc=$?
took=$(( $(date +%s) - start ))
[ $rc -eq 0 ] && [ $took -ge 2 ] && [ $took -le 8 ]
ok $? "an idle connection holds the drain for the drain timeout (3 s), then exit 0 (took ${took}s, rc $rc)"
wait_log "$LOG" 1 event=allow reason=draining name=two.test
ok $? "the cut connection's line says reason draining"
wait "$client"

finish

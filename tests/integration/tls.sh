#!/bin/sh
# The TLS listener end to end with real peers on loopback: dnsmasq for DNS,
# openssl s_server as upstreams, curl / openssl s_client / python as
# clients, the real egressd in between. Asserts what users see: the bytes
# clients print, the TLS alert, and the exact log line per connection.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki api.allowed.test www.wild.test bad.wild.test loop.test down.test

DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
GW2=$(free_port)
start_dns "$DNS_PORT" api.allowed.test=127.0.0.2 www.wild.test=127.0.0.3 \
    bad.wild.test=127.0.0.3 loop.test=127.0.0.5 down.test=127.0.0.6 \
    blocked.test=127.0.0.7 late.test=127.0.0.8
start_tls_www "127.0.0.2:$UP" api.allowed.test
start_tls_www "127.0.0.3:$UP" www.wild.test

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: ["api.allowed.test", "*.wild.test", "down.test", "late.test"]
    ports: [$UP]
    allow_private: true      # the test upstreams live on loopback
  - hosts: ["loop.test"]
    ports: [$UP]
deny:
  - hosts: ["bad.wild.test"]
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - name: tls
    address: 127.0.0.1:$GW
    protocol: tls
    upstream_port: $UP
  - name: tls-other-port
    address: 127.0.0.1:$GW2
    protocol: tls
    upstream_port: 9
workers: 2
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
policy:
  files: ["policy.yaml"]
log:
  path: egressd.log
timeouts: {hello: 2s, dns: 2s, connect: 2s, idle: 30s}
EOF
start_egressd "$T/egressd.yaml"
CURL="curl -sS --max-time 10 --cacert $T/pki/ca.pem"
P="$T/policy.yaml"

# --- allowed: curl and openssl s_client complete a verified handshake ------
out=$($CURL --connect-to "api.allowed.test:$UP:127.0.0.1:$GW" "https://api.allowed.test:$UP/" 2>&1)
echo "$out" | grep -q "s_server"
ok $? "curl reaches api.allowed.test through the gateway (certificate verified by the test CA)"
wait_log "$LOG" 1 event=allow reason=allowed name=api.allowed.test port="$UP" proto=tls \
    listener=tls rule="$P:2" rule_name="allow[0]" upstream="127.0.0.2:$UP" orig_dst=null
ok $? "one allow line: rule $P:2, upstream 127.0.0.2:$UP"

out=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$GW" -servername www.wild.test \
    -CAfile "$T/pki/ca.pem" -verify_hostname www.wild.test -verify_return_error \
    -alpn h2,http/1.1 2>&1)
echo "$out" | grep -q "Verify return code: 0 (ok)"
ok $? "openssl s_client to www.wild.test (wildcard rule) verifies the real certificate"
wait_log "$LOG" 1 event=allow name=www.wild.test upstream="127.0.0.3:$UP" alpn='["h2","http/1.1"]' rule="$P:2"
ok $? "its allow line carries the ALPN list and the wildcard rule"

# --- denied names: the client sees the TLS alert, the log one deny line ----
err=$($CURL --connect-to "blocked.test:$UP:127.0.0.1:$GW" "https://blocked.test:$UP/" 2>&1)
rc=$?
[ $rc -eq 35 ] && echo "$err" | grep -q "alert access denied"
ok $? "curl to a name no rule admits fails with 'alert access denied' (rc $rc)"
diag "$err"
wait_log "$LOG" 1 event=deny reason=not_allowed name=blocked.test port="$UP" rule=null \
    upstream=null bytes_out=7 listener=tls
ok $? "exactly one deny line for blocked.test, reason not_allowed, 7 bytes (the alert) sent"

err=$($CURL --connect-to "bad.wild.test:$UP:127.0.0.1:$GW" "https://bad.wild.test:$UP/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "a deny rule beats the wildcard allow rule"
wait_log "$LOG" 1 event=deny reason=denied_by_rule name=bad.wild.test rule="$P:8" rule_name="deny[0]"
ok $? "its deny line names the deny rule $P:8"

err=$($CURL --connect-to "api.allowed.test:9:127.0.0.1:$GW2" "https://api.allowed.test:9/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "an allowed name on a port no rule admits is refused"
wait_log "$LOG" 1 event=deny reason=port_not_allowed name=api.allowed.test port=9 listener=tls-other-port
ok $? "its deny line says port_not_allowed, port 9, listener tls-other-port"

out=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$GW" -noservername 2>&1)
echo "$out" | grep -q "alert access denied"
ok $? "a client without SNI gets the access_denied alert"
wait_log "$LOG" 1 event=deny reason=no_sni name=null
ok $? "one deny line with reason no_sni and name null"

out=$(curl -sS --max-time 10 "http://127.0.0.1:$GW/" 2>&1)
echo "$out" | grep -q "expects TLS"
ok $? "plain HTTP on the TLS port gets a 400 that says the port expects TLS"
wait_log "$LOG" 1 event=deny reason=not_tls
ok $? "one deny line with reason not_tls"

# --- destination safety and upstream failures ------------------------------
err=$($CURL --connect-to "loop.test:$UP:127.0.0.1:$GW" "https://loop.test:$UP/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "an allowed name resolving to loopback without allow_private is refused"
wait_log "$LOG" 1 event=deny reason=private_address name=loop.test \
    detail="loop.test resolves to 127.0.0.5 (loopback)" upstream=null
ok $? "its deny line: private_address, with the address and its class"

err=$($CURL --connect-to "nx.wild.test:$UP:127.0.0.1:$GW" "https://nx.wild.test:$UP/" 2>&1)
echo "$err" | grep -q "alert internal error"
ok $? "an allowed name that does not exist ends with an internal_error alert"
wait_log "$LOG" 1 event=error reason=dns_nxdomain name=nx.wild.test
ok $? "its line says dns_nxdomain"

err=$($CURL --connect-to "down.test:$UP:127.0.0.1:$GW" "https://down.test:$UP/" 2>&1)
wait_log "$LOG" 1 event=error reason=connect_failed name=down.test upstream="127.0.0.6:$UP" \
    detail="Connection refused"
ok $? "an upstream that refuses gives connect_failed with the address tried"

# --- an upstream whose handshake completes after connect() has returned ------
# Its accept queue is full (one connection nobody has accepted), so the
# gateway's SYN is dropped (the kernel's ListenOverflows count says when)
# and sent again a second later, after the queue has room: the gateway's send right after connect() says EAGAIN, and the
# relay starts only when the socket becomes writable.
python3 - "127.0.0.8" "$UP" "$T/late.ready" "$T/late.sent" > "$T/late.out" 2>&1 <<'EOF' &
import os, socket, sys, time

def overflows():
    # The kernel's count of SYNs dropped at a full accept queue.
    rows = [l.split() for l in open("/proc/net/netstat") if l.startswith("TcpExt:")]
    return int(rows[1][rows[0].index("ListenOverflows")])

addr = (sys.argv[1], int(sys.argv[2]))
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(addr)
l.listen(0)
filler = socket.create_connection(addr)         # fills the accept queue
before = overflows()
open(sys.argv[3], "w").write("ready\n")
deadline = time.time() + 10
while not os.path.exists(sys.argv[4]) or overflows() == before:
    if time.time() > deadline:                  # the gateway's SYN was not dropped
        sys.exit("no SYN was dropped at the full queue")
    time.sleep(0.02)
l.accept()[0].close()
filler.close()
l.settimeout(8)
c, _ = l.accept()
c.settimeout(8)
data = b""
while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
    d = c.recv(4096)
    if not d:
        break
    data += d
c.sendall(b"late upstream: %d bytes of hello\n" % len(data))
c.close()
print("hello", len(data))
EOF
PIDS="$PIDS $!"
wait_for "$T/late.ready" ready 10 || bail "the late upstream did not start"
out=$(python3 - "$GW" "$T/late.sent" "$top_srcdir/tests/integration" <<'EOF'
import socket, ssl, sys, time
sys.path.insert(0, sys.argv[3])
from bypass_client import make_hello
hello = make_hello(ssl.create_default_context(), "late.test")
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
t = time.time()
s.sendall(hello)
open(sys.argv[2], "w").write("sent\n")
got = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    got += d
print("%d %.1f %s" % (len(hello), time.time() - t, got.decode().strip()))
EOF
)
set -- $out
[ "${5:-}" = "$1" ] && python3 -c 'import sys; sys.exit(float(sys.argv[1]) < 0.5)' "${2:-0}"
ok $? "an upstream that completes the handshake late (after $2 s) gets the whole hello ($1 bytes) and its answer arrives" || diag "$out"
wait_log "$LOG" 1 event=allow reason=allowed name=late.test upstream="127.0.0.8:$UP"
ok $? "its allow line names 127.0.0.8:$UP"

# --- what the client sends, byte by byte ------------------------------------
python3 - "$GW" <<'EOF'
import socket, sys, time
# Half a ClientHello, then silence: the gateway must close at hello_timeout.
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(bytes.fromhex("160301020001"))
s.settimeout(8)
t = time.time()
data = s.recv(100)
sys.exit(0 if data == b"" and 1.5 < time.time() - t < 6 else 1)
EOF
ok $? "a client that stalls mid-hello is closed after the hello timeout (2 s)"
wait_log "$LOG" 1 event=deny reason=hello_timeout bytes_in=6 bytes_out=0
ok $? "one deny line with reason hello_timeout"

python3 - "$GW" <<'EOF'
import socket, sys
# A handshake record that holds a ServerHello, not a ClientHello.
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(bytes.fromhex("1603010008" "0200000403030000"))
s.settimeout(5)
data = s.recv(100)
sys.exit(0 if data == bytes.fromhex("15030300020232") else 1)
EOF
ok $? "a malformed hello is answered with a decode_error alert (15 03 03 00 02 02 32)"
wait_log "$LOG" 1 event=deny reason=malformed_hello
ok $? "one deny line with reason malformed_hello"

python3 - "$GW" "$top_srcdir/tests/integration" <<'EOF'
import socket, ssl, sys
# A real ClientHello for a name no rule admits, alone and then followed by
# more bytes in the same write (100: read with the hello, the socket left
# empty; 3000: some left unread): each time the client reads the alert and
# then the end of the stream, never a reset (the gateway closes at once
# when nothing more is in flight, else it lingers and drains).
sys.path.insert(0, sys.argv[2])
from bypass_client import make_hello
hello = make_hello(ssl.create_default_context(), "blocked.test")
alert = bytes.fromhex("15030300020231")
for extra in (b"", b"x" * 100, b"x" * 3000):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(hello + extra)
    s.settimeout(5)
    got = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except OSError as e:
        print("# extra %d: %r after %r" % (len(extra), e, got))
        sys.exit(1)
    if got != alert:
        print("# extra %d: got %r" % (len(extra), got))
        sys.exit(1)
    s.close()
EOF
ok $? "a denied hello, alone or followed by 100 or 3000 more bytes: the access_denied alert, then EOF"
wait_log "$LOG" 4 event=deny reason=not_allowed name=blocked.test bytes_out=7 listener=tls
ok $? "one deny line each (four for blocked.test in all), 7 bytes out"

# --- the log as a whole --------------------------------------------------------
logq "$LOG" --schema
ok $? "every connection line has exactly the documented keys, in order"
n=$(logq "$LOG" --count)
[ "$n" -eq 16 ]
ok $? "16 connections made, 16 connection lines written (got $n)"

kill -TERM "$EGRESSD_PID"
wait "$EGRESSD_PID"
rc=$?
[ $rc -eq 0 ]
ok $? "SIGTERM with nothing in flight: exit status 0 (got $rc)"
grep -q '"egressd stopped"' "$LOG"
ok $? "the log says the daemon stopped"

# --- a DNS server that never answers -------------------------------------------
BH=$(free_port)
python3 - "$BH" "$T/bh.ready" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").write("bound\n")
time.sleep(60)   # holds the port, never reads, never answers
EOF
PIDS="$PIDS $!"
wait_for "$T/bh.ready" bound 10 || bail "the silent DNS server did not start"
sed -e "s/127.0.0.1:$DNS_PORT/127.0.0.1:$BH/" -e "s/egressd.log/egressd2.log/" \
    -e "s/dns: 2s/dns: 1s/" "$T/egressd.yaml" > "$T/egressd2.yaml"
LOG="$T/egressd2.log"
start_egressd "$T/egressd2.yaml"
err=$($CURL --connect-to "api.allowed.test:$UP:127.0.0.1:$GW" "https://api.allowed.test:$UP/" 2>&1)
echo "$err" | grep -q "alert internal error"
ok $? "with a DNS server that never answers, the client gets internal_error"
wait_log "$LOG" 1 event=error reason=dns_timeout name=api.allowed.test
ok $? "and the log says dns_timeout"

finish

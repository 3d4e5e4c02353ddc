#!/bin/sh
# The connect listener (HTTPS_PROXY / HTTP_PROXY), with real peers: dnsmasq,
# TLS and plain origin servers (origin.py), curl, openssl s_client and raw
# python clients. CONNECT is decided by the policy (names and ports);
# a refusal is a 403 with a one-line body, upstream failures are 502s;
# inside an admitted tunnel the ClientHello's SNI (or a plain request's
# Host) must be the CONNECT host (domain fronting: sni_mismatch, with a TLS
# access_denied alert); absolute-form requests are decided per request and
# reach the origin in origin-form. Every request or tunnel has one exact
# log line.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki a.test
DNS_PORT=$(free_port)
UP=$(free_port)         # TLS origin for a.test (and denied.test)
HP=$(free_port)         # plain HTTP origin for a.test
DEAD=$(free_port)       # nothing listens here
OTHER=$(free_port)      # a port no rule admits for a.test
SINK=$(free_port)       # a full accept queue: SYNs are dropped
SILENT=$(free_port)     # a DNS server that never answers
PX=$(free_port)
PX2=$(free_port)
start_dns "$DNS_PORT" a.test=127.0.0.2 denied.test=127.0.0.2 dead.test=127.0.0.2 \
    b.test=127.0.0.2 sink.test=127.0.0.2

OLOG="$T/origin.log"
HLOG="$T/plain.log"
touch "$OLOG" "$HLOG"
python3 "$top_srcdir/tests/integration/origin.py" --tls "$T/pki/a.test.pem" \
    "$T/pki/a.test.key" --log "$OLOG" "127.0.0.2:$UP" 2>"$T/origin.err" &
PIDS="$PIDS $!"
python3 "$top_srcdir/tests/integration/origin.py" --log "$HLOG" "127.0.0.2:$HP" \
    2>"$T/plain.err" &
PIDS="$PIDS $!"
# A listener with a backlog of 0 whose queue is already full: the kernel
# drops further SYNs, so a connect to it times out, on loopback.
python3 - "$SINK" <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket()
s.bind(("127.0.0.2", port))
s.listen(0)
fill = []
for i in range(3):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.2", port))
    except BlockingIOError:
        pass
    fill.append(c)
while True:
    time.sleep(60)
PY
PIDS="$PIDS $!"
python3 - "$SILENT" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    s.recvfrom(512)
PY
PIDS="$PIDS $!"
wait_port "127.0.0.2:$UP" 10 || bail "the TLS origin did not listen"
wait_port "127.0.0.2:$HP" 10 || bail "the plain origin did not listen"

cat > "$T/allow.yaml" <<EOF
allow:
  - name: a
    hosts: [a.test]
    ports: [$UP, $HP]
    allow_private: true
  - name: wild
    hosts: ["*.wild.test"]
    allow_private: true
  - name: dead
    hosts: [dead.test, sink.test]
    ports: [$DEAD, $SINK]
    allow_private: true
EOF
LOG="$T/egressd.log"
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: proxy, address: "127.0.0.1:$PX", protocol: connect}
workers: 1
admin: {address: "off"}
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
policy: {files: [allow.yaml]}
log: {path: egressd.log}
timeouts: {connect: 2s, hello: 2s}
EOF
start_egressd "$T/egressd.yaml"

# Nothing from the environment may steer curl: only what a check says.
CURL="env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY \
    -u all_proxy -u NO_PROXY -u no_proxy curl -sS --max-time 10"

# What curl offers in ALPN: h2 when it was built with HTTP/2.
if curl -V | grep -q '^Features:.* HTTP2'; then
	ALPN='["h2","http/1.1"]'
else
	ALPN='["http/1.1"]'
fi

# raw PORT REQUEST: send REQUEST (python escapes) to the gateway, print
# everything it answers until it closes (bounded).
raw() {
	timeout 20 python3 - "$@" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.settimeout(10)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
data = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except OSError as e:
    data += ("\n[%s]" % e).encode()
sys.stdout.write(data.decode("latin-1"))
PY
}

# t STATUS DESC: ok, and the status back, so that "t $? desc || diag ..."
# shows why a check failed (ok itself always succeeds).
t() {
	ok "$1" "$2"
	return "$1"
}

# The one connection line matching KEY=VALUE... must exist; show the log if not.
one() {
	logq "$LOG" --one "$@" | sed 's/^/# /'
	[ "$(logq "$LOG" --count "$@")" = 1 ]
}

# ------------------------------------------------------------ (a) a tunnel
OUT=$($CURL --proxy "http://127.0.0.1:$PX" --cacert "$T/pki/ca.pem" \
    "https://a.test:$UP/" 2>"$T/curl.err")
RC=$?
[ "$RC" -eq 0 ] && [ "$OUT" = "a.test:$UP GET / n=1" ]
t $? "curl --proxy: https://a.test through CONNECT, the origin's exact body" ||
    { diag "exit $RC, body: $OUT"; diag "$(cat "$T/curl.err")"; }
wait_log "$LOG" 1 event=allow proto=connect method=CONNECT >/dev/null
one event=allow reason=allowed listener=proxy name=a.test port="$UP" proto=connect \
    method=CONNECT url="a.test:$UP" status=200 alpn="$ALPN" rule_name=a
t $? "one allow line: proto connect, CONNECT a.test:$UP, status 200, alpn $ALPN"
logq "$LOG" event=allow proto=connect | python3 -c '
import json, sys
d = json.loads(sys.stdin.readline())
assert d["upstream"] == "127.0.0.2:%s" % sys.argv[1], d["upstream"]
assert d["bytes_in"] > 0 and d["bytes_out"] > 0, d
' "$UP"
t $? "the tunnel line names the upstream and counts bytes both ways"

# The same tunnel from a client that counts every byte on its socket: the
# line's bytes_in and bytes_out are exactly what crossed the client's side
# (the CONNECT head and the 200 included), whichever relay carried them.
COUNTS=$(python3 - "$PX" "$UP" "$T/pki/ca.pem" <<'PY'
import socket, ssl, sys
px, up, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", px))
s.settimeout(10)
head = b"CONNECT a.test:%d HTTP/1.1\r\nHost: a.test:%d\r\n\r\n" % (up, up)
s.sendall(head)
sent, resp = len(head), b""
while not resp.endswith(b"\r\n\r\n"):
    resp += s.recv(1)
recvd = len(resp)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ssl.create_default_context(cafile=ca).wrap_bio(inc, out, server_hostname="a.test")
def push():
    global sent
    d = out.read()
    if d:
        s.sendall(d)
        sent += len(d)
def pull():
    global recvd
    d = s.recv(65536)
    if not d:
        inc.write_eof()
        return False
    recvd += len(d)
    inc.write(d)
    return True
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        push()
        pull()
push()
tls.write(b"GET /count HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
push()
body = b""
while True:
    try:
        d = tls.read(65536)
        if not d:
            break
        body += d
    except ssl.SSLWantReadError:
        push()
        if not pull():
            break
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        break
push()
s.shutdown(socket.SHUT_WR)
while pull():
    pass
s.close()
print("%d %d %s" % (sent, recvd, b"GET /count" in body))
PY
)
set -- $COUNTS
wait_log "$LOG" 1 event=allow proto=connect method=CONNECT url="a.test:$UP" \
    bytes_in="${1:-x}" bytes_out="${2:-x}" >/dev/null && [ "${3:-}" = True ]
t $? "a counted tunnel: bytes_in $1 and bytes_out $2, as the client counted" ||
    diag "$(logq "$LOG" event=allow proto=connect)"
grep -q "^conn=1 n=1 GET / host=a.test:$UP body=0 sni=a.test$" "$OLOG"
t $? "the origin got the request with SNI a.test" || diag "$(cat "$OLOG")"

OUT=$(HTTPS_PROXY="http://127.0.0.1:$PX" env -u http_proxy -u https_proxy \
    -u HTTP_PROXY -u ALL_PROXY -u all_proxy -u NO_PROXY -u no_proxy \
    curl -sS --max-time 10 --cacert "$T/pki/ca.pem" "https://a.test:$UP/env" \
    2>"$T/curl.err")
RC=$?
[ "$RC" -eq 0 ] && [ "$OUT" = "a.test:$UP GET /env n=1" ]
t $? "HTTPS_PROXY in the environment: the same tunnel" ||
    { diag "exit $RC, body: $OUT"; diag "$(cat "$T/curl.err")"; }
wait_log "$LOG" 3 event=allow proto=connect method=CONNECT url="a.test:$UP" status=200
t $? "a third CONNECT line (after the counted tunnel) for the HTTPS_PROXY request"

# ------------------------------------------------------------ (b) denied
$CURL --proxy "http://127.0.0.1:$PX" --cacert "$T/pki/ca.pem" \
    "https://denied.test:$UP/" >/dev/null 2>"$T/curl.err"
RC=$?
[ "$RC" -eq 56 ] && grep -q "CONNECT tunnel failed, response 403" "$T/curl.err"
t $? "CONNECT to a name no rule admits: curl exit 56, 'CONNECT tunnel failed, response 403'" ||
    diag "exit $RC: $(cat "$T/curl.err")"
wait_log "$LOG" 1 event=deny name=denied.test >/dev/null
one event=deny reason=not_allowed listener=proxy name=denied.test port="$UP" \
    proto=connect method=CONNECT url="denied.test:$UP" status=403 rule=null upstream=null
t $? "one deny line: not_allowed, CONNECT denied.test:$UP, status 403, no upstream"

OUT=$(raw "$PX" "CONNECT denied.test:$UP HTTP/1.1\r\nHost: denied.test:$UP\r\n\r\n")
printf '%s' "$OUT" | head -1 | grep -qx "HTTP/1.1 403 Forbidden.$"
t $? "raw CONNECT: HTTP/1.1 403 Forbidden" || diag "$OUT"
[ "$(printf '%s' "$OUT" | sed '1,/^\r$/d')" = "egressd: denied.test:$UP: not_allowed" ]
t $? "raw CONNECT: the body is the one line 'egressd: denied.test:$UP: not_allowed'" ||
    diag "$OUT"
printf '%s' "$OUT" | grep -qx "Content-Length: $(printf 'egressd: denied.test:%s: not_allowed\n' "$UP" | wc -c).$"
t $? "raw CONNECT: Content-Length is the body's length" || diag "$OUT"
wait_log "$LOG" 2 event=deny reason=not_allowed name=denied.test status=403
t $? "the raw refusal has its own line"

# ------------------------------------------------------------ (f) ports
OUT=$(raw "$PX" "CONNECT a.test:$OTHER HTTP/1.1\r\nHost: a.test:$OTHER\r\n\r\n")
printf '%s' "$OUT" | head -1 | grep -qx "HTTP/1.1 403 Forbidden.$" &&
    [ "$(printf '%s' "$OUT" | sed '1,/^\r$/d')" = "egressd: a.test:$OTHER: port_not_allowed" ]
t $? "CONNECT to an allowed name on a port its rule does not list: 403 port_not_allowed" ||
    diag "$OUT"
wait_log "$LOG" 1 event=deny reason=port_not_allowed name=a.test port="$OTHER" \
    proto=connect method=CONNECT status=403
t $? "deny line: port_not_allowed, port $OTHER"
OUT=$(raw "$PX" "CONNECT x.wild.test:8443 HTTP/1.1\r\nHost: x.wild.test:8443\r\n\r\n")
printf '%s' "$OUT" | head -1 | grep -qx "HTTP/1.1 403 Forbidden.$"
t $? "a rule without ports does not admit CONNECT to 8443" || diag "$OUT"
wait_log "$LOG" 1 event=deny reason=port_not_allowed name=x.wild.test port=8443
t $? "deny line: port_not_allowed, x.wild.test:8443"

# ------------------------------------------------------------ (c) SNI != CONNECT host
before=$(wc -l < "$OLOG")
timeout 20 openssl s_client -proxy "127.0.0.1:$PX" -connect "a.test:$UP" \
    -servername evil.test -CAfile "$T/pki/ca.pem" </dev/null >"$T/s_client.out" 2>&1
grep -qi "alert access denied" "$T/s_client.out"
t $? "openssl s_client -proxy with SNI evil.test in a tunnel for a.test: TLS alert access denied" ||
    diag "$(cat "$T/s_client.out")"
wait_log "$LOG" 1 event=deny reason=sni_mismatch >/dev/null
one event=deny reason=sni_mismatch listener=proxy name=a.test port="$UP" proto=connect \
    method=CONNECT url="a.test:$UP" status=200
t $? "one deny line: sni_mismatch for the tunnel to a.test:$UP"
logq "$LOG" event=deny reason=sni_mismatch | python3 -c '
import json, sys
d = json.loads(sys.stdin.readline())["detail"]
assert "evil.test" in d and "a.test" in d, d
print("# detail: " + d)
'
t $? "its detail names both evil.test and a.test"
sleep 0.3
[ "$(wc -l < "$OLOG")" -eq "$before" ]
t $? "the origin got no request" || diag "$(cat "$OLOG")"

# The same with python's TLS through a raw CONNECT.
OUT=$(timeout 20 python3 - "$PX" "$UP" "$T/pki/ca.pem" <<'PY'
import socket, ssl, sys
px, up, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", px), 5)
s.settimeout(10)
s.sendall(("CONNECT a.test:%s HTTP/1.1\r\nHost: a.test:%s\r\n\r\n" % (up, up)).encode())
head = b""
while b"\r\n\r\n" not in head:
    b = s.recv(1)
    if not b:
        break
    head += b
print(head.split(b"\r\n")[0].decode())
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
try:
    t = ctx.wrap_socket(s, server_hostname="b.test")
    t.sendall(b"GET / HTTP/1.1\r\nHost: b.test\r\n\r\n")
    print("handshake done:", t.recv(100))
except ssl.SSLError as e:
    print("alert:", e.reason)
except OSError as e:
    print("error:", e)
PY
)
printf '%s\n' "$OUT" | grep -qx "HTTP/1.1 200 Connection established" &&
    printf '%s\n' "$OUT" | grep -qx "alert: TLSV1_ALERT_ACCESS_DENIED"
t $? "python TLS with SNI b.test through CONNECT a.test: 200, then alert access_denied" ||
    diag "$OUT"
wait_log "$LOG" 2 event=deny reason=sni_mismatch name=a.test
t $? "a second sni_mismatch line"

# The ClientHello sent with the CONNECT, in one write, and one byte at a
# time: the same refusal.
OUT=$(timeout 20 python3 - "$PX" "$UP" "$T/pki/ca.pem" <<'PY'
import socket, ssl, sys, time
px, up, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
def hello(name):
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        ctx.wrap_bio(i, o, server_hostname=name).do_handshake()
    except ssl.SSLWantReadError:
        pass
    return o.read()
conn = ("CONNECT a.test:%s HTTP/1.1\r\nHost: a.test:%s\r\n\r\n" % (up, up)).encode()
def answer(s):
    d = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            d += b
    except OSError as e:
        d += repr(e).encode()
    return d
s = socket.create_connection(("127.0.0.1", px), 5)
s.settimeout(5)
s.sendall(conn + hello("evil.test"))
print("one write:", answer(s))
s = socket.create_connection(("127.0.0.1", px), 5)
s.settimeout(5)
s.sendall(conn)
time.sleep(0.2)
for b in hello("evil.test"):
    s.send(bytes([b]))
print("bytewise:", answer(s))
PY
)
ALERT="b'HTTP/1.1 200 Connection established\\r\\n\\r\\n\\x15\\x03\\x03\\x00\\x02\\x021'"
[ "$OUT" = "one write: $ALERT
bytewise: $ALERT" ]
t $? "SNI evil.test sent with the CONNECT, or one byte at a time: 200, then the access_denied alert" ||
    diag "$OUT"
wait_log "$LOG" 3 event=deny reason=sni_mismatch name=a.test port="$UP" \
    detail="the ClientHello names evil.test; CONNECT said a.test"
t $? "two more sni_mismatch lines"

# A tunnel in which the client says nothing is closed at the hello timeout.
START=$(date +%s)
OUT=$(raw "$PX" "CONNECT a.test:$UP HTTP/1.1\r\nHost: a.test:$UP\r\n\r\n")
END=$(date +%s)
printf '%s' "$OUT" | head -1 | grep -qx "HTTP/1.1 200 Connection established.$" &&
    [ $((END - START)) -ge 1 ] && [ $((END - START)) -le 5 ]
t $? "a silent tunnel is closed at the hello timeout (2 s; took $((END - START)) s)" || diag "$OUT"
wait_log "$LOG" 1 event=deny name=a.test port="$UP" proto=connect method=CONNECT \
    reason~_timeout status=200 >/dev/null
t $? "one deny line for it (reason $(logq "$LOG" event=deny reason~_timeout | sed -n 's/.*"reason":"\([^"]*\)".*/\1/p'))"

# ------------------------------------------------------------ (d) upstream failures
OUT=$(raw "$PX" "CONNECT nx.wild.test:443 HTTP/1.1\r\nHost: nx.wild.test:443\r\n\r\n")
printf '%s' "$OUT" | head -1 | grep -qx "HTTP/1.1 502 Bad Gateway.$" &&
    printf '%s' "$OUT" | sed '1,/^\r$/d' | grep -q "^egressd: nx.wild.test:443: dns_nxdomain"
t $? "CONNECT to an NXDOMAIN name a wildcard admits: 502, body dns_nxdomain" || diag "$OUT"
wait_log "$LOG" 1 event=error reason=dns_nxdomain name=nx.wild.test port=443 proto=connect \
    method=CONNECT url=nx.wild.test:443 status=502 rule_name=wild upstream=null
t $? "an error line dns_nxdomain, status 502, rule wild"

$CURL --proxy "http://127.0.0.1:$PX" "https://dead.test:$DEAD/" >/dev/null 2>"$T/curl.err"
RC=$?
[ "$RC" -eq 56 ] && grep -q "CONNECT tunnel failed, response 502" "$T/curl.err"
t $? "CONNECT to an allowed name and port where nothing listens: curl sees 502" ||
    diag "exit $RC: $(cat "$T/curl.err")"
OUT=$(raw "$PX" "CONNECT dead.test:$DEAD HTTP/1.1\r\nHost: dead.test:$DEAD\r\n\r\n")
printf '%s' "$OUT" | head -1 | grep -qx "HTTP/1.1 502 Bad Gateway.$" &&
    printf '%s' "$OUT" | sed '1,/^\r$/d' | grep -q "^egressd: dead.test:$DEAD: connect_failed"
t $? "raw: 502 with the body line connect_failed" || diag "$OUT"
wait_log "$LOG" 2 event=error reason=connect_failed name=dead.test port="$DEAD" \
    proto=connect method=CONNECT status=502 upstream="127.0.0.2:$DEAD"
t $? "two connect_failed lines, status 502"

START=$(date +%s)
$CURL --proxy "http://127.0.0.1:$PX" "https://sink.test:$SINK/" >/dev/null 2>"$T/curl.err"
RC=$?
END=$(date +%s)
[ "$RC" -eq 56 ] && grep -q "CONNECT tunnel failed, response 504" "$T/curl.err" &&
    [ $((END - START)) -le 6 ]
t $? "CONNECT to an upstream that never completes the handshake: 504 at the connect timeout (2 s)" ||
    diag "exit $RC after $((END - START)) s: $(cat "$T/curl.err")"
wait_log "$LOG" 1 event=error reason=connect_timeout name=sink.test port="$SINK" \
    proto=connect method=CONNECT status=504
t $? "an error line connect_timeout, status 504"

# ------------------------------------------------------------ (e) absolute-form
OUT=$($CURL -x "http://127.0.0.1:$PX" "http://a.test:$HP/p?q=1" 2>"$T/curl.err")
RC=$?
[ "$RC" -eq 0 ] && [ "$OUT" = "a.test:$HP GET /p?q=1 n=1" ]
t $? "curl -x http://a.test:$HP/p?q=1: the origin's exact body" ||
    { diag "exit $RC, body: $OUT"; diag "$(cat "$T/curl.err")"; }
grep -q "^conn=[0-9]* n=1 GET /p?q=1 host=a.test:$HP body=0 sni=None$" "$HLOG"
t $? "the origin got origin-form /p?q=1 with Host a.test:$HP" || diag "$(cat "$HLOG")"
wait_log "$LOG" 1 event=allow listener=proxy name=a.test port="$HP" proto=http \
    method=GET url="http://a.test:$HP/p?q=1" status=200 rule_name=a
t $? "an allow line: proto http, GET http://a.test:$HP/p?q=1, status 200"

CODE=$($CURL -x "http://127.0.0.1:$PX" -o "$T/body" -w '%{http_code}' \
    "http://denied.test:$HP/x" 2>"$T/curl.err")
[ "$CODE" = 403 ] && printf 'egressd: denied.test:%s: not_allowed\n' "$HP" | cmp -s - "$T/body"
t $? "a denied absolute-form request: 403 and the exact body line" ||
    diag "status $CODE, body: $(cat "$T/body")"
wait_log "$LOG" 1 event=deny reason=not_allowed name=denied.test port="$HP" proto=http \
    method=GET url="http://denied.test:$HP/x" status=403
t $? "its deny line: not_allowed, GET http://denied.test:$HP/x, 403"
! grep -q "host=denied.test" "$HLOG"
t $? "the origin never saw the denied request"

# ------------------------------------------------------------ (g) plain HTTP in a tunnel
# The tunnel has its line; each request in it is then decided like one on
# an http listener, pinned to the CONNECT host: another Host is fronting.
OUT=$(raw "$PX" "CONNECT a.test:$HP HTTP/1.1\r\nHost: a.test:$HP\r\n\r\nGET /in HTTP/1.1\r\nHost: a.test:$HP\r\nConnection: close\r\n\r\n")
printf '%s' "$OUT" | head -1 | grep -qx "HTTP/1.1 200 Connection established.$" &&
    printf '%s' "$OUT" | grep -qx "a.test:$HP GET /in n=1"
t $? "plain HTTP in a tunnel with Host = the CONNECT host: passes" || diag "$OUT"
wait_log "$LOG" 1 event=allow proto=connect method=CONNECT url="a.test:$HP" status=200
t $? "the tunnel's CONNECT allow line"
wait_log "$LOG" 1 event=allow listener=proxy name=a.test port="$HP" method=GET \
    url="http://a.test:$HP/in" status=200
t $? "the request's allow line: GET http://a.test:$HP/in, 200"

n_before=$(grep -c "GET /wrong" "$HLOG")
OUT=$(raw "$PX" "CONNECT a.test:$HP HTTP/1.1\r\nHost: a.test:$HP\r\n\r\nGET /wrong HTTP/1.1\r\nHost: b.test:$HP\r\nConnection: close\r\n\r\n")
printf '%s' "$OUT" | head -1 | grep -qx "HTTP/1.1 200 Connection established.$" &&
    printf '%s' "$OUT" | grep -qx "HTTP/1.1 403 Forbidden.$" &&
    printf '%s' "$OUT" | tail -1 | grep -q "^egressd: b.test:$HP: sni_mismatch"
t $? "plain HTTP in a tunnel for another Host: 403, body sni_mismatch" || diag "$OUT"
wait_log "$LOG" 1 event=deny reason=sni_mismatch listener=proxy port="$HP" status=403 \
    "detail~b.test:$HP"
t $? "a deny line sni_mismatch, status 403, its detail naming b.test:$HP"
logq "$LOG" event=deny reason=sni_mismatch port="$HP" | grep -q '"detail":"[^"]*a\.test'
t $? "and naming the CONNECT host a.test" ||
    logq "$LOG" event=deny reason=sni_mismatch port="$HP" | sed 's/^/# /'
[ "$(grep -c "GET /wrong" "$HLOG")" -eq "$n_before" ]
t $? "the origin never saw the request for b.test"

# Every request in the tunnel, not only the first: after a request for
# a.test, one for b.test on the same tunnel is domain fronting all the same.
OUT=$(timeout 20 python3 - "$PX" "$HP" <<'PY'
import socket, sys, time
px, hp = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", px), 5)
s.settimeout(5)
s.sendall(("CONNECT a.test:%s HTTP/1.1\r\nHost: a.test:%s\r\n\r\n" % (hp, hp)).encode())
time.sleep(0.3)
s.sendall(("GET /first HTTP/1.1\r\nHost: a.test:%s\r\n\r\n" % hp).encode())
time.sleep(0.3)
s.sendall(("GET /second HTTP/1.1\r\nHost: b.test:%s\r\nConnection: close\r\n\r\n" % hp).encode())
data = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except OSError as e:
    data += ("\n[%s]" % e).encode()
sys.stdout.write(data.decode("latin-1"))
PY
)
printf '%s' "$OUT" | grep -qx "a.test:$HP GET /first n=1"
t $? "a keep-alive tunnel: the first request, for a.test, passes" || diag "$OUT"
! grep -q "GET /second host=b.test" "$HLOG" &&
    printf '%s' "$OUT" | tail -1 | grep -q "^egressd: b.test:$HP: sni_mismatch"
t $? "a keep-alive tunnel: a second request for b.test is refused (403 sni_mismatch), never forwarded" || {
	diag "BUG (gateway/http.c gh_tunnel_hello): only the first request in a plain-HTTP"
	diag "tunnel is checked; a later request with another Host passes. Client saw:"
	diag "$OUT"
	diag "origin: $(grep "GET /second" "$HLOG")"
}
wait_log "$LOG" 2 event=deny reason=sni_mismatch listener=proxy port="$HP" status=403
t $? "its deny line"

# A CONNECT inside a plain tunnel cannot open a way to another host either.
OUT=$(raw "$PX" "CONNECT a.test:$HP HTTP/1.1\r\nHost: a.test:$HP\r\n\r\nGET /ok HTTP/1.1\r\nHost: a.test:$HP\r\n\r\nCONNECT b.test:$HP HTTP/1.1\r\nHost: b.test:$HP\r\n\r\nGET /nested HTTP/1.1\r\nHost: b.test\r\n\r\n")
printf '%s' "$OUT" | grep -qx "a.test:$HP GET /ok n=1" &&
    printf '%s' "$OUT" | tail -1 | grep -q "^egressd: b.test:$HP: sni_mismatch" &&
    ! grep -q "GET /nested" "$HLOG"
t $? "a CONNECT to b.test inside a plain tunnel to a.test: 403 sni_mismatch" || diag "$OUT"
wait_log "$LOG" 1 event=deny reason=sni_mismatch method=CONNECT url="b.test:$HP" status=403
t $? "its deny line: CONNECT b.test:$HP, 403"

# ------------------------------------------------------------ the log
logq "$LOG" --schema
t $? "every line has exactly the documented keys, in order"

# ------------------------------------------------------------ a DNS server that never answers
LOG="$T/egressd2.log"
cat > "$T/egressd2.yaml" <<EOF
listeners:
  - {name: proxy2, address: "127.0.0.1:$PX2", protocol: connect}
workers: 1
admin: {address: "off"}
dns:
  servers: ["127.0.0.1:$SILENT"]
policy: {files: [allow.yaml]}
log: {path: egressd2.log}
timeouts: {dns: 1s}
EOF
start_egressd "$T/egressd2.yaml"
OUT=$(raw "$PX2" "CONNECT x.wild.test:443 HTTP/1.1\r\nHost: x.wild.test:443\r\n\r\n")
printf '%s' "$OUT" | head -1 | grep -qx "HTTP/1.1 504 Gateway Timeout.$" &&
    [ "$(printf '%s' "$OUT" | sed '1,/^\r$/d')" = "egressd: x.wild.test:443: dns_timeout" ]
t $? "CONNECT when DNS never answers: 504 Gateway Timeout, body dns_timeout" || diag "$OUT"
wait_log "$LOG" 1 event=error reason=dns_timeout name=x.wild.test port=443 proto=connect \
    method=CONNECT status=504 upstream=null
t $? "an error line dns_timeout, status 504"

finish

#!/bin/sh
# The http listener: every request decided on its own Host, keep-alive
# with upstream reuse, a Host switch on one connection (a new upstream for
# the new host, and a 403 that closes for a denied one), request and
# response bodies framed (Content-Length, chunked, HEAD), the 403 body
# line, bad requests, upstream failures as 502, report mode and the
# request timeout. Real curl and python clients, real origin servers.
. "$(dirname "$0")/lib.sh"
need dnsmasq curl python3

DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
DEAD=$(free_port)
start_dns "$DNS_PORT" a.test=127.0.0.21 b.test=127.0.0.22 c.test=127.0.0.23 \
    dead.test=127.0.0.24
for n in 21 22; do
	python3 "$top_srcdir/tests/integration/origin.py" --log "$T/origin-$n.log" \
	    "127.0.0.$n:$UP" &
	PIDS="$PIDS $!"
	wait_port "127.0.0.$n:$UP" 10 || bail "origin 127.0.0.$n did not listen"
done

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [a.test, b.test, dead.test, "*.nx.test"]
    ports: [$UP, $DEAD]
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: http, address: "127.0.0.1:$GW", protocol: http, upstream_port: $UP}
workers: 1
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
policy: {files: [policy.yaml]}
log: {path: egressd.log}
timeouts: {hello: 1s}
EOF
start_egressd "$T/egressd.yaml"
CURL="curl -sS --max-time 10"

# --- one allowed request: bytes, line ------------------------------------
out=$($CURL -H "Host: a.test" "http://127.0.0.1:$GW/hello?x=1")
[ "$out" = "a.test GET /hello?x=1 n=1" ]
ok $? "an allowed request reaches a.test and the answer comes back ($out)"
wait_log "$LOG" 1 event=allow reason=allowed listener=http name=a.test port="$UP" \
    proto=http method=GET url="http://a.test:$UP/hello?x=1" status=200 \
    upstream="127.0.0.21:$UP" chain=null
ok $? "allow line: method, absolute url, status 200, upstream"
logq "$LOG" --schema
ok $? "every line has the documented keys in order"

# --- keep-alive: two requests, one upstream connection ----------------------
: > "$T/origin-21.log"
$CURL -H "Host: a.test:$UP" "http://127.0.0.1:$GW/k1" "http://127.0.0.1:$GW/k2" \
    > "$T/k.out"
printf 'a.test:%s GET /k1 n=1\na.test:%s GET /k2 n=2\n' "$UP" "$UP" | cmp -s - "$T/k.out"
ok $? "keep-alive: both answers, the second on the same upstream (n=2)"
[ "$(cut -d' ' -f1 "$T/origin-21.log" | sort -u | wc -l)" = 1 ]
ok $? "keep-alive: the origin saw one connection for both requests"
wait_log "$LOG" 2 event=allow name=a.test url~/k
ok $? "keep-alive: one line per request"

# --- a Host switch on one client connection ----------------------------------
: > "$T/origin-21.log"
: > "$T/origin-22.log"
python3 - "$GW" > "$T/switch.out" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
def ask(host, path):
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    status = f.readline()
    n = 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        if h.lower().startswith(b"content-length:"):
            n = int(h.split(b":")[1])
    print(status.decode().strip(), "|", f.read(n).decode().strip())
ask(b"a.test", b"/s1")
ask(b"b.test", b"/s2")
ask(b"a.test", b"/s3")
ask(b"c.test", b"/s4")
print("after 403:", repr(f.read()))
EOF
cat > "$T/switch.want" <<EOF
HTTP/1.1 200 OK | a.test GET /s1 n=1
HTTP/1.1 200 OK | b.test GET /s2 n=1
HTTP/1.1 200 OK | a.test GET /s3 n=1
HTTP/1.1 403 Forbidden | egressd: c.test:$UP: not_allowed
after 403: b''
EOF
diff "$T/switch.want" "$T/switch.out" >/dev/null
ok $? "Host switch: each host answered by its own server, then 403 and close"
[ -s "$T/switch.out" ] || diag "no output"
diff "$T/switch.want" "$T/switch.out" | sed 's/^/# /'
! grep -q "b.test" "$T/origin-21.log" && ! grep -q "a.test" "$T/origin-22.log"
ok $? "no request for one host went over the other's upstream connection"
[ "$(cut -d' ' -f1 "$T/origin-21.log" | sort -u | wc -l)" = 2 ]
ok $? "back to a.test after b.test: a new upstream connection"
wait_log "$LOG" 1 event=deny reason=not_allowed name=c.test url="http://c.test:$UP/s4" \
    status=403 upstream=null method=GET
ok $? "the denied request's line: not_allowed, status 403, no upstream"

# --- the 403 body, exactly --------------------------------------------------
code=$($CURL -H "Host: c.test" "http://127.0.0.1:$GW/" -o "$T/403.out" -w '%{http_code}')
body=$(cat "$T/403.out")
[ "$code" = 403 ] && [ "$body" = "egressd: c.test:$UP: not_allowed" ] &&
    [ "$(wc -l < "$T/403.out")" = 1 ]
ok $? "403 body is one line naming host, port and reason ($body)"

# --- bodies: Content-Length and chunked uploads, chunked and HEAD answers ----
head -c 200000 /dev/urandom > "$T/upload"
: > "$T/origin-21.log"
$CURL -H "Host: a.test" --data-binary @"$T/upload" "http://127.0.0.1:$GW/up1" \
    --next -H "Host: a.test" -H "Transfer-Encoding: chunked" \
    --data-binary @"$T/upload" "http://127.0.0.1:$GW/up2" >/dev/null 2>&1
grep -q "n=1 POST /up1 host=a.test body=200000" "$T/origin-21.log" &&
    grep -q "n=2 POST /up2 host=a.test body=200000" "$T/origin-21.log"
ok $? "a Content-Length and a chunked upload of 200000 bytes arrive whole, on one connection"
$CURL -H "Host: a.test" "http://127.0.0.1:$GW/chunked" "http://127.0.0.1:$GW/big/300000" \
    "http://127.0.0.1:$GW/after" > "$T/bodies.out"
[ "$(head -2 "$T/bodies.out")" = "$(printf 'chunk one\nchunk two')" ] &&
    [ "$(wc -c < "$T/bodies.out")" = "$((20 + 300000 + $(printf 'a.test GET /after n=3\n' | wc -c)))" ]
ok $? "a chunked and a 300000-byte answer, then the next request on the same connection"
hd=$($CURL -I -H "Host: a.test" "http://127.0.0.1:$GW/h1" "http://127.0.0.1:$GW/h2" | grep -c '^HTTP/1.1 200')
[ "$hd" = 2 ]
ok $? "HEAD answers carry no body and keep the connection usable"

# --- bad requests --------------------------------------------------------------
bad=$(printf 'GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n' |
    python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.stdin.buffer.read())
print(s.recv(4096).decode().split("\r\n")[0])' "$GW")
[ "$bad" = "HTTP/1.1 400 Bad Request" ]
ok $? "two Host fields: 400 ($bad)"
wait_log "$LOG" 1 event=deny reason=bad_http status=400 detail~Host
ok $? "bad_http line with the parser's reason"

# --- upstream failures -----------------------------------------------------------
code=$($CURL -o "$T/nx.out" -w '%{http_code}' -H "Host: gone.nx.test" "http://127.0.0.1:$GW/")
[ "$code" = 502 ] && grep -q "egressd: gone.nx.test:$UP: dns_nxdomain" "$T/nx.out"
ok $? "an allowed name that does not exist: 502 dns_nxdomain"
code=$($CURL -o "$T/dead.out" -w '%{http_code}' -H "Host: dead.test:$DEAD" "http://127.0.0.1:$GW/")
[ "$code" = 502 ] && grep -q "connect_failed" "$T/dead.out"
ok $? "an allowed name with nothing listening: 502 connect_failed"
wait_log "$LOG" 1 event=error reason=connect_failed name=dead.test status=502
ok $? "connect_failed line with status 502"

# --- a request head that never ends ----------------------------------------------
python3 - "$GW" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET / HTTP/1.1\r\nHost: a.te")
t = time.time()
s.recv(100)
sys.exit(0 if 0.9 < time.time() - t < 5 else 1)
EOF
ok $? "a half request head is closed after timeouts.hello"
wait_log "$LOG" 1 event=deny reason=request_timeout
ok $? "request_timeout line"

# --- report mode: a denial is let through and logged would_deny -----------------
sed -i 's/^workers: 1$/workers: 1\nmode: report/' "$T/egressd.yaml"
kill -TERM "$EGRESSD_PID"
wait "$EGRESSD_PID"
start_egressd "$T/egressd.yaml"
out=$($CURL -H "Host: b.test" "http://127.0.0.1:$GW/r" 2>&1)
[ "$out" = "b.test GET /r n=1" ]
ok $? "report mode: an allowed name still passes"
sed -i 's/hosts: \[a.test, b.test,/hosts: [a.test,/' "$T/policy.yaml"
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "policy generation 1" || diag "no reload line"
out=$($CURL -H "Host: b.test" "http://127.0.0.1:$GW/r2" 2>&1)
[ "$out" = "b.test GET /r2 n=1" ]
ok $? "report mode: a name no rule allows passes too"
wait_log "$LOG" 1 event=deny would_deny=true reason=not_allowed name=b.test \
    url="http://b.test:$UP/r2" status=200
ok $? "... and its line says would_deny, with the status the client got"
finish

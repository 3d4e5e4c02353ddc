#!/bin/sh
# TLS origination, with real peers: the client speaks plain HTTP to the
# gateway (http listener, or absolute-form on the connect listener), the
# gateway speaks TLS to the origin (origin.py --tls), with SNI = the host,
# the chain verified against upstream_tls.ca_file and the name checked.
# One upstream TLS connection carries a client's keep-alive requests; a
# chain from another CA or a certificate for another name is refused
# (upstream_tls_failed, 502, with OpenSSL's verify error); the same rule
# from an Istio ServiceEntry + DestinationRule (tls.mode SIMPLE) works; a
# 301 from the TLS origin towards a name no rule admits is a redirect line.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki api.test api2.test svc80.test www.test
DNS_PORT=$(free_port)
UP=$(free_port)         # the TLS origin (certificate for api.test)
UP2=$(free_port)        # another TLS origin (certificate for api2.test)
HANG=$(free_port)       # accepts, never speaks
PLAIN=$(free_port)      # a plain HTTP server: answers 400 to anything, then closes
WWW=$(free_port)        # openssl s_server -www: HTTP/1.0, the body ends at close
OP=$(free_port)         # where the redirect points (nothing needed there)
GW=$(free_port)
PX=$(free_port)
start_dns "$DNS_PORT" api.test=127.0.0.2 wrong.test=127.0.0.2 other.test=127.0.0.3 \
    api2.test=127.0.0.2 hang.test=127.0.0.2 plain.test=127.0.0.2 svc80.test=127.0.0.9 \
    www.test=127.0.0.2

OLOG="$T/origin.log"
touch "$OLOG"
python3 "$top_srcdir/tests/integration/origin.py" --tls "$T/pki/api.test.pem" \
    "$T/pki/api.test.key" --log "$OLOG" "127.0.0.2:$UP" 2>"$T/origin.err" &
PIDS="$PIDS $!"
python3 "$top_srcdir/tests/integration/origin.py" --tls "$T/pki/api2.test.pem" \
    "$T/pki/api2.test.key" --log "$T/origin2.log" "127.0.0.2:$UP2" 2>"$T/origin2.err" &
PIDS="$PIDS $!"
python3 - "$PLAIN" "$T/plain.log" <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.2", int(sys.argv[1])))
s.listen(8)
while True:
    c, _ = s.accept()
    c.settimeout(5)
    try:
        first = c.recv(4096)
        with open(sys.argv[2], "a") as f:
            f.write("first byte 0x%02x\n" % first[0] if first else "nothing\n")
        c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    except OSError:
        pass
    c.close()
PY
PIDS="$PIDS $!"
python3 - "$HANG" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.2", int(sys.argv[1])))
s.listen(8)
held = []
while True:
    held.append(s.accept())
PY
PIDS="$PIDS $!"
wait_port "127.0.0.2:$UP" 10 || bail "the TLS origin did not listen"
wait_port "127.0.0.2:$UP2" 10 || bail "the second TLS origin did not listen"
wait_port "127.0.0.2:$PLAIN" 10 || bail "the plain origin did not listen"
wait_port "127.0.0.2:$HANG" 10 || bail "the silent server did not listen"
start_tls_www "127.0.0.2:$WWW" www.test

# Port 80 originates to 443: a TLS origin on 127.0.0.9:443, when that
# port is free here (the test runs as root in CI).
HAVE443=0
if python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.9", 443))' 2>/dev/null; then
	python3 "$top_srcdir/tests/integration/origin.py" --tls "$T/pki/svc80.test.pem" \
	    "$T/pki/svc80.test.key" --log "$T/origin443.log" "127.0.0.9:443" \
	    2>"$T/origin443.err" &
	P443=$!
	PIDS="$PIDS $P443"
	wait_port "127.0.0.9:443" 10 && kill -0 "$P443" 2>/dev/null && HAVE443=1
fi

# A second CA that signed nothing the origin has.
mkdir -p "$T/ca2"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/ca2/ca.key" -out "$T/ca2/ca.pem" -days 2 \
    -subj "/CN=egressd other test CA" >/dev/null 2>&1 || bail "cannot make the second CA"

cat > "$T/native.yaml" <<EOF
allow:
  - name: api
    hosts: [api.test]
    ports: [$UP]
    originate_tls: true
    allow_private: true
  - name: wrong
    hosts: [wrong.test]
    ports: [$UP]
    originate_tls: true
    allow_private: true
  - name: api2
    hosts: [api2.test]
    ports: [$UP2]
    originate_tls: true
    allow_private: true
  - name: www
    hosts: [www.test]
    ports: [$WWW]
    originate_tls: true
    allow_private: true
  - name: broken
    hosts: [hang.test, plain.test]
    ports: [$HANG, $PLAIN]
    originate_tls: true
    allow_private: true
  - name: svc80
    hosts: [svc80.test]
    ports: [80]
    originate_tls: true
    allow_private: true
EOF
cat > "$T/istio.yaml" <<EOF
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: api-test
  namespace: egress
spec:
  hosts:
  - api.test
  ports:
  - number: $UP
    name: http-port
    protocol: HTTP
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: api-test
  namespace: egress
spec:
  host: api.test
  trafficPolicy:
    tls:
      mode: SIMPLE
---
# The Istio task's shape: port 80 from the client, TLS to 443 upstream.
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: svc80
spec:
  hosts:
  - svc80.test
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
    targetPort: 443
  - number: 443
    name: https-port
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: svc80
spec:
  host: svc80.test
  trafficPolicy:
    portLevelSettings:
    - port:
        number: 80
      tls:
        mode: SIMPLE
EOF
# The first ServiceEntry alone, without its DestinationRule: no origination.
sed -n '1,/^---$/p' "$T/istio.yaml" | sed '$d' > "$T/istio-nodr.yaml"

LOG="$T/egressd.log"
# config CA POLICY: the daemon's configuration (the Istio policy has no
# allow_private: the origin's loopback address is let through by range).
# The connect timeout (TCP and the origin's TLS handshake) is 10 s, wide
# enough for a python origin on a loaded CI machine; the test of a
# handshake that never completes sets CONNECT=3s around itself.
config() {
	UPSTREAM_TLS="upstream_tls: {ca_file: $1}"
	[ "$1" = system ] && UPSTREAM_TLS=""
	cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: http, address: "127.0.0.1:$GW", protocol: http, upstream_port: 80}
  - {name: proxy, address: "127.0.0.1:$PX", protocol: connect}
workers: 1
admin: {address: "off"}
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.2/32", "127.0.0.9/32"]
$UPSTREAM_TLS
policy: {files: [$2]}
log: {path: egressd.log}
timeouts: {connect: ${CONNECT:-10s}}
EOF
}
restart() {
	kill -TERM "$EGRESSD_PID" 2>/dev/null
	wait "$EGRESSD_PID" 2>/dev/null
	start_egressd "$T/egressd.yaml"
}

# Nothing from the environment may steer curl: only what a check says.
CURL="env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY \
    -u all_proxy -u NO_PROXY -u no_proxy curl -sS --max-time 10"

# t STATUS DESC: ok, and the status back, so that "t $? desc || diag ..."
# shows why a check failed (ok itself always succeeds).
t() {
	ok "$1" "$2"
	return "$1"
}
one() {
	logq "$LOG" --one "$@" | sed 's/^/# /'
	[ "$(logq "$LOG" --count "$@")" = 1 ]
}

config pki/ca.pem native.yaml
start_egressd "$T/egressd.yaml"

# ------------------------------------------------------------ (a) plain in, TLS out
OUT=$($CURL -H "Host: api.test:$UP" "http://127.0.0.1:$GW/x" 2>"$T/curl.err")
RC=$?
[ "$RC" -eq 0 ] && [ "$OUT" = "api.test:$UP GET /x n=1" ]
t $? "http listener: plain HTTP for api.test, the TLS origin's exact body" ||
    { diag "exit $RC, body: $OUT"; diag "$(cat "$T/curl.err")"; }
grep -qx "conn=[0-9]* n=1 GET /x host=api.test:$UP body=0 sni=api.test" "$OLOG"
t $? "the origin got GET /x over TLS with SNI api.test" || diag "$(cat "$OLOG")"
wait_log "$LOG" 1 event=allow listener=http >/dev/null
one event=allow reason=allowed listener=http name=api.test port="$UP" proto=http \
    method=GET url="http://api.test:$UP/x" status=200 rule_name=api upstream="127.0.0.2:$UP"
t $? "one allow line: GET http://api.test:$UP/x, status 200, upstream 127.0.0.2:$UP"

OUT=$($CURL -x "http://127.0.0.1:$PX" "http://api.test:$UP/y?z=1" 2>"$T/curl.err")
RC=$?
[ "$RC" -eq 0 ] && [ "$OUT" = "api.test:$UP GET /y?z=1 n=1" ]
t $? "connect listener, absolute-form: the TLS origin's exact body" ||
    { diag "exit $RC, body: $OUT"; diag "$(cat "$T/curl.err")"; }
grep -qx "conn=[0-9]* n=1 GET /y?z=1 host=api.test:$UP body=0 sni=api.test" "$OLOG"
t $? "the origin got origin-form /y?z=1 over TLS with SNI api.test" || diag "$(cat "$OLOG")"
wait_log "$LOG" 1 event=allow listener=proxy name=api.test port="$UP" proto=http \
    method=GET url="http://api.test:$UP/y?z=1" status=200
t $? "an allow line on the connect listener"

# ------------------------------------------------------------ (b) keep-alive
OUT=$(timeout 20 python3 - "$GW" "$UP" <<'PY'
import http.client, sys
gw, up = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPConnection("127.0.0.1", gw, timeout=10)
for path in ("/k1", "/k2"):
    c.request("GET", path, headers={"Host": "api.test:" + up})
    r = c.getresponse()
    print(r.status, r.read().decode().strip())
print("same client connection:", c.sock is not None)
PY
)
[ "$OUT" = "200 api.test:$UP GET /k1 n=1
200 api.test:$UP GET /k2 n=2
same client connection: True" ]
t $? "two requests on one client connection: both 200, n=1 and n=2 at the origin" || diag "$OUT"
K1=$(sed -n "s/^conn=\([0-9]*\) n=1 GET \/k1 .*sni=api.test$/\1/p" "$OLOG")
K2=$(sed -n "s/^conn=\([0-9]*\) n=2 GET \/k2 .*sni=api.test$/\1/p" "$OLOG")
[ -n "$K1" ] && [ "$K1" = "$K2" ]
t $? "the origin saw both on one TLS connection (conn=$K1)" || diag "$(cat "$OLOG")"
wait_log "$LOG" 2 event=allow listener=http name=api.test url~/k status=200
t $? "one allow line per request"

# An upstream connection carries one host only: api.test, api2.test, then
# api.test again on one client connection opens a new TLS connection.
OUT=$(timeout 20 python3 - "$GW" "$UP" "$UP2" <<'PY'
import http.client, sys
gw, up, up2 = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", gw, timeout=10)
for host, path in (("api.test:" + up, "/h1"), ("api2.test:" + up2, "/h2"),
                   ("api.test:" + up, "/h3")):
    c.request("GET", path, headers={"Host": host})
    r = c.getresponse()
    print(r.status, r.read().decode().strip())
PY
)
[ "$OUT" = "200 api.test:$UP GET /h1 n=1
200 api2.test:$UP2 GET /h2 n=1
200 api.test:$UP GET /h3 n=1" ]
t $? "one client connection, three requests for two hosts: each answered by its own origin" ||
    diag "$OUT"
H1=$(sed -n 's/^conn=\([0-9]*\) n=1 GET \/h1 .*/\1/p' "$OLOG")
H3=$(sed -n 's/^conn=\([0-9]*\) n=1 GET \/h3 .*/\1/p' "$OLOG")
[ -n "$H1" ] && [ -n "$H3" ] && [ "$H1" != "$H3" ] &&
    grep -qx "conn=[0-9]* n=1 GET /h2 host=api2.test:$UP2 body=0 sni=api2.test" "$T/origin2.log"
t $? "api2.test got its own TLS connection (SNI api2.test); api.test a new one after it" ||
    diag "$(cat "$OLOG" "$T/origin2.log")"

# ------------------------------------------------------------ (d) a certificate for another name
OUT=$($CURL -o "$T/body" -w '%{http_code}' -H "Host: wrong.test:$UP" \
    "http://127.0.0.1:$GW/w" 2>"$T/curl.err")
WANT="egressd: wrong.test:$UP: upstream_tls_failed: certificate verification failed: hostname mismatch"
[ "$OUT" = 502 ] && printf '%s\n' "$WANT" | cmp -s - "$T/body"
t $? "wrong.test served with api.test's certificate: 502, '$WANT'" ||
    diag "status $OUT, body: $(cat "$T/body")"
wait_log "$LOG" 1 event=deny reason=upstream_tls_failed name=wrong.test port="$UP" \
    proto=http method=GET url="http://wrong.test:$UP/w" status=502 \
    detail="certificate verification failed: hostname mismatch"
t $? "deny line upstream_tls_failed: hostname mismatch"
! grep -q "GET /w " "$OLOG"
t $? "the origin got no request" || diag "$(cat "$OLOG")"

# A response whose body ends when the TLS connection does (HTTP/1.0, no
# Content-Length): all of it reaches the client.
$CURL -o "$T/www.out" -H "Host: www.test:$WWW" "http://127.0.0.1:$GW/" 2>"$T/curl.err"
RC=$?
[ "$RC" -eq 0 ] && head -1 "$T/www.out" | grep -q '^<HTML>' &&
    tail -c 30 "$T/www.out" | grep -q '</pre></BODY></HTML>.$'
t $? "openssl s_server -www (body until close): the whole page" ||
    diag "exit $RC: $(cat "$T/curl.err"); ends with: $(tail -c 100 "$T/www.out")"
wait_log "$LOG" 1 event=allow name=www.test port="$WWW" url="http://www.test:$WWW/" status=200
t $? "its allow line"

# ------------------------------------------------------------ upstreams that do not speak TLS
CONNECT=3s config pki/ca.pem native.yaml
restart
START=$(date +%s)
OUT=$($CURL -o "$T/body" -w '%{http_code}' -H "Host: hang.test:$HANG" \
    "http://127.0.0.1:$GW/hang" 2>"$T/curl.err")
END=$(date +%s)
WANT="egressd: hang.test:$HANG: upstream_tls_failed: the TLS handshake timed out"
[ "$OUT" = 502 ] && printf '%s\n' "$WANT" | cmp -s - "$T/body" && [ $((END - START)) -le 6 ]
t $? "an upstream that never answers the ClientHello: 502 after the connect timeout (3 s)" ||
    diag "status $OUT after $((END - START)) s, body: $(cat "$T/body")"
wait_log "$LOG" 1 event=deny reason=upstream_tls_failed name=hang.test status=502 \
    detail="the TLS handshake timed out"
t $? "deny line upstream_tls_failed: the TLS handshake timed out"
config pki/ca.pem native.yaml
restart
OUT=$($CURL -o "$T/body" -w '%{http_code}' -H "Host: plain.test:$PLAIN" \
    "http://127.0.0.1:$GW/plain" 2>"$T/curl.err")
[ "$OUT" = 502 ] && grep -q "^egressd: plain.test:$PLAIN: upstream_tls_failed: TLS handshake failed: " "$T/body"
t $? "a plain HTTP upstream: 502, upstream_tls_failed: TLS handshake failed: ..." ||
    diag "status $OUT, body: $(cat "$T/body")"
wait_log "$LOG" 1 event=deny reason=upstream_tls_failed name=plain.test status=502 \
    "detail~TLS handshake failed: "
t $? "its deny line"
# (wait_port's probe connected too, and sent nothing)
[ "$(grep -v '^nothing$' "$T/plain.log")" = "first byte 0x16" ]
t $? "the plain server got a TLS handshake record, never plaintext" || diag "$(cat "$T/plain.log")"

# ------------------------------------------------------------ port 80 goes to 443
if [ "$HAVE443" = 1 ]; then
	OUT=$($CURL -H "Host: svc80.test" "http://127.0.0.1:$GW/p80" 2>"$T/curl.err")
	[ "$OUT" = "svc80.test GET /p80 n=1" ] &&
	    grep -qx "conn=[0-9]* n=1 GET /p80 host=svc80.test body=0 sni=svc80.test" "$T/origin443.log"
	t $? "a request for svc80.test (port 80) originates TLS to port 443" ||
	    diag "body: $OUT; $(cat "$T/curl.err" "$T/origin443.log" 2>&1)"
	wait_log "$LOG" 1 event=allow name=svc80.test port=80 url="http://svc80.test/p80" \
	    status=200 upstream="127.0.0.9:443"
	t $? "its allow line: port 80, upstream 127.0.0.9:443"
else
	ok 0 "# SKIP 127.0.0.9:443 is not available here: port 80 to 443 not tested"
	ok 0 "# SKIP (its log line)"
fi

# ------------------------------------------------------------ CONNECT is never originated
OUT=$($CURL --proxy "http://127.0.0.1:$PX" --cacert "$T/pki/ca.pem" \
    "https://api.test:$UP/tunnel" 2>"$T/curl.err")
[ "$OUT" = "api.test:$UP GET /tunnel n=1" ]
t $? "CONNECT to an originate_tls host: the client's own TLS goes through the tunnel" ||
    diag "body: $OUT; $(cat "$T/curl.err")"
wait_log "$LOG" 1 event=allow proto=connect method=CONNECT url="api.test:$UP" status=200
t $? "its CONNECT line"

# ------------------------------------------------------------ (f) a redirect from the TLS origin
TO="http://other.test:$OP/"
OUT=$($CURL -o /dev/null -w '%{http_code} %{redirect_url}' -H "Host: api.test:$UP" \
    "http://127.0.0.1:$GW/status/301?to=$TO" 2>"$T/curl.err")
[ "$OUT" = "301 $TO" ]
t $? "a 301 from the TLS origin reaches the client with its Location" || diag "$OUT"
wait_log "$LOG" 1 event=redirect status=301 from="http://api.test:$UP/status/301?to=$TO" \
    to="$TO" name=other.test port="$OP" verdict=deny reason=not_allowed
t $? "a redirect line: 301, from http://api.test:$UP/status/301?to=..., to $TO, verdict deny not_allowed"
wait_log "$LOG" 1 event=allow name=api.test url="http://api.test:$UP/status/301?to=$TO" status=301
t $? "and the request's own allow line, status 301"
TO2="https://api.test:$UP/next"
OUT=$($CURL -o /dev/null -w '%{http_code}' -H "Host: api.test:$UP" \
    "http://127.0.0.1:$GW/status/302?to=$TO2" 2>"$T/curl.err")
[ "$OUT" = 302 ]
t $? "a 302 towards https://api.test:$UP/next reaches the client" || diag "$OUT"
wait_log "$LOG" 1 event=redirect status=302 from="http://api.test:$UP/status/302?to=$TO2" \
    to="$TO2" name=api.test port="$UP" verdict=allow reason=allowed rule_name=api
t $? "its redirect line: verdict allow, rule api"

# ------------------------------------------------------------ (c) another CA
config ca2/ca.pem native.yaml
restart
N0=$(wc -l < "$OLOG")
OUT=$($CURL -o "$T/body" -w '%{http_code}' -H "Host: api.test:$UP" \
    "http://127.0.0.1:$GW/ca2" 2>"$T/curl.err")
WANT="egressd: api.test:$UP: upstream_tls_failed: certificate verification failed: unable to get local issuer certificate"
[ "$OUT" = 502 ] && printf '%s\n' "$WANT" | cmp -s - "$T/body"
t $? "ca_file from another CA: 502, '$WANT'" || diag "status $OUT, body: $(cat "$T/body")"
wait_log "$LOG" 1 event=deny reason=upstream_tls_failed name=api.test port="$UP" \
    method=GET url="http://api.test:$UP/ca2" status=502 \
    detail="certificate verification failed: unable to get local issuer certificate"
t $? "deny line upstream_tls_failed: unable to get local issuer certificate"
OUT=$($CURL -x "http://127.0.0.1:$PX" -o "$T/body" -w '%{http_code}' \
    "http://api.test:$UP/ca2b" 2>"$T/curl.err")
[ "$OUT" = 502 ] && printf '%s\n' "$WANT" | cmp -s - "$T/body"
t $? "the same through the connect listener (absolute-form)" ||
    diag "status $OUT, body: $(cat "$T/body")"
sleep 0.3
[ "$(wc -l < "$OLOG")" -eq "$N0" ]
t $? "the origin got no request" || diag "$(cat "$OLOG")"

# No ca_file: the system store, which does not know the test CA.
config system native.yaml
restart
OUT=$($CURL -o "$T/body" -w '%{http_code}' -H "Host: api.test:$UP" \
    "http://127.0.0.1:$GW/sys" 2>"$T/curl.err")
[ "$OUT" = 502 ] && printf '%s\n' "$WANT" | cmp -s - "$T/body"
t $? "no upstream_tls: the system store does not trust the test CA: 502" ||
    diag "status $OUT, body: $(cat "$T/body")"
wait_log "$LOG" 1 event=deny reason=upstream_tls_failed url="http://api.test:$UP/sys" \
    detail="certificate verification failed: unable to get local issuer certificate"
t $? "deny line: unable to get local issuer certificate"

# ------------------------------------------------------------ (e) Istio ServiceEntry + DestinationRule
config pki/ca.pem istio.yaml
restart
OUT=$($CURL -H "Host: api.test:$UP" "http://127.0.0.1:$GW/istio" 2>"$T/curl.err")
RC=$?
[ "$RC" -eq 0 ] && [ "$OUT" = "api.test:$UP GET /istio n=1" ]
t $? "Istio ServiceEntry + DestinationRule SIMPLE: 200 and the TLS origin's body" ||
    { diag "exit $RC, body: $OUT"; diag "$(cat "$T/curl.err")"; }
grep -qx "conn=[0-9]* n=1 GET /istio host=api.test:$UP body=0 sni=api.test" "$OLOG"
t $? "the origin got it over TLS with SNI api.test" || diag "$(cat "$OLOG")"
wait_log "$LOG" 1 event=allow name=api.test url="http://api.test:$UP/istio" status=200 \
    rule_name=api-test
t $? "an allow line naming the ServiceEntry's rule"
if [ "$HAVE443" = 1 ]; then
	OUT=$($CURL -H "Host: svc80.test" "http://127.0.0.1:$GW/istio80" 2>"$T/curl.err")
	[ "$OUT" = "svc80.test GET /istio80 n=1" ] &&
	    grep -qx "conn=[0-9]* n=1 GET /istio80 host=svc80.test body=0 sni=svc80.test" "$T/origin443.log"
	t $? "Istio task shape (port 80, portLevelSettings SIMPLE on 80): TLS to 443" ||
	    diag "body: $OUT; $(cat "$T/curl.err")"
	wait_log "$LOG" 1 event=allow name=svc80.test port=80 url="http://svc80.test/istio80" \
	    status=200 upstream="127.0.0.9:443" rule_name=svc80
	t $? "its allow line: port 80, upstream 127.0.0.9:443, rule svc80"
else
	ok 0 "# SKIP 127.0.0.9:443 is not available here"
	ok 0 "# SKIP (its log line)"
fi

# Without the DestinationRule the gateway speaks plain HTTP to the TLS
# origin: no answer, which shows it was the DestinationRule that originated.
config pki/ca.pem istio-nodr.yaml
restart
OUT=$($CURL -o "$T/body" -w '%{http_code}' -H "Host: api.test:$UP" \
    "http://127.0.0.1:$GW/nodr" 2>"$T/curl.err")
[ "$OUT" != 200 ] && ! grep -q "GET /nodr" "$OLOG"
t $? "the ServiceEntry alone: no origination, the TLS origin answers nothing (status $OUT)" ||
    diag "status $OUT, body: $(cat "$T/body")"

# ------------------------------------------------------------ the system store, read when first needed
# Without upstream_tls the system's CA store is read only once a policy has
# a rule that originates TLS: here, at the reload that brings the first one.
# OpenSSL's SSL_CERT_FILE stands in for the system store (the test CA).
cat > "$T/late.yaml" <<EOF
allow:
  - {name: api, hosts: [api.test], ports: [$UP], allow_private: true}
EOF
config system late.yaml
kill -TERM "$EGRESSD_PID" 2>/dev/null
wait "$EGRESSD_PID" 2>/dev/null
export SSL_CERT_FILE="$T/pki/ca.pem"
start_egressd "$T/egressd.yaml"
unset SSL_CERT_FILE
OUT=$($CURL -o "$T/body" -w '%{http_code}' -H "Host: api.test:$UP" \
    "http://127.0.0.1:$GW/late1" 2>"$T/curl.err")
[ "$OUT" != 200 ] && ! grep -q "GET /late1" "$OLOG"
t $? "no rule originates TLS: plain HTTP to the TLS origin, no answer (status $OUT)"
cat > "$T/late.yaml" <<EOF
allow:
  - {name: api, hosts: [api.test], ports: [$UP], allow_private: true, originate_tls: true}
EOF
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" 'policy generation 2' 10
OUT=$($CURL -H "Host: api.test:$UP" "http://127.0.0.1:$GW/late2" 2>"$T/curl.err")
[ "$OUT" = "api.test:$UP GET /late2 n=1" ]
t $? "after the reload that adds originate_tls, the system store (SSL_CERT_FILE) verifies the origin: 200" ||
    diag "body: $OUT; $(cat "$T/curl.err"); $(grep reload "$LOG")"

# ------------------------------------------------------------ the log
logq "$LOG" --schema
t $? "every line has exactly the documented keys, in order"

finish

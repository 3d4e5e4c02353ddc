#!/bin/sh
# Redirect chains in the log: a 3xx with a Location becomes a redirect
# line with the policy's verdict on its target before anyone follows it;
# the request that follows (same client, same host and port, within
# redirects.window) carries the same chain id, across connections and
# listeners (http -> tls); a TLS denial right after an allowed connection
# from the same client carries the "after" hint. Real curl following real
# redirects; egressctl denials shows the chain that led to a denial.
. "$(dirname "$0")/lib.sh"
need dnsmasq curl python3 openssl
: "${EGRESSCTL:=$top_builddir/egressctl}"

make_pki c.test
DNS_PORT=$(free_port)
UP=$(free_port)
TUP=$(free_port)
GW=$(free_port)
TGW=$(free_port)
PX=$(free_port)
start_dns "$DNS_PORT" a.test=127.0.0.21 b.test=127.0.0.22 c.test=127.0.0.23 \
    d.test=127.0.0.24 x.test=127.0.0.23
for n in 21 22 24; do
	python3 "$top_srcdir/tests/integration/origin.py" --log "$T/origin-$n.log" \
	    "127.0.0.$n:$UP" &
	PIDS="$PIDS $!"
	wait_port "127.0.0.$n:$UP" 10 || bail "origin 127.0.0.$n did not listen"
done
python3 "$top_srcdir/tests/integration/origin.py" --tls "$T/pki/c.test.pem" \
    "$T/pki/c.test.key" --log "$T/origin-c.log" "127.0.0.23:$TUP" &
PIDS="$PIDS $!"
wait_port "127.0.0.23:$TUP" 10 || bail "TLS origin did not listen"

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [a.test, d.test]
    ports: [$UP]
  - hosts: [c.test]
    ports: [$TUP]
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: http, address: "127.0.0.1:$GW", protocol: http, upstream_port: $UP}
  - {name: tls, address: "127.0.0.1:$TGW", upstream_port: $TUP}
  - {name: proxy, address: "127.0.0.1:$PX", protocol: connect}
workers: 2
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
policy: {files: [policy.yaml]}
log: {path: egressd.log}
redirects: {window: 2s, after_window: 3s}
EOF
start_egressd "$T/egressd.yaml"
CURL="curl -sS --max-time 10"
A="http://a.test:$UP"

# chain FIELD=VALUE...: the chain id of the one line matching.
chain_of() {
	logq "$LOG" "$@" | python3 -c 'import json,sys
lines = [json.loads(l) for l in sys.stdin]
print(lines[0]["chain"] if len(lines) == 1 else "NONE")'
}

# --- a 301 towards a host that is not allowed, followed through the proxy ---
TO_B="http://b.test:$UP/x"
out=$($CURL -x "http://127.0.0.1:$PX" -L -o "$T/ab.out" -w '%{http_code} %{num_redirects}' \
    "$A/status/301?to=$TO_B")
[ "$out" = "403 1" ] && [ "$(cat "$T/ab.out")" = "egressd: b.test:$UP: not_allowed" ]
ok $? "curl -L follows the 301 and gets the gateway's 403 for b.test ($out)"
wait_log "$LOG" 1 event=redirect status=301 from="$A/status/301?to=$TO_B" to="$TO_B" \
    verdict=deny reason=not_allowed name=b.test port="$UP" proto=http rule=null \
    listener=proxy method=GET
ok $? "the redirect line: 301, from, to, verdict deny (not_allowed) for b.test"
C1=$(chain_of event=redirect to="$TO_B")
[ -n "$C1" ] && [ "$C1" != NONE ] && [ "$C1" != None ]
ok $? "the redirect line has a chain id ($C1)"
[ "$(chain_of event=allow url="$A/status/301?to=$TO_B" status=301)" = "$C1" ]
ok $? "the request that got the 301 carries the chain id"
[ "$(chain_of event=deny name=b.test url="$TO_B" status=403)" = "$C1" ]
ok $? "the denied request that followed carries the same chain id (another connection)"
[ "$(grep -c . "$T/origin-22.log" 2>/dev/null || echo 0)" = 0 ]
ok $? "b.test's server never saw a request"

# --- across listeners: a 302 to d.test, a 301 to https c.test (TLS listener) --
TO_D="http://d.test:$UP/status/301?to=https://c.test:$TUP/end"
out=$($CURL -L --cacert "$T/pki/ca.pem" -w '%{http_code} %{num_redirects}' -o "$T/adc.out" \
    --connect-to "a.test:$UP:127.0.0.1:$GW" --connect-to "d.test:$UP:127.0.0.1:$GW" \
    --connect-to "c.test:$TUP:127.0.0.1:$TGW" "$A/status/302?to=$TO_D")
[ "$out" = "200 2" ] && grep -q "GET /end" "$T/adc.out"
ok $? "a -> 302 -> d -> 301 -> https://c.test through the http and tls listeners ($out)"
C2=$(chain_of event=redirect status=302 to="$TO_D")
[ "$(chain_of event=redirect status=301 to="https://c.test:$TUP/end")" = "$C2" ] &&
    [ "$C2" != "$C1" ] && [ "$C2" != NONE ]
ok $? "both redirect lines belong to one new chain ($C2)"
wait_log "$LOG" 1 event=redirect chain="$C2" status=301 verdict=allow reason=allowed \
    name=c.test port="$TUP" proto=tls rule~policy.yaml:4
ok $? "the https target is decided as TLS on its port: allowed by its rule"
[ "$(chain_of event=allow listener=http name=d.test)" = "$C2" ]
ok $? "d.test's request (new connection) carries the chain"
[ "$(chain_of event=allow listener=tls name=c.test)" = "$C2" ]
ok $? "the TLS connection to c.test (another listener) carries the chain"

# --- http -> https through the proxy: the CONNECT that follows is in the chain
out=$(http_proxy="http://127.0.0.1:$PX" HTTPS_PROXY="http://127.0.0.1:$PX" \
    $CURL -L --cacert "$T/pki/ca.pem" -o "$T/viaproxy.out" -w '%{http_code} %{num_redirects}' \
    "$A/status/301?to=https://c.test:$TUP/viaproxy")
[ "$out" = "200 1" ] && grep -q "GET /viaproxy" "$T/viaproxy.out"
ok $? "http_proxy + HTTPS_PROXY: curl -L follows http -> https through CONNECT ($out)"
C3=$(chain_of event=redirect to="https://c.test:$TUP/viaproxy")
[ "$(chain_of event=allow listener=proxy method=CONNECT name=c.test)" = "$C3" ] &&
    [ "$C3" != NONE ]
ok $? "the CONNECT tunnel to c.test carries the redirect's chain ($C3)"

# --- Locations of every shape ---------------------------------------------------
$CURL -x "http://127.0.0.1:$PX" -o /dev/null "$A/status/302?to=rel" \
    "$A/status/307?to=/abs" "$A/status/308?to=http://a.test:9/" \
    "$A/status/303?to=http://127.0.0.9:$UP/" "$A/status/301?to=//d.test:$UP/p"
wait_log "$LOG" 1 event=redirect status=302 to="$A/status/rel" verdict=allow
ok $? "a relative Location is taken against the request's directory"
wait_log "$LOG" 1 event=redirect status=307 to="$A/abs" verdict=allow name=a.test
ok $? "an absolute-path Location keeps the origin"
wait_log "$LOG" 1 event=redirect status=308 to="http://a.test:9/" verdict=deny \
    reason=port_not_allowed port=9
ok $? "a Location on another port: port_not_allowed"
wait_log "$LOG" 1 event=redirect status=303 to="http://127.0.0.9:$UP/" verdict=deny \
    reason=not_allowed
ok $? "a Location with an IP address: denied (no rule allows addresses)"
wait_log "$LOG" 1 event=redirect status=301 to="http://d.test:$UP/p" verdict=allow name=d.test
ok $? "a scheme-relative Location keeps the scheme"

# --- the window: a request long after the redirect is not in the chain -------
$CURL -x "http://127.0.0.1:$PX" -o /dev/null "$A/status/301?to=http://d.test:$UP/late"
sleep 2.5
$CURL -x "http://127.0.0.1:$PX" -o /dev/null "http://d.test:$UP/late"
wait_log "$LOG" 1 event=allow url="http://d.test:$UP/late" chain=null
ok $? "following after redirects.window: no chain id"
$CURL -x "http://127.0.0.1:$PX" -o /dev/null "$A/status/301?to=http://d.test:$UP/other"
$CURL -x "http://127.0.0.1:$PX" -o /dev/null --interface 127.0.0.7 "http://d.test:$UP/other"
wait_log "$LOG" 1 event=allow url="http://d.test:$UP/other" chain=null src~127.0.0.7
ok $? "another client asking for the target: no chain id"

# --- TLS passthrough: the "after" hint -------------------------------------------
sleep 3.1       # past after_window: the earlier allowed connections are old
tls_get() {
	$CURL --cacert "$T/pki/ca.pem" --connect-to "$1:$TUP:127.0.0.1:$TGW" "$@" \
	    "https://$1:$TUP/" >/dev/null 2>&1
}
tls_get c.test
tls_get x.test -k
wait_log "$LOG" 1 event=deny name=x.test reason=not_allowed
logq "$LOG" event=deny name=x.test | python3 -c 'import json,sys
l = json.loads(sys.stdin.readline())
a = l["after"]
sys.exit(0 if a and a["name"] == "c.test" and 0 <= a["ms"] < 3000 else 1)'
ok $? "a TLS denial right after an allowed connection carries after: c.test"
tls_get y.test -k --interface 127.0.0.8
wait_log "$LOG" 1 event=deny name=y.test after=null
ok $? "... and one from another client does not"

# --- egressctl denials shows the chain that led to b.test ------------------------
"$EGRESSCTL" denials "$LOG" > "$T/denials.out"
grep -q "reached by redirect: 301 from $A/status/301?to=$TO_B" "$T/denials.out"
ok $? "egressctl denials: b.test was reached by the 301 from a.test"
grep -q "after an allowed connection to c.test" "$T/denials.out"
ok $? "egressctl denials: x.test's after hint"
logq "$LOG" --schema
ok $? "every line, redirect lines too, has the documented keys"

# --- an address target under a "*" rule: the line says what the request gets --
# Last: "*" changes the reason of every denial above. No rule admits an IP
# literal, "*" included; a redirect line that said "allow" for one would
# hide the denial the client is about to get.
STAR=$(free_port)
cat >> "$T/policy.yaml" <<EOF
  - hosts: ["*"]
    ports: [$STAR]
EOF
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "reload (SIGHUP): policy generation 1" 5
ok $? "reload with a \"*\" rule on port $STAR took"
for to in "http://127.0.0.9:$STAR/ip" "http://[::9]:$STAR/ip6" \
    "http://e.test:$STAR/name"; do
	$CURL -g -x "http://127.0.0.1:$PX" -o /dev/null "$A/status/302?to=$to"
done
wait_log "$LOG" 1 event=redirect to="http://127.0.0.9:$STAR/ip" verdict=deny \
    reason=not_allowed rule=null detail="an IP address is not a name any rule can allow"
ok $? "an IPv4 Location under \"*\": deny, as the request that follows gets"
wait_log "$LOG" 1 event=redirect to="http://[::9]:$STAR/ip6" name=::9 verdict=deny \
    reason=not_allowed
ok $? "an IPv6 Location under \"*\": deny"
wait_log "$LOG" 1 event=redirect to="http://e.test:$STAR/name" verdict=allow \
    rule~policy.yaml:
ok $? "a name under \"*\" is still allowed"
out=$($CURL -x "http://127.0.0.1:$PX" -o /dev/null -w '%{http_code}' \
    "http://127.0.0.9:$STAR/ip")
[ "$out" = 403 ]
ok $? "the request to the address itself is refused (403)"

# --- a Location whose host clients disagree on is not decided -----------------
# http://d.test:P\@a.test:P/ is d.test to a browser, a.test to curl: the line
# must not say "a.test, allowed" for a request that may go to d.test.
$CURL -x "http://127.0.0.1:$PX" -o /dev/null "$A/status/302?to=http://d.test:$UP%5C@a.test:$UP/bs"
$CURL -x "http://127.0.0.1:$PX" -o /dev/null "$A/status/302?to=/%5Cd.test:$UP/bs2"
wait_log "$LOG" 1 event=redirect to="http://d.test:$UP\\@a.test:$UP/bs" name=null \
    verdict=deny reason=not_allowed
ok $? "a backslash in the Location's authority: no host decided, deny"
wait_log "$LOG" 1 event=redirect to="/\\d.test:$UP/bs2" name=null verdict=deny
ok $? "a Location starting /\\ (another host to a browser): no host decided, deny"
finish

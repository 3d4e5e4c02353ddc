#!/bin/sh
# egressctl trace against real servers: a.test answers 301 to b.test, which
# answers 302 to https://c.test (a real TLS server with the test PKI), all
# names resolved by a real dnsmasq named in the configuration's
# dns.servers. The policy allows a.test and c.test, not b.test. Checks the
# hop lines, verdicts and rules, the suggested allow-list entries (which
# egressctl check and explain then accept), JSON, RFC 3986 Location
# resolution, loops, --max-hops, TLS failures and exit statuses; then the
# same chain through the gateway's connect listener (--via).
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl python3
: "${EGRESSCTL:=$top_builddir/egressctl}"
[ -x "$EGRESSCTL" ] || bail "no egressctl binary at $EGRESSCTL"
SRV="$top_srcdir/tests/integration/redirect_server.py"
VERSION=$("$EGRESSCTL" --version | sed 's/^egressctl //')

make_pki c.test
# A CA that signed nothing here: verification against it must fail.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/other-ca.key" -out "$T/other-ca.pem" -days 2 \
    -subj "/CN=another CA" >/dev/null 2>&1 || bail "cannot make a second CA"

DNS_PORT=$(free_port)
HP=$(free_port)
TP=$(free_port)
GW=$(free_port)
DEAD=$(free_port)
start_dns "$DNS_PORT" a.test=127.0.0.2 r.test=127.0.0.2 l1.test=127.0.0.2 \
    l2.test=127.0.0.2 n.test=127.0.0.2 b.test=127.0.0.4 c.test=127.0.0.3 \
    x.test=127.0.0.3

# a.test, r.test, l1/l2.test, n.test on 127.0.0.2; b.test on 127.0.0.4;
# c.test over TLS on 127.0.0.3. Each server answers only its own routes,
# so a hop that reached the wrong address gets a 404.
python3 "$SRV" --log "$T/http.log" "127.0.0.2:$HP" \
    "a.test/ 301 http://b.test:$HP/x" \
    "r.test/dir/page 302 ../up/./there?q=1" \
    "r.test/up/there?q=1 303 /abs#frag" \
    "r.test/abs 307 ?v=2" \
    "r.test/abs?v=2 308 //a.test:$HP/" \
    "l1.test/ 302 http://l2.test:$HP/" \
    "l2.test/ 301 http://l1.test:$HP/" \
    "n.test/ 302" \
    "n.test/ftp 302 ftp://files.test/f" \
    "n.test/user 302 http://me@b.test:$HP/x" \
    >"$T/srv1.err" 2>&1 &
PIDS="$PIDS $!"
python3 "$SRV" --log "$T/http.log" "127.0.0.4:$HP" \
    "b.test/x 302 https://c.test:$TP/y" >"$T/srv2.err" 2>&1 &
PIDS="$PIDS $!"
python3 "$SRV" --tls "$T/pki/c.test.pem" "$T/pki/c.test.key" \
    --log "$T/https.log" "127.0.0.3:$TP" "c.test/y 200" \
    "x.test/y 200" >"$T/srv3.err" 2>&1 &
PIDS="$PIDS $!"
wait_port "127.0.0.2:$HP" || bail "the HTTP server did not listen"
wait_port "127.0.0.4:$HP" || bail "the second HTTP server did not listen"
wait_port "127.0.0.3:$TP" || bail "the TLS server did not listen"

cd "$T" || bail "no temp dir"
cat > policy.yaml <<EOF
allow:
  - name: origin
    hosts: [a.test, r.test, l1.test, l2.test, n.test]
    ports: [$HP]
  - name: cdn
    hosts: [c.test]
    ports: [$TP]
EOF
config() {
	# config FILE [MODE] [POLICY FILES]: the daemon's configuration. The
	# test's servers are on loopback, which the address guard refuses
	# unless declared reachable (see "address guard" below).
	cat > "$1" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW"}
workers: 1
mode: ${2:-enforce}
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
policy: {files: [${3:-policy.yaml}]}
EOF
}
config egressd.yaml

run() {
	"$EGRESSCTL" trace "$@" >run.out 2>run.err
	RC=$?
	OUT=$(cat run.out)
	ERR=$(cat run.err)
}
show() {
	diag "exit $RC; stdout:"
	diag "$OUT"
	diag "stderr: $ERR"
}
check() {
	# check STATUS DESCRIPTION: ok, and STATUS again so "|| show" works
	rc_=$1
	ok "$1" "$2"
	return "$rc_"
}
has() {
	# has LINE: stdout holds this exact line
	printf '%s\n' "$OUT" | grep -qxF -- "$1"
}

# ---------------------------------------------------------------- the chain
run -c egressd.yaml --cacert pki/ca.pem "http://a.test:$HP/"
cp run.out chain.out    # docs/egressctl-trace.md shows it (KEEP_TEST_DIR=1)
[ "$RC" -eq 1 ]
check $? "a hop denied: exit 1" || show
has "trace: http://a.test:$HP/ direct, policy from egressd.yaml"
check $? "first line: URL, direct, policy" || show
has "hop 1: GET http://a.test:$HP/" &&
    has "   policy:   allow a.test:$HP (http): allowed; rule policy.yaml:3: allow a.test (origin, native); ports $HP" &&
    has "   response: 301 Moved Permanently" &&
    has "   location: http://b.test:$HP/x"
check $? "hop 1: a.test allowed by policy.yaml:3 (origin), 301 to b.test" || show
has "hop 2: GET http://b.test:$HP/x" &&
    has "   policy:   deny b.test:$HP (http): not_allowed; rule: none (no rule admits b.test)" &&
    has "   response: 302 Found" &&
    has "   location: https://c.test:$TP/y"
check $? "hop 2: b.test denied (not_allowed), 302 to https://c.test" || show
has "hop 3: GET https://c.test:$TP/y" &&
    has "   policy:   allow c.test:$TP (tls): allowed; rule policy.yaml:6: allow c.test (cdn, native); ports $TP" &&
    has "   response: 200 OK"
check $? "hop 3: c.test allowed as tls by policy.yaml:6 (cdn), 200 over verified TLS" || show
has "trace: 3 hops, 1 denied"
check $? "summary: 3 hops, 1 denied" || show
[ "$(printf '%s\n' "$OUT" | grep -c '^hop [0-9]*: GET ')" -eq 3 ]
check $? "exactly three hops" || show
grep -qxF "GET / host=a.test:$HP ua=egressctl-trace/$VERSION connection=close" http.log &&
    grep -qxF "GET /x host=b.test:$HP ua=egressctl-trace/$VERSION connection=close" http.log &&
    grep -qxF "GET /y host=c.test:$TP ua=egressctl-trace/$VERSION connection=close" https.log
check $? "each server got one GET with Host, User-Agent and Connection: close" || {
	diag "$(cat http.log https.log)"; }

# ---------------------------------------------------------------- suggestions
printf '%s\n' "$OUT" | sed -n '/^allow:$/,/^$/p' | sed '/^$/d' > native.yaml
printf '%s\n' "$OUT" | sed -n '/^apiVersion:/,$p' > se.yaml
cat > native.want <<EOF
allow:
  - name: trace-b-test
    hosts: ["b.test"]
    ports: [$HP]
EOF
cat > se.want <<EOF
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: trace-b-test
spec:
  hosts:
  - "b.test"
  location: MESH_EXTERNAL
  ports:
  - number: $HP
    name: http-$HP
    protocol: HTTP
  resolution: DNS
EOF
has "hop 2, b.test:$HP (http) is denied; an allow-list entry that admits it, native:" &&
    cmp -s native.yaml native.want
check $? "native suggestion for b.test:$HP, exact name and port" || { show; diff native.want native.yaml | sed 's/^/# /'; }
has "or as an Istio ServiceEntry:" && cmp -s se.yaml se.want
check $? "ServiceEntry suggestion: HTTP port, DNS, MESH_EXTERNAL" || { show; diff se.want se.yaml | sed 's/^/# /'; }
"$EGRESSCTL" check native.yaml >check.out 2>&1
check $? "egressctl check accepts the native suggestion" || diag "$(cat check.out)"
"$EGRESSCTL" check se.yaml >check.out 2>&1
check $? "egressctl check accepts the ServiceEntry suggestion" || diag "$(cat check.out)"
"$EGRESSCTL" explain -c egressd.yaml --proto http "b.test:$HP" >/dev/null 2>&1
[ $? -eq 1 ]
check $? "explain denies b.test:$HP before"
for s in native se; do
	config "with-$s.yaml" enforce "policy.yaml, $s.yaml"
	"$EGRESSCTL" explain -c "with-$s.yaml" --proto http "b.test:$HP" >explain.out 2>&1
	check $? "explain allows b.test:$HP with the $s suggestion added" || diag "$(cat explain.out)"
	run -c "with-$s.yaml" --cacert pki/ca.pem "http://a.test:$HP/"
	[ "$RC" -eq 0 ] && has "trace: 3 hops, 0 denied" && ! has "allow:"
	check $? "trace: every hop allowed with the $s suggestion, exit 0, nothing suggested" || show
done

# ---------------------------------------------------------------- json
run -c egressd.yaml --cacert pki/ca.pem --format json "http://a.test:$HP/"
printf '%s\n' "$OUT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
hp, tp = sys.argv[1], sys.argv[2]
h = d["hops"]
assert d["url"] == "http://a.test:%s/" % hp, d["url"]
assert d["via"] is None and d["config"] == "egressd.yaml" and d["method"] == "GET"
assert [x["url"] for x in h] == ["http://a.test:%s/" % hp,
    "http://b.test:%s/x" % hp, "https://c.test:%s/y" % tp], h
assert [x["status"] for x in h] == [301, 302, 200]
assert [x["verdict"] for x in h] == ["allow", "deny", "allow"]
assert [x["reason"] for x in h] == ["allowed", "not_allowed", "allowed"]
assert [x["proto"] for x in h] == ["http", "http", "tls"]
assert [x["denied"] for x in h] == [False, True, False]
assert h[0]["rule"]["file"] == "policy.yaml" and h[0]["rule"]["line"] == 3
assert h[0]["rule"]["name"] == "origin" and h[0]["rule"]["pattern"] == "a.test"
assert h[1]["rule"] is None and h[1]["would_deny"] is False
assert h[2]["rule"]["name"] == "cdn" and h[2]["rule"]["line"] == 6
assert h[0]["location"] == "http://b.test:%s/x" % hp
assert h[1]["location"] == "https://c.test:%s/y" % tp
assert h[2]["location"] is None and h[2]["error"] is None
assert d["end"] == "final" and d["denied"] == 1
s = d["suggestions"]
assert len(s) == 1 and s[0]["host"] == "b.test" and s[0]["port"] == int(hp)
assert s[0]["proto"] == "http" and s[0]["hop"] == 2
assert "hosts: [\"b.test\"]" in s[0]["native"]
assert "protocol: HTTP" in s[0]["serviceentry"]
assert "kind: ServiceEntry" in s[0]["serviceentry"]
' "$HP" "$TP"
check $? "json: hops, verdicts, rules, locations, suggestions" || show
[ "$RC" -eq 1 ]
check $? "json: exit 1"

# ---------------------------------------------------------------- Location forms
# relative "../up/./there?q=1", absolute-path "/abs#frag", query-only "?v=2",
# scheme-relative "//a.test:PORT/", then absolute ones.
run -c egressd.yaml --cacert pki/ca.pem "http://r.test:$HP/dir/page"
has "   location: http://r.test:$HP/up/there?q=1" &&
    has "hop 2: GET http://r.test:$HP/up/there?q=1"
check $? "relative Location with dot segments and a query" || show
has "   location: http://r.test:$HP/abs" && has "hop 3: GET http://r.test:$HP/abs"
check $? "absolute-path Location, fragment dropped" || show
has "   location: http://r.test:$HP/abs?v=2"
check $? "query-only Location keeps the path" || show
has "   location: http://a.test:$HP/" && has "hop 5: GET http://a.test:$HP/"
check $? "scheme-relative Location keeps the scheme" || show
has "hop 7: GET https://c.test:$TP/y" && has "trace: 7 hops, 1 denied" && [ "$RC" -eq 1 ]
check $? "the whole chain: 7 hops, 1 denied, exit 1" || show
grep -qxF "GET /up/there?q=1 host=r.test:$HP ua=egressctl-trace/$VERSION connection=close" http.log
check $? "the server got the resolved target" || diag "$(cat http.log)"

# ---------------------------------------------------------------- ends
run -c egressd.yaml --cacert pki/ca.pem "http://l1.test:$HP/"
has "trace: loop: hop 2 redirects to http://l1.test:$HP/, which is hop 1" &&
    has "trace: 2 hops, 0 denied" && [ "$RC" -eq 2 ]
check $? "loop a -> b -> a: said, exit 2" || show
run -c egressd.yaml --cacert pki/ca.pem --max-hops 2 "http://a.test:$HP/"
has "trace: stopped at --max-hops 2: hop 2 redirects to https://c.test:$TP/y" &&
    has "trace: 2 hops, 1 denied" && ! has "hop 3: GET https://c.test:$TP/y" &&
    [ "$RC" -eq 1 ]
check $? "--max-hops 2: stops and says so; a denied hop still exits 1" || show
run -c egressd.yaml --cacert pki/ca.pem --max-hops 2 "http://r.test:$HP/dir/page"
has "trace: stopped at --max-hops 2: hop 2 redirects to http://r.test:$HP/abs" && [ "$RC" -eq 2 ]
check $? "--max-hops with every hop allowed: exit 2 (the chain did not end)" || show
run -c egressd.yaml "http://n.test:$HP/"
has "   response: 302 Found" && has "trace: hop 1 answered 302 without a Location" &&
    [ "$RC" -eq 0 ]
check $? "a 3xx without Location ends the chain, exit 0" || show
run -c egressd.yaml "http://n.test:$HP/ftp"
[ "$RC" -eq 2 ] && printf '%s\n' "$ERR" | grep -qF "Location 'ftp://files.test/f' is not http or https: not followed"
check $? "a non-http Location: exit 2 with the reason" || show
# The gateway's http_location_resolve() reads the host after "user@"; trace
# sends no credentials, so such a hop is not followed.
run -c egressd.yaml "http://n.test:$HP/user"
[ "$RC" -eq 2 ] && printf '%s\n' "$ERR" | grep -qF "Location 'http://me@b.test:$HP/x' cannot be followed: the URL carries user information"
check $? "a Location with user information: not followed, exit 2" || show

# ---------------------------------------------------------------- no policy, --resolve, HEAD
run --cacert pki/ca.pem --resolve "a.test:$HP:127.0.0.2" \
    --resolve "b.test:$HP:127.0.0.4" --resolve "c.test:$TP:127.0.0.3" "http://a.test:$HP/"
[ "$RC" -eq 0 ] && has "trace: http://a.test:$HP/ direct, no policy given" &&
    [ "$(printf '%s\n' "$OUT" | grep -cxF '   policy:   none (no policy given)')" -eq 3 ] &&
    has "trace: 3 hops, 0 denied" && ! has "allow:"
check $? "without -c: no verdicts, --resolve for every name, exit 0" || show
run -c egressd.yaml --resolve "a.test:$HP:127.0.0.4" "http://a.test:$HP/"
has "   response: 404 Not Found" && [ "$RC" -eq 0 ]
check $? "--resolve overrides the configuration's DNS" || show
run -c egressd.yaml --cacert pki/ca.pem --method HEAD "http://a.test:$HP/"
has "hop 1: HEAD http://a.test:$HP/" && has "hop 3: HEAD https://c.test:$TP/y" &&
    grep -qxF "HEAD /y host=c.test:$TP ua=egressctl-trace/$VERSION connection=close" https.log
check $? "--method HEAD" || show

# ---------------------------------------------------------------- report mode
config report.yaml report
run -c report.yaml --cacert pki/ca.pem "http://a.test:$HP/"
has "   policy:   would deny b.test:$HP (http): not_allowed (report mode: egressd lets it through and logs would_deny); rule: none (no rule admits b.test)" &&
    has "trace: 3 hops, 1 denied" && [ "$RC" -eq 1 ]
check $? "report mode: shown as would deny, exit 1" || show
run -c report.yaml --cacert pki/ca.pem --format json "http://a.test:$HP/"
printf '%s\n' "$OUT" | python3 -c '
import json, sys
h = json.load(sys.stdin)["hops"]
# Report mode relays (the enforced verdict is allow) and says what it
# would deny, and why, as egressd logs it.
assert (h[1]["verdict"], h[1]["reason"], h[1]["would_deny"]) == ("allow", "allowed", True), h[1]
assert (h[1]["would_deny_reason"], h[1]["would_deny_rule"], h[1]["denied"]) == \
    ("not_allowed", None, True), h[1]
assert (h[0]["would_deny"], h[0]["would_deny_reason"]) == (False, None), h[0]
assert h[0]["admitted_by"]["name"] == "origin" and h[0]["listener"] == "http", h[0]
assert h[2]["listener"] == "tls" and h[2]["detail"] is None, h[2]
'
check $? "report mode, json: verdict allow, would_deny with its reason, the admitting rule" || show

# ---------------------------------------------------------------- failures
run -c egressd.yaml --cacert other-ca.pem "http://a.test:$HP/"
[ "$RC" -eq 2 ] && printf '%s\n' "$ERR" | grep -qxF "egressctl trace: hop 3 (https://c.test:$TP/y): TLS handshake with c.test: certificate verify failed: unable to get local issuer certificate"
check $? "wrong --cacert: exit 2 with OpenSSL's reason" || show
has "   error:    TLS handshake with c.test: certificate verify failed: unable to get local issuer certificate" &&
    has "hop 2: GET http://b.test:$HP/x"
check $? "the hops before the failure are still printed" || show
run -c egressd.yaml --cacert pki/ca.pem "https://x.test:$TP/y"
[ "$RC" -eq 2 ] && printf '%s\n' "$ERR" | grep -qF "TLS handshake with x.test: certificate verify failed: hostname mismatch"
check $? "a certificate for another name: hostname mismatch, exit 2" || show
run -c egressd.yaml "http://a.test:$DEAD/"
[ "$RC" -eq 2 ] && printf '%s\n' "$ERR" | grep -qF "connect to 127.0.0.2:$DEAD: Connection refused"
check $? "connection refused: exit 2, which address" || show
run -c egressd.yaml "http://nope.test:$HP/"
[ "$RC" -eq 2 ] && printf '%s\n' "$ERR" | grep -qF "resolving nope.test with the configuration's dns.servers: "
check $? "a name DNS does not know: exit 2" || show
run -c egressd.yaml --cacert no-such-ca.pem "http://a.test:$HP/"
[ "$RC" -eq 2 ] && printf '%s\n' "$ERR" | grep -qF "egressctl trace: --cacert no-such-ca.pem: cannot load it"
check $? "an unreadable --cacert: exit 2" || show
for bad in "" "ftp://a.test/" "http://user@a.test/" "--max-hops 0 http://a.test/" \
    "--via nope http://a.test/" "--method POST http://a.test/" "--format xml http://a.test/" \
    "--resolve a.test:80 http://a.test/" "http://a.test/ http://b.test/"; do
	# shellcheck disable=SC2086
	run $bad
	[ "$RC" -eq 2 ]
	check $? "usage error: '$bad' exits 2" || show
done

# ---------------------------------------------------------------- --via
cat > via.yaml <<EOF
listeners:
  - {name: proxy, address: "127.0.0.1:$GW", protocol: connect}
workers: 1
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
policy: {files: [policy.yaml]}
log: {path: egressd.log}
EOF
"$EGRESSD" -t -c via.yaml >via-check.out 2>&1
check $? "the connect listener configuration is valid" || diag "$(cat via-check.out)"
LOG="$T/egressd.log"
start_egressd "$T/via.yaml"
run -c via.yaml --via "127.0.0.1:$GW" --cacert pki/ca.pem "http://a.test:$HP/"
cp run.out via-chain.out
[ "$RC" -eq 1 ] && has "trace: http://a.test:$HP/ via 127.0.0.1:$GW, policy from via.yaml"
check $? "--via: a hop refused, exit 1" || show
has "hop 1: GET http://a.test:$HP/" && has "   location: http://b.test:$HP/x"
check $? "--via: hop 1 through the gateway, 301 to b.test" || show
printf '%s\n' "$OUT" | grep -q "^   response: 403 Forbidden from the gateway: .*b\.test" &&
    has "trace: the gateway refused hop 2" && has "trace: 2 hops, 1 denied"
check $? "--via: the gateway's 403 for b.test, with its reason" || show
has "hop 2, b.test:$HP (http) is denied; an allow-list entry that admits it, native:"
check $? "--via: suggestion for the refused hop" || show
run -c via.yaml --via "127.0.0.1:$GW" --cacert pki/ca.pem "https://c.test:$TP/y"
[ "$RC" -eq 0 ] && has "   response: 200 OK" && has "trace: 1 hop, 0 denied"
check $? "--via: https through CONNECT, TLS verified inside the tunnel" || show
run -c via.yaml --via "127.0.0.1:$GW" --cacert pki/ca.pem "https://b.test:$HP/"
[ "$RC" -eq 1 ] && printf '%s\n' "$OUT" | grep -q "^   response: 403 Forbidden from the gateway to CONNECT: .*b\.test"
check $? "--via: a refused CONNECT is the gateway's 403 with its reason" || show
run --via "127.0.0.1:$GW" --cacert other-ca.pem "https://c.test:$TP/y"
[ "$RC" -eq 2 ] && printf '%s\n' "$ERR" | grep -qF "certificate verify failed: unable to get local issuer certificate"
check $? "--via: wrong --cacert inside the tunnel: exit 2" || show
run -c via.yaml --via "127.0.0.1:$DEAD" "http://a.test:$HP/"
[ "$RC" -eq 2 ] && printf '%s\n' "$ERR" | grep -qF "the gateway (--via 127.0.0.1:$DEAD): connect to 127.0.0.1:$DEAD: Connection refused"
check $? "--via: a gateway that does not listen: exit 2" || show

# ---------------------------------------------------------------- address guard
# The gateway connects only to addresses its guard lets through: c.test is
# on loopback, refused without dns.allow_ranges or the rule's allow_private.
# A direct trace resolves c.test itself, so it says what the gateway says:
# private_address, with the same detail, for the same rule.
GW3=$(free_port)
cat > guard.yaml <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW3", upstream_port: $TP}
workers: 1
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
policy: {files: [policy.yaml]}
log: {path: guard-egressd.log}
EOF
run -c guard.yaml --cacert pki/ca.pem "https://c.test:$TP/y"
has "   policy:   deny c.test:$TP (tls): private_address (c.test resolves to 127.0.0.3 (loopback)); rule policy.yaml:6: allow c.test (cdn, native); ports $TP" &&
    has "   response: 200 OK" && has "trace: 1 hop, 1 denied" &&
    has "not suggested: hop 1, c.test:$TP: private_address" && [ "$RC" -eq 1 ]
check $? "direct: an admitted hop on a loopback address is private_address, as the gateway refuses it" || show
run -c "$T/guard.yaml" --cacert pki/ca.pem --format json "https://c.test:$TP/y"
printf '%s\n' "$OUT" > guard.json
LOG="$T/guard-egressd.log"
start_egressd "$T/guard.yaml"
echo | timeout 10 openssl s_client -connect "127.0.0.1:$GW3" -servername c.test \
    -CAfile pki/ca.pem >guard-client.out 2>&1
wait_log "$LOG" 1 event=deny name=c.test reason=private_address
check $? "the gateway refuses c.test: private_address" || show
python3 - "$LOG" guard.json <<'EOF'
import json, sys
line = [json.loads(l) for l in open(sys.argv[1])
        if '"name":"c.test"' in l and '"event":"deny"' in l][0]
h = json.load(open(sys.argv[2]))["hops"][0]
assert (h["verdict"], h["reason"], h["detail"]) == \
    ("deny", line["reason"], line["detail"]), (h, line)
assert "%s:%d" % (h["rule"]["file"], h["rule"]["line"]) == line["rule"], (h, line)
EOF
check $? "trace's verdict, reason, detail and rule are the gateway's line's" || show
cat > guard-private.yaml <<EOF
allow:
  - name: cdn
    hosts: [c.test]
    ports: [$TP]
    allow_private: true
EOF
config guard-private-cfg.yaml enforce guard-private.yaml
sed -i '/allow_ranges/d' guard-private-cfg.yaml
run -c guard-private-cfg.yaml --cacert pki/ca.pem "https://c.test:$TP/y"
has "   policy:   allow c.test:$TP (tls): allowed; rule guard-private.yaml:3: allow c.test (cdn, native); ports $TP" &&
    [ "$RC" -eq 0 ]
check $? "direct: the admitting rule's allow_private lets the loopback address through" || show
printf '  deny_ranges: ["127.0.0.3/32"]\n' > deny.frag
sed -i '/^dns:/r deny.frag' guard-private-cfg.yaml
run -c guard-private-cfg.yaml --cacert pki/ca.pem "https://c.test:$TP/y"
has "   policy:   deny c.test:$TP (tls): private_address (c.test resolves to 127.0.0.3 (in dns.deny_ranges)); rule guard-private.yaml:3: allow c.test (cdn, native); ports $TP" &&
    [ "$RC" -eq 1 ]
check $? "direct: dns.deny_ranges wins over allow_private" || show

# ---------------------------------------------------------------- sources
# Rules with sources apply to the client the gateway accepts. Through --via
# that is trace's own end of the connection (127.0.0.1 here): a hop the
# gateway relays for it is not "denied", and one it refuses for it is.
GW2=$(free_port)
GH2=$(free_port)
cat > src-policy.yaml <<EOF
allow:
  - name: from-local
    hosts: [n.test]
    ports: [$HP]
    sources: [127.0.0.1/32]
  - name: cdn
    hosts: [c.test]
    ports: [$TP]
deny:
  - name: not-from-local
    hosts: [c.test]
    sources: [127.0.0.1/32]
EOF
cat > src-via.yaml <<EOF
listeners:
  - {name: proxy, address: "127.0.0.1:$GW2", protocol: connect}
  - {name: plain, address: "127.0.0.1:$GH2", protocol: http}
workers: 1
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/8"]
policy: {files: [src-policy.yaml]}
log: {path: src-egressd.log}
EOF
LOG="$T/src-egressd.log"
start_egressd "$T/src-via.yaml"
run -c src-via.yaml --via "127.0.0.1:$GW2" "http://n.test:$HP/"
[ "$RC" -eq 0 ] && has "   src:      127.0.0.1" &&
    has "   policy:   allow n.test:$HP (http): allowed; rule src-policy.yaml:3: allow n.test (from-local, native); ports $HP" &&
    has "   response: 302 Found" && has "trace: 1 hop, 0 denied"
check $? "--via: a rule whose sources hold trace's address admits the hop, as the gateway does" || show
wait_log "$LOG" 1 event=allow name=n.test rule_name=from-local
check $? "--via: the gateway's line for it names the same rule"
run -c src-via.yaml --via "127.0.0.1:$GW2" --cacert pki/ca.pem --format json "https://c.test:$TP/y"
printf '%s\n' "$OUT" | python3 -c '
import json, sys
h = json.load(sys.stdin)["hops"][0]
assert (h["verdict"], h["reason"], h["src"]) == ("deny", "denied_by_rule", "127.0.0.1"), h
assert h["rule"]["name"] == "not-from-local" and h["status"] == 403 and h["from_gateway"], h
' && [ "$RC" -eq 1 ]
check $? "--via: a deny rule whose sources hold trace's address: denied, and the gateway refuses it" || show
run -c src-via.yaml "http://n.test:$HP/"
has "   policy:   deny n.test:$HP (http): not_allowed; rule: none (no rule admits n.test)" &&
    ! printf '%s\n' "$OUT" | grep -q "^   src:" && [ "$RC" -eq 1 ]
check $? "direct without --src: rules with sources do not apply" || show
run -c src-via.yaml --src 127.0.0.1 "http://n.test:$HP/"
has "   src:      127.0.0.1" &&
    has "   policy:   allow n.test:$HP (http): allowed; rule src-policy.yaml:3: allow n.test (from-local, native); ports $HP" &&
    [ "$RC" -eq 0 ]
check $? "direct --src 127.0.0.1: decided for that client" || show
run -c src-via.yaml --src 127.0.0.9 "http://n.test:$HP/"
has "   policy:   deny n.test:$HP (http): not_allowed; rule: none (no rule admits n.test)" && [ "$RC" -eq 1 ]
check $? "direct --src outside the sources: not_allowed" || show
run -c src-via.yaml --via "127.0.0.1:$GW2" --src 127.0.0.1 "http://n.test:$HP/"
[ "$RC" -eq 2 ] && printf '%s\n' "$ERR" | grep -qF -- "--src applies to direct requests"
check $? "--src with --via: usage error (the gateway sees trace's own address)" || show
run -c src-via.yaml --src nope "http://n.test:$HP/"
[ "$RC" -eq 2 ]
check $? "--src that is not an address: exit 2" || show

# --via an http listener of the configuration: it takes absolute-form
# requests, and answers CONNECT 400 (bad_http). trace decides for the
# listener it reached, so its verdict is the gateway's answer.
run -c src-via.yaml --via "127.0.0.1:$GH2" "http://n.test:$HP/"
has "   policy:   allow n.test:$HP (http): allowed; rule src-policy.yaml:3: allow n.test (from-local, native); ports $HP" &&
    has "   response: 302 Found" && [ "$RC" -eq 0 ]
check $? "--via an http listener: an http hop is relayed as decided" || show
run -c src-via.yaml --via "127.0.0.1:$GH2" --cacert pki/ca.pem --format json "https://c.test:$TP/y"
printf '%s\n' "$OUT" | python3 -c '
import json, sys
h = json.load(sys.stdin)["hops"][0]
assert (h["verdict"], h["reason"], h["listener"]) == ("deny", "bad_http", "http"), h
assert (h["status"], h["from_gateway"], h["denied"]) == (400, True, True), h
' && [ "$RC" -eq 1 ]
check $? "--via an http listener: an https hop (CONNECT) is bad_http, as the gateway answers" || show
wait_log "$LOG" 1 event=deny reason=bad_http listener=plain
check $? "--via an http listener: the gateway's line says bad_http"

finish

#!/bin/bash
# egressctl audit on real captures: tcpdump records real clients (curl over
# TLS and plain HTTP, openssl s_client with and without SNI, a ClientHello
# sent in several TCP segments, pipelined HTTP requests, bytes that are
# neither, DNS queries) talking to real servers on loopback; audit decides
# each flow with the daemon's configuration. Then hand-made captures check
# reassembly (out of order, retransmitted, overlapping, sequence wrap, no
# SYN), IPv6, VLAN, DLT_NULL, fragments and the limits, and the errors.
# Then CONNECT tunnels through egressd's connect listener (the inner SNI or
# Host must be the CONNECT host; an absolute https:// request is bad_http,
# as the daemon answers it), a keep-alive connection carrying a chunked POST
# and a GET, and ClientHellos offering ECH (with and without refuse_ech).
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3 tcpdump
: "${EGRESSCTL:=$top_builddir/egressctl}"
[ -x "$EGRESSCTL" ] || bail "no egressctl binary at $EGRESSCTL"
PY="$top_srcdir/tests/integration/audit_pcap.py"

make_pki ok.test
DNS_PORT=$(free_port)
TLS=$(free_port)
HTTP=$(free_port)
start_dns "$DNS_PORT" ok.test=127.0.0.3
start_tls_www "127.0.0.3:$TLS" ok.test
mkdir -p "$T/www"
echo hello > "$T/www/index.html"
python3 -m http.server --bind 127.0.0.4 --directory "$T/www" "$HTTP" \
    >"$T/http.log" 2>&1 &
PIDS="$PIDS $!"
wait_port "127.0.0.4:$HTTP" 10 || bail "python http.server did not listen"

cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [ok.test, trial.test]
    ports: [443, $TLS]
  - hosts: [plain.test]
    ports: [$HTTP]
  - hosts: [src.test]
    ports: [$TLS]
    sources: [127.0.0.7/32]
deny:
  - hosts: [evil.test]
EOF
cat > "$T/report.yaml" <<EOF
mode: report
deny:
  - hosts: [trial.test]
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$(free_port)"}
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
policy: {files: [policy.yaml, report.yaml]}
EOF
"$EGRESSD" -t -c "$T/egressd.yaml" >/dev/null 2>&1 || bail "the test configuration does not load"

# capture IFACE FILE FILTER: start tcpdump, wait until it captures.
# --immediate-mode: with -i any, packets still in the kernel's ring buffer
# when SIGINT comes are otherwise never written. -B 65536: in immediate
# mode each slot of the kernel's ring holds one snapshot-length frame
# (256 KiB), so the default 2 MiB ring holds 8 packets, and a 100 KB upload
# on loopback (32 KiB segments and their ACKs) overflowed it now and then:
# "packets dropped by kernel", a capture with a hole, a flow audit cannot
# follow. stop_capture fails the test on any drop.
capture() {
	tcpdump -i "$1" -B 65536 -U --immediate-mode -n -w "$2" "$3" 2>"$2.err" &
	TCPDUMP_PID=$!
	CAPTURE_ERR=$2.err
	PIDS="$PIDS $TCPDUMP_PID"
	if ! wait_for "$2.err" "listening on" 10; then
		if [ "$(id -u)" -ne 0 ]; then
			echo "1..0 # SKIP tcpdump cannot capture on $1 (not root): $(head -1 "$2.err")"
			exit 0
		fi
		bail "tcpdump did not start: $(cat "$2.err")"
	fi
}
# stop_capture: SIGINT, then wait; tcpdump flushes the file on the way out.
stop_capture() {
	sleep 0.3
	kill -INT "$TCPDUMP_PID" 2>/dev/null
	wait "$TCPDUMP_PID" 2>/dev/null
	grep -q "^0 packets dropped by kernel" "$CAPTURE_ERR" ||
		bail "tcpdump lost packets: $(tr '\n' ' ' < "$CAPTURE_ERR")"
}

CURL="curl -sS --max-time 10 -k"
tls_get() {
	# tls_get NAME [CURL OPTIONS]: https://NAME:$TLS/ served by s_server.
	n=$1
	shift
	$CURL "$@" --resolve "$n:$TLS:127.0.0.3" "https://$n:$TLS/" >/dev/null 2>&1
}
sclient() {
	openssl s_client -connect "127.0.0.3:$TLS" "$@" </dev/null >/dev/null 2>&1
}

# ---------------------------------------------------------------- lo capture
FILTER="tcp port $TLS or tcp port $HTTP or udp port $DNS_PORT"
capture lo "$T/lo.pcap" "$FILTER"
tls_get ok.test
tls_get ok.test --interface 127.0.0.5
tls_get other.test
tls_get other.test --interface 127.0.0.6
tls_get src.test --interface 127.0.0.7
tls_get src.test
tls_get trial.test
sclient -servername evil.test
sclient -noservername
$CURL --resolve "plain.test:$HTTP:127.0.0.4" "http://plain.test:$HTTP/" >/dev/null 2>&1
$CURL --resolve "nope.test:$HTTP:127.0.0.4" "http://nope.test:$HTTP/" >/dev/null 2>&1
python3 "$PY" pipelined 127.0.0.4 "$HTTP" plain.test nope2.test
python3 "$PY" garbage 127.0.0.3 "$TLS"
SEGPORT=$(python3 "$PY" segmented 127.0.0.3 "$TLS" seg.test 6)
python3 "$PY" dnsq "$DNS_PORT" ok.test A
python3 "$PY" dnsq "$DNS_PORT" ok.test AAAA
python3 "$PY" dnsq "$DNS_PORT" lookup.test A
stop_capture

cd "$T" || bail "no temp dir"
run() {
	"$EGRESSCTL" "$@" >run.out 2>run.err
	RC=$?
	OUT=$(cat run.out)
	ERR=$(cat run.err)
}
show() {
	diag "exit $RC; stdout:"
	diag "$OUT"
	diag "stderr: $ERR"
}
okshow() {
	ok "$1" "$2"
	[ "$1" -eq 0 ] || show
}
# row TABLE FIELDS...: the text table TABLE ("denied" or "allowed") has a
# row whose first columns are FIELDS (whitespace-separated, exact).
row() {
	python3 - "$@" <<'EOF'
import sys
table, want = sys.argv[1], sys.argv[2:]
head = {"denied": "would be denied:", "allowed": "allowed:",
        "dns": "DNS queries ("}[table]
inside = False
for line in open("run.out"):
    if line.startswith(head):
        inside = True
        continue
    if inside and not line.strip():
        break
    if inside and line.split()[:len(want)] == want:
        sys.exit(0)
sys.exit(1)
EOF
}

# The segmented ClientHello really crossed several TCP segments.
NSEG=$(tcpdump -r lo.pcap -n "tcp src port $SEGPORT and tcp[tcpflags] & tcp-push != 0" 2>/dev/null | wc -l)
[ "$NSEG" -ge 4 ]
ok $? "the seg.test ClientHello crossed $NSEG TCP segments"

run audit -c egressd.yaml --dns-port "$DNS_PORT" lo.pcap
[ "$RC" -eq 1 ]
okshow $? "denials in the capture: exit 1"
S="audit: 15 flows in 1 capture(s): 5 allowed, 10 would be denied (7 names); 3 DNS queries"
[ "$(echo "$OUT" | tail -1)" = "$S" ]
okshow $? "summary line: $S"
row denied other.test "$TLS" tls not_allowed 127.0.0.1,127.0.0.6 2
okshow $? "other.test: not_allowed, two sources, count 2"
row denied evil.test "$TLS" tls denied_by_rule 127.0.0.1 1 &&
    echo "$OUT" | grep -q "^evil\.test .* policy\.yaml:10 (deny\[0\])$"
okshow $? "evil.test: denied_by_rule, with the deny rule's file:line"
row denied src.test "$TLS" tls not_allowed 127.0.0.1 1
okshow $? "src.test from a source outside the rule's sources: not_allowed"
row denied trial.test "$TLS" tls denied_by_rule "(report)" 127.0.0.1 1 &&
    echo "$OUT" | grep -q "^trial\.test .* report\.yaml:3 (deny\[0\])$"
okshow $? "trial.test: admitted, but a report-mode deny rule would deny it: listed as would be denied, with the report rule"
row denied - "$TLS" tls no_sni 127.0.0.1 1
okshow $? "s_client -noservername: no_sni"
row denied - "$TLS" tls not_tls 127.0.0.1 1
okshow $? "bytes that are neither TLS nor HTTP: not_tls"
row denied seg.test "$TLS" tls not_allowed 127.0.0.1 1
okshow $? "a ClientHello in several segments is reassembled: seg.test"
row denied nope.test "$HTTP" http not_allowed 127.0.0.1 1 &&
    row denied nope2.test "$HTTP" http not_allowed 127.0.0.1 1
okshow $? "plain HTTP: the Host of curl's and of the second pipelined request"
row allowed ok.test "$TLS" tls 127.0.0.1,127.0.0.5 2
okshow $? "ok.test allowed, two sources"
row allowed plain.test "$HTTP" http 127.0.0.1 2
okshow $? "plain.test allowed twice (curl, first pipelined request)"
row allowed src.test "$TLS" tls 127.0.0.7 1
okshow $? "src.test from its rule's source: allowed"
echo "$OUT" | grep -q "^ok\.test .* policy\.yaml:2 (allow\[0\])$"
okshow $? "the allowed row names the deciding rule"
row dns ok.test A,AAAA allow 127.0.0.1 2 && row dns lookup.test A deny not_allowed 127.0.0.1 1
okshow $? "DNS names listed with the verdict on 443"
echo "$OUT" | grep -q "^DNS queries (a name looked up is not a connection"
okshow $? "the DNS section says a lookup is not a connection"
echo "$OUT" | grep -Eq "^other\.test +$TLS +tls +not_allowed +[^ ]+ +2 +20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z +20[0-9-]{8}T[0-9:.]{12}Z"
okshow $? "first and last seen in ISO 8601 UTC"

run audit -c egressd.yaml --format json --dns-port "$DNS_PORT" lo.pcap
python3 - "$TLS" "$HTTP" <<'EOF'
import json, sys
tls, http = int(sys.argv[1]), int(sys.argv[2])
d = json.load(open("run.out"))
s = d["summary"]
assert (s["flows"], s["allowed"], s["would_deny"], s["denied_names"],
        s["dns_queries"], s["not_judged"]) == (15, 5, 10, 7, 3, 0), s
den = {(g["name"], g["port"], g["proto"], g["reason"]): g for g in d["denied"]}
g = den[("other.test", tls, "tls", "not_allowed")]
assert g["count"] == 2 and g["sources"] == ["127.0.0.1", "127.0.0.6"], g
assert g["first_seen"] <= g["last_seen"] and g["first_seen"].endswith("Z"), g
g = den[("evil.test", tls, "tls", "denied_by_rule")]
assert g["rule"]["file"] == "policy.yaml" and g["rule"]["line"] == 10, g
assert g["report_mode"] is False, g
assert den[("trial.test", tls, "tls", "denied_by_rule")]["report_mode"] is True
assert den[(None, tls, "tls", "no_sni")]["count"] == 1
assert den[(None, tls, "tls", "not_tls")]["count"] == 1
assert den[("nope2.test", http, "http", "not_allowed")]["count"] == 1
al = {(g["name"], g["port"], g["proto"]): g for g in d["allowed"]}
assert al[("ok.test", tls, "tls")]["rule"]["line"] == 2
assert al[("plain.test", http, "http")]["count"] == 2
dns = {g["name"]: g for g in d["dns"]}
assert dns["ok.test"]["types"] == ["A", "AAAA"] and dns["ok.test"]["verdict_443"] == "allow"
assert dns["lookup.test"]["verdict_443"] == "deny" and dns["lookup.test"]["reason"] == "not_allowed"
EOF
okshow $? "--format json: one document with the same facts"
[ "$RC" -eq 1 ]
okshow $? "--format json: exit 1 too"

# ---------------------------------------------------------------- -i any (SLL2)
capture any "$T/any.pcap" "$FILTER"
tls_get ok.test
$CURL --resolve "plain.test:$HTTP:127.0.0.4" "http://plain.test:$HTTP/" >/dev/null 2>&1
stop_capture
tcpdump -r any.pcap -c 1 2>&1 | grep -q "LINUX_SLL2"
ok $? "tcpdump -i any wrote a LINUX_SLL2 capture"
run audit -c egressd.yaml any.pcap
[ "$RC" -eq 0 ] &&
    [ "$(echo "$OUT" | tail -1)" = "audit: 2 flows in 1 capture(s): 2 allowed, 0 would be denied (0 names); 0 DNS queries" ] &&
    echo "$OUT" | grep -q "^would be denied: nothing$" &&
    row allowed ok.test "$TLS" tls 127.0.0.1 1 &&
    row allowed plain.test "$HTTP" http 127.0.0.1 1
okshow $? "SLL2 capture with only allowed traffic: exit 0"

run audit -c egressd.yaml --dns-port "$DNS_PORT" any.pcap lo.pcap
[ "$RC" -eq 1 ] && echo "$OUT" | tail -1 | grep -q "^audit: 17 flows in 2 capture(s): 7 allowed, 10 would be denied"
okshow $? "two captures: counted together"

# ---------------------------------------------------------------- hand-made
python3 "$PY" synth "$T" || bail "cannot write the hand-made captures"
run audit -c egressd.yaml raw.pcap
[ "$RC" -eq 1 ] && row denied ooo.test 443 tls not_allowed 127.0.0.21 1
okshow $? "out of order, retransmitted, overlapping segments across a sequence wrap: ooo.test"
row denied nosyn.test 443 tls not_allowed 127.0.0.21 1
okshow $? "no SYN captured: the side that starts a hello is the client"
row denied v6.test 443 tls not_allowed ::1 1
okshow $? "IPv6 with a hop-by-hop header"
row denied - 443 tls hello_too_large 127.0.0.21 2
okshow $? "a 64 KiB hello and one in too many records: hello_too_large"
echo "$OUT" | grep -q "^  1 incomplete: " && echo "$OUT" | grep -q "^  1 no_payload: " &&
    echo "$OUT" | grep -q "^  1 midstream: " &&
    echo "$OUT" | grep -q "^IP fragments ignored: 2$" &&
    [ "$(echo "$OUT" | tail -1)" = "audit: 5 flows in 1 capture(s): 0 allowed, 5 would be denied (3 names), 3 not judged; 0 DNS queries" ]
okshow $? "half a hello, a bare SYN, mid-connection bytes: not judged; fragments counted"
run audit -c egressd.yaml vlan.pcap null.pcap
[ "$RC" -eq 1 ] && row denied vlan.test 443 tls not_allowed 127.0.0.21 1 &&
    row denied null.test 443 tls not_allowed 127.0.0.21 1
okshow $? "Ethernet with an 802.1Q tag, and DLT_NULL"
run audit -c egressd.yaml --port-map "$TLS=443" any.pcap
[ "$RC" -eq 0 ] && row allowed ok.test 443 tls 127.0.0.1 1
okshow $? "--port-map decides the captured port as another"

# ---------------------------------------------------------------- errors
run audit -c egressd.yaml wifi.pcap
[ "$RC" -eq 2 ] && echo "$ERR" | grep -q "wifi.pcap: link type IEEE802_11 (105) is not supported"
okshow $? "an unsupported link type: exit 2, named"
head -c 300 /dev/urandom > garbage.pcap
printf 'not a capture at all, just text\n' >> garbage.pcap
run audit -c egressd.yaml garbage.pcap
[ "$RC" -eq 2 ] && echo "$ERR" | grep -q "^egressctl audit: garbage.pcap: cannot read the capture: " && [ -z "$OUT" ]
okshow $? "a garbage file: exit 2 with a clear message, nothing on stdout"
run audit -c egressd.yaml missing.pcap
[ "$RC" -eq 2 ] && echo "$ERR" | grep -q "missing.pcap: cannot read the capture"
okshow $? "a missing capture: exit 2"
run audit lo.pcap
[ "$RC" -eq 2 ] && echo "$ERR" | grep -q "\-c CONFIG is required"
okshow $? "no -c: exit 2"
run audit -c egressd.yaml
[ "$RC" -eq 2 ] && echo "$ERR" | grep -q "give at least one CAPTURE"
okshow $? "no capture: exit 2"
run audit -c egressd.yaml --format xml lo.pcap
[ "$RC" -eq 2 ]
okshow $? "--format xml: exit 2"
run audit -c egressd.yaml --port-map 443 lo.pcap
[ "$RC" -eq 2 ]
okshow $? "--port-map without '=': exit 2"
printf 'allow:\n  - hosts: ["*foo.test"]\n' > bad.yaml
sed 's/policy.yaml, report.yaml/bad.yaml/' egressd.yaml > bad-config.yaml
run audit -c bad-config.yaml lo.pcap
[ "$RC" -eq 2 ] && echo "$ERR" | grep -q "^bad.yaml:2:.*" && echo "$ERR" | grep -q "the policy does not load"
okshow $? "a policy that does not load: exit 2, file:line"
run audit --help
[ "$RC" -eq 0 ] && echo "$OUT" | grep -q "^usage: egressctl audit"
okshow $? "--help"

# ---------------------------------------------------------------- CONNECT tunnels
# egressd's own connect listener is the forward proxy; tcpdump records the
# clients' side (the proxy port). Inside a tunnel admitted for a.test the
# client's ClientHello (or plain request) must name a.test, as the daemon
# checks: audit must refuse what the daemon's log refuses.
DNS2=$(free_port)
PX=$(free_port)
start_dns "$DNS2" a.test=127.0.0.3
cat > "$T/tunnel.yaml" <<EOF
allow:
  - hosts: [a.test]
    ports: [$TLS]
    allow_private: true
EOF
LOG="$T/proxy.log"
cat > "$T/proxy.yaml" <<EOF
listeners:
  - {name: proxy, address: "127.0.0.1:$PX", protocol: connect}
workers: 1
admin: {address: "off"}
dns:
  servers: ["127.0.0.1:$DNS2"]
policy: {files: [tunnel.yaml]}
log: {path: proxy.log}
timeouts: {connect: 2s, hello: 2s}
EOF
start_egressd "$T/proxy.yaml"
px_sclient() {
	timeout 20 openssl s_client -proxy "127.0.0.1:$PX" -connect "a.test:$TLS" \
	    "$@" </dev/null >>"$T/px_sclient.out" 2>&1
}
px_curl() {
	$CURL --noproxy "" --proxy "http://127.0.0.1:$PX" "$@" >/dev/null 2>&1
}
capture lo "$T/tunnel-lo.pcap" "tcp port $PX"
px_sclient -servername a.test
px_sclient -servername evil.test
px_curl "https://a.test:$TLS/"
px_curl "https://nope.test:$TLS/"
python3 "$PY" tunnel_http 127.0.0.1 "$PX" "a.test:$TLS" other.test
# An absolute https:// URL to the proxy: only CONNECT may reach https.
python3 - 127.0.0.1 "$PX" "a.test:$TLS" <<'EOF'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)
a = sys.argv[3].encode()
s.sendall(b"GET https://" + a + b"/ HTTP/1.1\r\nHost: " + a + b"\r\n\r\n")
s.settimeout(2)
try:
    s.recv(4096)
except OSError:
    pass
s.close()
EOF
wait_log "$LOG" 2 event=deny reason=sni_mismatch &&
    wait_log "$LOG" 1 event=deny reason=not_allowed name=nope.test proto=connect &&
    wait_log "$LOG" 1 event=deny reason=bad_http name=a.test &&
    wait_log "$LOG" 3 event=allow name=a.test proto=connect
okshow $? "the daemon refused the two tunnels that named another host, nope.test, and GET https://"
stop_capture

run audit -c proxy.yaml tunnel-lo.pcap
S="audit: 6 flows in 1 capture(s): 2 allowed, 4 would be denied (2 names); 0 DNS queries"
[ "$RC" -eq 1 ] && [ "$(echo "$OUT" | tail -1)" = "$S" ]
okshow $? "tunnels through egressd: $S"
row allowed a.test "$TLS" connect 127.0.0.1 2
okshow $? "the tunnels whose ClientHello names a.test (s_client, curl): allowed on the CONNECT port"
row denied a.test "$TLS" connect sni_mismatch 127.0.0.1 1 &&
    echo "$OUT" | grep -qx "  a\.test:$TLS: the ClientHello names evil\.test (1)"
okshow $? "s_client -servername evil.test in a tunnel for a.test: sni_mismatch, with a note"
echo "$OUT" | grep -qx "  a\.test:$TLS: the request in the tunnel is for other\.test:$TLS (1)"
okshow $? "a plain GET for other.test in a tunnel for a.test: sni_mismatch"
row denied nope.test "$TLS" connect not_allowed 127.0.0.1 1
okshow $? "a CONNECT the policy refuses: its own decision"
row denied a.test "$TLS" http bad_http 127.0.0.1 1
okshow $? "GET https://a.test:$TLS/ to the proxy: bad_http, as the daemon answers it (not decided as port $TLS)"
run audit -c proxy.yaml --format json tunnel-lo.pcap
python3 - "$TLS" "$LOG" <<'EOF'
import collections, json, sys
tls, log = int(sys.argv[1]), sys.argv[2]
d = json.load(open("run.out"))
mm = [g for g in d["denied"] if g["reason"] == "sni_mismatch"]
assert sorted((g["name"], g["port"], g["proto"], g["count"]) for g in mm) == \
    [("a.test", tls, "connect", 1)] * 2, mm
inner = sorted(json.dumps(g["inner"], sort_keys=True) for g in mm)
assert inner == sorted([
    json.dumps({"proto": "tls", "name": "evil.test", "port": None}, sort_keys=True),
    json.dumps({"proto": "http", "name": "other.test", "port": tls}, sort_keys=True)]), inner
assert all("inner" not in g for g in d["allowed"]), d["allowed"]
assert all("inner" not in g for g in d["denied"] if g["reason"] != "sni_mismatch")
# What the daemon refused, reason by reason, is what audit would refuse.
daemon = collections.Counter()
for line in open(log):
    r = json.loads(line)
    if r.get("event") == "deny":
        daemon[r["reason"]] += 1
audit = collections.Counter()
for g in d["denied"]:
    audit[g["reason"]] += g["count"]
assert daemon == audit, (daemon, audit)
EOF
okshow $? "--format json: the inner names, and the same refusals as the daemon's log"

# Hand-made tunnels (tunnel.pcap, from synth): inner SNI or Host, a
# second request for another port, neither TLS nor HTTP, no bytes, no SNI,
# a CONNECT sent again after a 407; keep-alive bodies to port 80. A
# ClientHello without a server name in a tunnel is sni_mismatch, as
# dc_decide() decides it for the daemon (audit_pcap.py's comment on that
# flow predates it).
run audit -c egressd.yaml --port-map "80=$HTTP" tunnel.pcap
S="audit: 15 flows in 1 capture(s): 7 allowed, 8 would be denied (4 names); 0 DNS queries"
[ "$RC" -eq 1 ] && [ "$(echo "$OUT" | tail -1)" = "$S" ]
okshow $? "hand-made tunnels and bodies: $S"
row allowed ok.test 443 connect 127.0.0.21 4
okshow $? "inner SNI ok.test, GETs for ok.test and ok.test:443, no bytes, a 407 retry: the CONNECT decision stands"
echo "$OUT" | grep -qx "  ok\.test:443: the ClientHello names evil\.test (1)" &&
    echo "$OUT" | grep -qx "  ok\.test:443: the ClientHello names no server (1)" &&
    echo "$OUT" | grep -qx "  ok\.test:443: the request in the tunnel is for other\.test:443 (1)" &&
    echo "$OUT" | grep -qx "  ok\.test:443: the request in the tunnel is for ok\.test:8080 (1)" &&
    echo "$OUT" | grep -qx "  ok\.test:443: neither TLS nor HTTP in the tunnel (1)" &&
    [ "$(echo "$OUT" | grep -c "^ok\.test  *443  *connect  *sni_mismatch  *127\.0\.0\.21  *1 ")" -eq 5 ]
okshow $? "sni_mismatch: another SNI, none, another Host, another port, neither TLS nor HTTP"
row denied evil.test 443 connect denied_by_rule 127.0.0.21 1
okshow $? "a refused CONNECT: the tunnel behind it is not read"
row allowed plain.test "$HTTP" http 127.0.0.21 3 &&
    row denied nope4.test "$HTTP" http not_allowed 127.0.0.21 1 &&
    row denied nope5.test "$HTTP" http not_allowed 127.0.0.21 1 &&
    ! echo "$OUT" | grep -q nope6
okshow $? "chunked bodies (segmented, with a trailer; 40 KB in one segment) skipped: the next head is decided; not after broken framing"

# ---------------------------------------------------------------- keep-alive after a chunked body
KA=$(free_port)
python3 "$top_srcdir/tests/integration/origin.py" --log "$T/ka.log" "127.0.0.4:$KA" \
    2>"$T/ka.err" &
PIDS="$PIDS $!"
wait_port "127.0.0.4:$KA" 10 || bail "origin.py did not listen"
head -c 100000 /dev/zero | tr '\0' 'p' > "$T/body"
capture lo "$T/ka.pcap" "tcp port $KA"
$CURL -H 'Transfer-Encoding: chunked' -H 'Expect:' --data-binary @"$T/body" \
    --resolve "plain.test:$KA:127.0.0.4" "http://plain.test:$KA/post" \
    --next -sS --max-time 10 -H 'Host: nope3.test' \
    --resolve "plain.test:$KA:127.0.0.4" "http://plain.test:$KA/get" >/dev/null 2>&1
stop_capture
# (origin.log numbers connections; wait_port's probe was the first.)
KAC=$(sed -n "s|^conn=\([0-9]*\) n=1 POST /post host=plain\.test:$KA body=100000 .*|\1|p" "$T/ka.log")
[ -n "$KAC" ] && grep -q "^conn=$KAC n=2 GET /get host=nope3\.test " "$T/ka.log"
ok $? "curl sent a chunked POST and a GET on one keep-alive connection" ||
    diag "$(cat "$T/ka.log")"
run audit -c egressd.yaml --port-map "$KA=$HTTP" ka.pcap
S="audit: 2 flows in 1 capture(s): 1 allowed, 1 would be denied (1 names); 0 DNS queries"
[ "$RC" -eq 1 ] && [ "$(echo "$OUT" | tail -1)" = "$S" ] &&
    row allowed plain.test "$HTTP" http 127.0.0.1 1 &&
    row denied nope3.test "$HTTP" http not_allowed 127.0.0.1 1
okshow $? "both request heads decided: the chunked POST's and the GET's after it"

# ---------------------------------------------------------------- ECH, https:// to a proxy
# ech.pcap: ClientHellos for ok.test and other.test offering ECH (python's
# own hello with an encrypted_client_hello extension added), one without,
# and an absolute-form https:// request to a proxy port.
python3 - "$top_srcdir/tests/integration" "$T/ech.pcap" <<'EOF'
import struct, sys
sys.path.insert(0, sys.argv[1])
import audit_pcap as ap

def with_ech(name):
    rec = ap.first_flight(name)
    hs = rec[5:]
    assert rec[0] == 0x16 and hs[0] == 1
    body = hs[4:]
    o = 2 + 32
    o += 1 + body[o]                                  # session id
    o += 2 + struct.unpack("!H", body[o:o + 2])[0]    # cipher suites
    o += 1 + body[o]                                  # compression
    ext = body[o + 2:]
    # encrypted_client_hello (0xfe0d), outer: type 0, a cipher suite, a
    # config id, an empty enc and a short payload.
    ech = b"\x00" + b"\x00\x01\x00\x01" + b"\x07" + b"\x00\x00" + b"\x00\x04abcd"
    ext += struct.pack("!HH", 0xfe0d, len(ech)) + ech
    body = body[:o] + struct.pack("!H", len(ext)) + ext
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs

p = ap.Pcap(sys.argv[2], 101)
cli, srv = "127.0.0.31", "127.0.0.33"
ap.conversation(p, cli, srv, 42001, 443, [with_ech("ok.test")])
ap.conversation(p, cli, srv, 42002, 443, [with_ech("other.test")])
ap.conversation(p, cli, srv, 42003, 443, [ap.first_flight("ok.test")])
ap.conversation(p, cli, srv, 42004, 3128,
                [b"GET https://ok.test/ HTTP/1.1\r\nHost: ok.test\r\n\r\n"])
p.close()
EOF
[ -s "$T/ech.pcap" ] || bail "cannot write ech.pcap"
run audit -c egressd.yaml --format json ech.pcap
python3 - <<'EOF'
import json
d = json.load(open("run.out"))
al = {(g["name"], g["port"], g["proto"]): g for g in d["allowed"]}
den = {(g["name"], g["port"], g["proto"], g["reason"]): g for g in d["denied"]}
g = al[("ok.test", 443, "tls")]
assert g["count"] == 2 and g["ech"] is True and g["ech_count"] == 1, g
g = den[("other.test", 443, "tls", "not_allowed")]
assert g["ech"] is True and g["ech_count"] == 1, g
g = den[("ok.test", 443, "http", "bad_http")]
assert g["ech"] is None and g["ech_count"] == 0, g
assert d["summary"]["ech_count"] == 2, d["summary"]
EOF
okshow $? "ECH: counted per row (true/false/null), and GET https:// to a proxy is bad_http on 443"
sed 's/^policy:/refuse_ech: true\npolicy:/' egressd.yaml > ech-egressd.yaml
run audit -c ech-egressd.yaml ech.pcap
[ "$RC" -eq 1 ] && row denied ok.test 443 tls ech_refused 127.0.0.31 1 &&
    row denied other.test 443 tls ech_refused 127.0.0.31 1 &&
    row allowed ok.test 443 tls 127.0.0.31 1 &&
    echo "$OUT" | grep -qx "  ok\.test:443 tls ech_refused: 1 of 1 ClientHello(s)"
okshow $? "refuse_ech: true: a ClientHello offering ECH is ech_refused, before the policy"

finish

#!/bin/sh
# Long-lived connections are on record before they end:
#   (a) log.interim_interval: a relayed TLS connection and a CONNECT tunnel
#       each get "interim" lines while open (event interim, reason relaying,
#       their bytes and upstream so far, the documented keys), then their
#       one final line with the same conn id; a denial gets none; metrics
#       count interim lines apart from connections;
#   (b) the admin's /connections lists the live connections of both
#       workers as JSON: "state", then the keys of the line as it would be
#       written now;
#   (c) an interval under a second is refused with a clear error.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki one.test two.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
PX=$(free_port)
A=$(free_port)
start_dns "$DNS_PORT" one.test=127.0.0.2 two.test=127.0.0.3
# s_server -www serves one connection at a time: one server per held
# connection.
start_tls_www "127.0.0.2:$UP" one.test
start_tls_www "127.0.0.3:$UP" two.test

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [one.test, two.test]
    ports: [$UP]
    allow_private: true
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
  - {name: proxy, address: "127.0.0.1:$PX", protocol: connect}
workers: 2
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.yaml], watch: false}
log: {path: egressd.log, interim_interval: 1s}
admin: {address: "127.0.0.1:$A"}
EOF

# ---- (c) a bad interval ------------------------------------------------------
sed 's/interim_interval: 1s/interim_interval: 500ms/' "$T/egressd.yaml" > "$T/bad.yaml"
OUT=$("$EGRESSD" -t -c "$T/bad.yaml" 2>&1)
RC=$?
[ $RC -ne 0 ] && printf '%s\n' "$OUT" | grep -q "log.interim_interval must be 0 (off) or at least 1s"
ok $? "interim_interval: 500ms is refused: log.interim_interval must be 0 (off) or at least 1s" ||
	diag "exit $RC: $OUT"

start_egressd "$T/egressd.yaml"

# ---- (a) a held TLS connection and a held CONNECT tunnel ---------------------
# s_client keeps its connection while its input is open (6 s).
(sleep 6 | openssl s_client -connect "127.0.0.1:$GW" -servername one.test \
	-CAfile "$T/pki/ca.pem" -quiet -no_ign_eof >"$T/tls.out" 2>&1) &
TLS_PID=$!
PIDS="$PIDS $TLS_PID"
python3 - "$PX" "$UP" "$T/pki/ca.pem" >"$T/tunnel.out" 2>&1 <<'PY' &
import socket, ssl, sys, time
px, up, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", px), timeout=10)
s.sendall(("CONNECT two.test:%s HTTP/1.1\r\nHost: two.test:%s\r\n\r\n" % (up, up)).encode())
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
print(head.split(b"\r\n")[0].decode())
ctx = ssl.create_default_context(cafile=ca)
t = ctx.wrap_socket(s, server_hostname="two.test")
print("handshake", t.version() is not None)
time.sleep(6)
t.close()
PY
TUN_PID=$!
PIDS="$PIDS $TUN_PID"

wait_log "$LOG" 1 event=interim reason=relaying listener=tls name=one.test proto=tls \
	upstream="127.0.0.2:$UP" would_deny=false
ok $? "a TLS connection open for a second: one interim line, reason relaying, its upstream"
wait_log "$LOG" 1 event=interim reason=relaying listener=proxy name=two.test proto=connect \
	method=CONNECT url="two.test:$UP" upstream="127.0.0.3:$UP"
ok $? "a CONNECT tunnel open for a second: an interim line with its method and url"
python3 - "$LOG" <<'PY'
import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if '"interim"' in l]
one = [l for l in lines if l["name"] == "one.test"][0]
assert one["bytes_in"] > 0 and one["bytes_out"] > 0, one
assert 1000 <= one["duration_ms"] < 5000, one
assert one["rule"].endswith("/policy.yaml:2") and one["rule_name"] == "allow[0]", one
assert re.fullmatch(r"w[01]-[0-9a-f]{8}", one["conn"]), one
assert one["upstream_local_address"] is not None, one
PY
ok $? "the interim line has the bytes so far, a duration of a second or two, its rule (file:line), conn id and local address"

# ---- (b) /connections --------------------------------------------------------
curl -s --max-time 5 -o "$T/conns.json" -w '%{http_code} %{content_type}' \
	"http://127.0.0.1:$A/connections" >"$T/conns.status"
python3 - "$T/conns.json" "$LOG" "$top_srcdir/tests/integration/logq.py" "$(cat "$T/conns.status")" <<'PY'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("logq", sys.argv[3])
logq = importlib.util.module_from_spec(spec)
spec.loader.exec_module(logq)
assert sys.argv[4] == "200 application/json", sys.argv[4]
d = json.load(open(sys.argv[1]))
assert list(d) == ["count", "connections"], list(d)
assert d["count"] == len(d["connections"]) == 2, d
by = {c["name"]: c for c in d["connections"]}
for c in d["connections"]:
    assert list(c) == ["state"] + logq.KEYS, list(c)
    assert c["state"] == "relaying" and c["event"] == "interim" and c["reason"] == "relaying", c
assert by["one.test"]["proto"] == "tls" and by["two.test"]["method"] == "CONNECT", by
# Two workers: the two connections were spread or not; the ids say which.
interim = {json.loads(l)["name"]: json.loads(l)["conn"] for l in open(sys.argv[2]) if '"interim"' in l}
assert by["one.test"]["conn"] == interim["one.test"], (by, interim)
assert by["two.test"]["conn"] == interim["two.test"], (by, interim)
PY
ok $? "/connections: 200 JSON, count 2, each \"state\" then the line's keys, conn ids as in the interim lines" ||
	diag "$(cat "$T/conns.status"; cat "$T/conns.json")"

# A denial is written at once and never listed or interim.
openssl s_client -connect "127.0.0.1:$GW" -servername nope.test </dev/null >/dev/null 2>&1
wait_log "$LOG" 1 event=deny reason=not_allowed name=nope.test
ok $? "a denied name: its deny line"

wait "$TLS_PID" "$TUN_PID"
wait_log "$LOG" 1 event=allow listener=tls name=one.test
ok $? "the TLS connection's final allow line"
wait_log "$LOG" 1 event=allow listener=proxy name=two.test method=CONNECT
ok $? "the tunnel's final allow line"
python3 - "$LOG" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"ts"')]
conns = [l for l in lines if l["event"] != "notice"]
for name in ("one.test", "two.test"):
    mine = [l for l in conns if l["name"] == name]
    interim = [l for l in mine if l["event"] == "interim"]
    final = [l for l in mine if l["event"] != "interim"]
    assert len(final) == 1 and final[0]["event"] == "allow", mine
    assert 3 <= len(interim) <= 8, (name, len(interim))
    assert {l["conn"] for l in mine} == {final[0]["conn"]}, mine
    assert final[0] is mine[-1], "the final line comes last"
    ins = [l["bytes_in"] for l in mine]
    assert ins == sorted(ins), ins
assert not [l for l in conns if l["name"] == "nope.test" and l["event"] == "interim"]
PY
ok $? "each held connection: 3 to 8 interim lines (6 s, one a second), then its one final line, one conn id, bytes never going back"
logq "$LOG" --schema
ok $? "every line (interim ones too) has exactly the documented keys, in order"

METRICS=$(curl -s --max-time 5 "http://127.0.0.1:$A/stats/prometheus")
NI=$(grep -c '"event":"interim"' "$LOG")
printf '%s\n' "$METRICS" | grep -qx "egressd_interim_lines_total $NI"
ok $? "egressd_interim_lines_total is the log's $NI interim lines" ||
	diag "$(printf '%s\n' "$METRICS" | grep interim)"
SUM=$(printf '%s\n' "$METRICS" | awk '/^egressd_connections_total\{/ { s += $NF } END { print s + 0 }')
[ "$SUM" = 3 ]
ok $? "egressd_connections_total counts 3 connections (two allowed, one denied), no interim line" ||
	diag "sum $SUM: $(printf '%s\n' "$METRICS" | grep '^egressd_connections_total')"

curl -s --max-time 5 "http://127.0.0.1:$A/connections" >"$T/conns2.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d == {"count": 0, "connections": []}, d' "$T/conns2.json"
ok $? "/connections when none is open: {\"count\":0,\"connections\":[]}" || diag "$(cat "$T/conns2.json")"

finish

#!/bin/sh
# egressctl denials on a real log: egressd denies several names (three
# subdomains of one parent, a private address, a client that does not speak
# TLS) and, in report mode, lets one through as would_deny; egressctl
# groups the deny lines (text, json, --since, gzip, stdin, garbage) and
# suggests allow-lists that egressctl check and explain accept.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3 gzip
: "${EGRESSCTL:=$top_builddir/egressctl}"
[ -x "$EGRESSCTL" ] || bail "no egressctl binary at $EGRESSCTL"
# The publicsuffix package's list, not one from the caller's environment.
unset EGRESSCTL_PSL_FILE

make_pki c.svc.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
start_dns "$DNS_PORT" meta.test=169.254.169.254 c.svc.test=127.0.0.3 d.svc.test=127.0.0.3
start_tls_www "127.0.0.3:$UP" c.svc.test

LOG="$T/egressd.log"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: [meta.test]
    ports: [$UP]
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 1
mode: enforce
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.3/32"]
policy: {files: [policy.yaml]}
log: {path: egressd.log}
EOF
start_egressd "$T/egressd.yaml"
CURL="curl -sS --max-time 10 -k"
get() {
	# get NAME [CURL OPTIONS]: one TLS request for NAME through the gateway.
	n=$1
	shift
	$CURL "$@" --connect-to "$n:$UP:127.0.0.1:$GW" "https://$n:$UP/" >/dev/null 2>&1
}
get a.svc.test
get a.svc.test
get b.svc.test --interface 127.0.0.9
get other.test
get meta.test
curl -sS --max-time 10 "http://127.0.0.1:$GW/" >/dev/null 2>&1
wait_log "$LOG" 1 event=deny reason=not_tls name=null || bail "no not_tls line"
wait_log "$LOG" 1 event=deny reason=private_address name=meta.test || bail "no private_address line"
wait_log "$LOG" 4 event=deny reason=not_allowed || bail "no not_allowed lines"

# Report mode: c.svc.test is let through and logged as would_deny.
sed -i 's/^mode: enforce$/mode: report/' "$T/egressd.yaml"
kill -TERM "$EGRESSD_PID"
wait "$EGRESSD_PID"
start_egressd "$T/egressd.yaml"
get c.svc.test
wait_log "$LOG" 1 event=deny reason=not_allowed would_deny=true name=c.svc.test \
    || bail "no would_deny line"
kill -TERM "$EGRESSD_PID"
wait "$EGRESSD_PID"

cd "$T" || bail "no temp dir"
NOTICES=$(grep -c '"event":"notice"' "$LOG")

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

# ---------------------------------------------------------------- text
run denials "$LOG"
[ "$RC" -eq 1 ]
ok $? "denials found: exit 1" || show
printf '%s\n' "$OUT" | grep -qxF "7 denied connections, 5 names, 2 sources; 1 would_deny (report mode)"
ok $? "summary: 7 denied, 5 names, 2 sources, 1 would_deny" || show
printf '%s\n' "$OUT" | head -1 | grep -qxF "a.svc.test:$UP  2 denied"
ok $? "the largest group first" || show
printf '%s\n' "$OUT" | grep -qxF "c.svc.test:$UP  1 denied (1 would_deny)"
ok $? "the report-mode line is counted as would_deny" || show
printf '%s\n' "$OUT" | grep -qxF "  reasons: private_address 1"
ok $? "private_address reason" || show
printf '%s\n' "$OUT" | grep -qxF "  sources: 127.0.0.9"
ok $? "source without its port" || show
printf '%s\n' "$ERR" | grep -qxF "egressctl denials: skipped $NOTICES lines that are not egressd connection lines ($NOTICES notices, 0 not JSON)"
ok $? "notice lines are skipped and counted" || show

# ---------------------------------------------------------------- json
run denials --format json "$LOG"
printf '%s\n' "$OUT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
g = {(x["name"], x["port"]): x for x in d["groups"]}
up = int(sys.argv[1])
assert d["denied"] == 7 and d["names"] == 5 and d["sources"] == 2, d
assert d["would_deny"] == 1, d
assert g[("a.svc.test", up)]["count"] == 2
assert g[("a.svc.test", up)]["reasons"] == {"not_allowed": 2}
assert g[("b.svc.test", up)]["sources"] == ["127.0.0.9"]
assert g[("c.svc.test", up)]["would_deny"] == 1
assert g[("meta.test", up)]["reasons"] == {"private_address": 1}
assert [x for x in d["groups"] if x["name"] is None][0]["reasons"] == {"not_tls": 1}
assert d["groups"][0]["name"] == "a.svc.test"
' "$UP"
ok $? "json: the same counts, per group" || show
[ "$RC" -eq 1 ]
ok $? "json: exit 1"

# ---------------------------------------------------------------- since, gzip, stdin, garbage
OLD='{"ts":"2000-01-01T00:00:00.000Z","event":"deny","reason":"not_allowed","would_deny":false,"listener":"tls","src":"10.9.9.9:1","orig_dst":null,"name":"old.test","port":443,"proto":"tls","alpn":null,"rule":null,"rule_name":null,"upstream":null,"bytes_in":1,"bytes_out":7,"duration_ms":1,"conn":"w0-1","detail":null}'
{ echo "$OLD"; cat "$LOG"; } > old.log
run denials old.log
printf '%s\n' "$OUT" | grep -qxF "8 denied connections, 6 names, 3 sources; 1 would_deny (report mode)"
ok $? "an old line counts without --since" || show
run denials --since 1h old.log
printf '%s\n' "$OUT" | grep -qxF "7 denied connections, 5 names, 2 sources; 1 would_deny (report mode)"
ok $? "--since 1h: relative to the newest line, the old one is left out" || show
run denials --since 1x old.log
[ "$RC" -eq 2 ]
ok $? "a bad --since is a usage error (2)"

gzip -c "$LOG" > egressd.log.gz
run denials egressd.log.gz
printf '%s\n' "$OUT" | grep -qxF "7 denied connections, 5 names, 2 sources; 1 would_deny (report mode)" && [ "$RC" -eq 1 ]
ok $? "a gzip log is read through gzip -dc" || show
printf 'not gzip at all' | gzip -c | head -c 12 > broken.gz
run denials broken.gz
[ "$RC" -eq 2 ]
ok $? "a truncated gzip file: exit 2" || show

"$EGRESSCTL" denials - < "$LOG" > stdin.out 2>/dev/null
RC=$?
grep -qxF "7 denied connections, 5 names, 2 sources; 1 would_deny (report mode)" stdin.out && [ "$RC" -eq 1 ]
ok $? "'-' reads stdin"

{ cat "$LOG"; echo 'garbage'; echo '{"ts":"2024-01-01T00:00:00Z","event":"deny"'; echo '{"a":1}'; printf '\001\002\377\n'; } > garbage.log
run denials garbage.log
printf '%s\n' "$ERR" | grep -qxF "egressctl denials: skipped $((NOTICES + 4)) lines that are not egressd connection lines ($NOTICES notices, 3 not JSON)"
ok $? "garbage lines are skipped and counted" || show
printf '%s\n' "$OUT" | grep -qxF "7 denied connections, 5 names, 2 sources; 1 would_deny (report mode)"
ok $? "and the real lines still counted" || show

grep '"event":"allow"\|"event":"notice"' "$LOG" > nodeny.log
echo '{"ts":"2024-01-01T00:00:00Z","event":"allow","reason":"allowed","would_deny":false,"listener":"tls","src":"1.2.3.4:5","orig_dst":null,"name":"x.test","port":443,"proto":"tls","alpn":null,"rule":null,"rule_name":null,"upstream":null,"bytes_in":1,"bytes_out":1,"duration_ms":1,"conn":"w0-1","detail":null}' >> nodeny.log
run denials nodeny.log
[ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | grep -qxF "0 denied connections, 0 names, 0 sources; 0 would_deny (report mode)"
ok $? "no denials: exit 0" || show
# Interim lines (log.interim_interval) are connections still open: neither
# decisions nor lines to report as skipped.
grep -v '"event":"notice"' nodeny.log > interim.log
sed -n 's/"event":"allow","reason":"allowed"/"event":"interim","reason":"relaying"/p' nodeny.log >> interim.log
grep -q '"event":"interim"' interim.log
run denials interim.log
[ "$RC" -eq 0 ] && [ -z "$ERR" ] &&
    printf '%s\n' "$OUT" | grep -qxF "0 denied connections, 0 names, 0 sources; 0 would_deny (report mode)"
ok $? "interim lines: not denials, not skipped (nothing on stderr), exit 0" || show
run denials no-such-file.log
[ "$RC" -eq 2 ]
ok $? "an unreadable log: exit 2"
run denials
[ "$RC" -eq 2 ]
ok $? "no log given: exit 2"
run denials --format yaml "$LOG"
[ "$RC" -eq 2 ]
ok $? "an unknown format: exit 2"

# ---------------------------------------------------------------- suggest native
run denials --suggest native "$LOG"
cp run.out suggested.yaml
[ "$RC" -eq 1 ]
ok $? "--suggest native: exit 1 (there were denials)" || show
"$EGRESSCTL" check suggested.yaml > check.out 2>&1
ok $? "the native suggestion passes egressctl check" || { diag "$(cat suggested.yaml check.out)"; }
grep -qxF '  # 3 names under svc.test were denied: a.svc.test, b.svc.test, c.svc.test' suggested.yaml &&
    grep -qF '"*.svc.test"' suggested.yaml
ok $? "three subdomains of svc.test become *.svc.test, with a comment" || diag "$(cat suggested.yaml)"
grep -qF '"other.test"' suggested.yaml && ! grep -qF '"*.test"' suggested.yaml
ok $? "other.test stays exact; never a wildcard over a single label" || diag "$(cat suggested.yaml)"
grep -qxF "# not suggested: meta.test:$UP (private_address, 1)" suggested.yaml &&
    ! grep -q '^[^#]*meta\.test' suggested.yaml
ok $? "the private_address denial is listed apart, not suggested" || diag "$(cat suggested.yaml)"
grep -qxF "# not suggested: (no name):$UP (not_tls, 1)" suggested.yaml
ok $? "the not_tls denial is listed apart" || diag "$(cat suggested.yaml)"
grep -qxF "    ports: [$UP]" suggested.yaml
ok $? "the denied port is explicit" || diag "$(cat suggested.yaml)"

cat > native.yaml <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW"}
policy: {files: [suggested.yaml]}
EOF
"$EGRESSCTL" explain -c native.yaml --port "$UP" d.svc.test > ex.out 2>&1
ok $? "with the suggestion, another svc.test name is allowed" || diag "$(cat ex.out)"
"$EGRESSCTL" explain -c native.yaml --port "$UP" other.test > ex.out 2>&1
ok $? "and other.test is allowed" || diag "$(cat ex.out)"
"$EGRESSCTL" explain -c native.yaml --port "$UP" meta.test > ex.out 2>&1
[ $? -eq 1 ]
ok $? "meta.test (private_address) is still denied" || diag "$(cat ex.out)"

# ---------------------------------------------------------------- suggest serviceentry
run denials --suggest serviceentry "$LOG"
cp run.out se.yaml
"$EGRESSCTL" check se.yaml > check.out 2>&1
ok $? "the ServiceEntry suggestion passes egressctl check" || { diag "$(cat se.yaml check.out)"; }
grep -q "allow \*\.svc\.test (suggested-[0-9]*, ServiceEntry):.*; ports $UP; resolution none;" check.out &&
    grep -q "allow other\.test (suggested-[0-9]*, ServiceEntry):.*; ports $UP; resolution dns;" check.out &&
    grep -qxF "    name: tcp-$UP" se.yaml && grep -qxF "    protocol: TCP" se.yaml &&
    ! grep -q '^[^#]*meta\.test' se.yaml
ok $? "ServiceEntries: NONE for the wildcard, DNS for exact names, TCP port, no meta.test" || diag "$(cat se.yaml)"
cat > se-config.yaml <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW"}
policy: {files: [se.yaml]}
EOF
"$EGRESSCTL" explain -c se-config.yaml --port "$UP" d.svc.test > ex.out 2>&1
ok $? "with the ServiceEntries, another svc.test name is allowed" || diag "$(cat ex.out)"
"$EGRESSCTL" explain -c se-config.yaml --port "$UP" meta.test > ex.out 2>&1
[ $? -eq 1 ]
ok $? "and meta.test is not" || diag "$(cat ex.out)"

# ---------------------------------------------------------------- redirect chains and "after" hints
# The HTTP listener's lines add "method", "url", "status", "chain", "from",
# "to", "verdict" and "after" after "detail" (redirect lines have "event":
# "redirect"). The daemon cannot write them yet, so these lines are made
# here from a real deny line of the log above, with the keys added by
# python3. The real daemon's redirect lines are checked end to end in
# tests/integration/redirects.sh (written with the HTTP listener).
python3 - "$LOG" > redirects.log <<'EOF'
import json, sys
base = None
for raw in open(sys.argv[1]):
    d = json.loads(raw)
    if d.get("event") == "deny" and d.get("name") == "a.svc.test":
        base = d
        break
assert base is not None

def mk(**kw):
    d = dict(base)
    for k in ("method", "url", "status", "chain", "from", "to", "verdict", "after"):
        d[k] = None
    d.update(kw)
    return json.dumps(d, separators=(",", ":"))

def redirect(name, port, reason, status, chain, frm, to, verdict, wd=False, **kw):
    return mk(event="redirect", reason=reason, would_deny=wd, listener="http", name=name,
              port=port, proto="http", alpn=None, method="GET", url=frm, status=status,
              chain=chain, **{"from": frm}, to=to, verdict=verdict, **kw)

def http_deny(name, port, url, chain):
    return mk(listener="http", name=name, port=port, proto="http", alpn=None,
              method="GET", url=url, status=403, chain=chain)

print(mk(after={"name": "login.svc.test", "ms": 120}))          # TLS deny, hint
print(mk(after={"name": "login.svc.test", "ms": 80}))
print(mk())                                                       # TLS deny, no hint
print(redirect("pay.redir.test", 80, "not_allowed", 302, "w0-00000010.1",
               "http://shop.svc.test/checkout", "http://pay.redir.test/start", "deny"))
print(http_deny("pay.redir.test", 80, "http://pay.redir.test/start", "w0-00000010.1"))
print(redirect("pay.redir.test", 80, "not_allowed", 302, "w0-00000012.1",
               "http://shop.svc.test/checkout", "http://pay.redir.test/start", "deny"))
print(redirect("pay.redir.test", 80, "not_allowed", 301, "w0-00000014.1",
               "http://shop.svc.test/retry", "http://pay.redir.test/start", "deny"))
print(redirect("ok.svc.test", 80, "allowed", 302, "w0-00000016.1",
               "http://shop.svc.test/", "http://ok.svc.test/", "allow", rule="policy.yaml:2"))
print(redirect("cdn.static.test", 80, "not_allowed", 301, "w0-00000020.1",
               "http://shop.svc.test/img", "http://cdn.static.test/a.png", "deny", wd=True))
print(redirect("cdn.static.test", 80, "not_allowed", 301, "w0-00000021.1",
               "http://shop.svc.test/img", "http://cdn.static.test/a.png", "deny"))
print(redirect("paste.redir.test", 443, "denied_by_rule", 307, "w0-00000022.1",
               "http://shop.svc.test/share", "https://paste.redir.test/new", "deny",
               rule="policy.yaml:9", rule_name="no-paste"))
print(http_deny("lost.old.test", 80, "http://lost.old.test/", "w0-00000030.1"))
print(mk(after="login.svc.test"))                                 # wrong type: skipped
print(mk(after={"name": {"deeper": 1}, "ms": 1}))                 # nested twice: not JSON
EOF
TS=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["ts"])' redirects.log)
run denials redirects.log
cat > want.txt <<EOF
a.svc.test:$UP  3 denied
  reasons: not_allowed 3
  sources: 127.0.0.1
  first $TS, last $TS
  heuristic: often denied right after an allowed connection to login.svc.test (2 times, within 120 ms)
lost.old.test:80  1 denied
  reasons: not_allowed 1
  sources: 127.0.0.1
  first $TS, last $TS
  reached by redirect: its redirect line is not in this input (chain w0-00000030.1, 1 time)
pay.redir.test:80  1 denied
  reasons: not_allowed 1
  sources: 127.0.0.1
  first $TS, last $TS
  reached by redirect: 302 from http://shop.svc.test/checkout (chains w0-00000010.1 and 1 more, 2 times)
  reached by redirect: 301 from http://shop.svc.test/retry (chain w0-00000014.1, 1 time)
cdn.static.test:80  redirected to, not yet requested (2 redirects, 1 would_deny)
  reasons: not_allowed 2
  sources: 127.0.0.1
  first $TS, last $TS
  reached by redirect: 301 from http://shop.svc.test/img (chains w0-00000020.1 and 1 more, 2 times)
paste.redir.test:443  redirected to, not yet requested (1 redirect)
  reasons: denied_by_rule 1
  sources: 127.0.0.1
  first $TS, last $TS
  reached by redirect: 307 from http://shop.svc.test/share (chain w0-00000022.1, 1 time)
5 denied connections, 3 names, 1 sources; 0 would_deny (report mode); 2 redirect targets not yet requested
EOF
printf '%s\n' "$OUT" | diff want.txt - > diff.out
ok $? "redirects: the exact text (chains joined, deduplicated, targets not yet requested, after hints)" || diag "$(cat diff.out)"
[ "$RC" -eq 1 ]
ok $? "redirects: exit 1" || show
printf '%s\n' "$ERR" | grep -qxF "egressctl denials: skipped 2 lines that are not egressd connection lines (0 notices, 1 not JSON)"
ok $? "redirects: an 'after' that is not an object is skipped, one nested twice is not JSON" || show

run denials --format json redirects.log
printf '%s\n' "$OUT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
up, ts = int(sys.argv[1]), sys.argv[2]
assert (d["denied"], d["names"], d["sources"], d["would_deny"], d["redirect_targets"],
        d["skipped_lines"]) == (5, 3, 1, 0, 2, 2), d
g = d["groups"]
assert [(x["name"], x["port"], x["requested"]) for x in g] == [
    ("a.svc.test", up, True), ("lost.old.test", 80, True), ("pay.redir.test", 80, True),
    ("cdn.static.test", 80, False), ("paste.redir.test", 443, False)], g
assert g[0]["after"] == [{"name": "login.svc.test", "count": 2, "max_ms": 120}], g[0]
assert g[0]["redirects"] == [], g[0]
assert g[1]["redirects"] == [{"status": None, "from": None, "count": 1,
                              "chains": ["w0-00000030.1"]}], g[1]
assert g[2]["redirects"] == [
    {"status": 302, "from": "http://shop.svc.test/checkout", "count": 2,
     "chains": ["w0-00000010.1", "w0-00000012.1"]},
    {"status": 301, "from": "http://shop.svc.test/retry", "count": 1,
     "chains": ["w0-00000014.1"]}], g[2]
assert g[2]["count"] == 1 and g[2]["after"] == [], g[2]
assert g[3] == {"name": "cdn.static.test", "port": 80, "count": 2, "would_deny": 1,
                "ech": None, "ech_count": 0,
                "reasons": {"not_allowed": 2}, "sources": ["127.0.0.1"],
                "first_seen": ts, "last_seen": ts, "requested": False,
                "redirects": [{"status": 301, "from": "http://shop.svc.test/img", "count": 2,
                               "chains": ["w0-00000020.1", "w0-00000021.1"]}],
                "after": []}, g[3]
assert g[4]["reasons"] == {"denied_by_rule": 1}, g[4]
' "$UP" "$TS"
ok $? "redirects: the same in json (requested, redirects, after, redirect_targets)" || show

run denials --suggest native redirects.log
cp run.out redir-suggested.yaml
cat > want.txt <<EOF
#
# redirected to, not yet requested (included): cdn.static.test:80 (2 redirects, from http://shop.svc.test/img)
# not suggested: paste.redir.test:443 (denied_by_rule: a deny rule wins over any allow, 1)
allow:
  - name: suggested-1
    hosts: ["a.svc.test"]
    ports: [$UP]
  - name: suggested-2
    hosts: ["cdn.static.test", "lost.old.test", "pay.redir.test"]
    ports: [80]
EOF
tail -n +4 redir-suggested.yaml | diff want.txt - > diff.out
ok $? "redirects: --suggest includes the redirect target not yet requested, says so, never the denied_by_rule one" || diag "$(cat diff.out)"
cat > redir-config.yaml <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW"}
policy: {files: [redir-suggested.yaml]}
EOF
"$EGRESSCTL" check redir-suggested.yaml > check.out 2>&1 &&
    "$EGRESSCTL" explain -c redir-config.yaml --port 80 cdn.static.test > ex.out 2>&1
ok $? "redirects: the suggestion loads and admits cdn.static.test:80" || diag "$(cat redir-suggested.yaml check.out ex.out)"

grep '"event":"redirect"' redirects.log | grep cdn.static.test > targets-only.log
run denials targets-only.log
[ "$RC" -eq 1 ] && printf '%s\n' "$OUT" | tail -1 |
    grep -qxF "0 denied connections, 0 names, 0 sources; 0 would_deny (report mode); 1 redirect target not yet requested"
ok $? "redirects: a log with only a denied redirect target: exit 1, nothing counted as a denied connection" || show

cat "$LOG" redirects.log > mixed.log
run denials mixed.log
printf '%s\n' "$OUT" | grep -qxF "12 denied connections, 7 names, 2 sources; 1 would_deny (report mode); 2 redirect targets not yet requested" &&
    printf '%s\n' "$OUT" | grep -qxF "a.svc.test:$UP  5 denied" &&
    printf '%s\n' "$OUT" | grep -qxF "c.svc.test:$UP  1 denied (1 would_deny)"
ok $? "redirects: lines without the new keys (older logs) and with them read together" || show

# ---------------------------------------------------------------- ECH, and what an allow rule cannot fix
# Lines made from a real deny line: "ech" true, false and null; reasons an
# allow rule cannot fix (sni_mismatch, bad_http, policy_revoked) and one
# this egressctl does not know.
python3 - "$LOG" > ech.log <<'EOF'
import json, sys
base = None
for raw in open(sys.argv[1]):
    d = json.loads(raw)
    if d.get("event") == "deny" and d.get("name") == "a.svc.test":
        base = d
        break
assert base is not None

def mk(name, reason="not_allowed", ech=None, **kw):
    d = dict(base)
    d.update(name=name, port=443, reason=reason, ech=ech, **kw)
    return json.dumps(d, separators=(",", ":"))

print(mk("ech.svc.test", ech=True))
print(mk("ech.svc.test", ech=True))
print(mk("ech.svc.test", ech=False))
print(mk("noech.test"))
print(mk("fronted.test", "sni_mismatch", ech=False))
print(mk("h.test", "bad_http"))
print(mk("revoked.test", "policy_revoked"))
print(mk("future.test", "quantum_refusal"))
EOF
run denials ech.log
[ "$RC" -eq 1 ] && printf '%s\n' "$OUT" | grep -qxF "ech.svc.test:443  3 denied (2 with ECH: the name is the outer one)" &&
    printf '%s\n' "$OUT" | grep -qxF "noech.test:443  1 denied" &&
    printf '%s\n' "$OUT" | tail -1 | grep -qxF "8 denied connections, 6 names, 1 sources; 0 would_deny (report mode); 2 with ECH"
ok $? "ech: the denials whose ClientHello offered ECH are counted per name and in all" || show
run denials --format json ech.log
printf '%s\n' "$OUT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["ech_count"] == 2, d
g = {x["name"]: x for x in d["groups"]}
assert (g["ech.svc.test"]["ech"], g["ech.svc.test"]["ech_count"]) == (True, 2), g
assert (g["fronted.test"]["ech"], g["fronted.test"]["ech_count"]) == (False, 0), g
assert (g["noech.test"]["ech"], g["noech.test"]["ech_count"]) == (None, 0), g
'
ok $? "ech: json says true/false/null per group, and ech_count" || show
run denials --suggest native ech.log
cat > want.txt <<EOF
#
# not suggested: fronted.test:443 (sni_mismatch, 1)
# not suggested: future.test:443 (quantum_refusal: a reason this egressctl does not know, 1)
# not suggested: h.test:443 (bad_http, 1)
# not suggested: revoked.test:443 (policy_revoked, 1)
allow:
  - name: suggested-1
    hosts: ["ech.svc.test", "noech.test"]
    ports: [443]
EOF
tail -n +4 run.out | diff want.txt - > diff.out
ok $? "suggest: only not_allowed and port_not_allowed are fixed by an allow rule; unknown reasons are not guessed at" || diag "$(cat diff.out)"

# ---------------------------------------------------------------- public suffixes
# Three names under a public suffix never become a wildcard over it, the
# list's private section included (github.io, herokuapp.com,
# s3.amazonaws.com, workers.dev): that wildcard would admit anyone's site.
# Nor over a registrable domain with public suffixes below it
# (amazonaws.com: a wildcard admits names at any depth, anyone's bucket
# under s3.amazonaws.com among them). One level below a suffix
# (foo.github.io), or under a registrable domain with none below it
# (atlassian.net), three names do. The same function decides what
# egressctl check calls very wide (tests/integration/egressctl.sh).
python3 - "$LOG" > psl.log <<'EOF'
import json, sys
for raw in open(sys.argv[1]):
    d = json.loads(raw)
    if d.get("event") == "deny" and d.get("name") == "a.svc.test":
        break
for parent in ["github.io", "herokuapp.com", "s3.amazonaws.com", "workers.dev",
               "co.uk", "foo.github.io", "atlassian.net", "amazonaws.com"]:
    for label in ["a1", "b2", "c3"]:
        print(json.dumps(dict(d, name=label + "." + parent, port=443),
                         separators=(",", ":")))
EOF
run denials --suggest native psl.log
cp run.out psl-suggested.yaml
cat > want.txt <<'EOF'
#
# no wildcard: *.amazonaws.com (public suffixes of the list lie below it); its 3 names stay exact
# no wildcard: *.co.uk (a public suffix); its 3 names stay exact
# no wildcard: *.github.io (a public suffix of the list's private section); its 3 names stay exact
# no wildcard: *.herokuapp.com (a public suffix of the list's private section); its 3 names stay exact
# no wildcard: *.s3.amazonaws.com (a public suffix of the list's private section); its 3 names stay exact
# no wildcard: *.workers.dev (a public suffix of the list's private section); its 3 names stay exact
allow:
  # 3 names under atlassian.net were denied: a1.atlassian.net, b2.atlassian.net, c3.atlassian.net
  - name: suggested-1
    hosts: ["*.atlassian.net"]
    ports: [443]
  # 3 names under foo.github.io were denied: a1.foo.github.io, b2.foo.github.io, c3.foo.github.io
  - name: suggested-2
    hosts: ["*.foo.github.io"]
    ports: [443]
  - name: suggested-3
    hosts: ["a1.amazonaws.com", "a1.co.uk", "a1.github.io", "a1.herokuapp.com", "a1.s3.amazonaws.com", "a1.workers.dev", "b2.amazonaws.com", "b2.co.uk", "b2.github.io", "b2.herokuapp.com", "b2.s3.amazonaws.com", "b2.workers.dev", "c3.amazonaws.com", "c3.co.uk", "c3.github.io", "c3.herokuapp.com", "c3.s3.amazonaws.com", "c3.workers.dev"]
    ports: [443]
EOF
[ "$RC" -eq 1 ] && tail -n +4 run.out | diff want.txt - > diff.out
ok $? "suggest: never a wildcard directly under a public suffix (private section too) or over one (amazonaws.com); *.foo.github.io and *.atlassian.net are" ||
    diag "exit $RC; $(cat diff.out)"
"$EGRESSCTL" check psl-suggested.yaml > check.out 2>&1 &&
    tail -1 check.out | grep -qxF "1 file, 20 rules, 0 errors, 0 warnings"
ok $? "suggest: egressctl check finds nothing very wide in what --suggest proposes" || diag "$(cat check.out)"

# No list at all (EGRESSCTL_PSL_FILE names the only list to use, and it
# does not exist): no wildcard at all (fail closed), and the header says why.
EGRESSCTL_PSL_FILE=$T/no-such-list.dat "$EGRESSCTL" denials --suggest native psl.log > run.out 2> run.err
RC=$?
cat > want.txt <<EOF
# No public suffix list could be loaded ($T/no-such-list.dat: No such file or directory (named by EGRESSCTL_PSL_FILE, so no other list is used)): no wildcard
# is suggested; install the publicsuffix package.
EOF
[ "$RC" -eq 1 ] && sed -n 4,5p run.out | diff want.txt - > diff.out &&
    ! grep -q '^[^#]*"\*\.' run.out &&
    grep -qxF "# no wildcard: *.atlassian.net (no public suffix list was loaded); its 3 names stay exact" run.out &&
    grep -qxF "# no wildcard: *.foo.github.io (no public suffix list was loaded); its 3 names stay exact" run.out
ok $? "suggest without a public suffix list: exact names only, and the header says why" ||
    diag "exit $RC; $(cat diff.out run.out run.err)"

# ---------------------------------------------------------------- JSON escaping
# A name with a control character, a quote and a byte that is not UTF-8
# (as a hostile client's SNI reaches a log): the JSON out is escaped as the
# log writer escapes it (log_json_fput), valid UTF-8 that parses back.
python3 - "$LOG" > odd.log <<'EOF'
import json, sys
for raw in open(sys.argv[1], "rb"):
    d = json.loads(raw)
    if d.get("event") == "deny" and d.get("name") == "a.svc.test":
        break
line = json.dumps(dict(d, name="X-NAME"), separators=(",", ":")).encode()
sys.stdout.buffer.write(line.replace(b"X-NAME", b'od\\u0001d\\"q\xffz\xc3\xa9') + b"\n")
EOF
run denials --format json odd.log
python3 - <<'EOF'
import json
raw = open("run.out", "rb").read()
d = json.loads(raw.decode("utf-8"))          # strict: invalid UTF-8 fails here
names = [g["name"] for g in d["groups"]]
assert names == ["od\x01d\"q\u00ffz\u00e9"], names
assert b"\\u0001" in raw and b"\\u00ff" in raw and "\u00e9".encode() in raw, raw
EOF
ok $? "json: control bytes and bytes that are not UTF-8 are escaped, valid UTF-8 is kept" || show

finish

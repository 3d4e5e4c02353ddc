#!/bin/sh
# The DNS server dies mid-run (killed by its PID), in the namespace world
# of world.sh with the transparent listener: a name looked up before is
# still served from its expired answer within dns.stale_ttl (allowed, and
# the log line's detail says so); a name never looked up fails at once;
# after the window the first name fails too (dns_failure or dns_timeout).
# Answers carry TTL 1 s (dnsmasq --local-ttl=1), stale_ttl is 8 s: wide
# enough that a busy machine (python starts slowly) stays inside it.
. "$(dirname "$0")/world.sh"

make_pki stale.test
world_build
world_dns 1 stale.test=$REAL_IP never.test=$REAL_IP
REC="$T/inet.rec"
world_server "$INET" "$REC" \
    "tls:$REAL_IP:443:$T/pki/stale.test.pem:$T/pki/stale.test.key:stale.test at $REAL_IP"

mkdir "$T/policy"
cat >"$T/policy/allow.yaml" <<EOF
allow:
  - hosts: [stale.test, never.test]
    ports: [443]
EOF
LOG="$T/egressd.log"
cat >"$T/egressd.yaml" <<EOF
listeners:
  - {name: transparent, address: "0.0.0.0:$TPORT", protocol: transparent}
workers: 1
dns:
  servers: ["$DNS_IP:53"]
  allow_ranges: ["203.0.113.0/24"]
  stale_ttl: 8s
policy: {files: [policy/allow.yaml]}
log: {path: egressd.log}
timeouts: {hello: 3s, dns: 1s, connect: 2s, idle: 30s}
EOF
world_egressd "$T/egressd.yaml"

fetch() {
	pod_curl --resolve "$1:443:$REAL_IP" "https://$1/" 2>&1
}

out=$(fetch stale.test)
t0=$(date +%s.%N)
[ "$out" = "hello from stale.test at $REAL_IP" ]
ok $? "with DNS up: stale.test reaches its server"
diag "$out"
wait_log "$LOG" 1 event=allow name=stale.test orig_dst="$REAL_IP:443" upstream="$REAL_IP:443" detail=null
ok $? "one allow line, fresh answer (detail null)"

stop_bounded "$DNS_PID" 5 >/dev/null 2>&1
! dns_answers
ok $? "the DNS server is gone (killed by its PID $DNS_PID; nothing answers on $DNS_IP:53)"

# Past the 1 s TTL, well inside the 8 s window.
python3 -c 'import sys,time; time.sleep(max(0, float(sys.argv[1]) + 1.8 - time.time()))' "$t0"
out=$(fetch stale.test)
[ "$out" = "hello from stale.test at $REAL_IP" ]
ok $? "DNS down, answer expired, within stale_ttl: stale.test still reaches its server"
diag "$out"
logq "$LOG" event=allow name=stale.test | python3 -c '
import json, re, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
sys.exit(0 if len(lines) == 2 and lines[0]["detail"] is None and re.fullmatch(
    r"DNS failed; served a stale answer \(expired [0-9]+s ago\)", lines[1]["detail"] or "") else 1)'
ok $? "its allow line's detail says a stale answer was served"
logq "$LOG" event=allow name=stale.test | tail -n 1 | sed 's/^/# /'

err=$(fetch never.test)
rc=$?
[ $rc -eq 35 ] && echo "$err" | grep -q "alert internal error"
ok $? "a name never looked up has no stale answer: internal_error alert (rc $rc)"
diag "$err"
[ "$(( $(logq "$LOG" --count event=error name=never.test reason=dns_failure) + \
    $(logq "$LOG" --count event=error name=never.test reason=dns_timeout) ))" = 1 ]
ok $? "one error line for never.test: dns_failure or dns_timeout"
logq "$LOG" name=never.test | sed 's/^/# /'

# Past TTL + stale_ttl (1 s + 8 s), with a margin.
python3 -c 'import sys,time; time.sleep(max(0, float(sys.argv[1]) + 10.5 - time.time()))' "$t0"
err=$(fetch stale.test)
rc=$?
[ $rc -eq 35 ] && echo "$err" | grep -q "alert internal error"
ok $? "after the stale window: stale.test fails with the internal_error alert (rc $rc)"
diag "$err"
[ "$(( $(logq "$LOG" --count event=error name=stale.test reason=dns_failure) + \
    $(logq "$LOG" --count event=error name=stale.test reason=dns_timeout) ))" = 1 ]
ok $? "and its line says dns_failure or dns_timeout"
logq "$LOG" event=error name=stale.test | sed 's/^/# /'

[ "$(count_rec "$REC" "^tcp $GW_INET_IP $REAL_IP:443\$")" = 2 ]
ok $? "the server saw exactly the two allowed connections, from the gateway"
logq "$LOG" --schema
ok $? "every connection line has exactly the documented keys"

stop_bounded "$EGRESSD_PID" 10
rc=$?
[ $rc -eq 0 ]
ok $? "SIGTERM: egressd exits 0 (got $rc)"

finish

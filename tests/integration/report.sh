#!/bin/sh
# Report mode and source scoping with real clients: a denial in report mode
# is let through and logged as a deny with "would_deny": true; the address
# guard is never relaxed; a rule with sources admits only those clients.
# A range written in its IPv4-mapped form (::ffff:a.b.c.d/N) holds the IPv4
# clients and answers of an IPv4 listener too.
# The test's upstreams live on loopback, which the guard refuses: the
# config declares 127.0.0.0/24 reachable with dns.allow_ranges, and
# 127.0.0.6 unreachable with dns.deny_ranges, which beats allow_private;
# 127.0.2.x stays private, for the rules that say allow_private.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

make_pki known.test unknown.test meta.test scoped.test blocked.test fenced.test \
    lent.test own.test mfenced.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
start_dns "$DNS_PORT" known.test=127.0.0.2 unknown.test=127.0.0.3 \
    meta.test=169.254.169.254 scoped.test=127.0.0.4 blocked.test=127.0.0.5 \
    fenced.test=127.0.0.6 lent.test=127.0.2.7 own.test=127.0.2.8 \
    mfenced.test=127.0.0.12
start_tls_www "127.0.0.2:$UP" known.test
start_tls_www "127.0.0.3:$UP" unknown.test
start_tls_www "127.0.0.4:$UP" scoped.test
start_tls_www "127.0.0.5:$UP" blocked.test
start_tls_www "127.0.0.12:$UP" mfenced.test
# lent.test's origin records every connection it accepts, before any TLS.
python3 "$top_srcdir/tests/netns/server.py" "$T/lent.rec" \
    "tls:127.0.2.7:$UP:$T/pki/lent.test.pem:$T/pki/lent.test.key:lent.test" \
    >"$T/lent.out" 2>&1 &
PIDS="$PIDS $!"
: >>"$T/lent.rec"
wait_for "$T/lent.out" listening 10 || bail "the recording origin did not start"
start_tls_www "127.0.2.8:$UP" own.test

LOG="$T/egressd.log"
mkdir "$T/policy.d"
cat > "$T/policy.d/10-base.yaml" <<EOF
allow:
  - hosts: [known.test, fenced.test, mfenced.test]
    ports: [$UP]
    allow_private: true
  - name: scoped
    hosts: [scoped.test]
    ports: [$UP]
    sources: ["127.0.0.9/32"]
EOF
cat > "$T/policy.d/20-trial.yaml" <<EOF
# A deny rule being tried out: reported, not enforced.
mode: report
deny:
  - hosts: [blocked.test]
EOF
# A file on trial that says allow_private: it must not open the guard.
cat > "$T/policy.d/30-lend.yaml" <<EOF
mode: report
allow:
  - hosts: [lent.test]
    ports: [$UP]
    allow_private: true
EOF
# A deny for one client, its range in IPv4-mapped form.
cat > "$T/policy.d/50-mapped.yaml" <<EOF
deny:
  - name: mapped-client
    hosts: [known.test]
    sources: ["::ffff:127.0.0.11/128"]
EOF
# The same rule in a file that says nothing is in report mode only because
# the configuration is: it is the policy on trial, and its settings apply.
cat > "$T/policy.d/40-own.yaml" <<EOF
allow:
  - hosts: [own.test]
    ports: [$UP]
    allow_private: true
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 1
mode: report
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
  allow_ranges: ["127.0.0.0/24"]
  deny_ranges: ["127.0.0.6/32", "::ffff:127.0.0.12/128"]
policy: {files: [policy.d]}
log: {path: egressd.log}
EOF
start_egressd "$T/egressd.yaml"
CURL="curl -sS --max-time 10 --cacert $T/pki/ca.pem"
P="$T/policy.d"

out=$($CURL --connect-to "unknown.test:$UP:127.0.0.1:$GW" "https://unknown.test:$UP/" 2>&1)
echo "$out" | grep -q s_server
ok $? "report mode: a name no rule admits still reaches its server"
wait_log "$LOG" 1 event=deny reason=not_allowed would_deny=true name=unknown.test \
    upstream="127.0.0.3:$UP" rule=null detail="report mode let it through; ended: allowed"
ok $? "and is logged as a deny with would_deny true, the upstream and how it ended"

out=$($CURL --connect-to "blocked.test:$UP:127.0.0.1:$GW" "https://blocked.test:$UP/" 2>&1)
echo "$out" | grep -q s_server
ok $? "a deny rule in a report-mode file does not block"
wait_log "$LOG" 1 event=deny reason=denied_by_rule would_deny=true name=blocked.test \
    rule="$P/20-trial.yaml:4" rule_name="deny[0]"
ok $? "its line names the report-mode deny rule"

out=$($CURL --connect-to "known.test:$UP:127.0.0.1:$GW" "https://known.test:$UP/" 2>&1)
wait_log "$LOG" 1 event=allow reason=allowed would_deny=false name=known.test
ok $? "an allowed name is an ordinary allow line (would_deny false)"

err=$($CURL --connect-to "meta.test:$UP:127.0.0.1:$GW" "https://meta.test:$UP/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "report mode never relaxes the address guard: the metadata address is refused"
wait_log "$LOG" 1 event=deny reason=private_address would_deny=false name=meta.test
ok $? "with a real private_address deny line"

err=$($CURL --connect-to "fenced.test:$UP:127.0.0.1:$GW" "https://fenced.test:$UP/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "dns.deny_ranges wins over a rule's allow_private"
wait_log "$LOG" 1 event=deny reason=private_address name=fenced.test \
    detail="fenced.test resolves to 127.0.0.6 (in dns.deny_ranges)"
ok $? "with a private_address line naming dns.deny_ranges"

err=$($CURL --connect-to "lent.test:$UP:127.0.0.1:$GW" "https://lent.test:$UP/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "a file that says mode: report does not lend its allow_private"
wait_log "$LOG" 1 event=deny reason=private_address name=lent.test
ok $? "the private address behind its name is refused as private_address"
[ ! -s "$T/lent.rec" ]
ok $? "its origin got no connection"

out=$($CURL --connect-to "own.test:$UP:127.0.0.1:$GW" "https://own.test:$UP/" 2>&1)
echo "$out" | grep -q s_server
ok $? "a file in report mode by the configuration's mode lends its allow_private"
wait_log "$LOG" 1 event=allow name=own.test rule="$P/40-own.yaml:2"
ok $? "and its rule is the admitting rule"

# Enforce mode with the same files: the not_allowed name is refused.
sed -i 's/^mode: report$/mode: enforce/' "$T/egressd.yaml"
kill -TERM "$EGRESSD_PID"
wait "$EGRESSD_PID"
start_egressd "$T/egressd.yaml"
err=$($CURL --connect-to "unknown.test:$UP:127.0.0.1:$GW" "https://unknown.test:$UP/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "mode: enforce (the default) refuses the same name"
wait_log "$LOG" 1 event=deny reason=not_allowed would_deny=false name=unknown.test
ok $? "with an ordinary deny line"

# A report-mode file never admits: under a global enforce, a name that
# only a report-mode rule mentions is refused like any other (DESIGN §5).
err=$($CURL --connect-to "blocked.test:$UP:127.0.0.1:$GW" "https://blocked.test:$UP/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "a report-mode deny rule does not open the gateway under a global enforce"
wait_log "$LOG" 1 event=deny reason=not_allowed would_deny=false name=blocked.test rule=null
ok $? "the enforced answer is logged: not_allowed, no rule"

# Sources: scoped.test is admitted only from 127.0.0.9.
err=$($CURL --connect-to "scoped.test:$UP:127.0.0.1:$GW" "https://scoped.test:$UP/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "a rule with sources does not admit other clients"
wait_log "$LOG" 1 event=deny reason=not_allowed would_deny=false name=scoped.test
ok $? "logged as not_allowed for that client"
out=$($CURL --interface 127.0.0.9 --connect-to "scoped.test:$UP:127.0.0.1:$GW" "https://scoped.test:$UP/" 2>&1)
echo "$out" | grep -q s_server
ok $? "the same name from 127.0.0.9 is admitted"
wait_log "$LOG" 1 event=allow name=scoped.test rule_name=scoped rule="$P/10-base.yaml:6"
ok $? "by the scoped rule"

# Ranges in IPv4-mapped form against an IPv4 listener's clients and answers.
out=$($CURL --connect-to "known.test:$UP:127.0.0.1:$GW" "https://known.test:$UP/" 2>&1)
echo "$out" | grep -q s_server
ok $? "known.test is admitted from 127.0.0.1"
err=$($CURL --interface 127.0.0.11 --connect-to "known.test:$UP:127.0.0.1:$GW" \
    "https://known.test:$UP/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "a deny whose sources say ::ffff:127.0.0.11/128 refuses the IPv4 client 127.0.0.11"
wait_log "$LOG" 1 event=deny reason=denied_by_rule name=known.test \
    rule_name=mapped-client rule="$P/50-mapped.yaml:3" upstream=null
ok $? "by that rule, before any upstream connection"
err=$($CURL --connect-to "mfenced.test:$UP:127.0.0.1:$GW" "https://mfenced.test:$UP/" 2>&1)
echo "$err" | grep -q "alert access denied"
ok $? "dns.deny_ranges ::ffff:127.0.0.12/128 refuses the IPv4 answer 127.0.0.12"
wait_log "$LOG" 1 event=deny reason=private_address name=mfenced.test \
    detail="mfenced.test resolves to 127.0.0.12 (in dns.deny_ranges)" upstream=null
ok $? "with a private_address line naming dns.deny_ranges, no upstream connected"

finish

#!/bin/sh
# The command line and configuration checking as operators use them:
# egressd -t prints "configuration OK" or every error as file:line:column,
# and a daemon whose configuration or policy does not load never starts.
. "$(dirname "$0")/lib.sh"
need python3

GW=$(free_port)
cd "$T" || bail "no temp dir"

cat > allow.yaml <<EOF
allow:
  - hosts: ["api.example.com", "*.atlassian.net"]
EOF
cat > good.yaml <<EOF
listeners:
  - name: tls
    address: 127.0.0.1:$GW
    protocol: tls
    upstream_port: 443
workers: auto
dns:
  servers: ["127.0.0.1:5353"]
policy:
  files: ["allow.yaml"]
log:
  path: "-"
timeouts: {hello: 10s, dns: 5s, connect: 5s, idle: 1h}
EOF

out=$("$EGRESSD" -t -c good.yaml 2>&1)
rc=$?
[ $rc -eq 0 ] && [ "$out" = "configuration OK" ]
ok $? "egressd -t on a good configuration prints 'configuration OK' and exits 0"

"$EGRESSD" --version | grep -Eq '^egressd [0-9]+\.[0-9]+\.[0-9]+$'
ok $? "--version prints 'egressd X.Y.Z'"
"$EGRESSD" --help | grep -q -- "-t, --test"
ok $? "--help describes -t"
"$EGRESSD" >/dev/null 2>&1
[ $? -eq 2 ]
ok $? "no -c is a usage error, exit status 2"

# Every problem of the file, each at its place, not just the first.
cat > bad.yaml <<EOF
listeners:
  - name: tls
    address: 127.0.0.1
    protocol: quic
    upstream_port: 70000
workers: many
dns:
  servers: ["dns.example.com"]
policy:
  files: ["allow.yaml"]
logs:
  path: "-"
timeouts: {hello: soon}
EOF
out=$("$EGRESSD" -t -c bad.yaml 2>&1)
rc=$?
[ $rc -eq 1 ]
ok $? "a bad configuration: exit status 1"
expect() {
	echo "$out" | grep -qxF -- "$1"
	ok $? "reports: $1"
}
expect "bad.yaml:3:14: listener address '127.0.0.1' must be IP:PORT or [IPv6]:PORT"
expect "bad.yaml:4:15: listener protocol 'quic' is not supported (supported: tls, http, connect, transparent)"
expect "bad.yaml:11:1: configuration: unknown key 'logs' (expected one of: listeners, workers, dns, policy, log, timeouts, max_connections, mode, namespaces, admin, drain, user, group, redirects, upstream_tls, refuse_ech, relay_splice)"
echo "$out" | grep -q '^bad.yaml:5:20: '
ok $? "reports upstream_port 70000 at 5:20"
echo "$out" | grep -q '^bad.yaml:6:10: '
ok $? "reports workers: many at 6:10"
echo "$out" | grep -qF "bad.yaml:8:13: dns.servers: 'dns.example.com' is not IP, IP:PORT or [IPv6]:PORT"
ok $? "reports a DNS server given by name"
echo "$out" | grep -q '^bad.yaml:13:19: '
ok $? "reports the bad duration at 13:19"
echo "$out" | grep -qv "configuration OK"
ok $? "does not claim the configuration is OK"
diag "$out"

# A policy that does not load stops everything, with the policy's position.
cat > badpolicy.yaml <<EOF
allow:
  - hosts: ["api.example.com", "*foo.example.com"]
EOF
sed 's/allow.yaml/badpolicy.yaml/' good.yaml > withbad.yaml
out=$("$EGRESSD" -t -c withbad.yaml 2>&1)
rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "badpolicy.yaml:2:32: "
ok $? "a bad pattern fails -t with the policy file's line and column"
diag "$out"

"$EGRESSD" -c withbad.yaml >out.txt 2>err.txt &
pid=$!
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
kill -0 $pid 2>/dev/null && { kill $pid; false; }
wait $pid
rc=$?
[ $rc -eq 1 ]
ok $? "the daemon refuses to start on a bad policy (exit 1)"
python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$GW))==0)"
ok $? "and nothing listens on its port"

sed 's/allow.yaml/missing.yaml/' good.yaml > missing.yaml.cfg
out=$("$EGRESSD" -t -c missing.yaml.cfg 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "missing.yaml"
ok $? "a missing policy file is an error naming the file"

printf 'listeners: []\npolicy: {files: [allow.yaml]}\n' > nolisteners.yaml
out=$("$EGRESSD" -t -c nolisteners.yaml 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "no listeners"
ok $? "a configuration without listeners is refused"

printf 'listeners:\n  - {address: "127.0.0.1:%s"}\n' "$GW" > nopolicy.yaml
out=$("$EGRESSD" -t -c nopolicy.yaml 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "never starts without a policy"
ok $? "a configuration without policy files is refused (never allow-all by default)"

out=$("$EGRESSD" -t -c /nonexistent/egressd.yaml 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "/nonexistent/egressd.yaml"
ok $? "a missing configuration file is an error naming it"

finish

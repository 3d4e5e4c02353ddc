#!/bin/sh
# user:/group: started as root, egressd binds its listeners (one below
# 1024), its admin socket and its log, then becomes the named user for
# good: /proc/PID/status shows it, root cannot come back, traffic and
# reloads keep working (policy files readable by that user), and a policy
# file the user cannot read fails the reload without touching the running
# policy. An unknown user, or user: set when not started as root, is a
# clear start-up error.
# Switching users takes root; as in tests/netns, a run that is not root
# skips, and CI runs as root (where a missing piece fails, not skips).
if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root"
	exit 0
fi
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3 setpriv

getent passwd nobody >/dev/null && getent group daemon >/dev/null ||
    bail "the system has no user nobody or group daemon"
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
DAEMON_GID=$(getent group daemon | cut -d: -f3)

make_pki one.test two.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
A=$(free_port)
# A privileged port: the first free one in 900-999, from a random start.
LOW=$(python3 -c '
import random, socket
start = random.randrange(900, 1000)
for i in range(100):
    p = 900 + (start - 900 + i) % 100
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()')
[ -n "$LOW" ] || bail "no free port in 900-999"
start_dns "$DNS_PORT" one.test=127.0.0.2 two.test=127.0.0.3
start_tls_www "127.0.0.2:$UP" one.test
start_tls_www "127.0.0.3:$UP" two.test

# The test directory is root's (0700): let nobody through to the policy,
# which it must be able to read for reloads (docs/operations.md).
chmod 711 "$T"
mkdir "$T/policy.d"
chmod 755 "$T/policy.d"
cat > "$T/policy.d/10-one.yaml" <<EOF
allow:
  - hosts: [one.test]
    ports: [$UP]
    allow_private: true
EOF
chmod 644 "$T/policy.d/10-one.yaml"
LOG="$T/egressd.log"
conf() {
	cat <<EOF
listeners:
  - {name: low, address: "127.0.0.1:$LOW", upstream_port: $UP}
  - {name: high, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 2
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [policy.d], watch: false}
log: {path: egressd.log}
admin: {address: "127.0.0.1:$A"}
$1
EOF
}
conf "user: nobody" > "$T/egressd.yaml"
start_egressd "$T/egressd.yaml"

status_ids() {
	# "Uid: r e s fs" and "Gid: ..." lines, tabs as spaces
	grep -E "^($1):" "/proc/$EGRESSD_PID/status" | tr -s '\t ' ' ' | sed 's/ $//'
}
got=$(status_ids Uid)
[ "$got" = "Uid: $NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" ]
ok $? "the daemon runs as nobody: real, effective, saved and fs uid ($got)"
got=$(status_ids Gid)
[ "$got" = "Gid: $NOBODY_GID $NOBODY_GID $NOBODY_GID $NOBODY_GID" ]
ok $? "with nobody's group ($got)"
got=$(status_ids Groups)
[ "$got" = "Groups: $NOBODY_GID" ] || [ "$got" = "Groups:" ]
ok $? "and none of root's supplementary groups ($got)"
grep -q "started: .*, running as uid $NOBODY_UID gid $NOBODY_GID," "$LOG"
ok $? "the started line says which uid and gid it runs as"
# Every thread, not only the main one.
bad=0
for t in /proc/"$EGRESSD_PID"/task/*; do
	grep -qE "^Uid:\s+$NOBODY_UID\s+$NOBODY_UID\s+$NOBODY_UID\s" "$t/status" || bad=1
done
[ $bad -eq 0 ]
ok $? "every thread ($(ls /proc/"$EGRESSD_PID"/task | wc -l)) runs as nobody"

CURL="curl -sS --max-time 10 --cacert $T/pki/ca.pem"
get() {
	$CURL --connect-to "$1:$UP:127.0.0.1:$2" "https://$1:$UP/" >/dev/null 2>&1
}
get one.test "$LOW"
ok $? "the listener on privileged port $LOW (bound before the switch) relays"
get one.test "$GW"
ok $? "the listener on port $GW relays"
got=$(curl -s --max-time 5 "http://127.0.0.1:$A/ready")
[ "$got" = ready ]
ok $? "the admin socket (bound before the switch) answers ($got)"

cat > "$T/policy.d/20-two.yaml" <<EOF
allow:
  - hosts: [two.test]
    ports: [$UP]
    allow_private: true
EOF
chmod 644 "$T/policy.d/20-two.yaml"
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "policy generation 1" 10
ok $? "SIGHUP as nobody: the policy reloads"
get two.test "$LOW"
ok $? "and two.test is allowed after it"

# A file nobody cannot read: the reload fails, the running policy stays.
echo 'allow: [{hosts: [three.test]}]' > "$T/policy.d/30-secret.yaml"
chmod 600 "$T/policy.d/30-secret.yaml"
kill -HUP "$EGRESSD_PID"
wait_for "$LOG" "reload (SIGHUP) failed" 10
ok $? "a policy file the user cannot read fails the reload"
grep -q '30-secret.yaml.*ermission denied' "$LOG"
ok $? "and the log names the file and says permission denied"
get one.test "$GW" && get two.test "$GW"
ok $? "the running policy keeps deciding"
rm -f "$T/policy.d/30-secret.yaml"

stop_pid "$EGRESSD_PID"
ok $? "SIGTERM: exit 0 as nobody"

# group: overrides the user's own group.
conf "user: nobody
group: daemon" > "$T/egressd-group.yaml"
: > "$LOG"
start_egressd "$T/egressd-group.yaml"
got=$(status_ids Gid)
[ "$got" = "Gid: $DAEMON_GID $DAEMON_GID $DAEMON_GID $DAEMON_GID" ]
ok $? "group: daemon sets every gid to $DAEMON_GID ($got)"
got=$(status_ids Uid)
[ "$got" = "Uid: $NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" ]
ok $? "user: nobody still sets the uid ($got)"
get one.test "$LOW"
ok $? "and it relays"
stop_pid "$EGRESSD_PID"

# A number with no passwd entry (as container images use): that uid, and
# the same number as gid.
getent passwd 65533 >/dev/null && bail "uid 65533 has an entry; pick another"
conf "user: \"65533\"" > "$T/egressd-num.yaml"
: > "$LOG"
start_egressd "$T/egressd-num.yaml"
got="$(status_ids Uid) / $(status_ids Gid) / $(status_ids Groups)"
[ "$got" = "Uid: 65533 65533 65533 65533 / Gid: 65533 65533 65533 65533 / Groups: 65533" ]
ok $? "user: \"65533\" (no entry): uid, gid and groups 65533 ($got)"
stop_pid "$EGRESSD_PID"

# start_fail CONFIG [RUNNER...]: run egressd, expect exit 1 within 10 s;
# stderr in $T/fail.err.
start_fail() {
	cfg=$1
	shift
	"$@" "$EGRESSD" -c "$cfg" >"$T/fail.out" 2>"$T/fail.err" &
	p=$!
	PIDS="$PIDS $p"
	i=0
	while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	wait "$p"
}

conf "user: no-such-user-egressd" > "$T/nouser.yaml"
start_fail "$T/nouser.yaml"
rc=$?
[ $rc -eq 1 ] && grep -qx 'egressd: user no-such-user-egressd: no such user' "$T/fail.err"
ok $? "an unknown user: exit 1, \"$(cat "$T/fail.err")\""
"$EGRESSD" -t -c "$T/nouser.yaml" >"$T/t.out" 2>"$T/t.err"
rc=$?
[ $rc -eq 1 ] && grep -qx "$T/nouser.yaml: user no-such-user-egressd: no such user" "$T/t.err" &&
    ! grep -q "configuration OK" "$T/t.out"
ok $? "egressd -t reports the unknown user too (rc $rc: $(cat "$T/t.err"))"
conf "group: no-such-group-egressd" > "$T/nogroup.yaml"
start_fail "$T/nogroup.yaml"
rc=$?
[ $rc -eq 1 ] && grep -qx 'egressd: group no-such-group-egressd: no such group' "$T/fail.err"
ok $? "an unknown group: exit 1, \"$(cat "$T/fail.err")\""

# Not root, asked to become someone else: exit 1, and nothing is served.
# (nobody runs it; the configuration and log must be its to read/write.)
mkdir "$T/nr"
chmod 755 "$T/nr"
cp -r "$T/policy.d" "$T/nr/"
conf "user: daemon" | sed "s|policy.d|$T/nr/policy.d|; s|egressd.log|$T/nr/egressd.log|" > "$T/nr/egressd.yaml"
chown -R nobody "$T/nr"
start_fail "$T/nr/egressd.yaml" setpriv --reuid=nobody --regid=nogroup --clear-groups
rc=$?
[ $rc -eq 1 ] && grep -q "egressd: cannot switch to user daemon (uid 1, gid 1): not running as root (uid $NOBODY_UID)" "$T/fail.err"
ok $? "user: set, not started as root: exit 1, \"$(cat "$T/fail.err")\""
# ... while naming the user it already runs as is fine.
conf "user: nobody" | sed "s|policy.d|$T/nr/policy.d|; s|egressd.log|$T/nr/egressd.log|" > "$T/nr/same.yaml"
chown nobody "$T/nr/same.yaml"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$EGRESSD" -c "$T/nr/same.yaml" \
    >"$T/same.out" 2>"$T/same.err" &
same=$!
PIDS="$PIDS $same"
# Port $LOW cannot be bound by nobody: expect that error, which shows the
# identity check passed and start-up went on to bind.
i=0
while kill -0 "$same" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
wait "$same"
rc=$?
[ $rc -eq 1 ] && grep -q "listener low: cannot listen on 127.0.0.1:$LOW: Permission denied" "$T/same.err"
ok $? "user: naming the user it already runs as passes; then port $LOW needs root to bind (\"$(cat "$T/same.err")\")"

finish

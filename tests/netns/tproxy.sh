#!/bin/sh
# The same world as transparent.sh, steered with TPROXY instead of
# REDIRECT (world.sh, WORLD_STEER=tproxy): the kernel keeps the client's
# destination address on the accepted socket, so orig_dst is the socket's
# local address. The gateway must behave exactly as with REDIRECT: connect
# only where the allowed name leads, never to the address aimed at.
WORLD_STEER=tproxy
. "$(dirname "$0")/world.sh"

make_pki allowed.test v6.test
world_build
world_dns 60 allowed.test=$REAL_IP blocked.test=$REAL_IP v6.test=$REAL_IP6
K="$T/pki"
REC="$T/inet.rec"
ATT="$T/attacker.rec"
world_server "$INET" "$REC" \
    "tls:$REAL_IP:443:$K/allowed.test.pem:$K/allowed.test.key:allowed.test at $REAL_IP" \
    "tls:$REAL_IP:8443:$K/allowed.test.pem:$K/allowed.test.key:allowed.test at $REAL_IP:8443" \
    "tls:[$REAL_IP6]:443:$K/v6.test.pem:$K/v6.test.key:v6.test at $REAL_IP6"
world_server "$INET" "$ATT" "tcp:$ATTACKER_IP:443"

# Control, before egressd: an IP_TRANSPARENT listener on $TPORT gets the
# pod's connections, with the address the pod aimed at as its local address.
CTL="$T/control.rec"
world_server "$GW" "$CTL" "ttcp:0.0.0.0:$TPORT" "ttcp:[::]:$TPORT"
in_pod python3 - "$REAL_IP" "$REAL_IP6" <<'EOF'
import socket, sys
for a in sys.argv[1:]:
    try:
        socket.create_connection((a, 443), 3).close()
    except OSError as e:
        print("# %s: %s" % (a, e))
EOF
wait_for "$CTL" "tcp $POD_IP6 [$REAL_IP6]:443" 5
[ "$(count_rec "$CTL" "^tcp $POD_IP $REAL_IP:443\$")" = 1 ] &&
    [ "$(count_rec "$CTL" "^tcp $POD_IP6 \[$REAL_IP6\]:443\$")" = 1 ] &&
    [ "$(count_rec "$REC" .)" = 0 ]
ok $? "control: a plain IP_TRANSPARENT listener on $TPORT receives the pod's $REAL_IP:443 and [$REAL_IP6]:443"
sed 's/^/# control: /' "$CTL"
stop_bounded "$WS_PID" 5 >/dev/null 2>&1

mkdir "$T/policy"
cat >"$T/policy/allow.yaml" <<EOF
allow:
  - hosts: [allowed.test, v6.test]
    ports: [443]
EOF
LOG="$T/egressd.log"
cat >"$T/egressd.yaml" <<EOF
listeners:
  - {name: tproxy, address: "0.0.0.0:$TPORT", protocol: transparent}
  - {name: tproxy6, address: "[::]:$TPORT", protocol: transparent}
workers: 1
dns:
  servers: ["$DNS_IP:53"]
  allow_ranges: ["203.0.113.0/24", "2001:db8::/32"]
policy: {files: [policy/allow.yaml]}
log: {path: egressd.log}
timeouts: {hello: 3s, dns: 2s, connect: 2s, idle: 30s}
EOF
world_egressd "$T/egressd.yaml"

out=$(pod_curl --max-time 5 --resolve "allowed.test:443:$REAL_IP" https://allowed.test/ 2>&1)
[ "$out" = "hello from allowed.test at $REAL_IP" ]
ok $? "TPROXY: allowed.test reaches the real server, its certificate verified"
diag "$out"
wait_log "$LOG" 1 event=allow reason=allowed listener=tproxy name=allowed.test port=443 \
    orig_dst="$REAL_IP:443" upstream="$REAL_IP:443"
ok $? "one allow line: orig_dst $REAL_IP:443 (the socket's local address), upstream $REAL_IP:443"
[ "$(count_rec "$REC" "^tcp $GW_INET_IP $REAL_IP:443\$")" = 1 ] &&
    [ "$(count_rec "$REC" "^tcp $POD_IP ")" = 0 ]
ok $? "the server saw one connection, from the gateway, none from the pod"

out=$(pod_curl --max-time 5 --resolve "allowed.test:443:$ATTACKER_IP" https://allowed.test/ 2>&1)
[ "$out" = "hello from allowed.test at $REAL_IP" ] && [ "$(count_rec "$ATT" .)" = 0 ]
ok $? "aimed at the attacker with SNI allowed.test: the real server answers, the attacker records 0 connections"
diag "$out"
wait_log "$LOG" 1 event=allow name=allowed.test orig_dst="$ATTACKER_IP:443" upstream="$REAL_IP:443"
ok $? "its allow line: orig_dst $ATTACKER_IP:443, upstream $REAL_IP:443"

out=$(pod_curl --max-time 5 -6 --resolve "v6.test:443:[$REAL_IP6]" https://v6.test/ 2>&1)
[ "$out" = "hello from v6.test at $REAL_IP6" ]
ok $? "IPv6 TPROXY: v6.test reaches its server"
diag "$out"
wait_log "$LOG" 1 event=allow listener=tproxy6 name=v6.test orig_dst="[$REAL_IP6]:443" \
    upstream="[$REAL_IP6]:443"
ok $? "its allow line: orig_dst and upstream [$REAL_IP6]:443"

err=$(pod_curl --max-time 5 --resolve "blocked.test:443:$REAL_IP" https://blocked.test/ 2>&1)
rc=$?
[ $rc -eq 35 ] && echo "$err" | grep -q "alert access denied"
ok $? "blocked.test fails at the client with the access_denied alert (rc $rc)"
diag "$err"
wait_log "$LOG" 1 event=deny reason=not_allowed name=blocked.test orig_dst="$REAL_IP:443" upstream=null
ok $? "one deny line: not_allowed, orig_dst $REAL_IP:443"

err=$(pod_curl --connect-timeout 3 --max-time 4 --resolve "allowed.test:8443:$REAL_IP" \
    "https://allowed.test:8443/" 2>&1)
rc=$?
{ [ $rc -eq 7 ] || [ $rc -eq 28 ]; } && [ "$(count_rec "$REC" "^tcp $POD_IP ")" = 0 ]
ok $? "TCP 8443 is not intercepted and not forwarded: the pod cannot connect (rc $rc)"
diag "$err"

[ "$(count_rec "$ATT" .)" = 0 ]
ok $? "the attacker recorded 0 connections in the whole run"
stop_bounded "$EGRESSD_PID" 10
rc=$?
[ $rc -eq 0 ]
ok $? "SIGTERM: egressd exits 0 (got $rc)"

finish

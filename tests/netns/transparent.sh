#!/bin/sh
# Transparent interception in network namespaces (see world.sh for the
# map): a pod whose TCP 80/443 the gateway node redirects to egressd with
# iptables REDIRECT, and whose other traffic goes nowhere. Real servers on
# "internet" addresses record every connection they get, so each check
# says where bytes went: the page the pod's curl prints (verified with the
# test CA), which server saw a connection and from where, and the exact
# log line with the original destination the client aimed at.
. "$(dirname "$0")/world.sh"

make_pki allowed.test www.wild.test none.test v6.test
# The attacker has a certificate for allowed.test, from its own CA: a
# client that verifies never accepts it, but it must not even be reached.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/attacker.key" -out "$T/attacker.pem" -days 2 -subj "/CN=allowed.test" \
    -addext "subjectAltName=DNS:allowed.test" >/dev/null 2>&1 ||
    bail "cannot make the attacker's certificate"

world_build
world_dns 60 allowed.test=$REAL_IP blocked.test=$REAL_IP www.wild.test=$WILD_IP \
    meta.wild.test=$TRAP_METADATA ten.wild.test=$TRAP_PRIVATE \
    mapped.wild.test=::ffff:127.0.0.1 none.test=$NONE_IP_A none.test=$NONE_IP_B \
    v6.test=$REAL_IP6

K="$T/pki"
REC="$T/inet.rec"         # the real servers
ATT="$T/attacker.rec"     # the attacker
TRAP="$T/trap.rec"        # addresses the guard must refuse
world_server "$INET" "$REC" \
    "tls:$REAL_IP:443:$K/allowed.test.pem:$K/allowed.test.key:allowed.test at $REAL_IP" \
    "tls:$REAL_IP:8443:$K/allowed.test.pem:$K/allowed.test.key:allowed.test at $REAL_IP:8443" \
    "http:$REAL_IP:80:allowed.test over HTTP at $REAL_IP" \
    "udp:$REAL_IP:5353" \
    "tls:$WILD_IP:443:$K/www.wild.test.pem:$K/www.wild.test.key:www.wild.test at $WILD_IP" \
    "tls:$NONE_IP_A:443:$K/none.test.pem:$K/none.test.key:none.test at $NONE_IP_A" \
    "tls:$NONE_IP_B:443:$K/none.test.pem:$K/none.test.key:none.test at $NONE_IP_B" \
    "tls:[$REAL_IP6]:443:$K/v6.test.pem:$K/v6.test.key:v6.test at $REAL_IP6"
world_server "$INET" "$ATT" \
    "tls:$ATTACKER_IP:443:$T/attacker.pem:$T/attacker.key:the attacker" \
    "tcp:$ATTACKER_IP:80"
world_server "$INET" "$TRAP" "tcp:$TRAP_METADATA:443" "tcp:$TRAP_PRIVATE:443"
world_server "$GW" "$TRAP" "tcp:127.0.0.1:443"

# --- what is not redirected goes nowhere (no egressd involved) ------------
# Control: with forwarding switched on, the pod does reach port 8443 and
# UDP 5353, so what follows is the gateway's doing, not a broken world.
in_gw sysctl -qw net.ipv4.ip_forward=1 || bail "cannot switch forwarding on in $GW"
out=$(pod_curl --resolve "allowed.test:8443:$REAL_IP" "https://allowed.test:8443/" 2>&1)
in_pod python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (sys.argv[1], 5353))' "$REAL_IP"
wait_for "$REC" "udp $POD_IP $REAL_IP:5353" 5
in_gw sysctl -qw net.ipv4.ip_forward=0 || bail "cannot switch forwarding off in $GW"
[ "$out" = "hello from allowed.test at $REAL_IP:8443" ] &&
    [ "$(count_rec "$REC" "^tcp $POD_IP $REAL_IP:8443\$")" = 1 ] &&
    [ "$(count_rec "$REC" "^udp $POD_IP $REAL_IP:5353\$")" = 1 ]
ok $? "control: with forwarding on, the pod reaches $REAL_IP:8443 and UDP 5353 directly"
diag "$out"

[ "$(in_gw sysctl -n net.ipv4.ip_forward)" = 0 ] &&
    [ "$(in_gw sysctl -n net.ipv6.conf.all.forwarding)" = 0 ]
ok $? "the gateway namespace forwards nothing (IPv4 and IPv6 forwarding off)"

start=$(date +%s)
err=$(pod_curl --connect-timeout 3 --max-time 4 --resolve "allowed.test:8443:$REAL_IP" \
    "https://allowed.test:8443/" 2>&1)
rc=$?
took=$(( $(date +%s) - start ))
{ [ $rc -eq 7 ] || [ $rc -eq 28 ]; } && [ $took -le 6 ] &&
    [ "$(count_rec "$REC" "^tcp $POD_IP $REAL_IP:8443\$")" = 1 ]
ok $? "TCP 8443 is not redirected: the pod cannot connect (curl rc $rc in ${took}s), the server sees nothing new"
diag "$err"

in_pod python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (sys.argv[1], 5353))' "$REAL_IP"
sleep 1
[ "$(count_rec "$REC" "^udp $POD_IP ")" = 1 ]
ok $? "UDP from the pod does not leave: the server's datagram count stays 1"

err=$(pod_curl -6 --connect-timeout 3 --max-time 4 "http://[$REAL_IP6]:8443/" 2>&1)
rc=$?
{ [ $rc -eq 7 ] || [ $rc -eq 28 ]; } && [ "$(count_rec "$REC" "^tcp $POD_IP6 ")" = 0 ]
ok $? "nor over IPv6 (curl rc $rc)"
diag "$err"

# --- egressd on the transparent listener ----------------------------------
LOG="$T/egressd.log"
# The policy lives in its own directory: egressd watches the directories
# of its policy files, and the servers' records change all the time in $T.
mkdir "$T/policy"
P="$T/policy"
cat >"$P/allow.yaml" <<EOF
allow:
  - hosts: [allowed.test, v6.test, "*.wild.test"]
    ports: [443]
  - hosts: [allowed.test]
    ports: [80]
EOF
cat >"$P/mesh.yaml" <<EOF
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: none-se, namespace: egress}
spec:
  hosts: [none.test]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: NONE
EOF
cat >"$T/egressd.yaml" <<EOF
listeners:
  - {name: transparent, address: "0.0.0.0:$TPORT", protocol: transparent}
  - {name: transparent6, address: "[::]:$TPORT", protocol: transparent}
workers: 1
dns:
  servers: ["$DNS_IP:53"]
  allow_ranges: ["203.0.113.0/24", "2001:db8::/32"]
policy: {files: [policy/allow.yaml, policy/mesh.yaml]}
log: {path: egressd.log}
timeouts: {hello: 3s, dns: 2s, connect: 2s, idle: 30s}
EOF
world_egressd "$T/egressd.yaml"

# 1. An allowed name, aimed at its real address.
out=$(pod_curl --resolve "allowed.test:443:$REAL_IP" https://allowed.test/ 2>&1)
[ "$out" = "hello from allowed.test at $REAL_IP" ]
ok $? "allowed.test through the REDIRECT: the real server's page, its certificate verified"
diag "$out"
wait_log "$LOG" 1 event=allow reason=allowed listener=transparent name=allowed.test port=443 \
    proto=tls orig_dst="$REAL_IP:443" upstream="$REAL_IP:443" rule="$P/allow.yaml:2"
ok $? "one allow line: orig_dst $REAL_IP:443, upstream $REAL_IP:443"
[ "$(count_rec "$REC" "^tcp $GW_INET_IP $REAL_IP:443\$")" = 1 ] &&
    [ "$(count_rec "$REC" "^tcp $POD_IP $REAL_IP:443\$")" = 0 ]
ok $? "the server saw one connection, from the gateway ($GW_INET_IP), none from the pod"

# 2. The same name, aimed at the attacker: the gateway goes where the name leads.
out=$(pod_curl --resolve "allowed.test:443:$ATTACKER_IP" https://allowed.test/ 2>&1)
[ "$out" = "hello from allowed.test at $REAL_IP" ] && [ "$(count_rec "$ATT" .)" = 0 ]
ok $? "aimed at the attacker ($ATTACKER_IP) with SNI allowed.test: the real server answers, the attacker records 0 connections"
diag "$out"
wait_log "$LOG" 1 event=allow name=allowed.test orig_dst="$ATTACKER_IP:443" upstream="$REAL_IP:443"
ok $? "its allow line: orig_dst $ATTACKER_IP:443, upstream $REAL_IP:443"

# The same over IPv6 (IP6T_SO_ORIGINAL_DST).
out=$(pod_curl -6 --resolve "v6.test:443:[$REAL_IP6]" https://v6.test/ 2>&1)
[ "$out" = "hello from v6.test at $REAL_IP6" ]
ok $? "IPv6: v6.test through the ip6tables REDIRECT reaches its server"
diag "$out"
wait_log "$LOG" 1 event=allow name=v6.test orig_dst="[$REAL_IP6]:443" upstream="[$REAL_IP6]:443"
ok $? "its allow line: orig_dst and upstream [$REAL_IP6]:443"

# 3. Wildcard names whose DNS answer the address guard refuses.
out=$(pod_curl --resolve "www.wild.test:443:$REAL_IP" https://www.wild.test/ 2>&1)
[ "$out" = "hello from www.wild.test at $WILD_IP" ]
ok $? "the wildcard rule admits www.wild.test (control): page from $WILD_IP"
wait_log "$LOG" 1 event=allow name=www.wild.test orig_dst="$REAL_IP:443" upstream="$WILD_IP:443"
ok $? "its allow line: upstream $WILD_IP:443, where DNS says, not the orig_dst"
for c in "meta.wild.test $TRAP_METADATA link_local" "ten.wild.test $TRAP_PRIVATE private" \
    "mapped.wild.test ::ffff:127.0.0.1 loopback"; do
	set -- $c
	err=$(pod_curl --resolve "$1:443:$REAL_IP" "https://$1/" 2>&1)
	rc=$?
	[ $rc -eq 35 ] && echo "$err" | grep -q "alert access denied"
	ok $? "$1 (DNS: $2) fails at the client with the access_denied alert (rc $rc)"
	wait_log "$LOG" 1 event=deny reason=private_address name="$1" orig_dst="$REAL_IP:443" \
	    upstream=null detail="$1 resolves to $2 ($3)"
	ok $? "$1: one deny line, private_address, '$1 resolves to $2 ($3)'"
done
[ "$(count_rec "$TRAP" .)" = 0 ]
ok $? "nothing connected to $TRAP_METADATA:443, $TRAP_PRIVATE:443 or the gateway's 127.0.0.1:443"

# 4. ServiceEntry resolution NONE: the original destination, if the name leads there.
for ip in "$NONE_IP_B" "$NONE_IP_A"; do
	out=$(pod_curl --resolve "none.test:443:$ip" https://none.test/ 2>&1)
	[ "$out" = "hello from none.test at $ip" ]
	ok $? "resolution NONE, aimed at $ip (one of none.test's addresses): that server answers"
	diag "$out"
	wait_log "$LOG" 1 event=allow name=none.test rule_name=none-se orig_dst="$ip:443" upstream="$ip:443"
	ok $? "its allow line: rule none-se, orig_dst = upstream = $ip:443"
done
err=$(pod_curl --resolve "none.test:443:$ATTACKER_IP" https://none.test/ 2>&1)
rc=$?
[ $rc -eq 35 ] && echo "$err" | grep -q "alert access denied" && [ "$(count_rec "$ATT" .)" = 0 ]
ok $? "resolution NONE aimed at the attacker: access_denied alert (rc $rc), the attacker records 0 connections"
diag "$err"
wait_log "$LOG" 1 event=deny reason=dst_mismatch name=none.test orig_dst="$ATTACKER_IP:443" upstream=null
ok $? "one deny line: dst_mismatch, orig_dst $ATTACKER_IP:443"

# 6. A name no rule admits.
err=$(pod_curl --resolve "blocked.test:443:$REAL_IP" https://blocked.test/ 2>&1)
rc=$?
[ $rc -eq 35 ] && echo "$err" | grep -q "alert access denied"
ok $? "blocked.test fails at the client with the access_denied alert (rc $rc)"
diag "$err"
wait_log "$LOG" 1 event=deny reason=not_allowed name=blocked.test listener=transparent \
    orig_dst="$REAL_IP:443" rule=null upstream=null bytes_out=7
ok $? "one deny line: not_allowed, orig_dst $REAL_IP:443, 7 bytes (the alert) sent"

# Plain HTTP on port 80 is redirected too, and decided per request on its
# Host and the port the client aimed at, as on an http listener.
out=$(in_pod curl -sS --max-time 10 --resolve "allowed.test:80:$ATTACKER_IP" \
    "http://allowed.test/page" 2>&1)
[ "$out" = "hello from allowed.test over HTTP at $REAL_IP" ] &&
    [ "$(count_rec "$REC" "^http $GW_INET_IP GET /page HTTP/1.1 host=allowed.test\$")" = 1 ]
ok $? "plain HTTP aimed at the attacker reaches allowed.test's real server (got $out)"
wait_log "$LOG" 1 event=allow reason=allowed listener=transparent name=allowed.test port=80 \
    proto=http method=GET url="http://allowed.test/page" status=200 \
    orig_dst="$ATTACKER_IP:80" upstream="$REAL_IP:80" rule="$P/allow.yaml:4"
ok $? "one allow line per request: proto http, the url, status 200, orig_dst the attacker"
out=$(in_pod curl -sS --max-time 10 -w ' %{http_code}' "http://$REAL_IP/" 2>&1)
[ "$out" = "egressd: $REAL_IP:80: not_allowed: an IP address is not a name any rule can allow
 403" ]
ok $? "plain HTTP naming only an address is refused with 403 (got $out)"
wait_log "$LOG" 1 event=deny reason=not_allowed proto=http orig_dst="$REAL_IP:80" status=403
ok $? "one deny line: not_allowed, proto http, orig_dst $REAL_IP:80"

# --- the whole run ---------------------------------------------------------
[ "$(count_rec "$ATT" .)" = 0 ] && [ "$(count_rec "$TRAP" .)" = 0 ]
ok $? "after everything: the attacker and the trap addresses recorded 0 connections"
[ "$(count_rec "$REC" "^tcp ($POD_IP|$POD_IP6) ")" = 1 ]
ok $? "the only pod connection any server saw directly is the forwarding control"
logq "$LOG" --schema
ok $? "every connection line has exactly the documented keys"
n=$(logq "$LOG" --count)
[ "$n" -eq 13 ]
ok $? "13 connections (and HTTP requests) through the gateway, 13 lines (got $n)"

stop_bounded "$EGRESSD_PID" 10
rc=$?
[ $rc -eq 0 ]
ok $? "SIGTERM: egressd exits 0 (got $rc)"

finish

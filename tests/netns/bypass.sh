#!/bin/sh
# The bypass matrix, transparent part (class 7 of
# tests/integration/bypass.sh), in network namespaces (see world.sh for
# the map): the pod's TCP 80 and 443 are redirected to egressd by iptables
# REDIRECT, and the pod tries to steer the gateway with what it writes:
#
#   - "CONNECT ok.test:443" sent to an address it aims at: a transparent
#     listener is not a proxy, so 400 (bad_http), and nothing connects;
#   - a request aimed at port 80 with "Host: ok.test:8080": the port is the
#     one the client aimed at (the original destination's), never the
#     Host's; an origin listens on 8080 too and must get nothing.
#
# Each attempt is checked three ways, as in the integration test: what the
# pod saw, what the recording origins (tests/integration/bypass_origin.py,
# in the internet namespace) got, and the attempt's one log line.
. "$(dirname "$0")/world.sh"

# python3 once, by its real path (a version-manager shim costs a second
# per start).
PYBIN=$(python3 -c 'import sys; print(sys.executable)') || bail "python3 does not run"
mkdir "$T/bin" || bail "cannot make $T/bin"
ln -s "$PYBIN" "$T/bin/python3" || bail "cannot link python3"
PATH="$T/bin:$PATH"
export PATH
H="$top_srcdir/tests/integration"

make_pki default ok.test
world_build
world_dns 60 "ok.test=$REAL_IP"

REC="$T/origin.rec"
nsenter --net="/run/netns/$INET" python3 "$H/bypass_origin.py" "$REC" \
    "http:$REAL_IP:80" "http:$REAL_IP:8080" "http:$REAL_IP:8081" "tls:$REAL_IP:443:$T/pki" \
    "http:$ATTACKER_IP:80" "http:$ATTACKER_IP:8080" "tls:$ATTACKER_IP:443:$T/pki" \
    >"$T/origin.out" 2>&1 &
PIDS="$PIDS $!"
wait_for "$T/origin.out" listening 10 || { sed 's/^/# /' "$T/origin.out"; bail "the origins did not start"; }

LOG="$T/egressd.log"
mkdir "$T/policy"
cat >"$T/policy/allow.yaml" <<EOF
allow:
  - name: ok
    hosts: [ok.test]
    ports: [80, 443, 8080]
EOF
cat >"$T/egressd.yaml" <<EOF
listeners:
  - {name: transparent, address: "0.0.0.0:$TPORT", protocol: transparent}
workers: 1
admin: {address: "off"}
dns:
  servers: ["$DNS_IP:53"]
  allow_ranges: ["203.0.113.0/24"]
policy: {files: [policy/allow.yaml], watch: false}
log: {path: egressd.log}
timeouts: {hello: 3s, dns: 2s, connect: 2s, idle: 30s}
EOF
world_egressd "$T/egressd.yaml"

# pod_http ADDR:PORT REQUEST: the pod sends REQUEST (python escapes) to
# ADDR:PORT, which the gateway redirects to egressd; "http STATUS BODY".
pod_http() {
	in_pod timeout 20 python3 "$H/bypass_client.py" http "$1" "$2"
}

# The row machinery of tests/integration/bypass.sh, for one egressd.
matches() {
	m_text=$1
	m_pats=$2
	m_hit=1
	m_rest=$m_pats
	while [ -n "$m_rest" ]; do
		m_p=${m_rest%%|*}
		case $m_rest in *"|"*) m_rest=${m_rest#*|} ;; *) m_rest="" ;; esac
		# shellcheck disable=SC2254
		case $m_text in $m_p) m_hit=0; break ;; esac
	done
	return $m_hit
}
conn_lines() {
	tail -n +"${2:-1}" "$1" 2>/dev/null | grep -cE '"event":"(allow|deny|error|redirect)"'
}
# origin_at: the addresses in $ORIGIN's at= field, comma-separated
origin_at() {
	printf '%s\n' "$ORIGIN" | sed 's/.* at=\([^ ]*\) .*/\1/'
}
# origin_got MARK SPEC: none | at=ADDR:PORT (one connection, there, with
# bytes) | not=ADDR:PORT (nothing there, whatever else)
origin_got() {
	ORIGIN=$(python3 "$H/bypass_origin.py" --query "$REC" "$1")
	case $2 in
	none) case $ORIGIN in "conns=0 "*) return 0 ;; esac ;;
	at=*) case $ORIGIN in "conns=1 bytes="[1-9]*" at=${2#at=} "*) return 0 ;; esac ;;
	not=*) case " $(origin_at) " in *"${2#not=}"[,\ ]*) return 1 ;; *) return 0 ;; esac ;;
	esac
	return 1
}
# row ID EXPECT ORIGIN KEYS CLIENT ARGS...: as in the integration test.
row() {
	r_id=$1
	r_expect=$2
	r_origin=$3
	r_keys=$4
	shift 4
	r_from=$(($(wc -l <"$LOG") + 1))
	r_mark=$(wc -l <"$REC")
	r_out=$("$@" 2>&1 | tail -n 1)
	matches "$r_out" "$r_expect"
	ok $? "$r_id: the pod sees: $r_expect" || diag "got: $r_out"
	i=0
	while [ $i -lt 100 ] && [ "$(conn_lines "$LOG" "$r_from")" -eq 0 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	sleep 0.1
	tail -n +"$r_from" "$LOG" >"$T/attempt.log"
	set -f
	# shellcheck disable=SC2086
	[ "$(logq "$T/attempt.log" --count $r_keys)" = 1 ] &&
	    [ "$(conn_lines "$T/attempt.log")" = 1 ]
	ok $? "$r_id: one log line: $r_keys" || {
		diag "the attempt's lines:"
		logq "$T/attempt.log" | sed 's/^/#   /'
	}
	set +f
	origin_got "$r_mark" "$r_origin"
	ok $? "$r_id: origins got: $r_origin" || diag "origins: $ORIGIN"
}

# ------------------------------------------------------------- the rows
CONNECT="CONNECT ok.test:443 HTTP/1.1\r\nHost: ok.test:443\r\n\r\n"
row 7.connect-aimed-at-80 "http 400*" none \
    "event=deny reason=bad_http listener=transparent orig_dst=$ATTACKER_IP:80" \
    pod_http "$ATTACKER_IP:80" "$CONNECT"
row 7.connect-aimed-at-443 "http 400*" none \
    "event=deny reason=bad_http listener=transparent orig_dst=$REAL_IP:443" \
    pod_http "$REAL_IP:443" "$CONNECT"
row 7.host-port-8080 "http 200 hello from ok.test:8080 at $REAL_IP:80" "at=$REAL_IP:80" \
    "event=allow listener=transparent name=ok.test port=80 orig_dst=$REAL_IP:80 upstream=$REAL_IP:80" \
    pod_http "$REAL_IP:80" "GET /a HTTP/1.1\r\nHost: ok.test:8080\r\nConnection: close\r\n\r\n"
row 7.host-port-8080-aimed-at-attacker "http 200 hello from ok.test:8080 at $REAL_IP:80" "at=$REAL_IP:80" \
    "event=allow listener=transparent name=ok.test port=80 orig_dst=$ATTACKER_IP:80 upstream=$REAL_IP:80" \
    pod_http "$ATTACKER_IP:80" "GET /b HTTP/1.1\r\nHost: ok.test:8080\r\nConnection: close\r\n\r\n"
row 7.host-port-8081-not-allowed "http 200 hello from ok.test:8081 at $REAL_IP:80" "at=$REAL_IP:80" \
    "event=allow listener=transparent name=ok.test port=80 orig_dst=$REAL_IP:80 upstream=$REAL_IP:80" \
    pod_http "$REAL_IP:80" "GET /c HTTP/1.1\r\nHost: ok.test:8081\r\nConnection: close\r\n\r\n"
# Absolute-form names a port too: refused, or decided on 80; never 8080.
row 7.absolute-form-8080 "http 400*|http 200 hello from * at $REAL_IP:80" "not=:8080" \
    "listener=transparent orig_dst=$REAL_IP:80" \
    pod_http "$REAL_IP:80" "GET http://ok.test:8080/d HTTP/1.1\r\nHost: ok.test:8080\r\nConnection: close\r\n\r\n"
row 7.host-control "http 200 hello from ok.test at $REAL_IP:80" "at=$REAL_IP:80" \
    "event=allow reason=allowed listener=transparent name=ok.test port=80 orig_dst=$REAL_IP:80 upstream=$REAL_IP:80" \
    pod_http "$REAL_IP:80" "GET /e HTTP/1.1\r\nHost: ok.test\r\nConnection: close\r\n\r\n"

# ------------------------------------------------------------- the whole run
ORIGIN=$(python3 "$H/bypass_origin.py" --query "$REC" 0)
case ",$(origin_at)," in *":8080,"* | *":8081,"* | *"$ATTACKER_IP:"*) false ;; *) true ;; esac
ok $? "after everything: nothing reached port 8080 or 8081, nor the attacker's address" ||
    diag "origins: $ORIGIN"
stop_bounded "$EGRESSD_PID" 10
rc=$?
[ $rc -eq 0 ]
ok $? "SIGTERM: egressd exits 0 (got $rc)"

finish

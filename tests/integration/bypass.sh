#!/bin/sh
# The bypass matrix: every listener attacked the way a pod would, each
# attempt asserted three ways (what the client saw, what the origins got,
# the one log line that names the refusal), each refusal next to a control
# attempt that must arrive, so that every row can fail.
#
#   1  report mode never admits: a report-mode deny rule lets through only
#      what the enforced policy admits (with would_deny), and a report-mode
#      allow rule admits nothing
#   2  a rule that did not admit lends nothing: its allow_private does not
#      relax the address guard for a port it does not list
#   3  CONNECT then a ClientHello without SNI: sni_mismatch
#   4  a PROXY header is believed only from proxy_protocol_from
#   5  a server_name list with two names, or another name type: malformed
#   6  encrypted_client_hello: refused with refuse_ech, logged ("ech")
#   8  absolute-form without Host: the origin never gets a Host-less request
#   9  a name that leads back to the gateway: one refusal, not a chain
#  10  a reload closes tunnels the new policy no longer admits
#  11  a second ClientHello, the one a server takes after its
#      HelloRetryRequest, for another name: sni_mismatch, and the origin
#      never reads it
# (7, transparent interception, is tests/netns/bypass.sh.)
#
# Most rows are one call of `row` in the tables below: a new bypass class
# is a few more rows. Classes 1, 2 and 6 run on the tls listener, through
# the connect listener (CONNECT, then the ClientHello in the tunnel) and,
# where the class applies to HTTP, on the http listener and as
# absolute-form requests; the PROXY-header variants on listeners that
# trust the client's address (proxy_protocol_from). Each class has its own
# egressd (its own configuration and log), so one that does not start
# fails its own rows only.
#
# Upstreams live on loopback, which the address guard refuses unless the
# deciding rule says allow_private: that is what class 1 and 2 turn on.
# Names resolve to one address each, and a recording origin
# (bypass_origin.py) listens on every address and port a name could lead
# to, so "reached nothing" means no TCP connection anywhere.
. "$(dirname "$0")/lib.sh"
need dnsmasq openssl curl python3

# python3 once, by its real path: this suite starts python hundreds of
# times (clients, logq), and a version-manager shim costs a second each.
PYBIN=$(python3 -c 'import sys; print(sys.executable)') || bail "python3 does not run"
mkdir "$T/bin" || bail "cannot make $T/bin"
ln -s "$PYBIN" "$T/bin/python3" || bail "cannot link python3"
PATH="$T/bin:$PATH"
export PATH

H="$top_srcdir/tests/integration"
make_pki default ok.test evil.test side.test mirror.test scoped.test pub.test
DNS_PORT=$(free_port)
UP=$(free_port)         # TLS origins
UP2=$(free_port)        # TLS origin: a port only a report-mode rule lists
HP=$(free_port)         # plain HTTP origins
HP2=$(free_port)        # plain HTTP origin: a port only a report-mode rule lists
start_dns "$DNS_PORT" ok.test=127.0.0.2 evil.test=127.0.0.3 side.test=127.0.0.4 \
    mirror.test=127.0.0.5 scoped.test=127.0.0.6 pub.test=127.0.0.7 \
    loop.test=127.0.0.1 loop2.test=127.0.0.8 loop6.test=::ffff:127.0.0.1 \
    zero.test=0.0.0.0 zero6.test=::

REC="$T/origin.rec"
K="$T/pki"
python3 "$H/bypass_origin.py" "$REC" \
    "tls:127.0.0.2:$UP:$K" "tls:127.0.0.2:$UP2:$K" "http:127.0.0.2:$HP" "http:127.0.0.2:$HP2" \
    "tls:127.0.0.3:$UP:$K" "http:127.0.0.3:$HP" \
    "tls:127.0.0.4:$UP:$K" "http:127.0.0.4:$HP" \
    "tls:127.0.0.5:$UP:$K" "http:127.0.0.5:$HP" \
    "tls:127.0.0.6:$UP:$K" \
    "tls:127.0.0.7:$UP:$K" "http:127.0.0.7:$HP" >"$T/origin.out" 2>&1 &
PIDS="$PIDS $!"
wait_for "$T/origin.out" listening 10 || { sed 's/^/# /' "$T/origin.out"; bail "the origins did not start"; }

# ------------------------------------------------------------------ helpers

# gw_start ID CONFIG: egressd on CONFIG (which logs to $T/ID.log); sets
# PID_ID, and UP_ID to 1 once it said it started, 0 when it exited first.
# Unlike start_egressd it does not bail: an instance whose configuration
# the binary refuses fails its own rows, and says why.
gw_start() {
	"$EGRESSD" -c "$2" >"$T/$1.stdout" 2>"$T/$1.stderr" &
	eval "PID_$1=$!"
	PIDS="$PIDS $!"
	eval "UP_$1=0"
	i=0
	while [ $i -lt 200 ]; do
		if grep -q '"egressd [^"]* started' "$T/$1.log" 2>/dev/null; then
			eval "UP_$1=1"
			return 0
		fi
		if ! kill -0 "$(eval echo "\$PID_$1")" 2>/dev/null; then
			diag "egressd $1 did not start: $(head -n 3 "$T/$1.stderr")"
			return 1
		fi
		sleep 0.05
		i=$((i + 1))
	done
	diag "egressd $1 did not say it started within 10 s"
	return 1
}

is_up() {
	[ "$(eval echo "\$UP_$1")" = 1 ]
}

# Clients. Each prints one last line, the outcome (see bypass_client.py).
tls_py() {
	a=$1
	shift
	case $a in *:*) ;; *) a="127.0.0.1:$a" ;; esac
	timeout 20 python3 "$H/bypass_client.py" tls "$a" --ca "$T/pki/ca.pem" "$@"
}
http_raw() {
	a=$1
	req=$2
	shift 2
	timeout 20 python3 "$H/bypass_client.py" http "127.0.0.1:$a" "$req" "$@"
}
sc_outcome() {
	case $1 in
	*"alert access denied"*) echo "alert access_denied" ;;
	*"alert decode error"*) echo "alert decode_error" ;;
	*"hello from"*) echo "reached $(printf '%s\n' "$1" | grep -o 'hello from.*' | tail -n 1)" ;;
	*) echo "other: $(printf '%s\n' "$1" | tail -n 3 | tr '\n' ' ')" ;;
	esac
}
# sclient GWPORT ARGS...: openssl s_client to a tls listener, GET /
sclient() {
	gw=$1
	shift
	sc_outcome "$(printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
	    timeout 20 openssl s_client -connect "127.0.0.1:$gw" -CAfile "$T/pki/ca.pem" \
	    -ign_eof "$@" 2>&1)"
}
# sclient_via PROXYPORT HOST:PORT ARGS...: the same through CONNECT (-proxy)
sclient_via() {
	px=$1
	dst=$2
	shift 2
	sc_outcome "$(printf 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' |
	    timeout 20 openssl s_client -proxy "127.0.0.1:$px" -connect "$dst" \
	    -CAfile "$T/pki/ca.pem" -ign_eof "$@" 2>&1)"
}
CURL="env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY \
    -u all_proxy -u NO_PROXY -u no_proxy curl -sS --max-time 10"
# hcurl CURL-ARGS...: "http STATUS LAST-BODY-LINE"
hcurl() {
	: >"$T/curl.body"
	code=$($CURL -o "$T/curl.body" -w '%{http_code}' "$@" 2>"$T/curl.err")
	echo "http $code $(tail -n 1 "$T/curl.body")"
}

# matches TEXT PATTERNS: TEXT matches one of the |-separated shell
# patterns; a leading ! turns the whole test around.
matches() {
	m_text=$1
	m_pats=$2
	m_neg=0
	case $m_pats in !*) m_neg=1; m_pats=${m_pats#!} ;; esac
	m_hit=1
	m_rest=$m_pats
	while [ -n "$m_rest" ]; do
		m_p=${m_rest%%|*}
		case $m_rest in *"|"*) m_rest=${m_rest#*|} ;; *) m_rest="" ;; esac
		# shellcheck disable=SC2254
		case $m_text in $m_p) m_hit=0; break ;; esac
	done
	[ $m_neg = 0 ] && return $m_hit
	[ $m_hit = 1 ]
}

# origin_got MARK SPEC: what connections the origins accepted after line
# MARK of the record got, against SPEC:
#   none          no TCP connection at all
#   nobytes       maybe a connection (a CONNECT tunnel opens one), no byte
#   at=ADDR:PORT  exactly one connection, there, and bytes arrived
#   hellos=N,...  exactly one connection, whose ClientHellos named N,...
#   only-hello=A  at most one connection, and no ClientHello there but A's
origin_got() {
	ORIGIN=$(python3 "$H/bypass_origin.py" --query "$REC" "$1")
	case $2 in
	none) case $ORIGIN in "conns=0 "*) return 0 ;; esac ;;
	nobytes) case $ORIGIN in *" bytes=0 "*) return 0 ;; esac ;;
	at=*) case $ORIGIN in "conns=1 bytes="[1-9]*" at=${2#at=} "*) return 0 ;; esac ;;
	hellos=*) case $ORIGIN in "conns=1 "*" $2") return 0 ;; esac ;;
	# at most one connection, and no ClientHello there but NAME's
	only-hello=*) case $ORIGIN in "conns=0 "* | "conns=1 "*" hellos=-" | \
	    "conns=1 "*" hellos=${2#only-hello=}") return 0 ;; esac ;;
	esac
	return 1
}

# conn_lines FILE [FROM]: how many connection lines FILE has from raw line
# FROM on (a cheap count, without python, for polling).
conn_lines() {
	tail -n +"${2:-1}" "$1" 2>/dev/null | grep -cE '"event":"(allow|deny|error|redirect)"'
}

# wait_line SECS FILE COUNT KEY=VALUE...: lib.sh's wait_log with a deadline
# in seconds: wait_log polls logq 200 times, which is minutes for a line
# that never comes when starting python is slow, and today's binary has
# many such lines.
wait_line() {
	w_end=$(($(date +%s) + $1))
	w_file=$2
	w_want=$3
	shift 3
	while :; do
		[ "$(logq "$w_file" --count "$@" 2>/dev/null)" = "$w_want" ] && return 0
		[ "$(date +%s)" -lt "$w_end" ] || return 1
		sleep 0.1
	done
}

# attempt_lines LOG FROM: wait (at most 5 s) until LOG has a connection line
# from raw line FROM on, then a little longer for any second one; leaves
# those lines in $T/attempt.log.
attempt_lines() {
	i=0
	while [ $i -lt 100 ] && [ "$(conn_lines "$1" "$2")" -eq 0 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	sleep 0.1
	tail -n +"$2" "$1" >"$T/attempt.log"
}

# row ID INSTANCE EXPECT ORIGIN KEYS CLIENT ARGS...
#   runs one attempt, CLIENT ARGS..., against egressd INSTANCE, and checks
#   - the client's outcome matches EXPECT (see matches);
#   - the attempt wrote exactly one connection line, and it matches KEYS
#     (KEY=VALUE ..., logq's syntax);
#   - the origins got ORIGIN (see origin_got).
row() {
	r_id=$1
	r_inst=$2
	r_expect=$3
	r_origin=$4
	r_keys=$5
	shift 5
	r_log="$T/$r_inst.log"
	if ! is_up "$r_inst"; then
		for what in "client: $r_expect" "one log line: $r_keys" "origins got: $r_origin"; do
			ok 1 "$r_id: $what (egressd $r_inst is not running)"
		done
		return
	fi
	r_from=$(($(wc -l <"$r_log") + 1))
	r_mark=$(wc -l <"$REC")
	r_out=$("$@" 2>&1 | tail -n 1)
	matches "$r_out" "$r_expect"
	ok $? "$r_id: client: $r_expect" || diag "got: $r_out"
	attempt_lines "$r_log" "$r_from"
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

# ------------------------------------------------------------ the instances
# M: enforce, with report-mode files beside the enforced one (class 1).
mkdir "$T/m.d"
MD="$T/m.d"
cat >"$MD/10-allow.yaml" <<EOF
allow:
  - name: ok
    hosts: [ok.test]
    ports: [$UP, $HP]
    allow_private: true
EOF
cat >"$MD/15-scoped.yaml" <<EOF
allow:
  - name: scoped
    hosts: [scoped.test]
    ports: [$UP]
    sources: ["10.9.9.9/32"]
    allow_private: true
EOF
cat >"$MD/20-trial.yaml" <<EOF
mode: report
deny:
  - hosts: ["*"]
EOF
# allow_private here too: should a report-mode allow ever admit, the
# origins would see it (a rule without it would hide the bypass behind
# private_address).
cat >"$MD/30-side.yaml" <<EOF
mode: report
allow:
  - name: side
    hosts: [side.test]
    ports: [$UP, $HP]
    allow_private: true
  - name: ok-other-port
    hosts: [ok.test]
    ports: [$UP2, $HP2]
    allow_private: true
EOF
M_TLS=$(free_port); M_TLS2=$(free_port); M_CONN=$(free_port); M_HTTP=$(free_port)
cat >"$T/M.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$M_TLS", upstream_port: $UP}
  - {name: tls2, address: "127.0.0.1:$M_TLS2", upstream_port: $UP2}
  - {name: connect, address: "127.0.0.1:$M_CONN", protocol: connect}
  - {name: http, address: "127.0.0.1:$M_HTTP", protocol: http, upstream_port: $HP}
workers: 1
admin: {address: "off"}
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [m.d], watch: false}
log: {path: M.log}
timeouts: {hello: 3s, connect: 2s}
EOF

# P: the same policy behind PROXY-protocol listeners: trusted (the client,
# 127.0.0.1, is in proxy_protocol_from) and untrusted (it is not).
P_TLS=$(free_port); P_CONN=$(free_port); P_HTTP=$(free_port)
P_UNTR=$(free_port); P_UNTRC=$(free_port)
cat >"$T/P.yaml" <<EOF
listeners:
  - {name: tls-pp, address: "127.0.0.1:$P_TLS", upstream_port: $UP,
     proxy_protocol: true, proxy_protocol_from: ["127.0.0.1/32"]}
  - {name: connect-pp, address: "127.0.0.1:$P_CONN", protocol: connect,
     proxy_protocol: true, proxy_protocol_from: ["127.0.0.1/32"]}
  - {name: http-pp, address: "127.0.0.1:$P_HTTP", protocol: http, upstream_port: $HP,
     proxy_protocol: true, proxy_protocol_from: ["127.0.0.1/32"]}
  - {name: tls-untrusted, address: "127.0.0.1:$P_UNTR", upstream_port: $UP,
     proxy_protocol: true, proxy_protocol_from: ["127.0.0.200/32"]}
  - {name: connect-untrusted, address: "127.0.0.1:$P_UNTRC", protocol: connect,
     proxy_protocol: true, proxy_protocol_from: ["127.0.0.200/32"]}
workers: 1
admin: {address: "off"}
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [m.d], watch: false}
log: {path: P.log}
timeouts: {hello: 3s, connect: 2s}
EOF

# R: global report mode; the only rule admits mirror.test on 443 (class 2).
# pub.test (127.0.0.7, no rule) is the control: report mode lets it
# through, and dns.allow_ranges makes that one address reachable.
mkdir "$T/r.d"
cat >"$T/r.d/allow.yaml" <<EOF
allow:
  - name: mirror
    hosts: [mirror.test]
    ports: [443]
    allow_private: true
EOF
R_TLS=$(free_port); R_CONN=$(free_port); R_HTTP=$(free_port)
cat >"$T/R.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$R_TLS", upstream_port: $UP}
  - {name: connect, address: "127.0.0.1:$R_CONN", protocol: connect}
  - {name: http, address: "127.0.0.1:$R_HTTP", protocol: http, upstream_port: $HP}
workers: 1
mode: report
admin: {address: "off"}
dns: {servers: ["127.0.0.1:$DNS_PORT"], allow_ranges: ["127.0.0.7/32"]}
policy: {files: [r.d], watch: false}
log: {path: R.log}
timeouts: {hello: 3s, connect: 2s}
EOF

# B: a plain enforced allow-list (classes 3, 5, 6 without refuse_ech, 8).
mkdir "$T/b.d"
cat >"$T/b.d/allow.yaml" <<EOF
allow:
  - name: ok
    hosts: [ok.test]
    ports: [$UP, $HP]
    allow_private: true
EOF
B_TLS=$(free_port); B_CONN=$(free_port); B_HTTP=$(free_port)
cat >"$T/B.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$B_TLS", upstream_port: $UP}
  - {name: connect, address: "127.0.0.1:$B_CONN", protocol: connect}
  - {name: http, address: "127.0.0.1:$B_HTTP", protocol: http, upstream_port: $HP}
workers: 1
admin: {address: "off"}
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [b.d], watch: false}
log: {path: B.log}
timeouts: {hello: 3s, connect: 2s}
EOF

# E: the same allow-list with refuse_ech (class 6).
E_TLS=$(free_port); E_CONN=$(free_port); E_PP=$(free_port)
cat >"$T/E.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$E_TLS", upstream_port: $UP}
  - {name: connect, address: "127.0.0.1:$E_CONN", protocol: connect}
  - {name: tls-pp, address: "127.0.0.1:$E_PP", upstream_port: $UP,
     proxy_protocol: true, proxy_protocol_from: ["127.0.0.1/32"]}
workers: 1
refuse_ech: true
admin: {address: "off"}
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [b.d], watch: false}
log: {path: E.log}
timeouts: {hello: 3s, connect: 2s}
EOF

# L: names that lead back to the gateway's own listeners (class 9).
L_A=$(free_port); L_CA=$(free_port); L_CB=$(free_port); L_C=$(free_port)
L_H=$(free_port); L_CTL=$(free_port); L_ADM=$(free_port)
mkdir "$T/l.d"
cat >"$T/l.d/allow.yaml" <<EOF
allow:
  - name: loop
    hosts: [loop.test, loop2.test, loop6.test, zero.test, zero6.test]
    ports: [$L_A, $L_CA, $L_CB, $L_C, $L_H, $L_ADM]
    allow_private: true
  - name: ok
    hosts: [ok.test]
    ports: [$UP]
    allow_private: true
EOF
cat >"$T/L.yaml" <<EOF
listeners:
  - {name: loop-a, address: "127.0.0.1:$L_A", upstream_port: $L_A}
  - {name: chain-a, address: "127.0.0.8:$L_CA", upstream_port: $L_CB}
  - {name: chain-b, address: "127.0.0.8:$L_CB", upstream_port: $L_CA}
  - {name: loop-connect, address: "127.0.0.1:$L_C", protocol: connect}
  - {name: loop-http, address: "127.0.0.1:$L_H", protocol: http, upstream_port: $L_H}
  - {name: ctl, address: "127.0.0.1:$L_CTL", upstream_port: $UP}
workers: 1
admin: {address: "127.0.0.1:$L_ADM"}
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [l.d], watch: false}
log: {path: L.log}
timeouts: {hello: 3s, connect: 2s}
EOF

# V and V2: reloads and live tunnels (class 10); policy.redecide is true
# by default, false on V2.
for v in V V2; do
	mkdir "$T/$v.d"
	cat >"$T/$v.d/allow.yaml" <<EOF
allow:
  - name: ok
    hosts: [ok.test]
    ports: [$UP]
    allow_private: true
EOF
done
V_TLS=$(free_port); V_CONN=$(free_port); V2_TLS=$(free_port)
cat >"$T/V.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$V_TLS", upstream_port: $UP}
  - {name: connect, address: "127.0.0.1:$V_CONN", protocol: connect}
workers: 1
admin: {address: "off"}
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [V.d], watch: false}
log: {path: V.log}
timeouts: {hello: 3s, connect: 2s}
EOF
cat >"$T/V2.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$V2_TLS", upstream_port: $UP}
workers: 1
admin: {address: "off"}
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [V2.d], watch: false, redecide: false}
log: {path: V2.log}
timeouts: {hello: 3s, connect: 2s}
EOF

for inst in M P R B E L V V2; do
	gw_start "$inst" "$T/$inst.yaml"
done
OKW="hello from ok.test at 127.0.0.2"      # what the ok.test origins answer

# ------------------------------------------------- 1: report mode never admits
TRIAL="$MD/20-trial.yaml:3"
row 1.tls.evil M "alert access_denied" none \
    "event=deny reason=not_allowed would_deny=false listener=tls name=evil.test port=$UP upstream=null" \
    sclient "$M_TLS" -servername evil.test
row 1.tls.ok-control M "reached $OKW:$UP" "at=127.0.0.2:$UP" \
    "event=deny reason=denied_by_rule would_deny=true listener=tls name=ok.test port=$UP rule=$TRIAL upstream=127.0.0.2:$UP" \
    sclient "$M_TLS" -servername ok.test
row 1.tls.report-allow M "alert access_denied" none \
    "event=deny reason=not_allowed would_deny=false listener=tls name=side.test port=$UP upstream=null" \
    tls_py "$M_TLS" --sni side.test
row 1.tls.report-port M "alert access_denied" none \
    "event=deny reason=port_not_allowed would_deny=false listener=tls2 name=ok.test port=$UP2 upstream=null" \
    tls_py "$M_TLS2" --sni ok.test
row 1.connect.evil M "http 403 egressd: evil.test:$UP: not_allowed*" none \
    "event=deny reason=not_allowed would_deny=false listener=connect name=evil.test port=$UP proto=connect status=403" \
    tls_py "$M_CONN" --connect "evil.test:$UP" --sni evil.test
row 1.connect.ok-control M "reached $OKW:$UP" "at=127.0.0.2:$UP" \
    "event=deny reason=denied_by_rule would_deny=true listener=connect name=ok.test port=$UP proto=connect rule=$TRIAL upstream=127.0.0.2:$UP" \
    tls_py "$M_CONN" --connect "ok.test:$UP" --sni ok.test
row 1.connect.report-allow M "http 403 egressd: side.test:$UP: not_allowed*" none \
    "event=deny reason=not_allowed would_deny=false listener=connect name=side.test port=$UP proto=connect status=403" \
    tls_py "$M_CONN" --connect "side.test:$UP" --sni side.test
row 1.connect.report-port M "http 403 egressd: ok.test:$UP2: port_not_allowed*" none \
    "event=deny reason=port_not_allowed would_deny=false listener=connect name=ok.test port=$UP2 proto=connect status=403" \
    tls_py "$M_CONN" --connect "ok.test:$UP2" --sni ok.test
row 1.connect-abs.evil M "http 403 egressd: evil.test:$HP: not_allowed*" none \
    "event=deny reason=not_allowed would_deny=false listener=connect name=evil.test port=$HP proto=http status=403" \
    hcurl -x "http://127.0.0.1:$M_CONN" "http://evil.test:$HP/x"
row 1.connect-abs.ok-control M "http 200 hello from ok.test:$HP at 127.0.0.2:$HP" "at=127.0.0.2:$HP" \
    "event=deny reason=denied_by_rule would_deny=true listener=connect name=ok.test port=$HP proto=http status=200 rule=$TRIAL" \
    hcurl -x "http://127.0.0.1:$M_CONN" "http://ok.test:$HP/x"
row 1.connect-abs.report-allow M "http 403 egressd: side.test:$HP: not_allowed*" none \
    "event=deny reason=not_allowed would_deny=false listener=connect name=side.test port=$HP proto=http status=403" \
    hcurl -x "http://127.0.0.1:$M_CONN" "http://side.test:$HP/x"
row 1.http.evil M "http 403 egressd: evil.test:$HP: not_allowed*" none \
    "event=deny reason=not_allowed would_deny=false listener=http name=evil.test port=$HP proto=http status=403" \
    hcurl --connect-to "evil.test:$HP:127.0.0.1:$M_HTTP" "http://evil.test:$HP/x"
row 1.http.ok-control M "http 200 hello from ok.test:$HP at 127.0.0.2:$HP" "at=127.0.0.2:$HP" \
    "event=deny reason=denied_by_rule would_deny=true listener=http name=ok.test port=$HP proto=http status=200 rule=$TRIAL" \
    hcurl --connect-to "ok.test:$HP:127.0.0.1:$M_HTTP" "http://ok.test:$HP/x"
row 1.http.report-allow M "http 403 egressd: side.test:$HP: not_allowed*" none \
    "event=deny reason=not_allowed would_deny=false listener=http name=side.test port=$HP proto=http status=403" \
    hcurl --connect-to "side.test:$HP:127.0.0.1:$M_HTTP" "http://side.test:$HP/x"
row 1.http.report-port M "http 403 egressd: ok.test:$HP2: port_not_allowed*" none \
    "event=deny reason=port_not_allowed would_deny=false listener=http name=ok.test port=$HP2 proto=http status=403" \
    hcurl --connect-to "ok.test:$HP2:127.0.0.1:$M_HTTP" "http://ok.test:$HP2/x"

# The same behind a PROXY header from a trusted front proxy: the header's
# client is the src.
row 1.pp-tls.evil P "alert access_denied" none \
    "event=deny reason=not_allowed would_deny=false listener=tls-pp name=evil.test port=$UP src=10.1.1.1:40001" \
    tls_py "$P_TLS" --proxy 10.1.1.1:40001 --sni evil.test
row 1.pp-tls.no-header P "!reached*|server_hello" none \
    "event=deny reason=bad_proxy_header listener=tls-pp src~127.0.0.1:" \
    tls_py "$P_TLS" --sni ok.test
row 1.pp-tls.ok-control P "reached $OKW:$UP" "at=127.0.0.2:$UP" \
    "event=deny reason=denied_by_rule would_deny=true listener=tls-pp name=ok.test port=$UP src=10.1.1.2:40002 upstream=127.0.0.2:$UP" \
    tls_py "$P_TLS" --proxy 10.1.1.2:40002 --sni ok.test
row 1.pp-tls.report-allow P "alert access_denied" none \
    "event=deny reason=not_allowed would_deny=false listener=tls-pp name=side.test port=$UP src=10.1.1.3:40003" \
    tls_py "$P_TLS" --proxy 10.1.1.3:40003 --sni side.test
row 1.pp-connect.evil P "http 403 egressd: evil.test:$UP: not_allowed*" none \
    "event=deny reason=not_allowed would_deny=false listener=connect-pp name=evil.test port=$UP src=10.1.1.4:40004 status=403" \
    tls_py "$P_CONN" --proxy 10.1.1.4:40004 --connect "evil.test:$UP" --sni evil.test
row 1.pp-connect.ok-control P "reached $OKW:$UP" "at=127.0.0.2:$UP" \
    "event=deny reason=denied_by_rule would_deny=true listener=connect-pp name=ok.test port=$UP src=10.1.1.5:40005 proto=connect" \
    tls_py "$P_CONN" --proxy 10.1.1.5:40005 --connect "ok.test:$UP" --sni ok.test
row 1.pp-http.evil P "http 403 egressd: evil.test:$HP: not_allowed*" none \
    "event=deny reason=not_allowed would_deny=false listener=http-pp name=evil.test port=$HP src=10.1.1.6:40006 status=403" \
    http_raw "$P_HTTP" "GET /x HTTP/1.1\r\nHost: evil.test:$HP\r\nConnection: close\r\n\r\n" \
    --proxy 10.1.1.6:40006
row 1.pp-http.ok-control P "http 200 hello from ok.test:$HP at 127.0.0.2:$HP" "at=127.0.0.2:$HP" \
    "event=deny reason=denied_by_rule would_deny=true listener=http-pp name=ok.test port=$HP src=10.1.1.7:40007 status=200" \
    http_raw "$P_HTTP" "GET /x HTTP/1.1\r\nHost: ok.test:$HP\r\nConnection: close\r\n\r\n" \
    --proxy 10.1.1.7:40007

# ------------------------------------- 2: a rule that did not admit lends nothing
row 2.tls.mirror R "alert access_denied" none \
    "event=deny reason=private_address would_deny=false listener=tls name=mirror.test port=$UP upstream=null" \
    tls_py "$R_TLS" --sni mirror.test
row 2.tls.pub-control R "reached hello from pub.test at 127.0.0.7:$UP" "at=127.0.0.7:$UP" \
    "event=deny reason=not_allowed would_deny=true listener=tls name=pub.test port=$UP upstream=127.0.0.7:$UP" \
    tls_py "$R_TLS" --sni pub.test
row 2.connect.mirror R "http 403 egressd: mirror.test:$UP: private_address*" none \
    "event=deny reason=private_address would_deny=false listener=connect name=mirror.test port=$UP proto=connect status=403" \
    tls_py "$R_CONN" --connect "mirror.test:$UP" --sni mirror.test
row 2.connect.pub-control R "reached hello from pub.test at 127.0.0.7:$UP" "at=127.0.0.7:$UP" \
    "event=deny reason=not_allowed would_deny=true listener=connect name=pub.test port=$UP proto=connect" \
    tls_py "$R_CONN" --connect "pub.test:$UP" --sni pub.test
row 2.connect-abs.mirror R "http 403 egressd: mirror.test:$HP: private_address*" none \
    "event=deny reason=private_address would_deny=false listener=connect name=mirror.test port=$HP proto=http status=403" \
    hcurl -x "http://127.0.0.1:$R_CONN" "http://mirror.test:$HP/x"
row 2.http.mirror R "http 403 egressd: mirror.test:$HP: private_address*" none \
    "event=deny reason=private_address would_deny=false listener=http name=mirror.test port=$HP proto=http status=403" \
    hcurl --connect-to "mirror.test:$HP:127.0.0.1:$R_HTTP" "http://mirror.test:$HP/x"
row 2.http.pub-control R "http 200 hello from pub.test:$HP at 127.0.0.7:$HP" "at=127.0.0.7:$HP" \
    "event=deny reason=not_allowed would_deny=true listener=http name=pub.test port=$HP proto=http status=200" \
    hcurl --connect-to "pub.test:$HP:127.0.0.1:$R_HTTP" "http://pub.test:$HP/x"

# ------------------------------------------------- 3: CONNECT, then no SNI
row 3.connect.nosni-openssl B "alert access_denied" nobytes \
    "event=deny reason=sni_mismatch listener=connect name=ok.test port=$UP proto=connect" \
    sclient_via "$B_CONN" "ok.test:$UP" -noservername
row 3.connect.nosni-python B "alert access_denied" nobytes \
    "event=deny reason=sni_mismatch listener=connect name=ok.test port=$UP proto=connect" \
    tls_py "$B_CONN" --connect "ok.test:$UP"
row 3.connect.sni-control B "reached $OKW:$UP" "at=127.0.0.2:$UP" \
    "event=allow reason=allowed listener=connect name=ok.test port=$UP proto=connect status=200" \
    sclient_via "$B_CONN" "ok.test:$UP" -servername ok.test
# The hello in the same write as the CONNECT, already buffered when the
# upstream connects and the tunnel would move to splice: decided first.
row 3.connect.pipelined-evil B "alert access_denied" nobytes \
    "event=deny reason=sni_mismatch listener=connect name=ok.test port=$UP proto=connect" \
    tls_py "$B_CONN" --connect "ok.test:$UP" --sni evil.test --hello asis --pipeline
row 3.connect.pipelined-nosni B "alert access_denied" nobytes \
    "event=deny reason=sni_mismatch listener=connect name=ok.test port=$UP proto=connect" \
    tls_py "$B_CONN" --connect "ok.test:$UP" --hello asis --pipeline
row 3.connect.pipelined-control B "server_hello" "at=127.0.0.2:$UP" \
    "event=allow listener=connect name=ok.test port=$UP proto=connect status=200" \
    tls_py "$B_CONN" --connect "ok.test:$UP" --sni ok.test --hello asis --pipeline
row 3.tls.nosni B "alert access_denied" none \
    "event=deny reason=no_sni listener=tls name=null port=$UP" \
    tls_py "$B_TLS"

# ------------------------------------------ 4: PROXY headers from untrusted peers
row 4.tls.untrusted P "!reached*|server_hello" none \
    "event=deny reason=untrusted_proxy listener=tls-untrusted src~127.0.0.1:" \
    tls_py "$P_UNTR" --proxy 10.9.9.9:40009 --sni scoped.test
row 4.tls.trusted-control P "reached hello from scoped.test at 127.0.0.6:$UP" "at=127.0.0.6:$UP" \
    "event=deny reason=denied_by_rule would_deny=true listener=tls-untrusted name=scoped.test src=10.9.9.9:40010 upstream=127.0.0.6:$UP" \
    tls_py "$P_UNTR" --src 127.0.0.200 --proxy 10.9.9.9:40010 --sni scoped.test
row 4.connect.untrusted P "!reached*" none \
    "event=deny reason=untrusted_proxy listener=connect-untrusted src~127.0.0.1:" \
    tls_py "$P_UNTRC" --proxy 10.9.9.9:40011 --connect "scoped.test:$UP" --sni scoped.test

# proxy_protocol without proxy_protocol_from does not load; with it, it does.
BADP=$(free_port)
cat >"$T/pp-bad.yaml" <<EOF
listeners:
  - {name: lb, address: "127.0.0.1:$BADP", upstream_port: $UP, proxy_protocol: true}
workers: 1
admin: {address: "off"}
dns: {servers: ["127.0.0.1:$DNS_PORT"]}
policy: {files: [b.d]}
EOF
"$EGRESSD" -t -c "$T/pp-bad.yaml" >"$T/pp-bad.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "proxy_protocol_from" "$T/pp-bad.out"
ok $? "4.config: proxy_protocol: true without proxy_protocol_from: egressd -t exits 1 naming proxy_protocol_from" ||
    diag "exit $rc: $(cat "$T/pp-bad.out")"
"$EGRESSD" -t -c "$T/P.yaml" >"$T/pp-good.out" 2>&1
ok $? "4.config: with proxy_protocol_from, egressd -t accepts it" || diag "$(cat "$T/pp-good.out")"

# ---------------------------------------------- 5: two names, other name types
MAL="alert decode_error|closed"
row 5.tls.two-names-ok-first B "$MAL" none \
    "event=deny reason=malformed_hello listener=tls port=$UP upstream=null" \
    tls_py "$B_TLS" --sni ok.test --hello two:ok.test,evil.test
row 5.tls.two-names-evil-first B "$MAL" none \
    "event=deny reason=malformed_hello listener=tls port=$UP upstream=null" \
    tls_py "$B_TLS" --sni ok.test --hello two:evil.test,ok.test
row 5.tls.name-type-1 B "$MAL" none \
    "event=deny reason=malformed_hello listener=tls port=$UP upstream=null" \
    tls_py "$B_TLS" --sni ok.test --hello type1:evil.test
row 5.connect.two-names B "$MAL" nobytes \
    "event=deny reason=malformed_hello listener=connect port=$UP proto=connect" \
    tls_py "$B_CONN" --connect "ok.test:$UP" --sni ok.test --hello two:ok.test,evil.test
row 5.tls.one-name-control B "server_hello" "at=127.0.0.2:$UP" \
    "event=allow listener=tls name=ok.test port=$UP upstream=127.0.0.2:$UP" \
    tls_py "$B_TLS" --sni ok.test --hello asis

# ------------------------------------------------------------------- 6: ECH
row 6.tls.ech-admitted B "server_hello" "at=127.0.0.2:$UP" \
    "event=allow listener=tls name=ok.test port=$UP ech=true" \
    tls_py "$B_TLS" --sni ok.test --hello ech
row 6.tls.no-ech B "reached $OKW:$UP" "at=127.0.0.2:$UP" \
    "event=allow reason=allowed listener=tls name=ok.test port=$UP ech=false" \
    tls_py "$B_TLS" --sni ok.test
row 6.connect.ech-admitted B "server_hello" "at=127.0.0.2:$UP" \
    "event=allow listener=connect name=ok.test port=$UP proto=connect ech=true" \
    tls_py "$B_CONN" --connect "ok.test:$UP" --sni ok.test --hello ech
row 6.pp-tls.ech-admitted P "server_hello" "at=127.0.0.2:$UP" \
    "event=deny reason=denied_by_rule would_deny=true listener=tls-pp name=ok.test src=10.1.1.8:40008 ech=true" \
    tls_py "$P_TLS" --proxy 10.1.1.8:40008 --sni ok.test --hello ech
row 6.refuse.tls.ech E "!server_hello" none \
    "event=deny reason=ech_refused listener=tls name=ok.test port=$UP upstream=null" \
    tls_py "$E_TLS" --sni ok.test --hello ech
row 6.refuse.tls.no-ech-control E "reached $OKW:$UP" "at=127.0.0.2:$UP" \
    "event=allow reason=allowed listener=tls name=ok.test port=$UP ech=false" \
    tls_py "$E_TLS" --sni ok.test
row 6.refuse.connect.ech E "!server_hello" nobytes \
    "event=deny reason=ech_refused listener=connect name=ok.test port=$UP proto=connect" \
    tls_py "$E_CONN" --connect "ok.test:$UP" --sni ok.test --hello ech
row 6.refuse.connect.no-ech-control E "reached $OKW:$UP" "at=127.0.0.2:$UP" \
    "event=allow reason=allowed listener=connect name=ok.test port=$UP proto=connect ech=false" \
    tls_py "$E_CONN" --connect "ok.test:$UP" --sni ok.test
row 6.refuse.pp-tls.ech E "!server_hello" none \
    "event=deny reason=ech_refused listener=tls-pp name=ok.test src=10.1.1.9:40012" \
    tls_py "$E_PP" --proxy 10.1.1.9:40012 --sni ok.test --hello ech
row 6.refuse.pp-tls.no-ech-control E "reached $OKW:$UP" "at=127.0.0.2:$UP" \
    "event=allow reason=allowed listener=tls-pp name=ok.test src=10.1.1.10:40013 ech=false" \
    tls_py "$E_PP" --proxy 10.1.1.10:40013 --sni ok.test

# ------------------------------------------- 8: absolute-form without Host
# Either refused (400 bad_http) or forwarded with Host: ok.test:PORT; the
# origin must never get a request without Host.
hostless() {
	h_id=$1
	h_inst=$2
	h_listener=$3
	h_port=$4
	h_req=$5
	h_log="$T/$h_inst.log"
	if ! is_up "$h_inst"; then
		ok 1 "8.$h_id: egressd $h_inst is not running"
		return
	fi
	h_bad=$(logq "$h_log" --count event=deny reason=bad_http listener="$h_listener")
	h_total=$(logq "$h_log" --count)
	h_mark=$(wc -l <"$REC")
	h_out=$(http_raw "$h_port" "$h_req" | tail -n 1)
	case $h_out in
	"http 400"*)
		wait_line 5 "$h_log" $((h_bad + 1)) event=deny reason=bad_http \
		    listener="$h_listener" >/dev/null &&
		    [ "$(logq "$h_log" --count)" -eq $((h_total + 1)) ]
		ok $? "8.$h_id: refused with 400, one bad_http line" ||
		    logq "$h_log" | tail -n +$((h_total + 1)) | sed 's/^/# /'
		origin_got "$h_mark" none
		ok $? "8.$h_id: refused: the origin got nothing" || diag "origins: $ORIGIN"
		;;
	*)
		wait_line 5 "$h_log" 1 event=allow listener="$h_listener" name=ok.test \
		    "url~/$h_id" >/dev/null
		ok $? "8.$h_id: forwarded ($h_out), one allow line" ||
		    logq "$h_log" | tail -n +$((h_total + 1)) | sed 's/^/# /'
		origin_got "$h_mark" "at=127.0.0.2:$HP"
		case $ORIGIN in *" heads=1 hostless=0 hosts=ok.test:$HP hellos=-") true ;; *) false ;; esac
		ok $? "8.$h_id: forwarded: the origin got one request, with Host: ok.test:$HP" ||
		    diag "origins: $ORIGIN"
		;;
	esac
}
hostless abs11-connect B connect "$B_CONN" "GET http://ok.test:$HP/abs11-connect HTTP/1.1\r\nConnection: close\r\n\r\n"
hostless abs10-connect B connect "$B_CONN" "GET http://ok.test:$HP/abs10-connect HTTP/1.0\r\n\r\n"
hostless abs11-http B http "$B_HTTP" "GET http://ok.test:$HP/abs11-http HTTP/1.1\r\nConnection: close\r\n\r\n"
row 8.connect.abs-with-host-control B "http 200 hello from ok.test:$HP at 127.0.0.2:$HP" "at=127.0.0.2:$HP" \
    "event=allow listener=connect name=ok.test port=$HP proto=http status=200 url=http://ok.test:$HP/ctl" \
    http_raw "$B_CONN" "GET http://ok.test:$HP/ctl HTTP/1.1\r\nHost: ok.test:$HP\r\nConnection: close\r\n\r\n"

# ------------------------------------------------------- 9: the gateway itself
# loop_row ID MAX CLIENT ARGS...: the client is refused, and a second
# later the attempt has written at least one line and at most MAX (one
# per hop through the gateway), each a deny with private_address or
# gateway_loop: a refusal, not a chain of connections to itself.
loop_row() {
	l_id=$1
	l_max=$2
	shift 2
	if ! is_up L; then
		for what in "the client is refused" "at most $l_max line(s)" "the origins got nothing"; do
			ok 1 "$l_id: $what (egressd L is not running)"
		done
		return
	fi
	l_from=$(($(wc -l <"$T/L.log") + 1))
	l_mark=$(wc -l <"$REC")
	l_out=$("$@" 2>&1 | tail -n 1)
	matches "$l_out" "!reached*|server_hello"
	ok $? "$l_id: the client is refused ($l_out)"
	attempt_lines "$T/L.log" "$l_from"
	sleep 1
	tail -n +"$l_from" "$T/L.log" >"$T/attempt.log"
	n=$(conn_lines "$T/attempt.log")
	np=$(logq "$T/attempt.log" --count event=deny reason=private_address)
	nl=$(logq "$T/attempt.log" --count event=deny reason=gateway_loop)
	[ "$n" -ge 1 ] && [ "$n" -le "$l_max" ] && [ $((np + nl)) -eq "$n" ]
	ok $? "$l_id: $n line(s) (at most $l_max), each a deny, private_address or gateway_loop" ||
	    logq "$T/attempt.log" | sed 's/^/#   /'
	origin_got "$l_mark" none
	ok $? "$l_id: the origins got nothing" || diag "origins: $ORIGIN"
}
loop_row 9.tls.self 1 tls_py "$L_A" --sni loop.test
loop_row 9.tls.two-listeners 2 tls_py "127.0.0.8:$L_CA" --sni loop2.test
loop_row 9.connect.self 1 tls_py "$L_C" --connect "loop.test:$L_C" --sni loop.test
loop_row 9.http.self 1 \
    http_raw "$L_H" "GET / HTTP/1.1\r\nHost: loop.test:$L_H\r\nConnection: close\r\n\r\n"
# An IPv4-mapped answer (::ffff:127.0.0.1) is the same address to the
# kernel: refused as the listener itself, not a chain of connections.
loop_row 9.tls.mapped-self 1 tls_py "$L_A" --sni loop6.test
# The admin endpoints are the gateway's own too: a rule that admits their
# port does not make them reachable through a listener.
if is_up L; then
	l_from=$(($(wc -l <"$T/L.log") + 1))
	l_out=$(http_raw "$L_H" "GET /ready HTTP/1.1\r\nHost: loop.test:$L_ADM\r\nConnection: close\r\n\r\n" 2>&1)
	matches "$l_out" "http 403*"
	ok $? "9.http.admin: the admin port behind an allowed name is refused" || diag "$l_out"
	attempt_lines "$T/L.log" "$l_from"
	tail -n +"$l_from" "$T/L.log" >"$T/attempt.log"
	logq "$T/attempt.log" --count event=deny reason=private_address port="$L_ADM" \
	    detail="loop.test resolves to 127.0.0.1 (this gateway's own listener)" | grep -qx 1
	ok $? "9.http.admin: one private_address line naming the gateway's own listener" ||
	    logq "$T/attempt.log" | sed 's/^/#   /'
else
	ok 1 "9.http.admin: the admin port behind an allowed name is refused (egressd L is not running)"
	ok 1 "9.http.admin: one private_address line naming the gateway's own listener (egressd L is not running)"
fi
# 0.0.0.0 and :: are this host to connect(): 0.0.0.0 on the admin port is
# the admin endpoints on 127.0.0.1, whatever allow_private says.
if is_up L; then
	l_from=$(($(wc -l <"$T/L.log") + 1))
	l_out=$(http_raw "$L_H" "GET /config_dump HTTP/1.1\r\nHost: zero.test:$L_ADM\r\nConnection: close\r\n\r\n" 2>&1)
	matches "$l_out" "http 403*"
	ok $? "9.http.admin-unspecified: a name that resolves to 0.0.0.0 does not reach the admin port" ||
	    diag "$l_out"
	attempt_lines "$T/L.log" "$l_from"
	tail -n +"$l_from" "$T/L.log" >"$T/attempt.log"
	logq "$T/attempt.log" --count event=deny reason=private_address port="$L_ADM" \
	    detail="zero.test resolves to 0.0.0.0 (unspecified: connecting there reaches this gateway)" |
	    grep -qx 1
	ok $? "9.http.admin-unspecified: one private_address line naming the unspecified address" ||
	    logq "$T/attempt.log" | sed 's/^/#   /'
else
	ok 1 "9.http.admin-unspecified: a name that resolves to 0.0.0.0 does not reach the admin port (egressd L is not running)"
	ok 1 "9.http.admin-unspecified: one private_address line naming the unspecified address (egressd L is not running)"
fi
loop_row 9.tls.unspecified6 1 tls_py "$L_A" --sni zero6.test
row 9.still-answers-control L "reached $OKW:$UP" "at=127.0.0.2:$UP" \
    "event=allow reason=allowed listener=ctl name=ok.test port=$UP" \
    tls_py "$L_CTL" --sni ok.test

# ------------------------------------------- 10: reload reaches live tunnels
# Clients that keep their tunnels busy: hold_tls and echoes (lib.sh).
# revoke DIR PID: a policy without ok.test, then SIGHUP.
revoke() {
	cat >"$1/allow.yaml.new" <<EOF
allow:
  - name: other
    hosts: [other.test]
    ports: [$UP]
EOF
	mv "$1/allow.yaml.new" "$1/allow.yaml"
	kill -HUP "$2"
}

if is_up V; then
	hold_tls "$T/hold-tls" "$V_TLS" --sni ok.test --hold 12
	H1=$HOLD_PID
	hold_tls "$T/hold-conn" "$V_CONN" --connect "ok.test:$UP" --sni ok.test --hold 12
	H2=$HOLD_PID
	i=0
	while [ $i -lt 100 ] && { [ "$(echoes "$T/hold-tls")" -lt 3 ] || [ "$(echoes "$T/hold-conn")" -lt 3 ]; }; do
		sleep 0.1
		i=$((i + 1))
	done
	[ "$(echoes "$T/hold-tls")" -ge 3 ] && [ "$(echoes "$T/hold-conn")" -ge 3 ]
	ok $? "10.redecide: two live tunnels to ok.test (tls, connect), echoing" ||
	    diag "$(cat "$T/hold-tls" "$T/hold-conn" | tail -n 4)"
	revoke "$T/V.d" "$PID_V"
	wait_for "$T/V.log" "reload (SIGHUP): policy generation" 5
	ok $? "10.redecide: the reload took (a notice says so)"
	i=0
	while [ $i -lt 50 ] && { kill -0 "$H1" 2>/dev/null || kill -0 "$H2" 2>/dev/null; }; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -q '^closed after' "$T/hold-tls"
	ok $? "10.redecide.tls: the tunnel is closed within 5 s of the reload ($(tail -n 1 "$T/hold-tls"))"
	grep -q '^closed after' "$T/hold-conn"
	ok $? "10.redecide.connect: the tunnel is closed within 5 s of the reload ($(tail -n 1 "$T/hold-conn"))"
	wait_line 5 "$T/V.log" 1 event=deny reason=policy_revoked listener=tls name=ok.test port="$UP" >/dev/null
	ok $? "10.redecide.tls: a policy_revoked line for ok.test" ||
	    logq "$T/V.log" | sed 's/^/# /'
	wait_line 5 "$T/V.log" 1 event=deny reason=policy_revoked listener=connect name=ok.test port="$UP" >/dev/null
	ok $? "10.redecide.connect: a policy_revoked line for ok.test" ||
	    logq "$T/V.log" | sed 's/^/# /'
	sleep 1
	[ "$(logq "$T/V.log" --count name=ok.test)" = 2 ] &&
	    [ "$(logq "$T/V.log" --count reason=policy_revoked)" = 2 ]
	ok $? "10.redecide: exactly one line per tunnel, none other" ||
	    logq "$T/V.log" | sed 's/^/# /'
	kill "$H1" "$H2" 2>/dev/null
else
	for d in "two live tunnels" "the reload took" "tls closed" "connect closed" \
	    "tls policy_revoked line" "connect policy_revoked line" "one line per tunnel"; do
		ok 1 "10.redecide: $d (egressd V is not running)"
	done
fi
row 10.redecide.new-connections V "alert access_denied" none \
    "event=deny reason=not_allowed listener=tls name=ok.test port=$UP" \
    tls_py "$V_TLS" --sni ok.test

if is_up V2; then
	hold_tls "$T/hold-v2" "$V2_TLS" --sni ok.test --hold 4
	H3=$HOLD_PID
	i=0
	while [ $i -lt 100 ] && [ "$(echoes "$T/hold-v2")" -lt 3 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	at_hup=$(echoes "$T/hold-v2")
	revoke "$T/V2.d" "$PID_V2"
	wait_for "$T/V2.log" "reload (SIGHUP): policy generation" 5
	ok $? "10.keep: the reload took (a notice says so)"
	i=0
	while [ $i -lt 100 ] && kill -0 "$H3" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	last=$(tail -n 1 "$T/hold-v2")
	n=$(echoes "$T/hold-v2")
	case $last in "alive after"*) [ "$n" -ge $((at_hup + 5)) ] ;; *) false ;; esac
	ok $? "10.keep: with policy.redecide false the tunnel survives the reload ($at_hup echoes before, $last)"
	wait_line 5 "$T/V2.log" 1 event=allow listener=tls name=ok.test port="$UP" >/dev/null &&
	    [ "$(logq "$T/V2.log" --count reason=policy_revoked)" = 0 ]
	ok $? "10.keep: its line is an allow, and nothing was revoked" ||
	    logq "$T/V2.log" | sed 's/^/# /'
else
	for d in "the reload took" "the tunnel survives" "an allow line, nothing revoked"; do
		ok 1 "10.keep: $d (egressd V2 is not running)"
	done
fi

# ------------------------------ 11: a second ClientHello for another name
# The client offers TLS 1.3 with no key share, so the origin (OpenSSL)
# answers with a HelloRetryRequest and takes the second hello as the one
# that counts: directly, it serves evil.test on ok.test's address. Through
# egressd the second hello must name what the first named.
row 11.tls.retry-evil B "closed|reset" "hellos=ok.test" \
    "event=deny reason=sni_mismatch listener=tls name=ok.test port=$UP rule=null upstream=127.0.0.2:$UP detail~evil.test;" \
    tls_py "$B_TLS" --sni ok.test --hello retry:evil.test
row 11.tls.retry-ahead-evil B "closed|reset" "hellos=ok.test" \
    "event=deny reason=sni_mismatch listener=tls name=ok.test port=$UP detail~evil.test;" \
    tls_py "$B_TLS" --sni ok.test --hello retry-ahead:evil.test
row 11.tls.retry-soon-evil B "closed|reset" "hellos=ok.test" \
    "event=deny reason=sni_mismatch listener=tls name=ok.test port=$UP detail~evil.test;" \
    tls_py "$B_TLS" --sni ok.test --hello retry-soon:evil.test
# Through CONNECT both hellos are often read with the tunnel's first bytes,
# and refused before the first goes on: the origin gets ok.test's or none.
row 11.connect.retry-soon-evil B "closed|reset" "only-hello=ok.test" \
    "event=deny reason=sni_mismatch listener=connect name=ok.test port=$UP proto=connect detail~evil.test;" \
    tls_py "$B_CONN" --connect "ok.test:$UP" --sni ok.test --hello retry-soon:evil.test
# The second hello 0.3 s behind the first, to an origin that answers no
# TLS (the plain HTTP one): the relay has started, on splice, and the
# client's next bytes still wait to be judged. A hello for the same name
# goes on whole, byte for byte.
row 11.connect.late-evil B "closed|reset" "at=127.0.0.2:$HP" \
    "event=deny reason=sni_mismatch listener=connect name=ok.test port=$HP proto=connect detail~evil.test;" \
    tls_py "$B_CONN" --connect "ok.test:$HP" --sni ok.test --hello late:evil.test
row 11.connect.late-same-control B "sent *" "at=127.0.0.2:$HP" \
    "event=allow listener=connect name=ok.test port=$HP proto=connect" \
    tls_py "$B_CONN" --connect "ok.test:$HP" --sni ok.test --hello late:ok.test
case $ORIGIN in *" bytes=${r_out#sent } "*) true ;; *) false ;; esac
ok $? "11.connect.late-same-control: the origin got every byte the client sent (${r_out})" ||
    diag "origins: $ORIGIN"
row 11.tls.retry-no-name B "closed|reset" "hellos=ok.test" \
    "event=deny reason=sni_mismatch listener=tls name=ok.test port=$UP detail~(not" \
    tls_py "$B_TLS" --sni ok.test --hello retry:ok..test
# A ServerHello after the retry means the server read the second hello (some
# OpenSSL versions tell the origin's name callback of the first only, so
# the control asserts the answer and the bytes, not the recorded names).
row 11.tls.retry-same-control B "server_hello" "at=127.0.0.2:$UP" \
    "event=allow listener=tls name=ok.test port=$UP upstream=127.0.0.2:$UP" \
    tls_py "$B_TLS" --sni ok.test --hello retry:OK.test.
row 11.connect.retry-evil B "closed|reset" "hellos=ok.test" \
    "event=deny reason=sni_mismatch listener=connect name=ok.test port=$UP proto=connect detail~evil.test;" \
    tls_py "$B_CONN" --connect "ok.test:$UP" --sni ok.test --hello retry:evil.test
row 11.connect.retry-same-control B "server_hello" "at=127.0.0.2:$UP" \
    "event=allow listener=connect name=ok.test port=$UP proto=connect" \
    tls_py "$B_CONN" --connect "ok.test:$UP" --sni ok.test --hello retry:ok.test

# ----------------------------------------------------------------- all done
for inst in M P R B E L V V2; do
	is_up "$inst" || continue
	kill -0 "$(eval echo "\$PID_$inst")" 2>/dev/null
	ok $? "egressd $inst is still running after its rows"
done

finish

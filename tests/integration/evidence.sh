#!/bin/sh
# The evidence pcap (log.evidence_pcap) as a user opens it: with the real
# tshark, which must show the SNI and Host of each denied flow with the
# real addresses and ports, and no checksum errors.
#   1. The writer alone: the unit test leaves its flows file in
#      EVID_TSHARK_DIR (addresses and names are those of test_evidence.c).
#   2. The real daemon: denied curl, openssl s_client and plain-HTTP
#      clients each leave one conversation; an allowed one leaves nothing.
. "$(dirname "$0")/lib.sh"
need tshark python3 dnsmasq openssl curl

# tshark prints "Running as user root..." on stderr; fields go to stdout.
TSHARK="tshark -n"

fields() {
	# fields FILE [tshark options]: one line per ClientHello or HTTP
	# request: src|srcport|dst|dstport|sni|host (src/dst IPv4 or IPv6).
	f=$1
	shift
	$TSHARK -r "$f" "$@" -Y 'tls.handshake.type == 1 || http.request' \
	    -T fields -E separator='|' -e ip.src -e ipv6.src -e tcp.srcport \
	    -e ip.dst -e ipv6.dst -e tcp.dstport \
	    -e tls.handshake.extensions_server_name -e http.host 2>/dev/null |
	    awk -F'|' '{ print $1 $2 "|" $3 "|" $4 $5 "|" $6 "|" $7 "|" $8 }'
}

count() {
	# count FILE FILTER [tshark options]: packets matching FILTER.
	f=$1
	flt=$2
	shift 2
	$TSHARK -r "$f" "$@" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE \
	    -Y "$flt" 2>/dev/null | wc -l | tr -d ' '
}

same() {
	# same GOT WANT DESCRIPTION
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "got:"
		diag "$1"
		diag "want:"
		diag "$2"
	fi
}

# ------------------------------------------------------------------ part 1
UNIT="$top_builddir/tests/unit/test_evidence"
[ -x "$UNIT" ] || bail "no unit test binary at $UNIT (make tests/unit/test_evidence)"
mkdir -p "$T/unit"
EVID_TSHARK_DIR="$T/unit" "$UNIT" >"$T/unit.tap" 2>&1
rc=$?
ok $rc "the unit test writes its flows (EVID_TSHARK_DIR)"
[ $rc -eq 0 ] || grep -v '^ok' "$T/unit.tap" | sed 's/^/# /'
F="$T/unit/flows.pcap"
[ -s "$F" ] || bail "the unit test left no $F"

same "$(fields "$F")" "10.1.2.3|51234|203.0.113.7|443|polaris.synopsys.com|
2001:db8::5|40000|2001:db8:1::7|443|big.example.test|
10.9.8.7|5555|198.51.100.1|80||plain.example.test
2001:db8::6|41000|2001:db8:1::8|8080||v6.example.test:8080
::ffff:10.0.0.1|3333|2001:db8::99|443|polaris.synopsys.com|" \
    "tshark: each SNI and Host with its addresses and ports, IPv4 and IPv6 in one file"
same "$(count "$F" 'tls.handshake.extensions_server_name == "big.example.test" && tcp.reassembled.length > 2920')" 1 \
    "tshark: the 3-segment ClientHello is reassembled from its segments"
same "$(count "$F" 'tcp')" 31 "tshark: 31 packets (six conversations)"
same "$(count "$F" 'tcp.checksum.status == "Good" && (ipv6 || ip.checksum.status == "Good")')" 31 \
    "tshark: every TCP and IPv4 checksum is checked and good"
same "$(count "$F" 'tcp.checksum.status == "Bad" || ip.checksum.status == "Bad" || _ws.malformed || _ws.expert.severity == error')" 0 \
    "tshark: no bad checksum, malformed packet or error"
same "$(count "$F" 'tcp.flags.reset == 1 && tcp.flags.ack == 1 && tcp.srcport in {443, 80, 8080}')" 6 \
    "tshark: each conversation ends with a RST|ACK from the destination"

# ------------------------------------------------------------------ part 2
make_pki api.allowed.test
DNS_PORT=$(free_port)
UP=$(free_port)
GW=$(free_port)
ADMIN=$(free_port)
start_dns "$DNS_PORT" api.allowed.test=127.0.0.2 denied.test=127.0.0.2 other.test=127.0.0.2
start_tls_www "127.0.0.2:$UP" api.allowed.test

LOG="$T/egressd.log"
PCAP="$T/evidence.pcap"
cat > "$T/policy.yaml" <<EOF
allow:
  - hosts: ["api.allowed.test"]
    ports: [$UP]
    allow_private: true      # the test upstream lives on loopback
EOF
cat > "$T/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", protocol: tls, upstream_port: $UP}
workers: 2
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
policy: {files: [policy.yaml]}
admin: {address: "127.0.0.1:$ADMIN"}
log:
  path: egressd.log
  evidence_pcap: evidence.pcap
timeouts: {hello: 2s, dns: 2s, connect: 2s, idle: 30s}
EOF

start_egressd "$T/egressd.yaml"
CURL="curl -sS --max-time 10 --cacert $T/pki/ca.pem"
L1=$(free_port)
L2=$(free_port)

# Allowed first: it must leave nothing.
$CURL --connect-to "api.allowed.test:$UP:127.0.0.1:$GW" "https://api.allowed.test:$UP/" 2>&1 |
    grep -q s_server
ok $? "an allowed curl goes through"
wait_log "$LOG" 1 event=allow name=api.allowed.test >/dev/null
ok $? "  and is logged as allowed"

$CURL --interface 127.0.0.9 --local-port "$L1" \
    --connect-to "denied.test:$UP:127.0.0.1:$GW" "https://denied.test:$UP/" >/dev/null 2>&1
wait_log "$LOG" 1 event=deny reason=not_allowed name=denied.test src="127.0.0.9:$L1"
ok $? "curl from 127.0.0.9:$L1 to denied.test is denied"

echo | timeout 10 openssl s_client -connect "127.0.0.1:$GW" -servername other.test \
    >/dev/null 2>&1
wait_log "$LOG" 1 event=deny reason=not_allowed name=other.test
ok $? "openssl s_client -servername other.test is denied"
S_SRC=$(logq "$LOG" event=deny name=other.test |
    python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["src"])')

$CURL --interface 127.0.0.10 --local-port "$L2" -H 'Host: plain.test' \
    "http://127.0.0.1:$GW/" >/dev/null 2>&1
wait_log "$LOG" 1 event=deny reason=not_tls src="127.0.0.10:$L2"
ok $? "plain HTTP from 127.0.0.10:$L2 on the TLS listener is denied (not_tls)"

# The writer is asynchronous but flushes each record: wait (bounded) for
# three whole conversations, then read the file while the daemon runs.
i=0
while [ $i -lt 40 ]; do
	[ "$(count "$PCAP" 'tcp.flags.reset == 1')" = 3 ] && break
	sleep 0.25
	i=$((i + 1))
done
same "$(count "$PCAP" 'tcp.flags.syn == 1 && tcp.flags.ack == 0')" 3 \
    "the pcap holds three conversations (one per denied connection)"

# The listener's port is not 443 or 80: tell tshark what it carries.
same "$(fields "$PCAP" -d "tcp.port==$GW,tls" | awk -F'|' '$5 != ""' | sort)" \
    "$(printf '%s\n' "127.0.0.1|${S_SRC##*:}|127.0.0.1|$GW|other.test|" \
    "127.0.0.9|$L1|127.0.0.1|$GW|denied.test|" | sort)" \
    "tshark: the SNIs denied.test and other.test with the clients' addresses and ports"
same "$(fields "$PCAP" -d "tcp.port==$GW,http" | grep 'plain.test')" \
    "127.0.0.10|$L2|127.0.0.1|$GW||plain.test" \
    "tshark: the plain-HTTP client's Host plain.test, from 127.0.0.10:$L2"
same "$(count "$PCAP" 'frame contains "api.allowed.test"' -d "tcp.port==$GW,tls")" 0 \
    "the allowed connection left nothing"
same "$(count "$PCAP" 'tcp.checksum.status == "Bad" || ip.checksum.status == "Bad" || _ws.malformed')" 0 \
    "tshark: no bad checksum or malformed packet"

curl -sS --max-time 5 "http://127.0.0.1:$ADMIN/stats/prometheus" > "$T/metrics.txt"
grep -qx 'egressd_evidence_records_total 3' "$T/metrics.txt" &&
    grep -qx 'egressd_evidence_dropped_total 0' "$T/metrics.txt" &&
    grep -qx 'egressd_evidence_failures_total 0' "$T/metrics.txt"
ok $? "metrics: 3 evidence records, none dropped or failed"

kill -TERM "$EGRESSD_PID"
wait "$EGRESSD_PID"
ok $? "egressd stops cleanly (exit 0) with the evidence writer open"
same "$(count "$PCAP" 'tcp.flags.syn == 1 && tcp.flags.ack == 0')" 3 \
    "after the stop the file still holds the three conversations"

finish

# The network-namespace world for transparent interception (sourced by the
# tests in this folder). Three namespaces joined by two veth pairs, all
# named after this shell's PID so parallel runs never meet:
#
#   pod  eth0 192.0.2.2/24      2001:db8:1::2/64
#        default via the gateway (192.0.2.1, 2001:db8:1::1)
#    |
#   gw   pod0 192.0.2.1/24      2001:db8:1::1/64
#        inet0 198.51.100.1/24  2001:db8:2::1/64
#        nat PREROUTING -i pod0 -p tcp --dports 80,443 REDIRECT to 15001
#        (iptables and ip6tables; WORLD_STEER=tproxy: mangle TPROXY to
#        15001 and a fwmark route to lo); IP forwarding off: whatever is not
#        redirected to egressd goes nowhere.
#    |
#   inet eth0 198.51.100.2/24, 198.51.100.53/24 (DNS), 2001:db8:2::2/64
#        lo 203.0.113.{10,11,20,21,66}/32, 2001:db8:3::10/128, and the
#        addresses the guard must refuse: 10.0.0.5/32, 169.254.169.254/32
#        routes back to the pod's networks via the gateway, so the only
#        thing between the pod and these servers is the gateway's
#        forwarding switch.
#
# Not root: the test is skipped. Root, and the world cannot be built: the
# test bails out (fails): CI runs as root and must not skip.
if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root"
	exit 0
fi

. "$(dirname "$0")/../integration/lib.sh"
need ip nsenter iptables ip6tables sysctl dnsmasq curl openssl python3

W_TAG="egn$$"
POD="$W_TAG-pod"
GW="$W_TAG-gw"
INET="$W_TAG-inet"
NETNS_MADE=""

POD_IP=192.0.2.2
POD_IP6=2001:db8:1::2
GW_POD_IP=192.0.2.1
GW_POD_IP6=2001:db8:1::1
GW_INET_IP=198.51.100.1
GW_INET_IP6=2001:db8:2::1
INET_IP=198.51.100.2
INET_IP6=2001:db8:2::2
DNS_IP=198.51.100.53
REAL_IP=203.0.113.10
WILD_IP=203.0.113.11
NONE_IP_A=203.0.113.20
NONE_IP_B=203.0.113.21
ATTACKER_IP=203.0.113.66
REAL_IP6=2001:db8:3::10
TRAP_PRIVATE=10.0.0.5
TRAP_METADATA=169.254.169.254
TPORT=15001

# Processes first (lib.sh's cleanup, by PID), then the namespaces this
# test created, and nothing else.
world_cleanup() {
	cleanup
	for ns in $NETNS_MADE; do
		# Anything still inside was started by this test (the namespace
		# is its own): say so, and end it by PID.
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			echo "# still running in $ns after cleanup: $(ps -o args= -p "$p")"
			kill -9 "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
}
trap world_cleanup EXIT

# nsx NS CMD...: CMD in namespace NS's network, nothing else changed.
# nsenter joins the network namespace only; "ip netns exec" and "ip -n"
# also make a mount namespace and remount /sys, which fails where / is not
# a mount point (a chroot, such as ../shared/tools/fresh-debian.sh's), and
# nothing here reads /sys (sysctl writes /proc/sys/net, which follows the
# network namespace).
nsx() {
	_ns=$1
	shift
	nsenter --net="/run/netns/$_ns" "$@"
}
in_pod() { nsx "$POD" "$@"; }
in_gw() { nsx "$GW" "$@"; }
in_inet() { nsx "$INET" "$@"; }

world_build() {
	for ns in "$POD" "$GW" "$INET"; do
		ip netns add "$ns" || bail "cannot create network namespace $ns"
		NETNS_MADE="$NETNS_MADE $ns"
		nsx "$ns" ip link set lo up || bail "cannot bring up lo in $ns"
	done
	ip link add eth0 netns "$POD" type veth peer name pod0 netns "$GW" ||
	    bail "cannot create the veth pair pod <-> gw"
	ip link add inet0 netns "$GW" type veth peer name eth0 netns "$INET" ||
	    bail "cannot create the veth pair gw <-> inet"
	for ns in "$POD" "$GW" "$INET"; do
		nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 \
		    net.ipv6.conf.default.disable_ipv6=0 net.ipv6.conf.all.accept_dad=0 \
		    net.ipv6.conf.default.accept_dad=0 >/dev/null ||
		    bail "cannot enable IPv6 in $ns"
	done
	# The gateway forwards nothing: only what is redirected to egressd
	# leaves the pod's network.
	in_gw sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 ||
	    bail "cannot switch IP forwarding off in $GW"

	w_addr "$POD" eth0 "$POD_IP/24" "$POD_IP6/64"
	w_addr "$GW" pod0 "$GW_POD_IP/24" "$GW_POD_IP6/64"
	w_addr "$GW" inet0 "$GW_INET_IP/24" "$GW_INET_IP6/64"
	w_addr "$INET" eth0 "$INET_IP/24" "$DNS_IP/24" "$INET_IP6/64"
	w_addr "$INET" lo "$REAL_IP/32" "$WILD_IP/32" "$NONE_IP_A/32" "$NONE_IP_B/32" \
	    "$ATTACKER_IP/32" "$TRAP_PRIVATE/32" "$TRAP_METADATA/32" "$REAL_IP6/128"
	for l in "$POD eth0" "$GW pod0" "$GW inet0" "$INET eth0"; do
		set -- $l
		nsx "$1" ip link set "$2" up || bail "cannot bring up $2 in $1"
	done

	w_route "$POD" default via "$GW_POD_IP"
	w_route "$POD" -6 default via "$GW_POD_IP6"
	w_route "$GW" 203.0.113.0/24 via "$INET_IP"
	w_route "$GW" "$TRAP_PRIVATE/32" via "$INET_IP"
	w_route "$GW" "$TRAP_METADATA/32" via "$INET_IP"
	w_route "$GW" -6 2001:db8:3::/64 via "$INET_IP6"
	w_route "$INET" 192.0.2.0/24 via "$GW_INET_IP"
	w_route "$INET" -6 2001:db8:1::/64 via "$GW_INET_IP6"

	case ${WORLD_STEER:-redirect} in
	redirect)
		for ipt in iptables ip6tables; do
			in_gw "$ipt" -w 5 -t nat -A PREROUTING -i pod0 -p tcp -m multiport \
			    --dports 80,443 -j REDIRECT --to-ports "$TPORT" ||
			    bail "cannot add the $ipt REDIRECT rule in $GW"
		done
		;;
	tproxy)
		# TPROXY leaves the destination alone and hands the connection
		# to the socket listening on $TPORT (which must be
		# IP_TRANSPARENT); the mark routes those packets to the local
		# stack instead of forwarding them.
		in_gw iptables -w 5 -t mangle -A PREROUTING -i pod0 -p tcp -m multiport \
		    --dports 80,443 -j TPROXY --on-ip 0.0.0.0 --on-port "$TPORT" \
		    --tproxy-mark 0x1/0x1 || bail "cannot add the iptables TPROXY rule in $GW"
		in_gw ip6tables -w 5 -t mangle -A PREROUTING -i pod0 -p tcp -m multiport \
		    --dports 80,443 -j TPROXY --on-ip :: --on-port "$TPORT" \
		    --tproxy-mark 0x1/0x1 || bail "cannot add the ip6tables TPROXY rule in $GW"
		for f in -4 -6; do
			in_gw ip "$f" rule add fwmark 0x1/0x1 lookup 100 &&
			    in_gw ip "$f" route add local default dev lo table 100 ||
			    bail "cannot add the TPROXY policy route ($f) in $GW"
		done
		;;
	*) bail "unknown WORLD_STEER '$WORLD_STEER'" ;;
	esac

	# Both sides of each link answer before anything runs on them.
	w_ping "$POD" "$GW_POD_IP"
	w_ping "$POD" "$GW_POD_IP6"
	w_ping "$GW" "$REAL_IP"
	w_ping "$GW" "$REAL_IP6"
}

w_addr() {
	ns=$1
	dev=$2
	shift 2
	for a in "$@"; do
		case $a in
		*:*) nsx "$ns" ip addr add "$a" dev "$dev" nodad ;;
		*) nsx "$ns" ip addr add "$a" dev "$dev" ;;
		esac || bail "cannot add $a to $dev in $ns"
	done
}

w_route() {
	ns=$1
	shift
	case $1 in
	-6) shift; nsx "$ns" ip -6 route add "$@" ;;
	*) nsx "$ns" ip route add "$@" ;;
	esac || bail "cannot add route '$*' in $ns"
}

# w_ping NS ADDR: NS reaches ADDR (a TCP reset from the closed port 9
# counts: it came back), within 5 s.
w_ping() {
	nsx "$1" python3 - "$2" <<'EOF' || bail "$1 cannot reach $2"
import socket, sys, time
deadline = time.time() + 5
while time.time() < deadline:
    try:
        socket.create_connection((sys.argv[1], 9), 1).close()
        sys.exit(0)
    except ConnectionRefusedError:
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

# world_dns TTL NAME=ADDR...: dnsmasq in inet on $DNS_IP:53, answering for
# *.test only (NXDOMAIN for other .test names), with TTL seconds. A name
# given twice gets both addresses. Sets DNS_PID.
world_dns() {
	ttl=$1
	shift
	dargs=""
	for m in "$@"; do
		dargs="$dargs --host-record=${m%%=*},${m#*=}"
	done
	# shellcheck disable=SC2086
	# Not through nsx or in_inet: "func &" would be a subshell, and $! its
	# PID; nsenter execs the command, so $! is dnsmasq's.
	nsenter --net="/run/netns/$INET" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv \
	    --no-hosts --bind-interfaces --listen-address="$DNS_IP" --port=53 \
	    --local=/test/ --local-ttl="$ttl" --pid-file= --user=root --group=root \
	    --log-queries --log-facility="$T/dnsmasq.log" $dargs &
	DNS_PID=$!
	PIDS="$PIDS $DNS_PID"
	i=0
	while [ $i -lt 100 ]; do
		dns_answers && return 0
		sleep 0.05
		i=$((i + 1))
	done
	bail "dnsmasq did not answer on $DNS_IP:53"
}

# dns_answers: does something answer DNS on $DNS_IP:53, seen from the gateway?
dns_answers() {
	in_gw python3 - "$DNS_IP" <<'EOF'
import socket, sys
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05probe\x04test\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
try:
    s.sendto(q, (sys.argv[1], 53))
    s.recvfrom(512)
except OSError:
    sys.exit(1)
EOF
}

# world_server NS RECORD LISTEN...: tests/netns/server.py in namespace NS,
# recording every connection and datagram it gets in RECORD. Sets WS_PID.
world_server() {
	ns=$1
	rec=$2
	shift 2
	: >>"$rec"
	out="$rec.$ns.out"
	nsenter --net="/run/netns/$ns" python3 "$top_srcdir/tests/netns/server.py" \
	    "$rec" "$@" >"$out" 2>&1 &
	WS_PID=$!
	PIDS="$PIDS $WS_PID"
	wait_for "$out" listening 10 || { sed 's/^/# /' "$out"; bail "server.py did not start in $ns: $*"; }
}

# count_rec RECORD PATTERN: how many recorded lines match (grep -E).
count_rec() {
	grep -cE -- "$2" "$1" 2>/dev/null || true
}

# world_egressd CONFIG: egressd in the gateway namespace, through lib.sh's
# start_egressd. The wrapper execs, so EGRESSD_PID is egressd's own PID.
world_egressd() {
	printf '#!/bin/sh\nexec nsenter --net="/run/netns/%s" "%s" "$@"\n' "$GW" "$EGRESSD" >"$T/egressd-in-gw"
	chmod +x "$T/egressd-in-gw"
	EGRESSD_REAL=$EGRESSD
	EGRESSD="$T/egressd-in-gw" start_egressd "$1"
	EGRESSD=$EGRESSD_REAL
}

# The pod's curl: verifies certificates with the test CA, bounded in time.
pod_curl() {
	in_pod curl -sS --connect-timeout 5 --max-time 10 --cacert "$T/pki/ca.pem" "$@"
}

# stop_bounded PID SECONDS: TERM a process this shell started and reap it;
# returns its exit status, or 124 (after KILL) when it outlived SECONDS.
stop_bounded() {
	kill -TERM "$1" 2>/dev/null
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt $(($2 * 20)) ]; do
		# a zombie still answers kill -0: reap as soon as it has exited
		[ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ] && break
		sleep 0.05
		i=$((i + 1))
	done
	if kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ]; then
		kill -KILL "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		return 124
	fi
	wait "$1"
}

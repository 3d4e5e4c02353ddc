#!/bin/sh
# Side by side with HAProxy, nginx, sniproxy and Squid (issue 13): the same
# allow-list, the same load, one proxy at a time on one pinned core.
#
#   sh bench/run-peers.sh path/to/egressd
#
# Run by hand ("make bench-peers"); never a test. Loopback only
# (127.0.13.0/24 for the servers, 127.0.14.1-254 for the clients). Every
# process it starts is stopped by PID on exit; its files live in a
# temporary directory removed on exit (KEEP_BENCH_DIR=1 keeps it). It stops
# itself after PEERS_LIMIT_S seconds (default 300 + 420 per repeat).
#
# Needs (Debian 12 packages): gcc (cc), python3, util-linux (taskset),
# dnsmasq-base (dnsmasq), haproxy, nginx-light (or nginx) with
# libnginx-mod-stream, sniproxy, squid. Drop a peer with PEERS=...
#
#   apt-get install gcc python3 util-linux dnsmasq-base haproxy \
#       nginx-light libnginx-mod-stream sniproxy squid
#
# Environment (all optional):
#   REPEAT=1          rounds; every figure is the median over them
#   PEERS="egressd haproxy nginx sniproxy squid"
#   CELLS="rate latency deny bulk rate100k idle connect http"   which figures
#   CELL_SECS=5       measured seconds of a rate, deny or CONNECT/HTTP cell
#   LAT_SECS=3        of a latency cell
#   CONC=50           connections at once in rate cells
#   REPLY=1024        bytes the upstream answers each connection with
#   LABELS=0-63       a "*" in a name becomes l0..l63 (10-pattern cells)
#   LABELS_100K=0-3   the same for the 100,000-pattern cells
#   BULK_MIB=1024     one bulk connection, MiB
#   BULK_DIR=d        d (down), u (up) or b (both ways)
#   IDLE=5000         connections held in the idle cells (0: no idle cells)
#   PROXY_CPU=0 LOAD_CPU=1   the cores for the proxy and for the load
#   EGRESSD_YAML="relay_splice: false"   lines added to egressd's configuration
#   HAPROXY_BIND_OPTS="defer-accept"     options added to HAProxy's bind line
#   BASE=path/to/another/egressd   adds the peer "base": that binary with the
#                     same configuration, for an A/B of two builds in one run
set -eu

egressd=${1:?usage: run-peers.sh path/to/egressd}
case $egressd in /*) ;; *) egressd=$(pwd)/$egressd ;; esac
here=$(cd "$(dirname "$0")" && pwd)
REPEAT=${REPEAT:-1}
PEERS=${PEERS:-egressd haproxy nginx sniproxy squid}
BASE=${BASE:-}
if [ -n "$BASE" ]; then
	case $BASE in /*) ;; *) BASE=$(pwd)/$BASE ;; esac
	case " $PEERS " in *" base "*) ;; *) PEERS="$PEERS base" ;; esac
fi
CELLS=${CELLS:-rate latency deny bulk rate100k idle connect http}
CELL_SECS=${CELL_SECS:-5}
LAT_SECS=${LAT_SECS:-3}
CONC=${CONC:-50}
REPLY=${REPLY:-1024}
LABELS=${LABELS:-0-63}
LABELS_100K=${LABELS_100K:-0-3}
BULK_MIB=${BULK_MIB:-1024}
BULK_DIR=${BULK_DIR:-d}
IDLE=${IDLE:-5000}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
LIMIT_S=${PEERS_LIMIT_S:-$((300 + 420 * REPEAT))}
BIG=100000
UPADDR=127.0.13.1      # the upstream
PXADDR=127.0.13.2      # every proxy listens here
DNSADDR=127.0.13.53    # dnsmasq, port 53 (Squid cannot be given another port)
SOURCES=127.0.14.1-254

need() {	# need COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
missing=""
need cc gcc
need python3 python3
need taskset util-linux
need dnsmasq dnsmasq-base
for p in $PEERS; do
	case $p in
	egressd) ;;
	base) [ -n "$BASE" ] || { echo "run-peers.sh: peer base needs BASE=path/to/egressd" >&2; exit 1; } ;;
	haproxy) need haproxy haproxy ;;
	nginx)
		need nginx nginx-light
		[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || missing="$missing libnginx-mod-stream" ;;
	sniproxy) need sniproxy sniproxy ;;
	squid) need squid squid ;;
	*) echo "run-peers.sh: unknown peer $p" >&2; exit 1 ;;
	esac
done
if [ -n "$missing" ]; then
	echo "run-peers.sh: missing packages:$missing" >&2
	echo "  apt-get install$missing   (or leave the peer out: PEERS=...)" >&2
	exit 1
fi
[ -x "$egressd" ] || { echo "run-peers.sh: $egressd is not an executable" >&2; exit 1; }
[ -z "$BASE" ] || [ -x "$BASE" ] || { echo "run-peers.sh: BASE $BASE is not an executable" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || echo "run-peers.sh: only $(nproc) CPU: proxy and load share it" >&2
case $BULK_DIR in d|u|b) ;; *) echo "run-peers.sh: BULK_DIR is d, u or b" >&2; exit 1 ;; esac
has() { case " $PEERS " in *" $1 "*) return 0 ;; esac; return 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/peers-bench.XXXXXX")
# Squid drops to its own user ("proxy") and must write its logs here.
chmod 755 "$tmp"
PIDS=""
cleanup() {
	rc=$?
	# Stop everything first, whatever happens to the output (a reader
	# that went away must not leave processes behind).
	trap '' PIPE
	set +e
	for p in $PIDS; do
		kill "$p" 2>/dev/null || :
	done
	for p in $PIDS; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$p" 2>/dev/null || :
	done
	if [ -n "${KEEP_BENCH_DIR:-}" ]; then
		echo "bench directory kept: $tmp" 2>/dev/null
	else
		rm -rf "$tmp"
	fi
	[ $rc = 0 ] || echo "run-peers.sh: stopped with status $rc" >&2 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
trap 'exit 141' PIPE
T0=$(date +%s)
die() {
	echo "run-peers.sh: $*" >&2
	exit 1
}
check_time() {
	[ $(($(date +%s) - T0)) -lt "$LIMIT_S" ] || die "the run took longer than $LIMIT_S s; stopped"
}
forget() {
	np=""
	for p in $PIDS; do
		[ "$p" = "$1" ] || np="$np $p"
	done
	PIDS=$np
}
# tree PID: PID and its descendants, from /proc (cat goes on past processes
# that end while it reads; awk would not)
tree() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
	{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); parent[$1] = f[2] }
	END { keep[root] = 1; grew = 1; n = 0
	    while (grew && n++ < 64) { grew = 0
	        for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 } }
	    for (p in keep) print p }'
}
# stop PID: TERM, bounded wait, KILL; then whatever of its tree is left
stop() {
	family=$(tree "$1" || :)
	kill "$1" 2>/dev/null || :
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null || :
	wait "$1" 2>/dev/null || :
	for p in $family; do
		[ "$p" = "$1" ] || kill -9 "$p" 2>/dev/null || :
	done
	forget "$1"
}

# ---- tools and inputs --------------------------------------------------------
# shellcheck disable=SC3045
ulimit -n "$(ulimit -H -n)" 2>/dev/null || :
# shellcheck disable=SC3045
NOFILE=$(ulimit -n)
if [ "$IDLE" -gt 0 ] && [ $((IDLE * 2 + 200)) -gt "$NOFILE" ]; then
	IDLE=$(((NOFILE - 200) / 2 / 100 * 100))
	echo "note: open-file limit $NOFILE: idle cells hold $IDLE connections"
fi
# A copy of the daemon: a rebuild of the tree during the run must not
# change the binary half-way through the cells.
cp "$egressd" "$tmp/egressd.bin" || die "cannot copy $egressd"
EGRESSD_ID="$(sha256sum "$egressd" | cut -c1-12), built $(date -u -r "$egressd" '+%Y-%m-%d %H:%M UTC')"
egressd=$tmp/egressd.bin
if [ -n "$BASE" ]; then
	cp "$BASE" "$tmp/base.bin" || die "cannot copy $BASE"
	BASE_ID="$(sha256sum "$BASE" | cut -c1-12), built $(date -u -r "$BASE" '+%Y-%m-%d %H:%M UTC')"
fi
cc -O2 -Wall -o "$tmp/loadgen" "$here/peers/loadgen.c" || die "cannot compile loadgen.c"
cc -O2 -Wall -o "$tmp/upstream" "$here/peers/upstream.c" || die "cannot compile upstream.c"
LG=$tmp/loadgen
python3 "$here/peers/gen.py" hello "$tmp/hello.bin" || die "cannot make the ClientHello template"
UP=$("$LG" freeport)
python3 "$here/peers/gen.py" lists "$tmp" 10 1 "$UPADDR" "$UP" || die "gen.py failed"
python3 "$here/peers/gen.py" lists "$tmp" "$BIG" 1 "$UPADDR" "$UP" || die "gen.py failed"

# dnsmasq, outside every measured process tree: every name under .test is
# the upstream, for an hour.
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address=$DNSADDR --port=53 \
    --address=/test/$UPADDR --local-ttl=3600 --pid-file= --user=root --group=root \
    --log-facility="$tmp/dnsmasq.log" 2>"$tmp/dnsmasq.err" &
DNSPID=$!
PIDS="$PIDS $DNSPID"
if ! "$LG" listening 53 5 || ! { sleep 0.2; kill -0 "$DNSPID" 2>/dev/null; }; then
	die "dnsmasq did not start on $DNSADDR:53: $(cat "$tmp/dnsmasq.err")"
fi
taskset -pc "$LOAD_CPU" "$DNSPID" >/dev/null

# ---- the proxies -----------------------------------------------------------------
# start_PEER N [connect]: a fresh proxy on $PROXY_CPU listening on $PXADDR:$PX;
# sets PPID_ (the PID whose process tree is measured).
start_egressd() {
	start_egressd_bin "$egressd" "$@"
}
start_base() {
	start_egressd_bin "$tmp/base.bin" "$@"
}
# start_egressd_bin BINARY N [connect]
start_egressd_bin() {
	bin=$1
	shift
	ADMIN=$("$LG" freeport)
	if [ "${2:-}" = connect ]; then
		listener="{name: proxy, address: \"$PXADDR:$PX\", protocol: connect}"
	else
		listener="{name: tls, address: \"$PXADDR:$PX\", upstream_port: $UP}"
	fi
	cat > "$tmp/egressd.yaml" <<EOF
listeners:
  - $listener
workers: 1
max_connections: 30000
dns: {servers: ["$DNSADDR:53"], allow_ranges: ["$UPADDR/32"]}
policy: {files: [egressd-$1.yaml], watch: false}
log: {path: egressd.log}
admin: {address: "$PXADDR:$ADMIN"}
${EGRESSD_YAML:-}
EOF
	: > "$tmp/egressd.log"
	taskset -c "$PROXY_CPU" "$bin" -c "$tmp/egressd.yaml" >"$tmp/proxy.out" 2>"$tmp/proxy.err" &
	PPID_=$!
}
start_haproxy() {
	cat > "$tmp/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 9000
    log stdout format raw local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend tls
    bind $PXADDR:$PX ${HAPROXY_BIND_OPTS:-}
    tcp-request inspect-delay 10s
$(cat "$tmp/hap-$1.acl")
    default_backend upstream
backend upstream
    server up $UPADDR:$UP
EOF
	taskset -c "$PROXY_CPU" haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/proxy.out" 2>"$tmp/proxy.err" &
	PPID_=$!
}
start_nginx() {
	cat > "$tmp/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log notice;
events { worker_connections 19000; }
stream {
    log_format basic '\$remote_addr [\$time_local] \$status \$bytes_sent \$bytes_received '
                     '\$session_time "\$upstream_addr" \$ssl_preread_server_name';
    access_log $tmp/nginx-access.log basic;
    map_hash_max_size 262144;
    map_hash_bucket_size 128;
    map \$ssl_preread_server_name \$up {
        hostnames;
        include $tmp/nginx-$1-map.conf;
        default refused;
    }
    upstream allowed { server $UPADDR:$UP; }
    # a refused name goes nowhere: connect() fails at once, nginx closes
    upstream refused { server unix:$tmp/refused.sock; }
    server {
        listen $PXADDR:$PX;
        ssl_preread on;
        preread_timeout 10s;
        proxy_pass \$up;
    }
}
EOF
	taskset -c "$PROXY_CPU" nginx -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" \
	    >"$tmp/proxy.out" 2>"$tmp/proxy.err" &
	PPID_=$!
}
start_sniproxy() {
	{
		echo "user root"
		echo "pidfile $tmp/sniproxy.pid"
		echo "error_log {"
		echo "    filename $tmp/sniproxy-error.log"
		echo "    priority notice"
		echo "}"
		echo "listener $PXADDR:$PX {"
		echo "    protocol tls"
		echo "    table allowed"
		echo "    access_log {"
		echo "        filename $tmp/sniproxy-access.log"
		echo "    }"
		echo "}"
		echo "table allowed {"
		cat "$tmp/sniproxy-$1-table.conf"
		echo "}"
	} > "$tmp/sniproxy.conf"
	taskset -c "$PROXY_CPU" sniproxy -f -c "$tmp/sniproxy.conf" >"$tmp/proxy.out" 2>"$tmp/proxy.err" &
	PPID_=$!
}
start_squid() {
	for f in squid-access.log squid-cache.log; do
		: > "$tmp/$f"
		chown proxy "$tmp/$f" 2>/dev/null || chmod 666 "$tmp/$f"
	done
	cat > "$tmp/squid.conf" <<EOF
http_port $PXADDR:$PX
workers 1
pid_filename $tmp/squid.pid
cache_log $tmp/squid-cache.log
access_log stdio:$tmp/squid-access.log
cache_store_log none
cache deny all
cache_mem 8 MB
coredump_dir $tmp
shutdown_lifetime 0 seconds
max_filedescriptors 16384
dns_nameservers $DNSADDR
acl bench_port port $UP
acl apex dstdomain "$tmp/squid-$1-apex.txt"
acl allowed dstdomain "$tmp/squid-$1-dom.txt"
http_access deny !bench_port
http_access deny apex
http_access allow allowed
http_access deny all
EOF
	taskset -c "$PROXY_CPU" squid -N -f "$tmp/squid.conf" >"$tmp/proxy.out" 2>"$tmp/proxy.err" &
	PPID_=$!
}

# logfile PEER: the file holding the peer's line per connection
logfile() {
	case $1 in
	egressd|base) echo "$tmp/egressd.log" ;;
	haproxy) echo "$tmp/proxy.out" ;;
	*) echo "$tmp/$1-access.log" ;;
	esac
}

proxy_logs() {	# the peer's own log files, for a failed cell
	for f in "$tmp"/proxy.err "$tmp"/egressd.log "$tmp"/nginx-error.log \
	    "$tmp"/sniproxy-error.log "$tmp"/squid-cache.log "$tmp"/upstream.err; do
		[ -s "$f" ] && { echo "--- $f (last lines)"; tail -n 4 "$f"; }
	done
	return 0
}

# ---- cells ------------------------------------------------------------------------
# cell KIND PEER REP: one fresh upstream, one fresh proxy (none for
# "direct"), one loadgen run; its figures go to $tmp/res/KIND.PEER.REP
mkdir "$tmp/res"
FAILED=""
cell() {
	kind=$1 peer=$2 rep=$3
	n=10 labels=$LABELS proto=tls
	case $kind in rate100k) n=$BIG labels=$LABELS_100K ;; esac
	case $kind in connect|http) proto=connect ;; esac
	check_time
	: > "$tmp/upstream.err"
	taskset -c "$LOAD_CPU" "$tmp/upstream" -a "$UPADDR:$UP" -t "$tmp/hello.bin" \
	    -f "$tmp/allow-$n.txt" -r "$REPLY" -L "$LIMIT_S" >"$tmp/upstream.out" 2>"$tmp/upstream.err" &
	UPID=$!
	PIDS="$PIDS $UPID"
	"$LG" listening "$UP" 10 || die "the upstream did not start: $(cat "$tmp/upstream.err")"
	extra="" target=$UPADDR:$UP startup=0 mem0="rss_kb=0 pss_kb=0 procs=0"
	if [ "$peer" != direct ]; then
		PX=$("$LG" freeport)
		rm -f "$(logfile "$peer")"
		t0=$(date +%s%N)
		"start_$peer" "$n" "$proto"
		PIDS="$PIDS $PPID_"
		if ! "$LG" listening "$PX" 120; then
			proxy_logs >&2
			die "$peer did not start listening within 120 s"
		fi
		startup=$((($(date +%s%N) - t0) / 1000000))
		target=$PXADDR:$PX
		extra="-p $PPID_"
		sleep 0.3
		mem0=$("$LG" mem "$PPID_")
	fi
	lg() {
		# shellcheck disable=SC2086
		taskset -c "$LOAD_CPU" "$LG" "$@" -a "$target" -t "$tmp/hello.bin" -s "$SOURCES" \
		    -r "$REPLY" -S "$rep" $extra
	}
	out=$tmp/res/$kind.$peer.$rep
	ok=1
	case $kind in
	rate|rate100k)
		lg rate -n "$tmp/names-$n.txt" -l "$labels" -c "$CONC" -T "$CELL_SECS" -w -W 20 \
		    >"$out.lg" 2>"$out.err" || ok=0 ;;
	latency)
		lg latency -n "$tmp/names-$n.txt" -l "$labels" -T "$LAT_SECS" -w \
		    >"$out.lg" 2>"$out.err" || ok=0 ;;
	deny)
		lg deny -n "$tmp/deny-$n.txt" -l "$labels" -c "$CONC" -T "$CELL_SECS" \
		    >"$out.lg" 2>"$out.err" || ok=0 ;;
	bulk)
		lg bulk -n "$tmp/names-$n.txt" -l "$labels" -m "$BULK_MIB" -d "$BULK_DIR" -T 60 \
		    >"$out.lg" 2>"$out.err" || ok=0 ;;
	connect|http)
		lg "$kind" -n "$tmp/names-$n.txt" -l "$labels" -x "$UP" -c "$CONC" -T "$CELL_SECS" -w \
		    >"$out.lg" 2>"$out.err" || ok=0 ;;
	idle)
		# one second of traffic first (malloc arenas, DNS cache), then the baseline
		lg rate -n "$tmp/names-$n.txt" -l "$labels" -c 10 -T 1 -w >/dev/null 2>"$out.err" || ok=0
		sleep 0.5
		mem0=$("$LG" mem "$PPID_")
		lg idle -n "$tmp/names-$n.txt" -l "$labels" -k "$IDLE" -c 200 -T 120 \
		    >"$out.lg" 2>>"$out.err" &
		IPID=$!
		PIDS="$PIDS $IPID"
		i=0
		while ! grep -q READY "$out.lg" 2>/dev/null && kill -0 "$IPID" 2>/dev/null &&
		    [ $i -lt 600 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		sleep 2
		echo "HELD $("$LG" mem "$PPID_") $(grep READY "$out.lg")" >>"$out.lg"
		stop "$IPID"
		grep -q 'READY ok='"$IDLE"' failed=0' "$out.lg" || ok=0 ;;
	esac
	[ "$peer" = direct ] || stop "$PPID_"
	stop "$UPID"
	# lines the proxy logged during the cell (egressd: its connection lines)
	extra_lines=""
	if [ "$peer" = egressd ] || [ "$peer" = base ]; then
		extra_lines="loglines=$(grep -c '"event":"\(allow\|deny\|error\)"' "$tmp/egressd.log" || :)"
	elif [ "$peer" != direct ]; then
		extra_lines="loglines=$(wc -l < "$(logfile "$peer")" 2>/dev/null || echo 0)"
	fi
	echo "CELL kind=$kind peer=$peer rep=$rep startup_ms=$startup $mem0 $extra_lines" \
	    "load1=$(cut -d' ' -f1 /proc/loadavg)" >>"$out.lg"
	cat "$tmp/upstream.out" >>"$out.lg"
	# the upstream's checks: every hello byte for byte, no refused name
	if ! grep -q 'mismatch=0 denied_reached=0 bad_requests=0 bulk_ok=[0-9]* bulk_bad=0' "$tmp/upstream.out"; then
		ok=0
		echo "upstream: $(grep UPSTREAM "$tmp/upstream.out")" >>"$out.err"
		head -n 5 "$tmp/upstream.err" >>"$out.err"
	fi
	r=$(grep '^RESULT' "$out.lg" | sed 's/.*mode=[a-z]* //' | cut -d' ' -f1-5)
	printf '  %-8s %-9s %s\n' "$kind" "$peer" "${r:-$(grep HELD "$out.lg" | cut -c1-70)}"
	if [ $ok = 0 ]; then
		FAILED="$FAILED $kind.$peer.$rep"
		: > "$out.failed"
		echo "  FAILED: $kind $peer (round $rep):"
		sed 's/^/    /' "$out.err" | head -n 8
		proxy_logs | sed 's/^/    /'
	fi
}

# rotate "a b c" K: the list turned K places, so no peer always goes first
rotate() {
	k=$2
	# shellcheck disable=SC2086
	set -- $1
	[ $# -gt 0 ] || return 0
	i=0
	while [ $i -lt $((k % $#)) ]; do
		x=$1
		shift
		set -- "$@" "$x"
		i=$((i + 1))
	done
	echo "$@"
}

TLSPEERS=""
for p in egressd base haproxy nginx sniproxy; do has $p && TLSPEERS="$TLSPEERS $p"; done
HTTPPEERS=""
for p in egressd base squid; do has $p && HTTPPEERS="$HTTPPEERS $p"; done

echo "== egressd side by side (issue 13)"
echo "host:     $(uname -srm), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the run"
echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "egressd:  $("$egressd" --version 2>&1 | head -n 1) (sha256 $EGRESSD_ID)"
[ -z "$BASE" ] || echo "base:     $("$tmp/base.bin" --version 2>&1 | head -n 1) (sha256 $BASE_ID), $BASE"
tree_id=$(git -C "$here/.." describe --always --dirty 2>/dev/null || :)
[ -z "$tree_id" ] || echo "tree:     $tree_id"
has haproxy && echo "haproxy:  $(haproxy -v | head -n 1 | cut -d' ' -f1-3)"
has nginx && echo "nginx:    $(nginx -v 2>&1 | cut -d' ' -f3)"
has sniproxy && echo "sniproxy: $(sniproxy -V 2>&1 | head -n 1)"
has squid && echo "squid:    $(squid -v | head -n 1)"
echo "setup:    proxy on CPU $PROXY_CPU, load generator and upstream on CPU $LOAD_CPU; reply $REPLY B;"
echo "          $CONC connections at once; ${CELL_SECS}s cells (latency ${LAT_SECS}s); bulk $BULK_MIB MiB ($BULK_DIR);"
echo "          idle $IDLE; REPEAT=$REPEAT"
echo

rep=1
while [ $rep -le "$REPEAT" ]; do
	echo "round $rep of $REPEAT"
	for kind in $CELLS; do
		case $kind in
		rate|latency|bulk) peers=$(rotate "direct $TLSPEERS" "$rep") ;;
		deny|rate100k) peers=$(rotate "$TLSPEERS" "$rep") ;;
		idle) [ "$IDLE" -gt 0 ] || continue; peers=$(rotate "$TLSPEERS" "$rep") ;;
		connect) peers=$(rotate "$HTTPPEERS" "$rep") ;;
		http) peers=$(rotate "direct $HTTPPEERS" "$rep") ;;
		*) die "unknown cell kind $kind (CELLS)" ;;
		esac
		for p in $peers; do
			cell "$kind" "$p" "$rep"
		done
	done
	rep=$((rep + 1))
done
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) after the run; run time $(($(date +%s) - T0)) s"
echo

python3 "$here/peers/table.py" "$tmp/res" "$REPEAT" "$TLSPEERS" "$HTTPPEERS" "$IDLE"
if [ -n "$FAILED" ]; then
	echo
	echo "FAILED cells (their figures are left out):$FAILED"
	exit 1
fi

#!/bin/sh
# The memory benchmark (issue 6): what egressd's resident memory grows by
# per 10,000 idle relayed connections and per 10,000 pending ClientHellos.
#
#   sh bench/run-memory.sh path/to/egressd
#
# Run through "make bench-memory"; never a test. Needs dnsmasq, curl and
# python3. Builds its world on loopback (dnsmasq, a stand-in upstream and
# the clients from bench/mem_client.py, one egressd per phase), takes 30 to
# 60 s and stops itself after 170 s. Every process it starts is stopped by
# PID on exit; its files live in a temporary directory removed on exit.
#
# Environment: MEM_BENCH_CONNS (default 10000) connections per phase;
# MEM_BENCH_REPLY (default 4096) bytes the upstream answers each
# ClientHello with; MEM_BENCH_WARM (default 20) connections opened and
# closed before the baseline; MEM_BENCH_ADDRS (default 1, at most 16) how
# many addresses the name resolves to (egressd keeps the list of candidate
# addresses for the life of a connection); PYTHON (default python3).
set -eu

egressd=${1:?usage: run-memory.sh path/to/egressd}
case $egressd in /*) ;; *) egressd=$(pwd)/$egressd ;; esac
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
N=${MEM_BENCH_CONNS:-10000}
REPLY=${MEM_BENCH_REPLY:-4096}
WARM=${MEM_BENCH_WARM:-20}
TARGET=4096             # bytes of userspace memory per idle relayed connection
LIMIT_S=170             # the whole run
NAME=mem.test
NADDRS=${MEM_BENCH_ADDRS:-1}
if [ "$NADDRS" -lt 1 ] || [ "$NADDRS" -gt 16 ]; then
	echo "run-memory.sh: MEM_BENCH_ADDRS must be 1 to 16" >&2
	exit 1
fi
# What $NAME resolves to: 127.0.0.10 and up (the clients use .2 to .9).
UPADDR=127.0.0.10 UPADDRS=127.0.0.10 HOSTREC="--host-record=$NAME,127.0.0.10"
i=1
while [ $i -lt "$NADDRS" ]; do
	UPADDRS="$UPADDRS,127.0.0.$((10 + i))"
	HOSTREC="$HOSTREC --host-record=$NAME,127.0.0.$((10 + i))"
	i=$((i + 1))
done
SOURCES=127.0.0.2-9
CLIENT="$python $here/mem_client.py"

for p in dnsmasq curl "$python"; do
	command -v "$p" >/dev/null 2>&1 || { echo "run-memory.sh: $p is not installed" >&2; exit 1; }
done
[ -x "$egressd" ] || { echo "run-memory.sh: $egressd is not an executable" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memory-bench.XXXXXX")
PIDS=""
cleanup() {
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
		echo "bench directory kept: $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
T0=$(date +%s)
die() {
	echo "run-memory.sh: $*" >&2
	for f in "$tmp"/egressd.log "$tmp"/*.err; do
		[ -s "$f" ] && { echo "--- $f (last lines)" >&2; tail -n 5 "$f" >&2; }
	done
	exit 1
}
forget() {	# forget PID: drop it from the list once it has been stopped
	np=""
	for p in $PIDS; do
		[ "$p" = "$1" ] || np="$np $p"
	done
	PIDS=$np
}
stop() {	# stop PID: TERM, bounded wait, KILL
	kill "$1" 2>/dev/null || :
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null || :
	wait "$1" 2>/dev/null || :
	forget "$1"
}
check_time() {
	[ $(($(date +%s) - T0)) -lt $LIMIT_S ] || die "the run took longer than $LIMIT_S s; stopped"
}
free_port() {
	"$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {	# wait_port HOST PORT SECONDS
	"$python" - "$1" "$2" "$3" <<'EOF'
import socket, sys, time
deadline = time.time() + float(sys.argv[3])
while time.time() < deadline:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
}
wait_grep() {	# wait_grep FILE PATTERN SECONDS
	i=0
	while [ $i -lt $(($3 * 10)) ]; do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# ---- open files ---------------------------------------------------------------
# egressd holds 2 descriptors per relayed connection (client and upstream),
# 1 per pending one; each client and the upstream process 1 per connection.
# Raise the soft limit to the hard one (or 65536); the hard limit can only
# be raised with CAP_SYS_RESOURCE, so the relayed phase is cut to what fits.
# (ulimit -H and -n are not POSIX, but dash, bash, busybox and ksh have them.)
# shellcheck disable=SC3045
hard=$(ulimit -H -n)
[ "$hard" = unlimited ] && hard=1048576
# shellcheck disable=SC3045
if ulimit -H -n 65536 2>/dev/null; then
	hard=65536
fi
want=65536
[ "$hard" -lt "$want" ] && want=$hard
# shellcheck disable=SC3045
ulimit -n "$want" || die "cannot raise the open-file limit to $want"
# shellcheck disable=SC3045
NOFILE=$(ulimit -n)
NREL=$N
fit=$(((NOFILE - 100) / 2))
note=""
if [ "$NREL" -gt "$fit" ]; then
	NREL=$((fit / 100 * 100))
	note="open-file limit $NOFILE (hard): egressd needs 2 per relayed connection, so that phase opens $NREL, not $N (figures are per connection; per 10,000 scales them)"
fi
NPEND=$N
[ "$NPEND" -gt $((NOFILE - 100)) ] && NPEND=$(((NOFILE - 100) / 100 * 100))

# ---- the world ------------------------------------------------------------------
DNS_PORT=$(free_port)
UP=$(free_port)
# shellcheck disable=SC2086
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address=127.0.0.1 --port="$DNS_PORT" \
    --local=/test/ --local-ttl=3600 --pid-file= --user=root --group=root \
    $HOSTREC --log-facility="$tmp/dnsmasq.log" \
    2>"$tmp/dnsmasq.err" &
PIDS="$PIDS $!"
$CLIENT upstream "$UPADDRS" "$UP" --reply "$REPLY" --lifetime $LIMIT_S \
    >"$tmp/upstream.out" 2>"$tmp/upstream.err" &
PIDS="$PIDS $!"
wait_grep "$tmp/upstream.out" LISTENING 10 || die "the upstream did not start"

cat > "$tmp/policy.yaml" <<EOF
allow:
  - hosts: [$NAME]
    ports: [$UP]
EOF

# mem PID: "VmRSS RssAnon Private_Dirty Anonymous", KiB
mem() {
	set -- "$1" "$(awk '$1 == "VmRSS:" { r = $2 } $1 == "RssAnon:" { a = $2 }
	    END { print r + 0, a + 0 }' "/proc/$1/status")"
	echo "$2 $(awk '$1 == "Private_Dirty:" { d = $2 } $1 == "Anonymous:" { a = $2 }
	    END { print d + 0, a + 0 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0 0)"
}
# kern: "TCP-sockets TCP-mem-pages slab-bytes" (slab: -1 when unreadable).
# The slab caches every TCP socket allocates from: the sock, its inode, its
# file, its dentry and its epoll entry. System-wide: other work moves them.
kern() {
	s=$(awk '$1 == "TCP:" { print $3, $NF }' /proc/net/sockstat)
	if [ -r /proc/slabinfo ]; then
		b=$(awk '$1 == "TCP" || $1 == "TCPv6" || $1 == "sock_inode_cache" || $1 == "filp" ||
		    $1 == "dentry" || $1 == "eventpoll_epi" { t += $2 * $4 } END { print t + 0 }' /proc/slabinfo)
	else
		b=-1
	fi
	echo "$s $b"
}
slab_nominal() {	# bytes of those slab objects one socket takes
	[ -r /proc/slabinfo ] || { echo -1; return; }
	awk '$1 == "TCP" || $1 == "sock_inode_cache" || $1 == "filp" || $1 == "dentry" ||
	    $1 == "eventpoll_epi" { t += $4 } END { print t + 0 }' /proc/slabinfo
}
nfds() {
	find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l | tr -d ' '
}
active() {
	curl -s --max-time 2 "http://127.0.0.1:$ADMIN/stats/prometheus" 2>/dev/null |
	    awk '$1 == "egressd_connections_active" { print $2 }'
}
wait_active() {	# wait_active COUNT SECONDS
	i=0
	while [ $i -lt $(($2 * 10)) ]; do
		[ "$(active)" = "$1" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
conn_lines() {	# connection log lines so far
	grep -c '"event":' "$tmp/egressd.log" 2>/dev/null || :
}

start_egressd() {
	GW=$(free_port)
	ADMIN=$(free_port)
	cat > "$tmp/egressd.yaml" <<EOF
listeners:
  - {name: tls, address: "127.0.0.1:$GW", upstream_port: $UP}
workers: 1
max_connections: 30000
dns: {servers: ["127.0.0.1:$DNS_PORT"], allow_ranges: ["127.0.0.0/8"]}
policy: {files: [policy.yaml], watch: false}
log: {path: egressd.log}
admin: {address: "127.0.0.1:$ADMIN"}
timeouts: {hello: 600s, idle: 1h}
EOF
	: > "$tmp/egressd.log"
	"$egressd" -c "$tmp/egressd.yaml" >"$tmp/egressd.out" 2>"$tmp/egressd.err" &
	EPID=$!
	PIDS="$PIDS $EPID"
	wait_grep "$tmp/egressd.log" '"egressd [^"]* started' 10 || die "egressd did not start"
	wait_port 127.0.0.1 "$ADMIN" 10 || die "egressd's admin port did not open"
}

# run_clients COUNT MODE OUTFILE: start them, wait for READY; sets CPID, OK
run_clients() {
	$CLIENT clients 127.0.0.1 "$GW" "$NAME" --count "$1" --mode "$2" \
	    --sources "$SOURCES" --reply "$REPLY" --lifetime $LIMIT_S >"$3" 2>"$3.err" &
	CPID=$!
	PIDS="$PIDS $CPID"
	wait_grep "$3" READY 90 || die "the clients did not finish connecting within 90 s"
	OK=$(sed -n 's/^READY ok=\([0-9]*\).*/\1/p' "$3")
}

# phase MODE COUNT LABEL: one egressd from scratch; prints the figures into
# $tmp/result-MODE ("count ok base open closed kbase kopen fds-per-conn secs").
phase() {
	mode=$1 count=$2
	start_egressd
	# Warm-up: the first connections set up what every later one shares
	# (the worker's malloc arena, the DNS cache entry, the log buffer).
	run_clients "$WARM" "$mode" "$tmp/warm.out"
	[ "$OK" = "$WARM" ] || die "warm-up: $(cat "$tmp/warm.out")"
	wait_active "$WARM" 10 || die "warm-up: egressd_connections_active is $(active), not $WARM"
	stop "$CPID"
	wait_active 0 20 || die "warm-up: connections still open: $(active)"
	sleep 1
	base=$(mem "$EPID") kbase=$(kern) fbase=$(nfds "$EPID") lbase=$(conn_lines)
	check_time

	run_clients "$count" "$mode" "$tmp/clients.out"
	ready=$(cat "$tmp/clients.out")
	[ "$OK" -gt 0 ] || die "no connection made it: $ready"
	wait_active "$OK" 20 || die "egressd_connections_active is $(active), not $OK"
	sleep 2
	open=$(mem "$EPID") kopen=$(kern) fopen=$(nfds "$EPID") lopen=$(conn_lines)
	[ "$(active)" = "$OK" ] || die "connections went away while held: active $(active), not $OK"
	check_time

	stop "$CPID"
	wait_active 0 30 || die "connections still open 30 s after the clients closed: $(active)"
	sleep 1
	closed=$(mem "$EPID")
	lclosed=$(conn_lines)
	stop "$EPID"
	# shellcheck disable=SC2086
	set -- $ready
	echo "$count $OK $base $open $closed $kbase $kopen $fbase $fopen $lbase $lopen $lclosed ${4#secs=}" \
	    > "$tmp/result-$mode"
	check_time
}

echo "== egressd memory benchmark"
echo "host:     $(uname -srm), $(nproc) CPUs, $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "egressd:  $("$egressd" --version 2>&1 | head -n 1)"
echo "setup:    workers: 1; clients from $SOURCES; $NAME resolves to $NADDRS address(es) from $UPADDR;"
echo "          the upstream answers each ClientHello with $REPLY bytes"
echo "nofile:   $NOFILE"
[ -n "$note" ] && echo "note:     $note"
echo

phase relay "$NREL"
phase half "$NPEND"
NOMINAL=$(slab_nominal)

# ---- the report -----------------------------------------------------------------
# shellcheck disable=SC2086
"$python" - "$tmp/result-relay" "$tmp/result-half" "$TARGET" "$NOMINAL" "$(($(date +%s) - T0))" <<'EOF'
import sys

def load(path):
    v = open(path).read().split()
    keys = ("count ok b_rss b_anon b_pd b_an o_rss o_anon o_pd o_an c_rss c_anon c_pd c_an "
            "kb_sock kb_mem kb_slab ko_sock ko_mem ko_slab fbase fopen lbase lopen lclosed secs").split()
    d = dict(zip(keys, v))
    return {k: (float(x) if k == "secs" else int(x)) for k, x in d.items()}

rel, half = load(sys.argv[1]), load(sys.argv[2])
target, nominal, runtime = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

def per(d, b, o):
    return (d[o] - d[b]) * 1024 / d["ok"]

print("%-30s %6s %12s %7s %8s %8s %9s %8s" % (
    "userspace (egressd process)", "conns", "RSS KiB", "+KiB", "RSS B/c",
    "anon B/c", "dirty B/c", "per 10k"))
for label, d in (("idle relayed (hello + reply)", rel),
                 ("pending half ClientHello", half)):
    print("%-30s %6d %12s %7d %8.0f %8.0f %9.0f %7.1fM" % (
        label, d["ok"], "%d-%d" % (d["b_rss"], d["o_rss"]), d["o_rss"] - d["b_rss"],
        per(d, "b_rss", "o_rss"), per(d, "b_an", "o_an"), per(d, "b_pd", "o_pd"),
        per(d, "b_rss", "o_rss") * 10000 / 1048576))
print("  RSS KiB: VmRSS at the baseline - with the connections held; B/c: growth per connection held,")
print("  of VmRSS, smaps_rollup Anonymous and Private_Dirty; per 10k: the VmRSS growth for 10,000, MiB")
print()
print("after the clients closed and egressd ended them all (RSS over the baseline, kept by malloc):")
for label, d in (("idle relayed", rel), ("pending half ClientHello", half)):
    print("  %-30s +%d KiB of +%d KiB (%.0f%% kept)" % (
        label, d["c_rss"] - d["b_rss"], d["o_rss"] - d["b_rss"],
        100.0 * (d["c_rss"] - d["b_rss"]) / max(1, d["o_rss"] - d["b_rss"])))
print()
print("kernel (system-wide counters: the clients' and the upstream's sockets are in them too):")
for label, d, mine, each in (("idle relayed", rel, 2, 4), ("pending half ClientHello", half, 1, 2)):
    socks = d["ko_sock"] - d["kb_sock"]
    want = each * d["ok"]
    pages = d["ko_mem"] - d["kb_mem"]
    print("  %s: egressd holds %d socket(s) per connection (its fds %+d); TCP sockets %+d, %d expected"
          "%s" % (label, mine, d["fopen"] - d["fbase"], socks, want,
                  "" if abs(socks - want) <= want * 0.02 else
                  " (other work on this machine moved the counters: approximate)"))
    print("    socket buffers (sockstat TCP mem): %+d pages = %.0f B/conn, all sockets" % (
        pages, pages * 4096.0 / d["ok"]))
    if d["kb_slab"] >= 0:
        slab = d["ko_slab"] - d["kb_slab"]
        print("    slab (TCP, sock_inode_cache, filp, dentry, eventpoll_epi): %+d KiB = %.0f B per socket;"
              " egressd's: %.0f B/conn" % (slab // 1024, slab / want, slab / want * mine))
if nominal > 0:
    print("  nominal slab objects per TCP socket (sum of those object sizes): %d B;"
          " egressd: %d B per relayed, %d B per pending connection" % (nominal, 2 * nominal, nominal))
print()
print("checks: relayed phase %d/%d connected (%.1f s), %d log lines while held (0 expected); "
      "pending phase %d/%d (%.1f s), %d log lines while held" % (
          rel["ok"], rel["count"], rel["secs"], rel["lopen"] - rel["lbase"],
          half["ok"], half["count"], half["secs"], half["lopen"] - half["lbase"]))
print()
v = per(rel, "b_rss", "o_rss")
print("Target (issue 6; for information, not a test):")
print("  %s userspace memory per idle relayed connection under %d B: %.0f B (RSS), %.0f B (anonymous)" % (
    "PASS" if v < target else "MISS", target, v, per(rel, "b_an", "o_an")))
print("  pending ClientHello: %.0f B per connection (no target)" % per(half, "b_rss", "o_rss"))
print("run time: %s s" % runtime)
EOF

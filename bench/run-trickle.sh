#!/bin/sh
# The trickle benchmark (issue 12, item 9): the CPU egressd spends on
# clients that send a ~16 KiB HTTP request head or TLS ClientHello one byte
# per TCP segment, until it denies them.
#
#   sh bench/run-trickle.sh path/to/egressd [path/to/other-egressd]
#
# Run through "make bench-trickle"; never a test. Needs python3 (the
# clients are bench/trickle_client.py). For each binary, one egressd
# (workers: 1) with an http and a tls listener on loopback, a policy that
# denies trickle.test by rule (so no upstream and no DNS answer are needed:
# dns.servers names a loopback port nothing listens on), then two phases:
# TRICKLE_CONNS clients at once trickle an HTTP head, then a ClientHello.
# egressd's utime+stime (/proc/PID/stat) is read before and after each
# phase; every client must get its denial (403, access_denied alert) and
# the log must hold one denied_by_rule line per client, or the run fails.
# With two binaries each run does one, then the other, each in a fresh
# egressd. Each phase is stopped after 60 s; the whole after
# TRICKLE_RUNS x binaries x 150 s. Every process it starts is stopped by PID
# on exit; its files live in a temporary directory removed on exit.
#
# Environment: TRICKLE_CONNS (default 20) clients per phase; TRICKLE_SIZE
# (default 16384) bytes of each HTTP head and of each ClientHello (plus its
# 5-byte record header); TRICKLE_DELAY_US (default 1000) pause between two
# bytes of one client (with none, Linux's autocorking merges bytes into
# fewer segments; from about 100 us on, each byte leaves alone);
# TRICKLE_RUNS (default 1) runs, medians reported when more than one;
# PYTHON (default python3).
set -eu

usage="usage: run-trickle.sh path/to/egressd [path/to/other-egressd]"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "$usage" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
N=${TRICKLE_CONNS:-20}
SIZE=${TRICKLE_SIZE:-16384}
DELAY=${TRICKLE_DELAY_US:-1000}
RUNS=${TRICKLE_RUNS:-1}
PHASE_S=60              # one phase, clients included
NAME=trickle.test
BINS=""
for b in "$@"; do
	if [ ! -f "$b" ] || [ ! -x "$b" ]; then
		echo "run-trickle.sh: $b is not an executable" >&2
		exit 1
	fi
	b=$(cd "$(dirname "$b")" && pwd)/$(basename "$b")
	BINS="$BINS $b"
done
NBIN=$#
command -v "$python" >/dev/null 2>&1 || { echo "run-trickle.sh: $python is not installed" >&2; exit 1; }
for v in "$N" "$SIZE" "$DELAY" "$RUNS"; do
	case $v in '' | *[!0-9]*) echo "run-trickle.sh: TRICKLE_* must be numbers" >&2; exit 2 ;; esac
done
[ "$RUNS" -ge 1 ] || { echo "run-trickle.sh: TRICKLE_RUNS must be at least 1" >&2; exit 2; }
LIMIT_S=$((RUNS * NBIN * 150))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trickle-bench.XXXXXX")
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
	echo "run-trickle.sh: $*" >&2
	for f in "$tmp"/egressd.log "$tmp"/egressd.err "$tmp"/client.err; do
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
# free_port: a port below the kernel's ephemeral range, so that no outgoing
# connection (the clients' own) can take it before egressd binds it.
free_port() {
	"$python" -c '
import random, socket
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
for _ in range(500 if low > 11000 else 0):
    p = random.randrange(10000, low)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        print(p)
        break
    except OSError:
        pass
    finally:
        s.close()
else:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])'
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
# cpu PID: the process's "utime stime", all threads, in clock ticks. The
# fields after "(comm)" are counted from state (3), so utime (14) is $12.
cpu() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'
}
# reads PID: read syscalls so far (/proc/PID/io syscr). They count the
# readv of the HTTP listeners (libevent) but not the recv of the TLS path.
reads() {
	awk '$1 == "syscr:" { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0
}
# denials LISTENER: denied_by_rule lines for $NAME on that listener so far.
denials() {
	"$python" - "$tmp/egressd.log" "$1" "$NAME" <<'EOF'
import json, sys
n = 0
for line in open(sys.argv[1], errors="replace"):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if (d.get("event") == "deny" and d.get("reason") == "denied_by_rule"
            and d.get("listener") == sys.argv[2] and d.get("name") == sys.argv[3]):
        n += 1
print(n)
EOF
}

start_egressd() {	# start_egressd BINARY: sets EPID, HTTP_PORT, TLS_PORT
	HTTP_PORT=$(free_port)
	TLS_PORT=$(free_port)
	DNS_PORT=$(free_port)
	# Only keys every egressd so far knows: this config must also run the
	# binary built from before the change. hello bounds how long a head
	# may take; a trickle takes SIZE x DELAY.
	cat > "$tmp/policy.yaml" <<EOF
deny:
  - hosts: [$NAME]
allow:
  - hosts: [allowed.test]
    ports: [443]
EOF
	cat > "$tmp/egressd.yaml" <<EOF
listeners:
  - {name: http, address: "127.0.0.1:$HTTP_PORT", protocol: http}
  - {name: tls, address: "127.0.0.1:$TLS_PORT", protocol: tls}
workers: 1
dns:
  servers: ["127.0.0.1:$DNS_PORT"]
policy: {files: [policy.yaml], watch: false}
log: {path: egressd.log}
admin: {address: "off"}
timeouts: {hello: ${PHASE_S}s}
EOF
	rm -f "$tmp/egressd.log"
	"$1" -c "$tmp/egressd.yaml" >"$tmp/egressd.out" 2>"$tmp/egressd.err" &
	EPID=$!
	PIDS="$PIDS $EPID"
	wait_grep "$tmp/egressd.log" '"egressd [^"]* started' 10 || die "$1 did not start"
}

# client PROTO PORT [ARGS]: runs the clients, at most PHASE_S seconds; the
# RESULT line lands in $tmp/client.out.
client() {
	proto=$1 port=$2
	shift 2
	$python "$here/trickle_client.py" "$proto" 127.0.0.1 "$port" --size "$SIZE" \
	    --name "$NAME" --limit $((PHASE_S - 5)) "$@" >"$tmp/client.out" 2>"$tmp/client.err" &
	CPID=$!
	PIDS="$PIDS $CPID"
	i=0
	while kill -0 "$CPID" 2>/dev/null && [ $i -lt $((PHASE_S * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -0 "$CPID" 2>/dev/null && { stop "$CPID"; die "$proto clients still running after $PHASE_S s"; }
	rc=0
	wait "$CPID" || rc=$?
	forget "$CPID"
	[ $rc -eq 0 ] || die "$proto clients failed: $(cat "$tmp/client.out")"
	grep -q '^RESULT ' "$tmp/client.out" || die "$proto clients printed no RESULT"
}

field() {	# field KEY: KEY=VALUE from the clients' RESULT line
	sed -n "s/^RESULT .* $1=\\([^ ]*\\).*/\\1/p" "$tmp/client.out"
}

# phase RUN BIN-LABEL PROTO PORT: one measured phase; appends a line to
# $tmp/results: "run bin proto conns bytes segs uticks sticks secs reads".
phase() {
	before=$(denials "$3")
	r0=$(reads "$EPID")
	c0=$(cpu "$EPID")
	client "$3" "$4" --count "$N" --delay-us "$DELAY"
	c1=$(cpu "$EPID")
	r1=$(reads "$EPID")
	want=$((before + N))
	i=0
	while [ "$(denials "$3")" != "$want" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ "$(denials "$3")" = "$want" ] ||
	    die "$3: $(denials "$3") denied_by_rule lines for $NAME, not $want"
	# shellcheck disable=SC2086
	set -- "$1" "$2" "$3" $c0 $c1
	echo "$1 $2 $3 $(field conns) $(field bytes) $(field segs) $(($6 - $4)) $(($7 - $5)) $(field secs) $((r1 - r0))" \
	    >> "$tmp/results"
	check_time
}

echo "== egressd trickle benchmark"
echo "host:     $(uname -srm), $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
label=A
for b in $BINS; do
	echo "$label:        $b ($("$b" --version 2>&1 | head -n 1))"
	label=B
done
echo "setup:    workers: 1; $N clients at once per phase, each sending a $SIZE-byte HTTP head or a"
echo "          $SIZE-byte ClientHello in one TLS record, one byte per write (TCP_NODELAY), $DELAY us"
echo "          apart; $NAME is denied by rule; $RUNS run(s)"
echo

run=1
: > "$tmp/results"
while [ $run -le "$RUNS" ]; do
	label=A
	for b in $BINS; do
		start_egressd "$b"
		# Warm-up: what every later connection shares (malloc's arena,
		# the log buffer) is set up outside the measure.
		client http "$HTTP_PORT" --count 2 --whole
		client tls "$TLS_PORT" --count 2 --whole
		phase $run $label http "$HTTP_PORT"
		phase $run $label tls "$TLS_PORT"
		stop "$EPID"
		label=B
	done
	run=$((run + 1))
done

"$python" - "$tmp/results" "$(getconf CLK_TCK)" "$NBIN" "$(($(date +%s) - T0))" <<'EOF'
import statistics, sys

hz, nbin, runtime = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bins = ["A", "B"][:nbin]
rows, res = [], {}
for line in open(sys.argv[1]):
    run, b, proto, conns, nbytes, segs, ut, st, secs, reads = line.split()
    d = dict(run=int(run), bin=b, proto=proto, conns=int(conns), bytes=int(nbytes),
             segs=int(segs), user=int(ut) * 1000.0 / hz, ms=(int(ut) + int(st)) * 1000.0 / hz,
             secs=float(secs), reads=int(reads))
    rows.append(d)
    res.setdefault((b, proto), []).append(d)

print("%-3s %-3s %-5s %5s %7s %8s %7s %5s %8s %8s %8s %5s" % (
    "run", "bin", "phase", "conns", "bytes", "segments", "reads", "secs", "CPU ms", "user ms",
    "us/conn", "busy"))
for d in rows:
    print("%-3d %-3s %-5s %5d %7d %8d %7s %5.1f %8.0f %8.0f %8.0f %4.0f%%" % (
        d["run"], d["bin"], d["proto"], d["conns"], d["bytes"], d["segs"],
        d["reads"] if d["proto"] == "http" else "-", d["secs"], d["ms"],
        d["user"], d["ms"] * 1000 / d["conns"], 100 * d["ms"] / 1000 / max(d["secs"], 0.001)))
print("  segments: data segments the clients sent (TCP_INFO tcpi_data_segs_out), one per byte when")
print("  equal to bytes; reads: egressd's read syscalls (/proc/PID/io syscr: the HTTP listener's")
print("  readv; the TLS path's recv is not counted there); CPU: egressd's utime+stime over the")
print("  phase, user: utime alone (%d ticks/s); us/conn: CPU per connection; busy: CPU over the" % hz)
print("  phase's wall time")
print()

nruns = len(res[(bins[0], "http")])
print("median of %d runs" % nruns if nruns > 1 else "one run")
line = "%-5s %5s %7s" % ("phase", "conns", "bytes")
for b in bins:
    line += " | %s: %6s %7s %7s" % (b, "CPU ms", "user ms", "us/conn")
if nbin == 2:
    line += " | B/A: CPU  user"
print(line)
for proto in ("http", "tls"):
    first = res[(bins[0], proto)][0]
    line = "%-5s %5d %7d" % (proto, first["conns"], first["bytes"])
    med = {}
    for b in bins:
        ms = statistics.median(d["ms"] for d in res[(b, proto)])
        user = statistics.median(d["user"] for d in res[(b, proto)])
        med[b] = (ms, user)
        line += " | %s: %6.0f %7.0f %7.0f" % (b, ms, user, ms * 1000 / first["conns"])
    if nbin == 2:
        line += " |   %5.2f %5.2f" % tuple(
            med["B"][k] / med["A"][k] if med["A"][k] > 0 else float("inf") for k in (0, 1))
    print(line)
print("run time: %s s" % runtime)
EOF

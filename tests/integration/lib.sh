# Shared helpers for the integration tests (sourced, POSIX sh + bash-isms
# avoided where easy). Every test builds its own small world on loopback:
# a real DNS server (dnsmasq), real TLS servers, the real egressd binary,
# real clients; and tears down only the processes it started, by PID.
#
# Output is TAP: ok/not ok lines and a plan printed by finish.

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${EGRESSD:=$top_builddir/egressd}"
export top_srcdir top_builddir EGRESSD

# 1 when $EGRESSD is an ASan build. ASan keeps freed memory in quarantine,
# so the daemon's RSS grows with the bytes that passed through userspace
# even when none are held: memory bounds are wider for it.
is_asan=0
if nm "$EGRESSD" 2>/dev/null | grep -q __asan_init || grep -q __asan_init "$EGRESSD" 2>/dev/null; then
	is_asan=1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/egressd-test.XXXXXX")
PIDS=""
TAP_N=0
TAP_FAILED=0

cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $PIDS; do
		# Bounded wait: a process that ignores TERM is killed.
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$p" 2>/dev/null
	done
	if [ -n "${KEEP_TEST_DIR:-}" ]; then
		echo "# test directory kept: $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() {
	# ok CONDITION-EXIT-STATUS DESCRIPTION: use as `cmd; ok $? "desc"`;
	# returns the check's result
	TAP_N=$((TAP_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $TAP_N - $2"
		return 0
	fi
	echo "not ok $TAP_N - $2"
	TAP_FAILED=$((TAP_FAILED + 1))
	# Fails too, so that `ok $? "..." || show` shows what went wrong.
	return 1
}

diag() {
	echo "$*" | sed 's/^/# /'
}

finish() {
	echo "1..$TAP_N"
	[ "$TAP_N" -gt 0 ] || { echo "# no checks ran"; exit 1; }
	[ "$TAP_FAILED" -eq 0 ] || exit 1
	exit 0
}

# A bail-out: the world could not be built, so nothing after it means anything.
bail() {
	echo "Bail out! $*"
	exit 1
}

need() {
	for prog in "$@"; do
		command -v "$prog" >/dev/null 2>&1 || bail "$prog is not installed (run the README's set-up command)"
	done
}

# free_port: a port to listen on, chosen below the kernel's ephemeral range:
# a port the kernel hands out could go to another test's outgoing connection
# before our server binds it (tests run in parallel). A port is free when it
# binds now, and another test may pick the same one before either binds it:
# each pick is reserved for an hour in a directory all tests share (mkdir is
# atomic), so two tests of a run never pick the same port.
free_port() {
	python3 -c '
import os, random, socket, sys, time
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
resv = sys.argv[1]
try:
    os.makedirs(resv, exist_ok=True)
except OSError:
    resv = None
def reserve(p):
    if resv is None:
        return True
    d = os.path.join(resv, str(p))
    try:
        os.mkdir(d)
        return True
    except FileExistsError:
        try:
            if time.time() - os.stat(d).st_mtime > 3600:
                os.utime(d)     # a reservation of a run long gone
                return True
        except OSError:
            pass
        return False
    except OSError:
        return True
port = 0
for _ in range(500 if low > 11000 else 0):
    p = random.randrange(10000, low)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    if reserve(p):
        port = p
        break
if not port:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
print(port)' "${TMPDIR:-/tmp}/egressd-test-ports"
}

# Wait (at most $2 seconds, default 10) for a TCP port "host:port" to accept.
wait_port() {
	python3 - "$1" "${2:-10}" <<'EOF'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
deadline = time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        socket.create_connection((host.strip("[]"), int(port)), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
}

# Wait (at most $3 seconds, default 10) until file $1 contains the string $2.
wait_for() {
	i=0
	lim=$(( ${3:-10} * 20 ))
	while [ $i -lt $lim ]; do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

# make_pki NAME...: a test CA and one server certificate per name, signed by
# it, in $T/pki/ (NAME.pem, NAME.key, ca.pem).
make_pki() {
	mkdir -p "$T/pki"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$T/pki/ca.key" -out "$T/pki/ca.pem" -days 2 \
	    -subj "/CN=egressd test CA" >/dev/null 2>&1 || bail "cannot make the test CA"
	for n in "$@"; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		    -keyout "$T/pki/$n.key" -out "$T/pki/$n.csr" -subj "/CN=$n" \
		    >/dev/null 2>&1 || bail "cannot make a key for $n"
		printf 'subjectAltName=DNS:%s\n' "$n" > "$T/pki/$n.ext"
		openssl x509 -req -in "$T/pki/$n.csr" -CA "$T/pki/ca.pem" \
		    -CAkey "$T/pki/ca.key" -CAcreateserial -days 2 \
		    -extfile "$T/pki/$n.ext" -out "$T/pki/$n.pem" >/dev/null 2>&1 \
		    || bail "cannot sign a certificate for $n"
	done
}

# start_dns PORT NAME=IP...: dnsmasq answering for *.test only, everything
# else under .test is NXDOMAIN. Answers carry TTL $DNS_TTL (default 60 s).
start_dns() {
	port=$1
	shift
	args=""
	for m in "$@"; do
		args="$args --host-record=${m%%=*},${m#*=}"
	done
	# shellcheck disable=SC2086
	dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
	    --bind-interfaces --listen-address=127.0.0.1 --port="$port" \
	    --local=/test/ --local-ttl="${DNS_TTL:-60}" --pid-file= --user=root --group=root \
	    --log-facility="$T/dnsmasq.log" $args &
	DNS_PID=$!
	PIDS="$PIDS $DNS_PID"
	# dnsmasq answers once it is up: ask it.
	i=0
	while [ $i -lt 100 ]; do
		python3 - "$port" <<'EOF' && return 0
import socket, sys
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05probe\x04test\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
try:
    s.sendto(q, ("127.0.0.1", int(sys.argv[1])))
    s.recvfrom(512)
except OSError:
    sys.exit(1)
EOF
		sleep 0.05
		i=$((i + 1))
	done
	bail "dnsmasq did not come up on port $port"
}

# start_tls_www ADDR:PORT CERTNAME: openssl s_server answering HTTP GETs
# with its status page (-www), certificate for CERTNAME.
start_tls_www() {
	openssl s_server -accept "$1" -cert "$T/pki/$2.pem" -key "$T/pki/$2.key" \
	    -www -quiet >"$T/s_server-$2.log" 2>&1 &
	PIDS="$PIDS $!"
	wait_port "$1" 10 || bail "openssl s_server did not listen on $1"
}

# start_egressd CONFIG: run the daemon, wait until it says it started.
# Sets EGRESSD_PID; stdout goes to $T/stdout, stderr to $T/stderr.
start_egressd() {
	# A log file kept across restarts already holds earlier "started"
	# lines: wait for one more (stdout starts empty each time).
	started_before=$(cat "${LOG:-/dev/null}" 2>/dev/null | grep -c '"egressd [^"]* started')
	"$EGRESSD" -c "$1" >"$T/stdout" 2>"$T/stderr" &
	EGRESSD_PID=$!
	PIDS="$PIDS $EGRESSD_PID"
	i=0
	while [ $i -lt 200 ]; do
		if grep -q '"egressd [^"]* started' "$T/stdout" 2>/dev/null ||
		    [ "$(cat "${LOG:-/dev/null}" 2>/dev/null | grep -c '"egressd [^"]* started')" \
		    -gt "$started_before" ]; then
			return 0
		fi
		kill -0 "$EGRESSD_PID" 2>/dev/null || { cat "$T/stderr" | sed 's/^/# /'; bail "egressd exited at start"; }
		sleep 0.05
		i=$((i + 1))
	done
	bail "egressd did not start within 10 s"
}

# stop_pid PID: TERM it and wait (at most 10 s); prints its exit status.
stop_pid() {
	kill "$1" 2>/dev/null
	wait "$1"
}

# scrape_metric ADMIN_PORT 'NAME{LABELS}': that sample's value from the admin
# listener's /stats/prometheus on 127.0.0.1 (empty when absent).
scrape_metric() {
	curl -s --max-time 5 "http://127.0.0.1:$1/stats/prometheus" |
	    awk -v k="$2" '$1 == k { print $2 }'
}

# hold_tls FILE GWPORT CLIENT-ARGS...: a TLS client through 127.0.0.1:GWPORT
# (CA $T/pki/ca.pem) that keeps its tunnel busy in the background
# (bypass_client.py --hold: a byte every 200 ms, echoed by the origin);
# HOLD_PID is its PID (timeout's, which passes a TERM on).
hold_tls() {
	f=$1
	a=$2
	shift 2
	timeout 30 python3 "$top_srcdir/tests/integration/bypass_client.py" tls \
	    "127.0.0.1:$a" --ca "$T/pki/ca.pem" "$@" >"$f" 2>&1 &
	HOLD_PID=$!
	PIDS="$PIDS $HOLD_PID"
}
# echoes FILE: how many echoes a hold_tls client has seen so far.
echoes() {
	grep -c '^echo ' "$1" 2>/dev/null || true
}

# logq FILE [--count] KEY=VALUE...: the log lines (JSON) whose keys have
# these values; see logq.py.
logq() {
	python3 "$top_srcdir/tests/integration/logq.py" "$@"
}

# wait_log FILE COUNT KEY=VALUE...: wait (at most 10 s) until exactly COUNT
# connection lines match; returns 1 (and shows the log) if that never happens.
wait_log() {
	f=$1
	want=$2
	shift 2
	i=0
	while [ $i -lt 200 ]; do
		n=$(logq "$f" --count "$@" 2>/dev/null)
		[ "$n" = "$want" ] && return 0
		sleep 0.05
		i=$((i + 1))
	done
	echo "# wanted $want line(s) matching: $*; log has:"
	sed 's/^/#   /' "$f"
	return 1
}

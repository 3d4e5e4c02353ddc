#!/bin/sh
# ClientHellos from real clients, captured while this test runs and fed to
# sni_check with the SNI/ALPN/version each client was told to send. TAP.
#
# Each case: start tests/integration/capture_hello.py on an ephemeral port
# on 127.0.0.1, point one client at it (bounded by timeout 10), then check
# the bytes. The capture closes the connection without answering, so every
# client fails its handshake; that is expected and its exit status ignored.
# A missing client program is a failure, not a skip: CI installs them all
# (openssl, curl, gnutls-bin, python3).
#
# Environment: top_srcdir, top_builddir (make check exports both; default
# to this script's ../..). SNI_SAVE_CAPTURES=DIR keeps a copy of every
# capture there as ID.bin (how the fuzz seed corpus was made).

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$here/../..}"
: "${top_builddir:=$here/../..}"
CAPTURE="$top_srcdir/tests/integration/capture_hello.py"
CHECK="$top_builddir/tests/unit/sni_check"
T=10

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sni_real.XXXXXX") || exit 1
cpid=""
cleanup() {
	# Only the capture this script started, if one is still running.
	if [ -n "$cpid" ]; then
		kill "$cpid" 2>/dev/null
		wait "$cpid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

n=0
failed=0
ok() {
	n=$((n + 1))
	echo "ok $n - $*"
}
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $*"
}
diag_file() {
	sed -e 's/^/#   /' "$1" 2>/dev/null | head -n 40
}

# ---- clients: each takes the port, talks to 127.0.0.1 only ------------------

c_openssl() {
	port=$1
	shift
	timeout $T openssl s_client -connect "127.0.0.1:$port" "$@"
}
c_curl() {
	port=$1
	name=$2
	shift 2
	timeout $T curl -sS -k --max-time 8 --connect-timeout 5 \
	    --resolve "$name:$port:127.0.0.1" "$@" "https://$name:$port/"
}
c_python() {
	port=$1
	name=$2
	alpn=$3
	timeout $T python3 - "$port" "$name" "$alpn" <<'EOF'
import socket, ssl, sys
port, name, alpn = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if alpn:
    ctx.set_alpn_protocols(alpn.split(","))
with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
    try:
        with ctx.wrap_socket(s, server_hostname=name):
            pass
    except (ssl.SSLError, OSError) as e:
        print("handshake failed as expected:", e)
EOF
}
c_gnutls() {
	port=$1
	shift
	timeout $T gnutls-cli --insecure --port "$port" "$@" 127.0.0.1
}

# ---- one case ---------------------------------------------------------------

# capture ID PROGRAM "CLIENT ARGS" -- SNI_CHECK ARGS
# CLIENT ARGS is split on spaces (no argument below contains one); @PORT@
# in it is replaced by the capture's port.
capture() {
	id=$1
	prog=$2
	client=$3
	shift 4
	out="$tmp/$id.bin"
	pf="$tmp/$id.port"

	if ! command -v "$prog" >/dev/null 2>&1; then
		not_ok "$id: client program '$prog' not installed"
		not_ok "$id: sni_check (nothing captured)"
		return
	fi

	python3 "$CAPTURE" --port-file "$pf" --timeout 15 "$out" \
	    >/dev/null 2>"$tmp/$id.capture.err" &
	cpid=$!
	i=0
	while [ ! -s "$pf" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if [ ! -s "$pf" ]; then
		kill "$cpid" 2>/dev/null
		wait "$cpid" 2>/dev/null
		cpid=""
		not_ok "$id: capture_hello.py did not start listening"
		diag_file "$tmp/$id.capture.err"
		not_ok "$id: sni_check (nothing captured)"
		return
	fi
	port=$(cat "$pf")

	# shellcheck disable=SC2086 # split on purpose, see above
	set -- $(echo "$client" | sed "s/@PORT@/$port/g") -- "$@"
	cmd=$1
	shift
	args=""
	# Run the client; its exit status is meaningless here.
	while [ "$1" != "--" ]; do
		args="$args $1"
		shift
	done
	shift
	# shellcheck disable=SC2086
	"$cmd" "$port" $args </dev/null >"$tmp/$id.client.out" 2>&1

	wait "$cpid"
	crc=$?
	cpid=""
	size=$(wc -c <"$out" 2>/dev/null || echo 0)
	size=$((size + 0))
	if [ "$crc" -eq 0 ] && [ "$size" -gt 0 ]; then
		ok "$id: captured a $size-byte hello from $prog"
	else
		not_ok "$id: captured a hello from $prog (capture exit $crc, $size bytes)"
		diag_file "$tmp/$id.capture.err"
		diag_file "$tmp/$id.client.out"
	fi
	if [ -n "${SNI_SAVE_CAPTURES:-}" ] && [ "$size" -gt 0 ]; then
		cp "$out" "$SNI_SAVE_CAPTURES/$id.bin"
	fi

	if "$CHECK" "$out" "$@" >"$tmp/$id.check" 2>&1; then
		ok "$id: sni_check $*"
	else
		not_ok "$id: sni_check $*"
		grep -v '^ok ' "$tmp/$id.check" | sed -e 's/^/#   /' | head -n 40
	fi
}

CASES=15
echo "1..$((CASES * 2))"

if [ ! -x "$CHECK" ]; then
	echo "# $CHECK not built"
fi

# OpenSSL: both versions, with and without a name, with ALPN, large hellos.
capture openssl-tls12-sni openssl \
    "c_openssl -tls1_2 -servername tls12.example.com" -- \
    --sni tls12.example.com --tls13 0
capture openssl-tls13-sni openssl \
    "c_openssl -tls1_3 -servername tls13.example.com" -- \
    --sni tls13.example.com --tls13 1
capture openssl-tls12-nosni openssl \
    "c_openssl -tls1_2 -noservername" -- \
    --no-sni --tls13 0
capture openssl-tls13-nosni openssl \
    "c_openssl -tls1_3 -noservername" -- \
    --no-sni --tls13 1
capture openssl-tls12-alpn openssl \
    "c_openssl -tls1_2 -servername alpn12.example.com -alpn h2,http/1.1" -- \
    --sni alpn12.example.com --alpn h2,http/1.1 --tls13 0
capture openssl-tls13-alpn openssl \
    "c_openssl -tls1_3 -servername alpn13.example.com -alpn h2,http/1.1" -- \
    --sni alpn13.example.com --alpn h2,http/1.1 --tls13 1
capture openssl-tls13-mixedcase openssl \
    "c_openssl -tls1_3 -servername MiXeD.Example.COM" -- \
    --sni MiXeD.Example.COM --tls13 1
capture openssl-tls13-ffdhe8192 openssl \
    "c_openssl -tls1_3 -groups ffdhe8192:x25519 -servername big.example.com -alpn h2" -- \
    --sni big.example.com --alpn h2 --tls13 1
# The same large hello, split by the client into 512-byte records.
capture openssl-tls13-ffdhe8192-frag512 openssl \
    "c_openssl -tls1_3 -groups ffdhe8192:x25519 -max_send_frag 512 -servername frag.example.com -alpn h2,http/1.1" -- \
    --sni frag.example.com --alpn h2,http/1.1 --tls13 1

# curl (OpenSSL backend, nghttp2: offers h2 by default).
capture curl-default curl \
    "c_curl curl.example.com" -- \
    --sni curl.example.com --alpn h2,http/1.1 --tls13 1
capture curl-http11 curl \
    "c_curl curl11.example.com --http1.1" -- \
    --sni curl11.example.com --alpn http/1.1 --tls13 1

# Python's ssl module.
capture python-alpn python3 \
    "c_python py.example.com h2,http/1.1" -- \
    --sni py.example.com --alpn h2,http/1.1 --tls13 1
capture python-noalpn python3 \
    "c_python py-noalpn.example.com" -- \
    --sni py-noalpn.example.com --tls13 1

# GnuTLS.
capture gnutls-alpn gnutls-cli \
    "c_gnutls --sni-hostname gnutls.example.com --alpn h2 --alpn http/1.1" -- \
    --sni gnutls.example.com --alpn h2,http/1.1 --tls13 1
capture gnutls-tls12 gnutls-cli \
    "c_gnutls --sni-hostname gnutls12.example.com --priority NORMAL:-VERS-ALL:+VERS-TLS1.2" -- \
    --sni gnutls12.example.com --tls13 0

if [ "$n" -ne $((CASES * 2)) ]; then
	not_ok "plan: ran $n checks, planned $((CASES * 2))"
fi
if [ "$failed" -ne 0 ]; then
	exit 1
fi
exit 0

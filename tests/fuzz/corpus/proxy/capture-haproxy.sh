#!/bin/bash
# Regenerates the haproxy-*.bin files of this corpus: real PROXY protocol
# headers written by HAProxy (Debian's haproxy package, `send-proxy` and
# `send-proxy-v2`), captured byte for byte by a listener standing in for
# egressd. Run by hand (as root or not), never by make check:
#
#   apt-get install haproxy openssl python3
#   bash tests/fuzz/corpus/proxy/capture-haproxy.sh [OUTDIR]
#
# Every connection is on loopback with fixed addresses and ports, so the
# headers are reproducible and tests/unit/test_proxy.c can state the exact
# addresses each file must give (see README.md beside this script):
#   client 127.0.0.2:40001..40009 -> haproxy 127.0.0.1:24001..24009
#   client [::1]:40011..40012      -> haproxy [::1]:24011..24012
# Each client sends a known payload after connecting, so the captured file
# is "header + payload", as egressd's first read would see it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
tmp=$(mktemp -d)
hpid=
cleanup() {
	[ -n "$hpid" ] && kill "$hpid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# The listener: accepts one connection on each given port and saves what
# arrives (until the peer closes or resets, or 3 s of silence) as NAME.bin.
# Health checks close with a reset once connected: what came first is kept.
cat >"$tmp/listen.py" <<'EOF'
import socket, sys, threading
outdir = sys.argv[1]
def serve(name, fam, host, port):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(1); s.settimeout(20)
    c, _ = s.accept(); c.settimeout(3)
    data = b""
    try:
        while len(data) < 65536:
            b = c.recv(4096)
            if not b:
                break
            data += b
    except (socket.timeout, ConnectionResetError):
        pass
    open(f"{outdir}/{name}.bin", "wb").write(data)
    c.close(); s.close()
ts = []
for spec in sys.argv[2:]:
    name, port = spec.split(":")
    t = threading.Thread(target=serve, args=(name, socket.AF_INET, "127.0.0.1", int(port)))
    t.start(); ts.append(t)
for t in ts:
    t.join()
EOF

# The client: connect from a fixed source, send a payload, wait, close.
cat >"$tmp/client.py" <<'EOF'
import socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.connect((sys.argv[3], int(sys.argv[4])))
s.sendall(sys.argv[5].encode().decode("unicode_escape").encode("latin-1"))
time.sleep(1)
s.close()
EOF

openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=pp.test \
    -keyout "$tmp/key.pem" -out "$tmp/crt.pem" 2>/dev/null
cat "$tmp/crt.pem" "$tmp/key.pem" >"$tmp/site.pem"

# One frontend/backend pair per capture; backends point at the listener.
cat >"$tmp/haproxy.cfg" <<EOF
global
	log stderr format short local0 notice
defaults
	mode tcp
	timeout connect 2s
	timeout client 5s
	timeout server 5s
	unique-id-format %{+X}o\ %ci:%cp_%fi:%fp_%Ts_%rt
listen v1-tcp4
	bind 127.0.0.1:24001
	server s 127.0.0.1:24101 send-proxy
listen v2-tcp4
	bind 127.0.0.1:24002
	server s 127.0.0.1:24102 send-proxy-v2
listen v2-tcp4-tlv-crc32c-uniqueid-ssl
	bind 127.0.0.1:24003
	server s 127.0.0.1:24103 send-proxy-v2 proxy-v2-options crc32c,unique-id,ssl
listen v2-tcp4-tls-alpn-authority
	bind 127.0.0.1:24004 ssl crt $tmp/site.pem alpn h2,http/1.1
	server s 127.0.0.1:24104 send-proxy-v2 proxy-v2-options ssl,ssl-cipher,cert-sig,cert-key,authority,crc32c,unique-id
listen v1-unix
	bind unix@$tmp/v1.sock
	server s 127.0.0.1:24105 send-proxy
listen v2-unix
	bind unix@$tmp/v2.sock
	server s 127.0.0.1:24106 send-proxy-v2
listen v1-tcp6
	bind [::1]:24011
	server s 127.0.0.1:24111 send-proxy
listen v2-tcp6
	bind [::1]:24012
	server s 127.0.0.1:24112 send-proxy-v2
backend v1-check
	server s 127.0.0.1:24121 send-proxy check check-send-proxy inter 1s
backend v2-check
	server s 127.0.0.1:24122 send-proxy-v2 check check-send-proxy inter 1s
EOF

python3 "$tmp/listen.py" "$tmp" \
    haproxy-v1-tcp4:24101 haproxy-v2-tcp4:24102 \
    haproxy-v2-tcp4-tlvs:24103 haproxy-v2-tcp4-tls-tlvs:24104 \
    haproxy-v1-unix:24105 haproxy-v2-unix:24106 \
    haproxy-v1-tcp6:24111 haproxy-v2-tcp6:24112 \
    haproxy-v1-check:24121 haproxy-v2-check:24122 &
lpid=$!
sleep 1
haproxy -f "$tmp/haproxy.cfg" -db 2>"$tmp/haproxy.log" &
hpid=$!
sleep 1

c() { python3 "$tmp/client.py" "$@"; }
c 127.0.0.2 40001 127.0.0.1 24001 'GET / HTTP/1.0\r\n\r\n' &
c 127.0.0.2 40002 127.0.0.1 24002 'GET / HTTP/1.0\r\n\r\n' &
c 127.0.0.2 40003 127.0.0.1 24003 'hello\n' &
c ::1 40011 ::1 24011 'GET / HTTP/1.0\r\n\r\n' &
c ::1 40012 ::1 24012 'GET / HTTP/1.0\r\n\r\n' &
python3 - "$tmp" <<'EOF' &
import socket, sys, time
for name in ("v1", "v2"):
    s = socket.socket(socket.AF_UNIX)
    s.connect(f"{sys.argv[1]}/{name}.sock")
    s.sendall(b"unix\n")
    time.sleep(1)
    s.close()
EOF
# TLS through haproxy: SNI and ALPN become AUTHORITY and ALPN TLVs.
python3 - <<'EOF2'
import socket, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.2", 40004))
s.connect(("127.0.0.1", 24004))
t = ctx.wrap_socket(s, server_hostname="pp.example")
t.sendall(b"hello tls\n")
import time; time.sleep(1)
t.close()
EOF2
wait "$lpid"
cp "$tmp"/haproxy-*.bin "$out/"
haproxy -v | head -1
ls -l "$out"/haproxy-*.bin

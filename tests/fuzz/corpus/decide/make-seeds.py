#!/usr/bin/env python3
"""Writes the seeds of this corpus: byte 0 picks the parser (0 ClientHello,
1 HTTP request head, 2 PROXY header then either), byte 1 the F_* flags of
tests/fuzz/fuzz_decide.c, then the bytes the parser reads. ClientHellos and
some request heads are taken from the hello and http_request corpora.
Run by hand from anywhere: python3 make-seeds.py [OUTDIR]."""
import os, struct, sys

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else here
corpus = os.path.dirname(here)

F_TRANSPARENT, F_TUNNEL, F_OTHER_TUNNEL, F_LOCATION = 0x01, 0x02, 0x04, 0x08
F_REFUSE_ECH, F_NO_OPTS, F_ORIG_DST, F_NO_SRC = 0x10, 0x20, 0x40, 0x80
HELLO, HTTP, PROXY = 0, 1, 2

def read(sub, name):
    with open(os.path.join(corpus, sub, name), "rb") as f:
        return f.read()

def head(target, host, method="GET"):
    return f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

SIG = b"\r\n\r\n\x00\r\nQUIT\n"

def v2_tcp4(src, dst, sport, dport):
    block = bytes(src) + bytes(dst) + struct.pack(">HH", sport, dport)
    return SIG + bytes([0x21, 0x11]) + struct.pack(">H", len(block)) + block

V2_LOCAL = SIG + bytes([0x20, 0x00, 0, 0])

sni = read("hello", "openssl-tls13-sni.bin")            # tls13.example.com
nosni = read("hello", "openssl-tls13-nosni.bin")
ech = read("hello", "ech-grease-ext.bin")               # ECH, tls13.example.com
mixed = read("hello", "openssl-tls13-mixedcase.bin")    # MiXeD.Example.COM

seeds = {
    # ClientHellos
    "hello-sni": (HELLO, 0, sni),
    "hello-sni-transparent": (HELLO, F_TRANSPARENT | F_ORIG_DST, sni),
    "hello-nosni": (HELLO, 0, nosni),
    "hello-nosni-report": (HELLO, F_NO_SRC, nosni),
    "hello-mixedcase": (HELLO, 0, mixed),
    "hello-ech-refused": (HELLO, F_REFUSE_ECH, ech),
    "hello-ech-no-opts": (HELLO, F_REFUSE_ECH | F_NO_OPTS, ech),
    "hello-ech-location": (HELLO, F_REFUSE_ECH | F_LOCATION, ech),
    "hello-tunnel": (HELLO, F_TUNNEL, sni),
    "hello-tunnel-other": (HELLO, F_TUNNEL | F_OTHER_TUNNEL, sni),
    # HTTP request heads
    "http-curl-get-ip": (HTTP, 0, read("http_request", "real-curl-get.bin")),
    "http-absolute": (HTTP, 0, read("http_request", "real-curl-proxy-absolute.bin")),
    "http-absolute-https": (HTTP, 0, read("http_request", "ok-absolute-https.bin")),
    "http-http10-nohost": (HTTP, 0, read("http_request", "ok-http10-nohost.bin")),
    "http-corp-private": (HTTP, 0, head("/", "db.corp.test")),
    "http-corp-no-src": (HTTP, F_NO_SRC, head("/", "db.corp.test")),
    "http-www-example-org": (HTTP, 0, head("/", "www.example.org")),
    "http-report-only": (HTTP, 0, head("/", "a.report.test")),
    "http-report-denied": (HTTP, 0, head("/", "x.report.test")),
    "http-example-net-8080": (HTTP, 0, head("http://a.example.net:8080/", "a.example.net:8080")),
    "http-pastebin": (HTTP, 0, head("http://x.pastebin.com/", "x.pastebin.com")),
    "http-transparent-orig-8443": (HTTP, F_TRANSPARENT | F_ORIG_DST, head("/", "www.example.org")),
    "http-host-ip-8080": (HTTP, 0, head("/", "192.0.2.1:8080")),
    "http-tunnel-host": (HTTP, F_TUNNEL, head("/", "www.example.org")),
    "http-tunnel-host-other": (HTTP, F_TUNNEL | F_OTHER_TUNNEL, head("/", "www.example.org")),
    "connect-curl": (HTTP, 0, read("http_request", "real-curl-proxy-connect.bin")),
    "connect-github": (HTTP, 0, head("api.github.com:443", "api.github.com:443", "CONNECT")),
    "connect-denied-443": (HTTP, 0, head("db.corp.test:443", "db.corp.test:443", "CONNECT")),
    "connect-on-http-listener": (HTTP, F_OTHER_TUNNEL, head("api.github.com:443", "api.github.com:443", "CONNECT")),
    "connect-on-transparent": (HTTP, F_TRANSPARENT, head("api.github.com:443", "api.github.com:443", "CONNECT")),
    # PROXY headers, then the connection's first bytes
    "proxy-v1-hello": (PROXY, 0, b"PROXY TCP4 127.0.0.2 192.0.2.9 40001 443\r\n" + sni),
    "proxy-v1-hello-transparent": (PROXY, F_TRANSPARENT, b"PROXY TCP4 10.1.2.3 192.0.2.9 40001 8080\r\n" + sni),
    "proxy-v1-tcp6-http": (PROXY, 0, b"PROXY TCP6 ::1 2001:db8::1 40001 80\r\n" + head("/", "db.corp.test")),
    "proxy-v2-http-nohost": (PROXY, F_TRANSPARENT, read("proxy", "haproxy-v2-tcp4.bin")),
    "proxy-v2-tcp4-http": (PROXY, F_TRANSPARENT, v2_tcp4([10, 9, 8, 7], [192, 0, 2, 1], 5555, 80) + head("/", "a.corp.test")),
    "proxy-v2-local-hello": (PROXY, F_ORIG_DST | F_TRANSPARENT, V2_LOCAL + sni),
}

for name, (kind, flags, body) in sorted(seeds.items()):
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(bytes([kind, flags]) + body)

#!/usr/bin/env python3
"""Small exchanges through a relay, the way interactive protocols talk.

server ADDR PORT CERT KEY: accept TLS connections; for each, answer every
  200 bytes received with one 50-byte record.
client HOST PORT NAME CAFILE N [CONNECT]: connect (through a CONNECT proxy
  when the word CONNECT is given: the tunnel is asked for NAME:PORT of the
  server, read from the environment as SERVER_PORT), then N times: write
  100 bytes, write 100 bytes more (two TLS records, two writes, Nagle off on
  the client's socket, as interactive clients set it), read the answer.
  Prints "exchanges=N stalls=S median_ms=M max_ms=X": a stall is an
  exchange of 30 ms or more, the mark of a write held back until the other
  end's delayed ACK (40 ms on Linux).
"""
import os
import socket
import ssl
import statistics
import sys
import threading
import time


def serve(conn, ctx):
    try:
        with ctx.wrap_socket(conn, server_side=True) as s:
            buf = b""
            while True:
                while len(buf) < 200:
                    b = s.recv(4096)
                    if not b:
                        return
                    buf += b
                buf = buf[200:]
                s.sendall(b"r" * 50)
    except (OSError, ssl.SSLError):
        pass


def server(addr, port, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, int(port)))
    ls.listen(16)
    print("listening", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, ctx), daemon=True).start()


def tunnel(raw, name):
    port = os.environ["SERVER_PORT"]
    raw.sendall(b"CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n" %
                (name.encode(), port.encode(), name.encode(), port.encode()))
    head = b""
    while b"\r\n\r\n" not in head:
        b = raw.recv(1)
        if not b:
            sys.exit("proxy closed before its answer")
        head += b
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit("proxy answered " + head.split(b"\r\n")[0].decode())


def client(host, port, name, ca, n, mode=""):
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection((host, int(port)), timeout=30)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if mode == "CONNECT":
        tunnel(raw, name)
    s = ctx.wrap_socket(raw, server_hostname=name)
    times = []
    for _ in range(int(n)):
        t = time.monotonic()
        s.sendall(b"a" * 100)
        s.sendall(b"b" * 100)
        got = 0
        while got < 50:
            b = s.recv(4096)
            if not b:
                sys.exit("server closed")
            got += len(b)
        times.append((time.monotonic() - t) * 1000)
    print("exchanges=%d stalls=%d median_ms=%.2f max_ms=%.2f" % (
        len(times), sum(1 for x in times if x >= 30), statistics.median(times),
        max(times)))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(*sys.argv[2:6])
    else:
        client(*sys.argv[2:])

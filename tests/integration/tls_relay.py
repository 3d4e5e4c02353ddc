#!/usr/bin/env python3
"""A TLS peer pair for relay tests.

server ADDR PORT CERT KEY DOWNLOAD: accept TLS connections; for each, read
  until the client's EOF (the client half-closes), then send back the
  SHA-256 of what arrived, then DOWNLOAD bytes of a deterministic stream,
  then close.
client GWHOST GWPORT NAME CAFILE UPLOAD DOWNLOAD: connect through the
  gateway with SNI NAME, verify the certificate, send UPLOAD deterministic
  bytes, half-close, and check both the hash the server saw and the bytes
  that came back. Exit 0 only when both match.
pingserver ADDR PORT CERT KEY: accept TLS connections; answer every 200
  bytes received with one 50-byte record.
exchanges GWHOST GWPORT NAME CAFILE N [CONNECT:PORT]: connect (through a
  CONNECT proxy, asking for NAME:PORT, when given), then N times write 100
  bytes, write 100 more (two TLS records, two writes, Nagle off on the
  client's socket, as interactive clients set it) and read the answer.
  Prints "exchanges=N stalls=S median_ms=M max_ms=X": a stall is an
  exchange of 30 ms or more, the mark of a write held back until the other
  end's delayed ACK (40 ms on Linux).
"""
import hashlib
import os
import socket
import ssl
import statistics
import sys
import threading
import time

from bypass_client import do_connect


def stream(seed, n):
    """Deterministic bytes: SHA-256 in counter mode."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed + i.to_bytes(8, "big")).digest()
        i += 1
    return bytes(out[:n])


def serve_one(conn, ctx, download):
    try:
        with ctx.wrap_socket(conn, server_side=True) as s:
            h = hashlib.sha256()
            total = 0
            while True:
                try:
                    b = s.recv(65536)
                except ssl.SSLEOFError:
                    break
                if not b:
                    break
                h.update(b)
                total += len(b)
            s.sendall(h.digest() + total.to_bytes(8, "big"))
            s.sendall(stream(b"down", download))
    except (OSError, ssl.SSLError) as e:
        print(f"server: {e}", file=sys.stderr)


def listen_tls(addr, port, cert, key, handler):
    """Accept TLS connections on ADDR:PORT, each served by handler(conn,
    ctx) in its own thread."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    # The client half-closes at the TCP level (no close_notify): that FIN,
    # passed on by the gateway, is the end of the upload.
    ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, int(port)))
    ls.listen(64)
    print("listening", flush=True)
    while True:
        conn, _ = ls.accept()
        conn.settimeout(30)
        threading.Thread(target=handler, args=(conn, ctx), daemon=True).start()


def server(addr, port, cert, key, download):
    listen_tls(addr, port, cert, key,
               lambda conn, ctx: serve_one(conn, ctx, int(download)))


def pong(conn, ctx):
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


def pingserver(addr, port, cert, key):
    listen_tls(addr, port, cert, key, pong)


def exchanges(gwhost, gwport, name, cafile, n, via=""):
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection((gwhost, int(gwport)), timeout=30)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if via.startswith("CONNECT:"):
        refused = do_connect(raw, "%s:%s" % (name, via[8:]))
        if refused is not None:
            sys.exit("the proxy answered: " + refused)
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
                sys.exit("the server closed")
            got += len(b)
        times.append((time.monotonic() - t) * 1000)
    s.close()
    print("exchanges=%d stalls=%d median_ms=%.2f max_ms=%.2f" % (
        len(times), sum(1 for x in times if x >= 30), statistics.median(times),
        max(times)))
    return 0


def client(gwhost, gwport, name, cafile, upload, download):
    upload, download = int(upload), int(download)
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection((gwhost, int(gwport)), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname=name)
    data = stream(b"up", upload)
    s.sendall(data)
    # Half-close at the TCP level; our read side stays open.
    socket.socket(fileno=os.dup(s.fileno())).shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        try:
            b = s.recv(65536)
        except ssl.SSLEOFError:
            break
        if not b:
            break
        got += b
    digest, count, rest = bytes(got[:32]), int.from_bytes(got[32:40], "big"), bytes(got[40:])
    ok = True
    if digest != hashlib.sha256(data).digest() or count != upload:
        print(f"upload mismatch: server saw {count} bytes", file=sys.stderr)
        ok = False
    if rest != stream(b"down", download):
        print(f"download mismatch: got {len(rest)} bytes", file=sys.stderr)
        ok = False
    print(f"upload {upload} sha256 {hashlib.sha256(data).hexdigest()} "
          f"download {len(rest)} sha256 {hashlib.sha256(rest).hexdigest()}")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(*sys.argv[2:])
    elif sys.argv[1] == "pingserver":
        pingserver(*sys.argv[2:])
    elif sys.argv[1] == "exchanges":
        sys.exit(exchanges(*sys.argv[2:]))
    else:
        sys.exit(client(*sys.argv[2:]))

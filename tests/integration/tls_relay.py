#!/usr/bin/env python3
"""A TLS peer pair for byte-exact relay tests.

server ADDR PORT CERT KEY: accept TLS connections; for each, read until the
  client's EOF (the client half-closes), then send back the SHA-256 of what
  arrived, then DOWNLOAD bytes of a deterministic stream, then close.
client GWHOST GWPORT NAME CAFILE UPLOAD DOWNLOAD: connect through the
  gateway with SNI NAME, verify the certificate, send UPLOAD deterministic
  bytes, half-close, and check both the hash the server saw and the bytes
  that came back. Exit 0 only when both match.
"""
import hashlib
import os
import socket
import ssl
import sys
import threading


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


def server(addr, port, cert, key, download):
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
        threading.Thread(target=serve_one, args=(conn, ctx, int(download)),
                         daemon=True).start()


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
    else:
        sys.exit(client(*sys.argv[2:]))

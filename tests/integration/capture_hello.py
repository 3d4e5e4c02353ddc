#!/usr/bin/env python3
"""Capture the first bytes a TLS client sends: its ClientHello, as on the wire.

Listens on 127.0.0.1 (the given port, or an ephemeral one), prints the port
on stdout once listening (and/or writes it to --port-file), accepts ONE
connection and reads until the TLS records received hold one complete
handshake message, or 5 seconds pass, or the client stops sending. Writes
exactly the bytes received to the output file and closes the connection
without answering, so the client's handshake fails: that is expected.

The whole run is bounded: it gives up after --timeout seconds (20 by
default), even if nobody connects. Exit status 0 when a complete message
was captured, 1 otherwise (the bytes received are still written).

Standard library only.
"""

import argparse
import os
import socket
import sys
import time

READ_WINDOW = 5.0          # seconds to wait for the hello once connected
MAX_BYTES = 64 * 1024      # never buffer more than this


def hello_complete(data):
    """True once the complete TLS records in data carry a whole handshake
    message. Only complete records count, so the file ends on a record
    boundary. Non-TLS input is "complete" as soon as it is seen, so that
    capturing, say, an HTTP request does not wait for the timeout."""
    if data and data[0] != 22:
        return True
    payload = b""
    off = 0
    while off + 5 <= len(data):
        ctype = data[off]
        rlen = int.from_bytes(data[off + 3:off + 5], "big")
        if ctype != 22 or rlen == 0:
            return True            # not ours to judge: stop reading
        if off + 5 + rlen > len(data):
            return False           # last record still incomplete
        payload += data[off + 5:off + 5 + rlen]
        off += 5 + rlen
        if len(payload) >= 4:
            mlen = int.from_bytes(payload[1:4], "big")
            if len(payload) >= 4 + mlen:
                return True
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output", help="file that receives the captured bytes")
    ap.add_argument("--port", type=int, default=0,
                    help="port to listen on (default: ephemeral)")
    ap.add_argument("--port-file",
                    help="also write the port to this file (atomically)")
    ap.add_argument("--timeout", type=float, default=20.0,
                    help="give up after this many seconds (max 20)")
    args = ap.parse_args()

    deadline = time.monotonic() + min(max(args.timeout, 1.0), 20.0)

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(1)
    port = srv.getsockname()[1]

    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print(port, flush=True)

    data = b""
    conn = None
    try:
        srv.settimeout(max(deadline - time.monotonic(), 0.1))
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            print("capture_hello: nobody connected", file=sys.stderr)
            return 1
        read_until = min(time.monotonic() + READ_WINDOW, deadline)
        while not hello_complete(data) and len(data) < MAX_BYTES:
            left = read_until - time.monotonic()
            if left <= 0:
                break
            conn.settimeout(left)
            try:
                chunk = conn.recv(MAX_BYTES - len(data))
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        with open(args.output, "wb") as f:
            f.write(data)
        if conn is not None:
            conn.close()
        srv.close()
    ok = len(data) > 0 and data[0] == 22 and hello_complete(data)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Trickling clients for the trickle benchmark (bench/run-trickle.sh, issue 12).

  trickle_client.py http|tls HOST PORT [--count N] [--size BYTES]
                    [--delay-us US] [--limit S] [--name NAME] [--whole]

Opens N connections at once (one thread each), then every client sends its
request one byte per write with TCP_NODELAY, waiting DELAY_US microseconds
between bytes (0: none), so that each byte leaves in a TCP segment of its
own. What is sent:

  http: a valid HTTP/1.1 GET for http://NAME/ whose head (request line, a
        Host field, as many X-Trickle-NN fields as it takes, the blank line)
        is exactly BYTES long;
  tls:  one TLS record holding a ClientHello of exactly BYTES bytes
        (handshake header included): SNI NAME, TLS 1.3 and 1.2 offered, and a
        padding extension (type 21) that brings it to that size.

Then each client reads the answer until EOF: on http it must be a 403, on
tls an access_denied alert or a bare close. The gateway's policy is meant to
deny NAME, so nothing needs an upstream.

--whole sends the request in one write instead (the warm-up).

When every client is done, prints one line:

  RESULT proto=P conns=N ok=K bytes=B segs=S secs=T answer=A

bytes: request bytes sent, all clients; segs: data segments the clients'
sockets sent (TCP_INFO tcpi_data_segs_out, so S = B means one byte per
segment); answer: what the first client got (403, alert-49, closed, ...).
A client that fails prints "FAIL i: why" on stderr first. Every client
gives up at --limit seconds after the start (default 55). Exit status: 0
when every client got the expected answer, 1 otherwise, 2 on bad arguments.
"""
import argparse
import os
import socket
import struct
import sys
import threading
import time

HTTP_HEAD_MAX = 16384                   # http/http.h
HTTP_FIELDS_MAX = 100
HELLO_MAX = 16384 + 4                   # sni/sni.h SNI_HELLO_MAX
TCPI_DATA_SEGS_OUT = 156                # offset in struct tcp_info (Linux >= 4.6)


def http_head(name, size):
    """A GET whose head is exactly SIZE bytes, ending in CRLFCRLF."""
    start = ("GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: trickle_client\r\n"
             "Connection: close\r\n" % name).encode()
    end = b"\r\n"
    room = size - len(start) - len(end)
    # Fields of about 160 bytes, as many as the parser takes (Host,
    # User-Agent and Connection are three more).
    nfields = max(1, min(HTTP_FIELDS_MAX - 4, room // 160))
    each = room // nfields
    if each < 16:
        raise SystemExit("trickle_client.py: --size %d too small for an HTTP head" % size)
    fields = []
    for i in range(nfields):
        width = each + (room - each * nfields if i == nfields - 1 else 0)
        prefix = b"X-Trickle-%02d: " % i
        fields.append(prefix + b"v" * (width - len(prefix) - 2) + b"\r\n")
    head = start + b"".join(fields) + end
    assert len(head) == size and head.endswith(b"\r\n\r\n")
    return head


def client_hello(name, size):
    """One TLS record holding a ClientHello of exactly SIZE handshake bytes."""
    def vec8(b):
        return struct.pack("!B", len(b)) + b

    def vec16(b):
        return struct.pack("!H", len(b)) + b

    def ext(typ, data):
        return struct.pack("!H", typ) + vec16(data)

    host = name.encode()
    exts = [
        ext(0, vec16(b"\x00" + vec16(host))),                   # server_name
        ext(43, vec8(b"\x03\x04\x03\x03")),                     # supported_versions
        ext(10, vec16(b"\x00\x1d\x00\x17")),                    # supported_groups
        ext(13, vec16(b"\x04\x03\x08\x04\x04\x01")),            # signature_algorithms
        ext(51, vec16(b"\x00\x1d" + vec16(os.urandom(32)))),    # key_share x25519
        ext(16, vec16(vec8(b"http/1.1"))),                      # ALPN
    ]
    ciphers = b"\x13\x01\x13\x02\x13\x03\xc0\x2b\xc0\x2f"
    fixed = (b"\x03\x03" + os.urandom(32) + vec8(os.urandom(32)) + vec16(ciphers)
             + vec8(b"\x00"))
    # body = fixed + u16 extensions length + extensions; handshake = 4 + body
    pad = size - 4 - len(fixed) - 2 - sum(len(e) for e in exts) - 4
    if pad < 0 or size > HELLO_MAX:
        raise SystemExit("trickle_client.py: --size must be %d..%d for a ClientHello" % (
            size - pad, HELLO_MAX))
    exts.append(ext(21, b"\x00" * pad))                         # padding
    body = fixed + vec16(b"".join(exts))
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    assert len(hs) == size
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def judge(proto, reply, closed):
    """(ok, label) for what came back."""
    if proto == "http":
        if reply.startswith(b"HTTP/1.1 403 "):
            return True, "403"
        return False, repr(reply[:40]) if reply else closed
    if len(reply) >= 7 and reply[0] == 0x15:
        return reply[6] == 49, "alert-%d" % reply[6]
    if not reply:
        return True, closed
    return False, repr(reply[:16])


def run_one(i, a, payload, barrier, deadline, out):
    s = None
    try:
        s = socket.create_connection((a.host, a.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        barrier.wait(timeout=30)
        delay = a.delay_us / 1e6
        t = time.monotonic()
        if a.whole:
            s.sendall(payload)
        else:
            for k in range(len(payload)):
                s.send(payload[k:k + 1])
                if delay:
                    # An absolute schedule: a late wake-up does not slow
                    # the whole run down, it shortens the next pause.
                    t += delay
                    now = time.monotonic()
                    if now < t:
                        time.sleep(t - now)
                    if now > deadline:
                        raise TimeoutError("sent %d of %d bytes by the deadline" % (k + 1, len(payload)))
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        segs = struct.unpack_from("=I", info, TCPI_DATA_SEGS_OUT)[0] \
            if len(info) >= TCPI_DATA_SEGS_OUT + 4 else -1
        reply, closed = b"", "closed"
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no end of the answer by the deadline")
            s.settimeout(left)
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                closed = "reset"
                break
            if not d:
                break
            reply += d
            if len(reply) > 65536:
                break
        ok, label = judge(a.proto, reply, closed)
        out[i] = (ok, len(payload), segs, label)
        if not ok:
            print("FAIL %d: answer %s" % (i, label), file=sys.stderr)
    except (OSError, threading.BrokenBarrierError) as e:
        out[i] = (False, 0, 0, type(e).__name__)
        print("FAIL %d: %s" % (i, e), file=sys.stderr)
        try:
            barrier.abort()
        except Exception:
            pass
    finally:
        if s is not None:
            s.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("proto", choices=("http", "tls"))
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--size", type=int, default=16384)
    p.add_argument("--delay-us", type=int, default=1000)
    p.add_argument("--limit", type=float, default=55)
    p.add_argument("--name", default="trickle.test")
    p.add_argument("--whole", action="store_true")
    a = p.parse_args()
    if a.count < 1 or a.count > 1000 or a.delay_us < 0 or a.limit <= 0:
        p.error("--count 1..1000, --delay-us >= 0, --limit > 0")
    if a.proto == "http":
        if a.size > HTTP_HEAD_MAX:
            p.error("--size at most %d for http" % HTTP_HEAD_MAX)
        payload = http_head(a.name, a.size)
    else:
        payload = client_hello(a.name, a.size)

    start = time.monotonic()
    deadline = start + a.limit
    barrier = threading.Barrier(a.count)
    out = [None] * a.count
    threads = [threading.Thread(target=run_one, args=(i, a, payload, barrier, deadline, out),
                                daemon=True) for i in range(a.count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline + 2 - time.monotonic()))
    done = [r for r in out if r is not None]
    ok = sum(1 for r in done if r[0])
    print("RESULT proto=%s conns=%d ok=%d bytes=%d segs=%d secs=%.1f answer=%s" % (
        a.proto, a.count, ok, sum(r[1] for r in done), sum(r[2] for r in done),
        time.monotonic() - start, done[0][3] if done else "none"), flush=True)
    # Daemon threads still stuck in a socket call end with the process.
    sys.exit(0 if ok == a.count else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Hostile HTTP clients and odd origins for tests/hostile/http.sh.

Standard library only (plus hostile.py beside it, for real ClientHellos).
Every loop is bounded in count and in time, and every socket goes to
127.0.0.0/8. Subcommands (argv[1]):

  recorder ADDR:PORT DIR         an origin that answers nothing and records
                                 everything: DIR/accepts gets one line per
                                 accepted connection, DIR/conn-N.bin the bytes
                                 connection N sent, as they arrive
  badorigin ADDR:PORT MODE       an origin that reads a request head, then:
                                 half  "200, Content-Length: 1000" and 500
                                       bytes of body, then FIN
                                 rst   the same, then RST
                                 none  closes without answering
  slowheads GW HEAD N RATE HOLD OUT
                                 N connections (RATE per second) each send
                                 HEAD (python escapes) and then nothing; each
                                 is waited for (at most HOLD s after the
                                 last one left) until the gateway closes it;
                                 OUT gets "connected C failed F closed K
                                 still_open S bytes_received B min_s X max_s Y"
                                 (X, Y: send-to-close times); OUT.started
                                 appears once 200 are open
  raw GW OUT PART [PAUSE PART]...
                                 one connection: send each PART (python
                                 escapes, or @FILE for a file's bytes),
                                 PAUSE seconds between them; then
                                 read until the gateway closes (at most 10 s)
                                 into OUT; prints "eof", "reset" or "timeout"
  responses FILE                 split FILE (what raw saved) into HTTP
                                 responses by their framing; one line each,
                                 "STATUS | BODY" (body without its newline),
                                 then "rest N" (bytes that are no response)
  noread GW HOST PATH PID SECONDS
                                 ask for PATH and never read: after SECONDS
                                 print the bytes queued at the client (twice,
                                 one second apart), egressd's (PID) VmRSS
                                 before and while blocked, then close
                                 (unread bytes: the kernel sends RST)
  client_reset GW HOST PATH N    read N bytes of the answer (a 64 KiB receive
                                 buffer), then RST
  connect PX HOSTPORT MODE [CA]  CONNECT HOSTPORT, read the 200, then:
                                 silence      send nothing; print
                                              "closed after S s, got B bytes"
                                 toolarge     20 KB: a handshake record whose
                                              ClientHello claims 20,000 bytes
                                 junkrecords  20 KB: handshake records of junk
                                 garbage      20 KB of seeded random non-TLS
                                 bytewise     a real ClientHello for the
                                              CONNECT host one byte per write,
                                              then the handshake (verified
                                              with CA) and GET /; prints
                                              "served" or "fail WHY"
                                 For the 20 KB modes prints what came back
                                 after the 200 and how the tunnel ended.
"""
import os
import random
import socket
import ssl
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile  # noqa: E402  (first_flight: real ClientHellos)


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def unescape(s):
    return s.encode().decode("unicode_escape").encode("latin-1")


def serve(address, handler):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(addr(address))
    ls.listen(128)
    n = 0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        c, _ = ls.accept()
        n += 1
        threading.Thread(target=handler, args=(c, n), daemon=True).start()


# ---- origins --------------------------------------------------------------

def cmd_recorder(a):
    address, d = a[0], a[1]
    lock = threading.Lock()

    def handle(c, n):
        with lock, open(os.path.join(d, "accepts"), "a") as f:
            f.write("%d\n" % n)
        c.settimeout(60)
        path = os.path.join(d, "conn-%d.bin" % n)
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                with open(path, "ab") as f:
                    f.write(data)
        except OSError:
            pass
        c.close()

    serve(address, handle)


def cmd_badorigin(a):
    address, mode = a[0], a[1]

    def handle(c, n):
        c.settimeout(30)
        try:
            got = b""
            while b"\r\n\r\n" not in got and len(got) < 65536:
                d = c.recv(65536)
                if not d:
                    break
                got += d
            if mode in ("half", "rst"):
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                          b"Content-Length: 1000\r\n\r\n" + b"h" * 500)
                time.sleep(0.3)
            if mode == "rst":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
        except OSError:
            pass
        c.close()

    serve(address, handle)


# ---- clients ------------------------------------------------------------------

def read_to_end(s, timeout=10, limit=1 << 22):
    """(bytes, "eof" | "reset" | "timeout" | "limit")"""
    s.settimeout(timeout)
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while len(got) < limit:
            if time.monotonic() > deadline:
                return got, "timeout"
            d = s.recv(65536)
            if not d:
                return got, "eof"
            got += d
    except ConnectionResetError:
        return got, "reset"
    except socket.timeout:
        return got, "timeout"
    return got, "limit"


def cmd_slowheads(a):
    import resource
    import selectors
    gw, head, n, rate, hold, outf = a[0], unescape(a[1]), int(a[2]), \
        float(a[3]), float(a[4]), a[5]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    socks, failed, got_bytes, times = {}, 0, 0, []
    started = None
    t0 = time.monotonic()

    def reap(s):
        nonlocal got_bytes
        try:
            d = s.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            d = b""
        if d:
            got_bytes += len(d)
            return
        times.append(time.monotonic() - socks.pop(s))
        sel.unregister(s)
        s.close()

    for i in range(n):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            s = socket.create_connection(addr(gw), 10)
            s.sendall(head)
            socks[s] = time.monotonic()
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        except OSError:
            failed += 1
        if i == min(n, 200) - 1:
            started = open(outf + ".started", "w")
            started.write("started\n")
            started.close()
        for key, _ in sel.select(0):
            reap(key.fileobj)
    deadline = time.monotonic() + hold
    while socks and time.monotonic() < deadline:
        for key, _ in sel.select(0.1):
            reap(key.fileobj)
    with open(outf, "w") as f:
        f.write("connected %d failed %d closed %d still_open %d bytes_received %d "
                "min_s %.2f max_s %.2f\n" % (n - failed, failed, len(times), len(socks),
                                             got_bytes, min(times or [0]), max(times or [0])))
    for s in list(socks):
        s.close()


def cmd_raw(a):
    gw, outf, parts = a[0], a[1], a[2:]
    s = socket.create_connection(addr(gw), 10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for i, p in enumerate(parts):
            if i % 2 == 1:
                time.sleep(float(p))
            elif p.startswith("@"):
                s.sendall(open(p[1:], "rb").read())
            else:
                s.sendall(unescape(p))
    except OSError:
        pass    # closed on us: what it said is read below
    got, how = read_to_end(s)
    open(outf, "wb").write(got)
    print(how)


def split_responses(data):
    """[(status, body)], rest: responses framed by Content-Length or
    chunked; what cannot be framed is the rest."""
    out, off = [], 0
    while True:
        end = data.find(b"\r\n\r\n", off)
        if end < 0:
            break
        head = data[off:end].decode("latin-1").split("\r\n")
        try:
            status = int(head[0].split(" ")[1])
        except (IndexError, ValueError):
            break
        fields = {}
        for h in head[1:]:
            k, _, v = h.partition(":")
            fields[k.strip().lower()] = v.strip()
        p = end + 4
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                e = data.find(b"\r\n", p)
                if e < 0:
                    return out, len(data) - off
                size = int(data[p:e].split(b";")[0], 16)
                p = e + 2
                if size == 0:
                    p = data.find(b"\r\n\r\n", p - 2) + 4
                    break
                body += data[p:p + size]
                p += size + 2
        else:
            n = int(fields.get("content-length", "0"))
            if p + n > len(data):
                break
            body = data[p:p + n]
            p += n
        out.append((status, body))
        off = p
    return out, len(data) - off


def cmd_responses(a):
    resps, rest = split_responses(open(a[0], "rb").read())
    for status, body in resps:
        print("%d | %s" % (status, body.decode("latin-1").rstrip("\n")))
    print("rest %d" % rest)


def vmrss(pid):
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def queued(s):
    import fcntl
    import termios
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def cmd_noread(a):
    gw, host, path, pid, seconds = a[0], a[1], a[2], a[3], float(a[4])
    before = vmrss(pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(10)
    s.connect(addr(gw))
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode())
    time.sleep(seconds)
    q1 = queued(s)
    peak = vmrss(pid)
    time.sleep(1.0)
    q2 = queued(s)
    peak = max(peak, vmrss(pid))
    # Unread bytes in the receive queue: close() sends an RST.
    s.close()
    print("queued %d %d rss_before %d rss_blocked %d" % (q1, q2, before, peak))


def cmd_client_reset(a):
    gw, host, path, n = a[0], a[1], a[2], int(a[3])
    s = socket.socket()
    # A small window, so the answer cannot all fit in the kernel's buffers.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(10)
    s.connect(addr(gw))
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode())
    s.settimeout(10)
    got = b""
    while len(got) < n:
        d = s.recv(min(65536, n - len(got)))
        if not d:
            break
        got += d
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("received %d then reset" % len(got))


def tunnel(px, hostport):
    s = socket.create_connection(addr(px), 10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hostport, hostport)).encode())
    s.settimeout(10)
    got = b""
    while b"\r\n\r\n" not in got and len(got) < 4096:
        d = s.recv(1)   # byte by byte: nothing after the head is taken
        if not d:
            break
        got += d
    return s, got.split(b"\r\n")[0].decode("latin-1")


def tls_over(s, name, ca, hello_bytewise=True, timeout=10):
    obj, inc, out, hello = hostile.first_flight(name, None, ca)
    if hello_bytewise:
        for b in hello:
            s.sendall(bytes([b]))
            time.sleep(0.002)
    else:
        s.sendall(hello)
    s.settimeout(timeout)
    t0 = time.monotonic()
    ok, _, why = hostile.exchange(s, obj, inc, out, t0 + timeout, t0)
    return "served" if ok else "fail " + why


def junk20k(mode):
    rnd = random.Random(20)
    if mode == "toolarge":
        # one handshake record of 16,384 bytes holding a ClientHello header
        # that claims a body of 20,000 bytes, then the rest of the 20 KB
        body = b"\x01" + (20000).to_bytes(3, "big") + rnd.randbytes(16380)
        blob = b"\x16\x03\x01" + struct.pack(">H", len(body)) + body
        return blob + rnd.randbytes(20480 - len(blob))
    if mode == "junkrecords":
        # handshake records whose message is not a ClientHello (type 2)
        blob = b""
        while len(blob) < 20480:
            body = b"\x02" + (1000).to_bytes(3, "big") + rnd.randbytes(996)
            blob += b"\x16\x03\x01" + struct.pack(">H", len(body)) + body
        return blob[:20480]
    blob = bytearray(rnd.randbytes(20480))
    blob[0] = 0x00      # neither a TLS record nor an HTTP method
    return bytes(blob)


def cmd_connect(a):
    px, hostport, mode = a[0], a[1], a[2]
    ca = a[3] if len(a) > 3 else None
    s, status = tunnel(px, hostport)
    if status != "HTTP/1.1 200 Connection established":
        print("no tunnel: %r" % status)
        sys.exit(1)
    t0 = time.monotonic()
    if mode == "silence":
        got, how = read_to_end(s, 20)
        print("%s after %.1f s, got %d bytes" % (how, time.monotonic() - t0, len(got)))
    elif mode == "bytewise":
        print(tls_over(s, hostport.rsplit(":", 1)[0], ca))
    else:
        try:
            s.sendall(junk20k(mode))
            got, how = read_to_end(s, 10)
        except ConnectionResetError:
            got, how = b"", "reset"
        print("got %s then %s after %.1f s" % (got.hex() or "-", how, time.monotonic() - t0))
    s.close()


def main():
    cmds = {"recorder": cmd_recorder, "badorigin": cmd_badorigin,
            "slowheads": cmd_slowheads, "raw": cmd_raw, "responses": cmd_responses,
            "noread": cmd_noread, "client_reset": cmd_client_reset,
            "connect": cmd_connect}
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Hostile and odd clients and upstreams for the tests in tests/hostile/.

Standard library only. Every loop is bounded in count and in time, and
every socket goes to 127.0.0.0/8. Subcommands (argv[1]):

  hello NAME OUT [ALPN_BODY]     write a real ClientHello (python ssl, as on
                                 the wire) for SNI NAME to OUT; with
                                 ALPN_BODY, pad the ALPN list so that the
                                 handshake body is exactly that many bytes
  handshake GW NAME CA MODE      one TLS handshake + GET through the gateway,
                                 verifying the certificate; MODE is normal,
                                 bytewise (first flight one byte per write) or
                                 recordsN (first flight re-framed into N
                                 records); prints "ok MS" (connect to first
                                 byte) or "fail WHY"; exit 0 when served
  probe GW NAME CA N GAP OUT     N sequential handshakes (GAP s apart); writes
                                 one line per client: "ok MS" or "fail WHY"
  slow GW HELLO N RATE HOLD OUT  N connections sending the first half of
                                 HELLO, RATE per second, then silent; waits
                                 (at most HOLD s) for each to be closed by the
                                 gateway; writes a summary to OUT
  flood GW TEMPLATE N THREADS OUT [NAMES]
                                 N connections, each sending TEMPLATE with its
                                 name dXXXXXXX.denied.test made unique; counts
                                 those that got the access_denied alert; with
                                 NAMES, appends each such name as it is seen
  upstreams PORT IP=MODE...      weird upstream servers (talk, reset, stall,
                                 noread) on IP:PORT, until killed
  ... and the small clients used by odd_clients.sh (see main()).
"""
import os
import random
import socket
import ssl
import struct
import sys
import threading
import time

ALERT_DENIED = b"\x15\x03\x03\x00\x02\x02\x31"
ALERT_DECODE = b"\x15\x03\x03\x00\x02\x02\x32"


def gw_addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def first_flight(name, alpn=None, ca=None):
    """A real ClientHello from python's ssl (OpenSSL), and the SSLObject
    that made it, so the handshake can go on over any socket."""
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not ca:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return obj, inc, out, out.read()


def hello_body_len(raw):
    """Length of the handshake body of the ClientHello in raw records."""
    payload, off = b"", 0
    while off + 5 <= len(raw):
        rlen = int.from_bytes(raw[off + 3:off + 5], "big")
        payload += raw[off + 5:off + 5 + rlen]
        off += 5 + rlen
    return int.from_bytes(payload[1:4], "big")


def alpn_for_body(name, body, ca=None):
    """An ALPN list that makes python's ClientHello body exactly body bytes.
    (OpenSSL pads small hellos, so the size is found by measuring.)"""
    protos = ["p" * 255 for _ in range(8)]
    for _ in range(200):
        got = hello_body_len(first_flight(name, protos, ca)[3])
        extra = body - got
        if extra == 0:
            return protos
        if extra > 0:
            if len(protos[-1]) + extra <= 255:
                protos[-1] += "p" * extra
            elif extra >= 2:
                protos.append("p" * min(255, extra - 1))
            else:
                protos[-1] = protos[-1][:-1]
                protos.append("pp")
        else:
            while extra < 0 and protos:
                cut = min(len(protos[-1]) - 1, -extra)
                if cut <= 0:
                    extra += 1 + len(protos.pop())
                    continue
                protos[-1] = protos[-1][:-cut]
                extra += cut
    raise SystemExit("cannot size the hello to %d bytes" % body)


def reframe(raw, nrec):
    """The same handshake bytes in nrec TLS records (transcript unchanged)."""
    payload, off, ver = b"", 0, raw[1:3]
    while off + 5 <= len(raw):
        rlen = int.from_bytes(raw[off + 3:off + 5], "big")
        payload += raw[off + 5:off + 5 + rlen]
        off += 5 + rlen
    out, per = b"", -(-len(payload) // nrec)
    cuts = [payload[i:i + per] for i in range(0, len(payload), per)]
    # make it exactly nrec records: split the longest until there are enough
    while len(cuts) < nrec:
        i = max(range(len(cuts)), key=lambda k: len(cuts[k]))
        cuts[i:i + 1] = [cuts[i][:len(cuts[i]) // 2], cuts[i][len(cuts[i]) // 2:]]
    for c in cuts:
        out += b"\x16" + ver + struct.pack(">H", len(c)) + c
    return out


def exchange(s, obj, inc, out, deadline, t0):
    """After the ClientHello went out on s: finish the handshake through
    the memory BIOs, ask GET / and read s_server's page. (ok, ms from t0
    to the first byte back, detail). Shared with http_hostile.py."""
    first = None
    while True:
        if time.monotonic() > deadline:
            return False, first, "timeout"
        data = s.recv(65536)
        if first is None:
            first = (time.monotonic() - t0) * 1000.0
        if not data:
            return False, first, "closed during handshake"
        inc.write(data)
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as e:
            return False, first, "ssl: %s" % e
        finally:
            pending = out.read()
            if pending:
                s.sendall(pending)
    obj.write(b"GET / HTTP/1.0\r\n\r\n")
    s.sendall(out.read())
    body = b""
    while time.monotonic() < deadline:
        data = s.recv(65536)
        if not data:
            break
        inc.write(data)
        try:
            while True:
                chunk = obj.read(65536)
                if not chunk:
                    break
                body += chunk
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
        except ssl.SSLError as e:
            if b"s_server" in body:
                break
            return False, first, "ssl read: %s" % e
        if b"</HTML>" in body.upper() or b"</BODY>" in body.upper():
            drain(s, obj, inc, min(deadline, time.monotonic() + 2.0))
            break
    if b"s_server" not in body:
        return False, first, "no s_server page (%d bytes)" % len(body)
    return True, first, "served"


def drain(s, obj, inc, deadline):
    """Read what the server sends after its page, up to its close_notify
    (s_server's, right behind the page) or its EOF: a client that closes
    with bytes unread makes its kernel answer with a reset, and the gateway
    rightly logs client_reset. Through a relay without Nagle's coalescing
    the close_notify arrives as the server wrote it, after the page."""
    while time.monotonic() < deadline:
        try:
            while True:
                if not obj.read(65536):
                    return      # the close_notify
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:
            return
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = s.recv(65536)
        except OSError:
            return
        if not data:
            return
        inc.write(data)


def handshake(gw, name, ca, mode="normal", alpn=None, timeout=10.0):
    """(ok, ms_to_first_byte, detail). Full handshake through the gateway,
    certificate verified, then GET / and s_server's page."""
    obj, inc, out, hello = first_flight(name, alpn, ca)
    t0 = time.monotonic()
    try:
        s = socket.create_connection(gw_addr(gw), timeout)
    except OSError as e:
        return False, None, "connect: %s" % e
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if mode == "bytewise":
            for b in hello:
                s.sendall(bytes([b]))
                time.sleep(0.002)
        elif mode.startswith("records"):
            s.sendall(reframe(hello, int(mode[7:])))
        else:
            s.sendall(hello)
        return exchange(s, obj, inc, out, time.monotonic() + timeout, t0)
    except OSError as e:
        return False, None, "os: %s" % e
    finally:
        s.close()


def cmd_hello(a):
    name, out = a[0], a[1]
    alpn = alpn_for_body(name, int(a[2])) if len(a) > 2 else None
    raw = first_flight(name, alpn)[3]
    open(out, "wb").write(raw)
    print(len(raw), hello_body_len(raw))


def cmd_handshake(a):
    gw, name, ca, mode = a[:4]
    alpn = alpn_for_body(name, int(a[4]), ca) if len(a) > 4 else None
    ok, ms, why = handshake(gw, name, ca, mode, alpn)
    print(("ok %.3f" % ms) if ok else ("fail %s" % why))
    sys.exit(0 if ok else 1)


def cmd_probe(a):
    gw, name, ca, n, gap, outf = a[0], a[1], a[2], int(a[3]), float(a[4]), a[5]
    with open(outf, "w") as f:
        for _ in range(n):
            ok, ms, why = handshake(gw, name, ca)
            f.write(("ok %.3f\n" % ms) if ok else ("fail %s\n" % why))
            f.flush()
            time.sleep(gap)


def raise_nofile():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cmd_slow(a):
    """N half-hellos, paced; each socket must then be closed by the gateway
    (EOF or reset) having sent nothing."""
    import selectors
    gw, hello, n, rate, hold, outf = a[0], open(a[1], "rb").read(), int(a[2]), \
        float(a[3]), float(a[4]), a[5]
    half = hello[:len(hello) // 2]
    raise_nofile()
    sel = selectors.DefaultSelector()
    socks, failed, got_bytes, closed = {}, 0, 0, 0
    t0 = time.monotonic()
    started = open(outf + ".started", "w")
    for i in range(n):
        # pace: connection i leaves at t0 + i / rate
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            s = socket.create_connection(gw_addr(gw), 10)
            s.sendall(half)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            socks[s] = time.monotonic()
        except OSError:
            failed += 1
        if i == min(n, 200) - 1:
            started.write("started\n")
            started.flush()
        # drain closes that already happened, so fds are given back
        for key, _ in sel.select(0):
            closed, got_bytes = reap(sel, key.fileobj, socks, closed, got_bytes)
    sent_all = time.monotonic()
    deadline = sent_all + hold
    while socks and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            closed, got_bytes = reap(sel, key.fileobj, socks, closed, got_bytes)
    open(outf, "w").write("connected %d failed %d closed %d still_open %d bytes_received %d "
                          "send_seconds %.1f\n" % (n - failed, failed, closed, len(socks),
                                                   got_bytes, sent_all - t0))
    for s in list(socks):
        s.close()


def reap(sel, s, socks, closed, got_bytes):
    try:
        data = s.recv(4096)
    except BlockingIOError:
        return closed, got_bytes
    except OSError:
        data = b""
    if data:
        return closed, got_bytes + len(data)
    sel.unregister(s)
    del socks[s]
    s.close()
    return closed + 1, got_bytes


def cmd_flood(a):
    """N denied connections over THREADS threads, each from its own source
    address (127.1.T.x) so ports never run short; a connection counts as
    denied when it read the 7-byte access_denied alert and then EOF."""
    gw, template, n, nthreads, outf = a[0], open(a[1], "rb").read(), int(a[2]), \
        int(a[3]), a[4]
    names_f = open(a[5], "a") if len(a) > 5 else None
    marker = b"d0000000.denied.test"
    at = template.index(marker)
    lock = threading.Lock()
    stats = {"denied": 0, "other": 0, "errors": 0}
    addr = gw_addr(gw)
    deadline = time.monotonic() + float(os.environ.get("FLOOD_SECONDS", "60"))
    stop_file = os.environ.get("FLOOD_STOP_FILE")

    def worker(t):
        for i in range(t, n, nthreads):
            if time.monotonic() > deadline or (stop_file and os.path.exists(stop_file)):
                return
            name = b"d%07d.denied.test" % i
            hello = template[:at] + name + template[at + len(marker):]
            src = ("127.1.%d.%d" % (t, 1 + (i // nthreads) % 250), 0)
            got = b""
            try:
                s = socket.socket()
                s.settimeout(float(os.environ.get("FLOOD_TIMEOUT", "10")))
                s.bind(src)
                s.connect(addr)
                s.sendall(hello)
                while len(got) < 64:
                    d = s.recv(64)
                    if not d:
                        break
                    got += d
                s.close()
            except OSError:
                with lock:
                    stats["errors"] += 1
                if got[:7] != ALERT_DENIED:
                    continue
            if got == ALERT_DENIED:
                with lock:
                    stats["denied"] += 1
                    if names_f:
                        names_f.write(name.decode() + "\n")
                        names_f.flush()
            else:
                with lock:
                    stats["other"] += 1

    ths = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    t0 = time.monotonic()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    open(outf, "w").write("denied %d other %d errors %d seconds %.1f\n" % (
        stats["denied"], stats["other"], stats["errors"], time.monotonic() - t0))


def cmd_upstreams(a):
    """Weird upstreams, one per IP, same port:
    talk    send 1000 bytes at once, then read and discard until EOF, close
    reset   read once, send 100 bytes, wait 0.3 s, close with RST
    stall   accept and do nothing at all (never read, never write, never close)
    noread  the same as stall (named for what the test does to it)"""
    port = int(a[0])
    held = []

    def serve(ip, mode):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((ip, port))
        ls.listen(64)
        while True:
            c, _ = ls.accept()
            if mode in ("stall", "noread"):
                c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                held.append(c)
                continue
            threading.Thread(target=handle, args=(c, mode), daemon=True).start()

    def handle(c, mode):
        c.settimeout(30)
        try:
            if mode == "talk":
                c.sendall(b"T" * 1000)
                while c.recv(65536):
                    pass
            elif mode == "reset":
                c.recv(65536)
                c.sendall(b"R" * 100)
                time.sleep(0.3)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif mode == "resetnow":
                # the reset right behind the bytes: the gateway's read
                # finds both (the bytes first, then the error)
                c.recv(65536)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.sendall(b"R" * 100)
        except OSError:
            pass
        c.close()

    for spec in a[1:]:
        ip, mode = spec.split("=")
        threading.Thread(target=serve, args=(ip, mode), daemon=True).start()
    time.sleep(600)


def connect_hello(gw, name):
    s = socket.create_connection(gw_addr(gw), 10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(first_flight(name)[3])
    return s


def recv_exactly(s, n, timeout=10):
    s.settimeout(timeout)
    got = b""
    while len(got) < n:
        d = s.recv(n - len(got))
        if not d:
            break
        got += d
    return got


def recv_to_end(s, timeout=10, limit=1 << 20):
    """Everything until EOF: (bytes, "eof" | "reset" | "timeout")."""
    s.settimeout(timeout)
    got = b""
    try:
        while len(got) < limit:
            d = s.recv(65536)
            if not d:
                return got, "eof"
            got += d
    except ConnectionResetError:
        return got, "reset"
    except socket.timeout:
        return got, "timeout"
    return got, "limit"


def cmd_client_reset(a):
    """Relay to the talking upstream, read its 1000 bytes, then RST."""
    s = connect_hello(a[0], a[1])
    got = recv_exactly(s, 1000)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("received %d then reset" % len(got))


def cmd_upstream_reset(a):
    s = connect_hello(a[0], a[1])
    got, how = recv_to_end(s)
    print("received %d then %s" % (len(got), how))


def cmd_stalled(a):
    """Upstream never answers: wait (bounded) for the gateway, or close."""
    s = connect_hello(a[0], a[1])
    if a[2] == "wait":
        t0 = time.monotonic()
        got, how = recv_to_end(s, 20)
        print("received %d then %s after %.1f s" % (len(got), how, time.monotonic() - t0))
    else:
        t0 = time.monotonic()
        s.close()
        print("closed in %.3f s" % (time.monotonic() - t0))


def cmd_pusher(a):
    """Push up to LIMIT bytes to an upstream that never reads, for at most
    SECONDS; print how much the kernel took, then wait for the end."""
    s = connect_hello(a[0], a[1])
    limit, seconds, flag = int(a[2]), float(a[3]), a[4]
    s.setblocking(False)
    # What a TLS client sends: application_data records (the gateway reads
    # the records that follow a hello until the server has answered).
    chunk = (b"\x17\x03\x03\x40\x00" + b"\0" * 16384) * 4
    sent, t0 = 0, time.monotonic()
    last_progress = t0
    while sent < limit and time.monotonic() - t0 < seconds:
        try:
            # a partial send resumes mid-chunk, so records stay whole
            n = s.send(chunk[sent % len(chunk):])
            sent += n
            last_progress = time.monotonic()
        except BlockingIOError:
            # blocked for a full second: backpressure reached the client
            if time.monotonic() - last_progress > 1.0:
                break
            time.sleep(0.01)
    open(flag, "w").write("pushed %d\n" % sent)
    s.setblocking(True)
    got, how = recv_to_end(s, 20)
    print("pushed %d blocked %s then %s" % (sent, "yes" if sent < limit else "no", how))


def cmd_garbage(a):
    """Send each blob (hex per line in FILE) on its own connection; print
    per blob what came back: hex of the bytes, and eof/reset."""
    gw = a[0]
    for line in open(a[1]):
        blob = bytes.fromhex(line.strip())
        s = socket.create_connection(gw_addr(gw), 10)
        s.sendall(blob)
        got, how = recv_to_end(s, 10, 4096)
        s.close()
        print("%s %s" % (got.hex() or "-", how))


def cmd_make_garbage(a):
    """COUNT seeded random blobs and the reason each must get."""
    rnd = random.Random(int(a[0]))
    for i in range(int(a[1])):
        blob = bytearray(rnd.randbytes(600))
        if i % 2 == 0:
            if blob[0] == 0x16:
                blob[0] = 0x17
            reason = "not_tls"
        else:
            # a TLS handshake record whose content is junk: header says
            # handshake, TLS 1.x, a sane length, but the message is not a
            # ClientHello (type != 1)
            blob[0:5] = b"\x16\x03\x01\x02\x00"
            if blob[5] == 1:
                blob[5] = 2
            reason = "malformed_hello"
        print(blob.hex(), reason)


def main():
    cmds = {"hello": cmd_hello, "handshake": cmd_handshake, "probe": cmd_probe,
            "slow": cmd_slow, "flood": cmd_flood, "upstreams": cmd_upstreams,
            "client_reset": cmd_client_reset, "upstream_reset": cmd_upstream_reset,
            "stalled": cmd_stalled, "pusher": cmd_pusher, "garbage": cmd_garbage,
            "make_garbage": cmd_make_garbage}
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()

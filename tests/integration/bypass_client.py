#!/usr/bin/env python3
"""Raw clients for the bypass tests: a pod that tries its luck.

bypass_client.py tls ADDR:PORT [OPTIONS]
    A TLS client. The ClientHello is always the one python's OpenSSL
    builds; --hello changes it on the wire for the shapes a library would
    never send.
      --src IP             bind the client socket to IP first
      --proxy SRC:SPORT    send "PROXY TCP4 SRC 127.0.0.1 SPORT 443\\r\\n" first
      --connect HOST:PORT  send a CONNECT first (to a connect listener);
                           anything but 200 ends it: "http STATUS BODY"
      --pipeline           (with --connect and a raw --hello) the CONNECT
                           and the hello in one write, before the 200
      --sni NAME           the server name; none when not given
      --ca FILE            verify the server with this CA (and the name)
      --hello KIND         real   a whole handshake, then GET / (default)
                           asis   the real hello, sent as is, not finished
                           two:A,B   server_name lists A, then B
                           type1:A   server_name lists A as name_type 1,
                                     then the --sni name as host_name
                           ech    the real hello plus an
                                  encrypted_client_hello (0xfe0d) extension
                           retry:B   a TLS 1.3 hello for --sni with no key
                                     share, so that the server asks again
                                     (HelloRetryRequest); the second hello
                                     names B. "server_hello" only when the
                                     second hello is answered with one
                           retry-ahead:B   the same, both hellos in one
                                     write, before the server answers
                           late:B    the same two hellos, the second 0.3 s
                                     after the first, to an origin that
                                     never answers: the gateway has
                                     started relaying; prints "sent N"
                                     (bytes sent) when nothing comes back
                           retry-soon:B    the same, the second hello in
                                     a write of its own right behind the
                                     first: it reaches the gateway after
                                     the first, before the server answers
      --hold SECS          (real) after the handshake send one byte every
                           200 ms and read its echo, for at most SECS;
                           prints "echo N" as it goes
    Prints one last line: "reached BODY-LINE", "server_hello" (a hello
    sent raw got one back: it reached a TLS server), "alert NAME" (the
    alert description, e.g. access_denied, decode_error), "http STATUS
    BODY", "closed", "reset", "timeout", "error TEXT"; with --hold,
    "closed after N echoes" or "alive after N echoes".

bypass_client.py http ADDR:PORT REQUEST [--src IP] [--proxy SRC:SPORT]
    Sends REQUEST (python escapes: \\r\\n) and prints "http STATUS BODY" (the
    last line of the body), or "closed"/"reset"/"timeout".
"""
import argparse
import os
import socket
import ssl
import struct
import sys
import time

ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
          40: "handshake_failure", 47: "illegal_parameter",
          49: "access_denied", 50: "decode_error", 70: "protocol_version",
          80: "internal_error", 112: "unrecognized_name"}

# encrypted_client_hello, outer: type 0, HPKE suite (KDF 1, AEAD 1),
# config_id, enc<0..2^16-1>, payload<1..2^16-1>. Any body will do: the
# gateway cannot decrypt it and must not need to.
ECH_BODY = bytes([0, 0, 1, 0, 1, 0x42, 0, 4, 1, 2, 3, 4, 0, 2, 9, 9])


def addr(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def connect(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.src:
        s.bind((args.src, 0))
    s.settimeout(5)
    s.connect(addr(args.gw))
    s.settimeout(10)
    if args.proxy:
        src, sport = args.proxy.rsplit(":", 1)
        s.sendall(f"PROXY TCP4 {src} 127.0.0.1 {sport} 443\r\n".encode())
    return s


def read_all(s, limit=10.0):
    data = b""
    end = time.time() + limit
    try:
        while time.time() < end:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except ConnectionResetError:
        if not data:
            return None
    except socket.timeout:
        pass
    return data


def http_outcome(data):
    if data is None:
        return "reset"
    if not data:
        return "closed"
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0].split(b" ")
    code = status[1].decode("latin-1") if len(status) > 1 else "?"
    last = body.decode("latin-1").strip().split("\n")[-1] if body.strip() else ""
    return f"http {code} {last}".rstrip()


def do_connect(s, target, after=b""):
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode() + after)
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 16384:
        b = s.recv(1)
        if not b:
            break
        head += b
    status = head.split(b"\r\n")[0].split(b" ")
    if len(status) > 1 and status[1] == b"200":
        return None
    rest = read_all(s, 5) or b""
    return http_outcome(head + rest)


def make_hello(ctx, sni):
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(i, o, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return o.read()


def server_name_ext(entries):
    lst = b"".join(struct.pack("!BH", t, len(n)) + n for t, n in entries)
    return struct.pack("!H", len(lst)) + lst


def rewrite(hello, kind, sni):
    """Take python's ClientHello record apart and put it back together with
    another server_name list or one more extension; lengths redone."""
    assert hello[0] == 0x16 and hello[5] == 1, "not a ClientHello record"
    body = hello[9:9 + int.from_bytes(hello[6:9], "big")]
    p = 34
    p += 1 + body[p]                                    # session id
    p += 2 + int.from_bytes(body[p:p + 2], "big")       # cipher suites
    p += 1 + body[p]                                    # compression
    fixed, exts = body[:p], []
    q, end = p + 2, p + 2 + int.from_bytes(body[p:p + 2], "big")
    while q < end:
        t, n = struct.unpack("!HH", body[q:q + 4])
        exts.append((t, body[q + 4:q + 4 + n]))
        q += 4 + n
    if kind.startswith("two:"):
        a, b = kind[4:].split(",")
        sn = server_name_ext([(0, a.encode()), (0, b.encode())])
        exts = [(t, sn if t == 0 else d) for t, d in exts]
    elif kind.startswith("type1:"):
        sn = server_name_ext([(1, kind[6:].encode()), (0, sni.encode())])
        exts = [(t, sn if t == 0 else d) for t, d in exts]
    elif kind == "ech":
        # before pre_shared_key (41), which must stay last
        k = next((j for j, (t, _) in enumerate(exts) if t == 41), len(exts))
        exts.insert(k, (0xfe0d, ECH_BODY))
    elif kind != "asis":
        raise SystemExit(f"unknown --hello {kind}")
    blob = b"".join(struct.pack("!HH", t, len(d)) + d for t, d in exts)
    body = fixed + struct.pack("!H", len(blob)) + blob
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return hello[:3] + struct.pack("!H", len(hs)) + hs


# RFC 8446 section 4.1.3: the random of a HelloRetryRequest.
HRR_RANDOM = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


def v8(d):
    return bytes([len(d)]) + d


def v16(d):
    return struct.pack("!H", len(d)) + d


def tls13_hello(sni, share, sid):
    """A TLS 1.3 ClientHello record: x25519 only, with this key share
    (none: the server must ask again)."""
    ex = [(0, v16(b"\x00" + v16(sni.encode()))),
          (10, v16(struct.pack("!H", 0x001d))),
          (13, v16(struct.pack("!HHH", 0x0403, 0x0804, 0x0401))),
          (43, v8(b"\x03\x04")), (45, v8(b"\x01")),
          (51, v16(struct.pack("!HH", 0x001d, 32) + share if share else b""))]
    blob = b"".join(struct.pack("!HH", t, len(d)) + d for t, d in ex)
    body = (b"\x03\x03" + os.urandom(32) + v8(sid) + v16(b"\x13\x01") +
            v8(b"\x00") + v16(blob))
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + v16(hs)


def read_record(s):
    head = b""
    while len(head) < 5:
        b = s.recv(5 - len(head))
        if not b:
            return None
        head += b
    n = struct.unpack("!H", head[3:5])[0]
    body = b""
    while len(body) < n:
        b = s.recv(n - len(body))
        if not b:
            return None
        body += b
    return head[0], body


def retry_main(s, sni, second, kind):
    """CH1 for sni without a key share; CH2 (after a change_cipher_spec,
    as middlebox compatibility sends it) for second: after the server's
    HelloRetryRequest (retry), with CH1 (retry-ahead), or in a write of its
    own right behind CH1 (retry-soon)."""
    sid = os.urandom(32)
    ch1 = tls13_hello(sni, b"", sid)
    ch2 = b"\x14\x03\x03\x00\x01\x01" + tls13_hello(second, os.urandom(32), sid)
    ahead = kind != "retry"
    try:
        if kind == "late":
            s.sendall(ch1)
            time.sleep(0.3)
            s.sendall(ch2)
            s.settimeout(1)
            try:
                return "closed" if not s.recv(100) else "answered"
            except socket.timeout:
                return "sent %d" % (len(ch1) + len(ch2))
        if kind == "retry-soon":
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(ch1)
            s.sendall(ch2)
        else:
            s.sendall(ch1 + (ch2 if ahead else b""))
        r = read_record(s)
        if r is None:
            return "closed"
        if r[0] == 0x15:
            return "alert " + ALERTS.get(r[1][1], str(r[1][1]))
        if r[0] != 0x16 or r[1][:1] != b"\x02" or r[1][6:38] != HRR_RANDOM:
            return "error no HelloRetryRequest"
        if not ahead:
            s.sendall(ch2)
        r = read_record(s)
        while r is not None and r[0] == 0x14:        # a compatibility CCS
            r = read_record(s)
        if r is None:
            return "closed"
        if r[0] == 0x15:
            return "alert " + ALERTS.get(r[1][1], str(r[1][1]))
        if r[0] == 0x16 and r[1][:1] == b"\x02":
            return "server_hello"
        return "error other record %d" % r[0]
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"


def raw_outcome(s):
    data = b""
    try:
        while len(data) < 7:
            b = s.recv(4096)
            if not b:
                break
            data += b
            if data[0] == 0x16:
                return "server_hello"
    except ConnectionResetError:
        return "reset" if not data else "error reset after %r" % data[:16]
    except socket.timeout:
        return "timeout" if not data else "error timeout after %r" % data[:16]
    if not data:
        return "closed"
    if data[0] == 0x15 and len(data) >= 7:
        return "alert " + ALERTS.get(data[6], str(data[6]))
    if data[0] == 0x16:
        return "server_hello"
    return "error other bytes %r" % data[:16]


def tls_main(args):
    try:
        if args.ca and args.sni:
            ctx = ssl.create_default_context(cafile=args.ca)
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        raw = None
        if args.hello.startswith(("retry:", "retry-ahead:", "retry-soon:", "late:")):
            kind, _, second = args.hello.partition(":")
            s = connect(args)
            if args.connect:
                refused = do_connect(s, args.connect)
                if refused:
                    return refused
            return retry_main(s, args.sni, second, kind)
        if args.hello != "real":
            raw = rewrite(make_hello(ctx, args.sni), args.hello, args.sni)
        ahead = raw if args.pipeline and raw is not None else b""
        s = connect(args)
        if args.connect:
            refused = do_connect(s, args.connect, ahead)
            if refused:
                return refused
        if raw is not None:
            if not ahead:
                s.sendall(raw)
            return raw_outcome(s)
        t = ctx.wrap_socket(s, server_hostname=args.sni)
        if args.hold:
            return hold(t, args.hold)
        t.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" %
                  (args.sni or "none").encode())
        data = read_all(t)
        if data and b"hello from" in data:
            return "reached " + data.decode("latin-1").strip().split("\n")[-1]
        return "error no page: %r" % (data[:80] if data else data)
    except ssl.SSLError as e:
        r = e.reason or ""
        for pre in ("TLSV1_ALERT_", "SSLV3_ALERT_", "TLSV13_ALERT_"):
            if r.startswith(pre):
                return "alert " + r[len(pre):].lower()
        if isinstance(e, ssl.SSLEOFError) or "EOF" in str(e):
            return "closed"
        return f"error tls {r or e}"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return f"error {e}"


def hold(t, secs):
    n = 0
    end = time.time() + secs
    t.settimeout(3)
    try:
        while time.time() < end:
            t.sendall(b"p")
            b = t.recv(1)
            if not b:
                return f"closed after {n} echoes"
            n += 1
            print(f"echo {n}", flush=True)
            time.sleep(0.2)
    except (OSError, ssl.SSLError):
        return f"closed after {n} echoes"
    return f"alive after {n} echoes"


def http_main(args):
    try:
        s = connect(args)
        s.sendall(args.request.encode().decode("unicode_escape").encode("latin-1"))
        return http_outcome(read_all(s))
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        return "reset"
    except OSError as e:
        return f"error {e}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["tls", "http"])
    ap.add_argument("gw")
    ap.add_argument("request", nargs="?")
    ap.add_argument("--src")
    ap.add_argument("--proxy")
    ap.add_argument("--connect")
    ap.add_argument("--pipeline", action="store_true")
    ap.add_argument("--sni")
    ap.add_argument("--ca")
    ap.add_argument("--hello", default="real")
    ap.add_argument("--hold", type=float)
    args = ap.parse_args()
    out = tls_main(args) if args.mode == "tls" else http_main(args)
    print(out, flush=True)


if __name__ == "__main__":
    main()

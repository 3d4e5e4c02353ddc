#!/usr/bin/env python3
"""A recording origin for the bypass tests: it writes down everything that
reaches it, so a test can assert that a refused attempt reached nothing.

bypass_origin.py RECORD LISTEN...
bypass_origin.py --query RECORD MARK

LISTEN is one of
  tls:ADDR:PORT:CERTDIR   TLS. The certificate is CERTDIR/NAME.pem (and
                          .key) for the SNI NAME when that file exists,
                          else CERTDIR/default.pem. After the handshake, an
                          HTTP request head is answered with
                          "hello from SNI at ADDR:PORT" and the connection
                          closed; any other bytes are echoed back until the
                          client closes (a long-lived tunnel).
  http:ADDR:PORT          plain HTTP: every request head is answered with
                          "hello from HOST at ADDR:PORT", then closed.
ADDR is IPv4 or [IPv6]. Every accepted TCP connection gets an id C and the
RECORD gets, appended as they happen (one write each, so lines never mix):
  accept C LOCAL PEER         when accepted, before any byte
  bytes C N                   each read of N raw TCP bytes (TLS records
                              counted as they came off the wire)
  hello C NAME                TLS: a ClientHello named NAME (each one: a
                              server that asked again sees a second)
  sni C NAME                  TLS: the handshake finished; NAME or None
  head C REPR                 an HTTP request head (python repr of bytes)
  close C                     the connection is over
"listening" is printed once every socket is bound. The server exits by
itself after 10 minutes, in case nobody stops it.

--query RECORD MARK prints what connections accepted after line MARK of
RECORD got, as one line:
  conns=N bytes=B at=LOCAL,... sni=NAME,... heads=N hostless=N hosts=H,...
  hellos=NAME,...
(a connection accepted before MARK is not counted, even when its later
lines come after MARK), so a test compares one attempt's effect.
"""
import ast
import os
import socket
import ssl
import sys
import threading
import time

LOCK = threading.Lock()
COUNT = [0]
METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ",
           b"PATCH ", b"CONNECT ", b"TRACE ")


def record(path, text):
    with LOCK, open(path, "a", encoding="utf-8") as f:
        f.write(text + "\n")


def split_addr(text):
    if text.startswith("["):
        host, _, rest = text[1:].partition("]:")
        fam = socket.AF_INET6
    else:
        host, _, rest = text.partition(":")
        fam = socket.AF_INET
    port, _, rest = rest.partition(":")
    return fam, host, int(port), rest


def fmt(host, port, fam):
    return f"[{host}]:{port}" if fam == socket.AF_INET6 else f"{host}:{port}"


def host_of(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            return value.strip().decode("latin-1")
    return None


def answer(label, local):
    body = f"hello from {label} at {local}\n".encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
            str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


class Raw:
    """The accepted socket, every read counted in the record."""

    def __init__(self, sock, path, cid):
        self.sock, self.path, self.cid = sock, path, cid

    def recv(self):
        data = self.sock.recv(65536)
        if data:
            record(self.path, f"bytes {self.cid} {len(data)}")
        return data


def serve_http(raw, local):
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        data = raw.recv()
        if not data:
            return
        head += data
    head = head.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    record(raw.path, f"head {raw.cid} {head!r}")
    raw.sock.sendall(answer(host_of(head), local))


def serve_tls(raw, local, contexts, default):
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    names = {}

    def on_sni(obj, name, _ctx):
        names["sni"] = name
        record(raw.path, f"hello {raw.cid} {name}")
        if name in contexts:
            obj.context = contexts[name]

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*default)
    ctx.sni_callback = on_sni
    obj = ctx.wrap_bio(inc, out, server_side=True)

    def flush():
        data = out.read()
        if data:
            raw.sock.sendall(data)

    def feed():
        data = raw.recv()
        if not data:
            inc.write_eof()
            return False
        inc.write(data)
        return True

    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            if not feed():
                return
    flush()
    record(raw.path, f"sni {raw.cid} {names.get('sni')}")
    app = b""
    while True:
        try:
            data = obj.read(65536)
        except ssl.SSLWantReadError:
            flush()
            if not feed():
                return
            continue
        except ssl.SSLZeroReturnError:
            return
        if not data:
            return
        app += data
        if app.startswith(METHODS) or any(m.startswith(app) for m in METHODS):
            if b"\r\n\r\n" not in app:
                continue
            head = app.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            record(raw.path, f"head {raw.cid} {head!r}")
            obj.write(answer(names.get("sni"), local))
            flush()
            try:
                obj.unwrap()
            except (ssl.SSLError, OSError):
                pass
            flush()
            return
        # Anything else is echoed: a tunnel kept open by a test.
        obj.write(app)
        app = b""
        flush()


def conn_thread(conn, path, cid, kind, local, contexts, default):
    raw = Raw(conn, path, cid)
    try:
        conn.settimeout(30)
        if kind == "http":
            serve_http(raw, local)
        else:
            serve_tls(raw, local, contexts, default)
    except (OSError, ssl.SSLError, ValueError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass
        record(path, f"close {cid}")


def accept_loop(lsock, path, kind, local, contexts, default):
    while True:
        try:
            conn, peer = lsock.accept()
        except OSError:
            return
        with LOCK:
            COUNT[0] += 1
            cid = COUNT[0]
        me = conn.getsockname()
        record(path, f"accept {cid} {fmt(me[0], me[1], conn.family)} "
                     f"{fmt(peer[0], peer[1], conn.family)}")
        threading.Thread(target=conn_thread, daemon=True,
                         args=(conn, path, cid, kind, local, contexts,
                               default)).start()


def load_contexts(certdir):
    contexts = {}
    for f in os.listdir(certdir):
        if f.endswith(".pem") and f != "ca.pem":
            name = f[:-4]
            key = os.path.join(certdir, name + ".key")
            if os.path.exists(key):
                c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                c.load_cert_chain(os.path.join(certdir, f), key)
                contexts[name] = c
    return contexts


def query(path, mark):
    conns, nbytes = set(), 0
    at, snis, hosts, hellos = [], [], [], []
    heads = hostless = 0
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for n, line in enumerate(lines, 1):
        parts = line.split(" ", 2)
        if len(parts) < 2:
            continue
        kind, cid = parts[0], parts[1]
        if kind == "accept":
            if n > mark:
                conns.add(cid)
                at.append(parts[2].split(" ")[0])
            continue
        if cid not in conns:
            continue
        if kind == "bytes":
            nbytes += int(parts[2])
        elif kind == "sni":
            snis.append(parts[2])
        elif kind == "hello":
            hellos.append(parts[2])
        elif kind == "head":
            heads += 1
            h = host_of(ast.literal_eval(parts[2]))
            if h is None:
                hostless += 1
            else:
                hosts.append(h)
    print(f"conns={len(conns)} bytes={nbytes} at={','.join(at) or '-'} "
          f"sni={','.join(snis) or '-'} heads={heads} hostless={hostless} "
          f"hosts={','.join(hosts) or '-'} hellos={','.join(hellos) or '-'}")


def main(argv):
    if len(argv) == 4 and argv[1] == "--query":
        query(argv[2], int(argv[3]))
        return
    path = argv[1]
    threads = []
    for spec in argv[2:]:
        kind, _, rest = spec.partition(":")
        fam, host, port, rest = split_addr(rest)
        local = fmt(host, port, fam)
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(64)
        contexts, default = {}, None
        if kind == "tls":
            contexts = load_contexts(rest)
            default = (os.path.join(rest, "default.pem"),
                       os.path.join(rest, "default.key"))
        elif kind != "http":
            sys.exit(f"unknown listen kind {kind!r}")
        threads.append(threading.Thread(
            target=accept_loop, daemon=True,
            args=(s, path, kind, local, contexts, default)))
    open(path, "a").close()
    for t in threads:
        t.start()
    print("listening", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(sys.argv)

#!/usr/bin/env python3
"""A server for the network-namespace tests that records who reached it.

server.py RECORD LISTEN...

LISTEN is one of
  tls:ADDR:PORT:CERT:KEY:LABEL  TLS; answers any HTTP request with
                                "hello from LABEL\\n" and closes
  http:ADDR:PORT:LABEL          plain HTTP; answers the same, and the
                                request line and Host go to RECORD as
                                "http <peer ip> <request line> host=<Host>"
  tcp:ADDR:PORT                 accepts and closes
  ttcp:ADDR:PORT                the same on an IP_TRANSPARENT socket, as
                                TPROXY needs (the recorded local address is
                                then the one the client aimed at)
  udp:ADDR:PORT                 receives datagrams
ADDR is an IPv4 address or an IPv6 one in brackets. Each TCP connection is
recorded when it is accepted, before any TLS, as one line in RECORD:
  tcp <peer ip> <local addr>:<local port>
(the accepted socket's own local address),
and each datagram as "udp <peer ip> <local addr>:<local port>". So a
connection that never finishes its handshake is counted all the same.
"listening" is printed on stdout once every socket is bound.
The server exits by itself after 10 minutes, in case nobody stops it.
"""
import socket
import ssl
import sys
import threading
import time

LOCK = threading.Lock()


def record(path, kind, peer, local):
    with LOCK, open(path, "a", encoding="ascii") as f:
        f.write(f"{kind} {peer} {local}\n")


def split_addr(text):
    """'[::1]:443:rest' or '1.2.3.4:443:rest' -> (family, host, port, rest)"""
    if text.startswith("["):
        host, _, text = text[1:].partition("]:")
        fam = socket.AF_INET6
    else:
        host, _, text = text.partition(":")
        fam = socket.AF_INET
    port, _, rest = text.partition(":")
    return fam, host, int(port), rest


def fmt_local(host, port, fam):
    return f"[{host}]:{port}" if fam == socket.AF_INET6 else f"{host}:{port}"


def serve_tls(conn, ctx, label, path=None, peer=None):
    try:
        conn.settimeout(10)
        with (conn if ctx == "plain" else ctx.wrap_socket(conn, server_side=True)) as s:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    return
                head += chunk
            if ctx == "plain":
                lines = head.decode("latin-1").split("\r\n")
                host = [h.split(":", 1)[1].strip() for h in lines[1:]
                        if h.lower().startswith("host:")]
                with LOCK, open(path, "a") as f:
                    f.write(f"http {peer} {lines[0]} host={host[0] if host else ''}\n")
            body = f"hello from {label}\n".encode()
            s.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                      b"Content-Length: " + str(len(body)).encode() +
                      b"\r\nConnection: close\r\n\r\n" + body)
    except (OSError, ssl.SSLError):
        pass
    finally:
        conn.close()


def tcp_loop(lsock, path, ctx, label):
    while True:
        try:
            conn, peer = lsock.accept()
        except OSError:
            return
        me = conn.getsockname()
        record(path, "tcp", peer[0], fmt_local(me[0], me[1], conn.family))
        if ctx is None:
            conn.close()
            continue
        threading.Thread(target=serve_tls, args=(conn, ctx, label, path, peer[0]),
                         daemon=True).start()


def udp_loop(sock, path, local):
    while True:
        try:
            _, peer = sock.recvfrom(65536)
        except OSError:
            return
        record(path, "udp", peer[0], local)


def main(argv):
    path = argv[1]
    threads = []
    for spec in argv[2:]:
        kind, _, rest = spec.partition(":")
        fam, host, port, rest = split_addr(rest)
        local = fmt_local(host, port, fam)
        if kind == "udp":
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.bind((host, port))
            threads.append(threading.Thread(target=udp_loop, args=(s, path, local),
                                            daemon=True))
            continue
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == "ttcp":
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, 75, 1)   # IPV6_TRANSPARENT
            else:
                s.setsockopt(socket.SOL_IP, 19, 1)         # IP_TRANSPARENT
        s.bind((host, port))
        s.listen(64)
        ctx = label = None
        if kind == "tls":
            cert, key, label = rest.split(":", 2)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
        elif kind == "http":
            ctx, label = "plain", rest
        elif kind not in ("tcp", "ttcp"):
            sys.exit(f"unknown listen kind {kind!r}")
        threads.append(threading.Thread(target=tcp_loop,
                                        args=(s, path, ctx, label),
                                        daemon=True))
    for t in threads:
        t.start()
    print("listening", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(sys.argv)

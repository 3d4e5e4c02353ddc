#!/usr/bin/env python3
"""A keep-alive HTTP/1.1 origin server for the HTTP listener tests.

usage: origin.py [--tls CERT KEY] --log FILE ADDR:PORT

Every request is answered on the same connection (unless the client says
Connection: close) and logged to FILE as one line:

  conn=N n=K METHOD TARGET host=HOST body=LEN sni=NAME

N numbers the TCP connections the server accepted, K the requests on that
connection: a test tells from them whether the gateway reused an upstream
connection or opened a new one. Request bodies are read by Content-Length
or chunked framing (body=LEN is what arrived). Paths:

  /chunked          a chunked response ("chunk one\\n", "chunk two\\n")
  /status/NNN       status NNN; with ?to=URL a Location: URL
  /big/N            N bytes of 'x' with a Content-Length
  /bye              200, then the server closes the connection without
                    having said so (as a keep-alive timeout would)
  /extra            200, and in the same write, behind the body its
                    Content-Length frames, "INJECTED by HOST\n" (a server
                    that frames otherwise than it says)
  anything else     200, "HOST METHOD TARGET n=K\\n"
"""
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
COUNT = [0]


def read_line(f):
    line = f.readline(65537)
    if not line:
        raise EOFError
    return line


def read_body(f, headers):
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(read_line(f).split(b";")[0].strip(), 16)
            if size == 0:
                while read_line(f) not in (b"\r\n", b"\n"):
                    pass
                return body
            body += f.read(size)
            f.read(2)
    n = int(headers.get("content-length", "0") or 0)
    return f.read(n) if n else b""


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        with LOCK:
            COUNT[0] += 1
            conn = COUNT[0]
        sni = getattr(self.request, "egressd_sni", None)
        k = 0
        f = self.rfile
        while True:
            try:
                line = read_line(f)
            except (EOFError, ConnectionError, ssl.SSLError, OSError):
                return
            parts = line.decode("latin-1").rstrip("\r\n").split(" ")
            if len(parts) != 3:
                return
            method, target, version = parts
            headers = {}
            while True:
                h = read_line(f).decode("latin-1").rstrip("\r\n")
                if h == "":
                    break
                name, _, value = h.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = read_body(f, headers)
            k += 1
            host = headers.get("host", "")
            with open(self.server.log, "a") as lf:
                lf.write(f"conn={conn} n={k} {method} {target} host={host} "
                         f"body={len(body)} sni={sni}\n")
            close = headers.get("connection", "").lower() == "close"
            self.answer(method, target, host, k, close)
            if close:
                return
            if target == "/bye":
                time.sleep(0.2)
                with open(self.server.log, "a") as lf:
                    lf.write(f"conn={conn} closed by the server\n")
                return

    def answer(self, method, target, host, k, close):
        path, _, query = target.partition("?")
        extra = []
        status, reason = 200, "OK"
        chunks = None
        if path == "/chunked":
            chunks = [b"chunk one\n", b"chunk two\n"]
        elif path.startswith("/status/"):
            status = int(path.split("/")[2])
            reason = "Moved" if 300 <= status < 400 else "Status"
            to = urllib.parse.parse_qs(query).get("to")
            if to:
                extra.append("Location: " + to[0])
        if path.startswith("/big/"):
            body = b"x" * int(path.split("/")[2])
        else:
            body = f"{host} {method} {target} n={k}\n".encode()
        head = [f"HTTP/1.1 {status} {reason}", "Content-Type: text/plain"]
        head += extra
        if close:
            head.append("Connection: close")
        if chunks is not None:
            head.append("Transfer-Encoding: chunked")
        else:
            head.append(f"Content-Length: {len(body)}")
        out = ("\r\n".join(head) + "\r\n\r\n").encode()
        if method != "HEAD":
            if chunks is not None:
                for c in chunks:
                    out += b"%x\r\n%s\r\n" % (len(c), c)
                out += b"0\r\n\r\n"
            else:
                out += body
        if path == "/extra":
            out += f"INJECTED by {host}\n".encode()
        self.wfile.write(out)
        self.wfile.flush()


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    args = sys.argv[1:]
    tls = log = None
    while args and args[0].startswith("--"):
        if args[0] == "--tls":
            tls, args = (args[1], args[2]), args[3:]
        elif args[0] == "--log":
            log, args = args[1], args[2:]
        else:
            sys.exit("unknown option " + args[0])
    if not args or log is None:
        sys.exit(__doc__)
    addr, port = args[0].rsplit(":", 1)
    srv = Server((addr.strip("[]"), int(port)), Handler)
    srv.log = log
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        names = {}

        def on_sni(sock, name, _ctx):
            names[id(sock)] = name

        ctx.sni_callback = on_sni
        plain = srv.get_request

        def get_request():
            sock, peer = plain()
            s = ctx.wrap_socket(sock, server_side=True,
                                do_handshake_on_connect=False)
            try:
                s.settimeout(10)
                s.do_handshake()
                s.settimeout(None)
            except (ssl.SSLError, OSError):
                s.close()
                raise OSError("handshake failed")
            s.egressd_sni = names.pop(id(s), None)
            return s, peer

        srv.get_request = get_request
    srv.serve_forever()


if __name__ == "__main__":
    main()

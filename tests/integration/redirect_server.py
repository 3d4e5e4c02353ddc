#!/usr/bin/env python3
"""A small HTTP (or HTTPS) server answering by Host and path, for trace.sh.

usage: redirect_server.py [--tls CERT KEY] [--log FILE] ADDR:PORT ROUTE...

ROUTE is "HOST/PATH STATUS" or "HOST/PATH STATUS LOCATION" (one
argument, space-separated; a path's query may hold "="): a request whose
Host (port dropped) and path (query included) match gets STATUS, with
Location: LOCATION when given, sent as it is (relative references too).
Anything else gets 404. Every request is logged to FILE as one line:
"METHOD TARGET host=HOST ua=USER-AGENT connection=CONNECTION".
"""
import http.server
import ssl
import sys


def main():
    args = sys.argv[1:]
    tls = None
    log = None
    while args and args[0].startswith("--"):
        if args[0] == "--tls":
            tls = (args[1], args[2])
            args = args[3:]
        elif args[0] == "--log":
            log = args[1]
            args = args[2:]
        else:
            sys.exit("unknown option " + args[0])
    if not args:
        sys.exit(__doc__)
    addr, port = args[0].rsplit(":", 1)
    routes = {}
    for r in args[1:]:
        parts = r.split(" ", 2)
        key = parts[0]
        routes[key] = (int(parts[1]), parts[2] if len(parts) > 2 else None)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, body):
            host = (self.headers.get("Host") or "").lower()
            if host.startswith("["):
                host = host[: host.find("]") + 1]
            else:
                host = host.split(":")[0]
            if log:
                with open(log, "a") as f:
                    f.write("%s %s host=%s ua=%s connection=%s\n" % (
                        self.command, self.path, self.headers.get("Host"),
                        self.headers.get("User-Agent"),
                        self.headers.get("Connection")))
            status, location = routes.get(host + self.path, (404, None))
            text = ("%d for %s%s\n" % (status, host, self.path)).encode()
            self.send_response(status)
            if location is not None:
                self.send_header("Location", location)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.send_header("Connection", "close")
            self.end_headers()
            if body:
                self.wfile.write(text)
            self.close_connection = True

        def do_GET(self):
            self.answer(True)

        def do_HEAD(self):
            self.answer(False)

        def log_message(self, fmt, *a):
            pass

    srv = http.server.ThreadingHTTPServer((addr, int(port)), Handler)
    srv.daemon_threads = True
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        # Handshake in the handler thread, not in accept: a client
        # that fails verification must not stall the server.
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
    srv.serve_forever()


if __name__ == "__main__":
    main()

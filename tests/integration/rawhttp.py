"""HTTP/1.1 by hand over a plain socket, for tests that must choose every
byte a client sends (pipelining, half-closes, requests inside a tunnel).

response(sock)         one response, framed by its Content-Length:
                       "STATUS LASTLINE" (LASTLINE: the body's last line,
                       stripped; empty without a body), or "eof" when the
                       connection ends before a head, or "timeout"
get(sock, path, host)  sends "GET path" with that Host; its response()
"""
import socket


def response(s):
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            d = s.recv(4096)
            if not d:
                return "eof"
            buf += d
        head, body = buf.split(b"\r\n\r\n", 1)
        n = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        while len(body) < n:
            d = s.recv(4096)
            if not d:
                break
            body += d
        last = body.decode().strip().split("\n")[-1] if body.strip() else ""
        return "%s %s" % (head.split(b" ")[1].decode(), last)
    except socket.timeout:
        return "timeout"


def get(s, path, host):
    s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host))
    return response(s)

#!/usr/bin/env python3
"""Writes the hand-built seeds of tests/fuzz/corpus/http_request and
http_response (everything but real-*.bin): valid heads at the limits, every
error reason of http/head.c, and the request-smuggling shapes. Run by hand:

    python3 tests/fuzz/corpus/http_request/make-seeds.py
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
RESP = os.path.join(os.path.dirname(HERE), "http_response")
H = b"GET / HTTP/1.1\r\nHost: a.example\r\n"


def pad_to(total, head=H):
    while total - len(head) - 2 > 0:
        room = total - len(head) - 2
        line = min(room, 1000)
        if room - line and room - line < 10:
            line = room - 10
        head += b"X-Pad: " + b"v" * (line - 9) + b"\r\n"
    return head + b"\r\n"


def fields(n):
    return b"GET / HTTP/1.1\r\nHost: a.example\r\n" + b"".join(
        b"X-%d: %d\r\n" % (i, i) for i in range(1, n)) + b"\r\n"


REQ = {
    "ok-minimal": H + b"\r\n",
    "ok-http10-nohost": b"GET /x HTTP/1.0\r\n\r\n",
    "ok-host-forms": b"GET / HTTP/1.1\r\nHost: EXAMPLE.com.:8080\r\n\r\n",
    "ok-host-ipv6": b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    "ok-host-ipv4": b"GET / HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n",
    "ok-absolute-https": b"GET https://a.example:8443/x?y HTTP/1.1\r\nHost: a.example:8443\r\n\r\n",
    "ok-connect": b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n\x16\x03\x01",
    "ok-options-asterisk": b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "ok-chunked-expect-upgrade": H + b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
    b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "ok-pipelined": H + b"Content-Length: 0\r\n\r\n" + H + b"\r\n",
    "limit-head-16384": pad_to(16384),
    "limit-head-16385": pad_to(16385),
    "limit-fields-100": fields(100),
    "limit-fields-101": fields(101),
    "err-bare-lf": b"GET / HTTP/1.1\nHost: a\n\n",
    "err-bare-cr": H + b"X: a\rb\r\n\r\n",
    "err-tls": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "err-leading-crlf": b"\r\n" + H + b"\r\n",
    "err-http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "err-target-fragment": b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
    "err-obs-fold": H + b"X: 1\r\n 2\r\n\r\n",
    "err-space-before-colon": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n"
    b"Content-Length: 3\r\n\r\nabc",
    "err-cl-te": H + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "err-te-cl": H + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
    "err-double-cl": H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "ok-same-cl-twice": H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "err-cl-list": H + b"Content-Length: 5, 5\r\n\r\n",
    "err-te-chunked-gzip": H + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    "err-te-gzip-chunked": H + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
    "err-te-http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "err-dup-host": H + b"Host: b.example\r\n\r\n",
    "err-no-host": b"GET / HTTP/1.1\r\n\r\n",
    "err-host-differs": b"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
    "err-connect-host-differs": b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:8443\r\n\r\n",
    "err-userinfo": b"GET http://a.example@b.example/ HTTP/1.1\r\n\r\n",
    "err-scheme": b"GET ftp://a.example/ HTTP/1.1\r\n\r\n",
    "err-connect-noport": b"CONNECT a.example HTTP/1.1\r\n\r\n",
    "err-host-port-0": b"GET / HTTP/1.1\r\nHost: a:0\r\n\r\n",
    "err-host-127-1": b"GET / HTTP/1.1\r\nHost: 127.1\r\n\r\n",
    "err-host-zone": b"GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n",
    "err-nul-value": H + b"X: a\0b\r\n\r\n",
}

RSP = {
    "ok-200-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "ok-204-noreason": b"HTTP/1.1 204\r\n\r\n",
    "ok-301-location": b"HTTP/1.1 301 Moved\r\nLocation: \t/new?a=b \r\n\r\n",
    "ok-chunked-close": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
    "ok-100-then-200": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    "limit-head-16384": pad_to(16384, b"HTTP/1.1 200 OK\r\n"),
    "limit-head-16385": pad_to(16385, b"HTTP/1.1 200 OK\r\n"),
    "err-status-600": b"HTTP/1.1 600 X\r\n\r\n",
    "err-http2": b"HTTP/2 200\r\n\r\n",
    "err-dup-location": b"HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /b\r\n\r\n",
    "err-cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "err-bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
    "err-obs-fold": b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
}

for d, seeds in ((HERE, REQ), (RESP, RSP)):
    for name, data in seeds.items():
        with open(os.path.join(d, name + ".bin"), "wb") as f:
            f.write(data)

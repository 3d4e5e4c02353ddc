#!/usr/bin/env python3
"""Writes the hand-built seeds of this corpus (every *.bin not starting with
"haproxy-"): valid headers at the limits, truncations, and one file per
error reason. Run by hand from anywhere: python3 make-seeds.py [OUTDIR].
The haproxy-*.bin files come from capture-haproxy.sh instead."""
import os, struct, sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
SIG = b"\r\n\r\n\x00\r\nQUIT\n"

def v2(ver_cmd, fam, block, length=None):
    n = len(block) if length is None else length
    return SIG + bytes([ver_cmd, fam]) + struct.pack(">H", n) + block

def tlv(t, v):
    return bytes([t]) + struct.pack(">H", len(v)) + v

A4 = bytes([192, 0, 2, 1, 198, 51, 100, 7]) + struct.pack(">HH", 51234, 443)
A6 = (bytes.fromhex("20010db8000000000000000000000001") +
      bytes.fromhex("20010db8ffff00000000000000000002") + struct.pack(">HH", 65535, 0))
V6MAX = ":".join(["ffff"] * 8)

seeds = {
    # valid, v1
    "v1-tcp4-max": b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
    "v1-tcp6-max": f"PROXY TCP6 {V6MAX} {V6MAX} 65535 65535\r\n".encode(),
    "v1-unknown-short": b"PROXY UNKNOWN\r\nGET / HTTP/1.1\r\n\r\n",
    "v1-unknown-107": f"PROXY UNKNOWN {V6MAX} {V6MAX} 65535 65535\r\n".encode(),
    "v1-tcp4-port0-payload-v1": b"PROXY TCP4 10.0.0.1 10.0.0.2 0 80\r\nPROXY TCP4 1.1.1.1 2.2.2.2 1 2\r\n",
    "v1-tcp6-v4mapped": b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::1 1 2\r\n",
    # valid, v2
    "v2-tcp4-noop-tlvs": v2(0x21, 0x11, A4 + tlv(4, b"") + tlv(4, b"\0" * 7) + tlv(0xe0, b"x")),
    "v2-tcp6-authority": v2(0x21, 0x21, A6 + tlv(2, b"api.example.com")) + b"\x16\x03\x01",
    "v2-local-unix-block": v2(0x20, 0x31, b"\0" * 216),
    "v2-local-garbage-fam": v2(0x20, 0x7f, b"\xff" * 5),
    "v2-proxy-unspec-block": v2(0x21, 0x00, b"abcde"),
    "v2-tcp4-max-536": v2(0x21, 0x11, A4 + tlv(0x30, b"n" * (520 - 12 - 3))),
    # truncated (NEED_MORE)
    "trunc-v1-prefix": b"PROX",
    "trunc-v1-no-crlf": b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 8",
    "trunc-v1-cr-only": b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r",
    "trunc-v2-sig": SIG[:7],
    "trunc-v2-header": SIG + b"\x21\x11\x00",
    "trunc-v2-block": v2(0x21, 0x21, A6)[:40],
    # errors
    "err-garbage-http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "err-garbage-tls": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "err-v1-lowercase": b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    "err-v1-protocol": b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
    "err-v1-unknownx": b"PROXY UNKNOWNX\r\n",
    "err-v1-lone-lf": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
    "err-v1-cr-no-lf": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n",
    "err-v1-too-long": b"PROXY UNKNOWN " + b"f" * 100 + b"\r\n",
    "err-v1-double-space": b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
    "err-v1-trailing-space": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
    "err-v1-leading-zero-addr": b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",
    "err-v1-family-mismatch": b"PROXY TCP4 ::1 ::1 1 2\r\n",
    "err-v1-port-65536": b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
    "err-v1-port-leading-zero": b"PROXY TCP6 ::1 ::1 01 2\r\n",
    "err-v1-port-sign": b"PROXY TCP6 ::1 ::1 +1 2\r\n",
    "err-v2-sig": SIG[:4] + b"\x01" + SIG[5:] + b"\x21\x11\x00\x0c" + A4,
    "err-v2-version1": v2(0x11, 0x11, A4),
    "err-v2-command2": v2(0x22, 0x11, A4),
    "err-v2-udp4": v2(0x21, 0x12, A4),
    "err-v2-unix-stream": v2(0x21, 0x31, b"\0" * 216),
    "err-v2-too-long-521": v2(0x21, 0x11, A4 + b"\0" * 509),
    "err-v2-len-ffff": v2(0x21, 0x11, b"", length=0xffff),
    "err-v2-tcp4-short": v2(0x21, 0x11, A4[:11]),
    "err-v2-tcp6-short": v2(0x21, 0x21, A6[:35]),
    "err-v2-tlv-overrun": v2(0x21, 0x11, A4 + b"\x04\x00\x05abcd"),
    "err-v2-tlv-partial-header": v2(0x21, 0x21, A6 + tlv(1, b"h2") + b"\x04\x00"),
}
for name, data in seeds.items():
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(data)
print(len(seeds), "seeds written to", out)

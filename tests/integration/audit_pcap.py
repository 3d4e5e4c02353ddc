#!/usr/bin/env python3
"""Clients and hand-made captures for tests/integration/audit.sh.

Standard library only; every socket goes to 127.0.0.0/8 and every wait is
bounded. Subcommands (argv[1]):

  segmented HOST PORT NAME N   connect, send a real ClientHello for NAME in
                               N pieces (TCP_NODELAY, 50 ms apart); prints
                               the local port; closes without a handshake
  pipelined HOST PORT NAME...  one HTTP/1.1 connection carrying one GET per
                               NAME (Host: NAME), sent at once
  garbage HOST PORT            connect, send a line that is not TLS or HTTP
  tunnel_http HOST PORT AUTH NAME
                               through the proxy at HOST PORT, CONNECT AUTH
                               (host:port); after its answer, one plain GET
                               with Host: NAME inside the tunnel
  dnsq PORT NAME TYPE          one DNS query (TYPE A or AAAA) to 127.0.0.1
  synth DIR                    write hand-made captures to DIR (see synth()
                               and synth_tunnel())
"""
import socket
import ssl
import struct
import sys
import time


def first_flight(name):
    """A real ClientHello from python's ssl (OpenSSL), as on the wire."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    # name None: no server_name extension at all.
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def connect(host, port):
    s = socket.create_connection((host, int(port)), 5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def linger_close(s):
    """Wait (bounded) for the peer to answer or close, then close."""
    s.settimeout(1.0)
    try:
        s.recv(65536)
    except OSError:
        pass
    s.close()


def cmd_segmented(a):
    host, port, name, n = a[0], a[1], a[2], int(a[3])
    hello = first_flight(name)
    s = connect(host, port)
    print(s.getsockname()[1], flush=True)
    per = -(-len(hello) // n)
    for i in range(0, len(hello), per):
        s.sendall(hello[i:i + per])
        time.sleep(0.05)
    linger_close(s)


def cmd_pipelined(a):
    host, port, names = a[0], a[1], a[2:]
    s = connect(host, port)
    req = b""
    for n in names:
        req += b"GET / HTTP/1.1\r\nHost: " + n.encode() + b"\r\nUser-Agent: audit\r\n\r\n"
    s.sendall(req)
    linger_close(s)


def cmd_garbage(a):
    s = connect(a[0], a[1])
    s.sendall(b"\x00\x01hello, this is not TLS\r\n")
    linger_close(s)


def cmd_tunnel_http(a):
    host, port, auth, name = a[0], a[1], a[2].encode(), a[3].encode()
    s = connect(host, port)
    s.sendall(b"CONNECT " + auth + b" HTTP/1.1\r\nHost: " + auth + b"\r\n\r\n")
    s.settimeout(5)
    head = b""
    for _ in range(50):
        try:
            b = s.recv(4096)
        except OSError:
            break
        head += b
        if not b or b"\r\n\r\n" in head:
            break
    s.sendall(b"GET / HTTP/1.1\r\nHost: " + name + b"\r\n\r\n")
    linger_close(s)


def dns_query(name, qtype, qid=0x1234):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, 1)


def cmd_dnsq(a):
    port, name, qtype = int(a[0]), a[1], {"A": 1, "AAAA": 28}[a[2]]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(dns_query(name, qtype), ("127.0.0.1", port))
    try:
        s.recvfrom(512)
    except OSError:
        pass


# ---- hand-made captures ---------------------------------------------------

def csum(b):
    if len(b) % 2:
        b += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ip4(src, dst, proto, payload, ident=1, frag=0):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag,
                    64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ip6(src, dst, proto, payload, hbh=False):
    ext = b""
    nh = proto
    if hbh:
        # Hop-by-hop options: next header, length 0 (8 bytes), PadN.
        ext = bytes([proto, 0, 1, 4, 0, 0, 0, 0])
        nh = 0
    body = ext + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(body), nh, 64,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + body


def tcp(sport, dport, seq, flags, payload=b"", ack=0):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags,
                       65535, 0, 0) + payload


SYN, ACK, PSH, SYNACK = 0x02, 0x10, 0x08, 0x12


class Pcap:
    def __init__(self, path, linktype):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144,
                                 linktype))
        self.t = 1795000000.0           # 2026-11-18T09:46:40Z

    def add(self, frame, caplen=None):
        self.t += 0.001
        sec = int(self.t)
        usec = int(round((self.t - sec) * 1e6))
        data = frame if caplen is None else frame[:caplen]
        self.f.write(struct.pack("<IIII", sec, usec, len(data), len(frame)))
        self.f.write(data)

    def close(self):
        self.f.close()


def synth(a):
    d = a[0]
    cli, srv = "127.0.0.21", "127.0.0.22"

    # raw.pcap (LINKTYPE_RAW): reassembly by sequence number.
    p = Pcap(d + "/raw.pcap", 101)
    # 1. ooo.test: SYN, then the hello in 4 pieces sent 2,0,3,1 with a
    #    retransmission of 0 and a piece overlapping 1 and 2.
    h = first_flight("ooo.test")
    isn = 0xfffffff0          # the sequence numbers wrap mid-hello
    p.add(ip4(cli, srv, 6, tcp(40001, 443, isn, SYN)))
    p.add(ip4(srv, cli, 6, tcp(443, 40001, 9000, SYNACK, ack=isn + 1)))
    q = len(h) // 4
    cuts = [(0, q), (q, 2 * q), (2 * q, 3 * q), (3 * q, len(h))]
    for i in (2, 0, 0, 3):
        s, e = cuts[i]
        p.add(ip4(cli, srv, 6, tcp(40001, 443, (isn + 1 + s) & 0xffffffff,
                                   ACK | PSH, h[s:e])))
    s, e = q + 5, 2 * q + 5
    p.add(ip4(cli, srv, 6, tcp(40001, 443, (isn + 1 + s) & 0xffffffff,
                               ACK | PSH, h[s:e])))
    s, e = cuts[1]
    p.add(ip4(cli, srv, 6, tcp(40001, 443, (isn + 1 + s) & 0xffffffff,
                               ACK | PSH, h[s:e])))
    # 2. nosyn.test: no handshake captured; the server's bytes come first
    #    (they do not start a hello), then the client's hello.
    h = first_flight("nosyn.test")
    p.add(ip4(srv, cli, 6, tcp(443, 40002, 5000, ACK | PSH, b"\x17\x03\x03\x00\x02hi")))
    p.add(ip4(cli, srv, 6, tcp(40002, 443, 7000, ACK | PSH, h)))
    # 3. v6.test over IPv6 with a hop-by-hop header.
    h = first_flight("v6.test")
    p.add(ip6("::1", "::1", 6, tcp(40003, 443, 100, SYN), hbh=True))
    p.add(ip6("::1", "::1", 6, tcp(40003, 443, 101, ACK | PSH, h), hbh=True))
    # 4. A fragmented datagram: two fragments, counted and ignored.
    p.add(ip4(cli, srv, 17, b"\x00" * 16, ident=7, frag=0x2000))
    p.add(ip4(cli, srv, 17, b"\x00" * 16, ident=7, frag=2))
    # 5. half a hello, then the capture ends: not judged (incomplete).
    h = first_flight("half.test")
    p.add(ip4(cli, srv, 6, tcp(40005, 443, 300, SYN)))
    p.add(ip4(cli, srv, 6, tcp(40005, 443, 301, ACK | PSH, h[:len(h) // 2])))
    # 6. A handshake that claims 64 KiB: hello_too_large.
    p.add(ip4(cli, srv, 6, tcp(40006, 443, 400, SYN)))
    p.add(ip4(cli, srv, 6, tcp(40006, 443, 401, ACK | PSH,
                               b"\x16\x03\x01\x00\x04\x01\x00\xff\xff")))
    # 7. A hello in 1-byte records until it passes the daemon's buffer:
    #    hello_too_large after SNI_PEEK_MAX bytes.
    big = b""
    body = b"\x01\x00\x40\x00" + b"\x03\x03" + b"\x00" * 200
    for b in body:
        big += b"\x16\x03\x01\x00\x01" + bytes([b])
    big = big * 20
    p.add(ip4(cli, srv, 6, tcp(40007, 443, 500, SYN)))
    seq = 501
    for i in range(0, len(big), 1400):
        p.add(ip4(cli, srv, 6, tcp(40007, 443, seq, ACK, big[i:i + 1400])))
        seq += len(big[i:i + 1400])
    # 8. A SYN and nothing else: not judged (no payload).
    p.add(ip4(cli, srv, 6, tcp(40008, 443, 600, SYN)))
    # 9. Mid-connection bytes only, which look like the start of a
    #    request line: not judged (midstream), not a denial.
    p.add(ip4(cli, srv, 6, tcp(40009, 80, 700, ACK | PSH, b"abc def")))
    p.add(ip4(srv, cli, 6, tcp(80, 40009, 800, ACK | PSH, b"xyz")))
    p.close()

    # vlan.pcap: Ethernet with an 802.1Q tag.
    p = Pcap(d + "/vlan.pcap", 1)
    eth = b"\x02" * 6 + b"\x04" * 6 + b"\x81\x00\x00\x2a\x08\x00"
    h = first_flight("vlan.test")
    p.add(eth + ip4(cli, srv, 6, tcp(40010, 443, 10, SYN)))
    p.add(eth + ip4(cli, srv, 6, tcp(40010, 443, 11, ACK | PSH, h)))
    p.close()

    # null.pcap: BSD loopback (DLT_NULL), family in host byte order.
    p = Pcap(d + "/null.pcap", 0)
    h = first_flight("null.test")
    p.add(struct.pack("=I", 2) + ip4(cli, srv, 6, tcp(40011, 443, 10, SYN)))
    p.add(struct.pack("=I", 2) + ip4(cli, srv, 6, tcp(40011, 443, 11, ACK | PSH, h)))
    p.close()

    # wifi.pcap: a link type audit does not read (IEEE 802.11).
    p = Pcap(d + "/wifi.pcap", 105)
    p.add(b"\x00" * 24)
    p.close()

    synth_tunnel(d)


def conversation(p, cli, srv, sport, dport, parts):
    """A TCP connection: handshake, then parts in order, each a client
    payload (bytes, one segment) or ("s", bytes) from the server."""
    cseq, sseq = 1000, 5000
    p.add(ip4(cli, srv, 6, tcp(sport, dport, cseq, SYN)))
    p.add(ip4(srv, cli, 6, tcp(dport, sport, sseq, SYNACK, ack=cseq + 1)))
    cseq, sseq = cseq + 1, sseq + 1
    for part in parts:
        if isinstance(part, tuple):
            p.add(ip4(srv, cli, 6, tcp(dport, sport, sseq, ACK | PSH, part[1],
                                       ack=cseq)))
            sseq += len(part[1])
        else:
            p.add(ip4(cli, srv, 6, tcp(sport, dport, cseq, ACK | PSH, part,
                                       ack=sseq)))
            cseq += len(part)


def synth_tunnel(d):
    """tunnel.pcap: CONNECT tunnels (to port 3128, a proxy) and keep-alive
    connections with request bodies (to port 80)."""
    cli, srv = "127.0.0.21", "127.0.0.23"
    ok = b"HTTP/1.1 200 Connection established\r\n\r\n"

    def connect(host):
        return (b"CONNECT " + host + b" HTTP/1.1\r\nHost: " + host +
                b"\r\n\r\n")

    def get(host, extra=b""):
        return b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n" + extra + b"\r\n"

    def post_chunked(host):
        return (b"POST /up HTTP/1.1\r\nHost: " + host +
                b"\r\nTransfer-Encoding: chunked\r\n\r\n")

    p = Pcap(d + "/tunnel.pcap", 101)
    c = connect(b"ok.test:443")
    conns = [
        # 1. The inner SNI is the CONNECT host: allowed.
        [c, ("s", ok), first_flight("ok.test")],
        # 2. Another SNI inside: sni_mismatch (evil.test).
        [c, ("s", ok), first_flight("evil.test")],
        # 3. Plain HTTP inside for another Host: sni_mismatch.
        [c, ("s", ok), get(b"other.test")],
        # 4. Plain HTTP: the first request is for the tunnel's host, the
        #    second names the host with another port: sni_mismatch.
        [c, ("s", ok), get(b"ok.test"), ("s", b"HTTP/1.1 204 No\r\n\r\n"),
         get(b"ok.test:8080")],
        # 5. Plain HTTP for the tunnel's host and port: allowed.
        [c, ("s", ok), get(b"ok.test:443") + get(b"ok.test")],
        # 6. Neither TLS nor HTTP inside: sni_mismatch.
        [c, ("s", ok), b"\x00\x01 not a hello\r\n"],
        # 7. No bytes in the tunnel: the CONNECT decision stands.
        [c, ("s", ok)],
        # 8. A CONNECT the policy refuses: its decision, the tunnel unread.
        [connect(b"evil.test:443"), first_flight("other.test")],
        # 9. A ClientHello without SNI inside: allowed.
        [c, ("s", ok), first_flight(None)],
        # 10. The CONNECT again (the capture's proxy asked for
        #     credentials), then the tunnel: one allowed flow.
        [c, ("s", b"HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n"),
         c[:-2] + b"Proxy-Authorization: Basic eDp5\r\n\r\n", ("s", ok),
         first_flight("ok.test")],
    ]
    for i, parts in enumerate(conns):
        conversation(p, cli, srv, 41001 + i, 3128, parts)

    # Keep-alive with bodies, to port 80.
    # 11. A chunked body in three segments, with a chunk extension and a
    #     trailer, then a GET for another host.
    conversation(p, cli, srv, 41101, 80, [
        post_chunked(b"plain.test") + b"5;x=y\r\nhel",
        b"lo\r\n1a\r\n" + b"a" * 26 + b"\r\n",
        b"0\r\nX-Sum: 1\r\n\r\n" + get(b"nope4.test")])
    # 12. A chunked body larger than audit's buffer in one segment (as
    #     loopback and TSO give), the next head in the same segment.
    big = b"%x\r\n" % 40000 + b"b" * 40000 + b"\r\n0\r\n\r\n"
    conversation(p, cli, srv, 41102, 80, [
        post_chunked(b"plain.test") + big + get(b"nope5.test")])
    # 13. Broken chunk framing: the daemon refuses; nothing after it is
    #     read (nope6.test is not decided).
    conversation(p, cli, srv, 41103, 80, [
        post_chunked(b"plain.test") + b"zz\r\nhello\r\n0\r\n\r\n" +
        get(b"nope6.test")])
    p.close()


def main():
    cmds = {"segmented": cmd_segmented, "pipelined": cmd_pipelined,
            "garbage": cmd_garbage, "tunnel_http": cmd_tunnel_http,
            "dnsq": cmd_dnsq, "synth": synth}
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()

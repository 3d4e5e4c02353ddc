#!/usr/bin/env python3
"""Seeds for tests/fuzz/fuzz_audit: real packets, framed as the target reads
them (one byte of link type, two of length, the packet; 0xf0 ends a capture).

    python3 make_seeds.py [--pcap DIR]

writes the *.bin seeds next to this file; with --pcap, also DIR/NAME-N.pcap
(one capture per link type run) for egressctl audit itself.
The regress-*.bin seeds are reproducers the fuzzer found: kept, not made here.
"""
import os
import struct
import sys

# Index = the link-type byte fuzz_audit.c reads (its dlts[]); value = the
# pcap LINKTYPE_ written with --pcap.
EN10MB, SLL, SLL2, RAW, LINKTYPE_RAW, NULL, LOOP, IPV4, IPV6 = range(9)
LINKTYPE = {EN10MB: 1, SLL: 113, SLL2: 276, RAW: 101, LINKTYPE_RAW: 101,
            NULL: 0, LOOP: 108, IPV4: 228, IPV6: 229}
END = "end"


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def a4(s):
    return bytes(int(x) for x in s.split("."))


def a6(s):
    import ipaddress
    return ipaddress.IPv6Address(s).packed


def ipv4(src, dst, proto, payload, frag=0):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, frag, 64,
                    proto, 0, a4(src), a4(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ipv6(src, dst, nh, payload, ext=b""):
    """ext: extension headers already chained; nh names the first."""
    body = ext + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(body), nh, 64, a6(src),
                       a6(dst)) + body


def tcp(sport, dport, seq, ack, flags, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags,
                       65535, 0, 0) + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def eth(ethertype, payload, tags=()):
    h = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01"
    for tpid, vid in tags:
        h += struct.pack("!HH", tpid, vid)
    return h + struct.pack("!H", ethertype) + payload


def sll(ethertype, payload):
    return struct.pack("!HHH8sH", 4, 1, 6, b"\x02\0\0\0\0\x01\0\0",
                       ethertype) + payload


def sll2(ethertype, payload):
    return struct.pack("!HHIHBB8s", ethertype, 0, 1, 1, 4, 6,
                       b"\x02\0\0\0\0\x01\0\0") + payload


def null(af, payload):
    return struct.pack("<I", af) + payload


def client_hello(name, pad=0, record=0):
    """pad: bytes of padding extension; record: split the handshake into
    TLS records of at most this many bytes."""
    sni = name.encode()
    ext = struct.pack("!HHHBH", 0, len(sni) + 5, len(sni) + 3, 0,
                      len(sni)) + sni
    ext += struct.pack("!HHBH", 43, 3, 2, 0x0304)      # supported_versions
    if pad:
        ext += struct.pack("!HH", 21, pad) + b"\0" * pad
    body = (b"\x03\x03" + bytes(range(32)) + b"\0" +
            struct.pack("!H", 4) + b"\x13\x01\x13\x02" + b"\x01\x00" +
            struct.pack("!H", len(ext)) + ext)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    step = record or len(hs)
    return b"".join(b"\x16\x03\x01" + struct.pack("!H", len(c)) + c
                    for c in (hs[i:i + step] for i in range(0, len(hs), step)))


def segments(data, mss):
    return [data[i:i + mss] for i in range(0, len(data), mss)]


def dns_query(name, qtype):
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + q + \
        struct.pack("!HH", qtype, 1)


def handshake(ip, cs, ss, cp, sp, payloads, cseq=1000, sseq=5000):
    """A whole client -> server TCP exchange: SYN, SYN-ACK, ACK, then each
    payload as one segment (a list of (offset, bytes) for out of order)."""
    pk = [ip(cs, ss, tcp(cp, sp, cseq, 0, 0x02)),
          ip(ss, cs, tcp(sp, cp, sseq, cseq + 1, 0x12)),
          ip(cs, ss, tcp(cp, sp, cseq + 1, sseq + 1, 0x10))]
    seq = cseq + 1
    for p in payloads:
        if isinstance(p, tuple):
            off, data = p
            pk.append(ip(cs, ss, tcp(cp, sp, cseq + 1 + off, sseq + 1, 0x18,
                                     data)))
            continue
        pk.append(ip(cs, ss, tcp(cp, sp, seq, sseq + 1, 0x18, p)))
        seq += len(p)
    pk.append(ip(cs, ss, tcp(cp, sp, seq, sseq + 1, 0x11)))
    return pk


def v4(src, dst, seg):
    return ipv4(src, dst, 6, seg)


def seeds():
    out = {}
    # A TLS handshake and ClientHello (allowed), and one for a denied name
    # whose hello comes in two segments, the second first.
    hello = client_hello("evil.b.test")
    out["tls-handshake"] = (
        [(EN10MB, eth(0x0800, p)) for p in handshake(
            v4, "10.0.0.1", "192.0.2.1", 40001, 443,
            [client_hello("a.test")])] +
        [(EN10MB, eth(0x0800, p)) for p in handshake(
            v4, "10.0.0.2", "192.0.2.1", 40002, 8443,
            [(40, hello[40:]), (0, hello[:40])])])
    # HTTP on a keep-alive connection: a GET, a POST with a body, a GET;
    # then a CONNECT whose tunnel names another host (sni_mismatch).
    reqs = [b"GET / HTTP/1.1\r\nHost: www.b.test\r\n\r\n",
            b"POST /up HTTP/1.1\r\nHost: www.b.test\r\n"
            b"Content-Length: 5\r\n\r\nhello",
            b"GET /x HTTP/1.1\r\nHost: other.test\r\n\r\n"]
    out["http-request"] = (
        [(SLL, sll(0x0800, p)) for p in handshake(
            v4, "10.0.0.3", "192.0.2.2", 40003, 80, reqs)] +
        [(SLL, sll(0x0800, p)) for p in handshake(
            v4, "10.0.0.3", "192.0.2.3", 40004, 3128,
            [b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
             client_hello("evil.b.test")])])
    # DNS queries: raw IPv4 to 53, IPv6 over loopback to 5353.
    out["dns-query"] = [
        (RAW, ipv4("10.0.0.4", "10.0.0.53", 17,
                   udp(50000, 53, dns_query("a.test", 1)))),
        (IPV4, ipv4("10.0.0.4", "10.0.0.53", 17,
                    udp(50001, 53, dns_query("evil.b.test", 28)))),
        (NULL, null(24, ipv6("fd00::4", "fd00::53", 17,
                             udp(50002, 5353, dns_query("src.test", 65))))),
    ]
    # VLAN tags (802.1ad outside 802.1Q), a capture that starts after the
    # handshake: the side with a whole ClientHello is the client.
    tags = ((0x88a8, 100), (0x8100, 200))
    out["vlan"] = [
        (EN10MB, eth(0x0800, v4("10.0.0.5", "192.0.2.5",
                                tcp(40005, 443, 7, 9, 0x18,
                                    client_hello("x.b.test"))), tags)),
        (EN10MB, eth(0x0800, v4("192.0.2.5", "10.0.0.6",
                                tcp(443, 40006, 1, 1, 0x18,
                                    b"\x17\x03\x03\0\x01x")), tags[1:])),
        (EN10MB, eth(0x0800, ipv4("10.0.0.7", "192.0.2.7", 6, b"",
                                  frag=0x2000))),
    ]
    # IPv6 with hop-by-hop and destination options and an atomic fragment
    # header before TCP, in Linux cooked v2 and as DLT_IPV6.
    ext = (bytes([60, 0]) + b"\x01\x04\0\0\0\0" +        # hop-by-hop -> dstopts
           bytes([44, 0]) + b"\x01\x04\0\0\0\0" +        # dstopts -> fragment
           bytes([6, 0, 0, 0]) + b"\0\0\0\x01")           # fragment -> TCP

    def v6(src, dst, seg):
        return ipv6(src, dst, 0, seg, ext)
    out["ipv6-ext"] = (
        [(SLL2, sll2(0x86dd, p)) for p in handshake(
            v6, "fd00::1", "2001:db8::1", 40007, 443,
            [client_hello("src.test")])] +
        [(IPV6, p) for p in handshake(
            lambda s, d, g: ipv6(s, d, 6, g), "2001:db8::2", "2001:db8::1",
            40008, 443, [client_hello("src.test")])])
    # Two captures: a flow cut at the end of the first is not continued.
    hs = handshake(v4, "10.0.0.9", "192.0.2.9", 40009, 443,
                   [client_hello("a.test")])
    out["two-captures"] = ([(LOOP, null(2, p)) for p in hs[:3]] + [END] +
                           [(LOOP, null(2, p)) for p in hs[3:]])
    # Large hellos: one in three TLS records and 1400-byte segments
    # (allowed), one larger than the daemon peeks at, in one 20 KB segment
    # that is read in pieces (hello_too_large).
    out["big-hello"] = (
        [(RAW, p) for p in handshake(
            v4, "10.0.0.10", "192.0.2.10", 40010, 443,
            segments(client_hello("a.test", pad=9000, record=4000), 1400))] +
        [(RAW, p) for p in handshake(
            v4, "10.0.0.11", "192.0.2.10", 40011, 443,
            [client_hello("a.test", pad=20000, record=16000)])])
    # A chunked body between two requests; a CONNECT tunnel that carries
    # plain HTTP: one request for the CONNECT host, then one for another.
    out["http-chunked"] = (
        [(IPV4, p) for p in handshake(
            v4, "10.0.0.12", "192.0.2.12", 40012, 80,
            [b"POST /c HTTP/1.1\r\nHost: a.test\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel",
             b"lo\r\n0\r\nX-T: 1\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"])] +
        [(IPV4, p) for p in handshake(
            v4, "10.0.0.12", "192.0.2.13", 40013, 3128,
            [b"CONNECT a.test:80 HTTP/1.1\r\nHost: a.test:80\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
             b"GET / HTTP/1.1\r\nHost: evil.b.test\r\n\r\n"])])
    # A CONNECT sent again (after a 407) with the tunnel's ClientHello in
    # the same segment, and nothing after it: the hello is still read
    # (sni_mismatch; it once was left unread and the CONNECT allowed).
    connect = b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n"
    out["connect-retry"] = [(RAW, p) for p in handshake(
        v4, "10.0.0.20", "192.0.2.20", 40020, 3128,
        [connect, connect + client_hello("evil.b.test")])]
    return out


def frame(recs):
    b = b""
    for r in recs:
        if r == END:
            b += b"\xf0"
        else:
            kind, pkt = r
            b += bytes([kind]) + struct.pack("!H", len(pkt)) + pkt
    return b


def write_pcaps(d, name, recs):
    runs, cur = [], []
    for r in recs:
        if r == END or (cur and LINKTYPE[cur[-1][0]] != LINKTYPE[r[0]]):
            if cur:
                runs.append(cur)
            cur = []
        if r != END:
            cur.append(r)
    if cur:
        runs.append(cur)
    ts = 1795000000
    for i, run in enumerate(runs):
        with open(os.path.join(d, "%s-%d.pcap" % (name, i)), "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535,
                                LINKTYPE[run[0][0]]))
            for kind, pkt in run:
                ts += 1
                f.write(struct.pack("<IIII", ts, 0, len(pkt), len(pkt)) + pkt)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    pcap = sys.argv[2] if len(sys.argv) == 3 and sys.argv[1] == "--pcap" \
        else None
    for name, recs in seeds().items():
        with open(os.path.join(here, name + ".bin"), "wb") as f:
            f.write(frame(recs))
        if pcap:
            write_pcaps(pcap, name, recs)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Load generator for the memory benchmark (bench/run-memory.sh, issue 6).

Two roles, both asyncio in one process, both able to hold 10,000+ sockets:

  mem_client.py upstream ADDR[,ADDR...] PORT [--reply BYTES] [--lifetime S]
      A stand-in TLS server on each ADDR: reads one TLS record (the ClientHello egressd
      relays), answers with BYTES of handshake-record bytes (what a server's
      first flight would weigh), then reads and discards until EOF. It never
      completes a real handshake: egressd does not look at anything after
      the ClientHello, so this is enough to put a connection in RELAYING
      with bytes having gone through the relay both ways.

  mem_client.py clients HOST PORT NAME --count N --mode relay|half
               [--sources 127.0.0.2-9] [--reply BYTES] [--concurrency C]
      Opens N connections to egressd from the source addresses in turn
      (each source address has its own ephemeral ports), and sends:
        relay: a real ClientHello for NAME (made by OpenSSL through the ssl
               module), then reads BYTES of reply from the upstream: only a
               connection egressd relays gets them;
        half:  the first half of that ClientHello, so egressd keeps the
               connection in PEEKING, waiting for the rest.
      Prints "READY ok=K failed=F secs=T" once every attempt is done, then
      holds the connections, idle, until SIGTERM or SIGINT (closes them all
      with a FIN and exits 0) or --lifetime seconds (the same).

Exit status 2 on bad arguments. Nothing is written anywhere but stdout and
stderr.
"""
import argparse
import asyncio
import signal
import ssl
import sys
import time


def client_hello(name):
    """A real ClientHello for NAME, as OpenSSL would send it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    if len(hello) < 10 or hello[0] != 0x16:
        raise SystemExit("mem_client.py: could not make a ClientHello")
    return hello


def reply_bytes(n):
    """N bytes shaped as TLS handshake records (content is irrelevant)."""
    out = bytearray()
    while len(out) < n:
        body = min(n - len(out) - 5, 16384)
        if body <= 0:
            out += b"\x00" * (n - len(out))
            break
        out += bytes([0x16, 0x03, 0x03]) + body.to_bytes(2, "big") + b"\x5a" * body
    return bytes(out[:n])


def parse_sources(spec):
    """'127.0.0.2-9' or '127.0.0.2,127.0.0.3' -> list of addresses."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            base, last = part.rsplit("-", 1)
            prefix, first = base.rsplit(".", 1)
            for i in range(int(first), int(last) + 1):
                out.append("%s.%d" % (prefix, i))
        elif part:
            out.append(part)
    return out


async def wait_stop(lifetime):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), lifetime)
    except asyncio.TimeoutError:
        print("mem_client.py: lifetime of %ss reached; closing" % lifetime,
              file=sys.stderr, flush=True)


# ---- upstream ---------------------------------------------------------------

async def upstream(args):
    reply = reply_bytes(args.reply)
    conns = set()

    async def handle(reader, writer):
        conns.add(writer)
        try:
            hdr = await reader.readexactly(5)
            await reader.readexactly(int.from_bytes(hdr[3:5], "big"))
            if reply:
                writer.write(reply)
                await writer.drain()
            while await reader.read(65536):
                pass
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            conns.discard(writer)
            writer.close()

    server = await asyncio.start_server(handle, args.addr.split(","), args.port,
                                        backlog=4096, reuse_address=True)
    print("LISTENING %s:%d" % (args.addr, args.port), flush=True)
    await wait_stop(args.lifetime)
    server.close()
    for w in list(conns):
        w.transport.abort()


# ---- clients ----------------------------------------------------------------

async def clients(args):
    hello = client_hello(args.name)
    payload = hello if args.mode == "relay" else hello[: len(hello) // 2]
    expect = args.reply if args.mode == "relay" else 0
    sources = parse_sources(args.sources)
    sem = asyncio.Semaphore(args.concurrency)
    held = []
    errors = {}

    async def one(i):
        async with sem:
            src = sources[i % len(sources)]
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(
                    args.host, args.port, local_addr=(src, 0)), args.timeout)
            except (OSError, asyncio.TimeoutError) as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                return
            try:
                w.write(payload)
                await w.drain()
                if expect:
                    await asyncio.wait_for(r.readexactly(expect), args.timeout)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                w.transport.abort()
                return
            held.append(w)

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(args.count)))
    secs = time.monotonic() - t0
    print("READY ok=%d failed=%d secs=%.1f hello=%d sent=%d%s" % (
        len(held), args.count - len(held), secs, len(hello), len(payload),
        "".join(" %s=%d" % kv for kv in sorted(errors.items()))), flush=True)
    await wait_stop(args.lifetime)
    for w in held:
        w.close()
    # Let the FINs go out before the process (and its sockets) goes.
    await asyncio.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="role", required=True)
    up = sub.add_parser("upstream")
    up.add_argument("addr")
    up.add_argument("port", type=int)
    up.add_argument("--reply", type=int, default=4096)
    up.add_argument("--lifetime", type=float, default=170)
    cl = sub.add_parser("clients")
    cl.add_argument("host")
    cl.add_argument("port", type=int)
    cl.add_argument("name")
    cl.add_argument("--count", type=int, required=True)
    cl.add_argument("--mode", choices=("relay", "half"), required=True)
    cl.add_argument("--sources", default="127.0.0.2-9")
    cl.add_argument("--reply", type=int, default=4096)
    cl.add_argument("--concurrency", type=int, default=256)
    cl.add_argument("--timeout", type=float, default=20)
    cl.add_argument("--lifetime", type=float, default=150)
    args = ap.parse_args()
    if args.role == "clients" and args.count < 1:
        ap.error("--count must be at least 1")
    try:
        asyncio.run(upstream(args) if args.role == "upstream" else clients(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Regenerates the real-*.bin files of tests/fuzz/corpus/http_request and
tests/fuzz/corpus/http_response: HTTP/1.x heads written by real clients and
servers, captured byte for byte on loopback. Run by hand, never by make check:

    apt-get install curl openssl python3 nginx-light   # nginx optional
    python3 tests/fuzz/corpus/http_request/capture.py

Requests: a listener standing in for egressd accepts one connection per
client run, saves what arrives until the head and the announced body are in
(or 2 s of silence), answers "HTTP/1.1 502" and closes.
Responses: a client sends a fixed request to a real server and saves what
comes back (head and body, up to 64 KiB) until the server closes.
Regenerating changes Date headers, curl/Python versions in User-Agent and
Server, ports in Host: update tests/unit/test_http.c to match.
"""
import os, shutil, socket, ssl, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
REQ = HERE
RESP = os.path.join(os.path.dirname(HERE), "http_response")
PORT = 28080          # the stand-in listener
TMP = tempfile.mkdtemp()


def head_done(data):
    i = data.find(b"\r\n\r\n")
    if i < 0:
        return False
    head = data[: i + 4].lower()
    need = 0
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            need = int(line.split(b":", 1)[1])
    return len(data) >= i + 4 + need


def capture_request(name, argv, port=PORT):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    s.settimeout(10)
    got = {}

    def serve():
        c, _ = s.accept()
        c.settimeout(2)
        data = b""
        try:
            while not head_done(data):
                b = c.recv(4096)
                if not b:
                    break
                data += b
        except socket.timeout:
            pass
        got["data"] = data
        c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        c.close()

    t = threading.Thread(target=serve)
    t.start()
    if callable(argv):
        try:
            argv()
        except Exception:
            pass
    else:
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    t.join()
    s.close()
    open(os.path.join(REQ, name), "wb").write(got["data"])
    print(name, len(got["data"]))


def py_httpclient():
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    c.request("POST", "/submit?x=1", body=b'{"a": 1}', headers={"Content-Type": "application/json"})
    c.getresponse().read()


def py_httpclient_chunked():
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
    c.request("PUT", "/upload", body=iter([b"hello ", b"world"]), encode_chunked=True)
    c.getresponse().read()


def py_urllib():
    import urllib.request
    urllib.request.urlopen(f"http://localhost:{PORT}/index.html?q=%20a", timeout=5)


def py_urllib_proxy():
    import urllib.request
    h = urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{PORT}"})
    urllib.request.build_opener(h).open("http://Example.COM/path", timeout=5)


def requests():
    url = f"http://127.0.0.1:{PORT}"
    capture_request("real-curl-get.bin", ["curl", "-s", url + "/"])
    capture_request("real-curl-get-localhost.bin", ["curl", "-s", f"http://localhost:{PORT}/a/b?c=d"])
    capture_request("real-curl-post.bin", ["curl", "-s", "-d", "name=egressd&x=1", url + "/form"])
    capture_request("real-curl-http10.bin", ["curl", "-s", "-0", url + "/old"])
    capture_request("real-curl-proxy-absolute.bin",
                    ["curl", "-s", "-x", url, "http://example.com/index.html"])
    capture_request("real-curl-proxy-connect.bin",
                    ["curl", "-s", "-p", "-x", url, "https://example.com/"])
    capture_request("real-curl-proxy-connect-ipv6.bin",
                    ["curl", "-s", "-p", "-x", url, "https://[2001:db8::1]:8443/"])
    capture_request("real-curl-expect.bin",
                    ["curl", "-s", "-H", "Expect: 100-continue", "--data-binary", "x" * 2000, url + "/big"])
    capture_request("real-curl-websocket-upgrade.bin",
                    ["curl", "-s", "-H", "Connection: Upgrade", "-H", "Upgrade: websocket",
                     "-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                     url + "/ws"])
    capture_request("real-python-httpclient-post.bin", py_httpclient)
    capture_request("real-python-httpclient-chunked.bin", py_httpclient_chunked)
    capture_request("real-python-urllib.bin", py_urllib)
    capture_request("real-python-urllib-proxy.bin", py_urllib_proxy)


def fetch(name, host, port, req, tls=False):
    s = socket.create_connection((host, port), timeout=5)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(req)
    data = b""
    try:
        while len(data) < 65536:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except (socket.timeout, ConnectionResetError, ssl.SSLError):
        pass
    s.close()
    open(os.path.join(RESP, name), "wb").write(data[:65536])
    print(name, len(data))


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def responses():
    docroot = os.path.join(TMP, "www")
    os.makedirs(os.path.join(docroot, "dir"))
    open(os.path.join(docroot, "hello.txt"), "w").write("hello from egressd tests\n")
    procs = []
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "http.server", "-b", "127.0.0.1", "28081"],
                                      cwd=docroot, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(28081)
        fetch("real-python-httpserver-200.bin", "127.0.0.1", 28081,
              b"GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:28081\r\nConnection: close\r\n\r\n")
        fetch("real-python-httpserver-301.bin", "127.0.0.1", 28081,
              b"GET /dir HTTP/1.1\r\nHost: 127.0.0.1:28081\r\nConnection: close\r\n\r\n")
        fetch("real-python-httpserver-404.bin", "127.0.0.1", 28081,
              b"GET /nope HTTP/1.0\r\n\r\n")

        key, crt = os.path.join(TMP, "k.pem"), os.path.join(TMP, "c.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", crt, "-days", "1", "-subj", "/CN=localhost"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(subprocess.Popen(["openssl", "s_server", "-accept", "28443", "-cert", crt,
                                       "-key", key, "-www", "-quiet"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(28443)
        fetch("real-openssl-s_server-www.bin", "127.0.0.1", 28443,
              b"GET / HTTP/1.0\r\n\r\n", tls=True)

        if shutil.which("nginx") or os.path.exists("/usr/sbin/nginx"):
            conf = os.path.join(TMP, "nginx.conf")
            open(conf, "w").write(f"""
daemon off; master_process off; pid {TMP}/nginx.pid; error_log {TMP}/error.log;
events {{}}
http {{
  access_log off; client_body_temp_path {TMP}; proxy_temp_path {TMP};
  fastcgi_temp_path {TMP}; uwsgi_temp_path {TMP}; scgi_temp_path {TMP};
  server {{
    listen 127.0.0.1:28082;
    root {docroot};
    location = /moved {{ return 301 https://www.example.org/new?x=1; }}
    location = /found {{ return 302 /relative/path; }}
  }}
}}
""")
            procs.append(subprocess.Popen(["/usr/sbin/nginx", "-c", conf, "-e", f"{TMP}/error.log"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_port(28082)
            base = b"Host: localhost\r\nConnection: close\r\n\r\n"
            fetch("real-nginx-200.bin", "127.0.0.1", 28082, b"GET /hello.txt HTTP/1.1\r\n" + base)
            fetch("real-nginx-301.bin", "127.0.0.1", 28082, b"GET /moved HTTP/1.1\r\n" + base)
            fetch("real-nginx-302-relative.bin", "127.0.0.1", 28082, b"GET /found HTTP/1.1\r\n" + base)
            fetch("real-nginx-404-http10.bin", "127.0.0.1", 28082, b"GET /nope HTTP/1.0\r\n\r\n")
            fetch("real-nginx-403-after-bare-lf-request.bin", "127.0.0.1", 28082, b"GET / HTTP/1.1\nHost: x\n\n")
            # chunked: nginx chunks a response of unknown length (SSI off: use gzip? no): a 1.1 HEAD is enough
            fetch("real-nginx-head-keepalive.bin", "127.0.0.1", 28082,
                  b"HEAD /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
    finally:
        for p in procs:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    try:
        requests()
        responses()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)

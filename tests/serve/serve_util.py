"""tests/serve/serve_util.py — start/stop a `flowturbo serve` for the API and browser tests, HTTP helpers,
and a small PNG reader (8-bit grey/RGB, what the server writes) so the tests need only the standard library."""
import json
import os
import re
import signal
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("FT_CLI", os.path.join(ROOT, "build", "flowturbo"))


class Server:
    """`flowturbo serve --port 0 ARGS` on 127.0.0.1; the port is read from its log."""

    def __init__(self, *args, log=None):
        self.log_path = log or "/tmp/flowturbo-serve-%d.log" % os.getpid()
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([CLI, "serve", "--port", "0", *args], stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"serving on http://127\.0\.0\.1:(\d+)/", open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.05)
        if not self.port:
            self.stop()
            raise RuntimeError("the server did not start:\n" + open(self.log_path).read())
        self.url = "http://127.0.0.1:%d" % self.port

    def rss_kib(self):
        for line in open("/proc/%d/status" % self.proc.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return -1

    def threads(self):
        return len(os.listdir("/proc/%d/task" % self.proc.pid))

    def stop(self):
        """SIGINT (a clean stop); returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def request(url, method="GET", body=None, headers=None, timeout=60):
    """(status, headers, body bytes) of one request; HTTP errors are answers too."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def read_png(data):
    """(width, height, channels, pixel bytes, text chunks) of an 8-bit grey or RGB PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, texts = 8, b"", {}
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and ctype in (0, 2) and interlace == 0, "unexpected PNG format"
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"tEXt":
            k, v = chunk.split(b"\0", 1)
            texts[k.decode("latin-1")] = v.decode("latin-1")
        pos += 12 + n
    ch = 1 if ctype == 0 else 3
    raw, stride = zlib.decompress(idat), w * ch
    out, prev = bytearray(), bytearray(stride)
    for y in range(h):
        f, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = row[x - ch] if x >= ch else 0
            b, c = prev[x], prev[x - ch] if x >= ch else 0
            if f == 1:
                row[x] = (row[x] + a) & 255
            elif f == 2:
                row[x] = (row[x] + b) & 255
            elif f == 3:
                row[x] = (row[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += row
        prev = row
    return w, h, ch, bytes(out), texts

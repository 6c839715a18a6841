#!/usr/bin/env python3
"""tests/serve/api_test.py — drives every endpoint of `flowturbo serve` on loopback: good and bad requests (every
field, oversize bodies, wrong methods and paths), live streams (frames, the stream limit, clients that disconnect
mid-stream), many concurrent clients (bounded in number and time; batching and the queue bound), the server's
memory and threads flat afterwards, a clean stop, and the full path with SiT + refiner + VAE files (random models
from weights_tool/convert.py). Prints one line per check; exit status 1 when any fails."""
import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_util import CLI, ROOT, Server, read_png, request  # noqa: E402

FAILED = []
THREADS = os.environ.get("FT_SERVE_THREADS", "2")
# the embedded model's default sampler (`flowturbo generate` and `serve` share the rule)
DEFAULT_SAMPLER = re.search(r'#define FT_DEFAULT_SAMPLER "([^"]+)"',
                            open(os.path.join(ROOT, "engine", "flowturbo.h")).read()).group(1)


def check(name, cond, detail=""):
    if isinstance(detail, bytes):  # response bodies
        detail = detail.decode("utf-8", "replace")
    print("%s %s%s" % ("PASS" if cond else "FAIL", name, (": " + detail) if detail and not cond else ""))
    if not cond:
        FAILED.append(name)
    return cond


def jbody(b):
    try:
        return json.loads(b)
    except ValueError:
        return None


def post(srv, body, raw=False, headers=None):
    data = body if raw else json.dumps(body).encode()
    return request(srv.url + "/api/generate", "POST", data, headers or {"Content-Type": "application/json"})


def stream_events(srv, query, n_frames, timeout=60):
    """Reads n_frames frame events of /api/stream?query over a raw socket; returns their JSON."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    s.sendall(("GET /api/stream?%s HTTP/1.1\r\nHost: x\r\n\r\n" % query).encode())
    buf, frames, deadline = b"", [], time.time() + timeout
    while len(frames) < n_frames and time.time() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        while b"event: frame\ndata: " in buf:
            start = buf.index(b"event: frame\ndata: ") + len(b"event: frame\ndata: ")
            end = buf.find(b"\n", start)
            if end < 0:
                break
            frames.append(json.loads(buf[start:end]))
            buf = buf[end:]
    s.close()
    return frames


def health(srv):
    return jbody(request(srv.url + "/api/health")[2])


def wait_streams(srv, n, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if health(srv)["streams"]["active"] == n:
            return True
        time.sleep(0.1)
    return False


def pixels_close(a, b, tol=2):
    """Batching changes GEMM shapes: results agree to rounding, a few grey levels at most."""
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) <= tol


def endpoints(srv):
    st, hd, b = request(srv.url + "/api/health")
    h = jbody(b)
    check("health", st == 200 and h and h["status"] == "ok" and h["backend"] == "cpu", b[:200])
    st, hd, b = request(srv.url + "/api/models")
    m = jbody(b)
    check("models", st == 200 and m["image_size"] == 32 and m["channels"] == 1 and len(m["classes"]) == 10
          and m["predictor"]["num_classes"] == 10 and m["refiner"] and m["vae"] is None and "H1P5R3" in m["samplers"]
          and m["defaults"]["sampler"] == DEFAULT_SAMPLER and DEFAULT_SAMPLER in m["samplers"], b[:300])
    st, hd, b = request(srv.url + "/api/classes")
    c = jbody(b)
    check("classes", st == 200 and c["classes"][7] == {"id": 7, "name": "Sneaker"}, b[:200])
    st, hd, b = request(srv.url + "/")
    check("page", st == 200 and hd["Content-Type"].startswith("text/html") and b"flowturbo live" in b)


def generate(srv):
    st, hd, png = post(srv, {"class": "sneaker", "seed": 5})
    ok = st == 200 and hd["Content-Type"] == "image/png"
    w, h, ch, px, texts = read_png(png) if ok else (0, 0, 0, b"", {})
    check("generate png", ok and (w, h, ch) == (32, 32, 1) and texts["parameters"].startswith("class 7\n")
          and "Seed: 5" in texts["parameters"] and "Sampler: %s," % DEFAULT_SAMPLER in texts["parameters"],
          str(st) + str(texts))
    st2, _, png2 = post(srv, {"class": 7, "seed": 5, "sampler": DEFAULT_SAMPLER, "cfg_scale": 4})
    check("generate deterministic", st2 == 200 and png2 == png)
    with tempfile.TemporaryDirectory() as d:  # the same image as `flowturbo generate` with its defaults
        p = subprocess.run([CLI, "generate", "--class", "7", "-s", "5", "-t", "1", "-o", d + "/g.png"],
                           capture_output=True, text=True)
        g = read_png(open(d + "/g.png", "rb").read()) if p.returncode == 0 else (0, 0, 0, b"", {})
        check("default sampler = generate's", ok and g[4].get("parameters", "").startswith("class 7 (Sneaker)\n")
              and "Sampler: %s," % DEFAULT_SAMPLER in g[4]["parameters"] and pixels_close(g[3], px),
              str(g[4]) + p.stderr[-200:])
    st, hd, b = post(srv, {"classes": [1, "Bag"], "seed": 40, "format": "json", "sampler": "heun:4"})
    r = jbody(b)
    ok = st == 200 and r and len(r["images"]) == 2
    check("generate json", ok and r["images"][1]["class_name"] == "Bag" and r["images"][1]["seed"] == 41
          and r["parameters"]["sampler"] == "heun:4" and r["batch"]["images"] >= 2 and r["timing"]["generate_ms"] > 0,
          b[:300])
    if ok:  # image k of a request is the image of seed + k alone
        _, _, solo = post(srv, {"class": "Bag", "seed": 41, "sampler": "heun:4"})
        a = read_png(base64.b64decode(r["images"][1]["png_base64"]))[3]
        check("json image k = seed + k alone", pixels_close(a, read_png(solo)[3]))
    st, hd, png = post(srv, {"class": 3, "num_images": 4, "sampler": "H1P3R2", "cfg_scale": 1})
    check("generate grid png", st == 200 and read_png(png)[:3] == (64, 64, 1), str(st))


BAD = [  # body, field ("" = the body as a whole)
    (b"not json", ""), (b"", ""), (b"[1]", ""), (b'{"class": 1,}', ""), (b'{"cfg_scale": NaN}', ""),
    ({"clas": 1}, "clas"), ({"class": 10}, "class"), ({"class": -1}, "class"), ({"class": "Bagx"}, "class"),
    ({"class": 1.5}, "class"), ({"class": True}, "class"), ({"classes": []}, "classes"),
    ({"classes": "Bag"}, "classes"), ({"classes": [0] * 17}, "classes"), ({"classes": [0, 99]}, "classes"),
    ({"class": 1, "classes": [1]}, "classes"), ({"num_images": 0}, "num_images"), ({"num_images": 17}, "num_images"),
    ({"num_images": "2"}, "num_images"), ({"num_images": 2.5}, "num_images"),
    ({"classes": [1, 2], "num_images": 3}, "num_images"), ({"seed": -1}, "seed"), ({"seed": "1"}, "seed"),
    ({"seed": 1e300}, "seed"), ({"sampler": "bogus"}, "sampler"), ({"sampler": 5}, "sampler"),
    ({"sampler": "heun:0"}, "sampler"), ({"sampler": "euler:100000"}, "sampler"), ({"cfg_scale": "4"}, "cfg_scale"),
    ({"cfg_scale": -1}, "cfg_scale"), ({"cfg_scale": 51}, "cfg_scale"), ({"format": "gif"}, "format"),
    ({"format": 1}, "format"),
]


def bad_requests(srv):
    for body, field in BAD:
        raw = isinstance(body, bytes)
        st, hd, b = post(srv, body, raw=raw)
        e = jbody(b)
        ok = st == 400 and e and isinstance(e.get("error"), str) and e.get("field", "") == field and e["status"] == 400
        check("400 %s" % (body if raw else json.dumps(body))[:60], ok, "%d %s" % (st, b[:200]))
    st, hd, b = post(srv, b'{"class": 1, "pad": "' + b"x" * 70000 + b'"}', raw=True)
    check("413 oversize body", st == 413 and jbody(b)["status"] == 413, "%d %s" % (st, b[:100]))
    # chunked (no Content-Length): refused once it passes the limit
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    try:
        for _ in range(40):
            s.sendall(b"1000\r\n" + b" " * 4096 + b"\r\n")
        s.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    answer = s.recv(4096)
    s.close()
    check("413 oversize chunked body", answer.startswith(b"HTTP/1.1 413"), answer[:80])
    for url, method, want in [("/api/generate", "GET", 405), ("/api/health", "POST", 405), ("/", "DELETE", 405),
                              ("/api/models", "PUT", 405), ("/nope", "GET", 404), ("/api/generate/x", "POST", 404)]:
        st, hd, b = request(srv.url + url, method, b"{}" if method in ("POST", "PUT") else None)
        e = jbody(b)
        check("%d %s %s" % (want, method, url), st == want and e and e["status"] == want
              and (want != 405 or "Allow" in hd), "%d %s" % (st, b[:100]))
    for query, field in [("class=zzz", "class"), ("class=10", "class"), ("speed=1", "speed"), ("walk=2", "walk"),
                         ("cfg=abc", "cfg"), ("cfg=99", "cfg"), ("sampler=x", "sampler"), ("seed=-3", "seed")]:
        st, hd, b = request(srv.url + "/api/stream?" + query)
        e = jbody(b)
        check("400 stream %s" % query, st == 400 and e and e["field"] == field, "%d %s" % (st, b[:120]))


def streams(srv):
    fr = stream_events(srv, "class=Sneaker&sampler=H1P3R2&walk=1&speed=4&seed=9", 3)
    ok = len(fr) == 3
    check("stream frames", ok and [f["seq"] for f in fr] == [0, 1, 2] and all(f["class_a"] == 7 for f in fr)
          and fr[1]["t"] > 0 and fr[0]["seed_a"] == 9 and base64.b64decode(fr[0]["jpeg"])[:2] == b"\xff\xd8"
          and fr[2]["timing"]["sampling_ms"] > 0 and fr[2]["timing"]["encode_ms"] > 0, str(fr[:1])[:300])
    fr = stream_events(srv, "class=all&walk=0&sampler=heun:2&seed=100", 3)
    check("stream without walk: a new seed and class per frame",
          len(fr) == 3 and [f["seed_a"] for f in fr] == [100, 101, 102] and [f["class_a"] for f in fr] == [0, 1, 2])
    fr = stream_events(srv, "class=1&walk=0", 1)
    check("stream default sampler", len(fr) == 1 and fr[0]["sampler"] == DEFAULT_SAMPLER, str(fr[:1])[:200])
    check("streams closed", wait_streams(srv, 0))
    socks = []
    for _ in range(4):  # the default limit
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(b"GET /api/stream?sampler=heun:2 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(100)
        socks.append(s)
    st, hd, b = request(srv.url + "/api/stream")
    check("503 above the stream limit", st == 503 and hd.get("Retry-After") == "1", "%d %s" % (st, b[:100]))
    for s in socks:
        s.close()
    check("streams freed after clients close", wait_streams(srv, 0))
    for i in range(10):  # clients that go away mid-stream, some in the middle of a frame
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(b"GET /api/stream?sampler=heun:2&walk=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while len(got) < 300 + 37 * i:
            got += s.recv(64)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        s.close()
    check("disconnects mid-stream cleaned up", wait_streams(srv, 0))
    check("server alive after disconnects", post(srv, {"class": 1, "sampler": "heun:2"})[0] == 200)


def concurrency(srv, n=24):
    before = health(srv)
    results = [None] * n

    def client(k):
        results[k] = post(srv, {"class": k % 10, "seed": 1000 + k, "sampler": "H1P3R2"})

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    took = time.time() - t0
    codes = [r[0] if r else None for r in results]
    after = health(srv)
    check("%d concurrent clients all answered 200" % n, codes.count(200) == n, str(codes))
    check("concurrent requests were batched", after["batched_requests"] > before["batched_requests"]
          and after["batches"] - before["batches"] < n, "%s -> %s" % (before, after))
    for k in (0, 5, n - 1):  # a batched image = the same request alone
        solo = post(srv, {"class": k % 10, "seed": 1000 + k, "sampler": "H1P3R2"})
        check("batched image %d = alone" % k, solo[0] == 200 and results[k][0] == 200
              and pixels_close(read_png(solo[2])[3], read_png(results[k][2])[3]))
    print("     %d concurrent requests in %.1f s, %d batches" % (n, took, after["batches"] - before["batches"]))


def queue_bound():
    srv = Server("-t", THREADS, "--queue", "2", "--max-batch", "1")
    try:
        results = []
        lock = threading.Lock()

        def client(k):
            try:
                r = post(srv, {"class": k % 10, "seed": k, "sampler": "H1P5R3"})
            except OSError:  # the server stopped while this request waited
                return
            with lock:
                results.append(r)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        codes = sorted(r[0] for r in results)
        busy = [r for r in results if r[0] == 503]
        check("queue bound: 503 + Retry-After when full", len(busy) > 0 and codes.count(200) >= 2
              and all(r[1].get("Retry-After") == "1" and jbody(r[2])["status"] == 503 for r in busy), str(codes))
        # stop while requests run and wait: each gets an answer (200 or 503) or a closed connection, exit 0
        results.clear()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.3)
    finally:
        rc = srv.stop()
    for t in threads:
        t.join(60)
    check("clean stop with requests in flight", rc == 0 and all(r[0] in (200, 503) for r in results),
          "exit %s, answers %s" % (rc, [r[0] for r in results]))


def memory_flat(srv):
    for _ in range(10):  # warm-up: every configuration the loop uses
        post(srv, {"class": 2, "sampler": "heun:2"})
    stream_events(srv, "sampler=heun:2&walk=1", 2)
    wait_streams(srv, 0)
    rss0, th0 = srv.rss_kib(), srv.threads()
    for i in range(60):
        post(srv, {"class": i % 10, "seed": i, "sampler": "heun:2", "format": "json" if i % 2 else "png"})
        if i % 6 == 0:
            stream_events(srv, "sampler=heun:2&walk=1&seed=%d" % i, 2)
    wait_streams(srv, 0)
    time.sleep(0.3)
    rss1, th1 = srv.rss_kib(), srv.threads()
    check("memory flat after 60 requests + 10 streams", rss1 - rss0 < 4096, "RSS %d -> %d KiB" % (rss0, rss1))
    check("threads back to the baseline", th1 <= th0, "%d -> %d threads" % (th0, th1))
    print("     RSS %d -> %d KiB, threads %d -> %d" % (rss0, rss1, th0, th1))


def full_models():
    """SiT + refiner + SD-VAE-shaped decoder from files: random models, 4-channel 8x8 latents -> 32x32 RGB."""
    d = tempfile.mkdtemp(prefix="flowturbo-serve-")
    conv = [sys.executable, os.path.join(ROOT, "weights_tool", "convert.py"), "random"]
    common = ["--input-size", "8", "--patch", "2", "--hidden", "64", "--depth", "2", "--heads", "4",
              "--in-channels", "4", "--num-classes", "1000"]
    subprocess.run(conv + ["--kind", "sit", *common, "-o", d + "/sit.safetensors"], check=True, capture_output=True)
    subprocess.run(conv + ["--kind", "refiner", *common, "-o", d + "/ref.safetensors"], check=True, capture_output=True)
    subprocess.run(conv + ["--kind", "vae", "--vae-preset", "tiny", "-o", d + "/vae.safetensors"], check=True,
                   capture_output=True)
    srv = Server("-t", THREADS, "-m", d + "/sit.safetensors", "--refiner", d + "/ref.safetensors",
                 "--vae", d + "/vae.safetensors")
    try:
        m = jbody(request(srv.url + "/api/models")[2])
        check("full models: models", m["vae"] is not None and m["image_size"] == 32 and m["channels"] == 3
              and len(m["classes"]) == 1000 and m["classes"][999]["name"] == "999", str(m)[:300])
        st, hd, png = post(srv, {"class": 207, "seed": 0, "sampler": "H1P5R3"})
        check("full models: generate", st == 200 and read_png(png)[:3] == (32, 32, 3), str(st))
        check("full models: default sampler H1P5R3", m["defaults"]["sampler"] == "H1P5R3", str(m["defaults"]))
        fr = stream_events(srv, "class=207&sampler=H1P1R1", 1)
        check("full models: stream", len(fr) == 1 and fr[0]["size"] == 32 and fr[0]["name_a"] == "207")
    finally:
        check("clean stop (full models, stream open)", srv.stop() == 0)
    srv = Server("-t", THREADS, "-m", d + "/sit.safetensors", "--vae", d + "/vae.safetensors")
    try:
        st, hd, b = post(srv, {"class": 1, "sampler": "H1P5R3"})
        check("no refiner: R samplers refused", st == 400 and jbody(b)["field"] == "sampler"
              and "refiner" in jbody(b)["error"], b[:200])
        st, hd, b = post(srv, {"class": 1, "format": "json"})
        check("no refiner: the default sampler (H1P5) works", st == 200 and jbody(b)["parameters"]["sampler"] == "H1P5",
              b[:200])
    finally:
        srv.stop()


def main():
    t0 = time.time()
    srv = Server("-t", THREADS)
    try:
        endpoints(srv)
        generate(srv)
        bad_requests(srv)
        streams(srv)
        concurrency(srv)
        memory_flat(srv)
        # a stop while a stream is open and a request waits
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(100)
    finally:
        rc = srv.stop()
    check("clean stop with a stream open (exit 0)", rc == 0, "exit %s" % rc)
    queue_bound()
    full_models()
    print("api test: %d failed, %.1f s" % (len(FAILED), time.time() - t0))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

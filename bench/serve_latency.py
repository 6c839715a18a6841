#!/usr/bin/env python3
"""bench/serve_latency.py THREADS [FRAMES] — latency of `flowturbo serve`'s live demo stream on this machine: time from
starting the server to its first frame, time from opening a stream to its first frame, and the steady frame rate
(median interval over FRAMES frames) with the server's medians of the per-frame split. One JSON line."""
import json
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "serve"))
from serve_util import Server  # noqa: E402


def frames(port, query, n):
    """Yields (arrival time, frame JSON) of n frames of /api/stream?query."""
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    s.sendall(("GET /api/stream?%s HTTP/1.1\r\nHost: x\r\n\r\n" % query).encode())
    buf, got = b"", 0
    while got < n:
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        buf += chunk
        while b"event: frame\ndata: " in buf:
            i = buf.index(b"event: frame\ndata: ") + 19
            j = buf.find(b"\n", i)
            if j < 0:
                break
            yield time.time(), json.loads(buf[i:j])
            buf, got = buf[j:], got + 1
    s.close()


def main():
    threads, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40
    t_launch = time.time()
    srv = Server("-t", threads)
    try:
        t_open = time.time()
        arrivals, split = [], {k: [] for k in ("sampling_ms", "decode_ms", "encode_ms", "send_ms")}
        for t, f in frames(srv.port, "class=all&sampler=H1P5R3&walk=1&speed=24", n):
            arrivals.append(t)
            for k in split:
                split[k].append(f["timing"][k])
        intervals = [b - a for a, b in zip(arrivals[1:], arrivals[2:])]  # frames 2.. (steady)
        med = statistics.median(intervals)
        print(json.dumps({
            "threads": int(threads), "frames": len(arrivals),
            "start_to_first_frame_ms": round((arrivals[0] - t_launch) * 1e3, 1),
            "stream_open_to_first_frame_ms": round((arrivals[0] - t_open) * 1e3, 1),
            "steady_fps": round(1.0 / med, 2), "median_interval_ms": round(med * 1e3, 1),
            "median_split_ms": {k: round(statistics.median(v[1:]), 2) for k, v in split.items()}}))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

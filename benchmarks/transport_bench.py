#!/usr/bin/env python3
"""Frame transport throughput between two processes over ZeroMQ (ipc:// and tcp:// loopback, CURVE on/off).

Stream: a sender process PUSHes ``frame`` messages (streamfill.protocol, raw RGB payload, zero-copy) and a
receiver process PULLs and fully validates/decodes each one -- what ``--sink zmq:push:`` does.
Serve: a client process keeps ``--window`` frame+mask requests in flight to ``ServeService`` in another
process whose fill is the identity, so the number is transport + protocol overhead of ``streamfill serve``.

    python benchmarks/transport_bench.py                      # 1920x1080, 300 frames, 3 runs per case
    python benchmarks/transport_bench.py --frames 100 --runs 1 --cases ipc,tcp

Prints one line per case: median frames/s over the runs, MB/s of payload and, for streams, the CPU time
per frame of the busier of the two processes (its inverse is the rate when each process has a free core).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

from streamfill import protocol
from streamfill.config import TransportConfig
from streamfill.transport import ServeService, generate_keys, load_client_keys, load_server_keys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _images(width: int, height: int, n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(n)]


def _curve_server(sock, keys_dir):
    keys = load_server_keys(keys_dir)
    sock.curve_secretkey, sock.curve_publickey, sock.curve_server = keys.secret, keys.public, True


def _curve_client(sock, keys_dir):
    keys = load_client_keys(keys_dir)
    sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = keys.secret, keys.public, keys.server_public


def _sender(endpoint, frames, width, height, keys_dir, ready, result):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.linger = 1000
    sock.sndhwm = 8
    if keys_dir:
        _curve_server(sock, keys_dir)  # no ZAP handler: any client with the server key may connect
    sock.bind(endpoint)
    ready.set()
    images = _images(width, height)
    cpu = time.process_time()
    for i in range(frames):
        sock.send_multipart(protocol.encode_frame(images[i % len(images)], index=i, pts=i, time_base=(1, 25)),
                            copy=False)
    sock.send_multipart(protocol.encode_bye(count=frames))
    sock.close()
    ctx.term()  # waits until the queue has left (linger), so the CPU time covers the whole transfer
    result.put(("send", time.process_time() - cpu))


def _receiver(endpoint, keys_dir, result):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.linger = 0
    sock.rcvhwm = 8
    if keys_dir:
        _curve_client(sock, keys_dir)
    sock.connect(endpoint)
    count, t0 = 0, None
    cpu = time.process_time()
    while sock.poll(20000):
        msg = protocol.decode(sock.recv_multipart(copy=False))
        if t0 is None:
            t0 = time.perf_counter()
        if msg.type == "bye":
            break
        count += 1
    result.put(("recv", count, time.perf_counter() - t0, time.process_time() - cpu))
    sock.close(0)
    ctx.term()


def stream_run(endpoint, frames, width, height, keys_dir=None) -> tuple[float, float]:
    """(frames/s on the wall clock, CPU ms per frame of the busier process: sender or receiver)."""
    ready = mp.Event()
    result = mp.Queue()
    send = mp.Process(target=_sender, args=(endpoint, frames + 1, width, height, keys_dir, ready, result))
    send.start()
    ready.wait(30)
    recv = mp.Process(target=_receiver, args=(endpoint, keys_dir, result))
    recv.start()
    got = {}
    for _ in range(2):
        item = result.get(timeout=600)
        got[item[0]] = item[1:]
    send.join(30)
    recv.join(30)
    count, seconds, recv_cpu = got["recv"]
    cpu_ms = 1000 * max(recv_cpu, got["send"][0]) / (frames + 1)
    return (count - 1) / seconds, cpu_ms  # the clock starts at the first frame


def _serve_process(endpoint, keys_dir, ready, stop):
    with ServeService(endpoint, lambda image, mask: image, TransportConfig(queue=64), curve_dir=keys_dir) as svc:
        ready.put(svc.endpoint)
        stop.wait(600)


def serve_run(endpoint, frames, width, height, window, keys_dir=None) -> float:
    ready, stop = mp.Queue(), mp.Event()
    server = mp.Process(target=_serve_process, args=(endpoint, keys_dir, ready, stop))
    server.start()
    bound = ready.get(timeout=60)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    if keys_dir:
        _curve_client(sock, keys_dir)
    sock.connect(bound)
    images = _images(width, height)
    mask = np.zeros((height, width), np.uint8)
    sent = got = 0
    t0 = time.perf_counter()
    try:
        while got < frames:
            while sent < frames and sent - got < window:
                sock.send_multipart([b""] + protocol.encode_frame(images[sent % len(images)], index=sent, req=sent,
                                                                  mask=mask), copy=False)
                sent += 1
            if not sock.poll(20000):
                raise RuntimeError("serve did not answer")
            parts = sock.recv_multipart(copy=False)
            msg = protocol.decode(parts[1:])
            assert msg.type == "result" and msg.req == got, msg.header
            got += 1
        return frames / (time.perf_counter() - t0)
    finally:
        sock.close(0)
        ctx.term()
        stop.set()
        server.join(30)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--window", type=int, default=4, help="serve: requests in flight")
    p.add_argument("--cases", default="ipc,tcp,ipc+curve,tcp+curve,serve-ipc,serve-tcp",
                   help="comma-separated: ipc, tcp, ipc+curve, tcp+curve, serve-ipc, serve-tcp, serve-tcp+curve")
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    mb = width * height * 3 / 1e6
    tmp = Path(tempfile.mkdtemp(prefix="sf-bench-"))
    keys_dir = tmp / "keys"
    generate_keys(keys_dir)
    print(f"{width}x{height} RGB ({mb:.1f} MB/frame), {args.frames} frames x {args.runs} runs, median:",
          file=sys.stderr)
    for case in args.cases.split(","):
        curve = keys_dir if case.endswith("+curve") else None
        base = case.removesuffix("+curve")
        rates = []
        for run in range(args.runs):
            if base.startswith("serve-"):
                ep = f"ipc://{tmp}/serve{run}.ipc" if base == "serve-ipc" else "tcp://127.0.0.1:0"
                rates.append((serve_run(ep, args.frames, width, height, args.window, curve), None))
            else:
                ep = f"ipc://{tmp}/s{run}.ipc" if base == "ipc" else f"tcp://127.0.0.1:{_free_port()}"
                rates.append(stream_run(ep, args.frames, width, height, curve))
        med = statistics.median(r for r, _ in rates)
        cpus = [c for _, c in rates if c is not None]
        cpu = f"  CPU {statistics.median(cpus):5.2f} ms/frame (busier process)" if cpus else ""
        print(f"{case:16} {med:8.1f} frames/s  {med * mb:6.0f} MB/s{cpu}   runs: "
              f"{', '.join(f'{r:.0f}' for r, _ in rates)}", flush=True)
    return 0


if __name__ == "__main__":
    mp.set_start_method("spawn", force=True)
    sys.exit(main())

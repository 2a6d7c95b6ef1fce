#!/usr/bin/env python3
"""Fuzz a real `streamfill serve` process with mutated messages and check that it survives them.

Seeds: valid raw/PNG/JPEG frame requests, hello and bye. Each message is one seed with 1-3 mutations:
byte flips, truncation, parts removed or inserted, header fields replaced by random values (negative,
huge, wrong types), lone surrogates (``"\\ud800"``) in strings, NaN/Infinity, huge declared sizes, corrupt
PNG (CRC-correct chunks whose zlib data or filter bytes are damaged), corrupt JPEG (scan data flipped,
bytes inserted between segments), and PNG "filter-4 bombs" (4096 x 2048 frames of Paeth rows that
compress to a few kB and used to cost ~13 s of CPU each).

Checks, written to benchmarks/results/serve_fuzz.json: every message gets exactly one reply (none lost),
serve is alive at the end and fills a valid request, its peak RSS stays within 2x its idle RSS, and its
stderr holds nothing but its own start line (no traceback, no libjpeg/libpng warnings).

    nice -n 10 python benchmarks/fuzz_serve.py --messages 100000
    python benchmarks/fuzz_serve.py --messages 2000 --time-limit 60      # quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import struct
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serve_common import cpu_seconds, rss_mb, start_serve  # noqa: E402

from streamfill import protocol as P  # noqa: E402
from streamfill.eval.results import machine, versions, write_result  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "serve_fuzz.json"


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_rows(width: int, height: int, channels: int, filt: int, fill: bytes = b"\0") -> bytes:
    stride = width * channels
    row = bytes([filt]) + (fill * stride)[:stride]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    return b"".join([b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", ihdr), chunk(b"IDAT", zlib.compress(row * height, 9)),
                     chunk(b"IEND", b"")])


def bomb(rng: np.random.Generator) -> list[bytes]:
    """A 4096 x 2048 frame + mask, every row Paeth-filtered (filter 4), compressing to a few kB."""
    w, h = 4096, 2048
    header = {"v": 1, "type": "frame", "req": int(rng.integers(0, 1 << 40)), "index": 0, "width": w, "height": h,
              "channels": 3, "dtype": "uint8", "encoding": "png", "mask_encoding": "png", "reply_encoding": "png"}
    fill = bytes(rng.integers(0, 256, 3, dtype=np.uint8))
    return [json.dumps(header).encode(), png_rows(w, h, 3, 4, fill), png_rows(w, h, 1, int(rng.choice([3, 4])))]


def seeds(rng: np.random.Generator) -> list[list[bytes]]:
    import cv2

    y, x = np.mgrid[0:48, 0:64]
    image = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:40] = 255
    jpeg = cv2.imencode(".jpg", image[:, :, ::-1])[1].tobytes()
    header = {"v": 1, "type": "frame", "req": 1, "stream": "s", "index": 0, "width": 64, "height": 48,
              "channels": 3, "dtype": "uint8", "encoding": "jpeg", "mask_encoding": "png"}
    out = [
        [bytes(p) for p in P.encode_frame(image, index=0, mask=mask, req=1, stream="s")],
        [bytes(p) for p in P.encode_frame(image, index=0, mask=mask, req=1, encoding="png", mask_encoding="png")],
        [json.dumps(header).encode(), jpeg, P.encode_png(mask)],
        [bytes(p) for p in P.encode_hello(req=1, stream="s")],
        [bytes(p) for p in P.encode_bye(req=1, stream="s")],
    ]
    return out


SURROGATES = ["\\ud800", "\\udfff", "a\\udc00b", "\\ud83d", "\\ude00\\ud83d"]
WEIRD = ["-1", "1e999", "NaN", "Infinity", "-Infinity", "true", "null", "[]", "{}", '"x"', "3.5",
         "99999999999999999999", "16384", "32768", "1048576", "0", str(2**53), '"' + "x" * 300 + '"']
FIELDS = ["v", "type", "req", "stream", "index", "width", "height", "channels", "dtype", "encoding",
          "mask_encoding", "reply_encoding", "pts", "time_base", "versions", "count"]


def _load(raw) -> dict | None:
    try:
        header = json.loads(bytes(raw))
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None
    return header if isinstance(header, dict) else None


def mutate(parts: list[bytes], rng: np.random.Generator) -> list[bytes]:
    parts = [bytearray(p) for p in parts]
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(0, 10))
        k = int(rng.integers(0, len(parts))) if parts else 0
        if op in (0, 1) and len(parts) > 1 and rng.random() < 0.75:
            k = int(rng.integers(1, len(parts)))  # mostly payloads: a damaged header stops at bad_json
        if op == 0 and parts and parts[k]:
            for _ in range(int(rng.integers(1, 6))):
                parts[k][int(rng.integers(0, len(parts[k])))] = int(rng.integers(0, 256))
        elif op == 1 and parts:
            parts[k] = parts[k][: int(rng.integers(0, len(parts[k]) + 1))]
        elif op == 2 and len(parts) > 1:
            del parts[k]
        elif op == 3:
            parts.insert(k, bytearray(rng.bytes(int(rng.integers(0, 64)))))
        elif op in (4, 5) and parts:
            header = _load(parts[0])
            if header is None:
                continue
            key = str(rng.choice(FIELDS))
            text = json.dumps({kk: v for kk, v in header.items() if kk != key})[:-1]
            value = str(rng.choice(WEIRD)) if op == 4 else f'"{rng.choice(SURROGATES)}"'
            parts[0] = bytearray(f'{text}{", " if len(text) > 1 else ""}"{key}": {value}}}'.encode())
        elif op == 6 and parts:  # huge declared size
            header = _load(parts[0])
            if header is None:
                continue
            header["width"], header["height"] = int(rng.integers(1, 40000)), int(rng.integers(1, 40000))
            parts[0] = bytearray(json.dumps(header).encode())
        elif op == 7 and len(parts) > 1:  # corrupt PNG/JPEG payload in a way that passes the CRCs
            p = parts[1]
            if bytes(p[:8]) == b"\x89PNG\r\n\x1a\n":
                at = bytes(p).find(b"IDAT")
                if at > 0:
                    n = struct.unpack(">I", bytes(p[at - 4:at]))[0]
                    body = bytearray(p[at + 4:at + 4 + n])
                    if body:
                        try:
                            raw = bytearray(zlib.decompress(bytes(body))) if rng.random() < 0.5 else None
                        except zlib.error:
                            raw = None
                        if raw is not None:
                            raw[int(rng.integers(0, len(raw)))] = int(rng.integers(0, 256))  # filter byte or data
                            body = bytearray(zlib.compress(bytes(raw)))
                        else:
                            body[int(rng.integers(0, len(body)))] ^= 0xFF
                        parts[1] = bytearray(bytes(p[:at - 4]) + chunk(b"IDAT", bytes(body)) + bytes(p[at + 8 + n:]))
            elif bytes(p[:2]) == b"\xff\xd8":
                if rng.random() < 0.3:
                    cut = int(rng.integers(2, len(p)))
                    parts[1] = p[:cut] + bytearray(rng.bytes(2)) + p[cut:]
                else:
                    for _ in range(5):
                        p[int(rng.integers(len(p) // 3, len(p) - 2))] = int(rng.integers(0, 256))
        elif op == 8 and parts:
            parts[0] = bytearray(str(rng.choice([
                '{"v":1,"type":"hello","req":2,"stream":"\\ud800"}', '{"v":1,"type":"hello","x":NaN}',
                '{"v":1,"type":"bye","stream":"\\udfff"}', '[' * 5000, '{"v":1}', ""])).encode())
        elif op == 9:
            parts = [bytearray(b"")] if rng.random() < 0.5 else parts + [bytearray(b"")]
    return [bytes(p) for p in parts] or [b""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--bomb-every", type=int, default=1000, help="one filter-4 PNG bomb per N messages")
    ap.add_argument("--window", type=int, default=8, help="requests in flight")
    ap.add_argument("--time-limit", type=float, default=0, help="stop after this many seconds (0 = none)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    base = seeds(rng)
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-serve-"))
    proc, endpoint = start_serve(["--engine", "telea"], tmp / "stderr.txt")
    try:
        return _run(args, rng, base, tmp, proc, endpoint)
    finally:
        if proc.poll() is None:  # the fuzzer itself failed: do not leave serve running
            proc.kill()
            proc.wait(30)


def _run(args, rng, base, tmp, proc, endpoint) -> int:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)

    def ask(parts, timeout=30.0):
        sock.send_multipart([b"", *parts])
        if not sock.poll(int(timeout * 1000)):
            return None
        return P.decode(sock.recv_multipart()[1:])

    image = np.full((48, 64, 3), 100, np.uint8)
    mask = np.zeros((48, 64), np.uint8)
    mask[5:10, 5:10] = 255
    for _ in range(20):  # warm up, then idle RSS
        assert ask(P.encode_frame(image, index=0, mask=mask)).type == "result"
    time.sleep(1.0)
    idle = rss_mb(proc.pid)
    peak = [idle]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.2):
            try:
                peak[0] = max(peak[0], rss_mb(proc.pid))
            except OSError:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
    sent = replies = lost = bombs = 0
    codes: dict[str, int] = {}
    in_flight = 0
    bomb_cpu = []
    limit = args.time_limit or float("inf")

    def receive(timeout_ms):
        nonlocal replies, in_flight
        if not sock.poll(timeout_ms):
            return False
        parts = sock.recv_multipart()
        msg = P.decode(parts[1:])
        key = msg.type if msg.type != "error" else msg.header["code"]
        codes[key] = codes.get(key, 0) + 1
        replies += 1
        in_flight -= 1
        return True

    while sent < args.messages and time.monotonic() - t0 < limit:
        if args.bomb_every and sent % args.bomb_every == args.bomb_every // 2:
            while in_flight:  # a bomb alone, so its CPU can be measured
                if not receive(60_000):
                    lost += in_flight
                    in_flight = 0
            c = cpu_seconds(proc.pid)
            sock.send_multipart([b"", *bomb(rng)])
            in_flight += 1
            sent += 1
            bombs += 1
            if not receive(120_000):
                lost += 1
                in_flight -= 1
            bomb_cpu.append(cpu_seconds(proc.pid) - c)
            continue
        parts = mutate(base[int(rng.integers(0, len(base)))], rng)
        sock.send_multipart([b"", *parts])
        sent += 1
        in_flight += 1
        while in_flight >= args.window:
            if not receive(30_000):
                lost += in_flight
                in_flight = 0
        while receive(0):
            pass
        if sent % 5000 == 0:
            print(f"{sent} sent, {replies} replies, {time.monotonic() - t0:.0f} s, RSS {rss_mb(proc.pid):.0f} MB",
                  file=sys.stderr, flush=True)
    while in_flight:
        if not receive(30_000):
            lost += in_flight
            in_flight = 0
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(proc.pid) - cpu0
    stop.set()
    alive = proc.poll() is None
    final = ask(P.encode_frame(image, index=1, mask=mask, req=424242), timeout=30) if alive else None
    answered_after = bool(final is not None and final.type == "result" and final.req == 424242)
    sock.close(0)
    ctx.destroy(linger=0)
    proc.terminate()
    try:
        proc.wait(30)
    except Exception:  # noqa: BLE001
        proc.kill()
    err_lines = [line for line in (tmp / "stderr.txt").read_text().splitlines()
                 if "listening on" not in line and "frames filled" not in line]
    summary = {
        "messages": sent, "replies": replies, "lost": lost, "bombs": bombs,
        "serve_alive": alive, "answers_valid_request_after": answered_after,
        "idle_rss_mb": round(idle, 1), "peak_rss_mb": round(peak[0], 1), "rss_ratio": round(peak[0] / idle, 2),
        "stderr_lines": len(err_lines), "traceback": any("Traceback" in x for x in err_lines),
        "serve_cpu_s": round(cpu, 1), "wall_s": round(elapsed, 1),
        "bomb_cpu_s_mean": round(float(np.mean(bomb_cpu)), 3) if bomb_cpu else None,
        "bomb_cpu_s_max": round(float(np.max(bomb_cpu)), 3) if bomb_cpu else None,
        "passed": bool(alive and answered_after and lost == 0 and peak[0] <= 2 * idle and not err_lines),
    }
    rows = [[k, v] for k, v in sorted(codes.items(), key=lambda kv: -kv[1])]
    result = {
        "item": "serve_fuzz", "title": "streamfill serve under 100,000 mutated messages",
        "date": datetime.date.today().isoformat(), "machine": machine(), "versions": versions(),
        "command": f"nice -n 10 python benchmarks/fuzz_serve.py --messages {args.messages} "
                   f"--bomb-every {args.bomb_every} --window {args.window} --seed {args.seed}"
                   + (f" --time-limit {args.time_limit:g}" if args.time_limit else ""),
        "columns": ["reply (type or error code)", "count"], "rows": rows, "summary": summary,
        "notes": ("One client, a window of requests in flight, against `streamfill serve --engine telea` in its "
                  "own process. 'bombs' are 4096x2048 PNG frame+mask requests whose every row uses filter 4/3; "
                  "bomb CPU is the server's CPU time for one such request (decode, fill, PNG reply). "
                  "stderr_lines counts any server stderr line besides its start/stop lines. "
                  + (f"Stopped by the time limit after {sent} of {args.messages} messages. "
                     if sent < args.messages else "")
                  + "Machine shared with other jobs: wall time is not a speed figure."),
    }
    if err_lines:
        result["stderr_sample"] = err_lines[:5]
    write_result(args.out, result)
    print(json.dumps(summary, indent=2))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

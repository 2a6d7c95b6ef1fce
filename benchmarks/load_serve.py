#!/usr/bin/env python3
"""Load test of a real `streamfill serve` process: several clients at once, one of them heavy.

Light clients (default 7) each send ``--frames`` 640 x 360 raw frames with a 40 x 40 hole, paced at
``--fps`` with up to 2 requests in flight (a video host). The heavy client sends ``--heavy-frames``
4096 x 2048 PNG frames + PNG masks (raw reply, so the client's own CPU stays small) back to back, 2 in
flight. Phase "unloaded": the light clients alone; phase "loaded": the same plus the heavy client, started
first. Each client checks that every frame comes
back (``busy`` replies are resent with the same ``req`` after 20 ms: not lost), in request order, with
the pixels outside the grown hole unchanged.

Written to benchmarks/results/serve_load.json: per phase and client kind the frames, lost, misordered,
busy and pixel errors, and the light clients' round-trip p50/p99 (ms); the summary compares the light
clients' p99 loaded / unloaded (goal < 3).

    nice -n 10 python benchmarks/load_serve.py                  # 7 light + 1 heavy, 500 frames each
    python benchmarks/load_serve.py --frames 100 --heavy-frames 20
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serve_common import cpu_seconds, rss_mb, start_serve  # noqa: E402

from streamfill import protocol as P  # noqa: E402
from streamfill.eval.results import machine, versions, write_result  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "serve_load.json"
GROW = 6  # the service grows holes by mask_dilate (4); compare pixels farther away than this


def light_frames(cid: int, n: int = 8):
    rng = np.random.default_rng(cid)
    out = []
    for k in range(n):
        image = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
        mask = np.zeros((360, 640), np.uint8)
        y, x = 40 + 30 * k, 60 + 60 * k
        mask[y:y + 40, x:x + 40] = 255
        keep = np.ones((360, 640), bool)
        keep[max(0, y - GROW):y + 40 + GROW, max(0, x - GROW):x + 40 + GROW] = False
        out.append((image, mask, keep))
    return out


def heavy_frames(n: int = 3):
    y, x = np.mgrid[0:2048, 0:4096]
    out = []
    for k in range(n):
        image = np.stack([(x // 16 + k * 7) % 256, (y // 8) % 256, ((x + y) // 32) % 256], -1).astype(np.uint8)
        mask = np.zeros((2048, 4096), np.uint8)
        mask[900:1000, 1800 + 50 * k:1900 + 50 * k] = 255
        out.append((image, mask, P.encode_png(image, level=1), P.encode_png(mask, level=1)))
    return out


class Client(threading.Thread):
    def __init__(self, ctx, endpoint: str, kind: str, frames: int, fps: float, cid: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self.kind, self.n, self.fps, self.cid, self.stop = kind, frames, fps, cid, stop
        self.data = light_frames(cid) if kind == "light" else heavy_frames()
        self.rtt: list[float] = []
        self.stats = {"frames": 0, "lost": 0, "misordered": 0, "busy": 0, "pixel_errors": 0, "errors": 0}

    def _parts(self, req: int):
        if self.kind == "light":
            image, mask, _ = self.data[req % len(self.data)]
            return P.encode_frame(image, index=req, mask=mask, req=req, stream=f"c{self.cid}")
        image, mask, png, png_mask = self.data[req % len(self.data)]
        header = {"v": 1, "type": "frame", "req": req, "stream": f"c{self.cid}", "index": req, "width": 4096,
                  "height": 2048, "channels": 3, "dtype": "uint8", "encoding": "png", "mask_encoding": "png",
                  "reply_encoding": "raw"}
        return [json.dumps(header).encode(), png, png_mask]

    def _check(self, msg) -> None:
        req = msg.req
        if self.kind == "light":
            image, _, keep = self.data[req % len(self.data)]
            if not np.array_equal(msg.image[keep], image[keep]):
                self.stats["pixel_errors"] += 1
        else:
            image = self.data[req % len(self.data)][0]
            if not (np.array_equal(msg.image[:800], image[:800]) and np.array_equal(msg.image[1100:], image[1100:])):
                self.stats["pixel_errors"] += 1

    def run(self) -> None:
        sent_at: dict[int, float] = {}
        to_send = list(range(self.n))
        last_result = -1
        window = 2
        period = 1.0 / self.fps if self.fps else 0.0
        next_time = time.monotonic()
        retry: list[tuple[float, int]] = []
        resent: set[int] = set()
        deadline = time.monotonic() + 3600
        while (to_send or retry or sent_at) and time.monotonic() < deadline and not self.stop.is_set():
            now = time.monotonic()
            ready_retry = [r for r in retry if r[0] <= now]
            if len(sent_at) < window and (ready_retry or (to_send and now >= next_time)):
                if ready_retry:
                    retry.remove(ready_retry[0])
                    req = ready_retry[0][1]
                else:
                    req = to_send.pop(0)
                    next_time = max(next_time + period, now) if period else now
                sent_at[req] = time.monotonic()
                self.sock.send_multipart([b"", *self._parts(req)], copy=False)
                continue
            if not self.sock.poll(5 if (to_send or retry) else 60_000):
                if not to_send and not retry and sent_at:
                    self.stats["lost"] += len(sent_at)
                    sent_at.clear()
                continue
            msg = P.decode(self.sock.recv_multipart()[1:])
            req = msg.req
            if req not in sent_at:
                continue
            t0 = sent_at.pop(req)
            if msg.type == "error" and msg.header["code"] == "busy":
                self.stats["busy"] += 1
                retry.append((time.monotonic() + 0.02, req))
                resent.add(req)
                continue
            if msg.type != "result":
                self.stats["errors"] += 1
                continue
            self.rtt.append(time.monotonic() - t0)
            if req < last_result and req not in resent:
                self.stats["misordered"] += 1
            last_result = max(last_result, req)
            self._check(msg)
            self.stats["frames"] += 1
        self.stats["lost"] += len(to_send) + len(retry) + len(sent_at)
        self.sock.close(0)


def phase(ctx, endpoint, light: int, frames: int, heavy_frames: int, fps: float) -> dict:
    stop = threading.Event()
    heavy = None
    if heavy_frames:
        heavy = Client(ctx, endpoint, "heavy", heavy_frames, 0, 99, stop)
        heavy.start()
        time.sleep(3.0)  # let it fill its share of the queue first
    clients = [Client(ctx, endpoint, "light", frames, fps, i, stop) for i in range(light)]
    t0 = time.monotonic()
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    light_seconds = time.monotonic() - t0
    heavy_busy_during = heavy.is_alive() if heavy else None
    if heavy:
        heavy.join()
    rtt = np.array([x for c in clients for x in c.rtt]) * 1000
    out = {"light": {k: sum(c.stats[k] for c in clients) for k in clients[0].stats},
           "light_rtt_ms": {"p50": round(float(np.percentile(rtt, 50)), 1),
                            "p99": round(float(np.percentile(rtt, 99)), 1),
                            "max": round(float(rtt.max()), 1)} if rtt.size else None,
           "light_seconds": round(light_seconds, 1), "heavy_still_running_when_light_done": heavy_busy_during}
    if heavy:
        hr = np.array(heavy.rtt) * 1000
        out["heavy"] = dict(heavy.stats)
        out["heavy_rtt_ms"] = {"p50": round(float(np.percentile(hr, 50)), 1)} if hr.size else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--light", type=int, default=7)
    ap.add_argument("--frames", type=int, default=500, help="frames per light client")
    ap.add_argument("--heavy-frames", type=int, default=500)
    ap.add_argument("--fps", type=float, default=5.0, help="pace of each light client")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="unloaded/loaded pairs, interleaved")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="load-serve-"))
    proc, endpoint = start_serve(["--engine", "telea", "--workers", str(args.workers)], tmp / "stderr.txt")
    ctx = zmq.Context()
    rows, phases = [], []
    cpu0 = cpu_seconds(proc.pid)
    try:
        for r in range(args.rounds):
            for name, heavy in (("unloaded", 0), ("loaded", args.heavy_frames)):
                res = phase(ctx, endpoint, args.light, args.frames, heavy, args.fps)
                res.update(round=r, phase=name, serve_rss_mb=round(rss_mb(proc.pid), 1))
                phases.append(res)
                print(json.dumps(res), file=sys.stderr, flush=True)
                lt = res["light"]
                rows.append([r, name, f"light x{args.light}", lt["frames"], lt["lost"], lt["misordered"], lt["busy"],
                             lt["pixel_errors"], res["light_rtt_ms"]["p50"], res["light_rtt_ms"]["p99"]])
                if heavy:
                    h = res["heavy"]
                    rows.append([r, name, "heavy 4096x2048 png", h["frames"], h["lost"], h["misordered"], h["busy"],
                                 h["pixel_errors"], res["heavy_rtt_ms"]["p50"] if res["heavy_rtt_ms"] else None, None])
    finally:
        cpu = cpu_seconds(proc.pid) - cpu0
        ctx.destroy(linger=0)
        proc.terminate()
        proc.wait(30)
    err_lines = [x for x in (tmp / "stderr.txt").read_text().splitlines()
                 if "listening on" not in x and "frames filled" not in x]
    unloaded = [p["light_rtt_ms"]["p99"] for p in phases if p["phase"] == "unloaded"]
    loaded = [p["light_rtt_ms"]["p99"] for p in phases if p["phase"] == "loaded"]
    lost = sum(p["light"]["lost"] + p.get("heavy", {}).get("lost", 0) for p in phases)
    mis = sum(p["light"]["misordered"] + p.get("heavy", {}).get("misordered", 0) for p in phases)
    pix = sum(p["light"]["pixel_errors"] + p.get("heavy", {}).get("pixel_errors", 0) for p in phases)
    ratio = max(loaded) / max(1e-9, np.median(unloaded)) if loaded and unloaded else None
    summary = {"lost": lost, "misordered": mis, "pixel_errors": pix,
               "light_p99_unloaded_ms": unloaded, "light_p99_loaded_ms": loaded,
               "p99_ratio_worst": round(ratio, 2) if ratio else None, "serve_cpu_s": round(cpu, 1),
               "stderr_lines": len(err_lines), "workers": args.workers,
               "passed": bool(lost == 0 and mis == 0 and pix == 0 and ratio is not None and ratio < 3)}
    result = {
        "item": "serve_load", "title": "streamfill serve: 7 light clients beside one 4096x2048 PNG client",
        "date": datetime.date.today().isoformat(), "machine": machine(), "versions": versions(),
        "command": f"nice -n 10 python benchmarks/load_serve.py --light {args.light} --frames {args.frames} "
                   f"--heavy-frames {args.heavy_frames} --fps {args.fps:g} --workers {args.workers} "
                   f"--rounds {args.rounds}",
        "columns": ["round", "phase", "clients", "frames", "lost", "misordered", "busy (resent)", "pixel errors",
                    "round trip p50 ms", "round trip p99 ms"],
        "rows": rows, "summary": summary,
        "notes": ("serve --engine telea in its own process; clients are threads of one process. Light clients: "
                  "640x360 raw, 40x40 hole, paced, 2 in flight; heavy: 4096x2048 PNG frame+mask, raw reply, "
                  "2 in flight, started 3 s before the light clients. p99_ratio_worst = worst loaded p99 / "
                  "median unloaded p99 of the light clients. The machine's 2 cores were shared with other "
                  "jobs (load average in 'machine'), so CPU contention, not only scheduling, shows in the "
                  "loaded round trips."),
        "phases": phases,
    }
    write_result(args.out, result)
    print(json.dumps(summary, indent=2))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

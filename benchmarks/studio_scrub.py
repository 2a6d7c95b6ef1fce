"""Benchmark (not a test): how long after the user releases the scrubber `streamfill studio` shows the exact frame.

One command, from the repository root, under 3 minutes on 2 quiet cores (a third of it making the clips;
--keep DIR reuses them):

    python benchmarks/studio_scrub.py bigbuckbunny.mp4

It makes 1080p H.264 clips from SOURCE (upscaled, ping-ponged to --frames frames; one per --clip: g250, a
long GOP of 250 frames (x264's default); g25, a GOP of 25; g30b, a phone-like GOP of 30 with 2 B-frames),
starts the studio's real HTTP server (uvicorn on loopback) on each and plays what the page does:

  * drag: the pointer moves from the current frame to a random one over 0.3-1.2 s (ease-out, as a hand
    slows down before letting go), one input event every 16 ms; like the page, at most one request in flight
    and one per 50 ms, for the pointer's latest frame (``?approx=1``: the server answers with the nearest
    frame it has and moves its decoder toward the pointer). On release the page drops a drag request still
    in flight and asks for the exact frame at once, on another connection. Measured: from the release to
    the exact frame's JPEG received.
  * click: a jump to a random frame with no drag before it (a click on the timeline, a typed number): the
    time to the exact frame.
  * step: the next frame (arrow key, playback).

States: "cold": no scrub proxies at all (``Limits(proxy_bytes=0)``: every frame comes from a decoder, as for
a clip longer than the proxy budget); "fresh": the default studio, the user starts dragging as soon as the
clip is open (the background pass that makes every frame's preview runs meanwhile, at the lowest CPU
priority); "warm": the default studio after that pass is done ("warm-up" row: from opening the clip to
every frame ready, wall and CPU, nobody scrubbing). ``--pause-proxies``: the background pass waits while
the user scrubs instead of running at a low priority (the studio before; for an A/B).

For each case: median, worst and mean of wall time, of the process's CPU time over the same stretch (all
threads: FFmpeg's, uvicorn's, this client's) and the pictures the scrub decoders decoded in that stretch
(independent of the machine's load: a 1080p picture is a few ms of one core; unreferenced pictures
are skipped, not decoded). The load average is
sampled after each case. The page's own JPEG decode and draw are not included. Results go to
benchmarks/results/studio.json (then ``streamfill bench --report`` renders BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

CLIPS = {  # name: (label, x264 options)
    "g250": ("1080p GOP 250 (x264 default keyint)", {"g": "250", "keyint_min": "25"}),
    "g25": ("1080p GOP 25", {"g": "25", "keyint_min": "25"}),
    "g30b": ("1080p GOP 30, 2 B-frames (phone-like)", {"g": "30", "keyint_min": "30", "bf": "2"}),
}
EVENT_S = 0.016  # input events while dragging (60 Hz)
APPROX_S = 0.05  # the page sends at most one request per 50 ms while dragging (static/studio.js: APPROX_MS)
LOOK_S = 0.3  # the user looks at the frame after a release
TARGET_MS = 150


def make_clip(source: str, out: Path, frames: int, options: dict) -> None:
    with av.open(source) as src:
        base = [cv2.resize(f.to_ndarray(format="rgb24"), (1920, 1080), interpolation=cv2.INTER_CUBIC)
                for f in src.decode(video=0)]
    sequence = base + base[-2:0:-1]  # ping-pong: long enough for a 250-frame GOP from a short source
    with av.open(str(out), "w") as dst:
        v = dst.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 1920, 1080, "yuv420p"
        v.options = {"preset": "veryfast", "crf": "20", **options}
        v.codec_context.time_base = Fraction(1, 25)
        for n in range(frames):
            vf = av.VideoFrame.from_ndarray(sequence[n % len(sequence)], format="rgb24")
            vf.pts = n
            for p in v.encode(vf):
                dst.mux(p)
        for p in v.encode(None):
            dst.mux(p)


class Server:
    """The studio's app on a real uvicorn server on loopback, in a thread; ``get(path)`` on a connection of
    the calling thread (like the browser: keep-alive, one request at a time per connection)."""

    def __init__(self, studio) -> None:
        import uvicorn

        from streamfill.studio.app import create_app
        from streamfill.studio.server import bind

        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(create_app(studio), log_level="warning", access_log=False,
                                                    lifespan="off", timeout_keep_alive=600))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        self.local = threading.local()

    def connection(self) -> http.client.HTTPConnection:
        if getattr(self.local, "conn", None) is None:
            self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return self.local.conn

    def request(self, method: str, path: str, body: str | None = None):
        conn = self.connection()
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit(f"{method} {path}: {r.status} {data[:200]!r}")
        return r, data

    def frame(self, path: str) -> tuple[int, bool]:
        r, _ = self.request("GET", path)
        return int(r.getheader("x-frame-index")), r.getheader("x-frame-exact") == "1"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Meter:
    """Wall ms, process CPU ms and pictures decoded by ``decoders`` over a ``with`` block."""

    def __init__(self, decoders) -> None:
        self.decoders = decoders

    def start(self):
        self.c0, self.w0 = time.process_time(), time.perf_counter()
        self.d0 = sum(d.decoded for d in self.decoders)
        return self

    def stop(self, w0: float | None = None):
        self.wall = (time.perf_counter() - (self.w0 if w0 is None else w0)) * 1000
        self.cpu = (time.process_time() - self.c0) * 1000
        self.frames = sum(d.decoded for d in self.decoders) - self.d0
        return self.wall, self.cpu, self.frames

    __enter__ = start

    def __exit__(self, *exc):
        self.stop()


def drag(server: Server, url: str, start: int, end: int, duration: float, decoders, *,
         waits: bool = False) -> tuple[float, float, int]:
    """One drag from ``start`` to ``end`` and its release: (wall ms, CPU ms, pictures decoded) from the release
    to the exact frame received. ``waits``: the release waits for a drag request in flight (the page before)."""
    released = threading.Event()

    def pointer_moves():  # the page's drag requests, on their own connection
        t0, last, sent = time.perf_counter(), None, 0.0
        while not released.is_set():
            t = time.perf_counter() - t0
            # the pointer at time t (ease-out: fast first, slowing down to the release), on a 16 ms event grid
            u = min(1.0, (int(t / EVENT_S) * EVENT_S) / duration)
            pointer = round(start + (end - start) * (1 - (1 - u) ** 3))
            if pointer != last and time.perf_counter() - sent >= APPROX_S:
                sent = time.perf_counter()
                server.frame(f"{url}{pointer}?approx=1")  # an answer after the release is dropped by the page
                last = pointer
            else:
                time.sleep(0.002)

    mover = threading.Thread(target=pointer_moves, daemon=True)
    t0 = time.perf_counter()
    mover.start()
    time.sleep(max(0.0, t0 + duration - time.perf_counter()))
    released.set()
    meter = Meter(decoders).start()
    if waits:
        mover.join(timeout=60)
    index, exact = server.frame(f"{url}{end}")  # at once, whatever is in flight
    result = meter.stop()
    assert index == end and exact, (index, exact, end)
    mover.join(timeout=60)
    return result


def stats(values):
    return round(statistics.median(values), 1), round(max(values), 1), round(statistics.mean(values), 1)


def run_seed(server: Server, clip, seed: int, drags: int, waits: bool) -> dict:
    rng = np.random.default_rng(seed)
    frames = clip.seeker.count
    decoders = clip.scrubber.decoders
    url = f"/api/clips/{clip.id}/frames/"
    at = int(rng.integers(0, frames))
    server.frame(f"{url}{at}")
    results = {"drag": [], "click": [], "step": []}
    for _ in range(drags):
        end = int(rng.integers(0, frames))
        duration = float(rng.uniform(0.3, 1.2))
        results["drag"].append(drag(server, url, at, end, duration, decoders, waits=waits))
        time.sleep(LOOK_S)
        target = int(rng.integers(0, frames))
        with Meter(decoders) as m:
            assert server.frame(f"{url}{target}") == (target, True)
        results["click"].append((m.wall, m.cpu, m.frames))
        if target + 1 < frames:
            with Meter(decoders) as m:
                assert server.frame(f"{url}{target + 1}") == (target + 1, True)
            results["step"].append((m.wall, m.cpu, m.frames))
            target += 1
        at = target
        time.sleep(0.1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a video to make the 1080p clips from (e.g. bigbuckbunny.mp4)")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--clip", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--seed", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--drags", type=int, default=3, help="drags (each with a click and a step) per seed")
    parser.add_argument("--out", default="benchmarks/results/studio.json")
    parser.add_argument("--keep", help="a folder to keep the encoded clips in and reuse them from")
    parser.add_argument("--release-waits", action="store_true",
                        help="the release waits for a drag request in flight (the page before it dropped them)")
    parser.add_argument("--pause-proxies", action="store_true",
                        help="the background pass waits while the user scrubs (the studio before)")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from streamfill.eval.results import make_result, write_result
    from streamfill.studio import scrub
    from streamfill.studio.session import Limits, Studio

    if args.pause_proxies:
        scrub.BACKGROUND_NICE = None

    rows, summary, loads = [], {}, []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        for name in args.clip:
            label, options = CLIPS[name]
            clip_path = root / f"{name}.mp4"
            kept = Path(args.keep) / f"{name}-{args.frames}.mp4" if args.keep else None
            if kept is not None and kept.is_file():
                clip_path.write_bytes(kept.read_bytes())
            else:
                make_clip(args.source, clip_path, args.frames, options)
                if kept is not None:
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    kept.write_bytes(clip_path.read_bytes())
            for state in ("cold", "fresh", "warm"):
                pooled = {}
                studio = None
                for seed in args.seed:
                    if studio is None:
                        limits = Limits(proxy_bytes=0) if state == "cold" else Limits()
                        studio = Studio(root, Path(tmp) / f"w-{name}-{state}-{seed}", limits=limits)
                        server = Server(studio)
                        c0, w0 = time.process_time(), time.perf_counter()
                        r, data = server.request("POST", "/api/open", f'{{"path": "{clip_path.name}"}}')
                        clip = studio.clip(__import__("json").loads(data)["id"])
                        if state == "warm":  # the background pass, nobody scrubbing
                            clip._builder.done.wait(600)
                            if len(clip.proxies) != clip.seeker.count:
                                raise SystemExit(f"proxies: {len(clip.proxies)} of {clip.seeker.count}")
                            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                            rows.append([label, state, None, "warm-up: open to every frame ready (s)",
                                         round(wall, 2), None, None, round(cpu, 2), None, None, None, None])
                            summary[f"{name} warm-up after open: wall s / CPU s"] = [round(wall, 2), round(cpu, 2)]
                    got = run_seed(server, clip, seed, args.drags, args.release_waits)
                    for kind, values in got.items():
                        wall, cpu, dec = ([v[k] for v in values] for k in range(3))
                        rows.append([label, state, seed, "drag: release to exact frame" if kind == "drag" else kind,
                                     *stats(wall), *stats(cpu), statistics.median(dec), max(dec)])
                        pooled.setdefault(kind, []).extend(values)
                    loads.append(os.getloadavg())
                    print(*(r for r in rows[-4:] if r[2] == seed and r[1] == state), f"load {loads[-1][0]:.1f}",
                          sep="\n", flush=True)
                    if state == "fresh":
                        rows.append([label, state, seed, "frames with a proxy after these actions",
                                     len(clip.proxies), None, None, None, None, None, None, None])
                        pooled.setdefault("proxies", []).append(len(clip.proxies))
                    if state != "warm":  # a new studio per seed: cold (fresh) again
                        server.close()
                        studio.close()
                        studio = None
                if studio is not None:
                    server.close()
                    studio.close()
                if "proxies" in pooled:
                    summary[f"{name} fresh: frames with a proxy after each seed's actions"] = pooled.pop("proxies")
                for kind, values in pooled.items():
                    wall = [v[0] for v in values]
                    summary[f"{name} {state} {kind}: wall ms median / worst"] = list(stats(wall)[:2])
                    summary[f"{name} {state} {kind}: CPU ms median / worst"] = list(stats([v[1] for v in values])[:2])
                    summary[f"{name} {state} {kind}: pictures decoded median / worst"] = [
                        statistics.median(v[2] for v in values), max(v[2] for v in values)]
                    summary[f"{name} {state} {kind}: within {TARGET_MS} ms"] = (
                        f"{sum(w <= TARGET_MS for w in wall)}/{len(wall)}")
    print(f"{time.perf_counter() - began:.0f} s", flush=True)

    load = np.mean(loads, axis=0)
    result = make_result(
        "studio", "studio: from releasing the scrubber to the exact 1080p frame shown",
        command="python benchmarks/studio_scrub.py bigbuckbunny.mp4 "
                f"--frames {args.frames} --clip {' '.join(args.clip)} "
                f"--seed {' '.join(map(str, args.seed))} --drags {args.drags}"
                + (" --release-waits" if args.release_waits else "")
                + (" --pause-proxies" if args.pause_proxies else ""),
        columns=["clip", "proxies", "seed", "case", "wall ms median", "wall ms worst", "wall ms mean",
                 "CPU ms median", "CPU ms worst", "CPU ms mean", "pictures decoded median",
                 "pictures decoded worst"],
        rows=rows, summary={"target ms": TARGET_MS, **summary}, load_avg=load,
        notes=(
            "Time from releasing the scrubber to the exact frame's preview JPEG (1280x720) received from the "
            "studio's uvicorn server on loopback, after a drag of 0.3-1.2 s with ease-out (input events every "
            "16 ms; like the page: at most one request in flight, one per 50 ms, ?approx=1: the server answers "
            "with the nearest frame it has, marked approximate, and moves its decoder toward the pointer; on "
            "release the page drops a drag request in flight and asks for the exact frame at once). 'click': "
            "a jump with no drag before it; 'step': the next frame. 'cold': no scrub proxies (every frame from "
            "a decoder, as for a clip longer than the proxy budget); 'fresh': the user drags as soon as the "
            "clip is open, while the background pass makes every frame's preview at the lowest CPU priority; "
            "'warm': after that pass ('warm-up' row: seconds from opening to every frame ready, nobody "
            "scrubbing). CPU: the process's over the same stretch, all threads; 'pictures "
            "decoded': by the scrub decoders in that stretch (a 1080p picture costs about 4 ms of one core, "
            "whatever the load). Wall times are on a shared 2-core machine: its load average is in 'machine' "
            "(mean of samples after each case). The page's own JPEG decode and draw are not included."))
    result["versions"]["av"] = av.__version__
    write_result(args.out, result)
    print(summary)


if __name__ == "__main__":
    main()

"""Benchmark (not a test): how long after the user releases the scrubber `streamfill studio` shows the exact frame.

For 1080p H.264 clips made from a source video (upscaled, ping-ponged to --frames frames; one clip per
--clip: a long GOP of 250 frames, a short one of 25, and a phone-like GOP of 30 with B-frames), it plays
what the page does, through the HTTP layer (Starlette test client):

  * drag: the pointer moves from the current frame to a random one over 0.3-1.2 s (ease-out, as a hand
    slows down before letting go), one input event every 16 ms; like the page, one request in flight at a
    time for the pointer's latest frame (``?approx=1``: the server answers with the nearest frame it has and
    decodes toward the pointer). On release the page asks for the exact frame; the time measured is from the
    release to the exact frame's JPEG received (an approximate request still in flight is waited for, as the
    page does).
  * baseline drag: the same drags with exact requests all along (what the page did before approximate
    answers): the decoder goes wherever each request sends it and the release waits for the last one.
  * click: a jump to a random frame with no drag before it (a click on the timeline, a typed number): the
    time to the exact frame (the page shows the nearest frame first).
  * step: the next frame (arrow key, playback).

"cold": the clip was just opened and no scrub proxies exist (``Limits(proxy_bytes=0)``: every frame comes from
the decoder); "warm": every frame's preview was built in the background before (``proxy build`` rows: CPU per
frame). Each case reports the median, worst and mean of wall time (the machine is shared: its load is
recorded) and of the process's CPU time over the same stretch (FFmpeg's threads included). The page's own
JPEG decode and draw are not included.

    python benchmarks/studio_scrub.py SOURCE.mp4 [--frames 300] [--clip g250 g25 g30b] [--seed 0 1 2]
"""

from __future__ import annotations

import argparse
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


class Meter:
    def __enter__(self):
        self.c0, self.w0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu = (time.process_time() - self.c0) * 1000
        self.wall = (time.perf_counter() - self.w0) * 1000


def get(client, url: str) -> tuple[int, bool]:
    r = client.get(url)
    r.raise_for_status()
    return int(r.headers["x-frame-index"]), r.headers["x-frame-exact"] == "1"


def drag(client, url: str, start: int, end: int, duration: float, *, approx: bool) -> tuple[float, float, list]:
    """One drag from ``start`` to ``end`` and its release: (wall ms, CPU ms) from release to the exact frame,
    and how far (frames) each picture shown during the drag was from the pointer."""
    t0 = time.perf_counter()
    off, last, sent = [], None, 0.0
    query = "?approx=1" if approx else ""
    at_release = {}
    # the process's CPU time at the moment of release, even while a request is in flight then
    timer = threading.Timer(duration, lambda: at_release.setdefault("cpu", time.process_time()))
    timer.start()
    while True:
        t = time.perf_counter() - t0
        if t >= duration:
            break
        # the pointer at time t (ease-out: fast first, slowing down to the release), on a 16 ms event grid
        u = (int(t / EVENT_S) * EVENT_S) / duration
        pointer = round(start + (end - start) * (1 - (1 - u) ** 3))
        if pointer != last and time.perf_counter() - sent >= APPROX_S:
            sent = time.perf_counter()
            shown, _ = get(client, f"{url}{pointer}{query}")
            off.append(abs(shown - pointer))
            last = pointer
        else:
            time.sleep(0.002)
    timer.join()
    # the release happened at t0 + duration; a request still in flight then delays the exact one, as on the page
    index, exact = get(client, f"{url}{end}")
    wall = (time.perf_counter() - (t0 + duration)) * 1000
    cpu = (time.process_time() - at_release["cpu"]) * 1000
    assert index == end and exact, (index, exact, end)
    return wall, cpu, off


def stats(values):
    return round(statistics.median(values), 1), round(max(values), 1), round(statistics.mean(values), 1)


def run_case(studio_factory, clip_path: Path, frames: int, seed: int, drags: int, warm: bool, client_factory):
    rng = np.random.default_rng(seed)
    studio = studio_factory(warm)
    out = {}
    try:
        with client_factory(studio) as client:
            r = client.post("/api/open", json={"path": clip_path.name})
            r.raise_for_status()
            clip = studio.clip(r.json()["id"])
            build = None
            if warm:
                with Meter() as m:
                    clip._builder.done.wait(600)
                if len(clip.proxies) != frames:
                    raise SystemExit(f"proxies: {len(clip.proxies)} of {frames}")
                build = (m.cpu / frames, m.wall / frames)
            url = f"/api/clips/{clip.id}/frames/"
            at = int(rng.integers(0, frames))
            get(client, f"{url}{at}")
            results = {"drag": [], "baseline drag": [], "click": [], "step": []}
            for _ in range(drags):
                end = int(rng.integers(0, frames))
                duration = float(rng.uniform(0.3, 1.2))
                for kind in ("drag", "baseline drag"):  # interleaved A/B, the same drag for both
                    if kind == "baseline drag":
                        get(client, f"{url}{at}")  # back to where the drag started
                    wall, cpu, off = drag(client, url, at, end, duration, approx=kind == "drag")
                    results[kind].append((wall, cpu))
                    out.setdefault(f"{kind} off", []).extend(off)
                    time.sleep(0.5)  # the user looks at the frame
                at = end
                target = int(rng.integers(0, frames))
                with Meter() as m:
                    assert get(client, f"{url}{target}") == (target, True)
                results["click"].append((m.wall, m.cpu))
                if target + 1 < frames:
                    with Meter() as m:
                        assert get(client, f"{url}{target + 1}") == (target + 1, True)
                    results["step"].append((m.wall, m.cpu))
                    target += 1
                at = target
                time.sleep(0.2)
            for kind, values in results.items():
                out[kind] = values
            out["build"] = build
    finally:
        studio.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--clip", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--seed", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--drags", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/studio.json")
    parser.add_argument("--keep", help="a folder to keep the encoded clips in and reuse them from")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from starlette.testclient import TestClient

    from streamfill.eval.results import make_result, write_result
    from streamfill.studio.app import create_app
    from streamfill.studio.session import Limits, Studio

    rows, summary, loads = [], {}, []
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
            for warm in (False, True):
                def factory(warm, name=name):
                    limits = Limits() if warm else Limits(proxy_bytes=0)
                    return Studio(root, Path(tmp) / f"w-{name}-{time.monotonic_ns()}", limits=limits)

                pooled = {}
                for seed in args.seed:
                    got = run_case(factory, clip_path, args.frames, seed, args.drags, warm,
                                   lambda s: TestClient(create_app(s), base_url="http://127.0.0.1"))
                    state = "warm" if warm else "cold"
                    for kind in ("drag", "baseline drag", "click", "step"):
                        wall = [v[0] for v in got[kind]]
                        cpu = [v[1] for v in got[kind]]
                        rows.append([label, state, seed, f"{kind}: release to exact frame" if "drag" in kind
                                     else kind, *stats(wall), *stats(cpu)])
                        pooled.setdefault(kind, []).extend(got[kind])
                    for kind in ("drag", "baseline drag"):
                        pooled.setdefault(f"{kind} off", []).extend(got[f"{kind} off"])
                    if got["build"] is not None:
                        rows.append([label, state, seed, "proxy build, per frame", round(got["build"][1], 1),
                                     None, None, round(got["build"][0], 1), None, None])
                    loads.append(os.getloadavg())
                    print(rows[-1], flush=True)
                for kind in ("drag", "baseline drag"):
                    off = pooled.pop(f"{kind} off")
                    summary[f"{name} {state} {kind}: frames between pointer and picture during the drag, "
                            "median / worst"] = [float(np.median(off)), int(max(off))]
                for kind, values in pooled.items():
                    wall = stats([v[0] for v in values])
                    summary[f"{name} {state} {kind}: median / worst wall ms"] = [wall[0], wall[1]]

    load = np.mean(loads, axis=0)
    result = make_result(
        "studio", "studio: from releasing the scrubber to the exact 1080p frame shown",
        command="python benchmarks/studio_scrub.py bigbuckbunny.mp4 "
                f"--frames {args.frames} --clip {' '.join(args.clip)} "
                f"--seed {' '.join(map(str, args.seed))} --drags {args.drags}",
        columns=["clip", "proxies", "seed", "case", "wall ms median", "wall ms worst", "wall ms mean",
                 "CPU ms median", "CPU ms worst", "CPU ms mean"],
        rows=rows, summary={"target ms": 150, **summary}, load_avg=load,
        notes=(
            "Time from releasing the scrubber to the exact frame's preview JPEG (1280x720) received, through the "
            "HTTP layer, after a drag of 0.3-1.2 s with ease-out (input events every 16 ms, one request in "
            "flight like the page). 'drag': the page sends the pointer's frame with ?approx=1 while dragging "
            "(the server answers with the nearest frame it has, marked approximate, and moves its decoder toward "
            "the pointer, behind it when dragging backward); 'baseline drag': the same drags with exact requests "
            "all along (the page before). 'click': a jump with no drag before it (timeline click, typed frame "
            "number); 'step': the next frame. 'cold': no scrub proxies (every frame decoded on demand); 'warm': "
            "all proxies built in the background first ('proxy build' rows: wall and CPU per frame). Wall times "
            "are on a shared 2-core machine (load average in 'machine'); CPU times are the process's over the "
            "same stretch, decoder threads included; the load average is the mean of samples taken after each "
            "case. The page's own JPEG decode and draw are not included."))
    result["versions"]["av"] = av.__version__
    write_result(args.out, result)
    print(summary)


if __name__ == "__main__":
    main()

"""Benchmark (not a test): how long `streamfill studio` takes to answer a frame while scrubbing a 1080p clip.

Measures, for a 1080p H.264 clip made from a source video (upscaled; --keyint sets the GOP):
  * cold random access: the seek path (seek to the keyframe before, decode forward, downscale, JPEG), as when
    the page asks for a frame the scrub proxies do not hold yet;
  * stepping: the next frame (arrow key / playback), decoded on without seeking;
  * proxy build: the background pass that decodes every frame once into a preview JPEG;
  * warm random access: the same random frames once the proxies are built, through the HTTP layer
    (Starlette test client: routing, the guard middleware, the thread pool and the response).
Each request's time is the process's CPU time (time.process_time: FFmpeg's decoder threads included; nothing
else runs meanwhile) and its wall time; the page's own JPEG decode and draw are not included.
Writes benchmarks/results/studio.json.

    python benchmarks/studio_scrub.py SOURCE.mp4 [--frames 132] [--keyint 250 25] [--seed 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import date
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def make_clip(source: str, out: Path, frames: int, keyint: int) -> None:
    with av.open(source) as src, av.open(str(out), "w") as dst:
        v = dst.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 1920, 1080, "yuv420p"
        v.options = {"preset": "veryfast", "crf": "20", "g": str(keyint), "keyint_min": str(min(keyint, 25))}
        v.codec_context.time_base = Fraction(1, 25)
        for n, frame in enumerate(src.decode(video=0)):
            if n == frames:
                break
            image = cv2.resize(frame.to_ndarray(format="rgb24"), (1920, 1080), interpolation=cv2.INTER_CUBIC)
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts = n
            for p in v.encode(vf):
                dst.mux(p)
        for p in v.encode(None):
            dst.mux(p)


def timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return (time.process_time() - c0) * 1000, (time.perf_counter() - w0) * 1000


def summary(values):
    return round(statistics.median(values), 1), round(max(values), 1), round(statistics.mean(values), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source")
    parser.add_argument("--frames", type=int, default=132)
    parser.add_argument("--keyint", type=int, nargs="+", default=[250, 25])
    parser.add_argument("--seed", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--out", default="benchmarks/results/studio.json")
    args = parser.parse_args()

    from starlette.testclient import TestClient

    import streamfill
    from streamfill.studio.app import create_app
    from streamfill.studio.session import Limits, Studio

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        for keyint in args.keyint:
            clip_path = root / f"clip-g{keyint}.mp4"
            make_clip(args.source, clip_path, args.frames, keyint)
            for seed in args.seed:
                rng = np.random.default_rng(seed)
                picks = [int(i) for i in rng.integers(0, args.frames, args.requests)]
                # cold: no proxies, every jump goes through the seek path
                cold = Studio(root, Path(tmp) / f"w-cold-{keyint}-{seed}", limits=Limits(proxy_bytes=0))
                clip = cold.open_clip(clip_path, clip_path.name)
                cold_t = [timed(lambda i=i, c=clip: c.frame_jpeg(i)) for i in picks]
                start = picks[0] if picks[0] < args.frames - args.requests else 0
                clip._cache.clear()  # every step decodes (no answer from the cache of the jumps above)
                clip.seeker.frame(start)  # the decoder stands at ``start``, as after showing it
                step_t = [timed(lambda i=i, c=clip: c.frame_jpeg(i))
                          for i in range(start + 1, start + 1 + args.requests)]
                cold.close()
                # warm: proxies built in the background, then the same jumps over HTTP
                warm = Studio(root, Path(tmp) / f"w-warm-{keyint}-{seed}")
                c0 = time.process_time()
                w0 = time.perf_counter()
                clip = warm.open_clip(clip_path, clip_path.name)
                while len(clip.proxies) < args.frames:
                    time.sleep(0.02)
                build_cpu = (time.process_time() - c0) * 1000 / args.frames
                build_wall = (time.perf_counter() - w0) * 1000 / args.frames
                with TestClient(create_app(warm), base_url="http://127.0.0.1") as client:
                    url = f"/api/clips/{clip.id}/frames/"
                    warm_t = [timed(lambda i=i, u=url, c=client: c.get(u + str(i)).raise_for_status()) for i in picks]
                warm.close()
                for case, values in (("cold jump (seek + decode)", cold_t), ("next frame (step)", step_t),
                                     ("jump with proxies (HTTP)", warm_t)):
                    cpu = [v[0] for v in values]
                    wall = [v[1] for v in values]
                    rows.append([f"1080p GOP {keyint}", seed, case, *summary(cpu), *summary(wall)])
                rows.append([f"1080p GOP {keyint}", seed, "proxy build, per frame", round(build_cpu, 1), None,
                             None, round(build_wall, 1), None, None])

    with open("/proc/cpuinfo") as fh:
        cpu_model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")),
                         platform.processor())
    import torch

    versions = {"streamfill": streamfill.__version__, "python": platform.python_version(), "torch": torch.__version__,
                "opencv": cv2.__version__, "av": av.__version__}
    with_proxy = [r for r in rows if r[2] == "jump with proxies (HTTP)"]
    cold = [r for r in rows if r[2] == "cold jump (seek + decode)"]
    steps = [r for r in rows if r[2] == "next frame (step)"]
    result = {
        "item": "studio",
        "title": "studio: time to answer a frame while scrubbing a 1080p clip",
        "date": date.today().isoformat(),
        "machine": {"cpu": cpu_model, "cores": os.cpu_count(), "gpu": None,
                    "load_avg": [round(x, 2) for x in os.getloadavg()]},
        "versions": versions,
        "command": "python benchmarks/studio_scrub.py bigbuckbunny.mp4 "
                   f"--frames {args.frames} --keyint {' '.join(map(str, args.keyint))} "
                   f"--seed {' '.join(map(str, args.seed))} --requests {args.requests}",
        "columns": ["clip", "seed", "request", "CPU ms median", "CPU ms worst", "CPU ms mean",
                    "wall ms median", "wall ms worst", "wall ms mean"],
        "rows": rows,
        "summary": {
            "jump with proxies, worst CPU ms": max(r[4] for r in with_proxy),
            "jump with proxies, worst wall ms": max(r[7] for r in with_proxy),
            "next frame, worst CPU ms": max(r[4] for r in steps),
            "cold jump GOP 250, worst CPU ms": max(r[4] for r in cold if "250" in r[0]),
            "cold jump GOP 25, worst CPU ms": max(r[4] for r in cold if r[0].endswith(" 25")),
            "target ms": 150,
        },
        "notes": ("Time for the studio server to answer one frame while scrubbing (decode + downscale to the 1280x720 "
                  "preview + JPEG), as process CPU time (FFmpeg's decoder threads included) and wall time on a "
                  "shared machine (wall times are dominated by the other jobs' load). 'jump with proxies' is the "
                  "normal case once a clip has been open for a while: every frame's preview was decoded once in the "
                  "background (the 'proxy build' rows: CPU per frame), and a jump anywhere is answered from memory "
                  "through the HTTP layer. 'cold jump' is a jump to a frame the proxies do not hold yet: a seek to "
                  "the keyframe before it and a decode forward (unreferenced pictures skipped), so its cost grows "
                  "with the GOP length. 'next frame' is an arrow-key step or playback (decode on, no seek). The "
                  "page's own JPEG decode and draw are not included."),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))
    subprocess.run(["uptime"], check=False)


if __name__ == "__main__":
    main()

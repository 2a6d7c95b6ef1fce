"""Chunked rendering on Ray: 2 local worker nodes versus 1 on a 600-frame clip, and what chunking costs.

A synthetic clip (default 160x96, 24 fps, 600 frames, keyframes every second, one scene cut, a moving
square behind a fixed hole, mono AAC) is processed with temporal ``fast`` + Telea, lossless:

- once by ``api.process`` (the single-machine reference: wall and CPU time),
- then by ``process_chunked`` on a ``ray.cluster_utils.Cluster`` with 1 and with 2 worker nodes (1 CPU each),
  interleaved, ``--repeats`` times each. Cluster start-up is not counted.

Per run: wall time, the serial pass (decode + scene cuts), the render (all workers), the join (packet copy),
the workers' CPU time, and frames decoded by the workers versus written (the pre-roll/post-roll overhead).
Also checks that each chunked output has the reference's frame count and pts and reports the PSNR of the
whole frames against the reference.

    python benchmarks/ray_bench.py [--frames 600] [--size 160x96] [--chunk-seconds 5] [--repeats 2]
                                   [--json benchmarks/results/ray.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

FPS = 24


def make_clip(path: Path, frames: int, width: int, height: int) -> None:
    """Two shots of a slowly panning texture (1 px per frame, so what the fixed hole hides is seen a little
    later), different in colour (a detectable scene cut at the middle), a square moving across."""
    rng = np.random.default_rng(0)
    pan = frames // 2 + width
    shots = [rng.integers(0, 255, (height // 4, pan // 4 + 1, 3), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
             for _ in range(2)]
    shots[0][..., 2] //= 3       # shot 1 warm, shot 2 cold
    shots[1][..., 0] //= 3
    tb = Fraction(1, FPS)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"preset": "veryfast", "crf": "14", "g": str(FPS), "keyint_min": str(FPS)}
        v.codec_context.time_base = v.time_base = tb
        a = out.add_stream("aac", rate=48000, layout="mono")
        for i in range(frames):
            shot, k = (0, i) if i < frames // 2 else (1, i - frames // 2)
            img = np.ascontiguousarray(shots[shot][:, k:k + width])
            x = 4 + (i * 2) % (width - 24)
            img[4:20, x:x + 16] = (240, 230, 40)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            vf.pts, vf.time_base = i, tb
            for p in v.encode(vf):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        n = int(frames / FPS * 48000)
        samples = (np.sin(2 * np.pi * 440 * np.arange(n) / 48000) * 0.3).astype(np.float32)
        for k in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(samples[None, k:k + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 48000, k, Fraction(1, 48000)
            for p in a.encode(af):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)


def frames_of(path: Path):
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def psnr(a, b, box) -> tuple[float, float]:
    """(mean over frames, worst frame) PSNR in dB between two outputs inside ``box`` (the hole and its margin);
    outside it a lossless chunked output must equal the reference exactly (checked, else ValueError)."""
    y0, y1, x0, x1 = box
    values = []
    for (_, x), (_, y) in zip(a, b, strict=True):
        outside = np.ones(x.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        if not np.array_equal(x[outside], y[outside]):
            raise ValueError("pixels outside the hole differ from the single-machine output")
        mse = float(((x[y0:y1, x0:x1].astype(np.float64) - y[y0:y1, x0:x1]) ** 2).mean())
        values.append(99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
    return float(np.mean(values)), float(min(values))


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_chunked(nodes: int, src: Path, hole: Path, out: Path, cfg, chunk_seconds: float) -> dict:
    from ray.cluster_utils import Cluster

    from streamfill.distributed import process_chunked, ray_backend

    t0 = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(nodes):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray_backend.connect(cluster.address)
    startup = time.perf_counter() - t0
    executor = ray_backend.RayExecutor(cfg)
    try:
        c0 = cpu()
        r = process_chunked(src, out, mask=hole, config=cfg, executor=executor, chunk_seconds=chunk_seconds)
        driver_cpu = cpu() - c0
    finally:
        executor.close()
        ray_backend.shutdown()
        cluster.shutdown()
    return {"nodes": nodes, "cluster_start": startup, "workers_start": r.startup_seconds, "wall": r.seconds,
            "serial": r.analyse_seconds,
            "render": r.render_seconds, "join": r.join_seconds, "worker_cpu": r.worker_cpu_seconds,
            "driver_cpu": driver_cpu, "decoded": r.decoded, "frames": r.frames, "chunks": r.chunks,
            "nodes_used": len(r.nodes), "cuts": r.cuts_used, "preroll": r.preroll, "postroll": r.postroll}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", default="160x96")
    ap.add_argument("--chunk-seconds", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    from streamfill import __version__, api
    from streamfill.config import load_config

    cfg = load_config(None, {"io": {"lossless": True}, "temporal": {"mode": "fast"}, "engine": {"name": "telea"}})
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src, hole = d / "clip.mp4", d / "hole.png"
        make_clip(src, args.frames, w, h)
        mask = np.zeros((h, w), np.uint8)
        mask[h // 2 - 12:h // 2 + 12, w // 2 - 16:w // 2 + 16] = 255
        box = (h // 2 - 12 - 8, h // 2 + 12 + 8, w // 2 - 16 - 8, w // 2 + 16 + 8)  # + dilate and feather
        from streamfill.io import write_image

        write_image(hole, np.repeat(mask[..., None], 3, axis=2))
        c0, t0 = cpu(), time.perf_counter()
        api.process(src, d / "single.mkv", mask=hole, config=cfg)
        single = {"wall": time.perf_counter() - t0, "cpu": cpu() - c0}
        ref = frames_of(d / "single.mkv")
        print(f"single machine: {single['wall']:.1f} s wall, {single['cpu']:.1f} s CPU", flush=True)
        runs = []
        for rep in range(args.repeats):
            for nodes in (1, 2) if rep % 2 == 0 else (2, 1):
                out = d / f"chunked-{nodes}-{rep}.mkv"
                r = run_chunked(nodes, src, hole, out, cfg, args.chunk_seconds)
                got = frames_of(out)
                r["same_pts"] = [p for p, _ in got] == [p for p, _ in ref]
                r["psnr"], r["psnr_worst"] = psnr(ref, got, box)
                r["run"] = rep
                out.unlink()
                runs.append(r)
                print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
    load = os.getloadavg()
    med = {n: statistics.median(r["wall"] for r in runs if r["nodes"] == n) for n in (1, 2)}
    written = args.frames
    decoded = statistics.median(r["decoded"] for r in runs)
    summary = {
        "single_machine_wall_s": round(single["wall"], 2),
        "median_wall_s_1_node": round(med[1], 2),
        "median_wall_s_2_nodes": round(med[2], 2),
        "speedup_2_vs_1_nodes": round(med[1] / med[2], 2),
        "chunked_1_node_vs_single": round(single["wall"] / med[1], 2),
        "preroll_overhead_frames": round(decoded / written - 1, 3),
        "median_join_s": round(statistics.median(r["join"] for r in runs), 3),
        "median_serial_pass_s": round(statistics.median(r["serial"] for r in runs), 2),
        "all_same_pts": all(r["same_pts"] for r in runs),
        "mean_psnr_in_hole_vs_single_db": round(statistics.mean(r["psnr"] for r in runs), 2),
        "worst_frame_psnr_in_hole_vs_single_db": round(min(r["psnr_worst"] for r in runs), 2),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        import cv2
        import onnxruntime
        import torch

        info = Path("/proc/cpuinfo").read_text().splitlines()
        cpu_name = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")),
                        platform.processor())
        columns = ["nodes", "run", "wall s", "workers start s", "serial pass s", "render s", "join s", "worker CPU s",
                   "frames decoded", "frames written", "chunks", "nodes used", "hole PSNR vs single dB (mean)",
                   "(worst frame)"]
        rows = [[r["nodes"], r["run"], round(r["wall"], 2), round(r["workers_start"], 2), round(r["serial"], 2),
                 round(r["render"], 2), round(r["join"], 3), round(r["worker_cpu"], 2), r["decoded"], r["frames"],
                 r["chunks"], r["nodes_used"], round(r["psnr"], 2), round(r["psnr_worst"], 2)] for r in runs]
        data = {"item": "ray", "title": "Chunked rendering on Ray: 2 local worker nodes vs 1",
                "date": datetime.date.today().isoformat(),
                "machine": {"cpu": cpu_name, "cores": os.cpu_count(), "gpu": None,
                            "load_avg": [round(v, 2) for v in load]},
                "versions": {"streamfill": __version__, "python": platform.python_version(),
                             "torch": torch.__version__, "opencv": cv2.__version__,
                             "onnxruntime": onnxruntime.__version__, "ray": __import__("ray").__version__},
                "command": "python benchmarks/ray_bench.py " + " ".join(
                    f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "json" and v is not None)
                + (f" --json {args.json}" if args.json else ""),
                "columns": columns, "rows": rows, "summary": summary,
                "notes": ""}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Memory of temporal completion versus clip length: a synthetic (default 640x360) stream (textured background
panning slowly, a moving hole) of 10 s and of 10 min at 25 fps is pushed through ``TemporalCompletion``; the
growth of the process's peak RSS (and with ``--trace`` the peak traced Python/numpy memory) is printed for
each. Run each length in its own process for a clean RSS figure. The engine is a
cheap stand-in (the hole is filled with grey) so the measurement is about the window and the memories.

    python benchmarks/temporal_memory.py [--mode fast] [--seconds 10 600]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from fractions import Fraction

import cv2
import numpy as np

from streamfill.config import TemporalConfig
from streamfill.temporal import TemporalCompletion
from streamfill.types import Frame

FPS = 25


def stream(n: int, W: int, H: int):
    rng = np.random.default_rng(0)
    big = cv2.resize(rng.integers(0, 255, (H // 8, (W + 400) // 8, 3), dtype=np.uint8), (W + 400, H),
                     interpolation=cv2.INTER_CUBIC)
    big = np.ascontiguousarray(big[:, :W + 400])
    for i in range(n):
        x = int(200 + 150 * np.sin(i / 100))
        image = np.ascontiguousarray(big[:, x:x + W])
        mask = np.zeros((H, W), np.uint8)
        cv2.circle(mask, (int(W / 2 + W / 3 * np.sin(i / 37)), H // 2), H // 7, 255, -1)
        yield Frame(image=image, pts=i, time_base=Fraction(1, FPS), index=i), mask


def grey_fill(image, mask):
    out = image.copy()
    out[mask > 0] = 128
    return out


def measure(seconds: float, mode: str, size: tuple[int, int], trace: bool = False) -> dict:
    n = int(seconds * FPS)
    tc = TemporalCompletion(grey_fill, TemporalConfig(mode=mode))
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    count = 0
    for _ in tc.stream(stream(n, *size)):
        count += 1
    peak = float("nan")
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {"seconds": seconds, "frames": count, "peak_traced_mb": peak / 2**20,
            "maxrss_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024,
            "held_frames": tc.max_held, "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="fast", choices=("fast", "quality"))
    ap.add_argument("--seconds", type=float, nargs="+", default=[10, 600])
    ap.add_argument("--size", default="640x360", help="frame size WxH (default 640x360)")
    ap.add_argument("--trace", action="store_true", help="also trace Python allocations (tracemalloc; slow)")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    for s in args.seconds:
        r = measure(s, args.mode, size, args.trace)
        print(f"{r['seconds']:6.0f} s clip ({r['frames']} frames): peak traced {r['peak_traced_mb']:.1f} MB, "
              f"max RSS growth {r['maxrss_growth_mb']:.1f} MB, frames held {r['held_frames']}, "
              f"{r['frames'] / r['wall_s']:.1f} fps")


if __name__ == "__main__":
    main()

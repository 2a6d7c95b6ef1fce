"""Profile the ONNX Runtime graph of the generator against eager PyTorch on CPU, and write a result file.

    python benchmarks/onnx_profile.py [--size 256] [--threads 1] [--runs 6] [--out benchmarks/results/onnx_profile.json]

Loads the shipped weights (or ``--weights``), exports the graph for one working size (the engine cache's file
is reused when present), then times ORT and eager torch interleaved (ORT, torch, torch, ORT, ...) with the
process CPU time and the wall time of each call, ``--threads`` threads for both (torch.set_num_threads and
ORT's intra-op pool). ORT's own profiler (``SessionOptions.enable_profiling``) records every node; the result
file lists the share of each operator type and the ten most expensive nodes. With one thread the CPU times
compare the two engines' arithmetic without the other jobs of a shared machine getting in (spinning OpenMP
workers of eager torch burn CPU time when their cores are taken, which inflates its CPU time under load).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=6)
    p.add_argument("--weights", help="generator .safetensors (default: the shipped weights)")
    p.add_argument("--out", default="benchmarks/results/onnx_profile.json")
    p.add_argument("--notes", default="")
    args = p.parse_args(argv)

    import onnxruntime as ort
    import torch

    from streamfill import build
    from streamfill.backends.neural import model_inputs
    from streamfill.backends.onnx import session_options
    from streamfill.backends.torch import TorchInpainter
    from streamfill.config import Config, merge
    from streamfill.eval.bench import sample_crops
    from streamfill.eval.results import make_result, write_result

    torch.set_num_threads(args.threads)
    config = merge(Config(), {"engine": {"threads": args.threads, **({"weights": args.weights} if args.weights
                                                                     else {})}})
    # the cached ONNX file of this size (exported on first use, like `--engine onnx` does)
    choice = build.choose_engine(merge(config, {"engine": {"name": "onnx"}}))
    onnx_engine, entries = build.load_neural(config, choice, sizes=(args.size,))
    model_path = str(entries[0].path)
    images, masks = sample_crops(args.size, 1)
    arrays = model_inputs(images, masks, None, onnx_engine.guided)
    with tempfile.TemporaryDirectory() as tmp:
        so = session_options(args.threads)
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "ort")
        prof_session = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
        feed = dict(zip([i.name for i in prof_session.get_inputs()], arrays, strict=True))
        eager = TorchInpainter.from_weights(args.weights, device="cpu")
        for _ in range(2):
            prof_session.run(None, feed)
            eager.inpaint(images, masks)
        times = {"onnx": ([], []), "torch": ([], [])}

        def call(name):
            c0, w0 = time.process_time(), time.perf_counter()
            prof_session.run(None, feed) if name == "onnx" else eager.inpaint(images, masks)
            w1, c1 = time.perf_counter(), time.process_time()
            times[name][0].append(1000 * (w1 - w0))
            times[name][1].append(1000 * (c1 - c0))

        load0 = os.getloadavg()
        for r in range(args.runs):
            for name in (("onnx", "torch") if r % 2 == 0 else ("torch", "onnx")):
                call(name)
        load1 = os.getloadavg()
        events = json.loads(Path(prof_session.end_profiling()).read_text())
    by_op, count, by_node = collections.Counter(), collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name", "?")
            by_op[op] += e["dur"]
            count[op] += 1
            by_node[e["name"][: -len("_kernel_time")]] += e["dur"]
    total = sum(by_op.values()) or 1
    calls = args.runs + 2
    rows = [[op, round(100 * d / total, 1), count[op] // calls] for op, d in by_op.most_common(12)]
    ratio_wall = statistics.median(t / o for t, o in zip(times["torch"][0], times["onnx"][0], strict=True))
    ratio_cpu = statistics.median(t / o for t, o in zip(times["torch"][1], times["onnx"][1], strict=True))
    summary = {
        "threads": args.threads,
        "ORT median wall / CPU ms": f"{statistics.median(times['onnx'][0]):.0f} / "
                                    f"{statistics.median(times['onnx'][1]):.0f}",
        "eager median wall / CPU ms": f"{statistics.median(times['torch'][0]):.0f} / "
                                      f"{statistics.median(times['torch'][1]):.0f}",
        "speed-up, median of same-run ratios (wall / CPU)": f"{ratio_wall:.2f}x / {ratio_cpu:.2f}x",
        "most expensive nodes (share of ORT node time)": ", ".join(
            f"{n} {100 * d / total:.1f} %" for n, d in by_node.most_common(6)),
    }
    print(json.dumps(summary, indent=1), flush=True)
    from streamfill.eval.results import command_line

    argv_text = command_line(argv if argv is not None else sys.argv[1:]).removeprefix("streamfill ")
    result = make_result(
        Path(args.out).stem, f"ONNX Runtime profile of the generator at {args.size} px, {args.threads} thread(s)",
        command=f"python benchmarks/onnx_profile.py {argv_text}".strip(),
        columns=["ORT operator", "share of node time %", "nodes"], rows=rows, summary=summary, notes=args.notes,
        load_avg=[round((a + b) / 2, 2) for a, b in zip(load0, load1, strict=True)])
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

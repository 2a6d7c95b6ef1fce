"""Mask tracking on the hard-case suite: writes benchmarks/results/tracking.json (the format BENCHMARKS.md is
rendered from). Runs `streamfill eval masks` (the suite: every case, seeds 0-2, on the even-numbered photos of
PHOTOS), then its held-out part (seeds 1000-1001 on the odd-numbered photos) and the fresh seed groups of
``FRESH`` (same photos), and reports them separately. With ``--before DIR`` (a folder holding another checkout's
``streamfill`` package, e.g. the main branch before a change), the groups of ``BEFORE`` are also run with that
tracker (in a second process, alongside), as the baseline beside them.

    python benchmarks/tracking.py --photos DIR [--before DIR] [-o benchmarks/results/tracking.json] [--frames 90]

With ``--real VIDEO...`` it measures instead what a codec and real footage do to the tracker (item
``tracking_compressed``, default output benchmarks/results/tracking_compressed.json): the seeds of ``COMPRESSED``
on the held-out photos, each scene on exact pixels and through an H.264 round trip (``eval masks --codec h264``),
over the generated backgrounds and over each VIDEO (``--backdrop``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import threading

# "fresh": seeds nobody looked at while tuning (on the held-out photos), one group per pass; a group once looked
# at (and tuned on) is not fresh any more, so the newest group is the honest held-out figure.
FRESH = {2000: (2000, 2001), 3000: (3000, 3001, 3002), 4000: (4000, 4001, 4002), 5000: (5000, 5001, 5002),
         6000: (6000, 6001, 6002), 7000: (7000, 7001, 7002), 8000: (8000, 8001, 8002),
         9600: (9600, 9601, 9602)}
BEFORE = (5000, 6000, 7000, 8000, 9600)  # the groups also run with the --before tracker
COMPRESSED = (10160, 10161, 10162)  # --real: the newest seeds, never tuned on (run once, with this tracker and the one
# before its last change); 9950-9952, 9970-9972, 9980-9982, 9990-9992, 10010-10012, 10020-10022, 10030-10032,
# 10040-10042, 10050-10052, 10060-10062, 10070-10072, 10080-10082, 10090-10092, 10100-10102, 10110-10112,
# 10120-10122, 10130-10132, 10140-10142, 10150-10152: earlier passes, spent (next unspent: 10170)
_CHILD = """
import json, os, sys
import cv2
cv2.setNumThreads(1)  # timed as this checkout's eval times its tracker (older ones left OpenCV's threads on)
import streamfill
assert streamfill.__file__.startswith(os.getcwd()), streamfill.__file__  # the other checkout's, not this one
from streamfill.eval.masks import evaluate_suite
seeds = tuple(json.loads(sys.argv[1]))
report = evaluate_suite(seeds=seeds, photos=sys.argv[2], held_out=True, frames=int(sys.argv[3]))
print(json.dumps({"summary": report.summary(), "runs": report.to_dict(per_frame=False)["runs"]}))
"""


def _row(part: str, r: dict) -> list:
    smallest = round(r["object_min_px"]) if "object_min_px" in r else "-"  # a baseline checkout may not give it
    return [part, r["case"], r["seed"], f"{r['size'][0]}x{r['size'][1]}", round(r["object_px"]), smallest,
            round(r["mean_iou"], 3), round(r["min_iou"], 3), round(r["max_area_change"], 2),
            round(r["cpu_ms_per_frame"], 1),
            ";".join(f"{a}-{b}" for a, b in r["lost"]) or "-"]


_CPU_MODEL = (
    "IoUs depend on the CPU model in their last digits: the same code and library versions on an Intel Xeon and on "
    "an AMD EPYC moved 56 of the suite's 196 runs, each by at most 0.007 in mean IoU (together -0.013) and by up "
    "to 0.06 in min IoU, since OpenCV's kernels round differently per instruction set and a track can follow "
    "those bits; compare two trackers only on one machine, as the 'before' parts do.")

_SIZES = (
    "'object px' is the object's longer side at frame 0, 'object px (smallest)' the shortest it gets over the run "
    "(its path scales it by up to +-30 % and turns it; '-' where the baseline checkout does not report it). A "
    "part's 'misses' counts its runs under the issue's target (mean IoU < 0.90 or min IoU < 0.60), "
    "'misses_object_20px_up' those among the 'runs_object_20px_up' whose object stays at least 20 px long (the "
    "issue's targets are for objects from 20 px up); both are given. " + _CPU_MODEL)


def _misses(runs: list[dict]) -> dict:
    """Runs under the issue's target (mean IoU < 0.90 or min IoU < 0.60), all of them and those whose object
    stays at least 20 px long throughout (the issue's targets are for objects from 20 px up)."""
    def miss(r: dict) -> bool:
        return r["mean_iou"] < 0.9 or r["min_iou"] < 0.6

    big = [r for r in runs if r["object_min_px"] >= 20]
    return {"misses": sum(map(miss, runs)), "runs_object_20px_up": len(big),
            "misses_object_20px_up": sum(map(miss, big))}


def _notes(before: bool) -> str:
    return (
        "Random cut-outs (random blob shape, texture patch from a photo) along random smooth paths over "
        "generated scenes: pan (60-200 px objects), small (20-32 px), foliage (non-rigid swaying background, "
        "320x240), talking (non-rigid object, 352x288), shake (hand-held camera with motion blur), tiny "
        "(176x144), cut (scene cut to another photo two thirds in; the object is absent after it). 90 frames "
        "each; the tracker starts from frame 0's true mask. PHOTOS = the project's training photos (even "
        "positions for tuning seeds 0-2, odd positions for the held-out seeds 1000-1001 and the fresh seed "
        "groups 2000-9600). Held-out and fresh 2000-7000 seeds were looked at while fixing their failures "
        "(shake 1000, talking 1000, cut 2001, tiny 3001, cut 3001, foliage 6001 and tiny 6001 among others, on "
        "both halves of the photos) and tuning on them; 'fresh 8000' was run with the sixth round's candidate "
        "variants and counted in choosing between them (no constant tuned on it). 'fresh 9600' was run once, "
        "after the seventh round (the anchored shape averaged with the flow's mask; chosen on seeds 0-2, "
        "9500-9519 and validated on 9520-9559 of `eval masks`), and never looked at before. Later passes ran "
        "their fresh seeds through H.264 and over real clips (the 'tracking_compressed' item; "
        f"{COMPRESSED[0]}-{COMPRESSED[-1]} is the newest group). "
        + ("The 'before' parts are the tracker of the main branch before this change on the same scenes "
           "(MAIN_CHECKOUT = a checkout of it), in a second process that runs them while this one runs the first "
           "parts: their CPU times come from another moment of a shared machine, so compare trackers' CPU only "
           "in an interleaved run (docs/guide/tracking.md). " if before else
           "No 'before' part: this tracker is the main branch's, with no change to compare (the variants tried "
           "against it and dropped are in docs/guide/tracking.md). ")
        + "CPU time is process time of the tracker alone with OpenCV on one thread (its idle worker threads "
        "would count too, more the emptier the machine), on a shared machine: treat it as an upper bound. The "
        "area change is how much more (or less) the mask's area changed from one frame to the next than the "
        "truth's did (1 = the same). " + _SIZES
    )


def main(argv: list[str] | None = None) -> int:
    from streamfill.eval import results
    from streamfill.eval.masks import evaluate_suite

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", required=True, help="folder of photos (backgrounds and object textures)")
    p.add_argument("--before", help="folder holding another checkout's streamfill package: the baseline tracker")
    p.add_argument("-o", "--output", help="default: benchmarks/results/tracking.json (tracking_compressed.json "
                                          "with --real)")
    p.add_argument("--frames", type=int, default=90)
    p.add_argument("--real", nargs="+", metavar="VIDEO", help="measure codec and real footage instead (see above)")
    args = p.parse_args(argv)
    if args.real:
        return _compressed(args)
    load_before = [round(v, 2) for v in os.getloadavg()]
    rows, parts = [], {}
    befores: dict[str, dict] = {}
    worker = None
    if args.before:
        # The baseline runs in a second process alongside (from inside that folder: ``python -c`` puts the
        # working folder first on the import path); CPU time is per process, so the two do not skew each other.
        before_dir = os.path.abspath(args.before)
        env = dict(os.environ, PYTHONPATH=before_dir)

        def run_before() -> None:
            for group in BEFORE:
                out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(FRESH[group]),
                                      os.path.abspath(args.photos), str(args.frames)], env=env, cwd=before_dir,
                                     capture_output=True, text=True, check=True)
                befores[f"fresh {group}, before"] = json.loads(out.stdout)

        worker = threading.Thread(target=run_before)
        worker.start()
    plan = [("tuning", False, None), ("held-out", True, None)] + [(f"fresh {g}", True, seeds)
                                                                   for g, seeds in FRESH.items()]
    for part, held, seeds in plan:
        report = evaluate_suite(seeds=seeds, photos=args.photos, held_out=held, frames=args.frames,
                                progress=lambda r: print(f"  {r.case} {r.seed}: {r.mean_iou:.3f}", file=sys.stderr))
        print(report.table())
        runs = report.to_dict(per_frame=False)["runs"]
        parts[part] = dict(report.summary(), **_misses(runs))
        rows += [_row(part, r) for r in runs]
    if worker is not None:
        worker.join()
        for name in (f"fresh {g}, before" for g in BEFORE):
            if name not in befores:
                raise SystemExit(f"the baseline part {name!r} failed")
            parts[name] = befores[name]["summary"]
            rows += [_row(name, r) for r in befores[name]["runs"]]
    command = f"python benchmarks/tracking.py --photos PHOTOS --frames {args.frames}"
    if args.before:
        command += " --before MAIN_CHECKOUT"
    result = _result("tracking", "Mask tracking on the hard-case suite (streamfill eval masks)", command, rows,
                     parts, _notes(bool(args.before)), load_before)
    out = results.write_result(args.output or "benchmarks/results/tracking.json", result)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _result(item: str, title: str, command: str, rows: list, parts: dict, notes: str, load_before: list) -> dict:
    """The result JSON (the schema of streamfill.eval.results) of one pass of this script."""
    from streamfill.eval import results

    machine = results.machine()
    machine["load_avg_at_start"] = load_before
    machine["load_avg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    return {
        "item": item,
        "title": title,
        "date": datetime.date.today().isoformat(),
        "machine": machine,
        "versions": results.versions(),
        "command": command,
        "columns": ["part", "case", "seed", "frame size", "object px", "object px (smallest)", "mean IoU", "min IoU",
                    "max area change (x, vs truth)", "CPU ms/frame (median)", "lost stretches reported"],
        "rows": rows,
        "summary": parts,
        "notes": notes,
    }


def _compressed(args: argparse.Namespace) -> int:
    """``--real``: the COMPRESSED seeds on exact pixels and through H.264, over generated and real backgrounds."""
    from streamfill.eval import results
    from streamfill.eval.masks import evaluate_suite

    load_before = [round(v, 2) for v in os.getloadavg()]
    rows, parts = [], {}
    for backdrop in [None] + args.real:
        for codec in ("none", "h264"):
            part = (f"over {os.path.basename(backdrop)}" if backdrop else "generated") + f", {codec}"
            report = evaluate_suite(seeds=COMPRESSED, photos=args.photos, held_out=True, frames=args.frames,
                                    codec=codec, backdrop=backdrop,
                                    progress=lambda r: print(f"  {r.case} {r.seed}: {r.mean_iou:.3f}", file=sys.stderr))
            print(part)
            print(report.table())
            runs = report.to_dict(per_frame=False)["runs"]
            parts[part] = dict(report.summary(), **_misses(runs))
            rows += [_row(part, r) for r in runs]
    result = _result(
        "tracking_compressed",
        "Mask tracking through H.264 and over real clips (streamfill eval masks --codec, --backdrop)",
        "python benchmarks/tracking.py --photos PHOTOS --real " + " ".join(os.path.basename(v) for v in args.real),
        rows, parts, (
            "The suite's scenes (random cut-outs from the held-out photos along random paths; see the 'tracking' "
            f"item) for the seeds {COMPRESSED[0]}-{COMPRESSED[-1]}, each on its exact pixels ('none') and through an "
            "H.264 round trip (libx264 without its assembly, one thread, CRF 23, 4:2:0, in memory: 'h264'), over the "
            "generated backgrounds and over real clips (--backdrop: vtest.avi, fixed camera, pedestrians; "
            "bigbuckbunny.mp4, animation with camera motion). No constant was tuned on these seeds: they were first "
            "run with the tracker before and after its last change (a small object's yielded outline redrawn by the "
            "outline net, trained on generated scenes from the other half of the photos), the rule for keeping it "
            "written down before (docs/guide/tracking.md, 'Twenty-fifth pass'), and since only re-run with that "
            "tracker unchanged. "
            "CPU time is process time of the tracker with OpenCV on one thread, on a shared machine: an upper "
            "bound. " + _SIZES),
        load_before)
    out = results.write_result(args.output or "benchmarks/results/tracking_compressed.json", result)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

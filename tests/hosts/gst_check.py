"""Drive the `streamfill` GStreamer element from a host's own Python (run with the system python3).

    python3 gst_check.py CLIP OUT_DIR [--seek FRAME] [--fps N] PROP=VALUE ...

Runs ``filesrc ! decodebin ! videoconvert ! streamfill PROPS ! appsink`` to EOS, optionally after a
flushing seek to FRAME once prerolled, and writes OUT_DIR/frames.npy (N x H x W x 3 uint8 RGB, in output
order) and OUT_DIR/result.json: the pts of every output buffer (ns), the buffer flags going in and coming
out (``flags_in``, ``flags_out``: ints, without TAG_MEMORY), the pipeline's latency query answer
(live, min ns, max ns), the element's counters, for each output buffer how many frames the element held
then (``lag``: input buffers taken minus output buffers pushed, this one included), or the first bus error.
Used by tests/hosts/test_gstreamer.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
import numpy as np  # noqa: E402
from gi.repository import Gst, GstVideo  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("clip")
    p.add_argument("out")
    p.add_argument("--seek", type=int)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("props", nargs="*")
    args = p.parse_intermixed_args()
    Gst.init(None)
    pipeline = Gst.parse_launch("filesrc name=src ! decodebin ! videoconvert ! streamfill name=fill ! "
                                "appsink name=sink sync=false emit-signals=false max-buffers=0")
    pipeline.get_by_name("src").set_property("location", args.clip)
    element = pipeline.get_by_name("fill")
    for prop in args.props:
        key, value = prop.split("=", 1)
        Gst.util_set_object_arg(element, key, value)  # as gst-launch-1.0 parses PROP=VALUE
    sink = pipeline.get_by_name("sink")
    result = {"pts": [], "error": None, "lag": [], "flags_in": [], "flags_out": []}
    seen = [0]
    memory = int(Gst.BufferFlags.TAG_MEMORY)  # a flag of the buffer's memory, not of the frame

    def count_in(pad, info):
        seen[0] += 1
        result["flags_in"].append(int(info.get_buffer().get_flags()) & ~memory)
        return Gst.PadProbeReturn.OK

    def lag_out(pad, info):  # input buffers the element had taken when it pushed this one, minus those pushed
        result["lag"].append(seen[0] - len(result["lag"]) - 1)
        result["flags_out"].append(int(info.get_buffer().get_flags()) & ~memory)
        return Gst.PadProbeReturn.OK

    element.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count_in)
    element.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, lag_out)
    frames = []
    bus = pipeline.get_bus()

    def error_on_bus():
        msg = bus.pop_filtered(Gst.MessageType.ERROR)
        if msg is not None:
            err, _ = msg.parse_error()
            result["error"] = err.message
        return msg is not None

    pipeline.set_state(Gst.State.PAUSED)
    change, _, _ = pipeline.get_state(60 * Gst.SECOND)
    if change == Gst.StateChangeReturn.FAILURE:
        error_on_bus()
    else:
        query = Gst.Query.new_latency()  # what the element adds to its upstream's latency
        if element.get_static_pad("src").query(query):
            result["latency"] = list(query.parse_latency())
        query = Gst.Query.new_latency()  # and what its upstream reports
        if element.get_static_pad("sink").peer_query(query):
            result["upstream_latency"] = list(query.parse_latency())
        if args.seek is not None:
            # the flush drops the prerolled buffer; frames from the seek target on come out
            ok = pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.ACCURATE,
                                      args.seek * Gst.SECOND // args.fps)
            result["seeked"] = bool(ok)
            pipeline.get_state(60 * Gst.SECOND)
        pipeline.set_state(Gst.State.PLAYING)
        waited = 0
        while waited < 600:  # pull with short waits so that a bus error ends the loop at once
            sample = sink.emit("try-pull-sample", Gst.SECOND // 5)
            if sample is None:
                if sink.get_property("eos") or error_on_bus():
                    break
                waited += 1
                continue
            waited = 0
            info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
            buf = sample.get_buffer()
            ok, mapped = buf.map(Gst.MapFlags.READ)
            rows = np.ndarray((info.height, info.stride[0]), np.uint8, buffer=mapped.data)
            frames.append(rows[:, :info.width * 3].reshape(info.height, info.width, 3).copy())
            buf.unmap(mapped)
            result["pts"].append(buf.pts)
    result["frames_filled"] = element.get_property("frames-filled")
    result["passed_through"] = element.get_property("passed-through")
    pipeline.set_state(Gst.State.NULL)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "frames.npy", np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8))
    (out / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

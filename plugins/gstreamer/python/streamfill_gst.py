"""GStreamer element ``streamfill``: removes an object from every video frame through ``streamfill serve``.

Load it with Debian's ``gstreamer1.0-python3-plugin-loader`` + ``python3-gst-1.0`` by pointing
``GST_PLUGIN_PATH`` at ``plugins/gstreamer`` (the loader imports ``python/*.py`` from there)::

    streamfill serve --bind tcp://127.0.0.1:5555 &
    GST_PLUGIN_PATH=plugins/gstreamer gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! videoconvert ! \
        streamfill endpoint=tcp://127.0.0.1:5555 mask=mask.png ! videoconvert ! x264enc ! mp4mux ! \
        filesink location=out.mp4

It is a ``GstBase.BaseTransform`` on RGB buffers (pts, dts, duration and offsets are the input's). With a
per-frame serve (and ``temporal=lookback``) it works in place: each buffer is sent with its mask and
replaced by the filled picture, one in, one out. With ``serve --temporal fast|quality`` and
``temporal=lookahead`` (the default) serve answers frame t only once it has seen frame t + window, as
``streamfill process`` does on a clip (plugins/PROTOCOL.md 6.1.1): ``transform_ip`` then sends the
picture, keeps the buffer's fields and flags, returns GST_BASE_TRANSFORM_FLOW_DROPPED and pushes the results
that have come back as new buffers with those fields, in order. It waits for serve only when more than window +
``SLACK`` frames are unanswered; the latency query adds (window + ``SLACK``) frame durations; EOS (and new
caps) drains what serve holds; a flushing seek drops the held frames and tells serve to drop its own. A
BaseTransform still fits (caps, allocation, QoS and the latency query come from it; only the push is
deferred); an aggregator is for several input pads. The element runs in the system ``python3`` and imports only
numpy, pyzmq and ``streamfill.protocol`` (through ``plugins/hostlink.py``, which finds the checkout this
file lives in; ``STREAMFILL_HOME`` overrides it).

Masks (255 = remove): ``mask`` = a mask image for every frame, a folder of per-frame mask images (in name
order, numbers compared as numbers), or a mask video (frame N masks frame N); files are decoded by GStreamer
itself. Or ``box`` = "x,y,w,h" on the first frame, followed through the clip with ``track=true`` (numpy
cross-correlation).
``on-error``: ``fail`` posts an error on the bus and stops the pipeline when serve is down or refuses a
frame; ``passthrough`` forwards such frames unchanged and counts them (``passed-through``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstBase", "1.0")
gi.require_version("GstVideo", "1.0")
import numpy as np  # noqa: E402
from gi.repository import GLib, GObject, Gst, GstBase, GstVideo  # noqa: E402

Gst.init(None)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # plugins/ (hostlink.py)
import hostlink  # noqa: E402

CAPS = Gst.Caps.from_string("video/x-raw,format=RGB,width=[1,32768],height=[1,32768],framerate=[0/1,2147483647/1]")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
FLOW_DROPPED = Gst.FlowReturn.CUSTOM_SUCCESS  # GST_BASE_TRANSFORM_FLOW_DROPPED: nothing is pushed for this buffer
SLACK = 2  # look-ahead: frames in flight to serve beyond its window before the element waits for a result
DOWN_RETRY_S = 2.0  # passthrough: after a failure, frames pass unchanged for this long before serve is tried again


class MaskFileError(Exception):
    """A mask file, folder or video cannot be used (one-line message)."""


def _decode_grey(path: str, timeout: float = 10.0):
    """Open ``path`` (any image or video GStreamer decodes) as a GRAY8 appsink pipeline."""
    pipeline = Gst.parse_launch("filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=GRAY8 ! "
                                "appsink name=sink sync=false max-buffers=4")
    pipeline.get_by_name("src").set_property("location", path)
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PAUSED)
    change, _, _ = pipeline.get_state(int(timeout * Gst.SECOND))
    if change == Gst.StateChangeReturn.FAILURE:
        message = _bus_error(pipeline)
        pipeline.set_state(Gst.State.NULL)
        raise MaskFileError(f"cannot decode mask {path}: {message}")
    pipeline.set_state(Gst.State.PLAYING)
    return pipeline, sink


def _bus_error(pipeline) -> str:
    msg = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
    if msg is None:
        return "not a picture or video GStreamer can decode"
    err, _ = msg.parse_error()
    return err.message


def _sample_array(sample) -> np.ndarray:
    info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
    buf = sample.get_buffer()
    ok, mapped = buf.map(Gst.MapFlags.READ)
    if not ok:
        raise MaskFileError("cannot read a decoded mask buffer")
    try:
        rows = np.ndarray((info.height, info.stride[0]), np.uint8, buffer=mapped.data)
        return rows[:, :info.width].copy()
    finally:
        buf.unmap(mapped)


class MaskReader:
    """Masks by frame index from an image (same mask for every frame), a folder of images, or a video."""

    def __init__(self, path: str, width: int, height: int, timeout: float = 10.0):
        self.path, self.size, self.timeout = path, (height, width), timeout
        self.files: list[str] | None = None
        self.static: np.ndarray | None = None
        self._pipeline = self._sink = None
        self._pos, self._last = -1, None
        p = Path(path)
        if p.is_dir():
            self.files = [str(f) for f in sorted((f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES),
                                                 key=lambda f: hostlink.frame_order(f.name))]
            if not self.files:
                raise MaskFileError(f"mask folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            return
        if not p.is_file():
            raise MaskFileError(f"mask {path} does not exist")
        try:
            self._open()
            first = self._next()
            if first is None:
                raise MaskFileError(f"mask {path} has no frames")
            second = self._next()
        except BaseException:
            self.close()
            raise
        if second is None:  # one picture: the mask of every frame
            self.static = first
            self.close()
        else:
            self._open()

    def _open(self) -> None:
        self.close()
        self._pipeline, self._sink = _decode_grey(self.path, self.timeout)
        self._pos = -1

    def _next(self) -> np.ndarray | None:
        sample = self._sink.emit("try-pull-sample", int(self.timeout * Gst.SECOND))
        if sample is None:
            if not self._sink.get_property("eos"):
                message = _bus_error(self._pipeline)
                raise MaskFileError(f"mask {self.path}: no frame within {self.timeout:g} s ({message})")
            return None
        self._pos += 1
        return self._check(_sample_array(sample))

    def _check(self, mask: np.ndarray) -> np.ndarray:
        if mask.shape != self.size:
            raise MaskFileError(f"mask {self.path} is {mask.shape[1]}x{mask.shape[0]} but the frames are "
                                f"{self.size[1]}x{self.size[0]}")
        return mask

    def get(self, index: int) -> np.ndarray:
        """The H x W uint8 mask of frame ``index`` (0-based)."""
        if self.static is not None:
            return self.static
        if self.files is not None:
            if index >= len(self.files):
                raise MaskFileError(f"mask folder {self.path} has {len(self.files)} masks; frame {index} has none")
            pipeline, sink = _decode_grey(self.files[index], self.timeout)
            try:
                sample = sink.emit("try-pull-sample", int(self.timeout * Gst.SECOND))
                if sample is None:
                    raise MaskFileError(f"mask {self.files[index]} cannot be decoded")
                return self._check(_sample_array(sample))
            finally:
                pipeline.set_state(Gst.State.NULL)
        if index < self._pos or self._pipeline is None:
            self._open()  # a seek went back: read the mask video again from its start
        while self._pos < index:
            mask = self._next()
            if mask is None:
                raise MaskFileError(f"mask video {self.path} has {self._pos + 1} frames; frame {index} has no mask")
            self._last = mask
        return self._last

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.set_state(Gst.State.NULL)
            self._pipeline = self._sink = None


class StreamfillFilter(GstBase.BaseTransform):
    __gtype_name__ = "GstStreamfill"
    __gstmetadata__ = ("streamfill", "Filter/Effect/Video",
                       "Removes an object from video frames with streamfill serve (plugins/PROTOCOL.md)",
                       "streamfill")
    __gsttemplates__ = (Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS, CAPS),
                        Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS, CAPS))
    __gproperties__ = {
        "endpoint": (str, "endpoint", "streamfill serve endpoint", "tcp://127.0.0.1:5555",
                     GObject.ParamFlags.READWRITE),
        "mask": (str, "mask", "mask image, folder of per-frame masks, or mask video (white = remove)", None,
                 GObject.ParamFlags.READWRITE),
        "box": (str, "box", "x,y,w,h of the object on the first frame (pixels), instead of mask", None,
                GObject.ParamFlags.READWRITE),
        "track": (bool, "track", "follow the box through the frames", False, GObject.ParamFlags.READWRITE),
        "on-error": (str, "on-error", "when serve is down or refuses a frame: fail (error on the bus) or "
                     "passthrough (frame unchanged, counted)", "fail", GObject.ParamFlags.READWRITE),
        "timeout": (float, "timeout", "seconds to wait for each frame before resending", 0.1, 3600.0, 10.0,
                    GObject.ParamFlags.READWRITE),
        "retries": (int, "retries", "resends on a fresh socket before giving up on a frame", 0, 100, 2,
                    GObject.ParamFlags.READWRITE),
        "latency": (int, "latency", "processing latency reported to the pipeline, ms (raised when frames take "
                    "longer)", 0, 3600000, 100, GObject.ParamFlags.READWRITE),
        "stream": (str, "stream", "stream id sent to serve (default: unique per element; serve --temporal keeps "
                   "one history per stream)", None, GObject.ParamFlags.READWRITE),
        "temporal": (str, "temporal", "with serve --temporal: lookahead (as `streamfill process`: frames are held "
                     "until serve has seen the window of later frames; adds that latency) or lookback (each "
                     "frame answered at once from earlier frames)", "lookahead", GObject.ParamFlags.READWRITE),
        "curve-keys": (str, "curve-keys", "folder from `streamfill keys` for a CURVE server", None,
                       GObject.ParamFlags.READWRITE),
        "frames-filled": (GObject.TYPE_UINT64, "frames-filled", "frames filled by serve", 0, GLib.MAXUINT64, 0,
                          GObject.ParamFlags.READABLE),
        "passed-through": (GObject.TYPE_UINT64, "passed-through", "frames forwarded unchanged after an error",
                           0, GLib.MAXUINT64, 0, GObject.ParamFlags.READABLE),
    }

    def __init__(self):
        super().__init__()
        self.props_ = {"endpoint": "tcp://127.0.0.1:5555", "mask": None, "box": None, "track": False,
                       "on-error": "fail", "timeout": 10.0, "retries": 2, "latency": 100, "stream": None,
                       "curve-keys": None, "temporal": "lookahead"}
        self.filled = self.passed = 0
        self.client = None
        self.masks: MaskReader | None = None
        self.tracker = None
        self.box = None
        self.width = self.height = self.stride = 0
        self.fps = (0, 1)
        self.count = 0
        self.sent = 0  # the index of the next frame sent to serve (consecutive from 0 since the start or a flush)
        self.pts0 = None
        self.down_until = 0.0
        self.warned = False
        self.held: dict[int, tuple[dict, np.ndarray]] = {}  # look-ahead: req -> (buffer fields, image), in order
        self.flushing = False
        self.stale = False  # a flush dropped frames serve may still hold: tell it before the next frame
        self.set_in_place(True)
        self.set_passthrough(False)

    # -- properties ----------------------------------------------------------------------------------------

    def do_get_property(self, prop):
        if prop.name == "frames-filled":
            return self.filled
        if prop.name == "passed-through":
            return self.passed
        return self.props_[prop.name]

    def do_set_property(self, prop, value):
        self.props_[prop.name] = value

    # -- lifecycle -----------------------------------------------------------------------------------------

    def _error(self, text: str, debug: str = "") -> None:
        self.post_message(Gst.Message.new_error(
            self, GLib.Error.new_literal(Gst.ResourceError.quark(), text, Gst.ResourceError.FAILED), debug))

    def do_start(self):
        p = self.props_
        if p["on-error"] not in ("fail", "passthrough"):
            self._error(f"streamfill: on-error={p['on-error']!r} must be fail or passthrough")
            return False
        if p["temporal"] not in ("lookahead", "lookback"):
            self._error(f"streamfill: temporal={p['temporal']!r} must be lookahead or lookback")
            return False
        if bool(p["mask"]) == bool(p["box"]):
            self._error("streamfill: set exactly one of mask=PATH or box=x,y,w,h")
            return False
        if p["box"]:
            try:
                self.box = hostlink.parse_box(p["box"])
            except ValueError as exc:
                self._error(f"streamfill: {exc}")
                return False
        if p["mask"] and not Path(p["mask"]).exists():
            self._error(f"streamfill: mask {p['mask']} does not exist")
            return False
        if p["track"] and not p["box"]:
            self._error("streamfill: track=true follows a box: set box=x,y,w,h")
            return False
        self.filled = self.passed = self.count = self.sent = 0
        self.pts0, self.tracker, self.down_until, self.warned = None, None, 0.0, False
        self.held, self.flushing, self.stale = {}, False, False
        try:
            self.client = hostlink.ServeClient(p["endpoint"], timeout=p["timeout"], retries=p["retries"],
                                               stream=p["stream"] or f"gst-{os.getpid()}-{self.get_name()}",
                                               name="streamfill-gstreamer",
                                               curve_keys=p["curve-keys"])
        except (hostlink.HostError, OSError, ValueError) as exc:
            self._error(f"streamfill: {exc}")
            return False
        try:
            self.client.hello()
        except hostlink.HostError as exc:
            if p["on-error"] == "fail":
                self._error(f"streamfill: {exc}")
                return False
            self._went_down(exc)
        return True

    def do_stop(self):
        if self.client is not None:
            if self.held or self.client.unanswered:
                self.client.discard()  # stopped before EOS: serve may drop what it holds
            else:
                self.client.bye(self.count)
            self.client.close()
            self.client = None
        if self.masks is not None:
            self.masks.close()
            self.masks = None
        self.held = {}
        return True

    def do_set_caps(self, incaps, outcaps):
        info = GstVideo.VideoInfo.new_from_caps(incaps)
        self.width, self.height, self.stride = info.width, info.height, info.stride[0]
        self.fps = (info.fps_n, info.fps_d)
        if self.props_["mask"] and (self.masks is None or self.masks.size != (self.height, self.width)):
            if self.masks is not None:
                self.masks.close()
            try:
                self.masks = MaskReader(self.props_["mask"], self.width, self.height)
            except MaskFileError as exc:
                self._error(f"streamfill: {exc}")
                return False
        if self.box is not None and (self.box[0] >= self.width or self.box[1] >= self.height):
            self._error(f"streamfill: box={self.props_['box']} lies outside the {self.width}x{self.height} frames")
            return False
        self.tracker = None
        return True

    # -- events and queries --------------------------------------------------------------------------------

    def do_sink_event(self, event):
        if event.type == Gst.EventType.FLUSH_START:
            self.flushing = True  # a wait for serve in the streaming thread gives up
        elif event.type == Gst.EventType.FLUSH_STOP:
            self.tracker = None  # after a flushing seek the box is followed again from box=
            self.flushing = False
            self.held = {}
            if self.client is not None and self.sent:
                self.client.forget()
                self.stale = True  # serve is told to drop the stream before the next frame, sent as index 0
        elif event.type in (Gst.EventType.EOS, Gst.EventType.CAPS) and self.held and \
                self._drain() != Gst.FlowReturn.OK:
            return False  # look-ahead: the frames serve still holds come out before EOS (or a change of size)
        if event.type == Gst.EventType.EOS and self.client is not None and self.passed:
            self.post_message(Gst.Message.new_warning(
                self, GLib.Error.new_literal(Gst.CoreError.quark(), f"streamfill: {self.passed} frames passed "
                                             "through unchanged (serve unavailable)", Gst.CoreError.FAILED), ""))
        return GstBase.BaseTransform.do_sink_event(self, event)

    def do_gst_base_transform_query(self, direction, query):  # BaseTransform::query (Element has one too)
        if query.type == Gst.QueryType.LATENCY and direction == Gst.PadDirection.SRC:
            ok = self.sinkpad.peer_query(query)
            if ok:
                live, lo, hi = query.parse_latency()
                ours = self.props_["latency"] * Gst.MSECOND + self._held_latency()
                query.set_latency(live, lo + ours, hi if hi == Gst.CLOCK_TIME_NONE else hi + ours)
            return ok
        return GstBase.BaseTransform.do_query(self, direction, query)

    # -- frames --------------------------------------------------------------------------------------------

    def _index(self, buf) -> int:
        pts = buf.pts
        fps_n, fps_d = self.fps
        if pts == Gst.CLOCK_TIME_NONE or fps_n <= 0:
            return self.count
        if self.pts0 is None:
            self.pts0 = pts
        return max(0, int(round((pts - self.pts0) * fps_n / (fps_d * Gst.SECOND))))

    def _serve_index(self) -> int:
        """The ``index`` of the next frame sent to serve: 0, 1, 2, ... since the start or a flush, whatever the
        timestamps (serve starts a stream afresh when its indices jump, dropping the frames it holds: a gap in
        the pts, a variable frame rate). After a flush serve is first told to drop what it holds."""
        if self.stale:
            self.client.discard()
            self.stale, self.sent = False, 0
        self.sent += 1
        return self.sent - 1

    def _mask(self, index: int, image: np.ndarray) -> np.ndarray:
        if self.masks is not None:
            return self.masks.get(index)
        if self.props_["track"]:
            if self.tracker is None:
                self.tracker = hostlink.BoxTracker(image, self.box)
            else:
                self.tracker.update(image)
            return hostlink.box_mask(self.tracker.box, self.height, self.width)
        return hostlink.box_mask(self.box, self.height, self.width)

    def _went_down(self, exc) -> None:
        self.down_until = time.monotonic() + DOWN_RETRY_S
        if not self.warned:
            self.warned = True
            self.post_message(Gst.Message.new_warning(
                self, GLib.Error.new_literal(Gst.ResourceError.quark(), f"streamfill: {exc}; passing frames "
                                             "through unchanged", Gst.ResourceError.FAILED), ""))

    def do_transform_ip(self, buf):
        index = self._index(buf)
        self.count += 1
        passthrough = self.props_["on-error"] == "passthrough"
        if passthrough and self.down_until:
            # serve was down: frames pass at once, and a quick hello (not a full frame timeout) checks it again
            if time.monotonic() < self.down_until:
                self.passed += 1
                return Gst.FlowReturn.OK
            try:
                self.client.hello(timeout=min(0.5, self.props_["timeout"]), retries=0)
            except hostlink.HostError as exc:
                self._went_down(exc)
                self.passed += 1
                return Gst.FlowReturn.OK
        if self._lookahead():
            return self._defer(buf, index)
        ok, mapped = buf.map(Gst.MapFlags.READ | Gst.MapFlags.WRITE)
        if not ok:
            self._error("streamfill: cannot map the buffer for writing")
            return Gst.FlowReturn.ERROR
        try:
            rows = np.ndarray((self.height, self.stride), np.uint8, buffer=mapped.data)
            image = rows[:, :self.width * 3].reshape(self.height, self.width, 3)
            try:
                mask = self._mask(index, image)
            except MaskFileError as exc:
                self._error(f"streamfill: {exc}")
                return Gst.FlowReturn.ERROR
            pts = None if buf.pts == Gst.CLOCK_TIME_NONE else int(buf.pts)
            started = time.monotonic()
            try:
                result = self.client.fill(image, mask, index=self._serve_index(), pts=pts, time_base=(1, Gst.SECOND))
            except hostlink.HostError as exc:
                if not passthrough:
                    self._error(f"streamfill: frame {index}: {exc}")
                    return Gst.FlowReturn.ERROR
                self._went_down(exc)
                self.passed += 1
                return Gst.FlowReturn.OK
            image[...] = result
            self.filled += 1
            self.down_until = 0.0
            self._raise_latency(time.monotonic() - started)
        finally:
            buf.unmap(mapped)
        return Gst.FlowReturn.OK

    # -- look-ahead: frames held until serve answers them -------------------------------------------------

    def _lookahead(self) -> bool:
        """Frames go out pipelined when serve holds a look-ahead window (its hello says ``lookahead``)."""
        return self.props_["temporal"] == "lookahead" and self.client is not None and self.client.lookahead > 0

    def _held_latency(self) -> int:
        """ns of look-ahead latency: the window plus the frames in flight, at the stream's frame rate."""
        if not self._lookahead():
            return 0
        fps_n, fps_d = self.fps
        if fps_n <= 0:
            return 0
        return (self.client.lookahead + SLACK) * Gst.SECOND * fps_d // fps_n

    def _defer(self, buf, index: int):
        """Send this buffer's picture, keep its fields, push every result that has come; the buffer itself
        is dropped here (its picture comes out later, in a new buffer with the same fields)."""
        ok, mapped = buf.map(Gst.MapFlags.READ)
        if not ok:
            self._error("streamfill: cannot map the buffer")
            return Gst.FlowReturn.ERROR
        try:
            rows = np.ndarray((self.height, self.stride), np.uint8, buffer=mapped.data)
            image = rows[:, :self.width * 3].reshape(self.height, self.width, 3).copy()
        finally:
            buf.unmap(mapped)
        try:
            mask = self._mask(index, image)
        except MaskFileError as exc:
            self._error(f"streamfill: {exc}")
            return Gst.FlowReturn.ERROR
        fields = {"pts": buf.pts, "dts": buf.dts, "duration": buf.duration, "offset": buf.offset,
                  "offset_end": buf.offset_end,
                  "flags": Gst.BufferFlags(int(buf.get_flags()) & ~int(Gst.BufferFlags.TAG_MEMORY))}
        pts = None if buf.pts == Gst.CLOCK_TIME_NONE else int(buf.pts)
        try:
            req = self.client.send(image, mask, index=self._serve_index(), pts=pts, time_base=(1, Gst.SECOND))
            self.held[req] = (fields, image)
            done = self.client.window(slack=SLACK, cancel=lambda: self.flushing)
        except hostlink.HostError as exc:
            return self._failed(exc, f"frame {index}: ")
        if self.flushing:
            return Gst.FlowReturn.FLUSHING
        return self._push_results(done)

    def _push_results(self, done) -> Gst.FlowReturn:
        ret = Gst.FlowReturn.OK
        for req, _, image in done:
            fields, _ = self.held.pop(req, (None, None))
            if fields is None:
                continue
            ret = self._push(fields, image)
            self.filled += 1
            if ret != Gst.FlowReturn.OK:
                break
        return FLOW_DROPPED if ret == Gst.FlowReturn.OK else ret

    def _push(self, fields: dict, image: np.ndarray) -> Gst.FlowReturn:
        """A new buffer with ``image`` (rows padded to the negotiated stride) and the input's fields."""
        rows = np.zeros((self.height, self.stride), np.uint8)
        rows[:, :self.width * 3] = np.asarray(image).reshape(self.height, self.width * 3)
        out = Gst.Buffer.new_wrapped(rows.tobytes())
        for key, value in fields.items():
            if key == "flags":
                out.set_flags(value)  # DISCONT, the interlacing flags, ... (those of the frame, not its memory)
            else:
                setattr(out, key, value)
        return self.srcpad.push(out)

    def _failed(self, exc, what: str = "") -> Gst.FlowReturn:
        """serve failed a look-ahead stream: fail, or push every held frame unchanged (passthrough)."""
        if self.props_["on-error"] != "passthrough":
            self._error(f"streamfill: {what}{exc}")
            return Gst.FlowReturn.ERROR
        self._went_down(exc)
        held, self.held = self.held, {}
        self.client.forget()
        self.stale = True
        ret = Gst.FlowReturn.OK
        for fields, image in held.values():
            self.passed += 1
            if ret == Gst.FlowReturn.OK:
                ret = self._push(fields, image)
        return FLOW_DROPPED if ret == Gst.FlowReturn.OK else ret

    def _drain(self) -> Gst.FlowReturn:
        """EOS (or new caps): the results of every held frame, pushed in order."""
        try:
            done = self.client.drain(cancel=lambda: self.flushing)
        except hostlink.HostError as exc:
            ret = self._failed(exc, "end of stream: ")
            return Gst.FlowReturn.OK if ret == FLOW_DROPPED else ret
        ret = self._push_results(done)
        return Gst.FlowReturn.OK if ret == FLOW_DROPPED else ret

    def _raise_latency(self, seconds: float) -> None:
        """Report a higher latency (and ask the pipeline to recompute it) when frames take longer."""
        ms = int(seconds * 1000) + 1
        if ms > self.props_["latency"] * 1.5:
            self.props_["latency"] = ms
            self.post_message(Gst.Message.new_latency(self))


GObject.type_register(StreamfillFilter)
__gstelementfactory__ = ("streamfill", Gst.Rank.NONE, StreamfillFilter)

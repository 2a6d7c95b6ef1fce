"""Blender Video Sequencer add-on: remove an object from a movie strip with ``streamfill serve``.

Select a movie strip, choose the object's mask in the sidebar (Strip tab > streamfill): a Mask datablock
(drawn in the Mask editor, animated or not, rendered per frame) or a box on the current frame (followed
through the strip with "Track"), and press "Remove object". Each frame of the strip is sent to
``streamfill serve`` with its mask; the clean frames come back as a PNG sequence that is added as a new
image strip in the channel above the original, over the same frames (a "fill layer"). Progress shows in
the status bar and the window's progress cursor; Esc cancels (nothing is added, the frames written so far
are deleted). Blender reads the frames (on its own thread, as bpy requires); a worker thread sends them to
serve and writes the results, so Blender stays responsive and Esc takes effect at once however long serve
takes to answer. With ``streamfill serve --temporal fast|quality`` frames are sent pipelined on a look-ahead
stream (plugins/PROTOCOL.md 6.1.1) and written as their results come back, so the strip equals what
``streamfill process`` makes of the clip.

The add-on runs inside Blender's Python and imports only numpy, pyzmq and ``streamfill.protocol`` (via
``plugins/hostlink.py``): Debian's ``blender`` uses the system python3, so ``apt-get install python3-zmq``
is all it needs. It finds ``streamfill.protocol`` in the streamfill checkout that holds this file (or in
``$STREAMFILL_HOME``, or in the add-on preference "streamfill checkout" when the file was installed by copy).

Try it::

    streamfill serve &
    blender --python plugins/blender/streamfill_vse.py     # registers the add-on for this session

Frames are read by rendering the strip alone in a temporary scene with the "Standard" view transform and no
dither, so the pixels sent are the strip's decoded pixels.
"""

import contextlib
import os
import queue
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import bpy
import numpy as np
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    IntVectorProperty,
    PointerProperty,
    StringProperty,
)

bl_info = {
    "name": "streamfill: Remove object",
    "author": "streamfill",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Video Sequencer > Sidebar > Strip > streamfill",
    "description": "Remove an object from a movie strip with streamfill serve; the clean frames become a new strip",
    "category": "Sequencer",
}

hostlink = None


def _load_hostlink(checkout: str = ""):
    """Import plugins/hostlink.py from the add-on's checkout, $STREAMFILL_HOME or ``checkout``."""
    global hostlink
    if hostlink is not None:
        return hostlink
    here = Path(__file__).resolve().parents[1]
    for root in (checkout, os.environ.get("STREAMFILL_HOME", ""), str(here.parent)):
        plugins = Path(root) / "plugins" if root else None
        if plugins is not None and (plugins / "hostlink.py").is_file():
            if str(plugins) not in sys.path:
                sys.path.insert(0, str(plugins))
            import hostlink as module

            module.use_checkout(root)
            hostlink = module
            return module
    raise RuntimeError("streamfill checkout not found: set the add-on preference 'streamfill checkout' or "
                       "$STREAMFILL_HOME to the folder that holds plugins/hostlink.py")


# ------------------------------------------------------------------------------------------- frame access


class StripReader:
    """Renders one movie strip (and optionally a Mask datablock) frame by frame in a private scene.

    ``read(frame)`` -> H x W x 3 uint8 RGB of the original scene's ``frame``; ``mask(frame)`` -> H x W uint8
    (255 = remove) of the Mask datablock at that frame.
    """

    def __init__(self, strip, mask=None):
        clip = bpy.data.movieclips.load(bpy.path.abspath(strip.filepath), check_existing=False)
        self.width, self.height = int(clip.size[0]), int(clip.size[1])
        bpy.data.movieclips.remove(clip)
        if self.width <= 0 or self.height <= 0:
            raise RuntimeError(f"cannot open the movie of strip {strip.name!r}: {strip.filepath}")
        self.scene = bpy.data.scenes.new("streamfill-read")
        self.dir = Path(tempfile.mkdtemp(prefix="streamfill-blender-"))
        r = self.scene.render
        r.resolution_x, r.resolution_y, r.resolution_percentage = self.width, self.height, 100
        r.use_sequencer, r.use_compositing, r.dither_intensity = True, False, 0.0
        r.image_settings.file_format, r.image_settings.color_mode = "PNG", "RGB"
        r.image_settings.color_depth, r.image_settings.compression = "8", 15
        r.fps, r.fps_base = strip.id_data.render.fps, strip.id_data.render.fps_base
        v = self.scene.view_settings
        v.view_transform, v.look, v.exposure, v.gamma = "Standard", "None", 0.0, 1.0
        self.scene.sequencer_colorspace_settings.name = "sRGB"
        seq = self.scene.sequence_editor_create()
        # the same frame numbers as the original scene: frame F here shows what frame F shows there
        self.movie = seq.sequences.new_movie("movie", bpy.path.abspath(strip.filepath), 1, int(strip.frame_start))
        # and the same movie frame there: the strip's video stream, hold offsets (a hard cut), speed, strobe and
        # direction decide which movie frame a scene frame shows
        for prop in ("stream_index", "animation_offset_start", "animation_offset_end", "speed_factor", "strobe",
                     "use_reverse_frames"):
            setattr(self.movie, prop, getattr(strip, prop))
        self.movie.frame_start = strip.frame_start
        # the file's own bytes, whatever colour space the strip says they are in (the fill strip says the same)
        self.movie.colorspace_settings.name = "sRGB"
        self.mask_strip = None
        if mask is not None:
            # a mask strip starting at the mask's own first frame shows the mask at the scene frame
            self.mask_strip = seq.sequences.new_mask("mask", mask, 2, int(mask.frame_start))
            self.mask_strip.frame_final_duration = max(1, int(strip.frame_final_end) + 1 - int(mask.frame_start))
            self.mask_strip.mute = True

    def _render(self, frame: int) -> np.ndarray:
        path = self.dir / "frame.png"
        self.scene.render.filepath = str(path)
        # the render operator takes the frame from the context's scene: make it this one
        with bpy.context.temp_override(scene=self.scene, view_layer=self.scene.view_layers[0]):
            self.scene.frame_set(frame)
            bpy.ops.render.render(write_still=True)
        image = bpy.data.images.load(str(path), check_existing=False)
        try:
            w, h = image.size
            pixels = np.empty(w * h * 4, np.float32)
            image.pixels.foreach_get(pixels)
        finally:
            bpy.data.images.remove(image)
        rgb = pixels.reshape(h, w, 4)[::-1, :, :3]  # Blender's rows go bottom-up
        return np.ascontiguousarray(np.round(rgb * 255.0).astype(np.uint8))

    def read(self, frame: int) -> np.ndarray:
        self.movie.mute = False
        if self.mask_strip is not None:
            self.mask_strip.mute = True
        return self._render(frame)

    def mask(self, frame: int) -> np.ndarray:
        self.movie.mute = True
        self.mask_strip.mute = False
        return self._render(frame).max(axis=2)

    def close(self) -> None:
        if self.scene is not None:
            bpy.data.scenes.remove(self.scene)
            self.scene = None
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------------- job


HELLO_TIMEOUT = 5.0  # seconds a try of the first contact with serve may wait (two tries at most)


class FillJob:
    """Removes the object from ``strip`` frame by frame; ``finish()`` adds the new strip.

    Blocking (scripts): ``step()`` until it returns False. Interactive: ``start_worker()``, then ``pump()`` on
    each timer tick until it returns False. Blender's data (bpy) is touched only by the thread that made the
    job; the worker thread touches only the serve client, numpy arrays and the output files.
    """

    QUEUE = 3  # interactive: frames read ahead of the worker

    def __init__(self, context, strip, settings, checkout: str = ""):
        link = _load_hostlink(checkout)
        self.scene, self.strip, self.settings = context.scene, strip, settings
        self.first, self.last = int(strip.frame_final_start), int(strip.frame_final_end)  # [first, last)
        if settings.mask_kind == "MASK" and settings.mask is None:
            raise RuntimeError("choose a Mask datablock (or switch the mask to Box)")
        self.box = None
        if settings.mask_kind == "BOX":
            x, y, w, h = (int(v) for v in settings.box)
            self.box = link.parse_box(f"{x},{y},{w},{h}")
        start = self.first
        if self.box is not None and settings.track:
            # box + track: follow the box from the current frame to the end, then from it back to the start
            # (otherwise the frames go in clip order, as one stream: where the playhead is does not matter)
            start = min(max(self.scene.frame_current, self.first), self.last - 1)
        self.order = list(range(start, self.last)) + list(range(start - 1, self.first - 1, -1))
        self.start = start
        self.tracker = None
        self.done = 0     # frames written
        self.sent = 0     # frames sent (look-ahead: ahead of done by up to the window)
        self.frame_of: dict[int, int] = {}  # look-ahead: req -> clip frame
        self.index = 0    # look-ahead: the frame's index in the current serve stream
        self.queued = 0   # interactive: frames read into the queue
        self.time_base = (int(self.scene.render.fps_base * 1000), int(self.scene.render.fps * 1000))
        self.reader = self.out = None
        self._worker = self._queue = self._error = None
        self._cancel = threading.Event()
        # serve first: when it is down, nothing is created
        self.client = link.ServeClient(settings.endpoint, timeout=settings.timeout, retries=settings.retries,
                                       stream=f"blender:{strip.name}", name="streamfill-blender")
        try:
            # the first contact waits on Blender's thread: a short probe (a serve that is up answers a hello
            # at once), so a serve that is down freezes the window for seconds, not Timeout x (Retries + 1)
            self.client.hello(timeout=min(settings.timeout, HELLO_TIMEOUT), retries=min(settings.retries, 1))
            self.reader = StripReader(strip, settings.mask if settings.mask_kind == "MASK" else None)
            if self.box is not None and (self.box[0] >= self.reader.width or self.box[1] >= self.reader.height):
                raise RuntimeError(f"box {','.join(map(str, self.box))} lies outside the "
                                   f"{self.reader.width}x{self.reader.height} movie")
            self.out = self._out_dir()
        except BaseException:
            self.close(keep=False)
            raise

    @property
    def total(self) -> int:
        return len(self.order)

    def _out_dir(self) -> Path:
        base = bpy.path.abspath(self.settings.output_dir) if self.settings.output_dir else ""
        if not base or base.startswith("//"):
            base = tempfile.gettempdir() if not bpy.data.filepath else bpy.path.abspath("//streamfill")
        stem = bpy.path.clean_name(self.strip.name)
        for n in range(1, 10000):
            out = Path(base) / f"{stem}_fill_{n:03d}"
            if not out.exists():
                out.mkdir(parents=True)
                return out
        raise RuntimeError(f"no free output folder under {base}")

    def _mask(self, frame: int, image: np.ndarray) -> np.ndarray:
        if self.box is None:
            return self.reader.mask(frame)
        if not self.settings.track:
            return hostlink.box_mask(self.box, *image.shape[:2])
        if frame == self.start or self.tracker is None or frame == self.start - 1:
            anchor = image if frame == self.start else self.reader.read(self.start)
            self.tracker = hostlink.BoxTracker(anchor, self.box)
        if frame != self.start:
            self.tracker.update(image)
        return hostlink.box_mask(self.tracker.box, *image.shape[:2])

    @property
    def lookahead(self) -> bool:
        """serve holds a look-ahead window (``serve --temporal``): frames are sent pipelined, as ``process``
        completes a clip, and their results written as they come back."""
        return self.client is not None and self.client.lookahead > 0

    def _write(self, frame: int, result: np.ndarray) -> None:
        path = self.out / f"fill_{frame - self.first:06d}.png"
        path.write_bytes(hostlink.protocol.encode_png(result, level=1))
        self.done += 1

    def step(self) -> bool:
        """Fill the next frame (look-ahead: send it and write the results that came back); False when all
        are done."""
        if self.done >= self.total:
            return False
        if self.sent < self.total:
            frame = self.order[self.sent]
            image = self.reader.read(frame)
            self._serve(frame, image, self._mask(frame, image))
        else:
            self._collect(self.client.drain())
        return self.done < self.total

    def _serve(self, frame: int, image: np.ndarray, mask: np.ndarray, cancel=None) -> None:
        """Send one frame to serve and write what came back (per frame: its result; look-ahead: the results
        the send window gave back). ``cancel()`` stops every wait (``hostlink.Cancelled``)."""
        if not self.lookahead:
            result = self.client.fill(image, mask, index=frame - self.first, pts=frame - self.first,
                                      time_base=self.time_base, cancel=cancel)
            self.sent += 1
            self._write(frame, result)
            return
        if frame == self.start - 1 and self.sent:
            # box + track from a middle frame: after the frames from it to the end, those before it go
            # backwards (following the box) as a second stream, itself a clip in reverse
            self._collect(self.client.drain(cancel=cancel))
            if cancel is not None and cancel():
                raise hostlink.Cancelled("cancelled")
            self.client.stream, self.index = f"{self.client.stream}:back", 0
        req = self.client.send(image, mask, index=self.index, pts=frame - self.first, time_base=self.time_base)
        self.frame_of[req] = frame
        self.sent += 1
        self.index += 1
        self._collect(self.client.window(slack=2, cancel=cancel))

    # -- interactive: serve's side on a worker thread ----------------------------------------------------

    def start_worker(self) -> None:
        """Interactive run: ``pump()`` reads the frames (bpy: this thread) into a small queue, a worker thread
        sends them to serve and writes the results, so this thread never waits for serve."""
        self._queue = queue.Queue(maxsize=self.QUEUE)
        self._worker = threading.Thread(target=self._work, name="streamfill-serve", daemon=True)
        self._worker.start()

    def pump(self) -> bool:
        """One timer tick: raise the worker's error, read at most one frame into the queue when it has room;
        False when the worker has written every frame (then ``finish()``)."""
        alive = self._worker.is_alive()
        if self._error is not None:
            raise self._error
        if not alive:
            if self.done < self.total:
                raise RuntimeError(f"the serve thread stopped after {self.done} of {self.total} frames")
            return False
        if self.queued < self.total and not self._queue.full():
            frame = self.order[self.queued]
            image = self.reader.read(frame)
            self._queue.put_nowait((frame, image, self._mask(frame, image)))
            self.queued += 1
        return True

    def _work(self) -> None:
        """The worker: every frame from the queue to serve, the results to files; stops at ``_cancel``."""
        cancelled = self._cancel.is_set
        try:
            for _ in range(self.total):
                item = None
                while item is None:
                    if cancelled():
                        return
                    with contextlib.suppress(queue.Empty):
                        item = self._queue.get(timeout=0.05)
                self._serve(*item, cancel=cancelled)
            if self.lookahead:
                self._collect(self.client.drain(cancel=cancelled))
        except hostlink.Cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - raised again by pump() on Blender's thread
            self._error = exc

    def _collect(self, done) -> None:
        for req, _, result in done:
            self._write(self.frame_of.pop(req), result)

    def finish(self):
        """Add the clean frames as an image strip above the original; returns it."""
        seq = self.scene.sequence_editor
        files = [f"fill_{i:06d}.png" for i in range(self.last - self.first)]
        channel = self.strip.channel + 1
        while any(s.channel == channel and s.frame_final_start < self.last and s.frame_final_end > self.first
                  for s in seq.sequences_all if s != self.strip):
            channel += 1
        new = seq.sequences.new_image(f"{self.strip.name} fill", str(self.out / files[0]), channel, self.first)
        for name in files[1:]:
            new.elements.append(name)
        new.blend_type = "ALPHA_OVER"
        # the PNGs hold the movie's bytes (filled): read them as the strip reads its movie, or the layer that
        # covers the strip would show other colours (footage tagged Linear, Filmic Log, ...)
        new.colorspace_settings.name = self.strip.colorspace_settings.name
        # the PNGs are the movie's pixels as the file has them: placed, cropped and flipped as the strip is
        # (Scale to Fit into a scene of another size, a move, a crop), the layer covers the strip exactly
        for src, dst in ((self.strip.transform, new.transform), (self.strip.crop, new.crop)):
            for prop in dst.bl_rna.properties:
                if not prop.is_readonly:
                    setattr(dst, prop.identifier, getattr(src, prop.identifier))
        new.use_flip_x, new.use_flip_y = self.strip.use_flip_x, self.strip.use_flip_y
        self.close(keep=True)
        return new

    def close(self, keep: bool) -> None:
        if self._worker is not None:
            self._cancel.set()  # every wait of the worker ends within ~50 ms
            self._worker.join(2.0)
            if self._worker.is_alive():  # stuck outside serve's waits: leave the client to it
                self.client = None
            self._worker = None
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.client is not None:
            if self.client.unanswered or not keep:
                self.client.discard()  # cancelled: serve drops the frames it holds
            else:
                self.client.bye(self.done)
            self.client.close()
            self.client = None
        if not keep and self.out is not None:
            shutil.rmtree(self.out, ignore_errors=True)


# -------------------------------------------------------------------------------------------- Blender UI


def _checkout(context) -> str:
    prefs = context.preferences.addons.get(__name__)
    return prefs.preferences.checkout if prefs is not None else ""


class StreamfillPreferences(bpy.types.AddonPreferences):
    bl_idname = __name__
    checkout: StringProperty(name="streamfill checkout", subtype="DIR_PATH",
                             description="folder of the streamfill checkout (holds plugins/hostlink.py); "
                                         "needed only when this add-on was installed by copying the file")

    def draw(self, context):
        self.layout.prop(self, "checkout")


class StreamfillSettings(bpy.types.PropertyGroup):
    endpoint: StringProperty(name="Server", default="tcp://127.0.0.1:5555",
                             description="where `streamfill serve` listens")
    mask_kind: EnumProperty(name="Mask", items=[("MASK", "Mask", "a Mask datablock, rendered on every frame"),
                                                ("BOX", "Box", "a box on the current frame")], default="MASK")
    mask: PointerProperty(name="Mask", type=bpy.types.Mask, description="white inside the mask = remove")
    box: IntVectorProperty(name="Box", size=4, min=0, default=(0, 0, 32, 32),
                           description="x, y, width, height in pixels of the movie (top-left origin) on the "
                                       "current frame")
    track: BoolProperty(name="Track", default=True, description="follow the box through the strip")
    output_dir: StringProperty(name="Output", subtype="DIR_PATH", default="",
                               description="folder for the clean frames (default: //streamfill next to the "
                                           ".blend, or the temporary folder)")
    timeout: FloatProperty(name="Timeout", default=30.0, min=0.1, description="seconds to wait for each frame")
    retries: IntProperty(name="Retries", default=2, min=0, description="resends before giving up on a frame")


class SEQUENCER_OT_streamfill_remove_object(bpy.types.Operator):
    """Remove the masked object from the active movie strip with streamfill serve (Esc cancels)"""

    bl_idname = "sequencer.streamfill_remove_object"
    bl_label = "Remove object"
    bl_options = {"REGISTER", "UNDO"}

    _job = None
    _timer = None

    @classmethod
    def poll(cls, context):
        seq = context.scene.sequence_editor
        return seq is not None and seq.active_strip is not None and seq.active_strip.type == "MOVIE"

    def _start(self, context) -> bool:
        strip = context.scene.sequence_editor.active_strip
        try:
            self._job = FillJob(context, strip, context.scene.streamfill, _checkout(context))
        except Exception as exc:  # noqa: BLE001 - shown in Blender's UI as one line
            self.report({"ERROR"}, f"streamfill: {exc}")
            return False
        context.window_manager.progress_begin(0, self._job.total)
        return True

    def _fail(self, context, exc) -> set:
        self._end(context, keep=False)
        self.report({"ERROR"}, f"streamfill: {exc}")
        return {"CANCELLED"}

    def _end(self, context, keep: bool):
        context.window_manager.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        new = None
        if self._job is not None:
            new = self._job.finish() if keep else self._job.close(keep=False)
            self._job = None
        return new

    def execute(self, context):
        """Blocking run (scripts, background mode): every frame, then the new strip."""
        if not self._start(context):
            return {"CANCELLED"}
        try:
            while self._job.step():
                context.window_manager.progress_update(self._job.done)
        except Exception as exc:  # noqa: BLE001
            return self._fail(context, exc)
        new = self._end(context, keep=True)
        self.report({"INFO"}, f"streamfill: {len(new.elements)} frames in strip {new.name!r}")
        return {"FINISHED"}

    def invoke(self, context, event):
        """Interactive run: a timer tick reads a frame, a worker thread waits for serve, so Blender stays
        responsive and Esc cancels at once."""
        if not self._start(context):
            return {"CANCELLED"}
        self._job.start_worker()
        self._timer = context.window_manager.event_timer_add(0.01, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC":
            self._end(context, keep=False)
            self.report({"WARNING"}, "streamfill: cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            more = self._job.pump()
        except Exception as exc:  # noqa: BLE001
            return self._fail(context, exc)
        context.window_manager.progress_update(self._job.done)
        if context.workspace is not None:
            context.workspace.status_text_set(f"streamfill: frame {self._job.done}/{self._job.total} (Esc to cancel)")
        if more:
            return {"RUNNING_MODAL"}
        new = self._end(context, keep=True)
        self.report({"INFO"}, f"streamfill: {len(new.elements)} frames in strip {new.name!r}")
        return {"FINISHED"}

    def cancel(self, context):
        self._end(context, keep=False)


class SEQUENCER_PT_streamfill(bpy.types.Panel):
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Strip"
    bl_label = "streamfill"

    def draw(self, context):
        s = context.scene.streamfill
        layout = self.layout
        layout.prop(s, "endpoint")
        layout.prop(s, "mask_kind", expand=True)
        if s.mask_kind == "MASK":
            layout.prop(s, "mask")
        else:
            layout.prop(s, "box")
            layout.prop(s, "track")
        layout.prop(s, "output_dir")
        layout.operator(SEQUENCER_OT_streamfill_remove_object.bl_idname, icon="BRUSH_DATA")


# preferences exist only for an installed add-on (not when this file is run with `blender --python`)
CLASSES = ((StreamfillPreferences,) if __name__ != "__main__" else ()) + (
    StreamfillSettings, SEQUENCER_OT_streamfill_remove_object, SEQUENCER_PT_streamfill)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.streamfill = PointerProperty(type=StreamfillSettings)


def unregister():
    del bpy.types.Scene.streamfill
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)


if __name__ == "__main__":
    register()

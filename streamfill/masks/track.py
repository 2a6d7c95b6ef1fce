"""Mask tracking: follow an object from one or more keyframe masks (or boxes) through a clip.

:class:`FlowTracker` is the public tracker (a :class:`~streamfill.types.MaskSource`). How one mask is carried
from a frame to the next (flow, object motion, appearance anchor, colour pull, bounded motion, confidence) is
:mod:`streamfill.masks.propagate`; this module decides which frames are tracked from which keyframe, in which
direction, and what is reported. All tracking runs at a working resolution: ``[track] scale`` of the frame,
raised for objects under ~128 px so that they are ~64 working px across, up to full resolution
(``FlowTracker._working_scale``).

Keyframes (:class:`Keyframe`, or :func:`parse_box` for ``--box``) give a mask or a box for frame ``K`` (a
``Frame.index``). Frames after a keyframe are tracked forward from it; frames before the first keyframe are
tracked backward from it; a later keyframe is a correction: from it on, it wins. With ``[track] backfill = N``
the N frames before each later keyframe are also re-tracked backward from it, and those backward masks win
over the forward ones.

Lost track: each mask has a confidence (see :mod:`streamfill.masks.propagate`); a run of low-confidence frames
is a lost stretch, reported once through ``on_warning`` / ``on_lost`` and kept in ``lost`` / ``lost_frames`` /
``lost_since`` (see :class:`FlowTracker`).

Scene cuts (:mod:`streamfill.masks.scenecut`) stop tracking: the frames of the new shot get empty masks,
with a :class:`TrackingWarning` (through :mod:`warnings`, or the ``on_warning`` callback), unless a later
keyframe lies in that shot, from which the shot is tracked backward (and forward).

Memory bound: frames waiting for a backward pass are held in full (the stream cannot be rewound): at most
``[track] max_backward`` frames (150 by default) plus their small working copies. With a keyframe at K = 0
and ``backfill = 0`` nothing is held: every mask is yielded as soon as its frame arrives. Frames more than
``max_backward`` frames before the first keyframe of their shot get empty masks (with a warning).

Masks in and out: H x W uint8, 255 = object (to fill), same size as the frames; keyframe masks count pixels
above 127. The masks yielded are the object itself, without safety margin: ``dilate`` (pixels) grows them
if the caller asks for it. A tracked frame's mask is its upsampled soft state above ``_OUTPUT_THRESHOLD`` (0.3),
not 0.5: the state lags the outline inwards (unless those unsure pixels would add more than ``_OUTPUT_EXTRA``,
30 %, to the area above 0.5: then that area alone).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from streamfill.config import TrackConfig
from streamfill.errors import InputError, MaskError
from streamfill.masks.box import segment_box, whole_box
from streamfill.masks.ops import dilate
from streamfill.masks.outline import OutlineRefiner
from streamfill.masks.propagate import Propagator
from streamfill.masks.scenecut import SceneCutDetector
from streamfill.types import Frame, Mask

# Lost track (see FlowTracker._note).
_LOST_CONFIDENCE = 0.3  # a mask below this confidence counts as lost ...
_LOST_FRAMES = 5  # ... once this many frames in a row are
# Working scale (see FlowTracker._working_scale).
_TARGET_SIDE = 64
_TARGET_THICK = 6  # working px an object's thickest part should span (see _working_scale)
_MAX_UPSCALE = 1.0
_UPSCALE_PIXELS = 400_000
# Output (see FlowTracker._to_full): the upsampled soft state above this is the object. Lower than the state's own
# 0.5: the tracked state lags the outline inwards by a fraction of a pixel (small objects through a codec), and
# the pixels it is unsure of are more often object than not. Measured in docs/guide/tracking.md ("Fourth pass").
_OUTPUT_THRESHOLD = 0.3
_OUTPUT_EXTRA = 0.3  # ... but those unsure pixels add at most this share of the sure ones' area (else the sure ones)


class TrackingWarning(UserWarning):
    """Tracking degraded without failing: a scene cut stopped it, or frames got empty masks."""


@dataclass(frozen=True)
class Advice:
    """What the tracker's notices tell the user to do, in a front end's terms; the defaults are the command
    line's (``--box``, the ``--preview`` file, ``[track]`` keys). ``lost``: after a lost stretch; ``box``:
    after a box whose object could not be told from its surroundings; ``too_far``: why frames before the
    first keyframe of their shot get empty masks (``{limit}``: ``[track] max_backward``)."""

    lost: str = "add a --box there or check the preview"
    box: str = "check the preview or draw the box tighter"
    too_far: str = "no keyframe within [track] max_backward = {limit} frames tracks it"


@dataclass(frozen=True)
class Keyframe:
    """The object at frame ``index`` (a ``Frame.index``): either ``mask`` (H x W uint8, > 127 = object, the
    frame's size) or ``box`` (x, y, w, h in frame pixels; the object is segmented inside it with GrabCut)."""

    index: int
    mask: np.ndarray | None = field(default=None, repr=False)
    box: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if (self.mask is None) == (self.box is None):
            raise InputError("a keyframe needs exactly one of a mask or a box")
        if isinstance(self.index, bool) or not isinstance(self.index, (int, np.integer)) or self.index < 0:
            raise InputError(f"keyframe index {self.index!r}: must be a frame number >= 0")
        if self.box is not None:
            if len(self.box) != 4 or any(int(v) != v for v in self.box):
                raise InputError(f"box {self.box!r}: expected four integers x,y,w,h")
            if self.box[2] <= 0 or self.box[3] <= 0:
                raise InputError(f"box {_fmt_box(self.box)}: width and height must be positive")
        if self.mask is not None and (self.mask.ndim != 2 or self.mask.dtype != np.uint8):
            raise InputError(
                f"keyframe {self.index} mask: expected an H x W uint8 array, got {self.mask.dtype} "
                f"with shape {self.mask.shape}"
            )


_BOX_RE = re.compile(r"^\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*(?:@\s*(\d+)\s*)?$")


def parse_box(text: str, default_frame: int = 0) -> Keyframe:
    """``"x,y,w,h"`` or ``"x,y,w,h@K"`` (frame pixels; K = frame index, default ``default_frame``)."""
    m = _BOX_RE.match(text)
    if not m:
        raise InputError(f"--box {text!r}: expected x,y,w,h or x,y,w,h@FRAME (integers)")
    x, y, w, h = (int(g) for g in m.groups()[:4])
    k = int(m.group(5)) if m.group(5) is not None else default_frame
    return Keyframe(index=k, box=(x, y, w, h))


def _fmt_box(box: Sequence[int]) -> str:
    return ",".join(str(int(v)) for v in box)


@dataclass
class _Pending:
    frame: Frame
    rgb: np.ndarray
    grey: np.ndarray
    soft: np.ndarray | None  # forward result (working resolution), None if no forward track
    confidence: float | None = None


class FlowTracker:
    """A :class:`~streamfill.types.MaskSource` that tracks keyframe masks or boxes (see the module doc).

    ``keyframes``: one or more :class:`Keyframe` (distinct indices). ``config``: the ``[track]`` section.
    ``dilate``: safety margin in pixels added to every yielded mask, keyframes included (0 = the object
    itself). ``on_warning(message)`` receives degradation notices; without it they go to :mod:`warnings`
    as :class:`TrackingWarning`. ``on_lost(first, last)`` is called for every lost stretch (frame indices)
    when it ends; ``confidence`` (0-1) is that of the mask yielded last, ``low_confidence`` whether it is
    below the lost threshold, ``lost_since`` the first frame of a stretch still going on. Frames must
    arrive in order with increasing ``index``; all must have the same size. Raises :class:`MaskError` for
    a keyframe that does not fit the frames (wrong size, box outside the frame, index never reached).
    ``advice``: what the notices tell the user to do (default ``Advice()``, the command line's: ``--box``
    and the preview).
    """

    def __init__(
        self,
        keyframes: Sequence[Keyframe],
        config: TrackConfig | None = None,
        dilate: int = 0,
        on_warning: Callable[[str], None] | None = None,
        on_lost: Callable[[int, int], None] | None = None,
        lost_after_cut: bool = False,
        advice: Advice | None = None,
    ) -> None:
        if not keyframes:
            raise MaskError("mask tracking needs at least one keyframe (a mask or a box)")
        indices = [k.index for k in keyframes]
        dup = sorted({i for i in indices if indices.count(i) > 1})
        if dup:
            raise MaskError(f"two keyframes for frame {dup[0]}: give one mask or box per frame")
        self.keyframes = sorted(keyframes, key=lambda k: k.index)
        self.config = config or TrackConfig()
        self.dilate = int(dilate)
        self.on_warning = on_warning
        self.on_lost = on_lost
        self.advice = advice or Advice()
        # live: a track stopped by a scene cut (a looping file's jump back included) is a lost track, not
        # "nothing to track" (its frames were never masked again, and the stats said nothing was lost)
        self.lost_after_cut = bool(lost_after_cut)
        self.confidence = 1.0  # of the mask yielded last
        self.lost: list[tuple[int, int]] = []  # closed lost stretches (first, last frame index)
        self.lost_frames = 0  # frames in lost stretches so far, the open one included
        self.scale = self.config.scale  # working scale, chosen from the object's size at the first frame
        self._outline = OutlineRefiner() if self.config.outline else None
        self._low_start: int | None = None
        self._low_end = -1
        self._low_count = 0

    # -- helpers ---------------------------------------------------------------------------------------
    def _warn(self, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(message)
        else:
            warnings.warn(message, TrackingWarning, stacklevel=3)

    @property
    def low_confidence(self) -> bool:
        """The mask yielded last is below the lost threshold (``_LOST_CONFIDENCE``)."""
        return self.confidence < _LOST_CONFIDENCE

    @property
    def lost_since(self) -> int | None:
        """First frame of the lost stretch still open (the track is lost now), else None."""
        return self._low_start if self._low_count >= _LOST_FRAMES else None

    def _note(self, index: int, confidence: float | None) -> None:
        """Record the confidence of the mask about to be yielded for frame ``index``; None = not tracked
        (keyframe, or no track after a scene cut): closes any lost stretch."""
        self.confidence = 1.0 if confidence is None else float(confidence)
        if confidence is not None and confidence < _LOST_CONFIDENCE:
            if self._low_start is None:
                self._low_start = index
            self._low_count += 1
            self._low_end = index
            if self._low_count == _LOST_FRAMES:
                self.lost_frames += _LOST_FRAMES
            elif self._low_count > _LOST_FRAMES:
                self.lost_frames += 1
        else:
            self._close_lost()

    def _close_lost(self) -> None:
        if self._low_start is not None and self._low_count >= _LOST_FRAMES:
            a, b = self._low_start, self._low_end
            self.lost.append((a, b))
            self._warn(f"track of the object lost at frames {a}-{b}; {self.advice.lost}")
            if self.on_lost is not None:
                self.on_lost(a, b)
        self._low_start, self._low_end, self._low_count = None, -1, 0

    def _working_scale(self, w: int, h: int) -> float:
        """``[track] scale``, raised for small objects so that the smallest keyframe object is about
        ``_TARGET_SIDE`` working px across, and for thin ones (a pole, a wire, a thin stroke) so that they are
        ``_TARGET_THICK`` working px thick: up to full resolution (``_MAX_UPSCALE`` = 1; above 1 it would
        upscale small frames while the working frame stays under ``_UPSCALE_PIXELS``: tried at x2, no better).
        Thinner than about 3 working px, the mask's clean-up (an opening) erases an object."""
        sides, thick = [], []
        for k in self.keyframes:
            if k.box is not None:
                sides.append(max(int(k.box[2]), int(k.box[3])))
                thick.append(min(int(k.box[2]), int(k.box[3])))
            elif k.mask is not None and (k.mask > 127).any():
                obj = (k.mask > 127).astype(np.uint8)
                sides.append(max(cv2.boundingRect(obj)[2:]))
                # twice the largest distance to the outline: the width of the object's thickest part
                thick.append(2.0 * float(cv2.distanceTransform(obj, cv2.DIST_L2, 3).max()))
        side = min(sides) if sides else max(w, h)
        thin = min(thick) if thick else max(w, h)
        top = max(1.0, min(_MAX_UPSCALE, float(np.sqrt(_UPSCALE_PIXELS / (w * h)))))
        return float(min(top, max(self.config.scale, _TARGET_SIDE / max(1, side), _TARGET_THICK / max(1.0, thin))))

    def _small_size(self, w: int, h: int) -> tuple[int, int]:
        s = self.scale = self._working_scale(w, h)
        return max(16, round(w * s)), max(16, round(h * s))

    def _prepare(self, frame: Frame) -> tuple[np.ndarray, np.ndarray]:
        if self._small == (self._w, self._h):
            rgb = frame.image
        else:
            up = self._small[0] > self._w
            rgb = cv2.resize(frame.image, self._small, interpolation=cv2.INTER_LINEAR if up else cv2.INTER_AREA)
        return rgb, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)

    def _check_keyframes(self, w: int, h: int) -> None:
        for k in self.keyframes:
            if k.mask is not None and k.mask.shape != (h, w):
                raise MaskError(
                    f"keyframe {k.index} mask is {k.mask.shape[1]}x{k.mask.shape[0]} but the video is {w}x{h}"
                )
            if k.box is not None:
                x, y, bw, bh = (int(v) for v in k.box)
                if x < 0 or y < 0 or x + bw > w or y + bh > h:
                    raise MaskError(f"box {_fmt_box(k.box)} (x,y,w,h) reaches outside the {w}x{h} frame; it must lie "
                                    "inside it")

    def _key_mask(self, key: Keyframe, frame: Frame, rgb_small: np.ndarray) -> np.ndarray:
        """Full-resolution uint8 0/255 mask of the object at a keyframe."""
        if key.mask is not None:
            mask = np.where(key.mask > 127, 255, 0).astype(np.uint8)
        else:
            mask = segment_box(frame.image, key.box)
            if mask is None:
                self._warn(f"box {_fmt_box(key.box)} at frame {key.index}: nothing in it stands out from its "
                           f"surroundings, so the whole box is tracked; {self.advice.box}")
                mask = whole_box(frame.image.shape[:2], key.box)
        if not mask.any():
            self._warn(f"keyframe {key.index}: the mask is empty; nothing to track from it")
        return mask

    def _to_small(self, mask: np.ndarray) -> np.ndarray:
        return cv2.resize((mask > 127).astype(np.float32), self._small, interpolation=cv2.INTER_AREA)

    def _to_full(self, soft: np.ndarray | None, image: np.ndarray) -> Mask:
        """The mask yielded for the soft state ``soft`` (working scale) of the frame ``image`` (RGB)."""
        if soft is None:
            return np.zeros((self._h, self._w), np.uint8)
        up = cv2.resize(soft, (self._w, self._h), interpolation=cv2.INTER_LINEAR)
        mask = up > _OUTPUT_THRESHOLD
        sure = up > 0.5
        # The area bound holds on the state (see propagate); this keeps it on what is yielded.
        if np.count_nonzero(mask) > (1.0 + _OUTPUT_EXTRA) * np.count_nonzero(sure):
            mask = sure
        if self._outline is not None:  # a small object's outline redrawn from the picture (outline.py)
            mask = self._outline(image, mask)
        return self._out(np.where(mask, 255, 0).astype(np.uint8))

    def _out(self, mask: Mask) -> Mask:
        return dilate(mask, self.dilate)

    # -- the stream ------------------------------------------------------------------------------------
    def pair(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, Mask]]:
        cfg = self.config
        keys = {k.index: k for k in self.keyframes}
        order = [k.index for k in self.keyframes]
        nxt = 0  # position in ``order`` of the next keyframe not reached yet
        cuts = SceneCutDetector(cfg.cut_threshold)
        fwd: Propagator | None = None
        pending: list[_Pending] = []
        dropped_warned = False
        announced: int | None = -1  # the keyframe named by the last scene-cut message (None: "stopped")
        stopped_by_cut = False  # a cut ended the track and no keyframe has started another yet
        last_index = -1
        count = 0
        for frame in frames:
            if count == 0:
                self._w, self._h = frame.width, frame.height
                self._small = self._small_size(self._w, self._h)
                self._check_keyframes(self._w, self._h)
            elif (frame.width, frame.height) != (self._w, self._h):
                raise MaskError(
                    f"frame {frame.index} is {frame.width}x{frame.height}, earlier frames were {self._w}x{self._h}"
                )
            if frame.index <= last_index:
                raise MaskError(f"frame indices must increase: {frame.index} came after {last_index}")
            count += 1
            last_index = frame.index
            if nxt < len(order) and order[nxt] < frame.index:
                if count == 1:  # the stream starts after it (--start): frame numbers count from the clip's start
                    raise MaskError(
                        f"keyframe {order[nxt]} comes before the first frame read ({frame.index}); frame numbers "
                        f"count from the clip's start: give the keyframe's own, e.g. --box X,Y,W,H@{frame.index} "
                        f"or --mask-frame {frame.index}")
                raise MaskError(f"keyframe {order[nxt]} is not in the stream (frame {frame.index} follows it)")
            rgb, grey = self._prepare(frame)
            cut = cuts.update(rgb) and count > 1
            if cut:
                yield from self._flush(pending)
                pending = []
                self._close_lost()
                nk = order[nxt] if nxt < len(order) else None
                # said once per change: after the track has stopped, or while waiting for the same keyframe, a
                # further cut changes nothing (a clip of many short shots said it at every cut)
                if frame.index in keys or (fwd is None and announced == nk):
                    pass
                elif nk is None:
                    self._warn(f"scene cut at frame {frame.index}: mask tracking stopped (no keyframe after it)")
                    dropped_warned = True
                else:
                    self._warn(f"scene cut at frame {frame.index}: mask tracking resumes from keyframe {nk}")
                announced = nk
                stopped_by_cut = fwd is not None or stopped_by_cut
                fwd = None

            if frame.index in keys:
                kmask = self._key_mask(keys[frame.index], frame, rgb)
                ksmall = self._to_small(kmask)
                if pending:
                    yield from self._backward(pending, rgb, grey, ksmall)
                    pending = []
                fwd = Propagator(cfg, self._small)
                fwd.start(rgb, grey, ksmall)
                stopped_by_cut = False
                nxt += 1
                self._note(frame.index, None)
                yield frame, self._out(kmask)
                continue

            soft = fwd.step(rgb, grey) if fwd is not None else None
            conf = fwd.confidence if fwd is not None else None
            nk = order[nxt] if nxt < len(order) else None
            if nk is not None and fwd is None and nk - frame.index <= cfg.max_backward:
                pending.append(_Pending(frame, rgb, grey, None))
            elif nk is not None and fwd is not None and nk - frame.index <= cfg.backfill:
                pending.append(_Pending(frame, rgb, grey, soft, conf))
            else:
                if soft is None and not dropped_warned:
                    dropped_warned = True
                    self._warn(f"frame {frame.index} gets an empty mask: "
                               f"{self.advice.too_far.format(limit=cfg.max_backward)}")
                if conf is None and stopped_by_cut and self.lost_after_cut:
                    conf = 0.0
                self._note(frame.index, conf)
                if soft is None:
                    self.confidence = 0.0
                yield frame, self._to_full(soft, frame.image)
        if nxt < len(order):
            error = MaskError(f"keyframe {order[nxt]} is beyond the end of the clip (last frame index {last_index})")
            error.frames = last_index + 1  # what the clip held (read with salvage: the frames before the damage)
            raise error
        yield from self._flush(pending)
        self._close_lost()

    def _flush(self, pending: list[_Pending]) -> Iterator[tuple[Frame, Mask]]:
        for item in pending:
            self._note(item.frame.index, item.confidence)
            if item.soft is None:
                self.confidence = 0.0
            yield item.frame, self._to_full(item.soft, item.frame.image)

    def _backward(
        self, pending: list[_Pending], rgb: np.ndarray, grey: np.ndarray, key_small: np.ndarray
    ) -> Iterator[tuple[Frame, Mask]]:
        back = Propagator(self.config, self._small)
        back.start(rgb, grey, key_small)
        for item in reversed(pending):
            item.soft = back.step(item.rgb, item.grey)  # the later keyframe wins
            item.confidence = back.confidence
            item.rgb = item.grey = None
        yield from self._flush(pending)

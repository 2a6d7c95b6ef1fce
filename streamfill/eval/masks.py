"""Mask-tracking benchmark: a cut-out with known alpha moves over a background clip along known
trajectories; the tracker starts from the first frame's true mask and is scored on every frame.

Per trajectory it reports per-frame IoU against the true visible mask (alpha > 0.5, minus occluders), mean
and minimum IoU, drift over time (mean IoU per window of frames, centroid error in pixels), coverage (the
share of true object pixels inside the mask once the safety margin ``[mask] dilate`` is added: what decides
whether an inpainted object leaves a halo) and the tracker's own milliseconds per frame (compositing
excluded). Masks are scored without the safety margin, so IoU measures the tracking itself.

Backgrounds: a video file (its first ``frames`` frames), a still image (a slow pan over it), or synthetic
texture (``background=None``). Objects: an RGBA cut-out, an image plus a mask, an image alone (GrabCut cuts
the object from its centre), or a synthetic textured blob (``object_path=None``). ``codec="h264"`` sends the
composited frames through an H.264 round trip before the tracker sees them (``CODECS``), as a real clip's are.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from streamfill.config import Config
from streamfill.errors import InputError
from streamfill.eval.results import finite, number
from streamfill.masks import cutouts
from streamfill.masks.ops import dilate
from streamfill.masks.track import FlowTracker, Keyframe
from streamfill.types import Frame

STANDARD = tuple(cutouts.TRAJECTORIES)
WINDOW = 30  # frames per drift window
# What the composited or rendered frames go through before the tracker sees them: "none" (the exact pixels)
# or "h264" (an H.264 round trip at libx264's default quality, CRF 23, 4:2:0 chroma: what any real clip has been
# through). libx264 runs on one thread and without its assembly (``asm=0``): its SIMD code reads past the rows
# of frames whose width is not a multiple of 64, so the same frames gave a different stream from run to run (a
# 176x144 scene's mean IoU moved by up to 0.013), and a scene must give the same pixels in both runs of an A/B
# comparison, on any machine. It costs ~7 s of encoding for 90 frames at 768x576, outside the timed tracking.
CODECS = ("none", "h264")
H264_CRF = 23


def codec_roundtrip(images: list[np.ndarray], codec: str) -> list[np.ndarray]:
    """``images`` (H x W x 3 uint8 RGB, even W and H for h264) encoded and decoded again with ``codec``."""
    if codec == "none":
        return images
    if codec not in CODECS:
        raise InputError(f"unknown codec {codec!r} (known: {', '.join(CODECS)})")
    import io as bytes_io

    import av

    h, w = images[0].shape[:2]
    if w % 2 or h % 2:
        raise InputError(f"a {w}x{h} frame cannot go through h264 with 4:2:0 chroma: width and height must be even")
    buf = bytes_io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(H264_CRF), "threads": "1", "x264-params": "asm=0"}
        for image in images:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as inp:
        decoded = [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]
    if len(decoded) != len(images):
        raise RuntimeError(f"h264 round trip gave {len(decoded)} frames for {len(images)}")
    return decoded


@dataclass
class TrajectoryResult:
    """Scores of one trajectory; lists have one entry per frame (frame 0, the keyframe, included)."""

    name: str
    iou: list[float] = field(default_factory=list)
    coverage: list[float] = field(default_factory=list)
    centroid_error: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.iou[1:])) if len(self.iou) > 1 else float("nan")

    @property
    def min_iou(self) -> float:
        return float(np.min(self.iou[1:])) if len(self.iou) > 1 else float("nan")

    @property
    def ms_per_frame(self) -> float:
        """Median tracker time per frame, keyframe excluded."""
        return float(np.median(self.ms[1:])) if len(self.ms) > 1 else float("nan")

    def drift(self, window: int = WINDOW) -> list[float]:
        """Mean IoU per window of ``window`` frames after the keyframe, in order (falling values = drift); the
        keyframe (IoU 1 by construction) is left out, as in ``mean_iou``."""
        scored = self.iou[1:]
        return [float(np.mean(scored[i : i + window])) for i in range(0, len(scored), window)]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "frames": len(self.iou),
            "mean_iou": self.mean_iou,
            "min_iou": self.min_iou,
            "mean_coverage": float(np.mean(self.coverage)) if self.coverage else float("nan"),
            "max_centroid_error_px": float(np.max(self.centroid_error)) if self.centroid_error else float("nan"),
            "ms_per_frame": self.ms_per_frame,
            "drift_window": WINDOW,
            "drift": self.drift(),
            "iou": self.iou,
            "coverage": self.coverage,
            "centroid_error_px": self.centroid_error,
            "ms": self.ms,
        }


@dataclass
class MaskEvalReport:
    """All trajectories of one run, with the setting that produced them."""

    results: list[TrajectoryResult]
    setting: dict

    @property
    def mean_iou(self) -> float:
        return float(np.mean([r.mean_iou for r in self.results]))

    @property
    def min_iou(self) -> float:
        return float(np.min([r.min_iou for r in self.results]))

    def to_dict(self) -> dict:
        return {
            "setting": self.setting,
            "mean_iou": self.mean_iou,
            "min_iou": self.min_iou,
            "trajectories": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> str:
        return json.dumps(finite(self.to_dict()), indent=1)

    def table(self) -> str:
        """A plain-text table, one row per trajectory plus the overall row."""
        head = (
            f"{'trajectory':<11} {'mean IoU':>8} {'min IoU':>8} {'cover':>6} {'drift px':>8} {'ms/frame':>8}"
            f"  IoU per {WINDOW} frames"
        )
        rows = [head, "-" * len(head)]
        for r in self.results:
            d = r.to_dict()
            drift = " ".join(number(v, ".2f") for v in r.drift())
            error = d["max_centroid_error_px"]  # infinite: a frame whose tracked mask came out empty
            error = "empty" if error == float("inf") else number(error, "8.1f")
            rows.append(
                f"{r.name:<11} {number(r.mean_iou, '8.3f')} {number(r.min_iou, '8.3f')} "
                f"{number(d['mean_coverage'], '6.3f')} {error:>8} {number(r.ms_per_frame, '8.1f')}  {drift}"
            )
        ms = float(np.median([r.ms_per_frame for r in self.results]))
        rows.append(f"{'all':<11} {number(self.mean_iou, '8.3f')} {number(self.min_iou, '8.3f')} {'':>6} {'':>8} "
                    f"{number(ms, '8.1f')}")
        return "\n".join(rows)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def _centroid(m: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(m)
    return None if len(ys) == 0 else np.array([xs.mean(), ys.mean()])


def evaluate_trajectory(
    name: str,
    backgrounds: Iterator[np.ndarray],
    cutout: np.ndarray,
    *,
    frames: int = 150,
    config: Config | None = None,
    occluder: np.ndarray | None = None,
    ref_size: float | None = None,
    codec: str = "none",
) -> TrajectoryResult:
    """Run the tracker over one trajectory of ``cutouts.TRAJECTORIES``.

    ``backgrounds`` yields H x W x 3 uint8 RGB frames (at least ``frames`` of them); ``cutout`` and
    ``occluder`` are h x w x 4 uint8 RGBA. ``ref_size`` is the cut-out's longer side on screen in pixels at
    scale 1 (default: 0.3 x the shorter frame side). ``codec`` (see ``CODECS``): what the composited frames go
    through before the tracker sees them; with one, all frames are composited and coded before tracking starts
    (as a clip in memory), else one at a time.
    """
    if name not in cutouts.TRAJECTORIES:
        raise InputError(f"unknown trajectory {name!r} (known: {', '.join(cutouts.TRAJECTORIES)})")
    config = config or Config()
    path = cutouts.TRAJECTORIES[name]
    result = TrajectoryResult(name)
    truth: dict[int, np.ndarray] = {}
    spent = [0.0]  # seconds spent compositing inside the current next() call
    first: dict[str, np.ndarray] = {}
    default_occluder = cutouts.textured_cutout(160, seed=7)

    def composite() -> Iterator[np.ndarray]:
        for t in range(frames):
            try:
                bg = next(backgrounds)
            except StopIteration:
                raise InputError(f"the background has only {t} frames; the benchmark needs {frames}") from None
            h, w = bg.shape[:2]
            size = ref_size or 0.3 * min(h, w)
            layers = [cutouts.place(cutout, path(t, frames), (h, w), size)]
            if name == "occlusion":
                occ = occluder if occluder is not None else default_occluder
                occ_path = cutouts.occluder_path(t, frames)
                layers.append(cutouts.place(occ, occ_path, (h, w), size * cutouts.OCCLUDER_SCALE))
            image, visible = cutouts.composite(bg, layers)
            truth[t] = visible[0] > 0.5
            if t == 0:
                first["mask"] = np.where(truth[0], 255, 0).astype(np.uint8)
            yield image

    def source() -> Iterator[Frame]:
        images = composite() if codec == "none" else iter(codec_roundtrip(list(composite()), codec))
        for t in range(frames):
            t0 = time.perf_counter()
            image = next(images)
            spent[0] += time.perf_counter() - t0
            yield Frame(image=image, pts=t, time_base=Fraction(1, 25), index=t)

    frames_it = source()
    first_frame = next(frames_it)  # composited before the tracker exists: it needs frame 0's true mask

    def replay() -> Iterator[Frame]:
        yield first_frame
        yield from frames_it

    tracker = FlowTracker([Keyframe(0, mask=first["mask"])], config.track, dilate=0)
    pairs = tracker.pair(replay())
    margin = config.mask.dilate
    while True:
        spent[0] = 0.0
        t0 = time.perf_counter()
        try:
            frame, mask = next(pairs)
        except StopIteration:
            break
        result.ms.append(max(0.0, time.perf_counter() - t0 - spent[0]) * 1000.0)
        gt = truth.pop(frame.index)
        m = mask > 127
        result.iou.append(_iou(m, gt))
        n_gt = np.count_nonzero(gt)
        cover = np.count_nonzero(dilate(mask, margin)[gt]) / n_gt if n_gt else 1.0
        result.coverage.append(float(cover))
        cg, cm = _centroid(gt), _centroid(m)
        err = 0.0 if cg is None and cm is None else float("inf") if cg is None or cm is None else float(
            np.hypot(*(cg - cm))
        )
        result.centroid_error.append(err)
    return result


BackgroundFactory = Callable[[], Iterator[np.ndarray]]


def background_factory(
    background: str | Path | None, size: tuple[int, int] | None = None, seed: int = 0
) -> BackgroundFactory:
    """A function returning a fresh iterator of H x W x 3 uint8 RGB background frames for each trajectory.

    ``background``: a video file, a still image, or None (synthetic texture). ``size`` (w, h) resizes
    (default: the clip's own size; 768 x 576 for images and synthetic backgrounds).
    """
    if background is None:
        w, h = size or (768, 576)
        return lambda: cutouts.synthetic_backgrounds(h, w, seed)
    path = Path(background)
    if not path.exists():
        raise InputError(f"background not found: {path}")
    from streamfill import io

    if io.is_image_file(path):
        w, h = size or (768, 576)
        picture = io.read_image(path)
        return lambda: cutouts.image_backgrounds(picture, h, w)

    def video() -> Iterator[np.ndarray]:
        with io.open_video(path) as reader:
            for frame in reader:
                yield frame.image if size is None else cutouts.resize_rgb(frame.image, *size)

    return video


def evaluate_masks(
    background: str | Path | None = None,
    object_path: str | Path | None = None,
    object_mask: str | Path | None = None,
    *,
    trajectories: tuple[str, ...] = STANDARD,
    frames: int = 150,
    size: tuple[int, int] | None = None,
    config: Config | None = None,
    seed: int = 0,
    occluder_path: str | Path | None = None,
    codec: str = "none",
) -> MaskEvalReport:
    """Run every trajectory in ``trajectories`` and collect a :class:`MaskEvalReport` (see the module doc);
    ``codec``: what the composited frames go through before tracking (``CODECS``)."""
    if frames < 2:
        raise InputError(f"--frames {frames}: the benchmark needs at least 2 frames")
    config = config or Config()
    unknown = [t for t in trajectories if t not in cutouts.TRAJECTORIES]
    if unknown:
        raise InputError(f"unknown trajectory {unknown[0]!r} (known: {', '.join(cutouts.TRAJECTORIES)})")
    if object_path is None:
        cutout = cutouts.textured_cutout(160, seed + 1)
    else:
        cutout = cutouts.load_cutout(object_path, object_mask)
    occluder = cutouts.load_cutout(occluder_path, flag="--occluder") if occluder_path is not None else None
    make_bg = background_factory(background, size, seed)
    results = [
        evaluate_trajectory(name, make_bg(), cutout, frames=frames, config=config, occluder=occluder, codec=codec)
        for name in trajectories
    ]
    setting = {
        "background": str(background) if background is not None else "synthetic",
        "object": str(object_path) if object_path is not None else "synthetic",
        "object_mask": str(object_mask) if object_mask is not None else None,
        "frames": frames,
        "codec": codec,
        "track": {k: getattr(config.track, k) for k in config.track.__dataclass_fields__},
        "mask_dilate": config.mask.dilate,
    }
    return MaskEvalReport(results, setting)


# -- the hard-case suite (``streamfill eval masks --suite``) -------------------------------------------------

SUITE_SEEDS = 3  # seeds per case by default
HELD_OUT_SEEDS = (1000, 1001)  # run only with held_out=True: not looked at while tuning
BACKDROP_FRAMES = 600  # frames of a --backdrop clip kept in memory


def load_backdrop(path: str | Path, frames: int = BACKDROP_FRAMES) -> list[np.ndarray]:
    """The first ``frames`` frames (H x W x 3 uint8 RGB) of the video at ``path``, for ``--backdrop``."""
    from streamfill import io

    if io.is_image_file(path):
        raise InputError(f"--backdrop {path}: a video is needed (its frames are the scenes' background)")
    out = list(itertools.islice(background_factory(path)(), frames))
    if len(out) < 2:
        raise InputError(f"--backdrop {path}: needs at least 2 frames")
    return out


@dataclass
class SceneResult:
    """One case and seed of :mod:`streamfill.masks.scenes`; per-frame lists include frame 0 (the keyframe)."""

    case: str
    seed: int
    size: tuple[int, int]
    object_px: float  # the object's longer side at frame 0, px
    # ... and its smallest over the frames where it is visible: the path scales the object by up to +-30 %
    # and turns it, so an object 20 px long at frame 0 can be 15 px long later
    object_min_px: float = 0.0
    iou: list[float] = field(default_factory=list)
    area_change: list[float] = field(default_factory=list)  # per frame: mask's area change against the truth's
    cpu_ms: list[float] = field(default_factory=list)
    confidence: list[float] = field(default_factory=list)
    lost: list[tuple[int, int]] = field(default_factory=list)
    truth_absent: list[int] = field(default_factory=list)  # frames with no visible object

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.iou[1:]))

    @property
    def min_iou(self) -> float:
        return float(np.min(self.iou[1:]))

    @property
    def max_area_change(self) -> float:
        return float(np.max(self.area_change[1:]))

    @property
    def cpu_ms_per_frame(self) -> float:
        """Median CPU (process) time of the tracker per frame, keyframe excluded."""
        return float(np.median(self.cpu_ms[1:]))

    def to_dict(self, per_frame: bool = True) -> dict:
        d = {
            "case": self.case, "seed": self.seed, "size": list(self.size), "object_px": round(self.object_px, 1),
            "object_min_px": round(self.object_min_px, 1),
            "frames": len(self.iou), "mean_iou": self.mean_iou, "min_iou": self.min_iou,
            "max_area_change": self.max_area_change, "cpu_ms_per_frame": self.cpu_ms_per_frame,
            "min_confidence": float(np.min(self.confidence[1:])), "lost": [list(r) for r in self.lost],
        }
        if per_frame:
            d.update(iou=self.iou, area_change=self.area_change, cpu_ms=self.cpu_ms, confidence=self.confidence)
        return d


def _longer_side(truth: np.ndarray) -> float:
    """The longer side (px) of the box around a truth mask's pixels; 0 for an empty mask."""
    ys, xs = np.nonzero(truth)
    return float(max(xs.max() - xs.min(), ys.max() - ys.min()) + 1) if len(ys) else 0.0


def _area_change(pred: int, prev_pred: int, gt: int, prev_gt: int) -> float:
    """How much more (or less) the mask's area changed than the truth's from one frame to the next, as a
    factor >= 1 (areas + 1 px, so that an empty mask on an absent object counts as no change)."""
    rp = (pred + 1.0) / (prev_pred + 1.0)
    rt = (gt + 1.0) / (prev_gt + 1.0)
    return float(max(rp / rt, rt / rp))


@contextmanager
def one_opencv_thread() -> Iterator[None]:
    """OpenCV on one thread inside the block, as before after it. The tracker's CPU time is timed so: with
    OpenCV's worker threads, process time also counts their waiting for work, which grows with the cores left
    idle (`pan` 7001 alone on a 2-core machine, runs in ABBA order: 19-27 ms a frame with the default two
    threads against 11-18 ms on one, 1.4-1.7x in each pair, for no shorter wall time; on a loaded machine the
    two come closer). One thread measures the tracker's own work, whatever else the machine is doing."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def evaluate_scene(case: str, seed: int, pictures=(), *, frames: int = 90, config: Config | None = None,
                   size: tuple[int, int] | None = None, codec: str = "none",
                   backdrop: list[np.ndarray] | None = None) -> SceneResult:
    """Render ``case``/``seed`` (all frames first, so rendering never counts as tracking time; over the clip
    ``backdrop`` when given), pass the frames through ``codec`` (see ``CODECS``), track from frame 0's true
    mask and score every frame. Time is the tracker's CPU time, with OpenCV held to one thread (see
    ``one_opencv_thread``)."""
    from streamfill.masks import scenes

    config = config or Config()
    rendered = list(scenes.render(case, seed, pictures, frames=frames, size=size, backdrop=backdrop))
    coded = codec_roundtrip([f.image for f in rendered], codec)
    for f, image in zip(rendered, coded, strict=True):
        f.image = image
    h, w = rendered[0].truth.shape
    sides = [_longer_side(f.truth) for f in rendered]
    result = SceneResult(case, seed, (w, h), sides[0], min((s for s in sides if s > 0), default=0.0))
    lost: list[tuple[int, int]] = []
    tracker = FlowTracker([Keyframe(0, mask=np.where(rendered[0].truth, 255, 0).astype(np.uint8))], config.track,
                          dilate=0, on_warning=lambda message: None, on_lost=lambda a, b: lost.append((a, b)))
    source = (Frame(image=f.image, pts=t, time_base=Fraction(1, 25), index=t) for t, f in enumerate(rendered))
    pairs = tracker.pair(source)
    prev_pred = prev_gt = 0
    with one_opencv_thread():
        while True:
            t0 = time.process_time()
            try:
                frame, mask = next(pairs)
            except StopIteration:
                break
            result.cpu_ms.append((time.process_time() - t0) * 1000.0)
            gt = rendered[frame.index].truth
            rendered[frame.index] = None  # free as we go
            m = mask > 127
            result.iou.append(_iou(m, gt))
            a, b = int(np.count_nonzero(m)), int(np.count_nonzero(gt))
            result.area_change.append(1.0 if frame.index == 0 else _area_change(a, prev_pred, b, prev_gt))
            prev_pred, prev_gt = a, b
            result.confidence.append(float(tracker.confidence))
            if b == 0:
                result.truth_absent.append(frame.index)
    result.lost = lost
    return result


@dataclass
class SuiteReport:
    results: list[SceneResult]
    setting: dict

    def by_case(self) -> dict[str, list[SceneResult]]:
        out: dict[str, list[SceneResult]] = {}
        for r in self.results:
            out.setdefault(r.case, []).append(r)
        return out

    def summary(self) -> dict:
        big = [r.cpu_ms_per_frame for r in self.results if r.size == (768, 576)]
        return {
            "runs": len(self.results),
            "mean_iou": float(np.mean([r.mean_iou for r in self.results])),
            "worst_mean_iou": float(np.min([r.mean_iou for r in self.results])),
            "worst_min_iou": float(np.min([r.min_iou for r in self.results])),
            "max_area_change": float(np.max([r.max_area_change for r in self.results])),
            "cpu_ms_per_frame_median_768x576": float(np.median(big)) if big else None,
            "cpu_ms_per_frame_median_all": float(np.median([r.cpu_ms_per_frame for r in self.results])),
        }

    def to_dict(self, per_frame: bool = True) -> dict:
        return {"setting": self.setting, "summary": self.summary(),
                "runs": [r.to_dict(per_frame) for r in self.results]}

    def to_json(self) -> str:
        return json.dumps(finite(self.to_dict()), indent=1)

    def table(self) -> str:
        head = (f"{'case':<8} {'seed':>5} {'size':>8} {'obj px':>6} {'min px':>6} {'mean IoU':>8} {'min IoU':>8} "
                f"{'area x':>7} {'CPU ms':>7} {'min conf':>8}  lost")
        rows = [head, "-" * len(head)]
        for case, runs in self.by_case().items():
            for r in runs:
                lost = ", ".join(f"{a}-{b}" for a, b in r.lost) or "-"
                rows.append(f"{case:<8} {r.seed:>5} {r.size[0]:>4}x{r.size[1]:<3} {r.object_px:6.0f} "
                            f"{r.object_min_px:6.0f} "
                            f"{r.mean_iou:8.3f} {r.min_iou:8.3f} {r.max_area_change:7.2f} "
                            f"{r.cpu_ms_per_frame:7.1f} {min(r.confidence[1:]):8.2f}  {lost}")
            worst = min(runs, key=lambda r: r.mean_iou)
            rows.append(f"{case:<8} {'mean':>5} {'':>8} {'':>6} {'':>6} {np.mean([r.mean_iou for r in runs]):8.3f} "
                        f"{min(r.min_iou for r in runs):8.3f} {max(r.max_area_change for r in runs):7.2f} "
                        f"{np.median([r.cpu_ms_per_frame for r in runs]):7.1f}  worst seed {worst.seed}")
        s = self.summary()
        rows.append("-" * len(head))
        big = s["cpu_ms_per_frame_median_768x576"]
        rows.append(f"all: mean IoU {s['mean_iou']:.3f}, worst seed mean {s['worst_mean_iou']:.3f}, worst frame "
                    f"{s['worst_min_iou']:.3f}, max area change x{s['max_area_change']:.2f}, CPU ms/frame median "
                    + (f"{big:.1f} at 768x576" if big is not None else f"{s['cpu_ms_per_frame_median_all']:.1f}"))
        return "\n".join(rows)


def load_pictures(folder: str | Path | None, part: str = "tune") -> list[np.ndarray]:
    """The photos in ``folder`` (JPEG/PNG, sorted by name), split in two: ``part = "tune"`` gives the even
    positions, ``"held_out"`` the odd ones (so held-out runs use pictures never seen while tuning).
    None gives [] (synthetic textures)."""
    if folder is None:
        return []
    from streamfill.masks.cutouts import read_rgb

    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"--photos {folder}: not a folder")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) < 2:
        raise InputError(f"--photos {folder}: needs at least two JPEG/PNG pictures")
    files = files[0::2] if part == "tune" else files[1::2]
    return [read_rgb(p) for p in files]


def evaluate_suite(cases: tuple[str, ...] | None = None, seeds: tuple[int, ...] | None = None, *,
                   photos: str | Path | None = None, held_out: bool = False, frames: int = 90,
                   config: Config | None = None, codec: str = "none", backdrop: str | Path | None = None,
                   progress: Callable[[SceneResult], None] | None = None) -> SuiteReport:
    """Every case of ``cases`` (default all of :data:`streamfill.masks.scenes.CASES`) for every seed
    (default ``0 .. SUITE_SEEDS-1``; with ``held_out`` the held-out seeds and the other half of the photos).
    ``codec``: what the frames go through before tracking (``CODECS``); ``backdrop``: a video whose frames
    replace the generated backgrounds (see :func:`streamfill.masks.scenes.render`)."""
    from streamfill.masks import scenes

    cases = tuple(cases or scenes.CASES)
    unknown = [c for c in cases if c not in scenes.CASES]
    if unknown:
        raise InputError(f"unknown case {unknown[0]!r} (known: {', '.join(scenes.CASES)})")
    if frames < 2:
        raise InputError(f"--frames {frames}: the benchmark needs at least 2 frames")
    seeds = tuple(seeds if seeds is not None else (HELD_OUT_SEEDS if held_out else range(SUITE_SEEDS)))
    config = config or Config()
    pictures = load_pictures(photos, "held_out" if held_out else "tune")
    clip = load_backdrop(backdrop) if backdrop is not None else None
    results = []
    for case in cases:
        for seed in seeds:
            r = evaluate_scene(case, seed, pictures, frames=frames, config=config, codec=codec, backdrop=clip)
            results.append(r)
            if progress is not None:
                progress(r)
    setting = {"cases": list(cases), "seeds": list(seeds), "held_out": held_out, "frames": frames,
               "photos": "photos" if photos is not None else "synthetic", "codec": codec,
               "backdrop": str(backdrop) if backdrop is not None else None,
               "track": {k: getattr(config.track, k) for k in config.track.__dataclass_fields__}}
    return SuiteReport(results, setting)

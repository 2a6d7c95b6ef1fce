"""Paths the studio may touch: everything under ``--root``, nothing else (no ``..``, no absolute paths, no
symlink that leads out, whatever the encoding the request used)."""

from __future__ import annotations

import os
from pathlib import Path

from streamfill.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                  ".wmv", ".flv", ".3gp", ".ogv", ".mxf", ".y4m")


class NotFound(InputError):
    """Something the request names is not there (HTTP 404)."""


class OutsideRoot(NotFound):
    """A path that is not inside the studio's root (or names something that is not there)."""


def resolve(root: Path, relative: str) -> Path:
    """The real path of ``relative`` (a "/"-separated path relative to ``root``) if it exists inside
    ``root``; OutsideRoot otherwise. ``root`` must already be resolved."""
    if not isinstance(relative, str) or "\x00" in relative or "\\" in relative:
        raise OutsideRoot("not a valid path")
    # (a name may start with "~" or hold a ":" on this server: nothing expands them; "C:/" and "//" may not)
    if relative.startswith("/") or (len(relative) > 2 and relative[1] == ":" and relative[2] == "/"):
        raise OutsideRoot("absolute paths are not allowed: give a path inside the studio folder")
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise OutsideRoot("'..' is not allowed: give a path inside the studio folder")
    candidate = root.joinpath(*parts) if parts else root
    try:
        real = Path(os.path.realpath(candidate, strict=True))
    except (OSError, RuntimeError):
        raise OutsideRoot(f"not found: {relative or '/'}") from None
    if real != root and root not in real.parents:
        raise OutsideRoot("that path leads outside the studio folder")
    return real


def relative_to(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def listing(root: Path, relative: str) -> dict:
    """The folders and video files of folder ``relative`` under ``root``: entries whose real path is
    outside ``root`` (symlinks out) and hidden entries are left out."""
    folder = resolve(root, relative)
    if not folder.is_dir():
        raise OutsideRoot(f"not a folder: {relative}")
    dirs, files = [], []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name.lower())
    except OSError as exc:
        raise OutsideRoot(f"cannot list {relative or '/'}: {exc.strerror}") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:  # not UTF-8 on disk: a page cannot show or ask for it (it broke the listing)
            continue
        try:
            real = Path(os.path.realpath(entry.path, strict=True))
        except (OSError, RuntimeError):
            continue
        if real != root and root not in real.parents:
            continue
        rel = relative_to(root, folder / entry.name)
        if real.is_dir():
            dirs.append({"name": entry.name, "path": rel})
        elif real.is_file() and real.suffix.lower() in VIDEO_SUFFIXES:
            files.append({"name": entry.name, "path": rel, "size": real.stat().st_size})
    parent = None if folder == root else relative_to(root, folder.parent) if folder.parent != root else ""
    return {"path": relative_to(root, folder) if folder != root else "", "parent": parent,
            "dirs": dirs, "files": files}

"""The engine cache: built engines (ONNX files, torch.compile artefacts, TensorRT programs) kept on disk.

Location (first that applies): the ``[engine] cache_dir`` key, the ``STREAMFILL_CACHE`` environment variable,
``$XDG_CACHE_HOME/streamfill/engines``, ``~/.cache/streamfill/engines``. Never the working directory.

Layout: ``<dir>/<backend>/<stem>.<ext>`` (the artefact) beside ``<stem>.json`` (its sidecar). The stem is
``<backend>-<bucket>-<precision>-<digest>`` where ``digest`` hashes the whole :class:`EngineKey` (weights
hash, bucket, precision, backend versions, device / GPU compute capability, model config). The sidecar holds
the key and the artefact's SHA-256 and size. An entry is used only when its sidecar parses, its key equals
the expected key and the artefact's checksum matches; anything else (missing, stale, truncated, corrupt) is
deleted and rebuilt, never silently used. Builds of one entry are serialised across processes by an
advisory lock file (``<stem>.lock``), so concurrent first runs build once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from streamfill.errors import EngineError

_log = logging.getLogger(__name__)

SIDECAR_FORMAT = "streamfill-engine/1"


def cache_dir(configured: str | os.PathLike | None = None) -> Path:
    """The engine cache directory (not created here): ``configured`` if non-empty, else ``$STREAMFILL_CACHE``,
    else ``$XDG_CACHE_HOME/streamfill/engines``, else ``~/.cache/streamfill/engines``."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("STREAMFILL_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # (a relative one is to be ignored, the XDG specification says: it would put the cache in the working folder)
    base = Path(xdg).expanduser() if xdg and Path(xdg).expanduser().is_absolute() else Path.home() / ".cache"
    return base / "streamfill" / "engines"


@dataclass(frozen=True)
class EngineKey:
    """Everything a built engine depends on. Two keys are equal exactly when an engine may be reused.

    ``weights``: SHA-256 of the generator's tensors; ``bucket``: the shapes it serves (e.g. ``"256"``,
    ``"b1-4_s256-512"``); ``precision``: fp32 | fp16 | bf16; ``versions``: backend library versions;
    ``device``: ``"cpu"`` or ``"cuda-sm90"`` (compute capability); ``extra``: backend-specific settings
    (opset, model config JSON, ...)."""

    backend: str
    weights: str
    bucket: str
    precision: str
    versions: Mapping[str, str] = field(default_factory=dict)
    device: str = "cpu"
    extra: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["versions"] = dict(sorted(self.versions.items()))
        d["extra"] = dict(sorted(self.extra.items()))
        return d

    def digest(self) -> str:
        """16 hex characters of SHA-256 over the canonical JSON of the key."""
        blob = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def stem(self) -> str:
        return f"{self.backend}-{self.bucket}-{self.precision}-{self.digest()}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """A validated artefact: ``path`` to the engine file, ``built`` True when it was (re)built just now,
    ``reason`` why it was rebuilt (None when reused or built for the first time)."""

    path: Path
    key: EngineKey
    built: bool
    reason: str | None = None


class EngineCache:
    """Engines on disk under ``root`` (see the module docstring). The constructor touches nothing."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def paths(self, key: EngineKey, suffix: str) -> tuple[Path, Path]:
        """(artefact, sidecar) paths of ``key``; ``suffix`` like ``".onnx"``."""
        folder = self.root / key.backend
        stem = key.stem()
        return folder / f"{stem}{suffix}", folder / f"{stem}.json"

    def check(self, key: EngineKey, suffix: str) -> str | None:
        """None when the entry for ``key`` is present and valid, else why not (one line)."""
        artefact, sidecar = self.paths(key, suffix)
        if not artefact.exists() and not sidecar.exists():
            return "not built"
        if not sidecar.is_file():
            return f"sidecar {sidecar.name} missing"
        if not artefact.is_file():
            return f"artefact {artefact.name} missing"
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            return f"sidecar {sidecar.name} unreadable ({exc})"
        if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
            return f"sidecar {sidecar.name} has an unknown format"
        if meta.get("key") != key.as_dict():
            return "sidecar key differs from the expected key (stale entry)"
        try:
            size = artefact.stat().st_size
        except OSError as exc:
            return f"artefact unreadable ({exc})"
        if meta.get("size") != size:
            return f"artefact size {size} != recorded {meta.get('size')} (truncated or replaced)"
        try:
            digest = file_sha256(artefact)
        except OSError as exc:  # e.g. a shared cache entry another user wrote with mode 0600
            return f"artefact unreadable ({exc})"
        if meta.get("sha256") != digest:
            return "artefact checksum mismatch (corrupt)"
        return None

    def remove(self, key: EngineKey, suffix: str) -> None:
        for p in self.paths(key, suffix):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def get_or_build(self, key: EngineKey, suffix: str, build: Callable[[Path], None],
                     rebuild: bool = False, announce: bool = True, why: str = "rebuild requested") -> CacheEntry:
        """The valid artefact for ``key``, building it with ``build(tmp_path)`` when absent, stale or corrupt
        (or when ``rebuild``, for the reason ``why``). ``build`` writes the artefact to the path it is given; it
        is moved into place atomically and its sidecar written afterwards, so an interrupted build leaves no valid
        entry."""
        artefact, sidecar = self.paths(key, suffix)
        if not rebuild and self.check(key, suffix) is None:
            return CacheEntry(artefact, key, built=False)
        try:
            artefact.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EngineError(f"engine cache {self.root} is not writable: {exc}") from None
        with _locked(artefact.with_suffix(".lock")):  # one builder per entry across processes
            problem = why if rebuild else self.check(key, suffix)
            if problem is None:  # another process built it while we waited for the lock
                return CacheEntry(artefact, key, built=False)
            # exports take tens of seconds each: say so (the CLI shows streamfill's INFO records on stderr)
            if announce:  # (False: the caller said so already, before its own slow part)
                _log.info("building the %s engine for bucket %s (%s): once for these weights, then cached "
                          "(`streamfill compile` builds ahead)", key.backend, key.bucket,
                          "not built yet" if problem == "not built" else problem)
            self._build(key, suffix, build)
        return CacheEntry(artefact, key, built=True, reason=None if problem == "not built" else problem)

    def _build(self, key: EngineKey, suffix: str, build: Callable[[Path], None]) -> None:
        artefact, sidecar = self.paths(key, suffix)
        self.remove(key, suffix)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=artefact.stem + ".", suffix=".partial" + suffix,
                                            dir=artefact.parent)
            os.close(fd)
        except OSError as exc:
            raise EngineError(f"engine cache {self.root} is not writable: {exc}") from None
        tmp = Path(tmp_name)
        try:
            build(tmp)
            meta = {"format": SIDECAR_FORMAT, "key": key.as_dict(), "sha256": file_sha256(tmp),
                    "size": tmp.stat().st_size}
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600: a cache shared through STREAMFILL_CACHE must be readable
            os.replace(tmp, artefact)
            tmp_side = sidecar.with_suffix(".json.partial")
            tmp_side.write_text(json.dumps(meta, indent=1, sort_keys=True))
            os.replace(tmp_side, sidecar)
        except OSError as exc:
            raise EngineError(f"cannot write engine {artefact}: {exc}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock on ``path`` (POSIX flock; no locking where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        fh = open(path, "a+b")  # noqa: SIM115 - held for the duration of the context
    except OSError as exc:
        raise EngineError(f"engine cache lock {path} cannot be opened: {exc}") from None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()

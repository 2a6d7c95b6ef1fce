"""Measured results as small JSON files (``benchmarks/results/<item>.json``) and BENCHMARKS.md rendered from them.

A result file holds one measured result set::

    {"item": "onnx_cpu", "title": "...", "date": "YYYY-MM-DD",
     "machine": {"cpu": "...", "cores": 2, "gpu": null, "load_avg": [1m, 5m, 15m]},
     "versions": {"streamfill": "...", "python": "...", "torch": "...", "opencv": "...", "onnxruntime": "..."},
     "command": "the exact command", "columns": [...], "rows": [[...], ...],
     "summary": {"key": value, ...}, "notes": "one paragraph"}

``render(results)`` turns them into Markdown, deterministically (files sorted by item; numbers printed as they
are stored); nothing in it depends on the machine that renders. No file may hold an absolute path of a machine
(``check`` refuses paths under ``work``, ``root``, ``home``, ``tmp`` and the like: see ``ABSOLUTE``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

from streamfill.errors import InputError

REQUIRED = ("item", "title", "date", "machine", "versions", "command", "columns", "rows", "summary", "notes")
ABSOLUTE = re.compile(r"(?<![\w.])/(?:work|root|home|tmp|mnt|opt|srv|Users|var/folders)/")
HEADER = """# Benchmarks

Generated from `benchmarks/results/*.json` by `streamfill bench --report` (or `python scripts/make_benchmarks.py`);
do not edit by hand: add or re-measure a result file and regenerate. Each section names the machine, its load
average while measuring, the versions and the exact command. Earlier figures are in this file's git history.
"""


def machine(gpu: str | None = None) -> dict:
    """The machine a result was measured on: CPU model, logical cores, GPU (None on CPU) and load average."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "load_avg": load}


def versions() -> dict:
    """Versions of streamfill, Python and the heavy dependencies (None when one is not installed)."""
    out = {"python": platform.python_version()}
    for key, dist in (("streamfill", "streamfill"), ("torch", "torch"), ("onnxruntime", "onnxruntime")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    try:
        import cv2

        out["opencv"] = cv2.__version__
    except ImportError:  # pragma: no cover
        out["opencv"] = None
    return {k: out[k] for k in ("streamfill", "python", "torch", "opencv", "onnxruntime")}


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed (``streamfill ...``), with no absolute path of this machine in it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["streamfill"] + [shlex.quote(_relative(a)) for a in argv])


def _relative(arg: str) -> str:
    """A path argument as the reader should type it: relative to the working folder when inside it, else its
    last component (a folder of this machine means nothing on another)."""
    if not os.path.isabs(arg):
        return arg
    try:
        rel = os.path.relpath(arg)
    except ValueError:
        rel = ".."
    return Path(arg.rstrip("/")).name if rel.startswith("..") else rel


def make_result(item: str, title: str, *, command: str, columns: Sequence[str], rows: Sequence[Sequence],
                summary: dict, notes: str, gpu: str | None = None, load_avg: Sequence[float] | None = None,
                date: str | None = None) -> dict:
    """A result dict in the schema above (machine and versions of this machine; ``load_avg``: the load
    measured while the work ran, default the load now)."""
    m = machine(gpu)
    if load_avg is not None:
        m["load_avg"] = [round(float(v), 2) for v in load_avg]
    result = {"item": item, "title": title, "date": date or _dt.date.today().isoformat(), "machine": m,
              "versions": versions(), "command": command, "columns": list(columns),
              "rows": [list(r) for r in rows], "summary": dict(summary), "notes": notes}
    check(result, item)
    return result


def finite(value):
    """``value`` with every float that is no finite number (NaN, infinity) replaced by None, in lists and dicts
    too: JSON has no such numbers (Python writes a bare ``NaN``/``Infinity`` that other readers refuse)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def number(value: float | None, spec: str) -> str:
    """``format(value, spec)`` for a table cell, or a '-' as wide when there is no finite value (an empty region,
    a tracked mask that came out empty): a table never shows nan or inf."""
    if value is not None and math.isfinite(value):
        return format(value, spec)
    width = re.match(r"\d*", spec).group()
    return format("-", f">{width}" if width else "")


def dumps(result: dict) -> str:
    """``result`` as JSON text that diffs well: one top-level key per line, one table row per line."""
    lines = []
    for key, value in finite(result).items():
        if key == "rows":
            rows = ",\n  ".join(json.dumps(r, ensure_ascii=False) for r in value)
            text = f"[\n  {rows}\n ]" if value else "[]"
        else:
            text = json.dumps(value, ensure_ascii=False)
        lines.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_result(path: str | os.PathLike, result: dict) -> Path:
    """Write ``result`` as JSON (see :func:`dumps`), under a temporary name first."""
    path = Path(path)
    check(result, path.name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(dumps(result))
        tmp.replace(path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def check(result: dict, name: str = "result") -> None:
    """Raise InputError naming the problem when ``result`` does not follow the schema or holds an absolute
    path of a machine."""
    if not isinstance(result, dict):
        raise InputError(f"{name}: a result must be a JSON object")
    missing = [k for k in REQUIRED if k not in result]
    if missing:
        raise InputError(f"{name}: missing key {missing[0]!r} (a result needs {', '.join(REQUIRED)})")
    if not isinstance(result["columns"], list) or not isinstance(result["rows"], list):
        raise InputError(f"{name}: columns and rows must be lists")
    for i, row in enumerate(result["rows"]):
        if not isinstance(row, list) or len(row) != len(result["columns"]):
            raise InputError(f"{name}: row {i} has {len(row) if isinstance(row, list) else '?'} cells, "
                             f"columns {len(result['columns'])}")
    text = json.dumps(result, ensure_ascii=False)
    hit = ABSOLUTE.search(text)
    if hit:
        raise InputError(f"{name}: holds an absolute path of a machine ({text[hit.start():hit.start() + 40]}...)")


def load_results(folder: str | os.PathLike) -> list[dict]:
    """Every ``*.json`` in ``folder``, checked, sorted by item."""
    out = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{path.name}: not readable JSON ({exc})") from None
        check(result, path.name)
        out.append(result)
    return sorted(out, key=lambda r: str(r["item"]))


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):  # as stored (17.0 stays 17.0), long fractions cut to 4 significant digits
        text = repr(value)
        return text if len(text) <= 8 else f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _machine_line(m: dict) -> str:
    load = m.get("load_avg")
    load_txt = "load average " + " / ".join(_cell(v) for v in load) + " (1/5/15 min)" if load else "load unknown"
    gpu = m.get("gpu") or "no GPU"
    return f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {gpu}; {load_txt}"


def render_one(r: dict) -> str:
    lines = [f"## {r['title']}", "", f"`{r['item']}` · measured {r['date']} · {_machine_line(r['machine'])}", ""]
    v = r["versions"]
    lines += ["Versions: " + ", ".join(f"{k} {_cell(v[k])}" for k in sorted(v)), ""]
    lines += ["```", r["command"], "```", ""]
    if r["columns"]:
        lines.append("| " + " | ".join(_cell(c) for c in r["columns"]) + " |")
        lines.append("|" + "|".join("---" for _ in r["columns"]) + "|")
        for row in r["rows"]:
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
        lines.append("")
    if r["summary"]:
        lines += ["Summary: " + "; ".join(f"{k} {_cell(val)}" for k, val in r["summary"].items()), ""]
    if r["notes"]:
        lines += [str(r["notes"]).strip(), ""]
    return "\n".join(lines)


def render(results: Iterable[dict]) -> str:
    """BENCHMARKS.md from result dicts (sorted by item), deterministic."""
    results = sorted(results, key=lambda r: str(r["item"]))
    parts = [HEADER]
    if results:
        parts.append("Contents: " + ", ".join(f"[{r['title']}](#{_anchor(r['title'])})" for r in results) + "\n")
    parts += [render_one(r) for r in results]
    return "\n".join(parts).rstrip() + "\n"


def _anchor(title: str) -> str:
    a = re.sub(r"[^\w\- ]", "", title.lower()).strip()
    return re.sub(r" ", "-", a)


def render_folder(folder: str | os.PathLike) -> str:
    return render(load_results(folder))

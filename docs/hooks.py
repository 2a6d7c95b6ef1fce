"""MkDocs hook: the pages that are generated from the code at build time, so they cannot drift.

* ``reference/cli.md``    from the argparse parsers (``streamfill.cli.build_parser()``): every command and
  sub-command, its usage and every flag. A command added to ``COMMANDS`` appears without any docs edit.
* ``reference/config.md`` from the config dataclasses (``streamfill.config.Config``, the training
  ``streamfill.train.config.TrainConfig``) and the one-line comments of ``configs/default.toml`` and
  ``configs/train/default.toml``.
* ``measurements.md``     from ``benchmarks/results/*.json`` (the schema of BENCHMARKS.md's renderer: one
  result set per file; the newest file of each ``item`` is shown). An empty folder gives a page that says so.

``docs/architecture.md`` gets the import-linter contracts of ``pyproject.toml`` where it says
``<!-- streamfill:contracts -->``.

The generator functions need only the standard library and streamfill (tests import them without MkDocs);
``on_config``/``on_files`` are the MkDocs entry points (``hooks:`` in mkdocs.yml). Problems in the sources
(a config key without a comment, a result file that is not valid JSON) are logged as warnings, which fail
``mkdocs build --strict``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("mkdocs.plugins.streamfill")

GENERATED = {
    "reference/cli.md": "cli_reference",
    "reference/config.md": "config_reference",
    "measurements.md": "measurements",
}

# Commands with a guide page beyond their flags (docs-relative paths; a missing page fails the strict build).
GUIDES = {
    "process": ("guide/processing.md", "Processing files"),
    "info": ("guide/processing.md", "Processing files"),
    "demo": ("getting-started.md", "Getting started"),
    "masks": ("guide/tracking.md", "Mask tracking and automatic masks"),
    "live": ("guide/live.md", "Live: cameras and streams"),
    "serve": ("guide/plugins.md", "ZeroMQ plugins and streamfill serve"),
    "keys": ("guide/plugins.md", "ZeroMQ plugins and streamfill serve"),
    "image": ("training.md", "Training"),
    "train": ("training.md", "Training"),
    "finetune": ("training.md", "Training"),
    "weights": ("model.md", "The model: DeepFill v2"),
    "bench": ("guide/engines.md", "Inference backends"),
    "compile": ("guide/engines.md", "Inference backends"),
    "eval masks": ("guide/tracking.md", "Mask tracking and automatic masks"),
    "eval temporal": ("guide/temporal.md", "Temporal completion"),
    "batch": ("guide/scale-out.md", "Scale-out on Ray"),
    "studio": ("guide/studio.md", "Studio: the browser editor"),
}


# ---------------------------------------------------------------------------------------------- helpers
def _text(value: str) -> str:
    """Plain text for a Markdown table cell: one line, no raw HTML, no emphasis, pipes escaped."""
    out = " ".join(str(value).split())
    for ch, rep in (("\\", "\\\\"), ("<", "&lt;"), ("*", "\\*"), ("|", "\\|"), ("`", "\\`")):
        out = out.replace(ch, rep)
    return out


def _prose(value: str) -> str:
    """A docstring as one Markdown line: reStructuredText ``code`` becomes `code`; no raw HTML."""
    out = " ".join(str(value).split()).replace("``", "`")
    for ch, rep in (("<", "&lt;"), ("*", "\\*"), ("|", "\\|")):
        out = out.replace(ch, rep)
    return out


def _code(value: str) -> str:
    """An inline code span that is safe inside a table cell."""
    value = " ".join(str(value).split()).replace("|", "\\|")
    fence = "``" if "`" in value else "`"
    return f"{fence}{value}{fence}" if fence == "`" else f"{fence} {value} {fence}"


def _link(target: str, here: str) -> str:
    """``target`` (docs-relative) as a link relative to the page ``here``."""
    depth = here.count("/")
    return "../" * depth + target


# ------------------------------------------------------------------------------------------ CLI reference
def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _children(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each sub-command, in registration order, aliases once."""
    sub = _subparsers(parser)
    if sub is None:
        return []
    helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    seen, out = set(), []
    for name, child in sub.choices.items():
        if id(child) in seen:
            continue
        seen.add(id(child))
        out.append((name, helps.get(name, ""), child))
    return out


def _long_choices(action: argparse.Action) -> list[str] | None:
    """The choices of an action when they are too many to show in the flag column (and it has no metavar)."""
    if action.choices is None or action.metavar is not None or isinstance(action.choices, range):
        return None
    choices = [str(c) for c in action.choices]
    return choices if len(",".join(choices)) > 24 else None


def _invocation(action: argparse.Action, formatter: argparse.HelpFormatter) -> str:
    if not action.option_strings:
        return formatter._metavar_formatter(action, action.dest)(1)[0]
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    if _long_choices(action):
        return ", ".join(action.option_strings) + " " + action.dest.upper()
    args = formatter._format_args(action, action.dest.upper())
    return ", ".join(action.option_strings) + " " + args


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    formatter = argparse.HelpFormatter(parser.prog, width=10_000)
    lines: list[str] = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions
                   if a.help != argparse.SUPPRESS and not isinstance(a, (argparse._HelpAction,
                                                                          argparse._SubParsersAction))]
        if not actions:
            continue
        lines += ["", f"*{_text(group.title or 'options')}*", "", "| flag | meaning |", "|---|---|"]
        for action in actions:
            meaning = formatter._expand_help(action) if action.help else ""
            extra = ""
            default = action.default
            if (default not in (None, False, argparse.SUPPRESS) and action.nargs != 0
                    and "default" not in meaning.lower()):
                extra = f" (default {_code(default)})"
            if action.required and action.option_strings:
                extra += " (required)"
            choices = _long_choices(action)
            if choices:
                extra += "; one of " + ", ".join(_code(c) for c in choices)
            lines.append(f"| {_code(_invocation(action, formatter))} | {_text(meaning)}{extra} |")
    return lines


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=78)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip()


def _command_section(parser: argparse.ArgumentParser, words: list[str], one_line: str, here: str) -> list[str]:
    name = " ".join(words)
    anchor = "-".join(words)
    level = "#" * (len(words) + 1)
    lines = ["", f"{level} `streamfill {name}` {{#{anchor}}}", ""]
    description = parser.description or one_line
    if description:
        lines += [_text(description), ""]
    guide = GUIDES.get(name)
    if guide:
        lines += [f"Guide: [{guide[1]}]({_link(guide[0], here)}).", ""]
    lines += ["```text", _usage(parser), "```"]
    lines += _options_table(parser)
    children = _children(parser)
    if children:
        lines += ["", "| sub-command | what it does |", "|---|---|"]
        lines += [f"| [`{name} {child}`](#{anchor}-{child}) | {_text(text)} |" for child, text, _ in children]
        for child, text, child_parser in children:
            lines += _command_section(child_parser, [*words, child], text, here)
    return lines


def cli_reference(parser: argparse.ArgumentParser | None = None, here: str = "reference/cli.md") -> str:
    """The CLI reference page (Markdown) for ``parser`` (default: ``streamfill.cli.build_parser()``)."""
    if parser is None:
        from streamfill.cli import build_parser

        parser = build_parser()
    lines = [
        "# Command-line reference",
        "",
        "Generated from the argparse parsers when the site is built (`streamfill.cli.build_parser()`, see "
        "`docs/hooks.py`), so it lists exactly the flags of this version. `streamfill COMMAND --help` prints the "
        "same, and ends with a pointer to the section below.",
        "",
        "Every command reports bad input as one line on stderr and exits non-zero: 1 for a streamfill error, 2 "
        "for a usage error, 130 when interrupted; 70 for an internal error, a bug worth reporting "
        "(`STREAMFILL_DEBUG=1` shows tracebacks).",
        "",
        "```text",
        _usage(parser),
        "```",
        *_options_table(parser),
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    children = _children(parser)
    lines += [f"| [`{name}`](#{name}) | {_text(text)} |" for name, text, _ in children]
    for name, text, child in children:
        lines += _command_section(child, [name], text, here)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------- configuration reference
def toml_comments(path: Path) -> dict[str, dict[str, str]]:
    """``{section: {key: comment}}`` from the trailing ``# comments`` of ``key = value`` lines of a TOML file."""
    out: dict[str, dict[str, str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]").strip()
            out.setdefault(section, {})
            continue
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, rest = line.split("=", 1)
        quote = None
        for i, ch in enumerate(rest):
            if quote:
                if ch == quote and rest[i - 1] != "\\":
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch == "#":
                out.setdefault(section, {})[key.strip()] = rest[i + 1:].strip()
                break
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _own_doc(cls: type) -> str:
    doc = cls.__doc__ or ""
    if doc.startswith(cls.__name__ + "("):  # the signature dataclasses write when there is no docstring
        return ""
    return _prose(doc)


def source_comments(cls: type) -> dict[str, str]:
    """``{field: comment}`` from the trailing comments of a dataclass's field lines (``x: int = 1  # ...``)."""
    import inspect
    import re

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    out = {}
    for m in re.finditer(r"^\s+(\w+)\s*:[^=\n]*=[^#\n]*#\s*(.+)$", source, flags=re.M):
        out[m.group(1)] = m.group(2).strip()
    return out


def _section_rows(cls: type, defaults: Any, comments: dict[str, str], where: str, strict: bool) -> list[str]:
    rows = ["| key | default | type | meaning |", "|---|---|---|---|"]
    fallback = source_comments(cls)
    for f in dataclasses.fields(cls):
        comment = comments.get(f.name) or fallback.get(f.name, "")
        if not comment and strict:
            log.warning("config reference: %s has no comment for key %s", where, f.name)
        value = getattr(defaults, f.name)
        rows.append(f"| `{f.name}` | {_code(_toml_value(value))} | {_code(str(f.type))} | {_text(comment)} |")
    return rows


def config_reference() -> str:
    """The configuration reference page (Markdown): every section and key, default, type and meaning."""
    from streamfill import config as product
    from streamfill.train import config as training

    comments = toml_comments(ROOT / "configs" / "default.toml")
    defaults = product.Config()
    lines = [
        "# Configuration reference",
        "",
        "Generated when the site is built from the frozen dataclasses in `streamfill/config.py` (keys, types, "
        "defaults) and the comments of `configs/default.toml` (meanings). Every command that takes `--config "
        "FILE.toml` reads defaults, then the file (any subset of the keys below; presets in `configs/presets/` "
        "hold only what they change), then its own flags. Values are checked when loaded; a bad one is one line "
        "naming the key, the value and the allowed range.",
        "",
        "| section | what it configures |",
        "|---|---|",
    ]
    sections = [(f.name, type(getattr(defaults, f.name))) for f in dataclasses.fields(product.Config)]
    for name, cls in sections:
        lines.append(f"| [`[{name}]`](#{name}) | {_own_doc(cls) or cls.__name__} |")
    for name, cls in sections:
        lines += ["", f"## `[{name}]` {{#{name}}}", ""]
        doc = _own_doc(cls)
        if doc:
            lines += [doc, ""]
        lines += _section_rows(cls, getattr(defaults, name), comments.get(name, {}), f"configs/default.toml [{name}]",
                               strict=True)

    train_toml = ROOT / "configs" / "train" / "default.toml"
    train_comments = toml_comments(train_toml)
    train_defaults = training.TrainConfig()
    lines += [
        "", "## Training configuration {#training}", "",
        "`streamfill train --config FILE.toml` reads `streamfill/train/config.py`'s dataclasses below; a file holds "
        "any subset of them. The defaults are those of the dataclasses; `configs/train/default.toml` (the official "
        "recipe, for a GPU) sets some differently, and `configs/train/cpu.toml`, `gpu-continue.toml` and "
        "`tiny.toml` hold deltas. Meanings are the comments of `configs/train/default.toml` (or of the dataclass). "
        "`[model]` takes the "
        "keys of [`[model]`](#model) above.",
    ]
    for f in dataclasses.fields(training.TrainConfig):
        value = getattr(train_defaults, f.name)
        if not dataclasses.is_dataclass(value):
            continue
        cls = type(value)
        lines += ["", f"### `[{f.name}]` (training) {{#training-{f.name}}}", ""]
        doc = _own_doc(cls)
        if doc:
            lines += [doc, ""]
        lines += _section_rows(cls, value, train_comments.get(f.name, {}), f"configs/train/default.toml [{f.name}]",
                               strict=False)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- measurements
def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "–"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 1000:
            return f"{value:.0f}"
        return f"{value:.4g}"  # as written, up to 4 significant digits (0.981, 18.5, 0.9346)
    if isinstance(value, (list, tuple)):
        return ", ".join(_number(v) for v in value)
    return _text(str(value))


def _machine(machine: Any) -> str:
    if not isinstance(machine, dict) or not machine:
        return "machine not recorded"
    parts = []
    if machine.get("cpu"):
        cores = machine.get("cores")
        parts.append(f"{_text(machine['cpu'])}" + (f", {cores} cores" if cores else ""))
    gpu = machine.get("gpu")
    parts.append(f"GPU {_text(gpu)}" if gpu else "no GPU")
    load = machine.get("load_avg")
    if isinstance(load, (list, tuple)) and load:
        parts.append("load average " + " / ".join(_number(v) for v in load) + " (1, 5, 15 min)")
    elif load is not None:
        parts.append(f"load average {_number(load)}")
    extra = {k: v for k, v in machine.items() if k not in ("cpu", "cores", "gpu", "load_avg")}
    parts += [f"{_text(k)} {_number(v)}" for k, v in extra.items()]
    return "; ".join(parts)


def load_results(folder: Path) -> tuple[dict[str, tuple[Path, dict]], list[str]]:
    """The newest result set of each item in ``folder`` (by ``date``, then file name), and the problems found.

    The schema is checked by ``streamfill.eval.results.check`` (what writes these files and renders
    BENCHMARKS.md); unlike its ``load_results`` this one keeps going past a bad file, so that the page shows
    every problem at once (each is a warning, which fails the strict build).
    """
    from streamfill.errors import InputError
    from streamfill.eval.results import check

    newest: dict[str, tuple[Path, dict]] = {}
    problems: list[str] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{path.name}: not valid JSON ({exc})")
            continue
        if not isinstance(data, dict):
            problems.append(f"{path.name}: expected a JSON object")
            continue
        try:
            check(data, path.name)
        except InputError as exc:
            problems.append(str(exc))
        item = str(data.get("item") or path.stem)
        if not data.get("machine"):
            problems.append(f"{path.name}: no 'machine' (every figure names its machine)")
        key = (str(data.get("date") or ""), path.name)
        if item not in newest or key > (str(newest[item][1].get("date") or ""), newest[item][0].name):
            newest[item] = (path, data)
    return newest, problems


def measurements(folder: Path | None = None) -> tuple[str, list[str]]:
    """The measurements page (Markdown) and the problems found in the result files."""
    folder = folder or ROOT / "benchmarks" / "results"
    newest, problems = load_results(folder)
    lines = [
        "# Measurements",
        "",
        "Generated when the site is built from `benchmarks/results/*.json` (one result set per file; for each "
        "item the newest file is shown). Each result names the machine, its load and the library versions it "
        "ran with; history stays in git (`git log -p benchmarks/results/`). The same files render "
        "`BENCHMARKS.md`. How a figure was measured is in the notes and the command below it.",
        "",
    ]
    if not newest:
        lines += ["No result files yet: `benchmarks/results/` is empty. Measure with `streamfill bench`, "
                  "`streamfill eval ...` or the scripts in `benchmarks/`, and commit their JSON there.", ""]
        return "\n".join(lines), problems
    lines += ["| item | date | machine |", "|---|---|---|"]
    items = sorted(newest)
    for item in items:
        data = newest[item][1]
        lines.append(f"| [{_text(data.get('title') or item)}](#{_slug(item)}) | {_text(data.get('date') or '–')} | "
                     f"{_machine(data.get('machine'))} |")
    for item in items:
        path, data = newest[item]
        lines += ["", f"## {_text(data.get('title') or item)} {{#{_slug(item)}}}", ""]
        lines.append(f"**Machine**: {_machine(data.get('machine'))}. **Date**: {_text(data.get('date') or '–')}. "
                     f"**File**: `benchmarks/results/{path.name}`.")
        versions = data.get("versions")
        if isinstance(versions, dict) and versions:
            lines += ["", "**Versions**: " + ", ".join(f"{_text(k)} {_text(str(v)) if v is not None else '–'}"
                                                          for k, v in versions.items())
                      + "."]
        if data.get("command"):
            lines += ["", "```sh", str(data["command"]).strip(), "```"]
        columns, rows = data.get("columns") or [], data.get("rows") or []
        if columns and rows:
            lines += ["", "| " + " | ".join(_text(c) for c in columns) + " |",
                      "|" + "|".join("---" for _ in columns) + "|"]
            lines += ["| " + " | ".join(_number(v) for v in row) + " |" for row in rows if isinstance(row, list)]
        summary = data.get("summary")
        if isinstance(summary, dict) and summary:
            lines += ["", "| summary | value |", "|---|---|"]
            lines += [f"| {_text(k)} | {_number(v)} |" for k, v in summary.items()]
        if data.get("notes"):
            lines += ["", _text(data["notes"])]
    return "\n".join(lines) + "\n", problems


def _slug(item: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in item.lower()).strip("-") or "item"


# --------------------------------------------------------------------------------------- import contracts
CONTRACTS_MARKER = "<!-- streamfill:contracts -->"


def contracts_table(pyproject: Path | None = None) -> str:
    """The import-linter contracts of ``pyproject.toml`` as a Markdown table."""
    data = tomllib.loads((pyproject or ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = data.get("tool", {}).get("importlinter", {}).get("contracts", [])
    lines = ["| contract | kind | rule |", "|---|---|---|"]
    for c in contracts:
        kind = c.get("type", "")
        if kind == "layers":
            rule = " → ".join(_code(layer) for layer in c.get("layers", [])) + " (each imports only later ones)"
        elif kind == "forbidden":
            rule = (", ".join(_code(m) for m in c.get("source_modules", [])) + " must not import "
                    + ", ".join(_code(m) for m in c.get("forbidden_modules", []))
                    + ("" if c.get("allow_indirect_imports", False) else ", not even indirectly"))
        else:
            rule = _text(json.dumps({k: v for k, v in c.items() if k not in ("name", "type")}))
        lines.append(f"| {_text(c.get('name', ''))} | {_text(kind)} | {rule} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- MkDocs hooks
def on_config(config):
    """Make the clone's streamfill importable even when it is not installed (the docs describe this tree)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return config


def generate(uri: str) -> str:
    """The Markdown of one generated page (warnings for problems in its sources)."""
    if uri == "measurements.md":
        text, problems = measurements()
        for problem in problems:
            log.warning("measurements: benchmarks/results/%s", problem)
        return text
    if uri == "reference/cli.md":
        return cli_reference()
    if uri == "reference/config.md":
        return config_reference()
    raise KeyError(uri)


def on_page_markdown(markdown, page, config, files):
    if CONTRACTS_MARKER in markdown:
        markdown = markdown.replace(CONTRACTS_MARKER, contracts_table())
    return markdown


def on_files(files, config):
    from mkdocs.structure.files import File

    for uri in GENERATED:
        if files.get_file_from_path(uri) is not None:
            log.warning("%s is generated by docs/hooks.py: delete docs/%s", uri, uri)
            files.remove(files.get_file_from_path(uri))
        files.append(File.generated(config, uri, content=generate(uri)))
    return files

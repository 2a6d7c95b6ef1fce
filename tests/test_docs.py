"""The docs: generated pages cover the code, --help points at them, README stays short and matches CI, and no
file of the repository holds an absolute path of somebody's machine."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import streamfill.cli as cli
from streamfill.config import Config

ROOT = Path(__file__).resolve().parents[1]


def _hooks():
    spec = importlib.util.spec_from_file_location("streamfill_docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _all_parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _all_parsers(child)


# ------------------------------------------------------------------------------------- absolute paths
# Built from pieces so that this file does not match itself.
_ABSOLUTE = re.compile("|".join([
    "/" + "work/", "/" + "root/", "/" + r"home/[A-Za-z_][\w.-]*/", "/" + r"Users/[A-Za-z_][\w.-]*/",
    r"[A-Za-z]:\\" + r"Users\\", "/" + "mnt/[a-z]/",
]))


def _repository_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True, timeout=60).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file but the usual clutter
        skip = {".git", ".venv", "venv", "site", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache",
                "runs", "out", "scratch", ".import_linter_cache"}
        names = []
        for folder, dirs, files in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
            names += [os.path.relpath(os.path.join(folder, f), ROOT) for f in files]
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def test_no_absolute_machine_paths_in_the_repository():
    hits = []
    for path in _repository_files():
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary: weights, the demo clip, pictures
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if _ABSOLUTE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not hits, "absolute paths of a machine (use a relative path or a placeholder):\n" + "\n".join(hits[:20])


def test_the_absolute_path_check_can_fail():
    for line in ("--clip " + "/" + "work/shared/x.avi", "/" + "home/alice/clip.mp4", "C:" + "\\Users\\bob\\x"):
        assert _ABSOLUTE.search(line), line
    for line in ("~/.cache/streamfill/engines", "/dev/video0", "tcp://127.0.0.1:5555", "ipc:///tmp/sf"):
        assert not _ABSOLUTE.search(line), line


# --------------------------------------------------------------------------------------- --help epilogs
def test_every_help_ends_with_its_docs_section():
    hooks = _hooks()
    page = hooks.cli_reference(cli.build_parser())
    anchors = set(re.findall(r"\{#([\w-]+)\}", page))
    parsers = list(_all_parsers(cli.build_parser()))
    assert len(parsers) > len(cli.COMMANDS)  # sub-commands (eval masks, train export, ...) too
    for parser in parsers:
        text = " ".join(parser.format_help().split())
        anchor = cli.docs_anchor(parser.prog)
        assert text.endswith(" ".join(cli.docs_epilog(parser.prog).split())), parser.prog
        assert "docs: reference/cli/" in text, parser.prog
        if anchor:
            assert f"reference/cli/#{anchor} " in text
            assert anchor in anchors, f"{parser.prog}: no section #{anchor} in the CLI reference"


def test_help_from_the_command_line_names_the_page():
    out = subprocess.run([sys.executable, "-m", "streamfill", "process", "--help"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().splitlines()[-1].startswith("docs: reference/cli/#process in the streamfill docs")


def test_a_new_command_gets_a_docs_epilog_and_a_reference_section(monkeypatch):
    fake = types.ModuleType("streamfill.cli.zz_docs_probe")

    def add_parser(sub):
        p = sub.add_parser("zz-probe", help="a command added by somebody else", description="Probe the docs.")
        p.add_argument("--frobnicate", metavar="N", type=int, help="how much to frobnicate")
        actions = p.add_subparsers(dest="what")
        actions.add_parser("deeper", help="a nested action").add_argument("--depth", help="how deep")

    fake.add_parser = add_parser
    monkeypatch.setitem(sys.modules, "streamfill.cli.zz_docs_probe", fake)
    monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, "zz_docs_probe"])
    parser = cli.build_parser()
    probe = parser._subparsers._group_actions[0].choices["zz-probe"]
    assert probe.format_help().split("docs: ")[-1].startswith("reference/cli/#zz-probe ")
    page = _hooks().cli_reference(parser)
    for needle in ("`streamfill zz-probe` {#zz-probe}", "`--frobnicate N`", "how much to frobnicate",
                   "`streamfill zz-probe deeper` {#zz-probe-deeper}", "`--depth DEPTH`", "](#zz-probe)"):
        assert needle in page, needle


def test_cli_reference_lists_every_flag_of_every_command():
    page = _hooks().cli_reference(cli.build_parser())
    for parser in _all_parsers(cli.build_parser()):
        if parser.prog != "streamfill":
            assert f"`{parser.prog}`" in page, parser.prog
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
                continue
            for option in action.option_strings:
                assert option in page, f"{parser.prog} {option}"
    assert "../guide/processing.md" in page  # command sections link their guide page


# ------------------------------------------------------------------------------------ config reference
def test_config_reference_has_every_key_with_its_meaning():
    hooks = _hooks()
    page = hooks.config_reference()
    comments = hooks.toml_comments(ROOT / "configs" / "default.toml")
    import dataclasses

    for section in dataclasses.fields(Config):
        assert f"{{#{section.name}}}" in page, section.name
        for key in dataclasses.fields(getattr(Config(), section.name)):
            meaning = comments.get(section.name, {}).get(key.name)
            assert meaning, f"configs/default.toml [{section.name}] {key.name} has no comment"
            assert f"| `{key.name}` |" in page
    assert "{#training-data}" in page and "{#training-train}" in page


def test_toml_comments_ignore_hashes_inside_strings(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[a]\nx = "#not" # the x\ny = 1\n[b]\nz = [1, 2]  #  zed \n', encoding="utf-8")
    assert _hooks().toml_comments(f) == {"a": {"x": "the x"}, "b": {"z": "zed"}}


# ---------------------------------------------------------------------------------------- measurements
def _result(item, date, **extra):
    data = {"item": item, "title": f"{item} title", "date": date,
            "machine": {"cpu": "Test CPU", "cores": 2, "gpu": None, "load_avg": [1.5, 2.0, 2.25]},
            "versions": {"streamfill": "0.1.0", "python": "3.11.2"}, "command": f"streamfill eval {item}",
            "columns": ["case", "seed", "mean IoU"], "rows": [["tree", 0, 0.93456], ["car", 1, 0.5]],
            "summary": {"worst": 0.5}, "notes": "what it shows"}
    data.update(extra)
    return data


def test_measurements_page_tolerates_an_empty_or_missing_folder(tmp_path):
    hooks = _hooks()
    for folder in (tmp_path, tmp_path / "missing"):
        page, problems = hooks.measurements(folder)
        assert page.startswith("# Measurements") and "No result files yet" in page and not problems


def test_measurements_page_shows_the_newest_result_per_item(tmp_path):
    hooks = _hooks()
    (tmp_path / "tracking.json").write_text(json.dumps(_result("tracking", "2026-12-01", notes="new one")))
    (tmp_path / "tracking-old.json").write_text(json.dumps(_result("tracking", "2026-11-01", notes="old one")))
    (tmp_path / "live.json").write_text(json.dumps(_result("live", "2026-11-20")))
    page, problems = hooks.measurements(tmp_path)
    assert not problems
    assert "new one" in page and "old one" not in page
    assert page.index("{#live}") < page.index("{#tracking}")
    assert "Test CPU, 2 cores; no GPU; load average 1.5 / 2 / 2.25" in page
    assert "| tree | 0 | 0.9346 |" in page and "| car | 1 | 0.5 |" in page
    assert "streamfill eval tracking" in page and "python 3.11.2" in page


def test_measurements_page_reports_broken_result_files(tmp_path):
    hooks = _hooks()
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "short.json").write_text(json.dumps(_result("short", "2026-12-01", rows=[["a", 1]])))
    (tmp_path / "nomachine.json").write_text(json.dumps(_result("nomachine", "2026-12-01", machine=None)))
    page, problems = hooks.measurements(tmp_path)
    text = "\n".join(problems)
    assert "bad.json: not valid JSON" in text
    assert "short.json: row 0 has 2 cells, columns 3" in text  # streamfill.eval.results.check, as for BENCHMARKS.md
    assert "nomachine.json: no 'machine'" in text
    assert "machine not recorded" in page
    (tmp_path / "abs.json").write_text(json.dumps(_result("abs", "2026-12-01", command="x " + "/" + "work/clip.mp4")))
    (tmp_path / "nonotes.json").write_text(json.dumps({k: v for k, v in _result("nn", "2026-12-01").items()
                                                       if k != "notes"}))
    text = "\n".join(hooks.measurements(tmp_path)[1])
    assert "abs.json: holds an absolute path" in text and "nonotes.json: missing key 'notes'" in text


def test_the_committed_results_render_without_problems():
    _, problems = _hooks().measurements()
    assert not problems, problems


def test_contracts_table_lists_every_import_linter_contract():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    table = _hooks().contracts_table()
    assert len(table.splitlines()) == len(contracts) + 2
    for c in contracts:
        assert c["name"] in table


# ----------------------------------------------------------------------------------------------- README
def _ci_commands() -> list[str]:
    """The commands of .ci/run that README.md shows: every line of a ``# --- ... verbatim ... ---`` block.

    The script's other blocks (its own set-up, the Debian packages the tests need) are not shown there.
    """
    commands, verbatim = [], False
    for line in (ROOT / ".ci" / "run").read_text().splitlines():
        line = line.strip()
        if line.startswith("# ---"):
            verbatim = "verbatim" in line
        elif verbatim and line and not line.startswith("#"):
            commands.append(line)
    return commands


def test_readme_shows_exactly_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    blocks = [b.strip() for b in re.findall(r"```sh\n(.*?)```", readme, flags=re.S)]
    commands = _ci_commands()
    assert any("pytest" in c for c in commands) and any("mkdocs build --strict" in c for c in commands)
    for command in commands:
        assert command in blocks, f".ci/run runs a command README.md does not show as its own block: {command}"
    started = (ROOT / "docs" / "getting-started.md").read_text()
    assert next(c for c in commands if "pytest" in c) in started


def test_readme_stays_a_one_page_overview():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 220, f"README.md has {len(lines)} lines: move details into a page under docs/"


def test_readme_links_and_picture_exist():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if "://" not in t]
    assert "docs/images/demo_before_after.png" in local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing
    picture = ROOT / "docs" / "images" / "demo_before_after.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size < 300_000


@pytest.mark.parametrize("page", sorted(p.relative_to(ROOT / "docs").as_posix()
                                        for p in (ROOT / "docs").rglob("*.md")))
def test_docs_pages_are_in_the_navigation(page):
    nav = (ROOT / "mkdocs.yml").read_text()
    assert f": {page}" in nav, f"docs/{page} is not in mkdocs.yml's nav"


# ------------------------------------------------------------------------------------- the README picture
def _picture_script():
    spec = importlib.util.spec_from_file_location("make_readme_image", ROOT / "scripts" / "make_readme_image.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_picture_rows_are_input_beside_output(tmp_path):
    from media import make_video

    clip = tmp_path / "sbs.mp4"
    make_video(clip, frames=6, width=128, height=48)  # stands in for demo_side_by_side.mp4: two 64x48 halves
    script = _picture_script()
    picture = script.compose(clip, [1, 4], width=32)
    assert picture.shape == (24 + 4 + 24, 32 + 4 + 32, 3)
    assert (picture[:, 32:36] == 255).all() and (picture[24:28] == 255).all()  # white gaps between the tiles
    with pytest.raises(SystemExit, match="no frame 9"):
        script.compose(clip, [1, 9], width=32)
    out = tmp_path / "pic.png"
    assert script.main(["--side-by-side", str(clip), "--frames", "0,5", "--width", "32", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob("*.partial"))
    with pytest.raises(SystemExit):
        script.main(["--side-by-side", str(clip), "-o", str(tmp_path / "pic.jpg")])


def test_every_exit_code_of_the_cli_is_documented(monkeypatch, capsys):
    """An internal error exits 70, which getting-started, the CLI reference and processing.md did not list
    (they said 1 for every error that is not a usage error)."""
    import streamfill.cli.info as info

    def broken(args):
        raise ValueError("boom")

    monkeypatch.setattr(info, "run", broken)
    code = cli.main(["info", "x.mp4"])
    assert "internal error" in capsys.readouterr().err
    pages = {"getting-started.md": (ROOT / "docs" / "getting-started.md").read_text(),
             "guide/processing.md": (ROOT / "docs" / "guide" / "processing.md").read_text(),
             "reference/cli.md": _hooks().cli_reference()}
    for name, text in pages.items():
        flat = " ".join(text.split())
        assert re.search(rf"\b{code}\b[^.;]*internal error", flat), name

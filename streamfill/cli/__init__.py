"""Command-line interface: argument parsing, printing and exit codes — nothing else.

Each sub-command lives in its own module of this package with two functions:
``add_parser(subparsers)`` registers it (and sets ``func``), ``run(args) -> int`` does the work by calling
``streamfill.api`` / ``streamfill.build``. To add a command, write the module and list it in ``COMMANDS``.

Exit codes: 0 success, 1 a streamfill error (one line on stderr), 2 bad usage, 130 interrupted, 70 an internal
error (a bug: one line too).
Set STREAMFILL_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import select
import signal
import sys

from streamfill import __version__
from streamfill.errors import StreamfillError

COMMANDS = ["process", "info", "demo", "serve", "keys", "weights", "train", "live", "image", "finetune", "eval",
            "masks", "bench", "compile", "batch", "studio"]


class _Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP: the terminal closed) turned into an exception so that `finally` blocks discard
    partial outputs."""


def _on_sigterm(signum, frame):  # pragma: no cover - exercised through a subprocess test
    raise _Terminated()


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors reported as one line (and exit code 2), like every other error."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# The docs site (mkdocs.yml, docs/) is built from a clone, not hosted: every --help ends with the page of the
# generated CLI reference (docs/hooks.py) for that command. Anchors: "process", "eval-masks", ...
DOCS_SERVE = "pip install -e '.[docs]' && mkdocs serve"


def docs_anchor(prog: str) -> str:
    """The CLI reference anchor of a command: its words after ``streamfill``, joined by dashes."""
    return "-".join(prog.split()[1:])


def docs_epilog(prog: str) -> str:
    """The last paragraph of ``prog --help``: where its documentation is."""
    anchor = docs_anchor(prog)
    page = "reference/cli/" + (f"#{anchor}" if anchor else "")
    return f"docs: {page} in the streamfill docs site (build it in a clone: {DOCS_SERVE})"


def _add_epilogs(parser: argparse.ArgumentParser) -> None:
    """Append the docs line to ``parser`` and to every sub-command below it (new commands get it too)."""
    line = docs_epilog(parser.prog)
    parser.epilog = f"{parser.epilog}\n\n{line}" if parser.epilog else line
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share one parser
                _add_epilogs(child)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="streamfill", description="Remove objects from video: files, cameras and host applications."
    )
    parser.add_argument("--version", action="version", version=f"streamfill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"streamfill.cli.{name}").add_parser(sub)
    _add_epilogs(parser)
    return parser


def error(message: str) -> None:
    """Print one line to stderr, the way every CLI failure is reported."""
    first = " ".join(str(message).split())
    print(f"streamfill: error: {first}", file=sys.stderr)


def _show_notes() -> logging.Handler:
    """The library logs what the user should know while waiting (e.g. a one-time engine build) at INFO:
    show those records on stderr as ``streamfill: ...`` lines for the duration of a command."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("streamfill: %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("streamfill")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def _stdout_gone() -> bool:
    """Is stdout a pipe whose reader has closed it?"""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poll.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    try:  # building the parser imports every command (about 0.3 s): Ctrl-C there is an interruption too
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("streamfill: interrupted", file=sys.stderr)
        return 130
    debug = os.environ.get("STREAMFILL_DEBUG") == "1"
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    hangup = signal.signal(signal.SIGHUP, _on_sigterm) if hasattr(signal, "SIGHUP") else None
    notes = _show_notes()
    try:
        return int(args.func(args) or 0)
    except StreamfillError as exc:
        if debug:
            raise
        error(str(exc))
        return 1
    except KeyboardInterrupt:
        note = getattr(args, "interrupt_note", "")
        print("streamfill: interrupted" + (f"; {note}" if note else ""), file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if not _stdout_gone():
            if debug:
                raise
            error(f"{type(exc).__name__}: {exc}")
            return 1
        # the reader of our output left (`streamfill ... | head`): stop quietly, as a tool killed by SIGPIPE
        # does; stdout goes to /dev/null so the interpreter's last flush does not fail again
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (OSError, MemoryError) as exc:
        if debug:
            raise
        error(f"{type(exc).__name__}: {exc}")
        return 1
    except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback unless asked to
        if debug:
            raise
        error(f"internal error ({type(exc).__name__}: {exc}); rerun with STREAMFILL_DEBUG=1 for details")
        return 70
    finally:
        signal.signal(signal.SIGTERM, previous)
        if hangup is not None:
            signal.signal(signal.SIGHUP, hangup)
        logging.getLogger("streamfill").removeHandler(notes)

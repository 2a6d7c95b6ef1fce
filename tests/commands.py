"""Command lines for the CLI started as a child process by the tests."""

from __future__ import annotations

import sys

_CTRL_C_REACHES_IT = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                      "runpy.run_module('streamfill', run_name='__main__', alter_sys=True)")


def streamfill_cmd(*args) -> list[str]:
    """``python -m streamfill ARGS`` as started in a terminal, where Ctrl-C raises KeyboardInterrupt. A test run
    started as a background job of a script (``cmd &``, as CI may) starts its children with SIGINT ignored,
    and Python leaves it ignored. Reset in the child's own code: ``preexec_fn`` runs between fork and exec,
    which is unsafe while the test process has other threads."""
    return [sys.executable, "-c", _CTRL_C_REACHES_IT, *map(str, args)]

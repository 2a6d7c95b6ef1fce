import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/media.py and other helpers

_CTRL_C_REACHES_IT = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                      "runpy.run_module('streamfill', run_name='__main__', alter_sys=True)")


def streamfill_cmd(*args) -> list[str]:
    """``python -m streamfill ARGS`` as started in a terminal, where Ctrl-C raises KeyboardInterrupt. A test run
    started as a background job of a script (``cmd &``, as CI may) starts its children with SIGINT ignored,
    and Python leaves it ignored. Reset in the child's own code: ``preexec_fn`` runs between fork and exec,
    which is unsafe while the test process has other threads."""
    return [sys.executable, "-c", _CTRL_C_REACHES_IT, *map(str, args)]


def pytest_collection_modifyitems(config, items):
    """GPU tests run only when STREAMFILL_GPU_TESTS=1, and then they must not skip (they fail without a GPU)."""
    if os.environ.get("STREAMFILL_GPU_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="GPU test: set STREAMFILL_GPU_TESTS=1 to run (fails if no GPU)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

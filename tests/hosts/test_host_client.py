"""plugins/host_client.py (the Python example of a host application) against `streamfill serve`."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT, running_serve


def test_host_client_window_meets_busy():
    """With a queue of 2 a window of 8 meets `busy`: the resent frames come back after the later ones that
    serve took, which is the protocol's order (only busy overtakes), not an error (it stopped with "result N
    arrived before M: out of order")."""
    with running_serve("--queue", "2") as endpoint:
        run = subprocess.run([sys.executable, str(ROOT / "plugins" / "host_client.py"), "--connect", endpoint,
                              "--frames", "40", "--size", "96x64", "--window", "8", "--timeout", "5"],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    found = re.search(r"40 frames in order .*, (\d+) busy resends", run.stderr)
    assert found and int(found.group(1)) > 0, run.stderr


def test_host_client_refuses_bad_arguments_in_one_line():
    """A malformed --size or a --frames/--window below 1 was a traceback (ValueError, ZeroDivisionError)."""
    for args in (["--size", "640x"], ["--size", "12"], ["--frames", "0"], ["--window", "-1"]):
        run = subprocess.run([sys.executable, str(ROOT / "plugins" / "host_client.py"), *args],
                             capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert run.returncode == 2 and "Traceback" not in run.stderr, (args, run.stderr)
        assert run.stderr.strip().splitlines()[-1].startswith("host_client.py: error: argument"), run.stderr

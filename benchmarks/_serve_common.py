"""Helpers shared by benchmarks/fuzz_serve.py and benchmarks/load_serve.py: start a real `streamfill serve`
process, read its RSS and CPU time. (Machine and versions of a result: streamfill.eval.results.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(args: list[str], stderr_path: Path) -> tuple[subprocess.Popen, str]:
    """``python -m streamfill serve --bind tcp://127.0.0.1:PORT ARGS``; returns (process, endpoint) once it
    listens. Its stderr goes to ``stderr_path`` (checked afterwards for tracebacks and spam)."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    err = open(stderr_path, "w")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen([sys.executable, "-m", "streamfill", "serve", "--bind", endpoint, *args],
                            stderr=err, stdout=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if "listening" in stderr_path.read_text():
            return proc, endpoint
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited: {stderr_path.read_text()}")
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("serve did not start within 120 s")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

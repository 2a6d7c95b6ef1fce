"""Helpers shared by benchmarks/fuzz_serve.py and benchmarks/load_serve.py: start a real `streamfill serve`
process, read its RSS, and describe the machine for benchmarks/results/*.json."""

from __future__ import annotations

import importlib.metadata
import os
import platform
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


def machine() -> dict:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "gpu": None,
            "load_avg": [round(x, 2) for x in os.getloadavg()]}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for key, dist in (("streamfill", "streamfill"), ("torch", "torch"), ("opencv", "opencv-python-headless"),
                      ("onnxruntime", "onnxruntime"), ("pyzmq", "pyzmq"), ("av", "av")):
        try:
            out[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            try:
                out[key] = importlib.metadata.version(dist.replace("-headless", ""))
            except importlib.metadata.PackageNotFoundError:
                out[key] = None
    return out

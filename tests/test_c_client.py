"""The C host client (plugins/c/host_client.c, written from plugins/PROTOCOL.md alone) against `streamfill serve`.

Compiles the client with the system C compiler and libzmq, starts `streamfill serve` on a free loopback port and
runs the client: hello, synthetic RGB frames with masks (fill quality, untouched pixels, order, echoes, `busy`
resends), malformed requests (error codes of PROTOCOL.md section 7), ordering, bye. Skipped when `cc` or
`zmq.h`/libzmq is missing (a tiny compile probe decides).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from serve_helpers import busy_serve

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "plugins" / "c" / "host_client.c"
PROBE = "#include <zmq.h>\nint main(void) { void *c = zmq_ctx_new(); return zmq_ctx_term(c); }\n"


def _compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler: neither cc nor gcc is on PATH")
    work = tmp_path_factory.mktemp("c_client")
    (work / "probe.c").write_text(PROBE)
    probe = subprocess.run(
        [cc, str(work / "probe.c"), "-o", str(work / "probe"), "-lzmq"], capture_output=True, text=True, timeout=60
    )
    if probe.returncode != 0:
        first = (probe.stderr.strip().splitlines() or ["?"])[0]
        pytest.skip(f"zmq.h/libzmq not usable by {cc} (Debian: apt-get install libzmq3-dev): {first}")
    exe = work / "host_client"
    build = subprocess.run(
        [cc, "-O1", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", str(SOURCE), "-o", str(exe), "-lzmq"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, f"host_client.c does not compile:\n{build.stderr}"
    return exe


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(client: Path):
    """`streamfill serve` with a queue of 2, so that the client's window of 5 meets `busy` and must resend."""
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamfill", "serve", "-q", "--bind", endpoint, "--queue", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield endpoint, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _run(client: Path, server, *extra: str) -> subprocess.CompletedProcess:
    endpoint, proc = server
    if proc.poll() is not None:
        pytest.fail(f"streamfill serve exited with {proc.returncode}: {proc.stdout.read()}")
    args = [str(client), "-e", endpoint, "-n", "6", "-w", "5", "-t", "8000", "-q", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_c_client_passes_against_serve(client: Path, server) -> None:
    run = _run(client, server)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "0 failed" in out, out
    assert "6 answered, 6 fully correct" in out, out


def test_c_client_strict_echoes(client: Path, server) -> None:
    run = _run(client, server, "-s")
    assert run.returncode == 0, run.stdout + run.stderr


def test_c_client_gives_up_on_a_serve_that_stays_busy(client: Path) -> None:
    """A serve whose queue stays full answers every frame `busy` at once, so the reply timeout never strikes:
    the client resent every 20 ms forever (the sibling of hostlink's and host_client.py's bound). After about
    three reply timeouts of nothing but busy it fails the frames check and goes on."""
    with busy_serve() as endpoint:
        run = subprocess.run([str(client), "-e", endpoint, "-n", "4", "-w", "2", "-t", "300", "-q"],
                             capture_output=True, text=True, timeout=60)
    out = run.stdout + run.stderr
    assert run.returncode == 1 and "stayed busy" in out, out

"""Binding and running the studio (uvicorn). ``serve`` blocks until interrupted."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from streamfill.config import Config
from streamfill.errors import InputError
from streamfill.studio.app import create_app, is_loopback
from streamfill.studio.session import Limits, Studio


def check_host(host: str, token: str | None) -> None:
    """A host other than loopback needs a token (anyone on the network could otherwise use the studio)."""
    if not is_loopback(host) and not token:
        raise InputError(f"--host {host} is reachable from other machines: protect it with --token TOKEN "
                         "(the URL printed then carries it)")
    if token is not None and (len(token) < 8 or not token.isascii() or not token.isprintable() or " " in token):
        raise InputError("--token must be at least 8 printable ASCII characters without spaces")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0 = any free one); one clear line when it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket, host: str, token: str | None) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}/" + (f"?token={quote(token)}" if token else "")


def serve(root: str | Path, *, host: str = "127.0.0.1", port: int = 7860, token: str | None = None,
          work: str | Path | None = None, limits: Limits | None = None, config: Config | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Run the studio until interrupted. ``work`` (default: a temporary folder removed at the end) receives
    uploads, masks and results. ``on_ready(url)`` is called once it listens."""
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            if studio is not None:  # a page following a job's progress would hold the shutdown up
                studio.stop()
            super().handle_exit(sig, frame)

    check_host(host, token)
    sock = bind(host, port)
    temp = None
    if work is None:
        temp = work = tempfile.mkdtemp(prefix="streamfill-studio-")
    studio = None
    try:
        studio = Studio(root, work, limits=limits, config=config)
        studio.engines()  # probes for a GPU (imports torch): before the page asks, not in its first request
        app = create_app(studio, token=token)
        server = _Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                        timeout_graceful_shutdown=2, lifespan="off"))
        if on_ready is not None:
            on_ready(url_of(sock, host, token))
        server.run(sockets=[sock])
    finally:
        if studio is not None:
            studio.close()
        with contextlib.suppress(OSError):
            sock.close()
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)

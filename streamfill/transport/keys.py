"""CURVE key files for ``streamfill serve`` and its clients (``streamfill keys DIR``).

Layout of a key directory::

    DIR/server.key               server public key: give it to every client
    DIR/server.key_secret        server secret key: stays on the server
    DIR/client.key               a client public key
    DIR/client.key_secret        that client's secret key: give it to the client
    DIR/authorized/client.key    public keys the server accepts (copy more *.key files here)
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

from streamfill.errors import InputError, OutputError, TransportError


@dataclass(frozen=True)
class CurveKeys:
    """Z85-encoded CURVE keys. ``server_public`` is set on clients (the server they trust)."""

    public: bytes
    secret: bytes
    server_public: bytes | None = None


def curve_available() -> bool:
    return bool(zmq.has("curve"))


def generate_keys(directory: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Create the server and client keypairs in ``directory`` (layout above); returns the files written."""
    if not curve_available():
        raise TransportError("this libzmq was built without CURVE support")
    if not str(directory).strip():
        raise InputError("the key folder is empty: give a folder name (e.g. keys/)")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} is a file, not a folder for the key files")
    names = ("server.key", "server.key_secret", "client.key", "client.key_secret")
    if not overwrite and any((directory / n).exists() for n in names):
        raise OutputError(f"{directory} already holds keys; remove them or pass --force (overwrite=True from "
                          "Python) to replace them")
    written: list[Path] = []
    try:
        (directory / "authorized").mkdir(parents=True, exist_ok=True)
        for folder in (directory, directory / "authorized"):
            if not os.access(folder, os.W_OK):  # before any key is written: no half a set
                raise PermissionError(f"{folder} is not writable")
        for name in ("server", "client"):
            # the secret file exists with mode 0600 before the key goes in (pyzmq opens it with "w", which
            # keeps the mode): written with the umask's 0644 and chmod-ed after, it was readable meanwhile
            secret_path = directory / f"{name}.key_secret"
            written.append(secret_path)
            os.close(os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                             0o600))
            os.chmod(secret_path, 0o600)  # an existing file (--force) keeps its old mode through os.open
            public, secret = zmq.auth.create_certificates(directory, name)
            written.append(Path(public))
        shutil.copyfile(directory / "client.key", directory / "authorized" / "client.key")
    except OSError as exc:
        for path in written:  # a set that stopped half-way would block the next run ("already holds keys")
            path.unlink(missing_ok=True)
        raise OutputError(f"cannot write keys to {directory}: {exc}") from None
    return {
        "server_public": directory / "server.key", "server_secret": directory / "server.key_secret",
        "client_public": directory / "client.key", "client_secret": directory / "client.key_secret",
        "authorized": directory / "authorized",
    }


def _load(path: Path, *, secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise InputError(f"key file not found: {path} (create keys with `streamfill keys DIR`)")
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read key file {path}: {exc}") from None
    if secret and not secret_key:
        raise InputError(f"{path} holds no secret key")
    for key in (public, secret_key) if secret else (public,):
        if not _is_z85_key(key):  # libzmq would refuse it later with a bare "Invalid argument"
            raise InputError(f"key file {path} holds a malformed key (expected 40 Z85 characters); "
                             "recreate it with `streamfill keys DIR`")
    return public, secret_key


def _is_z85_key(key: bytes | None) -> bool:
    if not isinstance(key, bytes) or len(key) != 40:
        return False
    try:
        z85.decode(key)
    except (ValueError, KeyError, TypeError):
        return False
    return True


def load_server_keys(directory: str | Path) -> CurveKeys:
    """The server keypair from ``DIR/server.key_secret``."""
    public, secret = _load(Path(directory) / "server.key_secret", secret=True)
    return CurveKeys(public, secret)


def load_client_keys(directory: str | Path, name: str = "client") -> CurveKeys:
    """A client keypair (``DIR/NAME.key_secret``) and the server public key (``DIR/server.key``)."""
    directory = Path(directory)
    public, secret = _load(directory / f"{name}.key_secret", secret=True)
    server_public, _ = _load(directory / "server.key", secret=False)
    return CurveKeys(public, secret, server_public)


def authorized_dir(directory: str | Path) -> Path:
    path = Path(directory) / "authorized"
    if not path.is_dir() or not any(path.glob("*.key")):
        raise InputError(f"{path} holds no client public keys (*.key); `streamfill keys DIR` makes one")
    # one unreadable *.key made pyzmq's authenticator load none of them: every client was refused in silence
    for key_file in sorted(path.glob("*.key")):
        _load(key_file, secret=False)
    return path


def apply_server(sock: zmq.Socket, keys: CurveKeys) -> None:
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_server = True


def apply_client(sock: zmq.Socket, keys: CurveKeys) -> None:
    if keys.server_public is None:
        raise InputError("client CURVE keys need the server public key")
    sock.curve_secretkey = keys.secret
    sock.curve_publickey = keys.public
    sock.curve_serverkey = keys.server_public

"""`streamfill keys DIR`: create CURVE keypairs for `streamfill serve --curve-keys DIR` and its clients."""

from __future__ import annotations

import argparse

from streamfill import api


def add_parser(sub) -> None:
    p = sub.add_parser("keys", help="create CURVE key files for serve and its clients",
                       description="Write a server keypair and a client keypair into DIR. Start the server "
                                   "with --curve-keys DIR; give clients server.key and client.key_secret. "
                                   "The server accepts the public keys in DIR/authorized/.")
    p.add_argument("dir", help="folder for the key files (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite existing keys")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files = api.keys(args.dir, overwrite=args.force)
    for role, path in files.items():
        print(f"{role:14} {path}")
    return 0

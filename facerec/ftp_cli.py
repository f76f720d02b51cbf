"""Run the FTP server that uploads photos into the photos folder.

    python ftp_server.py [--config var/ftp.ini] [--address 0.0.0.0] [--port 2121]
    python ftp_server.py --hash-password      # prints a password_hash for the config

Without a config file, one is created (mode 0600) with user `upload` and a random
password; its path is printed. Run the watcher beside it: python watcher.py
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import logging
import os
import sys
from pathlib import Path

from facerec.config import settings_from_env
from facerec.ftp import DEFAULT_CONFIG, create_config, hash_password, load_config, make_server
from facerec.logs import setup_logging
from facerec.permissions import restrict_umask

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    restrict_umask()
    default_config = Path(os.environ.get("FACEREC_FTP_CONFIG", DEFAULT_CONFIG))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=default_config,
                   help="INI file with [server] and [user NAME] sections (default %(default)s; "
                        "env FACEREC_FTP_CONFIG)")
    p.add_argument("--photos", type=Path, help="photos folder (overrides the config and FACEREC_PHOTOS_DIR)")
    p.add_argument("--address", help="bind address (overrides the config; 0.0.0.0 for remote uploads)")
    p.add_argument("--port", type=int, help="control port (overrides the config)")
    p.add_argument("--hash-password", action="store_true",
                   help="read a password and print its password_hash line, then exit")
    args = p.parse_args(argv)
    if args.hash_password:
        password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        print(f"password_hash = {hash_password(password)}")
        return 0
    if not args.config.exists():
        create_config(args.config)
        print(f"created {args.config} (mode 0600) with user 'upload' and a random password: "
              f"read it there, and edit the file to add users", file=sys.stderr)
    try:
        config = load_config(args.config, settings_from_env().photos_dir)
        changes = {k: v for k, v in {"photos_dir": args.photos, "address": args.address,
                                     "port": args.port}.items() if v is not None}
        if changes:
            config = dataclasses.replace(config, **changes)
        server = make_server(config)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    host, port = server.address[:2]
    log.info("FTP server on %s:%d, uploads into %s, users: %s, passive ports %s", host, port,
             config.photos_dir, ", ".join(u.name for u in config.users),
             "{}-{}".format(*config.passive_ports) if config.passive_ports else "any")
    server.serve_forever(handle_exit=True)
    return 0

"""A real FTP server (pyftpdlib) whose users upload straight into the photos folder, where
the watcher picks the photos up. Users, passwords, the bind address and the passive port
range come from an INI file that is never committed (ftp.example.ini shows the format;
docs/ftp.md explains it, and how to use vsftpd or pure-ftpd instead).

Uploads land under their final name; the watcher waits for the close after the last
write (and a stable size and mtime) before it reads a file, so partial files are never
enrolled. Users may upload, resume, rename, delete, make folders and list; they cannot
download.
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

from facerec.config import PROJECT_ROOT

log = logging.getLogger(__name__)

DEFAULT_CONFIG = PROJECT_ROOT / "var" / "ftp.ini"
DEFAULT_PERMISSIONS = "elwadfm"  # list, cd, store, append (resume), delete, rename, mkdir
PBKDF2_ITERATIONS = 200_000


@dataclass(frozen=True)
class FtpUser:
    name: str
    password: str | None = None  # plain text (only in a 0600 file), or:
    password_hash: str | None = None  # pbkdf2_sha256$<iterations>$<salt>$<hex>, or 64 hex (sha256)
    permissions: str = DEFAULT_PERMISSIONS

    def check(self, password: str) -> bool:
        if self.password_hash:
            return verify_password(password, self.password_hash)
        return self.password is not None and hmac.compare_digest(
            self.password.encode(), password.encode())


@dataclass(frozen=True)
class FtpConfig:
    photos_dir: Path
    users: tuple[FtpUser, ...]
    # 127.0.0.1 only accepts uploads from this machine; 0.0.0.0 (or a LAN address) is
    # needed to accept them from cameras and other machines.
    address: str = "127.0.0.1"
    port: int = 2121
    passive_ports: tuple[int, int] | None = (60000, 60099)
    masquerade_address: str | None = None  # the public address announced behind NAT
    max_connections: int = 64
    max_connections_per_ip: int = 8
    extra: dict = field(default_factory=dict)


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations).hex()
    return f"pbkdf2_sha256${iterations}${salt}${digest}"


def verify_password(password: str, stored: str) -> bool:
    stored = stored.strip()
    if stored.startswith("pbkdf2_sha256$"):
        try:
            _, iterations, salt, digest = stored.split("$")
            computed = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(),
                                           int(iterations)).hex()
        except ValueError:
            return False
        return hmac.compare_digest(computed, digest)
    if len(stored) == 64:  # a bare sha256 hex digest
        return hmac.compare_digest(hashlib.sha256(password.encode()).hexdigest(), stored.lower())
    return False


def _port_range(text: str) -> tuple[int, int] | None:
    text = text.strip()
    if not text:
        return None
    low, _, high = text.partition("-")
    first, last = int(low), int(high or low)
    if not 0 < first <= last < 65536:
        raise ValueError(f"passive_ports {text!r}: use FIRST-LAST within 1-65535")
    return first, last


def load_config(path: Path, photos_dir: Path | None = None) -> FtpConfig:
    """Read the INI file: a [server] section and one [user NAME] section per user."""
    path = Path(path)
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    if not parser.read(path, encoding="utf-8"):
        raise FileNotFoundError(f"FTP config {path} not found")
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("FTP config %s is readable by other users: chmod 600 it", path)
    server = parser["server"] if parser.has_section("server") else {}
    users = []
    for section in parser.sections():
        if not section.startswith("user "):
            continue
        name = section[len("user "):].strip()
        values = parser[section]
        user = FtpUser(name, values.get("password") or None, values.get("password_hash") or None,
                       values.get("permissions", DEFAULT_PERMISSIONS).strip())
        if not (user.password or user.password_hash):
            raise ValueError(f"{path}: [{section}] needs password or password_hash")
        if "r" in user.permissions:
            log.warning("FTP user %s may download photos (permission 'r')", name)
        users.append(user)
    if not users:
        raise ValueError(f"{path}: no [user NAME] section: nobody could log in")
    folder = server.get("photos_dir", "").strip()
    masquerade = server.get("masquerade_address", "").strip()
    return FtpConfig(
        photos_dir=Path(folder) if folder else Path(photos_dir or PROJECT_ROOT / "data_foto"),
        users=tuple(users),
        address=server.get("address", "127.0.0.1").strip(),
        port=int(server.get("port", "2121")),
        passive_ports=_port_range(server.get("passive_ports", "60000-60099")),
        masquerade_address=masquerade or None,
        max_connections=int(server.get("max_connections", "64")),
        max_connections_per_ip=int(server.get("max_connections_per_ip", "8")),
    )


def create_config(path: Path, user: str = "upload") -> str:
    """Write a new config with one user and a random password, readable by its owner only;
    returns the password (it is also in the file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    text = ("# Generated by ftp_server.py; see ftp.example.ini and docs/ftp.md.\n"
            "[server]\n"
            "# 127.0.0.1: uploads from this machine only; 0.0.0.0 accepts them from others.\n"
            "address = 127.0.0.1\nport = 2121\npassive_ports = 60000-60099\n\n"
            f"[user {user}]\npassword = {password}\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return password


class _Authorizer(DummyAuthorizer):
    """Every user's home is the photos folder; passwords are checked against hashes."""

    def __init__(self, config: FtpConfig):
        super().__init__()
        self.accounts = {u.name: u for u in config.users}
        for user in config.users:
            self.add_user(user.name, "", os.fspath(config.photos_dir), perm=user.permissions)

    def validate_authentication(self, username, password, handler):
        user = self.accounts.get(username)
        if user is None or not user.check(password):
            log.warning("FTP login failed for %r from %s", username, handler.remote_ip)
            raise AuthenticationFailed("Authentication failed.")


class _Handler(FTPHandler):
    banner = "facerec photo upload ready."

    def on_login(self, username):
        log.info("FTP %s logged in from %s", username, self.remote_ip)

    def on_file_received(self, file):
        log.info("FTP upload complete: %s (%s)", file, self.username)

    def on_incomplete_file_received(self, file):
        # Kept for a resumed upload (REST/APPE); the watcher rejects it as truncated
        # with that reason, and enrolls it once it is complete.
        log.warning("FTP upload incomplete: %s (%s)", file, self.username)


def make_server(config: FtpConfig) -> FTPServer:
    """A ready, bound server (port 0 binds an ephemeral port: see server.address)."""
    if not Path(config.photos_dir).is_dir():
        raise FileNotFoundError(f"photos folder {config.photos_dir} does not exist")
    handler = type("PhotoUploadHandler", (_Handler,), {
        "authorizer": _Authorizer(config),
        "passive_ports": (range(config.passive_ports[0], config.passive_ports[1] + 1)
                          if config.passive_ports else None),
        "masquerade_address": config.masquerade_address,
    })
    server = FTPServer((config.address, config.port), handler)
    server.max_cons = config.max_connections
    server.max_cons_per_ip = config.max_connections_per_ip
    return server

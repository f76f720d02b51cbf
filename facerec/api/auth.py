"""API keys with two scopes: "recognize" (/upload_photo, /verify, /compare) and "manage"
(the /users endpoints; a manage key may also recognize).

Keys live in a JSON file (default var/api_keys.json) created at first start with one
key per scope, mode 0600 in a 0700 folder. The keys are never logged: the log says where
the file is, and the operator reads them from it. More keys can be added to the file by
hand ({"name", "scope", "key"}); the file is read at start-up. Clients send a key in the
X-API-Key header; it is compared with every configured key in constant time."""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import g, request

from facerec.config import Settings
from facerec.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

HEADER = "X-API-Key"
SCOPES = ("recognize", "manage")
# A scope and every scope it includes.
GRANTS = {"recognize": {"recognize"}, "manage": {"recognize", "manage"}}
MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class ApiKey:
    name: str
    scope: str
    key: str


def new_key() -> str:
    return "frk_" + secrets.token_urlsafe(32)


def _create_key_file(path: Path) -> bool:
    """Write a new key file unless one exists (also when several workers start at once:
    the file appears whole via link(), or not at all). True if this call created it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = [{"name": f"{scope}-1", "scope": scope, "key": new_key()} for scope in SCOPES]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"keys": keys}, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def load_keys(path: Path) -> list[ApiKey]:
    """Read (and at first start create) the key file."""
    path = Path(path)
    if not path.exists() and _create_key_file(path):
        log.warning("generated API keys (one per scope: %s) in %s (mode 0600); clients send "
                    "one in the %s header. Read them from that file.", ", ".join(SCOPES), path,
                    HEADER)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("API key file %s has mode %o: others can read it; run chmod 600 %s",
                    path, mode, path)
    try:
        entries = json.loads(path.read_text())["keys"]
        keys = [ApiKey(str(e.get("name", f"key-{i}")), e["scope"], e["key"])
                for i, e in enumerate(entries, start=1)]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RuntimeError(f"API key file {path} is unreadable ({exc!r}); fix it, or delete "
                           "it to have new keys generated") from None
    for key in keys:
        if key.scope not in SCOPES or not isinstance(key.key, str) or len(key.key) < MIN_KEY_LENGTH:
            raise RuntimeError(f"API key {key.name!r} in {path}: scope must be one of {SCOPES} "
                               f"and the key a string of at least {MIN_KEY_LENGTH} characters")
    return keys


class KeyChecker:
    def __init__(self, keys: list[ApiKey], enabled: bool = True):
        self.keys = keys
        self.enabled = enabled

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyChecker:
        if not settings.auth_enabled:
            log.warning("API keys are OFF (FACEREC_AUTH_ENABLED=false): anyone who can reach "
                        "this port can recognize and manage users. Local development only.")
            return cls([], enabled=False)
        return cls(load_keys(settings.api_keys_path))

    def match(self, presented: str) -> ApiKey | None:
        """The key equal to `presented`; every key is compared, in constant time each."""
        given = presented.encode("utf-8", "surrogateescape")
        found = None
        for key in self.keys:
            if hmac.compare_digest(given, key.key.encode("utf-8")):
                found = key
        return found

    def check(self, scope: str) -> str | None:
        """Raise Unauthorized/Forbidden unless this request's key grants `scope`; return
        the key's name (for the logs) or None when keys are off."""
        if not self.enabled:
            return None
        presented = request.headers.get(HEADER)
        if not presented:
            raise Unauthorized(f"missing API key: send it in the {HEADER} header")
        key = self.match(presented)
        if key is None:
            raise Unauthorized("invalid API key")
        g.api_key = key.name
        if scope not in GRANTS[key.scope]:
            raise Forbidden(f"this API key has scope {key.scope!r}; this endpoint needs "
                            f"{scope!r}", key=key.name)
        return key.name


def require(scope: str) -> Callable:
    """View decorator: the request must carry a key that grants `scope`."""
    if scope not in SCOPES:
        raise ValueError(scope)

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            from facerec.api.services import services

            g.api_key = services().auth.check(scope)
            return view(*args, **kwargs)

        wrapped.required_scope = scope
        return wrapped

    return decorate

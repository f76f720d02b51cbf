"""Which files in the photos folder are photos, and whose.

The rule (README, "Naming photos"):
- flat layout: data_foto/<user_id>.jpg, data_foto/<user_id>_<n>.jpg — a trailing
  `_<digits>` numbers further photos of the same user (u1024.jpg, u1024_2.jpg → u1024);
- folder layout: data_foto/<user_id>/<any name>.jpg;
- a user id is 1–64 characters of letters, digits, `_`, `.` and `-`, starting with a letter
  or digit; anything else is rejected with a reason and never used in a path;
- dotfiles, temporary upload names (*.part, *.tmp, *.filepart, ...) and users.csv are
  not photos and are ignored; other extensions are rejected as unsupported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from facerec.imaging import IMAGE_EXTENSIONS

USER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PHOTO_NUMBER = re.compile(r"_\d+$")
TEMP_SUFFIXES = frozenset({".part", ".tmp", ".temp", ".filepart", ".partial", ".crdownload",
                           ".upload", ".swp", ".download"})
NOT_PHOTOS = frozenset({"users.csv", "readme.md", "readme.txt", "readme"})


@dataclass(frozen=True)
class PhotoName:
    """What a path in the photos folder is: a photo of user_id, ignored, or rejected."""

    kind: str  # "photo" | "ignored" | "rejected"
    user_id: str | None = None
    reason: str | None = None


def is_valid_user_id(user_id: str) -> bool:
    return bool(USER_ID_PATTERN.fullmatch(user_id)) and ".." not in user_id


def is_temporary(name: str) -> bool:
    lower = name.lower()
    return (name.startswith((".", "~"))
            or lower.endswith("~")
            or PurePosixPath(lower).suffix in TEMP_SUFFIXES)


def classify(relative_path: str) -> PhotoName:
    """Classify a path relative to the photos folder (forward slashes)."""
    parts = PurePosixPath(relative_path).parts
    if not parts or any(is_temporary(part) for part in parts):
        return PhotoName("ignored", reason="temporary or hidden file")
    name = parts[-1]
    if len(parts) == 1 and name.lower() in NOT_PHOTOS:
        return PhotoName("ignored", reason="not a photo")
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        return PhotoName("rejected", reason=f"unsupported file type {suffix or '(none)'!r}; "
                         f"expected one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
    if len(parts) > 2:
        return PhotoName("rejected", reason="too deep: use data_foto/<user_id>/<photo> at most")
    if len(parts) == 2:
        user_id = parts[0]
    else:
        user_id = PHOTO_NUMBER.sub("", PurePosixPath(name).stem)
    if not is_valid_user_id(user_id):
        return PhotoName("rejected", reason="invalid user id: use 1-64 letters, digits, '_', "
                         "'.' or '-', starting with a letter or digit")
    return PhotoName("photo", user_id=user_id)

"""Deleting people and faces for good: database rows, photo files and (through an index
rebuild the caller starts) the vectors. The write lock is taken first (a busy database
fails before anything is touched), then the photo files go, then the rows, in that one
transaction: had the files gone last, a watcher could see a file with no ledger row left
and enroll it again; had they gone before the lock, a busy database would leave rows
whose photos are gone."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from facerec import store
from facerec.errors import FaceRecError, InvalidUserId, NotFound
from facerec.naming import classify, is_valid_user_id

log = logging.getLogger(__name__)

SQLITE_MAX_INT = 2**63 - 1


@dataclass(frozen=True)
class Erased:
    user_id: str
    faces: int
    photos: int  # ledger rows
    files: int  # photo files deleted from the photos folder

    def to_json(self) -> dict:
        return {"user_id": self.user_id, "faces": self.faces, "photos": self.photos,
                "files": self.files}


def _check_id(user_id: str) -> None:
    if not is_valid_user_id(user_id):
        raise InvalidUserId("invalid user id: use 1-64 letters, digits, '_', '.' or '-', "
                            "starting with a letter or digit")


def _inside(photos_dir: Path, rel: str) -> Path | None:
    """The path of `rel` under photos_dir, or None if it would leave it."""
    root = Path(photos_dir).resolve()
    path = (root / rel).resolve()
    return path if path.is_relative_to(root) and path != root else None


def _delete_files(photos_dir: Path, rels: set[str]) -> int:
    deleted, failed = 0, []
    for rel in sorted(rels):
        path = _inside(photos_dir, rel)
        if path is None:
            log.error("erasure: ledger path %r is outside the photos folder; not deleted", rel)
            continue
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            failed.append(f"{rel}: {exc.strerror or exc}")
    if failed:
        raise FaceRecError("could not delete photo files (nothing was removed from the "
                           "database; fix the permissions and try again): " + "; ".join(failed))
    return deleted


def _user_files(photos_dir: Path, user_id: str) -> set[str]:
    """Photo files of `user_id` in the folder, ledgered or not: <user_id>/* and flat
    <user_id>[_n].<ext> names."""
    photos_dir = Path(photos_dir)
    found = set()
    folder = photos_dir / user_id
    if folder.is_dir() and not folder.is_symlink():
        found |= {f"{user_id}/{p.name}" for p in folder.iterdir() if p.is_file()}
    if photos_dir.is_dir():
        for p in photos_dir.iterdir():
            if p.is_file() and classify(p.name).user_id == user_id:
                found.add(p.name)
    return found


def erase_user(photos_dir: Path, conn: sqlite3.Connection, user_id: str) -> Erased:
    """Remove a user's profile, faces, ledger rows and photo files. The vectors stay in
    the index files until the next build: the caller rebuilds (FaceIndex already skips
    faces that are no longer in the database, so the user is unsearchable at once)."""
    _check_id(user_id)
    user = store.get_user(conn, user_id)
    ledger_rows = conn.execute("SELECT path FROM photos WHERE user_id = ?", (user_id,)).fetchall()
    face_paths = conn.execute("SELECT photo_path FROM faces WHERE user_id = ? AND photo_path "
                              "IS NOT NULL", (user_id,)).fetchall()
    if user is None and not ledger_rows and not face_paths:
        raise NotFound(f"user {user_id} not found")
    rels = {r[0] for r in ledger_rows} | {r[0] for r in face_paths}
    with store.transaction(conn):
        files = _delete_files(photos_dir, rels | _user_files(photos_dir, user_id))
        folder = Path(photos_dir) / user_id
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()
        marks = ",".join("?" * len(rels)) or "NULL"
        photos = conn.execute(f"DELETE FROM photos WHERE user_id = ? OR path IN ({marks})",
                              [user_id, *sorted(rels)]).rowcount
        faces = conn.execute("DELETE FROM faces WHERE user_id = ?", (user_id,)).rowcount
        conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
    erased = Erased(user_id, faces, photos, files)
    log.warning("erased user %s: %d faces, %d ledger rows, %d photo files deleted",
                user_id, faces, photos, files)
    return erased


def delete_face(photos_dir: Path, conn: sqlite3.Connection, user_id: str, face_id: int) -> dict:
    """Delete one face of a user, and the photo file it came from when that file is
    still the face's photo (so a later convert.py run does not enroll it again)."""
    _check_id(user_id)
    if not 0 <= face_id <= SQLITE_MAX_INT:  # no such face; SQLite could not even bind it
        raise NotFound(f"user {user_id} has no face {face_id}")
    face = conn.execute("SELECT face_id, photo_path FROM faces WHERE face_id = ? AND user_id = ?",
                        (face_id, user_id)).fetchone()
    if face is None:
        raise NotFound(f"user {user_id} has no face {face_id}")
    ledger_rows = conn.execute("SELECT path FROM photos WHERE face_id = ?", (face_id,)).fetchall()
    rels = {r[0] for r in ledger_rows}
    with store.transaction(conn):
        files = _delete_files(photos_dir, rels)
        marks = ",".join("?" * len(rels)) or "NULL"
        conn.execute(f"DELETE FROM photos WHERE path IN ({marks})", sorted(rels))
        conn.execute("DELETE FROM faces WHERE face_id = ?", (face_id,))
        store.refresh_user_face(conn, user_id)
    log.warning("deleted face %d of user %s (%d photo files deleted)", face_id, user_id, files)
    return {"user_id": user_id, "face_id": face_id, "photos": sorted(rels), "files": files}

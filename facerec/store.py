"""The SQLite store: users, faces (with their embeddings) and the photos ledger.

WAL mode so readers never block the writer; every writer takes BEGIN IMMEDIATE so two
writers queue on busy_timeout instead of failing half-way; transactions are short.
Several processes (API workers, watcher, convert.py) share one database file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users(
    id         TEXT PRIMARY KEY,
    name       TEXT,
    email      TEXT,
    face_id    INTEGER,               -- the user's newest active face
    profile    TEXT NOT NULL DEFAULT '{}',  -- extra fields, JSON object
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faces(
    face_id        INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: index ids stay valid
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    photo_path     TEXT,
    photo_sha256   TEXT NOT NULL,
    bbox           TEXT NOT NULL,     -- JSON [x1, y1, x2, y2]
    det_score      REAL NOT NULL,
    landmarks      TEXT NOT NULL DEFAULT '{}',
    model          TEXT NOT NULL,
    embedding      BLOB NOT NULL,     -- float32, L2-normalised
    active         INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    deactivated_at TEXT
);
CREATE INDEX IF NOT EXISTS faces_user ON faces(user_id);
CREATE INDEX IF NOT EXISTS faces_active ON faces(active, face_id);
CREATE TABLE IF NOT EXISTS photos(
    path         TEXT PRIMARY KEY,    -- relative to the photos folder
    user_id      TEXT,
    sha256       TEXT,
    size         INTEGER,
    mtime_ns     INTEGER,
    status       TEXT NOT NULL,       -- enrolled | rejected | removed
    reason       TEXT,
    face_id      INTEGER,
    flags        TEXT NOT NULL DEFAULT '[]',  -- JSON list: multiple_faces, possible_duplicate
    duplicate_of TEXT,
    processed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_status ON photos(status);
CREATE INDEX IF NOT EXISTS photos_user ON photos(user_id);
"""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def connect(db_path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode; use `transaction()` for writes."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    # Deleted rows (an erased user's embeddings and profile) are overwritten with zeros,
    # not left in free pages. Debian's SQLite does this by default; other builds do not.
    conn.execute("PRAGMA secure_delete = ON")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def init_schema(conn: sqlite3.Connection) -> list[str]:
    """Create what is missing; return what was done (empty when nothing was)."""
    done = []
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
        done.append("switched the journal to WAL")
    existing = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    with transaction(conn):
        # One statement at a time: executescript() would commit the open transaction.
        for statement in SCHEMA.split(";\n"):
            if statement.strip():
                conn.execute(statement)
        created = sorted({"meta", "users", "faces", "photos"} - existing)
        if created:
            done.append("created tables " + ", ".join(created))
        version = get_meta(conn, "schema_version")
        if version is None:
            set_meta(conn, "schema_version", str(SCHEMA_VERSION))
            done.append(f"set schema version {SCHEMA_VERSION}")
        elif int(version) > SCHEMA_VERSION:
            raise RuntimeError(f"database schema version {version} is newer than this "
                               f"program's ({SCHEMA_VERSION}); upgrade the program")
    return done


def open_db(db_path: Path) -> sqlite3.Connection:
    """Connect and make sure the schema exists (idempotent)."""
    conn = connect(db_path)
    init_schema(conn)
    return conn


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


# --- users -------------------------------------------------------------------------

USER_COLUMNS = ("name", "email")


def ensure_user(conn: sqlite3.Connection, user_id: str) -> bool:
    """Create the user if missing (auto-registration); True if created."""
    stamp = now()
    cur = conn.execute("INSERT OR IGNORE INTO users(id, created_at, updated_at) VALUES(?, ?, ?)",
                       (user_id, stamp, stamp))
    return cur.rowcount == 1


def upsert_profile(conn: sqlite3.Connection, user_id: str, fields: dict) -> bool:
    """Create or update a user's profile; name and email are columns, the rest goes into
    the profile JSON (merged). Returns True if the user was created."""
    created = ensure_user(conn, user_id)
    row = conn.execute("SELECT profile FROM users WHERE id = ?", (user_id,)).fetchone()
    profile = json.loads(row["profile"] or "{}")
    updates = {}
    for key, value in fields.items():
        if key in ("id", "user_id", "face_id", "created_at", "updated_at"):
            continue
        if key in USER_COLUMNS:
            updates[key] = value
        else:
            profile[key] = value
    conn.execute(
        "UPDATE users SET name = COALESCE(?, name), email = COALESCE(?, email), profile = ?, "
        "updated_at = ? WHERE id = ?",
        (updates.get("name"), updates.get("email"), json.dumps(profile, ensure_ascii=False),
         now(), user_id),
    )
    return created


def user_profile(row: sqlite3.Row) -> dict:
    profile = {"id": row["id"], "name": row["name"], "email": row["email"]}
    profile.update(json.loads(row["profile"] or "{}"))
    return profile


def get_user(conn: sqlite3.Connection, user_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()


def get_profiles(conn: sqlite3.Connection, user_ids: list[str]) -> dict[str, dict]:
    if not user_ids:
        return {}
    marks = ",".join("?" * len(user_ids))
    rows = conn.execute(f"SELECT * FROM users WHERE id IN ({marks})", list(user_ids))
    return {row["id"]: user_profile(row) for row in rows}


def refresh_user_face(conn: sqlite3.Connection, user_id: str) -> None:
    """Point users.face_id at the newest active face (NULL when none is left)."""
    conn.execute(
        "UPDATE users SET face_id = (SELECT max(face_id) FROM faces "
        "WHERE user_id = ? AND active = 1), updated_at = ? WHERE id = ?",
        (user_id, now(), user_id),
    )


# --- faces -------------------------------------------------------------------------

@dataclass(frozen=True)
class NewFace:
    user_id: str
    photo_path: str | None
    photo_sha256: str
    bbox: tuple[int, int, int, int]
    det_score: float
    landmarks: dict
    model: str
    embedding: np.ndarray


def embedding_blob(vector: np.ndarray) -> bytes:
    vector = np.asarray(vector, dtype=np.float32)
    if vector.ndim != 1 or not np.all(np.isfinite(vector)) or not np.linalg.norm(vector) > 0:
        raise ValueError("refusing to store a zero, NaN or non-vector embedding")
    return vector.tobytes()


def blob_embedding(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


def insert_face(conn: sqlite3.Connection, face: NewFace) -> int:
    cur = conn.execute(
        "INSERT INTO faces(user_id, photo_path, photo_sha256, bbox, det_score, landmarks, "
        "model, embedding, active, created_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
        (face.user_id, face.photo_path, face.photo_sha256, json.dumps(list(face.bbox)),
         float(face.det_score), json.dumps(face.landmarks), face.model,
         embedding_blob(face.embedding), now()),
    )
    face_id = cur.lastrowid
    conn.execute("UPDATE users SET face_id = ?, updated_at = ? WHERE id = ?",
                 (face_id, now(), face.user_id))
    return face_id


def deactivate_face(conn: sqlite3.Connection, face_id: int) -> str | None:
    """Deactivate a face; return its user id (None if it was not active)."""
    row = conn.execute("SELECT user_id FROM faces WHERE face_id = ? AND active = 1",
                       (face_id,)).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE faces SET active = 0, deactivated_at = ? WHERE face_id = ?",
                 (now(), face_id))
    refresh_user_face(conn, row["user_id"])
    return row["user_id"]


def active_embeddings(conn: sqlite3.Connection, model: str, after_face_id: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(face_ids, vectors) of active faces of `model` with face_id > after_face_id."""
    rows = conn.execute(
        "SELECT face_id, embedding FROM faces WHERE active = 1 AND face_id > ? AND model = ? "
        "ORDER BY face_id", (after_face_id, model),
    ).fetchall()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    if not rows:
        return ids, np.zeros((0, 0), np.float32)
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    return ids, vectors


def active_owners(conn: sqlite3.Connection, face_ids: list[int]) -> dict[int, str]:
    """face_id → user_id for those of `face_ids` that are still active."""
    if not face_ids:
        return {}
    marks = ",".join("?" * len(face_ids))
    rows = conn.execute(
        f"SELECT face_id, user_id FROM faces WHERE active = 1 AND face_id IN ({marks})",
        [int(f) for f in face_ids],
    )
    return {r[0]: r[1] for r in rows}


def counts(conn: sqlite3.Connection) -> dict:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM users) AS users, "
        "(SELECT count(*) FROM faces WHERE active = 1) AS faces").fetchone()
    return {"users": row["users"], "faces": row["faces"]}


# --- photos ledger -------------------------------------------------------------------

def ledger(conn: sqlite3.Connection) -> dict[str, sqlite3.Row]:
    return {row["path"]: row for row in conn.execute("SELECT * FROM photos")}


def record_photo(conn: sqlite3.Connection, path: str, *, status: str, user_id: str | None,
                 sha256: str | None, size: int | None, mtime_ns: int | None,
                 reason: str | None = None, face_id: int | None = None,
                 flags: list[str] | None = None, duplicate_of: str | None = None) -> None:
    conn.execute(
        "INSERT INTO photos(path, user_id, sha256, size, mtime_ns, status, reason, face_id, "
        "flags, duplicate_of, processed_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(path) DO UPDATE SET user_id = excluded.user_id, sha256 = excluded.sha256, "
        "size = excluded.size, mtime_ns = excluded.mtime_ns, status = excluded.status, "
        "reason = excluded.reason, face_id = excluded.face_id, flags = excluded.flags, "
        "duplicate_of = excluded.duplicate_of, processed_at = excluded.processed_at",
        (path, user_id, sha256, size, mtime_ns, status, reason, face_id,
         json.dumps(flags or []), duplicate_of, now()),
    )


# --- queries for the HTTP API ---------------------------------------------------------

def user_embeddings(conn: sqlite3.Connection, user_id: str, model: str
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(face_ids, vectors) of one user's active faces of `model` (1:1 verification)."""
    rows = conn.execute("SELECT face_id, embedding FROM faces WHERE user_id = ? AND active = 1 "
                        "AND model = ? ORDER BY face_id", (user_id, model)).fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    if not rows:
        return ids, np.zeros((0, 0), np.float32)
    return ids, np.stack([blob_embedding(r[1]) for r in rows])


def user_faces(conn: sqlite3.Connection, user_id: str) -> list[dict]:
    """A user's active faces, oldest first, without their embeddings."""
    rows = conn.execute("SELECT face_id, photo_path, photo_sha256, bbox, det_score, model, "
                        "created_at FROM faces WHERE user_id = ? AND active = 1 ORDER BY face_id",
                        (user_id,)).fetchall()
    return [{"face_id": r["face_id"], "photo_path": r["photo_path"],
             "photo_sha256": r["photo_sha256"], "bbox": json.loads(r["bbox"]),
             "detection_score": r["det_score"], "model": r["model"],
             "created_at": r["created_at"]} for r in rows]


def list_users(conn: sqlite3.Connection, *, limit: int, offset: int, name: str | None = None
               ) -> tuple[list[sqlite3.Row], int]:
    """A page of users ordered by id (optionally whose name contains `name`, any case),
    with each user's active face count, and the total number matching."""
    where, params = "", []
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where, params = "WHERE lower(u.name) LIKE lower(?) ESCAPE '\\'", [f"%{escaped}%"]
    total = conn.execute(f"SELECT count(*) FROM users u {where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT u.*, (SELECT count(*) FROM faces f WHERE f.user_id = u.id AND f.active = 1) "
        f"AS face_count FROM users u {where} ORDER BY u.id LIMIT ? OFFSET ?",
        [*params, limit, offset]).fetchall()
    return rows, total


def update_profile(conn: sqlite3.Connection, user_id: str, fields: dict) -> None:
    """Change an existing user's profile: name and email are set as given (None clears
    them); extra fields are merged, and an extra field set to None is removed."""
    row = conn.execute("SELECT name, email, profile FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None:
        raise KeyError(user_id)
    profile = json.loads(row["profile"] or "{}")
    columns = {"name": row["name"], "email": row["email"]}
    for key, value in fields.items():
        if key in ("id", "user_id", "face_id", "created_at", "updated_at"):
            continue
        if key in USER_COLUMNS:
            columns[key] = value
        elif value is None:
            profile.pop(key, None)
        else:
            profile[key] = value
    conn.execute("UPDATE users SET name = ?, email = ?, profile = ?, updated_at = ? WHERE id = ?",
                 (columns["name"], columns["email"], json.dumps(profile, ensure_ascii=False),
                  now(), user_id))


def photo_entry(conn: sqlite3.Connection, path: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM photos WHERE path = ?", (path,)).fetchone()

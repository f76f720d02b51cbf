"""Enrollment: photos in the folder → faces in the database → the index.

`enroll_folder` is convert.py (and, on a subset of paths, the watcher): it compares the
folder with the photos ledger (path, size, mtime, sha256), so an unchanged photo costs a
stat and nothing else, and models are loaded only when some photo needs them. Every
photo is committed in its own short transaction: a crash loses at most the photo in hand,
and the next run picks up where this one stopped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from facerec import store
from facerec.config import Settings
from facerec.errors import (
    DuplicateIdentity,
    FaceRecError,
    IndexMismatch,
    InvalidUserId,
    MultipleFaces,
    NoFace,
    UnsupportedMediaType,
)
from facerec.faces import Face
from facerec.imaging import decode_image
from facerec.index import (
    REBUILD_COMMAND,
    FaceIndex,
    build_index,
    build_options,
    index_backlog,
    read_manifest,
)
from facerec.naming import classify, is_valid_user_id
from facerec.pipeline import Pipeline

log = logging.getLogger(__name__)

USERS_CSV = "users.csv"


@dataclass
class Summary:
    enrolled: int = 0
    replaced: int = 0
    unchanged: int = 0
    removed: int = 0
    rejected: Counter = field(default_factory=Counter)
    users_created: int = 0
    profiles_updated: int = 0
    multiple_faces: int = 0
    possible_duplicates: int = 0
    ignored: int = 0
    index: str = "unchanged"
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.enrolled or self.replaced or self.removed)

    def line(self) -> str:
        rejected = sum(self.rejected.values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items()))
        return (f"enrolled {self.enrolled}, replaced {self.replaced}, unchanged {self.unchanged}, "
                f"removed {self.removed}, rejected {rejected}" + (f" ({reasons})" if reasons else "")
                + f", users created {self.users_created}, profiles updated {self.profiles_updated}"
                + f"; flagged: {self.multiple_faces} multiple faces, "
                f"{self.possible_duplicates} possible duplicates; ignored {self.ignored}; "
                f"index {self.index}; {self.seconds:.1f} s")


@dataclass(frozen=True)
class PhotoFile:
    rel: str  # relative to the photos folder, forward slashes
    path: Path
    size: int
    mtime_ns: int


@dataclass
class Outcome:
    """What became of one photo, before it is written."""

    file: PhotoFile
    user_id: str | None
    sha256: str | None = None
    image: np.ndarray | None = None
    reject: tuple[str, str] | None = None  # (code, detail)
    flags: list[str] = field(default_factory=list)
    duplicate_of: str | None = None
    face: object = None
    embedding: np.ndarray | None = None
    same_content: bool = False


def scan_folder(photos_dir: Path, only: Iterable[str] | None = None) -> list[PhotoFile]:
    """Regular files under photos_dir (symlinks are never followed), or just `only`."""
    photos_dir = Path(photos_dir)
    if only is not None:
        candidates = [photos_dir / rel for rel in only]
    else:
        candidates = []
        for root, dirs, files in os.walk(photos_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            candidates.extend(Path(root) / name for name in sorted(files))
    found = []
    for path in candidates:
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if not path.is_file() or path.is_symlink():
            continue
        found.append(PhotoFile(path_key(path.relative_to(photos_dir).as_posix()), path,
                               st.st_size, st.st_mtime_ns))
    return found


def path_key(rel: str) -> str:
    """The ledger's name for a path: itself, or for a file name that is not valid UTF-8
    (SQLite cannot store it) the same name with its undecodable bytes escaped as \\xNN,
    so such a file is rejected once with a reason instead of failing every time."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return rel


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_model(conn: sqlite3.Connection, model: str, rebuild: bool) -> None:
    """The database holds one model's embeddings; switching model means --rebuild."""
    stored = store.get_meta(conn, "embedding_model")
    if stored and stored != model and not rebuild:
        raise IndexMismatch(f"the database holds embeddings of model {stored}, but {model} is "
                            f"configured: run `{REBUILD_COMMAND}` to re-embed every photo")


def apply_users_csv(conn: sqlite3.Connection, photos_dir: Path, summary: Summary) -> None:
    """Profiles from users.csv beside the photos: a column id (or user_id), then any of
    name, email and extra fields. Rows that change nothing write nothing."""
    path = Path(photos_dir) / USERS_CSV
    if not path.is_file():
        return
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    for number, row in enumerate(rows, start=2):
        user_id = (row.get("id") or row.get("user_id") or "").strip()
        if not is_valid_user_id(user_id):
            log.warning("%s line %d: invalid user id %r, row skipped", USERS_CSV, number, user_id)
            continue
        fields = {k.strip(): (v or "").strip() for k, v in row.items()
                  if k and k.strip() not in ("id", "user_id") and (v or "").strip()}
        existing = store.get_user(conn, user_id)
        if existing is not None:
            current = store.user_profile(existing)
            if all(str(current.get(k)) == v for k, v in fields.items()):
                continue
        with store.transaction(conn):
            created = store.upsert_profile(conn, user_id, fields)
        summary.users_created += created
        summary.profiles_updated += not created


def enroll_folder(settings: Settings, conn: sqlite3.Connection,
                  get_pipeline: Callable[[], Pipeline], *, rebuild: bool = False,
                  only: Iterable[str] | None = None, progress: bool = True,
                  build: bool = True, index: FaceIndex | None = None) -> Summary:
    """Bring the database and index in line with the photos folder (or with the paths
    in `only`, relative to it). Returns the counts. A long-running caller (the watcher)
    passes its `index` reader for the duplicate check, so each call does not load the
    index generation again."""
    started = time.perf_counter()
    summary = Summary()
    photos_dir = Path(settings.photos_dir)
    model = settings.model
    check_model(conn, model, rebuild)
    apply_users_csv(conn, photos_dir, summary)

    only = None if only is None else sorted(set(only))
    files = scan_folder(photos_dir, only)
    ledger = store.ledger(conn) if only is None else _ledger_rows(conn, map(path_key, only))
    todo = []
    for file in files:
        entry = ledger.get(file.rel)
        if classify(file.rel).kind == "ignored":
            summary.ignored += 1
        elif (not rebuild and entry is not None and entry["status"] != "removed"
              and entry["size"] == file.size and entry["mtime_ns"] == file.mtime_ns):
            summary.unchanged += 1
        else:
            todo.append(file)

    present = {f.rel for f in files}
    scope = {path_key(rel) for rel in only} if only is not None else None
    gone = [rel for rel, entry in ledger.items()
            if entry["status"] != "removed" and rel not in present
            and (scope is None or rel in scope)]
    for rel in gone:
        _remove_photo(conn, ledger[rel], summary)

    searcher = _DuplicateSearch(settings, rebuild, None if rebuild else index)
    bar = tqdm(total=len(todo), desc="enrolling", unit="photo", disable=not progress or not todo)
    for start in range(0, len(todo), settings.batch_size):
        batch = todo[start:start + settings.batch_size]
        chunk = []
        for file in batch:
            outcome = _prepare(file, ledger.get(file.rel), settings, rebuild)
            if outcome.same_content:
                _touch(conn, outcome, ledger[file.rel])
                summary.unchanged += 1
            else:
                chunk.append(outcome)
        needs_model = [o for o in chunk if o.reject is None]
        if needs_model:
            _detect_and_embed(needs_model, get_pipeline())
        for outcome in chunk:
            if outcome.reject is None:
                searcher.check(outcome, get_pipeline)
            _write(conn, outcome, ledger.get(outcome.file.rel), model, summary)
        bar.update(len(batch))
    bar.close()

    if rebuild:
        _retire_other_faces(conn, model, summary)
    with store.transaction(conn):
        store.set_meta(conn, "embedding_model", model)
    manifest = read_manifest(settings.index_dir)
    stale = manifest is None or index_backlog(conn, settings.index_dir, model, verify_files=True) > 0
    if build and (summary.changed or rebuild or stale):
        dim = stored_dim(conn, model) or get_pipeline().model.dim
        built = build_index(conn, settings.index_dir, model, dim, **build_options(settings))
        summary.index = f"generation {built.generation} ({built.count} faces)"
    summary.seconds = time.perf_counter() - started
    log.info("enrollment: %s", summary.line())
    return summary


def stored_dim(conn: sqlite3.Connection, model: str) -> int | None:
    """The dimension of stored embeddings of `model`, without loading the model."""
    row = conn.execute("SELECT length(embedding) FROM faces WHERE model = ? LIMIT 1",
                       (model,)).fetchone()
    return None if row is None else row[0] // 4


def _prepare(file: PhotoFile, entry: sqlite3.Row | None, settings: Settings,
             rebuild: bool) -> Outcome:
    """Read, name-check and decode one photo (unless its content is what the ledger
    already holds: then only same_content is set)."""
    name = classify(file.rel)
    outcome = Outcome(file=file, user_id=name.user_id)
    if name.kind == "rejected":
        code = "invalid_user_id" if "user id" in (name.reason or "") else "unsupported_file"
        outcome.reject = (code, name.reason)
        return outcome
    try:
        data = file.path.read_bytes()
    except OSError as exc:
        outcome.reject = ("unreadable", exc.strerror or str(exc))
        return outcome
    outcome.sha256 = sha256_bytes(data)
    if (not rebuild and entry is not None and entry["status"] != "removed"
            and entry["sha256"] == outcome.sha256):
        outcome.same_content = True
        return outcome
    try:
        outcome.image = decode_image(data, settings.max_pixels)
    except FaceRecError as exc:
        outcome.reject = (exc.code, exc.message)
    return outcome


def _touch(conn: sqlite3.Connection, outcome: Outcome, entry: sqlite3.Row) -> None:
    """Same bytes, new mtime (e.g. copied again): remember the new stat, change nothing else."""
    with store.transaction(conn):
        conn.execute("UPDATE photos SET size = ?, mtime_ns = ? WHERE path = ?",
                     (outcome.file.size, outcome.file.mtime_ns, entry["path"]))


def _detect_and_embed(outcomes: list[Outcome], pipeline: Pipeline) -> None:
    items = []
    for outcome in outcomes:
        faces = pipeline.detect(outcome.image)
        if not faces:
            outcome.reject = ("no_face", "no face found (after a second, more permissive pass)")
            continue
        if len(faces) > 1:
            outcome.flags.append("multiple_faces")
        outcome.face = faces[0]  # the largest
        items.append(outcome)
    vectors = pipeline.embed([(o.image, o.face) for o in items])
    for outcome, vector in zip(items, vectors):
        outcome.embedding = vector


def duplicate_index(settings: Settings, pipeline: Pipeline, *,
                    use_generations: bool = True) -> FaceIndex:
    """The index reader the duplicate-identity check searches (a few candidates)."""
    info = pipeline.model
    return FaceIndex(settings.db_path, settings.index_dir if use_generations else None,
                     info.name, info.dim, exact_search_limit=settings.exact_search_limit,
                     search_k=settings.annoy_search_k, candidates=10, hnsw_ef=settings.hnsw_ef)


class _DuplicateSearch:
    """Looks for the same face under another user id, over the index and every face
    enrolled since (including the ones enrolled earlier in this run)."""

    def __init__(self, settings: Settings, rebuild: bool, index: FaceIndex | None = None):
        self.settings = settings
        self.rebuild = rebuild
        self.index = index

    def check(self, outcome: Outcome, get_pipeline: Callable[[], Pipeline]) -> None:
        if self.index is None:
            # During a rebuild the old index may belong to another model: search the
            # database's faces exactly instead.
            self.index = duplicate_index(self.settings, get_pipeline(),
                                         use_generations=not self.rebuild)
        hits = self.index.search(outcome.embedding, exclude_user=outcome.user_id)[0]
        threshold = self.settings.effective_threshold
        if hits and hits[0].similarity >= threshold:
            outcome.duplicate_of = hits[0].user_id
            if self.settings.reject_duplicates:
                outcome.reject = ("duplicate_identity",
                                  f"face matches user {hits[0].user_id} "
                                  f"(cosine {hits[0].similarity:.3f} >= {threshold})")
            else:
                outcome.flags.append("possible_duplicate")


def _write(conn: sqlite3.Connection, outcome: Outcome, entry: sqlite3.Row | None, model: str,
           summary: Summary) -> None:
    file = outcome.file
    with store.transaction(conn):
        # Read the ledger again under the write lock: another process (convert.py beside
        # the watcher) may have enrolled this very file since `entry` was read.
        seen = entry
        entry = conn.execute("SELECT * FROM photos WHERE path = ?", (file.rel,)).fetchone()
        changed_meanwhile = entry is not None and (
            seen is None or entry["processed_at"] != seen["processed_at"])
        if (changed_meanwhile and outcome.reject is None and entry["status"] == "enrolled"
                and entry["sha256"] == outcome.sha256):
            conn.execute("UPDATE photos SET size = ?, mtime_ns = ? WHERE path = ?",
                         (file.size, file.mtime_ns, file.rel))
            summary.unchanged += 1
            return
        old_face = entry["face_id"] if entry is not None and entry["status"] == "enrolled" else None
        if old_face is not None:
            store.deactivate_face(conn, old_face)
        if outcome.reject is not None:
            code, detail = outcome.reject
            store.record_photo(conn, file.rel, status="rejected", user_id=outcome.user_id,
                               sha256=outcome.sha256, size=file.size, mtime_ns=file.mtime_ns,
                               reason=f"{code}: {detail}", flags=outcome.flags,
                               duplicate_of=outcome.duplicate_of)
            summary.rejected[code] += 1
            log.warning("rejected %s: %s: %s", file.rel, code, detail)
            return
        created = store.ensure_user(conn, outcome.user_id)
        face = outcome.face
        face_id = store.insert_face(conn, store.NewFace(
            user_id=outcome.user_id, photo_path=file.rel, photo_sha256=outcome.sha256,
            bbox=face.box, det_score=face.score, landmarks=face.landmarks, model=model,
            embedding=outcome.embedding))
        store.record_photo(conn, file.rel, status="enrolled", user_id=outcome.user_id,
                           sha256=outcome.sha256, size=file.size, mtime_ns=file.mtime_ns,
                           face_id=face_id, flags=outcome.flags,
                           duplicate_of=outcome.duplicate_of)
    summary.users_created += created
    if old_face is not None:
        summary.replaced += 1
    else:
        summary.enrolled += 1
    summary.multiple_faces += "multiple_faces" in outcome.flags
    summary.possible_duplicates += "possible_duplicate" in outcome.flags


def _remove_photo(conn: sqlite3.Connection, entry: sqlite3.Row, summary: Summary) -> None:
    with store.transaction(conn):
        entry = conn.execute("SELECT * FROM photos WHERE path = ?", (entry["path"],)).fetchone()
        if entry is None or entry["status"] == "removed":
            return  # another process got there first
        if entry["status"] == "enrolled" and entry["face_id"] is not None:
            store.deactivate_face(conn, entry["face_id"])
            summary.removed += 1
        store.record_photo(conn, entry["path"], status="removed", user_id=entry["user_id"],
                           sha256=entry["sha256"], size=None, mtime_ns=None,
                           reason="file deleted from the photos folder")


def _retire_other_faces(conn: sqlite3.Connection, model: str, summary: Summary) -> None:
    """After a rebuild, faces of another model can no longer be searched."""
    with store.transaction(conn):
        rows = conn.execute("SELECT face_id FROM faces WHERE active = 1 AND model != ?",
                            (model,)).fetchall()
        for row in rows:
            store.deactivate_face(conn, row["face_id"])
    if rows:
        log.info("rebuild: retired %d faces of other models", len(rows))


# --- one photo uploaded through the HTTP API ----------------------------------------------

UPLOAD_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


@dataclass(frozen=True)
class Upload:
    """A photo enrolled through the API."""

    user_id: str
    face_id: int
    path: str  # relative to the photos folder
    face: Face
    created: bool  # False: these exact bytes were already enrolled for this user
    flags: list[str]
    duplicate_of: str | None


def enroll_upload(settings: Settings, conn: sqlite3.Connection, pipeline: Pipeline,
                  user_id: str, data: bytes, *, index: FaceIndex | None = None) -> Upload:
    """Enroll one uploaded photo of `user_id` exactly as convert.py enrolls one from the
    folder (same detector, crop, embedder, duplicate check and ledger), but the photo must
    show exactly one face: otherwise NoFace/MultipleFaces and nothing is stored.

    The original bytes are kept at <photos_dir>/<user_id>/api-<sha256[:16]>.<ext>. They are
    written to a hidden temporary name first; the face and its ledger row (that file's
    size, mtime and sha256) are committed; only then is the file renamed into place
    (rename keeps the mtime). So the watcher and convert.py find it already enrolled."""
    if not is_valid_user_id(user_id):
        raise InvalidUserId("invalid user id: use 1-64 letters, digits, '_', '.' or '-', "
                            "starting with a letter or digit")
    check_model(conn, settings.model, rebuild=False)
    image = decode_image(data, settings.max_pixels)
    ext = UPLOAD_EXTENSIONS.get(Image.open(io.BytesIO(data)).format or "")
    if ext is None:
        raise UnsupportedMediaType("enrollment photos must be JPEG, PNG, WebP, BMP or TIFF")
    faces = pipeline.detect(image)
    if not faces:
        raise NoFace("no face found in the photo (after a second, more permissive pass)")
    if len(faces) > 1:
        raise MultipleFaces(f"{len(faces)} faces found; an enrollment photo must show exactly "
                            "one face", faces=len(faces))
    sha256 = sha256_bytes(data)
    folder = Path(settings.photos_dir) / user_id
    rel = f"{user_id}/api-{sha256[:16]}{ext}"
    final = folder / f"api-{sha256[:16]}{ext}"
    entry = store.photo_entry(conn, rel)
    if (entry is not None and entry["status"] == "enrolled" and entry["sha256"] == sha256
            and final.is_file()):
        return _existing_upload(conn, entry)

    embedding = pipeline.embed([(image, faces[0])])[0]
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".api-{sha256[:16]}{ext}.tmp-{os.getpid()}-{id(data)}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        st = tmp.stat()
        outcome = Outcome(file=PhotoFile(rel, final, st.st_size, st.st_mtime_ns), user_id=user_id,
                          sha256=sha256, image=image, face=faces[0], embedding=embedding)
        searcher = _DuplicateSearch(settings, rebuild=False, index=index)
        searcher.check(outcome, lambda: pipeline)
        if outcome.reject is not None:
            raise DuplicateIdentity(outcome.reject[1], duplicate_of=outcome.duplicate_of)
        if store.get_meta(conn, "embedding_model") is None:  # as enroll_folder records it
            with store.transaction(conn):
                store.set_meta(conn, "embedding_model", settings.model)
        _write(conn, outcome, entry, settings.model, Summary())
        try:
            os.replace(tmp, final)
        except OSError:
            _remove_photo(conn, store.photo_entry(conn, rel), Summary())
            raise
    finally:
        tmp.unlink(missing_ok=True)
    row = store.photo_entry(conn, rel)
    log.info("enrolled %s through the API: face %d%s", rel, row["face_id"],
             f" (flags: {', '.join(outcome.flags)})" if outcome.flags else "")
    return Upload(user_id, row["face_id"], rel, faces[0], True, list(outcome.flags),
                  outcome.duplicate_of)


def _existing_upload(conn: sqlite3.Connection, entry: sqlite3.Row) -> Upload:
    face = conn.execute("SELECT bbox, det_score, landmarks FROM faces WHERE face_id = ?",
                        (entry["face_id"],)).fetchone()
    landmarks = {k: tuple(v) for k, v in json.loads(face["landmarks"] or "{}").items()}
    return Upload(entry["user_id"], entry["face_id"], entry["path"],
                  Face(tuple(json.loads(face["bbox"])), face["det_score"], landmarks),
                  False, json.loads(entry["flags"]), entry["duplicate_of"])


def _ledger_rows(conn: sqlite3.Connection, paths: Iterable[str]) -> dict[str, sqlite3.Row]:
    """The ledger entries of just these paths (the watcher's batches are small; the
    ledger may hold a million rows)."""
    paths = list(paths)
    rows: dict[str, sqlite3.Row] = {}
    for start in range(0, len(paths), 500):
        chunk = paths[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT * FROM photos WHERE path IN ({marks})", chunk):
            rows[row["path"]] = row
    return rows

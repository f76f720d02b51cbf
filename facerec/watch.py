"""The watcher: photos that land in the photos folder are enrolled, replaced or removed,
each exactly once, by the same `enroll_folder` that convert.py runs (models loaded once).

- A small watchdog handler only turns events into relative paths on a queue.
- One worker thread (the only writer in this process) debounces them: a path is handed to
  enroll_folder when its (size, mtime) has not changed for `settle` seconds and nobody is
  writing to it (a close-after-write or a rename into place ends a write; a writer that
  never closes is given up on after `write_timeout`). enroll_folder then decodes the whole
  file, so a truncated one is rejected with its reason, and processed again once it grows.
- Events get lost (start-up, queue overflow, the daemon down): the folder is reconciled
  against the photos ledger at start and every `reconcile_interval` seconds.
- The index is rebuilt in another thread when enough changed or enough time passed;
  readers already see new and removed faces exactly, so enrollment never waits for it.
- The ledger is the truth and every photo is its own transaction: a kill -9 at any point
  loses at most the photo in hand, and the next start converges to the same state.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from facerec import store
from facerec.config import Settings
from facerec.enroll import (
    PhotoFile,
    Summary,
    check_model,
    duplicate_index,
    enroll_folder,
    path_key,
    scan_folder,
    stored_dim,
)
from facerec.index import FaceIndex, build_index, build_options, index_backlog, read_manifest
from facerec.naming import classify
from facerec.pipeline import Pipeline

log = logging.getLogger(__name__)

USERS_CSV = "users.csv"


@dataclass(frozen=True)
class WatchOptions:
    settle: float = 0.5  # seconds a file's size and mtime must stay unchanged
    settle_after_close: float = 0.05  # the same, once its writer has closed it
    write_timeout: float = 10.0  # a file written to but never closed counts as complete after this
    reconcile_interval: float = 60.0  # full comparison of the folder with the ledger
    max_batch: int = 32  # photos per enroll_folder call (a stop waits for at most one batch)
    rebuild_delta: int = 1000  # rebuild the index when this many faces changed since it was built
    rebuild_interval: float = 300.0  # ... or when this long passed with any change pending
    preload: bool = True  # load the models at start, not at the first photo


@dataclass
class WatchSummary:
    enrolled: int = 0
    replaced: int = 0
    removed: int = 0
    rejected: int = 0
    unchanged: int = 0
    batches: int = 0
    reconciles: int = 0
    rebuilds: int = 0
    errors: int = 0

    def add(self, summary: Summary) -> None:
        self.enrolled += summary.enrolled
        self.replaced += summary.replaced
        self.removed += summary.removed
        self.rejected += sum(summary.rejected.values())
        self.unchanged += summary.unchanged

    def line(self) -> str:
        return (f"watcher: enrolled {self.enrolled}, replaced {self.replaced}, removed "
                f"{self.removed}, rejected {self.rejected}, unchanged {self.unchanged}; "
                f"{self.batches} batches, {self.reconciles} reconciles, {self.rebuilds} index "
                f"rebuilds, {self.errors} errors")


# --- events → queue ------------------------------------------------------------------

class _Handler(FileSystemEventHandler):
    """Puts ("path" | "closed" | "writing" | "dir", relative path) on the queue; nothing else."""

    def __init__(self, root: Path, events: queue.Queue):
        self.root = os.fspath(root)
        self.events = events

    def _put(self, kind: str, path: str | bytes) -> None:
        rel = os.path.relpath(os.fsdecode(path), self.root)
        if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
            if rel == ".":
                log.warning("the photos folder itself changed (%s); reconciling", kind)
                self.events.put(("reconcile", ""))
            return
        self.events.put((kind, Path(rel).as_posix()))

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            kind = event.event_type
            if kind in ("opened", "closed_no_write"):  # reads, including our own
                return
            if event.is_directory:
                if kind != "modified":  # a folder's mtime changes with every file in it
                    self._put("dir", event.src_path)
                    if event.dest_path:
                        self._put("dir", event.dest_path)
                return
            if kind == "moved":
                self._put("path", event.src_path)
                self._put("closed", event.dest_path)  # a rename into place: complete
            elif kind == "modified":
                self._put("writing", event.src_path)
            elif kind == "created":  # a new file, or one moved in from outside the folder
                self._put("path", event.src_path)
            elif kind == "closed":
                self._put("closed", event.src_path)
            else:  # deleted, attrib
                self._put("path", event.src_path)
        except Exception:  # never let a handler error stop the observer
            log.exception("watch: could not queue %r", event)


class _OverflowAlarm(logging.Handler):
    """watchdog only logs an inotify queue overflow; turn that into a reconcile."""

    def __init__(self, events: queue.Queue):
        super().__init__(logging.WARNING)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.events.put(("reconcile", ""))


# --- debouncing ------------------------------------------------------------------------

@dataclass
class _Pending:
    stat: tuple[int, int] | None
    since: float  # when stat last changed
    writing: bool = False
    closed: bool = False


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class Watcher:
    """One per process. `run(stop)` blocks until `stop` is set; `started` is set once the
    observer watches and the start-up reconcile is queued."""

    def __init__(self, settings: Settings, get_pipeline: Callable[[], Pipeline],
                 options: WatchOptions | None = None):
        self.settings = settings
        self.get_pipeline = get_pipeline
        self.options = options or WatchOptions()
        self.root = Path(settings.photos_dir)
        self.events: queue.Queue = queue.Queue()
        self.pending: dict[str, _Pending] = {}
        self.users_csv_changed = False
        self._users_csv_stat: tuple[int, int] | None = None
        self.summary = WatchSummary()
        self.started = threading.Event()
        self._changed = threading.Event()  # nudges the index rebuilder
        self._conn = None
        self._dup_index: FaceIndex | None = None

    # --- main loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> WatchSummary:
        if not self.root.is_dir():
            raise FileNotFoundError(f"photos folder {self.root} does not exist")
        self._conn = store.open_db(self.settings.db_path)
        check_model(self._conn, self.settings.model, rebuild=False)  # refuse to start, not fail per photo
        observer = Observer()
        observer.schedule(_Handler(self.root, self.events), os.fspath(self.root), recursive=True)
        alarm = _OverflowAlarm(self.events)
        logging.getLogger("watchdog").addHandler(alarm)
        rebuilder = threading.Thread(target=self._rebuild_loop, args=(stop,),
                                     name="index-rebuild", daemon=True)
        observer.start()  # before the first scan, so nothing falls between the two
        try:
            if self.options.preload:
                warm_up(self.get_pipeline())
            rebuilder.start()
            self.events.put(("reconcile", ""))
            log.info("watching %s (settle %.2f s, reconcile every %.0f s)", self.root,
                     self.options.settle, self.options.reconcile_interval)
            self.started.set()
            next_reconcile = time.monotonic() + self.options.reconcile_interval
            while not stop.is_set():
                self._drain(0.05 if self.pending else 0.2)
                if time.monotonic() >= next_reconcile:
                    self.events.put(("reconcile", ""))
                    next_reconcile = time.monotonic() + self.options.reconcile_interval
                    continue
                self._process_ready(stop)
        finally:
            observer.stop()
            observer.join()
            logging.getLogger("watchdog").removeHandler(alarm)
            self._changed.set()
            if rebuilder.is_alive():
                rebuilder.join()
            self._conn.close()
            log.info("%s", self.summary.line())
        return self.summary

    def _drain(self, timeout: float) -> None:
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            self._note(*item)
            try:
                item = self.events.get_nowait()
            except queue.Empty:
                return

    def _note(self, kind: str, rel: str) -> None:
        if kind == "reconcile":
            self._reconcile()
            return
        if kind == "dir":
            for path in self._paths_under(rel):
                self._track(path, "path")
            return
        if rel == USERS_CSV:
            self.users_csv_changed = True
            return
        if classify(rel).kind == "ignored":
            return
        self._track(rel, kind)

    def _track(self, rel: str, kind: str) -> None:
        now = time.monotonic()
        stat = _stat(self.root / rel)
        entry = self.pending.get(rel)
        if entry is None:
            entry = self.pending[rel] = _Pending(stat, now)
        elif stat != entry.stat:
            entry.stat, entry.since = stat, now
        if kind == "writing":
            entry.writing, entry.closed = True, False
        elif kind == "closed":
            entry.writing, entry.closed = False, True

    def _ready(self) -> list[str]:
        now = time.monotonic()
        opts = self.options
        ready = []
        for rel, entry in self.pending.items():
            stat = _stat(self.root / rel)
            if stat != entry.stat:
                entry.stat, entry.since = stat, now
                continue
            quiet = now - entry.since
            empty = stat is not None and stat[0] == 0  # created, first bytes yet to come
            if ((entry.closed and quiet >= opts.settle_after_close)
                    or (not entry.writing and not empty and quiet >= opts.settle)
                    or quiet >= opts.write_timeout):
                ready.append(rel)
        return ready

    def _process_ready(self, stop: threading.Event) -> None:
        ready = self._ready()
        if not ready and not self.users_csv_changed:
            return
        backlog = len(ready)
        done = 0
        for start in range(0, max(len(ready), 1), self.options.max_batch):
            if stop.is_set():
                return  # the rest stays pending; the next start reconciles it anyway
            batch = ready[start:start + self.options.max_batch]
            for rel in batch:
                del self.pending[rel]
            self._enroll(batch)
            done += len(batch)
            if backlog > self.options.max_batch:
                log.info("watcher: %d/%d photos processed", done, backlog)

    def _enroll(self, batch: list[str]) -> None:
        self.users_csv_changed = False
        self.summary.batches += 1
        try:
            result = enroll_folder(self.settings, self._conn, self.get_pipeline, only=batch,
                                   progress=False, build=False, index=self._duplicate_index())
        except Exception as exc:  # one bad photo must not cost the batch, nor the daemon
            log.error("watcher: batch of %d failed (%s: %s); retrying one by one",
                      len(batch), type(exc).__name__, exc)
            for rel in batch if len(batch) > 1 else []:
                self._enroll_one(rel)
            if len(batch) == 1:
                self._record_failure(batch[0], exc)
        else:
            self.summary.add(result)
        self._changed.set()

    def _duplicate_index(self) -> FaceIndex:
        """One index reader for every batch's duplicate check: it follows new generations
        and faces by itself, and loading a generation is the expensive part."""
        if self._dup_index is None:
            self._dup_index = duplicate_index(self.settings, self.get_pipeline())
        return self._dup_index

    def _enroll_one(self, rel: str) -> None:
        try:
            self.summary.add(enroll_folder(self.settings, self._conn, self.get_pipeline,
                                           only=[rel], progress=False, build=False,
                                           index=self._duplicate_index()))
        except Exception as exc:
            self._record_failure(rel, exc)

    def _record_failure(self, rel: str, exc: Exception) -> None:
        """Remember the failure with its reason, so the photo is not retried until it
        changes (a transient error is retried by the next reconcile if this fails too)."""
        self.summary.errors += 1
        reason = f"internal_error: {type(exc).__name__}: {exc}"
        log.error("watcher: %s failed: %s", rel, reason)
        stat = _stat(self.root / rel)
        try:
            with store.transaction(self._conn):
                store.record_photo(self._conn, path_key(rel), status="rejected",
                                   user_id=classify(rel).user_id, sha256=None,
                                   size=stat[0] if stat else None,
                                   mtime_ns=stat[1] if stat else None, reason=reason)
            self.summary.rejected += 1
        except Exception as again:
            log.error("watcher: cannot record the failure of %r either (%s)", rel, again)

    # --- reconciliation ------------------------------------------------------------------

    def _reconcile(self) -> None:
        started = time.perf_counter()
        self.summary.reconciles += 1
        paths = reconcile_paths(self.settings, self._conn)
        for rel in paths:
            if rel not in self.pending:
                self._track(rel, "path")
        csv_stat = _stat(self.root / USERS_CSV)
        if csv_stat != self._users_csv_stat:
            self._users_csv_stat = csv_stat
            self.users_csv_changed = csv_stat is not None
        log.log(logging.INFO if paths else logging.DEBUG,
                "reconcile: %d photos differ from the ledger (%.2f s)", len(paths),
                time.perf_counter() - started)

    def _paths_under(self, rel_dir: str) -> list[str]:
        """Files now in a folder, and ledger entries under it (moved or deleted folders)."""
        prefix = rel_dir.rstrip("/") + "/"
        on_disk = []
        for folder, dirs, files in os.walk(self.root / rel_dir):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            base = Path(folder).relative_to(self.root).as_posix()
            on_disk.extend(f"{base}/{name}" for name in files)
        rows = self._conn.execute(
            "SELECT path FROM photos WHERE status != 'removed' AND substr(path, 1, ?) = ?",
            (len(prefix), prefix)).fetchall()
        return sorted(set(on_disk) | {r[0] for r in rows})  # escaped keys: see path_key

    # --- index rebuilds ------------------------------------------------------------------

    def _rebuild_loop(self, stop: threading.Event) -> None:
        conn = store.connect(self.settings.db_path)
        first_pending: float | None = None
        try:
            while not stop.is_set():
                self._changed.wait(min(5.0, self.options.rebuild_interval))
                self._changed.clear()
                if stop.is_set():
                    return
                try:
                    backlog = index_backlog(conn, self.settings.index_dir, self.settings.model)
                    if not backlog:
                        first_pending = None
                        continue
                    first_pending = first_pending or time.monotonic()
                    waited = time.monotonic() - first_pending
                    if backlog >= self.options.rebuild_delta or waited >= self.options.rebuild_interval:
                        self._rebuild(conn, backlog)
                        first_pending = None
                except Exception as exc:
                    log.error("index rebuild failed (%s: %s); searches stay exact over the "
                              "delta, retrying later", type(exc).__name__, exc)
        finally:
            conn.close()

    def _rebuild(self, conn, backlog: int) -> None:
        model = self.settings.model
        manifest = read_manifest(self.settings.index_dir)
        dim = stored_dim(conn, model) or (manifest.dim if manifest else None)
        if dim is None:
            return
        built = build_index(conn, self.settings.index_dir, model, dim, **build_options(self.settings))
        self.summary.rebuilds += 1
        log.info("index rebuilt for %d changed faces: generation %d, %d faces, %.1f s",
                 backlog, built.generation, built.count, built.build_seconds)


def warm_up(pipeline: Pipeline) -> None:
    """Trace the models' graphs now, so the first photo is not seconds late."""
    pipeline.warm_up()


def reconcile_paths(settings: Settings, conn) -> list[str]:
    """Paths whose file and ledger entry disagree: new or changed files (by size and
    mtime, as enroll_folder compares them) and ledger entries whose file is gone."""
    files = scan_folder(Path(settings.photos_dir))
    ledger = store.ledger(conn)
    changed = []
    for file in files:
        if classify(file.rel).kind == "ignored":
            continue
        entry = ledger.get(file.rel)
        if (entry is None or entry["status"] == "removed" or entry["size"] != file.size
                or entry["mtime_ns"] != file.mtime_ns):
            changed.append(_raw(Path(settings.photos_dir), file))
    present = {f.rel for f in files}
    gone = [rel for rel, entry in ledger.items()
            if entry["status"] != "removed" and rel not in present]
    return changed + gone


def _raw(root: Path, file: PhotoFile) -> str:
    """A scanned file's real relative path (its ledger key may be escaped: path_key)."""
    return file.path.relative_to(root).as_posix()


def run(settings: Settings, get_pipeline: Callable[[], Pipeline],
        options: WatchOptions | None = None, stop: threading.Event | None = None
        ) -> WatchSummary:
    """Watch until `stop` is set (or forever)."""
    return Watcher(settings, get_pipeline, options).run(stop or threading.Event())

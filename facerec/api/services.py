"""What one API process holds: settings, the models, the index reader, the key checker
and the background index builder, created once per process (per gunicorn worker after
fork: never --preload) and reached through `services()` inside a request."""

from __future__ import annotations

import logging
import sqlite3
import threading

from flask import current_app, g

from facerec import store
from facerec.api.auth import KeyChecker
from facerec.config import Settings
from facerec.enroll import stored_dim
from facerec.errors import FaceRecError
from facerec.index import (
    FaceIndex,
    build_index,
    build_options,
    index_backlog,
    purge_generations_before,
)
from facerec.pipeline import Pipeline, load_pipeline

log = logging.getLogger(__name__)

EXTENSION = "facerec"


class Rebuilder:
    """Index builds in a background thread, one at a time in this process: a request
    made while a build runs queues exactly one more. Requests go on being served from the
    current generation meanwhile; readers switch on their next search."""

    def __init__(self, settings: Settings, model: str, dim_hint: int | None):
        self.settings = settings
        self.model = model
        self.dim_hint = dim_hint
        self._lock = threading.Lock()
        self._pending = False
        self._purge = False
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.builds = 0

    def request(self, *, purge: bool = False) -> None:
        """Build soon; with purge, also delete older generations' files afterwards."""
        with self._lock:
            self._pending = True
            self._purge |= purge
            self._idle.clear()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="index-rebuild",
                                                daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """True once no build is running or queued (for tests and shutdown)."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._thread = None
                    self._idle.set()
                    return
                purge, self._pending, self._purge = self._purge, False, False
            self._build(purge)

    def _build(self, purge: bool) -> None:
        conn = store.connect(self.settings.db_path)
        try:
            dim = stored_dim(conn, self.model) or self.dim_hint
            if dim is None:
                log.error("index build skipped: no stored faces and no model loaded to tell "
                          "the dimension")
                return
            manifest = build_index(conn, self.settings.index_dir, self.model, dim,
                                   **build_options(self.settings))
            self.builds += 1
            if purge:
                deleted = purge_generations_before(self.settings.index_dir, manifest.generation)
                log.info("index generation %d built after a deletion; %d older generation "
                         "files purged", manifest.generation, deleted)
        except Exception:
            log.exception("background index build failed; searches go on over the current "
                          "generation plus the exact delta")
        finally:
            conn.close()


class Services:
    def __init__(self, settings: Settings, pipeline: Pipeline | None = None):
        if pipeline is not None and pipeline.model.name != settings.model:
            raise ValueError(f"the pipeline's model is {pipeline.model.name!r} but the settings "
                             f"say {settings.model!r}")
        self.settings = settings
        self._pipeline = pipeline
        self._index: FaceIndex | None = None
        self._lock = threading.Lock()
        self.load_error: str | None = None
        self.auth = KeyChecker.from_settings(settings)
        self.rebuilder = Rebuilder(settings, settings.model,
                                   pipeline.model.dim if pipeline else None)

    # --- models and index, created once per process -----------------------------------

    @property
    def models_loaded(self) -> bool:
        return self._pipeline is not None

    def pipeline(self) -> Pipeline:
        """The models; loaded on first use when the app was not given them. A load
        failure (missing weights) is a 503 with the command that fixes it."""
        if self._pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    try:
                        self._pipeline = load_pipeline(self.settings)
                    except FaceRecError as exc:
                        self.load_error = exc.message
                        raise
                    self.load_error = None
                    self.rebuilder.dim_hint = self._pipeline.model.dim
        return self._pipeline

    def index(self) -> FaceIndex:
        if self._index is None:
            info = self.pipeline().model
            with self._lock:
                if self._index is None:
                    s = self.settings
                    self._index = FaceIndex(s.db_path, s.index_dir, info.name, info.dim,
                                            exact_search_limit=s.exact_search_limit,
                                            search_k=s.annoy_search_k, candidates=s.candidates,
                                            hnsw_ef=s.hnsw_ef,
                                            on_bad_generation=self.rebuilder.request)
        return self._index

    @property
    def index_if_ready(self) -> FaceIndex | None:
        return self._index

    @property
    def threshold(self) -> float:
        if self.settings.threshold is not None:
            return self.settings.threshold
        return self.pipeline().model.default_threshold

    def warm_up(self) -> None:
        """Load the models and trace their graphs now, so the first request is not slow."""
        self.pipeline().warm_up()
        self.index().refresh()

    def maybe_rebuild(self, conn: sqlite3.Connection) -> None:
        """Start a background build once many faces are not yet in the index."""
        pending = index_backlog(conn, self.settings.index_dir, self.settings.model)
        if pending >= self.settings.delta_rebuild_limit:
            log.info("%d faces not yet in the index: rebuilding in the background", pending)
            self.rebuilder.request()


def services() -> Services:
    return current_app.extensions[EXTENSION]


def db() -> sqlite3.Connection:
    """This request's database connection (closed when the request ends)."""
    if "db" not in g:
        g.db = store.connect(services().settings.db_path)
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()

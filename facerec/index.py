"""The vector index: immutable generations on disk plus an exact delta, read by many
processes at once (DESIGN.md §4).

On disk, in the index folder:
  manifest.json           the current generation: model, dim, count, max face_id, files
  gen-<N>.ids.npy         face ids, row i ↔ Annoy item i
  gen-<N>.vectors.npy     the L2-normalised vectors (exact rerank and exact search)
  gen-<N>.ann             Annoy (angular) over the same rows, or
  gen-<N>.hnsw            hnswlib (inner product) over them: the manifest's "engine"
                          says which (BENCHMARKS.md, ANN study: which one at which size)
A build writes a new generation under temporary names, fsyncs, renames, and only then
replaces manifest.json; files a reader may have mapped are never overwritten, and old
generations are removed only after newer ones exist (Linux keeps unlinked mmaps valid).

A reader (`FaceIndex`) searches the current generation, plus the faces enrolled after it
was built (read incrementally from the database), and keeps only candidates that the
database says are still active: a new face is searchable at once, and a deleted one
is gone at once, without waiting for a rebuild.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from facerec import store
from facerec.errors import IndexMismatch

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
KEEP_GENERATIONS = 3
REBUILD_COMMAND = "python convert.py --rebuild"


@dataclass(frozen=True)
class Manifest:
    generation: int
    model: str
    dim: int
    metric: str
    count: int
    max_face_id: int
    n_trees: int
    built_at: str
    build_seconds: float
    engine: str = "annoy"  # manifests written before hnswlib was added are Annoy
    hnsw_m: int = 0
    hnsw_ef_construction: int = 0
    # kind ("ids.npy", "vectors.npy", "ann"/"hnsw") → {"bytes", "sha256"} of each file, so a
    # truncated or corrupt file is refused before Annoy maps it (Annoy segfaults on one).
    # Empty in manifests written before it existed: nothing to check.
    checksums: dict = field(default_factory=dict)

    def path(self, index_dir: Path, kind: str) -> Path:
        return Path(index_dir) / f"gen-{self.generation:06d}.{kind}"


@dataclass(frozen=True)
class Candidate:
    face_id: int
    user_id: str
    similarity: float


def _checksum(path: Path) -> dict:
    with open(path, "rb") as f:
        return {"bytes": os.fstat(f.fileno()).st_size,
                "sha256": hashlib.file_digest(f, "sha256").hexdigest()}


def verify_generation(index_dir: Path, manifest: Manifest, *, full: bool = True) -> None:
    """Raise ValueError naming the file when one of the generation's files is missing,
    truncated or (with full, by sha256) corrupt."""
    for kind, expected in manifest.checksums.items():
        path = manifest.path(index_dir, kind)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ValueError(f"{path.name} is missing") from None
        if size != expected["bytes"]:
            raise ValueError(f"{path.name} has {size} bytes, the manifest says "
                             f"{expected['bytes']} (truncated or overwritten)")
        if full and _checksum(path)["sha256"] != expected["sha256"]:
            raise ValueError(f"{path.name} does not match its sha256 in the manifest (corrupt)")


def index_backlog(conn: sqlite3.Connection, index_dir: Path, model: str, *,
                  verify_files: bool = False) -> int:
    """How many faces the current generation does not reflect: active faces added after
    it was built, plus faces it holds that were deactivated or erased since. Every active
    face counts when there is no usable generation of `model` (none, another model's,
    damaged files; `verify_files` also checks their sha256)."""
    manifest = read_manifest(index_dir)
    if (manifest is None or manifest.model != model
            or not generation_ok(index_dir, manifest, full=verify_files)):
        return conn.execute("SELECT count(*) FROM faces WHERE active = 1 AND model = ?",
                            (model,)).fetchone()[0]
    added, still_indexed = conn.execute(
        "SELECT count(*) FILTER (WHERE face_id > :max), count(*) FILTER (WHERE face_id <= :max) "
        "FROM faces WHERE active = 1 AND model = :model",
        {"max": manifest.max_face_id, "model": model}).fetchone()
    # Face ids only grow and faces are never reactivated, so every active face up to
    # max_face_id is in the generation, and the rest of its count has left since.
    return added + (manifest.count - still_indexed)


def generation_ok(index_dir: Path, manifest: Manifest | None, *, full: bool = False) -> bool:
    """False (and a log line) when the current generation cannot be used: callers that
    build then rebuild it from the database."""
    if manifest is None:
        return False
    try:
        verify_generation(index_dir, manifest, full=full)
    except ValueError as exc:
        log.error("index generation %d refused: %s; it will be rebuilt from the database",
                  manifest.generation, exc)
        return False
    return True


def read_manifest(index_dir: Path) -> Manifest | None:
    path = Path(index_dir) / MANIFEST
    try:
        data = json.loads(path.read_text())
        return Manifest(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        log.error("index manifest %s is unreadable (%s); it will be rebuilt", path, exc)
        return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, write) -> None:
    """write(tmp_path) then fsync and rename onto `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Only one process builds at a time; the others wait for it."""
    Path(index_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(index_dir) / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


ENGINES = ("auto", "annoy", "hnsw")
# "auto": Annoy up to these many faces (by embedding dimension), hnswlib above. Measured
# on clustered face-like vectors (benchmarks/bench_ann.py, BENCHMARKS.md): up to them Annoy
# (100 trees, search_k 20,000) reaches recall@1 ≥ 0.99 at p50 ≤ 5 ms, builds 3-4× faster
# than hnswlib and its file is shared between processes by mmap; beyond them its search_k
# would have to grow past 5 ms, while hnswlib stays near 1 ms.
AUTO_ANNOY_MAX = {128: 1_000_000, 512: 100_000}


def resolve_engine(engine: str, count: int, dim: int = 128) -> str:
    if engine not in ENGINES:
        raise ValueError(f"unknown index engine {engine!r}; choose one of {ENGINES}")
    if engine == "auto":
        limit = AUTO_ANNOY_MAX[128] if dim <= 128 else AUTO_ANNOY_MAX[512]
        return "hnsw" if count > limit else "annoy"
    return engine


def _write_annoy(vectors: np.ndarray, dim: int, n_trees: int, path: Path) -> None:
    from annoy import AnnoyIndex

    annoy = AnnoyIndex(dim, "angular")
    for row, vector in enumerate(vectors):
        annoy.add_item(row, vector)
    annoy.build(n_trees if len(vectors) else 1, n_jobs=1)

    def save(tmp: Path) -> None:
        try:
            annoy.save(str(tmp))
        except OSError:
            # Annoy's save returns on a failed write (disk full) without closing its file:
            # the deleted temporary would hold its disk space for the life of the process,
            # a little more at every retry. Close what it left open.
            _close_descriptors_of(tmp)
            raise

    _write_durably(path, save)
    annoy.unload()


def _close_descriptors_of(path: Path) -> None:
    target = os.fspath(path)
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                os.close(int(fd))
                log.warning("closed descriptor %s that Annoy left open on %s", fd, path.name)
        except OSError:
            continue


def _write_hnsw(vectors: np.ndarray, dim: int, m: int, ef_construction: int, path: Path) -> None:
    import hnswlib

    index = hnswlib.Index(space="ip", dim=dim)  # vectors are unit length: ip = 1 − cosine
    index.init_index(max_elements=max(1, len(vectors)), M=m, ef_construction=ef_construction)
    if len(vectors):
        # One thread, like Annoy's build: a background rebuild must not starve the API.
        index.add_items(vectors, np.arange(len(vectors)), num_threads=1)
    _write_durably(path, lambda p: index.save_index(str(p)))


def build_options(settings) -> dict:
    """build_index's keyword arguments from a facerec.config.Settings."""
    return {"n_trees": settings.annoy_trees, "engine": settings.index_engine,
            "hnsw_m": settings.hnsw_m, "hnsw_ef_construction": settings.hnsw_ef_construction}


def build_index(conn: sqlite3.Connection, index_dir: Path, model: str, dim: int,
                n_trees: int = 100, *, engine: str = "auto", hnsw_m: int = 16,
                hnsw_ef_construction: int = 200) -> Manifest:
    """Build a new generation from the active faces of `model` and make it current.
    `engine` ("auto", "annoy" or "hnsw") picks the approximate index (resolve_engine)."""
    index_dir = Path(index_dir)
    with build_lock(index_dir):
        started = time.perf_counter()
        ids, vectors = store.active_embeddings(conn, model)
        if len(ids) == 0:
            vectors = np.zeros((0, dim), np.float32)
        if vectors.shape[1] != dim:
            raise IndexMismatch(f"stored embeddings have dimension {vectors.shape[1]}, "
                                f"model {model} makes {dim}: run `{REBUILD_COMMAND}`")
        previous = read_manifest(index_dir)
        _remove_leftovers(index_dir, previous.generation if previous else 0)
        generation = (previous.generation if previous else 0) + 1
        # A crashed build may have left files of this number; never reuse a file name.
        while any(index_dir.glob(f"gen-{generation:06d}.*")):
            generation += 1
        chosen = resolve_engine(engine, len(ids), dim)
        hnsw = chosen == "hnsw"
        manifest = Manifest(
            generation=generation, model=model, dim=dim, metric="angular", count=len(ids),
            max_face_id=int(ids.max()) if len(ids) else 0, n_trees=0 if hnsw else n_trees,
            built_at=store.now(), build_seconds=0.0, engine=chosen,
            hnsw_m=hnsw_m if hnsw else 0, hnsw_ef_construction=hnsw_ef_construction if hnsw else 0,
        )
        kinds = ("ids.npy", "vectors.npy", "hnsw" if hnsw else "ann")
        try:
            _write_durably(manifest.path(index_dir, "ids.npy"), lambda p: _save_npy(p, ids))
            _write_durably(manifest.path(index_dir, "vectors.npy"), lambda p: _save_npy(p, vectors))
            if hnsw:
                _write_hnsw(vectors, dim, hnsw_m, hnsw_ef_construction, manifest.path(index_dir, "hnsw"))
            else:
                _write_annoy(vectors, dim, n_trees, manifest.path(index_dir, "ann"))
            manifest = Manifest(**{**asdict(manifest),
                                   "build_seconds": round(time.perf_counter() - started, 3),
                                   "checksums": {k: _checksum(manifest.path(index_dir, k))
                                                 for k in kinds}})
            _write_durably(index_dir / MANIFEST,
                           lambda p: p.write_text(json.dumps(asdict(manifest), indent=2)))
        except BaseException as exc:
            # Disk full, killed thread, ...: the current generation stays; this one's
            # files go, or every retry on a full disk would leave more behind.
            for kind in kinds:
                manifest.path(index_dir, kind).unlink(missing_ok=True)
            log.error("index build of generation %d failed (%s: %s); generation %s stays "
                      "current", generation, type(exc).__name__, exc,
                      previous.generation if previous else "(none)")
            raise
        _fsync_dir(index_dir)
        _remove_old_generations(index_dir, generation)
        log.info("index generation %d built (%s): %d faces in %.2f s", generation, chosen,
                 len(ids), manifest.build_seconds)
        return manifest


def _remove_leftovers(index_dir: Path, current: int) -> None:
    """Files of a builder that was killed (kill -9, power loss) before its manifest:
    temporaries, and generations newer than the current one. With the build lock held,
    no one else is writing any, and no manifest names them."""
    leftovers = list(index_dir.glob(".*.tmp-*"))
    for path in index_dir.glob("gen-*.*"):
        try:
            if int(path.name.split(".")[0].split("-")[1]) > current:
                leftovers.append(path)
        except (IndexError, ValueError):
            continue
    for path in leftovers:
        path.unlink(missing_ok=True)
        log.warning("removed %s, left by an interrupted index build", path.name)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def _remove_old_generations(index_dir: Path, current: int) -> None:
    for path in index_dir.glob("gen-*.*"):
        try:
            number = int(path.name.split(".")[0].split("-")[1])
        except (IndexError, ValueError):
            continue
        if number <= current - KEEP_GENERATIONS:
            path.unlink(missing_ok=True)


class _Generation:
    """One loaded generation: ids, vectors (memory-mapped) and the Annoy or hnswlib index."""

    def __init__(self, manifest: Manifest, index_dir: Path, hnsw_ef: int = 200):
        verify_generation(index_dir, manifest)  # before anything maps a damaged file
        self.manifest = manifest
        self.ids = np.load(manifest.path(index_dir, "ids.npy"))
        self.vectors = np.load(manifest.path(index_dir, "vectors.npy"), mmap_mode="r")
        if len(self.ids) != manifest.count or self.vectors.shape != (manifest.count, manifest.dim):
            raise ValueError(f"generation {manifest.generation} files do not match its manifest")
        self.annoy = self.hnsw = None
        if manifest.engine == "hnsw":
            import hnswlib

            self.hnsw = hnswlib.Index(space="ip", dim=manifest.dim)
            # Read into this process's memory (no mmap): each process holds its own copy.
            self.hnsw.load_index(str(manifest.path(index_dir, "hnsw")), max_elements=max(1, manifest.count))
            if self.hnsw.get_current_count() != manifest.count:
                raise ValueError(f"generation {manifest.generation} hnsw file does not match its manifest")
            self.hnsw.set_ef(hnsw_ef)  # searches use max(ef, k)
            self.hnsw.set_num_threads(1)
        elif manifest.engine == "annoy":
            from annoy import AnnoyIndex

            self.annoy = AnnoyIndex(manifest.dim, "angular")
            if manifest.count:
                self.annoy.load(str(manifest.path(index_dir, "ann")))  # mmap: shared across processes
        else:
            raise ValueError(f"generation {manifest.generation} has unknown engine {manifest.engine!r}")

    def approximate_rows(self, query: np.ndarray, n: int, search_k: int) -> np.ndarray:
        """Rows of (approximately) the n nearest vectors, to be reranked exactly."""
        if self.hnsw is not None:
            labels, _ = self.hnsw.knn_query(query, k=min(n, self.manifest.count))
            return labels[0].astype(np.int64)
        return np.asarray(self.annoy.get_nns_by_vector(query, n, search_k=search_k), dtype=np.int64)


class FaceIndex:
    """Search over the current generation plus the not-yet-indexed faces. Thread-safe;
    one per process. Every search first looks (cheaply) for a newer generation and for
    faces enrolled since the last look."""

    def __init__(self, db_path: Path, index_dir: Path | None, model: str, dim: int, *,
                 exact_search_limit: int = 20_000, search_k: int = 20_000,
                 candidates: int = 100, hnsw_ef: int = 200,
                 on_bad_generation: Callable[[], None] | None = None):
        self.db_path = Path(db_path)
        # Called when the manifest or the generation it names cannot be used (the API
        # then rebuilds from the database in the background).
        self.on_bad_generation = on_bad_generation
        # None: no generations at all, every active face is searched exactly.
        self.index_dir = None if index_dir is None else Path(index_dir)
        self.model, self.dim = model, dim
        self.exact_search_limit = exact_search_limit
        self.search_k = search_k
        self.candidates = candidates
        self.hnsw_ef = hnsw_ef
        self._local = threading.local()
        self._lock = threading.Lock()  # guards the generation/delta swap (held briefly)
        self._load_lock = threading.Lock()  # one thread loads a new generation at a time
        self._loaded_once = False
        self._generation: _Generation | None = None
        self._manifest_stat: tuple | None = None
        self._delta_ids = np.zeros(0, np.int64)
        self._delta_vectors = np.zeros((0, dim), np.float32)

    # --- state ---------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = store.connect(self.db_path)
        return conn

    @property
    def generation(self) -> int:
        return self._generation.manifest.generation if self._generation else 0

    @property
    def size(self) -> int:
        indexed = self._generation.manifest.count if self._generation else 0
        return indexed + len(self._delta_ids)

    def refresh(self) -> None:
        self._refresh_generation()
        with self._lock:
            self._refresh_delta()

    def _refresh_generation(self) -> None:
        """Load a newer generation if the manifest changed. Loading (file checks, mapping)
        happens outside the search lock: other threads keep searching the old generation
        meanwhile, and only the first load of the process makes them wait."""
        if self.index_dir is None:
            return
        stat = self._manifest_state()
        if stat == self._manifest_stat and self._loaded_once:
            return
        if not self._load_lock.acquire(blocking=not self._loaded_once):
            return  # another thread is loading it; search what is loaded until then
        try:
            stat = self._manifest_state()
            if stat == self._manifest_stat and self._loaded_once:
                return
            generation = self._load_generation(stat)
            with self._lock:
                self._manifest_stat = stat
                self._loaded_once = True
                if generation is not self._generation:
                    self._swap(generation)
        finally:
            self._load_lock.release()

    def _manifest_state(self) -> tuple | None:
        try:
            st = (self.index_dir / MANIFEST).stat()
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return None

    def _load_generation(self, stat: tuple | None) -> _Generation | None:
        manifest = read_manifest(self.index_dir)
        if manifest is not None and (manifest.model != self.model or manifest.dim != self.dim):
            raise IndexMismatch(
                f"the index in {self.index_dir} was built with model {manifest.model} "
                f"(dim {manifest.dim}) but this service uses {self.model} (dim {self.dim}): "
                f"run `{REBUILD_COMMAND}`",
                index_model=manifest.model, service_model=self.model)
        if manifest is None:
            if stat is not None:  # a manifest that cannot be read (logged by read_manifest)
                self._report_bad_generation()
            return None
        try:
            return _Generation(manifest, self.index_dir, self.hnsw_ef)
        except (OSError, ValueError, RuntimeError) as exc:  # hnswlib raises RuntimeError
            # Keep serving from the old generation plus the exact delta.
            log.error("cannot load index generation %d (%s); searching exactly until "
                      "the next build", manifest.generation, exc)
            self._report_bad_generation()
            return self._generation

    def _swap(self, generation: _Generation | None) -> None:
        """Make `generation` current (under self._lock) and keep only the delta it lacks."""
        old_floor = self._generation.manifest.max_face_id if self._generation else 0
        new_floor = generation.manifest.max_face_id if generation else 0
        self._generation = generation
        keep = self._delta_ids > new_floor
        if new_floor < old_floor:  # the index went back: reload the delta from scratch
            keep[:] = False
        self._delta_ids = self._delta_ids[keep]
        self._delta_vectors = self._delta_vectors[keep]

    def _report_bad_generation(self) -> None:
        if self.on_bad_generation is not None:
            try:
                self.on_bad_generation()
            except Exception:
                log.exception("could not request an index rebuild")

    def _refresh_delta(self) -> None:
        floor = self._generation.manifest.max_face_id if self._generation else 0
        after = max(floor, int(self._delta_ids.max()) if len(self._delta_ids) else 0)
        ids, vectors = store.active_embeddings(self._conn(), self.model, after)
        if len(ids):
            if vectors.shape[1] != self.dim:
                raise IndexMismatch(f"database holds {vectors.shape[1]}-d embeddings of model "
                                    f"{self.model}, expected {self.dim}: run `{REBUILD_COMMAND}`")
            self._delta_ids = np.concatenate([self._delta_ids, ids])
            self._delta_vectors = np.concatenate([self._delta_vectors, vectors])

    # --- search --------------------------------------------------------------------

    def search(self, vectors: np.ndarray, *, exclude_user: str | None = None
               ) -> list[list[Candidate]]:
        """For each query vector, the active faces nearest to it (best first, at most
        `candidates`), with exact cosine similarity."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        self.refresh()
        with self._lock:
            generation = self._generation
            delta_ids, delta_vectors = self._delta_ids, self._delta_vectors
        found = []
        for query in vectors:
            ids, sims = self._nearest(generation, delta_ids, delta_vectors, query)
            found.append((ids, sims))
        owners = store.active_owners(self._conn(), sorted({int(i) for ids, _ in found for i in ids}))
        results = []
        for ids, sims in found:
            hits = [Candidate(int(i), owners[int(i)], float(s)) for i, s in zip(ids, sims)
                    if int(i) in owners and owners[int(i)] != exclude_user]
            results.append(hits)
        return results

    def _nearest(self, generation: _Generation | None, delta_ids: np.ndarray,
                 delta_vectors: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts_ids, parts_sims = [], []
        if generation is not None and generation.manifest.count:
            if generation.manifest.count <= self.exact_search_limit:
                rows = None  # exact: every row
                sims = np.asarray(generation.vectors) @ query
            else:
                rows = generation.approximate_rows(query, self.candidates, self.search_k)
                sims = np.asarray(generation.vectors[rows]) @ query
            ids = generation.ids if rows is None else generation.ids[rows]
            parts_ids.append(ids)
            parts_sims.append(sims)
        if len(delta_ids):
            parts_ids.append(delta_ids)
            parts_sims.append(delta_vectors @ query)
        if not parts_ids:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        ids, sims = np.concatenate(parts_ids), np.concatenate(parts_sims)
        # Over-fetch: some candidates may turn out inactive when checked against the db.
        take = min(len(ids), self.candidates * 2)
        top = np.argpartition(-sims, take - 1)[:take] if take < len(ids) else np.arange(len(ids))
        order = top[np.argsort(-sims[top], kind="stable")]
        return ids[order], sims[order]


def purge_generations_before(index_dir: Path, generation: int) -> int:
    """Delete the files of every generation older than `generation`: after an erasure,
    the erased vectors must leave the disk, not wait for KEEP_GENERATIONS more builds.
    Readers that still have an old generation mapped keep working (Linux keeps unlinked
    files alive while open); one caught loading it keeps its previous generation and
    switches on its next search. Returns the number of files deleted."""
    deleted = 0
    for path in Path(index_dir).glob("gen-*.*"):
        try:
            number = int(path.name.split(".")[0].split("-")[1])
        except (IndexError, ValueError):
            continue
        if number < generation:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted

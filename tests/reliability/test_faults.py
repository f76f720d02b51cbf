"""Fault injection with real processes, files and signals: kill -9 mid index build
(convert.py and the watcher), damaged index files (in a child process, so a segfault
would show as one), a full disk (a real tmpfs), the database held by another writer,
and 50 concurrent clients of gunicorn while the index is rebuilt. (A corrupt manifest
or vectors file read in-process: tests/test_index.py
test_corrupt_manifest_or_generation_falls_back_to_exact_search.)"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from facerec import store
from facerec.api import create_app
from facerec.config import PROJECT_ROOT
from facerec.enroll import enroll_folder
from facerec.index import MANIFEST, FaceIndex, build_index, read_manifest
from tests.api_helpers import b64, png_bytes, read_keys
from tests.fakes import FAKE_MODEL, fake_pipeline, save_photo
from tests.reliability.servers import call, gunicorn, settings_env, werkzeug_server
from tests.watch_helpers import start_fake_watcher, wait_for

pytestmark = pytest.mark.reliability

DIM = FAKE_MODEL.dim


def unit(rng, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add_faces(conn, vectors: np.ndarray, prefix: str = "bulk") -> list[int]:
    """Faces straight into the store (no photos): a big index without enrolling photos."""
    ids = []
    with store.transaction(conn):
        store.set_meta(conn, "embedding_model", "fake")
        for i, v in enumerate(vectors):
            user = f"{prefix}{i}"
            store.ensure_user(conn, user)
            ids.append(store.insert_face(conn, store.NewFace(user, None, "sha", (0, 0, 1, 1), 0.9,
                                                             {}, "fake", v)))
    return ids


def generation_files(index_dir: Path, generation: int) -> list[str]:
    return sorted(p.name for p in index_dir.glob(f"gen-{generation:06d}.*"))


def kill_mid_build(process: subprocess.Popen, index_dir: Path, generation: int,
                   timeout: float = 120) -> None:
    """SIGKILL `process` once generation `generation`'s vectors are on disk but its
    manifest is not: it is then inside the Annoy build (seconds at this size)."""
    vectors = index_dir / f"gen-{generation:06d}.vectors.npy"
    deadline = time.monotonic() + timeout
    while not vectors.exists():
        assert process.poll() is None, f"exited with {process.returncode} before the build"
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    manifest = read_manifest(index_dir)
    assert manifest is not None and manifest.generation < generation, "killed too late"


def who(settings, vector) -> int:
    index = FaceIndex(settings.db_path, settings.index_dir, "fake", DIM)
    return index.search(vector)[0][0].face_id


@pytest.fixture
def big_index(settings, conn):
    """20 000 faces (a build of several seconds with 100 trees) and generation 1 of them."""
    vectors = unit(np.random.default_rng(1), 20_000)
    ids = add_faces(conn, vectors)
    build_index(conn, settings.index_dir, "fake", DIM, n_trees=2)
    return ids, vectors


def test_kill_9_of_convert_mid_build_keeps_the_old_index_and_the_next_run_finishes(
        settings, conn, big_index, tmp_path):
    ids, vectors = big_index
    save_photo(settings.photos_dir / "newcomer.png", 7)
    env = settings_env(settings.replace(api_keys_path=tmp_path / "k.json"),
                       FACEREC_ANNOY_TREES="100", FACEREC_BATCH_SIZE="4")
    command = [sys.executable, "-m", "tests.reliability.fake_convert", "--no-progress"]
    log = tmp_path / "convert.log"
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=open(log, "w"),
                               stderr=subprocess.STDOUT)
    kill_mid_build(process, settings.index_dir, 2)
    assert process.returncode == -signal.SIGKILL
    # The old generation still serves, and the newcomer is already searchable (delta).
    assert read_manifest(settings.index_dir).generation == 1
    assert who(settings, vectors[123]) == ids[123]
    newcomer = conn.execute("SELECT face_id FROM faces WHERE user_id = 'newcomer'").fetchone()[0]
    assert any(p.name.startswith(".gen-") for p in settings.index_dir.iterdir()) or \
        generation_files(settings.index_dir, 2), "the kill left nothing behind to clean"

    # The next run has nothing to enroll but finishes the index.
    result = subprocess.run(command, cwd=PROJECT_ROOT, env={**env, "FACEREC_ANNOY_TREES": "5"},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = read_manifest(settings.index_dir)
    assert manifest.generation >= 2 and manifest.count == len(ids) + 1
    assert newcomer in np.load(manifest.path(settings.index_dir, "ids.npy")).tolist()
    assert not [p.name for p in settings.index_dir.iterdir() if ".tmp-" in p.name]
    assert "interrupted index build" in result.stdout + result.stderr
    # The killed build's files are gone: only generation 1 and the new one remain.
    numbers = {int(p.name[4:10]) for p in settings.index_dir.glob("gen-*")}
    assert numbers == {1, manifest.generation}
    assert who(settings, vectors[5]) == ids[5]


def test_kill_9_of_the_watcher_mid_build_keeps_the_old_index_and_a_restart_finishes(
        settings, conn, big_index, tmp_path):
    ids, vectors = big_index
    log = tmp_path / "watcher.log"
    old_trees = os.environ.get("FACEREC_ANNOY_TREES")
    os.environ["FACEREC_ANNOY_TREES"] = "100"  # start_fake_watcher passes the environment on
    try:
        process = start_fake_watcher(settings, log, "--rebuild-delta", "1", "--rebuild-interval", "1")
    finally:
        if old_trees is None:
            os.environ.pop("FACEREC_ANNOY_TREES")
        else:
            os.environ["FACEREC_ANNOY_TREES"] = old_trees
    try:
        save_photo(settings.photos_dir / "late.png", 8)
        kill_mid_build(process, settings.index_dir, 2)
    finally:
        if process.poll() is None:
            process.kill()
    assert read_manifest(settings.index_dir).generation == 1
    assert who(settings, vectors[77]) == ids[77]
    late = wait_for(lambda: conn.execute("SELECT face_id FROM faces WHERE user_id = 'late'"
                                         ).fetchone(), 5, "late.png enrolled before the kill")[0]

    process = start_fake_watcher(settings, log, "--rebuild-delta", "1", "--rebuild-interval", "1")
    try:
        manifest = wait_for(lambda: (m := read_manifest(settings.index_dir)) and m.generation >= 2
                            and m, 120, "the restarted watcher to rebuild")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert process.returncode == 0, log.read_text()[-2000:]
    assert manifest.count == len(ids) + 1
    assert late in np.load(manifest.path(settings.index_dir, "ids.npy")).tolist()
    assert not [p.name for p in settings.index_dir.iterdir() if ".tmp-" in p.name]


# --- damaged index files ---------------------------------------------------------------

SEARCH_CHILD = """
import json, sys
import numpy as np
from facerec.index import FaceIndex
db, index_dir, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
vectors = np.load(sys.argv[4])
index = FaceIndex(db, index_dir, "fake", vectors.shape[1], exact_search_limit=0, search_k=2000)
print(json.dumps([index.search(vectors[r])[0][0].face_id for r in rows]))
"""


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flip":
        b = bytearray(data)
        rng = np.random.default_rng(3)
        for at in rng.integers(len(b) // 10, len(b), 500):
            b[at] ^= 0xFF
        path.write_bytes(bytes(b))
    elif how == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif how == "empty":
        path.write_bytes(b"")


@pytest.mark.parametrize("kind, how", [
    ("ann", "truncate"), ("ann", "flip"), ("ann", "garbage"), ("ann", "empty"),
    ("ids.npy", "truncate"), ("vectors.npy", "flip"), ("hnsw", "truncate"), ("hnsw", "flip"),
    (MANIFEST, "truncate"), (MANIFEST, "garbage"),
])
def test_damaged_index_file_is_refused_never_crashes_and_is_rebuilt(
        kind, how, settings, conn, tmp_path, caplog):
    rng = np.random.default_rng(2)
    vectors = unit(rng, 3000)
    ids = add_faces(conn, vectors)
    engine = "hnsw" if kind == "hnsw" else "annoy"
    manifest = build_index(conn, settings.index_dir, "fake", DIM, n_trees=10, engine=engine)
    target = settings.index_dir / MANIFEST if kind == MANIFEST else manifest.path(settings.index_dir, kind)
    damage(target, how)
    np.save(tmp_path / "q.npy", vectors)
    rows = [0, 1234, 2999]
    result = subprocess.run([sys.executable, "-c", SEARCH_CHILD, str(settings.db_path),
                             str(settings.index_dir), json.dumps(rows), str(tmp_path / "q.npy")],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    # Before the checksums, Annoy segfaulted (-11) or aborted (-6) on these files.
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert json.loads(result.stdout) == [ids[r] for r in rows]  # exact search meanwhile
    assert "refused" in result.stderr or "cannot load index generation" in result.stderr \
        or "unreadable" in result.stderr, result.stderr[-2000:]

    # The API (a reader with a rebuilder) rebuilds from the database at once...
    api = settings.replace(api_keys_path=tmp_path / "keys.json", rate_limit="")
    app = create_app(api, pipeline=fake_pipeline())
    client = app.test_client()
    key = {"X-API-Key": read_keys(api.api_keys_path)["recognize"]}
    r = client.post("/upload_photo", headers=key, json={"image": b64(png_bytes(1))})
    assert r.status_code in (200, 422)
    assert app.extensions["facerec"].rebuilder.wait(60)
    rebuilt = read_manifest(settings.index_dir)
    assert rebuilt.built_at != manifest.built_at and rebuilt.count == len(ids)
    # ...and so does convert.py (enroll_folder) when it finds the generation damaged.
    damage(rebuilt.path(settings.index_dir, "ids.npy"), "truncate")
    with caplog.at_level(logging.ERROR):
        summary = enroll_folder(settings, conn, fake_pipeline, progress=False)
    assert read_manifest(settings.index_dir).built_at != rebuilt.built_at, summary.line()
    assert "rebuilt from the database" in caplog.text


# --- a full disk -------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A real 512 KiB tmpfs (needs root and mount permission; skipped otherwise)."""
    mountpoint = tmp_path / "index"
    mountpoint.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,mode=0750", "tmpfs",
                             str(mountpoint)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_disk_full_while_writing_the_index_keeps_the_old_one(settings, conn, small_disk, caplog):
    settings = settings.replace(index_dir=small_disk)
    rng = np.random.default_rng(4)
    first = unit(rng, 100)
    first_ids = add_faces(conn, first, "a")
    build_index(conn, small_disk, "fake", DIM, n_trees=5)
    more = unit(rng, 1500)  # ids + vectors fit; the Annoy file does not
    more_ids = add_faces(conn, more, "b")
    free_before = os.statvfs(small_disk).f_bavail
    for _ in range(3):  # retries on a full disk must not pile up files
        with caplog.at_level(logging.ERROR), pytest.raises(OSError):
            build_index(conn, small_disk, "fake", DIM, n_trees=50)
        assert read_manifest(small_disk).generation == 1
        assert sorted(p.name for p in small_disk.iterdir() if not p.name.startswith(".build")) == [
            "gen-000001.ann", "gen-000001.ids.npy", "gen-000001.vectors.npy", MANIFEST]
        assert os.statvfs(small_disk).f_bavail == free_before
    assert "index build of generation 2 failed" in caplog.text
    # Searches go on: the old generation plus the exact delta.
    index = FaceIndex(settings.db_path, small_disk, "fake", DIM)
    assert index.search(first[7])[0][0].face_id == first_ids[7]
    assert index.search(more[700])[0][0].face_id == more_ids[700]
    # The API's background build logs the failure and requests keep being answered.
    api = settings.replace(api_keys_path=small_disk.parent / "keys.json", rate_limit="")
    app = create_app(api, pipeline=fake_pipeline())
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        app.extensions["facerec"].rebuilder.request()
        assert app.extensions["facerec"].rebuilder.wait(60)
    assert "background index build failed" in caplog.text and "No space left" in caplog.text
    key = {"X-API-Key": read_keys(api.api_keys_path)["recognize"]}
    r = app.test_client().post("/upload_photo", headers=key, json={"image": b64(png_bytes(1))})
    assert r.status_code == 200


# --- the database held by another writer ------------------------------------------------

def hold_write_lock(db_path: Path, seconds: float, started: threading.Event) -> threading.Thread:
    def run():
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
        started.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_database_locked_for_seconds_writes_wait_reads_go_on(settings, tmp_path):
    api = settings.replace(api_keys_path=tmp_path / "keys.json", rate_limit="")
    app = create_app(api, pipeline=fake_pipeline())
    keys = read_keys(api.api_keys_path)
    manage, recog = keys["manage"], keys["recognize"]
    with werkzeug_server(app) as base:
        assert call(base, "POST", "/users/alice/photos", key=manage,
                    json_body={"image": b64(png_bytes(1))})[0] == 201
        started = threading.Event()
        holder = hold_write_lock(api.db_path, 3.0, started)
        started.wait(10)
        locked_at = time.monotonic()
        results: dict[str, tuple[int, float]] = {}

        def timed(name, *args, **kwargs):
            status = call(base, *args, **kwargs)[0]
            results[name] = (status, time.monotonic() - locked_at)

        writers = [
            threading.Thread(target=timed, args=("enroll", "POST", "/users/bob/photos"),
                             kwargs={"key": manage, "json_body": {"image": b64(png_bytes(2))}}),
            threading.Thread(target=timed, args=("profile", "POST", "/users"),
                             kwargs={"key": manage, "json_body": {"id": "carol", "name": "C"}}),
            threading.Thread(target=timed, args=("erase", "DELETE", "/users/alice"),
                             kwargs={"key": manage}),
        ]
        for w in writers:
            w.start()
        reads = [call(base, "POST", "/upload_photo", key=recog,
                      json_body={"image": b64(png_bytes(1, 3))}) for _ in range(5)]
        read_seconds = time.monotonic() - locked_at
        holder.join()
        for w in writers:
            w.join(60)
    assert [r[0] for r in reads] == [200] * 5 and read_seconds < 3.0, read_seconds  # WAL: no waiting
    assert {name: status for name, (status, _) in results.items()} == {
        "enroll": 201, "profile": 201, "erase": 200}
    assert all(seconds >= 2.5 for _, seconds in results.values()), results  # they waited
    check = store.connect(api.db_path)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [r[0] for r in check.execute("SELECT id FROM users ORDER BY id")] == ["bob", "carol"]
    check.close()


def test_database_locked_past_the_busy_timeout_is_a_clean_503(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 300)
    api = settings.replace(api_keys_path=tmp_path / "keys.json", rate_limit="")
    app = create_app(api, pipeline=fake_pipeline())
    client = app.test_client()
    manage = {"X-API-Key": read_keys(api.api_keys_path)["manage"]}
    assert client.post("/users/alice/photos", headers=manage,
                       json={"image": b64(png_bytes(1))}).status_code == 201
    started = threading.Event()
    holder = hold_write_lock(api.db_path, 2.0, started)
    started.wait(10)
    try:
        responses = [client.post("/users/bob/photos", headers=manage, json={"image": b64(png_bytes(2))}),
                     client.post("/users", headers=manage, json={"id": "carol"}),
                     client.delete("/users/alice", headers=manage)]
    finally:
        holder.join()
    for r in responses:
        assert r.status_code == 503 and r.json["error"] == "database_busy", r.json
        assert r.headers["Retry-After"] == "1" and "nothing was changed" in r.json["message"]
    check = store.connect(api.db_path)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [r[0] for r in check.execute("SELECT id FROM users")] == ["alice"]
    # Nothing half-done: bob's photo file is not left behind without its row, alice's
    # files are all still there with their rows.
    assert not (api.photos_dir / "bob").exists() or not any((api.photos_dir / "bob").iterdir())
    assert len(list((api.photos_dir / "alice").iterdir())) == 1
    check.close()
    # Once the lock is gone the same requests succeed.
    assert client.delete("/users/alice", headers=manage).status_code == 200


# --- 50 concurrent clients while the index is rebuilt ------------------------------------

CLIENTS, REQUESTS = 50, 8


def test_50_concurrent_clients_of_gunicorn_while_the_index_is_rebuilt(settings, tmp_path):
    api = settings.replace(api_keys_path=tmp_path / "keys.json", rate_limit="")
    log = tmp_path / "gunicorn.log"
    with gunicorn(api, log, workers=2) as (base, _):
        keys = read_keys(api.api_keys_path)
        for identity in range(1, 11):
            status, _, _ = call(base, "POST", f"/users/user{identity}/photos", key=keys["manage"],
                                json_body={"image": b64(png_bytes(identity))})
            assert status == 201
        stop = threading.Event()
        builds: list[int] = []
        failures: list[str] = []

        def rebuild_forever():
            conn = store.connect(api.db_path)
            try:
                while not stop.is_set():
                    builds.append(build_index(conn, api.index_dir, "fake", DIM, n_trees=5).generation)
            finally:
                conn.close()

        def client(number: int):
            for i in range(REQUESTS):
                identity = 1 + (number + i) % 10
                try:
                    status, body, _ = call(base, "POST", "/upload_photo", key=keys["recognize"],
                                           json_body={"image": b64(png_bytes(identity, 50 + i))})
                except Exception as exc:  # a dropped connection is a failure too
                    failures.append(f"{number}/{i}: {exc!r}")
                    continue
                if status != 200 or body.get("user_id") != f"user{identity}":
                    failures.append(f"{number}/{i}: {status} {body}")

        builder = threading.Thread(target=rebuild_forever)
        builder.start()
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        seconds = time.monotonic() - started
        stop.set()
        builder.join(60)
    print(f"{CLIENTS * REQUESTS} requests from {CLIENTS} clients in {seconds:.1f} s, "
          f"{len(failures)} failed, {len(builds)} index builds meanwhile")
    assert failures == []
    assert len(builds) >= 3
    text = log.read_text()
    assert " 500 " not in text and "Traceback" not in text
    assert all(key not in text for key in keys.values())

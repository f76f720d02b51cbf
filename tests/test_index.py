"""The index on disk with a real SQLite database: generations, atomic swaps, readers that
keep answering during rebuilds, refusal of another model's index."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from facerec import store
from facerec.errors import IndexMismatch
from facerec.index import MANIFEST, FaceIndex, build_index, read_manifest

DIM = 16


def unit(rng, n, dim=DIM):
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add_faces(conn, vectors, user_prefix="u", model="fake"):
    ids = []
    with store.transaction(conn):
        for i, v in enumerate(vectors):
            user = f"{user_prefix}{i}"
            store.ensure_user(conn, user)
            ids.append(store.insert_face(conn, store.NewFace(user, None, "sha", (0, 0, 1, 1), 0.9,
                                                             {}, model, v)))
    return ids


@pytest.fixture
def index_dir(tmp_path):
    return tmp_path / "index"


def test_build_writes_a_generation_and_manifest(conn, settings, index_dir):
    rng = np.random.default_rng(0)
    add_faces(conn, unit(rng, 50))
    m1 = build_index(conn, index_dir, "fake", DIM, n_trees=5)
    m2 = build_index(conn, index_dir, "fake", DIM, n_trees=5)
    assert (m1.generation, m2.generation, m2.count, m2.dim, m2.model) == (1, 2, 50, DIM, "fake")
    assert read_manifest(index_dir) == m2
    assert sorted(p.name for p in index_dir.glob("gen-000002.*")) == [
        "gen-000002.ann", "gen-000002.ids.npy", "gen-000002.vectors.npy"]
    assert not list(index_dir.glob(".*tmp*"))


def test_old_generations_are_pruned(conn, index_dir):
    add_faces(conn, unit(np.random.default_rng(0), 5))
    for _ in range(6):
        last = build_index(conn, index_dir, "fake", DIM, n_trees=2)
    generations = {p.name.split(".")[0] for p in index_dir.glob("gen-*")}
    assert generations == {f"gen-{g:06d}" for g in range(last.generation - 2, last.generation + 1)}


@pytest.mark.parametrize("engine", ["annoy", "hnsw"])
@pytest.mark.parametrize("exact_limit", [0, 10_000])
def test_search_is_exact_cosine_and_sees_delta_and_removals(conn, settings, index_dir, exact_limit, engine):
    rng = np.random.default_rng(1)
    vectors = unit(rng, 200)
    ids = add_faces(conn, vectors)
    assert build_index(conn, index_dir, "fake", DIM, n_trees=20, engine=engine).engine == engine
    index = FaceIndex(settings.db_path, index_dir, "fake", DIM, exact_search_limit=exact_limit,
                      search_k=-1, candidates=10)
    queries = vectors[:20] + 0.05 * unit(rng, 20)
    for q, expected in zip(queries, ids[:20]):
        hits = index.search(q)[0]
        assert hits[0].face_id == expected
        assert hits[0].similarity == pytest.approx(float(vectors[ids.index(expected)] @ q), abs=1e-5)
        assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
    new = unit(rng, 1)
    [new_id] = add_faces(conn, new, user_prefix="late")
    assert index.search(new[0])[0][0].face_id == new_id  # not indexed yet: found in the delta
    with store.transaction(conn):
        store.deactivate_face(conn, ids[0])
    assert ids[0] not in [h.face_id for h in index.search(vectors[0])[0]]


def test_exclude_user(conn, settings, index_dir):
    vectors = unit(np.random.default_rng(2), 3)
    add_faces(conn, vectors)
    index = FaceIndex(settings.db_path, index_dir, "fake", DIM)
    assert index.search(vectors[0], exclude_user="u0")[0][0].user_id != "u0"


def test_refuses_an_index_of_another_model(conn, settings, index_dir):
    add_faces(conn, unit(np.random.default_rng(3), 3))
    build_index(conn, index_dir, "fake", DIM, n_trees=2)
    index = FaceIndex(settings.db_path, index_dir, "facenet128", 128)
    with pytest.raises(IndexMismatch, match="convert.py --rebuild"):
        index.search(np.ones(128, np.float32))


def test_corrupt_manifest_or_generation_falls_back_to_exact_search(conn, settings, index_dir, caplog):
    vectors = unit(np.random.default_rng(4), 10)
    ids = add_faces(conn, vectors)
    manifest = build_index(conn, index_dir, "fake", DIM, n_trees=2)
    (index_dir / MANIFEST).write_text("{ not json")
    index = FaceIndex(settings.db_path, index_dir, "fake", DIM)
    assert index.search(vectors[3])[0][0].face_id == ids[3]
    assert "unreadable" in caplog.text
    (index_dir / MANIFEST).write_text(json.dumps({**manifest.__dict__}))
    manifest.path(index_dir, "vectors.npy").write_bytes(b"garbage")
    fresh = FaceIndex(settings.db_path, index_dir, "fake", DIM)
    assert fresh.search(vectors[5])[0][0].face_id == ids[5]
    assert "cannot load index generation" in caplog.text


def test_reader_keeps_answering_while_generations_are_rebuilt(conn, settings, index_dir):
    rng = np.random.default_rng(5)
    vectors = unit(rng, 300)
    ids = add_faces(conn, vectors)
    build_index(conn, index_dir, "fake", DIM, n_trees=10)
    reader = FaceIndex(settings.db_path, index_dir, "fake", DIM, exact_search_limit=0,
                       search_k=-1, candidates=20)
    first_generation = (reader.search(vectors[0]), reader.generation)[1]
    stop = threading.Event()
    errors, answers, built = [], [], []

    def rebuild():
        builder = store.connect(settings.db_path)
        while not stop.is_set():
            built.append(build_index(builder, index_dir, "fake", DIM, n_trees=10).generation)

    def query(offset):
        # Query until several generations have been swapped in under us (on a loaded
        # machine a fixed count could finish before the first rebuild does).
        deadline = time.monotonic() + 60
        try:
            i = 0
            while (i < 150 or len(built) < 4) and time.monotonic() < deadline:
                k = (i * 7 + offset) % len(ids)
                answers.append(reader.search(vectors[k])[0][0].face_id == ids[k])
                i += 1
        except Exception as exc:  # any failure is what this test looks for
            errors.append(exc)

    builder = threading.Thread(target=rebuild)
    builder.start()
    queries = [threading.Thread(target=query, args=(n,)) for n in range(3)]
    for t in queries:
        t.start()
    for t in queries:
        t.join()
    stop.set()
    builder.join()
    assert errors == []
    assert len(built) >= 4 and len(answers) >= 450 and all(answers)
    assert reader.generation > first_generation


def test_hnsw_generation_files_and_auto_choice_by_size(conn, settings, index_dir, monkeypatch):
    import facerec.index as index_module

    vectors = unit(np.random.default_rng(6), 50)
    ids = add_faces(conn, vectors)
    monkeypatch.setitem(index_module.AUTO_ANNOY_MAX, 128, 49)  # DIM 16 counts as 128
    manifest = build_index(conn, index_dir, "fake", DIM)  # engine "auto", 50 faces > 49
    assert (manifest.engine, manifest.hnsw_m, manifest.n_trees) == ("hnsw", 16, 0)
    assert sorted(p.name for p in index_dir.glob("gen-000001.*")) == [
        "gen-000001.hnsw", "gen-000001.ids.npy", "gen-000001.vectors.npy"]
    assert read_manifest(index_dir) == manifest
    monkeypatch.setitem(index_module.AUTO_ANNOY_MAX, 128, 50)
    assert build_index(conn, index_dir, "fake", DIM).engine == "annoy"
    limit_512 = index_module.AUTO_ANNOY_MAX[512]  # wider vectors switch at their own limit
    assert index_module.resolve_engine("auto", limit_512, 512) == "annoy"
    assert index_module.resolve_engine("auto", limit_512 + 1, 512) == "hnsw"
    assert index_module.resolve_engine("annoy", 10**9, 512) == "annoy"
    with pytest.raises(ValueError, match="unknown index engine"):
        build_index(conn, index_dir, "fake", DIM, engine="faiss")
    reader = FaceIndex(settings.db_path, index_dir, "fake", DIM, exact_search_limit=0, candidates=5)
    assert reader.search(vectors[7])[0][0].face_id == ids[7]


def test_a_manifest_written_before_engines_existed_loads_as_annoy(conn, settings, index_dir):
    vectors = unit(np.random.default_rng(7), 30)
    ids = add_faces(conn, vectors)
    manifest = build_index(conn, index_dir, "fake", DIM, n_trees=5, engine="annoy")
    new_fields = {"engine", "hnsw_m", "hnsw_ef_construction"}
    old = {k: v for k, v in manifest.__dict__.items() if k not in new_fields}
    (index_dir / MANIFEST).write_text(json.dumps(old))
    assert read_manifest(index_dir).engine == "annoy"
    reader = FaceIndex(settings.db_path, index_dir, "fake", DIM, exact_search_limit=0, search_k=-1)
    assert reader.search(vectors[3])[0][0].face_id == ids[3]
    assert reader.generation == manifest.generation


def test_reader_follows_a_switch_from_annoy_to_hnsw(conn, settings, index_dir):
    rng = np.random.default_rng(8)
    vectors = unit(rng, 100)
    ids = add_faces(conn, vectors)
    build_index(conn, index_dir, "fake", DIM, n_trees=10, engine="annoy")
    reader = FaceIndex(settings.db_path, index_dir, "fake", DIM, exact_search_limit=0, search_k=-1,
                       candidates=10, hnsw_ef=50)
    assert reader.search(vectors[1])[0][0].face_id == ids[1]
    more = unit(rng, 20)
    more_ids = add_faces(conn, more, user_prefix="new")
    build_index(conn, index_dir, "fake", DIM, engine="hnsw")
    assert reader.search(more[4])[0][0].face_id == more_ids[4]
    assert reader.generation == 2 and reader.size == 120
    for k in range(0, 100, 9):
        assert reader.search(vectors[k])[0][0].face_id == ids[k]


def test_index_backlog_counts_what_the_generation_misses(conn, settings, index_dir):
    from facerec.index import index_backlog

    ids = add_faces(conn, unit(np.random.default_rng(7), 6))
    assert index_backlog(conn, index_dir, "fake") == 6  # no generation yet: everything
    build_index(conn, index_dir, "fake", DIM, n_trees=2)
    assert index_backlog(conn, index_dir, "fake") == 0
    add_faces(conn, unit(np.random.default_rng(8), 2), user_prefix="new")
    with store.transaction(conn):
        store.deactivate_face(conn, ids[0])
        conn.execute("DELETE FROM faces WHERE face_id = ?", (ids[1],))  # erased
    assert index_backlog(conn, index_dir, "fake") == 2 + 1 + 1
    assert index_backlog(conn, index_dir, "other-model") == 0
    build_index(conn, index_dir, "fake", DIM, n_trees=2)
    assert index_backlog(conn, index_dir, "fake") == 0


def test_searches_go_on_while_another_thread_loads_a_new_generation(conn, settings, index_dir,
                                                                    monkeypatch):
    """Loading a generation checks and maps its files (seconds at a million faces): the
    other threads must keep answering from the old one meanwhile, not queue behind it."""
    import facerec.index as index_module

    vectors = unit(np.random.default_rng(9), 20)
    ids = add_faces(conn, vectors)
    build_index(conn, index_dir, "fake", DIM, n_trees=2)
    reader = FaceIndex(settings.db_path, index_dir, "fake", DIM)
    assert reader.search(vectors[0])[0][0].face_id == ids[0]
    build_index(conn, index_dir, "fake", DIM, n_trees=2)

    loading, others_answered = threading.Event(), threading.Event()
    real_generation = index_module._Generation

    def slow_generation(*args, **kw):
        loading.set()
        assert others_answered.wait(30), "a search waited for the generation load"
        return real_generation(*args, **kw)

    monkeypatch.setattr(index_module, "_Generation", slow_generation)
    loader = threading.Thread(target=reader.refresh)
    loader.start()
    assert loading.wait(30)
    assert reader.search(vectors[3])[0][0].face_id == ids[3]  # the old generation answers
    assert reader.generation == 1
    others_answered.set()
    loader.join(30)
    assert reader.generation == 2

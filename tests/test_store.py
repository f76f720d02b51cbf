
import numpy as np
import pytest

from facerec import store


def test_init_creates_schema_with_wal_and_is_idempotent(tmp_path):
    db = tmp_path / "x.db"
    conn = store.connect(db)
    first = store.init_schema(conn)
    assert any("created tables" in line for line in first)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.get_meta(conn, "schema_version") == str(store.SCHEMA_VERSION)
    schema = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert store.init_schema(conn) == []
    assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema


def test_init_db_script_twice_changes_nothing(tmp_path):
    import subprocess
    import sys

    db = tmp_path / "y.db"
    cmd = [sys.executable, "init_db.py", "--db", str(db)]
    out1 = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    mtime = db.stat().st_mtime_ns
    out2 = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "created tables" in out1 and "nothing changed" in out2
    assert db.stat().st_mtime_ns == mtime


def test_refuses_zero_and_nan_embeddings(conn):
    store.ensure_user(conn, "u1")
    for bad in (np.zeros(4), np.array([np.nan, 1, 0, 0])):
        with pytest.raises(ValueError):
            store.insert_face(conn, store.NewFace("u1", None, "x", (0, 0, 1, 1), 0.9, {}, "fake", bad))


def test_failed_transaction_leaves_nothing(conn):
    with pytest.raises(RuntimeError):
        with store.transaction(conn):
            store.ensure_user(conn, "u1")
            raise RuntimeError("boom")
    assert store.get_user(conn, "u1") is None


def test_profiles_merge_extra_fields(conn):
    with store.transaction(conn):
        assert store.upsert_profile(conn, "u1", {"name": "A", "team": "x"}) is True
        assert store.upsert_profile(conn, "u1", {"email": "a@b.c", "floor": 3}) is False
    assert store.user_profile(store.get_user(conn, "u1")) == {
        "id": "u1", "name": "A", "email": "a@b.c", "team": "x", "floor": 3}


def test_user_erasure_cascades_to_faces(conn):
    with store.transaction(conn):
        store.ensure_user(conn, "u1")
        store.insert_face(conn, store.NewFace("u1", None, "x", (0, 0, 1, 1), 0.9, {}, "fake",
                                              np.ones(4)))
        conn.execute("DELETE FROM users WHERE id = 'u1'")
    assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 0


def test_second_writer_waits_instead_of_failing(tmp_path):
    a = store.open_db(tmp_path / "z.db")
    b = store.connect(tmp_path / "z.db")
    b.execute("PRAGMA busy_timeout = 5000")
    a.execute("BEGIN IMMEDIATE")
    import threading

    done = []
    t = threading.Thread(target=lambda: (store.ensure_user(b, "u2"), done.append(1)))
    t.start()
    t.join(0.3)
    assert not done  # blocked by the other writer, not failed
    a.execute("COMMIT")
    t.join(5)
    assert done and store.get_user(a, "u2") is not None

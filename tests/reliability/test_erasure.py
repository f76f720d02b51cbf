"""Erasure for good: after DELETE /users/<id> nothing of the user is left in the database
(rows, and the embedding bytes in the database and WAL files), the photos folder or the
index files, and no search returns them, also after a restart of the API and a rebuild
by convert.py. (The same right after the delete, in one process: tests/test_api.py
test_erasure_leaves_nothing.)"""

from __future__ import annotations

import numpy as np
import pytest

from facerec import store
from facerec.api import create_app
from facerec.enroll import enroll_folder
from facerec.index import FaceIndex, read_manifest
from tests.api_helpers import multipart, png_bytes, read_keys
from tests.fakes import FAKE_MODEL, fake_pipeline, save_photo

pytestmark = pytest.mark.reliability


def test_erased_user_is_gone_after_a_restart_and_a_rebuild(api_settings, conn, pipeline):
    save_photo(api_settings.photos_dir / "alice_2.png", 1, variant=7)  # enrolled by convert.py
    save_photo(api_settings.photos_dir / "bob.png", 2)
    enroll_folder(api_settings, conn, lambda: pipeline, progress=False)
    app = create_app(api_settings, pipeline=fake_pipeline())
    client = app.test_client()
    keys = read_keys(api_settings.api_keys_path)
    manage, recog = {"X-API-Key": keys["manage"]}, {"X-API-Key": keys["recognize"]}
    for variant in (1, 2):
        assert client.post("/users/alice/photos", headers=manage,
                           data=multipart(png_bytes(1, variant))).status_code == 201
    client.post("/users", headers=manage, json={"id": "alice", "name": "Alice", "email": "a@x.org"})
    rows = conn.execute("SELECT face_id, embedding FROM faces WHERE user_id = 'alice'").fetchall()
    alice_ids = {r[0] for r in rows}
    alice_blobs = [bytes(r[1]) for r in rows]
    alice_vectors = np.stack([np.frombuffer(b, np.float32) for b in alice_blobs])
    assert len(alice_ids) == 3
    assert client.post("/upload_photo", headers=recog,
                       data=multipart(png_bytes(1, 5))).get_json()["user_id"] == "alice"

    assert client.delete("/users/alice", headers=manage).status_code == 200
    assert app.extensions["facerec"].rebuilder.wait(30)

    # Restart: a new app over the same files, and a convert.py run that rebuilds.
    app = create_app(api_settings, pipeline=fake_pipeline())
    client = app.test_client()
    summary = enroll_folder(api_settings, conn, lambda: pipeline, progress=False, rebuild=True)
    assert summary.enrolled + summary.replaced == 1  # bob only: nothing of alice comes back

    for variant in (1, 2, 5, 7):
        body = client.post("/upload_photo", headers=recog,
                           data=multipart(png_bytes(1, variant))).get_json()
        assert body["user_id"] != "alice" and all(
            m["user_id"] != "alice" for f in body["faces"] for m in f["matches"])
    index = FaceIndex(api_settings.db_path, api_settings.index_dir, "fake", FAKE_MODEL.dim)
    for hits in index.search(alice_vectors):
        assert all(h.user_id != "alice" and h.face_id not in alice_ids for h in hits)
    assert client.get("/users/alice", headers=manage).status_code == 404
    for table, column in [("users", "id"), ("faces", "user_id"), ("photos", "user_id")]:
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = 'alice'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM photos WHERE path LIKE 'alice%'").fetchone()[0] == 0
    assert not [p for p in api_settings.photos_dir.rglob("*") if "alice" in p.name]

    # The index files: no generation on disk holds her face ids or her vectors.
    manifest = read_manifest(api_settings.index_dir)
    assert manifest.count == 1
    for ids_file in api_settings.index_dir.glob("gen-*.ids.npy"):
        assert not set(np.load(ids_file).tolist()) & alice_ids, ids_file.name
    for vectors_file in api_settings.index_dir.glob("gen-*.vectors.npy"):
        stored = np.load(vectors_file)
        if len(stored):
            assert (stored @ alice_vectors.T).max() < 0.999, vectors_file.name
    for ann in api_settings.index_dir.glob("gen-*.ann"):
        data = ann.read_bytes()
        assert not any(blob[:64] in data for blob in alice_blobs), ann.name

    # And the database files: the embedding bytes are overwritten, not just unlinked.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = b"".join(p.read_bytes() for p in api_settings.db_path.parent.glob(
        api_settings.db_path.name + "*"))
    for blob in alice_blobs:
        assert blob not in raw
    assert b"a@x.org" not in raw


def test_erasure_is_logged(api_settings, caplog):
    app = create_app(api_settings, pipeline=fake_pipeline())
    client = app.test_client()
    manage = {"X-API-Key": read_keys(api_settings.api_keys_path)["manage"]}
    client.post("/users/carol/photos", headers=manage, data=multipart(png_bytes(3)))
    client.delete("/users/carol", headers=manage)
    assert "erased user carol: 1 faces, 1 ledger rows, 1 photo files deleted" in caplog.text
    assert "erasure of user carol requested with key manage-1" in caplog.text
    app.extensions["facerec"].rebuilder.wait(30)


def test_store_overwrites_deleted_content(tmp_path):
    conn = store.open_db(tmp_path / "x.db")
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1

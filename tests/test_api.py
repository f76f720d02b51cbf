"""The HTTP API through Flask's test client, with the fake detector/embedder and a real
SQLite database, index and photos folder: every endpoint and every error path."""

from __future__ import annotations

import io
import json
import logging
import os
import stat

import numpy as np
import pytest
from PIL import Image

from facerec import store
from facerec.api import create_app
from facerec.enroll import enroll_folder
from facerec.errors import FaceRecError
from facerec.index import read_manifest
from facerec.pipeline import Pipeline
from tests.api_helpers import b64, multipart, png_bytes, read_keys
from tests.fakes import FakeEmbedder, fake_pipeline, save_photo


def enroll(client, headers, user_id: str, identity: int, variant: int = 0, **kw):
    return client.post(f"/users/{user_id}/photos", headers=headers,
                       data=multipart(png_bytes(identity, variant, **kw)))


def recognize(client, headers, data: bytes, query: str = ""):
    return client.post(f"/upload_photo{query}", headers=headers, data=multipart(data))


def db_rows(settings, sql: str, *params) -> list:
    conn = store.connect(settings.db_path)
    try:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


# --- keys and auth -------------------------------------------------------------------

def test_keys_generated_once_0600_and_never_logged(api_settings, caplog):
    with caplog.at_level(logging.INFO):
        create_app(api_settings, pipeline=fake_pipeline())
    path = api_settings.api_keys_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    keys = read_keys(path)
    assert set(keys) == {"recognize", "manage"} and keys["recognize"] != keys["manage"]
    assert str(path) in caplog.text
    assert all(key not in caplog.text for key in keys.values())
    create_app(api_settings, pipeline=fake_pipeline())  # a second start keeps the keys
    assert read_keys(path) == keys


def test_missing_wrong_and_underprivileged_keys(client, keys, recog, manage):
    photo = png_bytes(1)
    r = client.post("/upload_photo", data=multipart(photo))
    assert r.status_code == 401 and r.json["error"] == "unauthorized"
    r = client.post("/upload_photo", data=multipart(photo), headers={"X-API-Key": "x" * 40})
    assert r.status_code == 401 and r.json["message"] == "invalid API key"
    r = client.get("/users", headers=recog)
    assert r.status_code == 403 and r.json["error"] == "forbidden"
    for method, path in [("post", "/users"), ("get", "/users/u1"), ("patch", "/users/u1"),
                         ("delete", "/users/u1"), ("post", "/users/u1/photos"),
                         ("delete", "/users/u1/faces/1")]:
        assert getattr(client, method)(path, headers=recog).status_code == 403, path
    # A manage key may also recognize (422: no one is enrolled, but it got through).
    assert recognize(client, manage, png_bytes(1, faces=0)).status_code == 422


def test_keys_can_be_turned_off_only_explicitly(api_settings):
    app = create_app(api_settings.replace(auth_enabled=False), pipeline=fake_pipeline())
    client = app.test_client()
    assert client.get("/users").status_code == 200
    assert client.get("/health").json["auth_enabled"] is False


def test_public_endpoints_need_no_key(client):
    for path in ("/", "/health", "/metrics", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path


# --- /upload_photo -------------------------------------------------------------------

def test_upload_photo_recognizes_with_profile_and_every_face(client, manage, recog):
    assert enroll(client, manage, "alice", 1).status_code == 201
    assert enroll(client, manage, "bob", 2).status_code == 201
    client.post("/users", headers=manage, json={"id": "alice", "name": "Alice A",
                                                 "email": "a@example.org", "team": "blue"})
    r = recognize(client, recog, png_bytes(1, variant=5))
    assert r.status_code == 200
    body = r.json
    assert body["recognized"] is True and body["user_id"] == "alice"
    assert body["similarity_score"] >= 0.8 and body["face_id"] >= 1
    assert body["profile"] == {"id": "alice", "name": "Alice A", "email": "a@example.org",
                               "team": "blue"}
    assert body["ambiguous"] is False and body["margin"] > 0.2
    face = body["faces"][0]
    assert set(face) >= {"box", "landmarks", "detection_score", "matches", "margin", "ambiguous"}
    assert [m["user_id"] for m in face["matches"]] == ["alice", "bob"]
    # Two faces: both reported, the largest first.
    r = recognize(client, recog, png_bytes(2, variant=3, faces=2))
    assert r.status_code == 200 and len(r.json["faces"]) == 2
    assert r.json["user_id"] == "bob"
    assert r.json["faces"][0]["box"]["width"] > r.json["faces"][1]["box"]["width"]


def test_upload_photo_accepts_every_field_name_and_base64_json(client, manage, recog):
    enroll(client, manage, "alice", 1)
    photo = png_bytes(1, variant=2)
    for field in ("photo", "file", "image"):
        r = client.post("/upload_photo", headers=recog, data=multipart(photo, field))
        assert r.json["user_id"] == "alice", field
    r = client.post("/upload_photo", headers=recog, json={"image": b64(photo)})
    assert r.json["user_id"] == "alice"
    r = client.post("/upload_photo", headers=recog,
                    json={"image": "data:image/png;base64," + b64(photo)})
    assert r.json["user_id"] == "alice"


def test_unknown_person_and_threshold_and_top_k(client, manage, recog):
    for i, user in enumerate(["a", "b", "c"], start=1):
        enroll(client, manage, user, i)
    r = recognize(client, recog, png_bytes(9))
    assert r.status_code == 200 and r.json["recognized"] is False
    assert r.json["user_id"] is None and r.json["profile"] is None
    score = r.json["similarity_score"]
    r = recognize(client, recog, png_bytes(9), f"?threshold={score - 0.01}")
    assert r.json["recognized"] is True and r.json["threshold"] == pytest.approx(score - 0.01)
    r = recognize(client, recog, png_bytes(1), "?top_k=1")
    assert len(r.json["faces"][0]["matches"]) == 1
    r = recognize(client, recog, png_bytes(1), "?top_k=3")
    assert len(r.json["faces"][0]["matches"]) == 3


def test_two_users_within_the_margin_are_ambiguous(client, manage, recog):
    enroll(client, manage, "twin1", 7, variant=1)
    r = enroll(client, manage, "twin2", 7, variant=2)
    assert r.status_code == 201 and r.json["flags"] == ["possible_duplicate"]
    assert r.json["duplicate_of"] == "twin1"
    body = recognize(client, recog, png_bytes(7, variant=3)).json
    assert body["ambiguous"] is True and body["recognized"] is False
    assert body["user_id"] is None and body["margin"] < 0.05
    assert {m["user_id"] for m in body["faces"][0]["matches"]} == {"twin1", "twin2"}


@pytest.mark.parametrize("kwargs, status, code", [
    ({"json": {"image": "not base64!"}}, 400, "bad_request"),
    ({"json": {"image": 12}}, 400, "bad_request"),
    ({"json": {"photo": "abc"}}, 400, "bad_request"),
    ({"json": ["image"]}, 400, "bad_request"),
    ({"data": "{not json", "content_type": "application/json"}, 400, "bad_request"),
    ({"data": b"raw bytes", "content_type": "text/plain"}, 415, "unsupported_media_type"),
    ({}, 415, "unsupported_media_type"),
    ({"data": {"other": (io.BytesIO(b"x"), "x.png")}}, 400, "bad_request"),
    ({"data": {"photo": (io.BytesIO(b""), "x.png")}}, 400, "bad_image"),
    ({"data": {"photo": (io.BytesIO(b"GIF89a not really"), "x.gif")}}, 400, "bad_image"),
    ({"json": {"image": b64(png_bytes(1)[:200])}}, 400, "bad_image"),
    ({"data": {"photo": (io.BytesIO(png_bytes(1, faces=0)), "x.png")}}, 422, "no_face"),
])
def test_bad_uploads_get_clear_json_errors(client, recog, kwargs, status, code):
    r = client.post("/upload_photo", headers=recog, **kwargs)
    assert r.status_code == status, r.json
    assert r.json["error"] == code and r.json["message"]
    assert "Traceback" not in r.get_data(as_text=True)
    assert r.json["request_id"] == r.headers["X-Request-ID"]


@pytest.mark.parametrize("query", ["?threshold=abc", "?threshold=2", "?threshold=nan",
                                   "?top_k=0", "?top_k=x", "?top_k=51"])
def test_invalid_query_options(client, recog, query):
    r = recognize(client, recog, png_bytes(1), query)
    assert r.status_code == 400 and r.json["details"]["parameter"] in query


def test_size_limits(api_settings):
    app = create_app(api_settings.replace(max_upload_bytes=2000, max_pixels=100 * 100),
                     pipeline=fake_pipeline())
    client = app.test_client()
    headers = {"X-API-Key": read_keys(api_settings.api_keys_path)["recognize"]}
    small = png_bytes(1)
    assert len(small) < 2000
    assert recognize(client, headers, small).status_code == 200  # fits
    big = os.urandom(2500)
    r = recognize(client, headers, big)
    assert r.status_code == 413 and r.json["error"] == "image_too_large"
    r = client.post("/upload_photo", headers=headers, data=multipart(os.urandom(100_000)))  # > body limit
    assert r.status_code == 413 and r.json["error"] == "request_too_large"
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200)).save(buffer, format="PNG")  # 40 000 px > 10 000
    r = recognize(client, headers, buffer.getvalue())
    assert r.status_code == 413 and r.json["error"] == "image_too_large"


def test_unknown_path_wrong_method_and_unexpected_error_are_json(api_settings, caplog):
    class Broken:
        def detect(self, image):
            raise RuntimeError("secret internal detail")

        detect_permissive = detect

    app = create_app(api_settings, pipeline=Pipeline(Broken(), FakeEmbedder()))
    client = app.test_client()
    headers = {"X-API-Key": read_keys(api_settings.api_keys_path)["recognize"]}
    r = client.get("/no/such/path")
    assert r.status_code == 404 and r.json["error"] == "not_found"
    r = client.get("/upload_photo", headers=headers)
    assert r.status_code == 405 and r.json["error"] == "method_not_allowed"
    assert "POST" in r.headers["Allow"]
    with caplog.at_level(logging.ERROR):
        r = recognize(client, headers, png_bytes(1))
    assert r.status_code == 500 and r.json["error"] == "internal_error"
    assert "secret internal detail" not in r.get_data(as_text=True)
    assert "secret internal detail" in caplog.text and "Traceback" in caplog.text


def test_rate_limit_answers_429_json_and_spares_health(api_settings):
    app = create_app(api_settings.replace(rate_limit="2 per minute"), pipeline=fake_pipeline())
    client = app.test_client()
    headers = {"X-API-Key": read_keys(api_settings.api_keys_path)["recognize"]}
    statuses = [recognize(client, headers, png_bytes(1)).status_code for _ in range(3)]
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    r = recognize(client, headers, png_bytes(1))
    assert r.json["error"] == "rate_limited" and "Retry-After" in r.headers
    assert all(client.get("/health").status_code == 200 for _ in range(5))


# --- /verify and /compare --------------------------------------------------------------

def test_verify_right_and_wrong_user(client, manage, recog):
    enroll(client, manage, "alice", 1)
    enroll(client, manage, "bob", 2)
    r = client.post("/verify", headers=recog, data=multipart(png_bytes(1, 4), user_id="alice"))
    assert r.status_code == 200 and r.json["match"] is True and r.json["similarity_score"] > 0.8
    r = client.post("/verify", headers=recog, json={"image": b64(png_bytes(1, 4)), "user_id": "bob"})
    assert r.json["match"] is False and r.json["user_id"] == "bob"
    r = client.post("/verify?user_id=alice&threshold=0.9999", headers=recog,
                    data=multipart(png_bytes(1, 4)))
    assert r.json["match"] is False and r.json["threshold"] == 0.9999


def test_verify_errors(client, manage, recog):
    enroll(client, manage, "alice", 1)
    client.post("/users", headers=manage, json={"id": "nofaces"})
    cases = [({"user_id": "ghost"}, 404, "not_found"), ({"user_id": "nofaces"}, 404, "not_found"),
             ({"user_id": "bad id!"}, 400, "invalid_user_id"), ({}, 400, "invalid_user_id")]
    for fields, status, code in cases:
        r = client.post("/verify", headers=recog, data=multipart(png_bytes(1), **fields))
        assert (r.status_code, r.json["error"]) == (status, code), fields
    r = client.post("/verify", headers=recog, data=multipart(png_bytes(1, faces=0), user_id="alice"))
    assert r.status_code == 422 and r.json["error"] == "no_face"


def test_compare_same_and_different(client, recog):
    same = client.post("/compare", headers=recog, data={
        "photo1": (io.BytesIO(png_bytes(3, 1)), "a.png"),
        "photo2": (io.BytesIO(png_bytes(3, 2)), "b.png")})
    assert same.status_code == 200 and same.json["same_person"] is True
    other = client.post("/compare", headers=recog,
                        json={"image1": b64(png_bytes(3)), "image2": b64(png_bytes(4))})
    assert other.json["same_person"] is False
    assert other.json["similarity_score"] < same.json["similarity_score"]
    r = client.post("/compare", headers=recog, data={"photo1": (io.BytesIO(png_bytes(3)), "a.png")})
    assert r.status_code == 400 and "second photo" in r.json["message"]
    r = client.post("/compare", headers=recog, data={
        "photo1": (io.BytesIO(png_bytes(3)), "a.png"),
        "photo2": (io.BytesIO(png_bytes(3, faces=0)), "b.png")})
    assert r.status_code == 422 and "second photo" in r.json["message"]


# --- users ------------------------------------------------------------------------------

def test_create_update_get_patch_user(client, manage):
    r = client.post("/users", headers=manage, json={"id": "u1", "name": "Ann", "age": 40})
    assert r.status_code == 201 and r.json["created"] is True
    r = client.post("/users", headers=manage, json={"user_id": "u1", "email": "ann@x.org"})
    assert r.status_code == 200 and r.json["created"] is False
    assert r.json["user"]["profile"] == {"id": "u1", "name": "Ann", "email": "ann@x.org", "age": 40}
    r = client.patch("/users/u1", headers=manage, json={"age": None, "name": "Anne", "vip": True})
    assert r.status_code == 200
    assert r.json["user"]["profile"] == {"id": "u1", "name": "Anne", "email": "ann@x.org",
                                         "vip": True}
    r = client.get("/users/u1", headers=manage)
    assert r.status_code == 200 and r.json["faces"] == [] and r.json["profile"]["name"] == "Anne"


def test_user_errors(client, manage):
    cases = [
        ("post", "/users", {"json": {"name": "no id"}}, 400, "invalid_user_id"),
        ("post", "/users", {"json": {"id": "../etc"}}, 400, "invalid_user_id"),
        ("post", "/users", {"json": {"id": "u1", "tags": ["a"]}}, 400, "bad_request"),
        ("post", "/users", {"json": {"id": "u1", "name": 5}}, 400, "bad_request"),
        ("post", "/users", {"json": {"id": "u1", "face_id": 3}}, 400, "bad_request"),
        ("post", "/users", {"data": "id=u1", "content_type": "text/plain"}, 415,
         "unsupported_media_type"),
        ("get", "/users/ghost", {}, 404, "not_found"),
        ("get", "/users/.hidden", {}, 400, "invalid_user_id"),
        ("patch", "/users/ghost", {"json": {"name": "x"}}, 404, "not_found"),
        ("delete", "/users/ghost", {}, 404, "not_found"),
        ("delete", "/users/ghost/faces/1", {}, 404, "not_found"),
        ("get", "/users?limit=0", {}, 400, "bad_request"),
        ("get", "/users?offset=-1", {}, 400, "bad_request"),
    ]
    for method, path, kwargs, status, code in cases:
        r = getattr(client, method)(path, headers=manage, **kwargs)
        assert (r.status_code, r.json["error"]) == (status, code), (method, path)
    client.post("/users", headers=manage, json={"id": "u1"})
    r = client.patch("/users/u1", headers=manage, json={"id": "u2"})
    assert r.status_code == 400


def test_list_users_paginates_and_filters(client, manage):
    for i, name in enumerate(["Ann Lee", "Bob", "anna Smith", "Carl", "Dana"]):
        client.post("/users", headers=manage, json={"id": f"u{i}", "name": name})
    enroll(client, manage, "u1", 1)
    page = client.get("/users?limit=2", headers=manage).json
    assert [u["profile"]["id"] for u in page["users"]] == ["u0", "u1"]
    assert page["total"] == 5 and page["next_offset"] == 2 and page["users"][1]["faces"] == 1
    last = client.get("/users?limit=2&offset=4", headers=manage).json
    assert [u["profile"]["id"] for u in last["users"]] == ["u4"] and last["next_offset"] is None
    found = client.get("/users?name=ANN", headers=manage).json
    assert [u["profile"]["name"] for u in found["users"]] == ["Ann Lee", "anna Smith"]
    assert client.get("/users?name=%25", headers=manage).json["total"] == 0  # % is literal


# --- enrollment through the API ---------------------------------------------------------

def test_enrolled_photo_is_stored_ledgered_and_unchanged_for_convert(client, manage, api_settings,
                                                                     conn, pipeline):
    photo = png_bytes(1)
    r = client.post("/users/alice/photos", headers=manage, data=multipart(photo))
    assert r.status_code == 201
    path = api_settings.photos_dir / r.json["photo_path"]
    assert path.parent.name == "alice" and path.name.startswith("api-") and path.suffix == ".png"
    assert path.read_bytes() == photo
    assert store.get_meta(conn, "embedding_model") == "fake"  # convert.py checks it
    entry = store.photo_entry(conn, r.json["photo_path"])
    st = path.stat()
    assert (entry["status"], entry["size"], entry["mtime_ns"], entry["face_id"]) == (
        "enrolled", st.st_size, st.st_mtime_ns, r.json["face_id"])
    # convert.py and the watcher see nothing new: no model call, no change.
    summary = enroll_folder(api_settings, conn, lambda: pipeline, progress=False)
    assert (summary.unchanged, summary.enrolled) == (1, 0) and pipeline.detector.calls == 0
    # The same bytes again: nothing new either.
    again = client.post("/users/alice/photos", headers=manage, data=multipart(photo))
    assert again.status_code == 200 and again.json["created"] is False
    assert again.json["face_id"] == r.json["face_id"]
    assert len(client.get("/users/alice", headers=manage).json["faces"]) == 1


def test_enrollment_refusals_store_nothing(client, manage, api_settings):
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(buffer, format="GIF")
    cases = [
        ("alice", png_bytes(1, faces=2), 422, "multiple_faces"),
        ("alice", png_bytes(1, faces=0), 422, "no_face"),
        ("alice", b"not an image", 400, "bad_image"),
        ("alice", buffer.getvalue(), 415, "unsupported_media_type"),
        ("bad..id", png_bytes(1), 400, "invalid_user_id"),
    ]
    for user_id, data, status, code in cases:
        r = client.post(f"/users/{user_id}/photos", headers=manage, data=multipart(data))
        assert (r.status_code, r.json["error"]) == (status, code), code
    assert list(api_settings.photos_dir.iterdir()) == []
    assert db_rows(api_settings, "SELECT * FROM faces") == []
    assert db_rows(api_settings, "SELECT * FROM photos") == []
    assert db_rows(api_settings, "SELECT * FROM users") == []


def test_duplicate_identity_can_be_refused(api_settings):
    app = create_app(api_settings.replace(reject_duplicates=True), pipeline=fake_pipeline())
    client = app.test_client()
    headers = {"X-API-Key": read_keys(api_settings.api_keys_path)["manage"]}
    assert enroll(client, headers, "alice", 1).status_code == 201
    r = enroll(client, headers, "mallory", 1, variant=2)
    assert r.status_code == 409 and r.json["error"] == "duplicate_identity"
    assert r.json["details"]["duplicate_of"] == "alice"
    assert not (api_settings.photos_dir / "mallory").exists() or not any(
        (api_settings.photos_dir / "mallory").iterdir())
    assert db_rows(api_settings, "SELECT * FROM faces WHERE user_id = 'mallory'") == []


# --- freshness ------------------------------------------------------------------------------

def test_every_process_sees_new_faces_without_restart(api_settings, conn, pipeline):
    """Two app instances (two workers) over one database: a photo enrolled through one,
    or by convert.py, is found by the other at once; a rebuild changes nothing visible."""
    worker1 = create_app(api_settings, pipeline=fake_pipeline()).test_client()
    worker2 = create_app(api_settings, pipeline=fake_pipeline()).test_client()
    keys = read_keys(api_settings.api_keys_path)
    manage, recog = {"X-API-Key": keys["manage"]}, {"X-API-Key": keys["recognize"]}
    assert recognize(worker2, recog, png_bytes(1)).json["recognized"] is False  # warm, empty
    enroll(worker1, manage, "alice", 1)
    assert recognize(worker2, recog, png_bytes(1, 3)).json["user_id"] == "alice"
    save_photo(api_settings.photos_dir / "bob.png", 2)
    enroll_folder(api_settings, conn, lambda: pipeline, progress=False)  # convert.py + build
    assert read_manifest(api_settings.index_dir).count == 2
    body = recognize(worker2, recog, png_bytes(2, 3)).json
    assert body["user_id"] == "bob" and body["index_generation"] == 1
    assert recognize(worker1, recog, png_bytes(1, 4)).json["user_id"] == "alice"


# --- deletion and erasure ---------------------------------------------------------------------

def test_delete_one_face(app, client, manage, recog, api_settings):
    first = enroll(client, manage, "alice", 1).json
    second = enroll(client, manage, "alice", 1, variant=1).json
    r = client.delete(f"/users/alice/faces/{first['face_id']}", headers=manage)
    assert r.status_code == 200 and r.json["deleted"]["files"] == 1
    assert not (api_settings.photos_dir / first["photo_path"]).exists()
    faces = client.get("/users/alice", headers=manage).json
    assert [f["face_id"] for f in faces["faces"]] == [second["face_id"]]
    assert faces["face_id"] == second["face_id"]
    body = recognize(client, recog, png_bytes(1, 2)).json
    assert body["face_id"] == second["face_id"]
    assert client.delete(f"/users/bob/faces/{second['face_id']}", headers=manage).status_code == 404
    assert app.extensions["facerec"].rebuilder.wait(10)


def test_erasure_leaves_nothing(app, client, manage, recog, api_settings, conn, pipeline):
    save_photo(api_settings.photos_dir / "alice_2.png", 1, variant=7)  # flat layout, via convert
    enroll_folder(api_settings, conn, lambda: pipeline, progress=False)
    enroll(client, manage, "alice", 1)
    client.post("/users", headers=manage, json={"id": "alice", "name": "Alice"})
    enroll(client, manage, "bob", 2)
    alice_faces = [r[0] for r in db_rows(api_settings, "SELECT face_id FROM faces "
                                                       "WHERE user_id = 'alice'")]
    assert len(alice_faces) == 2

    r = client.delete("/users/alice", headers=manage)
    assert r.status_code == 200
    assert r.json["erased"] == {"user_id": "alice", "faces": 2, "photos": 2, "files": 2}
    for table, column in [("users", "id"), ("faces", "user_id"), ("photos", "user_id")]:
        assert db_rows(api_settings, f"SELECT * FROM {table} WHERE {column} = 'alice'") == []
    remaining = sorted(p.relative_to(api_settings.photos_dir).as_posix()
                       for p in api_settings.photos_dir.rglob("*"))
    assert len(remaining) == 2 and remaining[0] == "bob" and remaining[1].startswith("bob/api-")
    body = recognize(client, recog, png_bytes(1, 3)).json
    assert body["recognized"] is False and all(
        m["user_id"] != "alice" for m in body["faces"][0]["matches"])
    assert client.get("/users/alice", headers=manage).status_code == 404
    assert client.delete("/users/alice", headers=manage).status_code == 404
    # The background rebuild takes the vectors out of the index files, old ones included.
    assert app.extensions["facerec"].rebuilder.wait(10)
    for ids_file in api_settings.index_dir.glob("gen-*.ids.npy"):
        assert not set(np.load(ids_file).tolist()) & set(alice_faces), ids_file.name
    assert recognize(client, recog, png_bytes(2, 3)).json["user_id"] == "bob"


# --- operations -----------------------------------------------------------------------------

def test_health_and_metrics(client, manage, recog):
    enroll(client, manage, "alice", 1)
    recognize(client, recog, png_bytes(1))
    recognize(client, recog, png_bytes(1, faces=2))
    health = client.get("/health").json
    assert health["status"] == "ok" and health["models_loaded"] is True
    assert (health["users"], health["faces"], health["index"]["searchable"]) == (1, 1, 1)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'facerec_http_requests_total{endpoint="/upload_photo",method="POST",status="200"} 2.0' in text
    assert 'facerec_http_request_duration_seconds_count{endpoint="/upload_photo"} 2.0' in text
    assert 'facerec_faces_per_photo_sum{endpoint="/upload_photo"} 3.0' in text
    assert "facerec_index_faces 1.0" in text and "facerec_users 1.0" in text


def test_openapi_documents_every_route_and_error_code(app, client):
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.0")
    documented = {(path, method) for path, item in doc["paths"].items() for method in item
                  if method != "parameters"}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<int:", "<").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, (path, method)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    codes = set(doc["x-error-codes"])
    assert {c.code for c in subclasses(FaceRecError)} <= codes
    assert {"request_too_large", "rate_limited", "method_not_allowed", "internal_error"} <= codes
    docs = client.get("/docs").get_data(as_text=True)
    assert "/openapi.json" in docs and "http://" not in docs and "https://" not in docs


def test_structured_access_log(client, recog, caplog):
    with caplog.at_level(logging.INFO, logger="facerec.api.access"):
        client.post("/upload_photo", headers={**recog, "X-Request-ID": "abc-123"},
                    data=multipart(png_bytes(1, faces=0)))
    line = json.loads([r for r in caplog.records if r.name == "facerec.api.access"][-1].message)
    assert line["request_id"] == "abc-123" and line["status"] == 422
    assert line["endpoint"] == "/upload_photo" and line["key"] == "recognize-1"
    assert "faces" in line

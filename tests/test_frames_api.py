"""POST /frames (tracked, voted live recognition), the face thumbnails and the web pages,
through Flask's test client with the fake detector/embedder and a real database and index."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from facerec.api import create_app
from facerec.api.pages import STATIC_DIR
from tests.api_helpers import b64, multipart, png_bytes, read_keys
from tests.fakes import fake_pipeline


@pytest.fixture
def api_settings(settings, tmp_path):
    return settings.replace(api_keys_path=tmp_path / "keys.json", rate_limit="",
                            frames_vote_window=5, frames_reverify_every=4)


@pytest.fixture
def keys(api_settings, app) -> dict[str, dict]:
    return {scope: {"X-API-Key": key} for scope, key in read_keys(api_settings.api_keys_path).items()}


@pytest.fixture
def alice(client, keys):
    """User alice (fake identity 1) with a profile name and one enrolled face."""
    client.post("/users", headers=keys["manage"], json={"id": "alice", "name": "Alice A"})
    r = client.post("/users/alice/photos", headers=keys["manage"], data=multipart(png_bytes(1)))
    assert r.status_code == 201
    return r.json["face_id"]


def send(client, headers, identity: int, stream: str = "cam1", variant: int = 0, **kw):
    return client.post("/frames", headers=headers,
                       data={"stream": stream, **multipart(png_bytes(identity, variant, **kw),
                                                           field="image")})


def test_a_known_face_is_pending_then_recognized_then_only_tracked(client, keys, alice):
    answers = [send(client, keys["recognize"], 1, variant=i) for i in range(8)]
    assert all(r.status_code == 200 for r in answers), answers[0].json
    bodies = [r.json for r in answers]
    faces = [b["faces"][0] for b in bodies]
    assert bodies[0]["new_stream"] and not bodies[1]["new_stream"]
    assert [b["frame"] for b in bodies] == list(range(1, 9))
    assert len({f["track_id"] for f in faces}) == 1  # one track throughout
    assert [f["status"] for f in faces[:3]] == ["pending", "pending", "recognized"]
    assert faces[0]["frame_match"]["user_id"] == "alice"
    recognized = faces[2]
    assert recognized["user_id"] == "alice" and recognized["name"] == "Alice A"
    assert recognized["recognized"] and recognized["votes"] == 3
    assert recognized["similarity_score"] >= 0.8
    # Settled and still: tracked only, identified again after reverify_every (4) frames.
    assert [f["identified"] for f in faces] == [True, True, True, False, False, False, True, False]
    assert all(f["status"] == "recognized" for f in faces[3:])
    assert "frame_match" not in faces[3]
    assert [b["identified"] for b in bodies[3:5]] == [0, 0] and bodies[3]["tracked"] == 1
    assert bodies[0]["vote_window"] == 5 and bodies[0]["width"] == 64
    assert set(bodies[0]["timing_ms"]) == {"detect", "identify"}


def test_a_stranger_is_unknown(client, keys, alice):
    faces = [send(client, keys["recognize"], 2, variant=i).json["faces"][0] for i in range(4)]
    assert [f["status"] for f in faces] == ["pending", "pending", "unknown", "unknown"]
    assert faces[2]["user_id"] is None and faces[2]["name"] is None
    assert faces[0]["frame_match"]["user_id"] is None
    assert not faces[3]["identified"]  # a settled stranger is only tracked too


def test_streams_are_separate_and_a_frame_without_face_is_not_an_error(client, keys, alice):
    one = send(client, keys["recognize"], 1, stream="cam1").json
    two = send(client, keys["recognize"], 1, stream="cam2").json
    assert two["new_stream"] and two["frame"] == 1
    assert one["faces"][0]["track_id"] != two["faces"][0]["track_id"]
    empty = send(client, keys["recognize"], 1, stream="cam1", faces=0)
    assert empty.status_code == 200 and empty.json["faces"] == [] and empty.json["frame"] == 2


def test_json_base64_frames(client, keys, alice):
    r = client.post("/frames", headers=keys["recognize"],
                    json={"stream": "json-cam", "image": b64(png_bytes(1))})
    assert r.status_code == 200 and r.json["faces"][0]["frame_match"]["user_id"] == "alice"


def test_a_worker_that_never_saw_the_stream_starts_it_fresh(api_settings, keys, alice):
    """Two app instances stand for two gunicorn workers sharing one database."""
    other = create_app(api_settings, pipeline=fake_pipeline()).test_client()
    for _ in range(3):
        send(other, keys["recognize"], 1)
    first = create_app(api_settings, pipeline=fake_pipeline()).test_client()
    body = send(first, keys["recognize"], 1).json
    assert body["new_stream"] and body["faces"][0]["status"] == "pending"
    assert body["faces"][0]["frame_match"]["user_id"] == "alice"


@pytest.mark.parametrize("data, message", [
    ({"image": (io.BytesIO(png_bytes(1)), "f.png")}, "missing `stream`"),
    ({"stream": "bad id!", "image": (io.BytesIO(png_bytes(1)), "f.png")}, "`stream` must be"),
    ({"stream": "x" * 65, "image": (io.BytesIO(png_bytes(1)), "f.png")}, "`stream` must be"),
    ({"stream": "cam"}, "no photo"),
    ({"stream": "cam", "image": (io.BytesIO(b"not an image"), "f.png")}, "not a readable image"),
])
def test_bad_frames_get_clear_json_errors(client, keys, data, message):
    r = client.post("/frames", headers=keys["recognize"], data=data,
                    content_type="multipart/form-data")
    assert r.status_code == 400 and r.is_json
    assert message in r.json["message"], r.json


def test_bad_base64_and_wrong_content_type(client, keys):
    r = client.post("/frames", headers=keys["recognize"], json={"stream": "c", "image": "@@@"})
    assert r.status_code == 400 and r.json["error"] == "bad_request"
    r = client.post("/frames", headers=keys["recognize"], data=b"raw", content_type="image/jpeg")
    assert r.status_code == 415 and r.json["error"] == "unsupported_media_type"


def test_frames_need_a_key(client, keys):
    r = client.post("/frames", data={"stream": "c"})
    assert r.status_code == 401 and r.json["error"] == "unauthorized"
    r = client.post("/frames", headers={"X-API-Key": "frk_wrong_key_123456"}, data={"stream": "c"})
    assert r.status_code == 401
    assert send(client, keys["manage"], 1).status_code == 200  # manage includes recognize


def test_frames_have_their_own_rate_limit(settings, tmp_path):
    app = create_app(settings.replace(api_keys_path=tmp_path / "k.json", rate_limit="2 per minute",
                                      frames_rate_limit="4 per minute"), pipeline=fake_pipeline())
    client = app.test_client()
    key = {"X-API-Key": read_keys(tmp_path / "k.json")["recognize"]}
    statuses = [send(client, key, 1).status_code for _ in range(5)]
    assert statuses == [200] * 4 + [429]
    assert client.post("/upload_photo", headers=key, data=multipart(png_bytes(1))).status_code == 200
    limited = send(client, key, 1)
    assert limited.status_code == 429 and limited.json["error"] == "rate_limited"
    assert "Retry-After" in limited.headers


# --- face thumbnails -------------------------------------------------------------------

def test_face_image_is_a_small_jpeg_never_cached(client, keys, alice):
    r = client.get(f"/users/alice/faces/{alice}/image", headers=keys["manage"])
    assert r.status_code == 200 and r.mimetype == "image/jpeg"
    assert r.headers["Cache-Control"] == "no-store"
    image = Image.open(io.BytesIO(r.data))
    assert image.format == "JPEG" and max(image.size) <= 160


def test_face_image_errors(client, keys, alice):
    assert client.get(f"/users/alice/faces/{alice}/image", headers=keys["recognize"]).status_code == 403
    assert client.get(f"/users/alice/faces/{alice}/image").status_code == 401
    r = client.get(f"/users/bob/faces/{alice}/image", headers=keys["manage"])
    assert r.status_code == 404 and r.json["error"] == "not_found"
    assert client.get("/users/alice/faces/999/image", headers=keys["manage"]).status_code == 404
    assert client.get(f"/users/alice/faces/{2**63}/image", headers=keys["manage"]).status_code == 404
    assert client.delete("/users/alice", headers=keys["manage"]).status_code == 200
    assert client.get(f"/users/alice/faces/{alice}/image", headers=keys["manage"]).status_code == 404


# --- the pages -------------------------------------------------------------------------

def test_pages_are_served_without_a_key_with_a_strict_policy(client):
    for path, marker in (("/", 'id="video"'), ("/manage", 'id="add-form"')):
        r = client.get(path)
        assert r.status_code == 200 and r.mimetype == "text/html", path
        assert marker in r.get_data(as_text=True)
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    js = client.get("/static/camera.js")
    assert js.status_code == 200 and "javascript" in js.mimetype
    assert client.get("/static/style.css").mimetype == "text/css"
    assert client.get("/static/nothing.js").status_code == 404
    assert client.get("/static/..%2fapi%2fpages.py").status_code == 404


def test_static_files_load_nothing_from_elsewhere():
    """No CDN, no build step: every file the pages use ships in facerec/static."""
    for path in STATIC_DIR.iterdir():
        text = path.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert not re.search(r"https?://", text), path.name
        for ref in re.findall(r'(?:src|href)="(/static/[^"]+)"', text):
            assert (STATIC_DIR / ref.removeprefix("/static/")).is_file(), ref

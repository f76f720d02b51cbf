"""Adversarial input to the API: each case gets the documented 4xx JSON error (never a
traceback or a 5xx) and stores nothing. Bodies over the limit sent chunked, without a
Content-Length, are refused by real servers (werkzeug and gunicorn) before they are read
whole. Cases already proven in tests/test_api.py are listed in RELIABILITY.md, not
repeated here."""

from __future__ import annotations

import base64
import io
import json
import select
import socket
import struct
import time

import numpy as np
import pytest
from PIL import Image, ImageFile

from tests.api_helpers import b64, multipart, png_bytes
from tests.reliability.conftest import MAX_UPLOAD, NOTHING, assert_json_error, stored
from tests.reliability.servers import gunicorn, werkzeug_server

pytestmark = pytest.mark.reliability


def jpeg_bytes(image: Image.Image, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **kw)
    return buffer.getvalue()


def noise_jpeg(side: int = 200) -> bytes:
    rng = np.random.default_rng(0)
    return jpeg_bytes(Image.fromarray(rng.integers(0, 255, (side, side, 3), np.uint8)))


def jpeg_declaring(width: int, height: int) -> bytes:
    """A 16×16 JPEG whose frame header (SOF0) claims width × height pixels."""
    data = bytearray(jpeg_bytes(Image.new("RGB", (16, 16), (90, 120, 150))))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def huge_jpeg() -> bytes:
    """A real 10000×10000 JPEG (100 megapixels; ~1.5 MB since it is mostly flat)."""
    image = Image.new("L", (10000, 10000), 128)
    image.paste(60, (4000, 4000, 6000, 6000))
    return jpeg_bytes(image, quality=50)


# --- photos: every endpoint that takes one, every way to send it ----------------------

def bad_photos(huge_jpeg: bytes) -> list[tuple[str, bytes, int, str]]:
    text = b"name,email\nalice,a@example.org\n"  # a text file renamed .jpg
    return [
        ("0-byte file", b"", 400, "bad_image"),
        ("text file renamed .jpg", text, 400, "bad_image"),
        ("truncated JPEG", noise_jpeg()[:3000], 400, "bad_image"),
        ("JPEG header only", noise_jpeg()[:200], 400, "bad_image"),
        ("1x1 image", png_of(Image.new("RGB", (1, 1))), 400, "bad_image"),
        ("PNG bomb: 20000x20000 in a few KB", png_of(Image.new("1", (20000, 20000))), 413,
         "image_too_large"),
        ("JPEG bomb: 60000x60000 declared in 700 bytes", jpeg_declaring(60000, 60000), 413,
         "image_too_large"),
        ("10000x10000 image", huge_jpeg, 413, "image_too_large"),
        ("bytes over the photo limit", b"\xff\xd8" + b"\0" * (MAX_UPLOAD + 10), 413, "image_too_large"),
    ]


@pytest.fixture
def big_settings(api_settings):
    """Room for the 10000×10000 JPEG in the body; the pixel limit stays the default."""
    return api_settings.replace(max_upload_bytes=4_000_000)


@pytest.mark.parametrize("endpoint", ["/upload_photo", "/verify", "/users/alice/photos"])
def test_bad_photos_are_refused_with_json_errors_and_nothing_stored(
        endpoint, big_settings, huge_jpeg):
    from facerec.api import create_app
    from tests.api_helpers import read_keys
    from tests.fakes import fake_pipeline

    client = create_app(big_settings, pipeline=fake_pipeline()).test_client()
    key = {"X-API-Key": read_keys(big_settings.api_keys_path)["manage"]}
    client.post("/users", headers=key, json={"id": "alice"})  # /verify needs a user...
    client.post("/users/alice/photos", headers=key, data=multipart(png_bytes(1)))  # ...with a face
    before = stored(big_settings)
    cases = bad_photos(huge_jpeg)
    cases[-1] = ("bytes over the photo limit", b"\xff\xd8" + b"\0" * (4_000_010), 413,
                 "image_too_large")
    for name, data, status, code in cases:
        fields = {"user_id": "alice"} if endpoint == "/verify" else {}
        started = time.perf_counter()
        r = client.post(endpoint, headers=key, data=multipart(data, **fields))
        seconds = time.perf_counter() - started
        assert_json_error(r, status, code)
        # JSON + base64, the other way in (the base64 of the biggest ones would pass
        # the body limit: that case is test_base64_bodies below).
        if len(data) < 1_000_000:
            r = client.post(endpoint, headers=key, json={"image": b64(data), **fields})
            assert_json_error(r, status, code)
        print(f"{endpoint} {name}: {r.status_code} in {seconds * 1000:.0f} ms")
    assert stored(big_settings) == before


def test_truncated_jpeg_refused_even_when_another_library_flipped_pillows_flag(
        client, recog, monkeypatch):
    """face_recognition sets ImageFile.LOAD_TRUNCATED_IMAGES = True at import; the
    evaluation imports it. Found by this suite: truncated uploads then decoded as grey."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    r = client.post("/upload_photo", headers=recog, data=multipart(noise_jpeg()[:3000]))
    assert_json_error(r, 400, "bad_image")


def test_empty_bodies(client, recog, manage, api_settings):
    cases = [
        ({}, 415, "unsupported_media_type"),
        ({"data": b"", "content_type": "application/json"}, 400, "bad_request"),
        ({"data": b"", "content_type": "multipart/form-data; boundary=x"}, 400, "bad_request"),
        ({"data": b"", "content_type": "application/octet-stream"}, 415, "unsupported_media_type"),
    ]
    for kwargs, status, code in cases:
        for path, headers in [("/upload_photo", recog), ("/users/alice/photos", manage),
                              ("/compare", recog)]:
            assert_json_error(client.post(path, headers=headers, **kwargs), status, code)
        # /verify looks at the claimed user first.
        assert_json_error(client.post("/verify", headers=recog, **kwargs), 400, "invalid_user_id")
    assert_json_error(client.post("/users", headers=manage), 415, "unsupported_media_type")
    assert_json_error(client.post("/users", headers=manage, data=b"",
                                  content_type="application/json"), 400, "bad_request")
    assert stored(api_settings) == NOTHING


def test_base64_bodies(client, recog, manage, api_settings):
    photo = png_bytes(1)
    over = base64.b64encode(b"\0" * (MAX_UPLOAD + 1000)).decode()  # body fits, photo does not
    way_over = "A" * (MAX_UPLOAD * 2)  # the body itself is over the limit
    cases = [
        ({"image": "not base64!"}, 400, "bad_request"),
        ({"image": b64(photo)[:-3]}, 400, "bad_request"),  # bad padding
        ({"image": b64(photo)[:50] + "é" + b64(photo)[50:]}, 400, "bad_request"),
        ({"image": "data:image/png;base64,"}, 400, "bad_image"),
        ({"image": None}, 400, "bad_request"),
        ({"image": {"nested": b64(photo)}}, 400, "bad_request"),
        ({"image": over}, 413, "image_too_large"),
        ({"image": way_over}, 413, "request_too_large"),
    ]
    for body, status, code in cases:
        for path, headers in [("/upload_photo", recog), ("/users/alice/photos", manage)]:
            assert_json_error(client.post(path, headers=headers, json=body), status, code)
    assert stored(api_settings) == NOTHING


def test_json_where_multipart_is_expected_and_the_reverse(client, recog, manage, api_settings):
    photo = png_bytes(1)
    boundary = "b0undary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + photo + f"\r\n--{boundary}--\r\n".encode()
    json_text = json.dumps({"image": b64(photo)}).encode()
    for path, headers in [("/upload_photo", recog), ("/users/alice/photos", manage)]:
        # A JSON body labelled multipart: no photo field in it.
        r = client.post(path, headers=headers, data=json_text,
                        content_type=f"multipart/form-data; boundary={boundary}")
        assert_json_error(r, 400, "bad_request")
        # A multipart body labelled JSON.
        r = client.post(path, headers=headers, data=form, content_type="application/json")
        assert_json_error(r, 400, "bad_request")
    # /users takes JSON only.
    r = client.post("/users", headers=manage, data=form,
                    content_type=f"multipart/form-data; boundary={boundary}")
    assert_json_error(r, 415, "unsupported_media_type")
    r = client.post("/users", headers=manage, data=b'{"id": "alice"',
                    content_type="application/json")
    assert_json_error(r, 400, "bad_request")
    assert stored(api_settings) == NOTHING


HOSTILE_IDS = ["..", ".", "a\\b", "..\\..\\x", "ünïcode", "名前", "x" * 1000, "a b", "a\x00b",
               "-lead", "_lead", "a..b", "%2e%2e", "u1;rm", "'; DROP TABLE users; --"]


@pytest.mark.parametrize("user_id", HOSTILE_IDS)
def test_hostile_user_ids_are_refused_everywhere(user_id, client, manage, recog, api_settings):
    from urllib.parse import quote

    path_id = quote(user_id, safe="")
    photo = multipart(png_bytes(1))
    responses = [
        client.post("/users", headers=manage, json={"id": user_id, "name": "x"}),
        client.post(f"/users/{path_id}/photos", headers=manage, data=photo),
        client.get(f"/users/{path_id}", headers=manage),
        client.patch(f"/users/{path_id}", headers=manage, json={"name": "x"}),
        client.delete(f"/users/{path_id}", headers=manage),
        client.post("/verify", headers=recog, data=multipart(png_bytes(1), user_id=user_id)),
    ]
    for r in responses:
        assert_json_error(r, 400, "invalid_user_id")
    assert stored(api_settings) == NOTHING


@pytest.mark.parametrize("user_id", ["a/b", "../../etc", "a/../../b", "/abs"])
def test_user_ids_with_slashes_never_match_a_route_or_reach_the_disk(
        user_id, client, manage, api_settings, tmp_path):
    from urllib.parse import quote

    for path_id in (quote(user_id, safe=""), user_id):
        r = client.post(f"/users/{path_id}/photos", headers=manage, data=multipart(png_bytes(1)))
        assert 400 <= r.status_code < 500 and r.get_json()["error"], r.data[:200]
    r = client.post("/users", headers=manage, json={"id": user_id})
    assert_json_error(r, 400, "invalid_user_id")
    assert stored(api_settings) == NOTHING
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data_foto", "secrets", "var"]


def test_client_file_names_are_ignored(client, manage, api_settings, tmp_path):
    data = {"photo": (io.BytesIO(png_bytes(1)), "../../../escape.png")}
    r = client.post("/users/alice/photos", headers=manage, data=data)
    assert r.status_code == 201
    path = r.get_json()["photo_path"]
    assert path.startswith("alice/api-") and "escape" not in path
    assert not any(p.name == "escape.png" for p in tmp_path.rglob("*"))


# --- bodies over the limit, chunked, against real servers -----------------------------

def send_chunked(base: str, path: str, headers: dict, total: int, chunk: int = 65536
                 ) -> tuple[int, int, bytes]:
    """POST `total` bytes with Transfer-Encoding: chunked (no Content-Length), stopping
    as soon as the server answers. Returns (bytes sent, status, response head+body)."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
    sock.sendall(head.encode())
    sent, piece, answered = 0, b"A" * chunk, False
    try:
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                answered = True
                break
            if writable:
                try:
                    sock.sendall(f"{chunk:x}\r\n".encode() + piece + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    answered = True  # the server closed on us: read its answer
                    break
                sent += chunk
        if not answered:
            sock.sendall(b"0\r\n\r\n")
        sock.settimeout(10)
        response = b""
        while True:
            try:
                more = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not more:
                break
            response += more
            if b"\r\n\r\n" in response and response.rstrip().endswith(b"}"):
                break
    finally:
        sock.close()
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    return sent, status, response


TOTAL = 64 * 2**20  # 64 MiB offered; the limit is ~200 KB


def check_chunked_refusals(base: str, keys: dict) -> list[tuple[str, int, int]]:
    results = []
    for content_type, path, key in [
            ("application/json", "/upload_photo", keys["recognize"]),
            ("multipart/form-data; boundary=xyz", "/upload_photo", keys["recognize"]),
            ("application/json", "/users/alice/photos", keys["manage"]),
            ("application/json", "/users", keys["manage"])]:
        sent, status, response = send_chunked(base, path, {"Content-Type": content_type,
                                                           "X-API-Key": key}, TOTAL)
        assert status == 413, response[:400]
        assert b'"error":"request_too_large"' in response.replace(b" ", b""), response[:400]
        # Refused long before the whole body was sent: only the limit plus what the
        # kernel's socket buffers took in.
        assert sent < TOTAL / 4, sent
        results.append((content_type, path, sent))
    return results


def test_chunked_body_over_the_limit_refused_early_by_werkzeug(app, keys, api_settings):
    with werkzeug_server(app) as base:
        for content_type, path, sent in check_chunked_refusals(base, keys):
            print(f"werkzeug {path} {content_type}: 413 after {sent / 2**20:.1f} MiB of 64 sent")
    assert stored(api_settings) == NOTHING


def test_chunked_body_over_the_limit_refused_early_by_gunicorn(api_settings, tmp_path):
    from tests.api_helpers import read_keys

    with gunicorn(api_settings, tmp_path / "gunicorn.log", workers=1) as (base, _):
        keys = read_keys(api_settings.api_keys_path)
        for content_type, path, sent in check_chunked_refusals(base, keys):
            print(f"gunicorn {path} {content_type}: 413 after {sent / 2**20:.1f} MiB of 64 sent")
    assert stored(api_settings) == NOTHING

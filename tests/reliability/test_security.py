"""Keys, brute force, file modes and client-controlled paths. (401 without a key and 403
for a recognize key on every manage endpoint: tests/test_api.py
test_missing_wrong_and_underprivileged_keys.)"""

from __future__ import annotations

import logging
import re
import secrets
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facerec.api import create_app
from facerec.enroll import enroll_folder
from facerec.naming import USER_ID_PATTERN
from tests.api_helpers import multipart, png_bytes, read_keys
from tests.fakes import fake_pipeline, save_photo
from tests.reliability.conftest import assert_json_error

pytestmark = pytest.mark.reliability


def near_miss(key: str) -> str:
    """A wrong key one character off a real one: a typo a log must not keep either."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


def test_keys_are_never_logged(api_settings, caplog):
    with caplog.at_level(logging.DEBUG):
        app = create_app(api_settings.replace(rate_limit="5 per minute"), pipeline=fake_pipeline())
        keys = read_keys(api_settings.api_keys_path)
        client = app.test_client()
        manage, recog = {"X-API-Key": keys["manage"]}, {"X-API-Key": keys["recognize"]}
        client.post("/users/alice/photos", headers=manage, data=multipart(png_bytes(1)))
        client.post("/upload_photo", headers=recog, data=multipart(png_bytes(1)))
        client.get("/users", headers=recog)  # 403
        for key in keys.values():  # 401 with a near miss of each key, then 429
            for _ in range(4):
                client.post("/upload_photo", headers={"X-API-Key": near_miss(key)},
                            data=multipart(png_bytes(1)))
        client.delete("/users/alice", headers=manage)
        app.extensions["facerec"].rebuilder.wait(10)
    statuses = {r.message for r in caplog.records}
    assert any("-> 401" in m for m in statuses) and any("-> 403" in m for m in statuses)
    assert any("-> 429" in m for m in statuses)
    for key in keys.values():
        assert key not in caplog.text and near_miss(key) not in caplog.text
        assert key[4:20] not in caplog.text  # not even a part of one
    assert not re.search(r"frk_[A-Za-z0-9_-]{20,}", caplog.text)


def test_brute_force_is_rate_limited(api_settings):
    app = create_app(api_settings.replace(rate_limit="20 per minute"), pipeline=fake_pipeline())
    client = app.test_client()
    real = read_keys(api_settings.api_keys_path)["recognize"]
    statuses = []
    for _ in range(60):
        r = client.post("/upload_photo", headers={"X-API-Key": "frk_" + secrets.token_urlsafe(32)},
                        data=multipart(png_bytes(1)))
        statuses.append(r.status_code)
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
    r = client.post("/upload_photo", headers={"X-API-Key": "frk_guess"})
    body = assert_json_error(r, 429, "rate_limited")
    assert "retry later" in body["message"] and int(r.headers["Retry-After"]) > 0
    # The address is limited, whatever key it now sends; the operations endpoints are not.
    assert client.post("/upload_photo", headers={"X-API-Key": real},
                       data=multipart(png_bytes(1))).status_code == 429
    assert client.get("/health").status_code == 200


def test_files_the_service_creates_are_private(api_settings, tmp_path, conn, pipeline):
    app = create_app(api_settings, pipeline=fake_pipeline())
    client = app.test_client()
    manage = {"X-API-Key": read_keys(api_settings.api_keys_path)["manage"]}
    assert client.post("/users/alice/photos", headers=manage,
                       data=multipart(png_bytes(1))).status_code == 201
    assert client.post("/users/bob/photos", headers=manage,
                       data=multipart(png_bytes(2))).status_code == 201
    client.delete("/users/bob", headers=manage)  # a background index build
    assert app.extensions["facerec"].rebuilder.wait(10)
    save_photo(api_settings.photos_dir / "carol.png", 3)
    enroll_folder(api_settings, conn, lambda: pipeline, progress=False)  # convert.py's path
    created = [p for p in tmp_path.rglob("*") if p != api_settings.photos_dir
               and p.name != "carol.png"]  # the fixture and the test made these two
    assert {p.suffix for p in created} >= {".png", ".db", ".json", ".ann", ".npy", ".db-wal"}
    public = [f"{oct(stat.S_IMODE(p.stat().st_mode))} {p.relative_to(tmp_path)}" for p in created
              if stat.S_IMODE(p.stat().st_mode) & 0o007]
    assert public == []
    keys = api_settings.api_keys_path
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.parent.stat().st_mode) == 0o700


def snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user_id=st.text(min_size=0, max_size=80) | st.sampled_from(
    ["..", "../x", "a/../../b", "/etc/passwd", "a\\..\\b", "x" * 65, "ok.user-1", "CON", "a\x00b",
     "%2e%2e%2f", "\u202eevil", "nul", "a" * 64]))
def test_no_client_path_reaches_the_filesystem(user_id, client, manage, api_settings, tmp_path):
    """Whatever id a client names, the only files created are <photos>/<allowed id>/api-*."""
    from urllib.parse import quote

    before = snapshot(tmp_path)
    responses = [
        client.post(f"/users/{quote(user_id, safe='')}/photos", headers=manage,
                    data=multipart(png_bytes(1))),
        client.post("/users", headers=manage, json={"id": user_id}),
    ]
    for r in responses:
        assert r.status_code < 500 and r.is_json, (user_id, r.status_code)
    new = snapshot(tmp_path) - before
    photos = api_settings.photos_dir.relative_to(tmp_path).as_posix()
    for rel in new:
        parts = rel.split("/")
        if parts[0] == "var":  # the database's own files
            continue
        assert parts[0] == photos and USER_ID_PATTERN.fullmatch(parts[1]) and ".." not in parts[1], rel
        assert len(parts) == 2 or (len(parts) == 3 and parts[2].startswith("api-")), rel
    if new - {rel for rel in new if rel.startswith("var")}:
        assert USER_ID_PATTERN.fullmatch(user_id) and ".." not in user_id

"""The API on a real HTTP server (werkzeug, threaded) on 127.0.0.1: several client
threads send real requests while the index is rebuilt over and over and new users are
enrolled, and not one request may fail or answer wrongly."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from werkzeug.serving import make_server

from facerec import store
from facerec.api import create_app
from facerec.index import build_index, read_manifest
from tests.api_helpers import b64, png_bytes, read_keys
from tests.fakes import FAKE_MODEL, fake_pipeline

CLIENTS = 4
REQUESTS_PER_CLIENT = 40


@pytest.fixture
def server(settings, tmp_path):
    api_settings = settings.replace(api_keys_path=tmp_path / "keys.json", rate_limit="")
    app = create_app(api_settings, pipeline=fake_pipeline())
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}", api_settings
    finally:
        http.shutdown()
        thread.join(10)


def call(base: str, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={
        "X-API-Key": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_requests_never_fail_while_the_index_is_rebuilt(server):
    base, settings = server
    keys = read_keys(settings.api_keys_path)
    for identity in range(1, 6):
        status, _ = call(base, f"/users/user{identity}/photos", keys["manage"],
                         {"image": b64(png_bytes(identity))})
        assert status == 201
    stop = threading.Event()
    failures: list[str] = []
    builds = []

    def rebuild_forever():
        conn = store.connect(settings.db_path)
        try:
            while not stop.is_set():
                builds.append(build_index(conn, settings.index_dir, "fake", FAKE_MODEL.dim,
                                          n_trees=5).generation)
        finally:
            conn.close()

    def client(number: int):
        for i in range(REQUESTS_PER_CLIENT):
            identity = 1 + (number + i) % 5
            try:
                status, body = call(base, "/upload_photo", keys["recognize"],
                                    {"image": b64(png_bytes(identity, variant=100 + i))})
            except Exception as exc:  # a dropped connection counts as a failure
                failures.append(f"client {number} request {i}: {exc!r}")
                continue
            if status != 200 or body.get("user_id") != f"user{identity}":
                failures.append(f"client {number} request {i}: {status} {body}")

    def enroll_newcomers():
        """New users enrolled meanwhile must be found within 2 s."""
        for identity in range(6, 10):
            call(base, f"/users/new{identity}/photos", keys["manage"],
                 {"image": b64(png_bytes(identity))})
            deadline = time.monotonic() + 2
            while True:
                _, body = call(base, "/upload_photo", keys["recognize"],
                               {"image": b64(png_bytes(identity, variant=1))})
                if body.get("user_id") == f"new{identity}":
                    break
                if time.monotonic() > deadline:
                    failures.append(f"new{identity} not found within 2 s: {body}")
                    break

    builder = threading.Thread(target=rebuild_forever)
    workers = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    workers.append(threading.Thread(target=enroll_newcomers))
    builder.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    stop.set()
    builder.join(30)

    assert failures == []
    assert len(builds) >= 3, "the index should have been rebuilt during the requests"
    assert read_manifest(settings.index_dir).count == 9
    status, health = call(base, "/health", keys["recognize"])
    assert status == 200 and health["index"]["generation"] == builds[-1]

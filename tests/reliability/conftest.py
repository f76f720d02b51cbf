"""Fixtures of the reliability suite: the API with the fake models over a real SQLite
database, index and photos folder in tmp_path, its keys, and checks that nothing was
stored. Every module here sets pytestmark = pytest.mark.reliability."""

from __future__ import annotations

import pytest

from facerec import store

MAX_UPLOAD = 100_000  # small, so over-limit bodies are cheap to send


@pytest.fixture
def api_settings(settings, tmp_path):
    return settings.replace(api_keys_path=tmp_path / "secrets" / "api_keys.json", rate_limit="",
                            max_upload_bytes=MAX_UPLOAD)


def stored(settings) -> dict[str, int]:
    """How much is stored: files in the photos folder and rows per table."""
    conn = store.connect(settings.db_path)
    try:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("users", "faces", "photos")}
    finally:
        conn.close()
    counts["files"] = sum(1 for p in settings.photos_dir.rglob("*") if p.is_file())
    return counts


NOTHING = {"users": 0, "faces": 0, "photos": 0, "files": 0}


def assert_json_error(response, status: int, code: str | None = None) -> dict:
    """The documented JSON error: status, code, a message, the request id; no traceback."""
    body = response.get_json(silent=True)
    assert response.status_code == status, (response.status_code, body)
    assert body is not None and response.mimetype == "application/json", response.data[:200]
    if code is not None:
        assert body["error"] == code, body
    assert body["message"] and body["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body

"""GET /ingest: the photos ledger through the API, as convert.py --report shows it."""

from __future__ import annotations

from facerec import store
from facerec.api import create_app
from facerec.enroll import enroll_folder
from tests.api_helpers import read_keys
from tests.fakes import fake_pipeline, save_photo


def test_ingest_lists_photos_by_status_with_reasons(settings, tmp_path):
    settings = settings.replace(api_keys_path=tmp_path / "k" / "keys.json", rate_limit="")
    save_photo(settings.photos_dir / "u1.png", 1)
    save_photo(settings.photos_dir / "u2.png", 2, faces=2)
    (settings.photos_dir / "junk.jpg").write_text("not a photo")
    pipeline = fake_pipeline()
    conn = store.open_db(settings.db_path)
    enroll_folder(settings, conn, lambda: pipeline, progress=False)
    client = create_app(settings, pipeline=pipeline).test_client()
    keys = read_keys(settings.api_keys_path)
    manage, recog = {"X-API-Key": keys["manage"]}, {"X-API-Key": keys["recognize"]}

    everything = client.get("/ingest", headers=manage).get_json()
    assert everything["counts"] == {"enrolled": 2, "rejected": 1, "removed": 0, "flagged": 1}
    assert [p["path"] for p in everything["photos"]] == ["u1.png", "u2.png", "junk.jpg"]

    rejected = client.get("/ingest?status=rejected", headers=manage).get_json()
    assert rejected["matching"] == 1
    assert rejected["photos"][0]["reason"].startswith("bad_image")
    flagged = client.get("/ingest?status=flagged", headers=manage).get_json()
    assert flagged["photos"][0]["flags"] == ["multiple_faces"]
    page = client.get("/ingest?limit=1&offset=1", headers=manage).get_json()
    assert [p["path"] for p in page["photos"]] == ["u2.png"]

    assert client.get("/ingest?status=lost", headers=manage).status_code == 400
    assert client.get("/ingest", headers=recog).status_code == 403
    assert client.get("/ingest").status_code == 401

"""The watcher with the real MTCNN + FaceNet models on real photos (5-celebrity set): an
FTP upload becomes recognizable (through facerec.recognize with a FaceIndex, and through
the API's Flask test client), an overwrite with another person replaces the face, and a
delete makes the person unrecognizable."""

from __future__ import annotations

import io

import pytest

from facerec import store
from facerec.api import create_app
from facerec.config import Settings
from facerec.imaging import load_image_file
from facerec.index import FaceIndex
from facerec.recognize import recognize
from facerec.watch import WatchOptions
from tests.api_helpers import read_keys
from tests.watch_helpers import ftp_client, running_ftp_server, running_watcher, upload, wait_for

pytestmark = pytest.mark.models


def first_photo(samples_dir, split: str, person: str):
    return sorted((samples_dir / split / person).iterdir())[0]


def who(settings, pipeline, path) -> str | None:
    index = FaceIndex(settings.db_path, settings.index_dir, pipeline.model.name, pipeline.model.dim)
    results = recognize(load_image_file(path), pipeline, index,
                        threshold=settings.effective_threshold)
    return results[0].best.user_id if results and results[0].recognized else None


def test_ftp_upload_overwrite_delete_with_real_models(tmp_path, samples_dir, real_pipeline):
    photos = tmp_path / "data_foto"
    photos.mkdir()
    settings = Settings(photos_dir=photos, db_path=tmp_path / "facerec.db",
                        index_dir=tmp_path / "index", api_keys_path=tmp_path / "keys.json",
                        rate_limit="")
    conn = store.open_db(settings.db_path)
    ben_val = first_photo(samples_dir, "val", "ben_afflek")
    madonna_val = first_photo(samples_dir, "val", "madonna")
    options = WatchOptions(settle=0.2, reconcile_interval=600, rebuild_interval=600)
    with running_ftp_server(photos) as ftp, \
            running_watcher(settings, lambda: real_pipeline, options):
        upload(ftp, "u100.jpg", first_photo(samples_dir, "train", "ben_afflek").read_bytes())
        wait_for(lambda: who(settings, real_pipeline, ben_val) == "u100", 60,
                 "Ben Affleck recognized as u100")

        # The same upload, seen through the HTTP API.
        app = create_app(settings, pipeline=real_pipeline)
        key = read_keys(settings.api_keys_path)["recognize"]
        answer = app.test_client().post(
            "/upload_photo", headers={"X-API-Key": key},
            data={"photo": (io.BytesIO(ben_val.read_bytes()), "val.jpg")})
        assert answer.status_code == 200 and answer.json["user_id"] == "u100", answer.json

        upload(ftp, "u100.jpg", first_photo(samples_dir, "train", "madonna").read_bytes())
        wait_for(lambda: who(settings, real_pipeline, madonna_val) == "u100", 60,
                 "Madonna recognized as u100 after the overwrite")
        assert who(settings, real_pipeline, ben_val) is None

        upload(ftp, "u100.jpg.part", b"")  # ignored temporary name, never in the ledger
        with ftp_client(ftp) as client:
            client.delete("u100.jpg")
        wait_for(lambda: conn.execute("SELECT status FROM photos WHERE path = 'u100.jpg'"
                                      ).fetchone()[0] == "removed", 30, "the photo removed")
        assert who(settings, real_pipeline, madonna_val) is None
    assert conn.execute("SELECT count(*) FROM photos").fetchone()[0] == 1
    conn.close()

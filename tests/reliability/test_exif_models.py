"""A phone photo stored sideways with EXIF orientation 6 or 8 is recognized as if upright,
with the real MTCNN + FaceNet on real photos (the decoder's own handling of the tag:
tests/test_imaging.py test_exif_orientation_is_applied)."""

from __future__ import annotations

import base64
import io
import shutil

import pytest
from PIL import Image

from facerec.api import create_app
from facerec.config import Settings
from tests.api_helpers import read_keys

pytestmark = [pytest.mark.reliability, pytest.mark.models]

PEOPLE = ["ben_afflek", "elton_john", "jerry_seinfeld", "madonna", "mindy_kaling"]


def sideways(path, orientation: int) -> bytes:
    """The photo's pixels turned so that a viewer applying `orientation` shows it upright."""
    upright = Image.open(path).convert("RGB")
    stored = upright.rotate(90 if orientation == 6 else -90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def api(tmp_path_factory, samples_dir, real_pipeline):
    from facerec import store
    from facerec.enroll import enroll_folder

    root = tmp_path_factory.mktemp("exif")
    settings = Settings(photos_dir=root / "data_foto", db_path=root / "var" / "facerec.db",
                        index_dir=root / "var" / "index", api_keys_path=root / "keys.json",
                        rate_limit="")
    for person in PEOPLE:  # three train photos each
        folder = settings.photos_dir / person
        folder.mkdir(parents=True)
        for photo in sorted((samples_dir / "train" / person).glob("*.jpg"))[:3]:
            shutil.copy(photo, folder / photo.name)
    conn = store.open_db(settings.db_path)
    enroll_folder(settings, conn, lambda: real_pipeline, progress=False)
    conn.close()
    app = create_app(settings, pipeline=real_pipeline)
    return app.test_client(), {"X-API-Key": read_keys(settings.api_keys_path)["recognize"]}


@pytest.mark.parametrize("orientation", [6, 8])
@pytest.mark.parametrize("person", ["ben_afflek", "madonna"])
def test_rotated_phone_photo_is_recognized_upright(api, samples_dir, person, orientation):
    client, key = api
    photo = sorted((samples_dir / "val" / person).glob("*.jpg"))[0]
    data = sideways(photo, orientation)
    assert Image.open(io.BytesIO(data)).size[::-1] == Image.open(photo).size  # really sideways
    r = client.post("/upload_photo", headers=key, json={"image": base64.b64encode(data).decode()})
    assert r.status_code == 200, r.json
    assert r.json["user_id"] == person and r.json["recognized"], r.json

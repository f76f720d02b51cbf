"""The API with the real MTCNN + FaceNet models on real photos (5-celebrity set): train
photos enrolled once for the module (a few per person, to stay quick on 2 cores), val
photos recognized, verified and compared over HTTP through Flask's test client."""

from __future__ import annotations

import io
import shutil

import pytest

from facerec import store
from facerec.api import create_app
from facerec.config import Settings
from facerec.enroll import enroll_folder
from tests.api_helpers import b64, read_keys

pytestmark = pytest.mark.models

TRAIN_PER_PERSON = 4
VAL_PER_PERSON = 2


@pytest.fixture(scope="module")
def api(tmp_path_factory, samples_dir, real_pipeline):
    root = tmp_path_factory.mktemp("api-real")
    photos = root / "data_foto"
    for person_dir in sorted((samples_dir / "train").iterdir()):
        for path in sorted(person_dir.iterdir())[:TRAIN_PER_PERSON]:
            (photos / person_dir.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, photos / person_dir.name / path.name)
    settings = Settings(photos_dir=photos, db_path=root / "facerec.db", index_dir=root / "index",
                        api_keys_path=root / "keys.json", rate_limit="")
    conn = store.open_db(settings.db_path)
    enroll_folder(settings, conn, lambda: real_pipeline, progress=False)
    conn.close()
    app = create_app(settings, pipeline=real_pipeline)
    keys = read_keys(settings.api_keys_path)
    return app.test_client(), {"X-API-Key": keys["recognize"]}, {"X-API-Key": keys["manage"]}


def val_photos(samples_dir, person: str) -> list[bytes]:
    paths = sorted((samples_dir / "val" / person).iterdir())[:VAL_PER_PERSON]
    return [p.read_bytes() for p in paths]


def people(samples_dir) -> list[str]:
    return sorted(p.name for p in (samples_dir / "val").iterdir())


def test_upload_photo_recognizes_every_val_person(api, samples_dir):
    client, recog, _ = api
    for person in people(samples_dir):
        for data in val_photos(samples_dir, person):
            r = client.post("/upload_photo", headers=recog,
                            data={"photo": (io.BytesIO(data), "val.jpg")})
            assert r.status_code == 200, r.json
            body = r.json
            assert body["recognized"] is True and body["user_id"] == person, body
            assert body["profile"]["id"] == person and not body["ambiguous"]
            assert body["similarity_score"] >= body["threshold"]
            main = body["faces"][0]
            assert len(main["landmarks"]) == 5 and 0 < main["detection_score"] <= 1


def test_verify_right_and_wrong_claims(api, samples_dir):
    client, recog, _ = api
    photo = b64(val_photos(samples_dir, "madonna")[0])
    right = client.post("/verify", headers=recog, json={"image": photo, "user_id": "madonna"})
    wrong = client.post("/verify", headers=recog, json={"image": photo, "user_id": "elton_john"})
    assert right.status_code == 200 and right.json["match"] is True
    assert wrong.status_code == 200 and wrong.json["match"] is False
    assert right.json["similarity_score"] > wrong.json["similarity_score"] + 0.2


def test_compare_same_and_different_people(api, samples_dir):
    client, recog, _ = api
    ben1, ben2 = val_photos(samples_dir, "ben_afflek")
    mindy = val_photos(samples_dir, "mindy_kaling")[0]
    same = client.post("/compare", headers=recog, json={"image1": b64(ben1), "image2": b64(ben2)})
    other = client.post("/compare", headers=recog, json={"image1": b64(ben1), "image2": b64(mindy)})
    assert same.json["same_person"] is True and other.json["same_person"] is False


def test_enroll_through_the_api_then_recognized(api, samples_dir):
    client, recog, manage = api
    train = sorted((samples_dir / "train" / "jerry_seinfeld").iterdir())
    r = client.post("/users/jerry_api/photos", headers=manage,
                    data={"photo": (io.BytesIO(train[-1].read_bytes()), "x.jpg")})
    assert r.status_code == 201 and r.json["face"]["detection_score"] > 0.9
    r = client.get("/users/jerry_api", headers=manage)
    assert [f["face_id"] for f in r.json["faces"]] == [r.json["face_id"]]
    assert client.delete("/users/jerry_api", headers=manage).status_code == 200


def test_missing_weights_are_a_503_that_names_the_fix(tmp_path):
    settings = Settings(photos_dir=tmp_path, db_path=tmp_path / "db", index_dir=tmp_path / "ix",
                        models_dir=tmp_path / "no-models", auth_enabled=False, rate_limit="")
    client = create_app(settings).test_client()
    health = client.get("/health")
    assert health.status_code == 503 and health.json["models_loaded"] is False
    assert "setup_models" in health.json["error"]
    r = client.post("/upload_photo", json={"image": b64(b"x")})
    assert r.status_code == 503 and r.json["error"] == "model_unavailable"

"""The real models on real photos (5-celebrity set): enroll the train photos, then
every val photo must be recognized as the right person, and a person who was not
enrolled must not be."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from facerec import store
from facerec.config import Settings
from facerec.enroll import enroll_folder
from facerec.imaging import load_image_file
from facerec.index import FaceIndex
from facerec.recognize import recognize

pytestmark = pytest.mark.models

HELD_OUT = "madonna"  # never enrolled: her photos must come back unknown


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, samples_dir, real_pipeline):
    root = tmp_path_factory.mktemp("real")
    photos = root / "data_foto"
    for person_dir in sorted((samples_dir / "train").iterdir()):
        if person_dir.name != HELD_OUT:
            shutil.copytree(person_dir, photos / person_dir.name)
    settings = Settings(photos_dir=photos, db_path=root / "facerec.db", index_dir=root / "index")
    conn = store.open_db(settings.db_path)
    summary = enroll_folder(settings, conn, lambda: real_pipeline, progress=False)
    yield settings, conn, summary
    conn.close()


def index_for(settings: Settings, **kw) -> FaceIndex:
    return FaceIndex(settings.db_path, settings.index_dir, "facenet128", 128, **kw)


def val_photos(samples_dir, people=None):
    for person_dir in sorted((samples_dir / "val").iterdir()):
        if people is None or person_dir.name in people:
            for path in sorted(person_dir.glob("*.jpg")):
                yield person_dir.name, path


def test_train_photos_enrolled(enrolled):
    settings, conn, summary = enrolled
    assert summary.users_created == 4
    assert summary.enrolled >= 70  # 74 train photos of 4 people; a few may hold no findable face
    for row in conn.execute("SELECT path, reason FROM photos WHERE status = 'rejected'"):
        assert row["reason"].startswith("no_face"), dict(row)


def test_every_val_photo_recognized_as_the_right_person(enrolled, samples_dir, real_pipeline):
    settings, _, _ = enrolled
    index = index_for(settings)
    threshold = settings.effective_threshold
    wrong = []
    for person, path in val_photos(samples_dir):
        if person == HELD_OUT:
            continue
        faces = recognize(load_image_file(path), real_pipeline, index, threshold=threshold)
        assert faces, f"no face found in {path.name}"
        main = faces[0]
        if not (main.recognized and main.best.user_id == person):
            wrong.append((person, path.name, main.best))
    assert wrong == []


def test_person_not_enrolled_is_not_recognized(enrolled, samples_dir, real_pipeline):
    settings, _, _ = enrolled
    index = index_for(settings)
    for _, path in val_photos(samples_dir, {HELD_OUT}):
        faces = recognize(load_image_file(path), real_pipeline, index,
                          threshold=settings.effective_threshold)
        assert faces and not faces[0].recognized, (path.name, faces[0].best)


def test_annoy_path_gives_the_same_answers(enrolled, samples_dir, real_pipeline):
    """Forcing the Annoy search (not exact numpy) must not change any answer."""
    settings, _, _ = enrolled
    exact, annoy = index_for(settings), index_for(settings, exact_search_limit=0)
    for _, path in list(val_photos(samples_dir))[::3]:
        vectors = np.array([a.embedding for a in real_pipeline.analyze(load_image_file(path))][:1])
        assert [c.face_id for c in exact.search(vectors)[0][:5]] == \
               [c.face_id for c in annoy.search(vectors)[0][:5]]


def test_second_run_is_a_no_op(enrolled):
    settings, conn, first = enrolled
    loads = []
    again = enroll_folder(settings, conn, lambda: loads.append(1), progress=False)
    assert (again.enrolled, again.replaced, again.removed, loads) == (0, 0, 0, [])
    assert again.unchanged == first.enrolled + sum(first.rejected.values())
    assert again.seconds < 0.1 * first.seconds


def test_no_face_corrupt_and_two_face_photos(tmp_path, samples_dir, real_pipeline):
    photos = tmp_path / "data_foto"
    photos.mkdir()
    a = load_image_file(next((samples_dir / "val" / "ben_afflek").glob("*.jpg")))
    b = load_image_file(next((samples_dir / "val" / "mindy_kaling").glob("*.jpg")))
    small_b = np.asarray(Image.fromarray(b).resize((b.shape[1] * 2 // 3, b.shape[0] * 2 // 3)))
    canvas = np.zeros((max(a.shape[0], small_b.shape[0]), a.shape[1] + small_b.shape[1], 3), np.uint8)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: small_b.shape[0], a.shape[1]:] = small_b
    Image.fromarray(canvas).save(photos / "pair.jpg", quality=95)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(photos / "noise.png")
    good = (samples_dir / "val" / "ben_afflek").glob("*.jpg").__next__().read_bytes()
    (photos / "cut.jpg").write_bytes(good[: len(good) // 3])
    settings = Settings(photos_dir=photos, db_path=tmp_path / "f.db", index_dir=tmp_path / "index")
    conn = store.open_db(settings.db_path)
    summary = enroll_folder(settings, conn, lambda: real_pipeline, progress=False)
    rows = {r["path"]: r for r in conn.execute("SELECT * FROM photos")}
    assert rows["pair.jpg"]["status"] == "enrolled" and '"multiple_faces"' in rows["pair.jpg"]["flags"]
    face = conn.execute("SELECT bbox FROM faces WHERE photo_path = 'pair.jpg'").fetchone()
    assert json.loads(face["bbox"])[0] < a.shape[1]  # the larger face: Ben Affleck, on the left
    assert rows["noise.png"]["reason"].startswith("no_face")
    assert rows["cut.jpg"]["reason"].startswith("bad_image")
    assert (summary.enrolled, summary.multiple_faces, sum(summary.rejected.values())) == (1, 1, 2)

"""Enrollment over a real folder and a real SQLite database, with the fake models."""

from __future__ import annotations

import json
import os

import pytest

from facerec import store
from facerec.enroll import enroll_folder
from facerec.errors import IndexMismatch
from facerec.index import FaceIndex, read_manifest
from facerec.recognize import recognize
from tests.fakes import fake_photo, save_photo


def run(settings, conn, pipeline, **kw):
    loads = []

    def get_pipeline():
        loads.append(1)
        return pipeline

    summary = enroll_folder(settings, conn, get_pipeline, progress=False, **kw)
    summary.model_loads = len(loads)
    return summary


def active_faces(conn):
    return conn.execute("SELECT user_id, photo_path FROM faces WHERE active = 1 "
                        "ORDER BY photo_path").fetchall()


def searcher(settings):
    return FaceIndex(settings.db_path, settings.index_dir, "fake", 48)


def who(settings, pipeline, identity, variant=9):
    results = recognize(fake_photo(identity, variant), pipeline, searcher(settings),
                        threshold=settings.threshold)
    assert len(results) == 1
    return results[0].best.user_id if results[0].recognized else None


def test_enrolls_both_layouts_and_auto_registers_users(settings, conn, pipeline):
    photos = settings.photos_dir
    save_photo(photos / "u1024.png", 1)
    save_photo(photos / "u1024_2.png", 1, 1)
    save_photo(photos / "u2048" / "front.png", 2)
    save_photo(photos / "u2048" / "side.png", 2, 1)
    summary = run(settings, conn, pipeline)
    assert (summary.enrolled, summary.users_created, sum(summary.rejected.values())) == (4, 2, 0)
    assert [tuple(r) for r in active_faces(conn)] == [
        ("u1024", "u1024.png"), ("u1024", "u1024_2.png"),
        ("u2048", "u2048/front.png"), ("u2048", "u2048/side.png")]
    users = {r["id"]: r["face_id"] for r in conn.execute("SELECT id, face_id FROM users")}
    assert set(users) == {"u1024", "u2048"} and all(users.values())
    manifest = read_manifest(settings.index_dir)
    assert (manifest.generation, manifest.count, manifest.model, manifest.dim) == (1, 4, "fake", 48)
    assert who(settings, pipeline, 1) == "u1024"
    assert who(settings, pipeline, 2) == "u2048"
    assert who(settings, pipeline, 3) is None


def test_second_run_loads_no_model_and_changes_nothing(settings, conn, pipeline):
    for i in range(5):
        save_photo(settings.photos_dir / f"u{i}.png", i)
    first = run(settings, conn, pipeline)
    before = conn.execute("SELECT count(*) FROM faces").fetchone()[0]
    second = run(settings, conn, pipeline)
    assert first.enrolled == 5
    assert (second.enrolled, second.unchanged, second.model_loads) == (0, 5, 0)
    assert second.index == "unchanged"
    assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == before
    assert read_manifest(settings.index_dir).generation == 1


def test_touched_but_identical_photo_is_not_reprocessed(settings, conn, pipeline):
    path = save_photo(settings.photos_dir / "u1.png", 1)
    run(settings, conn, pipeline)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    again = run(settings, conn, pipeline)
    assert (again.unchanged, again.enrolled, again.replaced, again.model_loads) == (1, 0, 0, 0)
    third = run(settings, conn, pipeline)
    assert third.unchanged == 1  # the new mtime was remembered: a stat is enough now


def test_changed_photo_replaces_its_face(settings, conn, pipeline):
    path = save_photo(settings.photos_dir / "u1.png", 1)
    run(settings, conn, pipeline)
    old_face = conn.execute("SELECT face_id FROM photos WHERE path = 'u1.png'").fetchone()[0]
    save_photo(path, 7)  # another person's photo under the same name
    summary = run(settings, conn, pipeline)
    assert (summary.replaced, summary.enrolled) == (1, 0)
    rows = conn.execute("SELECT face_id, active FROM faces ORDER BY face_id").fetchall()
    assert [(r[0] == old_face, r[1]) for r in rows] == [(True, 0), (False, 1)]
    assert who(settings, pipeline, 7) == "u1"
    assert who(settings, pipeline, 1) is None


def test_removed_photo_deactivates_its_face(settings, conn, pipeline):
    keep = save_photo(settings.photos_dir / "u1.png", 1)
    gone = save_photo(settings.photos_dir / "u2.png", 2)
    run(settings, conn, pipeline)
    gone.unlink()
    summary = run(settings, conn, pipeline)
    assert summary.removed == 1
    assert [r["photo_path"] for r in active_faces(conn)] == [keep.name]
    assert store.get_user(conn, "u2")["face_id"] is None  # profile kept, no face left
    assert conn.execute("SELECT status FROM photos WHERE path='u2.png'").fetchone()[0] == "removed"
    assert who(settings, pipeline, 2) is None
    assert who(settings, pipeline, 1) == "u1"


def test_rejects_with_reasons_and_never_crashes(settings, conn, pipeline):
    photos = settings.photos_dir
    save_photo(photos / "ok.png", 1)
    save_photo(photos / "blank.png", 0, faces=0)
    (photos / "text.jpg").write_text("this is not an image")
    truncated = fake_photo(2)
    from PIL import Image
    Image.fromarray(truncated).save(photos / "half.jpg", format="JPEG")
    data = (photos / "half.jpg").read_bytes()
    (photos / "half.jpg").write_bytes(data[: len(data) // 2])
    (photos / "notes.txt").write_text("hello")
    save_photo(photos / "bad id!.png", 3)
    save_photo(photos / "a" / "b" / "deep.png", 4)
    (photos / ".hidden.png").write_bytes(b"x")
    (photos / "upload.png.part").write_bytes(b"x")
    summary = run(settings, conn, pipeline)
    assert summary.enrolled == 1
    assert summary.ignored == 2
    reasons = dict(conn.execute("SELECT path, reason FROM photos WHERE status = 'rejected'").fetchall())
    assert set(reasons) == {"blank.png", "text.jpg", "half.jpg", "notes.txt", "bad id!.png", "a/b/deep.png"}
    assert reasons["blank.png"].startswith("no_face")
    assert reasons["text.jpg"].startswith("bad_image")
    assert reasons["half.jpg"].startswith("bad_image")
    assert reasons["notes.txt"].startswith("unsupported_file")
    assert reasons["bad id!.png"].startswith("invalid_user_id")
    assert reasons["a/b/deep.png"].startswith("unsupported_file: too deep")
    assert sum(summary.rejected.values()) == 6
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 1


def test_two_faces_enrolls_the_largest_and_flags(settings, conn, pipeline):
    save_photo(settings.photos_dir / "u1.png", 1, faces=2)
    summary = run(settings, conn, pipeline)
    assert (summary.enrolled, summary.multiple_faces) == (1, 1)
    row = conn.execute("SELECT p.flags, f.bbox FROM photos p JOIN faces f USING (face_id)").fetchone()
    assert json.loads(row["flags"]) == ["multiple_faces"]
    assert json.loads(row["bbox"]) == [0, 0, 64, 64]


def test_duplicate_identity_is_flagged_or_rejected(settings, conn, pipeline):
    save_photo(settings.photos_dir / "alice.png", 5)
    save_photo(settings.photos_dir / "bob.png", 5, 1)  # same face, another user id
    summary = run(settings, conn, pipeline)
    assert (summary.enrolled, summary.possible_duplicates) == (2, 1)
    row = conn.execute("SELECT flags, duplicate_of FROM photos WHERE path='bob.png'").fetchone()
    assert json.loads(row["flags"]) == ["possible_duplicate"] and row["duplicate_of"] == "alice"

    strict = settings.replace(reject_duplicates=True)
    save_photo(settings.photos_dir / "carol.png", 5, 2)
    summary = run(strict, conn, pipeline)
    assert summary.rejected["duplicate_identity"] == 1
    reason = conn.execute("SELECT reason FROM photos WHERE path='carol.png'").fetchone()[0]
    assert reason.startswith("duplicate_identity") and ("alice" in reason or "bob" in reason)


def test_users_csv_sets_and_updates_profiles(settings, conn, pipeline):
    save_photo(settings.photos_dir / "u1.png", 1)
    csv_path = settings.photos_dir / "users.csv"
    csv_path.write_text("id,name,email,department\nu1,Ann Lee,ann@example.org,R&D\nu9,Bo,,\n")
    summary = run(settings, conn, pipeline)
    assert summary.users_created == 2  # u1 from the CSV, u9 too; the photo adds no one new
    assert store.user_profile(store.get_user(conn, "u1")) == {
        "id": "u1", "name": "Ann Lee", "email": "ann@example.org", "department": "R&D"}
    again = run(settings, conn, pipeline)
    assert (again.users_created, again.profiles_updated) == (0, 0)
    csv_path.write_text("id,name,email\nu1,Ann Lee-Smith,ann@example.org\n")
    updated = run(settings, conn, pipeline)
    assert updated.profiles_updated == 1
    assert store.get_user(conn, "u1")["name"] == "Ann Lee-Smith"


def test_rebuild_redoes_everything(settings, conn, pipeline):
    for i in range(3):
        save_photo(settings.photos_dir / f"u{i}.png", i)
    run(settings, conn, pipeline)
    summary = run(settings, conn, pipeline, rebuild=True)
    assert (summary.replaced, summary.model_loads > 0) == (3, True)
    assert conn.execute("SELECT count(*) FROM faces WHERE active = 1").fetchone()[0] == 3
    assert read_manifest(settings.index_dir).generation == 2


def test_model_change_requires_rebuild(settings, conn, pipeline):
    save_photo(settings.photos_dir / "u1.png", 1)
    run(settings, conn, pipeline)
    with pytest.raises(IndexMismatch, match="--rebuild"):
        run(settings.replace(model="facenet128"), conn, pipeline)


def test_index_search_sees_new_and_deleted_faces_without_rebuild(settings, conn, pipeline):
    save_photo(settings.photos_dir / "u1.png", 1)
    run(settings, conn, pipeline)
    save_photo(settings.photos_dir / "u2.png", 2)
    run(settings, conn, pipeline, build=False)  # enrolled, not yet indexed
    assert read_manifest(settings.index_dir).count == 1
    assert who(settings, pipeline, 2) == "u2"  # found through the exact delta
    (settings.photos_dir / "u1.png").unlink()
    run(settings, conn, pipeline, build=False)
    assert who(settings, pipeline, 1) is None  # gone although generation 1 still holds it

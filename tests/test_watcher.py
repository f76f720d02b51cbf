"""The watcher with a real watchdog observer on a temporary folder, a real pyftpdlib server
on 127.0.0.1 and a real ftplib client, real SQLite; the fake models keep it fast."""

from __future__ import annotations

import io
import os
import shutil
import signal
import time

import pytest

from facerec import store
from facerec.enroll import enroll_folder
from facerec.index import FaceIndex, read_manifest
from facerec.ingest_report import ingest_report
from facerec.recognize import recognize
from facerec.watch import WatchOptions
from tests.fakes import fake_photo, save_photo
from tests.watch_helpers import (
    ftp_client,
    png_bytes,
    running_ftp_server,
    running_watcher,
    start_fake_watcher,
    upload,
    wait_for,
)


def who(settings, pipeline, identity, variant=9):
    index = FaceIndex(settings.db_path, settings.index_dir, "fake", 48)
    results = recognize(fake_photo(identity, variant), pipeline, index, threshold=settings.threshold)
    return results[0].best.user_id if results and results[0].recognized else None


def entry(conn, path):
    return conn.execute("SELECT * FROM photos WHERE path = ?", (path,)).fetchone()


def status(conn, path):
    row = entry(conn, path)
    return None if row is None else row["status"]


def reasons_of(conn):
    return {r["path"]: r["reason"] for r in conn.execute("SELECT path, reason FROM photos")}


def face_rows(conn, path):
    return conn.execute("SELECT face_id, active, photo_sha256 FROM faces WHERE photo_path = ? "
                        "ORDER BY face_id", (path,)).fetchall()


@pytest.fixture
def ftp(settings):
    with running_ftp_server(settings.photos_dir) as address:
        yield address


@pytest.fixture
def watcher(settings, pipeline):
    with running_watcher(settings, lambda: pipeline) as running:
        yield running


def test_ftp_upload_becomes_recognizable(settings, conn, pipeline, ftp, watcher):
    upload(ftp, "u1.png", png_bytes(1))
    wait_for(lambda: who(settings, pipeline, 1) == "u1", what="u1 recognizable")
    with ftp_client(ftp) as client:
        client.mkd("u2")
        client.storbinary("STOR u2/front.png", io.BytesIO(png_bytes(2)))
    wait_for(lambda: who(settings, pipeline, 2) == "u2", what="u2 (folder layout) recognizable")
    assert [len(face_rows(conn, p)) for p in ("u1.png", "u2/front.png")] == [1, 1]


def test_slow_upload_in_chunks_is_enrolled_once_from_the_complete_file(
        settings, conn, pipeline, ftp, watcher):
    data = png_bytes(3)
    chunks = [data[i:i + len(data) // 4 + 1] for i in range(0, len(data), len(data) // 4 + 1)]
    with ftp_client(ftp) as client:
        client.voidcmd("TYPE I")
        with client.transfercmd("STOR u3.png") as sock:
            for chunk in chunks:
                sock.sendall(chunk)
                # A slow client: each pause is longer than the settle time, and the file
                # is a truncated PNG in between; it must not be read before the close.
                time.sleep(0.6)
        client.voidresp()
    wait_for(lambda: status(conn, "u3.png") == "enrolled", what="u3 enrolled")
    assert watcher.summary.rejected == 0  # no truncated read was ever recorded
    rows = face_rows(conn, "u3.png")
    assert len(rows) == 1 and rows[0]["active"] == 1
    import hashlib
    assert rows[0]["photo_sha256"] == hashlib.sha256(data).hexdigest()
    assert who(settings, pipeline, 3) == "u3"


def test_upload_to_a_temporary_name_then_rename(settings, conn, pipeline, ftp, watcher):
    with ftp_client(ftp) as client:
        client.storbinary("STOR .u4.png.upload", io.BytesIO(png_bytes(4)))
        client.storbinary("STOR u5.png.part", io.BytesIO(png_bytes(5)))
        client.rename(".u4.png.upload", "u4.png")
        client.rename("u5.png.part", "u5.png")
    wait_for(lambda: status(conn, "u4.png") == status(conn, "u5.png") == "enrolled",
             what="u4 and u5 enrolled")
    assert len(face_rows(conn, "u4.png")) == len(face_rows(conn, "u5.png")) == 1
    paths = {r[0] for r in conn.execute("SELECT path FROM photos")}
    assert paths == {"u4.png", "u5.png"}  # temporary names never reach the ledger
    assert who(settings, pipeline, 4) == "u4"


def test_overwrite_with_another_persons_photo_replaces_the_face(
        settings, conn, pipeline, ftp, watcher):
    upload(ftp, "u6.png", png_bytes(6))
    wait_for(lambda: who(settings, pipeline, 6) == "u6", what="u6 recognizable")
    upload(ftp, "u6.png", png_bytes(7))
    wait_for(lambda: who(settings, pipeline, 7) == "u6", what="the new photo recognized as u6")
    assert who(settings, pipeline, 6) is None
    assert [r["active"] for r in face_rows(conn, "u6.png")] == [0, 1]


def test_deleted_photo_is_no_longer_recognized(settings, conn, pipeline, ftp, watcher):
    upload(ftp, "u8.png", png_bytes(8))
    wait_for(lambda: who(settings, pipeline, 8) == "u8", what="u8 recognizable")
    with ftp_client(ftp) as client:
        client.delete("u8.png")
    wait_for(lambda: status(conn, "u8.png") == "removed", what="u8 removed")
    assert who(settings, pipeline, 8) is None
    assert [r["active"] for r in face_rows(conn, "u8.png")] == [0]


def test_rejects_bad_files_with_reasons_and_keeps_running(settings, conn, pipeline, ftp, watcher):
    photos = settings.photos_dir
    upload(ftp, "u9.png", b"this is not an image at all")
    upload(ftp, "notes.txt", b"hello")
    upload(ftp, "bad name;$(id).png", png_bytes(9))
    upload(ftp, "../../../escape.png", png_bytes(10))  # the server keeps it inside its home
    with open(os.path.join(os.fsencode(photos), b"\xff\xfe-latin1.png"), "wb") as f:
        f.write(png_bytes(11))  # a name that is not UTF-8
    save_photo(photos / "u12.png", 12, faces=0)
    wait_for(lambda: {status(conn, p) for p in
                      ("u9.png", "notes.txt", "bad name;$(id).png", "u12.png")} == {"rejected"},
             what="the bad files rejected")
    reasons = {r["path"]: r["reason"] for r in conn.execute("SELECT path, reason FROM photos")}
    assert reasons["u9.png"].startswith("bad_image")
    assert reasons["notes.txt"].startswith("unsupported_file")
    assert reasons["bad name;$(id).png"].startswith("invalid_user_id")
    assert reasons["u12.png"].startswith("no_face")
    wait_for(lambda: status(conn, "escape.png") == "enrolled", what="escape.png kept inside")
    assert not (photos.parent / "escape.png").exists()
    wait_for(lambda: status(conn, "\\xff\\xfe-latin1.png") == "rejected",
             what="the non-UTF-8 name rejected under an escaped name")
    assert reasons_of(conn)["\\xff\\xfe-latin1.png"].startswith("invalid_user_id")
    # ... and the daemon still enrolls the next good photo.
    upload(ftp, "u13.png", png_bytes(13))
    wait_for(lambda: who(settings, pipeline, 13) == "u13", what="u13 recognizable")
    report = ingest_report(conn, "rejected")
    assert report["counts"]["rejected"] == report["matching"] >= 4
    assert all(row["reason"] for row in report["photos"])


def test_folder_renamed_or_deleted(settings, conn, pipeline, watcher):
    photos = settings.photos_dir
    save_photo(photos / "old_id" / "a.png", 70)
    save_photo(photos / "gone" / "b.png", 71)
    wait_for(lambda: status(conn, "old_id/a.png") == status(conn, "gone/b.png") == "enrolled",
             what="both folders enrolled")
    os.rename(photos / "old_id", photos / "new_id")
    shutil.rmtree(photos / "gone")
    wait_for(lambda: (status(conn, "old_id/a.png"), status(conn, "new_id/a.png"),
                      status(conn, "gone/b.png")) == ("removed", "enrolled", "removed"),
             what="the rename and the delete handled")
    assert who(settings, pipeline, 70) == "new_id"
    assert who(settings, pipeline, 71) is None


def test_500_photos_dropped_at_once_are_all_enrolled_exactly_once(settings, conn, pipeline, tmp_path):
    staging = tmp_path / "staging"
    names = []
    for i in range(500):
        name = f"u{i:03d}.png" if i % 2 else f"u{i:03d}/front.png"
        save_photo(staging / name, 1000 + i)
        names.append(name)
    with running_watcher(settings, lambda: pipeline) as watcher:
        for folder in sorted(staging.iterdir()):  # a bulk copy: files and whole folders move in
            os.rename(folder, settings.photos_dir / folder.name)
        wait_for(lambda: conn.execute("SELECT count(*) FROM photos WHERE status = 'enrolled'"
                                      ).fetchone()[0] == 500, 60, "500 photos enrolled")
        assert watcher.summary.batches < 500  # bursts are batched
    rows = conn.execute("SELECT photo_path, count(*) AS n, sum(active) AS active FROM faces "
                        "GROUP BY photo_path").fetchall()
    assert sorted(r["photo_path"] for r in rows) == sorted(names)
    assert {(r["n"], r["active"]) for r in rows} == {(1, 1)}


def test_start_and_periodic_reconcile_catch_what_events_missed(settings, conn, pipeline):
    photos = settings.photos_dir
    save_photo(photos / "a1.png", 21)
    save_photo(photos / "a2.png", 22)
    enroll_folder(settings, conn, lambda: pipeline, progress=False)
    (photos / "a2.png").unlink()  # while the daemon is down
    save_photo(photos / "a3.png", 23)
    options = WatchOptions(settle=0.1, reconcile_interval=0.5)
    with running_watcher(settings, lambda: pipeline, options) as watcher:
        wait_for(lambda: (status(conn, "a2.png"), status(conn, "a3.png")) == ("removed", "enrolled"),
                 what="the start-up reconcile")
        # An event lost in a queue overflow: the ledger forgets a photo behind the
        # watcher's back, and the next periodic reconcile puts it right.
        with store.transaction(conn):
            conn.execute("DELETE FROM photos WHERE path = 'a3.png'")
            conn.execute("UPDATE faces SET active = 0 WHERE photo_path = 'a3.png'")
        wait_for(lambda: status(conn, "a3.png") == "enrolled", 10, "the periodic reconcile")
        assert watcher.summary.reconciles >= 2
    assert who(settings, pipeline, 23) == "a3"
    assert who(settings, pipeline, 22) is None


def test_index_is_rebuilt_in_the_background_on_the_delta_policy(settings, conn, pipeline):
    options = WatchOptions(settle=0.1, reconcile_interval=600, rebuild_delta=5, rebuild_interval=600)
    with running_watcher(settings, lambda: pipeline, options) as watcher:
        for i in range(6):
            save_photo(settings.photos_dir / f"r{i}.png", 30 + i)
        wait_for(lambda: (read_manifest(settings.index_dir) or 0) and
                 read_manifest(settings.index_dir).count >= 5, 30, "an index generation")
        assert watcher.summary.rebuilds >= 1
    assert who(settings, pipeline, 35) == "r5"


def test_users_csv_change_updates_profiles(settings, conn, pipeline, watcher):
    save_photo(settings.photos_dir / "p1.png", 40)
    wait_for(lambda: status(conn, "p1.png") == "enrolled", what="p1 enrolled")
    (settings.photos_dir / "users.csv").write_text("id,name\np1,Ada Lovelace\n")
    wait_for(lambda: store.get_user(conn, "p1")["name"] == "Ada Lovelace", what="the profile")


def test_same_file_enrolled_by_two_processes_at_once_makes_one_face(settings, conn, pipeline):
    """convert.py beside the watcher: both read the ledger before either writes."""
    save_photo(settings.photos_dir / "c1.png", 50)
    other = store.open_db(settings.db_path)

    def get_pipeline():  # runs after this run read the ledger, before it writes
        if not get_pipeline.done:
            get_pipeline.done = True
            enroll_folder(settings, other, lambda: pipeline, progress=False, build=False)
        return pipeline

    get_pipeline.done = False
    summary = enroll_folder(settings, conn, get_pipeline, progress=False, build=False)
    other.close()
    assert (summary.enrolled, summary.unchanged) == (0, 1)
    assert [r["active"] for r in face_rows(conn, "c1.png")] == [1]


def test_sigterm_finishes_the_batch_and_exits_cleanly(settings, conn, tmp_path):
    log = tmp_path / "watcher.log"
    process = start_fake_watcher(settings, log)
    try:
        for i in range(40):
            save_photo(settings.photos_dir / f"s{i}.png", 60 + i)
        wait_for(lambda: status(conn, "s0.png") == "enrolled" or process.poll() is not None,
                 60, "the first photo enrolled")
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert process.returncode == 0, output
    assert "watcher: enrolled" in output.splitlines()[-1]
    assert conn.execute("SELECT count(*) FROM faces").fetchone()[0] == \
        conn.execute("SELECT count(*) FROM photos WHERE status = 'enrolled'").fetchone()[0]


def test_kill_9_during_a_bulk_drop_then_restart_converges_without_duplicates(
        settings, conn, pipeline, tmp_path):
    names = [f"k{i:03d}.png" if i % 3 else f"k{i:03d}/p.png" for i in range(300)]
    log = tmp_path / "watcher.log"
    process = start_fake_watcher(settings, log, "--max-batch", "8")
    seen = lambda: conn.execute("SELECT count(*) FROM photos").fetchone()[0]  # noqa: E731
    killed_at = None
    try:
        for i, name in enumerate(names):  # the drop goes on while the daemon dies
            save_photo(settings.photos_dir / name, 2000 + i)
            if killed_at is None and i % 5 == 0 and seen() >= 40:
                process.send_signal(signal.SIGKILL)
                process.wait(30)
                killed_at = seen()
        if killed_at is None:
            wait_for(lambda: seen() >= 40, 60, "part of the drop enrolled")
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            killed_at = seen()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert killed_at < len(names), "the kill came too late to test anything"

    process = start_fake_watcher(settings, log)
    try:
        wait_for(lambda: conn.execute("SELECT count(*) FROM photos WHERE status = 'enrolled'"
                                      ).fetchone()[0] == len(names), 60, "convergence")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert process.returncode == 0, log.read_text()

    # The same folder enrolled by one uninterrupted run:
    reference = settings.replace(photos_dir=tmp_path / "ref_photos", db_path=tmp_path / "ref.db",
                                 index_dir=tmp_path / "ref_index")
    shutil.copytree(settings.photos_dir, reference.photos_dir, copy_function=shutil.copy2)
    ref = store.open_db(reference.db_path)
    enroll_folder(reference, ref, lambda: pipeline, progress=False)

    def state(c):
        ledger = {tuple(r) for r in c.execute("SELECT path, user_id, sha256, status FROM photos")}
        faces = sorted(tuple(r) for r in c.execute(
            "SELECT photo_path, user_id, photo_sha256, active FROM faces"))
        return ledger, faces

    assert state(conn) == state(ref)  # and so: one face per photo, none duplicated
    assert len(state(conn)[1]) == len(names)
    ref.close()


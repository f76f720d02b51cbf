"""ingest_report over a real database filled by enrollment with the fake models."""

from __future__ import annotations

import pytest

from facerec.enroll import enroll_folder
from facerec.ingest_report import ingest_report
from tests.fakes import save_photo


def test_counts_filters_and_pages(settings, conn, pipeline):
    photos = settings.photos_dir
    for i in range(3):
        save_photo(photos / f"u{i}.png", i)
    save_photo(photos / "two.png", 5, faces=2)
    (photos / "bad.png").write_bytes(b"not an image")
    enroll_folder(settings, conn, lambda: pipeline, progress=False)
    (photos / "u2.png").unlink()
    enroll_folder(settings, conn, lambda: pipeline, progress=False)

    report = ingest_report(conn)
    assert report["counts"] == {"enrolled": 3, "rejected": 1, "removed": 1, "flagged": 1}
    assert report["total"] == report["matching"] == 5 and len(report["photos"]) == 5
    rejected = ingest_report(conn, "rejected")["photos"]
    assert [(r["path"], r["reason"].split(":")[0]) for r in rejected] == [("bad.png", "bad_image")]
    assert [r["path"] for r in ingest_report(conn, "flagged")["photos"]] == ["two.png"]
    assert ingest_report(conn, "flagged")["photos"][0]["flags"] == ["multiple_faces"]
    page = ingest_report(conn, "enrolled", limit=2, offset=1)
    assert (page["matching"], [r["path"] for r in page["photos"]]) == (3, ["u0.png", "u1.png"])
    with pytest.raises(ValueError, match="unknown status"):
        ingest_report(conn, "bogus")

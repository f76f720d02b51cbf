"""What became of every photo that reached the photos folder: counts by status and a page
of ledger rows with their reasons. Shared by `convert.py --report` and the API
(GET /ingest)."""

from __future__ import annotations

import json
import sqlite3

STATUSES = ("enrolled", "rejected", "removed")
FILTERS = (*STATUSES, "flagged")  # flagged: enrolled or rejected with flags (multiple faces, duplicates)


def ingest_report(conn: sqlite3.Connection, status: str | None = None, limit: int | None = 100,
                  offset: int = 0) -> dict:
    """{"counts": {enrolled, rejected, removed, flagged}, "total": all photos,
    "status": the filter, "matching": rows matching it, "limit", "offset",
    "photos": [{path, user_id, status, reason, face_id, flags, duplicate_of, sha256,
    size, processed_at}, ...]} ordered by status then path. `status` None or "all"
    lists every photo; limit None lists them all. Raises ValueError on a bad argument."""
    if status in (None, "all"):
        status, where, params = None, "", ()
    elif status == "flagged":
        where, params = " WHERE flags != '[]'", ()
    elif status in STATUSES:
        where, params = " WHERE status = ?", (status,)
    else:
        raise ValueError(f"unknown status {status!r}: use one of all, {', '.join(FILTERS)}")
    if (limit is not None and limit < 0) or offset < 0:
        raise ValueError("limit and offset must not be negative")
    counts = dict.fromkeys(FILTERS, 0)
    for row in conn.execute("SELECT status, count(*) FROM photos GROUP BY status"):
        counts[row[0]] = row[1]
    counts["flagged"] = conn.execute("SELECT count(*) FROM photos WHERE flags != '[]'").fetchone()[0]
    matching = conn.execute(f"SELECT count(*) FROM photos{where}", params).fetchone()[0]
    rows = conn.execute(
        "SELECT path, user_id, status, reason, face_id, flags, duplicate_of, sha256, size, "
        f"processed_at FROM photos{where} ORDER BY status, path LIMIT ? OFFSET ?",
        (*params, -1 if limit is None else limit, offset)).fetchall()
    photos = []
    for row in rows:
        item = dict(row)
        item["flags"] = json.loads(item["flags"] or "[]")
        photos.append(item)
    return {"counts": counts, "total": sum(counts[s] for s in STATUSES), "status": status or "all",
            "matching": matching, "limit": limit, "offset": offset, "photos": photos}

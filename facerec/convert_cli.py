"""Enroll every photo in the photos folder: detect, embed, store, index.

    python convert.py [--photos DIR] [--db PATH] [--index DIR] [--rebuild] [--report]

A second run over an unchanged folder loads no model and detects nothing. Photo names:
see README "Naming photos". Settings also come from FACEREC_* environment variables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from facerec import store
from facerec.config import settings_from_env
from facerec.enroll import enroll_folder
from facerec.errors import FaceRecError
from facerec.ingest_report import ingest_report
from facerec.logs import setup_logging
from facerec.permissions import restrict_umask
from facerec.pipeline import load_pipeline


def parse_args(argv: list[str] | None):
    defaults = settings_from_env()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=Path, help=f"photos folder (default {defaults.photos_dir})")
    p.add_argument("--db", type=Path, help=f"database file (default {defaults.db_path})")
    p.add_argument("--index", type=Path, help=f"index folder (default {defaults.index_dir})")
    p.add_argument("--models-dir", type=Path, help=f"weights folder (default {defaults.models_dir})")
    p.add_argument("--model", choices=["facenet128", "facenet512"],
                   help=f"embedding model (default {defaults.model})")
    p.add_argument("--threshold", type=float, help="cosine threshold for duplicate flags")
    p.add_argument("--reject-duplicates", action="store_true", default=None,
                   help="reject photos whose face matches another user (default: flag them)")
    p.add_argument("--rebuild", action="store_true",
                   help="re-detect and re-embed every photo and rebuild the index from scratch")
    p.add_argument("--report", nargs="?", const="all", metavar="STATUS",
                   help="list photos by status (enrolled, rejected, removed, flagged) and exit")
    p.add_argument("--json", action="store_true", help="with --report: JSON lines")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    settings = defaults.replace(photos_dir=args.photos, db_path=args.db, index_dir=args.index,
                                models_dir=args.models_dir, model=args.model,
                                threshold=args.threshold, reject_duplicates=args.reject_duplicates)
    return args, settings


def report(conn, status: str, as_json: bool) -> int:
    try:
        result = ingest_report(conn, status, limit=None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for item in result["photos"]:
        if as_json:
            print(json.dumps(item))
        else:
            extra = " ".join(filter(None, [
                ",".join(item["flags"]),
                f"duplicate of {item['duplicate_of']}" if item["duplicate_of"] else "",
                item["reason"] or ""]))
            print(f"{item['status']:9} {item['path']}  user={item['user_id']}  "
                  f"face={item['face_id']}  {extra}".rstrip())
    counts = {k: v for k, v in result["counts"].items() if v}
    print("total: " + ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "total: none",
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    restrict_umask()
    args, settings = parse_args(argv)
    conn = store.open_db(settings.db_path)
    if args.report:
        return report(conn, args.report, args.json)
    if not Path(settings.photos_dir).is_dir():
        print(f"error: photos folder {settings.photos_dir} does not exist", file=sys.stderr)
        return 2
    try:
        summary = enroll_folder(settings, conn, lambda: load_pipeline(settings),
                                rebuild=args.rebuild, progress=not args.no_progress)
    except FaceRecError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(summary.line())
    return 0

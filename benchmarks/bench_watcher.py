"""Watcher benchmark with the real models, as deployed: `python watcher.py` in its own
process, a real pyftpdlib server, a real ftplib client.

1. Latency: N uploads one after another (each under a new user id); for each, the seconds
   from the end of storbinary until the photo is recognizable: its ledger row says
   enrolled and an index search (FaceIndex, what the API uses) with its stored embedding
   returns its face first. p50 / p95 / max.
2. Bulk: 500 photos (the sample photos under new user ids, each slightly resized and
   re-encoded so every file is new) moved into the folder at once; photos/s until every
   one is in the ledger.

    .venv/bin/python -m benchmarks.bench_watcher [--uploads 60] [--bulk 500]

Writes benchmarks/results/watcher.md. About 3-5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from facerec import store
from facerec.config import PROJECT_ROOT, Settings
from facerec.index import FaceIndex
from tests.watch_helpers import running_ftp_server, upload, wait_for

SAMPLES = PROJECT_ROOT / "samples" / "5-celebrity-faces-dataset"
RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "watcher.md"
COMMAND = "python -m benchmarks.bench_watcher"


def sample_photos() -> list[Path]:
    return sorted(p for p in SAMPLES.glob("*/*/*") if p.is_file())


def start_watcher(settings: Settings, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "watcher.py", "--photos", str(settings.photos_dir), "--db",
         str(settings.db_path), "--index", str(settings.index_dir)],
        cwd=PROJECT_ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    wait_for(lambda: "watching" in log.read_text() or process.poll() is not None, 180,
             "the watcher to load its models")
    if process.poll() is not None:
        raise SystemExit(f"the watcher exited:\n{log.read_text()}")
    return process


def recognizable(conn, index: FaceIndex, path: str) -> str | None:
    """'enrolled' once the photo's face is the index's first hit, 'rejected' if it was."""
    row = conn.execute("SELECT status, face_id FROM photos WHERE path = ?", (path,)).fetchone()
    if row is None:
        return None
    if row["status"] == "rejected":
        return "rejected"
    if row["status"] != "enrolled":
        return None
    blob = conn.execute("SELECT embedding FROM faces WHERE face_id = ?", (row["face_id"],)).fetchone()[0]
    hits = index.search(store.blob_embedding(blob))[0]
    return "enrolled" if hits and hits[0].face_id == row["face_id"] else None


def latency(settings: Settings, photos: list[Path], uploads: int) -> dict:
    conn = store.connect(settings.db_path)
    index = FaceIndex(settings.db_path, settings.index_dir, "facenet128", 128)
    seconds, rejected = [], 0
    with running_ftp_server(settings.photos_dir) as ftp:
        for i, photo in enumerate(photos[:uploads]):
            name = f"lat{i:03d}{photo.suffix.lower()}"
            upload(ftp, name, photo.read_bytes())
            done = time.perf_counter()
            outcome = wait_for(lambda n=name: recognizable(conn, index, n), 60, f"{name} enrolled",
                               interval=0.005)
            if outcome == "rejected":
                rejected += 1
            else:
                seconds.append(time.perf_counter() - done)
    conn.close()
    s = np.array(seconds)
    return {"n": len(s), "rejected": rejected, "p50": float(np.percentile(s, 50)),
            "p95": float(np.percentile(s, 95)), "max": float(s.max()), "mean": float(s.mean())}


def make_bulk(photos: list[Path], count: int, staging: Path) -> None:
    """`count` distinct files: the samples again and again, each pass slightly smaller."""
    for i in range(count):
        source = photos[i % len(photos)]
        scale = 1.0 - 0.03 * (i // len(photos) + 1)
        with Image.open(source) as image:
            image = image.convert("RGB")
            size = (max(32, round(image.width * scale)), max(32, round(image.height * scale)))
            image.resize(size, Image.BILINEAR).save(staging / f"bulk{i:04d}.jpg", quality=92)


def bulk(settings: Settings, photos: list[Path], count: int, root: Path) -> dict:
    staging = root / "staging"
    staging.mkdir()
    make_bulk(photos, count, staging)
    conn = store.connect(settings.db_path)
    done = lambda: conn.execute("SELECT count(*) FROM photos WHERE path LIKE 'bulk%'").fetchone()[0]  # noqa: E731
    started = time.perf_counter()
    for path in sorted(staging.iterdir()):
        os.rename(path, settings.photos_dir / path.name)
    wait_for(lambda: done() == count, 1200, "the bulk drop processed", interval=0.1)
    elapsed = time.perf_counter() - started
    statuses = dict(conn.execute("SELECT status, count(*) FROM photos WHERE path LIKE 'bulk%' "
                                 "GROUP BY status").fetchall())
    conn.close()
    return {"n": count, "seconds": elapsed, "per_s": count / elapsed, **statuses}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--uploads", type=int, default=60)
    p.add_argument("--bulk", type=int, default=500)
    args = p.parse_args()
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    photos = sample_photos()
    root = Path(tempfile.mkdtemp(prefix="bench-watcher-"))
    (root / "data_foto").mkdir()
    settings = Settings(photos_dir=root / "data_foto", db_path=root / "facerec.db",
                        index_dir=root / "index")
    log = root / "watcher.log"
    load_before = os.getloadavg()[0]
    process = start_watcher(settings, log)
    try:
        lat = latency(settings, photos, args.uploads)
        print(f"latency: {lat}", flush=True)
        blk = bulk(settings, photos, args.bulk, root)
        print(f"bulk: {blk}", flush=True)
    finally:
        process.terminate()
        process.wait(120)
    summary = log.read_text().strip().splitlines()[-1]
    load_after = os.getloadavg()[0]
    table = "\n".join([
        "## Watcher: FTP upload → recognizable, and bulk ingest",
        "",
        f"`{COMMAND} --uploads {args.uploads} --bulk {args.bulk}` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, real MTCNN + FaceNet-128, `python watcher.py` (default settings: "
        "settle 0.5 s, 0.05 s after close-write) in its own process, pyftpdlib on 127.0.0.1, "
        "ftplib client. Latency: from the end of `storbinary` until the ledger says enrolled and "
        "a FaceIndex search returns the new face first; one upload at a time.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| uploads measured (rejected: no face) | {lat['n']} ({lat['rejected']}) |",
        f"| upload → recognizable p50 | {lat['p50']:.3f} s |",
        f"| upload → recognizable p95 (target ≤ 2 s) | {lat['p95']:.3f} s |",
        f"| upload → recognizable max | {lat['max']:.3f} s |",
        f"| bulk: {blk['n']} photos moved in at once | {blk['seconds']:.1f} s |",
        f"| bulk ingest rate | {blk['per_s']:.1f} photos/s |",
        f"| bulk outcome | enrolled {blk.get('enrolled', 0)}, rejected {blk.get('rejected', 0)} |",
        "",
        f"Watcher's exit line: `{summary}`",
        "",
        f"1-minute load average {load_before:.1f} before, {load_after:.1f} after (other work on "
        "the machine shares the 2 cores and slows both numbers).",
        "",
    ])
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

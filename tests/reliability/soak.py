"""Soak: gunicorn (2 workers) and the watcher on 127.0.0.1 over one database, mixed
recognize / enroll / delete traffic and photo drops into the watched folder from a loop
that stops by itself after --seconds. RSS of every process and the WAL size are sampled
every --sample seconds into a CSV; at the end every enrolled photo must be searchable and
every deleted user gone.

    python -m tests.reliability.soak --seconds 600 --models real --out benchmarks/results
    python -m tests.reliability.soak --seconds 60 --models fake      # a quick check

Real models: the sample photos (samples/5-celebrity-faces-dataset, train + val) are the
pool; each photo belongs to at most one live user at a time, so "searchable" means the
exact photo finds its own user at similarity ≥ 0.99. Nothing here talks to anything but
127.0.0.1."""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from facerec.config import PROJECT_ROOT, Settings
from tests.api_helpers import b64, read_keys
from tests.reliability.servers import FAKE_APP, REAL_APP, call, gunicorn, rss_mib, settings_env, worker_pids

SAMPLES = PROJECT_ROOT / "samples" / "5-celebrity-faces-dataset"


@dataclass
class State:
    """Who is enrolled, who was deleted, which pool photos are taken; one lock."""

    pool: list[bytes]
    lock: threading.Lock = field(default_factory=threading.Lock)
    free: set[int] = field(default_factory=set)
    bad: set[int] = field(default_factory=set)  # no face / several faces: not enrollable
    live: dict[str, tuple[int, str, float]] = field(default_factory=dict)  # uid → photo, source, t
    deleted: dict[str, int] = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    counter: int = 0

    def take_photo(self, rng: random.Random) -> int | None:
        with self.lock:
            choices = sorted(self.free - self.bad)
            if not choices:
                return None
            photo = rng.choice(choices)
            self.free.discard(photo)
            return photo

    def new_uid(self, prefix: str) -> str:
        with self.lock:
            self.counter += 1
            return f"{prefix}{self.counter:05d}"


def load_pool(models: str) -> list[bytes]:
    if models == "real":
        files = sorted(SAMPLES.glob("train/*/*.jpg")) + sorted(SAMPLES.glob("val/*/*.jpg"))
        if not files:
            raise SystemExit(f"no sample photos in {SAMPLES}: run python -m facerec.setup_models --samples")
        return [f.read_bytes() for f in files]
    from tests.api_helpers import png_bytes

    return [png_bytes(1000 + i) for i in range(150)]


def record(state: State, action: str, status: int, body: dict | None) -> None:
    with state.lock:
        state.statuses[(action, status)] += 1
        if status >= 500:
            state.errors.append(f"{action}: {status} {json.dumps(body)[:300]}")


def traffic(base: str, keys: dict, settings: Settings, state: State, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        action = rng.choices(["recognize", "enroll", "drop", "delete"], [6, 2, 1, 1.2])[0]
        try:
            if action == "recognize":
                photo = state.pool[rng.randrange(len(state.pool))]
                status, body, _ = call(base, "POST", "/upload_photo", key=keys["recognize"],
                                       json_body={"image": b64(photo)})
                record(state, action, status, body)
            elif action == "enroll":
                photo = state.take_photo(rng)
                if photo is None:
                    continue
                uid = state.new_uid("api")
                status, body, _ = call(base, "POST", f"/users/{uid}/photos", key=keys["manage"],
                                       json_body={"image": b64(state.pool[photo])})
                record(state, action, status, body)
                with state.lock:
                    if status == 201:
                        state.live[uid] = (photo, "api", time.monotonic())
                    else:
                        if status == 422:
                            state.bad.add(photo)
                        state.free.add(photo)
            elif action == "drop":
                photo = state.take_photo(rng)
                if photo is None:
                    continue
                uid = state.new_uid("ftp")
                tmp = settings.photos_dir / f".{uid}.jpg.part"  # as an FTP upload: temp, rename
                tmp.write_bytes(state.pool[photo])
                tmp.rename(settings.photos_dir / f"{uid}.jpg")
                with state.lock:
                    state.live[uid] = (photo, "watcher", time.monotonic())
                    state.statuses[("drop", 0)] += 1
            else:
                with state.lock:  # only users known to be enrolled: API ones, or seen by the watcher
                    candidates = [u for u, (_, src, t) in state.live.items()
                                  if src == "api" or time.monotonic() - t > 10]
                if not candidates:
                    continue
                uid = rng.choice(sorted(candidates))
                with state.lock:
                    if uid not in state.live:
                        continue
                    photo, source, _ = state.live.pop(uid)
                if source == "watcher":
                    status, body, _ = call(base, "GET", f"/users/{uid}", key=keys["manage"])
                    if status != 200:  # rejected by the watcher or not yet seen: keep it
                        with state.lock:
                            state.live[uid] = (photo, source, time.monotonic())
                        continue
                status, body, _ = call(base, "DELETE", f"/users/{uid}", key=keys["manage"])
                record(state, action, status, body)
                with state.lock:
                    if status == 200:
                        state.deleted[uid] = photo
                        state.free.add(photo)
                    else:
                        state.live[uid] = (photo, source, time.monotonic())
        except Exception as exc:  # a dropped connection counts as an error
            with state.lock:
                state.statuses[(action, -1)] += 1
                state.errors.append(f"{action}: {exc!r}")


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def sampler(out: Path, master: int, watcher: subprocess.Popen, settings: Settings, state: State,
            stop: threading.Event, interval: float) -> list[dict]:
    rows: list[dict] = []
    started = time.monotonic()
    wal = settings.db_path.with_name(settings.db_path.name + "-wal")
    with open(out, "w", newline="") as f:
        writer = None
        while True:
            workers = sorted(worker_pids(master))
            with state.lock:
                sent = sum(state.statuses.values())
                errors = sum(n for (a, s), n in state.statuses.items() if s >= 500 or s < 0)
            row = {"t_s": round(time.monotonic() - started, 1),
                   "master_rss_mib": round(rss_mib(master) or 0, 1),
                   "worker1_rss_mib": round(rss_mib(workers[0]) or 0, 1) if workers else 0,
                   "worker2_rss_mib": round(rss_mib(workers[1]) or 0, 1) if len(workers) > 1 else 0,
                   "watcher_rss_mib": round(rss_mib(watcher.pid) or 0, 1),
                   "wal_kib": file_size(wal) // 1024, "db_kib": file_size(settings.db_path) // 1024,
                   "requests": sent, "errors": errors, "live_users": len(state.live),
                   "deleted_users": len(state.deleted)}
            rows.append(row)
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
            f.flush()
            if stop.wait(interval):
                return rows


def verify(base: str, keys: dict, settings: Settings, state: State) -> dict:
    """Every live user's photo finds them; every deleted user is gone everywhere."""
    import sqlite3

    conn = sqlite3.connect(settings.db_path)
    ledger = dict(conn.execute("SELECT path, status FROM photos").fetchall())
    reasons = dict(conn.execute("SELECT path, reason FROM photos").fetchall())
    missing, rejected_by_watcher, searchable = [], 0, 0
    for uid, (photo, source, _) in sorted(state.live.items()):
        if source == "watcher" and ledger.get(f"{uid}.jpg") == "rejected":
            rejected_by_watcher += 1  # no face / several faces: nothing to search
            state.bad.add(photo)
            continue
        status, body, _ = call(base, "POST", "/upload_photo", key=keys["recognize"],
                               json_body={"image": b64(state.pool[photo])})
        best = [(m["user_id"], m["similarity_score"]) for f in (body or {}).get("faces", [])
                for m in f["matches"][:1]]
        if status != 200 or not any(u == uid and s >= 0.99 for u, s in best):
            missing.append(f"{uid} ({source}, ledger {ledger.get(f'{uid}.jpg')} "
                           f"{reasons.get(f'{uid}.jpg')}): {status} {best}")
        else:
            searchable += 1
    still_there = []
    for uid, photo in sorted(state.deleted.items()):
        status, _, _ = call(base, "GET", f"/users/{uid}", key=keys["manage"])
        rows = sum(conn.execute(f"SELECT count(*) FROM {t} WHERE {c} = ?", (uid,)).fetchone()[0]
                   for t, c in [("users", "id"), ("faces", "user_id"), ("photos", "user_id")])
        files = [p for p in settings.photos_dir.rglob(f"{uid}*")]
        _, body, _ = call(base, "POST", "/upload_photo", key=keys["recognize"],
                          json_body={"image": b64(state.pool[photo])})
        found = any(m["user_id"] == uid for f in (body or {}).get("faces", []) for m in f["matches"])
        if status != 404 or rows or files or found:
            still_there.append(f"{uid}: GET {status}, {rows} rows, {len(files)} files, search {found}")
    integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    conn.close()
    return {"live_users_checked": searchable, "rejected_by_watcher": rejected_by_watcher,
            "not_searchable": missing, "deleted_users_checked": len(state.deleted),
            "deleted_but_found": still_there, "integrity_check": integrity}


def run(seconds: float, models: str, out_dir: Path, clients: int, sample: float,
        workdir: Path | None = None) -> dict:
    work = Path(workdir or tempfile.mkdtemp(prefix="facerec-soak-"))
    photos = work / "data_foto"
    photos.mkdir(parents=True, exist_ok=True)
    real = models == "real"
    settings = Settings(photos_dir=photos, db_path=work / "var" / "facerec.db",
                        index_dir=work / "var" / "index", api_keys_path=work / "var" / "keys.json",
                        rate_limit="", model="facenet128" if real else "fake",
                        threshold=None if real else 0.8)
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = f"soak-{models}"
    env = {"FACEREC_TF_THREADS": "1", "FACEREC_DELTA_REBUILD_LIMIT": "20"}
    watcher_cmd = ([sys.executable, "watcher.py"] if real else [sys.executable, "-m", "tests.fake_watcher"])
    watcher_cmd += ["--photos", str(photos), "--db", str(settings.db_path), "--index",
                    str(settings.index_dir), "--model", settings.model, "--rebuild-delta", "20",
                    "--rebuild-interval", "30", "--reconcile-interval", "30"]
    state = State(pool=load_pool(models))
    state.free = set(range(len(state.pool)))
    log_path = work / "gunicorn.log"
    watcher_log = open(work / "watcher.log", "w")
    from facerec import store

    store.open_db(settings.db_path).close()
    watcher = subprocess.Popen(watcher_cmd, cwd=PROJECT_ROOT, env=settings_env(settings, **env),
                               stdout=watcher_log, stderr=subprocess.STDOUT)
    stop = threading.Event()
    try:
        with gunicorn(settings, log_path, workers=2, app=REAL_APP if real else FAKE_APP,
                      ready_timeout=300, extra_env=env) as (base, master):
            keys = read_keys(settings.api_keys_path)
            sampling = {}
            sample_thread = threading.Thread(target=lambda: sampling.setdefault("rows", sampler(
                out_dir / f"{tag}.csv", master.pid, watcher, settings, state, stop, sample)))
            sample_thread.start()
            started = time.monotonic()
            deadline = started + seconds
            threads = [threading.Thread(target=traffic, args=(base, keys, settings, state, deadline, n))
                       for n in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            traffic_seconds = time.monotonic() - started
            time.sleep(min(60, 15 + 0.02 * seconds))  # the watcher finishes its last drops
            result = verify(base, keys, settings, state)
            stop.set()
            sample_thread.join(30)
    finally:
        stop.set()
        watcher.send_signal(signal.SIGTERM)
        try:
            watcher.wait(60)
        except subprocess.TimeoutExpired:
            watcher.kill()
        watcher_log.close()
    rows = sampling.get("rows", [])
    server_log = log_path.read_text(errors="replace")
    summary = {
        "models": models, "seconds": round(traffic_seconds, 1), "clients": clients,
        "requests": {f"{a} {s}": n for (a, s), n in sorted(state.statuses.items())},
        "requests_total": sum(n for (a, s), n in state.statuses.items() if a != "drop"),
        "photos_dropped": state.statuses[("drop", 0)],
        "errors_5xx_or_dropped": len(state.errors), "error_samples": state.errors[:10],
        "tracebacks_in_server_log": server_log.count("Traceback"),
        "keys_in_server_log": sum(server_log.count(k) for k in keys.values()),
        "watcher_exit": watcher.returncode,
        "rss_mib_first_last_max": {k: (rows[0][k], rows[-1][k], max(r[k] for r in rows))
                                   for k in rows[0] if k.endswith("rss_mib")} if rows else {},
        "wal_kib_first_last_max": (rows[0]["wal_kib"], rows[-1]["wal_kib"],
                                   max(r["wal_kib"] for r in rows)) if rows else None,
        "db_kib_last": rows[-1]["db_kib"] if rows else None,
        "samples": len(rows), "csv": str(out_dir / f"{tag}.csv"), **result,
    }
    (out_dir / f"{tag}.json").write_text(json.dumps(summary, indent=2) + "\n")
    if workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--models", choices=["real", "fake"], default="real")
    p.add_argument("--clients", type=int, default=3)
    p.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    summary = run(args.seconds, args.models, args.out, args.clients, args.sample)
    print(json.dumps(summary, indent=2))
    ok = (summary["errors_5xx_or_dropped"] == 0 and not summary["not_searchable"]
          and not summary["deleted_but_found"] and summary["integrity_check"] == "ok")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

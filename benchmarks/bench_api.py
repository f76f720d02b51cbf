"""/upload_photo latency and worker memory under gunicorn (2 workers) on 127.0.0.1.

    .venv/bin/python -m benchmarks.bench_api [--requests 200] [--workers 2]

A temporary database is enrolled from the sample train photos (facerec.enroll.
enroll_folder, real models); the query is a val photo with exactly one face, resized to
640 px wide (JPEG q90), sent as multipart like a client would, one new connection per
request (gunicorn's sync workers do not keep connections alive). Measured: latency
p50/p95/p99 with 1 client and with 4 concurrent clients, throughput, and each worker's
resident memory (VmRSS, peak VmHWM from /proc). Then, in this process with the same
models, where one request's time goes (detect, embed, search, the whole Flask request).
Writes benchmarks/results/api.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from io import BytesIO
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from facerec import store  # noqa: E402
from facerec.config import PROJECT_ROOT, Settings  # noqa: E402
from facerec.enroll import enroll_folder  # noqa: E402
from facerec.imaging import decode_image  # noqa: E402
from facerec.pipeline import load_pipeline  # noqa: E402

SAMPLES = PROJECT_ROOT / "samples" / "5-celebrity-faces-dataset"
RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "api.md"
COMMAND = ".venv/bin/python -m benchmarks.bench_api"
WIDTH = 640


def query_photo(pipeline) -> tuple[str, bytes]:
    """The first val photo with exactly one face at 640 px wide, as JPEG bytes."""
    for path in sorted((SAMPLES / "val").rglob("*.jpg")):
        image = Image.open(path).convert("RGB")
        height = round(image.height * WIDTH / image.width)
        buffer = BytesIO()
        image.resize((WIDTH, height), Image.LANCZOS).save(buffer, format="JPEG", quality=90)
        data = buffer.getvalue()
        if len(pipeline.detect(decode_image(data), second_pass=False)) == 1:
            return path.parent.name, data
    raise SystemExit("no one-face val photo found")


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; "
            f"filename=\"q.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(url: str, body: bytes, content_type: str, key: str) -> tuple[float, int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": content_type, "X-API-Key": key})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), exc.code
    return time.perf_counter() - started, status, json.loads(payload)


def percentiles(latencies: list[float]) -> dict:
    ms = np.array(latencies) * 1000
    return {p: float(np.percentile(ms, p)) for p in (50, 95, 99)} | {"mean": float(ms.mean())}


def run_clients(url, body, ctype, key, person, clients: int, requests: int) -> dict:
    latencies, errors = [], []
    lock = threading.Lock()

    def client():
        for _ in range(requests):
            seconds, status, answer = post(url, body, ctype, key)
            with lock:
                latencies.append(seconds)
                if status != 200 or answer.get("user_id") != person:
                    errors.append((status, answer.get("error") or answer.get("user_id")))

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {**percentiles(latencies), "n": len(latencies), "errors": len(errors),
            "rps": len(latencies) / wall}


def proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (all their threads), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def wait_ready(log_path: Path, workers: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        if log_path.read_text().count("API ready") >= workers:
            return
        time.sleep(0.5)
    raise SystemExit(f"workers not ready after {timeout} s:\n{log_path.read_text()[-3000:]}")


def profile_in_process(settings: Settings, pipeline, data: bytes, key: str, reps: int) -> dict:
    """Where one request's time goes, same models, no other load."""
    from facerec.api import create_app
    from facerec.recognize import match_embeddings

    app = create_app(settings, pipeline=pipeline)
    index = app.extensions["facerec"].index()
    image = decode_image(data)
    timings: dict[str, list[float]] = {k: [] for k in ("decode", "detect", "embed", "search",
                                                       "flask request (all)")}
    client = app.test_client()
    for _ in range(reps):
        t0 = time.perf_counter()
        decode_image(data)
        t1 = time.perf_counter()
        faces = pipeline.detect(image)
        t2 = time.perf_counter()
        vectors = pipeline.embed([(image, f) for f in faces])
        t3 = time.perf_counter()
        match_embeddings(index, vectors, 5)
        t4 = time.perf_counter()
        r = client.post("/upload_photo", headers={"X-API-Key": key},
                        data={"photo": (BytesIO(data), "q.jpg")})
        t5 = time.perf_counter()
        assert r.status_code == 200
        for name, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            timings[name].append(seconds * 1000)
    return {name: float(np.median(v)) for name, v in timings.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per client")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=5077)
    parser.add_argument("--tf-threads", type=int, default=None,
                        help="TF_NUM_INTRAOP_THREADS for the workers (default: TensorFlow's)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    try:
        photos = tmp / "data_foto"
        shutil.copytree(SAMPLES / "train", photos)
        settings = Settings(photos_dir=photos, db_path=tmp / "facerec.db", index_dir=tmp / "index",
                            api_keys_path=tmp / "keys.json", rate_limit="")
        pipeline = load_pipeline(settings)
        conn = store.open_db(settings.db_path)
        summary = enroll_folder(settings, conn, lambda: pipeline, progress=False)
        conn.close()
        person, data = query_photo(pipeline)
        body, ctype = multipart(data)
        print(f"enrolled: {summary.line()}\nquery: a {person} val photo, {WIDTH} px wide, "
              f"{len(data)} bytes", flush=True)

        env = {**os.environ, "FACEREC_DB_PATH": str(settings.db_path),
               "FACEREC_INDEX_DIR": str(settings.index_dir),
               "FACEREC_PHOTOS_DIR": str(photos), "FACEREC_API_KEYS_PATH": str(settings.api_keys_path),
               "FACEREC_RATE_LIMIT": "", "FACEREC_CONFIG": str(tmp / "none.toml")}
        if args.tf_threads:
            env["TF_NUM_INTRAOP_THREADS"] = str(args.tf_threads)
            env["TF_NUM_INTEROP_THREADS"] = "1"
        gunicorn_cmd = [str(Path(sys.executable).parent / "gunicorn"), "-w", str(args.workers),
                        "-b", f"127.0.0.1:{args.port}", "--timeout", "120",
                        "facerec.api:create_app()"]
        log_path = tmp / "gunicorn.log"
        with open(log_path, "w") as log:
            server = subprocess.Popen(gunicorn_cmd, cwd=PROJECT_ROOT, env=env, stdout=log,
                                      stderr=subprocess.STDOUT)
        try:
            wait_ready(log_path, args.workers, server)
            keys = json.loads(settings.api_keys_path.read_text())["keys"]
            key = next(k["key"] for k in keys if k["scope"] == "recognize")
            url = f"http://127.0.0.1:{args.port}/upload_photo"
            run_clients(url, body, ctype, key, person, 2 * args.workers, 10)  # warm every worker
            load_before = os.getloadavg()[0]
            workers = children(server.pid)
            cpu0 = cpu_seconds(workers)
            one = run_clients(url, body, ctype, key, person, 1, args.requests)
            cpu1 = cpu_seconds(workers)
            four = run_clients(url, body, ctype, key, person, 4, args.requests)
            cpu2 = cpu_seconds(workers)
            one["cpu_ms"] = (cpu1 - cpu0) * 1000 / one["n"]
            four["cpu_ms"] = (cpu2 - cpu1) * 1000 / four["n"]
            memory = [(pid, proc_kib(pid, "VmRSS"), proc_kib(pid, "VmHWM")) for pid in workers]
            master = proc_kib(server.pid, "VmRSS")
            load_after = os.getloadavg()[0]
        finally:
            server.terminate()
            server.wait(30)
        try:
            profile = profile_in_process(settings, pipeline, data, key, reps=30)
        except Exception as exc:  # keep the gunicorn numbers even if this part fails
            print(f"in-process profile failed: {exc!r}", file=sys.stderr)
            profile = {}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    gunicorn_line = " ".join(gunicorn_cmd[1:]).replace("facerec.api:create_app()",
                                                        "'facerec.api:create_app()'")
    lines = [
        "# API latency and memory (`/upload_photo`)",
        "",
        f"Command: `{COMMAND}" + (f" --tf-threads {args.tf_threads}" if args.tf_threads else "")
        + f"` (server: `gunicorn {gunicorn_line}`). Machine: {os.cpu_count()} cores, {cpu}; "
        f"Python {platform.python_version()}; {time.strftime('%Y-%m-%d')}. Load average "
        f"(1 min) {load_before:.1f} before the runs, {load_after:.1f} after: anything well "
        "above the clients' own load means other work shared the cores.",
        "",
        f"Database: {summary.enrolled} faces of 5 people (sample train photos). Query: one "
        f"{person} val photo with one face, {WIDTH} px wide JPEG ({len(data) // 1024} KiB), "
        "multipart, a new connection per request, answers checked (200 and the right user).",
        "",
        "Worker CPU ms/request: CPU time the workers spent (all threads) divided by the "
        "requests; unlike latency it hardly changes when other work shares the cores.",
        "",
        "| clients | requests | p50 ms | p95 ms | p99 ms | mean ms | req/s | worker CPU ms/request "
        "| errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for clients, r in ((1, one), (4, four)):
        lines.append(f"| {clients} | {r['n']} | {r[50]:.1f} | {r[95]:.1f} | {r[99]:.1f} | "
                     f"{r['mean']:.1f} | {r['rps']:.1f} | {r['cpu_ms']:.0f} | {r['errors']} |")
    lines += ["", "| process | VmRSS MiB | peak VmHWM MiB |", "|---|---|---|"]
    for n, (_pid, rss, hwm) in enumerate(memory, start=1):
        lines.append(f"| worker {n} | {rss / 1024:.0f} | {hwm / 1024:.0f} |")
    lines.append(f"| gunicorn master | {master / 1024:.0f} | – |")
    lines += ["", "Where one request's time goes (median of 30, in one process, no other load, "
              "same models and photo):", "", "| step | ms |", "|---|---|"]
    lines += [f"| {name} | {ms:.1f} |" for name, ms in profile.items()]
    lines += ["", "Targets (2 cores): single-client p50 ≤ 100 ms; memory per worker ≤ 1.5 GB.", ""]
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(f"written to {RESULTS.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()

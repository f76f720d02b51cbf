"""Frames per second the camera page sustains with one face, in headless Chromium whose
fake camera plays a val photo of an enrolled person, against the real models.

    .venv/bin/python -m benchmarks.bench_camera [--seconds 30] [--servers dev,gunicorn]

A temporary database is enrolled from the sample train photos (convert.py, real models).
Each server runs as its own process, as a user would start it:
- dev: `python app.py` (Flask's threaded development server, one process);
- gunicorn: `python -m facerec.serve --no-watcher` (the README's run command without the
  watcher: gunicorn, 2 sync workers).
The page (/) gets the recognize key in its localStorage, waits until the face is named,
then runs for --seconds. Measured: the fps the page itself shows (#fps, frames answered
over its last 3 s) and frames answered over the whole window (#frames), the frames the
server logged (access log), the server's time per frame, how many face-frames needed
embedding ("identified") vs only tracking, and the CPU time the server used. The browser
runs on the same 2 cores (JPEG encoding, the fake camera), as it would on a kiosk that
serves itself. Then, without the browser, the same frame is sent straight to /frames to
split the server's time between frames that identify the face and frames that only track
it. Writes benchmarks/results/camera.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from facerec.imaging import load_image_file  # noqa: E402
from tests.browser import browser_missing, chromium, still_video  # noqa: E402

SAMPLES = Path(os.environ.get("FACEREC_SAMPLES_DIR", ROOT / "samples" / "5-celebrity-faces-dataset"))
RESULTS = ROOT / "benchmarks" / "results" / "camera.md"
COMMAND = ".venv/bin/python -m benchmarks.bench_camera"
PERSON = "ben_afflek"
TRAIN_PER_PERSON = 10
ACCESS = re.compile(r'\{"event": "request".*\}')


@dataclass
class Run:
    server: str
    seconds: float
    page_frames: int
    page_fps_shown: float
    server_frames: int
    server_ms_p50: float
    server_ms_mean: float
    identified: int
    tracked: int
    server_cpu_s: float
    load_before: float
    load_after: float
    split: Split | None = None

    @property
    def fps(self) -> float:
        return self.page_frames / self.seconds


def frame_jpeg(video: Path, width: int = 640) -> bytes:
    """The first frame of the fake camera video as the page would send it (JPEG 0.8)."""
    import cv2
    import numpy as np

    with open(video, "rb") as f:
        header = f.readline().split()
        w, h = int(header[1][1:]), int(header[2][1:])
        f.readline()  # FRAME
        i420 = np.frombuffer(f.read(w * h * 3 // 2), np.uint8).reshape(h * 3 // 2, w)
    bgr = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    bgr = cv2.resize(bgr, (width, round(h * width / w))) if w != width else bgr
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(root: Path) -> dict[str, str]:
    """Photos of every sample person, enrolled; the environment for the server."""
    photos = root / "data_foto"
    for person_dir in sorted((SAMPLES / "train").iterdir()):
        (photos / person_dir.name).mkdir(parents=True)
        for path in sorted(person_dir.iterdir())[:TRAIN_PER_PERSON]:
            shutil.copy(path, photos / person_dir.name / path.name)
    env = {**os.environ, "FACEREC_PHOTOS_DIR": str(photos), "FACEREC_DB_PATH": str(root / "db"),
           "FACEREC_INDEX_DIR": str(root / "index"), "FACEREC_API_KEYS_PATH": str(root / "keys.json"),
           "FACEREC_CONFIG": str(root / "none.toml"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "convert.py", "--no-progress"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return env


def server_command(kind: str, port: int) -> tuple[list[str], int]:
    """The command and how many processes say "API ready"."""
    if kind == "dev":
        return [sys.executable, "app.py", "--port", str(port)], 1
    return [sys.executable, "-m", "facerec.serve", "--no-watcher", "--port", str(port),
            "--workers", "2"], 2


def process_tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def frame_lines(log: Path) -> list[dict]:
    lines = []
    for match in ACCESS.finditer(log.read_text(errors="replace")):
        entry = json.loads(match.group(0))
        if entry.get("endpoint") == "/frames" and entry.get("status") == 200:
            lines.append(entry)
    return lines


@dataclass
class Split:
    """Server time per frame, by whether the face needed identifying (POST /frames sent
    directly, no browser: the same frame again and again)."""

    frames: int
    identified_ms: float  # request wall time, frames where embedding + search ran
    tracked_ms: float  # frames with detection alone
    identified_frames: int
    detect_ms: float
    identify_ms: float


def direct_frames(url: str, key: str, jpeg: bytes, frames: int = 100) -> Split:
    boundary = "benchcamera"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"stream\"\r\n\r\n"
            f"direct\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
            f"filename=\"f.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    body += jpeg + f"\r\n--{boundary}--\r\n".encode()
    walls: dict[bool, list[float]] = {True: [], False: []}
    detect, identify = [], []
    for _ in range(frames):
        request = urllib.request.Request(url + "/frames", data=body, method="POST", headers={
            "X-API-Key": key, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        walls[answer["identified"] > 0].append((time.perf_counter() - started) * 1000)
        detect.append(answer["timing_ms"]["detect"])
        if answer["identified"]:
            identify.append(answer["timing_ms"]["identify"])

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    return Split(frames, mean(walls[True]), mean(walls[False]), len(walls[True]), mean(detect),
                 mean(identify))


def measure(kind: str, env: dict, root: Path, video: Path, seconds: float) -> Run:
    port = free_port()
    command, ready_count = server_command(kind, port)
    log = root / f"{kind}.log"
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env={**env, "FACEREC_PORT": str(port)},
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while log.read_text(errors="replace").count("API ready") < ready_count:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{kind} server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        urllib.request.urlopen(url + "/health", timeout=30).read()
        keys = json.loads(Path(env["FACEREC_API_KEYS_PATH"]).read_text())["keys"]
        key = {k["scope"]: k["key"] for k in keys}
        split = direct_frames(url, key["recognize"], frame_jpeg(video)) if kind == "dev" else None
        with chromium(video) as driver:
            driver.get(url + "/health")
            driver.execute_script("localStorage.setItem('facerec.apiKey', arguments[0])",
                                  key["recognize"])
            driver.get(url + "/")
            deadline = time.monotonic() + 120
            while not driver.execute_script(
                    "return [...document.querySelectorAll('#faces li')].some("
                    "li => li.dataset.status === 'recognized' && li.dataset.user === arguments[0])",
                    PERSON):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{kind}: the page never named {PERSON}")
                time.sleep(0.2)
            time.sleep(3)  # past the first frames of every worker

            def page() -> dict:
                return driver.execute_script(
                    "const f = document.getElementById('frames').dataset;"
                    "return {frames: +f.frames, identified: +(f.identified || 0),"
                    " tracked: +(f.tracked || 0),"
                    " fps: +document.getElementById('fps').dataset.fps};")

            pids = process_tree(proc.pid)
            load_before = os.getloadavg()[0]
            cpu0, lines0, p0, t0 = cpu_seconds(pids), len(frame_lines(log)), page(), time.monotonic()
            shown = []
            while time.monotonic() - t0 < seconds:
                time.sleep(1)
                shown.append(page()["fps"])
            cpu1, p1, t1 = cpu_seconds(pids), page(), time.monotonic()
            window = frame_lines(log)[lines0:]  # each line is flushed as it is logged
        ms = sorted(e["ms"] for e in window) or [0.0]
        return Run(kind, t1 - t0, p1["frames"] - p0["frames"], sum(shown) / len(shown),
                   len(window), ms[len(ms) // 2], sum(ms) / len(ms),
                   p1["identified"] - p0["identified"], p1["tracked"] - p0["tracked"],
                   cpu1 - cpu0, load_before, os.getloadavg()[0], split)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def report(runs: list[Run], seconds: float) -> str:
    lines = [
        "# Camera page: frames per second with one face",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, Python "
        f"{platform.python_version()}. Command: `{COMMAND} --seconds {seconds:g}`",
        "",
        "Headless Chromium (Debian's) shows / with its fake camera playing a 640×480 video of "
        f"one val photo of {PERSON} (enrolled from {TRAIN_PER_PERSON} train photos per person, "
        "real MTCNN + FaceNet-128). The page sends a 640 px JPEG (quality 0.8) to POST /frames, "
        "the next one only when the answer is back.",
        "",
        "| server | page fps (frames / s over the window) | fps the page showed (mean) | "
        "frames (page / server log) | server ms per frame p50 / mean | face-frames identified / "
        "only tracked | server CPU (cores busy) | load average before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.server} | **{r.fps:.1f}** | {r.page_fps_shown:.1f} | {r.page_frames} / "
            f"{r.server_frames} | {r.server_ms_p50:.0f} / {r.server_ms_mean:.0f} | "
            f"{r.identified} / {r.tracked} | {r.server_cpu_s / r.seconds:.2f} | "
            f"{r.load_before:.1f} → {r.load_after:.1f} |")
    for r in runs:
        if r.split is None:
            continue
        sp = r.split
        lines += [
            "",
            f"Where the time goes ({r.server} server, no browser): the same one-face 640 px "
            f"frame sent {sp.frames} times straight to POST /frames, one at a time.",
            "",
            "| frames | request ms, face identified (embedding + search) | request ms, face only "
            "tracked | server detect ms (mean) | server identify ms (mean, when run) |",
            "|---|---|---|---|---|",
            f"| {sp.frames} ({sp.identified_frames} identified) | {sp.identified_ms:.1f} | "
            f"{sp.tracked_ms:.1f} | {sp.detect_ms:.1f} | {sp.identify_ms:.1f} |",
        ]
    lines += [
        "",
        "dev = `python app.py` (one process, threads); gunicorn = `python -m facerec.serve "
        "--no-watcher` (2 sync workers: they close every connection, so consecutive frames of "
        "one stream land on either worker, each keeping its own tracks; a worker new to a "
        "stream starts it fresh). Identified = face-frames that ran the embedder and the index "
        "search; only tracked = detection alone (identity settled, box still). The browser "
        "shares the 2 cores with the server; a load average above 2 before the run means "
        "other jobs were running too, and the numbers are then a lower bound.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--servers", default="dev,gunicorn")
    args = parser.parse_args(argv)
    reason = browser_missing()
    if reason:
        raise SystemExit(reason)
    root = Path(tempfile.mkdtemp(prefix="bench-camera-"))
    try:
        env = prepare(root)
        photo = load_image_file(sorted((SAMPLES / "val" / PERSON).iterdir())[0])
        video = still_video(root / "camera.y4m", [photo])
        runs = []
        for kind in args.servers.split(","):
            run = measure(kind, env, root, video, args.seconds)
            print(f"{kind}: {run.fps:.1f} fps over {run.seconds:.0f} s ({run.page_frames} frames, "
                  f"server {run.server_frames}, p50 {run.server_ms_p50:.0f} ms)", flush=True)
            runs.append(run)
        RESULTS.write_text(report(runs, args.seconds))
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real servers on 127.0.0.1 for the reliability tests: gunicorn as a subprocess (fake or
real models), werkzeug's threaded server in a thread, and a small http.client caller.
Nothing here talks to anything but 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

from facerec.config import PROJECT_ROOT, Settings

HOST = "127.0.0.1"
FAKE_APP = "tests.reliability.fake_app:create()"
REAL_APP = "facerec.api:create_app()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """FACEREC_* variables that make a child process use these settings."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "FACEREC_PHOTOS_DIR": str(settings.photos_dir), "FACEREC_DB_PATH": str(settings.db_path),
           "FACEREC_INDEX_DIR": str(settings.index_dir), "FACEREC_MODEL": settings.model,
           "FACEREC_API_KEYS_PATH": str(settings.api_keys_path),
           "FACEREC_RATE_LIMIT": settings.rate_limit,
           "FACEREC_MAX_UPLOAD_BYTES": str(settings.max_upload_bytes),
           "FACEREC_MAX_PIXELS": str(settings.max_pixels)}
    if settings.threshold is not None:
        env["FACEREC_THRESHOLD"] = str(settings.threshold)
    env.update(extra)
    return env


def call(base: str, method: str, path: str, *, key: str | None = None, body: bytes | None = None,
         content_type: str | None = None, json_body: object = None, headers: dict | None = None,
         timeout: float = 60) -> tuple[int, dict | None, dict]:
    """One request; returns (status, JSON body or None, headers)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    head = dict(headers or {})
    if key:
        head["X-API-Key"] = key
    if json_body is not None:
        body = json.dumps(json_body).encode()
        content_type = "application/json"
    if content_type:
        head["Content-Type"] = content_type
    try:
        conn.request(method, path, body=body, headers=head)
        response = conn.getresponse()
        raw = response.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return response.status, parsed, dict(response.getheaders())
    finally:
        conn.close()


def multipart_body(fields: dict[str, bytes | str], boundary: str = "reliabilityboundary"
                   ) -> tuple[bytes, str]:
    parts = []
    for name, value in fields.items():
        if isinstance(value, bytes):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                         f'filename="upload.png"\r\nContent-Type: application/octet-stream\r\n\r\n'
                         .encode() + value + b"\r\n")
        else:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                         f'{value}\r\n'.encode())
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def wait_healthy(base: str, process: subprocess.Popen | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            if call(base, "GET", "/health", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server at {base} not ready within {timeout} s")
        time.sleep(0.1)


@contextmanager
def gunicorn(settings: Settings, log_path: Path, *, workers: int = 2, app: str = FAKE_APP,
             ready_timeout: float = 60, extra_env: dict | None = None,
             extra_args: tuple[str, ...] = ()) -> Iterator[tuple[str, subprocess.Popen]]:
    """gunicorn on 127.0.0.1 and a free port; (base URL, process). Stopped with SIGTERM."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"{HOST}:{port}",
               "--timeout", "120", "--graceful-timeout", "20", *extra_args, app]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=settings_env(settings, **(extra_env or {})),
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(base, process, ready_timeout)
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@contextmanager
def werkzeug_server(app: Flask) -> Iterator[str]:
    """Flask's threaded development server (werkzeug) in a thread; its base URL."""
    http = make_server(HOST, 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{http.server_port}"
    finally:
        http.shutdown()
        thread.join(10)


def worker_pids(master: int) -> list[int]:
    """gunicorn's worker processes (children of the master)."""
    try:
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None

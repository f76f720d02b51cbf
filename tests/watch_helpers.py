"""Helpers for the watcher tests: wait for a condition (never a fixed sleep), a real
pyftpdlib server in a thread, a real ftplib client, the watcher in a thread or in a
subprocess with the fake models."""

from __future__ import annotations

import ftplib
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from facerec.config import PROJECT_ROOT, Settings
from facerec.ftp import FtpConfig, FtpUser, make_server
from facerec.watch import Watcher, WatchOptions
from tests.fakes import fake_photo

FTP_USER, FTP_PASSWORD = "camera", "s3cret-for-tests"


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition",
             interval: float = 0.02):
    """Poll until condition() is truthy; return its value, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def png_bytes(identity: int, variant: int = 0, *, faces: int = 1) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(fake_photo(identity, variant, faces=faces)).save(buffer, format="PNG")
    return buffer.getvalue()


@contextmanager
def running_watcher(settings: Settings, get_pipeline, options: WatchOptions | None = None):
    """A real Watcher (real observer) in a thread; stopped and joined on exit."""
    watcher = Watcher(settings, get_pipeline, options or WatchOptions(
        settle=0.2, reconcile_interval=600, rebuild_interval=600))
    stop = threading.Event()
    failure: list[BaseException] = []

    def target():
        try:
            watcher.run(stop)
        except BaseException as exc:  # surfaced by the test, not lost in the thread
            failure.append(exc)

    thread = threading.Thread(target=target, name="watcher", daemon=True)
    thread.start()
    wait_for(lambda: watcher.started.is_set() or failure, 30, "the watcher to start")
    try:
        yield watcher
        assert not failure, failure
        assert thread.is_alive(), "the watcher stopped on its own"
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the watcher did not stop within 30 s"


@contextmanager
def running_ftp_server(photos_dir: Path):
    """A real pyftpdlib server on 127.0.0.1, an ephemeral port, in a thread."""
    config = FtpConfig(photos_dir=photos_dir, users=(FtpUser(FTP_USER, password=FTP_PASSWORD),),
                       address="127.0.0.1", port=0, passive_ports=None)
    server = make_server(config)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=serve, name="ftp", daemon=True)
    thread.start()
    try:
        yield server.address[:2]
    finally:
        stop.set()
        thread.join(10)


def ftp_client(address) -> ftplib.FTP:
    client = ftplib.FTP()
    client.connect(*address, timeout=10)
    client.login(FTP_USER, FTP_PASSWORD)
    return client


def upload(address, name: str, data: bytes) -> None:
    with ftp_client(address) as client:
        client.storbinary(f"STOR {name}", io.BytesIO(data))


def start_fake_watcher(settings: Settings, log_path: Path, *extra: str) -> subprocess.Popen:
    """`python -m tests.fake_watcher`: watcher.py's main() with the fake models; its output
    goes to log_path (appended)."""
    env = {**os.environ, "FACEREC_THRESHOLD": str(settings.threshold), "PYTHONUNBUFFERED": "1",
           "FACEREC_BATCH_SIZE": str(settings.batch_size)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fake_watcher", "--photos", str(settings.photos_dir),
         "--db", str(settings.db_path), "--index", str(settings.index_dir), "--model", "fake",
         "--settle", "0.1", *extra],
        cwd=PROJECT_ROOT, env=env, stdout=open(log_path, "a"), stderr=subprocess.STDOUT)

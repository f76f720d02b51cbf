"""What the browser tests, the camera benchmark and the screenshots share: a fake camera
video made from photos, headless Chromium (Debian's chromium + chromium-driver, driven
by selenium; never a downloaded browser) and the API on a real HTTP server in a thread."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FRAME_SIZE = (640, 480)  # width, height of the fake camera
BACKGROUND = 90  # grey around the photos


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return (f"{path} is missing: run `bash scripts/setup.sh --dev` as root (it installs "
                    "Debian's chromium and chromium-driver), or apt-get install chromium "
                    "chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is missing: run `bash scripts/setup.sh --dev`"
    return None


def camera_frame(photos: Sequence[np.ndarray], size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """One RGB frame with the photos side by side, each scaled to fit its share of the
    width (aspect kept) and centred on a grey background."""
    import cv2

    width, height = size
    frame = np.full((height, width, 3), BACKGROUND, np.uint8)
    slot = width // len(photos)
    for i, photo in enumerate(photos):
        h, w = photo.shape[:2]
        scale = min(slot / w, height / h)
        resized = cv2.resize(photo, (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2),
                             interpolation=cv2.INTER_AREA)
        y = (height - resized.shape[0]) // 2
        x = i * slot + (slot - resized.shape[1]) // 2
        frame[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return frame


def write_y4m(path: Path, frames: Sequence[np.ndarray], fps: int = 10) -> Path:
    """A YUV4MPEG2 video (a text header, then raw I420 frames): what Chromium's
    --use-file-for-fake-video-capture plays, in a loop, as the camera."""
    import cv2

    height, width = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return Path(path)


def still_video(path: Path, photos: Sequence[np.ndarray], seconds: float = 2.0, fps: int = 10,
                jitter: int = 2) -> Path:
    """A short video of the photos, moving by up to `jitter` px (a person never holds
    perfectly still; the boxes must keep their tracks)."""
    base = camera_frame(photos)
    frames = []
    for i in range(int(seconds * fps)):
        dx = int(round(jitter * np.sin(2 * np.pi * i / (seconds * fps))))
        frames.append(np.roll(base, dx, axis=1))
    return write_y4m(path, frames, fps)


@contextmanager
def chromium(video: Path | None = None, *, width: int = 1280, height: int = 900
             ) -> Iterator:
    """Headless Chromium, fresh profile, with `video` as its camera (permission granted)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="facerec-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}",
                 "--use-fake-ui-for-media-stream"):
        options.add_argument(flag)
    if video is not None:
        options.add_argument("--use-fake-device-for-media-stream")
        options.add_argument(f"--use-file-for-fake-video-capture={video}")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class LiveServer:
    url: str
    app: object


@contextmanager
def live_server(app) -> Iterator[LiveServer]:
    """The Flask app on werkzeug's threaded HTTP server on 127.0.0.1 (a free port)."""
    from werkzeug.serving import make_server

    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{http.server_port}", app)
    finally:
        http.shutdown()
        thread.join(10)

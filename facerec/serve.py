"""Run the whole service: the API (gunicorn, models loaded per worker after fork) and the
watcher that enrolls whatever lands in the photos folder.

    python -m facerec.serve [--host 127.0.0.1] [--port 5000] [--workers 2] [--no-watcher]

Both run as child processes; SIGINT/SIGTERM stop both cleanly, and if one dies the
other is stopped too, so a supervisor (systemd, docker) sees the failure.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from facerec.config import PROJECT_ROOT, settings_from_env


def main(argv: list[str] | None = None) -> int:
    settings = settings_from_env()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=os.environ.get("FACEREC_HOST", "127.0.0.1"),
                   help="address to listen on (0.0.0.0 to accept other machines)")
    p.add_argument("--port", type=int, default=int(os.environ.get("FACEREC_PORT", "5000")))
    p.add_argument("--workers", type=int, default=int(os.environ.get("FACEREC_WORKERS", "2")))
    p.add_argument("--no-watcher", action="store_true", help="run the API alone")
    args = p.parse_args(argv)

    python = sys.executable
    children: dict[str, subprocess.Popen] = {}
    if not args.no_watcher:
        children["watcher"] = subprocess.Popen([python, str(PROJECT_ROOT / "watcher.py")],
                                               cwd=PROJECT_ROOT)
    children["api"] = subprocess.Popen(
        # gthread workers keep connections alive, so a camera page's frames stay on the
        # worker that holds its face tracks; the models serialise inference per worker.
        [python, "-m", "gunicorn", "--workers", str(args.workers), "--worker-class", "gthread",
         "--threads", "4", "--bind", f"{args.host}:{args.port}", "--timeout", "120",
         "--graceful-timeout", "30",
         "--access-logfile", "-", "facerec.api:create_app()"],
        cwd=PROJECT_ROOT,
    )
    print(f"facerec: API on http://{args.host}:{args.port} ({args.workers} workers), "
          f"photos folder {settings.photos_dir}, database {settings.db_path}", flush=True)

    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"facerec: {name} exited with status {child.returncode}; stopping",
                      file=sys.stderr, flush=True)
                exit_code = child.returncode or 1
                stopping = True
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 40
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())

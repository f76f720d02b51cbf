"""Watch the photos folder and enroll what lands in it, until SIGTERM or Ctrl-C.

    python watcher.py [--photos DIR] [--db PATH] [--index DIR] [--settle S] ...

SIGTERM and SIGINT finish the batch in hand and exit 0 with a summary line; a second
signal exits at once (nothing is lost either way: the next start reconciles).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from facerec.config import Settings, settings_from_env
from facerec.errors import FaceRecError
from facerec.logs import setup_logging
from facerec.permissions import restrict_umask
from facerec.pipeline import Pipeline, load_pipeline
from facerec.watch import Watcher, WatchOptions

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> tuple[Settings, WatchOptions]:
    defaults, opts = settings_from_env(), WatchOptions()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=Path, help=f"photos folder (default {defaults.photos_dir})")
    p.add_argument("--db", type=Path, help=f"database file (default {defaults.db_path})")
    p.add_argument("--index", type=Path, help=f"index folder (default {defaults.index_dir})")
    p.add_argument("--models-dir", type=Path, help=f"weights folder (default {defaults.models_dir})")
    p.add_argument("--model", help=f"embedding model (default {defaults.model})")
    p.add_argument("--settle", type=float, default=opts.settle,
                   help="seconds a file must stay unchanged before it is read (default %(default)s)")
    p.add_argument("--write-timeout", type=float, default=opts.write_timeout,
                   help="seconds after which a file written to but never closed is read anyway "
                        "(default %(default)s)")
    p.add_argument("--reconcile-interval", type=float, default=opts.reconcile_interval,
                   help="seconds between full comparisons of folder and ledger (default %(default)s)")
    p.add_argument("--max-batch", type=int, default=opts.max_batch,
                   help="photos per batch (default %(default)s)")
    p.add_argument("--rebuild-delta", type=int, default=opts.rebuild_delta,
                   help="rebuild the index once this many faces changed (default %(default)s)")
    p.add_argument("--rebuild-interval", type=float, default=opts.rebuild_interval,
                   help="... or this many seconds after the first change (default %(default)s)")
    p.add_argument("--lazy", action="store_true", help="load the models at the first photo, not at start")
    args = p.parse_args(argv)
    settings = defaults.replace(photos_dir=args.photos, db_path=args.db, index_dir=args.index,
                                models_dir=args.models_dir, model=args.model)
    options = dataclasses.replace(
        opts, settle=args.settle, write_timeout=args.write_timeout,
        reconcile_interval=args.reconcile_interval, max_batch=args.max_batch,
        rebuild_delta=args.rebuild_delta, rebuild_interval=args.rebuild_interval,
        preload=not args.lazy)
    return settings, options


def main(argv: list[str] | None = None,
         make_pipeline: Callable[[Settings], Pipeline] = load_pipeline) -> int:
    """`make_pipeline` is load_pipeline (the real models); tests pass their fakes."""
    setup_logging()
    restrict_umask()
    settings, options = parse_args(argv)
    stop = threading.Event()

    def on_signal(signum, frame):
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            raise SystemExit(1)
        log.info("%s: finishing the current batch, then exiting", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watcher = Watcher(settings, lambda: make_pipeline(settings), options)
    try:
        summary = watcher.run(stop)
    except (FaceRecError, FileNotFoundError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print(summary.line(), flush=True)
    return 0

"""One logging set-up for every entry point."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str | None = None) -> None:
    level = (level or os.environ.get("FACEREC_LOG_LEVEL", "INFO")).upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # TensorFlow and absl are chatty at INFO; their warnings still show.
    for noisy in ("tensorflow", "absl", "h5py", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

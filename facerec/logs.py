"""One logging set-up for every entry point."""

from __future__ import annotations

import json
import logging
import os


class JsonFormatter(logging.Formatter):
    """One JSON object per line (FACEREC_LOG_FORMAT=json), for log shippers. A message
    that is itself a JSON object (the API's access log) is merged in, not quoted."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": self.formatTime(record), "level": record.levelname,
                "logger": record.name}
        message = record.getMessage()
        try:
            parsed = json.loads(message) if message.startswith("{") else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            line.update(parsed)
        else:
            line["message"] = message
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup_logging(level: str | None = None) -> None:
    level = (level or os.environ.get("FACEREC_LOG_LEVEL", "INFO")).upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.environ.get("FACEREC_LOG_FORMAT", "text").lower() == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    # TensorFlow and absl are chatty at INFO; their warnings still show.
    for noisy in ("tensorflow", "absl", "h5py", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

"""FACEREC_LOG_FORMAT=json: one JSON object per line, access-log fields merged in."""

from __future__ import annotations

import json
import logging

from facerec.logs import JsonFormatter


def record(message: str, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("facerec.api.access", logging.INFO, __file__, 1, message, None,
                             exc_info)


def test_json_message_is_merged_and_plain_text_kept():
    line = json.loads(JsonFormatter().format(record('{"event": "request", "status": 200}')))
    assert line["event"] == "request" and line["status"] == 200 and line["level"] == "INFO"
    line = json.loads(JsonFormatter().format(record("{not json")))
    assert line["message"] == "{not json"


def test_exceptions_stay_on_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        text = JsonFormatter().format(record("failed", sys.exc_info()))
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["exception"]

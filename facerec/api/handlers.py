"""One JSON error mapping for the whole API, and the per-request bookkeeping: request
ids, metrics, one structured log line per request. No traceback ever reaches a client;
every failure is logged with its reason."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from facerec import store
from facerec.errors import DatabaseBusy, FaceRecError

log = logging.getLogger("facerec.api")
access_log = logging.getLogger("facerec.api.access")

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "request_too_large", 415: "unsupported_media_type",
              429: "rate_limited"}
REQUEST_ID = "X-Request-ID"


def _request_id() -> str:
    given = request.headers.get(REQUEST_ID, "")
    if given and len(given) <= 64 and given.replace("-", "").isalnum():
        return given
    return uuid.uuid4().hex


def error_response(status: int, body: dict) -> Response:
    body = {**body, "request_id": g.get("request_id")}
    response = jsonify(body)
    response.status_code = status
    return response


def _log_failure(status: int, code: str, message: str) -> None:
    log.warning("%s %s -> %d %s: %s [request %s]", request.method, request.path, status, code,
                message, g.get("request_id"))


def handle_domain_error(exc: FaceRecError) -> Response:
    _log_failure(exc.status, exc.code, exc.message)
    if exc.status >= 500:
        log.error("server-side failure: %s", exc.message)
    return error_response(exc.status, exc.to_json())


def handle_http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = HTTP_CODES.get(status, f"http_{status}")
    message = exc.description or exc.name
    if status == 413:
        message = (f"the request is larger than the limit of "
                   f"{request.max_content_length} bytes")
    elif status == 429:
        message = f"rate limit exceeded ({exc.description}); retry later"
    _log_failure(status, code, message)
    response = error_response(status, {"error": code, "message": message})
    if status == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def handle_database_error(exc: sqlite3.OperationalError) -> Response:
    """A writer that waited busy_timeout for another one (a long convert.py batch, a
    stuck process) gets a clean 503 to retry; its transaction was rolled back."""
    text = str(exc).lower()
    if "locked" not in text and "busy" not in text:
        return handle_unexpected(exc)
    response = handle_domain_error(DatabaseBusy(
        "the database is busy with another writer (waited "
        f"{store.BUSY_TIMEOUT_MS / 1000:g} s); nothing was changed, retry later"))
    response.headers["Retry-After"] = "1"
    return response


def handle_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error in %s %s [request %s]", request.method, request.path,
                  g.get("request_id"))
    return error_response(500, {"error": "internal_error",
                                "message": "internal server error; see the server log"})


def _before() -> None:
    g.started = time.perf_counter()
    g.request_id = _request_id()


def _after(response: Response) -> Response:
    from facerec.api.services import services

    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    endpoint = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
    faces = g.get("faces_found")
    services().metrics.observe(endpoint, request.method, response.status_code, seconds, faces)
    response.headers[REQUEST_ID] = g.get("request_id", "")
    fields = {"event": "request", "request_id": g.get("request_id"), "method": request.method,
              "path": request.path, "endpoint": endpoint, "status": response.status_code,
              "ms": round(seconds * 1000, 1), "remote": request.remote_addr,
              "key": g.get("api_key")}
    if faces is not None:
        fields["faces"] = faces
    access_log.info(json.dumps(fields))
    return response


def register(app: Flask) -> None:
    app.register_error_handler(FaceRecError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(sqlite3.OperationalError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
    app.before_request(_before)
    app.after_request(_after)

"""The web pages: the camera page at / and the user management page at /manage, plain
HTML, CSS and JavaScript shipped in facerec/static (no build step, nothing fetched from
elsewhere at run time). They call the API like any other client, with the key the user
enters once (kept in the browser's localStorage)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

bp = Blueprint("pages", __name__)

# Only this origin's own files; camera frames and thumbnails as blob: URLs.
CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
       "script-src 'self'; style-src 'self'; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _page(name: str) -> Response:
    response = send_from_directory(STATIC_DIR, name, mimetype="text/html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/")
def camera():
    return _page("index.html")


@bp.get("/manage")
def manage():
    return _page("manage.html")


@bp.get("/static/<name>")
def asset(name: str):
    """The pages' scripts and style sheet (send_from_directory refuses paths outside)."""
    return send_from_directory(STATIC_DIR, name, max_age=0)

"""Operations: health, Prometheus metrics, the OpenAPI document and its offline docs
page. None of these (nor the web pages, facerec.api.pages) needs a key or counts against
the rate limit."""

from __future__ import annotations

from flask import Blueprint, Response

from facerec import store
from facerec.api.metrics import CONTENT_TYPE
from facerec.api.openapi import DOCS_HTML, openapi_document
from facerec.api.services import db, services
from facerec.index import read_manifest

bp = Blueprint("ops", __name__)

PUBLIC_ENDPOINTS = frozenset({"ops.health", "ops.metrics", "ops.openapi", "ops.docs",
                              "static", "pages.camera", "pages.manage", "pages.asset"})


def _index_state() -> dict:
    s = services()
    index = s.index_if_ready
    if index is None and s.models_loaded:
        index = s.index()
    manifest = read_manifest(s.settings.index_dir)
    state = {"generation_on_disk": manifest.generation if manifest else 0,
             "indexed_on_disk": manifest.count if manifest else 0}
    if index is not None:
        index.refresh()
        state.update(generation=index.generation, searchable=index.size)
    return state


@bp.get("/health")
def health():
    s = services()
    counts = store.counts(db())
    ok = s.models_loaded
    body = {
        "status": "ok" if ok else "unavailable",
        "models_loaded": s.models_loaded,
        "model": s.pipeline().model.name if ok else s.settings.model,
        "dim": s.pipeline().model.dim if ok else None,
        "threshold": s.threshold if ok else s.settings.threshold,
        "index": _index_state(),
        "users": counts["users"],
        "faces": counts["faces"],
        "auth_enabled": s.auth.enabled,
    }
    if s.load_error:
        body["error"] = s.load_error
    return body, 200 if ok else 503


@bp.get("/metrics")
def metrics():
    s = services()
    counts = store.counts(db())
    index = s.index_if_ready
    if index is not None:
        index.refresh()
    text = s.metrics.render(index_faces=index.size if index else None,
                            generation=index.generation if index else None,
                            users=counts["users"], faces=counts["faces"],
                            models_loaded=s.models_loaded)
    return Response(text, mimetype=CONTENT_TYPE.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE})


@bp.get("/openapi.json")
def openapi():
    return openapi_document()


@bp.get("/docs")
def docs():
    return Response(DOCS_HTML, mimetype="text/html")

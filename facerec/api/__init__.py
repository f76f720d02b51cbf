"""The HTTP API: `create_app()` builds the Flask app.

    python app.py                                          # development server
    gunicorn -w 2 -b 127.0.0.1:5000 'facerec.api:create_app()'   # production

Models and the index reader are created once per process. Under gunicorn, leave out
--preload: each worker then builds its app, and loads TensorFlow, after the fork.
Settings come from facerec.config (FACEREC_* variables); see the OpenAPI document at
/openapi.json (rendered at /docs) for every endpoint and error code."""

from __future__ import annotations

import logging

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from facerec import store
from facerec.api import handlers
from facerec.api.metrics import Metrics
from facerec.api.ops import PUBLIC_ENDPOINTS
from facerec.api.services import EXTENSION, Services, close_db, services
from facerec.config import Settings, settings_from_env
from facerec.errors import FaceRecError
from facerec.logs import setup_logging
from facerec.permissions import restrict_umask
from facerec.pipeline import Pipeline

__all__ = ["create_app", "services"]

log = logging.getLogger(__name__)
BASE64_OVERHEAD = 4 / 3


def create_app(settings: Settings | None = None, *, pipeline: Pipeline | None = None,
               warm_up: bool = True) -> Flask:
    """The API app. `pipeline` is injectable (tests pass a fake one); without it the real
    models are loaded here, once per process, and warmed up so the first request is fast.
    A load failure does not stop the app: /health says why, recognition answers 503."""
    setup_logging()
    restrict_umask()
    settings = settings if settings is not None else settings_from_env()
    app = Flask(__name__)
    # Room for a photo of max_upload_bytes sent as base64 JSON; the photo's own size is
    # checked again after decoding.
    app.config["MAX_CONTENT_LENGTH"] = int(settings.max_upload_bytes * BASE64_OVERHEAD) + 65536
    app.json.sort_keys = False
    # "/users//abs/photos" must be a 404, not an HTML 308 redirect to /users/abs/photos
    # (a client following it would act on another user than the one it named).
    app.url_map.merge_slashes = False

    store.open_db(settings.db_path).close()  # schema in place before the first request
    svc = Services(settings, pipeline)
    svc.metrics = Metrics()
    app.extensions[EXTENSION] = svc
    if pipeline is None and warm_up:
        try:
            svc.warm_up()
        except FaceRecError as exc:
            log.error("models not loaded: %s", exc.message)

    handlers.register(app)
    limiter = Limiter(get_remote_address, app=app,
                      default_limits=[settings.rate_limit] if settings.rate_limit else [],
                      default_limits_exempt_when=lambda: request.endpoint in PUBLIC_ENDPOINTS,
                      storage_uri=settings.rate_limit_storage, headers_enabled=True,
                      enabled=bool(settings.rate_limit))
    app.teardown_appcontext(close_db)

    from facerec.api import face_images, frames, ops, pages, recognition, users

    if settings.frames_rate_limit:  # a camera sends many frames: its own limit
        limiter.limit(settings.frames_rate_limit)(frames.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(recognition.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(frames.bp)
    app.register_blueprint(face_images.bp)
    app.register_blueprint(pages.bp)
    log.info("API ready: model %s, database %s, index %s, keys %s", settings.model,
             settings.db_path, settings.index_dir,
             settings.api_keys_path if settings.auth_enabled else "OFF")
    return app

"""`python app.py`: the API on Flask's threaded development server."""

from __future__ import annotations

import argparse
import logging

from facerec.config import settings_from_env
from facerec.logs import setup_logging

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    defaults = settings_from_env()
    parser = argparse.ArgumentParser(description="Serve the facerec API (development server; "
                                     "use gunicorn in production, see the README)")
    parser.add_argument("--host", help=f"address to bind (default {defaults.host}, "
                        "FACEREC_HOST)")
    parser.add_argument("--port", type=int, help=f"port (default {defaults.port}, FACEREC_PORT)")
    args = parser.parse_args(argv)
    settings = defaults.replace(host=args.host, port=args.port)
    setup_logging()
    from facerec.api import create_app

    app = create_app(settings)
    log.info("serving on http://%s:%d (docs at /docs)", settings.host, settings.port)
    app.run(host=settings.host, port=settings.port, threaded=True)

"""The API app with the fake detector/embedder, for gunicorn in the reliability tests:

    gunicorn -w 2 -b 127.0.0.1:PORT 'tests.reliability.fake_app:create()'

Settings come from FACEREC_* variables, as for the real app; only the models are fake."""

from __future__ import annotations

from flask import Flask

from facerec.api import create_app
from facerec.config import settings_from_env
from tests.fakes import fake_pipeline


def create() -> Flask:
    return create_app(settings_from_env(), pipeline=fake_pipeline())

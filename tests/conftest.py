"""Shared fixtures: settings in a temporary folder, the fake pipeline for fast tests, and
the real models (loaded once per test session) for the `models` group."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from facerec import store  # noqa: E402
from facerec.api import create_app  # noqa: E402
from facerec.config import PROJECT_ROOT, Settings  # noqa: E402
from tests.api_helpers import read_keys  # noqa: E402
from tests.fakes import fake_pipeline  # noqa: E402

SAMPLES_DIR = Path(os.environ.get("FACEREC_SAMPLES_DIR",
                                  PROJECT_ROOT / "samples" / "5-celebrity-faces-dataset"))


def pytest_addoption(parser):
    parser.addoption("--heavy", action="store_true", default=False,
                     help="also run the `heavy` reliability tests (soak, long fuzzing): "
                          "see RELIABILITY.md")


def heavy_enabled(config) -> bool:
    return config.getoption("--heavy") or os.environ.get("FACEREC_HEAVY", "") in ("1", "true")


def pytest_collection_modifyitems(config, items):
    if heavy_enabled(config):
        return
    skip = pytest.mark.skip(reason="heavy: run with --heavy or FACEREC_HEAVY=1 (RELIABILITY.md)")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings for the fake model: everything under tmp_path."""
    photos = tmp_path / "data_foto"
    photos.mkdir()
    return Settings(photos_dir=photos, db_path=tmp_path / "var" / "facerec.db",
                    index_dir=tmp_path / "var" / "index", model="fake", threshold=0.8,
                    batch_size=4)


@pytest.fixture
def conn(settings):
    connection = store.open_db(settings.db_path)
    yield connection
    connection.close()


@pytest.fixture
def pipeline():
    return fake_pipeline()


@pytest.fixture
def api_settings(settings, tmp_path):
    return settings.replace(api_keys_path=tmp_path / "secrets" / "api_keys.json", rate_limit="")


@pytest.fixture
def app(api_settings):
    """The API over the fake models; modules override api_settings to change settings."""
    return create_app(api_settings, pipeline=fake_pipeline())


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def keys(api_settings, app) -> dict[str, str]:
    return read_keys(api_settings.api_keys_path)


@pytest.fixture
def manage(keys) -> dict:
    return {"X-API-Key": keys["manage"]}


@pytest.fixture
def recog(keys) -> dict:
    return {"X-API-Key": keys["recognize"]}


@pytest.fixture(scope="session")
def real_pipeline():
    """The real MTCNN + FaceNet-128, loaded once for the whole test session."""
    from facerec.pipeline import load_pipeline

    return load_pipeline(Settings())


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not (SAMPLES_DIR / "train").is_dir():
        pytest.fail(f"sample photos missing in {SAMPLES_DIR}: run "
                    "`python -m facerec.setup_models --samples` (the README's test command does)")
    return SAMPLES_DIR

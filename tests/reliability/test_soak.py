"""The soak (heavy): tests/reliability/soak.py for FACEREC_SOAK_SECONDS (default 600)
with FACEREC_SOAK_MODELS (default real) models; figures into FACEREC_SOAK_OUT (default
the test's tmp folder). RELIABILITY.md has the recorded run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability import soak

pytestmark = [pytest.mark.reliability, pytest.mark.heavy]


def test_soak_mixed_traffic_with_the_watcher(tmp_path):
    out = Path(os.environ.get("FACEREC_SOAK_OUT", tmp_path))
    summary = soak.run(float(os.environ.get("FACEREC_SOAK_SECONDS", "600")),
                       os.environ.get("FACEREC_SOAK_MODELS", "real"), out, clients=3, sample=5.0)
    assert summary["errors_5xx_or_dropped"] == 0, summary["error_samples"]
    assert summary["tracebacks_in_server_log"] == 0 and summary["keys_in_server_log"] == 0
    assert summary["not_searchable"] == [] and summary["deleted_but_found"] == []
    assert summary["integrity_check"] == "ok" and summary["watcher_exit"] == 0
    assert summary["live_users_checked"] > 0 and summary["deleted_users_checked"] > 0

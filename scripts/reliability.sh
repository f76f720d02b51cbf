#!/usr/bin/env bash
# The whole reliability suite, heavy parts included: the 10-minute soak with the real
# models (gunicorn + the watcher on 127.0.0.1), long fuzzing (hypothesis, schemathesis).
# About 20 minutes on 2 cores. The fast part already runs in `bash scripts/test.sh`.
#   FACEREC_SOAK_SECONDS=120 scripts/reliability.sh     # a shorter soak
#   FACEREC_SOAK_MODELS=fake scripts/reliability.sh     # the soak with the fake models
# The recorded soak figures (RELIABILITY.md) come from:
#   .venv/bin/python -m tests.reliability.soak --seconds 600 --models real
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec .venv/bin/python -m pytest -m reliability --heavy tests/reliability "$@"

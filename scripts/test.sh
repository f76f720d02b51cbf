#!/usr/bin/env bash
# Set up (if needed, with the test tools and the sample photos) and run the tests.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not models"` for the fast group.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec .venv/bin/python -m pytest "$@"

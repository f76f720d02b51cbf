#!/usr/bin/env bash
# Set up (if needed) and run the service on the bundled defaults: SQLite in var/, photos
# in data_foto/, the API on http://127.0.0.1:5000 and the watcher enrolling data_foto/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m facerec.serve "$@"

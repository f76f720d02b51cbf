"""convert.py with the fake models, for tests that kill it as a real process:
python -m tests.reliability.fake_convert [convert.py arguments]"""

import sys

from facerec import convert_cli
from tests.fakes import fake_pipeline

if __name__ == "__main__":
    convert_cli.load_pipeline = lambda settings: fake_pipeline()
    sys.exit(convert_cli.main(sys.argv[1:]))

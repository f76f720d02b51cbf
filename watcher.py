"""Watch data_foto/ and enroll every photo that lands in it. See --help."""

import sys

from facerec.watch_cli import main

if __name__ == "__main__":
    sys.exit(main())

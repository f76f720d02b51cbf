"""Enroll the photos in data_foto/ into the database and the index. See --help."""

import sys

from facerec.convert_cli import main

if __name__ == "__main__":
    sys.exit(main())

"""Run an FTP server that uploads photos into data_foto/. See --help and docs/ftp.md."""

import sys

from facerec.ftp_cli import main

if __name__ == "__main__":
    sys.exit(main())

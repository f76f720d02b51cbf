"""Create the user-profile database (SQLite, WAL). Idempotent: a second run changes nothing.

    python init_db.py [--db PATH]
"""

import argparse
import sys

from facerec.config import settings_from_env
from facerec.permissions import restrict_umask
from facerec.store import SCHEMA_VERSION, connect, init_schema


def main(argv=None) -> int:
    defaults = settings_from_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=defaults.db_path, help=f"database file (default {defaults.db_path})")
    args = parser.parse_args(argv)
    restrict_umask()
    conn = connect(args.db)
    done = init_schema(conn)
    conn.close()
    if done:
        print(f"{args.db}: " + "; ".join(done))
    else:
        print(f"{args.db}: already up to date (schema version {SCHEMA_VERSION}, WAL); nothing changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Files the service writes hold biometric data (photos, embeddings, the vectors of the
index) and personal data (profiles): no other local user may read them. Every entry
point (API, watcher, convert.py, init_db.py, the FTP server) narrows its umask first, so
what it creates is 0640 at most (folders 0750): the owner writes, a service group may
read, others get nothing. The key file is 0600 on its own (facerec.api.auth)."""

from __future__ import annotations

import os

PRIVATE_BITS = 0o027  # no write for the group, nothing at all for others


def restrict_umask() -> int:
    """Add PRIVATE_BITS to the process umask (a stricter umask is kept); return the new one."""
    current = os.umask(0o077)
    narrowed = current | PRIVATE_BITS
    os.umask(narrowed)
    return narrowed

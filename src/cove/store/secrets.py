"""Server secrets in ``$COVE_HOME``: random bytes made on first use, readable by this user alone."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_BYTES = 32


def load_secret(path: Path) -> bytes:
    """The secret in ``path``, made (mode 0600) if there is none yet; one of another size is refused, never
    replaced: whatever was signed with it would silently stop working."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) == SECRET_BYTES:
            return secret
        raise ValueError(f"{path} is not a server secret ({len(secret)} bytes, not {SECRET_BYTES})") from None
    secret = secrets.token_bytes(SECRET_BYTES)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret

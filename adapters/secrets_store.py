"""The SecretStore port on files: one 0600 file per addon under the data directory.

Passwords never enter the event log, so they live here, beside it.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class FileSecretStore:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, addon: str) -> Path:
        if not SAFE_NAME.match(addon):
            raise ValueError(f"not an addon name: {addon!r}")
        return self.directory / addon

    def password_for(self, addon: str) -> str:
        """Created once (64 URL-safe characters), then always the same, even across crashes."""
        path = self._path(addon)
        if path.exists():
            return path.read_text().strip()
        # Written whole to a private file, then linked in: a crash never leaves half a password.
        draft = self.directory / f".{addon}.{os.getpid()}.draft"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # someone else's password won the race: use it
        finally:
            draft.unlink(missing_ok=True)
        return path.read_text().strip()

    def peek(self, addon: str) -> str | None:
        try:
            return self._path(addon).read_text().strip() or None
        except FileNotFoundError:
            return None

    def forget(self, addon: str) -> None:
        self._path(addon).unlink(missing_ok=True)

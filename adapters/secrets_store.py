"""The SecretStore port on files: one 0600 file per addon under the data directory.

Passwords never enter the event log, so they live here, beside it.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import structlog

log = structlog.get_logger("secrets")
SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
PENDING = ".rotating/"  # list_items(): a rotation's pending password is named this + the addon


class FileSecretStore:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.directory.stat().st_mode & 0o077:  # made wider by a umask, a copy or an older release
            log.warning("secrets directory open to others; restricting it to its owner", directory=str(self.directory))
            os.chmod(self.directory, 0o700)

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
        write_private(draft, secrets.token_urlsafe(48))
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
        self.forget_pending(addon)

    # -- a rotation's new password, beside the current one (engine/credentials_rotation.py) ----------

    @property
    def _rotating(self) -> FileSecretStore:
        # A directory no addon name can be (they start with a letter or digit).
        return FileSecretStore(self.directory / ".rotating")

    def pending_for(self, addon: str) -> str:
        return self._rotating.password_for(addon)

    def peek_pending(self, addon: str) -> str | None:
        return self._rotating.peek(addon)

    def publish_pending(self, addon: str) -> None:
        """The pending password replaces the addon's at once (a new file renamed over it): a reader sees
        the one or the other, never half of one."""
        pending = self.peek_pending(addon)
        if pending is None or pending == self.peek(addon):
            return
        draft = self.directory / f".{addon}.{os.getpid()}.publish"
        write_private(draft, pending)
        try:
            os.replace(draft, self._path(addon))
        except BaseException:
            draft.unlink(missing_ok=True)  # it holds the password: never left beside the store's files
            raise
        directory = os.open(self.directory, os.O_RDONLY)  # the rename itself durable before the app is told
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def forget_pending(self, addon: str) -> None:
        if (self.directory / ".rotating").exists():
            self._rotating.forget(addon)

    # -- the whole store, for the control plane's export and restore (engine/recovery_ports.py) -----

    def list_items(self) -> list[tuple[str, bytes]]:
        """Every secret, and a rotation's pending ones as `.rotating/<addon>` (a draft being written is not one)."""
        found = [(p.name, p.read_bytes()) for p in sorted(self.directory.iterdir()) if SAFE_NAME.match(p.name)]
        if (self.directory / ".rotating").is_dir():
            found += [(PENDING + name, value) for name, value in self._rotating.list_items()]
        return found

    def put_item(self, name: str, value: bytes) -> None:
        if name.startswith(PENDING):
            return self._rotating.put_item(name.removeprefix(PENDING), value)
        path = self._path(name)
        draft = self.directory / f".{name}.{os.getpid()}.restore"
        write_private(draft, value.decode())
        os.replace(draft, path)

    def remove_item(self, name: str) -> None:
        if name.startswith(PENDING):
            return self._rotating.remove_item(name.removeprefix(PENDING))
        self._path(name).unlink(missing_ok=True)


def write_private(path: Path, text: str) -> None:
    """`text` in a new 0600 file, on disk; a write that fails (a full disk) leaves no file behind."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise

"""The backup keys, kept outside the backup store: a store copied without them reveals nothing.

From REDIS_ADDONS_BACKUP_KEY (base64 keys of 32 bytes, comma-separated: the first seals new archives,
the others still open old ones), or else from a keyring file under the engine's home (0600, made with
a random key on first use, like the API token): {"current": ID, "keys": {ID: base64 key}}. With the
variable set, a keyring file there still lends its keys to read old archives (a move from the file to
the variable), and is never written.

`rotate` makes a new current key and keeps the others; `drop` removes one no archive uses any more
(backup_files.FileBackupStore.reseal moves archives onto the current key). A running engine sees a
rotation at its next archive: the file is read again when it changed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
from pathlib import Path

import structlog

from adapters.storage.sealed import KEY_SIZE, key_id
from engine.settings import SettingsError

ENV = "REDIS_ADDONS_BACKUP_KEY"
KEYRING = "backup-keys.json"  # the keyring's one item (list_items(), put_item())
log = structlog.get_logger("backup-keys")


class BackupKeys:
    def __init__(self, path: Path, env_value: str | None = None):
        self.path, self.env_keys = Path(path), _parse_env(env_value) if env_value else []
        self._seen: tuple | None = None
        self._file: tuple[bytes | None, dict[bytes, bytes]] = (None, {})

    @property
    def from_env(self) -> bool:
        return bool(self.env_keys)

    def exist(self) -> bool:
        """Whether there is a key yet (a keyring file, or the variable)."""
        return self.from_env or self.path.exists()

    def current(self) -> tuple[bytes, bytes]:
        """(ID, key) that seals new archives; the keyring file is made with a first key if there is none."""
        if self.env_keys:
            return key_id(self.env_keys[0]), self.env_keys[0]
        current, keys = self._load()
        if current is None:
            with self._locked():
                current, keys = self._load()
                if current is None:
                    key = os.urandom(KEY_SIZE)
                    current, keys = key_id(key), {key_id(key): key}
                    self._save(current, keys)
                    log.warning("backup keyring made: keep a copy elsewhere (without it no backup archive can be read)",
                                path=str(self.path), key_id=current.hex())
        return current, keys[current]

    def get(self, kid: bytes) -> bytes | None:
        for key in self.env_keys:
            if key_id(key) == kid:
                return key
        return self._load()[1].get(kid)

    def ids(self) -> list[tuple[str, bool]]:
        """Every key's ID (hex), the current one marked True, the current first."""
        if not self.exist():
            return []  # not made here: `show` must not hide a lost keyring behind a new key
        current = self.current()[0]
        found = [key_id(k) for k in self.env_keys] + [k for k in self._load()[1] if k not in map(key_id, self.env_keys)]
        return sorted(((k.hex(), k == current) for k in found), key=lambda pair: not pair[1])

    def rotate(self) -> str:
        """A new random key becomes current; the others stay to open older archives. Its ID (hex)."""
        self._refuse_with_env("rotate")
        with self._locked():
            _, keys = self._load()
            key = os.urandom(KEY_SIZE)
            self._save(key_id(key), {**keys, key_id(key): key})
        return key_id(key).hex()

    def drop(self, kid_hex: str) -> None:
        self._refuse_with_env("drop")
        with self._locked():
            current, keys = self._load()
            kid = _id(kid_hex)
            if kid not in keys:
                raise SettingsError(f"no backup key {kid_hex} in {self.path} (see `backup-key show`)")
            if kid == current:
                raise SettingsError(f"backup key {kid_hex} is the current one: rotate first (`backup-key rotate`)")
            self._save(current, {k: v for k, v in keys.items() if k != kid})

    # -- the keyring as one item, for the control plane's export and restore (engine/recovery_ports.ItemStore) --

    def list_items(self) -> list[tuple[str, bytes]]:
        """[(KEYRING, its JSON)] when there is a keyring (the variable's keys are the operator's, not in it)."""
        current, keys = self._load()
        return [] if current is None else [(KEYRING, keyring_json(current, keys).encode())]

    def put_item(self, name: str, value: bytes) -> None:
        """The keyring replaced by `value` (a list_items() JSON), checked whole first."""
        self._refuse_other(name)
        current, keys = parse_keyring(value.decode(), "the keyring given")
        with self._locked():
            self._save(current, keys)

    def remove_item(self, name: str) -> None:
        self._refuse_other(name)
        self._forget()

    def _forget(self) -> None:
        Path(self.path).unlink(missing_ok=True)
        self._seen = None

    @staticmethod
    def _refuse_other(name: str) -> None:
        if name != KEYRING:
            raise ValueError(f"not an item of the backup keyring: {name!r} ({KEYRING})")

    def _refuse_with_env(self, what: str) -> None:
        if self.env_keys:
            raise SettingsError(f"the backup keys come from {ENV}: to {what} one, change the variable (the current key "
                                "first, the ones still needed after it, comma-separated) and restart the engine")

    def _load(self) -> tuple[bytes | None, dict[bytes, bytes]]:
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            return None, {}
        seen = (found.st_ino, found.st_mtime_ns, found.st_size)
        if seen != self._seen:
            self._file, self._seen = _read(self.path), seen
        return self._file

    def _save(self, current: bytes, keys: dict[bytes, bytes]) -> None:
        temporary = self.path.with_name(self.path.name + ".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(keyring_json(current, keys))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)  # a reader sees the old keyring or the new one, whole
        directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)  # the rename itself on disk: a crash must not bring back the keyring without the new key
        finally:
            os.close(directory)
        self._seen = None

    @contextlib.contextmanager
    def _locked(self):
        """One writer at a time (two `rotate` at once would each drop the other's key)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _read(path: Path) -> tuple[bytes, dict[bytes, bytes]]:
    if (mode := os.stat(path).st_mode) & 0o077:
        os.chmod(path, 0o600)  # the keys are for the engine's user alone
        log.warning("backup keyring was readable by others: made 0600 (copies of it may be about)",
                    path=str(path), mode=oct(mode & 0o777))
    return parse_keyring(path.read_text(), path)


def parse_keyring(text: str, path: object) -> tuple[bytes, dict[bytes, bytes]]:
    """(current ID, {ID: key}) of a keyring's JSON text; `path` names where it was read in an error."""
    try:
        body = json.loads(text)
        keys = {_id(k): base64.b64decode(v, validate=True) for k, v in body["keys"].items()}
        current = _id(body["current"])
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, SettingsError) as e:
        raise SettingsError(f"backup keyring {path} is malformed ({type(e).__name__}): restore it from your copy") from None
    if current not in keys or any(len(v) != KEY_SIZE or key_id(v) != k for k, v in keys.items()):
        raise SettingsError(f"backup keyring {path} is inconsistent (a key does not match its ID, or the current "
                            "one is missing): restore it from your copy")
    return current, keys


def keyring_json(current: bytes, keys: dict[bytes, bytes]) -> str:
    body = {"current": current.hex(), "keys": {k.hex(): base64.b64encode(v).decode() for k, v in keys.items()}}
    return json.dumps(body, indent=1)


def _parse_env(value: str) -> list[bytes]:
    keys = []
    for n, part in enumerate(value.split(","), 1):
        try:
            key = base64.b64decode(part.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_SIZE:  # the value itself is never repeated: it is a secret
            raise SettingsError(f"{ENV}: key {n} is not {KEY_SIZE} bytes in base64 "
                                "(make one with `head -c 32 /dev/urandom | base64`)")
        keys.append(key)
    return keys


def _id(text: str) -> bytes:
    try:
        kid = bytes.fromhex(text)
    except (ValueError, TypeError):
        kid = b""
    if len(kid) != 8:
        raise SettingsError(f"{text!r} is not a backup key ID (16 hexadecimal digits, see `backup-key show`)")
    return kid

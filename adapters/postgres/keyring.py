"""The backup keyring in PostgreSQL: the JSON of the keyring file (adapters/storage/backup_keys.py), sealed in
the vault as `backup-keyring`, the same for every process; made with a first key at the first backup of any.
REDIS_ADDONS_BACKUP_KEY still wins, as with the file. Writers (the first key, rotate, drop) take a PostgreSQL
advisory lock, so two processes rotating at once keep both keys."""

from __future__ import annotations

import contextlib
import threading

from adapters.postgres.vault import Vault
from adapters.storage.backup_keys import BackupKeys, _parse_env, keyring_json, parse_keyring

NAME = "backup-keyring"
WRITERS_LOCK = 0x72656469735F6B31  # an arbitrary constant of ours, for pg_advisory_lock


class PostgresBackupKeys(BackupKeys):
    def __init__(self, vault: Vault, env_value: str | None = None):
        self.vault, self.env_keys = vault, _parse_env(env_value) if env_value else []
        self.path = "PostgreSQL (the sealed backup-keyring)"  # where it is, in BackupKeys' messages
        self._in_process = threading.Lock()

    def exist(self) -> bool:
        return self.from_env or self.vault.get(NAME) is not None

    def _load(self) -> tuple[bytes | None, dict[bytes, bytes]]:
        text = self.vault.get(NAME)
        return (None, {}) if text is None else parse_keyring(text, self.path)

    def _save(self, current: bytes, keys: dict[bytes, bytes]) -> None:
        self.vault.put(NAME, keyring_json(current, keys))

    def _forget(self) -> None:
        self.vault.delete(NAME)

    @contextlib.contextmanager
    def _locked(self):
        with self._in_process:  # the advisory lock is per session, and this process has one session
            self.vault.database.run("SELECT pg_advisory_lock(%s)", (WRITERS_LOCK,))
            try:
                yield
            finally:
                self.vault.database.run("SELECT pg_advisory_unlock(%s)", (WRITERS_LOCK,))

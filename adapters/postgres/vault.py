"""Sealed values by name in `redis_addons_secrets`: every value sealed with the installation key, its row's
name as associated data (sealing.py). Created once then always the same across racing processes: INSERT ...
ON CONFLICT DO NOTHING, then the row read back, whoever won.

A check row, sealed at the first start, tells a wrong key at once (at start, naming the key file) rather
than at the first secret some step reads."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import structlog

from adapters.postgres.connection import Database, describe
from adapters.postgres.sealing import (KEY_FILE_ENV, InstallationKey, SecretsKeyError, read_key_file,
                                       write_key_file)

CHECK = "installation-key-check"
CHECK_VALUE = b"redis-addons installation key"
log = structlog.get_logger("shared-secrets")


class Vault:
    def __init__(self, database: Database, key: InstallationKey):
        self.database, self.key = database, key

    def get(self, name: str) -> str | None:
        rows = self.database.run("SELECT sealed FROM redis_addons_secrets WHERE name = %s", (name,))
        return self.key.open(name, rows[0][0]).decode() if rows else None

    def create_once(self, name: str, make: Callable[[], str]) -> str:
        """The value under `name`, `make()` stored first when there is none; a racing process's wins if first."""
        found = self.get(name)
        if found is not None:
            return found
        self.database.run("INSERT INTO redis_addons_secrets (name, sealed) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                          (name, self.key.seal(name, make().encode())))
        return self.get(name)

    def create_all_once(self, values: dict[str, str]) -> dict[str, str]:
        """Like create_once for values that belong together (a key and its certificate): stored in one
        transaction, in the order given, unless there; two processes racing keep the first one's, all of them."""
        with self.database.transaction() as connection:
            for name, value in values.items():
                connection.execute("INSERT INTO redis_addons_secrets (name, sealed) VALUES (%s, %s) "
                                   "ON CONFLICT DO NOTHING", (name, self.key.seal(name, value.encode())))
        return {name: self.get(name) for name in values}

    def put(self, name: str, value: str) -> None:
        """`value` under `name`, replacing what was there."""
        self.database.run("INSERT INTO redis_addons_secrets (name, sealed) VALUES (%s, %s) ON CONFLICT (name) "
                          "DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()",
                          (name, self.key.seal(name, value.encode())))

    def delete(self, *names: str) -> None:
        self.database.run("DELETE FROM redis_addons_secrets WHERE name = ANY(%s)", (list(names),))

    def under(self, prefix: str) -> dict[str, str]:
        """Every value whose name starts with `prefix`, by the rest of its name."""
        rows = self.database.run("SELECT name, sealed FROM redis_addons_secrets WHERE starts_with(name, %s) "
                                 "ORDER BY name", (prefix,))
        return {name[len(prefix):]: self.key.open(name, sealed).decode() for name, sealed in rows}


class VaultItems:
    """The values under `prefix` known by `names`, as one engine.recovery_ports.ItemStore (the CA's "ca.pem" and
    "ca.key", the tokens) for the control plane's export and restore. A put is seen by engines started after it
    (a running one keeps what it loaded)."""

    def __init__(self, vault: Vault, prefix: str, names: tuple[str, ...]):
        self.vault, self.prefix, self.names = vault, prefix, names

    def list_items(self) -> list[tuple[str, bytes]]:
        return [(name, value.encode()) for name, value in self.vault.under(self.prefix).items()]

    def put_item(self, name: str, value: bytes) -> None:
        self.vault.put(self._known(name), value.decode())

    def remove_item(self, name: str) -> None:
        self.vault.delete(self._known(name))

    def _known(self, name: str) -> str:
        if name not in self.names:
            raise ValueError(f"not an item of {self.prefix.rstrip('/')}: {name!r} (known: {', '.join(self.names)})")
        return self.prefix + name


def open_vault(database: Database, key_file: Path, may_make: bool = True) -> Vault:
    """The vault with the installation key of `key_file`. On a database that holds no sealed secret yet, a
    missing key file is made (0600) and said, when `may_make`; otherwise it must be the installation's key."""
    key_file = Path(key_file)
    made = False
    if key_file.exists():
        key = read_key_file(key_file)
    elif not may_make or database.run("SELECT 1 FROM redis_addons_secrets LIMIT 1"):
        raise SecretsKeyError(
            f"{describe(database.options)} holds secrets sealed with the installation key, and the secrets key file "
            f"{key_file} does not exist: copy the key file of the installation's other processes there, or point "
            f"{KEY_FILE_ENV} at it")
    else:
        key, made = write_key_file(key_file), True
    vault = Vault(database, key)
    try:
        vault.create_once(CHECK, CHECK_VALUE.decode)  # the first key to write it is the installation's
    except SecretsKeyError:
        if made:  # another process made its own key at the same instant, and won: this one is of no use
            key_file.unlink(missing_ok=True)
        raise SecretsKeyError(
            f"the secrets key in {key_file} (key {key.id}) is not the installation key the secrets in "
            f"{describe(database.options)} are sealed with: every process of the installation needs the same key "
            f"file ({KEY_FILE_ENV})") from None
    if made:
        log.warning("installation secrets key made: give every other engine process of this installation a copy "
                    f"({KEY_FILE_ENV}), and keep one elsewhere (without it no secret in PostgreSQL can be read)",
                    file=str(key_file), key_id=key.id)
    return vault

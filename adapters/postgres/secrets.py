"""The SecretStore port on PostgreSQL: addon passwords (or webhook signing secrets) sealed in the vault, under
`<namespace>/<name>`, a rotation's pending one under `<namespace>-pending/<name>`. What FileSecretStore does
with files, for every process of the installation at once."""

from __future__ import annotations

import secrets

from adapters.postgres.vault import Vault
from adapters.secrets_store import PENDING, SAFE_NAME


class PostgresSecretStore:
    def __init__(self, vault: Vault, namespace: str = "password"):
        self.vault = vault
        self.current, self.pending = f"{namespace}/", f"{namespace}-pending/"

    def __repr__(self) -> str:
        return f"<PostgresSecretStore {self.current}>"

    def _name(self, prefix: str, addon: str) -> str:
        if not SAFE_NAME.match(addon):
            raise ValueError(f"not an addon name: {addon!r}")
        return prefix + addon

    def password_for(self, addon: str) -> str:
        """Created once (64 URL-safe characters), then always the same, whichever process asks first."""
        return self.vault.create_once(self._name(self.current, addon), lambda: secrets.token_urlsafe(48))

    def peek(self, addon: str) -> str | None:
        return self.vault.get(self._name(self.current, addon))

    def forget(self, addon: str) -> None:
        self.vault.delete(self._name(self.current, addon), self._name(self.pending, addon))

    # -- a rotation's new password, beside the current one (engine/credentials_rotation.py) ----------

    def pending_for(self, addon: str) -> str:
        return self.vault.create_once(self._name(self.pending, addon), lambda: secrets.token_urlsafe(48))

    def peek_pending(self, addon: str) -> str | None:
        return self.vault.get(self._name(self.pending, addon))

    def publish_pending(self, addon: str) -> None:
        """The pending password replaces the addon's in one statement: a reader sees the one or the other."""
        pending = self.peek_pending(addon)
        if pending is not None and pending != self.peek(addon):
            self.vault.put(self._name(self.current, addon), pending)  # sealed again: under the current name

    def forget_pending(self, addon: str) -> None:
        self.vault.delete(self._name(self.pending, addon))

    # -- every item, for the control plane's export and restore (engine/recovery_ports.ItemStore) -------

    def list_items(self) -> list[tuple[str, bytes]]:
        """Every secret by its name, as FileSecretStore names them: the addon, or PENDING + the addon."""
        found = [(addon, value.encode()) for addon, value in self.vault.under(self.current).items()]
        return found + [(PENDING + addon, value.encode()) for addon, value in self.vault.under(self.pending).items()]

    def put_item(self, name: str, value: bytes) -> None:
        """Store `value` under a list_items() name, replacing what was there."""
        self.vault.put(self._item(name), value.decode())

    def remove_item(self, name: str) -> None:
        self.vault.delete(self._item(name))

    def _item(self, name: str) -> str:
        if name.startswith(PENDING):
            return self._name(self.pending, name[len(PENDING):])
        return self._name(self.current, name)

"""The ports the control plane's disaster recovery goes through (engine/control_plane_export.py).

The engine's state outside the event log lives in small stores of named items (addon passwords, webhook
signing secrets, the CA's files, the backup keyring, the API tokens, checkpoints): each offers its items
and takes them back, whatever holds them (files under the data directory today, PostgreSQL tomorrow).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from uuid import UUID


class RecoveryRefused(Exception):
    """An export or a restore that cannot be done; the message says why and what to do. Never a secret."""


class ArchiveRefused(RecoveryRefused):
    """The archive cannot be opened: not one, another format, the wrong passphrase, altered or truncated."""


class NotFresh(RecoveryRefused):
    """The place a restore would write to already holds a control plane's state (or anything else)."""


class ItemStore(Protocol):
    """A store of named secret-like items, listed whole for an export and filled again by a restore."""

    def list_items(self) -> list[tuple[str, bytes]]:
        """Every (name, value) the store holds now; [] when it holds nothing."""

    def put_item(self, name: str, value: bytes) -> None:
        """Store `value` under `name`, written whole (a reader sees it all or not at all)."""

    def remove_item(self, name: str) -> None:
        """Take `name` away again (a restore that failed undoes what it put); a missing one counts as removed."""


@dataclass(frozen=True)
class EventRecord:
    """One stored event as the event store keeps it: copied byte for byte, never decoded."""

    position: int  # its notification ID in the store it was read from
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


class EventRecords(Protocol):
    """The event store read and written below the application: every stored event, in order."""

    def last_position(self) -> int:
        """The notification ID of the last event; 0 when the store is empty."""

    def read(self, after: int, stop: int, limit: int) -> list[EventRecord]:
        """Up to `limit` events with after < position <= stop, in order."""

    def insert(self, records: list[EventRecord]) -> list[int]:
        """Append them in this order, all or none (one transaction); their new positions."""

    def close(self) -> None: ...


class SealedArchive(Protocol):
    """One file holding records (JSON-able dicts), encrypted and authenticated with a passphrase."""

    def write(self, path: Path, records: Iterable[dict], passphrase: str) -> int:
        """Write them to `path`, replacing it only once whole; the archive's size in bytes."""

    def read(self, path: Path, passphrase: str) -> list[dict]:
        """The records, every byte authenticated before any is given: ArchiveRefused otherwise."""

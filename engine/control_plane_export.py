"""The control plane's own disaster recovery: its whole state exported as one sealed archive, and restored
from one into a fresh installation, where the engine starts and finds every addon as it was.

The state is the event store (every stored event, in order, copied byte for byte below the application,
so an SQLite store restores into PostgreSQL and back) and the item stores beside it (engine/recovery_ports.py):
addon passwords, webhook signing secrets, the CA, the backup keyring, the API tokens, the hosts file, the
checkpoints. The read models are not in it: the engine rebuilds them from the log. Nor are the backups' archives
(big, and kept in the backup store): the keyring that opens them is.

An export may run beside a live engine: the log is read up to the position it had when the export began, the
stores after it (a password made meanwhile is simply one more), and a checkpoint ahead of the log is dropped
by its owner at start. A restore reads and authenticates the whole archive before it writes anything, refuses
stores that hold anything, puts the items, then inserts every event in one transaction; if anything fails,
what it put is taken away again.
"""

from __future__ import annotations

import base64
import bisect
import json
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

import structlog
from eventsourcing.persistence import StoredEvent

from engine.recovery_ports import (ArchiveRefused, EventRecord, EventRecords, ItemStore, NotFresh, RecoveryRefused,
                                   SealedArchive)
from engine.store import Ledger

log = structlog.get_logger("control-plane")

KIND = "redis-addons control plane"
FORMAT = 1
BATCH = 1000
CHECKPOINTS = "checkpoints"  # the section whose log positions follow the events to their new positions

__all__ = ["ControlPlaneState", "LedgerRecords", "RecoveryRefused", "ArchiveRefused", "NotFresh"]


class LedgerRecords:
    """EventRecords through eventsourcing's own recorder: the store the settings name, SQLite or PostgreSQL."""

    def __init__(self, store_env: dict):
        self._app = Ledger(env=store_env)
        self._recorder = self._app.recorder

    def last_position(self) -> int:
        return self._recorder.max_notification_id() or 0

    def read(self, after: int, stop: int, limit: int) -> list[EventRecord]:
        return [EventRecord(n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))
                for n in self._recorder.select_notifications(after + 1, limit, stop=stop)]

    def insert(self, records: list[EventRecord]) -> list[int]:
        stored = [StoredEvent(r.originator_id, r.originator_version, r.topic, r.state) for r in records]
        return list(self._recorder.insert_events(stored) or []) if stored else []

    def close(self) -> None:
        self._app.close()


class ControlPlaneState:
    def __init__(self, events: EventRecords, stores: dict[str, ItemStore], archive: SealedArchive,
                 clock=lambda: datetime.now(timezone.utc), on_close=lambda: None):
        """`on_close`: what the stores hold open (a database connection), let go by `close`."""
        self.events, self.stores, self.archive, self.clock, self.on_close = events, stores, archive, clock, on_close

    def close(self) -> None:
        try:
            self.events.close()
        finally:
            self.on_close()

    # -- export ----------------------------------------------------------------------------

    def export(self, to: Path, passphrase: str) -> dict:
        """Write the archive at `to`; what it holds, counted (never a secret)."""
        last = self.events.last_position()
        counts = {"events": 0, "last_position": last, **{section: 0 for section in self.stores}}

        def records():
            yield {"manifest": {"kind": KIND, "format": FORMAT, "made_at": self.clock().isoformat(timespec="seconds"),
                                "last_position": last}}
            after = 0
            while batch := self.events.read(after, last, BATCH):
                for event in batch:
                    yield {"event": [event.position, str(event.originator_id), event.originator_version, event.topic,
                                     _text(event.state)]}
                counts["events"] += len(batch)
                after = batch[-1].position
            for section, store in self.stores.items():
                for name, value in store.list_items():
                    yield {"item": [section, name, _text(value)]}
                    counts[section] += 1
            yield {"end": counts}

        counts["size"] = self.archive.write(Path(to), records(), passphrase)
        log.info("control plane exported", archive=str(to), **counts)
        return counts

    # -- restore ---------------------------------------------------------------------------

    def restore(self, source: Path, passphrase: str) -> dict:
        """Fill empty stores from the archive at `source`; what was restored, counted."""
        return self.restore_records(Path(source), self.archive.read(Path(source), passphrase))

    def restore_records(self, source: Path, records: list[dict]) -> dict:
        """`restore` of the records read (and authenticated) from the archive at `source` already."""
        events, items = _contents(Path(source), records)
        unknown = sorted({section for section, _, _ in items} - set(self.stores))
        if unknown:
            raise ArchiveRefused(f"{source} holds parts this release does not know ({', '.join(unknown)}): restore it "
                                 "with the release that made it")
        self.refuse_unless_fresh()
        put: list[tuple[ItemStore, str]] = []
        try:
            for section, name, value in items:
                if section != CHECKPOINTS:
                    self.stores[section].put_item(name, value)
                    put.append((self.stores[section], name))
            positions = self.events.insert(events)  # one transaction: all the events or none
        except BaseException:
            for store, name in reversed(put):
                store.remove_item(name)
            raise
        counts = {"events": len(events), "last_position": positions[-1] if positions else 0,
                  **{section: sum(1 for s, _, _ in items if s == section) for section in self.stores}}
        counts[CHECKPOINTS] = self._put_checkpoints(items, [e.position for e in events], positions)
        log.info("control plane restored", archive=str(source), **counts)
        return counts

    def refuse_unless_fresh(self) -> None:
        if (held := self.events.last_position()) > 0:
            raise NotFresh(f"the event store already holds events (up to position {held}): a control plane is restored "
                           "only into an empty one")
        for section, store in self.stores.items():
            if store.list_items():
                raise NotFresh(f"the {section} store already holds items: a control plane is restored only into "
                               "empty stores")

    def _put_checkpoints(self, items: list, old: list[int], new: list[int]) -> int:
        """Checkpoints name log positions: an event store that numbers its events with gaps (PostgreSQL's sequence
        skips the numbers of rolled-back saves) is restored without them, so each position moves with its event.
        A checkpoint is a convenience (its owner reads the log from its start without it): one not written is
        only logged."""
        moved = old != new
        written = 0
        for section, name, value in items:
            if section != CHECKPOINTS:
                continue
            try:
                if moved:
                    value = _moved_positions(value, old, new)
                self.stores[CHECKPOINTS].put_item(name, value)
                written += 1
            except Exception as e:
                log.warning("checkpoint not restored: its owner reads the log from its start", checkpoint=name,
                            error=str(e))
        return written


def _contents(source: Path, records: list[dict]) -> tuple[list[EventRecord], list[tuple[str, str, bytes]]]:
    """The archive's events and items, checked against its manifest and its end (counts)."""
    if not records or records[0].get("manifest", {}).get("kind") != KIND:
        raise ArchiveRefused(f"{source} is not a control-plane archive (no manifest)")
    if (version := records[0]["manifest"].get("format")) != FORMAT:
        raise ArchiveRefused(f"{source} holds a control plane of format {version}; this release reads {FORMAT}")
    if "end" not in records[-1]:
        raise ArchiveRefused(f"{source} is incomplete: its end record is missing")
    events, items = [], []
    try:
        for record in records[1:-1]:
            if "event" in record:
                position, originator, version, topic, state = record["event"]
                events.append(EventRecord(int(position), UUID(originator), int(version), topic, _bytes(state)))
            else:
                section, name, value = record["item"]
                items.append((section, name, _bytes(value)))
    except (KeyError, ValueError, TypeError) as e:
        raise ArchiveRefused(f"{source} holds a malformed record ({type(e).__name__})") from None
    if len(events) != records[-1]["end"].get("events"):
        raise ArchiveRefused(f"{source} is incomplete: {len(events)} events where its end counts "
                             f"{records[-1]['end'].get('events')}")
    return events, items


def _moved_positions(value: bytes, old: list[int], new: list[int]) -> bytes:
    """The checkpoint with each position (a key `position` or `..._position`) moved to the new position of the last
    event at or before it."""
    def moved(position: int) -> int:
        at = bisect.bisect_right(old, position)
        return new[at - 1] if at else 0

    def walk(node):
        if isinstance(node, dict):
            return {k: moved(v) if _is_position(k, v) else walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return json.dumps(walk(json.loads(value))).encode()


def _is_position(key: str, value) -> bool:
    return (key == "position" or key.endswith("_position")) and isinstance(value, int) and not isinstance(value, bool)


def _text(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _bytes(text: str) -> bytes:
    return base64.b64decode(text, validate=True)

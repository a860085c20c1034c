"""The backups of every addon (removed addons' included: their backups stay), with the retention
decisions taken about them."""

from __future__ import annotations

import json

from domain.backup import Backup

SCHEMA = """
CREATE TABLE IF NOT EXISTS backups (
    id TEXT PRIMARY KEY, addon TEXT NOT NULL, app TEXT NOT NULL, tier TEXT NOT NULL, kind TEXT NOT NULL,
    day TEXT, name TEXT NOT NULL, created_at TEXT NOT NULL, redis_version TEXT,
    status TEXT NOT NULL, size INTEGER, sha256 TEXT, location TEXT, failure TEXT,
    kept_for TEXT NOT NULL DEFAULT '', expired INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0,
    taken_on TEXT, operation_id TEXT, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS backups_by_addon ON backups (addon, created_at);
"""


def apply(db, event) -> None:
    if not isinstance(event, Backup.Event):
        return
    backup, at = str(event.originator_id), event.timestamp.isoformat()
    if isinstance(event, Backup.Requested):
        db.execute(
            "INSERT INTO backups (id, addon, app, tier, kind, day, name, created_at, redis_version, operation_id, "
            "status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            (backup, event.addon, event.app, event.tier, event.kind, event.day,
             Backup.archive_name_for(event.requested_at, event.addon), event.requested_at.isoformat(),
             event.redis_version, getattr(event, "operation_id", None), at),  # none in older events
        )
        return
    changes = {
        Backup.Started: lambda e: {"status": "running"},
        Backup.Finished: lambda e: {"status": "done", "size": e.size, "sha256": e.sha256, "location": e.location,
                                    "taken_on": as_json(getattr(e, "taken_on", None))},  # none in older events
        Backup.Failed: lambda e: {"status": "failed", "failure": e.reason},
        Backup.Kept: lambda e: {"kept_for": ",".join(e.reasons), "expired": 0},
        Backup.Expired: lambda e: {"kept_for": "", "expired": 1},
        Backup.Deleted: lambda e: {"deleted": 1},
    }[type(event)](event)
    columns = ", ".join(f"{name} = ?" for name in changes)
    db.execute(f"UPDATE backups SET {columns}, updated_at = ? WHERE id = ?", (*changes.values(), at, backup))


def as_json(value: dict | None) -> str | None:
    return json.dumps(value, sort_keys=True) if value else None


def row(record: dict) -> dict:
    """As the API shows it."""
    record = dict(record)
    record["kept_for"] = [r for r in record["kept_for"].split(",") if r]
    record["expired"], record["deleted"] = bool(record["expired"]), bool(record["deleted"])
    # Where a Business addon's backup was taken: {node, role, offset, primary_offset} on a replica,
    # {node, role, note, why} on the primary; None for a single node's.
    record["taken_on"] = json.loads(record["taken_on"]) if record["taken_on"] else None
    return record

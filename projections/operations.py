"""The operations timeline: each saga with its steps, their times and outcome."""

from __future__ import annotations

import json

from domain.operation import Operation

SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, addon TEXT NOT NULL, app TEXT NOT NULL,
    status TEXT NOT NULL, error TEXT, compensation TEXT, started_at TEXT NOT NULL, finished_at TEXT,
    requested_by TEXT);  -- JSON {id, name} of the token that asked (engine/audit.py); NULL before it was recorded
CREATE INDEX IF NOT EXISTS operations_by_addon ON operations (addon);
CREATE TABLE IF NOT EXISTS operation_steps (
    operation_id TEXT NOT NULL, position INTEGER NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, detail TEXT, started_at TEXT, ended_at TEXT,
    PRIMARY KEY (operation_id, position));
"""


def apply(db, event) -> None:
    if not isinstance(event, Operation.Event):
        return
    op, at = str(event.originator_id), event.timestamp.isoformat()
    if isinstance(event, Operation.Started):
        who = vars(event).get("requested_by")  # absent from events recorded before requesters were
        db.execute("INSERT INTO operations (id, kind, addon, app, status, started_at, requested_by) "
                   "VALUES (?, ?, ?, ?, 'running', ?, ?)",
                   (op, event.kind, event.addon, event.app, at, json.dumps(who) if who else None))
        db.executemany("INSERT INTO operation_steps (operation_id, position, name, status) VALUES (?, ?, ?, 'pending')",
                       [(op, i, name) for i, name in enumerate(event.steps)])
    elif isinstance(event, Operation.StepStarted):
        db.execute("UPDATE operation_steps SET status = 'running', attempts = attempts + 1, started_at = ?, ended_at = NULL "
                   "WHERE operation_id = ? AND name = ?", (at, op, event.step))
    elif isinstance(event, Operation.StepSucceeded):
        db.execute("UPDATE operation_steps SET status = 'succeeded', detail = ?, ended_at = ? WHERE operation_id = ? AND name = ?",
                   (event.detail, at, op, event.step))
    elif isinstance(event, Operation.StepFailed):
        db.execute("UPDATE operation_steps SET status = 'failed', detail = ?, ended_at = ? WHERE operation_id = ? AND name = ?",
                   (event.error, at, op, event.step))
        db.execute("UPDATE operations SET error = ? WHERE id = ?", (f"{event.step}: {event.error}", op))
    elif isinstance(event, Operation.StepUndone):
        db.execute("UPDATE operation_steps SET status = 'undone', detail = ?, ended_at = ? WHERE operation_id = ? AND name = ?",
                   (event.detail, at, op, event.step))
    elif isinstance(event, Operation.CompensationFailed):
        db.execute("UPDATE operations SET status = 'needs-attention', compensation = ? WHERE id = ?", (event.error, op))
    elif isinstance(event, (Operation.Compensated, Operation.Abandoned)):
        status = "failed" if isinstance(event, Operation.Compensated) else "abandoned"
        detail = event.detail if isinstance(event, Operation.Compensated) else event.reason
        db.execute("UPDATE operation_steps SET status = 'skipped' WHERE operation_id = ? AND status = 'pending'", (op,))
        db.execute("UPDATE operations SET status = ?, compensation = ?, finished_at = ? WHERE id = ?", (status, detail, at, op))
    elif isinstance(event, Operation.Succeeded):
        db.execute("UPDATE operations SET status = 'succeeded', finished_at = ? WHERE id = ?", (at, op))

"""Addons list and app environment (the variables, without the password)."""

from __future__ import annotations

from domain.addon import Addon

SCHEMA = """
CREATE TABLE IF NOT EXISTS addons (
    name TEXT PRIMARY KEY, id TEXT NOT NULL, app TEXT NOT NULL, provider TEXT NOT NULL,
    plan TEXT NOT NULL, version TEXT NOT NULL, status TEXT NOT NULL,
    host TEXT NOT NULL, address TEXT NOT NULL, port INTEGER NOT NULL,
    failure TEXT, operation_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS addons_by_app ON addons (app);
CREATE TABLE IF NOT EXISTS environment (
    addon TEXT PRIMARY KEY, app TEXT NOT NULL, address TEXT NOT NULL, port INTEGER NOT NULL,
    tls INTEGER NOT NULL, published_at TEXT NOT NULL);
"""

STATUS = {
    Addon.Provisioned: "running",
    Addon.ProvisioningFailed: "failed",
    Addon.RemovalRequested: "removing",
    Addon.RemovalFailed: "failed",
    Addon.Removed: "removed",
}


def apply(db, event) -> None:
    at = event.timestamp.isoformat()
    if isinstance(event, Addon.Requested):
        db.execute(
            "INSERT INTO addons (name, id, app, provider, plan, version, status, host, address, port, "
            "operation_id, created_at, updated_at) VALUES (?, ?, ?, 'redis', ?, ?, 'provisioning', ?, ?, ?, ?, ?, ?)",
            (event.name, str(event.originator_id), event.app, event.plan, event.redis_version, event.host,
             event.address, event.port, str(event.operation_id), at, at),
        )
        return
    status = STATUS.get(type(event))
    if status is None:
        return
    failure = getattr(event, "reason", None)
    operation = str(event.operation_id) if status in ("removing",) else None
    db.execute(
        "UPDATE addons SET status = ?, failure = ?, operation_id = ?, updated_at = ? WHERE id = ?",
        (status, failure, operation, at, str(event.originator_id)),
    )
    if isinstance(event, Addon.Provisioned):
        row = db.execute("SELECT name, app, address, port FROM addons WHERE id = ?", (str(event.originator_id),)).fetchone()
        db.execute(
            "INSERT OR REPLACE INTO environment (addon, app, address, port, tls, published_at) VALUES (?, ?, ?, ?, 0, ?)",
            (row["name"], row["app"], row["address"], row["port"], at),
        )
    elif isinstance(event, (Addon.Removed, Addon.ProvisioningFailed)):
        db.execute("DELETE FROM environment WHERE addon = (SELECT name FROM addons WHERE id = ?)", (str(event.originator_id),))

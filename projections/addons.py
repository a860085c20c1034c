"""Addons list and app environment (the variables, without the password)."""

from __future__ import annotations

from domain.addon import Addon

SCHEMA = """
CREATE TABLE IF NOT EXISTS addons (
    name TEXT PRIMARY KEY, id TEXT NOT NULL, app TEXT NOT NULL, provider TEXT NOT NULL,
    plan TEXT NOT NULL, version TEXT NOT NULL, status TEXT NOT NULL,
    host TEXT NOT NULL, address TEXT NOT NULL, port INTEGER NOT NULL, tls_port INTEGER,
    failure TEXT, operation_id TEXT, target_plan TEXT, target_host TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS addons_by_app ON addons (app);
CREATE INDEX IF NOT EXISTS addons_by_id ON addons (id);  -- events name the addon by its ID
CREATE TABLE IF NOT EXISTS environment (
    addon TEXT PRIMARY KEY, app TEXT NOT NULL, address TEXT NOT NULL, port INTEGER NOT NULL,
    tls_port INTEGER, tls INTEGER NOT NULL, published_at TEXT NOT NULL);
"""

ROTATION_FAILED = "password rotation failed: "

STATUS = {
    Addon.Provisioned: "running",
    Addon.ProvisioningFailed: "failed",
    Addon.PlanChangeRequested: "changing-plan",
    Addon.PlanChangeFailed: "running",
    Addon.RemovalRequested: "removing",
    Addon.RemovalFailed: "failed",
    Addon.Removed: "removed",
    Addon.RestoreRequested: "restoring",
    Addon.Restored: "running",
    Addon.RestoreFailed: "running",
    Addon.UpgradeRequested: "upgrading",
    Addon.Upgraded: "running",
    Addon.UpgradeFailed: "running",
}


def apply(db, event) -> None:
    if not isinstance(event, Addon.Event):
        return
    at, addon_id = event.timestamp.isoformat(), str(event.originator_id)
    if isinstance(event, Addon.Requested):
        db.execute(
            "INSERT INTO addons (name, id, app, provider, plan, version, status, host, address, port, tls_port, "
            "operation_id, created_at, updated_at) VALUES (?, ?, ?, 'redis', ?, ?, 'provisioning', ?, ?, ?, ?, ?, ?, ?)",
            (event.name, addon_id, event.app, event.plan, event.redis_version, event.host,
             event.address, event.port, tls_port(event), str(event.operation_id), at, at),
        )
    elif isinstance(event, Addon.PlanChanged):
        db.execute(
            "UPDATE addons SET plan = ?, host = ?, address = ?, port = ?, tls_port = ?, target_plan = NULL, "
            "target_host = NULL, status = 'running', failure = NULL, operation_id = NULL, updated_at = ? WHERE id = ?",
            (event.plan, event.host, event.address, event.port, tls_port(event), at, addon_id),
        )
        db.execute("UPDATE environment SET address = ?, port = ?, tls_port = ?, published_at = ? "
                   "WHERE addon = (SELECT name FROM addons WHERE id = ?)",
                   (event.address, event.port, tls_port(event), at, addon_id))
    elif isinstance(event, Addon.AddressPublished):  # a change between kinds: the app restarts onto it
        db.execute("UPDATE addons SET address = ?, port = ?, tls_port = ?, updated_at = ? WHERE id = ?",
                   (event.address, event.port, event.tls_port, at, addon_id))
        db.execute("UPDATE environment SET address = ?, port = ?, tls_port = ?, published_at = ? "
                   "WHERE addon = (SELECT name FROM addons WHERE id = ?)",
                   (event.address, event.port, event.tls_port, at, addon_id))
    elif isinstance(event, (Addon.TlsServingFailed, Addon.CertificateRenewalFailed)):
        # The addon runs on as it was; what went wrong shows with it.
        db.execute("UPDATE addons SET failure = ?, updated_at = ? WHERE id = ?", (event.reason, at, addon_id))
    elif isinstance(event, Addon.CredentialsRotationStarted):  # it holds the addon like any operation
        db.execute("UPDATE addons SET operation_id = ?, updated_at = ? WHERE id = ?",
                   (str(event.operation_id), at, addon_id))
    elif isinstance(event, Addon.CredentialsRotationFailed):  # the addon runs on; what went wrong shows with it
        db.execute("UPDATE addons SET failure = ?, operation_id = NULL, updated_at = ? WHERE id = ?",
                   (f"{ROTATION_FAILED}{event.reason}", at, addon_id))
    elif isinstance(event, Addon.CredentialsRotated):  # a rotation's failure shown before is over
        db.execute("UPDATE addons SET operation_id = NULL, failure = CASE WHEN failure LIKE ? THEN NULL ELSE failure "
                   "END, updated_at = ? WHERE id = ?", (f"{ROTATION_FAILED}%", at, addon_id))
    elif isinstance(event, Addon.NeedsAttention):
        db.execute("UPDATE addons SET status = 'needs-attention', failure = ?, updated_at = ? WHERE id = ?",
                   (event.reason, at, addon_id))
    elif isinstance(event, Addon.AttentionCleared):
        db.execute("UPDATE addons SET status = ?, updated_at = ? WHERE id = ?", (event.status, at, addon_id))
    elif isinstance(event, Addon.TlsServed):
        db.execute("UPDATE addons SET tls_port = ?, updated_at = ? WHERE id = ?", (event.tls_port, at, addon_id))
        db.execute("UPDATE environment SET tls_port = ?, published_at = ? WHERE addon = (SELECT name FROM addons WHERE id = ?)",
                   (event.tls_port, at, addon_id))
    elif isinstance(event, Addon.SettingsChanged) and getattr(event, "settings", None) is not None:
        # Reference, "Force TLS Connections": forced, the app's URL is the TLS one.
        db.execute("UPDATE environment SET tls = ?, published_at = ? WHERE addon = (SELECT name FROM addons WHERE id = ?) "
                   "AND tls != ?", (int(bool(event.settings.get("force_tls"))), at, addon_id,
                                    int(bool(event.settings.get("force_tls")))))
    elif type(event) in STATUS:
        holding = (Addon.RemovalRequested, Addon.PlanChangeRequested, Addon.RestoreRequested, Addon.UpgradeRequested)
        operation = str(event.operation_id) if isinstance(event, holding) else None
        db.execute(
            "UPDATE addons SET status = ?, failure = ?, operation_id = ?, updated_at = ? WHERE id = ?",
            (STATUS[type(event)], getattr(event, "reason", None), operation, at, addon_id),
        )
        _follow_up(db, event, at, addon_id)


def _follow_up(db, event, at: str, addon_id: str) -> None:
    if isinstance(event, Addon.PlanChangeRequested):
        db.execute("UPDATE addons SET target_plan = ?, target_host = ? WHERE id = ?", (event.plan, event.host, addon_id))
    elif isinstance(event, Addon.PlanChangeFailed):
        db.execute("UPDATE addons SET target_plan = NULL, target_host = NULL WHERE id = ?", (addon_id,))
    elif isinstance(event, Addon.Provisioned):
        row = db.execute("SELECT name, app, address, port, tls_port FROM addons WHERE id = ?", (addon_id,)).fetchone()
        db.execute(
            "INSERT OR REPLACE INTO environment (addon, app, address, port, tls_port, tls, published_at) "
            "VALUES (?, ?, ?, ?, ?, 0, ?)",
            (row["name"], row["app"], row["address"], row["port"], row["tls_port"], at),
        )
    elif isinstance(event, Addon.Upgraded):  # same address: only a TLS port a build without TLS drops goes
        db.execute("UPDATE addons SET version = ?, tls_port = ? WHERE id = ?", (event.version, event.tls_port, addon_id))
        db.execute("UPDATE environment SET tls_port = ?, published_at = ? WHERE addon = (SELECT name FROM addons "
                   "WHERE id = ?) AND tls_port IS NOT ?", (event.tls_port, at, addon_id, event.tls_port))
    elif isinstance(event, (Addon.Removed, Addon.ProvisioningFailed)):
        db.execute("DELETE FROM environment WHERE addon = (SELECT name FROM addons WHERE id = ?)", (addon_id,))


def tls_port(event) -> int | None:
    """Events recorded before nodes served TLS carry no TLS port."""
    return getattr(event, "tls_port", None)

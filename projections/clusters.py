"""Cluster topology: each addon's nodes (role, host, address, ports, state) and its primaries'
history; a data primary that is down shows on the addon's row as `down`."""

from __future__ import annotations

from domain.cluster import Cluster

SCHEMA = """
CREATE TABLE IF NOT EXISTS clusters (id TEXT PRIMARY KEY, addon TEXT NOT NULL, app TEXT NOT NULL, primary_node TEXT);
CREATE TABLE IF NOT EXISTS cluster_nodes (
    addon TEXT NOT NULL, id TEXT NOT NULL, role TEXT NOT NULL, host TEXT NOT NULL, address TEXT NOT NULL,
    port INTEGER NOT NULL, tls_port INTEGER, container TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL,
    reason TEXT, since TEXT NOT NULL, PRIMARY KEY (addon, id));
CREATE TABLE IF NOT EXISTS cluster_primaries (
    addon TEXT NOT NULL, position INTEGER NOT NULL, old TEXT, new TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (addon, position));
"""


def apply(db, event) -> None:
    if not isinstance(event, Cluster.Event):
        return
    at, cluster_id = event.timestamp.isoformat(), str(event.originator_id)
    if isinstance(event, Cluster.Formed):
        db.execute("INSERT INTO clusters (id, addon, app) VALUES (?, ?, ?)", (cluster_id, event.addon, event.app))
        return
    addon = db.execute("SELECT addon FROM clusters WHERE id = ?", (cluster_id,)).fetchone()["addon"]
    if isinstance(event, (Cluster.NodePlaced, Cluster.NodeAdopted)):
        node = event.node
        state = event.state if isinstance(event, Cluster.NodeAdopted) else "placed"
        db.execute("INSERT OR REPLACE INTO cluster_nodes (addon, id, role, host, address, port, tls_port, container, "
                   "version, state, since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (addon, node["id"], node["role"], node["host"], node["address"], node["port"], node.get("tls_port"),
                    node["container"], node["version"], state, at))
        if isinstance(event, Cluster.NodeAdopted) and event.primary:
            db.execute("UPDATE clusters SET primary_node = ? WHERE id = ?", (node["id"], cluster_id))
    elif isinstance(event, Cluster.PrimaryChanged):
        db.execute("UPDATE clusters SET primary_node = ? WHERE id = ?", (event.new, cluster_id))
        position = db.execute("SELECT COUNT(*) FROM cluster_primaries WHERE addon = ?", (addon,)).fetchone()[0]
        db.execute("INSERT INTO cluster_primaries (addon, position, old, new, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
                   (addon, position, _old_primary(db, event, addon), event.new, event.reason, event.observed_at or at))
    elif isinstance(event, Cluster.Degraded):
        db.execute("UPDATE addons SET status = 'degraded', failure = ?, updated_at = ? WHERE name = ? AND status = 'running'",
                   (event.reason, at, addon))
    elif isinstance(event, Cluster.RedundancyRestored):
        db.execute("UPDATE addons SET status = 'running', failure = NULL, updated_at = ? WHERE name = ? "
                   "AND status = 'degraded'", (at, addon))
    elif isinstance(event, Cluster.NodePortsChanged):
        db.execute("UPDATE cluster_nodes SET tls_port = ? WHERE addon = ? AND id = ?", (event.tls_port, addon, event.node_id))
    elif isinstance(event, Cluster.NodeVersionChanged):
        db.execute("UPDATE cluster_nodes SET version = ? WHERE addon = ? AND id = ?", (event.version, addon, event.node_id))
    else:
        _state_changed(db, event, addon, at)


STATES = {"NodeStarted": "running", "NodeDown": "down", "NodeRecovered": "running", "NodeRetired": "retired"}


def _state_changed(db, event, addon: str, at: str) -> None:
    state = STATES.get(type(event).__name__)
    if state is None:
        return
    db.execute("UPDATE cluster_nodes SET state = ?, reason = ?, since = ? WHERE addon = ? AND id = ?",
               (state, getattr(event, "reason", None), at, addon, event.node_id))
    primary = db.execute("SELECT primary_node FROM clusters WHERE addon = ?", (addon,)).fetchone()[0]
    if event.node_id != primary:
        return
    # What the app sees: its database is down while its primary is, and back when it recovers.
    if state == "down":
        db.execute("UPDATE addons SET status = 'down', failure = ?, updated_at = ? WHERE name = ? AND status = 'running'",
                   (event.reason, at, addon))
    elif state == "running":
        db.execute("UPDATE addons SET status = 'running', failure = NULL, updated_at = ? WHERE name = ? AND status = 'down'",
                   (at, addon))


def _old_primary(db, event, addon: str) -> str | None:
    rows = db.execute("SELECT new FROM cluster_primaries WHERE addon = ? ORDER BY position DESC LIMIT 1", (addon,)).fetchone()
    return rows[0] if rows else None

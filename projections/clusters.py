"""Cluster topology: each addon's nodes (role, host, address, ports, state, what the Sentinels say of
them now), its primaries' history and each episode the Sentinels saw a node down (`cluster_sightings`:
sdown or odown, who said it first, since, until); and the addon's health on its row: `down` while its
primary is, `degraded` while another node is down or waits for a replacement, or the primary takes
writes without a replica in sync."""

from __future__ import annotations

from domain.cluster import Cluster, ended_by

SCHEMA = """
CREATE TABLE IF NOT EXISTS clusters (id TEXT PRIMARY KEY, addon TEXT NOT NULL, app TEXT NOT NULL, primary_node TEXT,
    degraded TEXT);
CREATE INDEX IF NOT EXISTS clusters_by_addon ON clusters (addon);
CREATE TABLE IF NOT EXISTS cluster_nodes (
    addon TEXT NOT NULL, id TEXT NOT NULL, role TEXT NOT NULL, host TEXT NOT NULL, address TEXT NOT NULL,
    port INTEGER NOT NULL, tls_port INTEGER, container TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL,
    reason TEXT, waiting TEXT, since TEXT NOT NULL, seen_down TEXT, PRIMARY KEY (addon, id));
CREATE TABLE IF NOT EXISTS cluster_primaries (
    addon TEXT NOT NULL, position INTEGER NOT NULL, old TEXT, new TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (addon, position));
CREATE TABLE IF NOT EXISTS cluster_sightings (
    addon TEXT NOT NULL, node TEXT NOT NULL, kind TEXT NOT NULL, seen_by TEXT NOT NULL, since TEXT NOT NULL, until TEXT,
    ended_by TEXT, PRIMARY KEY (addon, node, kind, since));
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
    elif isinstance(event, (Cluster.Degraded, Cluster.RedundancyRestored)):
        db.execute("UPDATE clusters SET degraded = ? WHERE id = ?", (getattr(event, "reason", None), cluster_id))
    elif isinstance(event, Cluster.ReplacementWaiting):
        db.execute("UPDATE cluster_nodes SET waiting = ? WHERE addon = ? AND id = ?", (event.reason, addon, event.node_id))
    elif isinstance(event, Cluster.NodePortsChanged):
        db.execute("UPDATE cluster_nodes SET tls_port = ? WHERE addon = ? AND id = ?", (event.tls_port, addon, event.node_id))
    elif isinstance(event, (Cluster.SentinelsSawDown, Cluster.SentinelsSawUp)):
        _sighting(db, event, addon)
    elif isinstance(event, Cluster.NodeVersionChanged):
        db.execute("UPDATE cluster_nodes SET version = ? WHERE addon = ? AND id = ?", (event.version, addon, event.node_id))
    else:
        _state_changed(db, event, addon, at)
    if isinstance(event, HEALTH) or type(event).__name__ in STATES:
        health(db, addon, at)


STATES = {"NodeStarted": "running", "NodeDown": "down", "NodeRecovered": "running", "NodeRetired": "retired",
          "NodeLeftBehind": "left"}
HEALTH = (Cluster.PrimaryChanged, Cluster.Degraded, Cluster.RedundancyRestored, Cluster.ReplacementWaiting)


def _state_changed(db, event, addon: str, at: str) -> None:
    state = STATES.get(type(event).__name__)
    if state is None:
        return
    db.execute("UPDATE cluster_nodes SET state = ?, reason = ?, waiting = NULL, since = ? WHERE addon = ? AND id = ?",
               (state, getattr(event, "reason", None), at, addon, event.node_id))


def _sighting(db, event, addon: str) -> None:
    """An episode opened or ended; the node's row says what is open now (odown before sdown)."""
    if isinstance(event, Cluster.SentinelsSawDown):
        db.execute("INSERT OR IGNORE INTO cluster_sightings (addon, node, kind, seen_by, since) VALUES (?, ?, ?, ?, ?)",
                   (addon, event.node_id, event.kind, event.seen_by, event.at))
    else:
        kinds = ended_by(event.kind)
        db.execute(f"UPDATE cluster_sightings SET until = ?, ended_by = ? WHERE addon = ? AND node = ? AND until IS NULL "
                   f"AND kind IN ({', '.join('?' * len(kinds))})", (event.at, event.seen_by, addon, event.node_id, *kinds))
    open_ = db.execute("SELECT kind, seen_by, since FROM cluster_sightings WHERE addon = ? AND node = ? AND until IS NULL "
                       "ORDER BY kind = 'odown' DESC, since LIMIT 1", (addon, event.node_id)).fetchone()
    seen = f"{open_['kind']} since {open_['since']}, seen first by {open_['seen_by']}" if open_ else None
    db.execute("UPDATE cluster_nodes SET seen_down = ? WHERE addon = ? AND id = ?", (seen, addon, event.node_id))


def health(db, addon: str, at: str) -> None:
    """What the app sees of its cluster: its database is down while its primary is; degraded while
    it serves with less than full redundancy (each reason said); running once all is back."""
    row = db.execute("SELECT status, failure FROM addons WHERE name = ?", (addon,)).fetchone()
    if row is None or row["status"] not in ("running", "down", "degraded"):
        return  # an operation holds it, or it is gone: its own events say what it is
    cluster = db.execute("SELECT primary_node, degraded FROM clusters WHERE addon = ?", (addon,)).fetchone()
    nodes = db.execute("SELECT * FROM cluster_nodes WHERE addon = ? AND state IN ('running', 'down', 'placed')",
                       (addon,)).fetchall()
    primary = next((n for n in nodes if n["id"] == cluster["primary_node"]), None)
    if primary is not None and primary["state"] == "down":
        status, failure = "down", primary["reason"]
    else:
        problems = [f"{n['role']} node {n['id']} is down ({n['reason']})"
                    + (f"; not replaced yet: {n['waiting']}" if n["waiting"] else "") for n in nodes if n["state"] == "down"]
        problems += [cluster["degraded"]] if cluster["degraded"] else []
        status, failure = ("degraded", "; ".join(problems)) if problems else ("running", None)
    if status == "running" and row["status"] == "running":
        return  # a running addon keeps what it says of its last operation
    if (status, failure) != (row["status"], row["failure"]):
        db.execute("UPDATE addons SET status = ?, failure = ?, updated_at = ? WHERE name = ?", (status, failure, at, addon))


def _old_primary(db, event, addon: str) -> str | None:
    rows = db.execute("SELECT new FROM cluster_primaries WHERE addon = ? ORDER BY position DESC LIMIT 1", (addon,)).fetchone()
    return rows[0] if rows else None

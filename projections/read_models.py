"""The read models the CLI, API and dashboard show, in one SQLite file.

Each event is applied in the same transaction that moves the tracking position, so an
event is applied exactly once, and a restarted process resumes where it stopped.
Only event data is used (never the clock), so a replay rebuilds the same rows.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from projections import addons, backups, clusters, operations

SCHEMA = addons.SCHEMA + operations.SCHEMA + backups.SCHEMA + clusters.SCHEMA + """
CREATE TABLE IF NOT EXISTS tracking (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
"""

TRACKER = "redis-addons-read-models"
HANDLERS = (addons.apply, operations.apply, backups.apply, clusters.apply)
# SQLite's words for a store that refuses a write for now: "database or disk is full", "attempt to write a
# readonly database", "disk I/O error", "database is locked", "unable to open database file".
STORE_FAULTS = ("full", "readonly", "i/o error", "locked", "unable to open")


class ReadModels:
    def __init__(self, path: Path | str = ":memory:"):
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()  # re-entered by process() inside a transaction()
        self._in_transaction = False
        self._at = 0  # inside a transaction: the position of the last event applied, written at its end
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._rebuild_if_schema_changed()
            self._db.executescript(SCHEMA)

    def _rebuild_if_schema_changed(self) -> None:
        """Read models are derived data: when their shape changes, drop them and replay the log."""
        version = int(hashlib.sha256(SCHEMA.encode()).hexdigest()[:7], 16)
        if self._db.execute("PRAGMA user_version").fetchone()[0] != version:
            tables = [r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                self._db.execute(f"DROP TABLE {table}")
            self._db.execute(f"PRAGMA user_version = {version}")

    def position(self) -> int:
        with self._lock:
            return self._tracked()

    def process(self, notification_id: int, event) -> None:
        with self._lock:
            if self._in_transaction:
                self._apply(notification_id, event)
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._apply(notification_id, event)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def transaction(self):
        """Every event process()ed inside is applied in one transaction, with the position of the last: a
        follower's batch costs one commit (a commit each made a catch-up of 10,000 addons' history ten times
        slower), and one write of the position. An error rolls the whole batch back."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
            try:
                self._at = started_at = self._tracked()
                yield
                if self._at != started_at:
                    self._track(self._at)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._in_transaction = False

    def _apply(self, notification_id: int, event) -> None:
        at = self._at if self._in_transaction else self._tracked()
        if at >= notification_id:
            return
        for handler in HANDLERS:
            handler(self._db, event)
        if self._in_transaction:
            self._at = notification_id  # written once, at the transaction's end
        else:
            self._track(notification_id)

    def _tracked(self) -> int:
        row = self._db.execute("SELECT position FROM tracking WHERE name = ?", (TRACKER,)).fetchone()
        return row[0] if row else 0

    def _track(self, notification_id: int) -> None:
        self._db.execute("INSERT INTO tracking (name, position) VALUES (?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET position = excluded.position", (TRACKER, notification_id))

    @staticmethod
    def cannot_write(error: BaseException) -> str | None:
        """Why these read models cannot write, when `error` is their store refusing (its disk full or
        read-only, an I/O error, busy): they catch up once it writes again. None for any other error."""
        if isinstance(error, sqlite3.OperationalError) and any(w in str(error).lower() for w in STORE_FAULTS):
            return str(error)
        return None

    def _rows(self, sql: str, *args) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, args).fetchall()]

    def addons(self, app: str | None = None) -> list[dict]:
        if app is None:
            return self._rows("SELECT * FROM addons ORDER BY created_at, name")
        return self._rows("SELECT * FROM addons WHERE app = ? ORDER BY created_at, name", app)

    def addon(self, name: str) -> dict | None:
        rows = self._rows("SELECT * FROM addons WHERE name = ?", name)
        return rows[0] if rows else None

    def nodes(self, addon: str) -> list[dict]:
        """The addon's cluster: each node with its role, place, state, and whether it is the primary."""
        return self._rows(
            "SELECT n.*, (n.id = c.primary_node) AS is_primary FROM cluster_nodes n JOIN clusters c ON c.addon = n.addon "
            "WHERE n.addon = ? ORDER BY n.since, n.id", addon)

    def apps(self) -> list[str]:
        return [r["app"] for r in self._rows("SELECT DISTINCT app FROM addons ORDER BY app")]

    def environment(self, app: str) -> list[dict]:
        rows = self._rows("SELECT * FROM environment WHERE app = ? ORDER BY published_at", app)
        for row in rows:
            row["tls"] = bool(row["tls"])
        return rows

    def operations(self, addon: str | None = None) -> list[dict]:
        where, args = ("WHERE addon = ?", (addon,)) if addon else ("", ())
        result = self._rows(f"SELECT * FROM operations {where} ORDER BY started_at, id", *args)
        for op in result:
            op["requested_by"] = json.loads(op["requested_by"]) if op["requested_by"] else None
            op["steps"] = self._rows(
                "SELECT name, status, attempts, detail, started_at, ended_at FROM operation_steps "
                "WHERE operation_id = ? ORDER BY position", op["id"]
            )
        return result

    def operation_counts(self) -> list[dict]:
        return self._rows("SELECT kind, status, COUNT(*) AS n FROM operations GROUP BY kind, status ORDER BY kind, status")

    def backups(self, addon: str | None = None, include_deleted: bool = False) -> list[dict]:
        """Newest first."""
        where = ["1 = 1"] + (["addon = ?"] if addon else []) + ([] if include_deleted else ["deleted = 0"])
        args = (addon,) if addon else ()
        sql = f"SELECT * FROM backups WHERE {' AND '.join(where)} ORDER BY created_at DESC, id"
        return [backups.row(r) for r in self._rows(sql, *args)]

    def backup(self, backup_id: str) -> dict | None:
        rows = self._rows("SELECT * FROM backups WHERE id = ?", backup_id)
        return backups.row(rows[0]) if rows else None

    def addons_with_backups(self) -> list[str]:
        return [r["addon"] for r in self._rows("SELECT DISTINCT addon FROM backups WHERE deleted = 0 ORDER BY addon")]

    def last_scheduled_day(self, addon: str) -> str | None:
        rows = self._rows("SELECT MAX(day) AS day FROM backups WHERE addon = ? AND kind = 'scheduled'", addon)
        return rows[0]["day"] if rows else None

    def snapshot(self) -> dict:
        """Every table's rows and the position they reflect, read in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                tables = [r[0] for r in self._db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'tracking' ORDER BY name")]
                result = {t: sorted(tuple(r) for r in self._db.execute(f"SELECT * FROM {t}")) for t in tables}
                row = self._db.execute("SELECT position FROM tracking WHERE name = ?", (TRACKER,)).fetchone()
            finally:
                self._db.execute("COMMIT")
        return {"position": row[0] if row else 0, "tables": result}

    def close(self) -> None:
        with self._lock:
            self._db.close()

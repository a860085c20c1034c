"""The Checkpoints port on PostgreSQL (`redis_addons_checkpoints`, JSON by name): a read model kept in memory,
or the webhooks' delivery position, saved by one process is where another resumes (after a takeover)."""

from __future__ import annotations

import json

from psycopg.types.json import Jsonb

from adapters.postgres.connection import Database


class PostgresCheckpoints:
    def __init__(self, database: Database):
        self.database = database

    def load(self, name: str) -> dict | None:
        rows = self.database.run("SELECT state FROM redis_addons_checkpoints WHERE name = %s", (name,))
        return rows[0][0] if rows else None

    def save(self, name: str, state: dict) -> None:
        self.database.run("INSERT INTO redis_addons_checkpoints (name, state) VALUES (%s, %s) ON CONFLICT (name) "
                          "DO UPDATE SET state = EXCLUDED.state, updated_at = now()", (name, Jsonb(state)))

    # -- every checkpoint, for the control plane's export and restore (engine/recovery_ports.ItemStore) ----

    def list_items(self) -> list[tuple[str, bytes]]:
        rows = self.database.run("SELECT name, state FROM redis_addons_checkpoints ORDER BY name")
        return [(name, json.dumps(state).encode()) for name, state in rows]

    def put_item(self, name: str, value: bytes) -> None:
        self.save(name, json.loads(value))

    def remove_item(self, name: str) -> None:
        self.database.run("DELETE FROM redis_addons_checkpoints WHERE name = %s", (name,))

"""Scenarios: recorded events replayed through the domain and the projections, then the read
models compared with what the scenario expects (DESIGN §8). Used by the tests and by
`redis-addons scenario run FILE`.

A scenario file is JSON: {"title", "events": [as served by GET /v1/events], "expect": {table: [rows]}}.
Each expected row lists only the fields that matter; the table must hold exactly that many rows.
A file with `"simulate": "retention"` is a simulated year of backups instead (adapters.retention_scenario).
"""

from __future__ import annotations

import json
import typing
from datetime import datetime
from pathlib import Path
from uuid import UUID

from domain.addon import Addon
from domain.app import App
from domain.backup import Backup
from domain.operation import Operation
from projections import ReadModels

AGGREGATES = {"Addon": Addon, "App": App, "Operation": Operation, "Backup": Backup}
PARSE = {UUID: UUID, datetime: datetime.fromisoformat}


class ScenarioError(Exception):
    """The scenario's events are not a valid history, or the read models are not as expected."""


def domain_event(record: dict):
    owner, _, name = record["type"].partition(".")
    try:
        cls = getattr(AGGREGATES[owner], name)
    except (KeyError, AttributeError):
        raise ScenarioError(f"event {record.get('id')}: unknown event type {record['type']!r}") from None
    hints = typing.get_type_hints(cls)
    data = dict(record["data"])
    # As the event store's mapper does: an event recorded in an older shape is upcast to the current one.
    for version in range(record.get("class_version", 1), getattr(cls, "class_version", 1)):
        getattr(cls, f"upcast_v{version}_v{version + 1}")(data)
    fields = {k: PARSE[hints[k]](v) if hints.get(k) in PARSE and v is not None else v for k, v in data.items()}
    # As the event store's mapper does: no constructor call, so an event recorded before a field with
    # a default was added replays with that default.
    event = object.__new__(cls)
    event.__dict__.update(originator_id=UUID(record["aggregate_id"]), originator_version=record["version"],
                          timestamp=datetime.fromisoformat(record["timestamp"]), **fields)
    return event


def replay(records: list[dict]) -> ReadModels:
    """Rebuild each aggregate from its events (a broken history fails here) and the read models."""
    aggregates, views = {}, ReadModels(":memory:")
    for record in records:
        event = domain_event(record)
        try:
            aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
        except Exception as e:
            raise ScenarioError(f"event {record['id']} ({record['type']}) does not follow its aggregate's history: {e}") from None
        views.process(record["id"], event)
    return views


def differences(views: ReadModels, expect: dict[str, list[dict]]) -> list[str]:
    tables = {"addons": views.addons(), "environment": [r for app in views.apps() for r in views.environment(app)],
              "operations": views.operations()}
    problems = []
    for table, rows in expect.items():
        actual = tables[table]
        if len(actual) != len(rows):
            problems.append(f"{table}: {len(actual)} rows, expected {len(rows)}")
        for wanted in rows:
            if not any(all(row.get(k) == v for k, v in wanted.items()) for row in actual):
                problems.append(f"{table}: no row matches {wanted}")
    return problems


def run(path: Path) -> tuple[str, list[str]]:
    scenario = json.loads(Path(path).read_text())
    if "simulate" in scenario:
        if scenario["simulate"] != "retention":
            raise ScenarioError(f"unknown simulation {scenario['simulate']!r}: the runner knows \"retention\"")
        from adapters import retention_scenario  # here: it imports ScenarioError from this module

        return retention_scenario.run(scenario)
    views = replay(scenario["events"])
    return scenario["title"], differences(views, scenario["expect"])

"""The event store the release a79d645 left (tests/fixtures/release-a79d645, see its README) read
with the current code's event classes: every event decodes, every aggregate loads with the state
the release itself read from it (expected.json, dumped by the release's own code), the engine's
start-up finds the unfinished operation, and the read models rebuild from it. When events change
shape, upcasting must keep these passing: old installations hold exactly these events."""

from __future__ import annotations

import json
import shutil
import sqlite3
from uuid import UUID

import pytest

from domain.addon import Addon
from domain.app import App
from domain.backup import Backup
from domain.operation import Operation
from engine.inventory import Inventory
from engine.settings import store_env
from engine.store import EventLog
from projections import ReadModels
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "release-a79d645"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
TYPES = {"Addon": Addon, "Operation": Operation, "Backup": Backup, "App": App}


def state_now(aggregate) -> dict:
    """The same facts as the release's dump (tests/integration/old_release_driver.py `describe`),
    read from the current classes."""
    kind = type(aggregate).__name__
    state = {"type": kind, "id": str(aggregate.id), "version": aggregate.version}
    if isinstance(aggregate, Addon):
        state.update({k: getattr(aggregate, k) for k in (
            "name", "app", "plan", "memory_mib", "redis_version", "status", "host", "address", "port", "tls_port",
            "container", "volume", "settings", "schedule", "target", "operation_id")})
    elif isinstance(aggregate, Operation):
        state.update(kind=aggregate.kind, addon=aggregate.addon, app=aggregate.app, subject=aggregate.subject,
                     status=aggregate.status, steps=[[s["name"], s["status"]] for s in aggregate.steps])
    elif isinstance(aggregate, Backup):
        state.update({k: getattr(aggregate, k) for k in (
            "addon", "app", "tier", "kind", "status", "name", "size", "sha256", "redis_version")})
    elif isinstance(aggregate, App):
        state.update(name=aggregate.name, restart=aggregate.restart)
    return json.loads(json.dumps(state, default=str))  # UUIDs and tuples as the dump wrote them


def expected(aggregate_type: str, **facts) -> list[dict]:
    return [s for s in EXPECTED if s["type"] == aggregate_type and all(s.get(k) == v for k, v in facts.items())]


@pytest.fixture
async def release_store(tmp_path):
    """A copy: opening a store may write to it (WAL, tables), and the fixture stays as the release left it."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(FIXTURE / "events.sqlite", home / "events.sqlite")
    events = EventLog(store_env({}, home))
    await events.open()
    yield events
    await events.close()


async def all_events(events: EventLog) -> list[tuple[int, object]]:
    found, position = [], 0
    while batch := await events.select(position, 500):
        found += batch
        position = batch[-1][0]
    return found


def test_the_fixture_holds_what_its_readme_says():
    """Guards a regeneration that lost a case: each is what upcasting must handle."""
    kinds = {(s["kind"], s["status"]) for s in expected("Operation")}
    assert kinds >= {("provision", "succeeded"), ("change_plan", "succeeded"), ("backup", "succeeded"),
                     ("change_settings", "succeeded"), ("enable_force_tls", "succeeded"), ("serve_tls", "succeeded"),
                     ("remove", "succeeded"), ("change_plan", "running")}
    assert [b["status"] for b in expected("Backup")] == ["done"]
    assert len(expected("App")) == 1
    with sqlite3.connect(FIXTURE / "events.sqlite") as db:
        stored = db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    assert stored > len(EXPECTED) and (FIXTURE / "events.sqlite").stat().st_size < 500_000


async def test_every_event_of_the_release_decodes_into_a_current_event_class(release_store):
    events = await all_events(release_store)
    with sqlite3.connect(FIXTURE / "events.sqlite") as db:
        assert len(events) == db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
    assert [n for n, _ in events] == list(range(1, len(events) + 1))
    owners = tuple(TYPES.values())
    assert all(isinstance(e, tuple(t.Event for t in owners)) for _, e in events), \
        {type(e).__qualname__ for _, e in events}
    assert {str(e.originator_id) for _, e in events} == {s["id"] for s in EXPECTED}


@pytest.mark.parametrize("was", EXPECTED, ids=lambda s: f"{s['type']}-{s.get('name') or s.get('kind')}-{s['id'][:8]}")
async def test_each_aggregate_loads_as_the_release_read_it(release_store, was):
    aggregate = await release_store.get(UUID(was["id"]))
    assert isinstance(aggregate, TYPES[was["type"]])
    assert state_now(aggregate) == was


async def test_the_operation_the_release_left_unfinished_resumes_where_it_stopped(release_store):
    [was] = expected("Operation", kind="change_plan", status="running")
    operation: Operation = await release_store.get(UUID(was["id"]))
    assert [s["status"] for s in operation.steps] == ["succeeded", "succeeded"] + ["pending"] * 5
    assert operation.next_step == "wait_ready" and not operation.is_finished
    addon: Addon = await release_store.get(Addon.id_for(operation.addon))
    assert addon.status == "changing-plan" and addon.operation_id == operation.id
    assert addon.target["plan"] == "redis-starter-256" and addon.target["host"] != addon.host

    inventory = Inventory()  # what the engine rebuilds at start, and resumes from
    for _, event in await all_events(release_store):
        inventory.apply(event)
    assert inventory.unfinished == {operation.id: addon.name}
    live = [s for s in expected("Addon") if s["status"] != "removed"]
    # Each live addon holds its node; the crashed one also the node it was moving to.
    assert len(inventory.tenants()) == len(live) + 1


async def test_each_addon_reads_as_the_release_left_it(release_store):
    by_role = {s["app"].removeprefix("fixture-"): s for s in expected("Addon")}
    assert set(by_role) == {"running", "moved", "backed", "forced", "pretls", "removed", "crash"}

    moved: Addon = await release_store.get(UUID(by_role["moved"]["id"]))
    assert moved.plan == "redis-starter-256" and moved.status == "running" and moved.target is None
    backed: Addon = await release_store.get(UUID(by_role["backed"]["id"]))
    assert backed.settings["aof"] and backed.backup_schedule.hour == 4 and backed.backup_schedule.zone == "UTC"
    forced: Addon = await release_store.get(UUID(by_role["forced"]["id"]))
    assert forced.settings["force_tls"] and forced.tls_port
    pretls: Addon = await release_store.get(UUID(by_role["pretls"]["id"]))
    assert pretls.tls_port and pretls.tls_port != pretls.port
    removed: Addon = await release_store.get(UUID(by_role["removed"]["id"]))
    assert removed.status == "removed" and not removed.holds_resources

    [was] = expected("Backup")
    backup: Backup = await release_store.get(UUID(was["id"]))
    backup.check_downloadable()
    assert backup.addon == backed.name and backup.size > 0 and len(backup.sha256) == 64


async def test_the_read_models_rebuild_from_the_release_log(release_store):
    views = ReadModels(":memory:")
    for position, event in await all_events(release_store):
        views.process(position, event)
    rows = {r["name"]: r for r in views.addons()}
    for was in expected("Addon"):
        row = rows[was["name"]]
        assert (row["plan"], row["status"], row["host"], row["port"], row["tls_port"]) == \
               (was["plan"], was["status"], was["host"], was["port"], was["tls_port"]), was["name"]
    assert {(o["kind"], o["status"]) for o in views.operations()} == {(s["kind"], s["status"]) for s in expected("Operation")}
    [backup] = views.backups()
    assert backup["status"] == "done"

"""Runs inside an old release's work tree (see tests/integration/old_release.py), with that release's
code first on sys.path, to leave a data directory as the release leaves one.

    python old_release_driver.py scenario PREFIX OUT.json   addons in every state a user can leave them
    python old_release_driver.py crash APP ADDON PLAN OUT.json   a plan change, killed by REDIS_ADDONS_CRASH_AT
    python old_release_driver.py dump STORE.sqlite OUT.json   every aggregate's state, as the release reads it

Only the release's public API of commit a79d645 is used here (and, for the addon made without a TLS
port, its Addon constructor as that release's own tests call it): this file must keep working
against that release whatever the current code becomes. Importing it from the current code only
gives the data helpers (`known_data`, `write_data`, `read_data`); the engine is imported in the
commands, so it is the release's engine there.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

# Per addon: a string and a hash in each of the 5 databases, named after the addon so that
# data found on the wrong node shows as a difference.
KEYS_PER_DATABASE = 20


def known_data(addon: str) -> dict[int, dict[str, object]]:
    data = {}
    for db in range(5):
        data[db] = {f"{addon}:s:{i}": f"{addon}-{db}-{i}" for i in range(KEYS_PER_DATABASE)}
        data[db][f"{addon}:h"] = {"db": str(db), "addon": addon}
    return data


def write_data(url: str, addon: str, ca_file: str | None = None) -> None:
    import redis

    for db, values in known_data(addon).items():
        client = redis.Redis.from_url(url, db=db, **tls_options(url, ca_file))
        pipe = client.pipeline(transaction=False)
        for name, value in values.items():
            pipe.hset(name, mapping=value) if isinstance(value, dict) else pipe.set(name, value)
        pipe.execute()
        client.close()


def read_data(url: str, addon: str, ca_file: str | None = None) -> dict[int, dict[str, object]]:
    """Every key of every database, read back in the shapes `known_data` has (extra keys show too)."""
    import redis

    found = {}
    for db in range(5):
        client = redis.Redis.from_url(url, db=db, decode_responses=True, **tls_options(url, ca_file))
        found[db] = {}
        for name in client.scan_iter(count=1000):
            found[db][name] = client.hgetall(name) if client.type(name) == "hash" else client.get(name)
        client.close()
    return found


def tls_options(url: str, ca_file: str | None) -> dict:
    return {"ssl_ca_certs": ca_file} if url.startswith("rediss://") else {}


# -- commands, run with the old release's code -------------------------------------------------

async def scenario(prefix: str, out: str) -> None:
    """One app per addon: an app's variables are one addon's (two addons would share REDIS_URL).
    Roles: running, moved (plan changed; its app registered), backed (a manual backup, AOF on, a
    schedule), forced (force TLS on), pretls (made without a TLS port, then served TLS), removed,
    and crash (its plan change is left to the `crash` command)."""
    import engine as engine_package
    from engine import Settings, build

    settings = Settings.from_env()
    ca_file = str(settings.tls_dir / "ca.pem")
    made: dict = {"engine_file": engine_package.__file__, "ca_file": ca_file, "addons": {}}

    async with build(settings) as engine:
        async def provision(role: str, plan: str) -> tuple[str, str]:
            app = f"{prefix}-{role}"
            requested = await engine.add_addon(app, plan)
            await succeeded(engine, requested["operation_id"])
            await write(app, requested["addon"])
            return app, requested["addon"]

        async def write(app: str, addon: str) -> None:
            await asyncio.to_thread(write_data, (await engine.environment(app))["REDIS_URL"], addon, ca_file)

        async def record(role: str, app: str, addon: str, **more) -> None:
            made["addons"][role] = {
                "app": app, "addon": addon,
                "rows": await engine.addons(app),
                "environment": await engine.environment(app),
                "settings": None if role == "removed" else await engine.database.show(app, addon),
                "operations": [(o["kind"], o["status"]) for o in await engine.operations(addon)],
                **more,
            }

        app, addon = await provision("running", "redis-sandbox")
        await record("running", app, addon)

        app, addon = await provision("moved", "redis-sandbox")
        await engine.register_app(app, "none")
        await succeeded(engine, (await engine.change_plan(app, addon, "redis-starter-256"))["operation_id"])
        await record("moved", app, addon)

        app, addon = await provision("backed", "redis-starter-256")
        requested = await engine.backups.create(app, addon)
        await succeeded(engine, requested["operation_id"])
        backup = await engine.backups.get(app, addon, requested["backup_id"])
        await succeeded(engine, (await engine.database.change(app, addon, "aof", True))["operation_id"])
        schedule = await engine.backups.set_schedule(app, addon, "4:00", "UTC")
        await record("backed", app, addon, backup=backup, schedule=schedule)

        app, addon = await provision("forced", "redis-sandbox")
        plaintext_url = (await engine.environment(app))["REDIS_URL"]
        await succeeded(engine, (await engine.database.change(app, addon, "force-tls", True))["operation_id"])
        await record("forced", app, addon, plaintext_url=plaintext_url)

        app, addon = await addon_made_before_tls(engine, f"{prefix}-pretls")
        await write(app, addon)
        assert await engine.missing_tls.serve_where_missing() == [addon]
        [serve] = [o for o in await engine.operations(addon) if o["kind"] == "serve_tls"]
        await succeeded(engine, serve["id"])
        await record("pretls", app, addon)

        app, addon = await provision("removed", "redis-sandbox")
        await succeeded(engine, (await engine.remove_addon(app, addon))["operation_id"])
        await record("removed", app, addon)

        # Its plan change is the `crash` command's, in a process of its own: the crash point
        # would also kill the "moved" addon's plan change.
        app, addon = await provision("crash", "redis-sandbox")
        await record("crash", app, addon)

    Path(out).write_text(json.dumps(made, indent=1, default=str))


async def addon_made_before_tls(engine, app: str) -> tuple[str, str]:
    """Recorded as the engine recorded addons before nodes served TLS: no TLS port (as the release's
    tests/integration/test_tls_serving.py makes one)."""
    from domain.addon import Addon
    from domain.settings import DEFAULT_SETTINGS
    from domain.operation import Operation
    from domain.placement import place

    plan = engine.plans.provisionable("redis-sandbox")
    where = place(plan.memory_mib, [h.as_domain() for h in engine.settings.hosts], engine.inventory.tenants(),
                  await engine.runtime.ports_in_use())
    name = f"{app}-0001"
    operation = Operation(kind="provision", addon=name, app=app)
    node = f"redis-addons-{name}-{operation.id.hex[:8]}"
    addon = Addon(name=name, app=app, plan=plan.id, memory_mib=plan.memory_mib,
                  redis_version=engine.versions.default.version, host=where.host, address=where.address,
                  port=where.port, container=node, volume=f"{node}-data", operation_id=operation.id,
                  settings=DEFAULT_SETTINGS)
    await engine.events.save(addon, operation)
    engine.coordinator.submit(operation.id)
    await succeeded(engine, str(operation.id))
    return app, name


async def succeeded(engine, operation_id: str) -> None:
    operation = await engine.wait_for_operation(operation_id, timeout=90)
    if operation["status"] != "succeeded":
        raise SystemExit(f"the release's operation did not succeed: {json.dumps(operation, indent=1)}")


async def crash(app: str, addon: str, plan: str, out: str) -> None:
    from engine import Settings, build

    async with build(Settings.from_env()) as engine:
        change = await engine.change_plan(app, addon, plan)
        # Written before anything awaits: the saga cannot reach its crash point first.
        Path(out).write_text(json.dumps(change))
        await engine.wait_for_operation(change["operation_id"], timeout=90)
    print("finished without crashing", flush=True)


async def dump(store: str, out: str) -> None:
    """The state of every aggregate in the store, read with the release's classes (no engine started)."""
    from engine.store import EventLog

    events = EventLog({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": store})
    await events.open()
    try:
        ids, position = [], 0
        while batch := await events.select(position, 500):
            for position, event in batch:
                if event.originator_id not in ids:
                    ids.append(event.originator_id)
        states = [describe(await events.get(i)) for i in ids]
    finally:
        await events.close()
    Path(out).write_text(json.dumps(states, indent=1, default=str) + "\n")


def describe(aggregate) -> dict:
    kind = type(aggregate).__name__
    state = {"type": kind, "id": str(aggregate.id), "version": aggregate.version}
    if kind == "Addon":
        state.update({k: getattr(aggregate, k) for k in (
            "name", "app", "plan", "memory_mib", "redis_version", "status", "host", "address", "port", "tls_port",
            "container", "volume", "settings", "schedule", "target", "operation_id")})
    elif kind == "Operation":
        state.update(kind=aggregate.kind, addon=aggregate.addon, app=aggregate.app, subject=aggregate.subject,
                     status=aggregate.status, steps=[[s["name"], s["status"]] for s in aggregate.steps])
    elif kind == "Backup":
        state.update({k: getattr(aggregate, k) for k in (
            "addon", "app", "tier", "kind", "status", "name", "size", "sha256", "redis_version")})
    elif kind == "App":
        state.update(name=aggregate.name, restart=aggregate.restart)
    else:
        raise SystemExit(f"the release wrote an aggregate this dump does not know: {kind}")
    return state


if __name__ == "__main__":
    import engine

    # Proof of which code runs: the caller checks it is the release's work tree.
    print("ENGINE", engine.__file__, flush=True)
    command, *args = sys.argv[1:]
    asyncio.run({"scenario": scenario, "crash": crash, "dump": dump}[command](*args))

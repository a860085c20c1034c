"""Two engine processes on one PostgreSQL event store (issue 16, part 2): two real `redis-addons serve`
processes, each with its own identity (REDIS_ADDONS_PROCESS_ID), data directory and HTTP port, on one
database and one shared backup directory, with 3-second leases. The one driving an operation is killed with
SIGKILL at a step boundary (REDIS_ADDONS_CRASH_AT makes it kill itself there: a real kill -9 at an exact
point); the other takes the operation over once its lease has expired and finishes it, once; and only one of
them runs the scheduler, whose duties the other takes over when it dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import HOSTS_FILE, REPO
from tests.integration import data
from tests.integration.conftest import containers_of, remove_everything_of
from tests.postgres_server import free_port

CLI = str(REPO / ".venv" / "bin" / "redis-addons")
LEASE_S = 3.0
ENDS = ("Operation.Succeeded", "Operation.Compensated", "Operation.Abandoned")


class EngineProcess:
    """`redis-addons serve` in a process of its own, stopped by its PID only."""

    def __init__(self, name: str, home: Path, env: dict):
        self.name, self.home, self.port = name, home, free_port()
        self.log = open(home.parent / f"{name}.log", "wb")
        self.process = subprocess.Popen([CLI, "serve", "--port", str(self.port)], cwd=REPO, stdout=self.log,
                                        stderr=subprocess.STDOUT,
                                        env={**env, "REDIS_ADDONS_HOME": str(home), "REDIS_ADDONS_PROCESS_ID": name})
        self.api = f"http://127.0.0.1:{self.port}"

    async def ready(self, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout), aiohttp.ClientSession() as http:
            while True:
                assert self.process.poll() is None, self.output()[-3000:]
                try:
                    async with http.get(f"{self.api}/health") as answer:
                        if answer.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)

    def client(self) -> aiohttp.ClientSession:
        token = (self.home / "api-token").read_text().strip()
        return aiohttp.ClientSession(self.api, headers={"Authorization": f"Bearer {token}"})

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    async def died(self, timeout: float = 120) -> int:
        return await asyncio.to_thread(self.process.wait, timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # one frozen by a test is killed as well
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture
async def engines(tmp_path, postgres, app_name):
    """start(name, **env): an engine process on the test's database; all killed and cleaned up at the end."""
    shared = tmp_path / "shared"
    env = {**os.environ, **postgres.new_database(), "REDIS_ADDONS_HOSTS": str(HOSTS_FILE),
           "REDIS_ADDONS_SECRETS_KEY_FILE": str(shared / "secrets.key"), "REDIS_ADDONS_BACKUPS_DIR": str(shared / "backups"),
           "REDIS_ADDONS_LEASE_SECONDS": str(LEASE_S), "REDIS_ADDONS_SCHEDULER_TICK": "0",
           "REDIS_ADDONS_WATCH_INTERVAL": "0", "REDIS_ADDONS_STATS_INTERVAL": "0"}
    started: list[EngineProcess] = []

    async def start(name: str, **more: str) -> EngineProcess:
        home = tmp_path / name
        home.mkdir()
        process = EngineProcess(name, home, {**env, **more})
        started.append(process)
        await process.ready()
        return process

    start.backups = shared / "backups"
    try:
        yield start
    finally:
        for process in started:
            process.stop()
            print(f"--- {process.name}'s log, its end (shown when the test fails) ---\n{process.output()[-4000:]}")
            process.log.close()
        await remove_everything_of(app_name)


async def call(engine: EngineProcess, method: str, path: str, expect: int, **body) -> dict:
    async with engine.client() as http, http.request(method, path, json=body or None) as answer:
        assert answer.status == expect, await answer.text()
        return await answer.json()


async def finished(engine: EngineProcess, operation_id: str, timeout: float = 120) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            operation = (await call(engine, "GET", f"/v1/operations/{operation_id}", 200))["operation"]
            if operation["status"] not in ("running", "needs-attention"):
                return operation
            await asyncio.sleep(0.3)


async def events_of(engine: EngineProcess, aggregate_id: str) -> list[dict]:
    found, after = [], 0
    while page := (await call(engine, "GET", f"/v1/events?after={after}&limit=500", 200))["events"]:
        found += [e for e in page if e["aggregate_id"] == aggregate_id]
        after = page[-1]["id"]
    return found


async def lease_of(engine: EngineProcess, operation_id: str) -> list[dict]:
    """The operation's lease, event by event: who took it, renewed it, until when."""
    from domain.lease import Lease, operation_lease

    return await events_of(engine, str(Lease.id_for(operation_lease(operation_id))))


async def assert_taken_over_once(a: EngineProcess, b: EngineProcess, operation_id: str) -> dict:
    """`a` died driving the operation; `b` took its lease once it expired, finished it, and it ended once."""
    assert await a.died() == -signal.SIGKILL, a.output()[-3000:]
    operation = await finished(b, operation_id)
    ends = [e["type"] for e in await events_of(b, operation_id) if e["type"] in ENDS]
    assert ends == ["Operation.Succeeded"], (ends, operation)
    lease = await lease_of(b, operation_id)
    holders = [e["data"].get("holder") for e in lease if e["type"] in ("Lease.Taken", "Lease.TakenOver")]
    assert holders == ["engine-a", "engine-b"], lease
    taken_over = next(e for e in lease if e["type"] == "Lease.TakenOver")
    a_until = max(e["data"]["until"] for e in lease[: lease.index(taken_over)])
    taken_at = datetime.fromisoformat(taken_over["timestamp"]).timestamp()
    # Taken no sooner than a's lease allowed, and within a lease of it (b's sweep runs every third of one).
    assert a_until <= taken_at < a_until + LEASE_S, (a_until, taken_at)
    return operation


async def redis_url(engine: EngineProcess, app: str) -> str:
    variables = (await call(engine, "GET", f"/v1/apps/{app}/variables", 200))["variables"]
    return next(v["value"] for v in variables if v["name"] == "REDIS_URL")


async def an_addon(engine: EngineProcess, app: str, plan: str = "redis-starter-256") -> tuple[str, str]:
    requested = await call(engine, "POST", f"/v1/apps/{app}/addons?wait=true", 201, plan=plan)
    return requested["operation"]["addon"], await redis_url(engine, app)


async def asked_of_the_one_to_die(a: EngineProcess, b: EngineProcess, kind: str, app: str, method: str, path: str,
                                  **body) -> str:
    """Ask `a` for an operation; `a` may die at its crash point before it answers (a backup's first step
    takes a tenth of a second): the operation's ID is then read from `b`, which follows the log."""
    try:
        return (await call(a, method, path, 202, **body))["operation"]["id"]
    except aiohttp.ClientConnectionError:
        async with asyncio.timeout(30):
            while True:
                mine = [o for o in (await call(b, "GET", "/v1/operations", 200))["operations"]
                        if o["kind"] == kind and o["addon"].startswith(f"{app}-")]
                if mine:
                    return mine[0]["id"]
                await asyncio.sleep(0.2)


async def test_a_provisioning_whose_driver_is_killed_is_finished_by_the_other_process(engines, app_name):
    a = await engines("engine-a", REDIS_ADDONS_CRASH_AT="provision.start:after")
    b = await engines("engine-b")
    operation_id = await asked_of_the_one_to_die(a, b, "provision", app_name, "POST", f"/v1/apps/{app_name}/addons",
                                                 plan="redis-starter-256")
    operation = await assert_taken_over_once(a, b, operation_id)
    addon = operation["addon"]
    [node] = await containers_of(addon)
    assert node["State"]["Running"]
    url = await redis_url(b, app_name)
    known = data.expected(100)
    await data.write(url, known)
    assert await data.read(url, known) == known


async def an_app_with_data(engines, app: str, restart_hook, crash_at: str):
    """engine-a (to die or freeze at `crash_at`) and engine-b; an app restarted by a hook, with a Starter addon
    holding data: (a, b, addon, the data, the restarts the hook received)."""
    a = await engines("engine-a", REDIS_ADDONS_CRASH_AT=crash_at)
    b = await engines("engine-b")
    hook, restarts = await restart_hook()
    await call(a, "POST", "/v1/apps", 201, name=app, restart={"kind": "hook", "url": hook})
    addon, url = await an_addon(a, app)
    known = data.expected(1000)
    await data.write(url, known)
    return a, b, addon, known, restarts


async def test_a_plan_change_whose_driver_is_killed_keeps_the_data_and_restarts_the_app_once(engines, app_name,
                                                                                             restart_hook):
    a, b, addon, known, restarts = await an_app_with_data(engines, app_name, restart_hook, "change_plan.wait_ready:after")
    change = await asked_of_the_one_to_die(a, b, "change_plan", app_name, "PATCH", f"/v1/apps/{app_name}/addons/{addon}",
                                           plan="redis-starter-512")
    await assert_taken_over_once(a, b, change)
    row = (await call(b, "GET", f"/v1/apps/{app_name}/addons/{addon}", 200))["addon"]
    assert (row["plan"], row["status"]) == ("redis-starter-512", "running"), row
    [node] = await containers_of(addon)
    assert node["State"]["Running"]
    assert await data.read(await redis_url(b, app_name), known) == known
    assert len(restarts) == 1, restarts


@pytest.mark.parametrize("crash_at", ["backup.archive:before", "backup.archive:after"])
async def test_a_backup_whose_driver_is_killed_is_taken_once(engines, app_name, crash_at):
    a = await engines("engine-a", REDIS_ADDONS_CRASH_AT=crash_at)
    b = await engines("engine-b")
    addon, url = await an_addon(a, app_name)
    known = data.expected(500)
    await data.write(url, known)
    requested = await asked_of_the_one_to_die(a, b, "backup", app_name, "POST", f"/v1/apps/{app_name}/addons/{addon}/backups")
    await assert_taken_over_once(a, b, requested)
    [backup] = (await call(b, "GET", f"/v1/apps/{app_name}/addons/{addon}/backups", 200))["backups"]
    assert backup["status"] == "done", backup
    archives = [p for p in engines.backups.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(archives) == 1, archives


async def log_position(engine: EngineProcess) -> int:
    """The position of the last event in the log, as the engine's API pages through it."""
    position = 0
    while (page := await call(engine, "GET", f"/v1/events?after={position}&limit=1000", 200))["events"]:
        position = page["next"]
    return position


async def settled_position(engine: EngineProcess) -> int:
    """The log's position once a renewal period passed with nothing recorded: a renewal of a lease that was being
    saved as its operation ended lands just after the end."""
    position = await log_position(engine)
    while True:
        await asyncio.sleep(LEASE_S / 3 + 0.5)
        if (now := await log_position(engine)) == position:
            return position
        position = now


async def scheduler_runs(engine: EngineProcess) -> float:
    async with engine.client() as http, http.get("/metrics") as answer:
        assert answer.status == 200, await answer.text()
        text = await answer.text()
    return float(next(line.split()[-1] for line in text.splitlines()
                      if line.startswith("redis_addons_scheduler_runs_total")))


async def test_one_process_runs_the_scheduler_and_the_other_takes_it_over_when_it_dies(engines, app_name):
    a = await engines("engine-a", REDIS_ADDONS_SCHEDULER_TICK="1")
    b = await engines("engine-b", REDIS_ADDONS_SCHEDULER_TICK="1")
    addon, url = await an_addon(b, app_name)
    await data.write(url, data.expected(100))
    at = datetime.now(timezone.utc) + timedelta(minutes=1)  # the next minute, after the addon's creation
    schedule = f"{at.hour}:{at.minute:02d} UTC"
    await call(b, "PUT", f"/v1/apps/{app_name}/addons/{addon}/backup_schedule", 200, schedule_at=schedule)
    async with asyncio.timeout(150):
        while not (backups := (await call(b, "GET", f"/v1/apps/{app_name}/addons/{addon}/backups", 200))["backups"]) \
                or backups[0]["status"] != "done":
            await asyncio.sleep(1)
    # The backup is listed done at its record step; the operation's end is saved just after.
    [backup_operation] = [o for o in (await call(b, "GET", "/v1/operations", 200))["operations"]
                          if o["kind"] == "backup" and o["addon"] == addon]
    assert (await finished(b, backup_operation["id"]))["status"] == "succeeded"
    idle_at = await settled_position(b)
    await asyncio.sleep(LEASE_S)  # a few more ticks: a second scheduler would start the day's backup again
    backups = (await call(b, "GET", f"/v1/apps/{app_name}/addons/{addon}/backups", 200))["backups"]
    assert len(backups) == 1 and backups[0]["kind"] == "scheduled", backups
    # Three renewal periods of two idle processes: who runs the duties is a lock, nothing in the log.
    assert await log_position(a) == await log_position(b) == idle_at, await call(b, "GET", f"/v1/events?after={idle_at}", 200)
    assert await scheduler_runs(a) > 0 and await scheduler_runs(b) == 0  # a started first: it leads
    os.kill(a.process.pid, signal.SIGKILL)
    assert await a.died() == -signal.SIGKILL
    async with asyncio.timeout(4 * LEASE_S):
        while await scheduler_runs(b) == 0:
            await asyncio.sleep(0.5)
    assert "this process runs the installation's duties" in b.output()


async def test_a_driver_frozen_past_its_lease_records_nothing_more_and_its_wait_sees_the_other_finish(engines, app_name,
                                                                                                    restart_hook):
    """SIGSTOP at a step boundary (as a process stalled by its machine): the other process takes the plan change
    over and finishes it; woken (SIGCONT), the frozen one's next record is refused by the event store (its
    lease was taken), so it restarts nothing and ends nothing; its API's wait for the operation, asked before
    it froze, answers with the operation the other process finished."""
    a, b, addon, known, restarts = await an_app_with_data(engines, app_name, restart_hook,
                                                         "change_plan.wait_ready:after:freeze")
    waiting = asyncio.create_task(call(a, "PATCH", f"/v1/apps/{app_name}/addons/{addon}?wait=true&timeout=300", 200,
                                       plan="redis-starter-512"))
    try:
        async with asyncio.timeout(60):
            while not (operations := [o for o in (await call(b, "GET", f"/v1/operations?addon={addon}", 200))["operations"]
                                      if o["kind"] == "change_plan"]):
                await asyncio.sleep(0.2)
        operation_id = operations[0]["id"]
        operation = await finished(b, operation_id)
        assert operation["status"] == "succeeded", operation
        assert a.process.poll() is None  # frozen, not dead
        os.kill(a.process.pid, signal.SIGCONT)
        answer = await asyncio.wait_for(waiting, 60)
    finally:
        if a.process.poll() is None:
            os.kill(a.process.pid, signal.SIGCONT)
        waiting.cancel()
    assert answer["operation"]["status"] == "succeeded" and answer["operation"]["id"] == operation_id
    assert "lease lost" in a.output() or "operation left to the process that took its lease" in a.output()
    ends = [e["type"] for e in await events_of(b, operation_id) if e["type"] in ENDS]
    assert ends == ["Operation.Succeeded"]
    steps = [e["data"]["step"] for e in await events_of(b, operation_id) if e["type"] == "Operation.StepSucceeded"]
    assert steps == ["stop", "start_new", "wait_ready", "verify", "publish", "cleanup", "restart_app"], steps
    assert len(restarts) == 1, restarts
    [node] = await containers_of(addon)
    assert node["State"]["Running"]
    assert await data.read(await redis_url(b, app_name), known) == known

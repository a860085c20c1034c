"""The event store on a real PostgreSQL (tests/postgres_server.py; a database of its own per test): the facade
(engine/store.py) saves, reads and selects as on SQLite, refuses a stale save, counts positions as PostgreSQL's
rows; PostgreSQL stopped under it turns each call into EventStoreUnavailable in seconds and works again once it
is back; an engine pointed at a wrong password, a missing database or a closed port refuses to start with
where, why and what to do. No message, log line or exception ever holds the password."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from adapters.postgres.reachability import why_unreachable
from domain.app import App
from engine import build
from engine.settings import store_env
from engine.store import EventLog, EventStoreUnavailable, IntegrityError
from tests.conftest import HOSTS_FILE
from tests.integration.conftest import settings_for
from tests.postgres_server import HOST, ThrowawayPostgres, pg_bin

TABLE = "redisaddons_events"  # eventsourcing's: the application's name, lower case, then _events


def log_on(env: dict, home) -> EventLog:
    settings_env = store_env(env, home)
    return EventLog(settings_env, diagnose=lambda: why_unreachable(settings_env))


def app_named(name: str) -> App:
    return App(name=name, restart={"kind": "none"})


async def test_save_get_select_and_positions_are_postgresql_rows(postgres, tmp_path):
    env = postgres.new_database("store")
    dbname = env["REDIS_ADDONS_POSTGRES_DBNAME"]
    log = log_on(env, tmp_path)
    told = []
    log.on_saved(lambda position, event: told.append((position, type(event).__name__)))
    await log.open()  # the table made at the first start
    try:
        assert postgres.psql(f"SELECT count(*) FROM {TABLE}", dbname).strip() == "0"
        assert await log.max_position() == 0 and await log.select(0) == []

        first, second = app_named("pg-one"), app_named("pg-two")
        await log.save(first)
        second.change_restart({"kind": "hook", "url": "http://127.0.0.1:9/restart"})
        await log.save(second)

        assert (await log.get(App.id_for("pg-two"))).restart["kind"] == "hook"
        assert (await log.get(App.id_for("pg-two"), version=1)).restart == {"kind": "none"}
        assert await log.exists(App.id_for("pg-one")) and not await log.exists(App.id_for("pg-three"))
        selected = await log.select(0)
        assert [type(e).__name__ for _, e in selected] == ["Registered", "Registered", "RestartMethodChanged"]
        assert [p for p, _ in selected] == [p for p, _ in told]  # the listeners told of each, in the log's order
        assert await log.select(selected[0][0], limit=1) == selected[1:2]
        # Only the classes asked for, selected by PostgreSQL (the others never decoded), in the log's order.
        changed = await log.select(0, of=(App.RestartMethodChanged,))
        assert changed == selected[2:] and await log.select(selected[2][0], of=(App.Registered,)) == []
        rows = postgres.psql(f"SELECT notification_id FROM {TABLE} ORDER BY notification_id", dbname).split()
        assert [int(r) for r in rows] == [p for p, _ in selected] and await log.max_position() == int(rows[-1])

        # Two copies of one aggregate: the second save is stale, refused whole, nothing of it recorded.
        one, other = await log.get(App.id_for("pg-one")), await log.get(App.id_for("pg-one"))
        one.change_restart({"kind": "docker", "label": "a"})
        other.change_restart({"kind": "docker", "label": "b"})
        await log.save(one)
        with pytest.raises(IntegrityError):
            await log.save(other)
        assert (await log.get(App.id_for("pg-one"))).restart["label"] == "a"
        assert postgres.psql(f"SELECT count(*) FROM {TABLE}", dbname).strip() == "4"
        # The refused insert took a number of PostgreSQL's sequence: the next position leaves a gap, and
        # selecting after any position still finds every later event.
        await log.save(app_named("pg-three"))
        positions = [p for p, _ in await log.select(0)]
        assert len(positions) == 5 and positions == sorted(positions)
        assert [p for p, _ in await log.select(positions[3])] == positions[4:]
        assert await log.max_position() == positions[-1]
    finally:
        await log.close()
    again = log_on(env, tmp_path)  # a second start finds the table and everything in it
    await again.open()
    try:
        assert [p for p, _ in await again.select(0)] == positions
    finally:
        await again.close()


class RestartablePostgres(ThrowawayPostgres):
    """A server of its own for a test that stops it: stopped keeping its data, then started again."""

    def pause(self) -> None:
        self._as_postgres(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        options = f"-h {HOST} -p {self.port} -k {self.root} -c fsync=off"
        self._as_postgres(pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                          "-w", "-t", "60", "start")


@pytest.fixture
def own_postgres():
    server = RestartablePostgres().start()
    yield server
    server.stop()


async def test_postgresql_stopped_under_a_running_store_is_said_unavailable_then_works_again(own_postgres, tmp_path):
    env = own_postgres.new_database("halted")
    log = log_on(env, tmp_path)
    await log.open()
    try:
        await log.save(app_named("before-stop"))
        own_postgres.pause()
        with capture_logs() as logs:
            with pytest.raises(EventStoreUnavailable) as refused_write:
                await asyncio.wait_for(log.save(app_named("while-stopped")), timeout=30)
            with pytest.raises(EventStoreUnavailable) as refused_read:
                await asyncio.wait_for(log.get(App.id_for("before-stop")), timeout=30)
        assert str(refused_write.value) == ("the event store cannot record anything now (PostgreSQL did not answer): "
                                            "nothing was changed; the engine's log says more")
        assert str(refused_read.value).startswith("the event store cannot be read now (PostgreSQL did not answer)")
        errors = [entry for entry in logs if entry["log_level"] == "error"]
        assert [e["event"] for e in errors] == ["the event store refused a write", "the event store refused a read"]
        where = f"PostgreSQL {HOST}:{own_postgres.port}/{env['REDIS_ADDONS_POSTGRES_DBNAME']}"
        assert {e["where"] for e in errors} == {where}
        assert any("Connection refused" in e["error"] or "terminating connection" in e["error"] for e in errors), errors
        said = " ".join([str(refused_write.value), str(refused_read.value), repr(logs)])
        assert own_postgres.password not in said

        own_postgres.resume()  # the pool's dropped connections are replaced (pre-ping): no restart of the engine
        await log.save(app_named("after-restart"))
        assert [e.name for _, e in await log.select(0)] == ["before-stop", "after-restart"]
    finally:
        await log.close()


@pytest.mark.parametrize("wrong, why, advice", [
    ({"REDIS_ADDONS_POSTGRES_PASSWORD": "not-the-password"}, 'password authentication failed for user "postgres"',
     "check REDIS_ADDONS_POSTGRES_USER and its password"),
    ({"REDIS_ADDONS_POSTGRES_DBNAME": "no_such_db"}, 'database "no_such_db" does not exist',
     "create that database"),
    ({"REDIS_ADDONS_POSTGRES_PORT": "1"}, "Connection refused",
     "check that PostgreSQL runs there and that REDIS_ADDONS_POSTGRES_HOST and REDIS_ADDONS_POSTGRES_PORT name it"),
])
async def test_an_engine_pointed_at_a_postgresql_that_refuses_it_does_not_start_and_says_why(
        postgres, tmp_path, wrong, why, advice):
    env = {**postgres.new_database("refused"), **wrong}
    home = tmp_path / "home"
    settings = settings_for(home, store_env=store_env(env, home))
    with capture_logs() as logs:
        with pytest.raises(EventStoreUnavailable) as refused:
            build(settings)
    said = str(refused.value)
    where = f"PostgreSQL {HOST}:{env['REDIS_ADDONS_POSTGRES_PORT']}/{env['REDIS_ADDONS_POSTGRES_DBNAME']}"
    assert said.startswith(f"the engine cannot start: the event store ({where}) cannot be opened: ")
    assert why in said and advice in said, said
    assert postgres.password not in said + repr(logs) and "not-the-password" not in said + repr(logs)
    assert not home.exists()  # nothing made for an engine that does not start

    log = log_on(env, home)  # the facade alone (as the benchmarks use it) says the same at its opening
    with pytest.raises(EventStoreUnavailable, match="the engine cannot start: the event store") as opened:
        await log.open()
    assert why in str(opened.value) and postgres.password not in str(opened.value)
    await log.close()


async def test_the_password_read_from_a_file_opens_the_store(postgres, tmp_path):
    env = postgres.new_database("pwfile")
    secret = tmp_path / "pg-password"
    secret.write_text(env.pop("REDIS_ADDONS_POSTGRES_PASSWORD") + "\n")
    secret.chmod(0o600)
    log = log_on({**env, "REDIS_ADDONS_POSTGRES_PASSWORD_FILE": str(secret)}, tmp_path)
    await log.open()
    try:
        await log.save(app_named("from-a-file"))
        assert await log.max_position() >= 1
    finally:
        await log.close()


def test_serve_pointed_at_a_wrong_password_says_one_line_without_it(postgres, tmp_path):
    env = {**postgres.new_database("serve"), "REDIS_ADDONS_POSTGRES_PASSWORD": "wrong-horse-battery"}
    cli = str(Path(sys.executable).with_name("redis-addons"))
    home = tmp_path / "home"
    served = subprocess.run([cli, "serve", "--port", "0"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, **env, "REDIS_ADDONS_HOME": str(home), "REDIS_ADDONS_HOSTS": str(HOSTS_FILE)})
    assert served.returncode == 1
    last = served.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the engine cannot start: the event store (PostgreSQL {HOST}:{postgres.port}/"
                           f"{env['REDIS_ADDONS_POSTGRES_DBNAME']}) cannot be opened: ") and "Traceback" not in served.stderr
    assert 'password authentication failed for user "postgres"' in last
    assert "wrong-horse-battery" not in served.stderr + served.stdout and postgres.password not in served.stderr
    assert not home.exists()

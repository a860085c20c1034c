"""One engine per data directory: a second `redis-addons serve` (or embedded engine) on the same
data refuses to start with one line naming the running one; a lock file left by a killed engine
does not block the next. Only processes these tests start are stopped, by their PID."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from adapters.data_lock import LOCK_FILE, DataDirectoryInUse
from engine import build
from tests.conftest import HOSTS_FILE
from tests.integration.conftest import settings_for

CLI = str(Path(sys.executable).with_name("redis-addons"))


def serve_env(home: Path) -> dict:
    return dict(os.environ, REDIS_ADDONS_HOME=str(home), REDIS_ADDONS_HOSTS=str(HOSTS_FILE),
                REDIS_ADDONS_SCHEDULER_TICK="0")


class Served:
    """`redis-addons serve --port 0` in a process of its own, stopped by its PID."""

    def __init__(self, home: Path):
        self.home = home
        self.log = open(home.parent / f"serve-{len(list(home.parent.glob('serve-*')))}.log", "wb")
        self.process = subprocess.Popen([CLI, "serve", "--port", "0"], env=serve_env(home),
                                        stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def api(self, timeout: float = 30) -> str:
        """Its API address, once it holds the data directory and listens (as its lock file says)."""
        async with asyncio.timeout(timeout):
            while True:
                assert self.process.poll() is None, self.output()
                try:
                    holder = json.loads((self.home / LOCK_FILE).read_text())
                except (FileNotFoundError, ValueError):
                    holder = {}
                if holder.get("pid") == self.pid and holder.get("api"):
                    return holder["api"]
                await asyncio.sleep(0.1)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            os.kill(self.pid, sig)
        code = self.process.wait(timeout=30)
        self.log.close()
        return code


@pytest.fixture
def served(tmp_path):
    started: list[Served] = []

    def start() -> Served:
        started.append(Served(tmp_path / "home"))
        return started[-1]

    yield start
    for one in started:
        one.stop(signal.SIGKILL if one.process.poll() is None else signal.SIGTERM)


async def healthy(api: str) -> bool:
    async with aiohttp.ClientSession() as session, session.get(api + "/health") as response:
        return response.status == 200


async def test_a_second_serve_on_the_same_data_refuses_with_one_line_naming_the_first(served, tmp_path):
    first = served()
    api = await first.api()
    home = tmp_path / "home"

    second = await asyncio.to_thread(subprocess.run, [CLI, "serve", "--port", "0"], env=serve_env(home),
                                     capture_output=True, text=True, timeout=60)

    assert second.returncode != 0
    assert second.stdout == ""
    [line] = second.stderr.strip().splitlines()
    assert line == (f"error: data directory {home} is in use by another redis-addons engine (pid {first.pid}, "
                    f"API {api}): stop that one first, or give this one a data directory of its own "
                    "(REDIS_ADDONS_HOME)")
    assert await healthy(api)  # the first one serves on, untouched
    assert json.loads((home / LOCK_FILE).read_text())["pid"] == first.pid
    assert first.stop() == 0


async def test_a_lock_file_left_by_a_killed_serve_does_not_block_the_next(served, tmp_path):
    killed = served()
    await killed.api()
    assert killed.stop(signal.SIGKILL) == -signal.SIGKILL
    left = json.loads((tmp_path / "home" / LOCK_FILE).read_text())
    assert left["pid"] == killed.pid  # the file is there, naming a dead process

    after = served()
    api = await after.api()
    assert await healthy(api)
    assert after.stop() == 0


async def test_a_second_embedded_engine_on_one_home_cannot_start(home):
    async with build(settings_for(home)) as first:
        second = build(settings_for(home))
        with pytest.raises(DataDirectoryInUse) as refused:
            await second.start()
        assert str(refused.value) == (
            f"data directory {home} is in use by another redis-addons engine (pid {os.getpid()} (this process), "
            "no API (embedded, or its API is not listening yet)): stop that one first, or give this one a data "
            "directory of its own (REDIS_ADDONS_HOME)")
        await second.stop()  # harmless: it held nothing, and the first one keeps its lock
        assert await first.events.max_position() >= 0
        third = build(settings_for(home))
        with pytest.raises(DataDirectoryInUse):
            await third.start()
        await third.stop()
    async with build(settings_for(home)) as later:  # once the first has stopped
        assert later.data_lock is not None


async def test_an_engine_whose_start_fails_leaves_the_data_directory_free(home):
    home.mkdir(parents=True)
    (home / "events.sqlite").mkdir()  # the event store cannot open: start fails after the lock is taken
    broken = build(settings_for(home))
    with pytest.raises(Exception):
        await broken.start()
    (home / "events.sqlite").rmdir()
    async with build(settings_for(home)) as engine:  # not refused as "in use"
        assert await engine.operations() == []

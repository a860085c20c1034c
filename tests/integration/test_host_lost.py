"""A whole host lost: the Docker engine that runs a Business cluster's primary is stopped (its
containers stop with it). The Sentinels on the two other hosts fail over; past the grace period the
engine replaces the data node and the HAProxy it lost on the hosts left, keeps the Sentinel's place
(three Sentinels go on three hosts: there is no third one) and says so; when the host is back, what
was left on it is removed, its Sentinel serves again, and the cluster is whole. Nothing acknowledged
is lost. The engine is started again by `scripts/engines.sh start`, as `make setup` does."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from engine import build
from tests.conftest import REPO
from tests.integration.business import Writer, business_addon, eventually, nodes_by_role, primary_of, watcher_round
from tests.integration.conftest import remove_everything_of, settings_for

RUN_BASE = Path("/run/redis-addons")


def dockerd_pid(host: str) -> int:
    """The pid `make setup` wrote for this host's engine (stopped by that pid only)."""
    return int((RUN_BASE / host / "docker.pid").read_text().strip())


async def stop_engine(host: str) -> None:
    pid = dockerd_pid(host)
    os.kill(pid, signal.SIGTERM)  # dockerd stops its containers, then itself
    await eventually(lambda: asyncio.to_thread(lambda: not Path(f"/proc/{pid}").exists()), timeout=90, every=0.5)


def start_engines() -> None:
    subprocess.run([str(REPO / "scripts" / "engines.sh"), "start"], check=True, capture_output=True, timeout=180)


@pytest.fixture
async def grace_engine(home, app_name):
    async with build(settings_for(home, host_grace_s=3.0)) as engine:
        try:
            yield engine
        finally:
            start_engines()  # whatever happened: the hosts are back for the next tests
            try:
                for operation in await engine.operations():  # a replacement in flight holds the addon
                    await engine.wait_for_operation(operation["id"], timeout=120)
                for row in await engine.addons(app_name):
                    if row["status"] != "removed":
                        removal = await engine.remove_addon(app_name, row["name"])
                        await engine.wait_for_operation(removal["operation_id"], timeout=120)
            finally:
                await remove_everything_of(app_name)  # whatever the engine could not remove


async def test_the_primary_host_lost_fails_over_heals_on_the_others_and_is_whole_when_it_returns(grace_engine, app_name):
    engine = grace_engine
    addon = await business_addon(engine, app_name)
    before = await nodes_by_role(engine, app_name, addon)
    lost_host = primary_of(before)["host"]
    on_lost_host = {n["id"]: n for group in before.values() for n in group if n["host"] == lost_host}
    writer = Writer((await engine.environment(app_name))["REDIS_URL"]).start()
    await eventually(writer.wrote_more)

    await stop_engine(lost_host)

    async def healed_as_far_as_it_can() -> bool:
        await watcher_round(engine)
        row = await engine.addon(app_name, addon)
        nodes = await nodes_by_role(engine, app_name, addon)
        idle = all(o["status"] != "running" for o in await engine.operations(addon))
        return idle and len([n for n in nodes["data"] if n["state"] == "running"]) == 2 and \
            all(n["state"] == "running" for n in nodes["proxy"]) and "not replaced yet" in (row["failure"] or "")

    await eventually(healed_as_far_as_it_can, timeout=240, every=0.5)
    assert await writer.wrote_more()
    row = await engine.addon(app_name, addon)
    assert row["status"] == "degraded"
    assert f"{lost_host} does not answer" in row["failure"]  # the Sentinel there: no host for it, and said so
    nodes = await nodes_by_role(engine, app_name, addon)
    assert primary_of(nodes)["host"] != lost_host
    assert all(n["host"] != lost_host for n in nodes["data"] + nodes["proxy"])
    assert len({n["host"] for n in nodes["data"]}) == 2 and len({n["host"] for n in nodes["proxy"]}) == 2
    everything = {n["id"]: n for n in await engine.nodes(app_name, addon)}
    assert {everything[i]["state"] for i in on_lost_host if everything[i]["role"] != "sentinel"} == {"left"}

    start_engines()

    async def whole() -> bool:
        await watcher_round(engine)
        now = {n["id"]: n for n in await engine.nodes(app_name, addon)}
        states = {now[i]["role"]: now[i]["state"] for i in on_lost_host}
        return (await engine.addon(app_name, addon))["status"] == "running" and states["sentinel"] == "running" \
            and {states["data"], states.get("proxy", "retired")} == {"retired"}

    await eventually(whole, timeout=120, every=0.5)
    nodes = await nodes_by_role(engine, app_name, addon)
    for role, count in (("data", 2), ("sentinel", 3), ("proxy", 2)):
        assert len(nodes[role]) == count and len({n["host"] for n in nodes[role]}) == count
    await eventually(writer.wrote_more)
    await writer.stop()
    assert await writer.lost() == []

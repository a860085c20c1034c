"""The coordinated switch of a Business cluster's primary, with every acknowledged write kept: what a
plan change does once the new nodes are in sync (engine/cluster_plan_change.py, engine/kind_change*.py).

Writes are paused on the old primary (CLIENT PAUSE WRITE: they wait, they are not refused) until the
nodes it may hand over to have all of its data, then SENTINEL FAILOVER elects one of them, HAProxy is
given a moment to route to it, the old primary is demoted, and writes resume: what the old primary
acknowledged, the new one has (a plain SENTINEL FAILOVER can lose seconds of writes). Should the switch
give up once the failover was asked, writes resume only when no Sentinel is failing over any more, the
old primary demoted first if they named another; until then they wait, at most until the pause lapses.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from domain.cluster_config import MASTER_NAME, QUORUM
from engine.nodes import endpoint
from engine.ports import EffectError, Endpoint, RedisAdmin, TransientError

CAUGHT_UP_WITHIN_S = 2.0  # with writes paused, replicas in sync have the last bytes within milliseconds
ELECTED_WITHIN_S = 10.0
ROUTED_WITHIN_S = 2.0  # the old primary is demoted then anyway: its clients are refused, not lost
SETTLED_WITHIN_S = 10.0  # a failover the switch gave up on, still running: how long writes stay paused for it
# The pause must outlast the longest switch: lapsing mid-failover, the old primary would acknowledge
# writes its demotion then discards. The switch resumes writes as soon as it is done.
SWITCH_PAUSE_MS = int((CAUGHT_UP_WITHIN_S + ELECTED_WITHIN_S + ROUTED_WITHIN_S + SETTLED_WITHIN_S + 5) * 1000)


def at(node: dict) -> str:
    return f"{node['address']}:{node['port']}"


@dataclass
class PrimarySwitch:
    """One cluster's Sentinels (`sentinels`: those recorded live; `running`: those that may be asked
    to fail over) and its entry, seen with the addon's and the Sentinels' passwords."""

    redis: RedisAdmin
    sentinels: list[dict]
    running: list[dict]
    entry: Endpoint
    password: str
    sentinel_password: str

    def endpoint(self, node: dict) -> Endpoint:
        return endpoint(node, self.password)  # over TLS where the node serves it

    async def switch(self, old: dict, candidates: tuple[dict, ...], in_sync: tuple[dict, ...]) -> tuple[dict, str]:
        """One of `candidates` made the primary in place of `old`, once every node of `in_sync` has all
        of `old`'s data; returns it and how the switch went ("" when it was made already)."""
        elected = await self.elected_one_of(candidates)
        if elected is not None:  # done before a crash: never failed over twice, but the demotion may be left
            await self.demoted(old, elected)
            return elected, ""
        loop = asyncio.get_running_loop()
        await self.redis.pause_writes(self.endpoint(old), SWITCH_PAUSE_MS)
        failing_over, resume = False, True
        try:
            began = loop.time()
            offset = await self.caught_up(old, in_sync)
            caught_up = loop.time() - began
            failing_over = True  # from here a Sentinel may be electing, even if its answer is lost
            await self.failover()
            elected = await self.wait_elected(candidates)
            named = loop.time() - began
            routed = await self.entry_routes_to(elected)
            waited = loop.time() - began
            # The Sentinels demote the old primary only once the failover ends: until then a write
            # waiting on it would be acknowledged there, then lost when it resyncs from the new one.
            await self.redis.demote(self.endpoint(old), elected["address"], elected["port"])
        except BaseException as error:
            if failing_over:  # cancelled (a deadline), or settled failing: writes wait until the pause lapses
                resume = False
                if isinstance(error, (TransientError, EffectError)):
                    resume = await self.settled(old)
            raise
        finally:
            if resume:
                await self.redis.resume_writes(self.endpoint(old))
        return elected, (f", with every write the old one acknowledged (offset {offset}); writes waited {waited:.2f} s: "
                         f"caught up {caught_up:.2f}, elected {named:.2f}, "
                         f"{'routed' if routed else 'not yet routed'} by HAProxy {waited:.2f}")

    async def demoted(self, old: dict, primary: dict) -> None:
        """`old` a replica of `primary`, if it still says it is a primary (one the Sentinels could not
        reach while they failed over is demoted only when they reach it again)."""
        try:
            role = (await self.redis.replication(self.endpoint(old))).get("role")
        except (TransientError, EffectError):
            return  # gone or down: the Sentinels demote it if it comes back
        if role == "master":
            await self.redis.demote(self.endpoint(old), primary["address"], primary["port"])

    async def settled(self, old: dict) -> bool:
        """After a switch that failed once SENTINEL FAILOVER was sent: whether writes may resume on
        `old`. Not while a Sentinel is still failing over (what `old` acknowledged then would be lost
        when it follows the new primary); once none is, `old` is demoted if the Sentinels named another."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLED_WITHIN_S
        while any(await self.seeing(lambda view: view["failing_over"])):
            if loop.time() > deadline:
                return False  # writes stay paused until the pause lapses, the failover over by then
            await asyncio.sleep(0.05)
        named = await self.seeing(lambda view: view["primary"])
        for primary in set(named) - {at(old)}:
            if named.count(primary) >= QUORUM:
                host, _, port = primary.rpartition(":")
                await self.redis.demote(self.endpoint(old), host, int(port))
        return True

    async def caught_up(self, old: dict, replicas: tuple[dict, ...]) -> int:
        return await caught_up(self.redis, self.endpoint, old, replicas)

    async def entry_routes_to(self, node: dict) -> bool:
        """Wait (a little) until HAProxy sends new connections to `node`: it reads the Sentinels every
        half second, and the clients the demotion disconnects should reconnect to the new primary, not
        to the demoted one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ROUTED_WITHIN_S
        while loop.time() < deadline:
            try:
                if await self.redis.answering(self.entry) == node.get("answers_at", at(node)):
                    return True
            except (TransientError, EffectError):
                pass  # no primary named for a moment: refused
            await asyncio.sleep(0.05)
        return False

    async def failover(self) -> None:
        errors = []
        for sentinel in self.running:
            try:
                return await self.redis.sentinel_failover(self.sentinel(sentinel), MASTER_NAME)
            except (TransientError, EffectError) as error:
                errors.append(str(error))
        raise TransientError("no Sentinel would start the failover: " + "; ".join(errors))

    async def elected_one_of(self, nodes: tuple[dict, ...]) -> dict | None:
        """The one of `nodes` that a majority of Sentinels name and that says it is a primary."""
        named = await self.seeing(lambda view: view["primary"])
        for node in nodes:
            if sum(primary == at(node) for primary in named) >= QUORUM:
                if (await self.redis.replication(self.endpoint(node))).get("role") == "master":
                    return node
        return None

    async def wait_elected(self, nodes: tuple[dict, ...]) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ELECTED_WITHIN_S
        while loop.time() < deadline:
            if elected := await self.elected_one_of(nodes):
                return elected
            await asyncio.sleep(0.02)
        raise TransientError(f"the Sentinels elected no new node within {ELECTED_WITHIN_S:.0f} s")

    def sentinel(self, node: dict) -> Endpoint:
        return endpoint(node, self.sentinel_password)

    async def seeing(self, what) -> list:
        """`what` of each Sentinel's view, for those that answer."""
        seen = []
        for sentinel in self.sentinels:
            try:
                view = await self.redis.sentinel_view(self.sentinel(sentinel), MASTER_NAME)
            except (TransientError, EffectError):
                continue
            if result := what(view):
                seen.append(result)
        return seen


async def caught_up(redis: RedisAdmin, endpoint_of, old: dict, replicas: tuple[dict, ...],
                    within_s: float = CAUGHT_UP_WITHIN_S) -> int:
    """With writes paused (or refused) on `old`, its offset stops: each of `replicas` must reach it. Each is
    asked itself (the primary hears a replica's offset only once a second, in its acknowledgements)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    head = int((await redis.replication(endpoint_of(old))).get("master_repl_offset", 0))
    while True:
        offsets = {n["container"]: int((await redis.replication(endpoint_of(n))).get("slave_repl_offset", -1))
                   for n in replicas}
        if all(offset >= head for offset in offsets.values()):
            return head
        if loop.time() > deadline:
            raise TransientError(f"the replicas did not reach the primary's offset {head} within "
                                 f"{within_s:.0f} s (they have {offsets})")
        await asyncio.sleep(0.005)

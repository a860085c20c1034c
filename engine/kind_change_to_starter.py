"""A Business addon moved onto a single-node plan, with its data (reference, "Changing Plans"): one
node, N, made a replica of the primary, then the primary by one coordinated switch; the app is
restarted onto N's own URL while the entry still routes to N, then the cluster's other nodes go.

add_node        N, with the new plan's memory, a single node's configuration plus replication: a replica
                of the primary, not electable, acknowledging writes without a replica once primary
                (min-replicas-to-write 0: it will be alone); its TLS certificate names the entry too
sync_node       N in sync: the only electable replica (the old replica's priority 0), known to HAProxy
switch          writes paused on the primary until N has all of its data, SENTINEL FAILOVER elects N, the
                old primary demoted, writes resume
publish         REDIS_URL is N's own (the addon stays held by the change)
restart_app     the app restarted onto it; meanwhile the entry still routes to N
retire_cluster  the HAProxy, the Sentinels and the old data nodes removed
finish          N's redis.conf written as a single node's (no replication), the addon on its new plan

A failure before the switch removes N and gives the old replica its priority back: the addon runs on
as it was. Once N is the primary, the change is finished instead.
"""

from __future__ import annotations

from dataclasses import replace

from domain.cluster_config import QUORUM, replication_lines
from domain.operation import Operation
from engine.cluster_nodes import address, serves_tls_only
from engine.cluster_provisioning import sentinel_secret
from engine.kind_change import Change, KindChange, known
from engine.nodes import node_spec
from engine.ports import EffectError, Endpoint, TransientError
from engine.primary_switch import at
from engine.saga import StepResult


class ChangeToStarter(KindChange):
    kind = "change_to_starter"
    deadlines = {"sync_node": 900.0, "retire_cluster": 180.0}
    finishing = ("switch", "publish", "restart_app", "retire_cluster", "finish")
    published_note = ", the single node's own (the entry routes to it too until the cluster goes)"

    def entry(self, c: Change) -> Endpoint:
        if c.cluster.entry.get("tls_port"):  # a cluster serving TLS: its plaintext entry may be closed (force TLS)
            return Endpoint(c.cluster.entry["address"], c.cluster.entry["tls_port"], self.passwords(c.addon)[0], tls=True)
        return Endpoint(c.cluster.entry["address"], c.cluster.entry["port"], self.passwords(c.addon)[0])

    def node(self, c: Change) -> dict:
        return c.placed("data")[0]

    def known(self, c: Change, node: dict) -> dict:
        """A data node as the cluster reaches it: the new one at its TLS port where the others serve TLS only."""
        return known(node, serves_tls_only(c.old))

    def old_replicas(self, c: Change) -> list[dict]:
        return [n for n in c.live("data") if n["id"] not in (c.old["id"], self.node(c)["id"])]

    def spec(self, c: Change, node: dict, replica_of: dict | None):
        """A single node's container (its certificate kept), plus, while it joins, replication."""
        password, _ = self.passwords(c.addon)
        spec = node_spec(c.addon, node, c.operation, password, self.versions, None)
        if replica_of is None:
            return spec
        lines = replication_lines(node=address(self.known(c, node)), primary=address(replica_of), password=password,
                                  min_replicas=0, promotable=False)
        lines += ["tls-replication yes"] if serves_tls_only(replica_of) else []
        return replace(spec, files={**spec.files, "redis.conf": spec.files["redis.conf"] + "\n".join(lines) + "\n"})

    async def add_node(self, c: Change) -> StepResult:
        node = self.node(c)

        def joining(n: dict):
            spec = self.spec(c, n, c.old)
            return replace(spec, files={**spec.files, **self.certificate_naming_entry(c, n, c.cluster.entry["address"])})
        await self.start([node], joining)
        return StepResult(f"{node['container']} ({node['memory_mib']} MiB) started on {node['host']} at "
                          f"{address(node)}, a replica of {c.old['container']}")

    async def sync_node(self, c: Change) -> StepResult:
        node = self.known(c, self.node(c))
        offset = await self.in_sync(c, c.old, node)
        await self.redis.configure(self.endpoint(c, node), {"replica-priority": "100"})
        for other in self.old_replicas(c):  # the Sentinels must elect N, not the replica about to go
            await self.redis.configure(self.endpoint(c, other), {"replica-priority": "0"})
        await self.electable(c, self.entry(c), [node], self.old_replicas(c))
        if node["state"] == "placed":
            c.cluster.mark_node_started(node["id"])
        await self.route(c, [self.known(c, n) for n in c.running("data")])
        return StepResult(f"{node['container']} in sync at offset {offset}: the only electable replica, known to "
                          "HAProxy", changes=(c.cluster,))

    async def switch(self, c: Change) -> StepResult:
        node = self.known(c, self.node(c))
        if c.old["state"] != "retired":
            # The old primary is never to be elected again: it goes with the cluster, N's data with it.
            await self.redis.configure(self.endpoint(c, c.old), {"replica-priority": "0"})
        elected, detail = await self.switching(c, self.entry(c)).switch(c.old, (node,), in_sync=(node,))
        if c.cluster.primary != elected["id"]:
            c.cluster.change_primary(new=elected["id"], reason=f"plan change to {c.plan}")
        return StepResult(f"{elected['container']} is the primary{detail}", changes=(c.cluster,))

    async def switched_to(self, c: Change, node: dict) -> bool:
        """Whether N holds the data now, even before the switch step could record it: it says it is a
        primary, or a Sentinel names it. While one is failing over (to N, maybe), N is not removed:
        wait until it is done."""
        try:
            if (await self.redis.replication(self.endpoint(c, node))).get("role") == "master":
                return True
        except TransientError:
            pass  # not running: the Sentinels tell
        named = await self.switching(c, self.entry(c)).seeing(
            lambda view: "failing over" if view["failing_over"] else view["primary"])
        if at(node) in named:
            return True
        if "failing over" in named:
            raise TransientError(f"a Sentinel is failing over: {node['container']} is kept until it is done")
        return False

    async def still_primary(self, c: Change) -> None:
        """N says it is the primary and no Sentinel names another or is failing over (a majority name
        N, while a majority run): an unplanned failover back to an old node must not be followed by
        removing it."""
        node = self.known(c, self.node(c))
        role = (await self.redis.replication(self.endpoint(c, node))).get("role")
        named = await self.switching(c, self.entry(c)).seeing(
            lambda view: "failing over" if view["failing_over"] else view["primary"])
        # Fewer than a majority left running (a retirement cut short) elect nobody: N's role tells then.
        left = [n for n in c.live("sentinel") if await self.runtime.is_running(n["host"], n["container"])]
        if role != "master" or any(n != at(node) for n in named) or (len(left) >= QUORUM and len(named) < QUORUM):
            raise TransientError(f"{node['container']} is not the primary every Sentinel names ({role}; {named}): "
                                 "the old nodes are kept")

    async def retire_cluster(self, c: Change) -> StepResult:
        await self.still_primary(c)
        # The entry first, then the Sentinels (no failover while the old data nodes go), then those.
        going = c.live("proxy") + c.live("sentinel") + [n for n in c.live("data") if n["id"] != self.node(c)["id"]]
        removed = await self.remove(c, going)
        return StepResult(f"the entry, the Sentinels and the old data nodes removed ({len(removed)} containers)",
                          changes=(c.cluster,))

    async def finish(self, c: Change) -> StepResult:
        node, plan = self.node(c), c.plan
        # Its file without replication: a restart (or the watcher making it again) starts a single node;
        # the running one stops replicating too (the node it followed, if any, is gone).
        # Its certificate names N alone again (the entry, released, may be given to another addon).
        if not await self.certified_alone(c, node):
            await self.runtime.create_node(self.spec(c, node, None))
        await self.redis.stand_alone(self.endpoint(c, self.known(c, node)))
        self.secrets.forget(sentinel_secret(c.addon.name))
        c.cluster.release_entry()
        c.addon.mark_plan_changed(operation_id=c.operation.id)
        return StepResult(f"now {plan} on {node['host']}, a single node; the app was restarted onto the new URL, "
                          f"{c.addon.address}:{c.addon.port}", changes=(c.addon, c.cluster))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        c = await self._change(operation)
        node = self.node(c)
        elected = node["state"] != "retired" and await self.switched_to(c, self.known(c, node))
        if (finished := await self.finish_forward(operation, error, past=bool(elected))) is not None:
            return finished
        removed = await self.remove(c, [n for n in c.mine if n["state"] in ("placed", "running", "down")])
        try:  # a switch that gave up amid a failover left them paused
            await self.redis.resume_writes(self.endpoint(c, c.old))
        except (TransientError, EffectError):
            pass  # down: it restarts unpaused
        for other in [c.old, *self.old_replicas(c)]:  # the old primary too, made unelectable for the switch
            await self.redis.configure(self.endpoint(c, other), {"replica-priority": "100"})
        await self.route(c, c.running("data"))
        if c.addon.operation_id == operation.id:
            c.addon.mark_plan_change_failed(operation_id=operation.id, reason=error)
        return StepResult(f"back on {c.old['container']} as it was; new node removed: {', '.join(removed) or 'none'}",
                          changes=(c.addon, c.cluster))

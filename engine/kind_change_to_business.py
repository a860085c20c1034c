"""A single node's addon moved onto a Business plan, with its data (reference, "Changing Plans"): the
cluster is built as replicas of the addon's node, the app restarted onto the entry while that node
still serves, then one coordinated switch makes a new node the primary.

add_replicas    two data nodes with the new plan's memory, replicas of the addon's node (not electable)
sync_replicas   both in sync (not electable yet: S, alone holding the app's writes, must not lose its place
                to a replica if it stalls a second)
start_sentinels three Sentinels watching the addon's node as the primary
wait_sentinels  each names it and knows the two others and both replicas
start_proxies   two HAProxy bound to the new entry address, routing to the addon's node, S (whose TLS
                certificate now names the entry too: the entry passes TLS through to the primary)
wait_entry      the entry answers, from S
publish         REDIS_URL is the entry's (the addon stays held by the change)
restart_app     the app restarted onto it: old instances write to S directly, new ones through the entry
switch          the replicas made electable (and S not), once a majority of Sentinels see it: writes
                paused on S until both have all of its data, SENTINEL FAILOVER elects one, S demoted,
                writes resume
retire_old      S removed; HAProxy and the Sentinels forget it
finish          the addon is on the Business plan

A failure before `publish` removes every new node, once S is seen to be still the primary (else the
compensation waits, then needs attention: the node holding the data is never removed): the addon runs
on as it was. From `publish` on, the app uses the entry: the change is finished instead.
"""

from __future__ import annotations

from dataclasses import replace

from domain.operation import Operation
from domain.redis_config import TLS_DIR, TLS_FILES
from engine.cluster_nodes import address, data_node_spec, proxy_spec, sentinel_spec, serves_tls_only
from engine.cluster_provisioning import knows_whole_cluster, sentinel_secret
from engine.cluster_rewiring import reset_sentinels
from engine.kind_change import Change, KindChange, known
from engine.nodes import node_spec
from engine.ports import Endpoint, TransientError
from engine.primary_switch import at
from engine.saga import StepResult


class ChangeToBusiness(KindChange):
    kind = "change_to_business"
    deadlines = {"sync_replicas": 900.0, "wait_sentinels": 90.0, "wait_entry": 60.0, "retire_old": 180.0}
    finishing = ("publish", "restart_app", "switch", "retire_old", "finish")
    published_note = ", the entry (HAProxy routes to the single node until the switch)"

    def entry(self, c: Change) -> Endpoint:
        """The address every HAProxy binds, the first one's: held by that node until the change is done,
        then reserved for the cluster's life (a failed change leaves nothing reserved)."""
        return Endpoint(c.addon.target["address"], c.addon.target["port"], self.passwords(c.addon)[0])

    def entry_node(self, c: Change) -> dict:
        return next(n for n in c.placed("proxy") if (n["address"], n["port"]) == (c.addon.target["address"],
                                                                                  c.addon.target["port"]))

    def old(self, c: Change) -> dict:
        """The single node as the cluster reaches it: at its TLS port where the new nodes serve TLS only."""
        return known(c.old, any(serves_tls_only(n) for n in c.placed("data")))

    async def add_replicas(self, c: Change) -> StepResult:
        password, _ = self.passwords(c.addon)
        started = await self.start(c.placed("data"), lambda node: data_node_spec(
            c.future, node, self.old(c), c.operation, password, self.versions, promotable=False,
            certificates=self.certificates))
        return StepResult(f"{', '.join(started)} ({c.placed('data')[0]['memory_mib']} MiB) started, replicas of "
                          f"{c.old['container']}")

    async def sync_replicas(self, c: Change) -> StepResult:
        offsets = [await self.in_sync(c, c.old, node) for node in c.placed("data")]
        for node in c.placed("data"):
            if node["state"] == "placed":
                c.cluster.mark_node_started(node["id"])
        return StepResult(f"both replicas in sync (offsets {offsets}), not electable until the switch",
                          changes=(c.cluster,))

    async def start_sentinels(self, c: Change) -> StepResult:
        password, sentinel_password = self.passwords(c.addon)
        started = await self.start(c.placed("sentinel"), lambda node: sentinel_spec(
            c.future, node, self.old(c), self.components.get("sentinel"), c.operation, password, sentinel_password,
            certificates=self.certificates))
        return StepResult(f"Sentinels {', '.join(started)} watching {c.old['container']}")

    async def wait_sentinels(self, c: Change) -> StepResult:
        _, sentinel_password = self.passwords(c.addon)
        for node in c.placed("sentinel"):
            await knows_whole_cluster(self.redis, node, sentinel_password, self.old(c), sentinels=2, replicas=2)
            if node["state"] == "placed":
                c.cluster.mark_node_started(node["id"])
        return StepResult(f"each Sentinel names {c.old['container']} and knows the two others and both replicas",
                          changes=(c.cluster,))

    async def start_proxies(self, c: Change) -> StepResult:
        password, sentinel_password = self.passwords(c.addon)
        if files := self.certificate_naming_entry(c, c.old, c.addon.target["address"]):
            spec = node_spec(c.addon, c.old, c.operation, password, self.versions, None)
            await self.runtime.create_node(replace(spec, files={**spec.files, **files}))
            await self.redis.reload_certificate(self.endpoint(c, c.old), f"{TLS_DIR}/{TLS_FILES['cert']}",
                                                f"{TLS_DIR}/{TLS_FILES['key']}")
        data = [self.old(c), *c.placed("data")]
        started = await self.start(c.placed("proxy"), lambda node: proxy_spec(
            c.future, node, address(self.entry_node(c)), data, c.placed("sentinel"), self.components.get("haproxy"),
            c.operation, password, sentinel_password, certificates=self.certificates))
        certified = f"; {c.old['container']}'s certificate names the entry too" if files else ""
        return StepResult(f"HAProxy {', '.join(started)} bound to {address(self.entry_node(c))}{certified}")

    async def wait_entry(self, c: Change) -> StepResult:
        answering = await self.redis.answering(self.entry(c))
        if answering != at(c.old):
            raise TransientError(f"the entry answers from {answering}, not yet from {c.old['container']}")
        for node in c.placed("proxy"):
            if node["state"] == "placed":
                c.cluster.mark_node_started(node["id"])
        return StepResult(f"the entry {address(self.entry_node(c))} answers from {c.old['container']}",
                          changes=(c.cluster,))

    async def switch(self, c: Change) -> StepResult:
        new = tuple(c.placed("data"))
        switching = self.switching(c, self.entry(c))
        if await switching.elected_one_of(new) is None:
            # Only now may the Sentinels elect a new node: the app's writes all go through the entry.
            # The old node is never to be elected again: it leaves the cluster once switched.
            await self.redis.configure(self.endpoint(c, c.old), {"replica-priority": "0"})
            for node in new:
                await self.redis.configure(self.endpoint(c, node), {"replica-priority": "100"})
            await self.electable(c, self.entry(c), list(new), [self.old(c)])
        elected, detail = await switching.switch(self.old(c), new, in_sync=new)
        if c.cluster.primary != elected["id"]:
            c.cluster.change_primary(new=elected["id"], reason=f"plan change to {c.plan}")
        return StepResult(f"{elected['container']} is the primary{detail}", changes=(c.cluster,))

    async def retire_old(self, c: Change) -> StepResult:
        if c.old["state"] == "retired":
            return StepResult(f"{c.old['container']} removed already")
        primary = c.cluster.primary_node
        sentinels = c.running("sentinel")
        named = await self.switching(c, self.entry(c)).seeing(
            lambda view: "failing over" if view["failing_over"] else view["primary"])
        if named != [at(primary)] * len(sentinels):
            raise TransientError(f"not every Sentinel names {primary['container']} and is done failing over yet ({named})")
        await self.route(c, c.placed("data"))
        await self.remove(c, [c.old])
        _, sentinel_password = self.passwords(c.addon)
        await reset_sentinels(self.redis, sentinels, sentinel_password, primary, others_seen=len(sentinels) - 1,
                              replicas=len(c.placed("data")) - 1)
        return StepResult(f"{c.old['container']} removed from {c.old['host']}; HAProxy and the Sentinels forgot it",
                          changes=(c.cluster,))

    async def finish(self, c: Change) -> StepResult:
        plan, entry = c.plan, self.entry_node(c)
        c.cluster.reserve_entry(host=entry["host"], address=entry["address"], port=entry["port"],
                                tls_port=c.addon.target["tls_port"])
        c.addon.mark_plan_changed(operation_id=c.operation.id)
        return StepResult(f"now {plan}, a cluster of {len(c.running('data'))} data nodes; the app was restarted "
                          f"onto the new URL, the entry {c.addon.address}:{c.addon.port}", changes=(c.addon, c.cluster))

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        if (finished := await self.finish_forward(operation, error)) is not None:
            return finished
        c = await self._change(operation)
        # The new nodes go only while S holds the data: were one elected (S silent a second), it would be.
        role = (await self.redis.replication(self.endpoint(c, c.old))).get("role")
        if role != "master":
            raise TransientError(f"{c.old['container']} is no longer the primary ({role}): the new nodes are kept")
        removed = await self.remove(c, [n for n in c.mine if n["state"] in ("placed", "running", "down")])
        if operation.step_succeeded("wait_sentinels"):  # start_proxies may have had S's certificate name the entry
            await self.certified_alone(c, c.old)
        self.secrets.forget(sentinel_secret(c.addon.name))
        if c.addon.operation_id == operation.id:
            c.addon.mark_plan_change_failed(operation_id=operation.id, reason=error)
        return StepResult(f"back on {c.old['container']} as it was; new nodes removed: {', '.join(removed) or 'none'}",
                          changes=(c.addon, c.cluster))

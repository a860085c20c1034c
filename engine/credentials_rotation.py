"""An addon's password replaced with no downtime (issue 15), as a saga. Resetting a password at once
breaks every connection of the app; here both passwords work until the app has restarted onto the new
one (a Redis ACL user holds several):

add_password    a new password is made and kept in the secret store beside the current one (a crash
                resumes with it; no event ever holds it); every data node's `default` user accepts it
                too, live and in its redis.conf (CONFIG REWRITE: a restart keeps it). A Business cluster's
                data nodes replicate with it (masterauth) and its Sentinels reach them with it (auth-pass).
publish         (Business: each HAProxy checks the nodes with it, reloaded.) The ID the next connection
                would get is noted on every data node, then the new password becomes the addon's: the
                app's environment (REDIS_URL...) and the engine's own connections use it from now on.
restart_app     the app restarts with its new environment.
remove_old      every data node accepts the new password alone, live and in its redis.conf: the old
                one is refused from now on (connections already open stay, until the next step).
disconnect_old  Redis does not record which password a connection gave: the connections of `default`
                opened before the publication (their ID is lower than the one noted) are closed. Not
                a replica's link to its primary (the servers' own: it re-authenticates with the new
                masterauth when it next connects), and a Sentinel's links one Sentinel at a time (it
                reconnects with the new auth-pass at once; all at once, the Sentinels could each lose
                the primary for longer than down-after and agree on a failover).

A failure before `publish` puts the old password back alone everywhere; from `publish` on, the new one
stands (the app may already use it) and the old one is left accepted until a rotation succeeds.
Every data node and Sentinel must answer: one that is down would keep the old password in its files.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from domain.addon import Addon
from domain.catalog import ComponentCatalog
from domain.cluster import Cluster
from domain.cluster_config import DOWN_AFTER_MS, MASTER_NAME
from domain.operation import Operation
from engine.addon_lookup import AddonLookup
from engine.app_restart import restart_app, restart_method_of
from engine.cluster_provisioning import sentinel_secret
from engine.cluster_tls import bind_entry, entry_answers_as_set
from engine.clusters import cluster_of, serving_node
from engine.credentials_ports import CredentialsAdmin, RotatingSecrets
from engine.data_node_settings import data_nodes, replicated
from engine.nodes import endpoint
from engine.operations import OperationStarter
from engine.ports import AppRestarter, EffectError, RedisAdmin, Runtime, TransientError
from engine.saga import StepResult
from engine.store import EventLog

log = structlog.get_logger("credentials")

ENTRY_WITHIN_S = 10.0  # HAProxy reloaded: its new process routes within a second; a loaded machine may take longer
# HAProxy checks each data node every 500 ms and marks it down after 2 failed checks (CHECK_TIMING, `fall 2`):
# one still checking with the removed password has marked every node down well within two intervals and
# a check's timeout (1 s), when the entry is asked again.
CHECKS_SEE_REMOVAL_S = 2 * 0.5 + 1.0
SENTINEL_RELINKS_WITHIN_S = 5.0  # a Sentinel whose auth-pass changed reaches the primary again (measured: 0.1 s)
SENTINEL_GAP_S = 2 * DOWN_AFTER_MS / 1000  # between two Sentinels' links closed: never two without the primary at once


class CredentialsRotations:
    """The command: `rotate-credentials` (engine.credentials.rotate)."""

    def __init__(self, lookup: AddonLookup, starter: OperationStarter):
        self.lookup, self.starter = lookup, starter

    async def rotate(self, app: str, ref: str) -> dict:
        current = await self.lookup.live(app, ref)
        operation = Operation(kind="rotate_credentials", addon=current.name, app=app)
        cluster = await cluster_of(self.lookup.events, current.name)
        down = [f"{n['role']} node {n['container']} on {n['host']}" for n in cluster.live_nodes
                if n["role"] in ("data", "sentinel") and n["state"] == "down"]
        current.start_credentials_rotation(operation.id, restart=await restart_method_of(self.lookup.events, app),
                                           down=down)
        await self.starter.start(operation, current)
        log.info("password rotation requested", addon=current.name, app=app, operation_id=str(operation.id))
        return {"addon": current.name, "operation_id": str(operation.id)}


class CredentialsRotation:
    kind = "rotate_credentials"

    def __init__(self, events: EventLog, runtime: Runtime, redis: RedisAdmin, admin: CredentialsAdmin,
                 secrets: RotatingSecrets, restarter: AppRestarter, components: ComponentCatalog | None = None):
        self.events, self.runtime, self.redis, self.admin = events, runtime, redis, admin
        self.secrets, self.restarter = secrets, restarter
        self.components = components or ComponentCatalog.load()  # a Business addon's HAProxy

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        return await getattr(self, step)(addon, await cluster_of(self.events, addon.name), operation)

    # -- the steps -------------------------------------------------------------------------

    async def add_password(self, addon: Addon, cluster: Cluster, operation: Operation) -> StepResult:
        new, current = self.secrets.pending_for(addon.name), self.secrets.password_for(addon.name)
        nodes = self._data_nodes(cluster)
        for node in nodes:
            await self.admin.add_password(endpoint(node, current), new)
        if not replicated(cluster):
            return StepResult(f"{nodes[0]['container']} accepts the new password beside the old one")
        for node in nodes:
            await self.admin.replicate_with(endpoint(node, new), new)
        sentinels = self._sentinels(addon, cluster)
        await self._sentinels_auth(sentinels, new)
        return StepResult(f"{len(nodes)} data nodes accept the new password beside the old one and replicate with "
                          f"it; {len(sentinels)} Sentinels reach them with it")

    async def publish(self, addon: Addon, cluster: Cluster, operation: Operation) -> StepResult:
        new = self.secrets.peek_pending(addon.name) or self.secrets.password_for(addon.name)  # published: the addon's
        if new != self.secrets.password_for(addon.name) and \
                (await restart_method_of(self.events, addon.app)).get("kind") in (None, "none"):
            # Taken away since the command was accepted: undone here, before the app could be cut off.
            raise EffectError(f"app {addon.app} no longer has a restart method: a rotation would cut it off")
        detail = ""
        if replicated(cluster):
            reloaded = await self._route_proxies(addon, cluster, operation, new)
            # Fresh connections through the entry, with the new password, before the app is given it: the
            # reloaded HAProxy route it (asked again, not reloaded again, while a reload has not taken yet).
            await self._entry_answers(addon, new)
            detail = f"; HAProxy checks with it ({', '.join(reloaded)} reloaded) and the entry answers with it"
        markers = {}
        for node in self._data_nodes(cluster):  # before the publication: no connection with the new URL is older
            markers[node["container"]] = await self.admin.marker(endpoint(node, new))
        self.secrets.publish_pending(addon.name)
        return StepResult(f"REDIS_URL and SCALINGO_REDIS_URL carry the new password{detail}",
                          outcome={"markers": markers})

    async def restart_app(self, addon: Addon, cluster: Cluster, operation: Operation) -> StepResult:
        return StepResult(await restart_app(self.events, self.restarter, addon, self.secrets.password_for(addon.name)))

    async def remove_old(self, addon: Addon, cluster: Cluster, operation: Operation) -> StepResult:
        new = self.secrets.password_for(addon.name)  # published
        nodes = self._data_nodes(cluster)
        for node in nodes:
            await self.admin.only_password(endpoint(node, new), new)
        detail = ""
        if replicated(cluster):  # an HAProxy still checking with the old password now marks every node down
            await asyncio.sleep(CHECKS_SEE_REMOVAL_S)
            try:
                await self._entry_answers(addon, new)
            except TransientError as error:
                raise EffectError(f"the entry {addon.address}:{addon.port} does not answer since the old password is "
                                  f"refused: an HAProxy still checks the data nodes with it ({error})") from None
            detail = "; the entry still answers with the new one"
        self.secrets.forget_pending(addon.name)
        return StepResult(f"the old password is refused by {', '.join(n['container'] for n in nodes)}{detail}")

    async def disconnect_old(self, addon: Addon, cluster: Cluster, operation: Operation) -> StepResult:
        new, markers = self.secrets.password_for(addon.name), operation.outcome("publish").get("markers", {})
        closed, restarted, sentinel_links = 0, [], defaultdict(list)
        for node in self._data_nodes(cluster):
            where, marker = endpoint(node, new), markers.get(node["container"])
            listed = await self.admin.clients(where)
            if marker is None or listed["run_id"] != marker["run_id"]:
                restarted.append(node["container"])  # every connection it has was opened after the publication
                continue
            older = [c for c in listed["clients"] if c["user"] == "default" and c["id"] < marker["next_id"]
                     and not {"S", "M"} & set(c["flags"])]
            closed += await self.admin.kill_clients(where, [c["id"] for c in older if not sentinel_link(c)])
            for c in older:
                if sentinel_link(c):
                    sentinel_links[sentinel_link(c)].append((where, c["id"]))
        for i, links in enumerate(sentinel_links.values()):
            if i:
                await asyncio.sleep(SENTINEL_GAP_S)
            for where, client in links:
                closed += await self.admin.kill_clients(where, [client])
        addon.mark_credentials_rotated(operation_id=operation.id)
        detail = f"{closed} connection{'' if closed == 1 else 's'} opened before the publication closed"
        if restarted:
            detail += f"; {', '.join(restarted)} restarted since (none of its connections is older)"
        return StepResult(detail, changes=(addon,))

    # -- compensation ------------------------------------------------------------------------

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        addon: Addon = await self.events.get(Addon.id_for(operation.addon))
        pending, current = self.secrets.peek_pending(addon.name), self.secrets.password_for(addon.name)
        if operation.past_point_of_no_return or pending == current:
            self.secrets.forget_pending(addon.name)
            addon.mark_credentials_rotation_failed(operation_id=operation.id, reason=error)
            return StepResult("the new password stands (the app may use it already); the old one may still be "
                              "accepted: rotate again to remove it", changes=(addon,))
        cluster = await cluster_of(self.events, addon.name)
        if replicated(cluster):  # everything that authenticates with the new password goes back to the old first
            if operation.step_succeeded("publish") or operation.failed_step == "publish":
                await self._route_proxies(addon, cluster, operation, current)
            await self._sentinels_auth(self._sentinels(addon, cluster), current)
            for node in self._data_nodes(cluster):
                await self.admin.replicate_with(endpoint(node, current), current)
        for node in self._data_nodes(cluster):
            await self.admin.only_password(endpoint(node, current), current)
        self.secrets.forget_pending(addon.name)
        addon.mark_credentials_rotation_failed(operation_id=operation.id, reason=error)
        return StepResult("the old password is the only one accepted again; the new one is forgotten", changes=(addon,))

    # -- where -------------------------------------------------------------------------------

    @staticmethod
    def _data_nodes(cluster: Cluster) -> list[dict]:
        return data_nodes(cluster) if replicated(cluster) else [serving_node(cluster)]

    def _sentinels(self, addon: Addon, cluster: Cluster) -> list:
        password = self.secrets.password_for(sentinel_secret(addon.name))  # the Sentinels' own: not rotated here
        return [endpoint(n, password) for n in cluster.live_nodes if n["role"] == "sentinel"]

    async def _sentinels_auth(self, sentinels: list, password: str) -> None:
        """Each Sentinel reaches the nodes with `password`, one at a time: SENTINEL SET auth-pass closes its
        links to them (Redis 7.0.15, measured: re-made within 0.1 s), and one whose last answer from the
        primary is nearly `down-after` old sees it down meanwhile; the next is set once the one before has
        its link back, so that no two could see it down together and agree on a failover."""
        for sentinel in sentinels:
            await self.admin.sentinel_auth(sentinel, MASTER_NAME, password)
            async for attempt in AsyncRetrying(retry=retry_if_exception_type(TransientError), wait=wait_fixed(0.05),
                                               stop=stop_after_delay(SENTINEL_RELINKS_WITHIN_S), reraise=True):
                with attempt:
                    if not await self.admin.sentinel_reaches(sentinel, MASTER_NAME):
                        raise TransientError(f"the Sentinel at {sentinel.address}:{sentinel.port} has not reached the "
                                             "primary again since its auth-pass changed")

    async def _entry_answers(self, addon: Addon, password: str) -> None:
        """Fresh connections through the entry with `password` (asked again for up to ENTRY_WITHIN_S)."""
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(TransientError),
                                           stop=stop_after_delay(ENTRY_WITHIN_S), wait=wait_fixed(0.2), reraise=True):
            with attempt:
                await entry_answers_as_set(self.redis, addon, password, bool(addon.settings.get("force_tls")))

    async def _route_proxies(self, addon: Addon, cluster: Cluster, operation: Operation, password: str) -> list[str]:
        """Each HAProxy's file checks the data nodes with `password`; those running reload it."""
        return await bind_entry(self.runtime, self.components, self.secrets, addon, cluster, operation, addon.settings,
                                password=password, every_proxy=True)


def sentinel_link(client: dict) -> str | None:
    """Which Sentinel opened this connection (it names its links `sentinel-<its ID>-cmd` / `-pubsub`), or None."""
    name = client.get("name") or ""
    if name.startswith("sentinel-") and name.endswith(("-cmd", "-pubsub")):
        return name.rsplit("-", 1)[0]
    return None


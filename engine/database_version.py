"""An addon's engine version and the upgrades available to it (reference, "Database Upgrade": the
dashboard's Database Version block shows the version and whether an upgrade is available), and the upgrade
a user asks for: never automatic, along the path of domain/upgrade_path.py. `addon` takes an addon ID or
`redis`, as for backups."""

from __future__ import annotations

import structlog

from domain.addon import Addon
from domain.addon_rules import check_running
from domain.catalog import EngineVersion, PlanCatalog, VersionCatalog
from domain.cluster import Cluster
from domain.errors import UnknownVersion, UpgradeNotAllowed
from domain.operation import Operation
from domain.upgrade_path import check_upgrade, rolling, upgrades
from engine.addon_lookup import AddonLookup
from engine.clusters import cluster_of, data_node, redundant_pair, serving_node
from engine.maintenance import OUTDATED, UNKNOWN, Builds, advice as maintenance_advice
from engine.operations import OperationStarter
from engine.placing import Placing
from engine.plan_requests import place_replacements
from engine.restore_requests import place_beside
from engine.upgrade import new_volume

log = structlog.get_logger("engine")


class DatabaseVersion:
    def __init__(self, lookup: AddonLookup, versions: VersionCatalog, plans: PlanCatalog, starter: OperationStarter,
                 placing: Placing, builds: Builds):
        self.lookup, self.versions, self.plans, self.starter, self.placing = lookup, versions, plans, starter, placing
        self.builds = builds

    async def upgrade(self, app: str, addon: str, version: str | None = None) -> dict:
        """Reference, "Database Upgrade": to `version`, or the next allowed step. A Starter addon's node is
        stopped and restarted on the new build at the same place (engine/upgrade.py); a Business addon's data
        nodes are replaced one at a time with no downtime (engine/cluster_upgrade.py)."""
        current = await self.lookup.live(app, addon)
        check_running(current, "be upgraded")  # busy: said so, before a Business addon's replica is looked for
        cluster = await cluster_of(self.lookup.events, current.name)
        installed, why_tls = self.versions.get(current.redis_version), tls_held(current, cluster)
        if version is None:
            steps = upgrades(installed, self.versions, bool(why_tls))
            if not steps:
                raise UpgradeNotAllowed(advice(installed, self.versions, why_tls, []), rule="no-upgrade-available")
            version = steps[0].version
        wanted = self.versions.get(version)
        if why_tls and not wanted.tls and wanted.version != installed.version:
            raise UpgradeNotAllowed(f"{why_tls}, and {wanted.engine} {wanted.version} is built without TLS",
                                    rule="upgrade-keeps-tls")
        step = check_upgrade(installed, wanted, self.versions, bool(why_tls))
        target = self.versions.get(step.version)
        if self.plans.get(current.plan).is_cluster:
            operation = await self._replace_data_nodes(current, cluster, target, rolling(installed, target))
        else:
            operation = Operation(kind="upgrade", addon=current.name, app=app, subject=target.version)
            node = f"redis-addons-{current.name}-{operation.id.hex[:8]}"
            volume = new_volume(current, self.plans.get(current.plan), serving_node(cluster), node)
            current.request_upgrade(target.version, target.tls, node, volume, operation.id)
            cluster.place_node(data_node(current, current.target, operation.id))
            await self.starter.start(operation, current, cluster)
        log.info("upgrade requested", addon=current.name, app=app, version=target.version, operation_id=str(operation.id))
        return {"addon": current.name, "operation_id": str(operation.id), "from": installed.version,
                "to": target.version, "engine": target.engine, "kind": step.kind, "note": step.note}

    async def _replace_data_nodes(self, current: Addon, cluster: Cluster, target: EngineVersion,
                                  rolls: bool) -> Operation:
        """A Business addon's data nodes replaced by two nodes of the new build (the hosts need room for one
        more node at a time): one at a time as a plan change replaces them, when the new build can replicate
        the old one (engine/cluster_upgrade.py); else beside the old pair, loaded from a safety backup taken
        once writes stop (engine/cluster_upgrade_stopped.py)."""
        primary, replica = redundant_pair(cluster, current.name, "it can be upgraded")
        async with self.placing.held() as placer:
            if rolls:
                operation = Operation(kind="upgrade_cluster", addon=current.name, app=current.app, subject=primary["id"])
                new = place_replacements(placer, current, cluster, (primary, replica), operation, current.memory_mib,
                                         version=target.version)
            else:
                operation = Operation(kind="upgrade_cluster_stopped", addon=current.name, app=current.app,
                                      subject=target.version)
                new = place_beside(placer, current, cluster, (primary, replica), operation, target.version)
            current.request_upgrade(target.version, target.tls, new[0]["container"], new[0]["volume"], operation.id,
                                    host=new[0]["host"])
            position = await self.starter.record(operation, current, cluster)
        await self.starter.caught_up(position)
        return operation

    async def show(self, app: str, addon: str) -> dict:
        current = await self.lookup.live(app, addon)
        cluster = await cluster_of(self.lookup.events, current.name)
        # A Business addon's data nodes each record the build they run: during an upgrade they differ. A node
        # placed by an operation is shown once it is in sync (the cluster's then), not while it joins.
        # Each says whether it runs the current build of its version (engine/maintenance.py).
        builds = {b["id"]: b["build"] for b in await self.builds.of(cluster)}
        nodes = [{"id": n["id"], "version": n["version"], "is_primary": n["id"] == cluster.primary,
                  "build": builds.get(n["id"], UNKNOWN)}
                 for n in cluster.live_nodes if n["role"] == "data" and n["state"] != "placed"]
        block = version_block(current.redis_version, self.versions, tls_held(current, cluster))
        outdated = any(n["build"] == OUTDATED for n in nodes)
        return {"addon": current.name, **block, "force_tls": bool(current.settings.get("force_tls")), "nodes": nodes,
                "build_outdated": outdated, "maintenance": maintenance_advice(current.redis_version) if outdated else None}


def tls_held(addon: Addon, cluster: Cluster) -> str:
    """Why the addon may only move to a build with TLS ("" when it may move to any): it forces TLS, or its
    cluster's nodes talk TLS to each other (a new node must reach the others)."""
    if addon.settings.get("force_tls"):
        return "the addon forces TLS"
    if any(n.get("tls_port") is not None for n in cluster.live_nodes if n["role"] == "data") and len(
            [n for n in cluster.live_nodes if n["role"] == "data"]) > 1:
        return "the cluster's nodes talk TLS to each other"
    return ""


def version_block(version: str, catalogue: VersionCatalog, why_tls: str = "") -> dict:
    """What runs, and the upgrades `upgrade_path` allows, the next one first; when none is, why. `why_tls`:
    why the addon may only move to a build with TLS (tls_held), "" when it may move to any."""
    try:
        build = catalogue.get(version)
    except UnknownVersion:  # the catalogue file was edited since: nothing can be said of its upgrades
        return {"engine": None, "version": version, "tls": None, "retired": None,
                "upgrades": [], "advice": f"{version} is no longer in the version catalogue: no upgrade can be offered"}
    steps = upgrades(build, catalogue, bool(why_tls))
    return {
        "engine": build.engine, "version": build.version, "tls": build.tls, "retired": build.retired,
        "upgrades": [{"version": s.version, "engine": catalogue.get(s.version).engine, "kind": s.kind,
                      "tls": catalogue.get(s.version).tls, "note": s.note} for s in steps],
        "advice": advice(build, catalogue, why_tls, [s.version for s in steps]),
    }


def advice(build: EngineVersion, catalogue: VersionCatalog, why_tls: str, offered: list[str]) -> str | None:
    """The line the user reads first: which upgrade a retired build must take, or why none is offered."""
    shown = f"{build.engine} {build.version}"
    if offered:
        return f"{shown} is retired: upgrade to {' or '.join(offered)}" if build.retired else None
    held_back = [s.version for s in upgrades(build, catalogue, force_tls=False)]
    if held_back:
        why = f"{why_tls}, and the upgrade otherwise available ({' or '.join(held_back)}) is built without TLS"
    else:
        why = f"{shown} is the latest on its upgrade path"
    return f"{shown} is retired and no upgrade is available: {why}" if build.retired else f"no upgrade available: {why}"

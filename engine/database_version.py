"""An addon's engine version and the upgrades available to it (reference, "Database Upgrade": the
dashboard's Database Version block shows the version and whether an upgrade is available), and the upgrade
a user asks for: never automatic, along the path of domain/upgrade_path.py. `addon` takes an addon ID or
`redis`, as for backups."""

from __future__ import annotations

import structlog

from domain.catalog import EngineVersion, PlanCatalog, VersionCatalog
from domain.errors import UnknownVersion, UpgradeNotAllowed
from domain.operation import Operation
from domain.upgrade_path import check_upgrade, upgrades
from engine.addon_lookup import AddonLookup
from engine.clusters import cluster_of, data_node
from engine.operations import OperationStarter

log = structlog.get_logger("engine")


class DatabaseVersion:
    def __init__(self, lookup: AddonLookup, versions: VersionCatalog, plans: PlanCatalog, starter: OperationStarter):
        self.lookup, self.versions, self.plans, self.starter = lookup, versions, plans, starter

    async def upgrade(self, app: str, addon: str, version: str | None = None) -> dict:
        """Reference, "Database Upgrade": to `version`, or the next allowed step. A Starter addon's node is
        stopped and restarted on the new build at the same place (engine/upgrade.py)."""
        current = await self.lookup.live(app, addon)
        if self.plans.get(current.plan).is_cluster:
            raise UpgradeNotAllowed(f"addon {current.name} is a Business addon: its upgrade (a minor version with no "
                                    "downtime) is not available yet", rule="upgrade-not-available-yet")
        installed, force_tls = self.versions.get(current.redis_version), bool(current.settings.get("force_tls"))
        if version is None:
            steps = upgrades(installed, self.versions, force_tls)
            if not steps:
                raise UpgradeNotAllowed(advice(installed, self.versions, force_tls, []), rule="no-upgrade-available")
            version = steps[0].version
        step = check_upgrade(installed, self.versions.get(version), self.versions, force_tls)
        target = self.versions.get(step.version)
        operation = Operation(kind="upgrade", addon=current.name, app=app, subject=target.version)
        node = f"redis-addons-{current.name}-{operation.id.hex[:8]}"
        current.request_upgrade(target.version, target.tls, node, f"{node}-data", operation.id)
        cluster = await cluster_of(self.lookup.events, current.name)
        cluster.place_node(data_node(current, current.target, operation.id))
        await self.starter.start(operation, current, cluster)
        log.info("upgrade requested", addon=current.name, app=app, version=target.version, operation_id=str(operation.id))
        return {"addon": current.name, "operation_id": str(operation.id), "from": installed.version,
                "to": target.version, "engine": target.engine, "kind": step.kind, "note": step.note}

    async def show(self, app: str, addon: str) -> dict:
        current = await self.lookup.live(app, addon)
        cluster = await cluster_of(self.lookup.events, current.name)
        # A Business addon's data nodes each record the build they run: during an upgrade they differ.
        nodes = [{"id": n["id"], "version": n["version"], "is_primary": n["id"] == cluster.primary}
                 for n in cluster.live_nodes if n["role"] == "data"]
        return {"addon": current.name, **version_block(current.redis_version, self.versions,
                                                       bool(current.settings.get("force_tls"))), "nodes": nodes}


def version_block(version: str, catalogue: VersionCatalog, force_tls: bool) -> dict:
    """What runs, and the upgrades `upgrade_path` allows, the next one first; when none is, why."""
    try:
        build = catalogue.get(version)
    except UnknownVersion:  # the catalogue file was edited since: nothing can be said of its upgrades
        return {"engine": None, "version": version, "tls": None, "retired": None, "force_tls": force_tls,
                "upgrades": [], "advice": f"{version} is no longer in the version catalogue: no upgrade can be offered"}
    steps = upgrades(build, catalogue, force_tls)
    return {
        "engine": build.engine, "version": build.version, "tls": build.tls, "retired": build.retired,
        "force_tls": force_tls,
        "upgrades": [{"version": s.version, "engine": catalogue.get(s.version).engine, "kind": s.kind,
                      "tls": catalogue.get(s.version).tls, "note": s.note} for s in steps],
        "advice": advice(build, catalogue, force_tls, [s.version for s in steps]),
    }


def advice(build: EngineVersion, catalogue: VersionCatalog, force_tls: bool, offered: list[str]) -> str | None:
    """The line the user reads first: which upgrade a retired build must take, or why none is offered."""
    shown = f"{build.engine} {build.version}"
    if offered:
        return f"{shown} is retired: upgrade to {' or '.join(offered)}" if build.retired else None
    held_back = [s.version for s in upgrades(build, catalogue, force_tls=False)]
    if held_back:
        why = (f"the addon forces TLS, and the upgrade otherwise available ({' or '.join(held_back)}) "
               "is built without TLS")
    else:
        why = f"{shown} is the latest on its upgrade path"
    return f"{shown} is retired and no upgrade is available: {why}" if build.retired else f"no upgrade available: {why}"

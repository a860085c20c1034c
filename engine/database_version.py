"""An addon's engine version and the upgrades available to it (reference, "Database Upgrade": the
dashboard's Database Version block shows the version and whether an upgrade is available). Read only:
taking an upgrade is a later operation. `addon` takes an addon ID or `redis`, as for backups."""

from __future__ import annotations

from domain.catalog import EngineVersion, VersionCatalog
from domain.errors import UnknownVersion
from domain.upgrade_path import upgrades
from engine.addon_lookup import AddonLookup
from engine.clusters import cluster_of


class DatabaseVersion:
    def __init__(self, lookup: AddonLookup, versions: VersionCatalog):
        self.lookup, self.versions = lookup, versions

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

"""The plan catalog and the engine version catalog, read from editable data files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from domain.errors import BackupTooNew, PlanNotAvailable, UnknownPlan, UnknownVersion

CATALOGS = Path(__file__).parent / "catalogs"


@dataclass(frozen=True)
class Plan:
    id: str
    tier: str  # sandbox, starter or business
    memory_mib: int
    data_nodes: int
    sentinels: int
    haproxy: int
    backups: bool

    @property
    def is_cluster(self) -> bool:
        return self.data_nodes > 1


@dataclass(frozen=True)
class EngineVersion:
    version: str
    engine: str  # redis or valkey
    image: str
    tls: bool
    rdb_format: int
    source: str


class PlanCatalog:
    def __init__(self, plans: list[Plan], provider: str = "redis"):
        self.provider = provider
        self._plans = {p.id: p for p in plans}

    @classmethod
    def load(cls, path: Path = CATALOGS / "plans.json") -> PlanCatalog:
        data = json.loads(path.read_text())
        return cls([Plan(**p) for p in data["plans"]], data.get("provider", "redis"))

    def __iter__(self):
        return iter(self._plans.values())

    def get(self, plan_id: str) -> Plan:
        try:
            return self._plans[plan_id]
        except KeyError:
            valid = ", ".join(self._plans)
            raise UnknownPlan(f"unknown plan '{plan_id}'; valid plans are: {valid}") from None

    def provisionable(self, plan_id: str) -> Plan:
        """A plan an addon can be created on today: clusters are not built yet."""
        plan = self.get(plan_id)
        if plan.is_cluster:
            single = ", ".join(p.id for p in self if not p.is_cluster)
            raise PlanNotAvailable(
                f"plan '{plan_id}' needs a Sentinel cluster, which this installation "
                f"does not provide yet; single-node plans are: {single}"
            )
        return plan


class VersionCatalog:
    def __init__(self, versions: list[EngineVersion], default: str):
        self._versions = {v.version: v for v in versions}
        self.default = self.get(default)

    @classmethod
    def load(cls, path: Path = CATALOGS / "versions.json") -> VersionCatalog:
        data = json.loads(path.read_text())
        return cls([EngineVersion(**v) for v in data["versions"]], data["default"])

    def __iter__(self):
        return iter(self._versions.values())

    def get(self, version: str) -> EngineVersion:
        try:
            return self._versions[version]
        except KeyError:
            valid = ", ".join(self._versions)
            raise UnknownVersion(f"unknown engine version '{version}'; known versions are: {valid}") from None

    def check_can_load(self, data_from: str, into: str) -> None:
        """Data saved by `data_from` loads into `into` only if `into` reads that RDB format or a newer one."""
        source, target = self.get(data_from), self.get(into)
        if source.rdb_format > target.rdb_format:
            raise BackupTooNew(
                f"this backup was taken with {source.engine} {source.version} (RDB format {source.rdb_format}), "
                f"which {target.engine} {target.version} cannot read: restore it into the same or a newer version"
            )

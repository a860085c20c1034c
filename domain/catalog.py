"""The plan catalog and the engine version catalog, read from editable data files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from domain.errors import BackupTooNew, UnknownPlan, UnknownVersion, VersionRetired

CATALOGS = Path(__file__).parent / "catalogs"
# The last RDB format Redis and Valkey both read (Redis 7.2's, Valkey 8's); Redis 8 writes 12, Valkey 9 writes 80.
SHARED_RDB_FORMAT = 11


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
    retired: bool = False  # end of life or a known vulnerability with no fix: never a new addon's, nor an upgrade's
    # "<engine> <major>" of the versions a replica of this one is proven to follow (versions.json names the test
    # that proved each): a Business cluster takes such a major step with no downtime (domain/upgrade_path.py).
    rolling_from: tuple[str, ...] = ()


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
        """A plan an addon can be created on: every plan listed (Business plans as clusters)."""
        return self.get(plan_id)


class VersionCatalog:
    def __init__(self, versions: list[EngineVersion], default: str):
        self._versions = {v.version: v for v in versions}
        self.default = self.get(default)

    @classmethod
    def load(cls, path: Path = CATALOGS / "versions.json") -> VersionCatalog:
        data = json.loads(path.read_text())
        return cls([EngineVersion(**{**v, "rolling_from": tuple(v.get("rolling_from", {}))}) for v in data["versions"]],
                   data["default"])

    def __iter__(self):
        return iter(self._versions.values())

    def get(self, version: str) -> EngineVersion:
        try:
            return self._versions[version]
        except KeyError:
            valid = ", ".join(self._versions)
            raise UnknownVersion(f"unknown engine version '{version}'; known versions are: {valid}") from None

    def provisionable(self, version: str | None) -> EngineVersion:
        """The version a new addon runs: the one asked (the default when none), never a retired build."""
        chosen = self.get(version) if version else self.default
        if chosen.retired:
            offered = ", ".join(v.version for v in self if not v.retired)
            raise VersionRetired(f"{chosen.engine} {chosen.version} is retired (end of life, or a known vulnerability "
                                 f"with no fix): a new addon cannot run it; the versions offered are: {offered}")
        return chosen

    def check_can_load(self, data_from: str, into: str) -> None:
        """Data saved by `data_from` loads into `into` only if `into` reads that RDB format or a newer one; past
        the last format both engines share, only into the same engine (Valkey refuses Redis 8's RDB 12)."""
        source, target = self.get(data_from), self.get(into)
        if source.rdb_format > target.rdb_format:
            raise BackupTooNew(
                f"this backup was taken with {source.engine} {source.version} (RDB format {source.rdb_format}), "
                f"which {target.engine} {target.version} cannot read: restore it into the same or a newer version"
            )
        if source.rdb_format > SHARED_RDB_FORMAT and source.engine != target.engine:
            raise BackupTooNew(
                f"this backup was taken with {source.engine} {source.version} (RDB format {source.rdb_format}), "
                f"which no {target.engine} reads: restore it into {source.engine} {source.version} or a newer "
                f"{source.engine}"
            )


# --- Cluster components (Sentinel, HAProxy): images built like the engine images, not versions a user picks ---


@dataclass(frozen=True)
class Component:
    """A cluster component's image (scripts/build-images.py builds it from `package`). Its process runs as
    `user` (numeric "uid:gid", in the image's /etc/passwd) with a read-only root filesystem: its
    configuration is `config_dir`/`config_file` on a volume mounted at `config_dir`, which the image gives
    to `user` when the component rewrites its own file (Sentinel) and leaves to root otherwise (HAProxy)."""

    role: str  # sentinel or haproxy
    image: str
    version: str  # upstream version the image's binary reports
    package: str  # the Debian package it is built from
    user: str
    config_dir: str
    config_file: str
    config_writable: bool

    @property
    def uid(self) -> int:
        return int(self.user.split(":")[0])

    @property
    def gid(self) -> int:
        return int(self.user.split(":")[1])

    @property
    def config_path(self) -> str:
        return f"{self.config_dir}/{self.config_file}"


class UnknownComponent(LookupError):
    pass


class ComponentCatalog:
    def __init__(self, components: list[Component]):
        self._components = {c.role: c for c in components}
        if len(self._components) != len(components):
            raise ValueError("components.json: a role is listed twice")
        for c in components:
            uid, _, gid = c.user.partition(":")
            if not (uid.isdigit() and gid.isdigit()) or uid == "0":
                raise ValueError(f"components.json: {c.role} must run as a numeric non-root uid:gid, not {c.user!r}")
            if not c.config_dir.startswith("/") or "/" in c.config_file:
                raise ValueError(f"components.json: {c.role}'s config_dir must be absolute and config_file a name")

    @classmethod
    def load(cls, path: Path = CATALOGS / "components.json") -> ComponentCatalog:
        data = json.loads(path.read_text())
        return cls([Component(**c) for c in data["components"]])

    def __iter__(self):
        return iter(self._components.values())

    def get(self, role: str) -> Component:
        try:
            return self._components[role]
        except KeyError:
            raise UnknownComponent(f"unknown cluster component '{role}'; components are: "
                                   f"{', '.join(self._components)}") from None

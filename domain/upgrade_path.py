"""Which engine versions an addon may be upgraded to (reference, "Database Upgrade"): a new version is
the user's choice, never automatic, and "your database needs to be upgraded to the latest minor version
before having access to the next major version" (2.3.x with a 2.5.x available goes to 2.5.x before 3.1.x).

Valkey forked from Redis 7.2 and counts its majors on from there, so one line of majors runs through
both engines: Redis 6, Redis 7, then Valkey 8, Valkey 9 — Redis 7 -> Valkey 8 is the major step for Redis
users, as managed services take it. Redis 8 is a branch beside Valkey 8: it writes RDB 12, which Valkey
cannot read, so an addon moved onto Redis 8 is never offered Valkey again; Valkey is never moved to Redis.
A step never goes down (an older server cannot read a newer RDB format), never onto a retired build, and
never takes an addon that forces TLS onto a build without TLS.

A Business cluster takes a step with no downtime when a replica of the new build can follow a primary of the
old one (a replica may be newer than its primary, never older): always within a major, and across majors
where the catalogue records it proven (`rolling_from`); other major steps stop writes, as the reference does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from domain.catalog import EngineVersion
from domain.errors import UpgradeNotAllowed

REDIS, VALKEY = "redis", "valkey"
REDIS_BRANCH_FROM = 8  # Redis from 8 on writes RDB 12, which no Valkey reads


@dataclass(frozen=True)
class Step:
    version: str
    kind: str  # patch, minor or major
    note: str = ""  # what the user must know before taking it


def numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def major(version: EngineVersion) -> int:
    return numbers(version.version)[0]


def may_become(current: EngineVersion, target: EngineVersion) -> bool:
    """Engines a step may move to: Redis to Redis or (up to its branch) Valkey; Valkey to Valkey."""
    if current.engine == VALKEY or (current.engine == REDIS and major(current) >= REDIS_BRANCH_FROM):
        return target.engine == current.engine
    return True


def upgrades(current: EngineVersion, catalogue: Iterable[EngineVersion], force_tls: bool = False) -> list[Step]:
    """The versions `current` may be upgraded to, the next allowed step first: the latest of its own major
    when it is not on it; else the latest of the next major, one per engine that may follow. A build with TLS
    is never left for one without unknowingly: such a step says so, and where the latest build lacks TLS the
    latest one with TLS is offered beside it."""
    offered = [v for v in catalogue if not v.retired and may_become(current, v) and newer(v, current)
               and (v.tls or not force_tls)]
    same_major = [v for v in offered if v.engine == current.engine and major(v) == major(current)]
    if same_major:
        return [Step(v.version, "minor" if numbers(v.version)[1] != numbers(current.version)[1] else "patch",
                     drops_tls(current, v)) for v in latest_keeping_tls(current, same_major)]
    later = [v for v in offered if major(v) > major(current)]
    if not later:
        return []
    next_major = min(major(v) for v in later)
    steps = []
    for engine in (VALKEY, REDIS) if current.engine == REDIS else (current.engine,):
        candidates = [v for v in later if v.engine == engine and major(v) == next_major]
        steps += [Step(v.version, "major", " ".join(filter(None, (closes_valkey(current, v), drops_tls(current, v)))))
                  for v in latest_keeping_tls(current, candidates)]
    return steps


def latest_keeping_tls(current: EngineVersion, candidates: list[EngineVersion]) -> list[EngineVersion]:
    """The latest of `candidates`; and, when it is built without TLS and `current` with, the latest with TLS."""
    if not candidates:
        return []
    latest = max(candidates, key=lambda v: numbers(v.version))
    with_tls = [v for v in candidates if v.tls]
    if current.tls and not latest.tls and with_tls:
        return [latest, max(with_tls, key=lambda v: numbers(v.version))]
    return [latest]


def drops_tls(current: EngineVersion, target: EngineVersion) -> str:
    if current.tls and not target.tls:
        return (f"{target.engine.capitalize()} {target.version} is built without TLS: the addon stops serving TLS "
                "and its TLS URL goes away")
    return ""


def newer(target: EngineVersion, current: EngineVersion) -> bool:
    """Later on the line of majors, and able to read what `current` wrote."""
    if target.rdb_format < current.rdb_format:
        return False
    if target.engine == current.engine:
        return numbers(target.version) > numbers(current.version)
    return major(target) > major(current)


def closes_valkey(current: EngineVersion, target: EngineVersion) -> str:
    if current.engine == REDIS and target.engine == REDIS and major(target) >= REDIS_BRANCH_FROM:
        return (f"Redis {target.version} writes RDB format {target.rdb_format}, which Valkey cannot read: "
                "once on it, the addon is never offered a Valkey version")
    return ""


def check_upgrade(current: EngineVersion, target: EngineVersion, catalogue: Iterable[EngineVersion],
                  force_tls: bool = False) -> Step:
    """The step to `target`, or why it is not allowed, in the reference's words."""
    catalogue = list(catalogue)
    allowed = upgrades(current, catalogue, force_tls)
    step = next((s for s in allowed if s.version == target.version), None)
    if step is not None:
        return step
    shown = f"{current.engine} {current.version} -> {target.engine} {target.version}"
    if target.version == current.version:
        raise UpgradeNotAllowed(f"the addon already runs {target.engine} {target.version}", rule="same-version")
    if target.retired:
        raise UpgradeNotAllowed(f"{shown}: {target.engine} {target.version} is retired; "
                                f"{offer(allowed)}", rule="version-retired")
    if force_tls and not target.tls:
        raise UpgradeNotAllowed(f"{shown}: the addon forces TLS and {target.engine} {target.version} is built "
                                f"without TLS; {offer(allowed)}", rule="upgrade-keeps-tls")
    if not may_become(current, target):
        raise UpgradeNotAllowed(f"{shown}: {current.engine} {current.version} is not moved to {target.engine}; "
                                f"{offer(allowed)}", rule="upgrade-within-engine")
    if not newer(target, current):
        raise UpgradeNotAllowed(f"{shown} is a downgrade: an older server cannot read the data of a newer one",
                                rule="no-downgrade")
    if target.engine == current.engine and major(target) == major(current):
        raise UpgradeNotAllowed(f"{shown}: an upgrade within a major version goes to its latest build; "
                                f"{offer(allowed)}", rule="upgrade-to-latest-of-major")
    steps_to = [v for s in allowed for v in catalogue if v.version == s.version]
    if any(v.engine == target.engine and major(v) == major(target) for v in steps_to):
        raise UpgradeNotAllowed(f"{shown}: an upgrade to the next major version goes to its latest build; "
                                f"{offer(allowed)}", rule="upgrade-to-latest-of-major")
    raise UpgradeNotAllowed(f"{shown}: your database needs to be upgraded to the latest minor version before "
                            f"having access to the next major version; {offer(allowed)}", rule="upgrade-step-by-step")


def offer(allowed: list[Step]) -> str:
    if not allowed:
        return "no upgrade is available to it"
    return "the upgrade available: " + " or ".join(s.version for s in allowed)


def rolling(current: EngineVersion, target: EngineVersion) -> bool:
    """Whether a Business cluster takes the step from `current` to `target` with no downtime: its new nodes
    replicate the old primary, then the primary switches (engine/cluster_upgrade.py)."""
    if target.engine == current.engine and major(target) == major(current):
        return True
    return f"{current.engine} {major(current)}" in target.rolling_from

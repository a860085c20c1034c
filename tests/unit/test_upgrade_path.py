"""The upgrade path as a policy (reference, "Database Upgrade"): from a version, the versions allowed next,
and each refusal in the rule's words. Table-driven, over made-up catalogues (the reference's own example,
2.3 / 2.5 / 3.1, is one) and the catalogue this project ships."""

from __future__ import annotations

import pytest

from domain.catalog import EngineVersion, VersionCatalog
from domain.errors import UpgradeNotAllowed, VersionRetired
from domain.upgrade_path import Step, check_upgrade, upgrades


def v(version: str, engine: str = "redis", rdb: int = 10, tls: bool = True, retired: bool = False) -> EngineVersion:
    return EngineVersion(version, engine, f"img:{version}", tls, rdb, "test", retired)


REFERENCE = [v("2.3.4", rdb=6), v("2.5.9", rdb=6), v("3.1.2", rdb=7)]
LINE = [v("6.2.14", rdb=9), v("7.0.15", rdb=10), v("7.2.4", rdb=11),
        v("8.0.2", "valkey", rdb=11), v("8.1.1", "valkey", rdb=11), v("9.0.0", "valkey", rdb=80),
        v("8.0.3", "redis", rdb=12)]
SHIPPED = list(VersionCatalog.load())


def named(catalogue, version: str) -> EngineVersion:
    return next(x for x in catalogue if x.version == version)


@pytest.mark.parametrize("catalogue, current, allowed", [
    (REFERENCE, "2.3.4", ["2.5.9"]),  # the reference's example: the latest minor first...
    (REFERENCE, "2.5.9", ["3.1.2"]),  # ...then the next major
    (REFERENCE, "3.1.2", []),
    (LINE, "6.2.14", ["7.2.4"]),  # the next major's latest build
    (LINE, "7.0.15", ["7.2.4"]),
    (LINE, "7.2.4", ["8.1.1", "8.0.3"]),  # Redis 7 users: Valkey 8, or the Redis 8 branch
    (LINE, "8.0.2", ["8.1.1"]),  # a Valkey addon never goes to Redis
    (LINE, "8.1.1", ["9.0.0"]),
    (LINE, "8.0.3", []),  # on Redis 8, no Valkey is offered: it cannot read RDB 12
    (SHIPPED, "6.2.7", ["6.2.14"]),
    (SHIPPED, "6.2.14", ["7.0.15"]),
    # Valkey 8's latest (a wheel without TLS, saying so) or its latest with TLS, or the Redis 8 branch
    (SHIPPED, "7.0.15", ["8.1.8", "8.1.1", "8.0.2"]),
    (SHIPPED, "8.0.1", ["8.1.8", "8.1.1"]),  # retired (no update in bookworm-backports): told to take 8.1
    (SHIPPED, "8.1.1", ["8.1.8"]),  # Debian's 8.1 is a lower patch than the wheel's: the latest of its major
    (SHIPPED, "8.0.2", []),  # the Redis 8 branch: no Valkey, and no later Redis
    (SHIPPED, "8.1.8", ["9.1.2"]),
    (SHIPPED, "9.0.0", ["9.1.2"]),
    (SHIPPED, "9.1.2", []),
])
def test_the_versions_allowed_next(catalogue, current, allowed):
    assert [s.version for s in upgrades(named(catalogue, current), catalogue)] == allowed


def test_the_steps_say_their_kind_and_the_redis_8_branch_says_it_closes_valkey():
    steps = upgrades(named(LINE, "7.2.4"), LINE)
    assert steps[0] == Step("8.1.1", "major")
    assert steps[1].kind == "major" and "Valkey cannot read" in steps[1].note and "never offered a Valkey" in steps[1].note
    assert upgrades(named(LINE, "7.0.15"), LINE) == [Step("7.2.4", "minor")]
    assert upgrades(named(SHIPPED, "6.2.7"), SHIPPED) == [Step("6.2.14", "patch")]


def test_a_retired_build_is_never_offered_and_an_addon_on_one_is_told_its_upgrade():
    catalogue = [v("7.0.11", retired=True), v("7.0.15"), v("7.2.4", retired=True), v("8.1.1", "valkey", rdb=11)]
    assert [s.version for s in upgrades(catalogue[0], catalogue)] == ["7.0.15"]
    assert [s.version for s in upgrades(catalogue[1], catalogue)] == ["8.1.1"]  # 7.2.4 retired: the next major
    with pytest.raises(UpgradeNotAllowed) as refused:
        check_upgrade(catalogue[1], catalogue[2], catalogue)
    assert refused.value.rule == "version-retired" and "8.1.1" in str(refused.value)


@pytest.mark.parametrize("current, allowed", [
    ("7.0.15", ["8.1.1", "8.0.2"]),  # Debian's Valkey 8.1 (TLS) rather than the wheel, or the Redis 8 branch
    ("8.0.1", ["8.1.1"]),
    ("8.1.1", []),  # 8.1.8 and Valkey 9 are built without TLS
    ("8.0.2", []),
])
def test_an_addon_forcing_tls_takes_the_shipped_path_over_builds_with_tls_only(current, allowed):
    assert [s.version for s in upgrades(named(SHIPPED, current), SHIPPED, force_tls=True)] == allowed


def test_an_addon_forcing_tls_is_never_moved_onto_a_build_without_tls():
    with pytest.raises(UpgradeNotAllowed) as refused:
        check_upgrade(named(SHIPPED, "7.0.15"), named(SHIPPED, "8.1.8"), SHIPPED, force_tls=True)
    assert refused.value.rule == "upgrade-keeps-tls"
    assert "forces TLS" in str(refused.value) and "without TLS" in str(refused.value)
    assert str(refused.value).endswith("the upgrade available: 8.1.1 or 8.0.2")


def test_a_build_with_tls_is_left_for_one_without_only_knowingly():
    """A TLS addon's next step onto a build without TLS says so (the CLI asks before taking it), and the latest
    build with TLS of the same major is offered beside it."""
    steps = upgrades(named(SHIPPED, "7.0.15"), SHIPPED)
    assert [(s.version, "without TLS" in s.note) for s in steps] == [("8.1.8", True), ("8.1.1", False), ("8.0.2", False)]
    assert [s.note for s in upgrades(named(SHIPPED, "6.2.14"), SHIPPED)] == [""]  # no TLS to lose


def test_the_shipped_redis_8_step_says_it_closes_valkey_and_the_valkey_step_says_nothing():
    valkey, redis_8 = upgrades(named(SHIPPED, "7.0.15"), SHIPPED, force_tls=True)
    assert valkey == Step("8.1.1", "major")
    assert redis_8 == Step("8.0.2", "major", "Redis 8.0.2 writes RDB format 12, which Valkey cannot read: once on it, "
                                             "the addon is never offered a Valkey version")
    without_tls = "is built without TLS: the addon stops serving TLS and its TLS URL goes away"
    assert upgrades(named(SHIPPED, "8.1.1"), SHIPPED) == [Step("8.1.8", "patch", f"Valkey 8.1.8 {without_tls}")]
    assert upgrades(named(SHIPPED, "8.0.1"), SHIPPED) == [Step("8.1.8", "minor", f"Valkey 8.1.8 {without_tls}"),
                                                          Step("8.1.1", "minor")]


@pytest.mark.parametrize("catalogue, current, target, rule, words", [
    (REFERENCE, "2.3.4", "3.1.2", "upgrade-step-by-step",
     "your database needs to be upgraded to the latest minor version before having access to the next major version; "
     "the upgrade available: 2.5.9"),
    (REFERENCE, "2.5.9", "2.3.4", "no-downgrade", "is a downgrade"),
    (LINE, "8.1.1", "8.0.2", "no-downgrade", "an older server cannot read the data of a newer one"),
    (LINE, "9.0.0", "8.0.3", "upgrade-within-engine", "valkey 9.0.0 is not moved to redis"),
    (LINE, "8.0.3", "9.0.0", "upgrade-within-engine", "redis 8.0.3 is not moved to valkey"),
    (LINE, "6.2.14", "8.1.1", "upgrade-step-by-step", "the upgrade available: 7.2.4"),
    (LINE, "7.2.4", "7.2.4", "same-version", "already runs redis 7.2.4"),
    (SHIPPED, "8.0.1", "8.0.2", "upgrade-within-engine", "valkey 8.0.1 is not moved to redis"),
    (SHIPPED, "7.0.15", "8.0.1", "version-retired", "valkey 8.0.1 is retired"),
    (SHIPPED, "8.0.2", "8.1.8", "upgrade-within-engine", "redis 8.0.2 is not moved to valkey"),
    (SHIPPED, "8.1.1", "8.0.2", "upgrade-within-engine", "valkey 8.1.1 is not moved to redis"),
    (SHIPPED, "6.2.14", "8.0.2", "upgrade-step-by-step", "the upgrade available: 7.0.15"),
    ([v("7.0.11"), v("7.0.12"), v("7.0.15")], "7.0.11", "7.0.12", "upgrade-to-latest-of-major", "7.0.15"),
])
def test_what_is_refused_is_refused_in_the_rules_words(catalogue, current, target, rule, words):
    with pytest.raises(UpgradeNotAllowed) as refused:
        check_upgrade(named(catalogue, current), named(catalogue, target), catalogue)
    assert refused.value.rule == rule
    assert words in str(refused.value)


def test_an_allowed_step_is_returned_as_such():
    assert check_upgrade(named(REFERENCE, "2.3.4"), named(REFERENCE, "2.5.9"), REFERENCE) == Step("2.5.9", "minor")


async def test_a_new_addon_on_a_retired_build_is_refused_and_nothing_is_recorded(world, engine):
    retired = [EngineVersion(x.version, x.engine, x.image, x.tls, x.rdb_format, x.source, x.version == "6.2.7")
               for x in SHIPPED]
    engine.versions = VersionCatalog(retired, default="7.0.15")
    before = await world.events.max_position()
    with pytest.raises(VersionRetired, match="redis 6.2.7 is retired"):
        await engine.add_addon("my-app", "redis-starter-256", version="6.2.7")
    assert await world.events.max_position() == before and world.runtime.containers() == []

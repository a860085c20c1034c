"""Placement of a cluster's nodes: one placement per node, nodes of a spread group on different
hosts, each node counted before the next, and a refusal that places nothing and says why."""

from __future__ import annotations

import pytest

from domain.errors import NoHostWithRoom
from domain.placement import Host, NodeRequest, Tenant, place, place_nodes

HOSTS = [Host("host-a", "127.0.1.1", 30000, 30099, 4096), Host("host-b", "127.0.2.1", 30000, 30099, 4096),
         Host("host-c", "127.0.3.1", 30000, 30099, 4096)]
BUSINESS = ([NodeRequest("data", 1024, tls=True, spread="data")] * 2 + [NodeRequest("sentinel", 32, spread="sentinel")] * 3
            + [NodeRequest("proxy", 32, spread="proxy")] * 2)


def test_one_data_node_is_placed_as_a_single_node_is():
    [where] = place_nodes([NodeRequest("data", 256, tls=True)], HOSTS, [])
    assert where == place(256, HOSTS, [], tls=True)


def test_a_business_cluster_spreads_each_group_over_different_hosts():
    placed = place_nodes(BUSINESS, HOSTS, [])
    assert len(placed) == 7
    for group in (placed[0:2], placed[2:5], placed[5:7]):
        assert len({p.host for p in group}) == len(group)
    # each node counts for the next: no two nodes on a host share a port
    on_host = [(p.host, port) for p in placed for port in (p.port, p.tls_port) if port]
    assert len(on_host) == len(set(on_host))


@pytest.mark.parametrize("hosts, tenants, expected", [
    (HOSTS[:2], [], "the sentinel nodes go to different hosts and 2 of 2 usable hosts are used already"),
    (HOSTS, [Tenant("host-a", 30050, 4000), Tenant("host-b", 30051, 4000)],
     "data node on a host other than host-c (they hold its data group): no host has room for 1024 MiB"),
])
def test_a_cluster_the_hosts_cannot_spread_is_refused_saying_why(hosts, tenants, expected):
    with pytest.raises(NoHostWithRoom, match=expected.replace("(", r"\(").replace(")", r"\)")):
        place_nodes(BUSINESS, hosts, tenants)


def test_an_excluded_host_is_never_used():
    placed = place_nodes([NodeRequest("data", 256, spread="data")] * 2, HOSTS, [], exclude_host="host-a")
    assert {p.host for p in placed} == {"host-b", "host-c"}


def test_a_business_plans_cluster_is_two_data_nodes_three_sentinels_and_two_proxies():
    from domain.catalog import PlanCatalog
    from domain.placement import cluster_requests

    plan = PlanCatalog.load().get("redis-business-1024")
    requests = cluster_requests(plan.data_nodes, plan.sentinels, plan.haproxy, plan.memory_mib, tls=True)
    assert [(r.role, r.spread) for r in requests] == [("data", "data")] * 2 + [("sentinel", "sentinel")] * 3 + [
        ("proxy", "proxy")] * 2
    assert all(r.memory_mib == 1024 and r.tls for r in requests[:2])
    placed = place_nodes(requests, HOSTS, [])
    assert {p.host for p in placed[2:5]} == {"host-a", "host-b", "host-c"}  # any one host lost: a quorum of 2 left


def test_a_starter_plans_cluster_is_one_data_node():
    from domain.placement import cluster_requests

    assert [r.role for r in cluster_requests(1, 0, 0, 256, tls=True)] == ["data"]

"""The Cluster aggregate: the nodes that serve an addon and what became of them; and the cluster
adopted for an addon recorded before clusters existed."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.cluster import Cluster, node_record
from engine.clusters import adopted_cluster, new_cluster, promote
from tests.unit.given import a_requested_addon, a_running_addon, an_addon_failed_to_provision, replayed, then, types


def a_data_node(name="c1", host="host-a", port=30000) -> dict:
    return node_record("data", host, "127.0.1.1", port, name, f"{name}-data", 256, "7.0.15", port + 1)


def test_a_starter_addon_is_a_cluster_of_one_data_node_placed_where_the_addon_is():
    addon = a_requested_addon()
    cluster = new_cluster(addon, addon.operation_id)
    assert types(then(cluster)) == [Cluster.Formed, Cluster.NodePlaced]
    [node] = cluster.live_nodes
    assert (node["role"], node["host"], node["port"], node["container"], node["state"]) == (
        "data", "host-a", 30000, addon.container, "placed")
    assert cluster.id == Cluster.id_for(addon.name) and cluster.primary is None
    assert node["placed_by"] == str(addon.operation_id)  # the provisioning finds it by that


def test_a_node_made_ready_becomes_the_primary_and_a_replacement_takes_over():
    cluster = Cluster(addon="my-app-3030", app="my-app")
    cluster.place_node(a_data_node("c1"))
    promote(cluster, "c1", "provisioned")
    cluster.place_node(a_data_node("c2", host="host-b"))
    promote(cluster, "c2", "plan change to redis-starter-2048")
    cluster.retire_node("c1")
    events = then(cluster)
    assert types(events)[-3:] == [Cluster.NodeStarted, Cluster.PrimaryChanged, Cluster.NodeRetired]
    assert cluster.primary == "c2" and [n["id"] for n in cluster.live_nodes] == ["c2"]
    assert [(p["old"], p["new"]) for p in cluster.primaries] == [(None, "c1"), ("c1", "c2")]
    assert replayed(events, Cluster).primary == "c2"


def test_a_node_seen_down_is_recorded_once_and_its_recovery_too():
    cluster = Cluster(addon="my-app-3030", app="my-app")
    cluster.place_node(a_data_node())
    promote(cluster, "c1", "provisioned")
    then(cluster)
    cluster.mark_node_down("c1", "container exited (137)", "2026-12-01T10:00:00+00:00")
    cluster.mark_node_down("c1", "container exited (137)", "2026-12-01T10:00:02+00:00")
    assert types(then(cluster)) == [Cluster.NodeDown]
    assert cluster.node("c1")["state"] == "down" and cluster.live_nodes  # down still holds its place
    cluster.mark_node_recovered("c1", "restarted on its data", "2026-12-01T10:00:03+00:00")
    assert types(then(cluster)) == [Cluster.NodeRecovered] and cluster.node("c1")["state"] == "running"


def test_retiring_twice_records_once():
    cluster = Cluster(addon="my-app-3030", app="my-app")
    cluster.place_node(a_data_node())
    cluster.retire_node("c1")
    cluster.retire_node("c1")
    assert types(then(cluster)).count(Cluster.NodeRetired) == 1 and cluster.live_nodes == []


def test_an_unknown_role_is_refused():
    with pytest.raises(ValueError, match="unknown node role 'witness'"):
        node_record("witness", "host-a", "127.0.1.1", 1, "c", "v", 1, "7.0.15")


def test_an_addon_recorded_before_clusters_is_adopted_with_its_running_node_as_primary():
    addon = a_running_addon()
    cluster = adopted_cluster(addon)
    events = then(cluster)
    assert types(events) == [Cluster.Formed, Cluster.NodeAdopted] and events[0].adopted is True
    assert cluster.id == Cluster.id_for(addon.name)  # adopting twice is refused by the event store
    assert cluster.primary == addon.container and cluster.primary_node["state"] == "running"


def test_an_addon_adopted_during_a_plan_change_holds_both_nodes():
    addon = a_running_addon()
    addon.target = dict(addon.previous_node, host="host-b", address="127.0.2.1", port=30100, tls_port=None,
                        container="new", volume="new-data", memory_mib=2048, plan="redis-starter-2048")
    addon.status = "changing-plan"
    cluster = adopted_cluster(addon)
    assert {n["id"]: n["state"] for n in cluster.live_nodes} == {addon.container: "running", "new": "placed"}
    assert cluster.node("new")["memory_mib"] == 2048 and cluster.primary == addon.container


def test_an_addon_that_failed_to_provision_is_adopted_with_no_node():
    cluster = adopted_cluster(an_addon_failed_to_provision())
    assert cluster.live_nodes == [] and cluster.primary is None


def test_an_addon_adopted_during_a_restore_holds_the_restored_node_too():
    addon = a_running_addon()
    addon.request_restore(uuid4(), "restored", "restored-data", uuid4())
    cluster = adopted_cluster(addon)
    assert {n["id"]: n["state"] for n in cluster.live_nodes} == {addon.container: "running", "restored": "placed"}
    assert cluster.node("restored")["port"] == addon.port and cluster.primary == addon.container


def test_the_node_a_published_move_replaced_is_adopted_only_while_its_cleanup_is_pending():
    addon = a_running_addon()
    addon.request_restore(uuid4(), "restored", "restored-data", uuid4())
    addon.mark_restored(operation_id=addon.operation_id)
    pending = adopted_cluster(addon, cleanup_pending=True)
    assert {n["id"]: n["state"] for n in pending.live_nodes} == {"restored": "running", addon.replaced["container"]: "placed"}
    assert pending.primary == "restored"
    done = adopted_cluster(addon, cleanup_pending=False)
    assert [n["id"] for n in done.live_nodes] == ["restored"]


def test_an_addon_adopted_while_it_starts_serving_tls_holds_the_requested_port():
    addon = a_running_addon()
    addon.request_tls_port(30007, uuid4())
    cluster = adopted_cluster(addon)
    assert cluster.primary_node["tls_port"] == 30007


def test_a_cluster_running_without_a_replica_in_sync_is_recorded_degraded_once_and_redundant_again():
    cluster = Cluster(addon="my-app-3030", app="my-app")
    cluster.mark_degraded("no replica in sync", "2026-12-01T10:00:00+00:00")
    cluster.mark_degraded("no replica in sync", "2026-12-01T10:00:02+00:00")
    cluster.mark_redundant("2026-12-01T10:01:00+00:00")
    cluster.mark_redundant("2026-12-01T10:01:02+00:00")
    assert types(then(cluster))[1:] == [Cluster.Degraded, Cluster.RedundancyRestored]
    assert not cluster.degraded

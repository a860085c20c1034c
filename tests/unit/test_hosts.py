"""Hosts in the language of the business: a host is added, drained, removed (domain/host.py); a draining
host takes no new node (engine/placing.py); a drain moves one node per addon at a time, a few at once, and
waits for an addon busy with another operation (domain/host_drain.py)."""

from __future__ import annotations

import pytest

from domain.errors import NoHostWithRoom
from domain.host import Host, check_host_details
from domain.host_drain import MOVE_DATA, MOVE_NODE, REPLACE, HeldNode, plan_drain
from domain.host_errors import HostNotEmpty, HostNotUsable, InvalidHost
from engine.inventory import Inventory
from engine.placing import Placer, Placing
from engine.settings import DockerHost

DETAILS = dict(docker_url="unix:///run/h/docker.sock", address="127.0.9.1", first_port=40000, last_port=40099,
               memory_mib=4096)


def a_host(name: str = "host-x") -> Host:
    return Host(name=name, **DETAILS)


# -- the Host aggregate -------------------------------------------------------------------------

def test_a_host_added_takes_nodes_until_its_drain_is_asked():
    host = a_host()
    assert host.state == "active" and host.takes_new_nodes
    host.start_drain("retiring the machine")
    assert host.state == "draining" and not host.takes_new_nodes
    assert [type(e).__name__ for e in host.collect_events()] == ["Added", "DrainStarted"]


def test_a_drain_asked_twice_is_one_drain():
    host = a_host()
    host.start_drain()
    host.start_drain()
    assert [type(e).__name__ for e in host.collect_events()] == ["Added", "DrainStarted"]


def test_a_drain_is_finished_only_once_the_host_holds_nothing():
    host = a_host()
    host.start_drain()
    with pytest.raises(HostNotEmpty, match="still holds 2 node"):
        host.finish_drain(nodes_left=2)
    host.finish_drain(nodes_left=0)
    assert host.state == "drained" and not host.takes_new_nodes


def test_a_host_holding_nodes_is_not_removed_and_says_to_drain_it():
    host = a_host()
    with pytest.raises(HostNotEmpty, match="holds 3 node.*hosts drain host-x"):
        host.remove(nodes_held=3)


def test_a_host_being_drained_is_not_removed_until_the_drain_is_done():
    host = a_host()
    host.start_drain()
    with pytest.raises(HostNotEmpty, match="being drained"):
        host.remove(nodes_held=0)
    host.finish_drain(0)
    host.remove(nodes_held=0)
    assert host.state == "removed"


def test_an_empty_host_is_removed_and_may_be_added_again_under_its_name():
    host = a_host()
    host.remove(nodes_held=0)
    with pytest.raises(HostNotUsable, match="removed"):
        host.start_drain()
    host.add_again(**{**DETAILS, "memory_mib": 8192})
    assert host.state == "active" and host.memory_mib == 8192


def test_a_known_host_is_not_added_again():
    with pytest.raises(InvalidHost, match="known already"):
        a_host().add_again(**DETAILS)


def test_the_hosts_file_wins_over_the_log_for_the_hosts_it_names():
    host = a_host()
    host.collect_events()
    host.reconfigure(**{**DETAILS, "memory_mib": 2048, "tls": None})
    assert host.memory_mib == 2048
    host.reconfigure(**{**DETAILS, "memory_mib": 2048, "tls": None})  # the same again: nothing recorded
    assert [type(e).__name__ for e in host.collect_events()] == ["Reconfigured"]


@pytest.mark.parametrize("change, message", [
    ({"name": "Host_A"}, "lowercase letters"),
    ({"docker_url": "http://127.0.0.1:2375"}, "unix:///PATH or tcp://"),
    ({"address": ""}, "--bind"),
    ({"first_port": 40100, "last_port": 40000}, "port range 40100-40000"),
    ({"first_port": 80}, "within 1024-65535"),
    ({"memory_mib": 10}, "too small"),
    ({"memory_mib": "lots"}, "whole numbers"),
])
def test_what_cannot_describe_a_host_is_refused_naming_the_problem(change, message):
    given = {"name": "host-x", **DETAILS, **change}
    with pytest.raises(InvalidHost, match=message):
        check_host_details(**given)


# -- placement skips a draining host --------------------------------------------------------------

HOSTS = [DockerHost("host-a", "unix:///a", "127.0.1.1", 30000, 30009, 4096),
         DockerHost("host-b", "unix:///b", "127.0.2.1", 31000, 31009, 1024)]


def placer(closed: set[str]) -> Placer:
    placing = Placing(HOSTS, Inventory(), runtime=None)
    placing.closed |= closed
    return Placer(placing, frozenset())


def test_a_new_node_goes_to_the_host_with_most_room_unless_that_host_is_draining():
    assert placer(set()).node(256, tls=False).host == "host-a"
    assert placer({"host-a"}).node(256, tls=False).host == "host-b"


def test_a_replacement_never_goes_to_a_draining_host():
    where = placer({"host-a"}).replacement("sentinel", 32, avoid={})
    assert where.host == "host-b"


def test_with_every_host_draining_no_node_is_placed():
    with pytest.raises(NoHostWithRoom):
        placer({"host-a", "host-b"}).node(256, tls=False)


def test_a_draining_host_still_gives_a_free_port_to_a_node_already_there():
    assert placer({"host-a"}).free_port("host-a") == 30000


# -- which moves a drain starts --------------------------------------------------------------------

def starter(addon: str) -> HeldNode:
    return HeldNode(addon, clustered=False, role="data", node_id="n1", container=f"{addon}-node")


def business(addon: str, role: str, node_id: str) -> HeldNode:
    return HeldNode(addon, clustered=True, role=role, node_id=node_id, container=f"{addon}-{node_id}")


def test_a_single_node_is_moved_and_a_clusters_data_node_moves_the_data_nodes_before_its_other_nodes():
    plan = plan_drain([business("b-1", "proxy", "p1"), business("b-1", "data", "d1"), starter("s-1")], {}, set())
    assert [(m.addon, m.how, m.node_id) for m in plan.start] == [("b-1", MOVE_DATA, "d1"), ("s-1", MOVE_NODE, "n1")]
    assert plan.waiting == {}


def test_a_clusters_sentinel_or_haproxy_is_replaced():
    plan = plan_drain([business("b-1", "sentinel", "s2")], {}, set())
    assert [(m.how, m.node_id) for m in plan.start] == [(REPLACE, "s2")]


def test_an_addon_busy_with_another_operation_is_waited_for():
    plan = plan_drain([starter("s-1"), starter("s-2")], busy={"s-1": "op-backup"}, moving=set())
    assert [m.addon for m in plan.start] == ["s-2"]
    assert "busy with operation op-backup" in plan.waiting["s-1"]


def test_an_addon_whose_previous_move_runs_waits_for_it_one_operation_per_addon():
    plan = plan_drain([business("b-1", "sentinel", "s2")], busy={"b-1": "op-move"}, moving={"b-1"})
    assert plan.start == [] and "previous move" in plan.waiting["b-1"]


def test_a_few_moves_at_a_time_the_others_wait_their_turn():
    held = [starter(f"s-{i}") for i in range(5)]
    plan = plan_drain(held, {}, moving={"s-9"}, limit=2)
    assert [m.addon for m in plan.start] == ["s-0"]
    assert {a for a, why in plan.waiting.items() if "its turn" in why} == {"s-1", "s-2", "s-3", "s-4"}


def test_nothing_held_nothing_to_move():
    assert plan_drain([], {}, set()).start == []

"""A host whose Docker engine does not answer takes no replacement node either: a Business restore, plan
change, upgrade or maintenance (Placer.replacement, and `beside` whose fallback drops the preferred host)
placed its new data node there, where it waited for the engine and then failed. Placement reads one
survey for both the silent hosts and the ports in use."""

from __future__ import annotations

import pytest

from domain.errors import NoHostWithRoom
from engine.inventory import Inventory
from engine.placing import Placing
from engine.plan_requests import beside
from engine.ports import NodeState, Survey
from tests.unit.engine_fakes import HOSTS, THREE_HOSTS
from tests.unit.fakes import FakeRuntime


def placing_on(hosts, silent: tuple[str, ...] = ()) -> tuple[Placing, FakeRuntime]:
    runtime = FakeRuntime([h.name for h in hosts])
    for name in silent:
        runtime.lose_host(name)
    return Placing(hosts, Inventory(), runtime), runtime


async def test_a_replacement_never_goes_to_a_silent_host_even_the_preferred_one():
    placing, _ = placing_on(THREE_HOSTS, silent=("host-a",))  # host-a is listed first: a tie in room went to it
    async with placing.held() as placer:
        assert placer.replacement("data", 256, avoid={}).host == "host-b"
        assert beside(placer, 256, "host-a", avoid={"host-b": "holds the primary"}).host == "host-c"


async def test_no_host_left_but_silent_ones_is_refused_naming_them():
    placing, _ = placing_on(HOSTS, silent=("host-b",))
    async with placing.held() as placer:
        with pytest.raises(NoHostWithRoom, match=r"does not answer takes none \(host-a holds the primary; "
                                                 r"host-b does not answer \(Docker is unreachable\)\)"):
            placer.replacement("data", 256, avoid={"host-a": "holds the primary"})


async def test_no_room_on_the_answering_hosts_names_the_silent_ones_too():
    placing, _ = placing_on(HOSTS, silent=("host-b",))
    async with placing.held() as placer:
        with pytest.raises(NoHostWithRoom, match=r"host-a 4096 MiB free.*; host-b does not answer"):
            placer.replacement("data", 8192, avoid={})


async def test_placement_surveys_the_hosts_once_and_takes_the_ports_it_found():
    placing, runtime = placing_on(HOSTS)
    nodes = [NodeState("host-a", "other", True, {"redis-addons.port": "30000", "redis-addons.tls-port": "30001"}),
             NodeState("host-a", "shared", True, {"redis-addons.host": "host-b", "redis-addons.port": "30000"})]

    async def survey(**labels):
        runtime._called("survey", **labels)
        return Survey(nodes, {})

    runtime.survey = survey
    async with placing.held() as placer:
        assert placer.free_port("host-a") == 30002 and placer.free_port("host-b") == 30001
    assert len(runtime.calls_to("survey")) == 1 and runtime.calls_to("ports_in_use") == []


async def test_a_host_learnt_from_another_process_before_placing_is_surveyed_and_its_silence_counts():
    """What another engine process recorded of hosts (here: a host added, whose engine does not answer) is learnt
    before the survey: learnt after it, the new host was in no survey and took the node as if it answered."""
    placing, runtime = placing_on(HOSTS[:1])
    learnt, told = [], []

    async def learn_hosts():  # as engine/hosts.py HostBook.refresh opens a host added through another process
        runtime.add_host(HOSTS[1])  # a machine the fake never made: its Docker engine does not answer
        placing.hosts.append(HOSTS[1])
        learnt.append("hosts")

    async def tell_new():  # the log's latest events, under the locks (engine/app.py)
        told.append(placing.lock.locked())

    placing.before_placing.append(learn_hosts)
    placing.while_held.append(tell_new)
    async with placing.held() as placer:
        with pytest.raises(NoHostWithRoom, match=r"host-b does not answer"):
            placer.replacement("data", 256, avoid={"host-a": "holds the primary"})
    assert learnt == ["hosts"] and told == [True]

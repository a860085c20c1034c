"""Host placement policy: the host with the most free memory, the lowest free port on it."""

from __future__ import annotations

import pytest

from domain.errors import NoHostWithRoom
from domain.placement import Host, Placement, Tenant, place

A = Host("host-a", "127.0.1.1", 30000, 30002, 4096)
B = Host("host-b", "127.0.2.1", 31000, 31002, 4096)
C = Host("host-c", "127.0.3.1", 32000, 32002, 8192)
NONE = frozenset()


def on_a(port):
    return Placement("host-a", "127.0.1.1", port)


def on_b(port):
    return Placement("host-b", "127.0.2.1", port)


def on_c(port):
    return Placement("host-c", "127.0.3.1", port)


@pytest.mark.parametrize(
    "memory, hosts, tenants, unusable, exclude, expected",
    [
        # most free memory wins
        (1024, [A, B], [Tenant("host-a", 30000, 512)], NONE, None, on_b(31000)),
        (1024, [A, B], [Tenant("host-b", 31000, 512)], NONE, None, on_a(30000)),
        (1024, [A, B, C], [], NONE, None, on_c(32000)),
        (1024, [A, C], [Tenant("host-c", 32000, 4097)], NONE, None, on_a(30000)),
        (512, [A, B], [Tenant("host-a", 30000, 128), Tenant("host-b", 31000, 2048)], NONE, None, on_a(30001)),
        # a tie goes to the first host listed
        (1024, [A, B], [], NONE, None, on_a(30000)),
        (1024, [B, A], [], NONE, None, on_b(31000)),
        (1024, [A, B], [Tenant("host-a", 30000, 256), Tenant("host-b", 31000, 256)], NONE, None, on_a(30001)),
        # memory is only counted on the tenant's own host
        (1024, [A, B], [Tenant("host-z", 30000, 4096)], NONE, None, on_a(30000)),
        # an exact fit is room enough
        (4096, [A], [], NONE, None, on_a(30000)),
        (1024, [A, B], [Tenant("host-a", 30000, 3072), Tenant("host-b", 31000, 3584)], NONE, None, on_a(30001)),
        # the lowest free port: ports held by tenants or seen busy are skipped
        (128, [A], [Tenant("host-a", 30000, 128)], NONE, None, on_a(30001)),
        (128, [A], [Tenant("host-a", 30001, 128)], NONE, None, on_a(30000)),
        (128, [A], [Tenant("host-a", 30000, 128), Tenant("host-a", 30001, 128)], NONE, None, on_a(30002)),
        (128, [A], [], frozenset({("host-a", 30000)}), None, on_a(30001)),
        (128, [A], [Tenant("host-a", 30000, 128)], frozenset({("host-a", 30001)}), None, on_a(30002)),
        # a port busy on another host does not matter here
        (128, [A], [Tenant("host-b", 30000, 128)], frozenset({("host-b", 30001)}), None, on_a(30000)),
        # a host whose port range is full is passed over, however much memory it has free
        (512, [C, A], [Tenant("host-c", p, 1) for p in (32000, 32001, 32002)], NONE, None, on_a(30000)),
        (512, [A, B], [], frozenset({("host-a", p) for p in (30000, 30001, 30002)}), None, on_b(31000)),
        # an excluded host is never chosen (a plan change goes elsewhere), even with the most room
        (512, [A, B], [], NONE, "host-a", on_b(31000)),
        (512, [A, B, C], [], NONE, "host-c", on_a(30000)),
        (512, [A, B], [], NONE, "host-z", on_a(30000)),
    ],
)
def test_placement(memory, hosts, tenants, unusable, exclude, expected):
    assert place(memory, hosts, tenants, unusable, exclude_host=exclude) == expected


@pytest.mark.parametrize(
    "memory, hosts, tenants, unusable, exclude, message",
    [
        (1024, [A, B], [Tenant("host-a", 30000, 4000), Tenant("host-b", 31000, 3500)], NONE, None,
         "no host has room for 1024 MiB (host-a 96 MiB free, host-b 596 MiB free)"),
        (8192, [A, B], [], NONE, None, "no host has room for 8192 MiB (host-a 4096 MiB free, host-b 4096 MiB free)"),
        (4097, [A], [], NONE, None, "no host has room for 4097 MiB (host-a 4096 MiB free)"),
        # memory enough, but every port of the range is taken
        (128, [A], [Tenant("host-a", p, 1) for p in (30000, 30001, 30002)], NONE, None,
         "no host has room for 128 MiB (host-a 4093 MiB free, no free ports)"),
        (128, [A], [], frozenset({("host-a", p) for p in (30000, 30001, 30002)}), None,
         "no host has room for 128 MiB (host-a 4096 MiB free, no free ports)"),
        (512, [], [], NONE, None, "no host has room for 512 MiB (no host configured)"),
    ],
)
def test_no_host_with_room_names_what_each_host_has_free(memory, hosts, tenants, unusable, exclude, message):
    with pytest.raises(NoHostWithRoom) as refused:
        place(memory, hosts, tenants, unusable, exclude_host=exclude)
    assert str(refused.value) == message
    assert (refused.value.rule, refused.value.status) == ("no-host-with-room", 507)


def test_when_the_only_host_is_the_one_to_leave_there_is_no_room():
    with pytest.raises(NoHostWithRoom, match="no host other than host-a is configured: a plan change needs another host"):
        place(512, [A], [], exclude_host="host-a")


def test_placement_accepts_tenants_given_once_as_an_iterator():
    tenants = iter([Tenant("host-a", 30000, 4000)])
    assert place(1024, [A, B], tenants) == on_b(31000)


# -- TLS: a node of a TLS-capable build serves TLS beside plaintext, on a second port ----------

def test_a_tls_node_takes_the_two_lowest_free_ports():
    where = place(128, [A], [Tenant("host-a", 30000, 128)], NONE, tls=True)
    assert (where.port, where.tls_port) == (30001, 30002)


def test_a_tenants_tls_port_is_held_like_its_plaintext_port():
    where = place(128, [A], [Tenant("host-a", 30000, 128, tls_port=30001)], NONE)
    assert (where.port, where.tls_port) == (30002, None)


def test_a_host_with_one_free_port_left_has_no_room_for_a_tls_node():
    tenants = [Tenant("host-a", 30000, 128, tls_port=30001)]
    assert place(128, [A, B], tenants, NONE, tls=True) == Placement("host-b", "127.0.2.1", 31000, 31001)
    with pytest.raises(NoHostWithRoom) as refused:
        place(128, [A], tenants, NONE, tls=True)
    assert str(refused.value) == ("no host has room for 128 MiB and two free ports (plaintext and TLS) "
                                  "(host-a 3968 MiB free, 1 free port)")

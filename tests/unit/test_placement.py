"""Host placement: the host with the most free memory, the lowest free port on it."""

from __future__ import annotations

import pytest

from domain.errors import NoHostWithRoom
from domain.placement import Host, Placement, Tenant, place

A = Host("host-a", "127.0.1.1", 30000, 30002, 4096)
B = Host("host-b", "127.0.2.1", 31000, 31002, 4096)


@pytest.mark.parametrize(
    "memory, tenants, unusable, exclude, expected",
    [
        (1024, [], frozenset(), None, Placement("host-a", "127.0.1.1", 30000)),  # a tie goes to the first host
        (1024, [Tenant("host-a", 30000, 512)], frozenset(), None, Placement("host-b", "127.0.2.1", 31000)),
        (1024, [Tenant("host-b", 31000, 512)], frozenset(), None, Placement("host-a", "127.0.1.1", 30000)),
        (512, [Tenant("host-a", 30000, 128), Tenant("host-b", 31000, 2048)], frozenset(), None, Placement("host-a", "127.0.1.1", 30001)),
        (512, [], frozenset({("host-a", 30000)}), None, Placement("host-a", "127.0.1.1", 30001)),  # a port seen busy
        (512, [], frozenset(), "host-a", Placement("host-b", "127.0.2.1", 31000)),  # a plan change goes elsewhere
        (512, [Tenant("host-a", p, 1) for p in (30000, 30001, 30002)], frozenset(), None, Placement("host-b", "127.0.2.1", 31000)),  # no port left
    ],
)
def test_placement(memory, tenants, unusable, exclude, expected):
    assert place(memory, [A, B], tenants, unusable, exclude_host=exclude) == expected


def test_no_host_with_room_names_what_each_host_has_free():
    tenants = [Tenant("host-a", 30000, 4000), Tenant("host-b", 31000, 3500)]
    with pytest.raises(NoHostWithRoom) as refused:
        place(1024, [A, B], tenants)
    assert "1024 MiB" in str(refused.value) and "host-a 96 MiB free" in str(refused.value) and "host-b 596 MiB free" in str(refused.value)
    assert refused.value.rule == "no-host-with-room"

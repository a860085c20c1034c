"""The inventory is a read model of the log with its tracking position: written as a checkpoint,
read back at start and caught up from its position, so start-up reads only what came after it.
Over the store the release a79d645 left: its addons are adopted into clusters that hold the same
hosts' memory and ports their events held."""

from __future__ import annotations

from adapters.checkpoints import FileCheckpoints
from domain.cluster import Cluster
from engine.adoption import adopt_clusters
from engine.inventory import Inventory
from engine.inventory_keeper import InventoryKeeper
from engine.store import EventLog
from tests.unit.test_release_store import release_store  # noqa: F401 (a fixture: a copy of the release's store)


def held(inventory: Inventory) -> list[tuple]:
    return sorted((t.host, t.port, t.memory_mib, t.tls_port) for t in inventory.tenants())


async def a_keeper(events: EventLog, directory) -> InventoryKeeper:
    """An engine's start: a fresh inventory, as the engine makes it, read back and caught up."""
    keeper = InventoryKeeper(events, Inventory(), FileCheckpoints(directory))
    await keeper.load()
    return keeper


async def test_a_start_after_a_checkpoint_reads_only_the_events_after_it(release_store, tmp_path):
    first = await a_keeper(release_store, tmp_path / "checkpoints")
    everything = first.inventory.position
    assert everything > 0 and first.inventory.unfinished
    await first.checkpoint()

    again = InventoryKeeper(release_store, Inventory(), FileCheckpoints(tmp_path / "checkpoints"))
    assert await again.load() == 0  # nothing after the checkpoint: nothing read
    assert held(again.inventory) == held(first.inventory)
    assert again.inventory.unfinished == first.inventory.unfinished
    assert again.inventory.position == everything


async def test_events_saved_after_the_checkpoint_are_caught_up_once(release_store, tmp_path):
    first = await a_keeper(release_store, tmp_path / "checkpoints")
    await first.checkpoint()
    adopted = await adopt_clusters(release_store, first.inventory)  # events saved after the checkpoint
    assert adopted

    later = InventoryKeeper(release_store, Inventory(), FileCheckpoints(tmp_path / "checkpoints"))
    read = await later.load()
    assert read > 0 and later.inventory.position == first.inventory.position
    assert held(later.inventory) == held(first.inventory)  # each event applied once: nothing counted twice


async def test_adopted_clusters_hold_what_the_release_s_events_held(release_store, tmp_path):
    keeper = await a_keeper(release_store, tmp_path / "checkpoints")
    before = held(keeper.inventory)
    adopted = await adopt_clusters(release_store, keeper.inventory)
    assert held(keeper.inventory) == before
    assert keeper.inventory.addons_without_cluster == []  # a removed addon needs none: it is not even looked at
    for name in adopted:
        cluster: Cluster = await release_store.get(Cluster.id_for(name))
        assert cluster.addon == name
    assert await adopt_clusters(release_store, keeper.inventory) == []  # adopted once


async def test_a_checkpoint_of_another_shape_is_dropped_and_the_log_read_whole(release_store, tmp_path):
    directory = tmp_path / "checkpoints"
    FileCheckpoints(directory).save("inventory", {"shape": 1, "position": 10 ** 9})
    keeper = await a_keeper(release_store, directory)
    assert keeper.inventory.position > 0 and keeper.inventory.unfinished


async def test_an_unreadable_checkpoint_is_ignored(release_store, tmp_path):
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    (directory / "inventory.json").write_text("{not json")
    keeper = await a_keeper(release_store, directory)
    assert keeper.inventory.unfinished


async def test_the_checkpoint_is_readable_by_the_engine_s_user_only(release_store, tmp_path):
    keeper = await a_keeper(release_store, tmp_path / "checkpoints")
    await keeper.checkpoint()
    assert ((tmp_path / "checkpoints" / "inventory.json").stat().st_mode & 0o777) == 0o600
    assert ((tmp_path / "checkpoints").stat().st_mode & 0o777) == 0o700


async def test_a_checkpoint_ahead_of_the_log_is_dropped(release_store, tmp_path):
    """The event store was restored from an older copy: the checkpoint describes another history."""
    directory = tmp_path / "checkpoints"
    first = await a_keeper(release_store, directory)
    state = first.inventory.state()
    FileCheckpoints(directory).save("inventory", {**state, "position": state["position"] + 1000})
    keeper = await a_keeper(release_store, directory)
    assert keeper.inventory.position == first.inventory.position
    assert held(keeper.inventory) == held(first.inventory)

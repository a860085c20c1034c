"""A start reads the log once for the inventory and the read models together: on new read models (a first
start, another process joining, a restored control plane) each event is decoded once, not once for each;
each still gets every event once, wherever its own position was."""

from __future__ import annotations

from adapters.checkpoints import FileCheckpoints
from engine.first_read import catch_up_together
from engine.follower import Follower, apply_batch
from engine.inventory import Inventory
from engine.inventory_keeper import InventoryKeeper
from projections import ReadModels
from tests.unit.test_inventory_checkpoint import held
from tests.unit.test_release_store import all_events, release_store  # noqa: F401 (a fixture)


class Counted:
    """The log, counting the events it decodes for its readers."""

    def __init__(self, events):
        self.events, self.decoded = events, 0

    def __getattr__(self, name):
        return getattr(self.events, name)

    async def select(self, after: int, limit: int = 500, of: tuple = ()):
        batch = await self.events.select(after, limit, of)
        self.decoded += len(batch)
        return batch


async def read_apart(events, tmp_path) -> tuple[InventoryKeeper, ReadModels]:
    """Each reader on its own, as a start read them before."""
    keeper = InventoryKeeper(events, Inventory(), None)
    await keeper.load()
    views = ReadModels(tmp_path / "apart.sqlite")
    await Follower(events, views).catch_up()
    return keeper, views


async def test_new_read_models_and_inventory_are_made_from_one_read_of_the_log(release_store, tmp_path):
    log = Counted(release_store)
    keeper, views = InventoryKeeper(log, Inventory(), None), ReadModels(tmp_path / "views.sqlite")
    await catch_up_together(log, keeper, Follower(log, views))

    everything = len(await all_events(release_store))
    assert log.decoded == everything  # once, not twice
    apart_keeper, apart_views = await read_apart(release_store, tmp_path)
    assert held(keeper.inventory) == held(apart_keeper.inventory)
    assert keeper.inventory.unfinished == apart_keeper.inventory.unfinished
    assert views.snapshot() == apart_views.snapshot()


async def test_an_inventory_read_back_from_its_checkpoint_is_not_given_its_events_again(release_store, tmp_path):
    first = InventoryKeeper(release_store, Inventory(), FileCheckpoints(tmp_path / "checkpoints"))
    await first.load()
    await first.checkpoint()

    keeper = InventoryKeeper(release_store, Inventory(), FileCheckpoints(tmp_path / "checkpoints"))
    views = ReadModels(tmp_path / "views.sqlite")  # new: the whole log is read for them
    await catch_up_together(release_store, keeper, Follower(release_store, views))
    assert held(keeper.inventory) == held(first.inventory)  # each event applied once: nothing counted twice
    assert keeper.inventory.unfinished == first.inventory.unfinished
    assert views.snapshot() == (await read_apart(release_store, tmp_path))[1].snapshot()


async def test_read_models_already_caught_up_are_left_as_they_are_while_the_inventory_reads_the_log(
        release_store, tmp_path):
    views = ReadModels(tmp_path / "views.sqlite")
    await Follower(release_store, views).catch_up()
    before = views.snapshot()

    log = Counted(release_store)
    keeper = InventoryKeeper(log, Inventory(), None)  # no checkpoint: from the start
    await catch_up_together(log, keeper, Follower(log, views))
    assert views.snapshot() == before
    assert held(keeper.inventory) == held((await read_apart(release_store, tmp_path))[0].inventory)
    assert log.decoded == len(await all_events(release_store))


async def test_the_log_selects_only_the_classes_asked_for_in_its_order(release_store):
    everything = await all_events(release_store)
    kinds = {type(event) for _, event in everything}
    assert len(kinds) > 2
    asked = tuple(sorted(kinds, key=lambda kind: kind.__qualname__)[:2])
    selected = await release_store.select(0, 10_000, of=asked)
    assert selected == [(position, event) for position, event in everything if isinstance(event, asked)]
    assert selected and await release_store.select(selected[-1][0], of=asked) == []


async def test_read_models_halfway_and_an_inventory_from_the_start_each_get_every_event_once(release_store, tmp_path):
    everything = await all_events(release_store)
    views = ReadModels(tmp_path / "views.sqlite")
    halfway = everything[len(everything) // 2][0]  # the read below's first batch straddles it
    apply_batch(views, everything[:len(everything) // 2 + 1])
    assert views.position() == halfway

    keeper = InventoryKeeper(release_store, Inventory(), None)
    await catch_up_together(release_store, keeper, Follower(release_store, views))
    apart_keeper, apart_views = await read_apart(release_store, tmp_path)
    assert views.snapshot() == apart_views.snapshot()
    assert held(keeper.inventory) == held(apart_keeper.inventory)

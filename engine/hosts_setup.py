"""Host management wired from the engine's own parts: the host book, the mover and the drainer."""

from __future__ import annotations

from domain.catalog import ComponentCatalog
from engine.hosts import HostBook
from engine.hosts_drain import Drainer
from engine.hosts_moves import Mover


def host_management(engine) -> HostBook:
    """`engine.hosts`: list, add, drain, remove (engine/hosts.py); `engine.hosts.drainer` is one of the
    installation's duties (it runs where the scheduler and the watcher run)."""
    images = [v.image for v in engine.versions if not v.retired] + [c.image for c in ComponentCatalog.load()]
    settings = engine.settings
    book = HostBook(engine.events, settings.hosts, engine.placing, engine.runtime, engine.inventory, engine.views,
                    sorted(set(images)), settings.home)
    mover = Mover(engine.events, engine.runtime, engine.placing, engine.operations_starter, engine.versions)
    book.drainer = Drainer(book, mover, engine.inventory, engine.plans, round_s=settings.watch_interval_s)
    return book

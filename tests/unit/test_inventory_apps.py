"""Which apps the inventory knows (asked at every API request about an app): from the addons' events, and
the same once read back from a checkpoint (a set kept beside the addons, not a scan of every addon)."""

from __future__ import annotations

from uuid import uuid4

from domain.addon import Addon
from domain.settings import DEFAULT_SETTINGS
from engine.inventory import Inventory


def requested(name: str, app: str):
    addon = Addon(name=name, app=app, plan="redis-starter-256", memory_mib=256, redis_version="7.0.15", host="host-a",
                  address="127.0.1.1", port=30000, container=f"c-{name}", volume=f"c-{name}-data",
                  operation_id=uuid4(), settings=DEFAULT_SETTINGS, tls_port=None)
    return addon.collect_events()


def test_the_apps_of_the_addons_are_known_and_stay_known_through_a_checkpoint():
    inventory = Inventory()
    for position, event in enumerate(requested("shop-1000", "shop") + requested("blog-1000", "blog"), start=1):
        inventory.apply_at(position, event)
    read_back = Inventory.from_state(inventory.state())
    for known in (inventory, read_back):
        assert known.app_known("shop") and known.app_known("blog")
        assert not known.app_known("shop-1000") and not known.app_known("other")

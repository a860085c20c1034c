"""The notifier over an in-memory event log and an in-memory sender: retries keep the delivery's ID, a
webhook's position moves only once its message was delivered (or given up), a slow webhook holds back
no other, a restart sends again what was not checkpointed with the same ID, builds are told once."""

from __future__ import annotations

import asyncio
import json

from domain.cluster import Cluster, node_record
from domain.notifications import signature
from domain.webhook import Webhook
from engine.notifier import Notifier, secret_name
from engine.ports import DeliveryFailed
from tests.unit.fakes import FakeSecretStore, InMemoryEventLog

FAST = dict(attempts=3, first_wait_s=0.001, max_wait_s=0.01, builds_every_s=0)
SLOW_URL, URL = "http://127.0.0.1:9001/slow", "http://127.0.0.1:9000/hook"


class Sender:
    """Records each POST; fails the first `failures[url]` of a URL; holds a URL's POSTs while gated."""

    def __init__(self):
        self.posts: list[tuple[str, dict, dict]] = []
        self.failures: dict[str, int] = {}
        self.gates: dict[str, asyncio.Event] = {}

    async def post(self, url: str, body: bytes, headers: dict) -> None:
        if url in self.gates:
            await self.gates[url].wait()
        self.posts.append((url, json.loads(body), headers))
        if self.failures.get(url, 0) > 0:
            self.failures[url] -= 1
            raise DeliveryFailed("HTTP 500 Internal Server Error")

    async def close(self) -> None:
        pass

    def to(self, url: str) -> list[tuple[dict, dict]]:
        return [(body, headers) for u, body, headers in self.posts if u == url]


class Checkpoints:
    def __init__(self):
        self.states: dict[str, dict] = {}

    def load(self, name: str) -> dict | None:
        return json.loads(json.dumps(self.states[name])) if name in self.states else None

    def save(self, name: str, state: dict) -> None:
        self.states[name] = json.loads(json.dumps(state))


async def eventually(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


class World:
    def __init__(self):
        self.events, self.secrets = InMemoryEventLog(), FakeSecretStore()
        self.sender, self.checkpoints = Sender(), Checkpoints()
        self.outdated: list[dict] = []
        self.cluster = Cluster(addon="shop-1234", app="shop")
        self.cluster.place_node(node_record("data", "host-a", "127.0.1.1", 30000, "node-a", "node-a-data", 256, "7.0.15"))
        self.cluster.mark_node_started("node-a")

    async def notifier(self) -> Notifier:
        """The first engine's: the log holds the addon's cluster."""
        await self.events.open()
        await self.events.save(self.cluster)
        notifier = Notifier(self.events, self.sender, self.secrets, self.checkpoints, self._outdated, **FAST)
        await notifier.start()
        return notifier

    async def _outdated(self) -> list[dict]:
        return self.outdated

    async def register(self, url: str, app: str | None = None) -> str:
        webhook = Webhook(url=url, app=app, registered_at="2026-12-02T12:00:00+00:00")
        self.secrets.password_for(secret_name(str(webhook.id)))
        await self.events.save(webhook)
        return str(webhook.id)

    async def node_down(self) -> int:
        self.cluster.mark_node_down("node-a", "its container exited (137)", "2026-12-02T12:01:00+00:00")
        [recording] = await self.events.save(self.cluster)
        return recording.notification.id


async def test_a_failed_delivery_is_retried_with_the_same_id_and_signed():
    world = World()
    notifier = await world.notifier()
    hook = await world.register(URL)
    world.sender.failures[URL] = 1
    await world.node_down()
    await eventually(lambda: len(world.sender.to(URL)) == 2)
    (first, first_headers), (second, second_headers) = world.sender.to(URL)
    assert first == second and first["type"] == "node.down" and first["addon"] == "shop-1234"
    assert first["id"] == first_headers["X-Redis-Addons-Delivery"] == second_headers["X-Redis-Addons-Delivery"]
    secret = world.secrets.peek(secret_name(hook))
    body = json.dumps(second, sort_keys=True).encode()
    assert second_headers["X-Redis-Addons-Signature"] == signature(secret, body)
    assert secret not in json.dumps(world.sender.posts)
    await eventually(lambda: notifier.hooks[hook].delivered == 1)
    assert notifier.hooks[hook].dead_letters == 0
    await notifier.stop()


async def test_the_position_moves_only_after_the_delivery_and_a_restart_sends_it_again_with_the_same_id():
    world = World()
    notifier = await world.notifier()
    hook = await world.register(URL)
    registered_at = notifier.hooks[hook].position
    world.sender.gates[URL] = asyncio.Event()  # the receiver does not answer yet
    position = await world.node_down()
    await asyncio.sleep(0.05)
    assert notifier.hooks[hook].position == registered_at
    await notifier.stop()  # a stop (or a crash) while the delivery hangs: its position is not past it
    assert world.checkpoints.states["notifier"]["hooks"][0]["position"] < position

    world.sender.gates.pop(URL).set()
    again = Notifier(world.events, world.sender, world.secrets, world.checkpoints, **FAST)
    await again.start()
    await eventually(lambda: again.hooks[hook].position >= position)
    [(body, headers)] = world.sender.to(URL)
    assert headers["X-Redis-Addons-Delivery"] == body["id"]
    assert world.checkpoints.states["notifier"]["hooks"][0]["position"] >= position
    # the same event told once more (say the checkpoint was lost): the same ID, so the receiver drops it
    again.hooks[hook].position = registered_at
    again._wakes[hook].set()
    await eventually(lambda: len(world.sender.to(URL)) == 2)
    assert world.sender.to(URL)[1][0]["id"] == body["id"]
    await again.stop()


async def test_a_slow_webhook_does_not_hold_another():
    world = World()
    notifier = await world.notifier()
    slow, fast = await world.register(SLOW_URL), await world.register(URL)
    world.sender.gates[SLOW_URL] = asyncio.Event()
    await world.node_down()
    world.cluster.mark_node_recovered("node-a", "restarted on its data", "2026-12-02T12:02:00+00:00")
    await world.events.save(world.cluster)
    await eventually(lambda: [b["type"] for b, _ in world.sender.to(URL)] == ["node.down", "node.up"])
    assert world.sender.to(SLOW_URL) == [] and notifier.hooks[slow].delivered == 0
    world.sender.gates[SLOW_URL].set()
    await eventually(lambda: [b["type"] for b, _ in world.sender.to(SLOW_URL)] == ["node.down", "node.up"])
    assert notifier.hooks[fast].delivered == 2
    await notifier.stop()


async def test_a_message_given_up_after_its_retries_is_a_dead_letter_and_the_next_one_goes():
    world = World()
    notifier = await world.notifier()
    hook = await world.register(URL)
    world.sender.failures[URL] = FAST["attempts"]
    position = await world.node_down()
    await eventually(lambda: notifier.hooks[hook].position >= position)
    shown = notifier.hooks[hook].shown()
    assert (shown["dead_letters"], shown["delivered"], shown["last_error"]) == (1, 0, "HTTP 500 Internal Server Error")
    assert len(world.sender.to(URL)) == FAST["attempts"]
    world.cluster.mark_node_recovered("node-a", "restarted on its data", "2026-12-02T12:02:00+00:00")
    await world.events.save(world.cluster)
    await eventually(lambda: notifier.hooks[hook].delivered == 1)
    assert world.sender.to(URL)[-1][0]["type"] == "node.up"
    await notifier.stop()


async def test_an_apps_webhook_hears_only_its_app_and_one_registered_later_nothing_before():
    world = World()
    notifier = await world.notifier()
    other, own = await world.register(URL, app="blog"), await world.register(SLOW_URL, app="shop")
    position = await world.node_down()
    late = await world.register("http://127.0.0.1:9002/late")
    await eventually(lambda: all(h.position >= position for h in notifier.hooks.values()))
    await asyncio.sleep(0.05)
    assert world.sender.to(URL) == [] and len(world.sender.to(SLOW_URL)) == 1
    assert world.sender.to("http://127.0.0.1:9002/late") == [] and notifier.hooks[late].delivered == 0
    assert notifier.hooks[other].delivered == 0 and notifier.hooks[own].delivered == 1
    await notifier.stop()


async def test_an_outdated_build_is_told_once_per_new_image_and_a_removed_webhook_nothing():
    world = World()
    notifier = await world.notifier()
    hook = await world.register(URL)
    world.outdated = [{"app": "shop", "addon": "shop-1234", "version": "7.0.15", "image_id": "sha256:new",
                       "nodes": ["node-a"]}]
    assert await notifier.check_builds() == 1
    await eventually(lambda: len(world.sender.to(URL)) == 1)
    assert await notifier.check_builds() == 0  # told already
    world.outdated[0]["image_id"] = "sha256:newer"
    assert await notifier.check_builds() == 1
    await eventually(lambda: len(world.sender.to(URL)) == 2)
    assert [b["image_id"] for b, _ in world.sender.to(URL)] == ["sha256:new", "sha256:newer"]
    webhook = await world.events.get(Webhook.id_for(URL, None))
    webhook.remove()
    await world.events.save(webhook)
    assert hook not in notifier.hooks
    world.outdated[0]["image_id"] = "sha256:newest"
    assert await notifier.check_builds() == 0
    await notifier.stop()


async def test_outdated_builds_name_the_image_the_versions_tag_names_now():
    from types import SimpleNamespace

    from domain.catalog import VersionCatalog
    from engine.webhooks import outdated_builds

    versions = VersionCatalog.load()
    version = next(iter(versions)).version
    asked = []

    class Runtime:
        async def image_id(self, host, image):
            asked.append((host, image))
            return "sha256:new" if host == "host-a" else None

    async def outdated():
        return [{"app": app, "addon": f"{app}-1234", "version": version,
                 "nodes": [{"id": f"{app}-node", "host": host, "version": version, "build": "outdated"}]}
                for app, host in (("shop", "host-a"), ("blog", "host-gone"))]

    maintenance = SimpleNamespace(outdated=outdated, builds=SimpleNamespace(runtime=Runtime(), versions=versions))
    assert await outdated_builds(maintenance) == [{"app": "shop", "addon": "shop-1234", "version": version,
                                                   "image_id": "sha256:new", "nodes": ["shop-node"]}]
    assert asked == [("host-a", versions.get(version).image), ("host-gone", versions.get(version).image)]

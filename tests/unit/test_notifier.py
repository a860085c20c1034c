"""The notifier over an in-memory event log and an in-memory sender: retries keep the delivery's ID, a
webhook's position moves only once its message was delivered (or given up after a day), a slow webhook
holds back no other, a restart sends again what was not checkpointed with the same ID, builds are told
once; a missing signing secret holds the messages; the checkpoint's writes never overlap."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from uuid import UUID

from domain.cluster import Cluster, node_record
from domain.notifications import signature
from domain.webhook import Webhook
from engine.notifier import GIVE_UP_AFTER_S, Notifier, secret_name
from engine.monitoring_ports import DeliveryFailed
from engine.ports import TransientError
from engine.webhooks import ROOTFS, Webhooks, outdated_builds
from tests.unit.fakes import FakeSecretStore, InMemoryEventLog

FAST = dict(first_wait_s=0.001, max_wait_s=0.01, builds_every_s=0)
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


class Clock:
    def __init__(self):
        self.now = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self):
        self.events, self.secrets = InMemoryEventLog(), FakeSecretStore()
        self.sender, self.checkpoints = Sender(), Checkpoints()
        self.outdated: list[dict] = []
        self.clock = Clock()
        self.cluster = Cluster(addon="shop-1234", app="shop")
        self.cluster.place_node(node_record("data", "host-a", "127.0.1.1", 30000, "node-a", "node-a-data", 256, "7.0.15"))
        self.cluster.mark_node_started("node-a")

    async def notifier(self) -> Notifier:
        """The first engine's: the log holds the addon's cluster."""
        await self.events.open()
        await self.events.save(self.cluster)
        notifier = Notifier(self.events, self.sender, self.secrets, self.checkpoints, self._outdated, **FAST,
                            clock=self.clock)
        await notifier.start()
        return notifier

    async def watched(self) -> tuple[Notifier, str, int]:
        """A started notifier with one webhook registered (to URL), and its position then."""
        notifier = await self.notifier()
        hook = await self.register(URL)
        return notifier, hook, notifier.hooks[hook].position

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
    notifier, hook, registered_at = await world.watched()
    world.sender.gates[URL] = asyncio.Event()  # the receiver does not answer yet
    position = await world.node_down()
    await asyncio.sleep(0.05)
    assert notifier.hooks[hook].position == registered_at
    await notifier.stop()  # a stop (or a crash) while the delivery hangs: its position is not past it
    assert world.checkpoints.states["notifier"]["hooks"][0]["position"] < position

    world.sender.gates.pop(URL).set()
    again = Notifier(world.events, world.sender, world.secrets, world.checkpoints, **FAST)
    await again.start()
    # The position moves in memory, then its checkpoint is written (on a thread): wait for the file.
    await eventually(lambda: world.checkpoints.states["notifier"]["hooks"][0]["position"] >= position)
    assert again.hooks[hook].position >= position
    [(body, headers)] = world.sender.to(URL)
    assert headers["X-Redis-Addons-Delivery"] == body["id"]
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


async def test_a_receiver_down_for_many_attempts_still_gets_the_message_with_its_id():
    world = World()
    notifier = await world.notifier()
    hook = await world.register(URL)
    world.sender.failures[URL] = 12  # more than a few seconds' worth of retries at the real waits
    position = await world.node_down()
    await eventually(lambda: notifier.hooks[hook].delivered == 1)
    posts = world.sender.to(URL)
    assert len(posts) == 13 and len({headers["X-Redis-Addons-Delivery"] for _, headers in posts}) == 1
    shown = notifier.hooks[hook].shown()
    assert (shown["dead_letters"], shown["attempts"], shown["retrying"], shown["position"]) == (0, 0, None, position)
    assert shown["last_error"] == "HTTP 500 Internal Server Error"  # kept: when it last failed
    await notifier.stop()


async def test_a_message_failing_for_a_day_is_a_dead_letter_shown_meanwhile_and_the_next_one_goes():
    world = World()
    notifier, hook, registered_at = await world.watched()
    world.sender.failures[URL] = 10**9
    position = await world.node_down()
    await eventually(lambda: notifier.hooks[hook].attempts >= 5)
    shown = notifier.hooks[hook].shown()  # what the webhook list shows meanwhile
    assert (shown["position"], shown["dead_letters"], shown["last_error"]) == (
        registered_at, 0, "HTTP 500 Internal Server Error")
    assert shown["retrying"] == world.sender.to(URL)[0][0]["id"]
    assert shown["failing_since"] == world.clock.now.isoformat()
    world.clock.now += timedelta(seconds=GIVE_UP_AFTER_S - 1)
    await asyncio.sleep(0.05)
    assert notifier.hooks[hook].dead_letters == 0 and notifier.hooks[hook].position == registered_at
    world.clock.now += timedelta(seconds=1)
    await eventually(lambda: notifier.hooks[hook].position >= position)
    shown = notifier.hooks[hook].shown()
    assert (shown["dead_letters"], shown["delivered"], shown["attempts"], shown["retrying"]) == (1, 0, 0, None)
    world.sender.failures[URL] = 0
    world.cluster.mark_node_recovered("node-a", "restarted on its data", "2026-12-02T12:02:00+00:00")
    await world.events.save(world.cluster)
    await eventually(lambda: notifier.hooks[hook].delivered == 1)
    assert world.sender.to(URL)[-1][0]["type"] == "node.up"
    await notifier.stop()


async def test_a_missing_signing_secret_holds_the_messages_until_one_is_made_again():
    world = World()
    notifier, hook, registered_at = await world.watched()
    world.secrets.forget(secret_name(hook))
    position = await world.node_down()
    await eventually(lambda: notifier.hooks[hook].attempts >= 2)
    shown = notifier.hooks[hook].shown()
    assert shown["last_error"].startswith("signing secret missing") and shown["position"] == registered_at
    assert world.sender.posts == [] and shown["dead_letters"] == 0
    secret = world.secrets.password_for(secret_name(hook))  # what registering it again does
    await eventually(lambda: notifier.hooks[hook].position >= position)
    [(body, headers)] = world.sender.to(URL)
    assert headers["X-Redis-Addons-Signature"] == signature(secret, json.dumps(body, sort_keys=True).encode())
    assert notifier.hooks[hook].delivered == 1
    await notifier.stop()


async def test_a_stop_whose_checkpoint_cannot_be_written_still_stops():
    world = World()
    notifier = await world.notifier()
    closed = []

    async def close():
        closed.append(True)

    def full_disk(name, state):
        raise OSError(28, "No space left on device")

    world.sender.close, world.checkpoints.save = close, full_disk
    await notifier.stop()
    assert closed == [True]


async def test_a_cancelled_checkpoint_write_ends_before_another_begins():
    world = World()
    notifier = await world.notifier()
    await notifier.stop()
    writing, most, release = [0], [0], threading.Event()

    def slow_save(name, state):
        writing[0] += 1
        most[0] = max(most[0], writing[0])
        release.wait(5)
        writing[0] -= 1

    world.checkpoints.save = slow_save
    try:
        first = asyncio.create_task(notifier._save())
        await eventually(lambda: writing[0] == 1)
        first.cancel()  # a webhook removed, or the engine stopping, while its task writes
        second = asyncio.create_task(notifier._save())
        await asyncio.sleep(0.1)
        assert most[0] == 1
    finally:
        release.set()
    await second
    assert first.cancelled() and most[0] == 1


async def test_a_registration_hands_out_the_secret_that_is_kept_even_if_a_removal_forgot_it_meanwhile():
    events, secrets = InMemoryEventLog(), FakeSecretStore()
    await events.open()
    webhooks = Webhooks(events, secrets, None, None, SimpleNamespace(), SimpleNamespace())
    await webhooks.start()
    save = events.save

    async def save_racing_a_removal(*aggregates):
        for webhook in aggregates:  # the secret made for it forgotten as a removal's would be
            secrets.forget(secret_name(str(webhook.id)))
        return await save(*aggregates)

    events.save = save_racing_a_removal
    registered = await webhooks.register(URL)
    kept = secrets.peek(secret_name(registered["webhook"]["id"]))
    assert kept is not None and registered["secret"] == kept
    await webhooks.stop()


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
    world.outdated = [{"app": "shop", "addon": "shop-1234", "version": "7.0.15", "build": "sha256:new",
                       "nodes": ["node-a"]}]
    assert await notifier.check_builds() == 1
    await eventually(lambda: len(world.sender.to(URL)) == 1)
    assert await notifier.check_builds() == 0  # told already
    world.outdated[0]["build"] = "sha256:newer"
    assert await notifier.check_builds() == 1
    await eventually(lambda: len(world.sender.to(URL)) == 2)
    assert [b["build"] for b, _ in world.sender.to(URL)] == ["sha256:new", "sha256:newer"]
    webhook = await world.events.get(Webhook.id_for(URL, None))
    webhook.remove()
    await world.events.save(webhook)
    assert hook not in notifier.hooks
    world.outdated[0]["build"] = "sha256:newest"
    assert await notifier.check_builds() == 0
    await notifier.stop()


async def test_outdated_builds_are_named_alike_on_every_host_and_a_silent_host_or_bad_addon_stops_no_other():
    from domain.catalog import VersionCatalog

    versions = VersionCatalog.load()
    version = next(iter(versions)).version
    asked = []

    class Runtime:
        async def image_labels(self, host, image):
            asked.append(host)
            if host == "host-a":
                raise TransientError("Docker on host-a did not answer")
            return {ROOTFS: "abc"} if host == "host-b" else {}

        async def image_id(self, host, image):
            return f"sha256:id-on-{host}"

    def node(name, host, at=version):
        return {"id": name, "host": host, "version": at, "build": "outdated"}

    async def outdated():
        return [{"app": "shop", "addon": "shop-1", "version": version,
                 "nodes": [node("n2", "host-b"), node("n1", "host-a")]},
                {"app": "old", "addon": "old-1", "version": "0.0.1", "nodes": [node("n3", "host-b", "0.0.1")]},
                {"app": "blog", "addon": "blog-1", "version": version, "nodes": [node("n4", "host-c")]}]

    maintenance = SimpleNamespace(outdated=outdated, builds=SimpleNamespace(runtime=Runtime(), versions=versions))
    assert await outdated_builds(maintenance) == [
        {"app": "shop", "addon": "shop-1", "version": version, "build": "sha256:abc", "nodes": ["n2", "n1"]},
        {"app": "blog", "addon": "blog-1", "version": version, "build": "sha256:id-on-host-c", "nodes": ["n4"]}]
    assert asked == ["host-a", "host-b", "host-c"]  # in name order: the same host each round


async def test_a_stopped_notifier_starts_nothing_for_a_webhook_registered_after():
    """A process that lost the duties (engine/duties.py) stops its notifier: a webhook registered meanwhile is
    sent by the process that leads now, not by this one too."""
    world = World()
    notifier = await world.notifier()
    await notifier.stop()
    await world.register(URL)
    await world.node_down()
    await asyncio.sleep(0.05)
    assert notifier._tasks == {} and world.sender.posts == []


async def test_the_book_is_read_from_the_webhooks_events_only_and_holds_every_webhook_not_removed():
    """A first start reads the book without decoding the log's other events (most of a large log)."""
    world = World()
    notifier = await world.notifier()
    kept, removed = await world.register(URL), await world.register(SLOW_URL)
    for number in range(20):  # the rest of the log: other addons' clusters
        await world.events.save(Cluster(addon=f"shop-{number}", app="shop"))
    webhook = await world.events.get(UUID(removed))
    webhook.remove()
    await world.events.save(webhook)
    await notifier.stop()
    end = await world.events.max_position()

    decoded = []
    select = world.events.select

    async def counting(after: int, limit: int = 500, of: tuple = ()):
        batch = await select(after, limit, of)
        decoded.extend(type(event).__qualname__ for _, event in batch)
        return batch

    world.events.select = counting
    again = Notifier(world.events, None, world.secrets, None, **FAST)  # no checkpoint: the whole log
    await again.load()
    assert set(decoded) == {"Webhook.Registered", "Webhook.Removed"}
    assert set(again.hooks) == {kept} and again.book_position == end


async def test_a_webhook_registered_as_the_book_is_read_is_in_it():
    """Saved after the book's last read asked the store, told before the book was loaded: it is not lost."""
    world = World()
    await world.events.open()
    notifier = Notifier(world.events, None, world.secrets, None, **FAST)
    select, registered = world.events.select, []

    async def registering_as_it_reads(after: int, limit: int = 500, of: tuple = ()):
        batch = await select(after, limit, of)
        if not batch and not registered:
            registered.append(await world.register(URL))
        return batch

    world.events.select = registering_as_it_reads
    await notifier.load()
    assert set(notifier.hooks) == set(registered) and registered


async def test_a_process_that_does_not_send_keeps_the_book_and_writes_no_checkpoint():
    """Every process serves the API: one that does not hold the duties lists, registers and removes webhooks
    too (a registration there answered with an error, a listing nothing), and leaves the checkpoint alone."""
    world = World()
    sending = await world.notifier()
    other = Webhooks(world.events, world.secrets, world.sender, world.checkpoints, None, None)
    await other.load()  # the other process's start: no duties

    made = await other.register(URL)
    assert made["webhook"]["url"] == URL and made["secret"]
    assert [h["id"] for h in await other.list()] == [made["webhook"]["id"]]
    assert made["webhook"]["id"] in sending.hooks  # the sending process heard of it, and sends to it
    await world.node_down()
    await eventually(lambda: len(world.sender.to(URL)) == 1)
    await sending.stop()
    written = json.dumps(world.checkpoints.states)

    await other.remove(made["webhook"]["id"])
    await other.stop()
    assert await other.list() == [] and json.dumps(world.checkpoints.states) == written
    assert other.notifier._early == [] and other.notifier._tasks == {}


async def test_a_process_taking_the_duties_over_resumes_each_webhook_where_the_sender_left_it():
    world = World()
    first = await world.notifier()
    hook = await world.register(URL)
    second = Notifier(world.events, world.sender, world.secrets, world.checkpoints, **FAST, clock=world.clock)
    await second.load()  # its engine's start, the first one sending
    delivered_at = await world.node_down()
    await eventually(lambda: len(world.sender.to(URL)) == 1)
    await eventually(lambda: first.hooks[hook].position >= delivered_at)
    await first.stop()  # the duties lost (or the process stopped): its checkpoint says where the webhook is

    await second.start()
    assert second.hooks[hook].position >= delivered_at and second.hooks[hook].delivered == 1
    world.cluster.mark_node_recovered("node-a", "its container runs again", "2026-12-02T12:02:00+00:00")
    await world.events.save(world.cluster)
    await eventually(lambda: len(world.sender.to(URL)) == 2)
    await asyncio.sleep(0.05)
    assert [body["type"] for body, _ in world.sender.to(URL)] == ["node.down", "node.up"]  # none sent twice
    await second.stop()


async def test_a_notifier_not_reading_its_book_keeps_nothing_of_the_registrations_it_hears():
    """What it hears before its book is read is read from the log then: kept meanwhile, it would only grow."""
    world = World()
    await world.events.open()
    notifier = Notifier(world.events, None, world.secrets, None, **FAST)
    for number in range(5):
        await world.register(f"{URL}/{number}")
    assert notifier._early == [] and notifier.hooks == {}
    await notifier.load()
    assert len(notifier.hooks) == 5 and notifier._early == []

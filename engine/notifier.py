"""Delivers notifications to webhooks, at least once.

Each webhook follows the event log on its own task, from the position after its registration: it maps
each event to a message (domain/notifications.py), posts the ones of its scope, and moves its position
past an event only once the message was delivered, or given up after retrying it for a day (a dead letter,
counted with the last error): a receiver down for hours still gets every message. So a slow or dead
receiver holds back its own messages only; its failed attempts and last error show meanwhile. The positions, the
counts and the builds each webhook was told of are kept in a checkpoint (written after each delivery);
a crash between a delivery and its checkpoint sends it again, with the same ID.

The webhooks registered (the book) are read from the log too, by every process (each serves the API that
lists them): at the engine's start from the checkpoint's position, then from each event saved, as the
inventory is (engine/inventory_keeper.py). Only the process holding the duties sends (start .. stop), and
only it writes the checkpoint; one that takes the duties over resumes each webhook where it says."""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from domain.notifications import (build_key, build_outdated, delivery_id, event_key, for_webhook, may_notify,
                                  message_for, signature)
from domain.webhook import Webhook
from engine.monitoring_ports import DeliveryFailed, WebhookSender
from engine.ports import Checkpoints, SecretStore
from engine.store import AggregateNotFoundError, EventLog

log = structlog.get_logger("notifier")

NAME, SHAPE = "notifier", 1  # the checkpoint's name, and its shape (another shape is dropped)
POLL_S = 2.0  # a webhook's task also looks at the log this often (events saved by another process)
SAVE_EVERY_S = 5.0  # positions moved past events that made no message are written this often
BATCH = 200
MESSAGES_KEPT = 1000  # messages made, by position, shared by the webhooks' tasks
BOOK_EVENTS = (Webhook.Registered, Webhook.RegisteredAgain, Webhook.Removed)  # what the book is made of
GIVE_UP_AFTER_S = 24 * 3600.0  # a message is retried this long after its first failure, then a dead letter


class SecretMissing(DeliveryFailed):
    """The webhook's signing secret is not in the store (removed meanwhile, or the store lost it): its
    messages wait, as for a receiver down; registering the webhook again makes a new secret."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def secret_name(webhook_id: str) -> str:
    """Its signing secret's name in the SecretStore."""
    return "webhook-" + webhook_id.replace("-", "")


@dataclass
class Hook:
    id: str
    url: str
    app: str | None  # None: every app's
    registered_at: str
    position: int  # the last event of the log this webhook is done with
    delivered: int = 0
    dead_letters: int = 0  # messages given up after retrying them for give_up_after_s
    retrying: str | None = None  # the delivery being retried (its ID), its failed attempts, since when
    attempts: int = 0
    failing_since: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    builds: dict[str, str] = field(default_factory=dict)  # addon -> the build it was told is current

    def shown(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "builds"}


class Notifier:
    def __init__(self, events: EventLog, sender: WebhookSender | None, secrets: SecretStore,
                 checkpoints: Checkpoints | None, outdated: Callable[[], Awaitable[list[dict]]] | None = None,
                 first_wait_s: float = 0.5, max_wait_s: float = 300.0, give_up_after_s: float = GIVE_UP_AFTER_S,
                 builds_every_s: float = 300.0, clock: Callable[[], datetime] = utc_now):
        self.events, self.sender, self.secrets, self.checkpoints = events, sender, secrets, checkpoints
        self.outdated, self.builds_every_s, self.clock = outdated, builds_every_s, clock
        self.first_wait_s, self.max_wait_s, self.give_up_after_s = first_wait_s, max_wait_s, give_up_after_s
        self.hooks: dict[str, Hook] = {}
        self.book_position = 0
        self._loaded = self._loading = self._sending = False
        self._early: list[tuple[int, object]] = []  # the webhooks' events told while the book is read
        self._tasks: dict[str, asyncio.Task] = {}  # webhook id -> its task; also "builds" and "saver"
        self._wakes: dict[str, asyncio.Event] = {}
        self._queued: dict[str, dict[str, dict]] = {}  # webhook id -> key -> build message to deliver
        self._messages: OrderedDict[int, dict | None] = OrderedDict()
        self._save_lock = asyncio.Lock()
        self._dirty = False
        events.on_saved(self._saw)

    # -- the book ---------------------------------------------------------------------------

    async def load(self) -> None:
        self._loading, self._early = True, []
        try:
            await self._read_book()
            self._loaded = True
        finally:
            self._loading, self._early = False, []

    async def _read_book(self) -> None:
        state = await asyncio.to_thread(self.checkpoints.load, NAME) if self.checkpoints else None
        if state and state.get("shape") == SHAPE and state["book_position"] <= await self.events.max_position():
            self.book_position = state["book_position"]
            self.hooks = {h["id"]: Hook(**h) for h in state["hooks"]}
        elif state:  # another shape, or ahead of the log (another history): the log is read from its start
            log.warning("notifier checkpoint dropped", checkpoint=state.get("book_position"))
        # Only the webhooks' own events are read (and decoded): the book is the whole log's at `end`.
        end = await self.events.max_position()
        while batch := await self.events.select(self.book_position, 1000, of=BOOK_EVENTS):
            for position, event in batch:
                self._apply(position, event)
        self.book_position, self._dirty = max(self.book_position, end), True
        # Told while the book was read (saved after a read's query): not in the book yet.
        for position, event in self._early:
            if position > self.book_position:
                self._apply(position, event)

    async def _resume_deliveries(self) -> None:
        """The book was kept while another process sent (or none did): where the sender left each webhook
        is in the checkpoint it wrote; a webhook registered after that starts from its registration."""
        state = await asyncio.to_thread(self.checkpoints.load, NAME) if self.checkpoints else None
        if not state or state.get("shape") != SHAPE:
            return
        for kept in state["hooks"]:
            hook = self.hooks.get(kept["id"])
            if hook and kept["registered_at"] == hook.registered_at and kept["position"] > hook.position:
                self.hooks[hook.id] = Hook(**kept)

    def _saw(self, position: int, event) -> None:
        """Each event this process saves: a webhook registered is in the book at once; the tasks look."""
        if not self._loaded:
            if self._loading and isinstance(event, BOOK_EVENTS):
                self._early.append((position, event))  # load() may have read past it, or not
            return  # else load() reads it from the log
        if position <= self.book_position:
            return
        self._apply(position, event)
        for wake in self._wakes.values():
            wake.set()

    def _apply(self, position: int, event) -> None:
        hook_id = str(event.originator_id)
        if isinstance(event, (Webhook.Registered, Webhook.RegisteredAgain)):
            # Told of what happens after its registration, not before.
            self.hooks[hook_id] = Hook(hook_id, event.url, event.app, event.registered_at, position)
            self._spawn(self.hooks[hook_id])
        elif isinstance(event, Webhook.Removed):
            self.hooks.pop(hook_id, None)
            self._queued.pop(hook_id, None)
            if task := self._tasks.pop(hook_id, None):
                task.cancel()
        self.book_position = position
        self._dirty = True

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """This process sends from now on (it holds the duties)."""
        if self._loaded:
            await self._resume_deliveries()
        else:
            await self.load()
        self._sending = True
        if self.sender is None:
            return
        for hook in self.hooks.values():
            self._spawn(hook)
        if self.outdated is not None and self.builds_every_s > 0:
            self._tasks["builds"] = self._task(self._builds_round(), "notifier-builds")
        if self.checkpoints is not None:
            self._tasks["saver"] = self._task(self._saver(), "notifier-checkpoint")

    async def stop(self) -> None:
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._sending:
            self._sending = False  # first: it starts no task for a webhook registered now (another process sends)
            try:
                await self._save()
            except Exception as e:  # a full disk: the engine still stops; more is sent again after the restart
                log.warning("notifier checkpoint not written at stop", error=str(e))
        if self.sender is not None:
            await self.sender.close()

    def _spawn(self, hook: Hook) -> None:
        if self.sender is not None and self._sending and hook.id not in self._tasks:
            self._wakes.setdefault(hook.id, asyncio.Event())
            self._tasks[hook.id] = self._task(self._follow(hook), f"webhook-{hook.id[:8]}")

    @staticmethod
    def _task(coroutine, name: str) -> asyncio.Task:
        return asyncio.create_task(coroutine, name=name, context=contextvars.Context())

    # -- one webhook's task ---------------------------------------------------------------------

    async def _follow(self, hook: Hook) -> None:
        wake = self._wakes[hook.id]
        while True:
            wake.clear()
            try:
                moved = await self._round(hook)
            except Exception:  # the log unreadable for a moment, say: the same events are tried again
                log.exception("webhook round failed; retrying", webhook=hook.id)
                moved = False
            if not moved:
                with suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):
                        await wake.wait()

    async def _round(self, hook: Hook) -> bool:
        """Deliver what is queued and the next batch of the log; whether there was any."""
        queued = self._queued.get(hook.id) or {}
        while queued:
            key, message = next(iter(queued.items()))
            await self._deliver(hook, message, key)
            hook.builds[message["addon"]] = message["build"]
            queued.pop(key, None)
            await self._save()
        batch = await self.events.select(hook.position, BATCH)
        for position, event in batch:
            message = await self._message(position, event)
            told = message is not None and for_webhook(message, hook.app)
            if told:
                await self._deliver(hook, message, event_key(position))
            hook.position, self._dirty = position, True  # only now: after the delivery, or giving it up
            if told:
                await self._save()
        return bool(batch)

    async def _message(self, position: int, event) -> dict | None:
        if not may_notify(event):
            return None
        if position not in self._messages:
            try:
                subject = await self.events.get(event.originator_id)
            except AggregateNotFoundError:
                subject = None
            self._messages[position] = message_for(event, subject) if subject is not None else None
            while len(self._messages) > MESSAGES_KEPT:
                self._messages.popitem(last=False)
        return self._messages[position]

    async def _deliver(self, hook: Hook, message: dict, key: str) -> None:
        """Retried with backoff (up to max_wait_s between attempts) until delivered, or given up
        give_up_after_s after its first failure (a dead letter). A restart resumes the retries of the same
        delivery from its first failure's time."""
        delivery = delivery_id(key, hook.id)
        body = json.dumps({"id": delivery, **message}, sort_keys=True).encode()
        if hook.retrying != delivery:
            hook.retrying, hook.attempts, hook.failing_since = delivery, 0, None
        retrying = AsyncRetrying(stop=lambda _: self._given_up(hook), reraise=True,
                                 wait=wait_exponential(multiplier=self.first_wait_s, max=self.max_wait_s),
                                 retry=retry_if_exception_type(DeliveryFailed))
        try:
            async for attempt in retrying:
                with attempt:
                    if hook.id not in self.hooks:
                        return  # removed meanwhile: told nothing more
                    await self._post(hook, message, delivery, body)
        except DeliveryFailed as e:
            hook.dead_letters += 1
            log.error("webhook delivery given up", webhook=hook.id, delivery=delivery, type=message["type"],
                      attempts=hook.attempts, since=hook.failing_since, error=str(e))
        else:
            hook.delivered += 1
            log.info("webhook delivered", webhook=hook.id, delivery=delivery, type=message["type"])
        hook.retrying, hook.attempts, hook.failing_since, self._dirty = None, 0, None, True

    async def _post(self, hook: Hook, message: dict, delivery: str, body: bytes) -> None:
        try:
            # Read at each attempt: a webhook registered again after its secret was lost signs with the new one.
            secret = await asyncio.to_thread(self.secrets.peek, secret_name(hook.id))
            if secret is None:
                raise SecretMissing("signing secret missing: register the webhook again to make a new one")
            headers = {"Content-Type": "application/json", "User-Agent": "redis-addons-notifier",
                       "X-Redis-Addons-Delivery": delivery, "X-Redis-Addons-Event": message["type"],
                       "X-Redis-Addons-Signature": signature(secret, body)}
            await self.sender.post(hook.url, body, headers)
        except DeliveryFailed as e:
            now, error = self.clock().isoformat(), str(e)
            if hook.attempts == 0 or error != hook.last_error:  # logged once per cause, not at each attempt
                (log.error if isinstance(e, SecretMissing) else log.warning)(
                    "webhook delivery failed; retrying", webhook=hook.id, delivery=delivery, type=message["type"],
                    error=error)
            hook.attempts += 1
            hook.failing_since = hook.failing_since or now
            hook.last_error, hook.last_error_at, self._dirty = error, now, True
            raise

    def _given_up(self, hook: Hook) -> bool:
        if hook.failing_since is None:
            return False
        return (self.clock() - datetime.fromisoformat(hook.failing_since)).total_seconds() >= self.give_up_after_s

    # -- builds outdated (not events: looked at now and then) -------------------------------------------

    async def check_builds(self) -> int:
        """Queue an `addon.build_outdated` message for each webhook not yet told of an addon's new image."""
        rows = await self.outdated()
        queued = 0
        for hook in list(self.hooks.values()):
            waiting = self._queued.setdefault(hook.id, {})
            for row in rows:
                key = build_key(row["addon"], row["build"])
                if for_webhook(row, hook.app) and hook.builds.get(row["addon"]) != row["build"] and key not in waiting:
                    waiting[key] = build_outdated(row, self.clock())
                    queued += 1
            if waiting and hook.id in self._wakes:
                self._wakes[hook.id].set()
        return queued

    async def _builds_round(self) -> None:
        while True:
            await asyncio.sleep(self.builds_every_s)  # first after a round: a start asks Docker nothing more
            try:
                await self.check_builds()
            except Exception as e:  # Docker not answering: looked at again next round
                log.warning("outdated builds not checked", error=str(e))

    # -- the checkpoint -----------------------------------------------------------------------

    async def _saver(self) -> None:
        while True:
            await asyncio.sleep(SAVE_EVERY_S)
            if self._dirty:
                try:
                    await self._save()
                except Exception as e:  # a full disk: more is sent again after a crash, no more
                    log.warning("notifier checkpoint not written", error=str(e))

    async def _save(self) -> None:
        if self.checkpoints is None:
            return
        async with self._save_lock:  # one writer of the file at a time
            self._dirty = False
            state = {"shape": SHAPE, "book_position": self.book_position,
                     "hooks": [asdict(h) for h in self.hooks.values()]}
            write = asyncio.ensure_future(asyncio.to_thread(self.checkpoints.save, NAME, state))
            try:
                await asyncio.shield(write)
            except BaseException:
                self._dirty = True  # written again by the saver, or at stop
                # Cancelled (a webhook removed, the engine stopping): the thread still writes; the lock is held
                # until it ends, lest another writer write the same temp file at once.
                while not write.done():
                    with suppress(asyncio.CancelledError):
                        await asyncio.wait([write])
                write.exception()  # its own error, if any, marked seen: the one raised is the first
                raise

"""Webhooks: registered by an operator (every app's notifications) or for one app, listed, removed; and the
notifier that delivers to them (engine/notifier.py). A webhook's signing secret is made at registration,
kept in the SecretStore, and shown only in the registration's answer."""

from __future__ import annotations

import asyncio
from uuid import UUID

import structlog

from domain.webhook import UnknownWebhook, Webhook, webhook_url
from engine.addon_lookup import AddonLookup
from engine.maintenance import Builds, Maintenance
from engine.notifier import Notifier, secret_name, utc_now
from engine.monitoring_ports import WebhookSender
from engine.ports import Checkpoints, EffectError, SecretStore, TransientError
from engine.store import AggregateNotFoundError, EventLog, IntegrityError

log = structlog.get_logger("webhooks")

ROOTFS = "redis-addons.rootfs-sha256"  # scripts/image_record.py: the imported tarball's SHA-256


class Webhooks:
    def __init__(self, events: EventLog, secrets: SecretStore, sender: WebhookSender | None,
                 checkpoints: Checkpoints | None, maintenance: Maintenance, lookup: AddonLookup, **notifier_options):
        self.events, self.secrets, self.lookup = events, secrets, lookup
        self._changing = asyncio.Lock()  # a registration and a removal do not interleave (the secret's life)
        self.notifier = Notifier(events, sender, secrets, checkpoints, lambda: outdated_builds(maintenance),
                                 **notifier_options)

    async def load(self) -> None:
        """The book, at the engine's start: every process lists and removes webhooks; one sends (start)."""
        await self.notifier.load()

    async def start(self) -> None:
        await self.notifier.start()

    async def stop(self) -> None:
        await self.notifier.stop()

    async def register(self, url: str, app: str | None = None, by_operator: bool = True) -> dict:
        """`app` None: an operator's webhook, told of every app. Registering it again changes nothing.
        `by_operator` False (a token scoped to apps): no loopback URL (domain/webhook.py)."""
        url = webhook_url(url, loopback_allowed=by_operator)
        if app is not None:
            await self.lookup.known_app(app)
        webhook_id = Webhook.id_for(url, app)
        async with self._changing:
            await self._record(webhook_id, url, app)
            # Read again once recorded: a removal that slipped in (another engine on the same store) forgot the
            # one made before, and this makes the one the notifier signs with, which the registrant must get.
            secret = await asyncio.to_thread(self.secrets.password_for, secret_name(str(webhook_id)))
            shown = self._shown(str(webhook_id))
        log.info("webhook registered", webhook=str(webhook_id), app=app)
        return {"webhook": shown, "secret": secret}

    async def _record(self, webhook_id: UUID, url: str, app: str | None) -> None:
        # Made before the webhook is recorded: a webhook never exists without its secret.
        await asyncio.to_thread(self.secrets.password_for, secret_name(str(webhook_id)))
        for _ in range(3):  # a concurrent registration or removal: decided again on what it recorded
            try:
                webhook: Webhook = await self.events.get(webhook_id)
                webhook.register_again(utc_now().isoformat())
            except AggregateNotFoundError:
                webhook = Webhook(url=url, app=app, registered_at=utc_now().isoformat())
            try:
                await self.events.save(webhook)
                break
            except IntegrityError:
                continue

    async def list(self, app: str | None = None) -> list[dict]:
        """Every webhook (`app` None), or those of one app."""
        if app is not None:
            await self.lookup.known_app(app)
        hooks = [h for h in self.notifier.hooks.values() if app is None or h.app == app]
        return [h.shown() for h in sorted(hooks, key=lambda h: (h.registered_at, h.id))]

    async def remove(self, webhook_id: str, app: str | None = None) -> dict:
        hook = self.notifier.hooks.get(_uuid(webhook_id))
        if hook is None or (app is not None and hook.app != app):
            raise UnknownWebhook(f"unknown webhook {webhook_id!r}" + (f" for app {app!r}" if app else ""))
        shown = hook.shown()
        async with self._changing:
            webhook: Webhook = await self.events.get(UUID(hook.id))
            webhook.remove()
            await self.events.save(webhook)
            await asyncio.to_thread(self.secrets.forget, secret_name(hook.id))
        log.info("webhook removed", webhook=hook.id, app=hook.app)
        return shown

    def _shown(self, webhook_id: str) -> dict:
        return self.notifier.hooks[webhook_id].shown()


def _uuid(text: str) -> str:
    try:
        return str(UUID(str(text)))
    except ValueError:
        raise UnknownWebhook(f"unknown webhook {text!r}: not a webhook ID") from None


async def outdated_builds(maintenance: Maintenance) -> list[dict]:
    """Each addon running an outdated build, with the build its version's tag names now: an addon is told
    once per new build (engine/maintenance.py tells which builds are outdated). An addon whose build
    cannot be read now is left for the next round; the others are told."""
    found = []
    for row in await maintenance.outdated():
        try:
            build = await current_build(maintenance.builds, row["nodes"])
        except Exception as e:  # its version gone from the catalogue, say: the other addons are still told
            log.warning("outdated build not read", addon=row["addon"], error=str(e))
            continue
        if build is not None:
            found.append({"app": row["app"], "addon": row["addon"], "version": row["version"], "build": build,
                          "nodes": [n["id"] for n in row["nodes"]]})
    return found


async def current_build(builds: Builds, nodes: list[dict]) -> str | None:
    """The build the nodes' version's tag names now, named the same on every host: the SHA-256 of its root
    filesystem, which the setup records as a label on the image it imports into each host (image IDs
    differ from host to host: keyed on one, an addon whose nodes moved would be told again). Hosts asked
    in name order, a silent one skipped; None when none answers."""
    image = builds.versions.get(nodes[0]["version"]).image
    for host in sorted({n["host"] for n in nodes}):
        try:
            labels = await builds.runtime.image_labels(host, image)
            if labels is None:
                continue
            if labels.get(ROOTFS):
                return "sha256:" + labels[ROOTFS]
            return await builds.runtime.image_id(host, image)  # an image recorded before the label existed
        except (EffectError, TransientError) as e:
            log.info("image not read; asking another host", host=host, image=image, error=str(e))
    return None

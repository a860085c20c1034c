"""Webhooks: registered by an operator (every app's notifications) or for one app, listed, removed; and the
notifier that delivers to them (engine/notifier.py). A webhook's signing secret is made at registration,
kept in the SecretStore, and shown only in the registration's answer."""

from __future__ import annotations

import asyncio
from uuid import UUID

import structlog

from domain.webhook import UnknownWebhook, Webhook, webhook_url
from engine.addon_lookup import AddonLookup
from engine.maintenance import Maintenance
from engine.notifier import Notifier, secret_name, utc_now
from engine.ports import Checkpoints, SecretStore, WebhookSender
from engine.store import AggregateNotFoundError, EventLog, IntegrityError

log = structlog.get_logger("webhooks")


class Webhooks:
    def __init__(self, events: EventLog, secrets: SecretStore, sender: WebhookSender | None,
                 checkpoints: Checkpoints | None, maintenance: Maintenance, lookup: AddonLookup, **notifier_options):
        self.events, self.secrets, self.lookup = events, secrets, lookup
        self.notifier = Notifier(events, sender, secrets, checkpoints, lambda: outdated_builds(maintenance),
                                 **notifier_options)

    async def start(self) -> None:
        await self.notifier.start()

    async def stop(self) -> None:
        await self.notifier.stop()

    async def register(self, url: str, app: str | None = None) -> dict:
        """`app` None: an operator's webhook, told of every app. Registering it again changes nothing."""
        url = webhook_url(url)
        if app is not None:
            await self.lookup.known_app(app)
        webhook_id = Webhook.id_for(url, app)
        # Made before the webhook is recorded: a webhook never exists without its secret.
        secret = await asyncio.to_thread(self.secrets.password_for, secret_name(str(webhook_id)))
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
        log.info("webhook registered", webhook=str(webhook_id), app=app)
        return {"webhook": self._shown(str(webhook_id)), "secret": secret}

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
    """Each addon running an outdated build, with the image ID its version's tag names now: an addon is
    told once per new image (engine/maintenance.py tells which builds are outdated)."""
    found = []
    for row in await maintenance.outdated():
        node = row["nodes"][0]
        image = maintenance.builds.versions.get(node["version"]).image
        image_id = await maintenance.builds.runtime.image_id(node["host"], image)
        if image_id is not None:
            found.append({"app": row["app"], "addon": row["addon"], "version": row["version"], "image_id": image_id,
                          "nodes": [n["id"] for n in row["nodes"]]})
    return found

"""The Webhook aggregate: a URL that receives the engine's notifications, for one app or for all.

Its ID comes from the URL and the scope, so registering the same URL twice is harmless; a webhook removed
and registered again is the same aggregate. Its signing secret is not here: it lives with the other
secrets (the engine's SecretStore), never in an event."""

from __future__ import annotations

from urllib.parse import urlparse
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.app import is_loopback_host, loopback_url
from domain.errors import DomainError, InvalidRestartMethod

ALL_APPS = "*"  # the scope of an operator's webhook, in its ID


class InvalidWebhookUrl(DomainError):
    rule = "webhook-url"
    status = 400


class LoopbackWebhookNeedsOperator(DomainError):
    """Loopback is where this machine's own services listen, unauthenticated ones among them (another app's
    restart hook, say): only the operator points the engine's requests there."""

    rule = "loopback-webhook-needs-operator"
    status = 403


class UnknownWebhook(DomainError):
    rule = "unknown-webhook"
    status = 404


def webhook_url(url: str | None, loopback_allowed: bool = True) -> str:
    """Loopback over http(s), or any https URL: the body is signed, but only TLS keeps it private off this
    machine. The same loopback rule as an app's restart hook (domain/app.py). `loopback_allowed` False (a
    token scoped to apps): an https URL off this machine only."""
    try:  # malformed brackets ("http://[::1", "https://[zz]/") raise ValueError
        parsed = urlparse(url or "")
        host, credentials = parsed.hostname, parsed.username is not None or parsed.password is not None
    except ValueError as e:
        named = repr(url) if "@" not in (url or "") else "holding user:password@"  # no credentials in an error
        raise InvalidWebhookUrl(f"webhook URL {named} is not a URL: {e}") from None
    if credentials:
        raise InvalidWebhookUrl(f"the webhook URL to {host} holds credentials (user:password@), which are "
                                "not kept: receivers check the X-Redis-Addons-Signature header instead")
    if parsed.scheme == "https" and host and not is_loopback_host(host):
        try:
            parsed.port
        except ValueError:
            raise InvalidWebhookUrl(f"webhook URL {url!r} has an invalid port") from None
        return url
    if not loopback_allowed and parsed.scheme in ("http", "https") and host and is_loopback_host(host):
        raise LoopbackWebhookNeedsOperator(
            f"webhook URL {url!r} refused: a loopback URL reaches this machine's own services, so only the "
            "operator may register one; a token scoped to apps registers an https URL of the app's receiver")
    try:
        return loopback_url(url)
    except InvalidRestartMethod as e:
        raise InvalidWebhookUrl(f"webhook URL {url!r} refused: an http URL must be on loopback (127.0.0.0/8, ::1 "
                                f"or localhost), elsewhere use https ({e})") from None


class Webhook(Aggregate):
    @staticmethod
    def create_id(url: str, app: str | None, **_) -> UUID:
        return Webhook.id_for(url, app)

    @staticmethod
    def id_for(url: str, app: str | None) -> UUID:
        return uuid5(NAMESPACE_URL, f"redis-addons:/webhooks/{app or ALL_APPS}/{url}")

    @event("Registered")
    def __init__(self, url: str, app: str | None, registered_at: str):
        """`app` None: every app's notifications (an operator's webhook)."""
        self.url, self.app, self.registered_at = url, app, registered_at
        self.removed = False

    def register_again(self, registered_at: str) -> None:
        """A removed webhook registered anew (its URL and scope are in the event for the log's readers)."""
        if self.removed:
            self._registered_again(url=self.url, app=self.app, registered_at=registered_at)

    @event("RegisteredAgain")
    def _registered_again(self, url: str, app: str | None, registered_at: str) -> None:
        self.registered_at, self.removed = registered_at, False

    def remove(self) -> None:
        if not self.removed:
            self._removed()

    @event("Removed")
    def _removed(self) -> None:
        self.removed = True

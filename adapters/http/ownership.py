"""What a scoped token may reach: its apps' things, and nothing that tells another app's exist.

A middleware after the bearer check decides for every route, from its path pattern and its match_info:
- `{app}` in the path: the app must be one of the token's, else the 404 of an app that never existed;
- `{addon}`, `{backup}`, `{operation_id}`, `{webhook}` in the path (with or without `{app}`): when it is
  another app's, the handler runs with a stand-in naming nothing in its place, so the client gets the very
  answer of a thing that does not exist (the handler's own, whatever its route), with the name it gave;
- a route naming none of these is the operator's (403) unless declared below: OPEN (reveals no app),
  LISTS (the handler keeps the token's apps' rows: `visible`, `visible_events`, `check_app`), GRANTED
  (opened by a grant on the token).
A new route is thus checked by default when its path names an app or one of those things, and refused
to scoped tokens when it names none, until it is declared here; a new kind of thing in paths gets an
owner function in OWNERS. An app named in a request's body is its handler's to check (`check_app`).
The operator (the installation's token) passes untouched."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

from aiohttp import web

from adapters.http.auth import ACCESS
from adapters.http.errors import error_response
from adapters.http.keys import ENGINE
from domain.errors import UnknownApp, UnknownOperation
from engine.access import NO_ACCESS, Access

# Routes (their path patterns) a scoped token may use although they name no app.
OPEN = frozenset({"/health", "/v1/openapi.json", "/v1/addon_providers/{provider}/plans",
                  "/v1/addon_providers/{provider}/versions",
                  "/dashboard", "/dashboard/signin", "/dashboard/signout", "/dashboard/static"})
# Lists whose handler keeps the token's apps' rows only (see visible, visible_events).
LISTS = frozenset({"/v1/operations", "/v1/events", "/v1/events/stream", "/v1/maintenance", "/dashboard/apps"})
# The operator's alone, although they name an app's thing: tokens, every app's webhooks, the read models' replay,
# an app's restart method (a docker label or a loopback hook reaches beyond the app: another app's containers
# would be recreated with this app's environment at its next restart).
OPERATOR_ONLY = frozenset({"/v1/tokens", "/v1/tokens/{token}", "/v1/webhooks", "/v1/webhooks/{webhook}", "/v1/apps",
                           "/v1/apps/{app}/restart", "/v1/admin/replay",
                           "/v1/hosts", "/v1/hosts/{host}", "/v1/hosts/{host}/drain"})  # the installation's hosts
# Routes opened to a token by a grant (domain/access_token.py GRANTS).
GRANTED = {"/metrics": "metrics"}


def access_of(request: web.Request) -> Access:
    return request.get(ACCESS, NO_ACCESS)


def unknown_app(app: str) -> UnknownApp:
    """What engine/addon_lookup.py answers for an app that never had an addon here."""
    return UnknownApp(f"unknown app {app!r}: it has never had an addon here")


def visible(request: web.Request, rows: list[dict], key: str = "app") -> list[dict]:
    access = access_of(request)
    return rows if access.is_operator else [row for row in rows if access.owns(row.get(key))]


def check_app(request: web.Request, app: str | None) -> None:
    """For a list filtered by an app the client names (`?app=`): another's is unknown."""
    if app is not None and not access_of(request).owns(app):
        raise unknown_app(app)


async def visible_events(request: web.Request, events: list[dict]) -> list[dict]:
    access = access_of(request)
    if access.is_operator:
        return events
    owners = request.app[ENGINE].access
    return [e for e in events if access.owns(await owners.owner_of(UUID(e["aggregate_id"])))]


# -- the owner of what a path names: its app, INSTALLATION (an operator's), None (no such thing) -----

INSTALLATION = ""  # owned by no app: never a scoped token's

async def _addon(engine, name: str) -> str | None:
    row = await asyncio.to_thread(engine.views.addon, name)
    return row and row["app"]


async def _backup(engine, backup: str) -> str | None:
    """From the event store, not the read models: a backup they have not projected yet (behind, or their disk
    full) would have no owner there, and a restore takes any app's backup. An aggregate of no app: refused."""
    try:
        backup_id = UUID(backup)
    except ValueError:
        return None  # not an ID: the handler says so
    owner = await engine.access.owner_of(backup_id)
    if owner is None and await engine.events.exists(backup_id):
        return INSTALLATION
    return owner


async def _operation(engine, operation_id: str) -> str | None:
    try:
        return (await engine.operation(operation_id))["app"]
    except UnknownOperation:
        return None


async def _webhook(engine, webhook: str) -> str | None:
    try:
        hook = engine.webhooks.notifier.hooks.get(str(UUID(webhook)))  # the notifier keys its hooks by text
    except ValueError:
        return None
    return None if hook is None else hook.app or INSTALLATION


# key in match_info -> its owner
OWNERS = {"addon": _addon, "backup": _backup, "operation_id": _operation, "webhook": _webhook}


def stand_in_for(key: str, value: str) -> str:
    """A value of the same kind that names nothing: an ID no one has, an addon name no app has."""
    fresh = uuid4()
    return f"{value.rsplit('-', 1)[0]}-gone{fresh.hex[:8]}" if key == "addon" else str(fresh)


def refused(request: web.Request, access: Access, why: str = "") -> web.Response:
    pattern = request.match_info.route.resource.canonical
    return error_response(403, "operator-only", f"{request.method} {pattern} is the operator's: a token scoped to apps "
                          f"({', '.join(sorted(access.apps))}) cannot use it{why}; use the installation's token")


@web.middleware
async def ownership_middleware(request: web.Request, handler):
    access = access_of(request)
    info = request.match_info
    if access.is_operator or info.http_exception is not None:  # no such route: the router's 404/405
        return await handler(request)
    pattern = info.route.resource.canonical if info.route.resource else ""
    if pattern in OPERATOR_ONLY:
        return refused(request, access)
    if pattern in OPEN or pattern in LISTS:
        return await handler(request)
    if pattern in GRANTED:
        if GRANTED[pattern] in access.grants:
            return await handler(request)
        return refused(request, access, f" without the {GRANTED[pattern]!r} grant")
    if "app" in info and not access.owns(info["app"]):
        return await not_found(request, unknown_app(info["app"]))
    named = [key for key in OWNERS if key in info]
    if "app" not in info and not named:
        return refused(request, access)
    engine = request.app[ENGINE]
    swapped = {}
    for key in named:
        owner = await OWNERS[key](engine, info[key])
        if owner is not None and not access.owns(owner):
            swapped[info[key]] = stand_in = stand_in_for(key, info[key])
            info[key] = stand_in
    if not swapped:
        return await handler(request)
    return await as_if_missing(request, handler, swapped)


async def as_if_missing(request: web.Request, handler, swapped: dict[str, str]):
    """Another app's thing named in the path: the handler runs with a stand-in that names nothing in its place,
    so the answer is the one a thing that does not exist gets (from the handler itself, whatever its route),
    with the name given put back in its words. A handler never acts on what does not exist."""
    def put_back(text: str) -> str:
        for given, stand_in in swapped.items():
            text = text.replace(stand_in, given)
        return text

    try:
        response = await handler(request)
    except Exception as error:  # a DomainError or BadRequest, answered by the error middleware in its words
        if error.args and isinstance(error.args[0], str):
            error.args = (put_back(error.args[0]), *error.args[1:])
        raise
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        response.body = put_back(response.body.decode("utf-8", "replace")).encode()
    return response


async def not_found(request: web.Request, error) -> web.Response:
    """Raised as the handler's own refusal would be: the same status, rule and message (the dashboard's
    pages show theirs as a page)."""
    if request.path.startswith("/dashboard/"):
        from adapters.http.dashboard.pages import base_context  # here: the dashboard imports auth, as this does
        from adapters.http.dashboard.render import page

        return page("refused.html", status=error.status, heading="Not found", message=str(error),
                    **base_context(request))
    raise error

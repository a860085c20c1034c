"""Who asked: every event saved records the requester of the command that made it (`requested_by`: the
token's id and name, never its secret).

The HTTP layer sets the requester for the time of a request (adapters/http/auth.py); a saga carries the
requester of whoever started it (engine/saga.py), the engine's own rounds (scheduler, watcher) are
"engine", and a call without either (the embedded library, a test) is "local". EventLog.save stamps the
pending events on the event loop's side: the store's worker thread does not see this task's context."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass

ATTRIBUTE = "requested_by"


@dataclass(frozen=True)
class Requester:
    id: str
    name: str

    def shown(self) -> dict:
        return {"id": self.id, "name": self.name}


OPERATOR = Requester("operator", "operator")  # the installation's token (its api-token file)
LOCAL = Requester("local", "local")  # the embedded library: a call made in this process, not over HTTP
ENGINE = Requester("engine", "engine")  # the engine's own rounds: scheduled backups, healing, renewals

_current: contextvars.ContextVar[Requester | None] = contextvars.ContextVar("requested_by", default=None)


def current() -> Requester:
    return _current.get() or LOCAL


@contextmanager
def requested_by(requester: Requester):
    reset = _current.set(requester)
    try:
        yield requester
    finally:
        _current.reset(reset)


def context_for(requester: Requester | None = None) -> contextvars.Context:
    """A fresh context (none of the caller's log bindings) holding only a requester: `requester`, else the
    caller's own (a saga keeps the requester of the request that started it)."""
    who = requester or _current.get()
    context = contextvars.Context()
    if who is not None:
        context.run(_current.set, who)
    return context


def stamp(*aggregates) -> None:
    """Record the current requester on each pending event of `aggregates` (before they are saved). Events
    are frozen dataclasses; eventsourcing's mapper stores an event's __dict__ and restores it whole, so the
    attribute round-trips; events recorded before it existed have none (see recorded_by)."""
    who = current().shown()
    for aggregate in aggregates:
        for pending in getattr(aggregate, "pending_events", None) or ():
            if ATTRIBUTE not in vars(pending):
                object.__setattr__(pending, ATTRIBUTE, who)


def recorded_by(event) -> dict | None:
    """Who asked for `event`; None for an event recorded before requesters were."""
    return vars(event).get(ATTRIBUTE)

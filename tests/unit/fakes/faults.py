"""Calls a fake can be told to fail: a number of times with TransientError (a retry cures them),
or for good with EffectError, optionally only for some arguments (`host="host-b"`). Every call is
recorded, so that a test can count what was asked. A call can also be held at a gate until the
test opens it, to order what runs concurrently."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from engine.ports import EffectError, TransientError
from tests.unit.fakes.crash import CrashSwitch


@dataclass
class Rule:
    call: str
    where: dict
    times: int | None  # None: every time
    transient: bool

    def matches(self, call: str, args: dict) -> bool:
        return call == self.call and all(args.get(k) == v for k, v in self.where.items())


class Faulty:
    """What every fake shares: its failing calls and the record of its calls."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self.calls: list[tuple[str, dict]] = []
        self.crash_switch: CrashSwitch | None = None  # shared by a world's fakes: a crash at its Nth call
        self._gates: list[tuple[str, dict, asyncio.Event]] = []

    def fail(self, call: str, times: int | None = 1, **where) -> None:
        """`call` raises TransientError `times` times (None: until healed), where its arguments match `where`."""
        self._rules.append(Rule(call, where, times, transient=True))

    def fail_for_good(self, call: str, times: int | None = None, **where) -> None:
        """`call` raises EffectError `times` times (None: until healed), where its arguments match `where`."""
        self._rules.append(Rule(call, where, times, transient=False))

    def heal(self, call: str | None = None) -> None:
        """`call` (or every call) works again."""
        self._rules = [r for r in self._rules if call is not None and r.call != call]

    def gate(self, call: str, **where) -> asyncio.Event:
        """`call` (where its arguments match) waits, before any effect, until the returned event is set."""
        opened = asyncio.Event()
        self._gates.append((call, where, opened))
        return opened

    async def _passing(self, call: str, **args) -> None:
        """`_called`, then wait at the gates this call meets."""
        self._called(call, **args)
        for name, where, opened in list(self._gates):
            if name == call and all(args.get(k) == v for k, v in where.items()):
                await opened.wait()

    def calls_to(self, call: str, **where) -> list[dict]:
        return [args for name, args in self.calls if name == call and all(args.get(k) == v for k, v in where.items())]

    def _called(self, call: str, **args) -> None:
        """Record the call, then fail it if a rule says so (or die here, if the crash switch says so)."""
        if self.crash_switch is not None:
            self.crash_switch.tick(call, args)
        self.calls.append((call, args))
        for rule in self._rules:
            if not rule.matches(call, args):
                continue
            if rule.times is not None:
                rule.times -= 1
                if rule.times == 0:
                    self._rules.remove(rule)
            if rule.transient:
                raise TransientError(f"{call} failed for now (told to)")
            raise EffectError(f"{call} failed for good (told to)")

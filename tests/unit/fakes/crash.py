"""A simulated crash of the engine's process, and the switch that sets one off at the Nth call to a port."""

from __future__ import annotations


class Crash(BaseException):
    """The engine's process died here (a BaseException: no handler of the engine catches it)."""

    def __init__(self, where: str, labels: list[str] | None = None, before: bool = True):
        super().__init__(where)
        self.where, self.labels, self.before = where, list(labels or []), before


class CrashSwitch:
    """Shared by the fakes of one world: counts the calls the engine makes to its ports, and dies at one."""

    def __init__(self) -> None:
        self.calls = 0
        self._at: int | None = None

    def arm(self, number: int) -> None:
        """Die as the `number`-th call from now (1: the next one) is made, before it has any effect."""
        self._at = self.calls + number

    @property
    def armed(self) -> bool:
        return self._at is not None

    def tick(self, call: str, args: dict) -> None:
        self.calls += 1
        if self._at == self.calls:
            self._at = None
            raise Crash(f"before {call}({', '.join(f'{k}={v}' for k, v in args.items())})")

"""The saga coordinator (engine/saga.py), driven with small test sagas over the real event log
in memory: steps in order, recorded before and after; retries until the deadline; compensation
latest first back to the last point of no return; needs attention when compensation is stuck,
retried with backoff or at an operator's word; and a crash at any save resumes to the same end.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
import pytest

from domain.addon import Addon
from domain.settings import DEFAULT_SETTINGS
from domain.operation import Operation
from engine.saga import Coordinator, StepResult
from projections import ReadModels
from tests.unit.fakes import Crash, InMemoryEventLog
from tests.unit.fakes.event_log import label
from tests.unit.fakes.faults import Faulty

NAME = "my-app-3030"
STEPS = ["prime", "paint", "varnish", "deliver"]
DEADLINE_S = 5.0  # the default step deadline: never met by a step that works, however loaded the machine
SHORT_S = 0.05  # a deadline a test waits for: only a step failing anyway runs under it


class Painting(Faulty):
    """A test saga: each step leaves a mark on a wall, each undo takes its mark off. Both are
    idempotent (a mark made twice is one mark), as a real saga's steps must be."""

    kind = "paint"

    def __init__(self, events: InMemoryEventLog, nothing_to_undo: tuple[str, ...] = (), deadlines: dict | None = None,
                 marks_addon_failed: bool = False):
        super().__init__()
        self.events = events
        self.wall: set[str] = set()
        self.journal: list[str] = []  # what was asked, in order: "run prime", "undo prime", "compensate"
        self.runs: Counter = Counter()
        self.recorded_while_running: dict[str, str] = {}
        self.outcomes_seen: dict[str, dict] = {}
        self.nothing_to_undo = nothing_to_undo
        self.marks_addon_failed = marks_addon_failed
        self.compensation_times: list[float] = []
        if deadlines:
            self.deadlines = deadlines

    async def run_step(self, step: str, operation: Operation) -> StepResult:
        self.runs[step] += 1
        self.journal.append(f"run {step}")
        recorded = await self.events.get(operation.id)
        self.recorded_while_running[step] = next(s["status"] for s in recorded.steps if s["name"] == step)
        index = operation.step_names.index(step)
        if index:
            self.outcomes_seen[step] = operation.outcome(operation.step_names[index - 1])
        self._called("run_step", step=step)
        self.wall.add(step)
        if step == "deliver":
            addon = await self.events.get(Addon.id_for(operation.addon))
            addon.mark_provisioned(operation_id=operation.id)
            return StepResult("delivered", outcome={"coats": index + 1}, changes=(addon,))
        return StepResult(f"{step} done", outcome={"coats": index + 1})

    async def undo_step(self, step: str, operation: Operation) -> StepResult | None:
        self.journal.append(f"undo {step}")
        self._called("undo_step", step=step)
        if step in self.nothing_to_undo:
            return None
        self.wall.discard(step)
        return StepResult(f"{step} scraped off")

    async def compensate(self, operation: Operation, error: str) -> StepResult:
        self.journal.append("compensate")
        self.compensation_times.append(time.monotonic())
        self._called("compensate")
        if self.marks_addon_failed:
            addon = await self.events.get(Addon.id_for(operation.addon))
            addon.mark_provisioning_failed(operation_id=operation.id, reason=error)
            return StepResult("the wall is bare again; the addon failed", changes=(addon,))
        return StepResult("the wall is bare again")

    @property
    def undone(self) -> list[str]:
        return [entry.removeprefix("undo ") for entry in self.journal if entry.startswith("undo ")]


class PaintingWithoutUndo(Painting):
    undo_step = None


@pytest.fixture
async def events():
    log = InMemoryEventLog()
    await log.open()
    yield log
    await log.shutdown()


async def an_operation_holding_its_addon(events, steps=STEPS, no_return=(), name=NAME) -> Operation:
    """Given: an operation started on an addon it holds (as every command starts one)."""
    operation = Operation(kind="paint", addon=name, app="my-app", steps=list(steps), no_return=list(no_return))
    addon = Addon(name=name, app="my-app", plan="redis-starter-256", memory_mib=256, redis_version="7.0.15",
                  host="host-a", address="127.0.1.1", port=30000, container=f"redis-addons-{name}-0",
                  volume=f"redis-addons-{name}-0-data", operation_id=operation.id, settings=DEFAULT_SETTINGS)
    await events.save(operation, addon)
    return operation


def a_coordinator(events, saga, deadline_s=DEADLINE_S, attention_retry_s=0.01) -> Coordinator:
    return Coordinator(events, {saga.kind: saga}, deadline_s, crash_at=None, attention_retry_s=attention_retry_s)


async def run(coordinator: Coordinator, operation_id, timeout: float = 5.0) -> None:
    await asyncio.wait_for(coordinator.submit(operation_id), timeout)


async def history(events, aggregate_id) -> list[str]:
    """The aggregate's events by name: `StepStarted(prime)`."""
    return [label(e).split(".", 1)[1] for e in await events.events_of(aggregate_id)]


async def statuses(events, operation_id) -> dict[str, str]:
    operation = await events.get(operation_id)
    return {s["name"]: s["status"] for s in operation.steps}


def shown(addon_rows, name=NAME) -> dict:
    """The addon as the addons list shows it."""
    return next(r for r in addon_rows if r["name"] == name)


async def read_models(events) -> ReadModels:
    views = ReadModels(":memory:")
    for position, event in await events.select(0, 1000):
        views.process(position, event)
    return views


# -- steps ---------------------------------------------------------------------------------


async def test_the_steps_run_in_order_each_recorded_as_started_before_it_runs_and_as_succeeded_after(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)

    await run(a_coordinator(events, saga), operation.id)

    assert saga.journal == [f"run {step}" for step in STEPS]
    assert saga.recorded_while_running == {step: "running" for step in STEPS}
    assert await history(events, operation.id) == ["Started"] + [
        f"{event}({step})" for step in STEPS for event in ("StepStarted", "StepSucceeded")] + ["Succeeded"]
    assert (await events.get(operation.id)).status == "succeeded"


async def test_a_step_observer_is_told_each_step_until_it_is_taken_off(events):
    told, other = [], []
    coordinator = a_coordinator(events, Painting(events))
    coordinator.observe_steps(lambda kind, step, outcome, seconds: told.append((kind, step, outcome)))
    coordinator.observe_steps(keep := lambda kind, step, outcome, seconds: other.append(step))
    await run(coordinator, (await an_operation_holding_its_addon(events)).id)
    assert told == [("paint", step, "succeeded") for step in STEPS] and other == STEPS

    coordinator.unobserve_steps(keep)
    coordinator.unobserve_steps(keep)  # already off: nothing to do
    await run(coordinator, (await an_operation_holding_its_addon(events, name="my-app-4040")).id)
    assert other == STEPS and len(told) == 2 * len(STEPS)


async def test_what_a_step_measured_is_recorded_for_the_steps_after_it(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)

    await run(a_coordinator(events, saga), operation.id)

    assert saga.outcomes_seen == {"paint": {"coats": 1}, "varnish": {"coats": 2}, "deliver": {"coats": 3}}


async def test_what_a_step_changes_is_saved_together_with_its_success(events):
    operation = await an_operation_holding_its_addon(events)

    await run(a_coordinator(events, Painting(events)), operation.id)

    assert ["Operation.StepSucceeded(deliver)", "Operation.Succeeded", "Addon.Provisioned"] in events.saves
    assert (await events.get(Addon.id_for(NAME))).status == "running"


async def test_a_step_failing_for_now_is_retried_until_it_succeeds(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)
    saga.fail("run_step", times=3, step="paint")

    await run(a_coordinator(events, saga), operation.id)

    recorded = await events.get(operation.id)
    assert recorded.status == "succeeded"
    assert saga.runs["paint"] == 4
    assert [s["attempts"] for s in recorded.steps] == [1, 1, 1, 1]  # retries within a step are not new starts


async def test_a_step_still_failing_at_its_deadline_fails_with_the_last_error(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)
    saga.fail("run_step", times=None, step="prime")

    started = time.monotonic()
    await run(a_coordinator(events, saga, deadline_s=SHORT_S), operation.id)

    recorded = await events.get(operation.id)
    assert time.monotonic() - started >= SHORT_S
    assert saga.runs["prime"] > 1
    assert recorded.error == (f"prime: not done within its deadline of {SHORT_S:g} s "
                              "(last error: run_step failed for now (told to))")
    assert recorded.status == "failed"


async def test_a_step_failing_for_good_is_not_retried(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)
    saga.fail_for_good("run_step", step="paint")

    await run(a_coordinator(events, saga), operation.id)

    assert saga.runs["paint"] == 1
    assert (await events.get(operation.id)).error == "paint: run_step failed for good (told to)"


async def test_a_saga_may_give_a_step_a_longer_deadline_than_the_default(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events, deadlines={"prime": 0.2})
    saga.fail("run_step", times=None, step="prime")

    started = time.monotonic()
    await run(a_coordinator(events, saga, deadline_s=0.02), operation.id)

    assert time.monotonic() - started >= 0.2
    assert "deadline of 0.2 s" in (await events.get(operation.id)).error


# -- compensation --------------------------------------------------------------------------


async def test_a_failed_step_undoes_the_steps_that_ran_latest_first_the_failed_one_included_then_compensates(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)
    saga.fail_for_good("run_step", step="varnish")

    await run(a_coordinator(events, saga), operation.id)

    assert saga.journal == ["run prime", "run paint", "run varnish",
                            "undo varnish", "undo paint", "undo prime", "compensate"]
    assert saga.wall == set()
    assert (await history(events, operation.id))[-5:] == [
        "StepFailed(varnish)", "StepUndone(varnish)", "StepUndone(paint)", "StepUndone(prime)", "Compensated"]
    assert await statuses(events, operation.id) == {"prime": "undone", "paint": "undone", "varnish": "undone",
                                                    "deliver": "skipped"}
    assert (await events.get(operation.id)).status == "failed"


async def test_compensation_stops_at_the_last_point_of_no_return_passed(events):
    operation = await an_operation_holding_its_addon(events, no_return=["paint"])
    saga = Painting(events)
    saga.fail_for_good("run_step", step="deliver")

    await run(a_coordinator(events, saga), operation.id)

    assert saga.undone == ["deliver", "varnish"]
    assert saga.wall == {"prime", "paint"}
    assert await statuses(events, operation.id) == {"prime": "succeeded", "paint": "succeeded", "varnish": "undone",
                                                    "deliver": "undone"}
    assert saga.journal[-1] == "compensate"


async def test_a_point_of_no_return_not_yet_passed_does_not_stop_compensation(events):
    operation = await an_operation_holding_its_addon(events, no_return=["varnish"])
    saga = Painting(events)
    saga.fail_for_good("run_step", step="varnish")

    await run(a_coordinator(events, saga), operation.id)

    assert saga.undone == ["varnish", "paint", "prime"]


async def test_a_step_with_nothing_to_undo_is_not_recorded_as_undone(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events, nothing_to_undo=("paint",))
    saga.fail_for_good("run_step", step="varnish")

    await run(a_coordinator(events, saga), operation.id)

    assert saga.undone == ["varnish", "paint", "prime"]
    assert await statuses(events, operation.id) == {"prime": "undone", "paint": "succeeded", "varnish": "undone",
                                                    "deliver": "skipped"}


async def test_a_saga_without_undos_is_only_compensated(events):
    operation = await an_operation_holding_its_addon(events)
    saga = PaintingWithoutUndo(events)
    saga.fail_for_good("run_step", step="varnish")

    await run(a_coordinator(events, saga), operation.id)

    assert saga.journal == ["run prime", "run paint", "run varnish", "compensate"]
    assert "StepUndone" not in " ".join(await history(events, operation.id))
    assert (await events.get(operation.id)).status == "failed"


async def test_an_undo_failing_for_now_is_retried(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)
    saga.fail_for_good("run_step", step="varnish")
    saga.fail("undo_step", times=2, step="paint")

    await run(a_coordinator(events, saga), operation.id)

    assert saga.undone == ["varnish", "paint", "paint", "paint", "prime"]
    assert (await events.get(operation.id)).status == "failed"


# -- needs attention -------------------------------------------------------------------------


async def test_a_compensation_that_misses_its_deadline_puts_the_addon_in_needs_attention(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)
    saga.fail_for_good("run_step", step="prime")
    saga.fail("compensate", times=None)
    coordinator = a_coordinator(events, saga, deadline_s=SHORT_S, attention_retry_s=60)

    coordinator.submit(operation.id)
    await until(lambda: saga.calls_to("compensate") and events_saved(events, "Addon.NeedsAttention"))

    recorded = await events.get(operation.id)
    assert recorded.status == "needs-attention"
    assert recorded.attention == (f"not done within its deadline of {SHORT_S:g} s "
                                  "(last error: compensate failed for now (told to))")
    addon = await events.get(Addon.id_for(NAME))
    assert addon.needs_attention and addon.operation_id == operation.id
    views = await read_models(events)
    assert shown(views.addons())["status"] == "needs-attention"
    assert views.operations(NAME)[0]["status"] == "needs-attention"
    await coordinator.stop()


async def test_a_stuck_compensation_is_retried_with_growing_backoff_and_needs_attention_is_recorded_once(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)
    saga.fail_for_good("run_step", step="paint")
    saga.fail_for_good("compensate", times=3)

    await run(a_coordinator(events, saga, attention_retry_s=0.02), operation.id)

    attempts = saga.compensation_times
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:])]
    assert len(attempts) == 4
    assert [round(g, 3) >= wanted for g, wanted in zip(gaps, (0.02, 0.04, 0.08))] == [True, True, True], gaps
    operation_history = await history(events, operation.id)
    assert operation_history.count("CompensationFailed") == 1
    assert operation_history[-1] == "Compensated"
    assert (await history(events, Addon.id_for(NAME)))[-2:] == ["NeedsAttention", "AttentionCleared"]


async def test_an_operators_retry_wakes_a_stuck_compensation_at_once(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)
    saga.fail_for_good("run_step", step="paint")
    saga.fail_for_good("compensate")
    coordinator = a_coordinator(events, saga, attention_retry_s=60)
    task = coordinator.submit(operation.id)
    await until(lambda: events_saved(events, "Addon.NeedsAttention"))

    saga.heal("compensate")
    started = time.monotonic()
    while not task.done() and time.monotonic() - started < 2:  # the operator may ask before the wait begins
        coordinator.retry(operation.id)
        await asyncio.sleep(0.01)

    assert task.done() and time.monotonic() - started < 2
    assert (await events.get(operation.id)).status == "failed"


async def test_once_compensated_the_addon_shows_the_state_compensation_left_it_in(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events, marks_addon_failed=True)
    saga.fail_for_good("run_step", step="paint")
    saga.fail_for_good("compensate", times=1)

    await run(a_coordinator(events, saga), operation.id)

    assert (await history(events, Addon.id_for(NAME)))[-3:] == ["NeedsAttention", "ProvisioningFailed",
                                                                "AttentionCleared"]
    views = await read_models(events)
    assert shown(views.addons())["status"] == "failed"
    assert views.operations(NAME)[0]["status"] == "failed"
    addon = await events.get(Addon.id_for(NAME))
    assert not addon.needs_attention and addon.operation_id is None


async def test_a_retried_compensation_does_not_undo_again_the_steps_already_undone(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)
    saga.fail_for_good("run_step", step="varnish")
    saga.fail_for_good("undo_step", step="prime")
    coordinator = a_coordinator(events, saga, attention_retry_s=60)
    task = coordinator.submit(operation.id)
    await until(lambda: events_saved(events, "Addon.NeedsAttention"))

    saga.heal("undo_step")
    while not task.done():
        coordinator.retry(operation.id)
        await asyncio.sleep(0.01)

    assert [step for step in saga.undone if step != "prime"] == ["varnish", "paint"]
    assert (await history(events, operation.id)).count("StepUndone(prime)") == 1
    assert saga.wall == set()


async def test_an_operation_needing_attention_is_taken_up_again_after_a_restart(events):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)
    saga.fail_for_good("run_step", step="paint")
    saga.fail_for_good("compensate")
    before = a_coordinator(events, saga, attention_retry_s=60)
    before.submit(operation.id)
    await until(lambda: events_saved(events, "Addon.NeedsAttention"))
    await before.stop()

    saga.heal()
    await run(a_coordinator(events, saga, attention_retry_s=60), operation.id)

    assert (await events.get(operation.id)).status == "failed"
    assert not (await events.get(Addon.id_for(NAME))).needs_attention


# -- crashes ---------------------------------------------------------------------------------

SUCCESS_SAVES = 2 * len(STEPS)  # each step: started, then succeeded
# prime, paint: started + succeeded; varnish: started + failed; three undone; compensated
COMPENSATION_SAVES = 2 + 2 + 2 + 3 + 1


async def crash_then_resume(events, saga, operation, at_save: int, before: bool) -> list[str]:
    """Run until the crash at a save, then resume with a new coordinator over the same log; return the
    events of the save the crash hit."""
    events.crash_at_save(at_save, before=before)
    saves_before = len(events.saves)
    crashed = a_coordinator(events, saga).submit(operation.id)
    await asyncio.wait([crashed], timeout=5)
    crash = crashed.exception()
    assert isinstance(crash, Crash), "the crash did not happen"
    assert len(events.saves) == saves_before + at_save - before
    if not (await events.get(operation.id)).is_finished:
        await run(a_coordinator(events, saga), operation.id)
    return crash.labels


@pytest.mark.parametrize("before", [True, False], ids=["before it is written", "after it is written"])
@pytest.mark.parametrize("at_save", range(1, SUCCESS_SAVES + 1))
async def test_a_crash_at_any_save_of_an_operation_resumes_to_the_same_end_each_step_run_once(events, at_save, before):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)

    hit = await crash_then_resume(events, saga, operation, at_save, before)

    recorded = await events.get(operation.id)
    assert recorded.status == "succeeded"
    assert all(s["status"] == "succeeded" for s in recorded.steps)
    assert saga.wall == set(STEPS)
    assert (await events.get(Addon.id_for(NAME))).status == "running"
    # A step recorded as succeeded never runs again; only the step whose success was not written does.
    rerun = next((s for s in STEPS if before and f"Operation.StepSucceeded({s})" in hit), None)
    assert saga.runs == Counter({s: 2 if s == rerun else 1 for s in STEPS}), hit


@pytest.mark.parametrize("before", [True, False], ids=["before it is written", "after it is written"])
@pytest.mark.parametrize("at_save", range(1, COMPENSATION_SAVES + 1))
async def test_a_crash_at_any_save_of_a_compensation_resumes_to_the_same_end_each_undo_done_once(events, at_save, before):
    operation = await an_operation_holding_its_addon(events)
    saga = Painting(events)
    saga.fail_for_good("run_step", step="varnish")

    hit = await crash_then_resume(events, saga, operation, at_save, before)

    recorded = await events.get(operation.id)
    assert recorded.status == "failed" and recorded.error == "varnish: run_step failed for good (told to)"
    assert {s["name"]: s["status"] for s in recorded.steps} == {
        "prime": "undone", "paint": "undone", "varnish": "undone", "deliver": "skipped"}
    assert saga.wall == set()
    assert (await history(events, operation.id)).count("Compensated") == 1
    redone = next((s for s in STEPS if before and f"Operation.StepUndone({s})" in hit), None)
    assert Counter(saga.undone) == Counter({s: 2 if s == redone else 1 for s in ("prime", "paint", "varnish")}), hit
    assert saga.journal.count("compensate") == (2 if before and "Operation.Compensated" in hit else 1), hit
    assert saga.runs["varnish"] == (2 if before and "Operation.StepFailed(varnish)" in hit else 1), hit


# -- helpers -----------------------------------------------------------------------------------


def events_saved(events: InMemoryEventLog, event_label: str) -> bool:
    return any(event_label in labels for labels in events.saves)


async def until(condition, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.005)

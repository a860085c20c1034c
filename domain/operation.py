"""The Operation aggregate: the durable log of one saga and its steps."""

from __future__ import annotations


from eventsourcing.domain import Aggregate, event

from domain.errors import StepOutOfOrder

# What each kind of operation does, in order (DESIGN §4).
STEPS = {
    "provision": ["create", "start", "wait_ready", "publish"],
    "remove": ["stop", "remove"],
    # Reference, "Changing Plans": stop, restart on a new host with the new plan's parameters, restart the app.
    "change_plan": ["stop", "start_new", "wait_ready", "verify", "publish", "cleanup", "restart_app"],
    # Reference, "Persistence Mode" / "Cache Mode": the server's configuration file and live settings.
    "change_settings": ["apply", "verify", "publish"],
    # Reference, "Force TLS Connections": the app's URL changes with it, so the app is restarted: onto
    # the rediss:// URL before plaintext closes (TLS is served beside it already), and onto the
    # redis:// URL once plaintext is open again.
    "enable_force_tls": ["restart_app", "apply", "verify", "publish"],
    "disable_force_tls": ["apply", "verify", "publish", "restart_app"],
    # Reference, "Backups": the node saves its data, the file is archived and stored.
    "backup": ["save", "archive", "record"],
    # A node made before TLS was served here starts serving it, live, on a port of its host.
    "serve_tls": ["apply", "verify", "publish"],
    # Beyond the reference: a node's TLS certificate replaced (files, then a live reload) before it expires.
    "renew_certificate": ["check", "renew", "verify", "record"],
    # Beyond the reference: the backup's data goes into a new node in place of the current one.
    "restore": ["check", "stop", "load", "wait_ready", "verify", "settings", "publish", "cleanup"],
}

# Steps after which the new node is the addon's: a failure from there on is not undone.
POINT_OF_NO_RETURN = {"change_plan": "publish", "restore": "publish", "disable_force_tls": "publish"}


class Operation(Aggregate):
    """Each step is recorded before it runs and after it ends, so a crash can resume."""

    @event("Started")
    def __init__(self, kind: str, addon: str, app: str, subject: str | None = None):
        self.kind = kind
        self.addon = addon
        self.app = app
        self.subject = subject  # what the operation is about besides the addon: the backup's ID
        self.steps = [{"name": s, "status": "pending", "attempts": 0, "detail": None} for s in STEPS[kind]]
        self.status = "running"
        self.error: str | None = None
        self.outcomes: dict[str, dict] = {}

    @property
    def is_finished(self) -> bool:
        return self.status != "running"

    @property
    def next_step(self) -> str | None:
        """The step to run now: the first one not yet succeeded (a started one resumes).
        None once a step has failed: then only compensation remains."""
        if self.failed_step:
            return None
        for step in self.steps:
            if step["status"] in ("pending", "running"):
                return step["name"]
        return None

    def _step(self, name: str) -> dict:
        return next(s for s in self.steps if s["name"] == name)

    def _check_is_next(self, name: str) -> None:
        if self.is_finished or self.next_step != name:
            raise StepOutOfOrder(f"step {name!r} is not the next step of operation {self.id}")

    def start_step(self, name: str) -> None:
        self._check_is_next(name)
        self._step_started(step=name)

    @event("StepStarted")
    def _step_started(self, step: str) -> None:
        record = self._step(step)
        record["status"] = "running"
        record["attempts"] += 1

    def succeed_step(self, name: str, detail: str | None = None, outcome: dict | None = None) -> None:
        self._check_is_next(name)
        self._step_succeeded(step=name, detail=detail, outcome=outcome)

    @event("StepSucceeded")
    def _step_succeeded(self, step: str, detail: str | None, outcome: dict | None = None) -> None:
        record = self._step(step)
        record["status"] = "succeeded"
        record["detail"] = detail
        if outcome is not None:
            self.outcomes[step] = outcome

    def outcome(self, step: str) -> dict:
        """What a succeeded step measured, for the steps after it (e.g. the data's fingerprint)."""
        return self.outcomes.get(step, {})

    def step_succeeded(self, step: str) -> bool:
        return self._step(step)["status"] == "succeeded"

    @property
    def past_point_of_no_return(self) -> bool:
        last = POINT_OF_NO_RETURN.get(self.kind)
        return last is not None and self._step(last)["status"] == "succeeded"

    def fail_step(self, name: str, error: str) -> None:
        self._check_is_next(name)
        self._step_failed(step=name, error=error)

    @event("StepFailed")
    def _step_failed(self, step: str, error: str) -> None:
        record = self._step(step)
        record["status"] = "failed"
        record["detail"] = error
        self.error = f"{step}: {error}"

    @event("Compensated")
    def mark_compensated(self, detail: str) -> None:
        for record in self.steps:
            if record["status"] == "pending":
                record["status"] = "skipped"
        self.status = "failed"
        self.compensation = detail

    @event("Succeeded")
    def mark_succeeded(self) -> None:
        self.status = "succeeded"

    @property
    def failed_step(self) -> str | None:
        return next((s["name"] for s in self.steps if s["status"] == "failed"), None)

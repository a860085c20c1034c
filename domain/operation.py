"""The Operation aggregate: the durable log of one saga and its steps.

An operation records its step plan when it starts (the steps may depend on the topology: one
step per replica, say), so a recorded history replays the same forever, whatever the code's
step lists become.
"""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event

from domain.errors import StepOutOfOrder

# What each kind of operation does, in order (DESIGN §4): the plans new operations start with.
STEPS = {
    "provision": ["create", "start", "wait_ready", "publish"],
    "remove": ["stop", "remove"],
    # Reference, "Cluster Setup": a Business addon's seven nodes, each stage waited for before the next.
    "provision_cluster": ["create", "start_data", "wait_replica", "start_sentinels", "wait_sentinels",
                          "start_proxies", "wait_entry", "publish"],
    # Self-healing: a Business cluster's lost node replaced by a new one, the others told of it.
    "replace_node": ["create", "start", "wait_ready", "rewire_proxies", "reset_sentinels", "record", "retire"],
    # Reference, "Changing Plans": stop, restart on a new host with the new plan's parameters, restart the app.
    "change_plan": ["stop", "start_new", "wait_ready", "verify", "publish", "cleanup", "restart_app"],
    # The same for a Business cluster, with no downtime: its data nodes replaced one at a time, then a
    # coordinated switch of the primary.
    "change_cluster_plan": ["add_first", "sync_first", "retire_replica", "add_second", "sync_second", "switch",
                            "retire_primary", "publish"],
    # Reference, "Changing Plans", between a single node and a Business cluster, with the data and a write
    # gap of one switch: the new nodes replicate the old one, the app restarts onto the new URL while the
    # old node still serves, then the primary switches and what is left of the old kind goes.
    "change_to_business": ["add_replicas", "sync_replicas", "start_sentinels", "wait_sentinels", "start_proxies",
                           "wait_entry", "publish", "restart_app", "switch", "retire_old", "finish"],
    "change_to_starter": ["add_node", "sync_node", "switch", "publish", "restart_app", "retire_cluster", "finish"],
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
    # Reference, "Database Upgrade" (a Starter addon: "stop the node to upgrade it"): a backup of the data
    # first (issue 13), the new build's container made while the node still serves, the node saved and
    # stopped, the new one started on its data (RDB only) or a copy of it at the same place, verified, then
    # the app restarted ("once the operation is finished, the application is restarted").
    "upgrade": ["safety_backup", "create_new", "stop", "start_new", "wait_ready", "verify", "publish", "open_writes",
                "cleanup", "restart_app"],
    # The same for a Business cluster with no downtime ("zero-downtime upgrade of minor version"): the plan
    # change's rolling replacement, its new nodes on the new build; a major step too where it is proven to
    # replicate from the old one (the catalogue's `rolling_from`).
    "upgrade_cluster": ["safety_backup", "add_first", "sync_first", "retire_replica", "add_second", "sync_second",
                        "switch", "retire_primary", "publish", "restart_app"],
    # A major step the catalogue does not record as rolling "stops the nodes" (reference): writes refused, the
    # data moved through a safety backup into a new pair on the new build, as a restore moves a backup's.
    "upgrade_cluster_stopped": ["stop_writes", "safety_backup", "check", "load", "wait_ready", "verify", "settings",
                                "add_replica", "sync_replica", "switch", "cleanup", "publish", "restart_app"],
    # Beyond the reference: the backup's data goes into a new node in place of the current one.
    "restore": ["check", "stop", "load", "wait_ready", "verify", "settings", "publish", "cleanup"],
    # Issue 15: the addon's password replaced with no downtime. The new one is added beside the old (an ACL
    # user holds several) on every data node (and given to the replicas, Sentinels and HAProxy), the app's
    # URL carries it and the app restarts, then the old one is removed and the connections older than the
    # publication are closed (engine/credentials_rotation.py).
    "rotate_credentials": ["add_password", "publish", "restart_app", "remove_old", "disconnect_old"],
    # The same for a Business cluster: a new pair of data nodes from the backup, then the Sentinels moved onto it.
    "restore_cluster": ["check", "load", "wait_ready", "verify", "settings", "add_replica", "sync_replica", "switch",
                        "cleanup", "publish"],
}

# Steps after which the change is the addon's: a failure from there on does not undo what came before.
POINTS_OF_NO_RETURN = {"replace_node": ["rewire_proxies"], "change_plan": ["publish"],
                       "change_cluster_plan": ["retire_replica"], "restore": ["publish"],
                       "disable_force_tls": ["publish"], "restore_cluster": ["switch"],
                       "change_to_business": ["publish"], "change_to_starter": ["switch"],
                       "upgrade": ["publish"], "upgrade_cluster": ["retire_replica"],
                       "upgrade_cluster_stopped": ["switch"], "rotate_credentials": ["publish"]}

# Operations recorded before they carried their plan (release 0.1, commit a79d645) ran these steps;
# frozen here so that their histories replay as they were written.
RELEASE_0_1_STEPS = {
    "provision": ["create", "start", "wait_ready", "publish"],
    "remove": ["stop", "remove"],
    "change_plan": ["stop", "start_new", "wait_ready", "verify", "publish", "cleanup", "restart_app"],
    "change_settings": ["apply", "verify", "publish"],
    "enable_force_tls": ["restart_app", "apply", "verify", "publish"],
    "disable_force_tls": ["apply", "verify", "publish", "restart_app"],
    "backup": ["save", "archive", "record"],
    "serve_tls": ["apply", "verify", "publish"],
    "renew_certificate": ["check", "renew", "verify", "record"],
    "restore": ["check", "stop", "load", "wait_ready", "verify", "settings", "publish", "cleanup"],
}
RELEASE_0_1_NO_RETURN = {"change_plan": ["publish"], "restore": ["publish"], "disable_force_tls": ["publish"]}

DONE = ("succeeded", "failed")  # a step whose effect may exist, so compensation may have to undo it


class Operation(Aggregate):
    """Each step is recorded before it runs and after it ends, so a crash can resume."""

    class Started(Aggregate.Created):
        kind: str
        addon: str
        app: str
        subject: str | None = None
        steps: list | None = None
        no_return: list | None = None
        class_version = 2

        def __post_init__(self):
            # An operation started without a plan gets its kind's current one, written into the event.
            if self.steps is None:
                object.__setattr__(self, "steps", list(STEPS[self.kind]))
            if self.no_return is None:
                object.__setattr__(self, "no_return", list(POINTS_OF_NO_RETURN.get(self.kind, [])))

        @staticmethod
        def upcast_v1_v2(state: dict) -> None:
            state.setdefault("steps", list(RELEASE_0_1_STEPS[state["kind"]]))
            state.setdefault("no_return", list(RELEASE_0_1_NO_RETURN.get(state["kind"], [])))

    @event(Started)
    def __init__(self, kind: str, addon: str, app: str, subject: str | None = None, steps: list | None = None,
                 no_return: list | None = None):
        self.kind = kind
        self.addon = addon
        self.app = app
        self.subject = subject  # what the operation is about besides the addon: the backup's ID
        self.steps = [{"name": s, "status": "pending", "attempts": 0, "detail": None} for s in steps]
        self.no_return = list(no_return)
        self.status = "running"
        self.error: str | None = None
        self.outcomes: dict[str, dict] = {}
        self.attention: str | None = None  # why compensation could not finish, while it is retried
        self.failed_at: str | None = None

    @property
    def step_names(self) -> list[str]:
        return [s["name"] for s in self.steps]

    @property
    def is_finished(self) -> bool:
        return self.status not in ("running", "needs-attention")

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
        return any(self._step(name)["status"] == "succeeded" for name in self.no_return)

    def fail_step(self, name: str, error: str) -> None:
        self._check_is_next(name)
        self._step_failed(step=name, error=error)

    @event("StepFailed")
    def _step_failed(self, step: str, error: str) -> None:
        record = self._step(step)
        record["status"] = "failed"
        record["detail"] = error
        self.error = f"{step}: {error}"
        self.failed_at = step

    # -- compensation -------------------------------------------------------------------

    @property
    def steps_to_undo(self) -> list[str]:
        """The steps whose effects compensation undoes, latest first: those that ran (the failed
        one too: it may have done part of its work), back to the last point of no return passed."""
        undo = []
        for record in reversed(self.steps):
            if record["status"] == "succeeded" and record["name"] in self.no_return:
                break
            if record["status"] in DONE:
                undo.append(record["name"])
        return undo

    def mark_step_undone(self, name: str, detail: str) -> None:
        if not self.failed_step or name not in self.steps_to_undo:
            raise StepOutOfOrder(f"step {name!r} of operation {self.id} has nothing to undo")
        self._step_undone(step=name, detail=detail)

    @event("StepUndone")
    def _step_undone(self, step: str, detail: str) -> None:
        record = self._step(step)
        record["status"] = "undone"
        record["detail"] = detail

    def mark_compensation_failed(self, error: str) -> None:
        """Compensation could not finish by its deadline: the addon needs attention while it is retried."""
        if self.status != "running":
            raise StepOutOfOrder(f"operation {self.id} is {self.status}: its compensation is not running")
        self._compensation_failed(error=error)

    @event("CompensationFailed")
    def _compensation_failed(self, error: str) -> None:
        self.status = "needs-attention"
        self.attention = error

    def mark_compensated(self, detail: str) -> None:
        if self.is_finished:
            raise StepOutOfOrder(f"operation {self.id} is {self.status} already")
        self._compensated(detail=detail)

    @event("Compensated")
    def _compensated(self, detail: str) -> None:
        for record in self.steps:
            if record["status"] == "pending":
                record["status"] = "skipped"
        self.status = "failed"
        self.attention = None
        self.compensation = detail

    @event("Abandoned")
    def abandon(self, reason: str) -> None:
        """Given up on, for the addon's removal: what it left behind goes with the addon."""
        for record in self.steps:
            if record["status"] == "pending":
                record["status"] = "skipped"
        self.status = "abandoned"
        self.attention = None
        self.compensation = reason

    @event("Succeeded")
    def mark_succeeded(self) -> None:
        self.status = "succeeded"

    @property
    def failed_step(self) -> str | None:
        """The step whose failure ended the run (it stays so once undone)."""
        return self.failed_at

"""How an operation reads in a terminal: one line per finished step while it runs, and the whole
timeline afterwards (each step's status, attempts, times in UTC, duration and detail)."""

from __future__ import annotations

from datetime import datetime, timezone

from adapters.cli.tables import table

INDENT = " " * 7  # under "-----> "
ENDED = {"succeeded": "done", "failed": "failed"}
NAME_WIDTH = 12  # the longest step name, restart_app, and a space


def moment(text: str | None) -> datetime | None:
    if not text:
        return None
    at = datetime.fromisoformat(text)
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def seconds(start: str | None, end: str | None) -> float | None:
    began, ended = moment(start), moment(end)
    return (ended - began).total_seconds() if began and ended else None


def duration_text(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.2f} s"
    minutes, rest = divmod(value, 60)
    return f"{int(minutes)} min {rest:04.1f} s"


def clock(text: str | None, day: str | None = None) -> str:
    """HH:MM:SS.mmm in UTC, with the date when it is not `day` (YYYY-MM-DD)."""
    at = moment(text)
    if at is None:
        return ""
    shown = at.strftime("%H:%M:%S.") + f"{at.microsecond // 1000:03d}"
    return shown if at.strftime("%Y-%m-%d") == day else f"{at:%Y-%m-%d} {shown}"


def step_line(step: dict) -> str:
    """`       stop         done   saved 10000 keys and stopped … on host-a (1.20 s)`"""
    extra = []
    if (took := seconds(step.get("started_at"), step.get("ended_at"))) is not None:
        extra.append(duration_text(took))
    if step.get("attempts", 0) > 1:
        extra.append(f"attempt {step['attempts']}")
    tail = f" ({', '.join(extra)})" if extra else ""
    word = ENDED.get(step["status"], step["status"])
    return f"{INDENT}{step['name']:<{NAME_WIDTH}} {word:<6} {step.get('detail') or ''}{tail}".rstrip()


class StepPrinter:
    """Called with each fresh copy of a running operation: prints the steps that ended since."""

    def __init__(self, out=print):
        self.out = out
        self.shown: dict[str, str] = {}

    def __call__(self, operation: dict) -> None:
        for step in operation.get("steps", []):
            if step["status"] in ENDED and self.shown.get(step["name"]) != step["status"]:
                self.shown[step["name"]] = step["status"]
                self.out(step_line(step))


def failed_step(operation: dict) -> dict | None:
    return next((s for s in operation.get("steps", []) if s["status"] == "failed"), None)


def timeline(operation: dict) -> str:
    began = moment(operation.get("started_at"))
    day = f"{began:%Y-%m-%d}" if began else None
    lines = [
        f"-----> Operation {operation['id']} ({operation['kind']} of {operation['addon']}, app {operation['app']})",
        f"{INDENT}Status:       {operation['status']}",
    ]
    if who := operation.get("requested_by"):  # None: recorded before requesters were
        lines.append(f"{INDENT}Requested by: {who['name']} ({who['id']})")
    if began:
        lines.append(f"{INDENT}Started:      {clock(operation['started_at'])} UTC")
    if operation.get("finished_at"):
        took = duration_text(seconds(operation.get("started_at"), operation["finished_at"]))
        lines.append(f"{INDENT}Finished:     {clock(operation['finished_at'])} UTC ({took})")
    if operation.get("error"):
        lines.append(f"{INDENT}Error:        {operation['error']}")
    if operation.get("compensation"):
        lines.append(f"{INDENT}Compensation: {operation['compensation']}")
    rows = [
        [s["name"], s["status"], s.get("attempts", 0), clock(s.get("started_at"), day), clock(s.get("ended_at"), day),
         duration_text(seconds(s.get("started_at"), s.get("ended_at"))), s.get("detail") or ""]
        for s in operation.get("steps", [])
    ]
    lines.append(table(["STEP", "STATUS", "ATTEMPTS", "STARTED (UTC)", "ENDED (UTC)", "DURATION", "DETAIL"], rows))
    return "\n".join(lines)

"""Operations and events as the API and the CLI show them: JSON-ready dicts (they hold no secret)."""

from __future__ import annotations

from domain.operation import Operation

# Shown beside the data, or not at all: a token's secret is never recorded, and the SHA-256 of it stays in the store.
NOT_DATA = frozenset({"originator_id", "originator_version", "timestamp", "requested_by", "secret_sha256"})


def event_as_dict(position: int, event) -> dict:
    data = {k: v for k, v in vars(event).items() if k not in NOT_DATA}
    shaped = {
        "id": position,
        "type": type(event).__qualname__,
        "aggregate_id": str(event.originator_id),
        "version": event.originator_version,
        "timestamp": event.timestamp.isoformat(),
        "data": json_ready(data),
        "requested_by": vars(event).get("requested_by"),  # None: recorded before requesters were (engine/audit.py)
    }
    if getattr(type(event), "class_version", 1) > 1:  # its shape, for a replay to upcast older recordings
        shaped["class_version"] = type(event).class_version
    return shaped


def json_ready(value):
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def describe_operation(operation: Operation) -> dict:
    return {
        "id": str(operation.id),
        "kind": operation.kind,
        "addon": operation.addon,
        "app": operation.app,
        "status": operation.status,
        "error": operation.error,
        "steps": [dict(s) for s in operation.steps],
    }

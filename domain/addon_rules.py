"""What an addon refuses while it cannot take a command (reference: one operation at a time): removed,
needing attention after an operation that could not be undone, busy with another operation, or not
running. Checked by the Addon aggregate before it records a request."""

from __future__ import annotations

from domain.errors import AddonBusy, AddonNeedsAttention, AddonNotRunning, AddonRemoved


def check_free(addon) -> None:
    if addon.status == "removed":
        raise AddonRemoved(f"addon {addon.name} is removed")
    if addon.needs_attention:
        raise AddonNeedsAttention(
            f"addon {addon.name} needs attention: operation {addon.operation_id} could not be undone "
            f"({addon.attention}); it is retried by itself, or retry it now with `operations-retry "
            f"{addon.operation_id}`; the addon can also be removed"
        )
    if addon.is_busy:
        raise AddonBusy(f"addon {addon.name} is busy with operation {addon.operation_id}; "
                        "one operation at a time, try again when it has finished")


def check_running(addon, doing: str) -> None:
    check_free(addon)
    if addon.status != "running":
        raise AddonNotRunning(f"addon {addon.name} is {addon.status}: only a running addon can {doing}")

"""Which moves a drain starts next: a pure decision over what the host still holds.

Each addon with a node on the host is moved by the saga that already moves its kind of node:
- a single node (Sandbox, Starter): a move, as a plan change onto the same plan (stopped, restarted on
  another host, data intact, the app restarted onto its new URL);
- a Business cluster's data node: both data nodes moved as a same-plan plan change of the cluster does
  (a new replica in sync, then the coordinated primary switch, writes paused not lost);
- a Business cluster's Sentinel or HAProxy: replaced by a new one elsewhere (the healing saga).
One operation per addon at a time: an addon busy with another operation is waited for, and its next
node is looked at once its move is done. At most `limit` moves run at once for the whole drain.
"""

from __future__ import annotations

from dataclasses import dataclass

MOVE_NODE, MOVE_DATA, REPLACE = "move", "move-data-nodes", "replace"
DRAIN_CONCURRENCY = 2  # moves at once: each copies a dataset and starts containers; the others wait their turn


@dataclass(frozen=True)
class HeldNode:
    """A node the draining host holds, as the drain sees it."""

    addon: str
    clustered: bool  # a Business cluster's (else a single node's)
    role: str  # data, sentinel, proxy
    node_id: str
    container: str


@dataclass(frozen=True)
class Move:
    addon: str
    how: str  # MOVE_NODE, MOVE_DATA, REPLACE
    node_id: str
    container: str


@dataclass(frozen=True)
class DrainPlan:
    start: list[Move]
    waiting: dict[str, str]  # addon -> why it is not moved now


def how_to_move(node: HeldNode) -> str:
    if not node.clustered:
        return MOVE_NODE
    return MOVE_DATA if node.role == "data" else REPLACE


def plan_drain(held: list[HeldNode], busy: dict[str, str], moving: set[str], limit: int = DRAIN_CONCURRENCY) -> DrainPlan:
    """The moves to start now. `busy`: addon -> the operation that holds it (one of this drain's moves
    among them: `moving` names those addons); at most `limit` of this drain's moves at once."""
    start, waiting = [], {}
    room = max(0, limit - len(moving))
    for node in sorted(held, key=_order):
        if node.addon in moving:
            waiting.setdefault(node.addon, "its previous move is under way")
        elif node.addon in busy:
            waiting.setdefault(node.addon, f"busy with operation {busy[node.addon]}: moved once it is done")
        elif any(m.addon == node.addon for m in start):
            continue  # one operation per addon: its next node after this move
        elif len(start) >= room:
            waiting.setdefault(node.addon, f"waits its turn: {limit} moves at a time")
        else:
            start.append(Move(node.addon, how_to_move(node), node.node_id, node.container))
    return DrainPlan(start, waiting)


def _order(node: HeldNode) -> tuple:
    # Data first (a data move may take the addon's other nodes' turn), then Sentinels, then HAProxy; stable by name.
    return node.addon, {"data": 0, "sentinel": 1, "proxy": 2}.get(node.role, 3), node.node_id

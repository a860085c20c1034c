"""What `nodes` shows of replication, read live from the primary (INFO replication): its offset,
and for each replica its offset, how many bytes it is behind and how long since it last answered."""

from __future__ import annotations

from engine.nodes import endpoint
from engine.ports import EffectError, RedisAdmin, TransientError


async def with_replication(redis: RedisAdmin, password: str | None, rows: list[dict]) -> list[dict]:
    """`rows` (the read model's nodes) with offset, behind_bytes and lag_s on the live data nodes;
    None where the primary does not answer (or the node is no replica of it)."""
    rows = [dict(row, offset=None, behind_bytes=None, lag_s=None) for row in rows]
    primary = next((r for r in rows if r["is_primary"] and r["state"] in ("running", "down")), None)
    if primary is None or password is None:
        return rows
    try:
        info = await redis.replication(endpoint(primary, password))
    except (TransientError, EffectError):
        return rows
    head = int(info.get("master_repl_offset", 0))
    primary.update(offset=head, behind_bytes=0, lag_s=0)
    replicas = {f"{v.get('ip')}:{v.get('port')}": v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)}
    for row in rows:
        link = replicas.get(f"{row['address']}:{row['port']}")
        if link is not None and row["role"] == "data" and not row["is_primary"]:
            row.update(offset=int(link.get("offset", 0)), behind_bytes=head - int(link.get("offset", 0)),
                       lag_s=int(link.get("lag", 0)))
    return rows

"""The OpenAPI entries of an addon's stats (adapters/http/stats.py)."""

from __future__ import annotations

from adapters.http.openapi_maintenance import ADDON, APP
from adapters.http.openapi_schemas import json_body, obj, ref

INT = {"type": "integer"}
MAYBE_INT = {"type": ["integer", "null"]}
MAYBE_NUMBER = {"type": ["number", "null"]}
DATABASE = obj(
    used_memory=INT, maxmemory=INT, connected_clients=INT, total_commands_processed=INT,
    instantaneous_ops_per_sec=INT, keyspace_hits=INT, keyspace_misses=INT, evicted_keys=INT,
    keys={"type": "object", "additionalProperties": INT, "description": "Keys per database: {\"db0\": 12}"},
    role={"enum": ["master", "slave"]}, connected_slaves=INT,
    master_link_up={"type": ["boolean", "null"], "description": "A replica's link to its primary; null on a primary"},
    repl_offset=INT, lag_bytes={**MAYBE_INT, "description": "A replica's offset behind its primary's; null on a primary"},
    uptime_s=INT, run_id={"type": "string", "description": "Changes when the server restarts"})
NODE_STATS = obj(
    node={"type": "string"}, role={"enum": ["data", "sentinel", "proxy"]}, host={"type": "string"},
    up={"type": "boolean", "description": "The container runs and (a data node) its server answered"},
    at={"type": "number", "description": "When sampled, seconds since the epoch"},
    cpu_percent={**MAYBE_NUMBER, "description": "As `docker stats` computes it (100 = one core); null on the "
                                                "first sample of a container"},
    memory={"type": ["object", "null"], "description": "Bytes: used (less the inactive file cache), highest since "
                                                        "the node's last restart, limit, free (limit - used)",
            "properties": {"used": INT, "highest": MAYBE_INT, "limit": INT, "free": INT}},
    swap={"type": ["object", "null"], "description": "allowed: false when the node may not swap (its swap limit "
                                                      "equals its memory limit); then note says \"no swap allowed\" "
                                                      "and used/highest/free are null",
          "properties": {"allowed": {"type": "boolean"}, "used": MAYBE_INT, "highest": MAYBE_INT, "free": MAYBE_INT,
                         "note": {"type": "string"}}},
    disk_bytes={**MAYBE_INT, "description": "Reference, \"Database on disk size\": the RDB and AOF files as stored "
                                            "(data nodes)"},
    database={"oneOf": [{"type": "null"}, ref("DatabaseStats")], "description": "From the server's INFO (data nodes)"})
POINT = obj(at={"type": "number"}, cpu_percent=MAYBE_NUMBER, memory_used=MAYBE_INT, memory_highest=MAYBE_INT,
            swap_used=MAYBE_INT, disk_bytes=MAYBE_INT, used_memory=MAYBE_INT, ops_per_sec=MAYBE_NUMBER,
            connected_clients=MAYBE_INT)

SCHEMAS = {
    "DatabaseStats": DATABASE,
    "NodeStats": NODE_STATS,
    "AddonStats": obj(addon={"type": "string"}, sampled_at=MAYBE_NUMBER,
                      interval_s={"type": "number", "description": "How often the engine samples (0: never)"},
                      nodes={"type": "array", "items": ref("NodeStats")}),
    "StatsPoint": POINT,
    "AddonStatsHistory": obj(
        addon={"type": "string"}, period={"enum": ["hour", "day", "week"]},
        step_s={"type": "number", "description": "Seconds between points: the sampling interval (hour), 60 (day: "
                                                 "rates averaged, sizes at their maximum), 300 (week)"},
        nodes={"type": "object", "additionalProperties": {"type": "array", "items": ref("StatsPoint")},
               "description": "Node ID -> its points, oldest first"}),
}


def paths(op) -> dict:
    """`op` is adapters/http/openapi.py's."""
    bad = json_body(ref("Error"), "An unknown period or node (rule invalid-stats-query)")
    removed = json_body(ref("Error"), "The addon was removed (rule addon-removed)")
    return {
        "/v1/apps/{app}/addons/{addon}/stats": {"get": op(
            "The latest stats of each of the addon's nodes (reference, Database Dashboard: \"Container Stats\" and "
            "\"Database Stats\"), sampled every interval_s by the engine; taken at once when none is yet",
            {"200": json_body(ref("AddonStats"), "Each node's latest sample"), "409": removed}, [APP, ADDON], tag="stats")},
        "/v1/apps/{app}/addons/{addon}/stats/history": {"get": op(
            "The addon's stats over the last hour (every sample), day (a point a minute) or week (a point per 5 "
            "minutes); kept in memory by the engine, outside the event store",
            {"200": json_body(ref("AddonStatsHistory"), "Each node's points"), "400": bad, "409": removed},
            [APP, ADDON,
             {"name": "period", "in": "query", "schema": {"enum": ["hour", "day", "week"], "default": "hour"}},
             {"name": "node", "in": "query", "schema": {"type": "string"}, "description": "Only this node (see nodes)"}],
            tag="stats")},
    }

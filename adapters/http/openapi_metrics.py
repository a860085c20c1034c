"""The OpenAPI entry of GET /metrics (adapters/http/metrics.py), and the scrape token that opens it."""

from __future__ import annotations

from adapters.http.openapi_schemas import json_body, ref

SECURITY_SCHEMES = {"scrape": {"type": "http", "scheme": "bearer",
                               "description": "The read-only scrape token, in the server's data directory "
                                              "(metrics-token, 0600): it opens GET /metrics only"}}
EXPOSITION = {"schema": {"type": "string"}}


def paths(op) -> dict:
    """`op` is adapters/http/openapi.py's."""
    spec = op(
        "Prometheus metrics: each node's last stats sample under redis_exporter's names (redis_up, "
        "redis_memory_used_bytes, redis_db_keys{db=\"db0\"}, ...; labels app, addon, node, role), the containers' "
        "figures (redis_addons_cpu_percent, redis_addons_memory_used_bytes, redis_addons_disk_bytes, ...), and "
        "the engine's own: redis_addons_operations{kind,status}, redis_addons_step_duration_seconds (a histogram), "
        "redis_addons_projection_lag_events, redis_addons_scheduler_runs_total",
        {"200": {"description": "The Prometheus text format, or OpenMetrics when the Accept header asks for it",
                 "content": {"text/plain; version=0.0.4": EXPOSITION, "application/openmetrics-text": EXPOSITION}},
         "403": json_body(ref("Error"), "The scrape token on a route other than GET /metrics "
                                        "(rule scrape-token-metrics-only)")},
        tag="meta")
    spec["security"] = [{"bearer": []}, {"scrape": []}]
    return {"/metrics": {"get": spec}}

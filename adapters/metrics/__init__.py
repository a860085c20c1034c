"""Prometheus metrics of one engine (prometheus_client): its nodes' stats under redis_exporter's names,
their containers' figures, and the engine's own. Served by adapters/http/metrics.py."""

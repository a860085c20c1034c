"""Read models built from the event log, each keeping its tracking position."""

from projections.read_models import ReadModels

__all__ = ["ReadModels"]

"""Temporal completion: fill holes with real pixels from other frames (background memory for fixed cameras,
flow-guided propagation for moving ones) and use the injected engine only for what no frame has seen."""

from streamfill.temporal.background import BackgroundMemory, Placement
from streamfill.temporal.complete import TemporalCompletion, TemporalStats

__all__ = ["BackgroundMemory", "Placement", "TemporalCompletion", "TemporalStats"]

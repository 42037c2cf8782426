"""Engines (release): each runs jobs on its center through the center's own interface."""

from zhisuan.engines.local import EngineStatus, LocalEngine

__all__ = ["EngineStatus", "LocalEngine"]

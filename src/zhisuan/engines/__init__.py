"""Engines (release): each runs jobs on its center through the center's own interface."""

from zhisuan.engines.base import Engine, EngineDown, EngineStatus, ExternalLoad, Launch, Usage
from zhisuan.engines.fleet import Fleet, build_fleet, with_inventory
from zhisuan.engines.local import LocalEngine

__all__ = ["Engine", "EngineDown", "EngineStatus", "ExternalLoad", "Fleet", "Launch", "LocalEngine", "Usage",
           "build_fleet", "with_inventory"]

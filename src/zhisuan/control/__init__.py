"""The live loop: the only layer that joins store, scheduler and engines."""

from zhisuan.control.loop import ControlLoop

__all__ = ["ControlLoop"]

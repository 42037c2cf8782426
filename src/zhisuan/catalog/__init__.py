"""Reference data: the accelerator catalog (and, later, grid carbon factors and tariffs)."""

from zhisuan.catalog.accelerators import (
    CPU_ONLY,
    Accelerator,
    Catalog,
    UnknownAcceleratorError,
    load_catalog,
    normalise,
    pflops,
)

__all__ = ["CPU_ONLY", "Accelerator", "Catalog", "UnknownAcceleratorError", "load_catalog", "normalise", "pflops"]

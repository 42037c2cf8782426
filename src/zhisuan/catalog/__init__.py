"""Reference data: the accelerator catalog (and, later, grid carbon factors and tariffs)."""

from zhisuan.catalog.accelerators import (
    Accelerator,
    Catalog,
    UnknownAcceleratorError,
    load_catalog,
    normalise,
    pflops,
)

__all__ = ["Accelerator", "Catalog", "UnknownAcceleratorError", "load_catalog", "normalise", "pflops"]

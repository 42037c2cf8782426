"""zhisuan (智算): an open compute-power network for AI computing centers."""

from zhisuan import native

__version__ = "0.1.0"
PURE_BECAUSE = native.guard()  # the compiled scheduler runs only when it is what the source says (zhisuan.native)

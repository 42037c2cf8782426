"""zhisuan (智算): an open compute-power network for AI computing centers."""

__version__ = "0.1.0"

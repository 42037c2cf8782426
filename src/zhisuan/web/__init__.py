"""The dashboard: static files (HTML, CSS, plain JavaScript, no build step) served by `zhisuan server` at /.
They only call the REST API; every figure they show comes from it."""

from pathlib import Path

STATIC = Path(__file__).parent / "static"

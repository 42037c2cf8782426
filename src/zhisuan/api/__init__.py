"""REST face (FastAPI): maps HTTP to the control layer's service; errors as RFC 7807 problem+json."""

from zhisuan.api.app import create_app

__all__ = ["create_app"]

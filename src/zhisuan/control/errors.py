"""What the tenant-facing service refuses with, each mapped to one HTTP status by the API (404, 403, 409,
429, 503, 422): kept apart so the faces and the service name the same errors."""

from __future__ import annotations

from zhisuan.model import SpecError


class Forbidden(PermissionError):
    """The caller may not do this (another tenant's job or name)."""


def check_key(idempotency_key: str | None) -> None:
    """A client's Idempotency-Key, for submits and deploys alike."""
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 128 and idempotency_key.isprintable()):
        raise SpecError([("Idempotency-Key", "1 to 128 printable characters")])


class NotFound(KeyError):
    """No such job (service, token, center) visible to the caller: another tenant's is indistinguishable."""

    def __init__(self, key: str, what: str = "job") -> None:
        super().__init__(key)
        self.key, self.what = key, what


class Conflict(RuntimeError):
    """The job is not in a state that allows this."""


class TooMany(RuntimeError):
    """The caller has too many of something open at once (log follow streams)."""


class Unavailable(RuntimeError):
    """What was asked lives at a center that cannot answer now (its agent away, its engine down)."""


class PaymentRequired(RuntimeError):
    """The job's expected cost is more than its project has left (402): the message gives the figures."""


class SignOnRefused(RuntimeError):
    """A single sign-on that cannot be completed (401): the message names what is wrong (state, code, id_token)."""

"""Server-wide secrets: made once by whichever replica asks first, then the same for every replica."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, select

from zhisuan.store.db import insert_once
from zhisuan.store.schema import SecretRow


def shared_secret(engine: Engine, name: str) -> bytes:
    """The secret named `name` (32 random bytes), made now unless another replica made it first."""
    with engine.begin() as conn:
        insert_once(conn, SecretRow, "name", name=name, value=secrets.token_hex(32))
        value = conn.execute(select(SecretRow.value).where(SecretRow.name == name)).scalar_one()
    return bytes.fromhex(value)

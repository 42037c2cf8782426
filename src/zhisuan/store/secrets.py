"""Server-wide secrets: made once by whichever replica asks first, then the same for every replica."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from zhisuan.store.schema import SecretRow


def shared_secret(engine: Engine, name: str) -> bytes:
    """The secret named `name` (32 random bytes), made now unless another replica made it first."""
    make = sqlite_insert if engine.dialect.name == "sqlite" else pg_insert
    with engine.begin() as conn:
        conn.execute(make(SecretRow).values(name=name, value=secrets.token_hex(32))
                     .on_conflict_do_nothing(index_elements=["name"]))
        value = conn.execute(select(SecretRow.value).where(SecretRow.name == name)).scalar_one()
    return bytes.fromhex(value)

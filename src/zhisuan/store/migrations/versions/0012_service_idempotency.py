"""services: a deploy may carry an Idempotency-Key, as a submit does (one service per tenant and key)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(128), nullable=True))
        batch.create_unique_constraint("uq_services_idempotency", ["tenant", "idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_constraint("uq_services_idempotency", type_="unique")
        batch.drop_column("idempotency_key")

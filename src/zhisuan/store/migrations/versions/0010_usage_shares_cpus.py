"""usage: devices as a fraction (a share of one device is billed as its part), CPU-seconds of CPU-only jobs

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        batch.alter_column("devices", type_=sa.Float, existing_type=sa.Integer, existing_nullable=False)
        batch.add_column(sa.Column("cpu_s", sa.Float, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("cpu_s")
        batch.alter_column("devices", type_=sa.Integer, existing_type=sa.Float, existing_nullable=False)

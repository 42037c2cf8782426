"""Why a job waits and when it is expected to start (the latest cycle's view, or its center's queue)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("wait_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("expected_start", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("expected_start")
        batch.drop_column("wait_reason")

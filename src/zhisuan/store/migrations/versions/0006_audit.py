"""Who asked for each state change (audit), token labels, expiry and revocation, idempotent submits

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transitions") as batch:
        batch.add_column(sa.Column("actor", sa.String(80), nullable=False, server_default="zhisuan"))
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("label", sa.String(80), nullable=False, server_default=""))
        batch.add_column(sa.Column("expires_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.Float, nullable=True))
    op.create_table(
        "idempotency",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("job_id", sa.String(40), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("expires_at")
        batch.drop_column("label")
    with op.batch_alter_table("transitions") as batch:
        batch.drop_column("actor")

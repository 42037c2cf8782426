"""center operators: tokens.scope (an operator's centers) and drains (nodes taken out of service)

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("scope", sa.Text, nullable=False, server_default=""))
    op.create_table(
        "drains",
        sa.Column("center", sa.String(64), primary_key=True),
        sa.Column("pool", sa.String(64), primary_key=True),
        sa.Column("node", sa.Integer, primary_key=True),
        sa.Column("reason", sa.String(200), nullable=False, server_default=""),
        sa.Column("actor", sa.String(80), nullable=False, server_default=""),
        sa.Column("at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("drains")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("scope")

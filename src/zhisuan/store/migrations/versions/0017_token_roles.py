"""tokens.role: what a tenant's token may do (member, viewer, billing); admin tokens are role admin

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="member"))
    op.execute("UPDATE tokens SET role = 'admin' WHERE admin")


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("role")

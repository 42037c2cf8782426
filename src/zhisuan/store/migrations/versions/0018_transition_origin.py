"""transitions.origin: the address a person's request came from (the audit trail's "from where"); an index on
transitions.at, which the trail reads newest first

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transitions") as batch:
        batch.add_column(sa.Column("origin", sa.String(64), nullable=False, server_default=""))
    op.create_index("ix_transitions_at", "transitions", ["at"])


def downgrade() -> None:
    op.drop_index("ix_transitions_at", "transitions")
    with op.batch_alter_table("transitions") as batch:
        batch.drop_column("origin")

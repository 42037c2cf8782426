"""sso_logins: browser sign-ins under way (state, PKCE verifier, nonce), readable by every replica

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_logins",
        sa.Column("state", sa.String(64), primary_key=True),
        sa.Column("verifier", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("next", sa.String(200), nullable=False, server_default="/"),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_sso_logins_created_at", "sso_logins", ["created_at"])


def downgrade() -> None:
    op.drop_table("sso_logins")

"""funds: prepaid balances and monthly budgets per project, a double-entry ledger, and jobs' holds

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "funds",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("prepaid", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("available_fen", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("held_fen", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("budget_fen", sa.BigInteger, nullable=True),
        sa.Column("month", sa.String(7), nullable=False, server_default=""),
        sa.Column("spent_fen", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("at_zero", sa.String(8), nullable=False, server_default="hold"),
        sa.Column("alerted", sa.String(16), nullable=False, server_default=""),
        sa.Column("updated_at", sa.Float, nullable=False, server_default="0"),
    )
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("txn", sa.String(40), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("account", sa.String(16), nullable=False),
        sa.Column("fen", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(40), nullable=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False, server_default="zhisuan"),
        sa.Column("memo", sa.String(200), nullable=False, server_default=""),
    )
    op.create_index("ix_ledger_txn", "ledger", ["txn"])
    op.create_index("ix_ledger_tenant_at", "ledger", ["tenant", "at"])
    op.create_index("ix_ledger_job", "ledger", ["job_id"])
    op.create_index("ix_ledger_account_at", "ledger", ["account", "at"])
    op.create_table(
        "holds",
        sa.Column("job_id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("fen", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_holds_tenant", "holds", ["tenant"])


def downgrade() -> None:
    op.drop_table("holds")
    op.drop_table("ledger")
    op.drop_table("funds")

"""An index for the job lists' order (newest first), so a page costs the same with 10 or 100,000 jobs

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_submitted", "jobs", ["submitted_at", "id"])
    op.create_index("ix_jobs_tenant_submitted", "jobs", ["tenant", "submitted_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_tenant_submitted", "jobs")
    op.drop_index("ix_jobs_submitted", "jobs")

"""Usage intervals (metering) and busy samples (measurements of running jobs)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(40), sa.ForeignKey("jobs.id"), nullable=False, index=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False, index=True),
        sa.Column("center", sa.String(64), nullable=False),
        sa.Column("pool", sa.String(64), nullable=False),
        sa.Column("chip", sa.String(64), nullable=False),
        sa.Column("start", sa.Float, nullable=False, index=True),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("devices", sa.Integer, nullable=False),
        sa.Column("allocated_device_s", sa.Float, nullable=False),
        sa.Column("measured_device_s", sa.Float, nullable=False),
        sa.Column("busy_device_s", sa.Float, nullable=True),
        sa.Column("busy_source", sa.String(64), nullable=False),
        sa.Column("peak_memory_gib", sa.Float, nullable=True),
        sa.Column("kwh", sa.Float, nullable=False),
        sa.Column("energy_model", sa.String(96), nullable=False),
        sa.Column("kg_co2", sa.Float, nullable=False),
        sa.Column("tou_period", sa.String(16), nullable=False),
        sa.Column("tou_multiplier", sa.Float, nullable=False),
        sa.Column("cny", sa.Float, nullable=False),
        sa.Column("price_version", sa.String(96), nullable=False),
        sa.Column("assumptions", sa.Text, nullable=False),
    )
    op.create_table(
        "busy_samples",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(40), sa.ForeignKey("jobs.id"), nullable=False, index=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("busy_fraction", sa.Float, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("watts", sa.Float, nullable=True),
        sa.Column("peak_memory_gib", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("busy_samples")
    op.drop_table("usage")

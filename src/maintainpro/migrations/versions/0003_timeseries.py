"""time-series rollups: per-minute and per-hour buckets of sensor readings

Revision ID: 0003_timeseries
Revises: 0002_iot
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_timeseries"
down_revision: str | None = "0002_iot"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUP_TABLES = ("sensor_rollups_1m", "sensor_rollups_1h")


def upgrade() -> None:
    """Apply this revision."""
    for name in ROLLUP_TABLES:
        # bucket: epoch milliseconds of the bucket start; avg = value_sum / reading_count.
        op.create_table(
            name,
            sa.Column("sensor_id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("reading_count", sa.Integer(), nullable=False),
            sa.Column("value_sum", sa.Float(), nullable=False),
            sa.Column("value_min", sa.Float(), nullable=False),
            sa.Column("value_max", sa.Float(), nullable=False),
            sa.Column("last_ts", sa.BigInteger(), nullable=False),
            sa.Column("last_value", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("sensor_id", "bucket", name=op.f(f"pk_{name}")),
            sqlite_with_rowid=False,
        )


def downgrade() -> None:
    """Revert this revision."""
    for name in reversed(ROLLUP_TABLES):
        op.drop_table(name)

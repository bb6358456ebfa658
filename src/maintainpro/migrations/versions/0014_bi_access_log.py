"""BI access audit log: one row per read through a BI channel (OData, exports, cubes, streams)

Revision ID: 0014_bi_access_log
Revises: 0013_dashboards
Create Date: 2026-11-28 06:12:13.285715
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import maintainpro.core.db

revision: str = "0014_bi_access_log"
down_revision: str | None = "0013_dashboards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "bi_access_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", maintainpro.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("credential_id", sa.Integer(), nullable=True),
        sa.Column("credential_name", sa.String(length=100), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_bi_access_log_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bi_access_log")),
    )
    with op.batch_alter_table("bi_access_log", schema=None) as batch_op:
        batch_op.create_index("ix_bi_access_log_at", ["at"], unique=False)
        batch_op.create_index(
            "ix_bi_access_log_connection",
            ["channel", "user_id", "credential_id", "at", "status", "rows", "id"],
            unique=False,
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("bi_access_log", schema=None) as batch_op:
        batch_op.drop_index("ix_bi_access_log_connection")
        batch_op.drop_index("ix_bi_access_log_at")

    op.drop_table("bi_access_log")

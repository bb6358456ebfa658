"""Report outputs: the files each report run produced, per recipient scope, kept for download

Revision ID: 0015_report_outputs
Revises: 0014_bi_access_log
Create Date: 2026-11-28 09:12:02.525245
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import maintainpro.core.db

revision: str = "0015_report_outputs"
down_revision: str | None = "0014_bi_access_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "report_outputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("scope_label", sa.String(length=200), nullable=False),
        sa.Column("site_ids", sa.JSON(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=127), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("not_kept_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", maintainpro.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["report_runs.id"],
            name=op.f("fk_report_outputs_run_id_report_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_outputs")),
    )
    with op.batch_alter_table("report_outputs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_report_outputs_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_report_outputs_run_id"), ["run_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("report_outputs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_outputs_run_id"))
        batch_op.drop_index(batch_op.f("ix_report_outputs_created_at"))

    op.drop_table("report_outputs")

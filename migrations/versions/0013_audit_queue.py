"""the trail's queue: entries durably queued by each unit of work, sequenced in batches

Revision ID: 0013
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0009"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_queue",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("queued_at", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.CheckConstraint("decision IN ('allow', 'deny')", name=op.f("ck_audit_queue_decision")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_queue")),
    )


def downgrade() -> None:
    # Entries still queued join the chain first (any read of the trail integrates them, e.g.
    # `govern audit verify`); a downgrade never drops an entry that was promised durable.
    bind = op.get_bind()
    left = bind.execute(sa.text("SELECT count(*) FROM audit_queue")).scalar()
    if left:
        raise RuntimeError(f"{left} audit entries are still queued: run `govern audit verify`")
    op.drop_table("audit_queue")

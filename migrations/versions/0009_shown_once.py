"""secrets shown once on a GET page after the POST that made them (issue 12, safe actions)

Revision ID: 0009
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shown_once",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handle_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_shown_once_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shown_once")),
        sa.UniqueConstraint("handle_sha256", name=op.f("uq_shown_once_handle_sha256")),
    )
    with op.batch_alter_table("shown_once", schema=None) as batch_op:
        batch_op.create_index("ix_shown_once_user_id", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shown_once", schema=None) as batch_op:
        batch_op.drop_index("ix_shown_once_user_id")
    op.drop_table("shown_once")

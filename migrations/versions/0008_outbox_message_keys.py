"""outbox notices keep their subject and body as message keys with parameters

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # JSON text {"subject": {"key", "params"}, "body": {...}}; empty for notices queued before,
    # which pages show as their stored English text.
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("message_keys", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("message_keys")

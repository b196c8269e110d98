"""the reviewers' opinions (审核意见): the approver's on a disclosure request (beside the
handler's review_note), the handler's and the approver's on a subcontractor's record

Revision ID: 0011
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("disclosures") as batch:
        batch.add_column(sa.Column("decision_note", sa.Text(), nullable=True))
    with op.batch_alter_table("subcontractors") as batch:
        batch.add_column(sa.Column("review_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("decision_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subcontractors") as batch:
        batch.drop_column("decision_note")
        batch.drop_column("review_note")
    with op.batch_alter_table("disclosures") as batch:
        batch.drop_column("decision_note")

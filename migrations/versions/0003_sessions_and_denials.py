"""sign-out ends cookie sessions; counters of repeated anonymous denials

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_epoch", sa.Integer(), server_default="1", nullable=False)
        )
    op.create_table(
        "denial_counters",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("suppressed", sa.Integer(), nullable=False),
        sa.Column("carried", sa.Integer(), nullable=False),
        sa.Column("carried_since", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_denial_counters")),
    )
    with op.batch_alter_table("denial_counters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_denial_counters_window_start"), ["window_start"], unique=False
        )
    _add_unlock_rule()


UNLOCK = {"ptype": "p", "v0": "system_admin", "v1": "*", "v2": "user", "v3": "unlock"}


def _add_unlock_rule() -> None:
    """A store seeded before this revision gets the system administrator's unlock rule (a new
    store is seeded from policies/policy.csv, which has it)."""
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT count(*) FROM casbin_rule")).scalar() == 0:
        return
    found = conn.execute(
        sa.text(
            "SELECT count(*) FROM casbin_rule WHERE ptype = :ptype AND v0 = :v0 AND v1 = :v1 "
            "AND v2 = :v2 AND v3 = :v3"
        ),
        UNLOCK,
    ).scalar()
    if not found:
        conn.execute(
            sa.text(
                "INSERT INTO casbin_rule (ptype, v0, v1, v2, v3) "
                "VALUES (:ptype, :v0, :v1, :v2, :v3)"
            ),
            UNLOCK,
        )
        conn.execute(sa.text("UPDATE policy_state SET version = version + 1 WHERE id = 1"))


def downgrade() -> None:
    with op.batch_alter_table("denial_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_denial_counters_window_start"))
    op.drop_table("denial_counters")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")

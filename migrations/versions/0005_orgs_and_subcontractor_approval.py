"""vendor organisations, subcontractor approval, request editors

Every vendor account belongs to one vendor organisation (``users.org``); a subcontractor's record
goes through the office (``subcontractors.state`` with its review, decision and seal); a request
remembers who submitted it and everyone who edited it, so none of them reviews or decides it.

Existing data: when the agreements name exactly one vendor, the vendor accounts already there are
put in it (otherwise nobody could tell which, and they act nowhere until an administrator says).
Existing subcontractor records were never approved by the office: they become ``submitted`` and
their client tokens stop working until the office approves them; revoked ones become ``revoked``.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from govern.db import one_of

# As the model states them (govern.models.vendor), frozen here as this revision made them.
SUBCONTRACTOR_STATES = ("submitted", "reviewed", "approved", "denied", "revoked")
SUBCONTRACTOR_CHECKS = {
    "state": "state IN (" + ", ".join(f"'{s}'" for s in SUBCONTRACTOR_STATES) + ")",
    "approved_sealed": "state <> 'approved' OR approval_jws IS NOT NULL",
}

# The outbox kinds 0002 allowed, and the subcontractor steps this revision adds to them.
OUTBOX_KINDS_BEFORE = (
    "recall",
    "termination",
    "disclosure_submitted",
    "disclosure_reviewed",
    "disclosure_decided",
    "nda_ends",
    "dsa_ends",
    "record_ends",
    "grant_ends",
    "window_ends",
    "term_ends",
)
OUTBOX_KINDS = OUTBOX_KINDS_BEFORE + (
    "subcontractor_submitted",
    "subcontractor_reviewed",
    "subcontractor_decided",
)

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def _outbox_kinds(kinds: tuple[str, ...]) -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("ck_outbox_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_outbox_kind"), one_of("kind", kinds))


def upgrade() -> None:
    _outbox_kinds(OUTBOX_KINDS)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org", sa.String(length=300), nullable=True))
        batch_op.create_index(batch_op.f("ix_users_org"), ["org"], unique=False)
    op.execute(
        "UPDATE users SET org = (SELECT MIN(vendor) FROM agreements) "
        "WHERE (SELECT COUNT(DISTINCT vendor) FROM agreements) = 1 AND username IN "
        "(SELECT v0 FROM casbin_rule WHERE ptype = 'g' "
        "AND v1 IN ('vendor_lead', 'vendor_staff'))"
    )

    with op.batch_alter_table("subcontractors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=20), nullable=False, server_default="submitted")
        )
        batch_op.add_column(sa.Column("reviewed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("decided_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("deny_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("approval_document", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("approval_jws", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("approval_kid", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_subcontractors_reviewed_by_users"), "users", ["reviewed_by"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_subcontractors_decided_by_users"), "users", ["decided_by"], ["id"]
        )
    op.execute("UPDATE subcontractors SET state = 'revoked' WHERE revoked_at IS NOT NULL")
    op.execute("UPDATE subcontractors SET token_jti = NULL WHERE state = 'submitted'")
    with op.batch_alter_table("subcontractors", schema=None) as batch_op:
        batch_op.alter_column("state", server_default=None)
        for name, sql in SUBCONTRACTOR_CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_subcontractors_{name}"), sql)

    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submitted_by", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_disclosures_submitted_by_users"), "users", ["submitted_by"], ["id"]
        )
    op.create_table(
        "disclosure_editors",
        sa.Column("disclosure_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["disclosure_id"],
            ["disclosures.id"],
            name=op.f("fk_disclosure_editors_disclosure_id_disclosures"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_disclosure_editors_user_id_users")
        ),
        sa.PrimaryKeyConstraint("disclosure_id", "user_id", name=op.f("pk_disclosure_editors")),
    )


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE kind LIKE 'subcontractor\\_%' ESCAPE '\\'")
    _outbox_kinds(OUTBOX_KINDS_BEFORE)
    op.drop_table("disclosure_editors")
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_disclosures_submitted_by_users"), type_="foreignkey"
        )
        batch_op.drop_column("submitted_by")
    with op.batch_alter_table("subcontractors", schema=None) as batch_op:
        for name in SUBCONTRACTOR_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_subcontractors_{name}"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_subcontractors_decided_by_users"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_subcontractors_reviewed_by_users"), type_="foreignkey"
        )
        for name in (
            "approval_kid",
            "approval_jws",
            "approval_document",
            "deny_reason",
            "decided_at",
            "decided_by",
            "reviewed_at",
            "reviewed_by",
            "state",
        ):
            batch_op.drop_column(name)
    op.drop_index(op.f("ix_users_org"), table_name="users")
    # A column dropped in place: rebuilding the users table (batch mode) would trip every foreign
    # key that points at it (SQLite 3.35 and later drop a plain column themselves).
    op.execute("ALTER TABLE users DROP COLUMN org")

"""one-time set-password links, confirmed by a second administrator

Revision ID: 0006
Revises: 0007
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0007"
branch_labels = None
depends_on = None

# Rules for the new actions, added to a rule table that `govern init` has already seeded (an
# empty table is seeded from policies/policy.csv, which has them).
NEW_RULES = [
    ("p", "system_admin", "*", "user", "enable"),
    ("p", "security_admin", "*", "user", "confirm"),
]


def upgrade() -> None:
    op.create_table(
        "password_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=10), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("needs_confirmation", sa.Boolean(), nullable=False),
        sa.Column("confirmed_by", sa.String(length=64), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('create', 'reset')", name=op.f("ck_password_links_purpose")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_password_links_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_links")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_password_links_token_sha256")),
    )
    with op.batch_alter_table("password_links", schema=None) as batch_op:
        batch_op.create_index("ix_password_links_user_id", ["user_id"], unique=False)
    columns = ("ptype", "v0", "v1", "v2", "v3")
    rules = sa.table("casbin_rule", *(sa.column(c) for c in columns))
    bind = op.get_bind()
    if not bind.execute(sa.select(sa.func.count()).select_from(rules)).scalar():
        return
    # Each rule once: the table's unique index (0002) refuses a second copy of a line.
    missing = [
        dict(zip(columns, r, strict=True))
        for r in NEW_RULES
        if not bind.execute(
            sa.select(sa.func.count())
            .select_from(rules)
            .where(*(rules.c[c] == v for c, v in zip(columns, r, strict=True)))
        ).scalar()
    ]
    if missing:
        op.bulk_insert(rules, missing)
        bind.execute(sa.text("UPDATE policy_state SET version = version + 1 WHERE id = 1"))


def downgrade() -> None:
    rules = sa.table("casbin_rule", *(sa.column(c) for c in ("ptype", "v0", "v1", "v2", "v3")))
    for ptype, v0, v1, v2, v3 in NEW_RULES:
        op.execute(
            rules.delete().where(
                rules.c.ptype == ptype,
                rules.c.v0 == v0,
                rules.c.v1 == v1,
                rules.c.v2 == v2,
                rules.c.v3 == v3,
            )
        )
    op.drop_table("password_links")

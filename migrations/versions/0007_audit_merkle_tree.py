"""the audit trail as a Merkle tree: tree nodes, signed checkpoints, witnesses, co-signatures

Existing entries become the tree's first leaves here (their nodes and the head's frontier are
computed from the stored entries), so an upgraded trail proves and checkpoints like a new one.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-24
"""

import hashlib

import sqlalchemy as sa
from alembic import op

from govern import tlog

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Frozen here: the entry's hashed text as the trail defined it when this migration was written.
TAG = "govern-audit-v1"
HASHED = (
    "seq, at, actor, role, action, target, decision, rule, request_id, client, details, prev_hash"
)
BATCH_SQL = f"SELECT {HASHED} FROM audit_entries WHERE seq > :after ORDER BY seq LIMIT 20000"  # noqa: S608
APPEND_ONLY = ("audit_tree", "audit_tree_checkpoints", "audit_cosignatures")


def upgrade() -> None:
    op.create_table(
        "audit_tree",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", SEQ, autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_tree")),
    )
    op.create_table(
        "audit_tree_checkpoints",
        sa.Column("size", SEQ, autoincrement=False, nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_audit_tree_checkpoints")),
    )
    op.create_table(
        "audit_witnesses",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("added_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_audit_witnesses")),
    )
    op.create_table(
        "audit_cosignatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", SEQ, nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_cosignatures")),
        sa.UniqueConstraint("witness", "size", name=op.f("uq_audit_cosignatures_witness")),
    )
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frontier", sa.Text(), nullable=False, server_default=""))
    _backfill()
    _append_only()


def _backfill() -> None:
    """Build the tree over the entries already in the trail, in seq order, in batches."""
    bind = op.get_bind()
    frontier: list[bytes] = []
    size, after = 0, 0
    nodes_table = sa.table(
        "audit_tree", sa.column("level"), sa.column("idx"), sa.column("hash", sa.LargeBinary)
    )
    while True:
        rows = bind.execute(
            sa.text(BATCH_SQL),
            {"after": after},
        ).all()
        if not rows:
            break
        leaves = []
        for row in rows:
            text = TAG + "\x00" + "\x00".join(str(v) for v in row)
            leaves.append(hashlib.sha256(b"\x00" + text.encode("utf-8")).digest())
        frontier, size, nodes = tlog.append_leaves(frontier, size, leaves)
        bind.execute(
            sa.insert(nodes_table), [{"level": lv, "idx": i, "hash": h} for lv, i, h in nodes]
        )
        after = rows[-1][0]
    bind.execute(
        sa.text("UPDATE audit_head SET frontier = :frontier"),
        {"frontier": "".join(h.hex() for h in frontier)},
    )


def _append_only() -> None:
    # Like the entries: the tree, the checkpoints and the co-signatures only ever grow.
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION govern_audit_append_only()"
            )
    else:
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
                )


def downgrade() -> None:
    for table in APPEND_ONLY:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("frontier")
    op.drop_table("audit_cosignatures")
    op.drop_table("audit_witnesses")
    op.drop_table("audit_tree_checkpoints")
    op.drop_table("audit_tree")

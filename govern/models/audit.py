"""The audit trail's tables: the hash-chained entries, the chain head, the Merkle tree over the
entries, the signed checkpoints, the witnesses and their co-signatures.

Every column an entry is hashed over is stored as text or an integer exactly as hashed, so that
verifying needs no conversion and searching needs no decoding.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from govern.db import Base, one_of

DECISIONS = ("allow", "deny")

SEQ = BigInteger().with_variant(Integer, "sqlite")


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_actor_seq", "actor", "seq"),
        Index("ix_audit_entries_action_seq", "action", "seq"),
        Index("ix_audit_entries_decision_seq", "decision", "seq"),
        Index("ix_audit_entries_at", "at"),
        Index("ix_audit_entries_target_seq", "target", "seq"),
        CheckConstraint(one_of("decision", DECISIONS), name="decision"),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    # ISO-8601 UTC with microseconds and a Z; assigned at sequencing, never going backwards.
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditQueued(Base):
    """An entry durably queued, not yet in the chain (PostgreSQL): each unit of work inserts its
    own rows here in its own transaction, touching no shared row, and the sequencer moves them
    into ``audit_entries`` in batches (seq, hashes, tree, head: one lock, one commit). The columns
    are the entries' own, so a value the trail would refuse is refused here, with the action."""

    __tablename__ = "audit_queue"
    __table_args__ = (CheckConstraint(one_of("decision", DECISIONS), name="decision"),)

    id: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    # When the unit of work queued it (UTC ISO, as ``at``); its ``at`` in the chain is this time
    # or the previous entry's, whichever is later (time never runs backwards in the trail).
    queued_at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)


class AuditHead(Base):
    """The chain's head, one row. Locking it is what makes concurrent appends one gapless chain."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(SEQ, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(32), default="")
    checkpoint_seq: Mapped[int] = mapped_column(SEQ, default=0)
    # What the checkpoint's minutes count from: the last checkpoint, or the first entry of a
    # trail never checkpointed ("" on an empty trail).
    checkpoint_at: Mapped[str] = mapped_column(String(32), default="")
    # The Merkle tree's frontier at ``seq`` leaves: the hex hashes of its complete subtrees,
    # largest first (one per bit set in seq), so an append hashes without reading the tree.
    frontier: Mapped[str] = mapped_column(Text, default="", server_default="")


class AuditCheckpoint(Base):
    """The chain checkpoints of earlier versions (ES256 JWS): no longer written, still verified."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    head_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(32))
    kid: Mapped[str] = mapped_column(String(64))
    # A compact JWS (ES256) over {"seq","hash","at"}, made with the audit key in GOVERN_HOME.
    jws: Mapped[str] = mapped_column(Text)


class AuditTreeNode(Base):
    """Every complete subtree of the RFC 6962 tree over the entries: (level, index) covers leaves
    [index * 2**level, (index + 1) * 2**level); level 0 holds the leaf hashes (entry seq - 1).
    Appended with the entries, in their transaction; a proof reads O(log n) of them."""

    __tablename__ = "audit_tree"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditTreeCheckpoint(Base):
    """A signed checkpoint of the tree: the C2SP tlog-checkpoint note signed by the office."""

    __tablename__ = "audit_tree_checkpoints"

    size: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text)


class AuditWitness(Base):
    """An outside witness the office registered, by its cosignature/v1 verifier key."""

    __tablename__ = "audit_witnesses"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(400))
    added_at: Mapped[str] = mapped_column(String(32))


class AuditCosignature(Base):
    """A witness's co-signature of one signed checkpoint, as its signature line."""

    __tablename__ = "audit_cosignatures"
    __table_args__ = (UniqueConstraint("witness", "size"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(SEQ)
    witness: Mapped[str] = mapped_column(String(200))
    line: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[str] = mapped_column(String(32))

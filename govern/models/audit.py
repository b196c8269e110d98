"""The audit trail's tables: the hash-chained entries, the chain head, the signed checkpoints.

Every column an entry is hashed over is stored as text or an integer exactly as hashed, so that
verifying needs no conversion and searching needs no decoding.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text
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


class AuditHead(Base):
    """The chain's head, one row. Locking it is what makes concurrent appends one gapless chain."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(SEQ, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(32), default="")
    checkpoint_seq: Mapped[int] = mapped_column(SEQ, default=0)
    checkpoint_at: Mapped[str] = mapped_column(String(32), default="")


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    head_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(32))
    kid: Mapped[str] = mapped_column(String(64))
    # A compact JWS (ES256) over {"seq","hash","at"}, made with the audit key in GOVERN_HOME.
    jws: Mapped[str] = mapped_column(Text)

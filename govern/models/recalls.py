"""Recall orders (clause 3.10), the return confirmations they and terminations (clause 5.3) ask
for, and breaches (clauses 3.9, 7)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from govern.db import Base, UTCDateTime, one_of, utcnow

RECALL_KINDS = ("recall", "termination")
HOLDER_KINDS = ("staff", "subcontractor", "third_party")
OUTCOMES = ("returned", "destroyed")
RESPONSIBLE_KINDS = ("staff", "subcontractor")


class Recall(Base):
    __tablename__ = "recalls"
    __table_args__ = (CheckConstraint(one_of("kind", RECALL_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    ordered_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    everything: Mapped[bool] = mapped_column(Boolean, default=False)
    # "recall" for a recall order, "termination" for the return manifest of a termination.
    kind: Mapped[str] = mapped_column(String(20), default="recall")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReturnConfirmation(Base):
    """One item held by one holder, to be confirmed returned or destroyed by the vendor."""

    __tablename__ = "return_confirmations"
    __table_args__ = (
        Index("ix_return_confirmations_recall_open", "recall_id", "confirmed_at"),
        # One confirmation per recall, item and holder.
        UniqueConstraint("recall_id", "item_id", "holder_kind", "holder"),
        CheckConstraint(one_of("holder_kind", HOLDER_KINDS), name="holder_kind"),
        CheckConstraint("outcome IS NULL OR " + one_of("outcome", OUTCOMES), name="outcome"),
        # Confirmed means: when and how; open means neither.
        CheckConstraint("(confirmed_at IS NULL) = (outcome IS NULL)", name="confirmed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recall_id: Mapped[int] = mapped_column(ForeignKey("recalls.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    # staff, subcontractor or third_party, and who: a username, subcontractor:<id>, grant:<id>.
    holder_kind: Mapped[str] = mapped_column(String(20))
    holder: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class Breach(Base):
    __tablename__ = "breaches"
    __table_args__ = (
        CheckConstraint(one_of("responsible_kind", RESPONSIBLE_KINDS), name="responsible_kind"),
        CheckConstraint("liquidated_damages >= 0", name="liquidated_damages"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    description: Mapped[str] = mapped_column(Text)
    # staff (a username) or subcontractor (its id); either way the vendor answers (clause 3.9).
    responsible_kind: Mapped[str] = mapped_column(String(20))
    responsible: Mapped[str] = mapped_column(String(300))
    audit_seqs: Mapped[list] = mapped_column(JSON, default=list)
    liquidated_damages: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

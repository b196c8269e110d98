"""Per-case disclosure requests (clause 3.6), their items and the grants they hand out."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from govern.db import Base, UTCDateTime, one_of, utcnow

FORMS = ("view", "copy", "transfer")
DISCLOSURE_STATES = (
    "draft",
    "submitted",
    "reviewed",
    "approved",
    "denied",
    "withdrawn",
    "expired",
    "revoked",
)


class Disclosure(Base):
    __tablename__ = "disclosures"
    __table_args__ = (
        Index("ix_disclosures_agreement_state", "agreement_id", "state"),
        CheckConstraint(one_of("form", FORMS), name="form"),
        CheckConstraint(one_of("state", DISCLOSURE_STATES), name="state"),
        CheckConstraint("starts_on <= ends_on", name="window"),
        # clause 3.6: no approval without the owner's seal.
        CheckConstraint(
            "state <> 'approved' OR (approval_document IS NOT NULL AND approval_jws IS NOT NULL"
            " AND approval_kid IS NOT NULL)",
            name="approved_sealed",
        ),
        CheckConstraint("version >= 1", name="version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"))
    filed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    third_party: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(Text)
    form: Mapped[str] = mapped_column(String(20))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(20), default="draft")
    # Optimistic concurrency: a move only lands if nobody moved the request since it was read.
    version: Mapped[int] = mapped_column(Integer, default=1)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The handler's and the approver's opinions (审核意见) on their steps, as they wrote them.
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    decision_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deny_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    approval_document: Mapped[str | None] = mapped_column(Text, nullable=True)
    approval_jws: Mapped[str | None] = mapped_column(Text, nullable=True)
    approval_kid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}


class DisclosureEditor(Base):
    """Everyone who edited a request while it was a draft: none of them may review or decide it."""

    __tablename__ = "disclosure_editors"

    disclosure_id: Mapped[int] = mapped_column(ForeignKey("disclosures.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class DisclosureItem(Base):
    __tablename__ = "disclosure_items"

    disclosure_id: Mapped[int] = mapped_column(ForeignKey("disclosures.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True, index=True)
    # The item's sha256 when the request was filed: the seal covers exactly this content.
    sha256: Mapped[str] = mapped_column(String(64))


class Grant(Base):
    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    disclosure_id: Mapped[int] = mapped_column(ForeignKey("disclosures.id"), index=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

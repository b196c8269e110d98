"""The vendor's side: staff NDAs (clause 3.8), need-to-know (clause 3.5) and subcontractors with
their minimisation records (clause 3.7)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from govern.db import Base, UTCDateTime, utcnow
from govern.models.outbox import OUTBOX_KINDS


class Nda(Base):
    __tablename__ = "ndas"
    __table_args__ = (
        Index("ix_ndas_user_agreement", "user_id", "agreement_id"),
        CheckConstraint("signed_on <= expires_on", name="term"),
        # An NDA is renewed once: the renewal is the one row pointing at it.
        UniqueConstraint("renews_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signed_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    document_sha256: Mapped[str] = mapped_column(String(64))
    # The signed PDF, when given, is stored encrypted like an item.
    document_nonce: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    document_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    document_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    registered_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    renews_id: Mapped[int | None] = mapped_column(ForeignKey("ndas.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NeedToKnow(Base):
    __tablename__ = "need_to_know"
    __table_args__ = (
        Index("ix_need_to_know_user_item", "user_id", "item_id"),
        # One live need-to-know per person and item (clause 3.5); revoked ones stay as history.
        Index(
            "uq_need_to_know_live",
            "user_id",
            "item_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    ends_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    granted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


# clause 3.5 + 3.7: a subcontractor is a third party, so its record goes through the office like a
# disclosure request. The one list of its states (the database's CHECK is built from it).
SUBCONTRACTOR_STATES = ("submitted", "reviewed", "approved", "denied", "revoked")
# The outbox messages of a record's steps (filed, reviewed, decided).
SUBCONTRACTOR_OUTBOX_KINDS = tuple(k for k in OUTBOX_KINDS if k.startswith("subcontractor_"))
# The database states them too: a state outside the list, or an approval without the seal, is
# refused whoever writes the row.
SUBCONTRACTOR_CHECKS = {
    "dsa_term": "dsa_signed_on <= dsa_expires_on",
    # clause 3.7: the minimisation record lives within its data-security agreement.
    "until": "until <= dsa_expires_on",
    "state": "state IN (" + ", ".join(f"'{s}'" for s in SUBCONTRACTOR_STATES) + ")",
    "approved_sealed": "state <> 'approved' OR approval_jws IS NOT NULL",
}


class Subcontractor(Base):
    __tablename__ = "subcontractors"
    __table_args__ = tuple(
        CheckConstraint(sql, name=name) for name, sql in SUBCONTRACTOR_CHECKS.items()
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    service: Mapped[str] = mapped_column(String(300))
    dsa_signed_on: Mapped[date] = mapped_column(Date)
    dsa_expires_on: Mapped[date] = mapped_column(Date)
    dsa_sha256: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(Text)
    until: Mapped[date] = mapped_column(Date)
    # The jti of the one client token that currently works; rotating replaces it, revoking clears it.
    token_jti: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    registered_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    state: Mapped[str] = mapped_column(String(20), default="submitted")
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deny_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The handler's and the approver's opinions (审核意见) on their steps, as they wrote them.
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    decision_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The office's seal over the record it approved (the same seal as a disclosure's approval).
    approval_document: Mapped[str | None] = mapped_column(Text, nullable=True)
    approval_jws: Mapped[str | None] = mapped_column(Text, nullable=True)
    approval_kid: Mapped[str | None] = mapped_column(String(64), nullable=True)


class SubcontractorScope(Base):
    """One item of a minimisation record, with the fields the subcontractor may receive."""

    __tablename__ = "subcontractor_scopes"
    # One scope per subcontractor and item (its unique index also serves lookups by both).
    __table_args__ = (UniqueConstraint("subcontractor_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subcontractor_id: Mapped[int] = mapped_column(ForeignKey("subcontractors.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    fields: Mapped[list] = mapped_column(JSON, default=list)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


__all__ = [
    "SUBCONTRACTOR_CHECKS",
    "SUBCONTRACTOR_OUTBOX_KINDS",
    "SUBCONTRACTOR_STATES",
    "Nda",
    "NeedToKnow",
    "Subcontractor",
    "SubcontractorScope",
]

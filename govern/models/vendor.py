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


class Subcontractor(Base):
    __tablename__ = "subcontractors"
    __table_args__ = (
        CheckConstraint("dsa_signed_on <= dsa_expires_on", name="dsa_term"),
        # clause 3.7: the minimisation record lives within its data-security agreement.
        CheckConstraint("until <= dsa_expires_on", name="until"),
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


__all__ = ["Nda", "NeedToKnow", "Subcontractor", "SubcontractorScope"]

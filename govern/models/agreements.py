"""Agreements (each a casbin domain) and the confidential items they protect."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from govern.db import Base, UTCDateTime, one_of, utcnow

# The values each column may hold, stated once: the services validate against them and the
# database refuses anything else (CHECK constraints built from the same tuples).
AGREEMENT_STATUSES = ("active", "terminated")
CATEGORIES = (
    "design",
    "image",
    "dev_tool",
    "flowchart",
    "engineering_drawing",
    "program",
    "data",
    "patent",
    "tender_document",
    "credential",
    "business_document",
    "technical_document",
    "designated",
)
ITEM_STATUSES = ("protected", "public", "declassified", "recalled", "returned", "destroyed")
SENSITIVITIES = ("internal", "confidential", "secret")


class Agreement(Base):
    __tablename__ = "agreements"
    __table_args__ = (
        CheckConstraint(one_of("status", AGREEMENT_STATUSES), name="status"),
        CheckConstraint(
            "status <> 'terminated' OR terminated_on IS NOT NULL", name="terminated_on"
        ),
        CheckConstraint("term_years >= 1", name="term_years"),
        CheckConstraint("contract_value >= 0", name="contract_value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    owner: Mapped[str] = mapped_column(String(300))
    vendor: Mapped[str] = mapped_column(String(300))
    signed_on: Mapped[date] = mapped_column(Date)
    term_years: Mapped[int] = mapped_column(Integer)
    contract_value: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    status: Mapped[str] = mapped_column(String(20), default="active")
    terminated_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def domain(self) -> str:
        return f"agreement:{self.id}"


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_agreement_status", "agreement_id", "status"),
        CheckConstraint(one_of("category", CATEGORIES), name="category"),
        CheckConstraint(one_of("sensitivity", SENSITIVITIES), name="sensitivity"),
        CheckConstraint(one_of("status", ITEM_STATUSES), name="status"),
        CheckConstraint("size >= 0", name="size"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"))
    title: Mapped[str] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(40))
    fields: Mapped[list] = mapped_column(JSON, default=list)
    sensitivity: Mapped[str] = mapped_column(String(20), default="confidential")
    status: Mapped[str] = mapped_column(String(20), default="protected")
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    media_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    # Envelope encryption: AES-GCM content under a per-item data key, itself wrapped by the
    # key-encryption key. Destroying an item drops the wrapped key (crypto-shredding).
    nonce: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    kek_id: Mapped[str] = mapped_column(String(40), default="kek-1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

"""The outbox: notifications and warnings, shown on pages and mailed where SMTP is configured."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from govern.db import Base, UTCDateTime, one_of, utcnow

OUTBOX_KINDS = (
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
    # clause 3.5 + 3.7: a subcontractor record's steps (filed, reviewed, decided).
    "subcontractor_submitted",
    "subcontractor_reviewed",
    "subcontractor_decided",
)


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(one_of("kind", OUTBOX_KINDS), name="kind"),
        CheckConstraint(
            "recipient_role IS NOT NULL OR recipient_user_id IS NOT NULL", name="recipient"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # A stable key per warning (e.g. "nda-ends:12") so a daily sweep never sends one twice.
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    agreement_id: Mapped[int | None] = mapped_column(ForeignKey("agreements.id"), nullable=True)
    recipient_role: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    recipient_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id"), nullable=True, index=True
    )
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # The subject and body as message keys with parameters (JSON), for pages in the reader's
    # language; ``subject`` and ``body`` keep the English text for mail (None before 0008).
    message_keys: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

"""Counters of repeated anonymous denials, kept beside the trail (never part of it).

An anonymous caller (a bad token, no token) could otherwise add one trail entry per request
without bound. The first denial of a kind in a window is written to the trail as usual; the
identical ones after it inside the window are only counted here, and the count reaches the trail
as one summary entry when the window has passed (see ``govern.services.denials``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from govern.db import Base, UTCDateTime, utcnow


class DenialCounter(Base):
    __tablename__ = "denial_counters"

    # sha256 of (client, action, target, rule): one row per kind of denial per address.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Identical denials counted (not written) since window_start.
    suppressed: Mapped[int] = mapped_column(Integer, default=0)
    # The previous window's count and start, handed over when a new window opened (to be
    # summarised in the trail by the request that opened it).
    carried: Mapped[int] = mapped_column(Integer, default=0)
    carried_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

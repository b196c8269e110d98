"""Accounts and the failed-login throttle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from govern.db import Base, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    # The vendor organisation (an agreement's ``vendor``) a vendor account belongs to; None for
    # the office's own accounts. A vendor account acts only in its organisation's agreements.
    org: Mapped[str | None] = mapped_column(String(300), nullable=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on every password change or disable: tokens and sessions carry it and stop
    # working as soon as it moves.
    credential_version: Mapped[int] = mapped_column(Integer, default=1)
    # Bumped when the account signs out of the pages: every cookie session carries it, so a copy
    # of a cookie stops working once its owner signs out (on any browser: one sign-out ends all).
    session_epoch: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginThrottle(Base):
    """Failed logins counted per key: ``account:<username>`` or ``address:<ip>``."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

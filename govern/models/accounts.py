"""Accounts, their one-time set-password links, and the failed-login throttle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, LargeBinary, String
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


class PasswordLink(Base):
    """A one-time link with which an account's holder chooses its password: made by system_admin
    for a new account or a reset, so that no administrator ever knows a password it could reuse.

    Only the token's SHA-256 is kept. A link for an office or admin account is unusable until a
    security_admin other than its maker confirms it (two people); it lasts 24 hours from the
    moment it became usable, and is spent by its first use or by a newer link for the account.
    """

    __tablename__ = "password_links"
    __table_args__ = (CheckConstraint("purpose IN ('create', 'reset')", name="purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(10))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # None while it waits for a security_admin's confirmation.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    needs_confirmation: Mapped[bool] = mapped_column(Boolean, default=False)
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Spent without use: a newer link for the same account replaced it.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ShownOnce(Base):
    """A secret a page shows once (a grant token, a client token, a set-password link), kept
    between the POST that made it and the one GET that shows it (issue 12: a reload never repeats
    the action). Only its maker's account may open it, once, within minutes; the secret is
    encrypted under the keyring and the address holds a random handle of which only the SHA-256
    is kept. The row is deleted when shown."""

    __tablename__ = "shown_once"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

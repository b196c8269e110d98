"""Signed checkpoints made while serving: when one falls due, the request still succeeds."""

from __future__ import annotations

import sqlalchemy as sa

from govern import audit, create_app
from govern.models import AuditTreeCheckpoint
from tests.conftest import Api


def test_a_due_checkpoint_is_signed_and_the_request_goes_through(settings_overrides):
    # Regression: the checkpoint payload is text; signing it used to raise, and since the head
    # then never moved, every later request failed closed once the first checkpoint fell due.
    app = create_app({**settings_overrides, "checkpoint_every": 3})
    try:
        api = Api(app.test_client(), app.extensions["govern"])
        api.user("approver", "office_approver")
        for _ in range(4):
            api.agreement()
            # What is queued joins the chain first, as every read of it does: one integration
            # per round (on PostgreSQL a background batch could otherwise take all four
            # rounds' entries at once and sign only its end).
            api.audit_entries()
        runtime = app.extensions["govern"]
        with runtime.engine.connect() as conn:
            assert conn.scalar(sa.select(sa.func.count()).select_from(AuditTreeCheckpoint)) >= 2
            assert audit.verify(conn, runtime.keys).ok
    finally:
        app.extensions["govern"].engine.dispose()


def _checkpoints(app) -> list[int]:
    with app.extensions["govern"].engine.connect() as conn:
        return list(
            conn.scalars(sa.select(AuditTreeCheckpoint.size).order_by(AuditTreeCheckpoint.size))
        )


def _head(app) -> int:
    with app.extensions["govern"].engine.connect() as conn:
        return conn.scalar(sa.text("SELECT seq FROM audit_head WHERE id = 1"))


def test_a_checkpoint_follows_the_configured_minutes(settings_overrides):
    # The time rule is the office's setting, not a constant: with checkpoint_minutes = 0 every
    # append is past the deadline, so each request leaves the trail signed up to its last entry.
    app = create_app({**settings_overrides, "checkpoint_every": 10_000, "checkpoint_minutes": 0})
    try:
        api = Api(app.test_client(), app.extensions["govern"])
        api.user("approver", "office_approver")
        # Read once what is queued has joined the chain (on PostgreSQL the integrator may not
        # have taken it yet), as every read of the trail does.
        api.agreement()
        api.audit_entries()
        assert _checkpoints(app)[-1] == _head(app)
        api.agreement()
        api.audit_entries()
        assert _checkpoints(app)[-1] == _head(app)
    finally:
        app.extensions["govern"].engine.dispose()


def test_no_checkpoint_before_the_configured_minutes(settings_overrides):
    app = create_app({**settings_overrides, "checkpoint_every": 10_000, "checkpoint_minutes": 60})
    try:
        api = Api(app.test_client(), app.extensions["govern"])
        api.user("approver", "office_approver")
        api.agreement()
        api.agreement()
        assert _checkpoints(app) == []
    finally:
        app.extensions["govern"].engine.dispose()

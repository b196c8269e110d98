"""Services: one module per domain. Each public function is a unit of work on a :class:`Ctx`:
it decides first, changes data, queues its audit entry, and leaves the commit to the caller."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

from govern import policy
from govern.errors import NotFound
from govern.messages import Msg
from govern.models import User

T = TypeVar("T")


def get_or_404(db: Session, model: type[T], ident, what: str | None = None) -> T:
    """Fetch one row by primary key or raise NotFound naming the resource."""
    obj = db.get(model, ident) if isinstance(ident, int) and ident > 0 else None
    if obj is None:
        raise NotFound(Msg("missing.object", kind=what or model.__tablename__, id=ident))
    return obj


def username(db: Session, user_id: int | None) -> str | None:
    """The username of an account id (None for none or an unknown id)."""
    user = db.get(User, user_id) if user_id else None
    return user.username if user else None


def denied_at_first_review(db: Session, row) -> bool:
    """Whether a disclosure request or a subcontractor's record was denied by a handler at the
    first-level review (before any review passed), so its letter prints the denial on the
    handler's line, not the approver's."""
    if row.state != "denied" or row.reviewed_at is not None or row.decided_by is None:
        return False
    name = username(db, row.decided_by)
    roles = policy.roles_in_table(db, name) if name else set()
    return "office_handler" in roles and "office_approver" not in roles

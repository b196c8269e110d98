"""Services: one module per domain. Each public function is a unit of work on a :class:`Ctx`:
it decides first, changes data, queues its audit entry, and leaves the commit to the caller."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

from govern.errors import NotFound

T = TypeVar("T")


def get_or_404(db: Session, model: type[T], ident, what: str | None = None) -> T:
    """Fetch one row by primary key or raise NotFound naming the resource."""
    obj = db.get(model, ident) if isinstance(ident, int) and ident > 0 else None
    if obj is None:
        raise NotFound(f"{what or model.__tablename__} {ident} does not exist")
    return obj

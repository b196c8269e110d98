"""Casbin's rule table (read by pycasbin's SQLAlchemy adapter) and the policy version that tells
every worker when to reload."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Index, Integer, String, func, literal_column
from sqlalchemy.orm import Mapped, mapped_column

from govern.db import Base, one_of

PTYPES = ("p", "g")
RULE_COLUMNS = ("ptype", "v0", "v1", "v2", "v3", "v4", "v5")


class CasbinRule(Base):
    __tablename__ = "casbin_rule"
    __table_args__ = (
        CheckConstraint(one_of("ptype", PTYPES), name="ptype"),
        # One copy of each rule: a duplicate would survive the removal of the other. Missing
        # values are NULL, and NULLs never collide in a unique index, so they count as ''.
        Index(
            "uq_casbin_rule_line",
            *(func.coalesce(literal_column(c), literal_column("''")) for c in RULE_COLUMNS),
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ptype: Mapped[str | None] = mapped_column(String(255))
    v0: Mapped[str | None] = mapped_column(String(255))
    v1: Mapped[str | None] = mapped_column(String(255))
    v2: Mapped[str | None] = mapped_column(String(255))
    v3: Mapped[str | None] = mapped_column(String(255))
    v4: Mapped[str | None] = mapped_column(String(255))
    v5: Mapped[str | None] = mapped_column(String(255))

    def __str__(self) -> str:
        vals = (self.v0, self.v1, self.v2, self.v3, self.v4, self.v5)
        return ", ".join([self.ptype or ""] + [v for v in vals if v is not None])


class PolicyState(Base):
    """A single row; its version moves with every policy change, in the same transaction."""

    __tablename__ = "policy_state"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

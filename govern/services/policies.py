"""Editing the live casbin rules and role assignments (security_admin only), each change in one
transaction with its audit entry and a policy version bump that tells every worker to reload."""

from __future__ import annotations

import re

from sqlalchemy import func, or_, select

from govern import duties, policy
from govern.actions import Action
from govern.context import Ctx, Target, require
from govern.errors import Conflict, Invalid
from govern.messages import Msg
from govern.models import CasbinRule, User
from govern.services import get_or_404

DOMAIN = re.compile(r"\*|agreement:[1-9]\d{0,9}")
ACTIONS = {(a.kind, a.verb) for a in Action}


def rule_json(rule: CasbinRule) -> dict:
    values = [v for v in (rule.v0, rule.v1, rule.v2, rule.v3) if v is not None]
    return {"id": rule.id, "ptype": rule.ptype, "values": values}


def list_rules(ctx: Ctx) -> list[CasbinRule]:
    require(ctx, Action.POLICY_LIST, Target("policy", "*"))
    return list(ctx.db.scalars(select(CasbinRule).order_by(CasbinRule.ptype.desc(), CasbinRule.id)))


def find_rules(
    ctx: Ctx, who: str | None, text: str | None, ptype: str | None, offset: int, limit: int
) -> tuple[list[CasbinRule], int]:
    """One page of the rules: of one role or account (``who``: a p rule's role, a g rule's
    account or role), containing ``text`` in any value, of one kind; and how many in all."""
    if ptype not in (None, "p", "g"):
        raise Invalid("ptype: must be p or g", field="ptype")
    require(ctx, Action.POLICY_LIST, Target("policy", "*"))
    values = (CasbinRule.v0, CasbinRule.v1, CasbinRule.v2, CasbinRule.v3)
    stmt = select(CasbinRule)
    if ptype:
        stmt = stmt.where(CasbinRule.ptype == ptype)
    if who:
        stmt = stmt.where(or_(CasbinRule.v0 == who, CasbinRule.v1 == who))
    if text:
        needle = text.lower()
        stmt = stmt.where(or_(*(func.lower(v).contains(needle, autoescape=True) for v in values)))
    total = ctx.db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    stmt = stmt.order_by(CasbinRule.ptype.desc(), CasbinRule.id).offset(offset).limit(limit)
    return list(ctx.db.scalars(stmt)), total


def _check_p(ctx: Ctx, target: Target, values: list[str]) -> None:
    role, domain, kind, act = values
    if role not in policy.ROLES:
        raise Invalid(Msg("policy.not_role", role=role), field="values", at="values[0]")
    if not DOMAIN.fullmatch(domain):
        raise Invalid(Msg("policy.domain"), field="values", at="values[1]")
    # The matcher compares kinds and actions for equality: a "*" or a pattern is no action.
    if (kind, act) not in ACTIONS:
        raise Invalid(
            Msg("policy.not_action", action=f"{kind}:{act}"), field="values", at="values[2:4]"
        )
    violation = duties.rule_violation(role, kind, act)
    duties.enforce(ctx, Action.POLICY_ADD, target, violation, "values", values=values)


def _check_g(ctx: Ctx, target: Target, values: list[str]) -> None:
    username, role, domain = values
    # A role as the account (role inheritance) is refused before anything else is looked at.
    if username not in policy.ROLES:
        if ctx.db.scalar(select(User.id).where(User.username == username)) is None:
            raise Invalid(Msg("policy.no_user", name=username), field="values", at="values[0]")
        if role not in policy.ACCOUNT_ROLES:
            raise Invalid(Msg("policy.not_account_role", role=role), field="values", at="values[1]")
        if not DOMAIN.fullmatch(domain):
            raise Invalid(Msg("policy.domain"), field="values", at="values[2]")
    violation = duties.assignment_violation(ctx.db, duties.actor(ctx), username, role)
    duties.enforce(ctx, Action.ROLE_ASSIGN, target, violation, "values", values=values)


def add_rule(ctx: Ctx, ptype: str, values: list[str]) -> CasbinRule:
    action = Action.POLICY_ADD if ptype == "p" else Action.ROLE_ASSIGN
    target = Target("policy", ptype)
    decision = require(ctx, action, target)
    if len(values) != (4 if ptype == "p" else 3):
        count = 4 if ptype == "p" else 3
        raise Invalid(Msg("policy.arity", ptype=ptype, count=count), field="values", at="values")
    _check_p(ctx, target, values) if ptype == "p" else _check_g(ctx, target, values)
    columns = {f"v{i}": v for i, v in enumerate(values)}
    same = select(CasbinRule.id).filter_by(ptype=ptype, **columns)
    if ctx.db.scalar(same) is not None:
        raise Conflict(Msg("policy.exists"), field="values")
    rule = CasbinRule(ptype=ptype, **columns)
    ctx.db.add(rule)
    policy.bump_version(ctx.db)
    ctx.flush()  # the same rule added by a concurrent request: 409
    decision.entry.target = f"policy:{rule.id}"
    decision.record(ptype=ptype, values=values)
    return rule


def remove_rule(ctx: Ctx, rule_id: int) -> None:
    rule = get_or_404(ctx.db, CasbinRule, rule_id, "policy rule")
    action = Action.POLICY_REMOVE if rule.ptype == "p" else Action.ROLE_UNASSIGN
    target = Target("policy", rule_id)
    decision = require(ctx, action, target)
    violation = duties.removal_violation(duties.actor(ctx), rule)
    duties.enforce(ctx, action, target, violation, "rule", values=rule_json(rule)["values"])
    decision.record(ptype=rule.ptype, values=rule_json(rule)["values"])
    ctx.db.delete(rule)
    policy.bump_version(ctx.db)

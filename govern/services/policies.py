"""Editing the live casbin rules and role assignments (security_admin only), each change in one
transaction with its audit entry and a policy version bump that tells every worker to reload."""

from __future__ import annotations

import re

from sqlalchemy import select

from govern import policy
from govern.actions import Action
from govern.context import Ctx, Target, require
from govern.errors import Conflict, Forbidden, Invalid
from govern.models import CasbinRule, User
from govern.services import accounts, get_or_404

DOMAIN = re.compile(r"\*|agreement:[1-9]\d{0,9}")
ACTIONS = {(a.kind, a.verb) for a in Action}


def rule_json(rule: CasbinRule) -> dict:
    values = [v for v in (rule.v0, rule.v1, rule.v2, rule.v3) if v is not None]
    return {"id": rule.id, "ptype": rule.ptype, "values": values}


def list_rules(ctx: Ctx) -> list[CasbinRule]:
    require(ctx, Action.POLICY_LIST, Target("policy", "*"))
    return list(ctx.db.scalars(select(CasbinRule).order_by(CasbinRule.ptype.desc(), CasbinRule.id)))


def _check_p(values: list[str]) -> None:
    role, domain, kind, act = values
    if role not in policy.ROLES:
        raise Invalid(f"values[0]: {role} is not a role", field="values")
    if not DOMAIN.fullmatch(domain):
        raise Invalid("values[1]: a domain is * or agreement:<id>", field="values")
    if (kind, act) not in ACTIONS:
        raise Invalid(f"values[2:4]: {kind}:{act} is not an action", field="values")
    if role in policy.ADMIN_TRIAD and (kind, act) in policy.FORBIDDEN_FOR_ADMINS:
        raise Conflict(f"separation of duties: {role} may never {kind}:{act}", field="values")


def _check_g(ctx: Ctx, values: list[str]) -> None:
    username, role, domain = values
    if ctx.db.scalar(select(User.id).where(User.username == username)) is None:
        raise Invalid(f"values[0]: no user {username}", field="values")
    if role not in policy.ACCOUNT_ROLES:
        raise Invalid(f"values[1]: {role} is not an account role", field="values")
    if not DOMAIN.fullmatch(domain):
        raise Invalid("values[2]: a domain is * or agreement:<id>", field="values")
    if username == ctx.principal.name:
        raise Forbidden("separation of duties: nobody changes their own roles")
    accounts.check_separation(policy.roles_in_table(ctx.db, username), role)


def add_rule(ctx: Ctx, ptype: str, values: list[str]) -> CasbinRule:
    action = Action.POLICY_ADD if ptype == "p" else Action.ROLE_ASSIGN
    decision = require(ctx, action, Target("policy", ptype))
    if len(values) != (4 if ptype == "p" else 3):
        raise Invalid(
            f"values: a {ptype} rule has {4 if ptype == 'p' else 3} values", field="values"
        )
    _check_p(values) if ptype == "p" else _check_g(ctx, values)
    columns = {f"v{i}": v for i, v in enumerate(values)}
    same = select(CasbinRule.id).filter_by(ptype=ptype, **columns)
    if ctx.db.scalar(same) is not None:
        raise Conflict("that rule exists already", field="values")
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
    decision = require(ctx, action, Target("policy", rule_id))
    if rule.ptype == "g" and rule.v0 == ctx.principal.name:
        raise Forbidden("separation of duties: nobody changes their own roles")
    decision.record(ptype=rule.ptype, values=rule_json(rule)["values"])
    ctx.db.delete(rule)
    policy.bump_version(ctx.db)

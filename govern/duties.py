"""Separation of duties (三员分立) as invariants that no policy edit, role assignment or account
creation can undo, whoever calls: the API, the pages or the command line with a named actor.

Every change to the rule table or to an account's roles passes through :func:`check` here, before
it is made. A refusal answers 409 naming the invariant it would break, and is kept in the trail
as a denial even though the change itself is rolled back. The table of which duty may hold which
action lives beside the actions (``govern.actions.ACTION_DUTIES``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from govern import policy
from govern.actions import ACTION_DUTIES, ROLE_DUTY, Action, Duty
from govern.context import Ctx, Target
from govern.errors import Conflict, Forbidden, GovernError
from govern.messages import Msg
from govern.models import CasbinRule

# The invariants, by the names a refusal carries (``error.invariant``) and the trail records.
ROLE_IN_DUTY = Msg("inv.role_in_duty")
ONE_DUTY = Msg("inv.one_duty")
ACCOUNTS_HOLD_ROLES = Msg("inv.accounts_hold_roles")
KEEPERS_KEEP_RULES = Msg("inv.keepers")
NOT_ONESELF = Msg("inv.not_oneself")

# Where an action belongs, said once for the messages (content, trail, rules, accounts).
_OWNERS = {
    frozenset({Duty.VENDOR, Duty.OFFICE}): Msg("owners.vendor_office"),
    frozenset({Duty.AUDIT}): Msg("owners.audit"),
    frozenset({Duty.SECURITY}): Msg("owners.security"),
    frozenset({Duty.SYSTEM}): Msg("owners.system"),
}
_ACTIONS = {(a.kind, a.verb): a for a in Action}


def broken(invariant: Msg, detail: Msg) -> Msg:
    """A refusal under separation of duties: the invariant, then what breaks it."""
    return Msg("duty.violation", invariant=invariant, detail=detail)


@dataclass(frozen=True)
class Violation:
    invariant: str
    message: str
    status: int = 409


def duty_of(role: str) -> Duty | None:
    return ROLE_DUTY.get(role)


def duties_of(action: Action) -> frozenset[Duty]:
    return ACTION_DUTIES.get(action, frozenset())


def _owners(duties: frozenset[Duty]) -> str:
    if not duties:
        return Msg("owners.none")
    return _OWNERS.get(duties) or Msg("owners.some", duties=" and ".join(sorted(duties)))


def rule_violation(role: str, kind: str, verb: str) -> Violation | None:
    """May a policy rule give ``role`` this action? Only an action of the role's own duty."""
    action = _ACTIONS.get((kind, verb))
    duty = duty_of(role)
    if action is None or duty is None or duty in duties_of(action):
        return None
    return Violation(
        ROLE_IN_DUTY,
        broken(
            ROLE_IN_DUTY,
            Msg(
                "duty.belongs",
                action=f"{kind}:{verb}",
                owners=_owners(duties_of(action)),
                role=role,
                duty=str(duty),
            ),
        ),
    )


def holding_violation(held: set[str], role: str) -> Violation | None:
    """May an account that holds ``held`` also hold ``role``? Only roles of one duty."""
    duties = {duty_of(r) for r in held | {role}} - {None}
    if len(duties) <= 1:
        return None
    mine = ", ".join(f"{r} ({duty_of(r)})" for r in sorted(held))
    return Violation(
        ONE_DUTY,
        broken(ONE_DUTY, Msg("duty.holds", held=mine, role=role, duty=str(duty_of(role)))),
    )


def assignment_violation(
    db: Session, actor: str | None, username: str, role: str
) -> Violation | None:
    """May ``actor`` give ``username`` the role ``role`` (a g rule, or a new account's role)?"""
    if username in policy.ROLES:
        # The model is RBAC with domains: a role-to-role edge would hand one role's rules to
        # another, around every check on p rules. Only accounts hold roles.
        return Violation(
            ACCOUNTS_HOLD_ROLES,
            broken(ACCOUNTS_HOLD_ROLES, Msg("duty.is_role", name=username)),
        )
    if actor is not None and username == actor:
        return Violation(NOT_ONESELF, broken(NOT_ONESELF, Msg("duty.is_you", name=username)), 403)
    return holding_violation(policy.roles_in_table(db, username), role)


def _kept(rule: CasbinRule) -> bool:
    # The trail's keeper keeps its trail rules, and security_admin its own rules, in every
    # domain: removing them would leave nobody able to audit, or to mend the rules.
    if rule.ptype != "p" or rule.v1 != policy.GLOBAL:
        return False
    return (rule.v0 == "auditor" and rule.v2 == "audit") or rule.v0 == "security_admin"


def removal_violation(actor: str | None, rule: CasbinRule) -> Violation | None:
    """May ``actor`` remove this rule or role assignment?"""
    if rule.ptype == "g" and actor is not None and rule.v0 == actor:
        return Violation(NOT_ONESELF, broken(NOT_ONESELF, Msg("duty.is_you", name=rule.v0)), 403)
    if _kept(rule):
        return Violation(
            KEEPERS_KEEP_RULES,
            broken(KEEPERS_KEEP_RULES, Msg("duty.kept", rule=str(rule))),
        )
    return None


def actor(ctx: Ctx) -> str | None:
    """The account making a change (None for the local operator at the command line)."""
    return ctx.principal.name if ctx.principal.kind == "user" else None


def enforce(
    ctx: Ctx,
    action: Action,
    target: Target,
    violation: Violation | None,
    field: str,
    **details,
) -> None:
    """Refuse a change that breaks an invariant: a kept denial in the trail, then 409 (or 403
    when the caller acts on itself), naming the invariant."""
    if violation is None:
        return
    ctx.record(action, target, "deny", violation.invariant, keep=True, **details)
    error: type[GovernError] = Forbidden if violation.status == 403 else Conflict
    raise error(violation.message, field=field, invariant=violation.invariant)


def all_violations(db: Session) -> list[str]:
    """Every rule and every account in the table that breaks an invariant (none, always)."""
    found = []
    held: dict[str, set[str]] = {}
    for rule in db.scalars(select(CasbinRule)):
        if rule.ptype == "p":
            broken = rule_violation(rule.v0, rule.v2, rule.v3)
            if broken:
                found.append(f"{rule}: {broken.message}")
        elif rule.ptype == "g":
            if rule.v0 in policy.ROLES:
                found.append(f"{rule}: {ACCOUNTS_HOLD_ROLES}")
            held.setdefault(rule.v0, set()).add(rule.v1)
    for username, roles in held.items():
        if len({duty_of(r) for r in roles}) > 1:
            found.append(f"{username} holds {sorted(roles)}: {ONE_DUTY}")
    return found

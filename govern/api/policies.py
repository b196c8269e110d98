"""/policies: the live casbin rules and role assignments (security_admin)."""

from __future__ import annotations

from govern.actions import Action
from govern.api import endpoint
from govern.schema import Enum, List, Schema, Str
from govern.services import policies

RULE_IN = Schema(
    "PolicyRule",
    ptype=Enum(
        choices=("p", "g"), description="p: role, domain, kind, action; g: user, role, domain"
    ),
    values=List(of=Str(max_len=100), min_items=3, max_items=4, unique=False),
)


@endpoint(
    "/policies",
    summary="List policy rules and role assignments",
    tag="policy",
    action=Action.POLICY_LIST,
)
def list_policies(ctx):
    return {"rules": [policies.rule_json(r) for r in policies.list_rules(ctx)]}


@endpoint(
    "/policies",
    "POST",
    summary="Add a rule or a role assignment",
    tag="policy",
    body=RULE_IN,
    status=201,
    action=Action.POLICY_ADD,
)
def add_policy(ctx, data):
    return policies.rule_json(policies.add_rule(ctx, data["ptype"], data["values"]))


@endpoint(
    "/policies/<int:rule_id>",
    "DELETE",
    summary="Remove a rule or a role assignment",
    tag="policy",
    action=Action.POLICY_REMOVE,
)
def remove_policy(ctx, rule_id):
    policies.remove_rule(ctx, rule_id)
    return {"removed": rule_id}

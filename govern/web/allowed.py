"""What a page shows: only the tabs, buttons and links the decision point would allow.

Templates ask :func:`can` (``can("item:read", item)``) instead of restating any rule: it asks the
same casbin engine and the same object checks as the action itself (organisation, NDA,
need-to-know, status), but writes no trail entry. Drawing a page is not an act; when the reader
follows the link, the action makes its own audited decision.
"""

from __future__ import annotations

from flask import g

from govern.actions import Action
from govern.context import Checks, Ctx, Target
from govern.context import can as would_allow
from govern.models import Agreement, Breach, Disclosure, Item, Subcontractor
from govern.policy import GLOBAL
from govern.services import agreements, breaches, disclosures, items, subcontractors

# Each model's object as the decision point names it (its kind, id and agreement).
_TARGETS = {
    Agreement: agreements.target,
    Item: items.target,
    Disclosure: disclosures.target,
    Subcontractor: subcontractors.target,
    Breach: breaches.target,
}

# The agreement's tabs, each with every listing its page makes: the tab is drawn only when all
# of them would be allowed, so no tab leads to a 403 (the handler may list NDAs but not
# need-to-know, so it has no staff tab).
TABS = (
    ("overview", "web.agreement_page", ("agreement:read", "item:list")),
    ("staff", "web.staff_page", ("nda:list", "ntk:list", "item:list")),
    ("subcontractors", "web.subcontractor_page", ("subcontractor:list", "item:list")),
    ("requests", "web.request_list", ("disclosure:list", "item:list")),
    ("recalls", "web.recall_page", ("recall:list", "item:list")),
    ("breaches", "web.breach_page", ("breach:list",)),
)


def target_of(obj) -> Target:
    """The decision point's target for a model object, a Target, or nothing (global)."""
    if obj is None:
        return Target("*", "*", GLOBAL)
    if isinstance(obj, Target):
        return obj
    return _TARGETS[type(obj)](obj)


def _checks(ctx: Ctx, action: Action, obj) -> Checks:
    """The object's own facts for the actions whose service checks them (reading an item)."""
    if action == Action.ITEM_READ and isinstance(obj, Item):
        agreement = ctx.db.get(Agreement, obj.agreement_id)
        return items.read_checks(ctx, obj, agreement, ctx.today(), _item_facts(ctx, agreement))
    return ()


def _item_facts(ctx: Ctx, agreement: Agreement) -> items.Facts | None:
    """A vendor reader's NDA and need-to-know in the agreement, read once per page (not once
    per drawn link); None for an office reader, whose reads depend on neither."""
    if ctx.principal.org is None or ctx.principal.id is None:
        return None
    cache = g.setdefault("item_facts", {})
    if agreement.id not in cache:
        cache[agreement.id] = items.AgreementFacts(
            ctx.db, ctx.principal.id, agreement.id, ctx.today()
        )
    return cache[agreement.id]


def page_ctx() -> Ctx | None:
    return g.get("page_ctx")


def can(action: str, obj=None) -> bool:
    """Would the decision point let the reader do ``action`` ("kind:verb") on ``obj``?

    No trail entry is written (display only)."""
    ctx = page_ctx()
    if ctx is None or ctx.principal.kind != "user":
        return False
    act = Action(action)
    return would_allow(ctx, act, target_of(obj), _checks(ctx, act, obj))


def tabs(agreement: Agreement) -> list[tuple[str, str]]:
    """The agreement's tabs this reader may open: (key, endpoint)."""
    return [
        (key, endpoint)
        for key, endpoint, needs in TABS
        if all(can(action, agreement) for action in needs)
    ]

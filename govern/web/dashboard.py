"""What each role sees first: the vendor lead's requests by state and everything ending soon, the
office's waiting requests, the notices (outbox) addressed to the reader. Every number comes from
the services the other pages use, so the dashboard can never show what the reader may not see."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from govern.context import Ctx
from govern.db import utcnow
from govern.models import Agreement
from govern.policy import OFFICE_ROLES
from govern.services import disclosures, grants, ndas, outbox, recalls, subcontractors


def vendor_lead(ctx: Ctx, listing: list[Agreement], clocks: dict) -> dict:
    """Requests by state, and NDAs, data-security agreements, grants and terms ending soon."""
    today = ctx.today()
    horizon = today + timedelta(days=ctx.settings.warn_days)
    by_state: Counter[str] = Counter()
    ending: list[dict] = []
    open_returns = 0

    def soon(kind: str, what: str, ends, agreement: Agreement, href: str) -> None:
        if today <= ends <= horizon:
            ending.append(
                {
                    "kind": kind,
                    "what": what,
                    "ends": ends,
                    "days": (ends - today).days,
                    "agreement": agreement,
                    "href": href,
                }
            )

    for a in listing:
        soon("term", a.title, clocks[a.id]["term_ends_on_date"], a, f"/agreements/{a.id}")
        for d in disclosures.list_for(ctx, a.id):
            state = disclosures.effective_state(ctx, d)
            by_state[state] += 1
            if state == "approved":
                for g in grants.list_for(ctx, d.id):
                    if grants.grant_state(g) == "live":
                        soon(
                            "grant",
                            f"{d.third_party} (#{d.id})",
                            ctx.clock.last_day(g.expires_at),
                            a,
                            f"/requests/{d.id}",
                        )
        for nda, username in ndas.list_ndas(ctx, a.id):
            if ndas.nda_status(nda, today) == "valid":
                soon("nda", username, nda.expires_on, a, f"/agreements/{a.id}/staff")
        for sub, _scopes in subcontractors.list_for(ctx, a.id):
            if sub.state in ("submitted", "reviewed", "approved"):
                soon(
                    "dsa",
                    sub.name,
                    min(sub.dsa_expires_on, sub.until),
                    a,
                    f"/agreements/{a.id}/subcontractors",
                )
        for row in recalls.list_for(ctx, a.id):
            open_returns += len(recalls.recall_json(ctx, row)["open_confirmations"])
    ending.sort(key=lambda e: e["ends"])
    return {
        "by_state": [(s, by_state[s]) for s in disclosures.STATES if by_state[s]],
        "ending": ending,
        "open_returns": open_returns,
    }


def office(ctx: Ctx, listing: list[Agreement]) -> dict:
    waiting: Counter[str] = Counter()
    for a in listing:
        for d in disclosures.list_for(ctx, a.id):
            state = disclosures.effective_state(ctx, d)
            if state in ("submitted", "reviewed"):
                waiting[state] += 1
    return {"submitted": waiting["submitted"], "reviewed": waiting["reviewed"]}


def notices(ctx: Ctx) -> list:
    """The latest notices addressed to the reader or their roles (the 30-day warnings, recalls)."""
    recent = utcnow() - timedelta(days=90)
    return [m for m in outbox.list_for(ctx, limit=10) if m.created_at >= recent]


def panels(ctx: Ctx, listing: list[Agreement], clocks: dict) -> dict:
    roles = set(ctx.roles())
    shown: dict = {}
    if "vendor_lead" in roles:
        shown["vendor_lead"] = vendor_lead(ctx, listing, clocks)
    if roles & OFFICE_ROLES:
        shown["office"] = office(ctx, listing)
    if roles & (OFFICE_ROLES | {"vendor_lead"}):
        shown["notices"] = notices(ctx)
    for admin in ("auditor", "system_admin", "security_admin"):
        if admin in roles:
            shown[admin] = {}
    return shown

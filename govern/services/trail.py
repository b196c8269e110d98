"""The auditor's side of the trail: every read of it is itself a decision on the trail."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from sqlalchemy import func, select

from govern import audit, denials
from govern.actions import Action
from govern.context import Ctx, Target, require
from govern.errors import NotFound


def search(ctx: Ctx, query: audit.Query, limit: int, cursor: int | None):
    require(ctx, Action.AUDIT_SEARCH, Target("audit", "trail")).record(
        **{k: str(v) for k, v in vars(query).items() if v}
    )
    return audit.search(ctx.db, query, limit, cursor)


def verify(ctx: Ctx, progress=None, jobs: int = 1) -> audit.VerifyResult:
    """Verify the whole trail; ``jobs`` > 1 walks it in that many processes (command line)."""
    decision = require(ctx, Action.AUDIT_VERIFY, Target("audit", "trail"))
    conn = ctx.db.connection()
    if jobs > 1:
        result = audit.verify_parallel(conn, ctx.settings.database_url, ctx.keys.audit_key, jobs)
    else:
        result = audit.verify(conn, ctx.keys.audit_key, progress)
    decision.record(ok=result.ok, entries=result.entries, first_bad=result.first_bad, jobs=jobs)
    return result


def export(ctx: Ctx, query: audit.Query, fmt: str):
    require(ctx, Action.AUDIT_EXPORT, Target("audit", "trail")).record(
        format=fmt, **{k: str(v) for k, v in vars(query).items() if v}
    )
    return audit.export(ctx.runtime.sessions, query, fmt)


def checkpoint(ctx: Ctx) -> int | None:
    decision = require(ctx, Action.AUDIT_CHECKPOINT, Target("audit", "trail"))
    # Counts of repeated anonymous entries whose minute has passed join the trail now too.
    ctx.pending.extend(denials.flush_stale(ctx.db))
    # Sign the head as it stands before this entry joins it; the next checkpoint covers it.
    seq = audit.checkpoint_now(ctx.db, ctx.keys.audit_key)
    decision.record(checkpoint_seq=seq)
    return seq


def entry(ctx: Ctx, seq: int) -> audit.AuditEntry:
    """One entry of the trail, for the auditor's detail page."""
    require(ctx, Action.AUDIT_SEARCH, Target("audit", seq))
    found = ctx.db.get(audit.AuditEntry, seq) if seq > 0 else None
    if found is None:
        raise NotFound(f"audit entry {seq} does not exist")
    return found


def stats(ctx: Ctx, since: date, until: date) -> dict:
    """Decisions per day (allow / deny) and denials by reason, over [since, until] (UTC days)."""
    require(ctx, Action.AUDIT_SEARCH, Target("audit", "stats")).record(
        since=since.isoformat(), until=until.isoformat()
    )
    # The trail keeps times as ISO text, so a day is its first ten characters on every backend.
    day = func.substr(audit.AuditEntry.at, 1, 10)
    window = (day >= since.isoformat(), day <= until.isoformat())
    per_day: dict[str, dict[str, int]] = {}
    rows = ctx.db.execute(
        select(day, audit.AuditEntry.decision, func.count())
        .where(*window)
        .group_by(day, audit.AuditEntry.decision)
    )
    for d, decision, count in rows:
        per_day.setdefault(d, {"allow": 0, "deny": 0})[decision] = count
    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    reasons: Counter[str] = Counter()
    rows = ctx.db.execute(
        select(audit.AuditEntry.rule, func.count())
        .where(*window, audit.AuditEntry.decision == "deny")
        .group_by(audit.AuditEntry.rule)
    )
    for rule, count in rows:
        reasons[reason_of(rule)] += count
    return {
        "days": [(d, per_day.get(d.isoformat(), {"allow": 0, "deny": 0})) for d in days],
        "reasons": reasons.most_common(12),
    }


def reason_of(rule: str) -> str:
    """A denial's reason without the casbin rule it was checked under: "no valid NDA (p, ...)"
    and "no valid NDA (p, other...)" are the same reason."""
    head, sep, _rest = rule.partition(" (")
    return head if sep and head else rule

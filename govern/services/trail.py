"""The auditor's side of the trail: every read of it is itself a decision on the trail."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

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
    return audit.export(ctx.runtime.sessions, query, fmt, ctx.clock)


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
    """Decisions per day (allow / deny) and denials by reason, over the office's days
    [since, until]: a day runs from 00:00 to 24:00 office time, whatever zone the trail keeps."""
    require(ctx, Action.AUDIT_SEARCH, Target("audit", "stats")).record(
        since=since.isoformat(), until=until.isoformat()
    )
    clock, at = ctx.clock, audit.AuditEntry.at
    window = (
        at >= audit.iso(clock.start_of_day(since)),
        at < audit.iso(clock.end_of_day(until)),
    )
    # The trail keeps UTC times as ISO text: the database counts per UTC hour (its first 13
    # characters; per minute for a zone whose offset is not whole hours) on every backend, and
    # each hour goes to the office day it falls in.
    width = 13 if _whole_hours(clock, since, until) else 16
    bucket = func.substr(at, 1, width)
    per_day: dict[date, dict[str, int]] = {}
    rows = ctx.db.execute(
        select(bucket, audit.AuditEntry.decision, func.count())
        .where(*window)
        .group_by(bucket, audit.AuditEntry.decision)
    )
    for prefix, decision, count in rows:
        moment = datetime.fromisoformat(f"{prefix}:00"[:16]).replace(tzinfo=UTC)
        counts = per_day.setdefault(clock.day_of(moment), {"allow": 0, "deny": 0})
        counts[decision] += count
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
        "days": [(d, per_day.get(d, {"allow": 0, "deny": 0})) for d in days],
        "reasons": reasons.most_common(12),
    }


def _whole_hours(clock, since: date, until: date) -> bool:
    """Does every office day in [since, until] start on a whole UTC hour?"""
    hour = timedelta(hours=1)
    return all(
        clock.start_of_day(since + timedelta(days=i)).utcoffset() % hour == timedelta(0)
        for i in range((until - since).days + 2)
    )


def reason_of(rule: str) -> str:
    """A denial's reason without the casbin rule it was checked under: "no valid NDA (p, ...)"
    and "no valid NDA (p, other...)" are the same reason."""
    head, sep, _rest = rule.partition(" (")
    return head if sep and head else rule

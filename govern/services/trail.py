"""The auditor's side of the trail: every read of it is itself a decision on the trail."""

from __future__ import annotations

from govern import audit
from govern.actions import Action
from govern.context import Ctx, Target, require


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
    # Sign the head as it stands before this entry joins it; the next checkpoint covers it.
    seq = audit.checkpoint_now(ctx.db, ctx.keys.audit_key)
    decision.record(checkpoint_seq=seq)
    return seq

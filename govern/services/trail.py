"""The auditor's side of the trail: every read of it is itself a decision on the trail."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from govern import audit, denials, tlog
from govern.actions import Action
from govern.context import Ctx, Target, require
from govern.errors import Conflict, Invalid, NotFound
from govern.messages import Msg, read
from govern.models import (
    AuditCosignature,
    AuditTreeCheckpoint,
    AuditWitness,
    Disclosure,
    Grant,
)


def search(ctx: Ctx, query: audit.Query, limit: int, cursor: int | None):
    ctx.settle_trail()
    require(ctx, Action.AUDIT_SEARCH, Target("audit", "trail")).record(**query.asked())
    resolve(ctx, query)
    return audit.search(ctx.db, query, limit, cursor)


def resolve(ctx: Ctx, query: audit.Query) -> None:
    """Turn the filters by item, request, grant and third party into the trail's own names for
    them (targets and actors), each read once from the domain tables; each filter narrows."""
    scopes = []
    if query.item:
        scopes.append(audit.Scope(targets=(f"item:{query.item}",)))
    if query.request:
        scopes.append(_requests_scope(ctx, [query.request]))
    if query.grant:
        named = (f"grant:{query.grant}",)
        scopes.append(audit.Scope(targets=named, actors=named))
    if query.third_party:
        needle = query.third_party.lower()
        ids = ctx.db.scalars(
            select(Disclosure.id).where(
                func.lower(Disclosure.third_party).contains(needle, autoescape=True)
            )
        )
        scopes.append(_requests_scope(ctx, list(ids)))
    query.scopes = tuple(scopes)


def _requests_scope(ctx: Ctx, request_ids: list[int]) -> audit.Scope:
    """A request's entries: the request itself, its grants, and what its grants' holders did."""
    if not request_ids:
        return audit.Scope()
    grant_ids = list(ctx.db.scalars(select(Grant.id).where(Grant.disclosure_id.in_(request_ids))))
    grants = tuple(f"grant:{g}" for g in grant_ids)
    return audit.Scope(
        targets=tuple(f"disclosure:{d}" for d in request_ids) + grants, actors=grants
    )


def verify(
    ctx: Ctx, progress=None, jobs: int = 1, witness: audit.WitnessTree | None = None
) -> audit.VerifyResult:
    """Verify the whole trail; ``jobs`` > 1 walks it in that many processes (command line);
    ``witness`` is the tree a witness co-signed last, from its own state file."""
    ctx.settle_trail()
    decision = require(ctx, Action.AUDIT_VERIFY, Target("audit", "trail"))
    with _snapshot(ctx) as conn:
        if jobs > 1:
            result = audit.verify_parallel(
                conn, ctx.settings.database_url, ctx.keys, jobs, witness=witness
            )
        else:
            result = audit.verify(conn, ctx.keys, progress, witness)
    decision.record(
        ok=result.ok,
        entries=result.entries,
        first_bad=result.first_bad,
        jobs=jobs,
        witness=f"{witness.witness}@{witness.size}" if witness else "",
    )
    return result


def export(ctx: Ctx, query: audit.Query, fmt: str, header: tuple[str, ...] = audit.EXPORTED):
    ctx.settle_trail()
    require(ctx, Action.AUDIT_EXPORT, Target("audit", "trail")).record(format=fmt, **query.asked())
    resolve(ctx, query)
    return audit.export(ctx.runtime.sessions, query, fmt, ctx.clock, header=header)


def checkpoint(ctx: Ctx) -> int | None:
    ctx.settle_trail()
    decision = require(ctx, Action.AUDIT_CHECKPOINT, Target("audit", "trail"))
    # Counts of repeated anonymous entries whose minute has passed join the trail now too.
    ctx.pending.extend(denials.flush_stale(ctx.db))
    # Sign the head as it stands before this entry joins it; the next checkpoint covers it.
    seq = audit.checkpoint_now(ctx.db, ctx.keys.checkpoint_key)
    decision.record(checkpoint_seq=seq)
    return seq


@contextmanager
def _snapshot(ctx: Ctx):
    """The connection a verification reads through, in one snapshot of the database, so the
    head, the entries and the stored tree it compares are of one moment while workers go on
    appending: REPEATABLE READ on PostgreSQL, one read transaction on SQLite (WAL)."""
    with ctx.runtime.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")
            return
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


# The Merkle tree: checkpoints, proofs, witnesses.


def latest_checkpoint(ctx: Ctx) -> str:
    """The newest signed checkpoint with every co-signature (public: witnesses read it). A trail
    that has entries but no checkpoint yet gets its first one now."""
    ctx.settle_trail()
    found = audit.latest_checkpoint(ctx.db)
    if found is None and audit.tree_size(ctx.db):
        audit.checkpoint_now(ctx.db, ctx.keys.checkpoint_key)
        ctx.db.flush()
        found = audit.latest_checkpoint(ctx.db)
    if found is None:
        raise NotFound(Msg("trail.empty"))
    return audit.cosigned_note(ctx.db, found)


def consistency(ctx: Ctx, first: int, second: int | None) -> dict:
    """A consistency proof between two tree sizes (public); ``second`` defaults to the newest
    checkpoint's size."""
    ctx.settle_trail()
    if second is None:
        latest = audit.latest_checkpoint(ctx.db)
        second = latest.size if latest else 0
    size = audit.tree_size(ctx.db)
    if second > size:
        raise Invalid(Msg("trail.only", size=size), field="to", at="to")
    if first > second:
        raise Invalid(Msg("trail.from_to"), field="from", at="from")
    hashes = audit.consistency_proof(ctx.db.connection(), first, second)
    return {"from": first, "to": second, "hashes": [tlog.b64(h) for h in hashes]}


def inclusion(ctx: Ctx, seq: int, size: int | None) -> dict:
    """An inclusion proof for one entry, with the signed checkpoint of the tree it is proved in:
    everything `govern audit check-proof` needs offline. Without ``size`` the newest checkpoint
    that holds the entry is used (signed now if none holds it yet)."""
    ctx.settle_trail()
    require(ctx, Action.AUDIT_SEARCH, Target("audit", seq)).record(proof_size=size or "")
    found = ctx.db.get(audit.AuditEntry, seq) if seq > 0 else None
    if found is None:
        raise NotFound(Msg("missing.object", kind="audit entry", id=seq))
    if size is None:
        latest = audit.latest_checkpoint(ctx.db)
        if latest is None or latest.size < seq:
            audit.checkpoint_now(ctx.db, ctx.keys.checkpoint_key)
            ctx.db.flush()
            latest = audit.latest_checkpoint(ctx.db)
        size = latest.size
    if not seq <= size <= audit.tree_size(ctx.db):
        raise Invalid(Msg("trail.size", seq=seq), field="size", at="size")
    checkpoint = ctx.db.get(AuditTreeCheckpoint, size)
    hashes = audit.inclusion_proof(ctx.db.connection(), seq, size)
    entry = audit.as_json(found)
    entry["details"] = found.details  # the exact hashed text, not its parsed form
    return {
        "entry": entry,
        "leaf_index": seq - 1,
        "tree_size": size,
        "hashes": [tlog.b64(h) for h in hashes],
        "checkpoint": audit.cosigned_note(ctx.db, checkpoint) if checkpoint else None,
    }


def add_witness(ctx: Ctx, name: str, key: str) -> AuditWitness:
    """Register an outside witness by its cosignature/v1 verifier key (command line, audited)."""
    decision = require(ctx, Action.WITNESS_ADD, Target("witness", "*"))
    try:
        verifier = tlog.Verifier.parse(key)
    except tlog.TlogError as exc:
        raise Invalid(Msg("error.text", error=str(exc)), field="key", at="key") from exc
    if verifier.alg != tlog.ALG_COSIGNATURE_V1:
        raise Invalid(Msg("witness.key"), field="key", at="key")
    if verifier.name != name:
        raise Invalid(Msg("witness.named", name=verifier.name), field="name", at="name")
    if ctx.db.get(AuditWitness, name) is not None:
        raise Conflict(Msg("witness.exists", name=name))
    witness = AuditWitness(name=name, key=str(verifier), added_at=audit.iso(audit.now()))
    ctx.db.add(witness)
    decision.record(witness=name, key=str(verifier))
    return witness


def witnesses(ctx: Ctx) -> list[dict]:
    """Each registered witness and how far it has co-signed (the auditor's verify page)."""
    ctx.settle_trail()
    require(ctx, Action.AUDIT_SEARCH, Target("witness", "*"))
    rows = ctx.db.execute(
        select(AuditWitness.name, AuditWitness.added_at, func.max(AuditCosignature.size))
        .outerjoin(AuditCosignature, AuditCosignature.witness == AuditWitness.name)
        .group_by(AuditWitness.name, AuditWitness.added_at)
        .order_by(AuditWitness.name)
    ).all()
    size = audit.tree_size(ctx.db)
    return [
        {"name": name, "added_at": added, "cosigned_size": cosigned or 0, "tree_size": size}
        for name, added, cosigned in rows
    ]


def add_cosignature(ctx: Ctx, body: str, line: str) -> dict:
    """A registered witness's co-signature of a checkpoint the office signed (public route:
    the witness is known by its key, not by an account)."""
    try:
        sig = tlog.NoteSignature.parse_line(line)
        checkpoint = tlog.Checkpoint.parse(body)
    except tlog.TlogError as exc:
        raise Invalid(
            Msg("error.text", error=str(exc)), field="cosignature", at="cosignature"
        ) from exc
    witness = ctx.db.get(AuditWitness, sig.name)
    if witness is None:
        raise Invalid(Msg("witness.unknown", name=sig.name), field="cosignature", at="cosignature")
    signed = ctx.db.get(AuditTreeCheckpoint, checkpoint.size)
    if signed is None or tlog.parse_note(signed.note)[0] != body:
        raise Invalid(Msg("witness.foreign"), field="checkpoint", at="checkpoint")
    try:
        timestamp = tlog.verify_cosignature(body, sig, tlog.Verifier.parse(witness.key))
    except tlog.TlogError as exc:
        raise Invalid(
            Msg("error.text", error=str(exc)), field="cosignature", at="cosignature"
        ) from exc
    existing = ctx.db.scalar(
        select(AuditCosignature).where(
            AuditCosignature.witness == sig.name, AuditCosignature.size == checkpoint.size
        )
    )
    if existing is None:
        ctx.db.add(
            AuditCosignature(
                size=checkpoint.size,
                witness=sig.name,
                line=sig.line(),
                signed_at=timestamp,
                at=audit.iso(audit.now()),
            )
        )
        ctx.record(Action.WITNESS_COSIGN, Target("checkpoint", checkpoint.size), witness=sig.name)
    return {"witness": sig.name, "size": checkpoint.size, "signed_at": timestamp}


def entry(ctx: Ctx, seq: int) -> audit.AuditEntry:
    """One entry of the trail, for the auditor's detail page."""
    ctx.settle_trail()
    require(ctx, Action.AUDIT_SEARCH, Target("audit", seq))
    found = ctx.db.get(audit.AuditEntry, seq) if seq > 0 else None
    if found is None:
        raise NotFound(Msg("missing.object", kind="audit entry", id=seq))
    return found


def stats(ctx: Ctx, since: date, until: date) -> dict:
    """Decisions per day (allow / deny) and denials by reason, over the office's days
    [since, until]: a day runs from 00:00 to 24:00 office time, whatever zone the trail keeps."""
    ctx.settle_trail()
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
    head, sep, rest = rule.rpartition(" (")
    if sep and head and (rest.startswith("p, ") or read(rest[:-1]) is not None):
        return head
    return rule

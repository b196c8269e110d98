"""The auditor's side of the trail: every read of it is itself a decision on the trail."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from govern import audit, denials, tlog
from govern.actions import Action
from govern.context import Ctx, Target, require
from govern.errors import Conflict, Invalid, NotFound
from govern.models import AuditCosignature, AuditTreeCheckpoint, AuditWitness


def search(ctx: Ctx, query: audit.Query, limit: int, cursor: int | None):
    require(ctx, Action.AUDIT_SEARCH, Target("audit", "trail")).record(
        **{k: str(v) for k, v in vars(query).items() if v}
    )
    return audit.search(ctx.db, query, limit, cursor)


def verify(
    ctx: Ctx, progress=None, jobs: int = 1, witness: audit.WitnessTree | None = None
) -> audit.VerifyResult:
    """Verify the whole trail; ``jobs`` > 1 walks it in that many processes (command line);
    ``witness`` is the tree a witness co-signed last, from its own state file."""
    decision = require(ctx, Action.AUDIT_VERIFY, Target("audit", "trail"))
    conn = ctx.db.connection()
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
    seq = audit.checkpoint_now(ctx.db, ctx.keys.checkpoint_key)
    decision.record(checkpoint_seq=seq)
    return seq


# The Merkle tree: checkpoints, proofs, witnesses.


def latest_checkpoint(ctx: Ctx) -> str:
    """The newest signed checkpoint with every co-signature (public: witnesses read it). A trail
    that has entries but no checkpoint yet gets its first one now."""
    found = audit.latest_checkpoint(ctx.db)
    if found is None and audit.tree_size(ctx.db):
        audit.checkpoint_now(ctx.db, ctx.keys.checkpoint_key)
        ctx.db.flush()
        found = audit.latest_checkpoint(ctx.db)
    if found is None:
        raise NotFound("the trail is empty: there is no checkpoint yet")
    return audit.cosigned_note(ctx.db, found)


def consistency(ctx: Ctx, first: int, second: int | None) -> dict:
    """A consistency proof between two tree sizes (public); ``second`` defaults to the newest
    checkpoint's size."""
    if second is None:
        latest = audit.latest_checkpoint(ctx.db)
        second = latest.size if latest else 0
    size = audit.tree_size(ctx.db)
    if second > size:
        raise Invalid(f"to: the tree has only {size} entries", field="to")
    if first > second:
        raise Invalid("from: must not be larger than to", field="from")
    hashes = audit.consistency_proof(ctx.db.connection(), first, second)
    return {"from": first, "to": second, "hashes": [tlog.b64(h) for h in hashes]}


def inclusion(ctx: Ctx, seq: int, size: int | None) -> dict:
    """An inclusion proof for one entry, with the signed checkpoint of the tree it is proved in:
    everything `govern audit check-proof` needs offline. Without ``size`` the newest checkpoint
    that holds the entry is used (signed now if none holds it yet)."""
    require(ctx, Action.AUDIT_SEARCH, Target("audit", seq)).record(proof_size=size or "")
    found = ctx.db.get(audit.AuditEntry, seq) if seq > 0 else None
    if found is None:
        raise NotFound(f"audit entry {seq} does not exist")
    if size is None:
        latest = audit.latest_checkpoint(ctx.db)
        if latest is None or latest.size < seq:
            audit.checkpoint_now(ctx.db, ctx.keys.checkpoint_key)
            ctx.db.flush()
            latest = audit.latest_checkpoint(ctx.db)
        size = latest.size
    if not seq <= size <= audit.tree_size(ctx.db):
        raise Invalid(f"size: must be between {seq} and the tree's size", field="size")
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
        raise Invalid(f"key: {exc}", field="key") from exc
    if verifier.alg != tlog.ALG_COSIGNATURE_V1:
        raise Invalid("key: not a witness (cosignature/v1) key", field="key")
    if verifier.name != name:
        raise Invalid(f"name: the key is named {verifier.name}", field="name")
    if ctx.db.get(AuditWitness, name) is not None:
        raise Conflict(f"witness {name} is already registered")
    witness = AuditWitness(name=name, key=str(verifier), added_at=audit.iso(audit.now()))
    ctx.db.add(witness)
    decision.record(witness=name, key=str(verifier))
    return witness


def witnesses(ctx: Ctx) -> list[dict]:
    """Each registered witness and how far it has co-signed (the auditor's verify page)."""
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
        raise Invalid(f"cosignature: {exc}", field="cosignature") from exc
    witness = ctx.db.get(AuditWitness, sig.name)
    if witness is None:
        raise Invalid(f"cosignature: {sig.name} is not a registered witness", field="cosignature")
    signed = ctx.db.get(AuditTreeCheckpoint, checkpoint.size)
    if signed is None or tlog.parse_note(signed.note)[0] != body:
        raise Invalid("checkpoint: not a checkpoint this office signed", field="checkpoint")
    try:
        timestamp = tlog.verify_cosignature(body, sig, tlog.Verifier.parse(witness.key))
    except tlog.TlogError as exc:
        raise Invalid(f"cosignature: {exc}", field="cosignature") from exc
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

"""The audit trail: append-only, hash-chained, checkpointed with signatures, verifiable end to end.

Services queue entries on the unit of work (:class:`govern.context.Ctx`); :func:`write_entries`
sequences them at commit time, inside the same transaction as the change they record. Sequencing
takes the chain head's row lock only for those few statements just before commit, so concurrent
workers produce one gapless chain without holding a lock for a whole request (the batching that
transparency logs use). If the entries cannot be written the transaction rolls back and the action
does not happen (fail closed).

The hashed form of an entry is its fields joined by NUL (fields never contain NUL), prefixed with
a version tag; each entry's hash covers the previous entry's hash, so an edit, deletion, insertion
or reordering anywhere breaks the chain, and signed checkpoints catch a cut tail.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from jose import jws
from jose.exceptions import JOSEError
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from govern.clock import OfficeClock
from govern.crypto import SEAL_ALGORITHM, SigningKey, canonical_json
from govern.db import make_engine
from govern.models import AuditCheckpoint, AuditEntry, AuditHead

log = logging.getLogger(__name__)

GENESIS = "0" * 64
TAG = "govern-audit-v1"
HASHED = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "target",
    "decision",
    "rule",
    "request_id",
    "client",
    "details",
    "prev_hash",
)
COLUMNS = HASHED + ("hash",)
# Keys that may never reach the trail in clear, whatever a caller passes.
SECRET_KEYS = frozenset(
    {"password", "token", "access_token", "client_token", "content", "content_b64", "secret"}
)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _clean(value) -> str:
    return str(value).replace("\x00", "\ufffd")


@dataclass
class PendingEntry:
    actor: str
    role: str
    action: str
    target: str
    decision: str
    rule: str
    request_id: str
    client: str
    details: dict = field(default_factory=dict)
    # An anonymous caller's entry: identical ones from one address within a minute are counted
    # rather than written one by one (govern.denials), so nobody can grow the trail without bound.
    collapsible: bool = False

    def row(self) -> dict:
        safe = {k: ("[redacted]" if k in SECRET_KEYS else v) for k, v in self.details.items()}
        return {
            "actor": _clean(self.actor),
            "role": _clean(self.role),
            "action": _clean(self.action),
            "target": _clean(self.target),
            "decision": _clean(self.decision),
            "rule": _clean(self.rule),
            "request_id": _clean(self.request_id),
            "client": _clean(self.client),
            "details": _clean(canonical_json(safe)),
        }


def entry_hash(values) -> str:
    """The hash of one entry from its HASHED fields in order (ints allowed for seq)."""
    text = TAG + "\x00" + "\x00".join(str(v) for v in values)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ensure_head(session: Session) -> None:
    if session.get(AuditHead, 1) is None:
        session.add(AuditHead(id=1, seq=0, hash=GENESIS, at="", checkpoint_seq=0, checkpoint_at=""))


# The head's statements run on every append: built once.
_HEAD = AuditHead.__table__
_HEAD_FIELDS = (_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.at, _HEAD.c.checkpoint_at)
_TOUCH_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq)
_READ_HEAD = select(*_HEAD_FIELDS).where(_HEAD.c.id == 1)
_TOUCH_AND_READ_HEAD = _TOUCH_HEAD.returning(*_HEAD_FIELDS)
_LOCK_HEAD = _READ_HEAD.with_for_update()
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == 1)


def _lock_head(session: Session):
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        # A write first takes SQLite's write lock (waiting on busy_timeout), so the head read
        # cannot be overtaken by another connection before this transaction commits.
        if conn.dialect.update_returning:
            # SQLite >= 3.35: take the lock and read the head in one statement.
            return conn.execute(_TOUCH_AND_READ_HEAD).one()
        conn.execute(_TOUCH_HEAD)
        return conn.execute(_READ_HEAD).one()
    return conn.execute(_LOCK_HEAD).one()


def write_entries(
    session: Session,
    pending: list[PendingEntry],
    audit_key: SigningKey,
    checkpoint_every: int,
    checkpoint_minutes: int = 60,
) -> list[int]:
    """Sequence and insert ``pending`` in the session's transaction. Returns their seqs."""
    if not pending:
        return []
    seq, prev, last_at, checkpoint_at = _lock_head(session)
    now = iso(datetime.now(UTC))
    # Time never runs backwards in the trail, so a time range is also a seq range.
    at = max(now, last_at)
    rows = []
    for entry in pending:
        seq += 1
        row = entry.row()
        row["seq"], row["at"], row["prev_hash"] = seq, at, prev
        row["hash"] = prev = entry_hash(row[k] for k in HASHED)
        rows.append(row)
    # A core insert on the session's connection: the ORM's bulk-insert path costs more per
    # request than the rest of the append, and these rows are never loaded as objects here.
    session.connection().execute(insert(AuditEntry.__table__), rows)
    values = {"seq": seq, "hash": prev, "at": at}
    first = rows[0]["seq"]
    due_by_count = (first - 1) // checkpoint_every != seq // checkpoint_every
    # A trail that has never been checkpointed counts its minutes from its first entry.
    since = checkpoint_at or (_first_entry_at(session) if seq > len(rows) else at)
    due_by_time = _minutes_between(since, at) >= checkpoint_minutes
    if due_by_count or due_by_time:
        _add_checkpoint(session, seq, prev, at, audit_key)
        values.update(checkpoint_seq=seq, checkpoint_at=at)
    session.connection().execute(_MOVE_HEAD, values)
    return [r["seq"] for r in rows]


def _first_entry_at(session: Session) -> str:
    return session.connection().scalar(select(AuditEntry.at).where(AuditEntry.seq == 1))


def _minutes_between(a: str, b: str) -> float:
    # The trail's times end in Z: fromisoformat reads them as aware UTC instants.
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() / 60


def _add_checkpoint(session: Session, seq: int, head_hash: str, at: str, key: SigningKey) -> None:
    payload = canonical_json({"seq": seq, "hash": head_hash, "at": at})
    session.add(
        AuditCheckpoint(seq=seq, head_hash=head_hash, at=at, kid=key.kid, jws=key.sign(payload))
    )


def checkpoint_now(session: Session, audit_key: SigningKey) -> int | None:
    """Sign the current head (``govern audit checkpoint``). Returns its seq, None on empty trail."""
    seq, head_hash, at, _ = _lock_head(session)
    if seq == 0 or session.get(AuditCheckpoint, seq) is not None:
        return seq or None
    _add_checkpoint(session, seq, head_hash, at, audit_key)
    session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(checkpoint_seq=seq, checkpoint_at=at)
    )
    return seq


@dataclass
class VerifyResult:
    ok: bool
    entries: int
    first_bad: int | None
    problem: str | None = None

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad": self.first_bad,
            "problem": self.problem,
        }


@dataclass
class _Walk:
    """What walking one seq range found: where it stopped, and the links at its two ends."""

    first_link: str | None = None
    last_hash: str | None = None
    next_seq: int = 0
    bad: int | None = None
    problem: str | None = None


def _signed_checkpoints(conn: Connection, audit_key: SigningKey) -> dict[int, str] | VerifyResult:
    """The checkpoints whose signatures hold, as {seq: head hash}; a VerifyResult if one fails."""
    public = audit_key.public_pem
    checkpoints: dict[int, str] = {}
    for cp in conn.execute(select(AuditCheckpoint)).all():
        try:
            claimed = json.loads(jws.verify(cp.jws, public, algorithms=[SEAL_ALGORITHM]))
        except (JOSEError, ValueError):
            return VerifyResult(False, 0, cp.seq, f"checkpoint {cp.seq} has a bad signature")
        if claimed.get("seq") != cp.seq or claimed.get("hash") != cp.head_hash:
            return VerifyResult(
                False, 0, cp.seq, f"checkpoint {cp.seq} differs from what was signed"
            )
        checkpoints[cp.seq] = cp.head_hash
    return checkpoints


def _walk(
    cursor,
    placeholder: str,
    lo: int,
    hi: int | None,
    prev: str | None,
    checkpoints: dict[int, str],
    progress: Callable[[int], None] | None = None,
    batch: int = 20_000,
) -> _Walk:
    """Check entries lo..hi (to the end when hi is None): sequence, links, hashes, checkpoints.

    ``prev`` is the hash entry lo must link to; None takes entry lo's link as given and reports
    it, so that separately walked ranges can be joined afterwards."""
    sql = VERIFY_SQL.replace("%s", placeholder)
    walk = _Walk(next_seq=lo)
    expected = lo
    # The same text as entry_hash() builds, spelled for speed: this loop is the whole cost of
    # verifying once the rows are fetched (seq is an int, every other hashed field text).
    prefix, sep, sha256 = TAG + "\x00", "\x00", hashlib.sha256
    while hi is None or expected <= hi:
        limit = batch if hi is None else min(batch, hi - expected + 1)
        cursor.execute(sql, (expected, limit))
        rows = cursor.fetchall()
        if not rows:
            break
        for row in rows:
            problem = None
            if row[0] != expected:
                problem = f"entry {expected} is missing"
            elif prev is None and expected == lo:
                walk.first_link = prev = row[11]
            if problem is None and row[11] != prev:
                problem = "link to previous entry broken"
            if problem is None:
                try:
                    text = f"{prefix}{expected}{sep}{sep.join(row[1:12])}"
                    digest = sha256(text.encode()).hexdigest()
                except (TypeError, UnicodeEncodeError):
                    digest = None  # a NULL or undecodable field was never what was hashed
                if digest != row[12]:
                    problem = "entry does not match its hash"
                elif expected in checkpoints and checkpoints[expected] != digest:
                    problem = "entry differs from checkpoint"
            if problem is not None:
                walk.bad, walk.problem, walk.next_seq = expected, problem, expected
                return walk
            prev = digest
            expected += 1
        if progress:
            progress(expected - 1)
    walk.last_hash, walk.next_seq = prev, expected
    return walk


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.name == "sqlite" else "%s"


def _result(walk: _Walk, total: int) -> VerifyResult:
    count = walk.next_seq - 1
    if walk.bad is not None:
        return VerifyResult(False, count, walk.bad, walk.problem)
    if count < total:
        return VerifyResult(False, count, count + 1, "the trail ends before its signed head")
    return VerifyResult(True, count, None)


def _head_and_checkpoints(conn: Connection, audit_key: SigningKey):
    checkpoints = _signed_checkpoints(conn, audit_key)
    if isinstance(checkpoints, VerifyResult):
        return None, checkpoints
    head = conn.execute(select(AuditHead.seq).where(AuditHead.id == 1)).scalar() or 0
    return max(head, max(checkpoints, default=0)), checkpoints


def verify(
    conn: Connection,
    audit_key: SigningKey,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyResult:
    """Walk the whole chain from seq 1, checking sequence, links, hashes and checkpoints."""
    total, checkpoints = _head_and_checkpoints(conn, audit_key)
    if total is None:
        return checkpoints
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        report = (lambda done: progress(done, total)) if progress else None
        walk = _walk(cursor, _placeholder(conn), 1, None, GENESIS, checkpoints, report)
    finally:
        cursor.close()
    return _result(walk, total)


def _walk_range(url: str, lo: int, hi: int | None, checkpoints: dict[int, str]) -> _Walk:
    """One worker of :func:`verify_parallel`: its own connection, its own range."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()
            return _walk(cursor, _placeholder(conn), lo, hi, None, checkpoints)
    finally:
        engine.dispose()


def verify_parallel(
    conn: Connection, url: str, audit_key: SigningKey, jobs: int, min_per_job: int = 10_000
) -> VerifyResult:
    """:func:`verify` over ``jobs`` processes: each walks one seq range on its own connection
    (each entry carries its predecessor's hash, so ranges check independently), then the ranges'
    ends are joined. Finds the same first bad entry as the single walk."""
    total, checkpoints = _head_and_checkpoints(conn, audit_key)
    if total is None:
        return checkpoints
    last = max(total, conn.execute(select(func.max(AuditEntry.seq))).scalar() or 0)
    if jobs < 2 or last < jobs * min_per_job:
        return verify(conn, audit_key)
    step = -(-last // jobs)
    bounds = [(1 + k * step, None if k == jobs - 1 else (k + 1) * step) for k in range(jobs)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        walks = list(
            pool.map(_walk_range, [url] * jobs, *zip(*bounds, strict=True), [checkpoints] * jobs)
        )
    prev = GENESIS
    for k, ((lo, hi), walk) in enumerate(zip(bounds, walks, strict=True)):
        if walk.first_link is not None and walk.first_link != prev:
            return _result(
                _Walk(next_seq=lo, bad=lo, problem="link to previous entry broken"), total
            )
        if walk.bad is None and hi is not None and walk.next_seq <= hi:
            # This range ran out early: a gap if any later range holds entries, else the end.
            if any(w.first_link is not None or w.bad is not None for w in walks[k + 1 :]):
                walk.bad, walk.problem = walk.next_seq, f"entry {walk.next_seq} is missing"
            return _result(walk, total)
        if walk.bad is not None or hi is None:
            return _result(walk, total)
        prev = walk.last_hash
    return _result(walk, total)


VERIFY_SQL = f"SELECT {', '.join(COLUMNS)} FROM audit_entries WHERE seq >= %s ORDER BY seq LIMIT %s"  # noqa: S608


# Search and export.
FILTERS = ("actor", "action", "decision")


@dataclass
class Query:
    actor: str | None = None
    action: str | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _seq_bounds(session: Session, query: Query) -> tuple[int | None, int | None]:
    """Turn a time range into a seq range (time in the trail never runs backwards)."""
    lo = hi = None
    if query.since:
        lo = session.scalar(
            select(AuditEntry.seq)
            .where(AuditEntry.at >= iso(query.since))
            .order_by(AuditEntry.at, AuditEntry.seq)
            .limit(1)
        )
        lo = lo if lo is not None else -1
    if query.until:
        hi = session.scalar(
            select(AuditEntry.seq)
            .where(AuditEntry.at < iso(query.until))
            .order_by(AuditEntry.at.desc(), AuditEntry.seq.desc())
            .limit(1)
        )
        hi = hi if hi is not None else -1
    return lo, hi


def _selection(session: Session, query: Query):
    stmt = select(AuditEntry)
    for name in FILTERS:
        value = getattr(query, name)
        if value:
            stmt = stmt.where(getattr(AuditEntry, name) == value)
    lo, hi = _seq_bounds(session, query)
    if lo == -1 or hi == -1:
        return None
    if lo is not None:
        stmt = stmt.where(AuditEntry.seq >= lo)
    if hi is not None:
        stmt = stmt.where(AuditEntry.seq <= hi)
    return stmt


def search(session: Session, query: Query, limit: int, cursor: int | None):
    """Newest first. Returns (entries, next_cursor); the cursor is the last seq returned."""
    stmt = _selection(session, query)
    if stmt is None:
        return [], None
    if cursor is not None:
        stmt = stmt.where(AuditEntry.seq < cursor)
    rows = list(session.scalars(stmt.order_by(AuditEntry.seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


def as_json(entry: AuditEntry) -> dict:
    data = {name: getattr(entry, name) for name in COLUMNS}
    data["details"] = json.loads(entry.details) if entry.details else {}
    return data


# Export adds, beside the UTC ``at`` that the hashes cover, the same instant on the office's
# clock with its offset (2026-11-25T04:30:00.123456+08:00) and the zone's name.
EXPORTED = COLUMNS + ("office_at", "office_zone")


def export(
    session_factory, query: Query, fmt: str, clock: OfficeClock, batch: int = 2000
) -> Iterator[str]:
    """Stream the whole selection, oldest first, in batches, on its own session."""
    with session_factory() as session:
        base = _selection(session, query)
        if fmt == "csv":
            yield _csv_line(EXPORTED)
        if base is None:
            return
        after = 0
        while True:
            rows = list(
                session.scalars(
                    base.where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(batch)
                )
            )
            if not rows:
                return
            for entry in rows:
                office = {"office_at": office_time(entry.at, clock), "office_zone": clock.name}
                if fmt == "csv":
                    yield _csv_line([getattr(entry, c) for c in COLUMNS] + list(office.values()))
                else:
                    yield json.dumps({**as_json(entry), **office}, ensure_ascii=False) + "\n"
            after = rows[-1].seq
            session.expunge_all()


def office_time(at: str, clock: OfficeClock) -> str:
    """The trail's UTC time as the office's clock reads it, with its offset."""
    return clock.local(datetime.fromisoformat(at)).isoformat()


def _csv_line(values) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(values)
    return buf.getvalue()

"""The audit trail: append-only, hash-chained, a Merkle tree with signed and co-signed
checkpoints, verifiable end to end.

Services queue entries on the unit of work (:class:`govern.context.Ctx`). How they reach the
chain depends on the store, and either way the entry commits with the change it records, or
neither does (fail closed):

- PostgreSQL (group commit, after transparency-dev/tessera): the unit of work inserts its entries
  into ``audit_queue`` with its change and commits; no row is shared between requests, so no lock
  is held across anyone's commit and the entry is durable before the response. Then whoever finds
  the sequencer's lock (the head row, ``FOR UPDATE SKIP LOCKED``) free integrates everything
  queued in one transaction: seqs, chain hashes, the tree's nodes, a due checkpoint, the head (see
  :func:`integrate`). By default a background integrator in each process does that, poked by
  the unit of work after its commit (govern.integrator), so the request pays for its queue
  insert only; ``GOVERN_TRAIL_INTEGRATE=inline`` integrates in the request after its commit
  instead. Either way the batches grow by themselves under load, and every read of the trail
  integrates first (waiting for the lock), so no read has a gap.
- SQLite queues the same way (from SQLite 3.35; the sequencer's lock is its one write lock): a
  read's transaction writes one row of one table where an inline append wrote the entry's six
  indexes, the tree and the head. An older SQLite (:func:`write_entries`), or
  ``GOVERN_TRAIL_QUEUE=0``, sequences the entries in the unit of work's own transaction, just
  before its commit.

The hashed form of an entry is its fields joined by NUL (fields never contain NUL), prefixed with
a version tag; each entry's hash covers the previous entry's hash, so an edit, deletion, insertion
or reordering anywhere breaks the chain. The same hashed form is the entry's leaf in an RFC 6962
tree (govern.tlog): its complete subtrees are stored as they complete, in the append's transaction,
so proofs read O(log n) nodes. The office signs checkpoints of the tree (C2SP signed notes) and
outside witnesses co-sign them; a witness's own memory of the last tree it co-signed is what
catches a history rewritten by someone holding both the database and the office's keys.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import logging
import multiprocessing
import operator
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from jose import jws
from jose.exceptions import JOSEError
from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from govern import tlog
from govern.clock import OfficeClock
from govern.crypto import SEAL_ALGORITHM, CheckpointKey, Keyring, SigningKey, canonical_json
from govern.db import BulkInsert, Prepared, make_engine
from govern.messages import Msg
from govern.models import (
    AuditCheckpoint,
    AuditCosignature,
    AuditEntry,
    AuditHead,
    AuditQueued,
    AuditTreeCheckpoint,
    AuditTreeNode,
    AuditWitness,
)

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
# The details key under which an entry keeps its rule as a message key with parameters.
RULE_KEY = "rule_key"
SECRET_KEYS = frozenset(
    {"password", "token", "access_token", "client_token", "content", "content_b64", "secret"}
)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> datetime:
    return datetime.now(UTC)


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
        if isinstance(self.rule, Msg):
            # The rule or reason as a key with its parameters, so that the auditor's pages say it
            # in the reader's language; ``rule`` keeps the English text as before.
            safe[RULE_KEY] = self.rule.as_dict()
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


def entry_text(values) -> bytes:
    """An entry's hashed form from its HASHED fields in order (ints allowed for seq): the bytes
    its chain hash and its Merkle leaf are both computed over."""
    return "\x00".join((TAG, *map(str, values))).encode("utf-8")


def entry_hash(values) -> str:
    """The chain hash of one entry from its HASHED fields in order."""
    return hashlib.sha256(entry_text(values)).hexdigest()


def entry_leaf(values) -> bytes:
    """The entry's RFC 6962 leaf hash, SHA-256(0x00 || hashed form)."""
    return tlog.leaf_hash(entry_text(values))


def ensure_head(session: Session) -> None:
    if session.get(AuditHead, 1) is None:
        session.add(
            AuditHead(
                id=1, seq=0, hash=GENESIS, at="", checkpoint_seq=0, checkpoint_at="", frontier=""
            )
        )


# The head's statements run on every append: built once.
_HEAD = AuditHead.__table__
_HEAD_FIELDS = (_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.at, _HEAD.c.checkpoint_at, _HEAD.c.frontier)
_TOUCH_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq)
_READ_HEAD = select(*_HEAD_FIELDS).where(_HEAD.c.id == 1)
# Those of every audited read run on the driver's cursor (govern.db.Prepared).
_TOUCH_AND_READ_HEAD = Prepared(_TOUCH_HEAD.returning(*_HEAD_FIELDS))
_LOCK_HEAD = Prepared(_READ_HEAD.with_for_update())
_TRY_LOCK_HEAD = Prepared(_READ_HEAD.with_for_update(skip_locked=True))
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == 1)
_TREE = AuditTreeNode.__table__
_INSERT_ENTRIES = BulkInsert(AuditEntry.__table__, COLUMNS)


@functools.cache
def _move_head(columns: frozenset[str]) -> Prepared:
    """The head's update for one set of changed columns (a checkpoint adds two)."""
    return Prepared(_MOVE_HEAD.values({c: bindparam(c) for c in sorted(columns)}))


_INSERT_NODES = insert(_TREE)


def _lock_head(session: Session, skip_locked: bool = False):
    """Take the sequencer's lock (the head row) and read the head; with ``skip_locked``, None at
    once when another transaction holds it (PostgreSQL; on SQLite it waits for the one write
    lock, which nobody holds across more than a batch)."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        # A write first takes SQLite's write lock (waiting on busy_timeout), so the head read
        # cannot be overtaken by another connection before this transaction commits.
        if conn.dialect.update_returning:
            # SQLite >= 3.35: take the lock and read the head in one statement.
            return _TOUCH_AND_READ_HEAD.first(conn, {})
        conn.execute(_TOUCH_HEAD)
        return conn.execute(_READ_HEAD).one()
    return (_TRY_LOCK_HEAD if skip_locked else _LOCK_HEAD).first(conn, {})


def parse_frontier(text: str) -> list[bytes]:
    return [bytes.fromhex(text[i : i + 64]) for i in range(0, len(text), 64)]


def format_frontier(frontier: list[bytes]) -> str:
    return "".join(h.hex() for h in frontier)


_INSERT_NODES = BulkInsert(AuditTreeNode.__table__, ("level", "idx", "hash"))


def append_to_tree(
    conn: Connection, size: int, frontier: list[bytes], leaves: list[bytes]
) -> list[bytes]:
    """Add a batch of leaves to the stored tree of ``size`` leaves (in the caller's transaction):
    every subtree they complete is inserted, about two rows per leaf. Returns the new frontier."""
    frontier, _, nodes = tlog.append_leaves(frontier, size, leaves)
    _INSERT_NODES.run(conn, nodes)
    return frontier


def write_entries(
    session: Session,
    pending: list[PendingEntry],
    checkpoint_key: CheckpointKey,
    checkpoint_every: int,
    checkpoint_minutes: int = 60,
) -> list[int]:
    """Sequence and insert ``pending`` in the session's transaction, under the head's lock until
    it commits (SQLite, whose one writer holds its write lock across every commit anyway).
    Returns their seqs."""
    if not pending:
        return []
    head = _lock_head(session)
    at = iso(datetime.now(UTC))
    rows = []
    for entry in pending:
        row = entry.row()
        rows.append((at, *(row[k] for k in QUEUED)))
    return _append(session, head, rows, checkpoint_key, checkpoint_every, checkpoint_minutes)


def _append(
    session: Session,
    head,
    rows: list[tuple],
    checkpoint_key: CheckpointKey,
    checkpoint_every: int,
    checkpoint_minutes: int,
) -> list[int]:
    """Chain ``rows`` onto ``head``: seqs, hashes, the entries, the tree's new nodes, a checkpoint
    when one is due, the head. Each row is a tuple: the earliest time the entry may carry, then
    its QUEUED fields in order (all text). Tuples, not dicts: an integration handles a batch of
    them, and a dict per entry built, filled and read back field by field cost the batch more
    than its hashing."""
    seq, prev, last_at, checkpoint_at, frontier_text = head
    size = seq
    # Time never runs backwards in the trail, so a time range is also a seq range.
    at = last_at
    leaves, entries = [], []
    sha256 = hashlib.sha256
    for row in rows:
        seq += 1
        if row[0] > at:
            at = row[0]
        fields = row[1:]
        text = entry_text((seq, at, *fields, prev))
        hashed = sha256(text).hexdigest()
        entries.append((seq, at, *fields, prev, hashed))
        leaves.append(sha256(b"\x00" + text).digest())
        prev = hashed
    first = size + 1
    conn = session.connection()
    # On the driver's cursor of the session's connection: the ORM's bulk-insert path costs more
    # per request than the rest of the append, and these rows are never loaded as objects here.
    _INSERT_ENTRIES.run(conn, entries)
    frontier = append_to_tree(conn, size, parse_frontier(frontier_text), leaves)
    values = {"seq": seq, "hash": prev, "at": at, "frontier": format_frontier(frontier)}
    due_by_count = (first - 1) // checkpoint_every != seq // checkpoint_every
    # A trail that has never been checkpointed counts its minutes from its first entry. That
    # start is kept on the head at the first append, so it is looked up once, not per append.
    if not checkpoint_at:
        checkpoint_at = _first_entry_at(session) if seq > len(rows) else entries[0][1]
        values["checkpoint_at"] = checkpoint_at
    due_by_time = at >= _due_after(checkpoint_at, checkpoint_minutes)
    if due_by_count or due_by_time:
        _add_checkpoint(conn, seq, tlog.root_of_frontier(frontier), at, checkpoint_key)
        values.update(checkpoint_seq=seq, checkpoint_at=at)
    _move_head(frozenset(values)).many(conn, [values])
    return list(range(first, seq + 1))


# The queue (both stores): group commit of the trail, after transparency logs (tessera). Each unit
# of work inserts its entries into ``audit_queue`` in its own transaction, with its change, and
# commits: durable, atomic with the action, and no row is shared between requests, so no lock
# is held across anyone's commit. Then whoever finds the sequencer's lock (the head row) free
# integrates everything queued so far in one transaction (seqs, chain hashes, the tree's nodes,
# a due checkpoint, the head) and commits once for the whole batch; the others go on at once.
# "Whoever" is each process's background integrator (govern.integrator), or with
# GOVERN_TRAIL_INTEGRATE=inline the request itself after its commit.
#
# Nothing is left behind: a worker that queued and found the lock taken knows its entries were
# committed before the holder released it, and the holder looks at the queue again after its own
# commit (outside the lock) and integrates once more when anything is there; a background
# integrator does not look again (``follow``) but comes back after its batch interval whenever
# it found the lock taken, and is poked for whatever its process queues meanwhile. A worker killed or
# an integration failing after the queue commit leaves the rows queued: the next integration
# takes them. Every read of the trail integrates first (waiting for the lock), so what it reads
# is the whole trail up to that moment.

_QUEUE = AuditQueued.__table__
# What a queued entry carries: what is hashed, but its place in the chain (given at integration).
QUEUED = tuple(c for c in HASHED if c not in ("seq", "at", "prev_hash"))
_INSERT_QUEUED = Prepared(insert(_QUEUE).values({c: bindparam(c) for c in ("queued_at", *QUEUED)}))
# Take (and delete) the oldest queued rows in one statement, under the head's lock.
_TAKE_QUEUED = (
    delete(_QUEUE)
    .where(_QUEUE.c.id.in_(select(_QUEUE.c.id).order_by(_QUEUE.c.id).limit(bindparam("n"))))
    .returning(_QUEUE.c.id, _QUEUE.c.queued_at, *(_QUEUE.c[k] for k in QUEUED))
)
_ANY_QUEUED = select(_QUEUE.c.id).limit(1)
_FIRST = operator.itemgetter(0)


def queues(session: Session) -> bool:
    """Does this store queue entries? Both do: PostgreSQL, and SQLite from 3.35 (the queue is
    taken with DELETE ... RETURNING). On SQLite a read's own transaction then writes one row of
    one table, and the entries, their indexes, the tree and the head are written once per batch:
    a sixth of the pages an inline append wrote per read. An older SQLite sequences each unit of
    work's entries in its own transaction (one writer, whose lock spans every commit anyway)."""
    return queues_on(session.get_bind().dialect)


def queues_on(dialect) -> bool:
    """:func:`queues`, for a store known by its dialect."""
    return dialect.name != "sqlite" or dialect.delete_returning


def queued_while(condition) -> Prepared:
    """An insert of one queued entry that writes it only where ``condition`` (a SQL expression,
    with bound parameters of its own) holds when the insert runs; nothing otherwise."""
    columns = ("queued_at", *QUEUED)
    values = select(*(bindparam(c, type_=_QUEUE.c[c].type) for c in columns)).where(condition)
    return Prepared(insert(_QUEUE).from_select(columns, values))


class Unsettled(Exception):
    """What an entry was decided on no longer holds in the database: nothing was written."""


def queue_entry_while(session: Session, entry: PendingEntry, statement: Prepared, given: dict):
    """Queue one entry, only while what its decision was taken on still holds: ``statement`` is
    a ``queued_while`` insert and ``given`` its condition's parameters, checked in the insert's
    own statement. Raises Unsettled, having written nothing, where it no longer holds."""
    row = {**given, **entry.row(), "queued_at": iso(datetime.now(UTC))}
    if statement.count(session.connection(), row) != 1:
        raise Unsettled


def queue_entries(session: Session, pending: list[PendingEntry]) -> int:
    """Queue ``pending`` in the session's transaction: committed with the change they record, or
    not at all. Touches no row another request touches. Returns how many were queued."""
    if not pending:
        return 0
    at = iso(datetime.now(UTC))
    rows = [{**entry.row(), "queued_at": at} for entry in pending]
    _INSERT_QUEUED.many(session.connection(), rows)
    return len(rows)


def integrate(
    session: Session,
    checkpoint_key: CheckpointKey,
    checkpoint_every: int,
    checkpoint_minutes: int = 60,
    wait: bool = False,
    batch: int = 5000,
    follow: bool = True,
) -> int | None:
    """Move everything queued into the chain, in batches of up to ``batch`` entries, each one
    transaction under the head's lock, committed once. Without ``wait`` it gives up at once when
    another worker holds the lock (that worker will take what is queued now); with ``wait`` it
    waits, and returns only when nothing committed before the call is still queued.

    Without ``follow`` it does not look at the queue again after its commit: for a caller that
    comes back by itself (the background integrator, which tries again after its batch interval
    when it finds the lock taken, and is poked for whatever is queued meanwhile), so that what
    arrives during a round waits for the next batch instead of making a batch of its own.

    The session must have no work of its own in progress: each batch is committed on it.
    Returns the number of entries integrated, or None when the lock was taken by someone else."""
    done = 0
    while True:
        head = _lock_head(session, skip_locked=not wait)
        if head is None:
            session.rollback()
            return done or None
        taken = _integrate_batch(
            session, head, batch, checkpoint_key, checkpoint_every, checkpoint_minutes
        )
        session.commit()
        done += taken
        if taken == batch:
            continue  # more was queued than one batch takes (a waiting reader waits for it all)
        # Everything committed before the call is in now. Like every holder, this one looks at
        # the queue again outside the lock, for what others queued while it held the lock; it
        # goes on only while it finds the lock free (a reader does not chase new entries).
        wait = False
        if not follow or not any_queued(session):
            return done


def _integrate_batch(
    session: Session,
    head,
    batch: int,
    checkpoint_key: CheckpointKey,
    checkpoint_every: int,
    checkpoint_minutes: int,
) -> int:
    """Under the head's lock: up to ``batch`` of the oldest queued entries join the chain, in the
    session's transaction. Returns how many."""
    taken = session.connection().execute(_TAKE_QUEUED, {"n": batch}).all()
    if taken:
        # In the order they were queued (RETURNING promises none); each row without its id.
        rows = [tuple(row)[1:] for row in sorted(taken, key=_FIRST)]
        _append(session, head, rows, checkpoint_key, checkpoint_every, checkpoint_minutes)
    return len(taken)


def integrate_here(
    session: Session, checkpoint_key: CheckpointKey, checkpoint_every: int, checkpoint_minutes: int
) -> int:
    """SQLite, for a unit of work that has already written: it holds the database's one write
    lock until it commits, so no other connection can integrate meanwhile (it would wait for
    this one). Everything queued joins the chain in this transaction instead: committed with the
    unit of work, or back in the queue if it rolls back."""
    head = _lock_head(session)
    done = 0
    while taken := _integrate_batch(
        session, head, 5000, checkpoint_key, checkpoint_every, checkpoint_minutes
    ):
        done += taken
        head = _lock_head(session)
    return done


def holds_write_lock(session: Session) -> bool:
    """Has this session's SQLite connection written in its open transaction (and so holds the
    database's write lock until it ends)? Never on PostgreSQL, where writers do not exclude
    each other."""
    if session.get_bind().dialect.name != "sqlite" or not session.in_transaction():
        return False
    return bool(session.connection().connection.dbapi_connection.in_transaction)


def any_queued(session: Session) -> bool:
    """Is anything queued? One statement on PostgreSQL, outside any transaction (no BEGIN and
    ROLLBACK around it: every integration pays for this look)."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        found = conn.execute(_ANY_QUEUED).first() is not None
        session.rollback()
        return found
    dbapi = conn.connection.dbapi_connection
    sql = "SELECT 1 FROM audit_queue LIMIT 1"
    dbapi.autocommit = True
    try:
        with dbapi.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone() is not None
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError(sql, None, exc) from exc  # as the SQL layer would raise it
    finally:
        if not dbapi.closed:
            dbapi.autocommit = False
        session.rollback()


def vacuum_queue(engine: Engine) -> None:
    """PostgreSQL: reclaim the queue's dead rows. Every entry is inserted once and deleted once,
    so without a vacuum the table and its index only grow, and each integration's take walks
    past all the rows ever deleted (4.5 ms a batch after 75,000 entries, 0.7 ms on a vacuumed
    queue). The integrator does not count on autovacuum being on, or quick enough for a table
    this hot. ``SKIP_LOCKED``: a vacuum already at work elsewhere is left to finish alone. A
    role that does not own the table gets a warning from PostgreSQL and nothing is done."""
    if engine.dialect.name != "postgresql":
        return  # SQLite: a deleted row's page goes back to the file's free list
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM (SKIP_LOCKED) audit_queue"
        )


def _first_entry_at(session: Session) -> str:
    return session.connection().scalar(select(AuditEntry.at).where(AuditEntry.seq == 1))


@functools.lru_cache(maxsize=8)
def _due_after(since: str, minutes: int) -> str:
    """When the next checkpoint falls due by time, in the trail's fixed-width ISO form (so that a
    string comparison orders it): parsed once per checkpoint, not once per append."""
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return iso(datetime.strptime(since, fmt).replace(tzinfo=UTC) + timedelta(minutes=minutes))


HELD_HEAD = "govern.audit.held_head"


def checkpoint_note(size: int, root: bytes, key: CheckpointKey) -> str:
    """The C2SP tlog-checkpoint of a tree, signed by the office as a signed note."""
    body = tlog.Checkpoint(key.name, size, root).body()
    return tlog.format_note(body, [key.sign(body)])


def _add_checkpoint(conn: Connection, size: int, root: bytes, at: str, key: CheckpointKey) -> None:
    conn.execute(
        insert(AuditTreeCheckpoint.__table__),
        {"size": size, "root": root.hex(), "at": at, "note": checkpoint_note(size, root, key)},
    )


def checkpoint_now(session: Session, checkpoint_key: CheckpointKey) -> int | None:
    """Sign the current head (``govern audit checkpoint``). Returns its size, None on empty trail."""
    seq, _hash, at, _cp_at, frontier = _lock_head(session)
    # Held until the unit of work commits: a worker that found the lock taken meanwhile left its
    # entries for this one, which integrates after its commit (govern.context.Ctx.commit).
    session.info[HELD_HEAD] = True
    if seq == 0 or session.get(AuditTreeCheckpoint, seq) is not None:
        return seq or None
    conn = session.connection()
    _add_checkpoint(conn, seq, tlog.root_of_frontier(parse_frontier(frontier)), at, checkpoint_key)
    conn.execute(_MOVE_HEAD, {"checkpoint_seq": seq, "checkpoint_at": at})
    return seq


# Serving the tree: checkpoints with their co-signatures, and proofs from stored nodes.


def latest_checkpoint(session: Session) -> AuditTreeCheckpoint | None:
    return session.scalars(
        select(AuditTreeCheckpoint).order_by(AuditTreeCheckpoint.size.desc()).limit(1)
    ).first()


def cosigned_note(session: Session, checkpoint: AuditTreeCheckpoint) -> str:
    """The checkpoint's note with every witness's co-signature line appended."""
    lines = session.scalars(
        select(AuditCosignature.line)
        .where(AuditCosignature.size == checkpoint.size)
        .order_by(AuditCosignature.id)
    ).all()
    return checkpoint.note + "".join(lines)


def tree_size(session: Session) -> int:
    return session.scalar(select(AuditHead.seq).where(AuditHead.id == 1)) or 0


def _nodes(conn: Connection, build):
    """Run a proof builder over stored nodes, fetching all it reads in one indexed query."""
    keys = tlog.needed_nodes(build)
    found: dict[tuple[int, int], bytes] = {}
    # One primary-key probe per node, OR-ed: both SQLite and PostgreSQL answer it from the index
    # (a row-value IN list makes SQLite scan the table).
    sql = _NODES_SQL.replace("%s", _placeholder(conn))
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        for start in range(0, len(keys), 100):
            chunk = keys[start : start + 100]
            where = " OR ".join(["(level = %s AND idx = %s)"] * len(chunk))
            cursor.execute(
                sql + where.replace("%s", _placeholder(conn)), [v for key in chunk for v in key]
            )
            found.update({(lv, i): bytes(h) for lv, i, h in cursor.fetchall()})
    finally:
        cursor.close()
    missing = [k for k in keys if k not in found]
    if missing:
        raise tlog.TlogError(f"the stored tree lacks node {missing[0]}")
    return build(lambda level, index: found[(level, index)])


_NODES_SQL = "SELECT level, idx, hash FROM audit_tree WHERE "


def stored_root(conn: Connection, size: int) -> bytes:
    return _nodes(conn, lambda get: tlog.root_at(size, get))


def inclusion_proof(conn: Connection, seq: int, size: int) -> list[bytes]:
    return _nodes(conn, lambda get: tlog.inclusion_proof(seq - 1, size, get))


def consistency_proof(conn: Connection, first: int, second: int) -> list[bytes]:
    return _nodes(conn, lambda get: tlog.consistency_proof(first, second, get))


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
    """What walking one seq range found: where it stopped, the links at its two ends, and the
    Merkle tree over its entries, relative to its first one: the frontier at each wanted size
    and at its end (a range starts at a multiple of a power of two no smaller than its length,
    so these join with the frontier before it without a carry)."""

    first_link: str | None = None
    last_hash: str | None = None
    next_seq: int = 0
    bad: int | None = None
    problem: str | None = None
    frontiers: dict[int, list[bytes]] = field(default_factory=dict)
    end_frontier: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class WitnessTree:
    """The tree a witness co-signed last, from its own state file (which the office cannot edit)."""

    witness: str
    size: int
    root: bytes


def _signed_checkpoints(conn: Connection, audit_key: SigningKey) -> dict[int, str] | VerifyResult:
    """The chain checkpoints of earlier versions whose signatures hold, as {seq: head hash};
    a VerifyResult if one fails."""
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


def _tree_checkpoints(conn: Connection, verifier: tlog.Verifier) -> dict[int, bytes] | VerifyResult:
    """The signed tree checkpoints as {size: root}, each note's signature checked, and every
    stored co-signature checked against its witness's registered key and that checkpoint."""
    found: dict[int, bytes] = {}
    bodies: dict[int, str] = {}
    for size, root, note in conn.execute(
        select(AuditTreeCheckpoint.size, AuditTreeCheckpoint.root, AuditTreeCheckpoint.note)
    ):
        try:
            checkpoint, _ = tlog.open_checkpoint(note, verifier)
        except tlog.TlogError as exc:
            return VerifyResult(False, 0, size, f"checkpoint {size} does not verify: {exc}")
        if checkpoint.size != size or checkpoint.root.hex() != root:
            return VerifyResult(False, 0, size, f"checkpoint {size} differs from what was signed")
        found[size], bodies[size] = checkpoint.root, checkpoint.body()
    witnesses = {w.name: w.key for w in conn.execute(select(AuditWitness)).all()}
    for row in conn.execute(select(AuditCosignature)).all():
        if row.size not in bodies:
            return VerifyResult(
                False, 0, row.size, f"checkpoint {row.size}, co-signed by {row.witness}, is gone"
            )
        try:
            sig = tlog.NoteSignature.parse_line(row.line)
            tlog.verify_cosignature(
                bodies[row.size], sig, tlog.Verifier.parse(witnesses.get(row.witness, ""))
            )
        except tlog.TlogError as exc:
            return VerifyResult(
                False, 0, row.size, f"{row.witness}'s co-signature of {row.size} fails: {exc}"
            )
    return found


def _walk(
    cursor,
    placeholder: str,
    lo: int,
    hi: int | None,
    prev: str | None,
    checkpoints: dict[int, str],
    wanted: frozenset[int] = frozenset(),
    progress: Callable[[int], None] | None = None,
    batch: int = 20_000,
    raw: bool = False,
) -> _Walk:
    """Check entries lo..hi (to the end when hi is None): sequence, links, hashes, checkpoints;
    and build the Merkle tree over them, keeping its frontier at each of the ``wanted`` sizes.

    ``prev`` is the hash entry lo must link to; None takes entry lo's link as given and reports
    it, so that separately walked ranges can be joined afterwards. ``raw``: the cursor returns
    text columns as bytes (SQLite), hashed as they are stored with no decoding and re-encoding."""
    sql = VERIFY_SQL.replace("%s", placeholder)
    walk = _Walk(next_seq=lo)
    expected = lo
    stack: list[bytes] = []
    # The same text as entry_text() builds, spelled for speed: this loop is the whole cost of
    # verifying once the rows are fetched (seq is an int, every other hashed field text).
    prefix, sep, sha256, zero, one = TAG + "\x00", "\x00", hashlib.sha256, b"\x00", b"\x01"
    if raw:
        prefix, sep = prefix.encode(), b"\x00"
        prev = prev.encode() if prev is not None else None
        checkpoints = {k: v.encode() for k, v in checkpoints.items()}
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
                    if raw:
                        text = b"%b%d\x00%b" % (prefix, expected, sep.join(row[1:12]))
                        digest = sha256(text).hexdigest().encode()
                    else:
                        text = f"{prefix}{expected}{sep}{sep.join(row[1:12])}".encode()
                        digest = sha256(text).hexdigest()
                except (TypeError, UnicodeEncodeError):
                    digest = None  # a NULL or undecodable field was never what was hashed
                if digest != row[12]:
                    problem = "entry does not match its hash"
                elif expected in checkpoints and checkpoints[expected] != digest:
                    problem = "entry differs from checkpoint"
            if problem is not None:
                walk.bad, walk.problem, walk.next_seq = expected, problem, expected
                return _as_text(walk)
            # The entry as the tree's leaf (index expected - 1), and the subtrees it completes.
            carry = sha256(zero + text).digest()
            bits = expected - lo
            while bits & 1:
                carry = sha256(one + stack.pop() + carry).digest()
                bits >>= 1
            stack.append(carry)
            if expected in wanted:
                walk.frontiers[expected] = list(stack)
            prev = digest
            expected += 1
        if progress:
            progress(expected - 1)
    walk.last_hash, walk.next_seq, walk.end_frontier = prev, expected, stack
    return _as_text(walk)


def _as_text(walk: _Walk) -> _Walk:
    """The links at a walk's ends as text, however its rows came (ranges are joined on them)."""
    if isinstance(walk.first_link, bytes):
        walk.first_link = walk.first_link.decode()
    if isinstance(walk.last_hash, bytes):
        walk.last_hash = walk.last_hash.decode()
    return walk


@contextmanager
def _cursor(conn: Connection):
    """A driver cursor for the walk, and whether it returns text as bytes: on SQLite it does
    (for the walk only; the connection's usual text handling is put back after)."""
    dbapi = conn.connection.dbapi_connection
    raw = conn.dialect.name == "sqlite"
    if raw:
        before, dbapi.text_factory = dbapi.text_factory, bytes
    cursor = dbapi.cursor()
    try:
        yield cursor, raw
    finally:
        cursor.close()
        if raw:
            dbapi.text_factory = before


def _placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.name == "sqlite" else "%s"


def _result(walk: _Walk, total: int) -> VerifyResult:
    count = walk.next_seq - 1
    if walk.bad is not None:
        return VerifyResult(False, count, walk.bad, walk.problem)
    if count < total:
        return VerifyResult(False, count, count + 1, "the trail ends before its signed head")
    return VerifyResult(True, count, None)


def _head_and_checkpoints(conn: Connection, keys: Keyring):
    """(entries the trail must hold, chain checkpoints, tree checkpoints), or (None, failure)."""
    checkpoints = _signed_checkpoints(conn, keys.audit_key)
    if isinstance(checkpoints, VerifyResult):
        return None, checkpoints, None
    tree = _tree_checkpoints(conn, keys.checkpoint_key.verifier)
    if isinstance(tree, VerifyResult):
        return None, tree, None
    head = conn.execute(select(AuditHead.seq).where(AuditHead.id == 1)).scalar() or 0
    return max(head, max(checkpoints, default=0), max(tree, default=0)), checkpoints, tree


def _join(before: list[tuple[int, bytes]], size: int, relative: list[bytes]):
    """The frontier after a range's ``size`` entries, from the frontier before the range (as
    (level, hash), largest first) and the range's own frontier: a binary counter's carries."""
    out = list(before)
    for level, node in zip(tlog.frontier_levels(size), relative, strict=True):
        while out and out[-1][0] == level:
            node = tlog.node_hash(out.pop()[1], node)
            level += 1
        out.append((level, node))
    return out


def _check_tree(
    conn: Connection,
    ranges: list[tuple[int, _Walk]],
    tree: dict[int, bytes],
    witness: WitnessTree | None,
    result: VerifyResult,
) -> VerifyResult:
    """The entries' Merkle tree (as the walks built it) against every signed checkpoint, the
    witness's last co-signed tree and the stored tree."""
    count = result.entries
    if witness is not None and witness.size > count:
        return VerifyResult(
            False,
            count,
            witness.size,
            f"the tree of size {witness.size} that {witness.witness} co-signed is gone: "
            f"the trail holds {count} entries",
        )
    roots: dict[int, bytes] = {0: tlog.EMPTY_ROOT}
    before: list[tuple[int, bytes]] = []
    for lo, walk in ranges:
        for size, relative in walk.frontiers.items():
            joined = _join(before, size - lo + 1, relative)
            roots[size] = tlog.root_of_frontier([h for _, h in joined])
        before = _join(before, walk.next_seq - lo, walk.end_frontier)
    if witness is not None and roots.get(witness.size) != witness.root:
        return VerifyResult(
            False,
            count,
            witness.size,
            f"the entries no longer match the tree of size {witness.size} that "
            f"{witness.witness} co-signed",
        )
    for size in sorted(tree):
        if roots.get(size) != tree[size]:
            return VerifyResult(
                False, count, size, f"the entries no longer match checkpoint {size}"
            )
    frontier = [h for _, h in before]
    stored = conn.execute(select(AuditHead.frontier).where(AuditHead.id == 1)).scalar() or ""
    try:
        ok = parse_frontier(stored) == frontier and (
            count == 0 or stored_root(conn, count) == tlog.root_of_frontier(frontier)
        )
    except (tlog.TlogError, ValueError):
        ok = False
    if not ok:
        return VerifyResult(
            False, count, count, "the stored Merkle tree does not match the entries"
        )
    return result


def _wanted(tree: dict[int, bytes], witness: WitnessTree | None) -> frozenset[int]:
    return frozenset(tree) | ({witness.size} if witness else set())


def verify(
    conn: Connection,
    keys: Keyring,
    progress: Callable[[int, int], None] | None = None,
    witness: WitnessTree | None = None,
) -> VerifyResult:
    """Walk the whole chain from seq 1, checking sequence, links, hashes and checkpoints, and
    rebuild the Merkle tree to check it against the signed checkpoints, the stored tree and (given
    a witness's state) the tree that witness co-signed last."""
    total, checkpoints, tree = _head_and_checkpoints(conn, keys)
    if total is None:
        return checkpoints
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        report = (lambda done: progress(done, total)) if progress else None
        walk = _walk(
            cursor,
            _placeholder(conn),
            1,
            None,
            GENESIS,
            checkpoints,
            _wanted(tree, witness),
            report,
        )
    finally:
        cursor.close()
    return _finish(conn, walk, [(1, walk)], total, tree, witness)


def _finish(conn, walk: _Walk, ranges, total: int, tree, witness) -> VerifyResult:
    result = _result(walk, total)
    if not result.ok:
        return result
    return _check_tree(conn, ranges, tree, witness, result)


def _walk_range(
    url: str, lo: int, hi: int | None, checkpoints: dict[int, str], wanted: frozenset[int]
) -> _Walk:
    """One worker of :func:`verify_parallel`: its own connection, its own range."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn, _cursor(conn) as (cursor, raw):
            return _walk(cursor, _placeholder(conn), lo, hi, None, checkpoints, wanted, raw=raw)
    finally:
        engine.dispose()


def verify_parallel(
    conn: Connection,
    url: str,
    keys: Keyring,
    jobs: int,
    min_per_job: int = 10_000,
    witness: WitnessTree | None = None,
) -> VerifyResult:
    """:func:`verify` over up to ``jobs`` processes: each walks one seq range on its own
    connection (each entry carries its predecessor's hash, so ranges check independently), then
    the ranges' ends are joined. Ranges are a power of two long, so each one's tree is a complete
    subtree of the whole. Finds the same first bad entry as the single walk."""
    total, checkpoints, tree = _head_and_checkpoints(conn, keys)
    if total is None:
        return checkpoints
    last = max(total, conn.execute(select(func.max(AuditEntry.seq))).scalar() or 0)
    if jobs < 2 or last < jobs * min_per_job:
        return verify(conn, keys, witness=witness)
    step = 1 << (-(-last // jobs) - 1).bit_length()
    count = -(-last // step)
    # The last range ends at the last entry this connection's snapshot holds: entries appended
    # while the walk runs are outside the verified size, not a mismatch with the head read here.
    bounds = [(1 + k * step, last if k == count - 1 else (k + 1) * step) for k in range(count)]
    wanted = _wanted(tree, witness)
    # Not a plain fork: this process may run threads (the trail's integrator) that hold a lock
    # inside the database driver at that moment (SQLite's allocator mutex), and a forked child
    # would wait on it forever. The fork server is a clean single-threaded process, started once
    # with this module loaded, that forks the walkers.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    with ProcessPoolExecutor(count, mp_context=context) as pool:
        walks = list(
            pool.map(
                _walk_range,
                [url] * count,
                *zip(*bounds, strict=True),
                [checkpoints] * count,
                [wanted] * count,
            )
        )
    prev = GENESIS
    ranges = [(lo, w) for (lo, _), w in zip(bounds, walks, strict=True)]
    for k, ((lo, hi), walk) in enumerate(zip(bounds, walks, strict=True)):
        if walk.first_link is not None and walk.first_link != prev:
            return _result(
                _Walk(next_seq=lo, bad=lo, problem="link to previous entry broken"), total
            )
        if walk.bad is None and hi is not None and walk.next_seq <= hi:
            # This range ran out early: a gap if any later range holds entries, else the end.
            if any(w.first_link is not None or w.bad is not None for w in walks[k + 1 :]):
                walk.bad, walk.problem = walk.next_seq, f"entry {walk.next_seq} is missing"
            return _finish(conn, walk, ranges[: k + 1], total, tree, witness)
        if walk.bad is not None or hi is None:
            return _finish(conn, walk, ranges[: k + 1], total, tree, witness)
        prev = walk.last_hash
    return _finish(conn, walk, ranges, total, tree, witness)


VERIFY_SQL = f"SELECT {', '.join(COLUMNS)} FROM audit_entries WHERE seq >= %s ORDER BY seq LIMIT %s"  # noqa: S608


# Search and export.
FILTERS = ("actor", "action", "decision")


@dataclass(frozen=True)
class Scope:
    """Entries about one thing: those whose target is one of ``targets`` or whose actor is one of
    ``actors`` (a request: the request and its grants, and what its grants' holders did)."""

    targets: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()


@dataclass
class Query:
    actor: str | None = None
    action: str | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # About an item, a request, a grant, a third party: the service turns each into a Scope.
    item: int | None = None
    request: int | None = None
    grant: int | None = None
    third_party: str | None = None
    scopes: tuple[Scope, ...] = ()

    def asked(self) -> dict[str, str]:
        """The filters as given (for the trail entry of the search itself)."""
        return {k: str(v) for k, v in vars(self).items() if v and k != "scopes"}


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
    for scope in query.scopes:
        if not scope.targets and not scope.actors:
            return None  # about something that was never there: nothing matches
        stmt = stmt.where(
            or_(AuditEntry.target.in_(scope.targets), AuditEntry.actor.in_(scope.actors))
        )
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
    session_factory,
    query: Query,
    fmt: str,
    clock: OfficeClock,
    batch: int = 2000,
    header: tuple[str, ...] = EXPORTED,
) -> Iterator[str]:
    """Stream the whole selection, oldest first, in batches, on its own session. ``header``
    names the CSV's columns (in the reader's language when asked), in the order of EXPORTED."""
    with session_factory() as session:
        base = _selection(session, query)
        if fmt == "csv":
            yield _csv_line(header)
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

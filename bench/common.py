"""What every benchmark shares: a throw-away govern instance (keys, migrated database, policy),
fast bulk seeding with SQLAlchemy core, a generator of valid audit chains, and timing helpers.

Nothing here replaces govern code on the measured path: seeding goes around the services (for
speed), measuring always goes through them.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from govern import audit, migrate, policy, tlog
from govern.config import load_settings
from govern.context import Principal, Runtime
from govern.crypto import ensure_keys
from govern.db import make_engine, normalize_url
from govern.models import AuditHead, AuditTreeCheckpoint
from govern.runtime import build_runtime, unit_of_work
from govern.services import accounts

PASSWORD = "bench horse battery staple"
# Accounts made for the benchmarks use a cheap argon2 cost: logging in is not what is measured.
FAST_ARGON = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
# The vendor organisation of the benchmarks' agreement and its staff.
VENDOR = "vendor"


def say(message: str) -> None:
    """Progress goes to stderr; the figures go to stdout."""
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Figure:
    """One of the four figures: a ratio measured against its baseline in the same run."""

    number: int
    title: str
    ratio: float | None
    goal: str
    met: bool | None
    raw: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def median(values) -> float:
    return statistics.median(values)


def percentile(values, pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# Instances -------------------------------------------------------------------------------------


class Instance:
    """A govern instance of its own: GOVERN_HOME with keys, a migrated database, the policy."""

    def __init__(
        self, workdir: Path, name: str, backend: str = "sqlite", pg_url: str | None = None
    ):
        self.home = workdir / name
        self.home.mkdir(parents=True, exist_ok=True)
        self.backend = backend
        self._admin_url = None
        self._pg_name = None
        if backend == "sqlite":
            self.url = f"sqlite:///{self.home / 'govern.db'}"
        else:
            self._admin_url = normalize_url(pg_url or DEFAULT_PG_URL)
            self._pg_name = f"govern_bench_{os.getpid()}_{name}_{uuid.uuid4().hex[:6]}"
            admin = sa.create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{self._pg_name}"')
            admin.dispose()
            url = sa.engine.make_url(self._admin_url).set(database=self._pg_name)
            self.url = url.render_as_string(hide_password=False)
        ensure_keys(self.home)
        migrate.upgrade(self.url)
        self.settings = load_settings({"home": self.home, "database_url": self.url, **FAST_ARGON})
        self.engine = make_engine(self.url, poolclass=sa.pool.NullPool)
        with sa.orm.Session(self.engine) as db:
            policy.seed_rules(db)
            audit.ensure_head(db)
            db.commit()
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = build_runtime(self.settings)
        return self._runtime

    def today(self) -> date:
        """The office's day, by the instance's own clock (never the host's calendar)."""
        return self.runtime.clock.today()

    def env(self) -> dict:
        """The environment a server process needs to serve this instance."""
        return {**os.environ, "GOVERN_HOME": str(self.home), "GOVERN_DATABASE_URL": self.url}

    def staff_and_agreement(self) -> tuple[int, int, int]:
        """A vendor staff member, a vendor lead and an agreement signed 30 days ago: the ids."""
        from govern.models import Agreement

        staff_id = self.create_user("staff", "vendor_staff", org=VENDOR)
        lead_id = self.create_user("lead", "vendor_lead", org=VENDOR)
        with self.engine.begin() as conn:
            agreement_id = conn.execute(
                Agreement.__table__.insert().values(
                    title="bench",
                    owner="office",
                    vendor=VENDOR,
                    signed_on=self.today() - timedelta(days=30),
                    term_years=5,
                    contract_value=3985000,
                )
            ).inserted_primary_key[0]
        return staff_id, lead_id, agreement_id

    def create_user(self, username: str, role: str, org: str | None = None) -> int:
        with unit_of_work(self.runtime, Principal.system()) as ctx:
            return accounts.create_user(ctx, username, role, PASSWORD, org=org).id

    def close(self) -> None:
        if self._runtime is not None:
            # Its trail integrator (PostgreSQL) first: the database is about to be dropped.
            if self._runtime.integrator is not None:
                self._runtime.integrator.stop()
            self._runtime.engine.dispose()
        self.engine.dispose()
        if self._pg_name:
            admin = sa.create_engine(self._admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{self._pg_name}'"
                )
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self._pg_name}"')
            admin.dispose()


def postgres_available(pg_url: str | None) -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = sa.create_engine(normalize_url(pg_url or DEFAULT_PG_URL))
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:  # any failure means "skip PostgreSQL"
        return f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:120]}"
    return None


# Bulk seeding (SQLAlchemy core, many rows per statement) ---------------------------------------


def bulk_insert(conn, table: sa.Table, rows: list[dict], batch: int = 5000) -> None:
    for start in range(0, len(rows), batch):
        conn.execute(sa.insert(table), rows[start : start + batch])


# Audit chains -----------------------------------------------------------------------------------

START = datetime(2026, 1, 1, tzinfo=UTC)
ACTIONS = ("item:read", "item:list", "agreement:read", "audit:search", "auth:login")


def actor_name(i: int) -> str:
    return f"staff{i:05d}"


def busy_actors(count: int = 20) -> list[str]:
    return [actor_name(i) for i in range(count)]


def chain(
    n: int, actors: int = 2000, span_days: float = 180, seed: int = 7, batch: int = 10_000
) -> Iterator[list[tuple]]:
    """Batches of valid, chained audit rows (in ``audit.COLUMNS`` order), seq 1..n.

    About a third of the entries come from 20 busy actors, the rest from ``actors`` others; the
    times spread evenly over ``span_days`` and never run backwards, as the trail guarantees.
    """
    import random

    rnd = random.Random(seed)
    step = span_days * 86400 / max(n, 1)
    prev = audit.GENESIS
    hashed = audit.HASHED
    out: list[tuple] = []
    busy = len(busy_actors())
    for seq in range(1, n + 1):
        at = audit.iso(START + timedelta(seconds=seq * step))
        who = rnd.randrange(busy) if rnd.random() < 0.33 else rnd.randrange(busy, busy + actors)
        decision = "allow" if rnd.random() < 0.9 else "deny"
        action = ACTIONS[seq % len(ACTIONS)]
        row = {
            "seq": seq,
            "at": at,
            "actor": actor_name(who),
            "role": "vendor_staff",
            "action": action,
            "target": f"item:{rnd.randrange(1, 100_000)}",
            "decision": decision,
            "rule": "p, vendor_staff, *, item, read" if decision == "allow" else "no valid NDA",
            "request_id": f"{seq:032x}",
            "client": "10.0.0.1",
            "details": '{"size":42}',
            "prev_hash": prev,
        }
        prev = audit.entry_hash(row[k] for k in hashed)
        out.append(tuple(row[k] for k in hashed) + (prev,))
        if len(out) >= batch:
            yield out
            out = []
    if out:
        yield out


class ChainSink:
    """Writes chain batches into one instance's audit_entries as fast as the driver allows
    (executemany in one transaction on SQLite, COPY on PostgreSQL), with the Merkle tree's nodes
    and the signed checkpoints the app would have made every ``checkpoint_every`` entries."""

    def __init__(self, instance: Instance, checkpoint_every: int = 0):
        self.instance = instance
        self.raw = instance.engine.raw_connection()
        self.dialect = instance.engine.dialect.name
        self.last: tuple | None = None
        self.count = 0
        self.every = checkpoint_every
        self.frontier: list[bytes] = []
        self.checkpoints: list[dict] = []
        self.key = instance.runtime.keys.checkpoint_key
        cols = ", ".join(audit.COLUMNS)
        if self.dialect == "sqlite":
            marks = ", ".join("?" for _ in audit.COLUMNS)
            self.sql = f"INSERT INTO audit_entries ({cols}) VALUES ({marks})"
            self.node_sql = "INSERT INTO audit_tree (level, idx, hash) VALUES (?, ?, ?)"
        else:
            self.sql = f"COPY audit_entries ({cols}) FROM STDIN"
            self.node_sql = "COPY audit_tree (level, idx, hash) FROM STDIN"

    def _copy(self, cur, sql: str, rows) -> None:
        if self.dialect == "sqlite":
            cur.executemany(sql, rows)
        else:
            with cur.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)

    def write(self, rows: list[tuple]) -> None:
        cur = self.raw.cursor()
        self._copy(cur, self.sql, rows)
        nodes = []
        start = 0
        while start < len(rows):
            # Cut the batch where a checkpoint falls due, to sign the root at that size.
            size = self.count + start
            end = len(rows)
            if self.every:
                end = min(end, (size // self.every + 1) * self.every - self.count)
            leaves = [audit.entry_leaf(row[:12]) for row in rows[start:end]]
            self.frontier, size, new = tlog.append_leaves(self.frontier, size, leaves)
            nodes.extend(new)
            if self.every and size % self.every == 0:
                root = tlog.root_of_frontier(self.frontier)
                at = rows[end - 1][1]
                self.checkpoints.append(
                    {
                        "size": size,
                        "root": root.hex(),
                        "at": at,
                        "note": audit.checkpoint_note(size, root, self.key),
                    }
                )
            start = end
        self._copy(cur, self.node_sql, nodes)
        cur.close()
        self.last = rows[-1]
        self.count += len(rows)

    def finish(self) -> None:
        """Point the chain head at the last row (and store the checkpoints), then commit."""
        self.raw.commit()
        self.raw.close()
        if self.last is None:
            return
        seq, at, head = self.last[0], self.last[1], self.last[-1]
        last_cp = self.checkpoints[-1]["size"] if self.checkpoints else 0
        with sa.orm.Session(self.instance.engine) as db:
            if self.checkpoints:
                bulk_insert(db.connection(), AuditTreeCheckpoint.__table__, self.checkpoints)
            db.execute(
                sa.update(AuditHead)
                .where(AuditHead.id == 1)
                .values(
                    seq=seq,
                    hash=head,
                    at=at,
                    checkpoint_seq=last_cp,
                    checkpoint_at=at,
                    frontier=audit.format_frontier(self.frontier),
                )
            )
            db.commit()


def load_chain(instances: list[Instance], n: int, checkpoint_every: int = 0, **kw) -> None:
    """Generate one chain of ``n`` entries (with its tree) and write it into every instance."""
    sinks = [ChainSink(i, checkpoint_every) for i in instances]
    t0 = time.perf_counter()
    for rows in chain(n, **kw):
        for sink in sinks:
            sink.write(rows)
    for sink in sinks:
        sink.finish()
    say(f"{n:,} chained audit entries written in {time.perf_counter() - t0:.1f} s")

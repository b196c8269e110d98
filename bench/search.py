"""Figure 4: audit search (actor + time range) p50 at 1M entries, SQLite and PostgreSQL.

One chain of N valid entries (a third from 20 busy actors, the rest from 2000 others, spread over
180 days) is written into a SQLite instance and a PostgreSQL database of its own. Then ~50
searches, each an actor and a time window (an hour to a month), newest first, 50 per page, go
through ``govern.audit.search`` exactly as ``GET /api/v1/audit`` calls it.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

import sqlalchemy as sa

from bench.common import (
    START,
    Figure,
    Instance,
    actor_name,
    busy_actors,
    load_chain,
    median,
    percentile,
    postgres_available,
    say,
)
from govern import audit

WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=7), timedelta(days=30))


def queries(count: int, span_days: float, actors: int, seed: int = 5) -> list[audit.Query]:
    rnd = random.Random(seed)
    busy = busy_actors()
    out = []
    for i in range(count):
        # Every other search is for a busy actor; the rest for one of the many quiet ones.
        quiet = actor_name(len(busy) + rnd.randrange(actors))
        actor = rnd.choice(busy) if i % 2 else quiet
        window = WINDOWS[i % len(WINDOWS)]
        latest = max(0.0, span_days * 86400 - window.total_seconds())
        since = START + timedelta(seconds=rnd.uniform(0, latest))
        out.append(audit.Query(actor=actor, since=since, until=since + window))
    return out


def measure(instance: Instance, qs: list[audit.Query], limit: int = 50) -> dict:
    times, found = [], []
    with instance.runtime.sessions() as db:
        audit.search(db, qs[0], limit, None)  # the first statement compiles; not a search
        for q in qs:
            t0 = time.perf_counter()
            rows, _cursor = audit.search(db, q, limit, None)
            times.append(time.perf_counter() - t0)
            found.append(len(rows))
            if any(r.actor != q.actor for r in rows):
                raise RuntimeError("search returned another actor's entries")
            db.rollback()
    return {
        "p50_ms": round(median(times) * 1000, 2),
        "p95_ms": round(percentile(times, 95) * 1000, 2),
        "max_ms": round(max(times) * 1000, 2),
        "searches": len(times),
        "searches_with_results": sum(1 for n in found if n),
        "mean_results": round(sum(found) / len(found), 1),
    }


def run(
    workdir,
    entries: int = 1_000_000,
    searches: int = 50,
    backends: tuple[str, ...] = ("sqlite", "postgresql"),
    pg_url: str | None = None,
    span_days: float = 180,
    actors: int = 2000,
) -> Figure:
    notes = []
    if "postgresql" in backends:
        why = postgres_available(pg_url)
        if why:
            notes.append(f"PostgreSQL skipped: {why}")
            backends = tuple(b for b in backends if b != "postgresql")
    instances = [Instance(workdir, f"search-{b}", b, pg_url) for b in backends]
    try:
        say(f"search: writing {entries:,} entries into {', '.join(backends)}")
        load_chain(instances, entries, actors=actors, span_days=span_days)
        for inst in instances:
            if inst.backend == "postgresql":
                # What autovacuum would do shortly after a bulk load: planner statistics.
                with inst.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE audit_entries")
        qs = queries(searches, span_days, actors)
        raw = {"entries": entries}
        for inst in instances:
            raw[inst.backend] = measure(inst, qs)
            say(f"search: {inst.backend} p50 {raw[inst.backend]['p50_ms']} ms")
        worst = max(raw[b]["p50_ms"] for b in backends)
        return Figure(
            4,
            f"audit search (actor + time range) p50 at {entries:,} entries, "
            + " and ".join(backends),
            worst / 50,
            "p50 < 50 ms on each (ratio = worst p50 ÷ 50 ms < 1)",
            worst < 50,
            raw,
            notes,
        )
    finally:
        for inst in instances:
            inst.close()


def count(instance: Instance) -> int:
    with instance.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(audit.AuditEntry))

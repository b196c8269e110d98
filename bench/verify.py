"""Figure 3: ``govern audit verify`` entries per second ÷ a bare hashlib SHA-256 chain.

A valid chain of N entries (with signed checkpoints every 1000, as the app makes them) is written
into a fresh SQLite instance. ``audit.verify`` (what ``govern audit verify`` and
``GET /api/v1/audit/verify`` run) walks it from the database; the baseline chains the same
entries' canonical bytes, already in memory, with hashlib.sha256 in a plain loop. The command line
itself is also timed end to end (process start and imports included) for the raw numbers.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from bench.common import Figure, Instance, load_chain, median, say
from govern import audit


def canonical_blobs(instance: Instance) -> list[bytes]:
    """Each entry's canonical bytes without its link (the loop below supplies the link)."""
    sql = f"SELECT {', '.join(audit.HASHED[:-1])} FROM audit_entries ORDER BY seq"
    with instance.engine.connect() as conn:
        rows = conn.exec_driver_sql(sql).all()
    return [(audit.TAG + "\x00" + "\x00".join(map(str, row)) + "\x00").encode() for row in rows]


def bare_chain(blobs: list[bytes]) -> bytes:
    sha256 = hashlib.sha256
    prev = audit.GENESIS.encode()
    for blob in blobs:
        prev = sha256(blob + prev).hexdigest().encode()
    return prev


def fetch_only(instance: Instance, batch: int = 20_000) -> float:
    """Seconds to read the rows verify reads, the way it reads them, hashing nothing: the floor
    under any single-threaded verify of this database."""
    sql = audit.VERIFY_SQL.replace("%s", "?") if instance.backend == "sqlite" else audit.VERIFY_SQL
    with instance.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        t0, after = time.perf_counter(), 1
        while rows := cursor.execute(sql, (after, batch)).fetchall():
            after = rows[-1][0] + 1
        cursor.close()
        return time.perf_counter() - t0


def _verify_range(path: str, lo: int, hi: int, batch: int = 20_000):
    """The verify loop over seq lo..hi on a connection of its own (prototype, see below).
    Returns (first bad seq or None, prev_hash of lo, hash of hi)."""
    import sqlite3

    db = sqlite3.connect(path)
    sql = audit.VERIFY_SQL.replace("%s", "?")
    prefix, sep, sha256 = audit.TAG + "\x00", "\x00", hashlib.sha256
    expected, first_prev, prev = lo, None, None
    while expected <= hi:
        rows = db.execute(sql, (expected, min(batch, hi - expected + 1))).fetchall()
        if not rows:
            return expected, first_prev, prev
        for row in rows:
            if first_prev is None:
                first_prev = prev = row[11]
            if row[0] != expected or row[11] != prev:
                return expected, first_prev, prev
            prev = sha256(f"{prefix}{expected}{sep}{sep.join(row[1:12])}".encode()).hexdigest()
            if prev != row[12]:
                return expected, first_prev, prev
            expected += 1
    db.close()
    return None, first_prev, prev


def parallel_prototype(instance: Instance, entries: int, jobs: int) -> float:
    """Seconds for a ``jobs``-process verify of seq ranges. NOT govern code: a prototype of the
    fix proposed for figure 3. Each entry carries its predecessor's hash, so ranges verify
    independently and the seams are checked after (range k's last hash = range k+1's link)."""
    import concurrent.futures
    import multiprocessing

    path = str(instance.home / "govern.db")
    bounds = [(1 + entries * k // jobs, entries * (k + 1) // jobs) for k in range(jobs)]
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        pool.submit(int).result()  # processes up before the clock starts
        t0 = time.perf_counter()
        parts = list(pool.map(_verify_range, [path] * jobs, *zip(*bounds, strict=True)))
        seams = all(a[2] == b[1] for a, b in zip(parts, parts[1:], strict=False))
        elapsed = time.perf_counter() - t0
    if any(p[0] is not None for p in parts) or not seams or parts[0][1] != audit.GENESIS:
        raise RuntimeError("the parallel prototype disagrees with audit.verify")
    return elapsed


def run(workdir, entries: int = 200_000, rounds: int = 3, cli: bool = True) -> Figure:
    instance = Instance(workdir, "verify")
    try:
        load_chain([instance], entries, checkpoint_every=1000)
        blobs = canonical_blobs(instance)
        key = instance.runtime.keys.audit_key
        verify_s, bare_s, fetch_s = [], [], []
        for _ in range(rounds):
            with instance.engine.connect() as conn:
                t0 = time.perf_counter()
                result = audit.verify(conn, key)
                verify_s.append(time.perf_counter() - t0)
            if not result.ok or result.entries != entries:
                raise RuntimeError(f"the generated chain does not verify: {result}")
            t0 = time.perf_counter()
            bare_chain(blobs)
            bare_s.append(time.perf_counter() - t0)
            fetch_s.append(fetch_only(instance))
        parallel_s = [parallel_prototype(instance, entries, 2) for _ in range(rounds)]
        verify_eps = entries / median(verify_s)
        bare_eps = entries / median(bare_s)
        raw = {
            "entries": entries,
            "verify_entries_per_s": round(verify_eps),
            "bare_sha256_chain_entries_per_s": round(bare_eps),
            "fetch_only_entries_per_s": round(entries / median(fetch_s)),
            "prototype_2_process_verify_entries_per_s": round(entries / median(parallel_s)),
            "prototype_2_process_ratio": round(median(bare_s) / median(parallel_s), 3),
            "verify_s": round(median(verify_s), 3),
            "bare_s": round(median(bare_s), 4),
        }
        if cli:
            govern = Path(sys.executable).parent / "govern"
            t0 = time.perf_counter()
            done = subprocess.run(
                [str(govern), "audit", "verify"],
                env=instance.env(),
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                raise RuntimeError(
                    f"govern audit verify failed: {done.stdout} {done.stderr[-300:]}"
                )
            raw["cli_wall_s"] = round(wall, 2)
            raw["cli_entries_per_s_incl_startup"] = round(entries / wall)
        say(f"verify: {verify_eps:,.0f} entries/s, bare chain {bare_eps:,.0f} entries/s")
        ratio = verify_eps / bare_eps
        return Figure(
            3,
            f"audit verify entries/s ÷ bare hashlib SHA-256 chain ({entries:,} entries, SQLite)",
            ratio,
            "≥ 0.25",
            ratio >= 0.25,
            raw,
        )
    finally:
        instance.close()


def entry_count(instance: Instance) -> int:
    with instance.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(audit.AuditEntry))

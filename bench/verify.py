"""Figure 3: ``govern audit verify`` entries per second ÷ a bare hashlib pass over the leaves.

A valid chain of N entries with its Merkle tree (and signed checkpoints every 1000, as the app
makes them) is written into a fresh SQLite instance. ``audit.verify`` (what ``govern audit verify``
and ``GET /api/v1/audit/verify`` run) walks it from the database: chain links and hashes, then the
tree recomputed from the leaves against every checkpoint and the stored tree. The baseline does the
same hashing on the same entries' canonical bytes, already in memory, with hashlib in a plain loop:
the chain hash, the RFC 6962 leaf hash and the tree's root (a chain-only pass is reported too). The
command line itself is also timed end to end (process start and imports included).
"""

from __future__ import annotations

import hashlib
import os
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


def bare_pass(blobs: list[bytes]) -> bytes:
    """Chain hash, leaf hash and Merkle root over the entries, in one plain loop."""
    sha256 = hashlib.sha256
    prev = audit.GENESIS.encode()
    stack: list[bytes] = []
    for n, blob in enumerate(blobs):
        text = blob + prev
        prev = sha256(text).hexdigest().encode()
        carry = sha256(b"\x00" + text).digest()
        while n & 1:
            carry = sha256(b"\x01" + stack.pop() + carry).digest()
            n >>= 1
        stack.append(carry)
    root = stack.pop()
    while stack:
        root = sha256(b"\x01" + stack.pop() + root).digest()
    return root


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


def run(workdir, entries: int = 1_000_000, rounds: int = 3, cli: bool = True) -> Figure:
    instance = Instance(workdir, "verify")
    try:
        load_chain([instance], entries, checkpoint_every=1000)
        blobs = canonical_blobs(instance)
        with instance.engine.connect() as conn:
            stored_root = audit.stored_root(conn, entries)
        key = instance.runtime.keys
        jobs = os.cpu_count() or 1
        url = instance.runtime.settings.database_url
        verify_s, single_s, bare_s, chain_s, fetch_s = [], [], [], [], []
        for _ in range(rounds):
            with instance.engine.connect() as conn:
                # What `govern audit verify` runs: the walk over --jobs (the CPU count) processes.
                t0 = time.perf_counter()
                result = audit.verify_parallel(conn, url, key, jobs)
                verify_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                single = audit.verify(conn, key)
                single_s.append(time.perf_counter() - t0)
            for found in (result, single):
                if not found.ok or found.entries != entries:
                    raise RuntimeError(f"the generated chain does not verify: {found}")
            t0 = time.perf_counter()
            root = bare_pass(blobs)
            bare_s.append(time.perf_counter() - t0)
            if root != stored_root:
                raise RuntimeError("the baseline's root is not the stored tree's")
            t0 = time.perf_counter()
            bare_chain(blobs)
            chain_s.append(time.perf_counter() - t0)
            fetch_s.append(fetch_only(instance))
        verify_eps = entries / median(verify_s)
        bare_eps = entries / median(bare_s)
        raw = {
            "entries": entries,
            "jobs": jobs,
            "verify_entries_per_s": round(verify_eps),
            "bare_chain_leaf_root_entries_per_s": round(bare_eps),
            "bare_chain_only_entries_per_s": round(entries / median(chain_s)),
            "ratio_to_chain_only": round(verify_eps / (entries / median(chain_s)), 3),
            "single_process_verify_entries_per_s": round(entries / median(single_s)),
            "single_process_ratio": round(median(bare_s) / median(single_s), 3),
            "fetch_only_entries_per_s": round(entries / median(fetch_s)),
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
            f"audit verify entries/s ÷ bare hashlib chain+leaf+root pass ({entries:,} entries, SQLite)",
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

"""Figures 5 and 6: what the trail's Merkle tree costs (issue 11).

5. Append cost with the tree ÷ append cost before it, same run, same machine. Each append is one
   committed transaction of a few entries, as a request makes them: ``audit.write_entries`` (entries,
   tree nodes, frontier, head, Ed25519 checkpoints) against the append the trail had before the
   tree (kept below as the baseline: lock the head, insert the chained entries, ES256 checkpoints
   of the head, move the head). Each runs on an
   instance of its own (the baseline would leave the other's tree behind), rounds alternate.
6. Inclusion and consistency proofs at 1M entries, p50, on SQLite and PostgreSQL: the tree's
   nodes are seeded directly (bench.common.ChainSink), proofs go through ``audit.inclusion_proof``
   and ``audit.consistency_proof`` exactly as the proof routes call them, and a sample of them is
   checked against the signed checkpoints' roots.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bench.common import Figure, Instance, load_chain, median, percentile, postgres_available, say
from govern import audit, tlog
from govern.crypto import canonical_json
from govern.models import AuditCheckpoint, AuditEntry, AuditTreeCheckpoint


def _pending(k: int) -> list[audit.PendingEntry]:
    return [
        audit.PendingEntry(
            actor="staff",
            role="vendor_staff",
            action="item:read",
            target=f"item:{k % 997}",
            decision="allow",
            rule="p, vendor_staff, *, item, read",
            request_id=f"{k:032x}",
            client="10.0.0.1",
            details={"size": 42},
        )
        for _ in range(2)
    ]


def chain_only_append(
    session: Session, pending: list[audit.PendingEntry], audit_key, checkpoint_every: int = 1000
) -> None:
    """The baseline: the trail's append as it was before the tree, kept verbatim in substance:
    hash chain only, ES256 JWS checkpoints of the head every 1000 entries or after 60 minutes."""
    seq, prev, last_at, checkpoint_at, _frontier = audit._lock_head(session)
    now = audit.iso(datetime.now(UTC))
    at = max(now, last_at)
    rows = []
    for entry in pending:
        seq += 1
        row = entry.row()
        row["seq"], row["at"], row["prev_hash"] = seq, at, prev
        row["hash"] = prev = audit.entry_hash(row[k] for k in audit.HASHED)
        rows.append(row)
    session.connection().execute(sa.insert(AuditEntry.__table__), rows)
    values = {"seq": seq, "hash": prev, "at": at}
    first = rows[0]["seq"]
    due_by_count = (first - 1) // checkpoint_every != seq // checkpoint_every
    due_by_time = checkpoint_at and _minutes_between(checkpoint_at, at) >= 60
    if due_by_count or due_by_time:
        payload = canonical_json({"seq": seq, "hash": prev, "at": at})
        session.add(
            AuditCheckpoint(
                seq=seq, head_hash=prev, at=at, kid=audit_key.kid, jws=audit_key.sign(payload)
            )
        )
        values.update(checkpoint_seq=seq, checkpoint_at=at)
    session.connection().execute(audit._MOVE_HEAD, values)


def _minutes_between(a: str, b: str) -> float:
    # The trail's times end in Z: fromisoformat reads them as aware UTC instants.
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds() / 60


def _append_round(instance: Instance, with_tree: bool, appends: int, offset: int) -> float:
    key = instance.runtime.keys.checkpoint_key
    audit_key = instance.runtime.keys.audit_key
    sessions = instance.runtime.sessions
    t0 = time.perf_counter()
    for k in range(appends):
        with sessions() as db:
            pending = _pending(offset + k)
            if with_tree:
                audit.write_entries(db, pending, key, 1000)
            else:
                chain_only_append(db, pending, audit_key)
            db.commit()
    return (time.perf_counter() - t0) / appends


def append_cost(backend: str, workdir, appends: int, rounds: int, pg_url) -> dict:
    tree = Instance(workdir, f"append-tree-{backend}", backend, pg_url)
    bare = Instance(workdir, f"append-bare-{backend}", backend, pg_url)
    try:
        _append_round(tree, True, 20, 0)
        _append_round(bare, False, 20, 0)
        with_tree, before = [], []
        for r in range(rounds):
            offset = (r + 1) * appends
            # Alternate which goes first: the second of two back-to-back runs tends to be slower.
            if r % 2:
                before.append(_append_round(bare, False, appends, offset))
                with_tree.append(_append_round(tree, True, appends, offset))
            else:
                with_tree.append(_append_round(tree, True, appends, offset))
                before.append(_append_round(bare, False, appends, offset))
        with tree.engine.connect() as conn:
            result = audit.verify(conn, tree.runtime.keys)
            if not result.ok:
                raise RuntimeError(f"the appended trail does not verify: {result}")
        return {
            "appends_per_round": appends,
            "entries_per_append": 2,
            "with_tree_us": round(median(with_tree) * 1e6, 1),
            "before_us": round(median(before) * 1e6, 1),
            "ratio": round(median(with_tree) / median(before), 3),
            "verified_entries": result.entries,
        }
    finally:
        tree.close()
        bare.close()


def run_append(
    workdir, appends: int = 2000, rounds: int = 5, backends=("sqlite", "postgresql"), pg_url=None
) -> Figure:
    notes, backends = _backends(backends, pg_url)
    raw = {}
    for backend in backends:
        raw[backend] = append_cost(backend, workdir, appends, rounds, pg_url)
        say(f"append: {backend} ratio {raw[backend]['ratio']}")
    worst = max(raw[b]["ratio"] for b in backends)
    return Figure(
        5,
        "append cost with the Merkle tree ÷ chain-only append (committed, 2 entries each)",
        worst,
        "≤ 1.15",
        worst <= 1.15,
        raw,
        notes,
    )


def _backends(backends, pg_url):
    notes = []
    if "postgresql" in backends:
        why = postgres_available(pg_url)
        if why:
            notes.append(f"PostgreSQL skipped: {why}")
            backends = tuple(b for b in backends if b != "postgresql")
    return notes, tuple(backends)


def proof_times(instance: Instance, entries: int, samples: int, seed: int = 11) -> dict:
    rnd = random.Random(seed)
    with instance.engine.connect() as conn:
        roots = {
            size: bytes.fromhex(root)
            for size, root in conn.execute(
                sa.select(AuditTreeCheckpoint.size, AuditTreeCheckpoint.root)
            )
        }
        sizes = sorted(roots)
        audit.inclusion_proof(conn, 1, entries)  # the first statement compiles; not a proof
        inclusion, consistency, checked = [], [], 0
        for k in range(samples):
            size = rnd.choice(sizes)
            seq = rnd.randint(1, size)
            t0 = time.perf_counter()
            path = audit.inclusion_proof(conn, seq, size)
            inclusion.append(time.perf_counter() - t0)
            first, second = sorted(rnd.sample(sizes, 2))
            t0 = time.perf_counter()
            hashes = audit.consistency_proof(conn, first, second)
            consistency.append(time.perf_counter() - t0)
            if k % 10 == 0:
                # Proofs that do not check would be fast for nothing.
                leaf = bytes(
                    conn.execute(
                        sa.text("SELECT hash FROM audit_tree WHERE level = 0 AND idx = :i"),
                        {"i": seq - 1},
                    ).scalar_one()
                )
                tlog.verify_inclusion(seq - 1, size, leaf, path, roots[size])
                tlog.verify_consistency(first, second, roots[first], roots[second], hashes)
                checked += 1
    return {
        "inclusion_p50_ms": round(median(inclusion) * 1000, 3),
        "inclusion_p95_ms": round(percentile(inclusion, 95) * 1000, 3),
        "consistency_p50_ms": round(median(consistency) * 1000, 3),
        "consistency_p95_ms": round(percentile(consistency, 95) * 1000, 3),
        "proofs": samples,
        "checked_against_signed_roots": checked,
    }


def run_proofs(
    workdir,
    entries: int = 1_000_000,
    samples: int = 200,
    backends=("sqlite", "postgresql"),
    pg_url=None,
) -> Figure:
    notes, backends = _backends(backends, pg_url)
    instances = [Instance(workdir, f"proof-{b}", b, pg_url) for b in backends]
    try:
        say(f"proofs: writing {entries:,} entries and their tree into {', '.join(backends)}")
        load_chain(instances, entries, checkpoint_every=1000)
        raw = {"entries": entries}
        for inst in instances:
            if inst.backend == "postgresql":
                with inst.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE audit_tree")
            raw[inst.backend] = proof_times(inst, entries, samples)
            say(f"proofs: {inst.backend} {raw[inst.backend]}")
        worst = max(max(raw[b]["inclusion_p50_ms"], raw[b]["consistency_p50_ms"]) for b in backends)
        return Figure(
            6,
            f"inclusion and consistency proof p50 at {entries:,} entries, ms (worst store)",
            worst,
            "< 10 ms",
            worst < 10,
            raw,
            notes,
        )
    finally:
        for inst in instances:
            inst.close()

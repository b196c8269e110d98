"""Figure 1: decision cost must not grow with the data (issue 3, decision 3).

A vendor_staff member reads an item: the full decision as ``items.read_content`` makes it (load
the item and its agreement, casbin, agreement active, item protected, NDA valid, need-to-know,
content not shredded, the audit entry queued) on a database of 100 items and on one of 100k items
with 10k need-to-know grants. Each decision runs in its own session and is rolled back rather
than committed: the trail's append is measured by figure 2, here only the decision is.

For contrast, a plain pycasbin Enforcer holding one policy row per item (the design the issue
rules out) is timed at 1k and 10k rows.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

import casbin

from bench.common import Figure, Instance, bulk_insert, median, say
from govern.actions import Action
from govern.context import Ctx, Principal, decide
from govern.models import Agreement, Item, Nda, NeedToKnow, User
from govern.services import items

GRANTS_PER_USER = 100


def seed(instance: Instance, n_items: int, n_grants: int) -> tuple[Principal, list[int]]:
    """An agreement, ``n_items`` items, staff with NDAs and ``n_grants`` need-to-know rows.

    Returns the measured staff member and the items it has need-to-know for."""
    staff_id, lead_id, agreement_id = instance.staff_and_agreement()
    day = instance.today()
    with instance.engine.begin() as conn:
        bulk_insert(
            conn,
            Item.__table__,
            [
                {
                    "agreement_id": agreement_id,
                    "title": f"item {i}",
                    "category": "design",
                    "status": "protected",
                    "size": 1,
                    "sha256": "0" * 64,
                    "nonce": b"n",
                    "ciphertext": b"c",
                    "wrapped_key": b"k",
                }
                for i in range(n_items)
            ],
        )
        item_ids = [r[0] for r in conn.execute(Item.__table__.select().with_only_columns(Item.id))]
        # Other staff hold the rest of the grants, GRANTS_PER_USER each, each with an NDA.
        others = max(0, (n_grants - GRANTS_PER_USER) // GRANTS_PER_USER)
        bulk_insert(
            conn,
            User.__table__,
            [{"username": f"other{i}", "password_hash": "-"} for i in range(others)],
        )
        other_ids = [
            r[0]
            for r in conn.execute(
                User.__table__.select()
                .with_only_columns(User.id)
                .where(User.username.like("other%"))
            )
        ]
        users = [staff_id] + other_ids
        bulk_insert(
            conn,
            Nda.__table__,
            [
                {
                    "agreement_id": agreement_id,
                    "user_id": uid,
                    "signed_on": day - timedelta(days=10),
                    "expires_on": day + timedelta(days=300),
                    "document_sha256": "1" * 64,
                    "registered_by": lead_id,
                }
                for uid in users
            ],
        )
        rnd = random.Random(3)
        grants, mine = [], []
        per_user = min(GRANTS_PER_USER, n_grants)
        for uid in users:
            for item_id in rnd.sample(item_ids, min(per_user, len(item_ids))):
                if len(grants) >= n_grants:
                    break
                grants.append(
                    {
                        "agreement_id": agreement_id,
                        "user_id": uid,
                        "item_id": item_id,
                        "reason": "maintenance",
                        "granted_by": lead_id,
                    }
                )
                if uid == staff_id:
                    mine.append(item_id)
        bulk_insert(conn, NeedToKnow.__table__, grants)
    return Principal("user", "staff", "staff", staff_id), mine


def one_decision(instance: Instance, principal: Principal, item_id: int) -> tuple[float, float]:
    """(seconds for the whole decision, seconds for decide() alone) for one read."""
    runtime = instance.runtime
    with runtime.sessions() as db:
        ctx = Ctx(runtime, db, principal, "bench", "127.0.0.1")
        t0 = time.perf_counter()
        item = db.get(Item, item_id)
        agreement = db.get(Agreement, item.agreement_id)
        t1 = time.perf_counter()
        decision = decide(
            ctx,
            Action.ITEM_READ,
            items.target(item),
            items.read_checks(ctx, item, agreement, ctx.today()),
        )
        t2 = time.perf_counter()
        if not decision.allowed or len(ctx.pending) != 1:
            raise RuntimeError(f"the benchmark read was not allowed: {decision.rule}")
        db.rollback()
    return t2 - t0, t2 - t1


def plain_casbin(rows: int, reps: int) -> float:
    """Median seconds per enforce() of a plain pycasbin Enforcer with one row per item."""
    model = casbin.Enforcer.new_model(
        text="""
[request_definition]
r = sub, obj, act
[policy_definition]
p = sub, obj, act
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = r.sub == p.sub && r.obj == p.obj && r.act == p.act
"""
    )
    enforcer = casbin.Enforcer(model)
    enforcer.add_policies([["staff", f"item:{i}", "read"] for i in range(rows)])
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        enforcer.enforce("staff", f"item:{rows - 1}", "read")
        times.append(time.perf_counter() - t0)
    return median(times)


def run(
    workdir,
    small_items: int = 100,
    big_items: int = 100_000,
    big_grants: int = 10_000,
    reps: int = 2000,
    rounds: int = 4,
    casbin_rows: tuple[int, ...] = (1000, 10_000),
) -> Figure:
    say(f"decision: seeding {small_items} items and {big_items:,} items / {big_grants:,} grants")
    small = Instance(workdir, "decide-small")
    big = Instance(workdir, "decide-big")
    try:
        t0 = time.perf_counter()
        p_small, ids_small = seed(small, small_items, max(1, small_items // 10))
        p_big, ids_big = seed(big, big_items, big_grants)
        say(f"decision: seeded in {time.perf_counter() - t0:.1f} s; measuring")
        rnd = random.Random(11)
        whole = {"small": [], "big": []}
        bare = {"small": [], "big": []}
        cases = [("small", small, p_small, ids_small), ("big", big, p_big, ids_big)]
        for case in cases:  # warm caches, the enforcer and the connection
            for _ in range(50):
                one_decision(case[1], case[2], rnd.choice(case[3]))
        # Interleaved rounds, so that a busy moment on the machine hits both sizes alike.
        for _ in range(rounds):
            for name, inst, principal, ids in cases:
                for _ in range(reps // rounds):
                    w, b = one_decision(inst, principal, rnd.choice(ids))
                    whole[name].append(w)
                    bare[name].append(b)
        ms = {k: median(v) * 1000 for k, v in whole.items()}
        ms_bare = {k: median(v) * 1000 for k, v in bare.items()}
        ratio = ms["big"] / ms["small"]
        raw = {
            "decision_ms_100_items": round(ms["small"], 4),
            "decision_ms_big": round(ms["big"], 4),
            "decide_only_ms_100_items": round(ms_bare["small"], 4),
            "decide_only_ms_big": round(ms_bare["big"], 4),
            "decide_only_ratio": round(ms_bare["big"] / ms_bare["small"], 3),
            "big_items": big_items,
            "big_need_to_know_rows": big_grants,
            "decisions_per_size": len(whole["small"]),
        }
        for rows in casbin_rows:
            raw[f"plain_casbin_ms_{rows}_rows"] = round(plain_casbin(rows, 20) * 1000, 3)
        return Figure(
            1,
            f"decision time, {big_items:,} items / {big_grants:,} need-to-know ÷ {small_items} items",
            ratio,
            "≤ 1.5",
            ratio <= 1.5,
            raw,
        )
    finally:
        small.close()
        big.close()

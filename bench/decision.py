"""Figure 1: decision cost must not grow with the data (issue 3, decision 3).

A vendor_staff member reads an item: the full decision as ``items.read_content`` makes it (load
the item and its agreement, the account's vendor organisation against the agreement's vendor,
casbin, agreement active, item protected, NDA valid, need-to-know, content not shredded, the audit
entry queued) on a database of 100 items and on one of 100k items with 10k need-to-know grants
spread over the agreements of 100 vendors, each vendor's staff in its own organisation. Each decision runs in its own session and is rolled back rather
than committed: the trail's append is measured by figure 2, here only the decision is.

For contrast, a plain pycasbin Enforcer holding one policy row per item (the design the issue
rules out) is timed at 1k and 10k rows.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

import casbin

from bench.common import VENDOR, Figure, Instance, bulk_insert, median, say
from govern.actions import Action
from govern.context import Ctx, Principal, decide
from govern.models import Agreement, Item, Nda, NeedToKnow, User
from govern.services import items

GRANTS_PER_USER = 100


def _agreements(conn, first_id: int, n_vendors: int) -> list[tuple[int, str]]:
    """The benchmark's agreement and ``n_vendors - 1`` more, each with a vendor of its own."""
    template = (
        conn.execute(Agreement.__table__.select().where(Agreement.id == first_id)).mappings().one()
    )
    rows = [
        {**{k: v for k, v in template.items() if k != "id"}, "vendor": f"{VENDOR} {i}"}
        for i in range(1, n_vendors)
    ]
    if rows:
        bulk_insert(conn, Agreement.__table__, rows)
    found = conn.execute(
        Agreement.__table__.select()
        .with_only_columns(Agreement.id, Agreement.vendor)
        .order_by(Agreement.id)
    )
    return [(r[0], r[1]) for r in found]


def seed(
    instance: Instance, n_items: int, n_grants: int, n_vendors: int = 1
) -> tuple[Principal, list[int]]:
    """Agreements of ``n_vendors`` vendors sharing ``n_items`` items, staff of each vendor with
    NDAs in their vendor's agreement and ``n_grants`` need-to-know rows over its items.

    Returns the measured staff member (of the first vendor) and the items it may read."""
    staff_id, lead_id, agreement_id = instance.staff_and_agreement()
    day = instance.today()
    with instance.engine.begin() as conn:
        deals = _agreements(conn, agreement_id, n_vendors)
        bulk_insert(
            conn,
            Item.__table__,
            [
                {
                    "agreement_id": deals[i % len(deals)][0],
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
        by_agreement: dict[int, list[int]] = {}
        for item_id, owner in conn.execute(
            Item.__table__.select().with_only_columns(Item.id, Item.agreement_id)
        ):
            by_agreement.setdefault(owner, []).append(item_id)
        # Other staff hold the rest of the grants, GRANTS_PER_USER each, each with an NDA, each in
        # one vendor's organisation and agreement, round-robin over the vendors.
        others = max(0, (n_grants - GRANTS_PER_USER) // GRANTS_PER_USER)
        bulk_insert(
            conn,
            User.__table__,
            [
                {
                    "username": f"other{i}",
                    "password_hash": "-",
                    "org": deals[(i + 1) % len(deals)][1],
                }
                for i in range(others)
            ],
        )
        other_ids = [
            r[0]
            for r in conn.execute(
                User.__table__.select()
                .with_only_columns(User.id)
                .where(User.username.like("other%"))
                .order_by(User.id)
            )
        ]
        users = [(staff_id, deals[0][0])] + [
            (uid, deals[(i + 1) % len(deals)][0]) for i, uid in enumerate(other_ids)
        ]
        bulk_insert(
            conn,
            Nda.__table__,
            [
                {
                    "agreement_id": aid,
                    "user_id": uid,
                    "signed_on": day - timedelta(days=10),
                    "expires_on": day + timedelta(days=300),
                    "document_sha256": "1" * 64,
                    "registered_by": lead_id,
                }
                for uid, aid in users
            ],
        )
        rnd = random.Random(3)
        grants, mine = [], []
        per_user = min(GRANTS_PER_USER, n_grants)
        for uid, aid in users:
            pool = by_agreement.get(aid, [])
            for item_id in rnd.sample(pool, min(per_user, len(pool))):
                if len(grants) >= n_grants:
                    break
                grants.append(
                    {
                        "agreement_id": aid,
                        "user_id": uid,
                        "item_id": item_id,
                        "reason": "maintenance",
                        "granted_by": lead_id,
                    }
                )
                if uid == staff_id:
                    mine.append(item_id)
        bulk_insert(conn, NeedToKnow.__table__, grants)
    return Principal("user", "staff", "staff", staff_id, VENDOR), mine


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
    big_vendors: int = 100,
    reps: int = 2000,
    rounds: int = 4,
    casbin_rows: tuple[int, ...] = (1000, 10_000),
) -> Figure:
    say(
        f"decision: seeding {small_items} items and {big_items:,} items / {big_grants:,} grants"
        f" / {big_vendors} vendors"
    )
    small = Instance(workdir, "decide-small")
    big = Instance(workdir, "decide-big")
    try:
        t0 = time.perf_counter()
        p_small, ids_small = seed(small, small_items, max(1, small_items // 10))
        p_big, ids_big = seed(big, big_items, big_grants, big_vendors)
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
            "big_vendors": big_vendors,
            "decisions_per_size": len(whole["small"]),
        }
        for rows in casbin_rows:
            raw[f"plain_casbin_ms_{rows}_rows"] = round(plain_casbin(rows, 20) * 1000, 3)
        return Figure(
            1,
            f"decision time, {big_items:,} items / {big_grants:,} need-to-know / "
            f"{big_vendors} vendors ÷ {small_items} items",
            ratio,
            "≤ 1.5",
            ratio <= 1.5,
            raw,
        )
    finally:
        small.close()
        big.close()

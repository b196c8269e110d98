"""A policy change is seen at once, even while other threads are deciding on the old rules."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from govern import policy
from govern.db import make_engine
from govern.policy import GLOBAL, PolicyEngine


def test_a_verdict_on_old_rules_never_outlives_a_reload(database_url):
    # Regression: refresh() replaced the enforcer and then the verdict cache in two steps, so a
    # decision computed on the old enforcer by another thread could be stored in the new cache
    # and answer for the new rules until the next change. Here threads decide without pause
    # while the role is given and taken away; after each reload the answer must be the new one.
    engine = make_engine(database_url)
    rules = PolicyEngine(engine)
    with sa.orm.Session(engine) as db:
        rules.refresh(db)
    stop = threading.Event()
    errors: list[BaseException] = []

    def decide_forever():
        try:
            while not stop.is_set():
                rules.check("zhang", GLOBAL, "agreement", "list")
                rules.may_ever("zhang", "agreement", "list")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    deciders = [threading.Thread(target=decide_forever) for _ in range(3)]
    for t in deciders:
        t.start()
    try:
        for round_ in range(60):
            holds = round_ % 2 == 0
            with sa.orm.Session(engine) as db:
                if holds:
                    policy.assign_role(db, "zhang", "office_approver")
                else:
                    policy.unassign_role(db, "zhang", "office_approver")
                db.commit()
                rules.refresh(db)
            assert rules.check("zhang", GLOBAL, "agreement", "list").allowed is holds, round_
            assert rules.may_ever("zhang", "agreement", "list") is holds, round_
    finally:
        stop.set()
        for t in deciders:
            t.join()
        engine.dispose()
    assert errors == []

"""A policy change is seen at once, even while other threads are deciding on the old rules."""

from __future__ import annotations

import ast
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


def test_threads_deciding_at_once_never_parse_the_matcher(database_url, monkeypatch):
    """casbin parsed its matcher with ast.parse on every decision, and CPython 3.11's AST
    constructor keeps a recursion counter that all threads share: two threads parsing at once
    failed a decision here with SystemError (a failure of the test above in a full run). The
    matcher is parsed once; after that no decision, in any thread, parses anything."""
    engine = make_engine(database_url)
    rules = PolicyEngine(engine)
    with sa.orm.Session(engine) as db:
        policy.assign_role(db, "zhang", "office_approver")
        db.commit()
        rules.refresh(db)
    enforcer = rules._snapshot.enforcer
    assert enforcer.enforce("office_approver", GLOBAL, "agreement", "list")  # parsed once here
    parsed: list[str] = []
    parse = ast.parse
    monkeypatch.setattr(
        ast, "parse", lambda source, *a, **kw: (parsed.append(source), parse(source, *a, **kw))[1]
    )
    answers: list[tuple[bool, bool]] = []

    def decide():
        for _ in range(200):
            allowed = enforcer.enforce("office_approver", GLOBAL, "agreement", "list")
            refused = enforcer.enforce("vendor_staff", GLOBAL, "agreement", "create")
            answers.append((allowed, refused))

    threads = [threading.Thread(target=decide) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    assert parsed == []
    assert answers == [(True, False)] * 800

"""Issue 13, part 3: no global lock held across a commit (group commit of the trail).

On PostgreSQL each unit of work queues its entries with its change and commits; whoever finds the
sequencer's lock free integrates everything queued (govern.audit.integrate). These tests hold
that: many workers in several processes (as several gunicorn masters would be) make one gapless
chain with each entry exactly once; a worker killed in the middle of integrating, or an
integration that fails, loses nothing and the next integration takes the entries; a read of the
trail waits for an integrator at work instead of reading around it. That an action whose entry
cannot be queued does not happen is test_policy_audit's fail-closed test, on both stores.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from govern import audit
from govern.actions import Action
from govern.config import load_settings
from govern.context import Principal, Target, decide
from govern.runtime import build_runtime, unit_of_work
from govern.services import trail
from tests.conftest import Api

FORK = multiprocessing.get_context("fork")
STAFF = Principal("user", "staff", "staff", None)


def _reads(overrides: dict, agreement_id: int, marks: list[str], threads: int = 1) -> None:
    """A worker process of its own (its own engine and pool, as another gunicorn master would
    have): one audited decision per mark, each mark in the entry's details, over ``threads``."""
    runtime = build_runtime(load_settings(overrides))
    target = Target("agreement", agreement_id, f"agreement:{agreement_id}")

    def work(mine):
        for mark in mine:
            with unit_of_work(runtime, STAFF) as ctx:
                decide(ctx, Action.AGREEMENT_READ, target).record(mark=mark)

    workers = [threading.Thread(target=work, args=(marks[k::threads],)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def _queued(runtime) -> int:
    with runtime.engine.connect() as conn:
        return conn.scalar(sa.text("SELECT count(*) FROM audit_queue"))


def _head(runtime) -> int:
    with runtime.engine.connect() as conn:
        return conn.scalar(sa.text("SELECT seq FROM audit_head WHERE id = 1"))


def _marks(office: Api) -> Counter:
    """How many times each mark is in the chain, as the auditor's API reads it (which integrates
    whatever is queued first)."""
    found: Counter = Counter()
    cursor = None
    while True:
        query = "action=agreement:read&limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = office.get(f"/api/v1/audit?{query}", "audit").get_json()
        found.update(e["details"].get("mark") for e in page["entries"])
        cursor = page["next_cursor"]
        if not cursor:
            return found


def _verified(office: Api) -> dict:
    result = office.get("/api/v1/audit/verify", "audit").get_json()
    seqs = [e["seq"] for e in office.audit_entries()]
    assert seqs == list(range(1, len(seqs) + 1))
    return result


def _pg(runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite sequences in the unit of work's own transaction: nothing is queued")


def _wait_for_lock_wait(runtime, like: str) -> int:
    """The backend pid of the session now waiting for a lock on a statement like ``like``."""
    deadline = time.monotonic() + 60
    with runtime.engine.connect() as conn:
        while time.monotonic() < deadline:
            pid = conn.scalar(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE :like"
                ),
                {"like": like},
            )
            conn.rollback()
            if pid is not None:
                return pid
    raise AssertionError(f"no session came to wait on {like}")


def test_workers_in_several_processes_make_one_gapless_chain(office, runtime, settings_overrides):
    agreement = office.agreement()
    procs, threads, each = 4, 2, 40
    expected = {f"{p}-{i}" for p in range(procs) for i in range(each)}
    children = [
        FORK.Process(
            target=_reads,
            args=(
                settings_overrides,
                agreement["id"],
                sorted(m for m in expected if m[0] == str(p)),
            ),
            kwargs={"threads": threads},
        )
        for p in range(procs)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
        assert child.exitcode == 0
    # Every worker has returned, and none left an entry behind in the queue: a worker that
    # found the lock taken leaves its entries to the holder, who looks again after its commit.
    if runtime.engine.dialect.name == "postgresql":
        assert _queued(runtime) == 0
    assert _marks(office) == Counter({m: 1 for m in expected})
    assert _verified(office)["ok"] is True


def test_a_worker_killed_while_integrating_loses_nothing(office, runtime, settings_overrides):
    _pg(runtime)
    agreement = office.agreement()
    size = _head(runtime)
    # Another session holds the place of the tree's next leaf, uncommitted: the worker's
    # integration gets as far as the tree and waits there, its batch taken off the queue.
    with runtime.engine.connect() as blocker:
        blocker.execute(
            sa.text("INSERT INTO audit_tree (level, idx, hash) VALUES (0, :i, :h)"),
            {"i": size, "h": b"\0" * 32},
        )
        child = FORK.Process(target=_reads, args=(settings_overrides, agreement["id"], ["killed"]))
        child.start()
        _wait_for_lock_wait(runtime, "INSERT INTO audit_tree%")
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode == -signal.SIGKILL
        blocker.rollback()
    # The action was committed with its queued entry before the integration began, and the
    # killed integration's transaction never committed: the entry is still queued.
    assert _queued(runtime) == 1
    assert _marks(office) == Counter({"killed": 1})
    assert _queued(runtime) == 0
    assert _verified(office)["ok"] is True


def test_entries_queued_while_another_worker_integrates_are_taken_by_it(
    office, runtime, settings_overrides
):
    _pg(runtime)
    agreement = office.agreement()
    size = _head(runtime)
    with runtime.engine.connect() as blocker:
        # Hold the integrating worker in the middle of its batch (see above).
        blocker.execute(
            sa.text("INSERT INTO audit_tree (level, idx, hash) VALUES (0, :i, :h)"),
            {"i": size, "h": b"\0" * 32},
        )
        child = FORK.Process(target=_reads, args=(settings_overrides, agreement["id"], ["first"]))
        child.start()
        _wait_for_lock_wait(runtime, "INSERT INTO audit_tree%")
        # Another worker acts now: the lock is taken, so it queues and goes on, leaving its
        # entry to the worker that holds the lock.
        assert office.get("/api/v1/agreements", "approver").status_code == 200
        assert _queued(runtime) == 2  # the batch in progress is not committed yet
        blocker.rollback()
        child.join()
        assert child.exitcode == 0
    # The holder looked at the queue again after its commit and took the late entry too: nothing
    # is left behind, though no one has read the trail yet.
    assert _queued(runtime) == 0
    listed = office.audit_entries(action="agreement:list", actor="approver")
    assert len(listed) == 1
    assert _marks(office) == Counter({"first": 1})
    assert _verified(office)["ok"] is True


def _break(runtime, table: str) -> None:
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION govern_test_refuse() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'disk full'; END; $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql(
            f"CREATE TRIGGER govern_test_refuse BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION govern_test_refuse()"
        )


def _mend(runtime, table: str) -> None:
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS govern_test_refuse ON {table}")


@pytest.mark.parametrize("table", ["audit_entries", "audit_tree"])
def test_a_failing_integration_leaves_the_entries_for_the_next(office, runtime, table):
    _pg(runtime)
    agreement = office.agreement()
    item = office.item(agreement["id"], content=b"the drawing")
    office.login("approver")
    before = _head(runtime)
    _break(runtime, table)
    try:
        # The read's entry is durable (queued, committed with it) before the bytes leave.
        read = office.get(f"/api/v1/items/{item['id']}/content", "approver")
        assert read.status_code == 200 and read.data == b"the drawing"
        assert _queued(runtime) >= 1
        # Meanwhile the trail still verifies: what is queued is outside its head.
        result = office.get("/api/v1/audit/verify", "audit").get_json()
        assert result["ok"] is True and result["entries"] == _head(runtime)
    finally:
        _mend(runtime, table)
    # The next integration (here the auditor's read) takes everything that was queued.
    reads = office.get("/api/v1/audit?action=item:read&actor=approver", "audit").get_json()
    assert [e["target"] for e in reads["entries"]] == [f"item:{item['id']}"]
    assert _queued(runtime) == 0 and _head(runtime) > before
    assert _verified(office)["ok"] is True


def test_a_read_of_the_trail_waits_for_the_integrator_at_work(office, runtime):
    _pg(runtime)
    office.agreement()
    search = "/api/v1/audit?action=agreement:list&actor=approver"
    before = len(office.get(search, "audit").get_json()["entries"])
    found = {}
    with runtime.engine.connect() as integrator:
        # As an integrator in the middle of its batch: the sequencer's lock is held.
        integrator.execute(sa.text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        # An action does not wait for it: its entry is queued, committed, and the action done.
        assert office.get("/api/v1/agreements", "approver").status_code == 200
        assert _queued(runtime) == 1

        def auditor():
            found["entries"] = office.get(search, "audit").get_json()["entries"]

        reader = threading.Thread(target=auditor)
        reader.start()
        _wait_for_lock_wait(runtime, "%audit_head%FOR UPDATE%")
        integrator.rollback()
        reader.join()
    # The auditor's read waited for the lock and integrated the queued entry before reading.
    assert len(found["entries"]) == before + 1
    assert _queued(runtime) == 0
    assert _verified(office)["ok"] is True


def test_verify_while_workers_append_sees_one_consistent_trail(office, runtime, settings_overrides):
    agreement = office.agreement()
    marks = [f"v-{i}" for i in range(150)]
    child = FORK.Process(
        target=_reads, args=(settings_overrides, agreement["id"], marks), kwargs={"threads": 2}
    )
    child.start()
    results = []
    while child.is_alive() or not results:
        results.append(office.get("/api/v1/audit/verify", "audit").get_json())
        # The command line's `--jobs 2`: ranges walked by two processes of their own.
        with unit_of_work(runtime) as ctx, trail._snapshot(ctx) as conn:
            url = runtime.settings.database_url
            walked = audit.verify_parallel(conn, url, runtime.keys, 2, min_per_job=1)
            results.append({**walked.as_dict(), "jobs": 2})
    child.join()
    assert child.exitcode == 0
    # Every verification ran against the trail as one moment held it, whatever was appended
    # meanwhile: none saw a head that did not match its entries.
    assert [r for r in results if not r["ok"]] == []
    assert _marks(office) == Counter({m: 1 for m in marks})


def test_a_queue_longer_than_a_batch_is_integrated_whole(office, runtime):
    _pg(runtime)
    office.agreement()
    with runtime.engine.connect() as integrator:
        integrator.execute(sa.text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        for _ in range(7):
            assert office.get("/api/v1/agreements", "approver").status_code == 200
        assert _queued(runtime) == 7
        integrator.rollback()
    with runtime.sessions() as db:
        taken = audit.integrate(db, runtime.keys.checkpoint_key, 1000, wait=True, batch=3)
    assert taken == 7 and _queued(runtime) == 0
    assert len(office.audit_entries(action="agreement:list", actor="approver")) == 7
    assert _verified(office)["ok"] is True

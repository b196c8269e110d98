"""Issue 13, part 3: no global lock held across a commit (group commit of the trail).

On PostgreSQL each unit of work queues its entries with its change and commits; whoever finds the
sequencer's lock free integrates everything queued (govern.audit.integrate): by default each
process's background integrator, poked after the commit (govern.integrator); with
GOVERN_TRAIL_INTEGRATE=inline the request itself. These tests hold that: an audited action only
queues, and the integrator moves its entry into the chain without anyone reading the trail; a
forked worker gets an integrator of its own; many workers in several processes (as several
gunicorn masters would be) make one gapless chain with each entry exactly once, in either mode; a
worker killed in the middle of integrating, or an integration that fails, loses nothing and the
next integration takes the entries; a read of the trail waits for an integrator at work instead
of reading around it. That an action whose entry cannot be queued does not happen is
test_policy_audit's fail-closed test, on both stores.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from govern import audit, integrator
from govern.actions import Action
from govern.config import load_settings
from govern.context import Principal, Target, decide
from govern.runtime import build_runtime, unit_of_work
from govern.services import trail
from tests.conftest import Api
from tests.test_policy_audit import _break_appends, _mend_appends

FORK = multiprocessing.get_context("fork")
# Workers that run on either store are forked by a fork server, not by this process: its own
# integrator threads may be inside SQLite at that moment, holding a lock of the driver that a
# forked child would inherit held (govern.audit.verify_parallel does the same).
WORKERS = multiprocessing.get_context("forkserver")
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
    _drain(runtime)


def _drain(runtime) -> None:
    """As a worker that stays up after its requests: wait (after each of its integrator's rounds)
    until nothing is queued any more, by this process's integrator or another's. A process that
    exits at once leaves its entries queued, durable, for the next integration anywhere."""
    background = runtime.settings.trail_integrate == "background"
    if background:
        assert integrator.of(runtime).wait_for(lambda: _queued(runtime) == 0, timeout=60)


def _settle(runtime) -> None:
    """Integrate whatever is queued now, waiting for the lock, as every read of the trail does."""
    with unit_of_work(runtime) as ctx:
        ctx.settle_trail()


def _emptied(runtime) -> None:
    """Nothing stays queued: a read of the trail queues its own entry after it has read, and this
    process's integrator takes that one (waited for round by round, not slept for)."""
    assert integrator.of(runtime).wait_for(lambda: _queued(runtime) == 0, timeout=10)


def _inline(runtime) -> None:
    """This test's app integrates in its requests (GOVERN_TRAIL_INTEGRATE=inline) and its
    integrator thread is stopped, so that who integrates what is the test's to arrange."""
    integrator.stop_all()
    runtime.settings = dataclasses.replace(runtime.settings, trail_integrate="inline")
    _settle(runtime)


def _with(overrides: dict, mode: str) -> dict:
    return {**overrides, "trail_integrate": mode}


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
        pytest.skip("PostgreSQL's sequencer lock: the head row, FOR UPDATE (SKIP LOCKED)")


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


@pytest.mark.parametrize("mode", ["background", "inline"])
def test_workers_in_several_processes_make_one_gapless_chain(
    office, runtime, settings_overrides, mode
):
    agreement = office.agreement()
    if mode == "inline":
        _inline(runtime)  # no integrator thread here either to take what the workers leave
    procs, threads, each = 4, 2, 40
    expected = {f"{p}-{i}" for p in range(procs) for i in range(each)}
    children = [
        WORKERS.Process(
            target=_reads,
            args=(
                _with(settings_overrides, mode),
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
    # found the lock taken leaves its entries to the holder, who looks again after its commit
    # (inline: the requests themselves; background: each worker's integrator, waited for).
    assert _queued(runtime) == 0
    assert _marks(office) == Counter({m: 1 for m in expected})
    assert _verified(office)["ok"] is True


@contextmanager
def _integration_held(runtime, overrides: dict, agreement_id: int, mark: str):
    """A worker process (``overrides``: its integration mode) that reads and integrates, held in
    the middle of its batch: another session holds the place of the tree's next leaf,
    uncommitted, so the integration gets as far as the tree and waits there, its batch taken off
    the queue. Yields the process; the blocker lets go when the block ends."""
    size = _head(runtime)
    with runtime.engine.connect() as blocker:
        blocker.execute(
            sa.text("INSERT INTO audit_tree (level, idx, hash) VALUES (0, :i, :h)"),
            {"i": size, "h": b"\0" * 32},
        )
        child = WORKERS.Process(target=_reads, args=(overrides, agreement_id, [mark]))
        child.start()
        _wait_for_lock_wait(runtime, "%audit_tree (level, idx, hash)%")  # COPY or INSERT
        yield child
        blocker.rollback()


@pytest.mark.parametrize("mode", ["background", "inline"])
def test_a_worker_killed_while_integrating_loses_nothing(office, runtime, settings_overrides, mode):
    _pg(runtime)
    agreement = office.agreement()
    _inline(runtime)  # the worker (its integrator or its request) is the one integrating
    overrides = _with(settings_overrides, mode)
    with _integration_held(runtime, overrides, agreement["id"], "killed") as child:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode == -signal.SIGKILL
    # The action was committed with its queued entry before the integration began, and the
    # killed integration's transaction never committed: the entry is still queued.
    assert _queued(runtime) == 1
    assert _marks(office) == Counter({"killed": 1})
    assert _queued(runtime) == 0
    assert _verified(office)["ok"] is True


@pytest.mark.parametrize("mode", ["background", "inline"])
def test_entries_queued_while_another_worker_integrates_are_taken_by_it(
    office, runtime, settings_overrides, mode
):
    _pg(runtime)
    agreement = office.agreement()
    _inline(runtime)  # this app's request finds the lock taken and leaves its entry
    overrides = _with(settings_overrides, mode)
    with _integration_held(runtime, overrides, agreement["id"], "first") as child:
        # Another worker acts now: the lock is taken, so it queues and goes on, leaving its
        # entry to the worker that holds the lock.
        assert office.get("/api/v1/agreements", "approver").status_code == 200
        assert _queued(runtime) == 2  # the batch in progress is not committed yet
    child.join()
    assert child.exitcode == 0
    # The holding worker took the late entry too (inline: it looked at the queue again after its
    # commit; background: its integrator's next round, at the latest its safety round, while the
    # worker stayed up): nothing is left behind, though no one has read the trail yet.
    assert _queued(runtime) == 0
    listed = office.audit_entries(action="agreement:list", actor="approver")
    assert len(listed) == 1
    assert _marks(office) == Counter({"first": 1})
    assert _verified(office)["ok"] is True


@pytest.mark.parametrize("table", ["audit_entries", "audit_tree"])
def test_a_failing_integration_leaves_the_entries_for_the_next(office, runtime, table):
    _pg(runtime)
    agreement = office.agreement()
    item = office.item(agreement["id"], content=b"the drawing")
    office.login("approver")
    before = _head(runtime)
    _break_appends(runtime, table)
    try:
        # The read's entry is durable (queued, committed with it) before the bytes leave.
        read = office.get(f"/api/v1/items/{item['id']}/content", "approver")
        assert read.status_code == 200 and read.data == b"the drawing"
        assert _queued(runtime) >= 1
        # Meanwhile the trail still verifies: what is queued is outside its head.
        result = office.get("/api/v1/audit/verify", "audit").get_json()
        assert result["ok"] is True and result["entries"] == _head(runtime)
    finally:
        _mend_appends(runtime, table)
    # The next integration (here the auditor's read) takes everything that was queued.
    reads = office.get("/api/v1/audit?action=item:read&actor=approver", "audit").get_json()
    assert [e["target"] for e in reads["entries"]] == [f"item:{item['id']}"]
    _emptied(runtime)
    assert _head(runtime) > before
    assert _verified(office)["ok"] is True


def test_a_read_of_the_trail_waits_for_the_integrator_at_work(office, runtime):
    _pg(runtime)
    office.agreement()
    search = "/api/v1/audit?action=agreement:list&actor=approver"
    before = len(office.get(search, "audit").get_json()["entries"])
    _settle(runtime)  # the search's own entry too, so that only the next action's is queued
    found = {}
    with runtime.engine.connect() as holder:
        # As an integrator in the middle of its batch: the sequencer's lock is held.
        holder.execute(sa.text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        # An action does not wait for it: its entry is queued, committed, and the action done.
        assert office.get("/api/v1/agreements", "approver").status_code == 200
        assert _queued(runtime) == 1

        def auditor():
            found["entries"] = office.get(search, "audit").get_json()["entries"]

        reader = threading.Thread(target=auditor)
        reader.start()
        _wait_for_lock_wait(runtime, "%audit_head%FOR UPDATE%")
        holder.rollback()
        reader.join()
    # The auditor's read waited for the lock and integrated the queued entry before reading.
    assert len(found["entries"]) == before + 1
    _emptied(runtime)
    assert _verified(office)["ok"] is True


def test_verify_while_workers_append_sees_one_consistent_trail(office, runtime, settings_overrides):
    agreement = office.agreement()
    marks = [f"v-{i}" for i in range(150)]
    # From the fork server, like the other workers here: a child forked from this process while
    # its integrator thread is inside SQLite inherits SQLite's record of that thread's locks
    # (SQLite forbids carrying a connection across fork). The likely cause of one full-suite
    # failure: nothing integrated for a minute, then "database is locked" after the writer
    # lock's and SQLite's 30 s waits.
    child = WORKERS.Process(
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
    office.login("approver")
    _inline(runtime)  # the integration below is the test's own
    with runtime.engine.connect() as holder:
        holder.execute(sa.text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        for _ in range(7):
            assert office.get("/api/v1/agreements", "approver").status_code == 200
        assert _queued(runtime) == 7
        holder.rollback()
    with runtime.sessions() as db:
        taken = audit.integrate(db, runtime.keys.checkpoint_key, 1000, wait=True, batch=3)
    assert taken == 7 and _queued(runtime) == 0
    assert len(office.audit_entries(action="agreement:list", actor="approver")) == 7
    assert _verified(office)["ok"] is True


def _statements_of_this_thread(runtime, seen: list[str]):
    """Record the statements this thread sends (the test client serves a request in it); the
    integrator thread's are not the request's."""
    me = threading.get_ident()

    def record(_conn, _cursor, statement, *_args):
        if threading.get_ident() == me:
            seen.append(" ".join(statement.split()))

    return record


def test_an_action_only_queues_and_the_integrator_takes_it(office, runtime):
    _pg(runtime)
    office.agreement()
    office.login("approver")
    _settle(runtime)
    before = _head(runtime)
    seen: list[str] = []
    record = _statements_of_this_thread(runtime, seen)
    with runtime.engine.connect() as holder:
        # The sequencer's lock is held meanwhile, so that what the request left is still there
        # to see when it returns (the integrator, poked, finds the lock taken and leaves it).
        holder.execute(sa.text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        sa.event.listen(runtime.engine, "before_cursor_execute", record)
        try:
            assert office.get("/api/v1/agreements", "approver").status_code == 200
        finally:
            sa.event.remove(runtime.engine, "before_cursor_execute", record)
        # The entry is committed in the queue when the response is out, and the request did
        # nothing else for the trail: no head taken, no second transaction.
        assert _queued(runtime) == 1 and _head(runtime) == before
        trail = [s for s in seen if "audit_" in s]
        assert len(trail) == 1 and trail[0].startswith("INSERT INTO audit_queue"), seen
        holder.rollback()
    # Nobody reads the trail: this process's integrator takes the entry on its own (its next
    # round, at the latest its safety round a second later).
    mine = integrator.of(runtime)
    assert mine.pid == os.getpid() and mine.thread.is_alive()
    assert mine.wait_for(lambda: _head(runtime) == before + 1, timeout=10)
    assert _queued(runtime) == 0
    # Poked by the next action, it takes that one's entry as well.
    assert office.get("/api/v1/agreements", "approver").status_code == 200
    assert mine.wait_for(lambda: _head(runtime) == before + 2, timeout=10)
    assert mine.integrated >= 2
    listed = office.audit_entries(action="agreement:list", actor="approver")
    assert len(listed) == 2
    assert _verified(office)["ok"] is True


def _read_in_child(runtime, agreement_id: int) -> None:
    """A forked worker using the runtime it inherited (as a gunicorn worker forked from a master
    that loaded the app): its own integrator must serve it, not the parent's object."""
    # SQLAlchemy's rule for a forked process: never use the parent's pooled connections.
    runtime.engine.dispose(close=False)
    inherited = runtime.integrator
    assert inherited is not None and inherited.pid != os.getpid()
    target = Target("agreement", agreement_id, f"agreement:{agreement_id}")
    with unit_of_work(runtime, STAFF) as ctx:
        decide(ctx, Action.AGREEMENT_READ, target).record(mark="child")
    mine = runtime.integrator
    assert mine is not inherited and mine.pid == os.getpid() and mine.thread.is_alive()
    # The parent's integrator is stopped: only the child's own can move the entry.
    assert mine.wait_for(lambda: mine.integrated == 1, timeout=10)
    assert _queued(runtime) == 0


def test_a_forked_worker_gets_an_integrator_of_its_own(office, runtime):
    _pg(runtime)
    agreement = office.agreement()
    parent = runtime.integrator
    assert parent is not None and parent.pid == os.getpid()
    # Stopped, but left in place on the runtime: the child inherits it as a gunicorn worker
    # inherits the master's, and must not use it.
    parent.stop()
    _settle(runtime)
    child = FORK.Process(target=_read_in_child, args=(runtime, agreement["id"]))
    child.start()
    child.join()
    assert child.exitcode == 0
    assert _marks(office) == Counter({"child": 1})
    assert _verified(office)["ok"] is True


def test_inline_integration_puts_the_entry_in_the_chain_before_the_request_returns(
    office, runtime, settings_overrides, monkeypatch
):
    monkeypatch.setenv("GOVERN_TRAIL_INTEGRATE", "inline")
    assert load_settings(settings_overrides).trail_integrate == "inline"
    monkeypatch.setenv("GOVERN_TRAIL_INTEGRATE", "sideways")
    with pytest.raises(ValueError, match="GOVERN_TRAIL_INTEGRATE"):
        load_settings(settings_overrides)
    monkeypatch.delenv("GOVERN_TRAIL_INTEGRATE")
    assert load_settings(settings_overrides).trail_integrate == "background"
    _pg(runtime)
    agreement = office.agreement()
    integrator.stop_all()  # nobody else integrates meanwhile
    _settle(runtime)
    before = _head(runtime)
    inline = build_runtime(load_settings(_with(settings_overrides, "inline")))
    try:
        target = Target("agreement", agreement["id"], f"agreement:{agreement['id']}")
        with unit_of_work(inline, STAFF) as ctx:
            decide(ctx, Action.AGREEMENT_READ, target).record(mark="inline")
        # In the chain as the unit of work returns, by the request itself: no thread started.
        assert _head(runtime) == before + 1 and _queued(runtime) == 0
        assert inline.integrator is None
    finally:
        inline.engine.dispose()
    assert _marks(office) == Counter({"inline": 1})
    assert _verified(office)["ok"] is True


def test_the_integrator_takes_the_requests_of_one_batch_interval_in_one_transaction(
    office, runtime, settings_overrides
):
    """Group commit: entries queued within the batch interval after a poke join the chain in one
    round (one transaction, one WAL flush), not one round per request."""
    _pg(runtime)
    agreement = office.agreement()
    integrator.stop_all()  # this test's runtime alone integrates
    _settle(runtime)
    before = _head(runtime)
    # A long interval, so that five units of work surely fall into the first one.
    batched = build_runtime(load_settings({**settings_overrides, "trail_batch_ms": 2000}))
    try:
        target = Target("agreement", agreement["id"], f"agreement:{agreement['id']}")
        for n in range(5):
            with unit_of_work(batched, STAFF) as ctx:
                decide(ctx, Action.AGREEMENT_READ, target).record(mark=f"batch-{n}")
        mine = batched.integrator
        assert mine is not None and mine.batch_seconds == 2.0
        assert _queued(runtime) == 5 and _head(runtime) == before  # still gathering
        # The round that integrated first took all five, in one transaction. (Which round that
        # is may vary: a safety round that finds the queue empty, or a round that found the
        # lock taken, counts as a round too.)
        first: list[tuple[int, int]] = []

        def all_in() -> bool:
            if mine.integrated and not first:
                first.append((mine.rounds, mine.integrated))
            return mine.integrated == 5

        assert mine.wait_for(all_in, timeout=30)
        assert [integrated for _, integrated in first] == [5], first
        assert _head(runtime) == before + 5 and _queued(runtime) == 0
    finally:
        integrator.stop_all()
        batched.engine.dispose()
    assert _marks(office) == Counter({f"batch-{n}": 1 for n in range(5)})
    assert _verified(office)["ok"] is True


def test_a_stop_does_not_wait_out_the_batch_interval_and_leaves_the_batch_queued(
    office, runtime, settings_overrides
):
    """A worker shutting down (or an app disposed) stops its integrator while it gathers a batch:
    the thread ends at once instead of sleeping out the interval, and what it was gathering stays
    queued for the next integration, not lost."""
    agreement = office.agreement()
    integrator.stop_all()
    _settle(runtime)
    before = _head(runtime)
    # An interval far longer than the join below waits: a stop that slept it out would fail.
    gathering = build_runtime(load_settings({**settings_overrides, "trail_batch_ms": 600_000}))
    try:
        target = Target("agreement", agreement["id"], f"agreement:{agreement['id']}")
        with unit_of_work(gathering, STAFF) as ctx:
            decide(ctx, Action.AGREEMENT_READ, target).record(mark="gathered")
        mine = gathering.integrator
        assert mine is not None and mine.thread.is_alive()
        mine.stop(timeout=20)
        assert not mine.thread.is_alive()
        assert mine.integrated == 0 and _queued(runtime) == 1 and _head(runtime) == before
    finally:
        integrator.stop_all()
        gathering.engine.dispose()
    # The next integration (here: the read of the trail) takes it.
    assert _marks(office) == Counter({"gathered": 1})
    assert _verified(office)["ok"] is True


def _queue_size(runtime) -> int:
    """The queue's table, without its index. A vacuum frees the index's entries too, but
    PostgreSQL (15 here) reuses an emptied index page only once no transaction of *any*
    database could still be on its way to it: under a parallel suite another test session's
    database keeps that from happening for a while (seen here: at -n 2 the index grew by a page
    a batch, vacuumed, while the table stayed at 0-64 KB). The table's dead rows are reclaimed
    against this database's transactions only, which the test controls."""
    with runtime.engine.connect() as conn:
        return conn.scalar(sa.text("SELECT pg_relation_size('audit_queue')"))


def test_the_integrator_keeps_the_queue_from_growing(office, runtime):
    """Every queued entry is inserted once and deleted once: on PostgreSQL the queue would keep
    every deleted row (and its index entry) until a vacuum, and grow with each entry ever
    queued. The integrator vacuums it after every so many entries it took, whether or not the
    server's autovacuum runs (it does not on the suite's server)."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite puts a deleted row's page back on the file's free list itself")
    integrator.stop_all()
    _settle(runtime)
    before = _head(runtime)
    mine = integrator.Integrator(runtime, batch_seconds=0, vacuum_every=1000)
    mine.start()
    batch = [
        audit.PendingEntry(
            "staff", "vendor_staff", "item:read", f"item:{n}", "allow", "r", "q", "c"
        )
        for n in range(500)
    ]
    sizes = []
    try:
        for n in range(16):
            with runtime.sessions() as db:
                audit.queue_entries(db, batch)
                db.commit()
            mine.poke()
            assert mine.wait_for(lambda n=n: mine.integrated == 500 * (n + 1), timeout=30)
            sizes.append(_queue_size(runtime))
    finally:
        mine.stop()
    # 8,000 entries went through it, and it stopped growing: the second 4,000 left it no larger
    # than the first did (without the vacuum it grows with every batch, 16 times over).
    assert max(sizes[8:]) <= max(sizes[:8]), sizes
    assert mine.vacuums == 8
    assert _head(runtime) == before + 8000 and _queued(runtime) == 0
    assert _verified(office)["ok"] is True


# Every character a bulk load must escape or could misread: PostgreSQL's COPY text format takes a
# tab as the column separator, a newline as the end of the row, a backslash as an escape and \N
# as NULL; and what is neither ASCII nor one code unit.
ODD = "t\tn\nr\rb\\ \\N \\. \\x41 'q' \"d\" ,;| 中文\U0001f600\\"


@pytest.mark.parametrize("count", [2, 20], ids=["few", "batch"])
def test_entries_with_every_character_a_bulk_load_escapes_are_chained_as_written(
    office, runtime, count
):
    """Integration loads a batch's entries in one statement (PostgreSQL: a few rows by an INSERT's
    VALUES list, more by COPY in its text format). Entries whose every text field carries those
    characters come back from the trail exactly as they were queued, and the chain's hashes,
    computed over the queued text, still verify."""
    office.agreement()
    integrator.stop_all()
    _settle(runtime)
    fields = ("actor", "role", "action", "target", "decision", "rule", "request_id", "client")
    queued = [
        audit.PendingEntry(
            *(("allow" if f == "decision" else f"{f[:2]}{n:02} {ODD}") for f in fields),
            details={"mark": f"{n} {ODD}"},
        )
        for n in range(count)
    ]
    with runtime.sessions() as db:
        audit.queue_entries(db, queued)
        db.commit()
    _settle(runtime)
    assert _queued(runtime) == 0
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT {', '.join(fields)}, details FROM audit_entries WHERE actor LIKE :a"),
            {"a": "ac__ %"},
        ).all()
    assert sorted(tuple(r) for r in rows) == [
        (*(e.row()[f] for f in fields), e.row()["details"]) for e in queued
    ]
    assert _verified(office)["ok"] is True

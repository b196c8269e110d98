"""SQLite's writers queue for one another (govern.db): a second writer waits for the first one's
commit on the database's writer lock and is then served, instead of sleeping in SQLite's busy
handler between tries (1, 2, 5, 10... ms: the p99 of two workers appending to one trail).

In each test SQLite itself gives up after 0.1 s (``busy_timeout=100``) while the first writer
holds its transaction for longer: a second writer that went straight to SQLite's own lock would
fail with "database is locked". So a second writer that is still waiting when the first commits,
then succeeds with its row after the first one's, waited on govern's lock, in another thread or
in a forked process (as a second gunicorn worker is), which must not share the parent's lock.
SQLite only: PostgreSQL has row
locks and no busy handler.
"""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
import sqlalchemy as sa

from govern.db import make_engine

FORK = multiprocessing.get_context("fork")


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'writers.db'}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    yield engine
    engine.dispose()


def _second_writer(url: str, go, trying, finished, report) -> None:
    assert go.wait(30)
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            # SQLite alone would give up after 0.1 s; the first writer holds on for longer.
            conn.exec_driver_sql("PRAGMA busy_timeout=100")
            trying.set()
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
            conn.commit()
    except Exception as exc:  # reported to the test, which fails on it
        report(str(exc))
    finally:
        finished.set()
        engine.dispose()


def _rows(engine) -> list[int]:
    with engine.connect() as conn:
        return [x for (x,) in conn.exec_driver_sql("SELECT x FROM t ORDER BY rowid")]


def _first_holds_while(engine, go, trying, finished) -> None:
    """The first writer writes, lets the second one go, and holds its transaction open until the
    second is on its way and has had every chance to fail; then commits."""
    with engine.connect() as first:
        first.exec_driver_sql("INSERT INTO t VALUES (1)")
        go.set()
        assert trying.wait(30)
        # Without the writer lock the second one fails within 0.1 s and finishes. (A sleep, not
        # an event's timed wait: under a faked clock such a wait's deadline lands hours away.)
        time.sleep(1)
        assert not finished.is_set(), "the second writer did not wait for the first"
        first.commit()


def test_a_second_thread_writes_after_the_first_commits_instead_of_failing(engine):
    go, trying, finished, failures = (threading.Event(), threading.Event(), threading.Event(), [])
    second = threading.Thread(
        target=_second_writer, args=(str(engine.url), go, trying, finished, failures.append)
    )
    second.start()
    _first_holds_while(engine, go, trying, finished)
    second.join(30)
    assert failures == []
    assert _rows(engine) == [1, 2]


def test_a_forked_worker_queues_on_its_own_lock_not_the_parents(engine):
    # The parent has written through the lock before forking (as a gunicorn master that loaded
    # the app might have): the child must open its own, or it would share the parent's flock.
    # (It forks between transactions: SQLite's own locks do not survive a fork in the middle of
    # one, which no server does.)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM t")
    go, trying, finished, failures = FORK.Event(), FORK.Event(), FORK.Event(), FORK.Queue()
    child = FORK.Process(
        target=_second_writer, args=(str(engine.url), go, trying, finished, failures.put)
    )
    child.start()
    _first_holds_while(engine, go, trying, finished)
    child.join(30)
    assert child.exitcode == 0
    assert failures.empty(), failures.get()
    assert _rows(engine) == [1, 2]


def test_a_reader_never_waits_for_a_writer(engine):
    with engine.connect() as writer, engine.connect() as reader:
        writer.exec_driver_sql("INSERT INTO t VALUES (1)")
        # WAL: the reader sees the last committed state at once, while the writer holds on.
        assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
        writer.commit()
        assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1

"""The trail's background integrator (``GOVERN_TRAIL_INTEGRATE=background``, both stores): one
daemon thread per process that moves queued audit entries into the chain, off the request path.

After transparency logs' sequencers (tessera): a unit of work commits its entries into
``audit_queue`` with its change (durable before the response, see govern.audit) and then only
pokes this thread; the thread integrates everything queued (govern.audit.integrate) in one
transaction. While it integrates, more entries are queued, so batches grow with the load.

After a poke the thread lets entries gather for ``GOVERN_TRAIL_BATCH_MS`` (100 ms) before it
integrates: one transaction and one WAL flush per batch, whatever the request rate.

Several processes and hosts each run their own integrator on one database: the sequencer's lock
(the head row, ``FOR UPDATE SKIP LOCKED``; on SQLite the database's one write lock, which
it waits for) makes them take turns. An integrator that found the lock taken comes back after
its batch interval, so nothing its process queued is left behind. Every read of the trail
still integrates first (``Ctx.settle_trail``), so no reader depends on this thread being
quick, or alive.

On PostgreSQL the integrator also vacuums the queue every ``VACUUM_EVERY`` entries it took
(audit.vacuum_queue): each queued row is deleted once, and dead rows would pile up otherwise.

The thread is a daemon: whatever is still queued when the process exits stays queued (it is
committed) and is taken by the next integration anywhere: another process's integrator, its
one-second safety round, or the next read of the trail.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from govern import audit

if TYPE_CHECKING:
    from govern.context import Runtime

log = logging.getLogger(__name__)

# How long the thread waits for a poke before it looks at the queue anyway: entries stranded by
# a worker killed elsewhere, or left after a failed round, are taken within about this long.
SAFETY_SECONDS = 1.0
# The batch interval is slept in slices this long, looking between them for a stop.
GATHER_SLICE = 0.01
# After taking this many entries from the queue, an integrator vacuums it (PostgreSQL,
# audit.vacuum_queue): the queue's dead rows are then never many, whatever the load or the
# server's autovacuum.
VACUUM_EVERY = 10_000

# Guards starting a runtime's integrator. A lock held by another thread when the process forked
# would stay held forever in the child, so the child gets a fresh one.
_starting = threading.Lock()


# Every integrator started, so that all of a process's can be stopped at once (tests).
_started: list[Integrator] = []


def _after_fork_in_child() -> None:
    global _starting
    _starting = threading.Lock()
    _started.clear()  # the parent's: their threads do not run here


os.register_at_fork(after_in_child=_after_fork_in_child)


class Integrator:
    """One process's integrator for one runtime (one database). Made by :func:`of`."""

    def __init__(
        self,
        runtime: Runtime,
        safety_seconds: float = SAFETY_SECONDS,
        batch_seconds: float | None = None,
        vacuum_every: int = VACUUM_EVERY,
    ) -> None:
        # The process it belongs to: a forked child inherits this object but never its thread,
        # so :func:`of` makes the child one of its own when the pids differ.
        self.pid = os.getpid()
        self.runtime = runtime
        self.safety_seconds = safety_seconds
        self.batch_seconds = (
            runtime.settings.trail_batch_ms / 1000 if batch_seconds is None else batch_seconds
        )
        # Set to wake the thread: by a request's poke (``_requested`` too) or the safety tick.
        self._wake = threading.Event()
        self._requested = False
        self.stopping = False
        # Notified after every round, so that a caller can wait for a condition on what the
        # rounds did (tests; a graceful drain) instead of sleeping.
        self._rounds = threading.Condition()
        # Rounds run and entries this integrator moved into the chain, for those who wait.
        self.rounds = 0
        self.integrated = 0
        # Entries taken from the queue since this integrator last vacuumed it.
        self.vacuum_every = vacuum_every
        self.since_vacuum = 0
        self.vacuums = 0
        self.thread = threading.Thread(
            target=self._run, name=f"govern-integrator-{self.pid}", daemon=True
        )
        self.ticker = threading.Thread(
            target=self._tick, name=f"govern-integrator-tick-{self.pid}", daemon=True
        )

    def poke(self) -> None:
        """Entries were committed to the queue: integrate soon. No database work here."""
        self._requested = True
        self._wake.set()

    def start(self) -> None:
        self.thread.start()
        self.ticker.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the round in progress (entries still queued stay queued)."""
        self.stopping = True
        self._wake.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate`` holds, looking again after each round (at least one every
        ``safety_seconds``). Returns the predicate's last answer."""
        with self._rounds:
            return self._rounds.wait_for(predicate, timeout)

    # The thread never waits with a timeout. Such a wait takes its deadline from the monotonic
    # clock, and under a faked clock (libfaketime, as the suite runs at 20:30 UTC) that deadline
    # lands hours away and the wait with it; a sleep is relative. So the batch interval is a
    # sleep, and the safety round is a wake-up from a ticker thread that sleeps.
    def _tick(self) -> None:
        while not self.stopping:
            time.sleep(self.safety_seconds)
            self._wake.set()

    def _run(self) -> None:
        while not self.stopping:
            self._wake.wait()
            poked = self._requested
            if poked and self.batch_seconds:
                # Let the batch gather: the entries of every request in this interval (of every
                # worker, since the others' integrators find the lock taken and skip) join the
                # chain in one transaction.
                self._gather()
            # Cleared before the round: a poke that comes while it integrates starts another
            # (what was queued before the round began is in it).
            self._wake.clear()
            self._requested = False
            if self.stopping:
                break
            done = self._round(poked)
            with self._rounds:
                self.rounds += 1
                self.integrated += done
                self._rounds.notify_all()

    def _gather(self) -> None:
        """Sleep for the batch interval, in short slices, so that a stop is not kept waiting for
        the rest of it (an app disposed, a worker shutting down)."""
        until = self.batch_seconds
        while until > 0 and not self.stopping:
            time.sleep(min(GATHER_SLICE, until))
            until -= GATHER_SLICE

    def _round(self, poked: bool) -> int:
        """One integration, without waiting for a lock someone else holds (that one takes what
        is queued). A failure leaves the entries queued and is tried again the next round; the
        thread must outlive any error, so every exception is caught and logged by class only
        (an error's text may carry values from the trail)."""
        runtime = self.runtime
        try:
            with runtime.sessions() as db:
                # A safety round looks first (one statement) rather than taking the lock for an
                # empty queue every second in every process.
                if not poked and not audit.any_queued(db):
                    return 0
                done = audit.integrate(
                    db,
                    runtime.keys.checkpoint_key,
                    runtime.settings.checkpoint_every,
                    runtime.settings.checkpoint_minutes,
                    wait=False,
                    follow=False,
                )
            if done is None:
                # Another process holds the sequencer's lock and, not following, may leave
                # what this process queued: look again after the next batch interval.
                self.poke()
        except Exception as exc:  # noqa: BLE001 (see the docstring)
            log.error(
                "queued audit entries not integrated yet (they stay queued): %s",
                exc.__class__.__name__,
            )
            return 0
        self._upkeep(done or 0)
        return done or 0

    def _upkeep(self, taken: int) -> None:
        """Vacuum the queue after every ``vacuum_every`` entries taken from it (audit.vacuum_queue),
        outside any transaction. A vacuum that fails is logged by class and tried again after
        as many entries more; it never stops the thread."""
        self.since_vacuum += taken
        if self.since_vacuum < self.vacuum_every:
            return
        self.since_vacuum = 0
        try:
            audit.vacuum_queue(self.runtime.engine)
            self.vacuums += 1
        except Exception as exc:  # noqa: BLE001 (as _round)
            log.warning("the audit queue was not vacuumed: %s", exc.__class__.__name__)


def of(runtime: Runtime) -> Integrator:
    """This process's integrator for ``runtime``, started on first use. Keyed by the process id:
    gunicorn forks workers from a master that may have loaded the app, and a thread inherited
    across a fork does not run in the child."""
    pid = os.getpid()
    current = runtime.integrator
    if _usable(current, pid):
        return current
    with _starting:
        current = runtime.integrator
        if not _usable(current, pid):
            current = Integrator(runtime)
            current.start()
            runtime.integrator = current
            _started.append(current)
    return current


def _usable(current: Integrator | None, pid: int) -> bool:
    """Is ``current`` this process's running integrator (not a parent's, not a stopped one)?"""
    return (
        current is not None
        and current.pid == pid
        and not current.stopping
        and current.thread.is_alive()
    )


def poke(runtime: Runtime) -> None:
    of(runtime).poke()


def stop_all(timeout: float = 10.0) -> None:
    """Stop every integrator this process started (apps being disposed, as in tests: one left
    running would go on integrating in a database someone else now uses)."""
    with _starting:
        stopping = [i for i in _started if i.pid == os.getpid()]
        _started.clear()
    for current in stopping:
        current.stop(timeout)
        if current.runtime.integrator is current:
            current.runtime.integrator = None

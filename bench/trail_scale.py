"""Figure 8: one trail shared by many workers and two masters on PostgreSQL (issue 13, part 3).

Every audited read appends one entry to the hash-chained, Merkle-tree trail. Before, each unit of
work sequenced its own entry under the chain head's row lock and held it across its commit's
fsync, so one trail topped out at one commit at a time whatever the number of workers. Now each
unit of work queues its entry with its action and commits on its own (no shared row), and whoever
finds the sequencer free integrates everything queued in one transaction (govern.audit).

Measured from outside like figure 2 (wrk, 1 thread per target, ``connections`` in all, the same
real audited read: token, account, casbin, NDA and need-to-know, decryption, the entry), on one
PostgreSQL database:

- queued trail, one gunicorn master with 2, 4 and 8 sync workers;
- queued trail, two masters of 4 workers each on the same database (as two hosts would be), wrk
  driving both at once (half the connections each);
- the same with the queue off (``GOVERN_TRAIL_QUEUE=0``: the head's lock across the commit), the
  "before" of the same run, at 2 and 8 workers and with two masters.

Beside it, without HTTP (the trail's own share of a request, where one lock would show first):
committed units of work of one audited decision per second from 2, 4 and 8 processes, each with
its own engine, queued and head-locked, ``direct_seconds`` each.

Each configuration runs once per round, the order turning each round, and its figure is its
median over the rounds; the ratios are of figures of the same run. The figure's ratio is queued ÷
head-locked at 8 workers; the scaling ratios (4 and 8 workers ÷ 2, two masters ÷ one master of as
many workers) are printed beside it. After the runs every served read must be in the trail once,
and the trail must verify. A run where wrk used ≥ 0.9 of a core measured wrk and is left out.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa

from bench.common import Figure, Instance, median, postgres_available, say
from bench.http_load import (
    DONE_LUA,
    HOST,
    SATURATED,
    Server,
    audited_reads,
    find_wrk,
    seed,
    token,
    wrk_run,
)
from govern import audit
from govern.actions import Action
from govern.context import Principal, Target, decide
from govern.runtime import build_runtime, unit_of_work

FORK = multiprocessing.get_context("fork")

# name: (masters, workers per master, queued trail)
CONFIGS = {
    "queue_w2": (1, 2, True),
    "queue_w4": (1, 4, True),
    "queue_w8": (1, 8, True),
    "queue_2x4": (2, 4, True),
    "locked_w2": (1, 2, False),
    "locked_w8": (1, 8, False),
    "locked_2x4": (2, 4, False),
}


def _start(instance: Instance, workers: int, queued: bool, tag: str) -> Server:
    import sys

    env = {**instance.env(), "GOVERN_TRAIL_QUEUE": "1" if queued else "0"}
    govern = str(Path(sys.executable).parent / "govern")
    return Server(
        [govern, "serve", "--workers", str(workers)],
        env,
        instance.home / f"server-{tag}.log",
        "/api/v1/health",
    )


def _run_config(wrk, script, workdir, instance, item_id, name, seconds, connections) -> dict:
    masters, workers, queued = CONFIGS[name]
    servers = [_start(instance, workers, queued, f"{name}-{m}") for m in range(masters)]
    try:
        targets = []
        for m, server in enumerate(servers):
            url = f"http://{HOST}:{server.port}/api/v1/items/{item_id}/content"
            bearer = {"Authorization": f"Bearer {token(server.port, 'staff')}"}
            targets.append((url, bearer, workdir / f"wrk-{name}-{m}.log"))
        each = max(1, connections // masters)
        warm = 0
        for url, bearer, log in targets:  # warm every worker, its enforcer and connections
            warm += wrk_run(wrk, script, url, bearer, 1, each, log)["ok"]
        results: list[dict] = [{} for _ in targets]

        def drive(k: int) -> None:
            url, bearer, log = targets[k]
            results[k] = wrk_run(wrk, script, url, bearer, seconds, each, log)

        drivers = [threading.Thread(target=drive, args=(k,)) for k in range(len(targets))]
        for d in drivers:
            d.start()
        for d in drivers:
            d.join()
    finally:
        for server in servers:
            server.stop()
    return {
        "rps": sum(r["rps"] for r in results),
        "ok": sum(r["ok"] for r in results),
        "warm_ok": warm,
        "errors": sum(r["errors"] for r in results),
        "p50_us": max(r["p50_us"] for r in results),
        "p99_us": max(r["p99_us"] for r in results),
        "wrk_cpu": max(r["wrk_cpu"] for r in results),
    }


def _appender(settings, seconds: float, start, counts) -> None:
    """One process of the direct figure: units of work of one audited decision each, as fast as
    it can, for ``seconds`` after ``start`` is set; puts how many it committed."""
    done = 0
    try:
        runtime = build_runtime(settings)
        target = Target("agreement", 1, "agreement:1")
        start.wait()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with unit_of_work(runtime, Principal.system()) as ctx:
                decide(ctx, Action.AGREEMENT_READ, target)
            done += 1
        if runtime.integrator is not None:
            runtime.integrator.stop()
        runtime.engine.dispose()
    finally:
        counts.put(done)


def _direct(instance: Instance, processes: int, queued: bool, seconds: float) -> float:
    """Committed audited units of work per second from ``processes`` processes, without HTTP:
    the trail's own share of a request, where one lock would show first."""
    settings = replace(instance.settings, trail_queue=queued)
    start, counts = FORK.Event(), FORK.Queue()
    procs = [
        FORK.Process(target=_appender, args=(settings, seconds, start, counts))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    start.set()
    total = sum(counts.get() for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def run(
    workdir,
    pg_url: str | None = None,
    duration: float = 5.0,
    rounds: int = 2,
    connections: int = 16,
    content_size: int = 1024,
    configs: tuple[str, ...] = tuple(CONFIGS),
    direct_processes: tuple[int, ...] = (2, 4, 8),
    direct_seconds: float = 3.0,
) -> Figure:
    title = "PostgreSQL audited reads/s, queued trail ÷ head locked across commit (8 workers)"
    goal = "> 1, and more workers or a second master add throughput"
    workdir = Path(workdir)
    wrk, why = find_wrk()
    if wrk is None:
        return Figure(8, title, None, goal, None, {}, [why])
    if reason := postgres_available(pg_url):
        return Figure(8, title, None, goal, None, {}, [f"PostgreSQL skipped: {reason}"])
    script = workdir / "done-trail.lua"
    script.write_text(DONE_LUA)
    instance = Instance(workdir, "trail-pg", "postgresql", pg_url)
    notes: list[str] = []
    try:
        item_id = seed(instance, os.urandom(content_size))
        before = audited_reads(instance)
        say(f"trail: {len(configs)} configurations x {rounds} rounds, wrk -c{connections}")
        runs: dict[str, list[dict]] = {name: [] for name in configs}
        names = list(configs)
        for r in range(rounds):
            turn = r % max(1, len(names))
            for name in names[turn:] + names[:turn]:
                runs[name].append(
                    _run_config(
                        wrk, script, workdir, instance, item_id, name, duration, connections
                    )
                )
        direct: dict[str, list[float]] = {}
        if direct_seconds:
            say(f"trail: direct appends, {direct_processes} processes, queued and locked")
            for _ in range(rounds):
                for procs in direct_processes:
                    for queued in (True, False):
                        name = f"{'queue' if queued else 'locked'}_p{procs}"
                        rate = _direct(instance, procs, queued, direct_seconds)
                        direct.setdefault(name, []).append(rate)
        served = sum(run["ok"] + run["warm_ok"] for mine in runs.values() for run in mine)
        in_trail = audited_reads(instance) - before
        with instance.runtime.sessions() as db:
            queued = db.scalar(sa.select(sa.func.count()).select_from(audit.AuditQueued))
        with instance.engine.connect() as conn:
            verified = audit.verify(conn, instance.runtime.keys)
    finally:
        instance.close()
    raw: dict = {}
    rps: dict[str, float | None] = {}
    for name, mine in runs.items():
        valid = [run["rps"] for run in mine if run["wrk_cpu"] < SATURATED]
        rps[name] = median(valid) if valid else None
        masters, workers, _ = CONFIGS[name]
        raw[name] = {
            "masters": masters,
            "workers": masters * workers,
            "rps": round(rps[name], 1) if rps[name] else "invalid",
            "p50_ms": round(median([run["p50_us"] for run in mine]) / 1000, 2),
            "p99_ms": round(median([run["p99_us"] for run in mine]) / 1000, 2),
            "wrk_cpu_max": round(max(run["wrk_cpu"] for run in mine), 2),
            "errors": sum(run["errors"] for run in mine),
        }
        if len(valid) < len(mine):
            notes.append(f"{name}: {len(mine) - len(valid)} runs left out (wrk saturated a core)")

    def ratio(a: str, b: str) -> float | None:
        if rps.get(a) and rps.get(b):
            return round(rps[a] / rps[b], 3)
        return None

    raw["ratios"] = {
        "queue_w4/queue_w2": ratio("queue_w4", "queue_w2"),
        "queue_w8/queue_w2": ratio("queue_w8", "queue_w2"),
        "queue_2x4/queue_w8": ratio("queue_2x4", "queue_w8"),
        "queue_w2/locked_w2": ratio("queue_w2", "locked_w2"),
        "queue_w8/locked_w8": ratio("queue_w8", "locked_w8"),
        "queue_2x4/locked_2x4": ratio("queue_2x4", "locked_2x4"),
        "locked_w8/locked_w2": ratio("locked_w8", "locked_w2"),
    }
    if direct:
        rates = {name: median(values) for name, values in direct.items()}
        raw["direct_appends_per_s"] = {name: round(rate) for name, rate in rates.items()}
        raw["direct_ratios"] = {
            f"queue/locked p{p}": round(rates[f"queue_p{p}"] / rates[f"locked_p{p}"], 3)
            for p in direct_processes
        }
    raw["reads_served"] = served
    raw["reads_in_trail"] = in_trail
    raw["left_queued"] = queued
    raw["trail_verifies"] = verified.ok
    raw["rounds"] = rounds
    raw["cores"] = os.cpu_count()
    if in_trail < served:
        notes.append(f"{served} reads served, only {in_trail} in the trail")
    if not verified.ok:
        notes.append(f"the trail does not verify: {verified.problem} at {verified.first_bad}")
    notes.append(
        "all servers, PostgreSQL and wrk share this machine's cores: past the cores, more "
        "workers only add contention; the ratios show whether one row still serialises them"
    )
    headline = ratio("queue_w8", "locked_w8")
    met = None
    if headline is not None:
        scale = raw["ratios"]
        met = (
            headline > 1
            and (scale["queue_w8/queue_w2"] or 0) >= 1
            and (scale["queue_2x4/queue_w8"] or 0) >= 0.9
        )
    return Figure(8, title, headline, goal, met, raw, notes)

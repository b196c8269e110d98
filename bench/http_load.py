"""Figure 2: audited item reads per second ÷ a bare Flask JSON route's requests per second.

Measured from outside with wrk (a compiled load generator: about 85 µs of CPU per request where
a Python one burns 250–650 µs on the same cores, which inflated the ratio about 3x). Five
servers, each gunicorn with the same sync workers and the same access log:

- bare: ``bench/bare_app.py``, the smallest Flask app returning JSON (not govern's /health,
  which already pays govern's request hooks);
- audited, on SQLite and on PostgreSQL: ``govern serve`` on a throw-away instance, wrk reading
  ``GET /api/v1/items/{id}/content`` as vendor staff with a real bearer token (token check,
  account, casbin, NDA and need-to-know, AES-GCM decryption, the audit entry committed with it);
- beside each, the same read through Flask's request cycle (``GOVERN_DIRECT_READ=0``, a second
  server on the same instance), so that what govern.api.direct saves is measured in the same
  rounds (``direct_gain``: the direct read's reads/s over this one's, per round).

Same load for all (wrk, 1 thread, 8 connections), in interleaved rounds: each round runs the bare
route and both stores back to back (the order turning each round), and each store's figure is
the median of its per-round ratios, so a busy moment on a shared machine weighs on both sides of
a ratio alike. p50/p99 come from wrk's own latency record (a Lua ``done()`` prints them).

A ratio is only reported when the load generator had CPU to spare: wrk's CPU time (from the
kernel's accounting of the child, utime + stime) over its wall time must stay under 0.9 of a
core, else the figure measures wrk, and is marked invalid.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.common import (
    PASSWORD,
    Figure,
    Instance,
    median,
    postgres_available,
    say,
)
from govern import audit
from govern.context import Principal
from govern.models import AuditEntry, Nda, NeedToKnow
from govern.runtime import unit_of_work
from govern.services import items

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
# The name of a store's second server: the same read through Flask (GOVERN_DIRECT_READ=0).
ROUTED = "through Flask, "
# wrk's CPU over its wall time at or above this: the load generator is the bottleneck.
SATURATED = 0.9
# Printed by wrk at the end of a run, in microseconds.
DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(99.0), latency.max))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def find_wrk() -> tuple[str | None, str]:
    """wrk's path (installed with apt-get when missing and we are root), or None and why not."""
    wrk = shutil.which("wrk")
    if wrk:
        return wrk, ""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("http: wrk is missing; installing the Debian package")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(["apt-get", "update", "-q"], check=False, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, **quiet)
        wrk = shutil.which("wrk")
        if wrk:
            return wrk, ""
    return None, "wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu) and run again"


def seed(instance: Instance, content: bytes) -> int:
    """A staff member with an NDA and need-to-know for one real, encrypted item. Returns its id."""
    staff_id, lead_id, agreement_id = instance.staff_and_agreement()
    day = instance.today()
    with unit_of_work(instance.runtime, Principal.system()) as ctx:
        item = items.create(
            ctx,
            agreement_id,
            {"title": "design", "category": "design", "fields": [], "content_b64": content},
        )
        item_id = item.id
    with instance.engine.begin() as conn:
        conn.execute(
            Nda.__table__.insert().values(
                agreement_id=agreement_id,
                user_id=staff_id,
                signed_on=day - timedelta(days=10),
                expires_on=day + timedelta(days=300),
                document_sha256="1" * 64,
                registered_by=lead_id,
            )
        )
        conn.execute(
            NeedToKnow.__table__.insert().values(
                agreement_id=agreement_id,
                user_id=staff_id,
                item_id=item_id,
                reason="maintenance",
                granted_by=lead_id,
            )
        )
    return item_id


class Server:
    """A gunicorn server in a process group of its own, stopped by its own id."""

    def __init__(self, command: list[str], env: dict, log: Path, probe: str):
        self.port = free_port()
        self.log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command + ["--host", HOST, "--port", str(self.port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(self.port, "GET", probe)[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start; see {log}")
            time.sleep(0.1)

    @classmethod
    def govern(cls, instance: Instance, workers: int, env: dict | None = None) -> Server:
        govern = str(Path(sys.executable).parent / "govern")
        log = (
            "server.log"
            if not env
            else "server-" + "-".join(env.values()).replace("/", "_") + ".log"
        )
        return cls(
            [govern, "serve", "--workers", str(workers)],
            {**instance.env(), **(env or {})},
            instance.home / log,
            "/api/v1/health",
        )

    @classmethod
    def bare(cls, workdir: Path, workers: int) -> Server:
        return cls(
            [sys.executable, "-m", "bench.bare_app", "--workers", str(workers)],
            dict(os.environ),
            workdir / "bare-server.log",
            "/",
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def token(port: int, username: str) -> str:
    status, body = request(
        port,
        "POST",
        "/api/v1/auth/token",
        json.dumps({"username": username, "password": PASSWORD}).encode(),
        {"Content-Type": "application/json"},
    )
    if status != 200:
        raise RuntimeError(f"login failed: {status} {body[:200]!r}")
    return json.loads(body)["access_token"]


def wrk_run(
    wrk: str, script: Path, url: str, headers: dict, seconds: float, connections: int, log: Path
) -> dict:
    """One wrk run (1 thread): its own figures, and the CPU it used per second of wall time."""
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    with open(log, "w+b") as out:
        started = time.monotonic()
        proc = subprocess.Popen(command + [url], stdout=out, stderr=subprocess.STDOUT)
        # wait4 reaps wrk and hands back the kernel's account of its CPU time.
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    marked = [line for line in text.splitlines() if line.startswith("WRKJSON ")]
    if proc.returncode != 0 or not marked:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {text[-500:]}")
    result = json.loads(marked[-1].removeprefix("WRKJSON "))
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    result["errors"] = errors
    result["ok"] = result["requests"] - result["status"]
    result["rps"] = result["ok"] / (result["duration_us"] / 1e6)
    result["wrk_cpu"] = (usage.ru_utime + usage.ru_stime) / wall
    return result


def run(
    workdir,
    pg_url: str | None = None,
    duration: float = 5.0,
    rounds: int = 3,
    connections: int = 8,
    workers: int = 2,
    content_size: int = 1024,
    backends: tuple[str, ...] = ("sqlite", "postgresql"),
    backend: str | None = None,
) -> Figure:
    """``backend`` (one store only) is kept for the command line's ``--http-backend``."""
    workdir = Path(workdir)
    wrk, why = find_wrk()
    if wrk is None:
        return Figure(2, "audited item reads/s ÷ bare Flask req/s", None, "≥ 0.30", None, {}, [why])
    notes: list[str] = []
    stores = [backend] if backend else list(backends)
    if "postgresql" in stores and (reason := postgres_available(pg_url)):
        stores.remove("postgresql")
        notes.append(f"PostgreSQL skipped: {reason}")
    script = workdir / "done.lua"
    script.write_text(DONE_LUA)
    instances, servers, bare = {}, {}, None
    try:
        for store in stores:
            instances[store] = Instance(workdir, f"http-{store}", store, pg_url)
            item_id = seed(instances[store], os.urandom(content_size))
            servers[store] = (Server.govern(instances[store], workers), item_id)
            # The same read through Flask's request cycle (GOVERN_DIRECT_READ=0), on the same
            # instance: what govern.api.direct saves, measured in the same rounds.
            routed = Server.govern(instances[store], workers, {"GOVERN_DIRECT_READ": "0"})
            servers[ROUTED + store] = (routed, item_id)
        bare = Server.bare(workdir, workers)
        say(f"http: gunicorn x{workers} sync workers each; wrk -t1 -c{connections}; {stores}")
        return _measure(
            wrk,
            script,
            workdir,
            bare,
            servers,
            instances,
            duration,
            rounds,
            connections,
            workers,
            notes,
        )
    finally:
        for server, _ in servers.values():
            server.stop()
        if bare is not None:
            bare.stop()
        for instance in instances.values():
            instance.close()


def _measure(
    wrk, script, workdir, bare, servers, instances, duration, rounds, connections, workers, notes
):
    def target(name: str) -> tuple[str, dict]:
        if name == "bare":
            return f"http://{HOST}:{bare.port}/", {}
        server, item_id = servers[name]
        # A fresh token for each run: they live 15 minutes, a full figure takes longer.
        bearer = {"Authorization": f"Bearer {token(server.port, 'staff')}"}
        return f"http://{HOST}:{server.port}/api/v1/items/{item_id}/content", bearer

    def one(name: str, seconds: float) -> dict:
        url, headers = target(name)
        return wrk_run(wrk, script, url, headers, seconds, connections, workdir / f"wrk-{name}.log")

    names = ["bare", *servers]
    for name in names:  # warm up every worker, the enforcer and the connections
        one(name, 1)
    stores = [name for name in servers if not name.startswith(ROUTED)]
    before = {store: audited_reads(instances[store]) for store in stores}
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(rounds):
        turn = r % len(names)
        for name in names[turn:] + names[:turn]:
            runs[name].append(one(name, duration))
    logged = {store: audited_reads(instances[store]) - before[store] for store in stores}

    raw: dict = {"bare": _summary(runs["bare"])}
    ratios, p99s = [], []
    for store in stores:
        routed = runs[ROUTED + store]
        figures = _summary(routed)
        figures["ratio"] = round(
            median([a["rps"] / b["rps"] for a, b in zip(routed, runs["bare"], strict=True)]), 3
        )
        # Per round, the direct read's reads/s over the same read through Flask.
        figures["direct_gain"] = round(
            median([a["rps"] / b["rps"] for a, b in zip(runs[store], routed, strict=True)]), 3
        )
        raw[ROUTED + store] = figures
    for store in stores:
        mine, base = runs[store], runs["bare"]
        valid = [
            a["rps"] / b["rps"]
            for a, b in zip(mine, base, strict=True)
            if max(a["wrk_cpu"], b["wrk_cpu"]) < SATURATED
        ]
        figures = _summary(mine)
        figures["round_ratios"] = ", ".join(
            f"{a['rps'] / b['rps']:.3f}"
            + ("" if max(a["wrk_cpu"], b["wrk_cpu"]) < SATURATED else "*")
            for a, b in zip(mine, base, strict=True)
        )
        figures["ratio"] = round(median(valid), 3) if valid else "invalid"
        figures["reads_served"] = sum(run["ok"] for run in mine + runs[ROUTED + store])
        figures["reads_in_trail"] = logged[store]
        raw[store] = figures
        if len(valid) < len(mine):
            notes.append(
                f"{store}: {len(mine) - len(valid)} of {len(mine)} rounds left out (marked *): wrk "
                f"used ≥ {SATURATED} of a core, so they measured the load generator"
            )
        if logged[store] < figures["reads_served"]:
            notes.append(
                f"{store}: {figures['reads_served']} reads served, {logged[store]} in the trail"
            )
        if figures["errors"]:
            notes.append(f"{store}: {figures['errors']} failed requests")
        if valid:
            ratios.append(median(valid))
            p99s.append(figures["p99_ms_worst"])
    raw.update(
        gunicorn_workers=workers,
        wrk=f"-t1 -c{connections} -d{max(1, round(duration))}s",
        rounds=rounds,
    )
    ratio = min(ratios) if ratios and len(ratios) == len(stores) else None
    met = None if ratio is None else ratio >= 0.30 and max(p99s) < 20
    if ratio is None:
        notes.append("no valid ratio for every store: the figure is not reported")
    return Figure(
        2,
        "audited item reads/s ÷ bare Flask JSON req/s (gunicorn, wrk; the lower store's ratio)",
        ratio,
        "≥ 0.30 on each store, p99 < 20 ms",
        met,
        raw,
        notes,
    )


def _summary(runs: list[dict]) -> dict:
    return {
        "rps_median": round(median([r["rps"] for r in runs]), 1),
        "p50_ms": round(median([r["p50_us"] for r in runs]) / 1000, 2),
        "p99_ms": round(median([r["p99_us"] for r in runs]) / 1000, 2),
        "p99_ms_worst": round(max(r["p99_us"] for r in runs) / 1000, 2),
        "wrk_cpu_max": round(max(r["wrk_cpu"] for r in runs), 2),
        "errors": sum(r["errors"] for r in runs),
    }


def audited_reads(instance: Instance) -> int:
    """Audited reads in the trail, after integrating whatever is still queued (PostgreSQL)."""
    runtime = instance.runtime
    with runtime.sessions() as db:
        audit.integrate(
            db, runtime.keys.checkpoint_key, runtime.settings.checkpoint_every, wait=True
        )
    with instance.engine.connect() as conn:
        return conn.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "item:read", AuditEntry.decision == "allow")
        )

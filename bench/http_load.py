"""Figure 2: audited item reads per second ÷ a bare JSON route's requests per second.

The real app is served by gunicorn (``govern serve``, its default two sync workers) on a
throw-away instance. A small load generator (processes, each with one http.client connection,
reconnecting when the server closes it) hits, in interleaved rounds, ``GET /api/v1/health`` (the
bare route: same app, same middleware, no auth, no database) and ``GET /api/v1/items/{id}/content``
as vendor staff with a bearer token (token check, account lookup, casbin, NDA and need-to-know,
AES-GCM decryption, and the audit entry committed in the same transaction).

The figure is the median of the per-round ratios (each round runs both routes back to back), so
that load from other processes on a shared machine weighs on both sides of each ratio alike.
It still moves with the machine: the bare route is bound by the load generator's own CPU, so
the quieter the machine the faster the bare route and the lower the ratio.
"""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.common import PASSWORD, Figure, Instance, median, percentile, say
from govern.context import Principal
from govern.models import AuditEntry, Nda, NeedToKnow
from govern.runtime import unit_of_work
from govern.services import items

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


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
    """``govern serve`` in a process group of its own, stopped by its own id."""

    def __init__(self, instance: Instance, workers: int = 2):
        self.port = free_port()
        govern = Path(sys.executable).parent / "govern"
        self.log = open(instance.home / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(govern), "serve", "--host", HOST, "--port", str(self.port)]
            + ["--workers", str(workers)],
            env=instance.env(),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = request(self.port, "GET", "/api/v1/health")
                if status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start; see {instance.home / 'server.log'}")
            time.sleep(0.1)

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
    import json

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


def _client(port: int, path: str, headers: dict, start_at: float, duration: float):
    """One load-generating connection: as many requests as it can between start and end."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    ok = bad = 0
    latencies = []
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + duration
    while True:
        t0 = time.perf_counter()
        if time.time() >= end:
            break
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            bad += 1
            continue
        latencies.append(time.perf_counter() - t0)
        if response.status == 200:
            ok += 1
        else:
            bad += 1
    conn.close()
    return ok, bad, latencies


def load(pool, port: int, path: str, headers: dict, clients: int, duration: float) -> dict:
    start_at = time.time() + 0.3
    futures = [
        pool.submit(_client, port, path, headers, start_at, duration) for _ in range(clients)
    ]
    ok = bad = 0
    latencies = []
    for f in futures:
        o, b, lat = f.result()
        ok, bad = ok + o, bad + b
        latencies += lat
    return {"rps": ok / duration, "ok": ok, "errors": bad, "latencies": latencies}


def run(
    workdir,
    backend: str = "sqlite",
    pg_url: str | None = None,
    duration: float = 2.5,
    rounds: int = 6,
    clients: int = 4,
    workers: int = 2,
    content_size: int = 1024,
) -> Figure:
    instance = Instance(workdir, f"http-{backend}", backend, pg_url)
    server = None
    pool = concurrent.futures.ProcessPoolExecutor(
        clients, mp_context=multiprocessing.get_context("fork")
    )
    try:
        item_id = seed(instance, os.urandom(content_size))
        say(f"http: serving with gunicorn ({workers} workers, {backend}); {clients} clients")
        server = Server(instance, workers)
        bearer = {"Authorization": f"Bearer {token(server.port, 'staff')}"}
        routes = {
            "bare": ("/api/v1/health", {}),
            "audited": (f"/api/v1/items/{item_id}/content", bearer),
        }
        for path, headers in routes.values():  # warm up both workers
            load(pool, server.port, path, headers, clients, min(1.0, duration))
        with instance.engine.connect() as conn:
            reads_before = _reads(conn)
        results = {name: [] for name in routes}
        for _ in range(rounds):
            for name, (path, headers) in routes.items():
                results[name].append(load(pool, server.port, path, headers, clients, duration))
        with instance.engine.connect() as conn:
            reads_logged = _reads(conn) - reads_before
        rps = {k: median([r["rps"] for r in v]) for k, v in results.items()}
        # Each round measures both routes back to back: the ratio of each pair, then the median
        # of those, keeps a busy moment on a shared machine from landing on one route only.
        pairs = [
            a["rps"] / b["rps"] for a, b in zip(results["audited"], results["bare"], strict=True)
        ]
        lat = {k: [x for r in v for x in r["latencies"]] for k, v in results.items()}
        errors = {k: sum(r["errors"] for r in v) for k, v in results.items()}
        audited_ok = sum(r["ok"] for r in results["audited"])
        ratio = median(pairs)
        raw = {
            "round_ratios": ", ".join(f"{x:.3f}" for x in pairs),
            "bare_rps_median": round(rps["bare"], 1),
            "audited_rps_median": round(rps["audited"], 1),
            "bare_p50_ms": round(median(lat["bare"]) * 1000, 2),
            "audited_p50_ms": round(median(lat["audited"]) * 1000, 2),
            "audited_p95_ms": round(percentile(lat["audited"], 95) * 1000, 2),
            "errors": errors,
            "audited_reads_served": audited_ok,
            "audited_reads_in_trail": reads_logged,
            "backend": backend,
            "gunicorn_workers": workers,
            "clients": clients,
            "seconds_per_round": duration,
            "rounds": rounds,
        }
        notes = []
        if reads_logged != audited_ok:
            notes.append(f"{audited_ok} reads served but {reads_logged} in the trail")
        return Figure(
            2,
            f"audited item reads/s ÷ bare JSON route req/s (gunicorn, {backend})",
            ratio,
            "≥ 0.30",
            ratio >= 0.30,
            raw,
            notes,
        )
    finally:
        pool.shutdown()
        if server is not None:
            server.stop()
        instance.close()


def _reads(conn) -> int:
    return conn.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == "item:read", AuditEntry.decision == "allow")
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

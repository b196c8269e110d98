"""Figure 7: policy at the scale of a city (issue 13, part 5).

10,000 accounts (one g row each in domain ``*``) and 1,000 agreements (each with one
agreement-scoped role). Two app instances share one database, as two workers do: one changes the
policy through the API, the other serves its next request. Timed, on that other instance:

- a steady-state request (a vendor_staff reading an agreement: token check, account, the casbin
  decision, the audit entry, the commit), median of many;
- the first request after a new account is created (POST /users), and
- the first request after a rule is added or removed (POST/DELETE /policies).

The goal is < 100 ms for those first requests. For contrast, pycasbin's own domain role manager
is timed building the same kind of links in memory at a much smaller size (it is quadratic: at
10,000 accounts its first decision takes minutes).
"""

from __future__ import annotations

import time
from datetime import date

import casbin
import sqlalchemy as sa

from bench.common import (
    PASSWORD,
    VENDOR,
    Figure,
    Instance,
    bulk_insert,
    median,
    postgres_available,
    say,
)
from govern import create_app, policy
from govern.models import Agreement, CasbinRule, User

ROLES = ("vendor_staff", "vendor_lead", "office_handler", "office_approver")
# Reading an agreement needs no clock: any date inside a five-year term will do.
SIGNED_ON = date(2025, 1, 1)


def seed(instance: Instance, accounts: int, agreements: int) -> int:
    """The crowd (accounts and agreements, bulk-written) and the measured cast. Returns the id of
    the agreement the measured staff member reads."""
    instance.create_user("staff", "vendor_staff", org=VENDOR)
    instance.create_user("sys", "system_admin")
    instance.create_user("sec", "security_admin")
    with instance.engine.begin() as conn:
        bulk_insert(
            conn,
            User.__table__,
            [
                {
                    "username": f"citizen{i:05d}",
                    "password_hash": "-",
                    "org": VENDOR if ROLES[i % len(ROLES)].startswith("vendor") else None,
                }
                for i in range(accounts)
            ],
        )
        rows = [
            {"ptype": "g", "v0": f"citizen{i:05d}", "v1": ROLES[i % len(ROLES)], "v2": "*"}
            for i in range(accounts)
        ]
        bulk_insert(
            conn,
            Agreement.__table__,
            [
                {
                    "title": f"agreement {i}",
                    "owner": "office",
                    "vendor": VENDOR,
                    "signed_on": SIGNED_ON,
                    "term_years": 5,
                    "contract_value": 1000,
                }
                for i in range(agreements)
            ],
        )
        ids = [r[0] for r in conn.execute(sa.select(Agreement.id).order_by(Agreement.id))]
        rows += [
            {"ptype": "g", "v0": f"citizen{i:05d}", "v1": "office_handler", "v2": f"agreement:{a}"}
            for i, a in enumerate(ids)
        ]
        bulk_insert(conn, CasbinRule.__table__, rows)
    with sa.orm.Session(instance.engine) as db:
        policy.bump_version(db)
        db.commit()
    return ids[len(ids) // 2]


class Worker:
    """One app instance (its own runtime, enforcer and connections) with real bearer tokens."""

    def __init__(self, instance: Instance):
        self.app = create_app(instance.settings)
        self.client = self.app.test_client()
        self.tokens: dict[str, str] = {}

    def call(self, method: str, path: str, who: str, json=None) -> tuple[int, float, dict]:
        if who not in self.tokens:
            response = self.client.post(
                "/api/v1/auth/token", json={"username": who, "password": PASSWORD}
            )
            self.tokens[who] = response.get_json()["access_token"]
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        t0 = time.perf_counter()
        response = self.client.open(path, method=method, headers=headers, json=json)
        elapsed = time.perf_counter() - t0
        return response.status_code, elapsed, response.get_json()

    def close(self) -> None:
        runtime = self.app.extensions["govern"]
        if runtime.integrator is not None:
            runtime.integrator.stop()
        runtime.engine.dispose()


def measure(backend: str, workdir, pg_url, accounts, agreements, rounds, steady) -> dict:
    instance = Instance(workdir, f"policy-{backend}", backend, pg_url)
    changer = server = None
    try:
        t0 = time.perf_counter()
        agreement_id = seed(instance, accounts, agreements)
        say(f"policy: {backend} seeded in {time.perf_counter() - t0:.1f} s")
        changer, server = Worker(instance), Worker(instance)
        read = f"/api/v1/agreements/{agreement_id}"

        def served() -> float:
            status, elapsed, body = server.call("GET", read, "staff")
            if status != 200:
                raise RuntimeError(f"the measured read failed: {status} {body}")
            return elapsed

        t0 = time.perf_counter()
        served()  # the server's first load of the policy (a worker starting), not measured
        cold = time.perf_counter() - t0
        for _ in range(20):
            served()
        steady_s = [served() for _ in range(steady)]
        new_account, rule_change = [], []
        for n in range(rounds):
            status, _, body = changer.call(
                "POST",
                "/api/v1/users",
                "sys",
                {
                    "username": f"newcomer{n}",
                    "role": "vendor_staff",
                    "org": VENDOR,
                },
            )
            if status != 201:
                raise RuntimeError(f"creating an account failed: {status} {body}")
            new_account.append(served())
            status, _, body = changer.call(
                "POST",
                "/api/v1/policies",
                "sec",
                {"ptype": "p", "values": ["vendor_staff", f"agreement:{n + 1}", "nda", "list"]},
            )
            if status != 201:
                raise RuntimeError(f"adding a rule failed: {status} {body}")
            rule_change.append(served())
            changer.call("DELETE", f"/api/v1/policies/{body['id']}", "sec")
            rule_change.append(served())
        steady_ms = median(steady_s) * 1000
        return {
            "steady_ms": round(steady_ms, 2),
            "new_account_first_ms": round(median(new_account) * 1000, 1),
            "new_account_worst_ms": round(max(new_account) * 1000, 1),
            "rule_change_first_ms": round(median(rule_change) * 1000, 1),
            "rule_change_worst_ms": round(max(rule_change) * 1000, 1),
            "new_account_ratio": round(median(new_account) * 1000 / steady_ms, 1),
            "rule_change_ratio": round(median(rule_change) * 1000 / steady_ms, 1),
            "worker_start_ms": round(cold * 1000, 1),
            "changes": len(new_account) + len(rule_change),
        }
    finally:
        for worker in (changer, server):
            if worker is not None:
                worker.close()
        instance.close()


def pycasbin_first_decision(accounts: int) -> float:
    """Seconds pycasbin's own DomainManager takes for the first decision with ``accounts``
    g rows in domain ``*`` (the role manager govern used before DomainRoles)."""
    enforcer = casbin.Enforcer(str(policy.POLICY_DIR / "model.conf"))
    model = enforcer.get_model().model
    model["p"]["p"].policy.append(["vendor_staff", "*", "item", "read"])
    for i in range(accounts):
        model["g"]["g"].policy.append([f"citizen{i:05d}", ROLES[i % len(ROLES)], "*"])
    enforcer.build_role_links()
    t0 = time.perf_counter()
    enforcer.enforce("citizen00000", "agreement:1", "item", "read")
    return time.perf_counter() - t0


def run(
    workdir,
    accounts: int = 10_000,
    agreements: int = 1000,
    rounds: int = 5,
    steady: int = 200,
    contrast_accounts: int = 1000,
    backends: tuple[str, ...] = ("sqlite", "postgresql"),
    pg_url: str | None = None,
) -> Figure:
    raw, notes = {}, []
    for backend in backends:
        if backend == "postgresql" and (why := postgres_available(pg_url)):
            notes.append(f"PostgreSQL skipped: {why}")
            continue
        say(f"policy: {accounts:,} accounts, {agreements:,} agreements on {backend}")
        raw[backend] = measure(backend, workdir, pg_url, accounts, agreements, rounds, steady)
    contrast = pycasbin_first_decision(contrast_accounts)
    raw[f"pycasbin_domain_manager_first_decision_ms_{contrast_accounts}_accounts"] = round(
        contrast * 1000, 1
    )
    raw["accounts"], raw["agreements"] = accounts, agreements
    firsts = [
        v[k] for v in raw.values() if isinstance(v, dict) for k in v if k.endswith("first_ms")
    ]
    ratios = [v[k] for v in raw.values() if isinstance(v, dict) for k in v if k.endswith("ratio")]
    worst = max(firsts)
    return Figure(
        7,
        f"first request after a policy change, {accounts:,} accounts / {agreements:,} agreements "
        "(ms; ratio = worst ÷ steady request)",
        max(ratios),
        "< 100 ms",
        worst < 100,
        raw,
        notes + [f"slowest first request after a change (median over rounds): {worst} ms"],
    )

"""The real stack for every test: Alembic-migrated databases (SQLite always, PostgreSQL when
GOVERN_TEST_DATABASE_URL is set), real keys, real tokens, the real app.

Each backend is migrated once per session. Every test then starts from a clean database (a copy
of the migrated SQLite file; emptied tables on PostgreSQL), because the app commits real
transactions from several connections, threads and processes, which one rolled-back savepoint
could not hold.
"""

from __future__ import annotations

import base64
import os
import shutil
import uuid
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import jinja2
import jinja2.bccache
import pytest
import sqlalchemy as sa
import werkzeug.routing.rules

from govern import audit, create_app, integrator, migrate, policy
from govern.clock import OfficeClock
from govern.context import Principal
from govern.crypto import ensure_keys
from govern.db import Base, make_engine, normalize_url
from govern.runtime import unit_of_work
from govern.services import accounts

PG_URL = os.environ.get("GOVERN_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
PASSWORD = "correct horse battery staple"
# The vendor of the agreement the factories make: vendor accounts belong to it unless told.
VENDOR = "上海今点软件有限公司"
FAST_ARGON = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}


def _build_url_builders_once() -> None:
    """Every test makes its own app, and werkzeug compiles two URL-building functions per route
    for each (parsing and compiling generated Python: two thirds of making an app, 130 routes).
    The function depends only on the rule's parts and defaults, never on the app, and reads
    the rule's own converters when it runs: it is compiled once per kind of rule and the same
    function serves every app. Test harness only; a served app is made once."""
    original = werkzeug.routing.rules.Rule._compile_builder
    built: dict = {}

    def compile_builder(rule, append_unknown: bool = True):
        defaults = rule.defaults or {}
        if set(defaults) & set(rule._converters):
            # (a default for a variable part is written into the function by its converter)
            return original(rule, append_unknown)
        key = (tuple(rule._trace), tuple(sorted(map(repr, defaults.items()))), append_unknown)
        if key not in built:
            built[key] = original(rule, append_unknown)
        return built[key]

    werkzeug.routing.rules.Rule._compile_builder = compile_builder


_build_url_builders_once()


class _TemplatesCompiledOnce(jinja2.BytecodeCache):
    """Each test's app has its own Jinja environment, which would compile every template it
    renders again (a sixth of a page test's time). The compiled code is kept for the test
    process, by template and checked against the template's source (Jinja's own bytecode cache
    protocol); every app of the suite configures its environment the same way."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if (code := self._code.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = _TemplatesCompiledOnce()


@pytest.fixture(scope="session")
def keys_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    ensure_keys(home)
    return home


@pytest.fixture(scope="session")
def pg_database():
    """A database of its own for this test session, so parallel runs never collide."""
    if not PG_URL:
        yield None
        return
    name = f"govern_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(normalize_url(PG_URL)).set(database=name)
    migrate.upgrade(url.render_as_string(hide_password=False))
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "govern.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def _empty_postgres(url: str) -> None:
    """Every table emptied and every sequence back at 1, in one transaction. DELETE, not
    TRUNCATE: TRUNCATE gives each of the tables a new file (and syncs it), 240 ms a test where
    deleting the few rows a test leaves takes 20."""
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    deletes = "; ".join(f"DELETE FROM {t.name}" for t in reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        # Triggers keep the trail append-only; only the test harness steps around them (and
        # around the foreign keys, whose checks are triggers too).
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql(deletes)
        conn.exec_driver_sql("SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'")
    engine.dispose()


@pytest.fixture(autouse=True)
def _integrators():
    """Every trail integrator thread a test started (its apps' and runtimes') stops with it: one
    left running would integrate in the next test's database (the tests on PostgreSQL share one
    database, emptied between them)."""
    yield
    integrator.stop_all()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path, pg_database, sqlite_template) -> str:
    if request.param == "sqlite":
        path = tmp_path / "govern.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = pg_database
        _empty_postgres(url)
    engine = make_engine(url, poolclass=sa.pool.NullPool)
    with sa.orm.Session(engine) as db:
        policy.seed_rules(db)
        audit.ensure_head(db)
        db.commit()
    engine.dispose()
    return url


@pytest.fixture
def settings_overrides(keys_home, database_url) -> dict:
    return {"home": keys_home, "database_url": database_url, "testing": True, **FAST_ARGON}


@pytest.fixture
def app(settings_overrides):
    app = create_app(settings_overrides)
    app.jinja_env.bytecode_cache = TEMPLATES
    yield app
    app.extensions["govern"].engine.dispose()


@pytest.fixture
def runtime(app):
    return app.extensions["govern"]


@pytest.fixture
def clock(runtime) -> OfficeClock:
    """The office's clock the app under test keeps: tests take their days from it, never from
    the host's calendar (the office's day and the host's differ for eight hours a day)."""
    return runtime.clock


@pytest.fixture
def today(clock) -> date:
    return clock.today()


@pytest.fixture
def client(app):
    return app.test_client()


@contextmanager
def as_operator(runtime):
    with unit_of_work(runtime, Principal.system()) as ctx:
        yield ctx


class Api:
    """Calls the API as a given account, with a real token from POST /auth/token."""

    def __init__(self, client, runtime):
        self.client = client
        self.runtime = runtime
        self.tokens: dict[str, str] = {}

    def user(
        self, username: str, role: str | None, password: str = PASSWORD, org: str | None = VENDOR
    ) -> int:
        """An account with one role (none: an office account without a role yet); a vendor
        account belongs to ``org``, the factories' vendor unless told."""
        role_given = role or "office_handler"
        org = org if role_given in policy.VENDOR_ROLES else None
        with as_operator(self.runtime) as ctx:
            created = accounts.create_user(ctx, username, role_given, password, org=org)
            if role is None:
                policy.unassign_role(ctx.db, created.username, role_given)
            return created.id

    def login(self, username: str, password: str = PASSWORD) -> str:
        response = self.client.post(
            "/api/v1/auth/token", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.get_json()
        self.tokens[username] = response.get_json()["access_token"]
        return self.tokens[username]

    def set_password(self, set_password_url: str, password: str = PASSWORD):
        """The holder of a one-time link chooses its password, as the public page does."""
        token = set_password_url.rsplit("/", 1)[1]
        return self.post("/api/v1/auth/set-password", json={"token": token, "password": password})

    def headers(self, username: str | None) -> dict:
        if username is None:
            return {}
        if username not in self.tokens:
            self.login(username)
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def call(self, method: str, path: str, as_: str | None = None, **kwargs):
        headers = {**self.headers(as_), **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path, as_=None, **kw):
        return self.call("GET", path, as_, **kw)

    def post(self, path, as_=None, **kw):
        return self.call("POST", path, as_, **kw)

    def delete(self, path, as_=None, **kw):
        return self.call("DELETE", path, as_, **kw)

    def day(self, offset: int = 0) -> str:
        """The office's day ``offset`` days from today, by the app's own clock, as ISO text."""
        return (self.runtime.clock.today() + timedelta(days=offset)).isoformat()

    # Small factories for domain objects, through the API like a user would.
    def agreement(self, as_="approver", **fields) -> dict:
        body = {
            "title": "保密协议",
            "owner": "常州市政务服务管理办公室",
            "vendor": VENDOR,
            "signed_on": "2022-06-27",
            "term_years": 5,
            "contract_value": "3985000.00",
            **fields,
        }
        response = self.post("/api/v1/agreements", as_, json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def item(
        self, agreement_id: int, content: bytes = b"secret design", as_="approver", **fields
    ) -> dict:
        body = {
            "title": "design",
            "category": "design",
            "fields": [],
            "content_b64": base64.b64encode(content).decode(),
            **fields,
        }
        response = self.post(f"/api/v1/agreements/{agreement_id}/items", as_, json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def audit_entries(self, **filters) -> list[dict]:
        """The trail as the database holds it (read directly, not through the auditor's API),
        after what is queued has been integrated, as every read of the trail does first."""
        with as_operator(self.runtime) as ctx:
            ctx.settle_trail()
        with self.runtime.sessions() as db:
            stmt = sa.select(audit.AuditEntry).order_by(audit.AuditEntry.seq)
            for name, value in filters.items():
                stmt = stmt.where(getattr(audit.AuditEntry, name) == value)
            return [audit.as_json(e) for e in db.scalars(stmt)]


@pytest.fixture
def api(client, runtime) -> Api:
    return Api(client, runtime)


@pytest.fixture
def office(api) -> Api:
    """The usual cast: an approver, a handler, a vendor lead, a staff member, an auditor."""
    for name, role in [
        ("approver", "office_approver"),
        ("handler", "office_handler"),
        ("lead", "vendor_lead"),
        ("staff", "vendor_staff"),
        ("audit", "auditor"),
    ]:
        api.user(name, role)
    return api


# Debian's Chromium for the browser tests (never a downloaded browser).
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    """One Chromium per test process, shared by every browser test file: Playwright's sync API
    runs one at a time in a process, so the fixture is defined here, once."""
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()

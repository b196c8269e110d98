"""Issue 9, part 5: the database itself states the rules (migration 0002), on both stores.

Each CHECK refuses a row that breaks it and each UNIQUE a second copy, written as plain SQL past
every service; the checkpoints refuse UPDATE and DELETE like the entries; a migrated database
has exactly the models' CHECKs; and a request that races another past a service's own check
gets a 409 from the database's rule, never a 500.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from govern import migrate
from govern.actions import Action
from govern.context import Target
from govern.db import Base, make_engine, normalize_url
from govern.errors import Conflict
from govern.models import CasbinRule
from govern.runtime import unit_of_work
from tests.conftest import PG_URL
from tests.disclosure_flow import office_today

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
D1, D2 = date(2026, 1, 1), date(2026, 12, 31)


def valid_row(table: str, n: int) -> dict:
    """A row of ``table`` that every rule accepts; ``n`` keeps unique columns apart. The rows
    it refers to (user 1, agreement 1, item 1, ...) are made by ``world``."""
    return {
        "users": {
            "username": f"u{n}",
            "display_name": "",
            "password_hash": "x",
            "active": True,
            "credential_version": 1,
            "created_at": NOW,
        },
        "agreements": {
            "title": "t",
            "owner": "o",
            "vendor": "v",
            "signed_on": D1,
            "term_years": 5,
            "contract_value": 1,
            "currency": "CNY",
            "status": "active",
            "created_at": NOW,
        },
        "items": {
            "agreement_id": 1,
            "title": "t",
            "category": "design",
            "fields": [],
            "sensitivity": "confidential",
            "status": "protected",
            "media_type": "application/octet-stream",
            "size": 0,
            "sha256": "ab" * 32,
            "kek_id": "kek-1",
            "created_at": NOW,
            "updated_at": NOW,
        },
        "disclosures": {
            "agreement_id": 1,
            "filed_by": 1,
            "third_party": "p",
            "purpose": "p",
            "form": "view",
            "starts_on": D1,
            "ends_on": D2,
            "state": "draft",
            "version": 1,
            "created_at": NOW,
            "updated_at": NOW,
        },
        "ndas": {
            "agreement_id": 1,
            "user_id": 1,
            "signed_on": D1,
            "expires_on": D2,
            "document_sha256": "ab" * 32,
            "registered_by": 1,
            "created_at": NOW,
        },
        "need_to_know": {
            "agreement_id": 1,
            "user_id": 1,
            "item_id": 1,
            "reason": "r",
            "granted_by": 1,
            "created_at": NOW,
        },
        "subcontractors": {
            "agreement_id": 1,
            "name": "s",
            "service": "s",
            "dsa_signed_on": D1,
            "dsa_expires_on": D2,
            "dsa_sha256": "ab" * 32,
            "purpose": "p",
            "until": D2,
            "registered_by": 1,
            "created_at": NOW,
        },
        "subcontractor_scopes": {
            "subcontractor_id": 1,
            "item_id": 1,
            "fields": [],
            "created_at": NOW,
        },
        "recalls": {
            "agreement_id": 1,
            "ordered_by": 1,
            "reason": "r",
            "everything": False,
            "kind": "recall",
            "created_at": NOW,
        },
        "return_confirmations": {
            "recall_id": 1,
            "item_id": 1,
            "holder_kind": "staff",
            "holder": f"u{n}",
        },
        "breaches": {
            "agreement_id": 1,
            "recorded_by": 1,
            "description": "d",
            "responsible_kind": "staff",
            "responsible": "u1",
            "audit_seqs": [],
            "liquidated_damages": 0,
            "created_at": NOW,
        },
        "outbox": {
            "dedup_key": f"k{n}",
            "kind": "recall",
            "recipient_role": "vendor_lead",
            "subject": "s",
            "body": "b",
            "created_at": NOW,
        },
        "password_links": {
            "user_id": 1,
            "token_sha256": f"{n:064d}",
            "purpose": "create",
            "created_by": "sysadm",
            "created_at": NOW,
            "needs_confirmation": False,
        },
        "casbin_rule": {"ptype": "p", "v0": f"role{n}", "v1": "*", "v2": "item", "v3": "read"},
        "audit_entries": {
            "seq": 1000 + n,
            "at": "2026-01-05T08:00:00.000000Z",
            "actor": "a",
            "role": "r",
            "action": "item:read",
            "target": "item:1",
            "decision": "allow",
            "rule": "r",
            "request_id": "-",
            "client": "-",
            "details": "{}",
            "prev_hash": "0" * 64,
            "hash": "0" * 64,
        },
        "audit_queue": {
            "queued_at": "2026-01-05T08:00:00.000000Z",
            "actor": "a",
            "role": "r",
            "action": "item:read",
            "target": "item:1",
            "decision": "allow",
            "rule": "r",
            "request_id": "-",
            "client": "-",
            "details": "{}",
        },
        "audit_checkpoints": {
            "seq": 1000 + n,
            "head_hash": "0" * 64,
            "at": "2026-01-05T08:00:00.000000Z",
            "kid": "k",
            "jws": "j",
        },
        # Single-row tables: the only valid row exists already (id 1).
        "policy_state": {"id": n, "version": 1},
        "audit_head": {
            "id": n,
            "seq": 0,
            "hash": "0" * 64,
            "at": "",
            "checkpoint_seq": 0,
            "checkpoint_at": "",
        },
    }[table]


WORLD = [
    "users",
    "agreements",
    "items",
    "disclosures",
    "ndas",
    "subcontractors",
    "recalls",
    "breaches",
]


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for table in WORLD:
            conn.execute(sa.insert(Base.metadata.tables[table]).values(valid_row(table, 1)))
    yield engine
    engine.dispose()


def insert(engine, table: str, n: int, **changes) -> None:
    with engine.begin() as conn:
        values = {**valid_row(table, n), **changes}
        conn.execute(sa.insert(Base.metadata.tables[table]).values(values))


def insert_as_stored(conn, table: str, values: dict) -> None:
    """Insert into the table as the database has it now (an older revision lacks later
    columns), with the values that table has."""
    stored = sa.Table(table, sa.MetaData(), autoload_with=conn)
    conn.execute(sa.insert(stored).values({k: v for k, v in values.items() if k in stored.c}))


def insert_old(engine, table: str, n: int, **changes) -> None:
    with engine.begin() as conn:
        insert_as_stored(conn, table, {**valid_row(table, n), **changes})


SEAL = {"approval_document": "{}", "approval_jws": "a.b.c", "approval_kid": "seal-1"}
# (constraint, table, what breaks it); each row is otherwise valid.
BAD_ROWS = [
    ("ck_agreements_status", "agreements", {"status": "paused"}),
    ("ck_agreements_terminated_on", "agreements", {"status": "terminated"}),
    ("ck_agreements_term_years", "agreements", {"term_years": 0}),
    ("ck_agreements_contract_value", "agreements", {"contract_value": -1}),
    ("ck_items_category", "items", {"category": "weapon"}),
    ("ck_items_sensitivity", "items", {"sensitivity": "top secret"}),
    ("ck_items_status", "items", {"status": "lost"}),
    ("ck_items_size", "items", {"size": -1}),
    ("ck_disclosures_form", "disclosures", {"form": "email"}),
    ("ck_disclosures_state", "disclosures", {"state": "limbo"}),
    ("ck_disclosures_window", "disclosures", {"starts_on": D2, "ends_on": D1}),
    ("ck_disclosures_approved_sealed", "disclosures", {"state": "approved"}),
    ("ck_disclosures_version", "disclosures", {"version": 0}),
    ("ck_ndas_term", "ndas", {"signed_on": D2, "expires_on": D1}),
    (
        "ck_subcontractors_dsa_term",
        "subcontractors",
        {"dsa_signed_on": D2, "dsa_expires_on": D1, "until": D1},
    ),
    ("ck_subcontractors_until", "subcontractors", {"until": D2 + timedelta(days=1)}),
    ("ck_subcontractors_state", "subcontractors", {"state": "approved by nobody"}),
    ("ck_subcontractors_approved_sealed", "subcontractors", {"state": "approved"}),
    ("ck_recalls_kind", "recalls", {"kind": "audit"}),
    ("ck_return_confirmations_holder_kind", "return_confirmations", {"holder_kind": "alien"}),
    (
        "ck_return_confirmations_outcome",
        "return_confirmations",
        {"outcome": "lost", "confirmed_at": NOW},
    ),
    ("ck_return_confirmations_confirmed", "return_confirmations", {"outcome": "returned"}),
    ("ck_breaches_responsible_kind", "breaches", {"responsible_kind": "office"}),
    ("ck_breaches_liquidated_damages", "breaches", {"liquidated_damages": -1}),
    ("ck_outbox_kind", "outbox", {"kind": "spam"}),
    ("ck_outbox_recipient", "outbox", {"recipient_role": None}),
    ("ck_casbin_rule_ptype", "casbin_rule", {"ptype": "x"}),
    ("ck_password_links_purpose", "password_links", {"purpose": "login"}),
    ("ck_policy_state_one_row", "policy_state", {}),
    ("ck_audit_head_one_row", "audit_head", {}),
    ("ck_audit_entries_decision", "audit_entries", {"decision": "maybe"}),
    ("ck_audit_queue_decision", "audit_queue", {"decision": "maybe"}),
]
SINGLE_ROW = {"policy_state", "audit_head"}


def model_checks() -> set[str]:
    return {
        c.name
        for table in Base.metadata.tables.values()
        for c in table.constraints
        if isinstance(c, sa.CheckConstraint)
    }


def test_every_check_of_the_models_has_a_bad_row_here():
    assert {name for name, _, _ in BAD_ROWS} == model_checks()


@pytest.mark.parametrize(("constraint", "table", "bad"), BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_each_check_refuses_a_bad_row(engine, constraint, table, bad):
    if table not in SINGLE_ROW:
        insert(engine, table, 2)  # the same row without the fault is accepted
    with pytest.raises(IntegrityError) as refused:
        insert(engine, table, 3, **bad)
    assert constraint in str(refused.value.orig)


def test_an_approved_request_carries_its_seal(engine):
    insert(engine, "disclosures", 2, state="approved", **SEAL)
    with engine.begin() as conn, pytest.raises(IntegrityError):
        conn.exec_driver_sql("UPDATE disclosures SET approval_jws = NULL WHERE state = 'approved'")


# (what, table, the copy's changes from row 2, the first copy's changes)
DUPLICATES = [
    ("one live need-to-know per person and item", "need_to_know", {}, {}),
    ("one renewal per NDA", "ndas", {"renews_id": 1}, {"renews_id": 1}),
    ("one scope per subcontractor and item", "subcontractor_scopes", {}, {}),
    ("one confirmation per recall, item, holder", "return_confirmations", {"holder": "u2"}, {}),
    ("one copy of a policy rule", "casbin_rule", {"v0": "role2"}, {}),
    ("one copy, a missing value being ''", "casbin_rule", {"v0": "role2", "v4": ""}, {}),
    ("one account per username", "users", {"username": "u2"}, {}),
    ("one link per token", "password_links", {"token_sha256": f"{2:064d}"}, {}),
]


@pytest.mark.parametrize(
    ("what", "table", "copy", "first"), DUPLICATES, ids=[d[0] for d in DUPLICATES]
)
def test_each_unique_refuses_a_second_copy(engine, what, table, copy, first):
    if table in ("need_to_know", "subcontractor_scopes", "return_confirmations"):
        insert(engine, "items", 2)
        insert(engine, table, 9, item_id=2)  # another item: no clash
    insert(engine, table, 2, **first)
    with pytest.raises(IntegrityError):
        insert(engine, table, 3, **copy)


def test_revoked_need_to_know_is_history_not_a_clash(engine):
    insert(engine, "need_to_know", 2, revoked_at=NOW)
    insert(engine, "need_to_know", 3, revoked_at=NOW)
    insert(engine, "need_to_know", 4)
    with pytest.raises(IntegrityError):
        insert(engine, "need_to_know", 5)


@pytest.mark.parametrize("table", ["audit_checkpoints", "audit_entries"])
@pytest.mark.parametrize(
    "statement", ["UPDATE {table} SET at = 'then' WHERE seq = 1002", "DELETE FROM {table}"]
)
def test_the_trail_and_its_checkpoints_are_append_only(engine, table, statement):
    insert(engine, table, 2)
    with pytest.raises(sa.exc.DBAPIError) as refused, engine.begin() as conn:
        conn.exec_driver_sql(statement.format(table=table))
    assert "append-only" in str(refused.value.orig)
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 1  # noqa: S608


def _checks(conn, schema=None) -> dict:
    inspector = sa.inspect(conn)
    return {
        table: sorted(
            (c["name"], c["sqltext"]) for c in inspector.get_check_constraints(table, schema)
        )
        for table in inspector.get_table_names(schema)
        if table != "alembic_version"
    }


def test_a_migrated_database_has_exactly_the_models_checks(database_url, tmp_path):
    """Alembic does not compare CHECK constraints: a model's tuple of allowed values that moves
    without a migration would go unseen. The database built from the models and the migrated
    one must hold the same CHECKs, as the database itself reports them."""
    migrated = make_engine(database_url, poolclass=sa.pool.NullPool)
    if migrated.dialect.name == "sqlite":
        fresh = make_engine(f"sqlite:///{tmp_path / 'models.db'}", poolclass=sa.pool.NullPool)
        Base.metadata.create_all(fresh)
        with fresh.connect() as conn:
            expected = _checks(conn)
        fresh.dispose()
    else:
        with migrated.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS from_models CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA from_models")
            Base.metadata.create_all(
                conn.execution_options(schema_translate_map={None: "from_models"})
            )
            expected = _checks(conn, "from_models")
            conn.exec_driver_sql("DROP SCHEMA from_models CASCADE")
    with migrated.connect() as conn:
        assert _checks(conn) == expected
    migrated.dispose()
    assert sum(len(v) for v in expected.values()) == len(model_checks())


# Existing data: upgrading a 0001 database that holds rows.


@pytest.fixture(params=["sqlite"] + (["postgresql"] if PG_URL else []))
def at_0001(request, tmp_path):
    """A database of its own at revision 0001, on each store."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        migrate.upgrade(url, "0001")
        yield url
        return
    name = f"govern_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(normalize_url(PG_URL)).set(database=name)
    url = url.render_as_string(hide_password=False)
    migrate.upgrade(url, "0001")
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _fill_0001(engine) -> None:
    """Rows of every kind a real instance holds, as 0001 stored them."""
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO policy_state (id, version) VALUES (1, 1)")
        insert_as_stored(conn, "audit_head", valid_row("audit_head", 1))
        for table in WORLD + ["need_to_know", "subcontractor_scopes", "return_confirmations"]:
            insert_as_stored(conn, table, valid_row(table, 1))
        for n in (1, 2):
            insert_as_stored(conn, "audit_entries", valid_row("audit_entries", n))
        insert_as_stored(conn, "audit_checkpoints", valid_row("audit_checkpoints", 1))
        # The same rule twice, as nothing stopped before 0002.
        for _ in range(2):
            insert_as_stored(conn, "casbin_rule", valid_row("casbin_rule", 1))


def _counts(engine) -> dict:
    with engine.connect() as conn:
        return {
            t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()  # noqa: S608
            for t in Base.metadata.tables
            if sa.inspect(conn).has_table(t)
        }


def test_an_instance_with_data_upgrades_and_keeps_it(at_0001):
    engine = make_engine(at_0001, poolclass=sa.pool.NullPool)
    _fill_0001(engine)
    before = _counts(engine)
    migrate.upgrade(at_0001, "0002")
    after = _counts(engine)
    # Every row is still there, but for the policy rule's exact copy.
    assert after == {**before, "casbin_rule": before["casbin_rule"] - 1}
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0002"
    # Rebuilt tables kept their rules: the trail's triggers, and the new ones hold.
    for statement in ("DELETE FROM audit_entries", "UPDATE audit_checkpoints SET kid = 'x'"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    with pytest.raises(IntegrityError, match="ck_items_status"):
        insert_old(engine, "items", 2, status="lost")
    engine.dispose()


def test_rows_that_break_a_new_rule_stop_the_upgrade_and_change_nothing(at_0001):
    engine = make_engine(at_0001, poolclass=sa.pool.NullPool)
    _fill_0001(engine)
    insert_old(engine, "items", 2, status="lost")
    insert_old(engine, "ndas", 2, signed_on=D2, expires_on=D1)
    insert_old(engine, "need_to_know", 2)  # a second live one for the same person and item
    with pytest.raises(RuntimeError) as stopped:
        migrate.upgrade(at_0001, "0002")
    message = str(stopped.value)
    assert "items [2] break ck_items_status" in message
    assert "ndas [2] break ck_ndas_term" in message
    assert "need_to_know rows duplicated (first copies [1]) break uq_need_to_know_live" in message
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0001"
        # Not even the duplicate policy rule was touched.
        assert conn.exec_driver_sql("SELECT count(*) FROM casbin_rule").scalar() == 2
    insert_old(engine, "items", 3, status="still no such status")  # no CHECK was added
    engine.dispose()


def test_the_downgrade_returns_to_0001(at_0001):
    engine = make_engine(at_0001, poolclass=sa.pool.NullPool)
    _fill_0001(engine)
    migrate.upgrade(at_0001, "0002")
    migrate.downgrade(at_0001, "0001")
    insert_old(engine, "items", 2, status="anything")  # the CHECKs are gone
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_entries")  # 0001's own triggers are kept
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_checkpoints")  # 0002's are gone
    engine.dispose()


RULE_KEYS = ("ptype", "v0", "v1", "v2", "v3")
LINK_RULES = [
    ("p", "system_admin", "*", "user", "enable"),
    ("p", "security_admin", "*", "user", "confirm"),
]


def _rule_count(conn, rule) -> int:
    where = " AND ".join(f"{k} = :{k}" for k in RULE_KEYS)
    query = sa.text(f"SELECT count(*) FROM casbin_rule WHERE {where}")  # noqa: S608
    return conn.execute(query, dict(zip(RULE_KEYS, rule, strict=True))).scalar()


def test_a_seeded_store_gains_the_link_rules_once_and_gives_them_back(at_0001):
    """0006 adds the enable and confirm rules to a store seeded before it, never a second copy
    of one already there (the rule table's unique index would stop the upgrade)."""
    engine = make_engine(at_0001, poolclass=sa.pool.NullPool)
    _fill_0001(engine)
    migrate.upgrade(at_0001, "0003")
    with engine.begin() as conn:
        insert_as_stored(conn, "casbin_rule", dict(zip(RULE_KEYS, LINK_RULES[1], strict=True)))
        version = conn.exec_driver_sql("SELECT version FROM policy_state").scalar()
    migrate.upgrade(at_0001, "0006")
    with engine.connect() as conn:
        assert [_rule_count(conn, rule) for rule in LINK_RULES] == [1, 1]
        # The running engines reload: the rules moved.
        assert conn.exec_driver_sql("SELECT version FROM policy_state").scalar() == version + 1
    migrate.downgrade(at_0001, "0003")
    with engine.connect() as conn:
        assert [_rule_count(conn, rule) for rule in LINK_RULES] == [0, 0]
        assert not sa.inspect(conn).has_table("password_links")
    engine.dispose()


# Races: two requests pass a service's check together; the database lets one through.


def test_a_change_refused_at_commit_is_a_conflict_and_the_denials_still_reach_the_trail(
    runtime, api
):
    """The trail failing is 503 (test_policy_audit); the change itself refused is 409."""
    refused = pytest.raises(Conflict, match="uq_casbin_rule_line|UNIQUE constraint failed")
    with refused, unit_of_work(runtime) as ctx:
        ctx.record(Action.POLICY_ADD, Target("policy", "p"), "deny", "kept refusal", keep=True)
        ctx.record(Action.POLICY_ADD, Target("policy", "p"), "allow", "queued allow")
        for _ in range(2):
            ctx.db.add(CasbinRule(ptype="p", v0="auditor", v1="*", v2="audit", v3="search"))
    rules = [e["rule"] for e in api.audit_entries(action="policy:add")]
    assert rules == ["kept refusal"]


def _race(app, statement_start: str, calls) -> list:
    """Run two requests in two threads, each on its own connection, and hold both just before
    they send ``statement_start...`` so that both have passed the service's own check."""
    engine = app.extensions["govern"].engine
    barrier = threading.Barrier(2, timeout=30)
    held = threading.local()

    def hold(_conn, _cursor, statement, _params, _context, _many):
        if statement.startswith(statement_start) and not getattr(held, "done", False):
            held.done = True
            barrier.wait()

    results: list = [None, None]

    def run(i):
        client = app.test_client()
        results[i] = calls(client)

    sa.event.listen(engine, "before_cursor_execute", hold)
    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sa.event.remove(engine, "before_cursor_execute", hold)
    return sorted(((r.status_code, r.get_json()) for r in results), key=lambda r: r[0])


def _staff_with_nda(office) -> tuple[int, int]:
    aid = office.agreement()["id"]
    item = office.item(aid)["id"]
    today = office_today(office)
    nda = {
        "username": "staff",
        "signed_on": (today - timedelta(days=10)).isoformat(),
        "expires_on": (today + timedelta(days=300)).isoformat(),
        "document_sha256": "ab" * 32,
    }
    assert office.post(f"/api/v1/agreements/{aid}/ndas", "lead", json=nda).status_code == 201
    return aid, item


def test_two_racing_grants_of_the_same_need_to_know_give_one_201_and_one_409(office, app):
    aid, item = _staff_with_nda(office)
    headers = office.headers("lead")
    body = {"username": "staff", "item_ids": [item], "reason": "operations"}

    def grant(client):
        return client.post(f"/api/v1/agreements/{aid}/need-to-know", headers=headers, json=body)

    (won, _), (lost, error) = _race(app, "INSERT INTO need_to_know", grant)
    assert (won, lost) == (201, 409)
    # The database's rule refused it, not the service's check (both had passed it).
    assert (
        "uq_need_to_know_live" in error["error"]["message"]
        or "need_to_know.user_id" in (error["error"]["message"])
    )
    listed = office.get(f"/api/v1/agreements/{aid}/need-to-know", "lead").get_json()
    assert len(listed["need_to_know"]) == 1
    assert len(office.audit_entries(action="ntk:grant", decision="allow")) == 1


def test_two_racing_confirmations_of_one_return_give_one_200_and_one_409(office, app):
    aid, item = _staff_with_nda(office)
    need = {"username": "staff", "item_ids": [item], "reason": "operations"}
    assert (
        office.post(f"/api/v1/agreements/{aid}/need-to-know", "lead", json=need).status_code == 201
    )
    recall = office.post(
        f"/api/v1/agreements/{aid}/recalls", "approver", json={"item_ids": [item], "reason": "r"}
    ).get_json()
    (confirmation,) = recall["open_confirmations"]
    headers = office.headers("lead")

    def confirm(client):
        return client.post(
            f"/api/v1/return-confirmations/{confirmation['id']}/confirm",
            headers=headers,
            json={"outcome": "returned"},
        )

    (won, body), (lost, error) = _race(app, "UPDATE return_confirmations", confirm)
    assert (won, lost) == (200, 409)
    assert body["confirmed"] is True
    assert "confirmed by someone else" in error["error"]["message"]
    entries = office.audit_entries(action="recall:confirm")
    assert [e["decision"] for e in entries] == ["allow", "deny"] or [
        e["decision"] for e in entries
    ] == ["deny", "allow"]

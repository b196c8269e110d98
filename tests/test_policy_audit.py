"""Issue 3: casbin decisions, the route audit, and the tamper-evident, fail-closed trail."""

from __future__ import annotations

import csv
import io
import json
import re
import threading

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from govern import audit, create_app
from govern.actions import Action
from govern.api import OPERATIONS, PUBLIC_ENDPOINTS
from govern.cli import main
from govern.context import Principal, Target, decide
from govern.runtime import unit_of_work
from govern.services import trail
from govern.web import PAGES, PUBLIC_PAGES
from tests.conftest import PASSWORD, Api

# Routes anyone may call: logging in, the public keys, the OpenAPI document, static files.
EXPECTED_PUBLIC = {
    "api.issue_token",
    "api.public_keys",
    "api.openapi_document",
    "api.shared_item",
    "web.login",
    # A holder choosing its password with a one-time link, or changing it with the current one:
    # each proves who it is by what it holds, like signing in.
    "api.set_password",
    "web.set_password",
    "api.change_password",
    # The public check of a printed approval letter's seal (its QR code); never its content.
    "web.seal_check",
    "web.subcontractor_seal_check",
    # The token holders' page: the token they post is the credential; the service decides each use.
    "web.shared_page",
    "web.shared_download",
    # The trail's Merkle tree for witnesses and anyone holding an entry: the newest signed
    # checkpoint, consistency proofs, and co-signatures (accepted only from registered witnesses).
    "api.audit_checkpoint",
    "api.audit_consistency",
    "api.audit_cosign",
    "static",
}


def test_every_route_is_public_or_behind_a_decision(app):
    declared = {f"api.{op.endpoint}" for op in OPERATIONS} | PAGES | {"static"}
    public = PUBLIC_ENDPOINTS | PUBLIC_PAGES
    for rule in app.url_map.iter_rules():
        assert rule.endpoint in declared, f"{rule.rule} is not declared with @endpoint or @page"
    assert public <= EXPECTED_PUBLIC | {e for e in public if e.startswith("api.health")}
    for op in OPERATIONS:
        assert op.public or op.action is not None, op.rule


def _fill(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", "1", rule)


def test_no_protected_api_route_answers_without_a_caller_or_a_role(office):
    """Unauthenticated: 401. Signed in with no role at all: 403, audited, before any validation."""
    office.user("nobody", None)
    agreement = office.agreement()
    office.item(agreement["id"])
    for op in OPERATIONS:
        if op.public:
            continue
        path = "/api/v1" + _fill(op.rule)
        kwargs = {"json": {}} if op.method in ("POST", "PATCH", "PUT") else {}
        assert office.call(op.method, path, None, **kwargs).status_code == 401, path
        response = office.call(op.method, path, "nobody", **kwargs)
        # Token-holder routes take no account at all, so an account's token is not accepted.
        assert response.status_code == (401 if op.holder else 403), (
            op.method,
            path,
            response.get_json(),
        )
    denials = office.audit_entries(actor="nobody", decision="deny")
    assert len(denials) == len([op for op in OPERATIONS if not op.public and not op.holder])
    assert all(d["rule"] for d in denials)


def test_authorization_comes_before_state_and_input(office):
    """A role that may never create items is refused whatever the body or the agreement."""
    response = office.post("/api/v1/agreements/999/items", "audit", json={"title": 5})
    assert response.status_code == 403


# Policy administration.


def test_only_security_admin_edits_policy_and_every_change_is_audited(office):
    office.user("sec", "security_admin")
    for who in ("approver", "audit", "lead"):
        assert (
            office.post(
                "/api/v1/policies",
                who,
                json={"ptype": "p", "values": ["vendor_staff", "*", "agreement", "create"]},
            ).status_code
            == 403
        )
    rules = office.get("/api/v1/policies", "sec").get_json()["rules"]
    assert ["office_approver", "*", "agreement", "create"] in [r["values"] for r in rules]
    added = office.post(
        "/api/v1/policies",
        "sec",
        json={"ptype": "p", "values": ["office_handler", "*", "agreement", "create"]},
    )
    assert added.status_code == 201
    assert (
        office.post(
            "/api/v1/agreements",
            "handler",
            json={
                "title": "t",
                "owner": "o",
                "vendor": "v",
                "signed_on": "2022-06-27",
                "term_years": 5,
                "contract_value": 1,
            },
        ).status_code
        == 201
    )
    removed = office.delete(f"/api/v1/policies/{added.get_json()['id']}", "sec")
    assert removed.status_code == 200
    assert office.post("/api/v1/agreements", "handler", json={}).status_code == 403
    changes = [
        e
        for e in office.audit_entries(actor="sec")
        if e["action"] in ("policy:add", "policy:remove")
    ]
    assert [(c["action"], c["decision"]) for c in changes] == [
        ("policy:add", "allow"),
        ("policy:remove", "allow"),
    ]
    assert changes[0]["details"]["values"] == ["office_handler", "*", "agreement", "create"]


@pytest.mark.parametrize(
    "values",
    [
        ["auditor", "*", "item", "read"],
        ["security_admin", "*", "disclosure", "approve"],
        ["system_admin", "*", "item", "read"],
    ],
)
def test_policy_edits_cannot_undo_separation_of_duties(office, values):
    office.user("sec", "security_admin")
    response = office.post("/api/v1/policies", "sec", json={"ptype": "p", "values": values})
    assert response.status_code == 409


def test_bad_policy_rules_are_400(office):
    office.user("sec", "security_admin")
    for values in (
        ["wizard", "*", "item", "read"],
        ["vendor_staff", "agreement:x", "item", "read"],
        ["vendor_staff", "*", "item", "fly"],
        ["vendor_staff", "*", "item"],
    ):
        assert (
            office.post(
                "/api/v1/policies", "sec", json={"ptype": "p", "values": values}
            ).status_code
            == 400
        )
    assert (
        office.post(
            "/api/v1/policies", "sec", json={"ptype": "g", "values": ["ghost", "auditor", "*"]}
        ).status_code
        == 400
    )


def test_nobody_changes_their_own_roles(office):
    office.user("sec", "security_admin")
    response = office.post(
        "/api/v1/policies", "sec", json={"ptype": "g", "values": ["sec", "office_approver", "*"]}
    )
    assert response.status_code == 403


def test_a_policy_change_reaches_another_worker_on_its_next_decision(office, settings_overrides):
    """Two app instances on one database: a change made through one is enforced by the other."""
    other_app = create_app(settings_overrides)
    other = Api(other_app.test_client(), other_app.extensions["govern"])
    office.user("sec", "security_admin")
    body = {
        "title": "t",
        "owner": "o",
        "vendor": "v",
        "signed_on": "2022-06-27",
        "term_years": 5,
        "contract_value": 1,
    }
    assert other.post("/api/v1/agreements", "handler", json=body).status_code == 403
    added = office.post(
        "/api/v1/policies",
        "sec",
        json={"ptype": "p", "values": ["office_handler", "*", "agreement", "create"]},
    )
    assert added.status_code == 201
    assert other.post("/api/v1/agreements", "handler", json=body).status_code == 201
    office.delete(f"/api/v1/policies/{added.get_json()['id']}", "sec")
    assert other.post("/api/v1/agreements", "handler", json=body).status_code == 403
    other_app.extensions["govern"].engine.dispose()


def test_roles_in_one_agreement_do_not_reach_another(office):
    office.user("sec", "security_admin")
    office.user("wei", None)
    first, second = office.agreement(), office.agreement(title="another")
    office.post(
        "/api/v1/policies",
        "sec",
        json={"ptype": "g", "values": ["wei", "office_handler", f"agreement:{first['id']}"]},
    )
    assert office.get(f"/api/v1/agreements/{first['id']}", "wei").status_code == 200
    assert office.get(f"/api/v1/agreements/{second['id']}", "wei").status_code == 403


# The trail.


def test_entries_carry_who_what_when_and_why(office):
    office.agreement()
    entry = office.audit_entries(action="agreement:create")[-1]
    assert entry["actor"] == "approver" and entry["role"] == "office_approver"
    assert (
        entry["decision"] == "allow" and entry["rule"] == "p, office_approver, *, agreement, create"
    )
    assert entry["target"].startswith("agreement:") and entry["request_id"] and entry["client"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", entry["at"])
    logins = office.audit_entries(action="auth:token")
    assert logins and PASSWORD not in json.dumps(office.audit_entries())


def test_the_auditor_searches_with_filters_and_a_cursor(office):
    agreement = office.agreement()
    for _ in range(3):
        office.get(f"/api/v1/items/{office.item(agreement['id'])['id']}/content", "staff")
    page = office.get("/api/v1/audit?actor=staff&decision=deny&limit=2", "audit").get_json()
    assert len(page["entries"]) == 2 and page["next_cursor"]
    assert all(e["actor"] == "staff" and e["decision"] == "deny" for e in page["entries"])
    rest = office.get(
        f"/api/v1/audit?actor=staff&decision=deny&limit=2&cursor={page['next_cursor']}", "audit"
    ).get_json()
    assert len(rest["entries"]) == 1 and rest["next_cursor"] is None
    seqs = [e["seq"] for e in page["entries"] + rest["entries"]]
    assert seqs == sorted(seqs, reverse=True)
    first_at = page["entries"][-1]["at"]
    assert office.get(f"/api/v1/audit?actor=staff&until={first_at}", "audit").get_json()[
        "entries"
    ] == [
        e
        for e in office.get("/api/v1/audit?actor=staff&limit=1000", "audit").get_json()["entries"]
        if e["at"] < first_at
    ]
    assert (
        office.get("/api/v1/audit?action=item:read&since=2999-01-01", "audit").get_json()["entries"]
        == []
    )
    for bad in (
        "decision=maybe",
        "since=yesterday",
        "limit=0",
        "action=nothing:here",
        "cursor=abc",
    ):
        response = office.get(f"/api/v1/audit?{bad}", "audit")
        assert response.status_code == 400, bad
    for who in ("approver", "lead", "staff"):
        assert office.get("/api/v1/audit", who).status_code == 403


def test_export_streams_csv_and_jsonl(office):
    office.agreement()
    rows = list(
        csv.DictReader(
            io.StringIO(
                office.get("/api/v1/audit/export?format=csv", "audit").get_data(as_text=True)
            )
        )
    )
    assert rows[0]["seq"] == "1" and {"actor", "action", "decision", "rule", "hash"} <= set(rows[0])
    lines = (
        office.get("/api/v1/audit/export?format=jsonl&actor=approver", "audit")
        .get_data(as_text=True)
        .splitlines()
    )
    assert lines and all(json.loads(line)["actor"] == "approver" for line in lines)
    assert office.get("/api/v1/audit/export?format=xml", "audit").status_code == 400


def _verify(office) -> dict:
    return office.get("/api/v1/audit/verify", "audit").get_json()


def _raw(runtime, *statements):
    """Tamper with the trail as someone with database access would, around the triggers."""
    with runtime.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            for table in ("audit_entries", "audit_checkpoints", "audit_tree_checkpoints"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_update")
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        for statement in statements:
            conn.exec_driver_sql(statement)


def _seed(office, n=6):
    office.login("audit")
    agreement = office.agreement()
    for _ in range(n):
        office.get(f"/api/v1/agreements/{agreement['id']}/clock", "approver")
    # Every entry in the chain before anyone tampers with it (on PostgreSQL they may still be
    # queued for the integrator, which would otherwise race the tampering).
    office.audit_entries()


def test_verify_passes_on_an_intact_trail(office):
    _seed(office)
    result = _verify(office)
    assert result["ok"] is True and result["first_bad"] is None and result["entries"] >= 8


@pytest.mark.parametrize(
    ("statements", "first_bad"),
    [
        (["UPDATE audit_entries SET actor = 'someone' WHERE seq = 5"], 5),
        (["UPDATE audit_entries SET rule = 'p, anyone, *, item, read' WHERE seq = 4"], 4),
        (["DELETE FROM audit_entries WHERE seq = 6"], 6),
        (
            [
                "UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 5",
                "INSERT INTO audit_entries SELECT 5, at, 'intruder', role, action, target, decision, rule, request_id, client, details, prev_hash, hash FROM audit_entries WHERE seq = 1005",
                "UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1005",
                "UPDATE audit_head SET seq = seq + 1",
            ],
            5,
        ),
        (
            [
                "UPDATE audit_entries SET seq = 1000 WHERE seq = 5",
                "UPDATE audit_entries SET seq = 5 WHERE seq = 6",
                "UPDATE audit_entries SET seq = 6 WHERE seq = 1000",
            ],
            5,
        ),
    ],
    ids=["edited", "edited-rule", "deleted", "inserted", "reordered"],
)
def test_verify_finds_the_first_tampered_entry(office, runtime, statements, first_bad):
    _seed(office)
    _raw(runtime, *statements)
    result = _verify(office)
    assert result["ok"] is False and result["first_bad"] == first_bad
    # The parallel walk (govern audit verify --jobs N) finds the same entry, wherever the
    # ranges happen to split.
    for jobs in (2, 3, 4):
        assert _verify_parallel(runtime, jobs).first_bad == first_bad, jobs


def _verify_parallel(runtime, jobs):
    with runtime.engine.connect() as conn:
        return audit.verify_parallel(
            conn, runtime.settings.database_url, runtime.keys, jobs, min_per_job=1
        )


def test_parallel_verify_finishes_while_the_trail_is_being_written(office, runtime):
    ROUNDS = 40  # noqa: N806
    """The parallel walk's processes are not forked from a process whose other threads are inside
    the database driver (its integrator, a request): such a child could inherit a lock held at
    that moment (SQLite's allocator mutex) and wait on it for ever. Here a thread writes to the
    trail, in this process, for the whole time of several parallel verifications; each one must
    come back, and verify."""
    _seed(office, n=20)
    agreement = office.agreement()
    target = Target("agreement", agreement["id"], f"agreement:{agreement['id']}")
    stop = threading.Event()

    def write():
        while not stop.is_set():
            with unit_of_work(runtime, Principal("user", "audit", "audit", None)) as ctx:
                decide(ctx, Action.AGREEMENT_READ, target).record()

    writers = [threading.Thread(target=write, daemon=True) for _ in range(2)]
    results: list = []

    def verify_rounds():
        # As `govern audit verify --jobs 2` reads: the head, the entries and the tree of one
        # snapshot (trail.verify), here split even for a small trail.
        for _ in range(ROUNDS):
            with unit_of_work(runtime) as ctx, trail._snapshot(ctx) as conn:
                url, keys = runtime.settings.database_url, runtime.keys
                results.append(audit.verify_parallel(conn, url, keys, 2, min_per_job=1))

    walker = threading.Thread(target=verify_rounds, daemon=True)
    for writer in writers:
        writer.start()
    try:
        walker.start()
        walker.join(120)
    finally:
        stop.set()
        for writer in writers:
            writer.join(30)
    assert not walker.is_alive(), "a parallel verification never came back"
    assert len(results) == ROUNDS and all(r.ok for r in results), results


def test_parallel_verify_passes_an_intact_trail_and_finds_a_cut_tail(office, runtime):
    _seed(office, n=20)
    total = len(office.audit_entries())
    for jobs in (2, 3, 5):
        result = _verify_parallel(runtime, jobs)
        assert result.ok and result.entries == total, jobs
    _raw(runtime, f"DELETE FROM audit_entries WHERE seq > {total - 3}")
    for jobs in (2, 3, 5):
        result = _verify_parallel(runtime, jobs)
        assert not result.ok and result.first_bad == total - 2, jobs


def test_verify_finds_a_tail_cut_after_a_checkpoint(
    office, runtime, settings_overrides, monkeypatch
):
    _seed(office)
    monkeypatch.setenv("GOVERN_HOME", str(settings_overrides["home"]))
    runner = CliRunner()
    made = runner.invoke(
        main, ["audit", "checkpoint", "--database-url", settings_overrides["database_url"]]
    )
    assert made.exit_code == 0 and "checkpoint at entry" in made.output
    signed = int(made.output.split()[-1])
    _raw(
        runtime,
        f"DELETE FROM audit_entries WHERE seq >= {signed - 1}",
        f"UPDATE audit_head SET seq = {signed - 2}",
    )
    result = runner.invoke(
        main, ["audit", "verify", "--database-url", settings_overrides["database_url"]]
    )
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[0] == str(signed - 1)


def test_verify_command_exits_0_on_an_intact_trail(office, settings_overrides, monkeypatch):
    _seed(office)
    monkeypatch.setenv("GOVERN_HOME", str(settings_overrides["home"]))
    result = CliRunner().invoke(
        main, ["audit", "verify", "--database-url", settings_overrides["database_url"]]
    )
    assert result.exit_code == 0, result.output


def test_checkpoints_are_made_every_n_entries(settings_overrides):
    app = create_app({**settings_overrides, "checkpoint_every": 5})
    api = Api(app.test_client(), app.extensions["govern"])
    api.user("approver", "office_approver")
    for _ in range(12):
        api.get("/api/v1/agreements", "approver")
        # What is queued joins the chain now, as for any trail read: one batch per request, so
        # the chain passes 5 and 10 in separate batches (a batch past several multiples of 5
        # signs once, at its end, whichever worker's sequencer took it).
        api.audit_entries()
    with app.extensions["govern"].engine.connect() as conn:
        seqs = [
            r[0]
            for r in conn.execute(sa.text("SELECT size FROM audit_tree_checkpoints ORDER BY size"))
        ]
    assert len(seqs) >= 2 and all(b - a >= 1 for a, b in zip(seqs, seqs[1:], strict=False))
    assert all(size // 5 > before // 5 for before, size in zip([0, *seqs], seqs, strict=False))
    app.extensions["govern"].engine.dispose()


# Fail closed.


def _entry_table(runtime) -> str:
    """Where an action's entry first lands, committed with it: the queue (group commit,
    govern.audit), on both stores."""
    return "audit_queue"


def _break_appends(runtime, table=None):
    table = table or _entry_table(runtime)
    with runtime.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION govern_test_refuse() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'disk full'; END; $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER govern_test_refuse BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION govern_test_refuse()"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE TRIGGER govern_test_refuse BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )


def _mend_appends(runtime, table=None):
    table = table or _entry_table(runtime)
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER IF EXISTS govern_test_refuse"
            + (f" ON {table}" if conn.dialect.name == "postgresql" else "")
        )


# The entry lands in the queue, committed with the action: its failing stops the action. The
# tree grows in the sequencer's batch after it (a failure there loses nothing:
# tests/test_audit_queue.py).
def test_when_the_trail_cannot_be_written_nothing_happens(office, runtime):
    table = _entry_table(runtime)
    agreement = office.agreement()
    item = office.item(agreement["id"], content=b"not for your eyes")
    office.login("approver")
    before = len(office.audit_entries())
    _break_appends(runtime, table)
    try:
        read = office.get(f"/api/v1/items/{item['id']}/content", "approver")
        assert read.status_code == 503 and b"not for your eyes" not in read.data
        assert read.get_json()["error"]["code"] == "audit_unavailable"
        created = office.post(
            "/api/v1/agreements",
            "approver",
            json={
                "title": "t",
                "owner": "o",
                "vendor": "v",
                "signed_on": "2022-06-27",
                "term_years": 5,
                "contract_value": 1,
            },
        )
        assert created.status_code == 503
    finally:
        _mend_appends(runtime, table)
    assert len(office.get("/api/v1/agreements", "approver").get_json()["agreements"]) == 1
    assert len(office.audit_entries()) == before + 1  # only the listing just now
    assert _verify(office)["ok"] is True


# Concurrent writers.


def test_concurrent_writers_make_one_gapless_chain(office, runtime):
    agreement = office.agreement()
    staff = Principal("user", "staff", "staff", None)
    target = Target("agreement", agreement["id"], f"agreement:{agreement['id']}")
    errors = []

    def worker():
        try:
            for _ in range(200):
                with unit_of_work(runtime, staff) as ctx:
                    decide(ctx, Action.AGREEMENT_READ, target)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    reads = office.audit_entries(action="agreement:read", actor="staff")
    assert len(reads) == 1600
    result = _verify(office)
    assert result["ok"] is True
    seqs = [e["seq"] for e in office.audit_entries()]
    assert seqs == list(range(1, len(seqs) + 1))


def test_an_auditor_changes_nothing_and_reads_no_content(office):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    assert office.get(f"/api/v1/items/{item['id']}/content", "audit").status_code == 403
    for op in OPERATIONS:
        if op.public or op.holder or op.method == "GET":
            continue
        response = office.call(op.method, "/api/v1" + _fill(op.rule), "audit", json={})
        assert response.status_code == 403, (op.method, op.rule)


def test_a_forged_checkpoint_is_found(office, runtime, settings_overrides, monkeypatch):
    _seed(office)
    monkeypatch.setenv("GOVERN_HOME", str(settings_overrides["home"]))
    url = settings_overrides["database_url"]
    assert CliRunner().invoke(main, ["audit", "checkpoint", "--database-url", url]).exit_code == 0
    _raw(runtime, "UPDATE audit_tree_checkpoints SET root = '" + "0" * 64 + "'")
    result = _verify(office)
    assert result["ok"] is False and "checkpoint" in result["problem"]

"""The trail's Merkle tree as served: every proof the app gives checks against roots computed
here from all the entries in the database (RFC 6962 from its definitions, see test_tlog), signed
checkpoints open with the published key, co-signatures are accepted only from registered
witnesses, a proof checks offline, and an existing trail migrates into a tree."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.common import chain
from govern import audit, migrate, tlog
from govern.cli import main
from govern.crypto import verifier_from_jwks
from govern.db import make_engine, normalize_url
from tests.conftest import PG_URL
from tests.test_tlog import mth, path, subproof


def _seed(office, n=12):
    office.login("audit")
    agreement = office.agreement()
    for _ in range(n):
        office.get(f"/api/v1/agreements/{agreement['id']}/clock", "approver")


def _leaf_data(runtime, upto: int) -> list[bytes]:
    """Each entry's hashed form, rebuilt here from the stored columns."""
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT seq, at, actor, role, action, target, decision, rule, request_id, "
                "client, details, prev_hash FROM audit_entries WHERE seq <= :n ORDER BY seq"
            ),
            {"n": upto},
        ).all()
    return [("govern-audit-v1\x00" + "\x00".join(map(str, r))).encode() for r in rows]


def _office_verifier(office) -> tlog.Verifier:
    return verifier_from_jwks(office.client.get("/api/v1/keys").get_json()["keys"])


def test_proofs_check_against_roots_from_all_entries(office, runtime):
    _seed(office)
    size = len(office.audit_entries())
    leaves = _leaf_data(runtime, size)
    assert len(leaves) == size
    for first in sorted({1, 2, 3, size // 2, size - 1, size}):
        answer = office.client.get(f"/api/v1/audit/proof/consistency?from={first}&to={size}")
        assert answer.status_code == 200
        body = answer.get_json()
        hashes = [tlog.unb64(h, "hash") for h in body["hashes"]]
        assert (body["from"], body["to"]) == (first, size)
        assert hashes == (subproof(first, leaves, True) if first < size else [])
        tlog.verify_consistency(first, size, mth(leaves[:first]), mth(leaves), hashes)
    for seq in sorted({1, 2, size // 3, size - 1, size}):
        for tree in sorted({seq, size}):
            answer = office.get(f"/api/v1/audit/entries/{seq}/proof?size={tree}", "audit")
            assert answer.status_code == 200, answer.get_json()
            proof = answer.get_json()
            assert (proof["leaf_index"], proof["tree_size"]) == (seq - 1, tree)
            assert [tlog.unb64(h, "h") for h in proof["hashes"]] == path(seq - 1, leaves[:tree])
    # Bad sizes name their field; a staff member gets no proofs.
    bad = office.client.get(f"/api/v1/audit/proof/consistency?from={size + 5}&to={size}")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "from"
    bad = office.client.get("/api/v1/audit/proof/consistency?from=1&to=999999")
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "to"
    assert office.get("/api/v1/audit/entries/1/proof", "staff").status_code == 403


def test_the_checkpoint_is_a_signed_note_over_the_tree(office, runtime):
    _seed(office, n=3)
    answer = office.client.get("/api/v1/audit/checkpoint")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    checkpoint, cosignatures = tlog.open_checkpoint(
        answer.get_data(as_text=True), _office_verifier(office)
    )
    assert cosignatures == []
    assert checkpoint.root == mth(_leaf_data(runtime, checkpoint.size))
    # The checkpoint key is not a seal key: it is the one OKP key, and seals stay EC.
    kinds = {k["kty"] for k in office.client.get("/api/v1/keys").get_json()["keys"]}
    assert kinds == {"EC", "OKP"}


def _witness_key(tmp_path, name="witness.example/vendor"):
    key_file = tmp_path / "witness.key"
    made = CliRunner().invoke(main, ["witness", "keygen", str(key_file), "--name", name])
    assert made.exit_code == 0, made.output
    return key_file, made.output.strip().splitlines()[-1]


def test_cosignatures_only_from_registered_witnesses_over_office_checkpoints(
    office, runtime, settings_overrides, monkeypatch, tmp_path
):
    _seed(office, n=3)
    note = office.client.get("/api/v1/audit/checkpoint").get_data(as_text=True)
    body, _ = tlog.parse_note(note)
    key_file, pubkey = _witness_key(tmp_path)
    name, _, key = tlog.parse_private_key(key_file.read_text())
    line = tlog.cosign(body, name, key, int(time.time())).line()

    def post(checkpoint, cosignature):
        return office.client.post(
            "/api/v1/audit/cosignatures",
            json={"checkpoint": checkpoint, "cosignature": cosignature},
        )

    unknown = post(body, line)
    assert (
        unknown.status_code == 400
        and "not a registered witness" in unknown.get_json()["error"]["message"]
    )

    monkeypatch.setenv("GOVERN_HOME", str(settings_overrides["home"]))
    url = settings_overrides["database_url"]
    added = CliRunner().invoke(
        main, ["audit", "witness", "add", name, pubkey, "--database-url", url]
    )
    assert added.exit_code == 0, added.output
    assert office.audit_entries(action="witness:add")[0]["details"]["witness"] == name

    other = Ed25519PrivateKey.generate()
    forged = tlog.cosign(body, name, other, int(time.time())).line()
    assert post(body, forged).status_code == 400
    not_signed = tlog.Checkpoint(_office_verifier(office).name, 2, bytes(32)).body()
    line2 = tlog.cosign(not_signed, name, key, int(time.time())).line()
    assert post(not_signed, line2).get_json()["error"]["field"] == "checkpoint"

    assert post(body, line).status_code == 201
    served = office.client.get("/api/v1/audit/checkpoint").get_data(as_text=True)
    _, cosigs = tlog.open_checkpoint(served, _office_verifier(office))
    assert [c.name for c in cosigs] == [name]
    tlog.verify_cosignature(body, cosigs[0], tlog.Verifier.parse(pubkey))
    with runtime.engine.connect() as conn:
        assert audit.verify(conn, runtime.keys).ok


def test_a_proof_checks_offline_and_an_edit_does_not(
    office, settings_overrides, monkeypatch, tmp_path
):
    _seed(office, n=5)
    monkeypatch.setenv("GOVERN_HOME", str(settings_overrides["home"]))
    url = settings_overrides["database_url"]
    runner = CliRunner()
    proved = runner.invoke(main, ["audit", "prove", "4", "--database-url", url])
    assert proved.exit_code == 0, proved.output
    proof_file, keys_file = tmp_path / "proof.json", tmp_path / "keys.json"
    proof_file.write_text(proved.stdout)
    keys_file.write_text(json.dumps(office.client.get("/api/v1/keys").get_json()))
    # Offline: no database, no GOVERN_HOME.
    monkeypatch.setenv("GOVERN_HOME", str(tmp_path / "nowhere"))
    checked = runner.invoke(
        main, ["audit", "check-proof", str(proof_file), "--keys", str(keys_file)]
    )
    assert checked.exit_code == 0 and "valid: entry 4" in checked.output
    proof = json.loads(proved.stdout)
    proof["entry"]["actor"] = "someone else"
    proof_file.write_text(json.dumps(proof))
    checked = runner.invoke(
        main, ["audit", "check-proof", str(proof_file), "--keys", str(keys_file)]
    )
    assert checked.exit_code == 1 and "invalid" in checked.output


# Migration: a trail written before the tree existed gets its tree from its entries.


@pytest.fixture(params=["sqlite"] + (["postgresql"] if PG_URL else []))
def fresh_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    admin = sa.create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    name = f"govern_migrate_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield sa.engine.make_url(normalize_url(PG_URL)).set(database=name).render_as_string(False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def test_an_existing_trail_migrates_into_the_tree(fresh_url, keys_home):
    from govern.config import load_settings
    from govern.runtime import build_runtime

    migrate.upgrade(fresh_url, "0001")
    engine = make_engine(fresh_url, poolclass=sa.pool.NullPool)
    rows = [r for batch in chain(1500, batch=500) for r in batch]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(audit.AuditEntry.__table__),
            [dict(zip(audit.COLUMNS, r, strict=True)) for r in rows],
        )
        conn.exec_driver_sql(
            "INSERT INTO audit_head (id, seq, hash, at, checkpoint_seq, checkpoint_at) "
            f"VALUES (1, 1500, '{rows[-1][-1]}', '{rows[-1][1]}', 0, '')"
        )
    migrate.upgrade(fresh_url)
    data = [audit.entry_text(r[:12]) for r in rows]
    with engine.connect() as conn:
        assert audit.stored_root(conn, 1500) == mth(data)
        assert audit.stored_root(conn, 1000) == mth(data[:1000])
        runtime = build_runtime(load_settings({"home": keys_home, "database_url": fresh_url}))
        try:
            assert audit.verify(conn, runtime.keys).ok
        finally:
            runtime.engine.dispose()
    engine.dispose()


def test_the_verify_page_shows_each_witness_and_how_far_it_cosigned(
    office, app, settings_overrides, monkeypatch, tmp_path
):
    from tests.pages import Reader, text

    _seed(office, n=2)
    auditor = Reader(app).login("audit")
    page = text(auditor.submit("/audit/verify", form_on="/audit"))
    assert "No outside witness is registered" in page
    key_file, pubkey = _witness_key(tmp_path)
    name, _, key = tlog.parse_private_key(key_file.read_text())
    monkeypatch.setenv("GOVERN_HOME", str(settings_overrides["home"]))
    url = settings_overrides["database_url"]
    assert (
        CliRunner()
        .invoke(main, ["audit", "witness", "add", name, pubkey, "--database-url", url])
        .exit_code
        == 0
    )
    note = office.client.get("/api/v1/audit/checkpoint").get_data(as_text=True)
    body, _ = tlog.parse_note(note)
    size = tlog.Checkpoint.parse(body).size
    line = tlog.cosign(body, name, key, int(time.time())).line()
    posted = office.client.post(
        "/api/v1/audit/cosignatures", json={"checkpoint": body, "cosignature": line}
    )
    assert posted.status_code == 201
    page = auditor.submit("/audit/verify", form_on="/audit")
    row = re.search(r'<table id="witnesses">.*?</table>', page.get_data(as_text=True), re.S).group(
        0
    )
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[0] == name and cells[2] == str(size)
    # When it was registered, on the office's clock and labelled with its zone (not raw UTC).
    assert cells[1].endswith("GMT+08:00"), cells[1]

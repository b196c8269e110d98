"""Issue 5: approvals sealed before `govern keys rotate` still verify after it, and the running
app seals with the new key without a restart. This module has a key folder of its own, because
rotating changes the keys every other test shares."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from jose import jwt

from govern.cli import main
from govern.crypto import ensure_keys, verify_jws
from tests.disclosure_flow import approved_request


@pytest.fixture
def own_home(tmp_path):
    home = tmp_path / "home"
    ensure_keys(home)
    return home


@pytest.fixture
def settings_overrides(own_home, database_url) -> dict:
    from tests.conftest import FAST_ARGON

    return {"home": own_home, "database_url": database_url, "testing": True, **FAST_ARGON}


def test_old_approvals_verify_after_rotation_and_new_ones_use_the_new_key(
    office, own_home, monkeypatch, tmp_path, database_url
):
    agreement = office.agreement()
    item = office.item(agreement["id"])
    before = approved_request(office, agreement["id"], [item["id"]])
    old = office.get(f"/api/v1/disclosures/{before['id']}/approval", "lead").get_json()
    assert len(office.client.get("/api/v1/keys").get_json()["keys"]) == 1

    monkeypatch.setenv("GOVERN_HOME", str(own_home))
    rotated = CliRunner().invoke(main, ["keys", "rotate", "--database-url", database_url])
    assert rotated.exit_code == 0, rotated.output
    new_kid = rotated.output.strip()
    assert new_kid != old["key_id"]
    # The rotation is in the trail, naming the new key and the one it retired.
    (entry,) = office.audit_entries(action="key:rotate")
    assert entry["target"] == f"key:{new_kid}" and entry["decision"] == "allow"
    assert entry["details"]["retired"] == [old["key_id"]]

    # The running app publishes both keys at once and seals new approvals with the new one.
    keys = office.client.get("/api/v1/keys").get_json()
    assert {k["kid"] for k in keys["keys"]} == {old["key_id"], new_kid}
    assert verify_jws(old["jws"], keys["keys"]).decode() == old["document"]
    after = approved_request(office, agreement["id"], [item["id"]])
    new = office.get(f"/api/v1/disclosures/{after['id']}/approval", "lead").get_json()
    assert new["key_id"] == new_kid == jwt.get_unverified_header(new["jws"])["kid"]

    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(keys))
    for sealed in (old, new):
        path = tmp_path / f"approval-{sealed['request_id']}.json"
        path.write_text(json.dumps(sealed))
        result = CliRunner().invoke(
            main, ["approval", "verify", str(path), "--keys", str(keys_file)]
        )
        assert result.exit_code == 0, result.output
    # Without the retired key the old approval no longer verifies: the key set matters.
    only_new = {"keys": [k for k in keys["keys"] if k["kid"] == new_kid]}
    keys_file.write_text(json.dumps(only_new))
    path = tmp_path / f"approval-{old['request_id']}.json"
    result = CliRunner().invoke(main, ["approval", "verify", str(path), "--keys", str(keys_file)])
    assert result.exit_code == 1 and "no key" in result.output

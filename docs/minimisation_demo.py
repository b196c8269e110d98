"""Data minimisation (clause 3.7) shown end to end on the demo agreement.

Runs `govern init` and `govern demo` in a fresh GOVERN_HOME, then, through the real app (Flask test
client, real tokens, real encryption), prints each demo data item as the office holds it beside
what the demo subcontractor receives with its client token, and its minimisation report.

    .venv/bin/python docs/minimisation_demo.py > docs/minimisation-demo.txt
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from click.testing import CliRunner


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="govern-demo-"))
    os.environ["GOVERN_HOME"] = str(home)
    from govern import create_app
    from govern.cli import main as govern

    runner = CliRunner()
    assert runner.invoke(govern, ["init"]).exit_code == 0
    out = runner.invoke(govern, ["demo"]).output
    passwords = {line.split()[0]: line.split()[2] for line in out.splitlines() if "office_" in line}
    client_token = out.split("client_token")[1].split()[-1]

    app = create_app({"home": home})
    client = app.test_client()
    login = {"username": "approver", "password": passwords["approver"]}
    office = client.post("/api/v1/auth/token", json=login).get_json()["access_token"]
    as_office = {"Authorization": f"Bearer {office}"}
    as_sub = {"Authorization": f"Bearer {client_token}"}
    subs = client.get("/api/v1/agreements/1/subcontractors", headers=as_office).get_json()
    sub = subs["subcontractors"][0]
    print(f"Subcontractor {sub['id']}: {sub['name']}")
    print(f"  purpose: {sub['purpose']}")
    print(f"  until {sub['until']}, DSA {sub['dsa_signed_on']} to {sub['dsa_expires_on']}")
    items = client.get("/api/v1/agreements/1/items", headers=as_office).get_json()["items"]
    titles = {i["id"]: (i["title"], i["media_type"]) for i in items}
    for scope in sub["scopes"]:
        title, media_type = titles[scope["item_id"]]
        print()
        print(f"=== item {scope['item_id']}: {title} ({media_type})")
        print(f"    record fields: {scope['fields']}")
        full = client.get(f"/api/v1/items/{scope['item_id']}/content", headers=as_office)
        print(f"--- the office's copy (GET /api/v1/items/{scope['item_id']}/content, approver):")
        print(full.data.decode())
        got = client.get(f"/api/v1/shared/items/{scope['item_id']}", headers=as_sub)
        print(f"--- the subcontractor receives (GET /api/v1/shared/items/{scope['item_id']}):")
        print(f"    {got.status_code} {got.headers['Content-Type']}")
        print(got.data.decode())
    outside = next(i for i in items if i["category"] == "credential")
    refused = client.get(f"/api/v1/shared/items/{outside['id']}", headers=as_sub)
    print()
    print(f"=== item {outside['id']} ({outside['title']}), outside the record:")
    print(f"    {refused.status_code} {refused.get_json()['error']['message']}")
    report = client.get(f"/api/v1/subcontractors/{sub['id']}/report", headers=as_office)
    print()
    print(f"=== GET /api/v1/subcontractors/{sub['id']}/report")
    print(json.dumps(report.get_json(), ensure_ascii=False, indent=2))
    app.extensions["govern"].engine.dispose()
    shutil.rmtree(home)


if __name__ == "__main__":
    main()

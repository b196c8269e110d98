"""A schema-driven fuzzer against the served API: no input may make a server error.

schemathesis reads /api/v1/openapi.json from the real app served over HTTP, generates requests
from the path parameters, query parameters and body schemas it describes (valid ones, and ones
that break them on purpose), and checks that none is answered with a 5xx. It runs as an office
approver, a vendor lead and an auditor, each with a real bearer token, over the demo's dataset:
the cases are generated once, and each is sent as all three (tests/fuzz_roles.py), one after the
other on the same data, so each role also meets what the others' requests left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from govern import demo
from govern.runtime import unit_of_work

ROLES = {"office_approver": "approver", "vendor_lead": "lead", "auditor": "audit"}
# Cases per operation and phase: small enough that one role's run stays well under a minute.
MAX_EXAMPLES = int(os.environ.get("GOVERN_FUZZ_EXAMPLES", "8"))


class _QuietHandler(WSGIRequestHandler):
    """Thousands of requests: the access log would bury the test's own output."""

    def log_request(self, *args) -> None:
        pass


@pytest.fixture
def served(app, runtime):
    """The demo's dataset, and the app answering on a free local port."""
    with unit_of_work(runtime) as ctx:
        passwords = {name: password for name, _role, password in demo.load(ctx)}
    demo.load_vendor_side(runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", passwords
    server.shutdown()
    thread.join()


def _token(base: str, username: str, password: str) -> str:
    response = requests.post(
        f"{base}/api/v1/auth/token", json={"username": username, "password": password}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


HOOKS = Path(__file__).with_name("fuzz_roles.py")


def _run_schemathesis(
    base: str, token: str, others: dict[str, str], workdir: Path
) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base}/api/v1/openapi.json",
        "--checks",
        "not_a_server_error,no_other_role_gets_a_server_error",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20220627",
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--continue-on-failure",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(workdir / "report.json"),
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        "GOVERN_FUZZ_OTHERS": json.dumps(others),
        "GOVERN_FUZZ_TALLY": str(workdir / "tally.json"),
    }
    # Run in the test's own directory: schemathesis keeps its case cache in the working directory.
    return subprocess.run(
        command, capture_output=True, text=True, timeout=1200, cwd=workdir, env=env
    )


def test_no_input_makes_a_server_error(served, tmp_path):
    base, passwords = served
    tokens = {role: _token(base, name, passwords[name]) for role, name in ROLES.items()}
    first, *others = ROLES
    run = _run_schemathesis(base, tokens[first], {r: tokens[r] for r in others}, tmp_path)
    summary = json.loads((tmp_path / "report.json").read_text())
    cases = summary["test_cases"]
    tally = json.loads((tmp_path / "tally.json").read_text())
    print(f"\n{cases['generated']} cases generated, {cases['with_failures']} with failures")
    print(f"answers to the other roles: {tally}")
    # Every operation was tried, with enough cases that a run which silently tested nothing fails.
    assert summary["operations"]["tested"] == summary["operations"]["total"] > 40
    assert cases["generated"] > 1000
    assert cases["with_failures"] == 0 and run.returncode == 0, run.stdout[-8000:]
    # Every other role was sent every case, and was answered (2xx to 4xx, never 5xx).
    for role in others:
        assert sum(tally[role].values()) >= cases["generated"], (role, tally)
        assert set(tally[role]) <= {"2xx", "3xx", "4xx"}, (role, tally)

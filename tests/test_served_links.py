"""A one-time set-password link through `govern serve` (gunicorn): the holder opens it, and the
access log never shows its token."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner

from govern.cli import main
from tests.conftest import VENDOR

PASSWORD = "the operator's own password"


def _serving(log, server: subprocess.Popen) -> str:
    """The address gunicorn bound. It is asked for port 0, so the kernel picks a free port: a
    port picked by the test and bound by gunicorn later could be taken meanwhile by another
    test's server, and the test would then talk to that one. Once gunicorn says where it
    listens, the socket is bound: requests wait in its backlog until the worker is up."""
    while True:
        log.seek(0)
        written = log.read()
        if found := re.search(r"Listening at: (http://\S+)", written):
            return found.group(1)
        if server.poll() is not None:
            raise AssertionError("govern serve exited:\n" + written)
        time.sleep(0.05)  # polling a file for a line, not waiting for time to pass


def test_the_access_log_never_shows_a_link_token(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("GOVERN_HOME", str(home))
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    made = runner.invoke(
        main,
        ["user", "create", "sysadm", "--role", "system_admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert made.exit_code == 0, made.output
    log = (tmp_path / "serve.log").open("w+")
    govern = Path(sys.executable).with_name("govern")
    server = subprocess.Popen(
        [str(govern), "serve", "--port", "0", "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "GOVERN_HOME": str(home)},
    )
    try:
        base = _serving(log, server)
        token = requests.post(
            f"{base}/api/v1/auth/token", json={"username": "sysadm", "password": PASSWORD}
        ).json()["access_token"]
        created = requests.post(
            f"{base}/api/v1/users",
            json={"username": "zhao", "role": "vendor_staff", "org": VENDOR},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
        url = created.json()["set_password_url"]
        assert url.startswith(f"{base}/set-password/")
        page = requests.get(url)
        assert page.status_code == 200 and "zhao" in page.text
    finally:
        server.terminate()
        server.wait(timeout=30)
    log.seek(0)
    written = log.read()
    assert "GET /set-password/[redacted]" in written
    assert url.rsplit("/", 1)[1] not in written
    # gunicorn's line, as its default format writes it; the bearer token nowhere.
    assert re.search(r'"POST /api/v1/users HTTP/1.1" 201 \d+ "-" "python-requests/', written)
    assert token not in written and token.split(".")[2] not in written

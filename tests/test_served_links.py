"""A one-time set-password link through `govern serve` (gunicorn): the holder opens it, and the
access log never shows its token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import requests
from click.testing import CliRunner

from govern.cli import main
from tests.conftest import VENDOR

PASSWORD = "the operator's own password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(base: str, server: subprocess.Popen) -> None:
    # Readiness, not timing: ask until the server answers or dies.
    while server.poll() is None:
        try:
            requests.get(f"{base}/api/v1/health", timeout=2)
            return
        except requests.ConnectionError:
            continue
    raise AssertionError("govern serve exited")


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
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w+")
    govern = Path(sys.executable).with_name("govern")
    server = subprocess.Popen(
        [str(govern), "serve", "--port", str(port), "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "GOVERN_HOME": str(home)},
    )
    try:
        _wait_until_up(base, server)
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

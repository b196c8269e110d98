"""The access log's line (govern.accesslog.RedactingLogger, gunicorn's logger class under `govern
serve`): gunicorn's own line for gunicorn's own format, atom for atom, but with no credential in
it, whatever format an operator configures. Driven through gunicorn's own Config and logging
setup; the request and response are gunicorn's shapes (a status, headers as pairs, bytes sent).
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from govern.accesslog import RedactingLogger

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
NOW = "[07/Dec/2026:12:00:00 +0800]"


def _line(logger_class, access_format: str | None, path: str = "/api/v1/items/7/content") -> str:
    cfg = Config()
    cfg.set("accesslog", "-")
    if access_format is not None:
        cfg.set("access_log_format", access_format)
    logger = logger_class(cfg)
    out = io.StringIO()
    # The line as gunicorn's access handler formats it ("%(message)s"), into a string.
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.access_log.handlers = [handler]
    logger.now = lambda: NOW
    request = SimpleNamespace(
        headers=[
            ("HOST", "govern.example"),
            ("USER-AGENT", 'curl/8 "quoted"'),
            ("AUTHORIZATION", f"Bearer {TOKEN}"),
            ("COOKIE", f"session={TOKEN}"),
        ]
    )
    response = SimpleNamespace(
        status="200 OK",
        sent=1024,
        headers=[("Content-Type", "application/octet-stream"), ("Set-Cookie", f"s={TOKEN}")],
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": path,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_USER_AGENT": 'curl/8 "quoted"',
        "HTTP_AUTHORIZATION": f"Bearer {TOKEN}",
        "HTTP_COOKIE": f"session={TOKEN}",
    }
    logger.access(response, request, environ, timedelta(seconds=1, microseconds=2500))
    logger.access_log.handlers = []
    return out.getvalue()


@pytest.mark.parametrize(
    "access_format",
    [
        None,  # gunicorn's default: what `govern serve` writes
        '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s %(B)s "%(f)s" "%(a)s" %(m)s %(U)s %(q)s',
        "%(H)s %(T)s %(D)s %(M)s %(L)s %(p)s %(x)s %({host}i)s %({content-type}o)s",
        "%({remote_addr}e)s %({missing}i)s %({user-agent}i)s",
    ],
)
def test_the_line_is_gunicorns_own(access_format):
    mine = _line(RedactingLogger, access_format)
    assert mine == _line(Logger, access_format)
    assert mine.startswith(("10.0.0.7 - - " + NOW, "10.0.0.7 - ", "HTTP/1.1 1 1002500 1002"))


def test_no_credential_is_written_whatever_the_format_asks_for():
    asks = (
        "%({authorization}i)s %({cookie}i)s %({set-cookie}o)s %({http_authorization}e)s "
        "%({HTTP_COOKIE}e)s %({Authorization}i)s"
    )
    line = _line(RedactingLogger, asks)
    assert line.split() == ["[redacted]"] * 6
    assert TOKEN in _line(Logger, asks)  # gunicorn's own logger writes them


def test_a_secret_path_is_cut_from_the_request_line_and_the_path():
    line = _line(RedactingLogger, '"%(r)s" %(U)s', "/set-password/s3cr3t-t0ken")
    assert line.strip() == '"GET /set-password/[redacted] HTTP/1.1" /set-password/[redacted]'

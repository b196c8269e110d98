"""Operational logs, beside the trail: configured once, a request id on every line.

The trail is evidence; the log is for whoever runs govern. Every record carries ``request_id``
(the request's id inside a request, ``-`` outside one), so a 500's traceback can be matched with
the answer the caller saw. Bound SQL values never reach the log (the engine hides them).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
_configured = False


# The request id of a request served outside Flask's request context (govern.api.direct).
_SERVING: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


@contextmanager
def request_id_as(request_id: str) -> Iterator[None]:
    """Log lines written inside carry ``request_id`` (a request served without Flask)."""
    token = _SERVING.set(request_id)
    try:
        yield
    finally:
        _SERVING.reset(token)


def _current_request_id() -> str:
    from flask import has_request_context

    serving = _SERVING.get()
    if serving is not None:
        return serving

    from govern import http  # imported late: the app package imports this module first

    return http.request_id() if has_request_context() else "-"


def configure(level: int | str = logging.INFO) -> None:
    """Give every log record a request id, and a handler to the root logger when nobody (a WSGI
    server, a test runner) has given it one. Done once per process, however many apps it makes."""
    global _configured
    if _configured:
        return
    _configured = True
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            record.request_id = _current_request_id()
        except Exception:  # a log line must never fail for want of its id
            record.request_id = "-"
        return record

    logging.setLogRecordFactory(factory)
    # casbin writes the whole model and policy at INFO on every load; govern logs the load itself.
    logging.getLogger("casbin").setLevel(logging.WARNING)
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
        root.setLevel(level)

"""The served app's access log (gunicorn's), without the secrets that travel with a request: a
one-time set-password link's token and the handle of a page that shows a secret once are cut off
the path, and credentials in headers (a bearer token, a session cookie) are never written,
whatever ``access_log_format`` asks for.

The line is gunicorn's, atom for atom (``%(h)s``, ``%(r)s``, ``%({user-agent}i)s``...), but each
atom is worked out only when the format asks for it. gunicorn builds every atom for every
request, one per header and per environ variable (the bearer token among them) too, and then
copies them all: a sixth of a served audited read's time in the worker, for a line that uses
nine of them.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Mapping

from gunicorn.glogging import Logger

_SECRET_PATH = re.compile(r"(/set-password/|/shown/)[^\s?/]+")
# Headers (and their environ variables) whose values are credentials.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
REDACTED = "[redacted]"


def redact(text: str | None) -> str | None:
    return _SECRET_PATH.sub(r"\1[redacted]", text) if text else text


class RedactingLogger(Logger):
    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        try:
            self.access_log.info(
                self.cfg.access_log_format, Atoms(self, resp, req, environ, request_time)
            )
        except Exception:  # noqa: BLE001 - as gunicorn's: a log line never fails a request
            self.error(traceback.format_exc())


def _missing(_atoms: Atoms) -> str:
    return "-"


def _status(atoms: Atoms) -> str:
    status = atoms.resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


def _sent(atoms: Atoms):
    return getattr(atoms.resp, "sent", None)


# gunicorn's atoms (glogging.Logger.atoms), each a function of the request's Atoms.
_ATOMS = {
    "h": lambda a: a.environ.get("REMOTE_ADDR", "-"),
    "l": _missing,
    "u": lambda a: a.logger._get_user(a.environ) or "-",
    "t": lambda a: a.logger.now(),
    "r": lambda a: redact(
        f"{a.environ['REQUEST_METHOD']} {a.environ['RAW_URI']} {a.environ['SERVER_PROTOCOL']}"
    ),
    "s": _status,
    "m": lambda a: a.environ.get("REQUEST_METHOD"),
    "U": lambda a: redact(a.environ.get("PATH_INFO")),
    "q": lambda a: a.environ.get("QUERY_STRING"),
    "H": lambda a: a.environ.get("SERVER_PROTOCOL"),
    "b": lambda a: "-" if _sent(a) is None else str(_sent(a)),
    "B": _sent,
    "f": lambda a: a.environ.get("HTTP_REFERER", "-"),
    "a": lambda a: a.environ.get("HTTP_USER_AGENT", "-"),
    "T": lambda a: a.took.seconds,
    "D": lambda a: a.took.seconds * 1_000_000 + a.took.microseconds,
    "M": lambda a: a.took.seconds * 1000 + a.took.microseconds // 1000,
    "L": lambda a: f"{a.took.seconds}.{a.took.microseconds:06d}",
    "p": lambda a: f"<{os.getpid()}>",
}


class Atoms(Mapping):
    """One request's atoms for the access log's ``%`` format, each worked out when asked for;
    quoted as gunicorn quotes them (SafeAtoms); ``-`` for one that is unknown or missing."""

    def __init__(self, logger, resp, req, environ, took):
        self.logger = logger
        self.resp, self.req, self.environ, self.took = resp, req, environ, took

    def __getitem__(self, key: str):
        value = self._value(key) if key.startswith("{") else _ATOMS.get(key, _missing)(self)
        return value.replace('"', '\\"') if isinstance(value, str) else value

    def _value(self, key: str):
        """``{name}i``: a request header; ``{name}o``: a response header; ``{name}e``: an
        environ variable (names in any case). Credentials are written as ``[redacted]``."""
        name, kind = key[1:-2].lower(), key[-2:]
        if kind == "}e":
            pairs, secret = self.environ, name.removeprefix("http_").replace("_", "-")
        elif kind in ("}i", "}o"):
            pairs = getattr(self.req, "headers", self.req) if kind == "}i" else self.resp.headers
            secret = name
        else:
            return "-"
        for header, value in pairs.items() if hasattr(pairs, "items") else pairs:
            if header.lower() == name:
                return REDACTED if secret in _SECRET_HEADERS else value
        return "-"

    def __iter__(self):
        return iter(_ATOMS)

    def __len__(self) -> int:
        return len(_ATOMS)

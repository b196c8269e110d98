"""The served app's access log (gunicorn's), without the secrets that travel in a path: a
one-time set-password link's token, and the handle of a page that shows a secret once, are cut
off before the line is written."""

from __future__ import annotations

import re

from gunicorn.glogging import Logger

_SECRET_PATH = re.compile(r"(/set-password/|/shown/)[^\s?/]+")


def redact(text: str | None) -> str | None:
    return _SECRET_PATH.sub(r"\1[redacted]", text) if text else text


class RedactingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U"):
            atoms[key] = redact(atoms.get(key))
        return atoms

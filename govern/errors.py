"""Domain exceptions. Services raise them; one handler per surface (API, pages) maps them."""

from __future__ import annotations

from datetime import datetime

from govern.messages import Msg


class GovernError(Exception):
    """A refusal. ``message`` is a :class:`~govern.messages.Msg` (a key with parameters whose
    text is English); ``at`` is the name the English text is prefixed with ("ends_on: ..."),
    usually the field's. The API answers the English text with the key and the parameters; the
    pages render the key in the reader's language."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, at: str | None = None, **extra):
        self.msg = message if isinstance(message, Msg) else None
        self.at = at
        text = f"{at}: {message}" if at else str(message)
        super().__init__(text)
        self.message = text
        self.field = field
        self.extra = extra

    @property
    def key(self) -> str | None:
        return self.msg.key if self.msg is not None else None

    def as_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.msg is not None:
            body.update(self.msg.as_dict())
        if self.field:
            body["field"] = self.field
        body.update(self.extra)
        return body


class Invalid(GovernError):
    status = 400
    code = "invalid"


class Unauthenticated(GovernError):
    status = 401
    code = "unauthenticated"


class Forbidden(GovernError):
    status = 403
    code = "forbidden"


class NotFound(GovernError):
    status = 404
    code = "not_found"


class Conflict(GovernError):
    status = 409
    code = "conflict"


class TooLarge(GovernError):
    status = 413
    code = "too_large"


class TooManyFailedLogins(GovernError):
    status = 429
    code = "too_many_failed_logins"

    def __init__(self, resets_in: int, until: datetime):
        # ``until`` is when the lockout ends (UTC); pages show it in the office's time.
        super().__init__(
            Msg("auth.locked", until=until),
            resets_in=resets_in,
            until=until.isoformat(timespec="seconds"),
        )
        self.resets_in = resets_in
        self.until = until


class AuditUnavailable(GovernError):
    """The trail could not be written, so the action did not happen (fail closed)."""

    status = 503
    code = "audit_unavailable"


class MailUnavailable(GovernError):
    """The mail server could not be reached; nothing was marked sent."""

    status = 503
    code = "mail_unavailable"

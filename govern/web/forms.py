"""Forms of the pages. WTForms brings the CSRF token and the rendering; the rules on the values
are the API's own schemas and services, so a page never keeps a second copy of a rule. A service's
refusal (400 / 409 / 413 naming a field) is shown next to that field."""

from __future__ import annotations

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.fields.choices import SelectChoice, SelectMultipleField

from govern.actions import Action
from govern.context import Ctx, require_role_for
from govern.errors import Conflict, GovernError, Invalid, TooLarge
from govern.schema import Schema
from govern.web.words import say

# The schema's messages, as extraction sees them, so that they are shown in the reader's language.
SCHEMA_MESSAGES = (
    _l("is required"),
    _l("must not be empty"),
    _l("must be a date as YYYY-MM-DD"),
    _l("is not a real calendar date"),
    _l("must be an amount such as 3985000.00"),
    _l("must be a non-negative amount with at most two decimals"),
    _l("must be an integer"),
    _l("must be 64 hexadecimal digits"),
    _l("has duplicates"),
    _l("is not valid base64"),
)
FIELD_ERRORS = (Invalid, Conflict, TooLarge)


class Form(FlaskForm):
    """A page form that remembers the status its page answers with (400 / 409 on errors)."""

    status = 200

    def payload(self) -> dict:
        """The values as the API's schema takes them; forms that reshape a value override this."""
        out = {}
        for name, field in self._fields.items():
            if name == "csrf_token":
                continue
            many = isinstance(field, SelectMultipleField)
            out[name] = (field.data or []) if many else field.data
        return out

    def fail(self, exc: GovernError, aliases: dict[str, str] | None = None) -> None:
        """Put a service's refusal next to the field it names (or above the form)."""
        name = (aliases or {}).get(exc.field or "", exc.field or "")
        name = name.split("[", 1)[0]
        if exc.msg is not None:
            # The message without the field's name (it stands next to the field), in the
            # reader's language.
            message = say(exc.msg)
        else:
            message = exc.message
            if exc.field and message.startswith(f"{exc.field}: "):
                message = message[len(exc.field) + 2 :]
            message = gettext(message) if message in _KNOWN else message
        field = self._fields.get(name) if name else None
        if field is not None and name != "csrf_token":
            field.errors = [*field.errors, message]
        else:
            self.form_errors.append(message)
        self.status = exc.status

    def checked(self, ctx: Ctx | None = None, action: Action | None = None) -> bool:
        """Submitted with a good CSRF token and passing WTForms' own (presence) checks.

        With ``action``, a caller none of whose roles may ever do it is refused (403, audited)
        before anything it sent is looked at, as the API does."""
        if self.is_submitted() and action is not None:
            require_role_for(ctx, action)
        if self.validate_on_submit():
            return True
        if self.is_submitted():
            self.status = 400
        return False


_KNOWN = {m._args[0] for m in SCHEMA_MESSAGES}


def choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, text) for value, text in pairs]


def attempt(ctx, form: Form, call, aliases: dict[str, str] | None = None):
    """Run ``call`` (a service, or a schema's validate and a service); on a refusal that names a
    field, undo the change (keeping the denials' trail) and show it on the form. Forbidden and
    NotFound still go to the error page."""
    try:
        return call()
    except FIELD_ERRORS as exc:
        ctx.fail()
        form.fail(exc, aliases)
        return None


def submitted(ctx, form: Form, action: Action, schema: Schema, service, *args, aliases=None):
    """A page's form, sent: the caller's roles first (403), then the API's schema over the form's
    values, then the API's service ``service(ctx, *args, data)``. A refusal naming a field is
    shown next to it. Returns the service's result, or None when not sent or refused."""
    if not form.checked(ctx, action):
        return None
    return attempt(
        ctx, form, lambda: service(ctx, *args, validated(schema, form.payload())), aliases
    )


def validated(schema: Schema, payload: dict) -> dict:
    """The API's schema over the form's values; blank optional values count as absent."""
    clean = {k: v for k, v in payload.items() if v not in (None, "") or schema.fields[k].required}
    return schema.validate(clean)

"""The confirmation page before every irreversible or sealing step (issue 12, safe actions).

A button on a page is a plain link (GET) to its action's address; that address answers a GET with
this page, saying which object and what will happen, and its form POSTs back to the same address
with the CSRF token. A GET never changes anything; a POST still needs the CSRF token, whether or
not it came through this page. Sealing asks for the approver's password again on this page."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import render_template, request
from flask_babel import gettext as _

from govern.context import Ctx
from govern.errors import TooManyFailedLogins, Unauthenticated
from govern.services import accounts
from govern.web.forms import FIELD_ERRORS, Form, validated


@dataclass
class Ask:
    """One value the confirmation page asks for (a reason, an outcome, a password, a tick)."""

    name: str
    label: str
    kind: str = "text"  # text | textarea | select | check | password | hidden
    value: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    required: bool = True
    values: list[str] = field(default_factory=list)  # several hidden values under one name


def confirm_page(
    *,
    title: str,
    consequence: str,
    button: str,
    back: str,
    facts: list[tuple[str, str]] = (),
    asks: list[Ask] = (),
    danger: bool = True,
    action: str | None = None,
    error: str | None = None,
    status: int = 200,
):
    """The page that asks "are you sure": what, on which object, with what consequence."""
    # A value the reader already typed (a refused POST) is shown again, never a password.
    for ask in asks:
        if ask.kind not in ("password", "hidden") and request.method == "POST":
            ask.value = request.form.get(ask.name, ask.value)
    html = render_template(
        "confirm.html",
        title=title,
        consequence=consequence,
        facts=facts,
        asks=asks,
        button=button,
        danger=danger,
        back=back,
        action=action or request.path,
        error=error,
    )
    return html, status


def password_ask() -> Ask:
    return Ask("password", _("Your password, to seal"), "password")


def password_refusal(ctx: Ctx, action, target) -> str | None:
    """Check the sealing approver's password again (the page's POST). None when it is right;
    otherwise what to say (the wrong guess is counted toward the sign-in lockout and audited)."""
    try:
        accounts.confirm_password(ctx, request.form.get("password", ""), action, target)
    except TooManyFailedLogins:
        return _("Too many wrong passwords: nothing was sealed. Try again later.")
    except Unauthenticated:
        return _("The password is wrong: nothing was sealed.")
    return None


def refused_value(ctx: Ctx, call, what: str = "") -> tuple[str, int] | None:
    """Run a step; when it refuses a value the reader typed on the confirmation page (an empty
    reason), undo it and say why, so the page can be shown again with the message."""
    try:
        call()
    except FIELD_ERRORS as exc:
        ctx.fail()
        form = Form(meta={"csrf": False})
        form.fail(exc)
        message = " ".join(form.form_errors) or exc.message
        return (f"{what}: {message}" if what else message), exc.status
    return None


def refused_reason(ctx: Ctx, schema, step) -> tuple[str, int] | None:
    """Run ``step(reason)`` with the reason typed on the confirmation page, checked by the API's
    ``schema`` (``{"reason"}``); a refused reason is undone and said, as :func:`refused_value`."""
    reason = request.form.get("reason", "")
    return refused_value(
        ctx, lambda: step(validated(schema, {"reason": reason})["reason"]), what=_("Reason")
    )

"""Signing in and out, and the dashboard each role lands on."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_user, logout_user
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from govern import http
from govern.context import Ctx
from govern.errors import GovernError, TooManyFailedLogins
from govern.services import accounts, dashboards
from govern.web import dashboard, page
from govern.web.forms import Form
from govern.web.i18n import zone_named
from govern.web.words import say


class LoginForm(Form):
    username = StringField(_l("Username"), validators=[InputRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=1024)])


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, else the dashboard.

    Judged as a browser would read it: browsers drop tabs and newlines from a URL and take a
    backslash for a slash, so ``/\t/evil.example`` and ``/\\evil.example`` both mean
    ``//evil.example``, another site. Anything with a scheme or a host is refused too.
    """
    if not target or len(target) > 2000:
        return url_for("web.index")
    seen = _as_browsers_read(target)
    # A value that still decodes to something else is judged in every form it decodes to.
    if not all(_is_local(form) for form in (seen, _as_browsers_read(unquote(unquote(seen))))):
        return url_for("web.index")
    return seen


def _as_browsers_read(target: str) -> str:
    return re.sub(r"[\x00-\x20\x7f]", "", target).replace("\\", "/")


def _is_local(path: str) -> bool:
    try:
        parts = urlsplit(path)
    except ValueError:
        return False
    return not (parts.scheme or parts.netloc) and path.startswith("/") and not path.startswith("//")


def _refusal(exc: GovernError) -> str:
    """Why a sign-in was refused, in the reader's language. A lockout names its end in the
    office's time (the pages' time zone, named with it)."""
    if exc.status == 401:
        return _("Bad username or password.")
    if isinstance(exc, TooManyFailedLogins):
        return _(
            "Too many failed sign-ins. Try again after %(time)s (%(zone)s).",
            time=format_datetime(exc.until, "yyyy-MM-dd HH:mm:ss"),
            zone=zone_named(exc.until),
        )
    return say(exc.msg) if exc.msg is not None else exc.message


@page("/login", methods=("GET", "POST"), public=True)
def login(ctx: Ctx):
    form = LoginForm()
    if form.checked():
        try:
            user = accounts.login(ctx, form.username.data, form.password.data, "form")
        except GovernError as exc:
            form.password.errors.append(_refusal(exc))
            return render_template("login.html", form=form), exc.status
        # The login is in the trail before anyone is signed in: if its entry cannot be written,
        # this raises, no session cookie is issued and nobody is logged in (fail closed).
        ctx.commit()
        # Clear anything from before the login (session fixation), then start a fresh session.
        session.clear()
        login_user(http.SessionUser(user), remember=False)
        return redirect(_safe_next(request.args.get("next")), code=303)
    return render_template("login.html", form=form), form.status


@page("/logout", methods=("POST",))
def logout(ctx: Ctx):
    # Ends the session on the server too (a copy of the cookie stops working), not only here;
    # and only once that is in the trail (else the error page says so and nothing changed).
    accounts.logout(ctx)
    ctx.commit()
    logout_user()
    session.clear()
    flash(_("Signed out."))
    return redirect(url_for("web.login"), code=303)


@page("/")
def index(ctx: Ctx):
    # One decision for the whole page, the rows by a few set-based queries (services/dashboards).
    shown = dashboards.for_reader(ctx)
    return render_template(
        "index.html",
        roles=sorted(ctx.roles()),
        agreements=shown.agreements,
        clocks=shown.clocks,
        panels=shown.panels,
        warn_days=ctx.settings.warn_days,
        notice_href=dashboard.notice_href,
        state_href=dashboard.state_href,
        ending_kinds={
            "term": _("agreement term"),
            "grant": _("grant"),
            "nda": _("staff NDA"),
            "dsa": _("subcontractor agreement or record"),
        },
    )

"""Signing in and out, and the dashboard each role lands on."""

from __future__ import annotations

from datetime import date

from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_user, logout_user
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from govern import http
from govern.actions import Action
from govern.context import Ctx
from govern.errors import GovernError
from govern.services import accounts, agreements
from govern.web import dashboard, page
from govern.web.forms import Form


class LoginForm(Form):
    username = StringField(_l("Username"), validators=[InputRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=1024)])


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("web.index")


@page("/login", methods=("GET", "POST"), public=True)
def login(ctx: Ctx):
    form = LoginForm()
    if form.checked():
        try:
            user = accounts.login(ctx, form.username.data, form.password.data, "form")
        except GovernError as exc:
            form.password.errors.append(
                _("Bad username or password.") if exc.status == 401 else exc.message
            )
            return render_template("login.html", form=form), exc.status
        # Clear anything from before the login (session fixation), then start a fresh session.
        session.clear()
        login_user(http.SessionUser(user), remember=False)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", form=form), form.status


@page("/logout", methods=("POST",))
def logout(ctx: Ctx):
    ctx.record(Action.AUTH_LOGOUT, f"user:{ctx.principal.name}", rule="signed out")
    logout_user()
    session.clear()
    flash(_("Signed out."))
    return redirect(url_for("web.login"))


@page("/")
def index(ctx: Ctx):
    roles = set(ctx.roles())
    # Administrators hold no rule to list agreements; asking would only add a denial to the trail.
    may_list = ctx.runtime.policy.may_ever(ctx.principal.subject, "agreement", "list")
    listing = agreements.list_all(ctx) if may_list else []
    clocks = agreements.clocks(ctx, listing, ctx.today())
    for clock in clocks.values():
        clock["term_ends_on_date"] = date.fromisoformat(clock["term_ends_on"])
    return render_template(
        "index.html",
        roles=sorted(roles),
        agreements=listing,
        clocks=clocks,
        panels=dashboard.panels(ctx, listing, clocks),
        warn_days=ctx.settings.warn_days,
        ending_kinds={
            "term": _("agreement term"),
            "grant": _("grant"),
            "nda": _("staff NDA"),
            "dsa": _("subcontractor agreement or record"),
        },
    )

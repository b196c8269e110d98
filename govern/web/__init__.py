"""Server-rendered pages on the same services as the API, with CSRF on every form.

Each page is declared with :func:`page`: explicitly public, or signed-in (its service decides).
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from govern import http, policy
from govern.actions import Action
from govern.context import Ctx
from govern.errors import GovernError
from govern.services import accounts, agreements

bp = Blueprint("web", __name__)
PUBLIC_PAGES: set[str] = {"static"}
# Every page endpoint declared with @page (public or not), for the route audit in the tests.
PAGES: set[str] = set()


def page(rule: str, methods=("GET",), public: bool = False):
    """Declare a page. Non-public pages need a signed-in account; the service decides."""

    def deco(fn):
        name = fn.__name__

        @wraps(fn)
        def view(**kwargs):
            if not public and not current_user.is_authenticated:
                return redirect(url_for("web.login", next=request.path))
            ctx = http.new_ctx(http.session_principal())
            try:
                result = fn(ctx, **kwargs)
            except GovernError as exc:
                ctx.fail()
                return render_template(
                    "error.html", code=exc.status, message=exc.message
                ), exc.status
            except Exception:
                ctx.db.rollback()
                raise
            try:
                ctx.commit()
            except GovernError as exc:
                return render_template(
                    "error.html", code=exc.status, message=exc.message
                ), exc.status
            return result

        bp.add_url_rule(rule, name, view, methods=list(methods))
        PAGES.add(f"web.{name}")
        if public:
            PUBLIC_PAGES.add(f"web.{name}")
        return view

    return deco


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("web.index")


@page("/login", methods=("GET", "POST"), public=True)
def login(ctx: Ctx):
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.login(ctx, form.username.data, form.password.data, "form")
        except GovernError as exc:
            form.password.errors.append(exc.message)
            return render_template("login.html", form=form), exc.status
        # Clear anything from before the login (session fixation), then start a fresh session.
        session.clear()
        login_user(http.SessionUser(user), remember=False)
        return redirect(_safe_next(request.args.get("next")))
    if request.method == "POST":
        status = 400
    return render_template("login.html", form=form), status


@page("/logout", methods=("POST",))
def logout(ctx: Ctx):
    ctx.record(Action.AUTH_LOGOUT, f"user:{ctx.principal.name}", rule="signed out")
    logout_user()
    session.clear()
    flash("Signed out.")
    return redirect(url_for("web.login"))


@page("/")
def index(ctx: Ctx):
    roles = ctx.roles()
    readers = policy.OFFICE_ROLES | policy.VENDOR_ROLES | {"auditor"}
    listing = agreements.list_all(ctx) if readers & set(roles) else []
    return render_template(
        "index.html", roles=roles, agreements=listing, term_ends_on=agreements.term_ends_on
    )

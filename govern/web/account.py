"""One's own account: choosing a password with a one-time link (public, like signing in) and
changing it with the current one. Both end every other session of the account."""

from __future__ import annotations

from flask import flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_user, logout_user
from wtforms import PasswordField
from wtforms.validators import EqualTo, InputRequired, Length

from govern import http
from govern.context import Ctx
from govern.errors import GovernError
from govern.services import accounts, links
from govern.web import page
from govern.web.forms import Form, attempt


def _new_password(label):
    return PasswordField(
        label,
        validators=[InputRequired(), Length(max=1024)],
        render_kw={"autocomplete": "new-password"},
    )


class SetPasswordForm(Form):
    password = _new_password(_l("New password"))
    again = PasswordField(
        _l("New password, again"),
        validators=[EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )


class ChangePasswordForm(SetPasswordForm):
    current = PasswordField(
        _l("Current password"),
        validators=[InputRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )


@page("/set-password/<token>", methods=("GET", "POST"), public=True)
def set_password(ctx: Ctx, token: str):
    # The token is a secret: it is never logged and never shown back on the page.
    try:
        user = links.account_for(ctx, token)
    except GovernError as exc:
        ctx.fail()
        message = _(exc.message) if exc.message in _REFUSALS else exc.message
        return render_template("account/set_password.html", refused=message), exc.status
    form = SetPasswordForm()
    if form.checked() and attempt(ctx, form, lambda: links.use(ctx, token, form.password.data)):
        logout_user()
        session.clear()
        flash(_("Your password is set. Sign in with it."))
        return redirect(url_for("web.login"), code=303)
    return render_template("account/set_password.html", form=form, user=user), form.status


@page("/account/password", methods=("GET", "POST"))
def change_password(ctx: Ctx):
    form = ChangePasswordForm()
    if form.checked():
        name = ctx.principal.name
        try:
            user = accounts.change_password(ctx, name, form.current.data, form.password.data)
        except GovernError as exc:
            ctx.fail()
            if exc.status == 401:
                form.current.errors = [_("The current password is wrong.")]
                form.status = 401
            else:
                form.fail(exc)
            return render_template("account/password.html", form=form), form.status
        # This session goes on under the new credentials; every other one has ended.
        session.clear()
        login_user(http.SessionUser(user), remember=False)
        flash(_("Your password is changed; your other sessions and tokens have ended."))
        return redirect(url_for("web.index"), code=303)
    return render_template("account/password.html", form=form), form.status


# The refusals of a link, as the service says them, to be shown in the reader's language.
_REFUSALS = {
    _l("no such link")._args[0],
    _l("this link has been used or replaced")._args[0],
    _l("this link awaits a security administrator's confirmation")._args[0],
    _l("this link has expired; ask for a new one")._args[0],
    _l("this account is disabled")._args[0],
}

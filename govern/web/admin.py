"""Administration: accounts (system_admin) and policy rules (security_admin), 三员分立 kept by
the same services as /api/v1/users and /api/v1/policies."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import PasswordField, SelectField, StringField

from govern import policy
from govern.actions import Action
from govern.api.policies import RULE_IN
from govern.api.users import USER_IN
from govern.context import Ctx
from govern.services import policies, users
from govern.web import page, shown_once
from govern.web.forms import Form, attempt, choices, submitted, validated
from govern.web.i18n import label


class UserForm(Form):
    username = StringField(_l("Username"))
    display_name = StringField(_l("Display name"))
    role = SelectField(_l("Role"))
    org = StringField(_l("Vendor organisation (vendor accounts only)"))
    password = PasswordField(_l("First password"), render_kw={"autocomplete": "new-password"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # No role is chosen for the administrator: a new account's role is always a decision.
        self.role.choices = choices(
            [("", _("choose a role"))] + [(r, label(r)) for r in sorted(policy.ACCOUNT_ROLES)]
        )


class RuleForm(Form):
    ptype = SelectField(
        _l("Kind"),
        choices=choices(
            [("p", _l("p: a role may do an action")), ("g", _l("g: an account holds a role"))]
        ),
    )
    v0 = StringField(_l("Role (p) or user (g)"))
    v1 = StringField(_l("Domain (p) or role (g)"), default="*")
    v2 = StringField(_l("Object kind (p) or domain (g)"))
    v3 = StringField(_l("Action (p only)"))

    def payload(self) -> dict:
        values = [self.v0.data, self.v1.data, self.v2.data]
        if self.ptype.data == "p":
            values.append(self.v3.data)
        return {"ptype": self.ptype.data, "values": [(v or "").strip() for v in values]}


@page("/admin/users", methods=("GET", "POST"))
def user_list(ctx: Ctx):
    form = UserForm()
    created = submitted(ctx, form, Action.USER_CREATE, USER_IN, users.create)
    if created is not None:
        flash(_("Account %(name)s created.", name=created.username))
        return redirect(url_for("web.user_list"))
    return render_template("admin/users.html", users=users.list_users(ctx), form=form), form.status


@page("/admin/users/<int:user_id>/disable", methods=("POST",))
def user_disable(ctx: Ctx, user_id: int):
    user = users.disable(ctx, user_id)
    flash(_("Account %(name)s disabled; its sessions and tokens have ended.", name=user.username))
    return redirect(url_for("web.user_list"))


@page("/admin/users/<int:user_id>/reset", methods=("POST",))
def user_reset(ctx: Ctx, user_id: int):
    # The new password is shown in this one answer only: never flashed (the flash travels in
    # the session cookie), never logged, never in the trail.
    password = users.reset_password(ctx, user_id)
    shown = next(u for u in users.list_users(ctx) if u["id"] == user_id)
    return shown_once(render_template("admin/reset.html", user=shown, password=password))


@page("/admin/users/<int:user_id>/unlock", methods=("POST",))
def user_unlock(ctx: Ctx, user_id: int):
    user = users.unlock(ctx, user_id)
    flash(_("Account %(name)s may sign in again.", name=user.username))
    return redirect(url_for("web.user_list"))


@page("/admin/policies", methods=("GET", "POST"))
def policy_list(ctx: Ctx):
    form = RuleForm()
    if form.checked(ctx, Action.POLICY_ADD):
        rule = attempt(
            ctx,
            form,
            lambda: policies.add_rule(ctx, **validated(RULE_IN, form.payload())),
            aliases={"values": "v0"},
        )
        if rule is not None:
            flash(_("Rule %(id)s added.", id=rule.id))
            return redirect(url_for("web.policy_list"))
    rules = [policies.rule_json(r) for r in policies.list_rules(ctx)]
    # A filter by role (p rules) or account (g rules), over the list the service returned.
    shown = request.args.get("who") or ""
    names = sorted({r["values"][0] for r in rules})
    if shown:
        rules = [r for r in rules if shown in (r["values"][0], r["values"][1])]
    return render_template(
        "admin/policies.html", rules=rules, form=form, names=names, shown=shown
    ), form.status


@page("/admin/policies/<int:rule_id>/remove", methods=("POST",))
def policy_remove(ctx: Ctx, rule_id: int):
    policies.remove_rule(ctx, rule_id)
    flash(_("Rule %(id)s removed.", id=rule_id))
    return redirect(url_for("web.policy_list"))

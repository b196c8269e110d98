"""Administration: accounts (system_admin), their confirmation by a second person and the policy
rules (security_admin), 三员分立 kept by the same services as /api/v1/users and /api/v1/policies.

A new account or a reset makes a one-time set-password link, shown on one GET of the page the POST
redirects to (govern.services.shown): never flashed (the flash travels in the session cookie),
never logged, never in the trail. Each step on an account or a rule asks first on its confirmation
page (govern.web.confirm)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField

from govern import policy
from govern.actions import Action
from govern.api import query_text
from govern.api.policies import RULE_IN
from govern.api.users import USER_IN, set_password_url
from govern.context import Ctx, require_role_for
from govern.errors import NotFound
from govern.messages import Msg
from govern.services import links, policies, users
from govern.web import SHOWN, page, show_once_after
from govern.web.confirm import Ask, confirm_page
from govern.web.forms import Form, attempt, choices, submitted, validated
from govern.web.i18n import label
from govern.web.paging import paged_call
from govern.web.words import rule_sentence


class UserForm(Form):
    username = StringField(_l("Username"))
    display_name = StringField(_l("Display name"))
    role = SelectField(_l("Role"))
    org = StringField(_l("Vendor organisation (vendor accounts only)"))

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


def _link_page(ctx: Ctx, user, token, link, purpose: str):
    # The link is kept (encrypted) for one GET of the next page: never flashed (the cookie),
    # never logged, never in the trail; a reload of that page shows it no more.
    shown = users.link_json(user, token, link, set_password_url(token))
    return show_once_after(ctx, {"kind": "password-link", "link": shown, "purpose": purpose})


def _link_shown(ctx: Ctx, payload: dict) -> str:
    return render_template("admin/link.html", link=payload["link"], purpose=payload["purpose"])


SHOWN["password-link"] = _link_shown


@page("/admin/users", methods=("GET", "POST"))
def user_list(ctx: Ctx):
    form = UserForm()
    created = submitted(ctx, form, Action.USER_CREATE, USER_IN, users.create)
    if created is not None:
        return _link_page(ctx, *created, purpose="create")
    text = query_text("q", 200)
    found = paged_call(lambda offset, limit: users.find_users(ctx, text, offset, limit))
    return render_template("admin/users.html", users=found, q=text, form=form), form.status


# What each step on an account says on its confirmation page: the action, title, consequence,
# button, the service, and what the page says once done.
ACCOUNT_STEPS = {
    "disable": (
        Action.USER_DISABLE,
        _l("Disable the account %(name)s?"),
        _l(
            "Its holder can no longer sign in; every session and token of the account ends now. A system administrator can enable it again later."
        ),
        _l("Disable"),
        users.disable,
        _l("Account %(name)s disabled; its sessions and tokens have ended."),
    ),
    "enable": (
        Action.USER_ENABLE,
        _l("Enable the account %(name)s again?"),
        _l(
            "Its holder can sign in again with its password; the sessions and tokens that ended stay ended."
        ),
        _l("Enable"),
        users.enable,
        _l("Account %(name)s enabled again."),
    ),
    "unlock": (
        Action.USER_UNLOCK,
        _l("Unlock the account %(name)s?"),
        _l(
            "The lockout after failed sign-ins ends now, before its time; its holder may try to sign in again."
        ),
        _l("Unlock"),
        users.unlock,
        _l("Account %(name)s may sign in again."),
    ),
    "reset": (
        Action.USER_RESET,
        _l("Reset the password of %(name)s?"),
        _l(
            "A one-time link is made for its holder to choose a new password, shown to you once on the next page. A vendor account's password and sessions end now; an office or administrator account's once a security administrator confirms the reset."
        ),
        _l("Reset password"),
        None,
        None,
    ),
}


def _account(ctx: Ctx, user_id: int) -> dict:
    for shown in users.list_users(ctx):
        if shown["id"] == user_id:
            return shown
    raise NotFound(Msg("missing.user", id=user_id))


def _account_step(ctx: Ctx, user_id: int, step: str):
    action, title, consequence, button, service, done = ACCOUNT_STEPS[step]
    back = url_for("web.user_list")
    if request.method == "GET":
        require_role_for(ctx, action)
        u = _account(ctx, user_id)
        roles = ", ".join(str(label(r["role"])) for r in u["roles"])
        return confirm_page(
            title=str(title) % {"name": u["username"]},
            consequence=str(consequence),
            button=str(button),
            back=back,
            facts=[
                (_("Username"), u["username"]),
                (_("Display name"), u["display_name"]),
                (_("Roles"), roles),
                *([(_("Vendor organisation"), u["org"])] if u["org"] else []),
            ],
            danger=step in ("disable", "reset"),
        )
    if not Form().checked(ctx, action):
        return redirect(back, code=303)
    if service is None:
        return _link_page(ctx, *users.reset_password(ctx, user_id), purpose="reset")
    user = service(ctx, user_id)
    flash(str(done) % {"name": user.username})
    return redirect(back, code=303)


@page("/admin/users/<int:user_id>/disable", methods=("GET", "POST"))
def user_disable(ctx: Ctx, user_id: int):
    return _account_step(ctx, user_id, "disable")


@page("/admin/users/<int:user_id>/enable", methods=("GET", "POST"))
def user_enable(ctx: Ctx, user_id: int):
    return _account_step(ctx, user_id, "enable")


@page("/admin/users/<int:user_id>/reset", methods=("GET", "POST"))
def user_reset(ctx: Ctx, user_id: int):
    return _account_step(ctx, user_id, "reset")


@page("/admin/users/<int:user_id>/unlock", methods=("GET", "POST"))
def user_unlock(ctx: Ctx, user_id: int):
    return _account_step(ctx, user_id, "unlock")


@page("/admin/confirmations")
def confirmation_list(ctx: Ctx):
    return render_template("admin/confirmations.html", pending=links.pending(ctx))


# A security administrator's second look at a set-password link: confirm or refuse.
LINK_STEPS = {
    "confirm": (
        links.confirm,
        _l("Confirm the set-password link of %(name)s?"),
        _l("The link starts to work now, for 24 hours; its holder chooses the password with it."),
        _l("Confirm"),
        _l("Confirmed for %(name)s: the link can now be used."),
    ),
    "refuse": (
        links.refuse,
        _l("Refuse the set-password link of %(name)s?"),
        _l("The link can never be used; a system administrator has to make a new one."),
        _l("Refuse"),
        _l("Refused for %(name)s: the link can never be used."),
    ),
}


def _link_step(ctx: Ctx, link_id: int, step: str):
    service, title, consequence, button, done = LINK_STEPS[step]
    back = url_for("web.confirmation_list")
    if request.method == "GET":
        require_role_for(ctx, Action.USER_CONFIRM)
        found = [p for p in links.pending(ctx) if p["id"] == link_id]
        if not found:
            raise NotFound(Msg("missing.link", id=link_id))
        p = found[0]
        return confirm_page(
            title=str(title) % {"name": p["username"]},
            consequence=str(consequence),
            button=str(button),
            back=back,
            facts=[(_("Account"), p["username"])],
            danger=step == "refuse",
        )
    if Form().checked(ctx, Action.USER_CONFIRM):
        result = service(ctx, link_id)
        flash(str(done) % {"name": result["username"]})
    return redirect(back, code=303)


@page("/admin/confirmations/<int:link_id>/confirm", methods=("GET", "POST"))
def confirmation_confirm(ctx: Ctx, link_id: int):
    return _link_step(ctx, link_id, "confirm")


@page("/admin/confirmations/<int:link_id>/refuse", methods=("GET", "POST"))
def confirmation_refuse(ctx: Ctx, link_id: int):
    return _link_step(ctx, link_id, "refuse")


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
            # The list of the role or account the rule is about, where the new rule is seen.
            return redirect(url_for("web.policy_list", who=rule.v0), code=303)
    filters = policy_filters()
    found = paged_call(
        lambda offset, limit: policies.find_rules(
            ctx, filters.get("who"), filters.get("q"), filters.get("ptype"), offset, limit
        ),
        per_page=50,
    )
    found.rows = [policies.rule_json(r) for r in found.rows]
    return render_template(
        "admin/policies.html",
        rules=found,
        form=form,
        roles=sorted(policy.ROLES),
        filters=filters,
        kept=policy_args(),
    ), form.status


# The list's filters and page: kept across a removal (its confirmation page carries them), which
# leads back to them.
POLICY_ARGS = ("who", "q", "ptype", "page")


def policy_filters() -> dict:
    found = {"who": query_text("who", 200), "q": query_text("q", 200)}
    # The service refuses a kind other than p or g (400).
    found["ptype"] = query_text("ptype", 1)
    return {k: v for k, v in found.items() if v}


def policy_args() -> dict:
    return {k: request.values[k] for k in POLICY_ARGS if request.values.get(k)}


@page("/admin/policies/<int:rule_id>/remove", methods=("GET", "POST"))
def policy_remove(ctx: Ctx, rule_id: int):
    # Back to the same filtered list (a removal does not lose what the reader was looking at).
    back = url_for("web.policy_list", **policy_args())
    if request.method == "GET":
        require_role_for(ctx, Action.POLICY_REMOVE)
        found = [policies.rule_json(r) for r in policies.list_rules(ctx) if r.id == rule_id]
        if not found:
            raise NotFound(Msg("missing.rule", id=rule_id))
        rule = found[0]
        return confirm_page(
            title=_("Remove rule %(id)s?", id=rule_id),
            consequence=_(
                "Every decision from now on is made without this rule, in every worker; adding it again is a new rule."
            ),
            button=_("Remove"),
            back=back,
            facts=[
                (_("Kind"), rule["ptype"]),
                (_("Rule"), ", ".join(rule["values"])),
                # What the rule lets whom do, in the reader's words: the loss the removal means.
                (_("What it allows"), rule_sentence(", ".join([rule["ptype"], *rule["values"]]))),
            ],
            asks=[Ask(k, "", "hidden", value=v) for k, v in policy_args().items()],
        )
    if Form().checked(ctx, Action.POLICY_REMOVE):
        policies.remove_rule(ctx, rule_id)
        flash(_("Rule %(id)s removed.", id=rule_id))
    return redirect(back, code=303)

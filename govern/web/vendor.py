"""The vendor's side of an agreement: staff NDAs (clause 3.8), need-to-know (clause 3.5),
subcontractors with their minimisation records and reports (clause 3.7), and breaches (clauses
3.9, 7). Every form is validated by the API's schema and decided by the API's service."""

from __future__ import annotations

import base64
import hashlib

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.widgets import CheckboxInput, ListWidget

from govern.actions import Action
from govern.api.vendor import (
    BREACH_IN,
    NDA_IN,
    NDA_RENEW_IN,
    NTK_IN,
    REASON_IN,
    SUBCONTRACTOR_IN,
)
from govern.context import Ctx
from govern.errors import NotFound
from govern.schema import whole_number
from govern.services import agreements, breaches, items, ndas, subcontractors
from govern.web import page, shown_once
from govern.web.forms import Form, choices, submitted, validated
from govern.web.i18n import label


class ItemChoice(SelectMultipleField):
    """Items as checkboxes (usable without script); the service checks what they may be."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, coerce=int, validate_choice=False, **kwargs)


def item_choices(ctx: Ctx, agreement_id: int):
    return choices(
        (i.id, f"#{i.id} {i.title}")
        for i in items.list_for(ctx, agreement_id)
        if i.status == "protected"
    )


def _comma_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _numbers(text: str | None) -> list:
    return [whole_number(p) for p in _comma_list(text)]


def _document(upload, typed: str | None, sha_key: str, b64_key: str | None = None) -> dict:
    """A signed document given as a file (hashed here, and kept when the API keeps it) or as
    its sha256 typed in."""
    if upload and upload.filename:
        data = upload.read()
        out = {sha_key: hashlib.sha256(data).hexdigest()}
        if b64_key:
            out[b64_key] = base64.b64encode(data).decode()
        return out
    return {sha_key: typed or ""}


def _tab(ctx: Ctx, name: str, agreement_id: int, **context):
    """A page under one of the agreement's tabs (``vendor/<name>.html``)."""
    agreement = agreements.get(ctx, agreement_id)
    return render_template(f"vendor/{name}.html", agreement=agreement, tab=name, **context)


# Staff NDAs and need-to-know.


class NdaForm(Form):
    username = StringField(_l("Staff member (username)"))
    signed_on = StringField(_l("Signed on"), render_kw={"type": "date"})
    expires_on = StringField(_l("Expires on"), render_kw={"type": "date"})
    document = FileField(_l("Signed NDA (PDF)"))
    document_sha256 = StringField(_l("or its SHA-256"))

    def payload(self) -> dict:
        return {
            "username": self.username.data,
            "signed_on": self.signed_on.data,
            "expires_on": self.expires_on.data,
            **_document(
                self.document.data, self.document_sha256.data, "document_sha256", "document_b64"
            ),
        }


class NtkForm(Form):
    username = StringField(_l("Staff member (username)"))
    item_ids = ItemChoice(_l("Items"))
    reason = StringField(_l("Why they need to know"))
    ends_on = StringField(_l("Until (optional)"), render_kw={"type": "date"})


@page("/agreements/<int:agreement_id>/staff", methods=("GET", "POST"))
def staff_page(ctx: Ctx, agreement_id: int):
    nda_form = NdaForm(prefix="nda")
    ntk_form = NtkForm(prefix="ntk")
    ntk_form.item_ids.choices = item_choices(ctx, agreement_id)
    # Two forms on one page: the hidden "which" says which one was sent.
    which = request.form.get("which")
    if which == "nda":
        done = submitted(
            ctx,
            nda_form,
            Action.NDA_CREATE,
            NDA_IN,
            ndas.create_nda,
            agreement_id,
            aliases={"document_b64": "document"},
        )
        if done is not None:
            flash(_("NDA registered."))
            return redirect(url_for("web.staff_page", agreement_id=agreement_id))
    if which == "ntk":
        done = submitted(
            ctx, ntk_form, Action.NTK_GRANT, NTK_IN, ndas.grant_need_to_know, agreement_id
        )
        if done is not None:
            flash(_("Need-to-know granted for %(n)s items.", n=len(done)))
            return redirect(url_for("web.staff_page", agreement_id=agreement_id))
    today = ctx.today()
    status = max(nda_form.status, ntk_form.status)
    listed = ndas.list_ndas(ctx, agreement_id)
    return _tab(
        ctx,
        "staff",
        agreement_id,
        ndas=[(n, u, ndas.nda_status(n, today)) for n, u in listed],
        renewed={n.renews_id for n, _u in listed if n.renews_id},
        ntks=[
            (g, u, ndas.ntk_status(g, today)) for g, u in ndas.list_need_to_know(ctx, agreement_id)
        ],
        titles={i.id: i.title for i in items.list_for(ctx, agreement_id)},
        nda_form=nda_form,
        ntk_form=ntk_form,
        warn_days=ctx.settings.warn_days,
        today=today,
    ), status


class RenewForm(Form):
    signed_on = StringField(_l("Signed on (default: today)"), render_kw={"type": "date"})
    expires_on = StringField(_l("Expires on"), render_kw={"type": "date"})
    document = FileField(_l("Signed NDA (PDF)"))
    document_sha256 = StringField(_l("or its SHA-256"))

    def payload(self) -> dict:
        return {
            "signed_on": self.signed_on.data,
            "expires_on": self.expires_on.data,
            **_document(
                self.document.data, self.document_sha256.data, "document_sha256", "document_b64"
            ),
        }


@page("/agreements/<int:agreement_id>/ndas/<int:nda_id>/renew", methods=("GET", "POST"))
def nda_renew(ctx: Ctx, agreement_id: int, nda_id: int):
    found = [(n, u) for n, u in ndas.list_ndas(ctx, agreement_id) if n.id == nda_id]
    if not found:
        raise NotFound(f"nda {nda_id} does not exist in agreement {agreement_id}")
    form = RenewForm()
    aliases = {"document_b64": "document"}
    done = submitted(
        ctx, form, Action.NDA_RENEW, NDA_RENEW_IN, ndas.renew_nda, nda_id, aliases=aliases
    )
    if done is not None:
        flash(_("NDA renewed."))
        return redirect(url_for("web.staff_page", agreement_id=agreement_id))
    nda, username = found[0]
    return _tab(ctx, "renew", agreement_id, nda=nda, username=username, form=form), form.status


@page("/agreements/<int:agreement_id>/need-to-know/<int:ntk_id>/revoke", methods=("POST",))
def ntk_revoke(ctx: Ctx, agreement_id: int, ntk_id: int):
    form = Form()
    if form.checked(ctx, Action.NTK_REVOKE):
        ndas.revoke_need_to_know(
            ctx, ntk_id, validated(REASON_IN, {"reason": request.form.get("reason", "")})
        )
        flash(_("Need-to-know revoked."))
    return redirect(url_for("web.staff_page", agreement_id=agreement_id))


# Subcontractors (clause 3.7).


class SubcontractorForm(Form):
    name = StringField(_l("Name"))
    service = StringField(_l("Service it provides"))
    dsa_signed_on = StringField(_l("Data-security agreement signed on"), render_kw={"type": "date"})
    dsa_expires_on = StringField(
        _l("Data-security agreement expires on"), render_kw={"type": "date"}
    )
    dsa = FileField(_l("Signed data-security agreement"))
    dsa_sha256 = StringField(_l("or its SHA-256"))
    purpose = TextAreaField(_l("Purpose"))
    item_ids = ItemChoice(_l("Items it may receive"))
    fields = StringField(_l("Only these fields (comma-separated)"))
    whole_items = ItemChoice(_l("Items it receives whole (no field cut)"))
    until = StringField(_l("Until"), render_kw={"type": "date"})

    def payload(self) -> dict:
        return {
            "name": self.name.data,
            "service": self.service.data,
            "dsa_signed_on": self.dsa_signed_on.data,
            "dsa_expires_on": self.dsa_expires_on.data,
            **_document(self.dsa.data, self.dsa_sha256.data, "dsa_sha256"),
            "purpose": self.purpose.data,
            "item_ids": self.item_ids.data or [],
            "fields": _comma_list(self.fields.data),
            "whole_items": self.whole_items.data or [],
            "until": self.until.data,
        }


@page("/agreements/<int:agreement_id>/subcontractors", methods=("GET", "POST"))
def subcontractor_page(ctx: Ctx, agreement_id: int):
    form = SubcontractorForm()
    form.item_ids.choices = item_choices(ctx, agreement_id)
    form.whole_items.choices = form.item_ids.choices
    done = submitted(
        ctx,
        form,
        Action.SUBCONTRACTOR_CREATE,
        SUBCONTRACTOR_IN,
        subcontractors.create,
        agreement_id,
    )
    if done is not None:
        flash(_("Subcontractor %(id)s filed; the office reviews and approves it.", id=done.id))
        return redirect(url_for("web.subcontractor_page", agreement_id=agreement_id))
    rows = subcontractors.list_for(ctx, agreement_id)
    return _tab(
        ctx,
        "subcontractors",
        agreement_id,
        rows=rows,
        people={sub.id: [subcontractors.username(ctx, sub.registered_by)] for sub, _scopes in rows},
        titles={i.id: i.title for i in items.list_for(ctx, agreement_id)},
        form=form,
        today=ctx.today(),
        me=ctx.principal.id,
    ), form.status


# The office's steps on a record: the same two people as for a disclosure request.
SUB_MOVES = {
    "review": (
        subcontractors.review,
        Action.SUBCONTRACTOR_REVIEW,
        _l("Subcontractor %(id)s reviewed and passed to the approver."),
    ),
    "approve": (
        subcontractors.approve,
        Action.SUBCONTRACTOR_APPROVE,
        _l("Subcontractor %(id)s approved and sealed; its lead can now take its client token."),
    ),
}


@page(
    "/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/<any(review, approve):move>",
    methods=("POST",),
)
def subcontractor_move(ctx: Ctx, agreement_id: int, sub_id: int, move: str):
    service, action, done = SUB_MOVES[move]
    if Form().checked(ctx, action):
        service(ctx, sub_id)
        flash(str(done) % {"id": sub_id})
    return redirect(url_for("web.subcontractor_page", agreement_id=agreement_id))


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/deny", methods=("POST",))
def subcontractor_deny(ctx: Ctx, agreement_id: int, sub_id: int):
    if Form().checked(ctx, Action.SUBCONTRACTOR_DENY):
        reason = validated(REASON_IN, {"reason": request.form.get("reason", "")})["reason"]
        subcontractors.deny(ctx, sub_id, reason)
        flash(_("Subcontractor %(id)s denied.", id=sub_id))
    return redirect(url_for("web.subcontractor_page", agreement_id=agreement_id))


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/token", methods=("POST",))
def subcontractor_token(ctx: Ctx, agreement_id: int, sub_id: int):
    # The token is in this answer only (never flashed into the cookie, never logged).
    if not Form().checked(ctx, Action.SUBCONTRACTOR_TOKEN):
        return redirect(url_for("web.subcontractor_page", agreement_id=agreement_id))
    sub, token, _expires = subcontractors.issue_token(ctx, sub_id)
    return _tab(ctx, "token", agreement_id, sub=sub, token=token, what="issued")


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/rotate", methods=("POST",))
def subcontractor_rotate(ctx: Ctx, agreement_id: int, sub_id: int):
    # The new token is in this answer only (never flashed into the cookie, never logged).
    sub, token = subcontractors.rotate(ctx, sub_id)
    return shown_once(_tab(ctx, "token", agreement_id, sub=sub, token=token, what="rotated"))


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/revoke", methods=("POST",))
def subcontractor_revoke(ctx: Ctx, agreement_id: int, sub_id: int):
    form = Form()
    if form.checked(ctx, Action.SUBCONTRACTOR_REVOKE):
        reason = validated(REASON_IN, {"reason": request.form.get("reason", "")})["reason"]
        subcontractors.revoke(ctx, sub_id, reason)
        flash(_("Subcontractor revoked: its token and its record have ended."))
    return redirect(url_for("web.subcontractor_page", agreement_id=agreement_id))


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/report")
def subcontractor_report(ctx: Ctx, agreement_id: int, sub_id: int):
    return _tab(ctx, "report", agreement_id, report=subcontractors.report(ctx, sub_id))


# Breaches (clauses 3.9, 7).


class BreachForm(Form):
    description = TextAreaField(_l("What happened"))
    responsible_kind = SelectField(_l("Who is responsible"))
    responsible = StringField(_l("Username, or subcontractor number"))
    audit_seqs = StringField(_l("Audit entries (numbers, comma-separated)"))
    terminate = BooleanField(_l("Also terminate the agreement now (clause 7)"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.responsible_kind.choices = choices(
            [("staff", _("a staff member")), ("subcontractor", label("subcontractor"))]
        )

    def payload(self) -> dict:
        return {
            "description": self.description.data,
            "responsible_kind": self.responsible_kind.data,
            "responsible": self.responsible.data,
            "audit_seqs": _numbers(self.audit_seqs.data),
            "terminate": bool(self.terminate.data),
        }


@page("/agreements/<int:agreement_id>/breaches", methods=("GET", "POST"))
def breach_page(ctx: Ctx, agreement_id: int):
    form = BreachForm()
    if request.method == "GET" and request.args.get("seq"):
        form.audit_seqs.data = request.args["seq"]
    done = submitted(ctx, form, Action.BREACH_CREATE, BREACH_IN, breaches.create, agreement_id)
    if done is not None:
        breach, agreement, manifest = done
        flash(
            _(
                "Breach %(id)s recorded against %(vendor)s; liquidated damages %(amount)s.",
                id=breach.id,
                vendor=agreement.vendor,
                amount=f"{breach.liquidated_damages:,.2f} {agreement.currency}",
            )
        )
        if manifest is not None:
            # clause 7: the owner ended the cooperation with the breach; show what comes back.
            return render_template(
                "recalls/manifest.html", agreement=agreement, tab="recalls", manifest=manifest
            )
        return redirect(url_for("web.breach_page", agreement_id=agreement_id))
    agreement, rows = breaches.list_for(ctx, agreement_id)
    return _tab(ctx, "breaches", agreement_id, rows=rows, form=form), form.status

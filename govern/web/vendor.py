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
from govern.api import query_int
from govern.api.disclosures import OPINION_IN
from govern.api.vendor import (
    BREACH_IN,
    NDA_IN,
    NDA_RENEW_IN,
    NTK_IN,
    REASON_IN,
    SUBCONTRACTOR_IN,
)
from govern.context import Ctx, require_role_for
from govern.db import MAX_ID
from govern.errors import NotFound
from govern.messages import Msg
from govern.schema import whole_number
from govern.services import agreements, breaches, items, names, ndas, subcontractors
from govern.web import SHOWN, page, show_once_after
from govern.web.confirm import (
    Ask,
    confirm_page,
    password_ask,
    password_refusal,
    refused_reason,
)
from govern.web.forms import Form, attempt, choices, submitted, validated
from govern.web.i18n import label, show_date
from govern.web.shared import holder_links


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
            return redirect(url_for("web.staff_page", agreement_id=agreement_id), code=303)
    if which == "ntk":
        done = submitted(
            ctx, ntk_form, Action.NTK_GRANT, NTK_IN, ndas.grant_need_to_know, agreement_id
        )
        if done is not None:
            flash(_("Need-to-know granted for %(n)s items.", n=len(done)))
            return redirect(url_for("web.staff_page", agreement_id=agreement_id), code=303)
    today = ctx.today()
    status = max(nda_form.status, ntk_form.status)
    listed = ndas.list_ndas(ctx, agreement_id)
    known = ndas.list_need_to_know(ctx, agreement_id)
    return _tab(
        ctx,
        "staff",
        agreement_id,
        ndas=[(n, u, ndas.nda_status(n, today)) for n, u in listed],
        renewed={n.renews_id for n, _u in listed if n.renews_id},
        ntks=[(g, u, ndas.ntk_status(g, today)) for g, u in known],
        people=names.actors(ctx.db, {u for _n, u in listed} | {u for _g, u in known}),
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
        raise NotFound(Msg("nda.not_in_agreement", id=nda_id, agreement=agreement_id))
    form = RenewForm()
    aliases = {"document_b64": "document"}
    done = submitted(
        ctx, form, Action.NDA_RENEW, NDA_RENEW_IN, ndas.renew_nda, nda_id, aliases=aliases
    )
    if done is not None:
        flash(_("NDA renewed."))
        return redirect(url_for("web.staff_page", agreement_id=agreement_id), code=303)
    nda, username = found[0]
    return _tab(ctx, "renew", agreement_id, nda=nda, username=username, form=form), form.status


@page("/agreements/<int:agreement_id>/need-to-know/<int:ntk_id>/revoke", methods=("GET", "POST"))
def ntk_revoke(ctx: Ctx, agreement_id: int, ntk_id: int):
    back = url_for("web.staff_page", agreement_id=agreement_id)
    if request.method == "GET":
        require_role_for(ctx, Action.NTK_REVOKE)
        found = [(g, u) for g, u in ndas.list_need_to_know(ctx, agreement_id) if g.id == ntk_id]
        if not found:
            raise NotFound(Msg("missing.ntk_in", id=ntk_id, agreement=agreement_id))
        grant, username = found[0]
        title = {i.id: i.title for i in items.list_for(ctx, agreement_id)}.get(grant.item_id, "")
        return confirm_page(
            title=_("Revoke %(name)s's need-to-know?", name=username),
            consequence=_(
                "%(name)s can no longer open this item from now on; a new need-to-know would be a new grant.",
                name=username,
            ),
            button=_("Revoke"),
            back=back,
            facts=[(_("Staff member"), username), (_("Item"), f"#{grant.item_id} {title}")],
            asks=[Ask("reason", _("Reason for revoking"))],
        )
    form = Form()
    if form.checked(ctx, Action.NTK_REVOKE):
        ndas.revoke_need_to_know(
            ctx, ntk_id, validated(REASON_IN, {"reason": request.form.get("reason", "")})
        )
        flash(_("Need-to-know revoked."))
    return redirect(back, code=303)


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
        return redirect(url_for("web.subcontractor_page", agreement_id=agreement_id), code=303)
    rows = subcontractors.list_for(ctx, agreement_id)
    return _tab(
        ctx,
        "subcontractors",
        agreement_id,
        rows=rows,
        people=_filers(ctx, rows),
        # Each record's buttons: what the decision point would allow the reader (no trail entry).
        moves={sub.id: subcontractors.possible_moves(ctx, sub) for sub, _scopes in rows},
        titles={i.id: i.title for i in items.list_for(ctx, agreement_id)},
        form=form,
        today=ctx.today(),
        me=ctx.principal.id,
    ), form.status


def _filers(ctx: Ctx, rows) -> dict:
    """Each record's filer by name (the names read at once)."""
    filers = {sub.id: subcontractors.username(ctx, sub.registered_by) for sub, _scopes in rows}
    named = names.actors(ctx.db, set(filers.values()))
    return {sub_id: named[username] for sub_id, username in filers.items()}


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


# What each step's confirmation page says: title, consequence, button.
SUB_CONFIRMS = {
    "review": (
        _l("Pass the review of subcontractor %(name)s?"),
        _l(
            "The record goes to the approver with your name as its reviewer; you cannot approve it yourself."
        ),
        _l("Review and pass on"),
    ),
    "approve": (
        _l("Approve and seal subcontractor %(name)s?"),
        _l(
            "The office's seal is put on this record in your name; it cannot be undone. The vendor lead may then take a client token that reads these items (only the fields listed) until the record ends."
        ),
        _l("Approve and seal"),
    ),
    "deny": (
        _l("Deny subcontractor %(name)s?"),
        _l(
            "The record ends as denied, with your reason shown to the vendor; it cannot be reopened."
        ),
        _l("Deny"),
    ),
    "token": (
        _l("Issue the client token of subcontractor %(name)s?"),
        _l(
            "A new client token is made and shown to you once, on the next page; any earlier token of this record stops working."
        ),
        _l("Make the token"),
    ),
    "rotate": (
        _l("Rotate the client token of subcontractor %(name)s?"),
        _l(
            "The current token stops working at once; a new one is shown to you once, on the next page."
        ),
        _l("Make a new token"),
    ),
    "revoke": (
        _l("Revoke subcontractor %(name)s?"),
        _l(
            "Its token and every scope over the items end now, for good; the subcontractor must return or destroy what it holds."
        ),
        _l("Revoke"),
    ),
}


def _ask_sub(ctx: Ctx, agreement_id: int, sub_id: int, step: str, asks=(), error=None, status=200):
    """The confirmation page of a step on a subcontractor record, naming it and its scope."""
    sub = subcontractors.get(ctx, sub_id)
    titles = {i.id: i.title for i in items.list_for(ctx, agreement_id)}
    scope = ", ".join(
        f"#{s.item_id} {titles.get(s.item_id, '')}" for s in subcontractors.scopes_of(ctx, sub)
    )
    title, consequence, button = SUB_CONFIRMS[step]
    return confirm_page(
        title=str(title) % {"name": sub.name},
        consequence=str(consequence),
        button=str(button),
        back=url_for("web.subcontractor_page", agreement_id=agreement_id),
        facts=[
            (_("Name"), sub.name),
            (_("Service it provides"), sub.service),
            (_("Purpose"), sub.purpose),
            (_("Items it may receive"), scope),
            (_("Record ends"), show_date(sub.until)),
        ],
        asks=list(asks),
        danger=step in ("deny", "revoke", "rotate"),
        error=error,
        status=status,
    )


def _asks(step: str) -> list[Ask]:
    if step == "review":
        return [Ask("opinion", _("Reviewer's opinion (optional)"), "textarea", required=False)]
    if step == "approve":
        label_ = _(
            "Approver's opinion (optional; sealed with the approval and printed on the letter)"
        )
        return [Ask("opinion", label_, "textarea", required=False), password_ask()]
    if step in ("deny", "revoke"):
        return [Ask("reason", _("Reason"))]
    return []


@page(
    "/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/<any(review, approve):move>",
    methods=("GET", "POST"),
)
def subcontractor_move(ctx: Ctx, agreement_id: int, sub_id: int, move: str):
    service, action, done = SUB_MOVES[move]
    if request.method == "GET":
        require_role_for(ctx, action)
        return _ask_sub(ctx, agreement_id, sub_id, move, _asks(move))
    if Form().checked(ctx, action):
        if move == "approve":
            # The seal is a signature: the approver proves its password again (issue 12).
            target = subcontractors.target(subcontractors.get(ctx, sub_id))
            refused = password_refusal(ctx, action, target)
            if refused:
                return _ask_sub(ctx, agreement_id, sub_id, move, _asks(move), refused, 401)
        # The reviewer's opinion (审核意见), when one is written.
        opinion = (request.form.get("opinion") or "").strip()
        if opinion:
            service(ctx, sub_id, validated(OPINION_IN, {"opinion": opinion})["opinion"])
        else:
            service(ctx, sub_id)
        flash(str(done) % {"id": sub_id})
    return redirect(url_for("web.subcontractor_page", agreement_id=agreement_id), code=303)


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/deny", methods=("GET", "POST"))
def subcontractor_deny(ctx: Ctx, agreement_id: int, sub_id: int):
    if request.method == "GET":
        require_role_for(ctx, Action.SUBCONTRACTOR_DENY)
        return _ask_sub(ctx, agreement_id, sub_id, "deny", _asks("deny"))
    if Form().checked(ctx, Action.SUBCONTRACTOR_DENY):
        refused = refused_reason(
            ctx, REASON_IN, lambda reason: subcontractors.deny(ctx, sub_id, reason)
        )
        if refused:
            return _ask_sub(ctx, agreement_id, sub_id, "deny", _asks("deny"), *refused)
        flash(_("Subcontractor %(id)s denied.", id=sub_id))
    return redirect(url_for("web.subcontractor_page", agreement_id=agreement_id), code=303)


# Issuing and rotating the client token: the service per step and the action it is decided under.
TOKEN_STEPS = {
    "token": (subcontractors.issue_token, Action.SUBCONTRACTOR_TOKEN, "issued"),
    "rotate": (subcontractors.rotate, Action.SUBCONTRACTOR_ROTATE, "rotated"),
}


def _token_step(ctx: Ctx, agreement_id: int, sub_id: int, step: str):
    service, action, what = TOKEN_STEPS[step]
    if request.method == "GET":
        require_role_for(ctx, action)
        return _ask_sub(ctx, agreement_id, sub_id, step)
    if not Form().checked(ctx, action):
        return redirect(url_for("web.subcontractor_page", agreement_id=agreement_id), code=303)
    sub, token, *_rest = service(ctx, sub_id)
    # The token is kept (encrypted) for one GET of the next page: never flashed into the
    # cookie, never logged; a reload of that page shows it no more and issues nothing.
    payload = {"kind": "client-token", "token": token, "what": what}
    payload |= {"agreement_id": agreement_id, "name": sub.name, "until": sub.until.isoformat()}
    return show_once_after(ctx, payload)


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/token", methods=("GET", "POST"))
def subcontractor_token(ctx: Ctx, agreement_id: int, sub_id: int):
    return _token_step(ctx, agreement_id, sub_id, "token")


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/rotate", methods=("GET", "POST"))
def subcontractor_rotate(ctx: Ctx, agreement_id: int, sub_id: int):
    return _token_step(ctx, agreement_id, sub_id, "rotate")


def _client_token_shown(ctx: Ctx, payload: dict) -> str:
    sub = {"name": payload["name"], "until": payload["until"]}
    return _tab(
        ctx,
        "token",
        payload["agreement_id"],
        sub=sub,
        token=payload["token"],
        what=payload["what"],
        **holder_links(),
    )


SHOWN["client-token"] = _client_token_shown


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/revoke", methods=("GET", "POST"))
def subcontractor_revoke(ctx: Ctx, agreement_id: int, sub_id: int):
    if request.method == "GET":
        require_role_for(ctx, Action.SUBCONTRACTOR_REVOKE)
        return _ask_sub(ctx, agreement_id, sub_id, "revoke", _asks("revoke"))
    if Form().checked(ctx, Action.SUBCONTRACTOR_REVOKE):
        refused = refused_reason(
            ctx, REASON_IN, lambda reason: subcontractors.revoke(ctx, sub_id, reason)
        )
        if refused:
            return _ask_sub(ctx, agreement_id, sub_id, "revoke", _asks("revoke"), *refused)
        flash(_("Subcontractor revoked: its token and its record have ended."))
    return redirect(url_for("web.subcontractor_page", agreement_id=agreement_id), code=303)


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/report")
def subcontractor_report(ctx: Ctx, agreement_id: int, sub_id: int):
    return _tab(ctx, "report", agreement_id, report=subcontractors.report(ctx, sub_id))


# Breaches (clauses 3.9, 7).


class BreachForm(Form):
    description = TextAreaField(_l("What happened"))
    responsible_kind = SelectField(_l("Who is responsible"))
    responsible = StringField(_l("Username, or subcontractor number"))
    # Picked from the entries about this agreement (govern.services.breaches.evidence)...
    entries = ItemChoice(_l("Audit entries about this agreement"))
    # ... or typed, for an entry further back than the list shows.
    audit_seqs = StringField(_l("Other audit entries (numbers, comma-separated)"))
    terminate = BooleanField(_l("Also terminate the agreement now (clause 7)"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.responsible_kind.choices = choices(
            [("staff", _("a staff member")), ("subcontractor", label("subcontractor"))]
        )

    def _seqs(self) -> list:
        """The picked entries, then those typed (as typed: the schema judges them)."""
        picked = list(self.entries.data or [])
        return picked + [n for n in _numbers(self.audit_seqs.data) if n not in picked]

    def payload(self) -> dict:
        return {
            "description": self.description.data,
            "responsible_kind": self.responsible_kind.data,
            "responsible": self.responsible.data,
            "audit_seqs": self._seqs(),
            "terminate": bool(self.terminate.data),
        }


def _ask_breach(ctx: Ctx, agreement_id: int, form: BreachForm, data: dict):
    """The confirmation page of a breach record: whom it names, what it costs, and whether it
    also ends the agreement (clause 7)."""
    agreement = agreements.get(ctx, agreement_id)
    consequence = _(
        "The breach is recorded for good against %(vendor)s, with liquidated damages of %(amount)s (clause 7).",
        vendor=agreement.vendor,
        amount=f"{agreement.contract_value:,.2f} {agreement.currency}",
    )
    if data.get("terminate"):
        consequence += " " + _(
            "The agreement is also terminated now: every grant, need-to-know and subcontractor record ends and cannot be restored."
        )
    kind = (
        label(data["responsible_kind"])
        if data["responsible_kind"] == "subcontractor"
        else _("a staff member")
    )
    return confirm_page(
        title=_("Record a breach by %(vendor)s?", vendor=agreement.vendor),
        consequence=consequence,
        button=_("Record the breach and terminate") if data.get("terminate") else _("Record"),
        back=url_for("web.breach_page", agreement_id=agreement_id),
        facts=[
            (_("What happened"), data["description"]),
            (_("Who is responsible"), f"{kind} {data['responsible']}"),
            (_("Audit entries"), ", ".join(str(n) for n in data["audit_seqs"])),
        ],
        asks=[
            Ask("description", "", "hidden", value=form.description.data or ""),
            Ask("responsible_kind", "", "hidden", value=form.responsible_kind.data or ""),
            Ask("responsible", "", "hidden", value=form.responsible.data or ""),
            # The entries picked and typed, carried as one list to the confirmed POST.
            Ask("audit_seqs", "", "hidden", value=", ".join(str(n) for n in data["audit_seqs"])),
            Ask("terminate", "", "hidden", value="y" if form.terminate.data else ""),
            Ask("confirmed", "", "hidden", value="y"),
        ],
    )


# How many of the agreement's trail entries the breach form offers at once (older: next page).
EVIDENCE_PAGE = 50


@page("/agreements/<int:agreement_id>/breaches", methods=("GET", "POST"))
def breach_page(ctx: Ctx, agreement_id: int):
    form = BreachForm()
    if request.method == "GET" and request.args.get("seq"):
        form.audit_seqs.data = request.args["seq"]
    if request.method == "POST" and request.form.get("confirmed") != "y":
        # First the confirmation page (nothing is recorded yet), once the values pass the schema.
        if form.checked(ctx, Action.BREACH_CREATE):
            data = attempt(
                ctx,
                form,
                lambda: breaches.check(ctx, agreement_id, validated(BREACH_IN, form.payload())),
            )
            if data is not None:
                return _ask_breach(ctx, agreement_id, form, data)
        done = None
    else:
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
            flash(_("Agreement terminated: all access has ended; the vendor confirms each return."))
            return redirect(url_for("web.recall_page", agreement_id=agreement_id), code=303)
        return redirect(url_for("web.breach_page", agreement_id=agreement_id), code=303)
    agreement, rows = breaches.list_for(ctx, agreement_id)
    before = query_int("before", 0, 1, MAX_ID) if request.args.get("before") else None
    decision = request.args.get("decision") or None
    evidence, older = breaches.evidence(ctx, agreement, EVIDENCE_PAGE, before, decision)
    form.entries.choices = [(e.seq, str(e.seq)) for e in evidence]
    return _tab(
        ctx,
        "breaches",
        agreement_id,
        rows=rows,
        form=form,
        evidence=evidence,
        older=older,
        decision=decision,
        actors=names.actors(ctx.db, {e.actor for e in evidence} | {b.responsible for b in rows}),
        targets=names.targets(ctx.db, {e.target for e in evidence}),
    ), form.status

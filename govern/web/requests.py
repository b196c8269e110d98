"""Disclosure requests (clause 3.6) on the pages: the vendor lead files, edits, submits and
withdraws; the handler reviews; the approver approves (the seal) or denies; the lead hands out a
grant whose token is shown once. The approval letter (审批单) is a printable page and a PDF whose
QR code leads to a public check of its seal.

Every move is the API's own service call; the pages only choose which buttons to show.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, TextAreaField

from govern.actions import Action
from govern.api.disclosures import DENY_IN, DISCLOSURE_EDIT, DISCLOSURE_IN
from govern.context import Ctx
from govern.errors import NotFound
from govern.services import agreements, disclosures, grants, items, seals, subcontractors
from govern.web import letter, page, shown_once
from govern.web.forms import Form, choices, submitted, validated
from govern.web.i18n import LETTER_LOCALE, label
from govern.web.vendor import ItemChoice, item_choices

# The moves without a body: the service, the action it is decided under, what the page says.
MOVES = {
    "submit": (
        disclosures.submit,
        Action.DISCLOSURE_SUBMIT,
        _l("Request %(id)s submitted for review."),
    ),
    "review": (
        disclosures.review,
        Action.DISCLOSURE_REVIEW,
        _l("Request %(id)s reviewed and passed to the approver."),
    ),
    "approve": (
        disclosures.approve,
        Action.DISCLOSURE_APPROVE,
        _l("Request %(id)s approved and sealed."),
    ),
    "withdraw": (disclosures.withdraw, Action.DISCLOSURE_WITHDRAW, _l("Request %(id)s withdrawn.")),
}


class RequestForm(Form):
    third_party = StringField(_l("Third party (who will see the data)"))
    purpose = TextAreaField(_l("Purpose"))
    form = SelectField(_l("Form"))
    item_ids = ItemChoice(_l("Items"))
    starts_on = StringField(_l("From"), render_kw={"type": "date"})
    ends_on = StringField(_l("Until"), render_kw={"type": "date"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.form.choices = choices((f, label(f)) for f in disclosures.FORMS)


@page("/agreements/<int:agreement_id>/requests", methods=("GET", "POST"))
def request_list(ctx: Ctx, agreement_id: int):
    form = RequestForm()
    form.item_ids.choices = item_choices(ctx, agreement_id)
    made = submitted(
        ctx, form, Action.DISCLOSURE_CREATE, DISCLOSURE_IN, disclosures.create, agreement_id
    )
    if made is not None:
        flash(_("Request %(id)s saved as a draft; submit it when it is ready.", id=made.id))
        return redirect(url_for("web.request_page", disclosure_id=made.id))
    state = request.args.get("state") or None
    rows = [disclosures.as_json(ctx, d) for d in disclosures.list_for(ctx, agreement_id, state)]
    return render_template(
        "requests/list.html",
        agreement=agreements.get(ctx, agreement_id),
        tab="requests",
        rows=rows,
        state=state,
        states=disclosures.STATES,
        form=form,
    ), form.status


def _titles(ctx: Ctx, agreement_id: int) -> dict[int, str]:
    return {i.id: i.title for i in items.list_for(ctx, agreement_id)}


@page("/requests/<int:disclosure_id>")
def request_page(ctx: Ctx, disclosure_id: int):
    d = disclosures.get(ctx, disclosure_id)
    shown = disclosures.as_json(ctx, d)
    handed = []
    # Grants are listed for the roles the live policy lets list them (not the handler's page).
    if ctx.runtime.policy.may_ever(ctx.principal.subject, "grant", "list"):
        handed = [grants.as_json(ctx, g, with_uses=True) for g in grants.list_for(ctx, d.id)]
    return render_template(
        "requests/page.html",
        agreement=agreements.get(ctx, d.agreement_id),
        tab="requests",
        d=shown,
        titles=_titles(ctx, d.agreement_id),
        grants=handed,
        me=ctx.principal.name,
    )


@page("/requests/<int:disclosure_id>/edit", methods=("GET", "POST"))
def request_edit(ctx: Ctx, disclosure_id: int):
    d = disclosures.get(ctx, disclosure_id)
    shown = disclosures.as_json(ctx, d)
    form = RequestForm(data=None if request.method == "POST" else shown)
    form.item_ids.choices = item_choices(ctx, d.agreement_id)
    done = submitted(
        ctx, form, Action.DISCLOSURE_EDIT, DISCLOSURE_EDIT, disclosures.edit, disclosure_id
    )
    if done is not None:
        flash(_("Request %(id)s saved.", id=disclosure_id))
        return redirect(url_for("web.request_page", disclosure_id=disclosure_id))
    return render_template(
        "requests/edit.html",
        agreement=agreements.get(ctx, shown["agreement_id"]),
        tab="requests",
        d=shown,
        form=form,
    ), form.status


@page(
    "/requests/<int:disclosure_id>/<any(submit, review, approve, withdraw):move>", methods=("POST",)
)
def request_move(ctx: Ctx, disclosure_id: int, move: str):
    service, action, done = MOVES[move]
    if Form().checked(ctx, action):
        service(ctx, disclosure_id)
        flash(str(done) % {"id": disclosure_id})
    return redirect(url_for("web.request_page", disclosure_id=disclosure_id))


@page("/requests/<int:disclosure_id>/deny", methods=("POST",))
def request_deny(ctx: Ctx, disclosure_id: int):
    if Form().checked(ctx, Action.DISCLOSURE_DENY):
        reason = validated(DENY_IN, {"reason": request.form.get("reason", "")})["reason"]
        disclosures.deny(ctx, disclosure_id, reason)
        flash(_("Request %(id)s denied.", id=disclosure_id))
    return redirect(url_for("web.request_page", disclosure_id=disclosure_id))


@page("/requests/<int:disclosure_id>/grants", methods=("POST",))
def grant_issue(ctx: Ctx, disclosure_id: int):
    # The token is in this answer only: never flashed (the cookie), never logged, never audited.
    if not Form().checked(ctx, Action.GRANT_ISSUE):
        return redirect(url_for("web.request_page", disclosure_id=disclosure_id))
    grant, token = grants.issue(ctx, disclosure_id)
    d = disclosures.get(ctx, disclosure_id)
    return shown_once(
        render_template(
            "requests/grant.html",
            agreement=agreements.get(ctx, d.agreement_id),
            tab="requests",
            d=disclosures.as_json(ctx, d),
            grant=grants.as_json(ctx, grant),
            token=token,
            example=url_for(
                "api.shared_item", item_id=disclosures.item_ids(ctx, d)[0], _external=True
            ),
        )
    )


@page("/grants/<int:grant_id>/revoke", methods=("POST",))
def grant_revoke(ctx: Ctx, grant_id: int):
    if Form().checked(ctx, Action.GRANT_REVOKE):
        grant = grants.revoke(ctx, grant_id)
        flash(_("Grant %(id)s revoked: its token stopped working.", id=grant_id))
        return redirect(url_for("web.request_page", disclosure_id=grant.disclosure_id))
    return redirect(url_for("web.index"))


# The queue of the office: requests waiting for this reader's step.


def _waiting_subcontractors(ctx: Ctx, agreement) -> list[dict]:
    """Subcontractor records waiting for the office (clause 3.5 + 3.7), for readers who may see them."""
    if not ctx.runtime.policy.may_ever(ctx.principal.subject, "subcontractor", "list"):
        return []
    return [
        {
            "id": sub.id,
            "agreement_id": agreement.id,
            "agreement": agreement.title,
            "name": sub.name,
            "purpose": sub.purpose,
            "until": sub.until,
            "state": sub.state,
        }
        for sub, _scopes in subcontractors.list_for(ctx, agreement.id)
        if sub.state in ("submitted", "reviewed")
    ]


@page("/queue")
def queue(ctx: Ctx):
    waiting, recent, subs = [], [], []
    for agreement in agreements.list_all(ctx):
        subs += _waiting_subcontractors(ctx, agreement)
        titles = _titles(ctx, agreement.id)
        for d in disclosures.list_for(ctx, agreement.id):
            shown = disclosures.as_json(ctx, d)
            shown["agreement"] = agreement.title
            shown["titles"] = [titles.get(i, f"#{i}") for i in shown["item_ids"]]
            if shown["state"] in ("submitted", "reviewed"):
                waiting.append(shown)
            elif shown["decided_at"]:
                recent.append(shown)
    recent.sort(key=lambda r: r["decided_at"], reverse=True)
    return render_template(
        "requests/queue.html", waiting=waiting, recent=recent[:20], subcontractors=subs
    )


# The approval letter (审批单).


def zh_en(value: str) -> str:
    """A stored name as the letter prints it, whatever the reader's language: 已批准 approved."""
    with force_locale(LETTER_LOCALE):
        return f"{label(value)} {value}"


def when(moment: str | None) -> str:
    """A moment on the letter: the office's own clock, written the way its forms are, with its
    offset (2026-11-25 04:30 +08:00) so a printed letter says which zone it is in."""
    if not moment:
        return "—"
    with force_locale(LETTER_LOCALE):
        return format_datetime(
            datetime.fromisoformat(moment.replace("Z", "+00:00")), "yyyy-MM-dd HH:mm xxx"
        )


def letter_data(ctx: Ctx, disclosure_id: int) -> dict:
    d = disclosures.get(ctx, disclosure_id)
    shown = disclosures.as_json(ctx, d)
    agreement = agreements.get(ctx, d.agreement_id)
    titles = _titles(ctx, d.agreement_id)
    seal = None
    if shown["sealed"]:
        approval = disclosures.approval(ctx, disclosure_id)
        digest = hashlib.sha256(approval["jws"].encode()).hexdigest()
        seal = {
            "kid": approval["key_id"],
            "alg": approval.get("algorithm", "ES256"),
            "digest": digest,
            "jws": approval["jws"],
            "document": approval["document"],
        }
    digest = seal["digest"] if seal else "-"
    steps = [
        {
            "role": "申请人 vendor lead",
            "who": shown["filed_by"],
            "at": when(shown["submitted_at"]),
            "decision": "提交 submitted" if shown["submitted_at"] else "—",
        },
        {
            "role": "经办人 office handler",
            "who": shown["reviewed_by"] or "—",
            "at": when(shown["reviewed_at"]),
            "decision": "初审通过 reviewed" if shown["reviewed_at"] else "—",
        },
        {
            "role": "分管负责人 office approver",
            "who": shown["decided_by"] or "—",
            "at": when(shown["decided_at"]),
            "decision": _decision_words(shown),
        },
    ]
    return {
        "number": str(d.id),
        "state": zh_en(shown["state"]),
        "agreement": {
            "title": agreement.title,
            "owner": agreement.owner,
            "vendor": agreement.vendor,
        },
        "filed": shown["filed_by"],
        "third_party": shown["third_party"],
        "purpose": shown["purpose"],
        "form": zh_en(shown["form"]),
        "window": f"{shown['starts_on']} – {shown['ends_on']}",
        "items": [
            {"id": i["id"], "title": titles.get(i["id"], ""), "sha256": i["sha256"]}
            for i in shown["items"]
        ],
        "steps": steps,
        "seal": seal,
        "verify_url": url_for("web.seal_check", disclosure_id=d.id, digest=digest, _external=True),
        "request": shown,
    }


def _decision_words(shown: dict) -> str:
    if shown["sealed"]:
        return "批准 approved"
    if shown["deny_reason"]:
        return f"不予批准 denied: {shown['deny_reason']}"
    return "—"


@page("/requests/<int:disclosure_id>/letter")
def request_letter(ctx: Ctx, disclosure_id: int):
    data = letter_data(ctx, disclosure_id)
    links = {
        "kind": "request",
        "back": url_for("web.request_page", disclosure_id=disclosure_id),
        "pdf": url_for("web.request_letter_pdf", disclosure_id=disclosure_id),
        "json": url_for("web.request_approval_json", disclosure_id=disclosure_id),
    }
    return render_letter(data, links)


def render_letter(data: dict, links: dict) -> str:
    return render_template(
        "requests/letter.html",
        letter=data,
        rows=letter.letter_rows(data),
        headings=data.get("headings", letter.HEADINGS),
        qr=letter.qr_svg(data["verify_url"]),
        links=links,
    )


@page("/requests/<int:disclosure_id>/letter.pdf")
def request_letter_pdf(ctx: Ctx, disclosure_id: int):
    response = Response(letter.pdf(letter_data(ctx, disclosure_id)), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="approval-{disclosure_id}.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response


@page("/requests/<int:disclosure_id>/approval.json")
def request_approval_json(ctx: Ctx, disclosure_id: int):
    """The sealed approval as the API gives it, to verify offline (govern approval verify)."""
    body = json.dumps(disclosures.approval(ctx, disclosure_id), ensure_ascii=False, indent=2)
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="approval-{disclosure_id}.json"'
    )
    return response


# The public check a printed letter's QR code leads to.


@page("/verify/<int:disclosure_id>", methods=("GET", "POST"), public=True)
def seal_check(ctx: Ctx, disclosure_id: int):
    return _seal_check_page(ctx, seals.check, disclosure_id, "request")


def _seal_check_page(ctx: Ctx, check, ident: int, kind: str):
    """The public page a letter's QR code leads to: whether the seal on the letter (its digest in
    the link) is genuine, and a box to paste a whole sealed approval and check it."""
    digest = (request.args.get("digest") or "").strip().lower()
    result = check(ctx, ident, digest)
    pasted = None
    form = Form()
    if form.checked():
        pasted = seals.check_pasted(ctx, request.form.get("approval", ""))
    return render_template(
        "requests/verify.html",
        result=result,
        pasted=pasted,
        disclosure_id=ident,
        form=form,
        kind=kind,
    ), form.status


# The same letter and public check for a subcontractor's record (clauses 3.5, 3.7).


def subcontractor_letter_data(ctx: Ctx, agreement_id: int, sub_id: int) -> dict:
    sub = subcontractors.get(ctx, sub_id)
    if sub.agreement_id != agreement_id:
        raise NotFound(f"subcontractor {sub_id} does not exist")
    agreement = agreements.get(ctx, sub.agreement_id)
    known = {i.id: i for i in items.list_for(ctx, agreement.id)}
    seal = None
    if sub.approval_jws:
        seal = {
            "kid": sub.approval_kid,
            "alg": "ES256",
            "digest": hashlib.sha256(sub.approval_jws.encode()).hexdigest(),
        }
    name = subcontractors.username
    steps = [
        ("申请人 vendor lead", name(ctx, sub.registered_by), sub.created_at, "提交 submitted"),
        ("经办人 office handler", name(ctx, sub.reviewed_by), sub.reviewed_at, "初审通过 reviewed"),
        ("分管负责人 office approver", name(ctx, sub.decided_by), sub.decided_at, None),
    ]
    decided = (
        "批准 approved"
        if seal
        else (f"不予批准 denied: {sub.deny_reason}" if sub.deny_reason else "—")
    )
    return {
        "headings": letter.SUBCONTRACTOR_HEADINGS,
        "number": str(sub.id),
        "state": zh_en(sub.state),
        "agreement": {
            "title": agreement.title,
            "owner": agreement.owner,
            "vendor": agreement.vendor,
        },
        "filed": name(ctx, sub.registered_by),
        "third_party": sub.name,
        "purpose": sub.purpose,
        "form": sub.service,
        "window": f"{sub.until.isoformat()} (DSA {sub.dsa_signed_on.isoformat()} – "
        f"{sub.dsa_expires_on.isoformat()}, SHA-256 {sub.dsa_sha256})",
        "items": [
            {
                "id": s.item_id,
                "title": f"{known[s.item_id].title if s.item_id in known else ''} — "
                f"{', '.join(s.fields) or '整项 whole item'}",
                "sha256": known[s.item_id].sha256 if s.item_id in known else "",
            }
            for s in subcontractors.scopes_of(ctx, sub)
        ],
        "steps": [
            {
                "role": role,
                "who": who or "—",
                "at": when(at.isoformat()) if at and who else "—",
                "decision": (words or decided) if who else "—",
            }
            for role, who, at, words in steps
        ],
        "seal": seal,
        "verify_url": url_for(
            "web.subcontractor_seal_check",
            sub_id=sub.id,
            digest=seal["digest"] if seal else "-",
            _external=True,
        ),
    }


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/letter")
def subcontractor_letter(ctx: Ctx, agreement_id: int, sub_id: int):
    data = subcontractor_letter_data(ctx, agreement_id, sub_id)
    args = {"agreement_id": agreement_id, "sub_id": sub_id}
    links = {
        "kind": "subcontractor",
        "back": url_for("web.subcontractor_page", agreement_id=agreement_id),
        "pdf": url_for("web.subcontractor_letter_pdf", **args),
        "json": url_for("api.subcontractor_approval", sub_id=sub_id),
    }
    return render_letter(data, links)


@page("/agreements/<int:agreement_id>/subcontractors/<int:sub_id>/letter.pdf")
def subcontractor_letter_pdf(ctx: Ctx, agreement_id: int, sub_id: int):
    data = subcontractor_letter_data(ctx, agreement_id, sub_id)
    response = Response(letter.pdf(data), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="subcontractor-{sub_id}.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response


@page("/verify/subcontractors/<int:sub_id>", methods=("GET", "POST"), public=True)
def subcontractor_seal_check(ctx: Ctx, sub_id: int):
    return _seal_check_page(ctx, seals.check_subcontractor, sub_id, "subcontractor")

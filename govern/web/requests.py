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
from govern.services import agreements, disclosures, grants, items, seals
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


@page("/queue")
def queue(ctx: Ctx):
    waiting, recent = [], []
    for agreement in agreements.list_all(ctx):
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
    return render_template("requests/queue.html", waiting=waiting, recent=recent[:20])


# The approval letter (审批单).


def _zh_en(value: str) -> str:
    """A stored name as the letter prints it, whatever the reader's language: 已批准 approved."""
    with force_locale(LETTER_LOCALE):
        return f"{label(value)} {value}"


def _when(moment: str | None) -> str:
    """A moment on the letter: the office's own clock, written the way its forms are."""
    if not moment:
        return "—"
    with force_locale(LETTER_LOCALE):
        return format_datetime(
            datetime.fromisoformat(moment.replace("Z", "+00:00")), "yyyy-MM-dd HH:mm"
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
            "at": _when(shown["submitted_at"]),
            "decision": "提交 submitted" if shown["submitted_at"] else "—",
        },
        {
            "role": "经办人 office handler",
            "who": shown["reviewed_by"] or "—",
            "at": _when(shown["reviewed_at"]),
            "decision": "初审通过 reviewed" if shown["reviewed_at"] else "—",
        },
        {
            "role": "分管负责人 office approver",
            "who": shown["decided_by"] or "—",
            "at": _when(shown["decided_at"]),
            "decision": _decision_words(shown),
        },
    ]
    return {
        "number": str(d.id),
        "state": _zh_en(shown["state"]),
        "agreement": {
            "title": agreement.title,
            "owner": agreement.owner,
            "vendor": agreement.vendor,
        },
        "filed": shown["filed_by"],
        "third_party": shown["third_party"],
        "purpose": shown["purpose"],
        "form": _zh_en(shown["form"]),
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
    return render_template(
        "requests/letter.html",
        letter=data,
        rows=letter.letter_rows(data),
        headings=letter.HEADINGS,
        qr=letter.qr_svg(data["verify_url"]),
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
    digest = (request.args.get("digest") or "").strip().lower()
    result = seals.check(ctx, disclosure_id, digest)
    pasted = None
    form = Form()
    if form.checked():
        pasted = seals.check_pasted(ctx, request.form.get("approval", ""))
    return render_template(
        "requests/verify.html", result=result, pasted=pasted, disclosure_id=disclosure_id, form=form
    ), form.status

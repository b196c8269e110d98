"""Disclosure requests (clause 3.6) on the pages: the vendor lead files, edits, submits and
withdraws; the handler reviews; the approver approves (the seal) or denies; the lead hands out a
grant whose token is shown once. The approval letter (审批单) is a printable page and a PDF whose
QR code leads to a public check of its seal.

Every move is the API's own service call; the pages only choose which buttons to show.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date, datetime

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, TextAreaField

from govern.actions import Action
from govern.api import query_int, query_text
from govern.api.disclosures import DENY_IN, DISCLOSURE_EDIT, DISCLOSURE_IN, OPINION_IN
from govern.context import Ctx, can, require_role_for
from govern.db import MAX_ID
from govern.errors import NotFound
from govern.http import external_url
from govern.messages import Msg
from govern.services import (
    agreements,
    dashboards,
    denied_at_first_review,
    disclosures,
    grants,
    items,
    names,
    seals,
    subcontractors,
)
from govern.web import SHOWN, letter, page, show_once_after
from govern.web.confirm import (
    Ask,
    confirm_page,
    password_ask,
    password_refusal,
    refused_reason,
)
from govern.web.forms import Form, choices, submitted, validated
from govern.web.i18n import LETTER_LOCALE, label, show_date, zone_label
from govern.web.paging import paged_list
from govern.web.shared import holder_links
from govern.web.vendor import ItemChoice, item_choices

log = logging.getLogger(__name__)

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
        return redirect(url_for("web.request_page", disclosure_id=made.id), code=303)
    state = request.args.get("state") or None
    search = request_search()
    # One decision; each page's requests with their items and people read at once.
    found = paged_list(disclosures.list_for(ctx, agreement_id, state, **search))
    found.rows = disclosures.rows_json(ctx, found.rows)
    return render_template(
        "requests/list.html",
        people=_people(ctx, found.rows),
        agreement=agreements.get(ctx, agreement_id),
        tab="requests",
        rows=found,
        state=state,
        states=disclosures.STATES,
        search=search,
        form=form,
    ), form.status


def _people(ctx: Ctx, rows: list[dict]):
    """Everyone the rows name (filer, reviewer, approver) by display name, read at once."""
    who = {r[k] for r in rows for k in ("filed_by", "reviewed_by", "decided_by") if r[k]}
    return names.actors(ctx.db, who)


def request_search() -> dict:
    """The request list's search: a third party (any part of its name) and an item."""
    return {
        "third_party": query_text("third_party", 300),
        "item_id": query_int("item", 0, 1, MAX_ID) or None,
    }


def _titles(ctx: Ctx, agreement_id: int) -> dict[int, str]:
    return {i.id: i.title for i in items.list_for(ctx, agreement_id)}


@page("/requests/<int:disclosure_id>")
def request_page(ctx: Ctx, disclosure_id: int):
    d = disclosures.get(ctx, disclosure_id)
    shown = disclosures.as_json(ctx, d)
    handed, revocable = [], set()
    # Grants are listed for a reader the decision point would let list them (not the handler).
    if can(ctx, Action.GRANT_LIST, disclosures.target(d)):
        listed = grants.list_for(ctx, d.id)
        handed = [grants.as_json(ctx, g, with_uses=True) for g in listed]
        revocable = {g.id for g in listed if can(ctx, Action.GRANT_REVOKE, grants.target(g, d))}
    # The buttons: the moves the decision point would allow this reader now (no trail entry).
    moves = disclosures.possible_moves(ctx, d)
    if grants.may_issue(ctx, d):
        moves.add(str(Action.GRANT_ISSUE))
    people = {shown[k] for k in ("filed_by", "reviewed_by", "decided_by") if shown[k]}
    return render_template(
        "requests/page.html",
        agreement=agreements.get(ctx, d.agreement_id),
        tab="requests",
        d=shown,
        titles=_titles(ctx, d.agreement_id),
        grants=handed,
        me=ctx.principal.name,
        moves=moves,
        revocable=revocable,
        people=names.actors(ctx.db, people),
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
        return redirect(url_for("web.request_page", disclosure_id=disclosure_id), code=303)
    return render_template(
        "requests/edit.html",
        agreement=agreements.get(ctx, shown["agreement_id"]),
        tab="requests",
        d=shown,
        form=form,
    ), form.status


# What each move's confirmation page says: its title, its consequence and its button.
CONFIRMS = {
    "submit": (
        _l("Submit request %(id)s for review?"),
        _l("The office's handler reviews it next; it can no longer be edited."),
        _l("Submit for review"),
    ),
    "review": (
        _l("Pass the review of request %(id)s?"),
        _l(
            "The request goes to the approver with your name as its reviewer; you cannot approve it yourself."
        ),
        _l("Pass the review"),
    ),
    "approve": (
        _l("Approve and seal request %(id)s?"),
        _l(
            "The office's seal is put on the approval in your name; it cannot be undone. The vendor lead may then hand the third party a grant for these items in this window."
        ),
        _l("Approve and seal"),
    ),
    "withdraw": (
        _l("Withdraw request %(id)s?"),
        _l("The request ends for good: it can never be submitted, reviewed or approved."),
        _l("Withdraw"),
    ),
}


def _request_facts(ctx: Ctx, d: dict) -> list[tuple[str, str]]:
    """Which request a confirmation page is about, by its names."""
    titles = _titles(ctx, d["agreement_id"])
    return [
        (_("Third party"), d["third_party"]),
        (_("Purpose"), d["purpose"]),
        (_("Items"), ", ".join(titles.get(i, f"#{i}") for i in d["item_ids"])),
        (_("Window"), f"{show_date(d['starts_on'])} – {show_date(d['ends_on'])}"),
        (_("Filed by"), names.actors(ctx.db, {d["filed_by"]})[d["filed_by"]].name),
    ]


def _move_asks(move: str) -> list[Ask]:
    """A review and an approval may carry the reviewer's opinion (审核意见); the seal asks for the
    approver's password again."""
    asks = []
    if move == "review":
        asks.append(Ask("opinion", _("Reviewer's opinion (optional)"), "textarea", required=False))
    if move == "approve":
        label_ = _(
            "Approver's opinion (optional; sealed with the approval and printed on the letter)"
        )
        asks.append(Ask("opinion", label_, "textarea", required=False))
        asks.append(password_ask())
    return asks


def _ask_move(ctx: Ctx, disclosure_id: int, move: str, error=None, status=200):
    title, consequence, button = CONFIRMS[move]
    shown = disclosures.as_json(ctx, disclosures.get(ctx, disclosure_id))
    return confirm_page(
        title=str(title) % {"id": disclosure_id},
        consequence=str(consequence),
        button=str(button),
        back=url_for("web.request_page", disclosure_id=disclosure_id),
        facts=_request_facts(ctx, shown),
        asks=_move_asks(move),
        danger=move in ("withdraw",),
        error=error,
        status=status,
    )


@page(
    "/requests/<int:disclosure_id>/<any(submit, review, approve, withdraw):move>",
    methods=("GET", "POST"),
)
def request_move(ctx: Ctx, disclosure_id: int, move: str):
    service, action, done = MOVES[move]
    if request.method == "GET":
        require_role_for(ctx, action)
        return _ask_move(ctx, disclosure_id, move)
    if Form().checked(ctx, action):
        if move == "approve":
            # The seal is a signature: the approver proves its password again (issue 12).
            target = disclosures.target(disclosures.get(ctx, disclosure_id))
            refused = password_refusal(ctx, action, target)
            if refused:
                return _ask_move(ctx, disclosure_id, move, refused, 401)
        opinion = (request.form.get("opinion") or "").strip()
        if move in ("review", "approve") and opinion:
            opinion = validated(OPINION_IN, {"opinion": opinion})["opinion"]
            service(ctx, disclosure_id, opinion)
        else:
            service(ctx, disclosure_id)
        flash(str(done) % {"id": disclosure_id})
    return redirect(url_for("web.request_page", disclosure_id=disclosure_id), code=303)


@page("/requests/<int:disclosure_id>/deny", methods=("GET", "POST"))
def request_deny(ctx: Ctx, disclosure_id: int):
    def ask(error=None, status=200):
        shown = disclosures.as_json(ctx, disclosures.get(ctx, disclosure_id))
        return confirm_page(
            title=_("Deny request %(id)s?", id=disclosure_id),
            consequence=_(
                "The request ends as denied, with your reason shown to the vendor; it cannot be reopened."
            ),
            button=_("Deny"),
            back=url_for("web.request_page", disclosure_id=disclosure_id),
            facts=_request_facts(ctx, shown),
            asks=[Ask("reason", _("Reason for the denial"), "textarea")],
            error=error,
            status=status,
        )

    if request.method == "GET":
        require_role_for(ctx, Action.DISCLOSURE_DENY)
        return ask()
    if Form().checked(ctx, Action.DISCLOSURE_DENY):
        refused = refused_reason(
            ctx, DENY_IN, lambda reason: disclosures.deny(ctx, disclosure_id, reason)
        )
        if refused:
            return ask(*refused)
        flash(_("Request %(id)s denied.", id=disclosure_id))
    return redirect(url_for("web.request_page", disclosure_id=disclosure_id), code=303)


@page("/requests/<int:disclosure_id>/grants", methods=("GET", "POST"))
def grant_issue(ctx: Ctx, disclosure_id: int):
    back = url_for("web.request_page", disclosure_id=disclosure_id)
    if request.method == "GET":
        require_role_for(ctx, Action.GRANT_ISSUE)
        shown = disclosures.as_json(ctx, disclosures.get(ctx, disclosure_id))
        return confirm_page(
            title=_(
                "Hand a grant for request %(id)s to %(party)s?",
                id=disclosure_id,
                party=shown["third_party"],
            ),
            consequence=_(
                "A new token is made that reads these items until the end of the request's window; it is shown to you once, on the next page. Every grant is recorded."
            ),
            button=_("Make the token"),
            back=back,
            facts=_request_facts(ctx, shown),
            danger=False,
        )
    if not Form().checked(ctx, Action.GRANT_ISSUE):
        return redirect(back, code=303)
    grant, token = grants.issue(ctx, disclosure_id)
    d = disclosures.get(ctx, disclosure_id)
    # The token is kept (encrypted) for one GET of the next page: never flashed (the cookie),
    # never logged, never audited; a reload of that page shows it no more and issues nothing.
    return show_once_after(
        ctx,
        {
            "kind": "grant",
            "token": token,
            "grant": grants.as_json(ctx, grant),
            "d": {"id": d.id, "third_party": d.third_party, "agreement_id": d.agreement_id},
            "example": url_for(
                "api.shared_item", item_id=disclosures.item_ids(ctx, d)[0], _external=True
            ),
        },
    )


def _grant_shown(ctx: Ctx, payload: dict) -> str:
    d = payload["d"]
    return render_template(
        "requests/grant.html",
        agreement=agreements.get(ctx, d["agreement_id"]),
        tab="requests",
        d=d,
        grant=payload["grant"],
        token=payload["token"],
        example=payload["example"],
        **holder_links(),
    )


SHOWN["grant"] = _grant_shown


@page("/grants/<int:grant_id>/revoke", methods=("GET", "POST"))
def grant_revoke(ctx: Ctx, grant_id: int):
    if request.method == "GET":
        require_role_for(ctx, Action.GRANT_REVOKE)
        found = grants.get(ctx, grant_id)
        shown = disclosures.as_json(ctx, disclosures.get(ctx, found.disclosure_id))
        return confirm_page(
            title=_("Revoke grant %(id)s of %(party)s?", id=grant_id, party=shown["third_party"]),
            consequence=_(
                "Its token stops working at once for every item; it cannot be made to work again (a new grant is a new token)."
            ),
            button=_("Revoke"),
            back=url_for("web.request_page", disclosure_id=found.disclosure_id),
            facts=[(_("Request"), str(found.disclosure_id)), *_request_facts(ctx, shown)],
        )
    if Form().checked(ctx, Action.GRANT_REVOKE):
        grant = grants.revoke(ctx, grant_id)
        flash(_("Grant %(id)s revoked: its token stopped working.", id=grant_id))
        return redirect(url_for("web.request_page", disclosure_id=grant.disclosure_id), code=303)
    return redirect(url_for("web.index"), code=303)


# The queue of the office: requests waiting for this reader's step (one decision for the page).


@page("/queue")
def queue(ctx: Ctx):
    only = request.args.get("state") or None
    third_party = query_text("third_party", 300)
    found = dashboards.queue(ctx, only, third_party=third_party)
    waiting = paged_list(found["waiting"])
    recent = paged_list(found["recent"], param="decided_page")
    return render_template(
        "requests/queue.html",
        only=only,
        waiting=waiting,
        recent=recent,
        people=_people(ctx, waiting.rows + recent.rows),
        subcontractors=found["subcontractors"],
        third_party=third_party,
    )


# The approval letter (审批单).

# The office's two lines on every letter, and a line nobody signed.
HANDLER = "经办人 office handler"
APPROVER = "分管负责人 office approver"
NO_STEP = {"who": "—", "at": "—", "decision": "—"}


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


def window_words(ctx: Ctx, starts_on: str | None, ends_on: str) -> str:
    """A window on the letter, on the office's days and saying so: "2026-11-25 – 2026-12-05
    当日结束 end of day (GMT+08:00)" (a printed letter has no other way to tell its zone)."""
    end = ctx.clock.end_of_day(date.fromisoformat(ends_on))
    with force_locale(LETTER_LOCALE):
        zone = zone_label(end)
    span = f"{starts_on} – {ends_on}" if starts_on else ends_on
    return f"{span} 当日结束 end of day ({zone})"


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
    review = {
        "role": HANDLER,
        "who": shown["reviewed_by"] or "—",
        "at": when(shown["reviewed_at"]),
        "decision": _with_opinion("初审通过 reviewed", shown["review_opinion"])
        if shown["reviewed_at"]
        else "—",
    }
    decision = {
        "role": APPROVER,
        "who": shown["decided_by"] or "—",
        "at": when(shown["decided_at"]),
        "decision": _decision_words(shown),
    }
    steps = [
        {
            "role": "申请人 vendor lead",
            "who": shown["filed_by"],
            "at": when(shown["submitted_at"]),
            "decision": "提交 submitted" if shown["submitted_at"] else "—",
        },
        *_office_lines(ctx, d, review, decision),
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
        "window": window_words(ctx, shown["starts_on"], shown["ends_on"]),
        "items": [
            {"id": i["id"], "title": titles.get(i["id"], ""), "sha256": i["sha256"]}
            for i in shown["items"]
        ],
        "steps": steps,
        "seal": seal,
        # Only a sealed letter has something to verify: a denied or withdrawn one shows its state
        # and no seal address (a QR code there would only ever say "not the office's").
        "verify_url": external_url("web.seal_check", disclosure_id=d.id, digest=seal["digest"])
        if seal
        else None,
        "request": shown,
    }


def _office_lines(ctx: Ctx, row, review: dict, decision: dict) -> list[dict]:
    """The handler's and the approver's lines of a letter (request or subcontractor's record).
    A handler's denial at the first-level review is the handler's line; no approver decided."""
    if denied_at_first_review(ctx.db, row):
        return [{**decision, "role": HANDLER}, {**decision, **NO_STEP}]
    return [review, decision]


def _with_opinion(words: str, opinion: str | None) -> str:
    """A step's decision on the letter, with the reviewer's opinion (审核意见) when given."""
    return f"{words} · 审核意见 opinion：{opinion}" if opinion else words


def _decision_words(shown: dict) -> str:
    if shown["sealed"]:
        return _with_opinion("批准 approved", shown["decision_opinion"])
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
        qr=letter.qr_svg(data["verify_url"]) if data["verify_url"] else None,
        links=links,
    )


def pdf_response(data: dict, filename: str):
    """The letter as a PDF, or a clear 503 when this machine has no font that can print it."""
    try:
        body = letter.pdf(data)
    except letter.NoCJKFont:
        log.exception("the letter's PDF cannot be made")
        message = _(
            "The PDF cannot be made on this server: no Chinese font is installed "
            "(paperang-p2-fonts-cjk or fonts-wqy-microhei). The printable page works."
        )
        return render_template("error.html", code=503, message=message), 503
    response = Response(body, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@page("/requests/<int:disclosure_id>/letter.pdf")
def request_letter_pdf(ctx: Ctx, disclosure_id: int):
    return pdf_response(letter_data(ctx, disclosure_id), f"approval-{disclosure_id}.pdf")


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
    pasted = result = None
    form = Form()
    # One verdict per page: the pasted approval's when one was pasted, else the letter's seal
    # (its digest in the link); a bare address has nothing to judge yet.
    if form.checked():
        pasted = seals.check_pasted(ctx, request.form.get("approval", ""))
    elif request.method == "GET" and digest:
        result = check(ctx, ident, digest)
        # Letters printed before unsealed ones lost their QR code carried "digest=-": they are
        # not forgeries, they approve nothing.
        result["unsealed"] = digest == "-"
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
        raise NotFound(Msg("missing.object", kind="subcontractor", id=sub_id))
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
    reviewed = _with_opinion("初审通过 reviewed", sub.review_note)
    decided = (
        _with_opinion("批准 approved", sub.decision_note)
        if seal
        else (f"不予批准 denied: {sub.deny_reason}" if sub.deny_reason else "—")
    )
    lines = [
        ("申请人 vendor lead", name(ctx, sub.registered_by), sub.created_at, "提交 submitted"),
        (HANDLER, name(ctx, sub.reviewed_by), sub.reviewed_at, reviewed),
        (APPROVER, name(ctx, sub.decided_by), sub.decided_at, decided),
    ]
    filed, review, decision = (
        {
            "role": role,
            "who": who or "—",
            "at": when(at.isoformat()) if at and who else "—",
            "decision": words if who else "—",
        }
        for role, who, at, words in lines
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
        "window": f"{window_words(ctx, None, sub.until.isoformat())} "
        f"(DSA {sub.dsa_signed_on.isoformat()} – "
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
        "steps": [filed, *_office_lines(ctx, sub, review, decision)],
        "seal": seal,
        "verify_url": external_url(
            "web.subcontractor_seal_check", sub_id=sub.id, digest=seal["digest"]
        )
        if seal
        else None,
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
    return pdf_response(data, f"subcontractor-{sub_id}.pdf")


@page("/verify/subcontractors/<int:sub_id>", methods=("GET", "POST"), public=True)
def subcontractor_seal_check(ctx: Ctx, sub_id: int):
    return _seal_check_page(ctx, seals.check_subcontractor, sub_id, "subcontractor")

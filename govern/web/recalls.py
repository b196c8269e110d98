"""Recall orders (clause 3.10), the vendor's return confirmations, termination with its return
manifest (clause 5.3), declassification (clause 5.2) and destruction of items, on the API's own
services."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, SelectField, StringField, TextAreaField

from govern.actions import Action
from govern.api.recalls import CONFIRM_IN, DECLASSIFY_IN, DESTROY_IN, RECALL_IN
from govern.context import Ctx, require_role_for
from govern.errors import Invalid, NotFound
from govern.messages import Msg
from govern.services import agreements, items, names, recalls
from govern.web import page
from govern.web.confirm import Ask, confirm_page
from govern.web.forms import Form, attempt, choices, validated
from govern.web.i18n import label
from govern.web.paging import paged_list
from govern.web.vendor import ItemChoice, item_choices


class RecallForm(Form):
    item_ids = ItemChoice(_l("Items to recall"))
    everything = BooleanField(_l("Everything of this agreement"))
    reason = TextAreaField(_l("Reason"))

    def payload(self) -> dict:
        if self.everything.data:
            return {"all": True, "reason": self.reason.data}
        return {"item_ids": self.item_ids.data or [], "reason": self.reason.data}


class TerminateForm(Form):
    understood = BooleanField(
        _l(
            "I understand: every grant, need-to-know and subcontractor record ends now; the duty of confidentiality stays."
        )
    )


@page("/agreements/<int:agreement_id>/recalls", methods=("GET", "POST"))
def recall_page(ctx: Ctx, agreement_id: int):
    form = RecallForm()
    form.item_ids.choices = item_choices(ctx, agreement_id)
    if form.checked(ctx, Action.RECALL_CREATE):
        payload = form.payload()
        if not payload.get("all") and not payload.get("item_ids"):
            form.fail(Invalid(_("choose items, or everything"), field="item_ids"))
        elif request.form.get("confirmed") != "y":
            # First the confirmation page, saying which items and what ends (nothing done yet).
            checked = attempt(
                ctx, form, lambda: validated(RECALL_IN, payload), aliases={"all": "everything"}
            )
            if checked is not None:
                return _ask_recall(ctx, agreement_id, form, payload)
        else:
            done = attempt(
                ctx,
                form,
                lambda: recalls.recall(ctx, agreement_id, validated(RECALL_IN, payload)),
                aliases={"all": "everything"},
            )
            if done is not None:
                row, opened = done
                flash(
                    _(
                        "Recall order %(id)s issued: %(n)s returns to confirm.",
                        id=row.id,
                        n=len(opened),
                    )
                )
                return redirect(url_for("web.recall_page", agreement_id=agreement_id), code=303)
    # Newest first, a page at a time; the confirmations are read for the page's orders only.
    found = paged_list(recalls.list_for(ctx, agreement_id)[::-1], per_page=10)
    found.rows = [recalls.recall_json(ctx, r) for r in found.rows]
    holders = {c["holder"] for r in found.rows for c in r["confirmations"]}
    return render_template(
        "recalls/list.html",
        agreement=agreements.get(ctx, agreement_id),
        tab="recalls",
        rows=found,
        holders=names.actors(ctx.db, holders),
        form=form,
        outcomes=choices((o, label(o)) for o in recalls.OUTCOMES),
    ), form.status


def _ask_recall(ctx: Ctx, agreement_id: int, form: RecallForm, payload: dict):
    titles = {c.value: c.label for c in item_choices(ctx, agreement_id)}
    chosen = payload.get("item_ids") or []
    shown = (
        _("every item of this agreement")
        if payload.get("all")
        else ", ".join(str(titles.get(i, f"#{i}")) for i in chosen)
    )
    agreement = agreements.get(ctx, agreement_id)
    return confirm_page(
        title=_("Recall from %(vendor)s?", vendor=agreement.vendor),
        consequence=_(
            "Every grant, need-to-know and subcontractor scope over these items ends at once and cannot be restored; the vendor must confirm each return or destruction."
        ),
        button=_("Recall"),
        back=url_for("web.recall_page", agreement_id=agreement_id),
        facts=[
            (_("Agreement"), agreement.title),
            (_("Items"), shown),
            (_("Reason"), payload["reason"]),
        ],
        asks=[
            Ask("item_ids", "", "hidden", values=[str(i) for i in chosen]),
            Ask("everything", "", "hidden", value="y" if payload.get("all") else ""),
            Ask("reason", "", "hidden", value=payload["reason"] or ""),
            Ask("confirmed", "", "hidden", value="y"),
        ],
    )


def _confirmation_row(ctx: Ctx, agreement_id: int, confirmation_id: int) -> dict:
    for row in recalls.list_for(ctx, agreement_id):
        for c in recalls.recall_json(ctx, row)["confirmations"]:
            if c["id"] == confirmation_id:
                return c
    raise NotFound(Msg("missing.confirmation", id=confirmation_id))


@page("/agreements/<int:agreement_id>/confirmations/<int:confirmation_id>", methods=("GET", "POST"))
def recall_confirm(ctx: Ctx, agreement_id: int, confirmation_id: int):
    back = url_for("web.recall_page", agreement_id=agreement_id)
    if request.method == "GET":
        require_role_for(ctx, Action.RECALL_CONFIRM)
        c = _confirmation_row(ctx, agreement_id, confirmation_id)
        return confirm_page(
            title=_("Returned or destroyed: %(item)s?", item=c["item_title"]),
            consequence=_(
                "You state for the vendor what happened to this item's copy; the statement is recorded and cannot be changed."
            ),
            button=_("Confirm"),
            back=back,
            facts=[
                (_("Item"), f"#{c['item_id']} {c['item_title']}"),
                (_("Holder"), f"{label(c['holder_kind'])} {c['holder']}"),
            ],
            asks=[
                Ask(
                    "outcome",
                    _("Outcome"),
                    "select",
                    options=[(o, label(o)) for o in recalls.OUTCOMES],
                ),
                Ask("note", _("Note"), required=False),
            ],
            danger=False,
        )
    if Form().checked(ctx, Action.RECALL_CONFIRM):
        data = {"outcome": request.form.get("outcome", ""), "note": request.form.get("note", "")}
        row = recalls.confirm(ctx, confirmation_id, validated(CONFIRM_IN, data))
        flash(_("Destruction confirmed.") if row.outcome == "destroyed" else _("Return confirmed."))
    return redirect(back, code=303)


@page("/agreements/<int:agreement_id>/terminate", methods=("GET", "POST"))
def agreement_terminate(ctx: Ctx, agreement_id: int):
    back = url_for("web.recall_page", agreement_id=agreement_id)
    if request.method == "GET":
        require_role_for(ctx, Action.AGREEMENT_TERMINATE)
        agreement = agreements.get(ctx, agreement_id)
        return confirm_page(
            title=_("Terminate the agreement with %(vendor)s?", vendor=agreement.vendor),
            consequence=_(
                "Every grant, need-to-know and subcontractor record of this agreement ends now and cannot be restored; a return manifest is opened for the vendor to confirm. The duty of confidentiality stays."
            ),
            button=_("Terminate and open the return manifest"),
            back=back,
            facts=[(_("Agreement"), agreement.title), (_("Vendor"), agreement.vendor)],
            asks=[Ask("understood", str(TerminateForm.understood.args[0]), "check")],
        )
    form = TerminateForm()
    if not form.checked(ctx, Action.AGREEMENT_TERMINATE):
        return redirect(back, code=303)
    if not form.understood.data:
        flash(_("Nothing was done: tick the box to confirm the termination."))
        return redirect(back, code=303)
    _agreement, row, opened = recalls.terminate(ctx, agreement_id)
    flash(_terminated(row.id, len(opened)))
    return redirect(f"{back}#recall-{row.id}", code=303)


def _terminated(recall_id: int, count: int) -> str:
    return _(
        "Agreement terminated: all access has ended. Recall order %(id)s lists what comes back; the vendor confirms %(n)s returns.",
        id=recall_id,
        n=count,
    )


class DeclassifyForm(Form):
    status = SelectField(_l("New status"))
    reason = StringField(_l("Reason"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.status.choices = choices((s, label(s)) for s in ("declassified", "public"))


def _item_facts(ctx: Ctx, agreement_id: int, item_id: int):
    found = [i for i in items.list_for(ctx, agreement_id) if i.id == item_id]
    if not found:
        raise NotFound(Msg("missing.item_in", id=item_id, agreement=agreement_id))
    item = found[0]
    facts = [(_("Item"), f"#{item.id} {item.title}"), (_("Sensitivity"), label(item.sensitivity))]
    return item, facts


@page("/agreements/<int:agreement_id>/items/<int:item_id>/declassify", methods=("GET", "POST"))
def item_declassify(ctx: Ctx, agreement_id: int, item_id: int):
    back = url_for("web.agreement_page", agreement_id=agreement_id)
    if request.method == "GET":
        require_role_for(ctx, Action.ITEM_DECLASSIFY)
        item, facts = _item_facts(ctx, agreement_id, item_id)
        return confirm_page(
            title=_("Declassify %(title)s?", title=item.title),
            consequence=_(
                "The item loses its protection under the agreement (clause 5.2); this cannot be undone."
            ),
            button=_("Declassify"),
            back=back,
            facts=facts,
            asks=[
                Ask(
                    "status",
                    _("New status"),
                    "select",
                    options=[(s, label(s)) for s in ("declassified", "public")],
                ),
                Ask("reason", _("Reason")),
            ],
        )
    form = DeclassifyForm()
    if form.checked(ctx, Action.ITEM_DECLASSIFY):
        data = validated(DECLASSIFY_IN, {"status": form.status.data, "reason": form.reason.data})
        item = recalls.declassify(ctx, item_id, data["status"], data["reason"])
        flash(_("Item %(title)s is now %(status)s.", title=item.title, status=label(item.status)))
    return redirect(back, code=303)


class DestroyForm(Form):
    reason = StringField(_l("Reason"))
    understood = BooleanField(
        _l(
            "I understand: the content can never be read again, and every grant, need-to-know and subcontractor scope over it ends now."
        )
    )


@page("/agreements/<int:agreement_id>/items/<int:item_id>/destroy", methods=("GET", "POST"))
def item_destroy(ctx: Ctx, agreement_id: int, item_id: int):
    url = url_for("web.agreement_page", agreement_id=agreement_id)
    if request.method == "GET":
        require_role_for(ctx, Action.ITEM_DESTROY)
        item, facts = _item_facts(ctx, agreement_id, item_id)
        return confirm_page(
            title=_("Destroy %(title)s?", title=item.title),
            consequence=str(DestroyForm.understood.args[0]),
            button=_("Destroy the item and erase its key"),
            back=url,
            facts=facts,
            asks=[Ask("reason", _("Reason")), Ask("understood", _("I understand."), "check")],
        )
    back = redirect(url, code=303)
    form = DestroyForm()
    if not form.checked(ctx, Action.ITEM_DESTROY):
        return back
    if not form.understood.data:
        # Destruction cannot be undone: the reader says so explicitly, with or without script.
        flash(_("Nothing was done: tick the box to confirm the destruction."))
        return back
    reason = validated(DESTROY_IN, {"reason": form.reason.data})["reason"]
    item = recalls.destroy(ctx, item_id, reason)
    flash(_("Item %(title)s is destroyed: its content can never be read again.", title=item.title))
    return back

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
from govern.context import Ctx
from govern.errors import Invalid
from govern.services import agreements, recalls
from govern.web import page
from govern.web.forms import Form, attempt, choices, validated
from govern.web.i18n import label
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
                return redirect(url_for("web.recall_page", agreement_id=agreement_id))
    rows = [recalls.recall_json(ctx, r) for r in recalls.list_for(ctx, agreement_id)]
    return render_template(
        "recalls/list.html",
        agreement=agreements.get(ctx, agreement_id),
        tab="recalls",
        rows=rows,
        form=form,
        terminate=TerminateForm(formdata=None),
        outcomes=choices((o, label(o)) for o in recalls.OUTCOMES),
    ), form.status


@page("/agreements/<int:agreement_id>/confirmations/<int:confirmation_id>", methods=("POST",))
def recall_confirm(ctx: Ctx, agreement_id: int, confirmation_id: int):
    if Form().checked(ctx, Action.RECALL_CONFIRM):
        data = {"outcome": request.form.get("outcome", ""), "note": request.form.get("note", "")}
        recalls.confirm(ctx, confirmation_id, validated(CONFIRM_IN, data))
        flash(_("Return confirmed."))
    return redirect(url_for("web.recall_page", agreement_id=agreement_id))


@page("/agreements/<int:agreement_id>/terminate", methods=("POST",))
def agreement_terminate(ctx: Ctx, agreement_id: int):
    form = TerminateForm()
    if not form.checked(ctx, Action.AGREEMENT_TERMINATE):
        return redirect(url_for("web.recall_page", agreement_id=agreement_id))
    if not form.understood.data:
        flash(_("Nothing was done: tick the box to confirm the termination."))
        return redirect(url_for("web.recall_page", agreement_id=agreement_id))
    agreement, row, opened = recalls.terminate(ctx, agreement_id)
    return render_template(
        "recalls/manifest.html",
        agreement=agreement,
        tab="recalls",
        recall=row,
        manifest=recalls.manifest(ctx, opened),
    )


class DeclassifyForm(Form):
    status = SelectField(_l("New status"))
    reason = StringField(_l("Reason"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.status.choices = choices((s, label(s)) for s in ("declassified", "public"))


@page("/agreements/<int:agreement_id>/items/<int:item_id>/declassify", methods=("POST",))
def item_declassify(ctx: Ctx, agreement_id: int, item_id: int):
    form = DeclassifyForm()
    if form.checked(ctx, Action.ITEM_DECLASSIFY):
        data = validated(DECLASSIFY_IN, {"status": form.status.data, "reason": form.reason.data})
        item = recalls.declassify(ctx, item_id, data["status"], data["reason"])
        flash(_("Item %(title)s is now %(status)s.", title=item.title, status=label(item.status)))
    return redirect(url_for("web.agreement_page", agreement_id=agreement_id))


class DestroyForm(Form):
    reason = StringField(_l("Reason"))
    understood = BooleanField(
        _l(
            "I understand: the content can never be read again, and every grant, need-to-know and subcontractor scope over it ends now."
        )
    )


@page("/agreements/<int:agreement_id>/items/<int:item_id>/destroy", methods=("POST",))
def item_destroy(ctx: Ctx, agreement_id: int, item_id: int):
    form = DestroyForm()
    back = redirect(url_for("web.agreement_page", agreement_id=agreement_id))
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

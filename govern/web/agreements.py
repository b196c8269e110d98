"""Agreements with their confidentiality clock (clause 5) and their confidential items (clause 1)."""

from __future__ import annotations

import base64

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import BooleanField, SelectField, StringField

from govern import http
from govern.actions import Action
from govern.api.agreements import AGREEMENT_IN, ITEM_IN, content_response
from govern.context import Ctx
from govern.schema import whole_number
from govern.services import agreements, items, ndas
from govern.web import charts, page
from govern.web.forms import Form, choices, submitted
from govern.web.i18n import label


class AgreementForm(Form):
    title = StringField(_l("Title"))
    owner = StringField(_l("Owner (甲方)"))
    vendor = StringField(_l("Vendor (乙方)"))
    signed_on = StringField(_l("Signed on"), render_kw={"type": "date"})
    term_years = StringField(_l("Term in years"), default="5", render_kw={"inputmode": "numeric"})
    contract_value = StringField(_l("Contract value"), render_kw={"inputmode": "decimal"})
    currency = StringField(_l("Currency"), default="CNY")

    def payload(self) -> dict:
        years = self.term_years.data or ""
        return {
            "title": self.title.data,
            "owner": self.owner.data,
            "vendor": self.vendor.data,
            "signed_on": self.signed_on.data,
            "term_years": whole_number(years.strip()),
            "contract_value": self.contract_value.data,
            "currency": self.currency.data,
        }


_BROWSER_NON_TYPES = ("", "application/octet-stream", "text/plain", "application/vnd.ms-excel")


class ItemForm(Form):
    title = StringField(_l("Title"))
    category = SelectField(_l("Category (clause 1)"))
    sensitivity = SelectField(_l("Sensitivity"), default="confidential")
    fields = StringField(_l("Data fields (comma-separated, for minimisation)"))
    public = BooleanField(_l("Published to the public by the project (clause 1.1)"))
    content = FileField(_l("Content"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.category.choices = choices((c, label(c)) for c in items.CATEGORIES)
        self.sensitivity.choices = choices((s, label(s)) for s in items.SENSITIVITIES)

    def payload(self) -> dict:
        upload = self.content.data
        data = {
            "title": self.title.data,
            "category": self.category.data,
            "sensitivity": self.sensitivity.data,
            "fields": [f.strip() for f in (self.fields.data or "").split(",") if f.strip()],
            "public": bool(self.public.data),
        }
        if upload and upload.filename:
            data["content_b64"] = base64.b64encode(upload.read()).decode()
            # The browser's type is a guess from the file's extension. A guess that says nothing
            # (or calls a CSV file a spreadsheet) is left out, so that govern detects JSON
            # records and CSV itself, as for an API caller who names no type.
            if upload.mimetype not in _BROWSER_NON_TYPES:
                data["media_type"] = upload.mimetype
        return data


@page("/agreements", methods=("GET", "POST"))
def agreement_list(ctx: Ctx):
    form = AgreementForm()
    created = submitted(ctx, form, Action.AGREEMENT_CREATE, AGREEMENT_IN, agreements.create)
    if created is not None:
        flash(_("Agreement %(title)s created.", title=created.title))
        return redirect(url_for("web.agreement_page", agreement_id=created.id), code=303)
    listing = agreements.list_all(ctx)
    clocks = agreements.clocks(ctx, listing, ctx.today())
    return render_template(
        "agreements/list.html", agreements=listing, clocks=clocks, form=form
    ), form.status


def clock_picture(clock: dict, today) -> str:
    from datetime import date

    return charts.timeline(
        date.fromisoformat(clock["signed_on"]),
        date.fromisoformat(clock["term_ends_on"]),
        today,
        clock["protected_items"],
        _("Confidentiality clock"),
        {
            "signed": _("signed"),
            "term_end": _("term ends"),
            "today": _("today"),
            "protected": _("{n} items stay protected (clause 5.2: until the owner releases them)"),
        },
    )


@page("/agreements/<int:agreement_id>", methods=("GET", "POST"))
def agreement_page(ctx: Ctx, agreement_id: int):
    agreement = agreements.get(ctx, agreement_id)
    form = ItemForm()
    aliases = {"content_b64": "content", "media_type": "content"}
    item = submitted(
        ctx, form, Action.ITEM_CREATE, ITEM_IN, items.create, agreement_id, aliases=aliases
    )
    if item is not None:
        flash(_("Item %(title)s registered and encrypted.", title=item.title))
        return redirect(url_for("web.agreement_page", agreement_id=agreement_id), code=303)
    clock = agreements.clock(ctx, agreement_id, ctx.today())
    listing = items.list_for(ctx, agreement_id)
    return render_template(
        "agreements/page.html",
        agreement=agreement,
        clock=clock,
        picture=clock_picture(clock, ctx.today()),
        items=listing,
        # A vendor account's own NDA and need-to-know here (clause 3.8), so staff know what
        # they may open and why not.
        standing=ndas.own_standing(ctx, agreement_id, ctx.today()),
        form=form,
    ), form.status


@page("/items/<int:item_id>/content")
def item_content(ctx: Ctx, item_id: int):
    # The same decision as GET /api/v1/items/{id}/content: NDA, need-to-know, status (clause 3.8).
    http.refuse_cross_site_read(ctx, item_id)
    item, content = items.read_content(ctx, item_id, ctx.today())
    return content_response(item, content)

"""The auditor's pages: search the trail, open an entry, verify the chain, export, charts.

Filters are read and checked by the API's own code (``query_from_args``), so a page and
GET /api/v1/audit accept and refuse the same things; export links lead to the API itself.
"""

from __future__ import annotations

import json
from datetime import timedelta

from flask import render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField

from govern.actions import Action
from govern.api import query_int
from govern.api.audit import QUERY, query_from_args
from govern.context import Ctx
from govern.errors import Invalid
from govern.services import names, trail
from govern.web import charts, page
from govern.web.forms import Form, choices
from govern.web.i18n import label, zone_named
from govern.web.words import action_word, say

PAGE_SIZE = 50


class FilterForm(Form):
    """A GET form: it changes nothing, so it carries no CSRF token."""

    class Meta:
        csrf = False

    actor = StringField(_l("Actor"))
    action = SelectField(_l("Action"))
    decision = SelectField(_l("Decision"))
    since = StringField(_l("From"), render_kw={"type": "date"})
    until = StringField(_l("Until"), render_kw={"type": "date"})
    # About one item, request or grant (by number), or a third party's requests (by name).
    item = StringField(_l("Item number"), render_kw={"inputmode": "numeric"})
    request = StringField(_l("Request number"), render_kw={"inputmode": "numeric"})
    grant = StringField(_l("Grant number"), render_kw={"inputmode": "numeric"})
    third_party = StringField(_l("Third party"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.action.choices = choices(
            [("", _("any"))] + [(a.value, f"{action_word(a)} ({a.value})") for a in Action]
        )
        self.decision.choices = choices(
            [("", _("any")), ("allow", label("allow")), ("deny", label("deny"))]
        )


def _filters() -> dict:
    return {k: request.args[k] for k in QUERY if request.args.get(k)}


@page("/audit")
def trail_search(ctx: Ctx):
    form = FilterForm(request.args)
    entries, next_cursor = [], None
    try:
        query = query_from_args(ctx.clock)
        cursor = query_int("cursor", 0, 1, 10**12) if request.args.get("cursor") else None
        entries, next_cursor = trail.search(ctx, query, PAGE_SIZE, cursor)
    except Invalid as exc:
        form.fail(exc)
    filters = _filters()
    return render_template(
        "audit/search.html",
        form=form,
        entries=entries,
        actors=names.actors(ctx.db, {e.actor for e in entries}),
        targets=names.targets(ctx.db, {e.target for e in entries}),
        about=about,
        filters=filters,
        older=url_for("web.trail_search", cursor=next_cursor, **filters) if next_cursor else None,
        first_page=bool(request.args.get("cursor")),
        zone=zone_named(),
        exports={
            "csv": url_for("api.export_audit", format="csv", headers=csv_headers(), **filters),
            "jsonl": url_for("api.export_audit", format="jsonl", **filters),
        },
    ), form.status


def csv_headers() -> str:
    """The CSV export's column names in the page's language (Excel in Chinese reads them)."""
    return "zh_CN" if str(get_locale()).startswith("zh") else "en"


@page("/audit/<seq:seq>")
def trail_entry(ctx: Ctx, seq: int):
    entry = trail.entry(ctx, seq)
    details = json.loads(entry.details) if entry.details else {}
    return render_template(
        "audit/entry.html",
        entry=entry,
        details=details,
        actor=names.actors(ctx.db, [entry.actor])[entry.actor],
        target=names.targets(ctx.db, [entry.target])[entry.target],
        about=about,
    )


# A target the search can narrow to: its filter (item:7 -> item=7).
_ABOUT = {"item": "item", "disclosure": "request", "grant": "grant"}


def about(target: str) -> dict | None:
    """The search filter for the entries about ``target``, or None."""
    kind, _sep, ident = target.partition(":")
    if kind in _ABOUT and ident.isdigit():
        return {_ABOUT[kind]: ident}
    return None


@page("/audit/verify", methods=("POST",))
def trail_verify(ctx: Ctx):
    # Posted (with its CSRF token) because it is an act the trail itself records.
    result = trail.verify(ctx)
    return render_template("audit/verify.html", result=result, witnesses=trail.witnesses(ctx))


@page("/audit/charts")
def trail_charts(ctx: Ctx):
    days = 30
    try:
        days = query_int("days", 30, 1, 366)
    except Invalid:
        days = 30
    # The office's days (said so on the page), as every other page counts them.
    until = ctx.today()
    since = until - timedelta(days=days - 1)
    stats = trail.stats(ctx, since, until)
    return render_template(
        "audit/charts.html",
        stats=stats,
        days=days,
        zone=zone_named(),
        per_day=charts.decisions_per_day(
            stats["days"],
            _("Decisions per day"),
            {"allow": label("allow"), "deny": label("deny")},
        ),
        by_reason=charts.denials_by_reason(
            [(say(r), n) for r, n in stats["reasons"]],
            _("Denials by reason"),
            _("No denial in this period."),
        ),
    )

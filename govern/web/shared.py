"""The page for token holders (clauses 3.5, 3.6, 3.7): a third party with a grant token or a
subcontractor with a client token sees what the token covers, its window, and downloads the
items, through the same service and decisions as GET /api/v1/shared/items.

No account: the token is the credential. It travels only in a POST body (pasted, or put there by
a small script from a link's #fragment, which browsers never send to the server), so it is never
in a URL, an access log or a Referer; every answer that carries it is not cached.
"""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _

from govern.api.agreements import content_response
from govern.context import Ctx
from govern.errors import GovernError, Unauthenticated
from govern.http import external_url
from govern.services import shared
from govern.web import page, shown_once
from govern.web.forms import Form


def _refusal(exc: GovernError) -> str:
    """Token holders are outside the office: a refusal says one stable thing, in their language
    (the trail keeps why)."""
    if isinstance(exc, Unauthenticated):
        return _("This token is not valid, or it has expired.")
    if isinstance(exc, shared.ItemGone):
        return _("This item was destroyed by the office: it can never be read again.")
    return _("This token gives no access to this item now.")


def holder_links() -> dict:
    """The addresses the token pages hand on: the holders' page and the API's list."""
    return {
        "holder_page": external_url("web.shared_page"),
        "api_list": external_url("api.shared_items"),
    }


def _token() -> str:
    return (request.form.get("token") or "").strip()


@page("/shared", methods=("GET", "POST"), public=True)
def shared_page(ctx: Ctx):
    form = Form()
    covered = error = None
    token = ""
    if form.checked():
        token = _token()
        try:
            covered = shared.covered(ctx, token)
        except GovernError as exc:
            ctx.fail()
            error, form.status = _refusal(exc), exc.status
    html = render_template(
        "shared/page.html",
        form=form,
        covered=covered,
        error=error,
        token=token if covered else "",
        **holder_links(),
    )
    return shown_once(html), form.status


@page("/shared/items/<int:item_id>", methods=("POST",), public=True)
def shared_download(ctx: Ctx, item_id: int):
    form = Form()
    if not form.checked():
        return shown_once(render_template("shared/page.html", form=form, error=None)), 400
    try:
        item, content, hints = shared.read(ctx, item_id, _token())
    except GovernError as exc:
        ctx.fail()
        html = render_template("shared/page.html", form=form, error=_refusal(exc))
        return shown_once(html), exc.status
    return content_response(item, content, hints.get("media_type"))

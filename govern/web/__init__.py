"""Server-rendered pages on the same services as the API, with CSRF on every form.

Each page is declared with :func:`page`: explicitly public, or signed-in (its service decides).
Pages live in one module per side: ``home`` (sign-in, dashboard), ``agreements`` (agreements,
clocks, items), ``vendor`` (NDAs, need-to-know, subcontractors, breaches), ``requests``
(disclosure requests, grants, the approval letter and its public seal check), ``recalls`` (recall,
termination, declassification), ``trail`` (auditor), ``admin`` (accounts and policy).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import (
    Blueprint,
    Response,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from jinja2 import pass_context

from govern import http
from govern.errors import GovernError
from govern.models import Agreement
from govern.policy import GLOBAL
from govern.services import shown

bp = Blueprint("web", __name__)
PUBLIC_PAGES: set[str] = {"static"}
# Every page route, so a test can check that none bypasses the decorator.
PAGES: set[str] = set()


def _error_page(exc: GovernError):
    """The error page, in the reader's language. A denial's reason and the rule it was decided
    under (said as a sentence, not as a casbin tuple) are shown apart."""
    from govern.web.words import error_parts

    message, basis = error_parts(exc)
    return render_template("error.html", code=exc.status, message=message, basis=basis), exc.status


def page(rule: str, methods=("GET",), public: bool = False):
    """Declare a page. Non-public pages need a signed-in account; the service decides."""

    def deco(fn):
        name = fn.__name__

        @wraps(fn)
        def view(**kwargs):
            if not public and not current_user.is_authenticated:
                return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
            ctx = http.new_ctx(http.session_principal())
            # What the page's templates ask can() with (display only, no trail entry).
            g.page_ctx = ctx
            try:
                result = fn(ctx, **kwargs)
            except GovernError as exc:
                ctx.fail()
                return _error_page(exc)
            except Exception:
                ctx.db.rollback()
                raise
            try:
                ctx.commit()
            except GovernError as exc:
                return _error_page(exc)
            return result

        bp.add_url_rule(rule, name, view, methods=list(methods))
        PAGES.add(f"web.{name}")
        if public:
            PUBLIC_PAGES.add(f"web.{name}")
        return view

    return deco


def shown_once(html: str) -> Response:
    """A page that shows a token, a link or a password once: no cache (browser, proxy or back
    button) may keep a copy of it."""
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


# The pages that show a secret once, by kind: each renders the kept payload (issue 12: the POST
# that made the secret answers with a redirect here, so a reload repeats nothing).
SHOWN: dict[str, Callable[[object, dict], str]] = {}


def show_once_after(ctx, payload: dict):
    """Keep ``payload`` (its ``kind`` names the page) for one GET, and answer the POST with a
    303 redirect to that GET."""
    handle = shown.keep(ctx, payload)
    return redirect(url_for("web.shown_page", handle=handle), code=303)


def my_roles() -> set[str]:
    """The signed-in account's roles, for drawing the navigation (the services still decide)."""
    if not current_user.is_authenticated:
        return set()
    engine = http.runtime().policy
    engine.refresh(http.db())
    return set(engine.roles(current_user.user.username, GLOBAL))


@bp.app_errorhandler(CSRFError)
def _csrf_refused(_exc: CSRFError):
    # Said in the reader's language; the API never gets here (it takes bearer tokens, no CSRF).
    message = _("The form expired or was sent from elsewhere; please send it again.")
    return render_template("error.html", code=400, message=message), 400


@bp.app_context_processor
def _navigation():
    roles = my_roles()

    @pass_context
    def may(context, action: str) -> bool:
        """Could the reader do ``action`` (e.g. "nda:list")? Only for choosing which links to
        draw; the services still decide each request. On a page of one agreement, the decision
        point is asked about that agreement (its domain, its vendor: govern.web.allowed.can);
        elsewhere, whether any of the reader's roles could ever do it, from the live policy."""
        if not current_user.is_authenticated:
            return False
        if isinstance(context.get("agreement"), Agreement):
            return allowed.can(action, context["agreement"])
        kind, verb = action.split(":", 1)
        return http.runtime().policy.may_ever(current_user.user.username, kind, verb)

    return {
        "my_roles": roles,
        "any_role": lambda *names: bool(roles & set(names)),
        "may": may,
        "can": allowed.can,
        "agreement_tabs": allowed.tabs,
    }


@page("/shown/<handle>")
def shown_page(ctx, handle: str):
    """The one showing of a kept secret; a second GET (a reload) finds it gone."""
    payload = shown.take(ctx, handle)
    if payload is None:
        return shown_once(render_template("shown_gone.html")), 410
    return shown_once(SHOWN[payload["kind"]](ctx, payload))


# Page modules register their routes on import.
from govern.web import (  # noqa: E402, F401
    account,
    admin,
    agreements,
    allowed,
    home,
    paging,
    recalls,
    requests,
    shared,
    trail,
    vendor,
)

# The pager macro is imported without the page's context: its link maker is a global.
bp.add_app_template_global(paging.page_url, "page_url")


# What an error page says, in the reader's language (werkzeug's descriptions are English).
def http_error_message(code: int) -> str:
    said = {
        400: _("The request could not be understood."),
        404: _("There is nothing at this address. Check the link, or start from the dashboard."),
        405: _("This address does not take that kind of request."),
        413: _("What was sent is larger than govern accepts."),
    }
    return said.get(code) or _("The request could not be completed.")


def internal_error_message(request_id: str) -> str:
    return _("An internal error occurred; it has been logged (request %(id)s).", id=request_id)

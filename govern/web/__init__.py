"""Server-rendered pages on the same services as the API, with CSRF on every form.

Each page is declared with :func:`page`: explicitly public, or signed-in (its service decides).
Pages live in one module per side: ``home`` (sign-in, dashboard), ``agreements`` (agreements,
clocks, items), ``vendor`` (NDAs, need-to-know, subcontractors, breaches), ``requests``
(disclosure requests, grants, the approval letter and its public seal check), ``recalls`` (recall,
termination, declassification), ``trail`` (auditor), ``admin`` (accounts and policy).
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, Response, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from govern import http
from govern.errors import GovernError
from govern.policy import GLOBAL

bp = Blueprint("web", __name__)
PUBLIC_PAGES: set[str] = {"static"}
# Every page route, so a test can check that none bypasses the decorator.
PAGES: set[str] = set()


def _error_page(exc: GovernError):
    """The error page. A denial's rule reads "<reason> (<casbin rule>)": shown apart."""
    message, basis = exc.message, ""
    rule = exc.extra.get("rule") if exc.status == 403 else None
    if rule:
        reason, sep, tail = rule.rpartition(" (")
        message, basis = (reason, tail.rstrip(")")) if sep else (rule, "")
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

    def may(action: str) -> bool:
        """Could any of the reader's roles ever do ``action`` (e.g. "nda:list")? Only for choosing
        which links to draw, from the live policy; the services still decide each request."""
        if not current_user.is_authenticated:
            return False
        kind, verb = action.split(":", 1)
        return http.runtime().policy.may_ever(current_user.user.username, kind, verb)

    return {"my_roles": roles, "any_role": lambda *names: bool(roles & set(names)), "may": may}


# Page modules register their routes on import.
from govern.web import (  # noqa: E402, F401
    admin,
    agreements,
    home,
    recalls,
    requests,
    trail,
    vendor,
)

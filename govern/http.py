"""What the API and the pages share per request: the database session, who is calling, the unit
of work. Route decorators only establish who is calling; the services decide."""

from __future__ import annotations

import re
import uuid

from flask import current_app, g, request, url_for
from flask_login import LoginManager, UserMixin, current_user

from govern.actions import Action
from govern.context import Ctx, Principal, Runtime, Target
from govern.errors import Forbidden, Unauthenticated
from govern.messages import Msg
from govern.models import User

login_manager = LoginManager()
login_manager.session_protection = "strong"
# A caller's own request id is kept when it is this plain; else govern makes one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def runtime() -> Runtime:
    return current_app.extensions["govern"]


def external_url(endpoint: str, **values) -> str:
    """An absolute link to a page of govern, for what leaves the service (a letter's QR code, a
    set-password link): on ``GOVERN_PUBLIC_URL`` when the office set one, else on the host the
    request came to."""
    base = runtime().settings.public_url
    if not base:
        return url_for(endpoint, _external=True, **values)
    path = url_for(endpoint, **values)[len(request.script_root) :]
    return base.rstrip("/") + path


def db():
    if "db" not in g:
        g.db = runtime().sessions()
    return g.db


def close_db(_exc=None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


class SessionUser(UserMixin):
    """A signed-in account in the cookie session. Its id carries the credential version and the
    session epoch, so a password change, a disable or a sign-out ends the account's cookie
    sessions at once, on the server: a copied cookie is worth nothing afterwards (and there is no
    non-revocable remember-me)."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self) -> str:
        return f"{self.user.id}:{self.user.credential_version}:{self.user.session_epoch}"

    @property
    def is_active(self) -> bool:
        return self.user.active


@login_manager.user_loader
def _load_user(ident: str):
    try:
        uid, version, epoch = (int(x) for x in ident.split(":", 2))
    except ValueError:
        return None
    user = db().get(User, uid)
    if user is None or not user.active or user.credential_version != version:
        return None
    if user.session_epoch != epoch:
        return None
    return SessionUser(user)


def request_id() -> str:
    if "request_id" not in g:
        g.request_id = request_id_from(request.headers.get("X-Request-Id", ""))
    return g.request_id


def request_id_from(given: str) -> str:
    """The caller's own X-Request-Id when it is plain enough to keep, else a new one."""
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def client_address() -> str:
    return (request.remote_addr or "-")[:64]


def new_ctx(principal: Principal | None = None) -> Ctx:
    return Ctx(runtime(), db(), principal or Principal.anonymous(), request_id(), client_address())


def session_principal() -> Principal | None:
    if current_user.is_authenticated:
        user = current_user.user
        return Principal("user", user.username, user.username, user.id, user.org)
    return None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


# Fetch metadata a browser sends: "none" is the reader's own navigation (typed, bookmarked).
SAME_SITE_FETCHES = ("same-origin", "none")


def refuse_cross_site_read(ctx: Ctx, item_id: int) -> None:
    """Item content over a cookie session goes only to requests from govern's own pages.

    A SameSite=Lax cookie still rides along on a top-level GET from another site, so a link
    elsewhere could make a "read" in the reader's name; browsers say where a request comes from
    in ``Sec-Fetch-Site``, and anything but same-origin or the reader's own navigation is refused
    (and audited). A request without the header is served: every current browser sends it, and
    what omits it (an old browser, a script holding the cookie) could as well forge it. Bearer
    tokens are not ambient, so they are not asked.
    """
    if bearer_token() is not None:
        return
    site = request.headers.get("Sec-Fetch-Site")
    if site is None or site in SAME_SITE_FETCHES:
        return
    rule = Msg("rule.cross_site", site=site[:16])
    ctx.record(Action.ITEM_READ, Target("item", item_id), "deny", rule, keep=True)
    raise Forbidden(Msg("denied", rule=rule), rule=rule)


def require_principal(ctx: Ctx) -> None:
    if ctx.principal.kind == "anonymous":
        raise Unauthenticated(Msg("auth.sign_in"))


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def authenticate_api(ctx: Ctx, method: str, along=None) -> None:
    """A bearer token, or the cookie session for safe methods only (so the API needs no CSRF).
    ``along``: a lookup the route makes anyway, read with a bearer token's account
    (accounts.user_for_token)."""
    from govern.services import accounts

    token = bearer_token()
    if token:
        ctx.principal = accounts.principal_for(accounts.user_for_token(ctx, token, along))
        return
    principal = session_principal()
    if principal is not None:
        if method not in SAFE_METHODS:
            raise Unauthenticated(Msg("auth.api_needs_bearer"))
        ctx.principal = principal
        return
    raise Unauthenticated(Msg("auth.sign_in"))

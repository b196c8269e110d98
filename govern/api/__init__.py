"""The JSON API under /api/v1: thin handlers, one error envelope, an OpenAPI document generated
from the same schemas that validate the requests.

Every route is declared with :func:`endpoint`, which makes it either explicitly public or
authenticated (its service then decides with casbin), runs it as one unit of work, and records it
for the OpenAPI document. Cookie sessions are accepted only for safe methods; anything that
changes state needs a bearer token, so the API needs no CSRF token.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import wraps

from flask import Blueprint, Response, jsonify, request

from govern import http
from govern.actions import Action
from govern.context import require_role_for
from govern.errors import GovernError, Invalid, Unauthenticated
from govern.messages import Msg
from govern.schema import Schema, Str, parse_json

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1")


@dataclass
class Operation:
    rule: str
    method: str
    endpoint: str
    summary: str
    tag: str
    public: bool
    body: Schema | None
    status: int
    query: tuple[str, ...]
    produces: str
    action: Action | None
    holder: bool


OPERATIONS: list[Operation] = []
PUBLIC_ENDPOINTS: set[str] = set()


def error_response(exc: GovernError) -> Response:
    response = jsonify({"error": exc.as_dict()})
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="govern"'
    if exc.status == 429:
        response.headers["Retry-After"] = str(exc.extra.get("resets_in", 60))
    return response


def _json_body():
    raw = request.get_data(cache=True)
    if not raw:
        raise Invalid(Msg("body.required"), field="body")
    if not request.is_json:
        raise Invalid(Msg("body.not_json_type"), field="body")
    # Parsed by the schema module, which bounds nesting and text before Python's parser runs.
    return parse_json(raw)


def endpoint(
    rule: str,
    method: str = "GET",
    *,
    summary: str,
    tag: str,
    body: Schema | None = None,
    public: bool = False,
    status: int = 200,
    query: tuple[str, ...] = (),
    produces: str = "application/json",
    action: Action | None = None,
    holder: bool = False,
    read_only: bool = False,
    along=None,
):
    """Declare an API route. The handler gets the unit of work (and the validated body).

    ``action`` names what the route does, so that a caller whose roles may never do it is
    refused with 403 before its body is validated or any object is looked up. ``holder`` routes
    are for token holders (third parties, subcontractors), not accounts: the service checks the
    token against its live grant or record and decides. A ``read_only`` route changes nothing
    but the trail (Ctx.read_only: its statements need no transaction around them). ``along``,
    given the route's arguments, names a lookup its service makes anyway, to be read in the same
    statement as a bearer token's account (accounts.AlongAccount).
    """

    if not public and action is None:
        raise TypeError(f"{rule}: a non-public endpoint must name its action")

    def deco(fn):
        name = fn.__name__

        @wraps(fn)
        def view(**kwargs):
            ctx = http.new_ctx()
            if read_only:
                ctx.read_only()
            try:
                if not public and not holder:
                    http.authenticate_api(ctx, method, along and along(ctx, **kwargs))
                if action is not None:
                    require_role_for(ctx, action)
                args = (ctx, body.validate(_json_body())) if body else (ctx,)
                result = fn(*args, **kwargs)
            except GovernError as exc:
                ctx.fail()
                return error_response(exc)
            except Exception:
                ctx.db.rollback()
                raise
            try:
                ctx.commit()
            except GovernError as exc:
                return error_response(exc)
            if isinstance(result, Response):
                return result
            return jsonify(result), status

        bp.add_url_rule(rule, name, view, methods=[method])
        OPERATIONS.append(
            Operation(
                rule,
                method,
                name,
                summary,
                tag,
                public,
                body,
                status,
                query,
                produces,
                action,
                holder,
            )
        )
        if public:
            PUBLIC_ENDPOINTS.add(f"api.{name}")
        return view

    return deco


def query_int(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,19}", raw):
        raise Invalid(Msg("query.whole_number", lo=lo, hi=hi), field=name, at=name)
    value = int(raw)
    if not lo <= value <= hi:
        raise Invalid(Msg("query.between", lo=lo, hi=hi), field=name, at=name)
    return value


def query_text(name: str, max_len: int = 200) -> str | None:
    """A text query parameter, held to the same rules as a one-line field of a body."""
    raw = request.args.get(name)
    if not raw:
        return None
    return Str(max_len=max_len).check(name, raw)


__all__ = ["Unauthenticated", "bp", "endpoint"]

# Handler modules register their routes on import.
from govern.api import (  # noqa: E402, F401
    agreements,
    audit,
    auth,
    disclosures,
    health,
    keys,
    openapi,
    outbox,
    policies,
    recalls,
    shared,
    users,
    vendor,
)

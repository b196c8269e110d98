"""govern: enforces a confidentiality agreement between a data owner and its software vendor.

``create_app(config=None)`` is the only way an application is made; tests pass their own config.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask, jsonify, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from govern import logs
from govern.config import Settings, load_settings
from govern.runtime import build_runtime
from govern.schema import IdConverter, SeqConverter

log = logging.getLogger(__name__)
csrf = CSRFProtect()

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# What every answer of the API carries besides (unless its route set it itself).
API_HEADERS = (*SECURITY_HEADERS.items(), ("Cache-Control", "no-store"))


def missing_headers(headers, wanted, request_id: str) -> list[tuple[str, str]]:
    """Of ``wanted`` and the request's id (which the log lines of the request carry, so that a
    caller can quote it), the headers an answer's ``headers`` (name, value pairs) do not set
    already. The names already set are looked at once (each setdefault would scan every header
    again)."""
    present = {name.lower() for name, _ in headers}
    wanted = (*wanted, ("X-Request-Id", request_id))
    return [(name, value) for name, value in wanted if name.lower() not in present]


class _SessionInterface(SecureCookieSessionInterface):
    """The session cookie is ``Secure`` whenever the page was served over HTTPS: directly, or
    behind a trusted proxy that says so (X-Forwarded-Proto, believed only with proxy_hops > 0,
    through ProxyFix), as well as when the settings say the site is HTTPS."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)

    # The API read path's requests carry a bearer token and no cookie: they skip the cookie
    # session's work (building the signer, checking and writing a cookie) that only pages need.
    def open_session(self, app, request):
        if request.path.startswith("/api/") and request.headers.get(
            "Authorization", ""
        ).lower().startswith("bearer "):
            # The bearer token decides who calls (http.authenticate_api); a cookie sent along
            # is not even read. A null session: reading it finds nothing, writing it fails.
            return self.make_null_session(app)
        if app.config["SESSION_COOKIE_NAME"] not in request.cookies:
            return self.session_class()  # what Flask would answer, without the signer
        return super().open_session(app, request)

    def save_session(self, app, session, response) -> None:
        if not session and not session.modified and not session.accessed:
            return  # nothing to write, delete or vary on (as Flask would conclude)
        super().save_session(app, session, response)


def create_app(config: dict | Settings | None = None) -> Flask:
    settings = config if isinstance(config, Settings) else load_settings(config)
    logs.configure()
    runtime = build_runtime(settings)
    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    # Every integer in a route is a row id, bounded like the stores' keys (``seq`` is the trail's
    # BIGINT sequence number); in place before any route is registered, so none is unbounded.
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["seq"] = SeqConverter
    app.config.update(
        SECRET_KEY=runtime.keys.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.https,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        # base64 grows content by 4/3; leave room for the JSON around it.
        MAX_CONTENT_LENGTH=settings.max_content_bytes * 4 // 3 + 64 * 1024,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        TESTING=settings.testing,
    )
    app.extensions["govern"] = runtime
    app.session_interface = _SessionInterface()
    app.json.ensure_ascii = False  # 常州市… stays readable in JSON
    if settings.direct_read:
        from govern.api.direct import DirectRead

        # The audited read over a bearer token, without Flask's request cycle (it hands
        # anything but an allowed read to the route); inside ProxyFix, so it sees the same
        # client address.
        app.wsgi_app = DirectRead(runtime, app.wsgi_app)
    if settings.proxy_hops:
        # Only then is X-Forwarded-For the client address the trail records.
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )

    from govern import api, http, web
    from govern.web import i18n

    http.login_manager.init_app(app)
    http.login_manager.login_view = "web.login"
    csrf.init_app(app)
    i18n.init_app(app, runtime.clock.name)  # pages show times on the office clock
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    app.register_blueprint(web.bp)
    app.teardown_appcontext(http.close_db)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    # Only a bug gets here (services raise domain errors, which their surface maps).
    app.register_error_handler(Exception, _internal_error)
    from govern.cli import register_flask_commands

    register_flask_commands(app)
    return app


def _security_headers(response):
    from govern import http

    headers = response.headers
    wanted = API_HEADERS if request.path.startswith("/api/") else SECURITY_HEADERS.items()
    headers.extend(missing_headers(headers.items(), wanted, http.request_id()))
    return response


def _http_error(exc: HTTPException):
    if request.path.startswith("/api/"):
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        code = "internal_error" if exc.code >= 500 else codes.get(exc.code, "bad_request")
        body = {"error": {"code": code, "message": exc.description}}
        return jsonify(body), exc.code
    from govern.web import http_error_message

    return render_template(
        "error.html", code=exc.code, message=http_error_message(exc.code)
    ), exc.code


def _internal_error(exc: Exception):
    """A bug: logged with its traceback and request id; the caller gets that id, nothing more."""
    from govern import http

    request_id = http.request_id()
    log.exception("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    message = "an internal error occurred; it has been logged"
    if request.path.startswith("/api/"):
        body = {"error": {"code": "internal_error", "message": message, "request_id": request_id}}
        return jsonify(body), 500
    from govern.web import internal_error_message

    page = internal_error_message(request_id)
    return render_template("error.html", code=500, message=page), 500

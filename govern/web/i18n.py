"""Languages of the pages: Chinese (zh_CN) and English, with dates in the reader's form.

The reader's choice (the switch on every page, ``?lang=``) is kept in a ``lang`` cookie; without
one, the browser's Accept-Language decides, so a browser that prefers Chinese gets Chinese.
Messages live in ``translations/zh_Hans_CN/LC_MESSAGES/messages.po`` (zh_Hans_CN is what Babel
calls zh_CN); its compiled ``.mo`` is kept beside it (``make translations`` refreshes both, and a
test checks they agree and that every message the pages show has its Chinese).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

from flask import current_app, request
from flask_babel import Babel, format_date, format_datetime, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

LOCALES = ("zh_CN", "en")
# The approval letter is a Chinese office's form: it is printed in Chinese (with English beside).
LETTER_LOCALE = "zh_CN"
COOKIE = "lang"
TRANSLATIONS = Path(__file__).parent / "translations"
babel = Babel()


def chosen_locale() -> str:
    """The reader's language: the switch, then the cookie, then the browser's preference."""
    asked = request.args.get(COOKIE) or request.cookies.get(COOKIE)
    if asked in LOCALES:
        return asked
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="en")
    return "zh_CN" if best.startswith("zh") else "en"


def remember_choice(response):
    """A switch (``?lang=``) on any page is remembered for the next pages, for a year."""
    asked = request.args.get(COOKIE)
    if asked in LOCALES and request.cookies.get(COOKIE) != asked:
        response.set_cookie(
            COOKIE,
            asked,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            httponly=True,
            secure=request.is_secure,
        )
    return response


def init_app(app, timezone: str) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    # Times are shown in the office's own time zone, whatever the reader's language.
    app.config["BABEL_DEFAULT_TIMEZONE"] = timezone
    babel.init_app(app, locale_selector=chosen_locale)
    app.after_request(remember_choice)
    app.jinja_env.filters["day"] = show_date
    app.jinja_env.filters["moment"] = show_moment
    app.jinja_env.filters["day_end"] = show_day_end
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["bilingual"] = bilingual
    app.jinja_env.globals["html_lang"] = html_lang
    app.jinja_env.globals["switch_url"] = switch_url
    from govern.web import words

    words.install(app)


def html_lang() -> str:
    locale = get_locale()
    return "zh-CN" if locale is not None and locale.language == "zh" else "en"


def switch_url(code: str) -> str:
    """This page again in another language (its other query arguments kept). The answer to a
    form that only takes POST (a token shown once, say) cannot be fetched again: the switch then
    leads to the dashboard."""
    rule = request.url_rule
    if rule is None or "GET" not in (rule.methods or ()):
        return f"/?{COOKIE}={code}"
    args = request.args.to_dict()
    args[COOKIE] = code
    query = "&".join(f"{k}={_quote(v)}" for k, v in args.items())
    return f"{request.path}?{query}"


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def show_date(value) -> str:
    """A date as the reader writes it: 2022年6月27日 or Jun 27, 2022."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = value.date()
    return format_date(value, "medium")


def show_moment(value) -> str:
    """A moment (datetime or the trail's ISO text) in the office's time zone, in the reader's form,
    with its offset."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # The zone is said with every time (GMT+08:00), so no reader takes it for UTC or their own.
    return f"{format_datetime(value, 'medium')} {zone_label(value)}"


def zone_label(moment: datetime | None = None) -> str:
    """The label every time on the pages carries: the office's offset at ``moment`` (now when not
    given), GMT+08:00 in both languages (the letter and the day-ends say it the same way)."""
    return format_datetime(moment or current_app.extensions["govern"].clock.now(), "ZZZZ")


def zone_named(moment: datetime | None = None) -> str:
    """The office's zone where a page names it (filters, charts, the lockout): the same label
    as its times, then the zone's name: GMT+08:00, Asia/Shanghai."""
    name = current_app.extensions["govern"].clock.name
    return _("%(label)s, %(name)s", label=zone_label(moment), name=name)


def show_day_end(value) -> str:
    """The office day something ends with, said as such and with its zone: "Dec 25, 2026, end of
    day (GMT+08:00)". A date is that last day (a window's ``ends_on``); a moment is an exclusive
    end (a grant's ``expires_at``: 00:00 of the next office day), shown as the day before it."""
    if value is None or value == "":
        return "—"
    clock = current_app.extensions["govern"].clock
    if isinstance(value, str):
        value = (
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            if "T" in value
            else date.fromisoformat(value)
        )
    day = clock.last_day(clock.local(value)) if isinstance(value, datetime) else value
    zone = zone_label(clock.start_of_day(day))
    return _("%(day)s, end of day (%(zone)s)", day=format_date(day, "medium"), zone=zone)


# Names the data keeps in English (roles, states, categories) and how a reader sees them.
LABELS = {
    # Roles.
    "vendor_lead": _l("vendor lead"),
    "vendor_staff": _l("vendor staff"),
    "office_handler": _l("office handler"),
    "office_approver": _l("office approver"),
    "auditor": _l("auditor"),
    "security_admin": _l("security administrator"),
    "system_admin": _l("system administrator"),
    "third_party": _l("third party"),
    "subcontractor": _l("subcontractor"),
    # Agreement and item states.
    "active": _l("active"),
    "terminated": _l("terminated"),
    "protected": _l("protected"),
    "public": _l("public"),
    "declassified": _l("declassified"),
    "recalled": _l("recalled"),
    "returned": _l("returned"),
    "destroyed": _l("destroyed"),
    # Item categories (clause 1).
    "design": _l("design"),
    "image": _l("image"),
    "dev_tool": _l("development tool"),
    "flowchart": _l("flowchart"),
    "engineering_drawing": _l("engineering drawing"),
    "program": _l("program"),
    "data": _l("data"),
    "patent": _l("patent"),
    "tender_document": _l("tender document"),
    "credential": _l("credential"),
    "business_document": _l("business document"),
    "technical_document": _l("technical document"),
    "designated": _l("designated by the owner"),
    # Sensitivities.
    "internal": _l("internal"),
    "confidential": _l("confidential"),
    "secret": _l("secret"),
    # Disclosure request states and forms (clause 3.6).
    "draft": _l("draft"),
    "submitted": _l("submitted"),
    "reviewed": _l("reviewed"),
    "approved": _l("approved"),
    "denied": _l("denied"),
    "withdrawn": _l("withdrawn"),
    "expired": _l("expired"),
    "revoked": _l("revoked"),
    "view": _l("view"),
    "copy": _l("copy"),
    "transfer": _l("transfer"),
    "pending": _l("pending"),
    "confirmed": _l("confirmed"),
    "open": _l("open"),
    "closed": _l("closed"),
    "valid": _l("valid"),
    "lapsed": _l("lapsed"),
    "not_started": _l("not yet valid"),
    "ended": _l("ended"),
    "live": _l("live"),
    "recall": _l("recall"),
    "termination": _l("termination"),
    "staff": _l("staff member"),
    # Trail decisions.
    "allow": _l("allow"),
    "deny": _l("deny"),
}


def label(value) -> str:
    """The reader's word for a stored name; unknown names are shown as stored."""
    if value is None:
        return "—"
    found = LABELS.get(str(value))
    return found if found is not None else str(value)


# A run of English of two words or more inside a Chinese text (the letter's "审批经过 Reviewers
# and decisions"): marked as English, so screen readers, hyphenation and the page checks know.
_ENGLISH_RUN = re.compile(
    r"[A-Za-z][A-Za-z0-9,;:'’()/.+\-]*(?:[ ]+[A-Za-z0-9(][A-Za-z0-9,;:'’()/.+\-]*)+"
)


def bilingual(text) -> Markup:
    """The letter's bilingual text with its English marked ``lang="en"`` (escaped as usual)."""
    if text is None:
        return Markup("")
    out, last = [], 0
    value = str(text)
    for match in _ENGLISH_RUN.finditer(value):
        out.append(escape(value[last : match.start()]))
        out.append(Markup('<span lang="en">%s</span>') % match.group(0))
        last = match.end()
    out.append(escape(value[last:]))
    return Markup("").join(out)

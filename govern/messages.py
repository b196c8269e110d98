"""Messages are keys with parameters: the one catalog of what govern says to people.

A service raises or stores a :class:`Msg`, a key of :data:`CATALOG` with named parameters. A
``Msg`` *is* its English text (a ``str``), so the API's ``message``, the trail's ``rule`` and the
command line read as before; it also keeps its key and parameters, which the API adds to its
error body, the trail keeps in an entry's details, and the pages render in the reader's language
(``govern.web.words``). The Chinese of every template is in the pages' catalog (``messages.po``);
a test renders every key in both languages.

This module imports nothing of govern's and nothing of Flask's: every layer may use it. Mail,
sent outside any page, is written with :func:`in_chinese` beside the English.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from babel.support import Translations


def N_(text: str) -> str:  # noqa: N802 - the name gettext's extraction knows
    """Mark a template for extraction; it is translated when it is rendered."""
    return text


CATALOG: dict[str, str] = {
    # Requests and bodies.
    "body.required": N_("a JSON body is required"),
    "body.not_json_type": N_("the body is not valid JSON (send Content-Type: application/json)"),
    "body.not_utf8": N_("the body is not UTF-8"),
    "body.not_json": N_("the body is not valid JSON"),
    "body.too_deep": N_("the body is %(what)s"),
    "body.not_object": N_("the body must be a JSON object"),
    "body.surrogates": N_("must not contain lone surrogates"),
    "body.key_surrogates": N_("a field name contains lone surrogates"),
    "field.unknown": N_("unknown field"),
    "field.required": N_("is required"),
    "query.whole_number": N_("must be a whole number from %(lo)s to %(hi)s"),
    "query.between": N_("must be between %(lo)s and %(hi)s"),
    "query.moment": N_("must be an ISO-8601 date or time"),
    "query.decision": N_("must be allow or deny"),
    "query.action": N_("not a known audit action"),
    "query.format": N_("must be csv or jsonl"),
    "query.headers": N_("must be en or zh_CN"),
    # Schema checks (govern.schema).
    "schema.string": N_("must be a string"),
    "schema.empty": N_("must not be empty"),
    "schema.min_len": N_("needs %(min)s+ characters"),
    "schema.too_long": N_("must be at most %(max)s characters"),
    "schema.pattern": N_("must match %(pattern)s"),
    "schema.surrogates": N_("must not contain lone surrogates (not valid Unicode)"),
    "schema.control": N_("must not contain control characters"),
    "schema.bidi": N_("must not contain bidirectional override or isolate characters"),
    "schema.unassigned": N_("must not contain unassigned code points"),
    "schema.sha256": N_("must be 64 hexadecimal digits"),
    "schema.one_of": N_("must be one of %(choices)s"),
    "schema.integer": N_("must be an integer"),
    "schema.at_least": N_("must be at least %(min)s"),
    "schema.at_most": N_("must be at most %(max)s"),
    "schema.boolean": N_("must be true or false"),
    "schema.amount": N_("must be an amount such as 3985000.00"),
    "schema.amount_range": N_("must be a non-negative amount with at most two decimals"),
    "schema.too_large": N_("is too large"),
    "schema.date": N_("must be a date as YYYY-MM-DD"),
    "schema.calendar": N_("is not a real calendar date"),
    "schema.base64_string": N_("must be a base64 string"),
    "schema.base64": N_("is not valid base64"),
    "schema.list": N_("must be a list"),
    "schema.min_one": N_("needs at least 1 entry"),
    "schema.min_items": N_("needs at least %(min)s entries"),
    "schema.max_items": N_("may have at most %(max)s entries"),
    "schema.duplicates": N_("has duplicates"),
    # Signing in and tokens.
    "auth.bad_password": N_("bad username or password"),
    "auth.sign_in": N_("sign in or send a bearer token"),
    "auth.api_needs_bearer": N_("changes through the API need a bearer token"),
    "auth.bearer_invalid": N_("the bearer token is invalid or expired"),
    "auth.bearer_stale": N_("the bearer token is no longer valid"),
    "auth.token_invalid": N_("the token is invalid or expired"),
    "auth.token_required": N_("a grant token or a client token is required"),
    "auth.token_kind": N_("the token is not a grant token or a client token"),
    "auth.password_not_confirmed": N_("password not confirmed"),
    "shared.denied": N_(
        "this token gives no access to this item now; GET /api/v1/shared/items lists what it covers"
    ),
    "shared.destroyed": N_("item %(id)s is destroyed: it can never be read again"),
    "auth.grant_unknown": N_("the grant token is not known"),
    "auth.client_unknown": N_("the client token names no subcontractor"),
    "auth.locked": N_("too many failed logins; try again after %(until)s"),
    # Decisions (govern.context): what the trail keeps as the rule or the reason.
    "denied": N_("denied: %(rule)s"),
    "rule.because": N_("%(reason)s (%(basis)s)"),
    "rule.none": N_("no matching policy rule"),
    "rule.anonymous": N_("not signed in"),
    "rule.operator": N_("local operator (command line)"),
    "rule.other_vendor": N_("%(domain)s is not an agreement of vendor organisation %(org)s"),
    "rule.vendor_role_office": N_(
        "a vendor role acts only for an account of a vendor organisation"
    ),
    "rule.office_role_vendor": N_(
        "an account of vendor organisation %(org)s never acts as %(role)s"
    ),
    "change.collides": N_("the change collides with another one (%(what)s); reload and try again"),
    "audit.unavailable": N_("the audit trail could not be written; nothing was done"),
    "missing.named": N_("%(what)s does not exist"),
    "missing.object": N_("%(kind)s %(id)s does not exist"),
    "missing.agreement": N_("agreement %(id)s does not exist"),
    "missing.confirmation": N_("return confirmation %(id)s does not exist"),
    "missing.item_in": N_("item %(id)s does not exist in agreement %(agreement)s"),
    "missing.user": N_("user %(id)s does not exist"),
    "missing.link": N_("no pending link %(id)s"),
    "missing.rule": N_("policy rule %(id)s does not exist"),
    "missing.ntk_in": N_("need-to-know %(id)s does not exist in agreement %(agreement)s"),
    "window.ends_before_start": N_("the window ends before it starts"),
    "window.ended": N_("the window has already ended"),
    "item.not_in_agreement": N_("item %(item)s is not an item of agreement %(agreement)s"),
    "agreement.is": N_("agreement %(id)s is %(status)s"),
    "item.is": N_("item %(id)s is %(status)s"),
    "duty.request_participant": N_(
        "the filer, an editor or the submitter of a request never reviews or decides it (separation of duties)"
    ),
    "duty.reviewer_approver": N_(
        "the reviewer and the approver of one request must be two people (separation of duties)"
    ),
    "duty.only_filer": N_("only the filer edits, submits or withdraws its request"),
    "request.cannot": N_("request %(id)s is %(state)s; cannot %(verb)s"),
    "moved.first": N_("%(what)s was moved by someone else first; reload it"),
    "ended.withdrawn": N_("withdrawn by the filer"),
    "request.no_seal": N_("request %(id)s has no sealed approval (it is %(state)s)"),
    "ended.window": N_("the window ended on %(day)s"),
    "ended.undecided": N_("no decision within %(days)s days of submission"),
    "notice.disclosure_submitted": N_("Disclosure request %(id)s awaits first-level review"),
    "notice.disclosure_submitted.body": N_(
        "Request %(id)s to show %(form)s to %(third_party)s (%(purpose)s), %(starts)s to %(ends)s, awaits first-level review."
    ),
    "notice.disclosure_reviewed": N_("Disclosure request %(id)s awaits approval and the seal"),
    "notice.disclosure_reviewed.body": N_(
        "Request %(id)s to show %(form)s to %(third_party)s (%(purpose)s), %(starts)s to %(ends)s, awaits approval and the seal."
    ),
    "notice.disclosure_approved": N_("Disclosure request %(id)s approved and sealed"),
    "notice.disclosure_approved.body": N_(
        "Your request %(id)s for %(third_party)s was approved and sealed."
    ),
    "notice.disclosure_denied": N_("Disclosure request %(id)s denied"),
    "notice.disclosure_denied.body": N_(
        "Your request %(id)s for %(third_party)s was denied: %(reason)s."
    ),
    "notice.disclosure_expired": N_("Disclosure request %(id)s expired"),
    "notice.disclosure_expired.body": N_(
        "Your request %(id)s for %(third_party)s was expired: %(reason)s."
    ),
    "recall.either": N_('give either "item_ids" or "all": true'),
    "recall.nothing": N_("agreement %(id)s has no protected item to recall"),
    "recall.not_protected": N_("item %(id)s is %(status)s; only protected items are recalled"),
    "ended.recall": N_("recall %(id)s: %(reason)s"),
    "ended.termination": N_("termination of the agreement (clause 5.3)"),
    "ended.destroyed": N_("item %(id)s destroyed: %(reason)s"),
    "item.destroyed": N_("item %(id)s is destroyed"),
    "confirmation.done": N_("confirmation %(id)s is already confirmed"),
    "confirmation.raced": N_("confirmation %(id)s was confirmed by someone else"),
    "agreement.already": N_("agreement %(id)s is already %(status)s"),
    "object.confirmation": N_("return confirmation %(id)s"),
    "notice.recall": N_(
        "Recall order %(id)s: return or destroy, then confirm (%(count)s to confirm)"
    ),
    "notice.recall.body": N_(
        "Recall order %(id)s of agreement %(agreement)s: %(reason)s. Confirm each holder's return or destruction."
    ),
    "notice.termination": N_(
        "Termination %(id)s: return or destroy, then confirm (%(count)s to confirm)"
    ),
    # A recall or termination no holder had anything of: said so, not "0 to confirm".
    "notice.recall.none": N_("Recall order %(id)s: nobody held these items, nothing to confirm"),
    "notice.termination.none": N_(
        "Termination %(id)s: nobody held the protected items, nothing to confirm"
    ),
    "notice.termination.body": N_(
        "Termination %(id)s of agreement %(agreement)s: %(reason)s. Confirm each holder's return or destruction."
    ),
    "notice.recall.none.body": N_(
        "Recall order %(id)s of agreement %(agreement)s: %(reason)s. Nobody held these items: nothing to confirm."
    ),
    "notice.termination.none.body": N_(
        "Termination %(id)s of agreement %(agreement)s: %(reason)s. Nobody held the protected items: nothing to confirm."
    ),
    "dsa.ends_before": N_("ends before the DSA was signed"),
    "dsa.not_started": N_("the DSA has not started (%(day)s)"),
    "dsa.lapsed": N_("the DSA lapsed on %(day)s"),
    "date.past": N_("is in the past"),
    "record.outlasts_dsa": N_("the record may not outlast the DSA (%(day)s)"),
    "record.outlasts_term": N_("the record may not outlast the agreement's term (%(day)s)"),
    "record.stray_whole": N_("%(ids)s are not among item_ids"),
    "record.unknown_fields": N_("%(names)s are not fields of the items named"),
    "record.no_fields": N_(
        "names none of item %(id)s's fields; to share it whole, name it in whole_items"
    ),
    "duty.record_filer": N_(
        "the filer of a subcontractor record never reviews or decides it (separation of duties)"
    ),
    "duty.record_reviewer": N_(
        "the reviewer and the approver of one record must be two people (separation of duties)"
    ),
    "record.cannot": N_("subcontractor %(id)s is %(state)s; cannot %(verb)s"),
    "scope.ended": N_("the record's scope over item %(id)s ended: %(reason)s"),
    "record.no_seal": N_("subcontractor %(id)s has no sealed approval (it is %(state)s)"),
    "record.no_token": N_("subcontractor %(id)s is %(state)s; only an approved record has a token"),
    "record.already": N_("subcontractor %(id)s is %(state)s already"),
    "record.is": N_("subcontractor %(id)s is %(state)s"),
    "ended.record_revoked": N_("subcontractor revoked: %(reason)s"),
    "token.replaced": N_("the client token was replaced by a newer one"),
    "record.ended": N_("the minimisation record ended on %(day)s"),
    "dsa.starts": N_("the data-security agreement starts on %(day)s"),
    "dsa.lapsed_on": N_("the data-security agreement lapsed on %(day)s"),
    "scope.outside": N_("the item is not in the minimisation record"),
    "item.unreadable": N_("item %(id)s cannot be opened"),
    "minimise.type": N_(
        "item %(id)s is %(type)s, which cannot be cut down to fields %(names)s; the record names fields for it"
    ),
    "minimise.json": N_(
        "the item is not JSON records (a list of objects); only whole fields may be served"
    ),
    "minimise.csv": N_("the item is not CSV with a header; only whole columns may be served"),
    "notice.subcontractor_submitted": N_("Subcontractor record %(id)s awaits first-level review"),
    "notice.subcontractor_submitted.body": N_(
        "The record of subcontractor %(id)s (%(name)s, %(service)s) for %(purpose)s, until %(until)s, awaits first-level review."
    ),
    "notice.subcontractor_reviewed": N_("Subcontractor record %(id)s awaits approval and the seal"),
    "notice.subcontractor_reviewed.body": N_(
        "The record of subcontractor %(id)s (%(name)s, %(service)s) for %(purpose)s, until %(until)s, awaits approval and the seal."
    ),
    "notice.subcontractor_approved": N_("Subcontractor record %(id)s approved and sealed"),
    "notice.subcontractor_approved.body": N_(
        "Your record of subcontractor %(id)s (%(name)s) was approved and sealed; its client token can now be issued."
    ),
    "notice.subcontractor_denied": N_("Subcontractor record %(id)s denied"),
    "notice.subcontractor_denied.body": N_(
        "Your record of subcontractor %(id)s (%(name)s) was denied: %(reason)s."
    ),
    "rule.client_unknown": N_("client token names no subcontractor"),
    "account.none": N_("no account named %(name)s"),
    "account.not_vendor": N_("%(name)s is not vendor staff"),
    "account.not_staff_of": N_("%(name)s is not staff of %(org)s"),
    "duty.own_nda": N_("nobody registers their own NDA or need-to-know (separation of duties)"),
    "duty.lead_nda": N_(
        "%(name)s is a vendor lead: the office registers a lead's NDA and need-to-know"
    ),
    "duty.staff_nda": N_("%(name)s is vendor staff: its lead registers its NDA and need-to-know"),
    "nda.ends_before": N_("ends before the NDA starts (%(day)s)"),
    "nda.overlaps": N_("overlaps NDA %(id)s of %(name)s (%(starts)s to %(ends)s)"),
    "nda.hash_mismatch": N_("does not match document_b64"),
    "content.too_large": N_("too large"),
    "nda.renewed": N_("NDA %(id)s has been renewed already"),
    "nda.renewal_short": N_("a renewal must end after %(day)s"),
    "ntk.already": N_("%(name)s already has need-to-know for %(ids)s"),
    "account.disabled": N_("%(name)s's account is disabled"),
    "nda.none_today": N_("%(name)s has no valid NDA today in agreement %(agreement)s"),
    "nda.ends_first": N_(
        "%(name)s's NDA ends on %(day)s, before the need-to-know would (%(last)s)"
    ),
    "items.missing": N_("no item %(ids)s in agreement %(agreement)s"),
    "items.closed": N_("items %(ids)s are not protected items"),
    "ntk.revoked": N_("need-to-know %(id)s is revoked already"),
    "content.more_than": N_("more than %(max)s bytes"),
    "fields.unchecked": N_(
        "the content is %(where)s, so fields cannot be checked (%(names)s); declare fields only for JSON records or CSV with a header"
    ),
    "fields.missing": N_("not among %(where)s: %(names)s"),
    "nda.none": N_("no valid NDA: none registered"),
    "nda.starts": N_("no valid NDA: it starts on %(day)s"),
    "nda.lapsed": N_("no valid NDA: it lapsed on %(day)s"),
    "ntk.none": N_("no need-to-know for item %(id)s"),
    "ntk.ended": N_("no need-to-know for item %(id)s: it ended on %(day)s"),
    "ntk.was_revoked": N_("no need-to-know for item %(id)s: it was revoked"),
    "item.role_never_reads": N_("role %(role)s never reads item content"),
    "item.destroyed_why": N_("item %(id)s is destroyed: %(reason)s"),
    "item.unreadable_why": N_("item %(id)s cannot be opened: %(error)s"),
    "grant.is": N_("grant %(id)s is %(state)s"),
    "request.is": N_("request %(id)s is %(state)s"),
    "window.outside": N_("outside the window %(starts)s to %(ends)s"),
    "grant.not_listed": N_("item is not among the items of request %(id)s"),
    "grant.already_revoked": N_("grant %(id)s is already revoked"),
    "ended.revoked_by": N_("revoked by %(name)s"),
    "grant.needs_approval": N_(
        "request %(id)s is %(state)s; only an approved request hands out grants"
    ),
    "window.opens": N_("the window of request %(id)s opens on %(day)s"),
    "account.needs_org": N_("a %(role)s account belongs to a vendor organisation"),
    "account.office_org": N_("a %(role)s account belongs to the office, not a vendor"),
    "account.username_form": N_("2-64 of a-z 0-9 _ . -, not a role name"),
    "account.operator_password": N_("only the local operator sets a password for someone else"),
    "password.short": N_("needs at least %(min)s characters"),
    "account.taken": N_("%(name)s is taken"),
    "rule.account_creation": N_("account creation"),
    "rule.locked": N_("too many failed logins"),
    "rule.bearer_invalid": N_("invalid or expired bearer token"),
    "rule.account_disabled": N_("account disabled"),
    "rule.credentials_changed": N_("credentials changed"),
    "rule.bearer_stale": N_("the bearer token is no longer valid: %(why)s"),
    "link.none": N_("no such link"),
    "link.used": N_("this link has been used or replaced"),
    "link.awaits": N_("this link awaits a security administrator's confirmation"),
    "link.expired": N_("this link has expired; ask for a new one"),
    "link.account_disabled": N_("this account is disabled"),
    "link.not_awaiting": N_("this link awaits no confirmation"),
    "rule.invalid_grant": N_("invalid grant token"),
    "rule.unknown_grant": N_("unknown grant"),
    "rule.no_token": N_("no token"),
    "rule.password_not_confirmed": N_("password not confirmed"),
    "rule.token_kind": N_("not a grant token or a client token"),
    "rule.client_invalid": N_("invalid or expired client token"),
    "rule.no_seal_digest": N_("no sealed approval with this digest"),
    "rule.pasted_bad": N_("pasted approval does not verify"),
    "rule.password_verified": N_("password verified"),
    "rule.signed_out": N_("signed out"),
    "rule.cross_site": N_("cross-site request over a cookie session (Sec-Fetch-Site: %(site)s)"),
    "trail.empty": N_("the trail is empty: there is no checkpoint yet"),
    "trail.only": N_("the tree has only %(size)s entries"),
    "trail.from_to": N_("must not be larger than to"),
    "trail.size": N_("must be between %(seq)s and the tree's size"),
    "error.text": N_("%(error)s"),
    "witness.key": N_("not a witness (cosignature/v1) key"),
    "witness.named": N_("the key is named %(name)s"),
    "witness.exists": N_("witness %(name)s is already registered"),
    "witness.unknown": N_("%(name)s is not a registered witness"),
    "witness.foreign": N_("not a checkpoint this office signed"),
    "account.already_disabled": N_("%(name)s is disabled already"),
    "account.already_active": N_("%(name)s is active already"),
    "breach.no_subcontractor": N_("no subcontractor %(who)s in agreement %(agreement)s"),
    "breach.no_entries": N_("no audit entries %(seqs)s"),
    "breach.not_about": N_("no audit entries %(seqs)s about agreement %(agreement)s"),
    "policy.not_role": N_("%(role)s is not a role"),
    "policy.domain": N_("a domain is * or agreement:<id>"),
    "policy.not_action": N_("%(action)s is not an action"),
    "policy.no_user": N_("no user %(name)s"),
    "policy.not_account_role": N_("%(role)s is not an account role"),
    "policy.arity": N_("a %(ptype)s rule has %(count)s values"),
    "policy.exists": N_("that rule exists already"),
    "mail.no_server": N_("no mail server is configured"),
    "mail.unreachable": N_("the mail server cannot be reached: %(error)s"),
    "inv.role_in_duty": N_("a role acts only within its duty"),
    "inv.one_duty": N_("an account holds roles of one duty"),
    "inv.accounts_hold_roles": N_("only accounts hold roles"),
    "inv.keepers": N_("the auditor keeps its trail rules and security_admin its own"),
    "inv.not_oneself": N_("nobody changes their own roles or credentials"),
    "owners.vendor_office": N_("the vendor and office duties"),
    "owners.audit": N_("the audit duty"),
    "owners.security": N_("the security duty"),
    "owners.system": N_("the system duty"),
    "owners.none": N_("no duty (no rule decides it)"),
    "owners.some": N_("the %(duties)s duties"),
    "duty.violation": N_("separation of duties (%(invariant)s): %(detail)s"),
    "duty.belongs": N_("%(action)s belongs to %(owners)s; %(role)s is of the %(duty)s duty"),
    "duty.holds": N_("it holds %(held)s; %(role)s is of the %(duty)s duty"),
    "duty.is_role": N_("%(name)s is a role, not an account"),
    "duty.is_you": N_("%(name)s is you"),
    "duty.kept": N_("%(rule)s cannot be removed"),
    "duty.second_person": N_("a second person confirms"),
    "duty.that_is_you": N_("that is you"),
    "nda.not_in_agreement": N_("nda %(id)s does not exist in agreement %(agreement)s"),
    "notice.nda_ends": N_("NDA of %(name)s ends on %(day)s"),
    "notice.nda_ends.body": N_(
        "The NDA %(id)s of %(name)s in agreement %(agreement)s ends on %(day)s. Without a renewal, their access ends with it (clause 3.8)."
    ),
    "notice.dsa_ends": N_("Data-security agreement of %(name)s ends on %(day)s"),
    "notice.dsa_ends.body": N_(
        "The data-security agreement of subcontractor %(id)s (%(name)s) in agreement %(agreement)s ends on %(day)s; it receives nothing after that (clause 3.7)."
    ),
    "notice.record_ends": N_("Minimisation record of %(name)s ends on %(day)s"),
    "notice.record_ends.body": N_(
        "The minimisation record of subcontractor %(id)s (%(name)s) in agreement %(agreement)s ends on %(day)s (clause 3.7)."
    ),
    "notice.grant_ends": N_("Grant %(id)s for %(third_party)s ends on %(day)s"),
    "notice.window_ends": N_("The window of disclosure request %(id)s ends on %(day)s"),
    "notice.term_ends": N_("The confidentiality term of agreement %(id)s ends on %(day)s"),
}

# Parameters whose text may itself be a message (a reason inside a rule, a notice).
NESTED = frozenset({"reason", "why", "rule", "detail", "invariant", "owners", "basis", "what"})

# Parameters that name a stored word (a state, a role...): pages show the reader's word for them.
LABELLED = frozenset({"state", "role", "status", "form", "category", "kind"})


def _plain(value):
    """A parameter as the trail and the API keep it (JSON): dates as ISO text, sets as lists."""
    if isinstance(value, Msg):
        return value
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return value


class Msg(str):
    """A message: its English text, with the key and parameters it was made from."""

    key: str
    params: dict

    def __new__(cls, key: str, /, **params) -> Msg:
        template = CATALOG[key]
        params = {k: _plain(v) for k, v in params.items()}
        text = template % params if params else template
        self = super().__new__(cls, text)
        self.key, self.params = key, params
        return self

    def as_dict(self) -> dict:
        """The key and parameters as JSON keeps them (a nested message as its own dict)."""
        return {"key": self.key, "params": {k: _json(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> Msg | None:
        """The message a stored dict names, or None if its key is not (or no longer) known."""
        key = data.get("key") if isinstance(data, dict) else None
        if key not in CATALOG:
            return None
        params = {k: _revive(v) for k, v in (data.get("params") or {}).items()}
        try:
            return cls(key, **params)
        except (KeyError, TypeError, ValueError):
            return None

    def __reduce__(self):
        return (_rebuild, (self.key, self.params))


def _rebuild(key: str, params: dict) -> Msg:
    return Msg(key, **params)


def _json(value):
    return value.as_dict() if isinstance(value, Msg) else value


def _revive(value):
    if isinstance(value, dict) and "key" in value:
        return Msg.from_dict(value) or str(value.get("key"))
    return value


M = Msg


def placeholders(template: str) -> set[str]:
    """The named parameters a template (or its translation) uses."""
    return set(re.findall(r"%\((\w+)\)s", template))


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, re.Pattern]]:
    out = []
    for key, template in CATALOG.items():
        names = placeholders(template)
        # A template that is little more than its placeholders would read any text at all.
        if not names or len(re.sub(r"%\(\w+\)s|\W", "", template)) < 3:
            continue
        parts = re.split(r"(%\(\w+\)s)", template)
        regex = "".join(
            f"(?P<{p[2:-2]}>.+?)" if re.fullmatch(r"%\(\w+\)s", p) else re.escape(p) for p in parts
        )
        out.append((key, re.compile(f"^{regex}$", re.DOTALL)))
    # Templates with more fixed text first: they are the more specific reading.
    out.sort(key=lambda kv: -len(re.sub(r"%\(\w+\)s", "", CATALOG[kv[0]])))
    return out


@lru_cache(maxsize=1)
def _fixed() -> dict[str, str]:
    return {t: k for k, t in CATALOG.items() if not placeholders(t)}


def read(text: str, depth: int = 0) -> Msg | None:
    """The message an English text was made from, for text stored before messages had keys
    (old trail entries, notices, end reasons), or None. Only for showing it: never a decision."""
    if not isinstance(text, str) or not text or depth > 3:
        return None
    if isinstance(text, Msg):
        return text
    key = _fixed().get(text)
    if key is not None:
        return Msg(key)
    for key, pattern in _patterns():
        found = pattern.match(text)
        if found:
            params = {
                k: (read(v, depth + 1) or v) if k in NESTED else v
                for k, v in found.groupdict().items()
            }
            try:
                return Msg(key, **params)
            except (KeyError, TypeError, ValueError):
                continue
    return None


# The pages' catalog, also used for mail (sent from the command line, outside any page).
TRANSLATIONS = Path(__file__).parent / "web" / "translations"


@lru_cache(maxsize=1)
def _chinese() -> Translations:
    return Translations.load(str(TRANSLATIONS), ["zh_Hans_CN"])


def in_chinese(msg: Msg) -> str:
    """A message in Chinese without a page (for mail): nested messages too, and stored words
    (states, forms) by the catalog's word for them where it has one."""
    zh = _chinese()

    def param(name: str, value):
        if isinstance(value, Msg):
            return in_chinese(value)
        if isinstance(value, str) and name in LABELLED:
            return zh.ugettext(value.replace("_", " "))
        return value

    params = {k: param(k, v) for k, v in msg.params.items()}
    text = zh.ugettext(CATALOG[msg.key])
    try:
        return text % params if params else text
    except (KeyError, TypeError, ValueError):
        return str(msg)

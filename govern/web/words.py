"""Messages in the reader's language: a key with parameters (govern.messages) rendered at the edge.

``say`` renders a :class:`~govern.messages.Msg`; text stored before messages had keys (old trail
entries and notices, end reasons) is read back to its key when it matches a template, else shown
as stored. The trail's action codes and casbin rules are said in words too.
"""

from __future__ import annotations

import json

from flask_babel import get_translations
from flask_babel import lazy_gettext as _l

from govern.actions import Action
from govern.audit import RULE_KEY
from govern.messages import CATALOG, LABELLED, NESTED, Msg, read
from govern.web.i18n import label

# The trail's action codes as the reader says them.
ACTION_WORDS = {
    Action.AUTH_LOGIN: _l("sign in"),
    Action.AUTH_LOGOUT: _l("sign out"),
    Action.AUTH_TOKEN: _l("API token issued"),
    Action.AUTH_BEARER: _l("API token presented"),
    Action.USER_CREATE: _l("create an account"),
    Action.USER_LIST: _l("list accounts"),
    Action.USER_DISABLE: _l("disable an account"),
    Action.USER_ENABLE: _l("enable an account"),
    Action.USER_RESET: _l("reset a password"),
    Action.USER_UNLOCK: _l("unlock an account"),
    Action.USER_CONFIRM: _l("confirm an account link"),
    Action.AUTH_SET_PASSWORD: _l("set a password by link"),
    Action.AUTH_CHANGE_PASSWORD: _l("change one's password"),
    Action.POLICY_LIST: _l("list policy rules"),
    Action.POLICY_ADD: _l("add a policy rule"),
    Action.POLICY_REMOVE: _l("remove a policy rule"),
    Action.ROLE_ASSIGN: _l("assign a role"),
    Action.ROLE_UNASSIGN: _l("remove a role"),
    Action.AGREEMENT_CREATE: _l("create an agreement"),
    Action.AGREEMENT_LIST: _l("list agreements"),
    Action.AGREEMENT_READ: _l("open an agreement"),
    Action.AGREEMENT_TERMINATE: _l("terminate an agreement"),
    Action.ITEM_CREATE: _l("register an item"),
    Action.ITEM_LIST: _l("list items"),
    Action.ITEM_READ: _l("read an item's content"),
    Action.ITEM_DECLASSIFY: _l("declassify an item"),
    Action.ITEM_DESTROY: _l("destroy an item"),
    Action.NDA_CREATE: _l("register an NDA"),
    Action.NDA_LIST: _l("list NDAs"),
    Action.NDA_RENEW: _l("renew an NDA"),
    Action.NTK_GRANT: _l("grant need-to-know"),
    Action.NTK_LIST: _l("list need-to-know"),
    Action.NTK_REVOKE: _l("revoke need-to-know"),
    Action.SUBCONTRACTOR_CREATE: _l("register a subcontractor"),
    Action.SUBCONTRACTOR_LIST: _l("list subcontractors"),
    Action.SUBCONTRACTOR_REVIEW: _l("review a subcontractor record"),
    Action.SUBCONTRACTOR_APPROVE: _l("approve a subcontractor record"),
    Action.SUBCONTRACTOR_DENY: _l("deny a subcontractor record"),
    Action.SUBCONTRACTOR_TOKEN: _l("issue a client token"),
    Action.SUBCONTRACTOR_ROTATE: _l("replace a client token"),
    Action.SUBCONTRACTOR_REVOKE: _l("revoke a subcontractor"),
    Action.SUBCONTRACTOR_REPORT: _l("subcontractor report"),
    Action.SHARED_READ: _l("read shared content"),
    Action.DISCLOSURE_CREATE: _l("file a disclosure request"),
    Action.DISCLOSURE_LIST: _l("list disclosure requests"),
    Action.DISCLOSURE_READ: _l("open a disclosure request"),
    Action.DISCLOSURE_EDIT: _l("edit a disclosure request"),
    Action.DISCLOSURE_SUBMIT: _l("submit a disclosure request"),
    Action.DISCLOSURE_REVIEW: _l("review a disclosure request"),
    Action.DISCLOSURE_APPROVE: _l("approve a disclosure request"),
    Action.DISCLOSURE_DENY: _l("deny a disclosure request"),
    Action.DISCLOSURE_WITHDRAW: _l("withdraw a disclosure request"),
    Action.DISCLOSURE_EXPIRE: _l("a disclosure request expires"),
    Action.GRANT_ISSUE: _l("issue a grant"),
    Action.GRANT_LIST: _l("list grants"),
    Action.GRANT_REVOKE: _l("revoke a grant"),
    Action.SEAL_CHECK: _l("check a seal"),
    Action.RECALL_CREATE: _l("order a recall"),
    Action.RECALL_LIST: _l("list recalls"),
    Action.RECALL_CONFIRM: _l("confirm a return"),
    Action.BREACH_CREATE: _l("record a breach"),
    Action.BREACH_LIST: _l("list breaches"),
    Action.OUTBOX_LIST: _l("read notices"),
    Action.OUTBOX_SEND: _l("send notices by mail"),
    Action.AUDIT_SEARCH: _l("search the audit trail"),
    Action.AUDIT_VERIFY: _l("verify the audit trail"),
    Action.AUDIT_EXPORT: _l("export the audit trail"),
    Action.AUDIT_CHECKPOINT: _l("sign a checkpoint"),
    Action.WITNESS_ADD: _l("register a witness"),
    Action.WITNESS_COSIGN: _l("a witness co-signs"),
    Action.KEY_ROTATE: _l("rotate a key"),
}

# Words for the verbs a state-machine refusal names ("cannot review").
VERBS = {
    "edit": _l("edit"),
    "submit": _l("submit"),
    "review": _l("review"),
    "approve": _l("approve"),
    "deny": _l("deny"),
    "withdraw": _l("withdraw"),
}

# Words for the kinds of object a "does not exist" names.
KINDS = {
    "agreement": _l("agreement"),
    "item": _l("item"),
    "nda": _l("NDA"),
    "need-to-know": _l("need-to-know"),
    "subcontractor": _l("subcontractor"),
    "disclosure": _l("disclosure request"),
    "grant": _l("grant"),
    "recall": _l("recall"),
    "user": _l("account"),
    "audit entry": _l("audit entry"),
    "return confirmation": _l("return confirmation"),
    "breach": _l("breach"),
    "casbin_rule": _l("policy rule"),
    "password link": _l("password link"),
}


# Words for the duties (三员分立) a separation-of-duties refusal names.
DUTIES = {
    "vendor": _l("vendor"),
    "office": _l("office"),
    "audit": _l("audit"),
    "security": _l("security"),
    "system": _l("system"),
    "holder": _l("token holder"),
}


def action_word(code) -> str:
    """An action code (``disclosure:approve``) as the reader says it; unknown codes as stored."""
    try:
        return str(ACTION_WORDS[Action(str(code))])
    except (ValueError, KeyError):
        return str(code)


def rule_sentence(text: str) -> str:
    """A casbin rule tuple said as a sentence; anything else is said as a message if it is one."""
    parts = [p.strip() for p in str(text).split(",")]
    if parts[0] == "p" and len(parts) == 5:
        _p, role, domain, kind, verb = parts
        return _translate(
            "%(role)s may %(action)s in %(domain)s",
            role=label(role),
            action=action_word(f"{kind}:{verb}"),
            domain=_domain(domain),
        )
    if parts[0] == "g" and len(parts) == 4:
        _g, who, role, domain = parts
        return _translate(
            "%(who)s holds the role %(role)s in %(domain)s",
            who=who,
            role=label(role),
            domain=_domain(domain),
        )
    return say(text)


def _domain(domain: str) -> str:
    if domain == "*":
        return _translate("every agreement")
    if domain.startswith("agreement:"):
        return _translate("agreement %(id)s", id=domain.split(":", 1)[1])
    return domain


# The sentences above, for extraction (rendered with _translate).
_SENTENCES = (
    _l("%(role)s may %(action)s in %(domain)s"),
    _l("%(who)s holds the role %(role)s in %(domain)s"),
    _l("every agreement"),
    _l("agreement %(id)s"),
)


def _translate(template: str, **params) -> str:
    text = get_translations().ugettext(template)
    return text % params if params else text


def say(message) -> str:
    """A message in the reader's language: a Msg by its key, stored English by the key it was
    made from, anything else as it is."""
    if message is None:
        return ""
    msg = message if isinstance(message, Msg) else read(str(message))
    if msg is None:
        return str(message)
    params = {k: _param(k, v) for k, v in msg.params.items()}
    template = CATALOG[msg.key]
    text = get_translations().ugettext(template)
    try:
        return text % params if params else text
    except (KeyError, TypeError, ValueError):
        # A translation that lost a placeholder (the catalog test fails on it) falls back.
        return template % params if params else template


def _param(name: str, value):
    if isinstance(value, Msg):
        return say(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if not isinstance(value, str):
        return value
    if name == "basis":
        return rule_sentence(value)
    if name == "verb":
        return str(VERBS.get(value, value))
    if name == "kind":
        return str(KINDS.get(value, label(value)))
    if name == "action":
        return action_word(value)
    if name == "duty":
        return str(DUTIES.get(value, value))
    if name in LABELLED:
        return label(value)
    if name in NESTED:
        return say(value)
    return value


def entry_rule(entry) -> str:
    """An audit entry's rule or reason in the reader's language: from the key it keeps, or (older
    entries) from its English text, with a casbin rule said as a sentence."""
    details = _details(entry)
    kept = details.get(RULE_KEY)
    msg = Msg.from_dict(kept) if isinstance(kept, dict) else None
    if msg is not None:
        return say(msg)
    return rule_sentence(entry.rule) if entry.rule else "—"


def entry_details(entry) -> dict:
    """An entry's details without the rule's key (shown as the rule, in words)."""
    return {k: v for k, v in _details(entry).items() if k != RULE_KEY}


def _details(entry) -> dict:
    raw = getattr(entry, "details", None)
    if isinstance(raw, dict):
        return raw
    try:
        found = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def error_parts(exc) -> tuple[str, str]:
    """An error page's message and the rule it was decided under, in the reader's language."""
    msg = exc.msg
    if msg is None:
        return str(exc.message), ""
    if msg.key == "denied":
        rule = msg.params.get("rule")
        if isinstance(rule, Msg) and rule.key == "rule.because":
            return say(rule.params["reason"]), rule_sentence(rule.params["basis"])
        if isinstance(rule, str) and rule.startswith("p, "):
            return _translate("no rule allows this"), rule_sentence(rule)
        basis = exc.extra.get("rule")
        reason = say(rule)
        if isinstance(basis, Msg) and basis.key == "rule.because":
            return reason, rule_sentence(basis.params["basis"])
        return reason, ""
    return say(msg), ""


_l("no rule allows this")


# What each field of an entry's details is called on the pages (the stored key is shown beside
# it): every keyword a service records with its decisions (tests/test_messages.py checks them).
DETAIL_NAMES = {
    "attributed_to": _l("Attributed to"),
    "audit_seqs": _l("Audit entries"),
    "awaiting_confirmation": _l("Awaiting confirmation"),
    "category": _l("Category"),
    "checkpoint_seq": _l("Checkpoint at entry"),
    "confirmation": _l("Confirmation"),
    "confirmations": _l("Confirmations"),
    "confirmed_by": _l("Confirmed by"),
    "created_by": _l("Created by"),
    "disclosure": _l("Disclosure request"),
    "dsa_sha256": _l("Data security agreement SHA-256"),
    "ends_on": _l("Ends on"),
    "entries": _l("Entries"),
    "expires_at": _l("Expires at"),
    "expires_in": _l("Valid for (seconds)"),
    "fields": _l("Fields"),
    "first_bad": _l("First bad entry"),
    "form": _l("Form"),
    "format": _l("Format"),
    "from": _l("From"),
    "grant": _l("Grant"),
    "holder": _l("Holder"),
    "holders": _l("Holders"),
    "item_id": _l("Item"),
    "item_ids": _l("Items"),
    "jobs": _l("Parallel jobs"),
    "key": _l("Key"),
    "key_id": _l("Key id"),
    "link": _l("Link"),
    "liquidated_damages": _l("Liquidated damages"),
    "listing": _l("Listing"),
    "name": _l("Name"),
    "ntk_ids": _l("Need-to-know records"),
    "ok": _l("Intact"),
    "opinion": _l("Opinion"),
    "org": _l("Organisation"),
    "outcome": _l("Outcome"),
    "pasted_sha256": _l("Pasted document SHA-256"),
    "problem": _l("Problem"),
    "proof_size": _l("Proof size"),
    "ptype": _l("Rule type"),
    "purpose": _l("Purpose"),
    "reason": _l("Reason"),
    "recall": _l("Recall order"),
    "refused": _l("Refused"),
    "renewal_id": _l("Renewal"),
    "responsible": _l("Responsible"),
    "responsible_kind": _l("Kind of responsible party"),
    "retired": _l("Retired"),
    "role": _l("Role"),
    "role_assigned": _l("Role assigned"),
    "rotated": _l("Rotated"),
    "scope": _l("Scope"),
    "search": _l("Search"),
    "sent": _l("Sent"),
    "sha256": _l("SHA-256"),
    "signed_on": _l("Signed on"),
    "since": _l("Since"),
    "size": _l("Size (bytes)"),
    "state": _l("State"),
    "status": _l("Status"),
    "subcontractor": _l("Subcontractor"),
    "termination_requested": _l("Termination requested"),
    "third_party": _l("Third party"),
    "throttled": _l("Throttled"),
    "title": _l("Title"),
    "to": _l("To"),
    "to_confirm": _l("To confirm"),
    "token_sha256": _l("Token fingerprint"),
    "until": _l("Until"),
    "user": _l("Account"),
    "values": _l("Values"),
    "via": _l("Via"),
    "was_locked": _l("Was locked"),
    "whole_item": _l("Whole item"),
    "whole_items": _l("Whole items"),
    "witness": _l("Witness"),
}


def detail_name(key: str) -> str:
    """A field of an entry's details in the reader's language (a key not named here as it is)."""
    name = DETAIL_NAMES.get(key)
    return str(name) if name is not None else key


def install(app) -> None:
    app.jinja_env.filters["said"] = say
    app.jinja_env.filters["action_word"] = action_word
    app.jinja_env.filters["entry_rule"] = entry_rule
    app.jinja_env.globals["entry_details"] = entry_details
    app.jinja_env.filters["detail_name"] = detail_name
    app.jinja_env.filters["rule_sentence"] = rule_sentence
    app.jinja_env.filters["notice"] = notice


def notice(message, part: str = "subject") -> str:
    """A notice's subject (or body) in the reader's language."""
    from govern.services import outbox

    return say(outbox.said(message, part))


__all__ = ["action_word", "entry_rule", "error_parts", "install", "rule_sentence", "say"]

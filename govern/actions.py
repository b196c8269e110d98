"""Audit actions: a typed enum of "domain:action" strings. Handlers never build action names.

The part after the colon is also the casbin action, and the part before it the casbin object kind,
so one name says both what was attempted and which rule decides it.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class Action(StrEnum):
    # Accounts and sessions.
    AUTH_LOGIN = "auth:login"
    AUTH_LOGOUT = "auth:logout"
    AUTH_TOKEN = "auth:token"
    # A bearer token presented to the API and refused (never the token: a short hash of it).
    AUTH_BEARER = "auth:bearer"
    USER_CREATE = "user:create"
    USER_LIST = "user:list"
    USER_DISABLE = "user:disable"
    USER_ENABLE = "user:enable"
    USER_RESET = "user:reset"
    USER_UNLOCK = "user:unlock"
    # A second person (security_admin) confirms a new office or admin account, or its reset.
    USER_CONFIRM = "user:confirm"
    # By the account's own holder: a one-time set-password link, or the current password.
    AUTH_SET_PASSWORD = "auth:set-password"
    AUTH_CHANGE_PASSWORD = "auth:change-password"
    # Policy (security_admin).
    POLICY_LIST = "policy:list"
    POLICY_ADD = "policy:add"
    POLICY_REMOVE = "policy:remove"
    ROLE_ASSIGN = "role:assign"
    ROLE_UNASSIGN = "role:unassign"
    # Agreements and items.
    AGREEMENT_CREATE = "agreement:create"
    AGREEMENT_LIST = "agreement:list"
    AGREEMENT_READ = "agreement:read"
    AGREEMENT_TERMINATE = "agreement:terminate"
    ITEM_CREATE = "item:create"
    ITEM_LIST = "item:list"
    ITEM_READ = "item:read"
    ITEM_DECLASSIFY = "item:declassify"
    ITEM_DESTROY = "item:destroy"
    # Vendor staff and subcontractors (clauses 3.5, 3.7, 3.8).
    NDA_CREATE = "nda:create"
    NDA_LIST = "nda:list"
    NDA_RENEW = "nda:renew"
    NTK_GRANT = "ntk:grant"
    NTK_LIST = "ntk:list"
    NTK_REVOKE = "ntk:revoke"
    SUBCONTRACTOR_CREATE = "subcontractor:create"
    SUBCONTRACTOR_LIST = "subcontractor:list"
    SUBCONTRACTOR_REVIEW = "subcontractor:review"
    SUBCONTRACTOR_APPROVE = "subcontractor:approve"
    SUBCONTRACTOR_DENY = "subcontractor:deny"
    SUBCONTRACTOR_TOKEN = "subcontractor:token"
    SUBCONTRACTOR_ROTATE = "subcontractor:rotate"
    SUBCONTRACTOR_REVOKE = "subcontractor:revoke"
    SUBCONTRACTOR_REPORT = "subcontractor:report"
    SHARED_READ = "shared:read"
    # Disclosure requests, grants (clause 3.6).
    DISCLOSURE_CREATE = "disclosure:create"
    DISCLOSURE_LIST = "disclosure:list"
    DISCLOSURE_READ = "disclosure:read"
    DISCLOSURE_EDIT = "disclosure:edit"
    DISCLOSURE_SUBMIT = "disclosure:submit"
    DISCLOSURE_REVIEW = "disclosure:review"
    DISCLOSURE_APPROVE = "disclosure:approve"
    DISCLOSURE_DENY = "disclosure:deny"
    DISCLOSURE_WITHDRAW = "disclosure:withdraw"
    DISCLOSURE_EXPIRE = "disclosure:expire"
    GRANT_ISSUE = "grant:issue"
    GRANT_LIST = "grant:list"
    GRANT_REVOKE = "grant:revoke"
    # Anyone holding a printed approval letter checks its seal (public; never its content).
    SEAL_CHECK = "seal:check"
    # Recall, termination, breaches (clauses 3.10, 5.3, 7).
    RECALL_CREATE = "recall:create"
    RECALL_LIST = "recall:list"
    RECALL_CONFIRM = "recall:confirm"
    BREACH_CREATE = "breach:create"
    BREACH_LIST = "breach:list"
    OUTBOX_LIST = "outbox:list"
    OUTBOX_SEND = "outbox:send"
    # The trail itself.
    AUDIT_SEARCH = "audit:search"
    AUDIT_VERIFY = "audit:verify"
    AUDIT_EXPORT = "audit:export"
    AUDIT_CHECKPOINT = "audit:checkpoint"
    # Registering an outside witness; a witness posting its co-signature (public, by its key).
    WITNESS_ADD = "witness:add"
    WITNESS_COSIGN = "witness:cosign"
    KEY_ROTATE = "key:rotate"

    @property
    def kind(self) -> str:
        return self.value.split(":", 1)[0]

    @property
    def verb(self) -> str:
        return self.value.split(":", 1)[1]


class Duty(StrEnum):
    """三员分立: every role belongs to exactly one duty (SPEC, "Who uses it")."""

    VENDOR = "vendor"
    OFFICE = "office"
    AUDIT = "audit"
    SECURITY = "security"
    SYSTEM = "system"
    # Token holders (a grant's third party, a subcontractor) are not accounts.
    HOLDER = "holder"


ROLE_DUTY = MappingProxyType(
    {
        "vendor_lead": Duty.VENDOR,
        "vendor_staff": Duty.VENDOR,
        "office_handler": Duty.OFFICE,
        "office_approver": Duty.OFFICE,
        "auditor": Duty.AUDIT,
        "security_admin": Duty.SECURITY,
        "system_admin": Duty.SYSTEM,
        "third_party": Duty.HOLDER,
        "subcontractor": Duty.HOLDER,
    }
)

_V, _O, _A, _S, _Y, _H = (
    Duty.VENDOR,
    Duty.OFFICE,
    Duty.AUDIT,
    Duty.SECURITY,
    Duty.SYSTEM,
    Duty.HOLDER,
)
# Which duties a policy rule may give each action to: the one table the separation of duties is
# checked against. Reading item content belongs to the vendor and office duties (and to token
# holders, inside their grant or record); the trail to audit; rules and role assignments to
# security; accounts and credentials to system. The audit duty also reads the register (who holds
# what, which requests were decided how), never the content. An action with no duty is never
# decided by a policy rule (signing in, the public seal check, the expiry sweep).
ACTION_DUTIES: MappingProxyType[Action, frozenset[Duty]] = MappingProxyType(
    {
        action: frozenset(duties)
        for action, duties in {
            Action.AUTH_LOGIN: (),
            Action.AUTH_LOGOUT: (),
            Action.AUTH_TOKEN: (),
            # A refused bearer token is recorded, never decided by a rule.
            Action.AUTH_BEARER: (),
            Action.AUTH_SET_PASSWORD: (),
            Action.AUTH_CHANGE_PASSWORD: (),
            Action.USER_CREATE: (_Y,),
            # The security duty sees the accounts it assigns roles to.
            Action.USER_LIST: (_Y, _S),
            Action.USER_DISABLE: (_Y,),
            Action.USER_ENABLE: (_Y,),
            Action.USER_RESET: (_Y,),
            # Ending a lockout after failed logins is a credentials matter.
            Action.USER_UNLOCK: (_Y,),
            Action.USER_CONFIRM: (_S,),
            # The audit duty reads the rules it audits; only the security duty changes them.
            Action.POLICY_LIST: (_S, _A),
            Action.POLICY_ADD: (_S,),
            Action.POLICY_REMOVE: (_S,),
            Action.ROLE_ASSIGN: (_S,),
            Action.ROLE_UNASSIGN: (_S,),
            Action.AGREEMENT_CREATE: (_O,),
            Action.AGREEMENT_LIST: (_V, _O, _A),
            Action.AGREEMENT_READ: (_V, _O, _A),
            Action.AGREEMENT_TERMINATE: (_O,),
            Action.ITEM_CREATE: (_O,),
            Action.ITEM_LIST: (_V, _O, _A),
            Action.ITEM_READ: (_V, _O),
            Action.ITEM_DECLASSIFY: (_O,),
            Action.ITEM_DESTROY: (_O,),
            # The office registers the vendor lead's own NDA and need-to-know (nobody grants
            # access to themselves), so both sides hold these.
            Action.NDA_CREATE: (_V, _O),
            Action.NDA_LIST: (_V, _O, _A),
            Action.NDA_RENEW: (_V, _O),
            Action.NTK_GRANT: (_V, _O),
            Action.NTK_LIST: (_V, _O, _A),
            Action.NTK_REVOKE: (_V, _O),
            Action.SUBCONTRACTOR_CREATE: (_V,),
            Action.SUBCONTRACTOR_LIST: (_V, _O, _A),
            Action.SUBCONTRACTOR_ROTATE: (_V,),
            Action.SUBCONTRACTOR_REVOKE: (_V, _O),
            Action.SUBCONTRACTOR_REPORT: (_V, _O, _A),
            # clause 3.5 + 3.7: the office reviews and decides a record; the lead takes its token.
            Action.SUBCONTRACTOR_REVIEW: (_O,),
            Action.SUBCONTRACTOR_APPROVE: (_O,),
            Action.SUBCONTRACTOR_DENY: (_O,),
            Action.SUBCONTRACTOR_TOKEN: (_V,),
            Action.SHARED_READ: (_H,),
            Action.DISCLOSURE_CREATE: (_V,),
            Action.DISCLOSURE_LIST: (_V, _O, _A),
            Action.DISCLOSURE_READ: (_V, _O, _A),
            Action.DISCLOSURE_EDIT: (_V,),
            Action.DISCLOSURE_SUBMIT: (_V,),
            Action.DISCLOSURE_REVIEW: (_O,),
            Action.DISCLOSURE_APPROVE: (_O,),
            Action.DISCLOSURE_DENY: (_O,),
            Action.DISCLOSURE_WITHDRAW: (_V,),
            Action.DISCLOSURE_EXPIRE: (),
            Action.GRANT_ISSUE: (_V,),
            Action.GRANT_LIST: (_V, _O, _A),
            Action.GRANT_REVOKE: (_V, _O),
            Action.SEAL_CHECK: (),
            Action.RECALL_CREATE: (_O,),
            Action.RECALL_LIST: (_V, _O, _A),
            Action.RECALL_CONFIRM: (_V,),
            Action.BREACH_CREATE: (_O,),
            Action.BREACH_LIST: (_V, _O, _A),
            Action.OUTBOX_LIST: (_V, _O, _A),
            # Mailing the outbox is the local operator's (`govern outbox send`), under no rule.
            Action.OUTBOX_SEND: (),
            Action.AUDIT_SEARCH: (_A,),
            Action.AUDIT_VERIFY: (_A,),
            Action.AUDIT_EXPORT: (_A,),
            Action.AUDIT_CHECKPOINT: (_A,),
            # The office's keys are credentials: the system duty's.
            Action.KEY_ROTATE: (_Y,),
            # So are the keys of the witnesses the office trusts to co-sign its trail.
            Action.WITNESS_ADD: (_Y,),
            # A witness co-signs by its key, under no rule (the route checks the signature).
            Action.WITNESS_COSIGN: (),
        }.items()
    }
)

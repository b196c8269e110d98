"""Audit actions: a typed enum of "domain:action" strings. Handlers never build action names.

The part after the colon is also the casbin action, and the part before it the casbin object kind,
so one name says both what was attempted and which rule decides it.
"""

from __future__ import annotations

from enum import StrEnum


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
    USER_RESET = "user:reset"
    USER_UNLOCK = "user:unlock"
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
    KEY_ROTATE = "key:rotate"

    @property
    def kind(self) -> str:
        return self.value.split(":", 1)[0]

    @property
    def verb(self) -> str:
        return self.value.split(":", 1)[1]

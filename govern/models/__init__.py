"""Typed ORM models, one module per domain. Importing this package registers every table."""

from govern.models.accounts import LoginThrottle, PasswordLink, ShownOnce, User
from govern.models.agreements import Agreement, Item
from govern.models.audit import (
    AuditCheckpoint,
    AuditCosignature,
    AuditEntry,
    AuditHead,
    AuditQueued,
    AuditTreeCheckpoint,
    AuditTreeNode,
    AuditWitness,
)
from govern.models.denials import DenialCounter
from govern.models.disclosures import Disclosure, DisclosureEditor, DisclosureItem, Grant
from govern.models.outbox import OutboxMessage
from govern.models.policy import CasbinRule, PolicyState
from govern.models.recalls import Breach, Recall, ReturnConfirmation
from govern.models.vendor import Nda, NeedToKnow, Subcontractor, SubcontractorScope

__all__ = [
    "Agreement",
    "AuditCheckpoint",
    "AuditCosignature",
    "AuditEntry",
    "AuditHead",
    "AuditQueued",
    "AuditTreeCheckpoint",
    "AuditTreeNode",
    "AuditWitness",
    "Breach",
    "CasbinRule",
    "DenialCounter",
    "Disclosure",
    "DisclosureEditor",
    "DisclosureItem",
    "Grant",
    "Item",
    "LoginThrottle",
    "Nda",
    "NeedToKnow",
    "OutboxMessage",
    "PasswordLink",
    "PolicyState",
    "Recall",
    "ReturnConfirmation",
    "ShownOnce",
    "Subcontractor",
    "SubcontractorScope",
    "User",
]

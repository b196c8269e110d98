"""The decision point's casbin half: role x domain x kind of object x action.

The model and the starting rules live in ``policies/``; the live rules live in the database
(``casbin_rule``, which govern writes itself and reads back without an adapter). Each process
keeps one enforcer and a small decision cache, and moves both on when ``policy_state.version``
moves, which every policy change bumps in its own transaction, so a change reaches every worker
on its next decision.

p rows stay few (roles x actions x kinds): per-object facts never become policy rows. g rows are
one per account (and per agreement role), so a city's worth of accounts means tens of thousands:
``policy_store`` reads them once and afterwards only what changed, so the first request after a
change costs about what any other does.
"""

from __future__ import annotations

import csv
import logging
import threading
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

import casbin
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from govern.actions import ROLE_DUTY, Duty
from govern.config import POLICY_DIR
from govern.messages import Msg
from govern.models import CasbinRule, PolicyState
from govern.models.policy import RULE_COLUMNS
from govern.policy_store import VERSION, RuleSet

log = logging.getLogger(__name__)


def _roles_of(*duties: Duty) -> frozenset[str]:
    """The roles of these duties, as govern.actions.ROLE_DUTY (the one list) assigns them."""
    return frozenset(role for role, duty in ROLE_DUTY.items() if duty in duties)


OFFICE_ROLES = _roles_of(Duty.OFFICE)
VENDOR_ROLES = _roles_of(Duty.VENDOR)
# 三员分立: the three administrators' roles, each its own duty.
ADMIN_TRIAD = _roles_of(Duty.AUDIT, Duty.SECURITY, Duty.SYSTEM)
ACCOUNT_ROLES = OFFICE_ROLES | VENDOR_ROLES | ADMIN_TRIAD
# Token holders are not accounts: their casbin subject is the role itself.
TOKEN_ROLES = _roles_of(Duty.HOLDER)
ROLES = ACCOUNT_ROLES | TOKEN_ROLES
GLOBAL = "*"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str
    role: str | None


def default_rules() -> list[list[str]]:
    """The rules in ``policies/policy.csv``, each as [ptype, v0, v1, ...]."""
    rows = []
    with open(POLICY_DIR / "policy.csv", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if not row or row[0].lstrip().startswith("#"):
                continue
            rows.append([cell.strip() for cell in row])
    return rows


def seed_rules(session: Session) -> int:
    """Load the file rules into an empty rule table (``govern init``). Returns rows added."""
    if session.scalar(select(CasbinRule.id).limit(1)) is not None:
        return 0
    # One set-based insert, not an object per rule (a fresh database per test pays for this).
    rows = [dict(zip_longest(RULE_COLUMNS, row)) for row in default_rules()]
    session.execute(insert(CasbinRule), rows)
    bump_version(session)
    return len(rows)


def bump_version(session: Session) -> None:
    state = session.get(PolicyState, 1)
    if state is None:
        session.add(PolicyState(id=1, version=1))
    else:
        session.execute(
            update(PolicyState).where(PolicyState.id == 1).values(version=PolicyState.version + 1)
        )


def current_version(session: Session) -> int:
    return session.scalar(VERSION) or 0


def assign_role(session: Session, username: str, role: str, domain: str = GLOBAL) -> None:
    session.add(CasbinRule(ptype="g", v0=username, v1=role, v2=domain))
    bump_version(session)


def unassign_role(session: Session, username: str, role: str, domain: str = GLOBAL) -> int:
    result = session.execute(
        delete(CasbinRule).where(
            CasbinRule.ptype == "g",
            CasbinRule.v0 == username,
            CasbinRule.v1 == role,
            CasbinRule.v2 == domain,
        )
    )
    bump_version(session)
    return result.rowcount


def roles_in_table(session: Session, username: str) -> set[str]:
    """Every role the rule table gives ``username`` in any domain (for separation of duties)."""
    return set(
        session.scalars(
            select(CasbinRule.v1).where(CasbinRule.ptype == "g", CasbinRule.v0 == username)
        )
    )


@dataclass
class _Snapshot:
    """One version of the rules and the verdicts computed on it, together.

    The engine swaps whole snapshots with one assignment, so a verdict computed on an old
    enforcer can only ever land in the old snapshot's cache, never in the new one's.
    """

    version: int
    rules: RuleSet | None
    cache: dict[tuple, Verdict | bool] = field(default_factory=dict)
    roles: dict[tuple, tuple[str, ...]] = field(default_factory=dict)

    @property
    def enforcer(self) -> casbin.Enforcer:
        return self.rules.enforcer


class PolicyEngine:
    """One per process: a casbin enforcer over the database rules, moved on when they change."""

    CACHE_LIMIT = 50_000

    def __init__(self, engine: Engine, model_path: Path | None = None):
        self._engine = engine
        self._model_path = str(model_path or POLICY_DIR / "model.conf")
        self._lock = threading.Lock()
        self._snapshot = _Snapshot(-1, None)

    @property
    def version(self) -> int:
        return self._snapshot.version

    def refresh(self, session: Session, version: int | None = None) -> None:
        """Catch up when the policy version in the database moved (one primary-key read, unless
        the caller read the ``version`` in this transaction already)."""
        if version is None:
            version = current_version(session)
        if version != self._snapshot.version:
            with self._lock:
                if version != self._snapshot.version:
                    self._snapshot = self._catch_up(self._snapshot.rules)

    def _catch_up(self, held: RuleSet | None) -> _Snapshot:
        # The rules are read on a connection of their own, which sees only committed rows:
        # remember the committed version read before them, not the session's (which may be an
        # uncommitted bump, e.g. a role just assigned in this very transaction; caching that
        # would keep the old rules for good). A change committed between the two reads only
        # makes the next request catch up once more. The first load reads the whole table; after
        # that only what changed is read and applied to a copy (policy_store.RuleSet.advance).
        with self._engine.connect() as conn:
            rules = (
                held.advance(conn, self._model_path)
                if held
                else RuleSet.load(conn, self._model_path)
            )
        log.info("policy loaded, version %s", rules.version)
        return _Snapshot(rules.version, rules)

    @staticmethod
    def _remember(store: dict, key: tuple, value) -> None:
        if len(store) >= PolicyEngine.CACHE_LIMIT:
            store.clear()
        store[key] = value

    def check(self, subject: str, domain: str, kind: str, action: str) -> Verdict:
        snap = self._snapshot  # one read: the verdict is computed and cached on the same rules
        key = (subject, domain, kind, action)
        verdict = snap.cache.get(key)
        if verdict is None:
            allowed, explain = snap.enforcer.enforce_ex(subject, domain, kind, action)
            if allowed and explain:
                verdict = Verdict(True, "p, " + ", ".join(explain), explain[0])
            else:
                verdict = Verdict(False, Msg("rule.none"), None)
            self._remember(snap.cache, key, verdict)
        return verdict

    def may_ever(self, subject: str, kind: str, action: str) -> bool:
        """Does any role the subject holds, in any domain, have a rule for this action?"""
        snap = self._snapshot
        key = ("ever", subject, kind, action)
        found = snap.cache.get(key)
        if found is None:
            if subject in TOKEN_ROLES:
                pairs = {(subject, GLOBAL)}
            else:
                pairs = snap.rules.links.held_by(subject)
            found = any(snap.enforcer.enforce(role, dom, kind, action) for role, dom in pairs)
            self._remember(snap.cache, key, found)
        return found

    def roles(self, subject: str, domain: str) -> tuple[str, ...]:
        snap = self._snapshot
        key = (subject, domain)
        found = snap.roles.get(key)
        if found is None:
            if subject in TOKEN_ROLES:
                found = (subject,)
            else:
                links = snap.rules.links
                names = set(links.get_roles(subject, GLOBAL))
                if domain != GLOBAL:
                    names |= set(links.get_roles(subject, domain))
                found = tuple(sorted(names))
            self._remember(snap.roles, key, found)
        return found

    def scope(self, subject: str, kind: str, action: str) -> tuple[Verdict, dict[str, Verdict]]:
        """Where the subject may do the action, for a page that lists across agreements: the
        verdict in the global domain (which, when it allows, allows in every domain), and when it
        denies, the allowing verdicts of the single domains the subject's own role links or the
        action's rules name (the only domains a narrower rule can allow it in). Costs the subject's
        links and the action's rules, never the number of agreements."""
        snap = self._snapshot
        key = ("scope", subject, kind, action)
        found = snap.cache.get(key)
        if found is None:
            overall = self.check(subject, GLOBAL, kind, action)
            domains: dict[str, Verdict] = {}
            if not overall.allowed and subject not in TOKEN_ROLES:
                named = {dom for _role, dom in snap.rules.links.held_by(subject)}
                rules = snap.enforcer.get_model().model["p"]["p"].policy
                named |= {r[1] for r in rules if r[2:4] == [kind, action]}
                for dom in sorted(named - {GLOBAL}):
                    verdict = self.check(subject, dom, kind, action)
                    if verdict.allowed:
                        domains[dom] = verdict
            found = (overall, domains)
            self._remember(snap.cache, key, found)
        return found

    def roles_anywhere(self, subject: str) -> frozenset[str]:
        """The roles the subject holds in any domain (which panels a page draws for it)."""
        if subject in TOKEN_ROLES:
            return frozenset({subject})
        return frozenset(role for role, _dom in self._snapshot.rules.links.held_by(subject))

"""The decision point's casbin half: role x domain x kind of object x action.

The model and the starting rules live in ``policies/``; the live rules live in the database
(``casbin_rule``, which govern writes itself and reads back with one plain query). Each process
keeps one enforcer and a small decision cache, and rebuilds both when ``policy_state.version``
moves, which every policy change bumps in its own transaction, so a change reaches every worker on
its next decision.

p rows stay few (roles x actions x kinds): per-object facts never become policy rows. g rows are
one per account (and per agreement role), so a city's worth of accounts means tens of thousands:
the role links are held by ``DomainRoles``, which builds them in time linear in the rows.
"""

from __future__ import annotations

import csv
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import casbin
from casbin.rbac import RoleManager
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from govern.config import POLICY_DIR
from govern.models import CasbinRule, PolicyState

log = logging.getLogger(__name__)

OFFICE_ROLES = frozenset({"office_handler", "office_approver"})
VENDOR_ROLES = frozenset({"vendor_lead", "vendor_staff"})
# 三员分立: no account holds two of these.
ADMIN_TRIAD = frozenset({"system_admin", "security_admin", "auditor"})
ACCOUNT_ROLES = OFFICE_ROLES | VENDOR_ROLES | ADMIN_TRIAD
# Token holders are not accounts: their casbin subject is the role itself.
TOKEN_ROLES = frozenset({"third_party", "subcontractor"})
ROLES = ACCOUNT_ROLES | TOKEN_ROLES
GLOBAL = "*"

# Separation of duties that no policy edit may undo: admins never read items or decide requests.
FORBIDDEN_FOR_ADMINS = frozenset(
    {
        ("item", "read"),
        ("shared", "read"),
        ("disclosure", "approve"),
        ("disclosure", "review"),
        ("disclosure", "deny"),
        ("agreement", "terminate"),
    }
)


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
    for row in default_rules():
        session.add(CasbinRule(ptype=row[0], **{f"v{i}": v for i, v in enumerate(row[1:])}))
    bump_version(session)
    return len(default_rules())


def bump_version(session: Session) -> None:
    state = session.get(PolicyState, 1)
    if state is None:
        session.add(PolicyState(id=1, version=1))
    else:
        session.execute(
            update(PolicyState).where(PolicyState.id == 1).values(version=PolicyState.version + 1)
        )


# Read on every request (see PolicyEngine.refresh): built once.
_VERSION = select(PolicyState.version).where(PolicyState.id == 1)


def current_version(session: Session) -> int:
    return session.scalar(_VERSION) or 0


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


class DomainRoles(RoleManager):
    """The g rows as plain indexes: for each domain, each user's roles and each role's users.

    pycasbin's DomainManager builds, on the first decision in a domain, a RoleManager whose
    default name-matching function (plain equality) makes every added link scan every role
    already known: quadratic in the accounts (91 s at 10,000, past any worker timeout). govern
    matches names and domains exactly, so a link is two set insertions and a rebuild is linear.
    The answers are the DomainManager's: ``has_link`` follows links breadth first within one
    domain, a name always has itself, and at most ``max_hierarchy_level`` levels are searched.
    """

    def __init__(self, max_hierarchy_level: int = 10):
        self.max_hierarchy_level = max_hierarchy_level
        self.clear()

    def clear(self) -> None:
        self._roles: dict[str, dict[str, set[str]]] = {}  # domain -> user -> roles
        self._users: dict[str, dict[str, set[str]]] = {}  # domain -> role -> users
        self._domains: dict[str, set[tuple[str, str]]] = {}  # user -> {(role, domain)}

    def add_link(self, name1: str, name2: str, *domain: str) -> None:
        dom = _one_domain(domain)
        self._roles.setdefault(dom, {}).setdefault(name1, set()).add(name2)
        self._users.setdefault(dom, {}).setdefault(name2, set()).add(name1)
        self._domains.setdefault(name1, set()).add((name2, dom))

    def delete_link(self, name1: str, name2: str, *domain: str) -> None:
        dom = _one_domain(domain)
        self._roles.get(dom, {}).get(name1, set()).discard(name2)
        self._users.get(dom, {}).get(name2, set()).discard(name1)
        self._domains.get(name1, set()).discard((name2, dom))

    def has_link(self, name1: str, name2: str, *domain: str) -> bool:
        if name1 == name2:
            return True
        links = self._roles.get(_one_domain(domain))
        if not links:
            return False
        seen, frontier = {name1}, {name1}
        for _ in range(self.max_hierarchy_level - 1):
            reached = set()
            for name in frontier:
                reached |= links.get(name, set())
            if name2 in reached:
                return True
            frontier = reached - seen
            if not frontier:
                return False
            seen |= frontier
        return False

    def get_roles(self, name: str, *domain: str) -> list[str]:
        return sorted(self._roles.get(_one_domain(domain), {}).get(name, ()))

    def get_users(self, name: str, *domain: str) -> list[str]:
        return sorted(self._users.get(_one_domain(domain), {}).get(name, ()))

    def roles_everywhere(self, name: str) -> set[tuple[str, str]]:
        """Every (role, domain) the name is linked to directly, without a scan of all g rows."""
        return set(self._domains.get(name, ()))

    def add_matching_func(self, fn) -> None:
        raise NotImplementedError("govern matches role names exactly")

    def add_domain_matching_func(self, fn) -> None:
        raise NotImplementedError("govern matches domains exactly")

    def print_roles(self) -> None:
        pass


def _one_domain(domain: tuple[str, ...]) -> str:
    if len(domain) > 1:
        raise RuntimeError("error: domain should be 1 parameter")
    return domain[0] if domain else ""


# Every rule in insertion order: the first allowing p row is the rule an audit entry names.
_RULES = select(
    CasbinRule.ptype,
    CasbinRule.v0,
    CasbinRule.v1,
    CasbinRule.v2,
    CasbinRule.v3,
    CasbinRule.v4,
    CasbinRule.v5,
).order_by(CasbinRule.id)


def load_enforcer(conn: Connection, model_path: str) -> casbin.Enforcer:
    """An enforcer over the rules ``conn`` sees, with ``DomainRoles`` holding the g rows.

    No adapter: govern writes the rule table itself (services/policies.py), and reading plain
    tuples is several times cheaper than the adapter's one ORM object and one text line per row.
    The values are the ones the adapter produced (non-null columns, in order); none can contain
    a comma or surrounding spaces, since every value is a role, a domain, an action word or a
    username, each checked against a pattern before it is written.
    """
    enforcer = casbin.Enforcer(model_path)
    roles = DomainRoles()
    enforcer.set_role_manager(roles)
    sections = enforcer.get_model().model
    for ptype, *values in conn.execute(_RULES):
        section = sections.get((ptype or " ")[0], {})
        if ptype in section:
            section[ptype].policy.append([v for v in values if v is not None])
    enforcer.build_role_links()
    return enforcer


class PolicyEngine:
    """One per process: a casbin enforcer over the database rules, rebuilt when they change."""

    CACHE_LIMIT = 50_000

    def __init__(self, engine: Engine, model_path: Path | None = None):
        self._engine = engine
        self._model_path = str(model_path or POLICY_DIR / "model.conf")
        self._lock = threading.Lock()
        self._enforcer: casbin.Enforcer | None = None
        self._links: DomainRoles | None = None
        self._version = -1
        self._cache: dict[tuple, Verdict] = {}
        self._roles: dict[tuple, tuple[str, ...]] = {}

    def refresh(self, session: Session) -> None:
        """Rebuild when the policy version in the database moved (one primary-key read)."""
        version = current_version(session)
        if version != self._version:
            with self._lock:
                if version != self._version:
                    self._reload()

    def _reload(self) -> None:
        # The rules are read on a connection of their own, which sees only committed rows:
        # remember the committed version read before them, not the session's (which may be an
        # uncommitted bump, e.g. a role just assigned in this very transaction; caching that
        # would keep the old rules for good). A change committed between the two reads only
        # makes the next request rebuild once more.
        with self._engine.connect() as conn:
            committed = conn.scalar(_VERSION)
            enforcer = load_enforcer(conn, self._model_path)
        # The new enforcer is complete before it is published: a decision running meanwhile in
        # another thread sees the old rules or the new ones, never half of either.
        self._enforcer, self._links = enforcer, enforcer.get_role_manager()
        self._cache = {}
        self._roles = {}
        self._version = committed or 0
        log.info("policy loaded, version %s", self._version)

    def check(self, subject: str, domain: str, kind: str, action: str) -> Verdict:
        key = (subject, domain, kind, action)
        verdict = self._cache.get(key)
        if verdict is None:
            allowed, explain = self._enforcer.enforce_ex(subject, domain, kind, action)
            if allowed and explain:
                verdict = Verdict(True, "p, " + ", ".join(explain), explain[0])
            else:
                verdict = Verdict(False, "no matching policy rule", None)
            if len(self._cache) >= self.CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = verdict
        return verdict

    def may_ever(self, subject: str, kind: str, action: str) -> bool:
        """Does any role the subject holds, in any domain, have a rule for this action?"""
        key = ("ever", subject, kind, action)
        found = self._cache.get(key)
        if found is None:
            if subject in TOKEN_ROLES:
                pairs = [(subject, GLOBAL)]
            else:
                pairs = self._links.roles_everywhere(subject)
            found = any(self._enforcer.enforce(role, dom, kind, action) for role, dom in pairs)
            self._cache[key] = found
        return found

    def roles(self, subject: str, domain: str) -> tuple[str, ...]:
        key = (subject, domain)
        found = self._roles.get(key)
        if found is None:
            if subject in TOKEN_ROLES:
                found = (subject,)
            else:
                names = set(self._enforcer.get_roles_for_user_in_domain(subject, GLOBAL))
                if domain != GLOBAL:
                    names |= set(self._enforcer.get_roles_for_user_in_domain(subject, domain))
                found = tuple(sorted(names))
            if len(self._roles) >= self.CACHE_LIMIT:
                self._roles.clear()
            self._roles[key] = found
        return found

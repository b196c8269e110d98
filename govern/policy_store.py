"""The rule table as casbin sees it: read whole once, then only by what changed.

A city's worth of accounts is tens of thousands of g rows (one per account, one per agreement
role), and every new account is a policy change that each worker must see on its next request.
Two costs made that request slow, and both are gone here:

- pycasbin's DomainManager builds, on the first decision in a domain, a RoleManager whose default
  name-matching function (plain equality) makes every added link scan every role already known:
  quadratic in the accounts (0.74 s at 1,000, 91 s at 10,000, past any worker timeout).
  ``DomainRoles`` keeps the links in plain indexes, so a link costs a few dictionary writes.
- Rebuilding from the whole table reads and indexes every row again. ``RuleSet.advance`` reads
  only the rows added since the last look (one range read on the primary key, plus a count that
  proves nothing else moved) and derives the next enforcer from the previous one, sharing
  everything the change leaves alone. Anything else (a rule removed) is found by comparing the
  whole table with the rules held, still without rebuilding what did not change.

Every enforcer made here is new and complete before anyone decides on it; the one before it is
never written to, so a decision in flight finishes on the rules it started with.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import casbin
from casbin.rbac import RoleManager
from casbin.util.expression import SimpleEval
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from govern.models import CasbinRule, PolicyState

# A rule as the adapter used to hand it to casbin: ptype, then the non-null values in order.
Line = tuple[str, ...]


class DomainRoles(RoleManager):
    """The g rows as plain indexes: in each domain, each user's roles and each role's users.

    The answers are pycasbin DomainManager's, for the exact matching govern uses (names and
    domains compared as they are): ``has_link`` follows links breadth first within one domain, a
    name always has itself, and at most ``max_hierarchy_level`` levels are searched.

    Copy-on-write: sets are replaced, never changed in place, and ``clone()`` shares every
    domain's index until the clone first writes to it, so a clone that gains one link costs a
    copy of one domain's index, not of all of them.
    """

    def __init__(self, max_hierarchy_level: int = 10):
        self.max_hierarchy_level = max_hierarchy_level
        self.clear()

    def clear(self) -> None:
        self._roles: dict[str, dict[str, frozenset[str]]] = {}  # domain -> user -> roles
        self._users: dict[str, dict[str, frozenset[str]]] = {}  # domain -> role -> users
        self._held: dict[str, frozenset[tuple[str, str]]] = {}  # user -> {(role, domain)}
        self._own: set[tuple[str, str]] = set()  # the inner indexes this instance made itself

    def clone(self) -> DomainRoles:
        twin = DomainRoles(self.max_hierarchy_level)
        twin._roles, twin._users, twin._held = (
            dict(self._roles),
            dict(self._users),
            dict(self._held),
        )
        return twin

    def _index(self, which: str, domain: str) -> dict[str, frozenset[str]]:
        top = self._roles if which == "roles" else self._users
        if (which, domain) not in self._own:
            top[domain] = dict(top.get(domain, {}))
            self._own.add((which, domain))
        return top[domain]

    def add_link(self, name1: str, name2: str, *domain: str) -> None:
        dom = _one_domain(domain)
        roles, users = self._index("roles", dom), self._index("users", dom)
        roles[name1] = roles.get(name1, frozenset()) | {name2}
        users[name2] = users.get(name2, frozenset()) | {name1}
        self._held[name1] = self._held.get(name1, frozenset()) | {(name2, dom)}

    def delete_link(self, name1: str, name2: str, *domain: str) -> None:
        dom = _one_domain(domain)
        roles, users = self._index("roles", dom), self._index("users", dom)
        roles[name1] = roles.get(name1, frozenset()) - {name2}
        users[name2] = users.get(name2, frozenset()) - {name1}
        self._held[name1] = self._held.get(name1, frozenset()) - {(name2, dom)}

    def has_link(self, name1: str, name2: str, *domain: str) -> bool:
        if name1 == name2:
            return True
        links = self._roles.get(_one_domain(domain))
        if not links:
            return False
        seen, frontier = {name1}, {name1}
        for _ in range(self.max_hierarchy_level - 1):
            reached: set[str] = set()
            for name in frontier:
                reached |= links.get(name, frozenset())
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

    def held_by(self, name: str) -> frozenset[tuple[str, str]]:
        """Every (role, domain) linked to ``name`` directly, without a scan of the g rows."""
        return self._held.get(name, frozenset())

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


_COLUMNS = (CasbinRule.ptype, CasbinRule.v0, CasbinRule.v1, CasbinRule.v2, CasbinRule.v3)
_EXTRA = (CasbinRule.v4, CasbinRule.v5)
# In insertion order: the first allowing p row is the rule an audit entry names.
_ALL = select(CasbinRule.id, *_COLUMNS, *_EXTRA).order_by(CasbinRule.id)
_IDS = select(CasbinRule.id)
_COUNT = select(func.count()).select_from(CasbinRule)
# Read on every request (see PolicyEngine.refresh): built once.
VERSION = select(PolicyState.version).where(PolicyState.id == 1)


def version(conn: Connection) -> int:
    return conn.scalar(VERSION) or 0


def read_rules(conn: Connection, since: int | None = None) -> dict[int, Line]:
    """The rules ``conn`` sees (those with ``id >= since`` if given), by id, in id order.

    The values are what pycasbin's adapter produced (the non-null columns, in order; none can
    hold a comma or surrounding spaces, since each is a role, a domain, an action word or a
    username, checked against a pattern before it is written)."""
    query = _ALL if since is None else _ALL.where(CasbinRule.id >= since)
    return {row[0]: tuple(v for v in row[1:] if v is not None) for row in conn.execute(query).all()}


Changes = tuple[dict[int, Line], dict[int, Line]]  # (added, removed), by id


def one_step(conn: Connection, held: dict[int, Line]) -> Changes:
    """What one change transaction did to the rules ``held``, read in time proportional to it.

    Every writer of the rule table (policy.assign_role and unassign_role, services/policies.py)
    inserts rules or deletes them in a transaction that bumps the version, and never updates one
    in place; a new row's id is larger than every id present when it is written (a sequence on
    PostgreSQL, max(rowid) + 1 on SQLite). So after one step: when the newest row held is still
    there unchanged and the count is the rows held plus those past it, the step only added those
    (one range read on the primary key and a count); otherwise it only deleted, and the ids
    alone say which. SQLite gives a deleted newest row's id to the next row inserted: that takes
    a deletion and an insertion, two steps for govern's writers (compared whole, see
    ``RuleSet.advance``); a hand edit doing both in one transaction is caught here when the
    newest id held comes back with other values, and anything else unclear is compared whole.
    """
    top = max(held, default=0)
    fresh = read_rules(conn, since=top)
    newest = fresh.pop(top, None)
    count = conn.scalar(_COUNT)
    if newest == held.get(top) and count == len(held) + len(fresh):
        return fresh, {}
    present = set(conn.scalars(_IDS).all())
    if newest is not None or fresh or count != len(present) or not present <= held.keys():
        return compare(conn, held)  # not a plain deletion (e.g. the newest id given again)
    return {}, {i: held[i] for i in held.keys() - present}


def compare(conn: Connection, held: dict[int, Line]) -> Changes:
    """How the whole table differs from the rules ``held`` (any number of steps, in any order)."""
    now = read_rules(conn)
    added = {i: line for i, line in now.items() if held.get(i) != line}
    removed = {i: line for i, line in held.items() if now.get(i) != line}
    return added, removed


@dataclass(frozen=True)
class RuleSet:
    """One version of the rules: the rows by id, and the enforcer and role links made of them.

    Never changed once made: ``advance`` makes the next one, sharing what did not change.
    ``version`` is the policy version the rules are at least as new as (read before them)."""

    version: int
    rules: dict[int, Line]
    enforcer: Enforcer
    links: DomainRoles

    @classmethod
    def load(cls, conn: Connection, model_path: str) -> RuleSet:
        """Everything ``conn`` sees, built in time linear in the rows."""
        at = version(conn)
        rules = read_rules(conn)
        policies: dict[str, list[list[str]]] = {"p": [], "g": []}
        links = DomainRoles()
        for line in rules.values():
            policies[line[0]].append(list(line[1:]))
            if line[0] == "g":
                links.add_link(*line[1:4])
        return cls(at, rules, _enforcer(model_path, policies, links), links)

    def advance(self, conn: Connection, model_path: str) -> RuleSet:
        """The rules ``conn`` sees now, made from this set and the rows that changed.

        One step since this set (the usual case: a worker serves requests between changes) is
        read by ``one_step``, if no other step lands while it reads (the version read again
        after the rows says so); anything else is a comparison of the whole table."""
        at = version(conn)
        if at == self.version:
            return self
        added, removed = one_step(conn, self.rules) if at == self.version + 1 else (None, None)
        if added is None or version(conn) != at:
            added, removed = compare(conn, self.rules)
        if not added and not removed:
            return RuleSet(at, self.rules, self.enforcer, self.links)
        rules = dict(self.rules)  # a copy in C: a comprehension over the rows costs 50x more
        for i in removed:
            del rules[i]
        rules.update(sorted(added.items()))
        links = self.links.clone()
        policies = {}
        for ptype in ("p", "g"):
            gone = {line[1:] for line in removed.values() if line[0] == ptype}
            new = [list(line[1:]) for _, line in sorted(added.items()) if line[0] == ptype]
            old = self.enforcer.get_model().model[ptype][ptype].policy
            if gone:
                old = [rule for rule in old if tuple(rule) not in gone]
            policies[ptype] = old + new
            if ptype == "g":
                for line in gone:
                    links.delete_link(*line[:3])
                for rule in new:
                    links.add_link(*rule[:3])
        return RuleSet(at, rules, _enforcer(model_path, policies, links), links)


class Enforcer(casbin.Enforcer):
    """casbin's enforcer, with its matcher parsed once instead of on every decision.

    casbin builds the matcher's evaluator with ``ast.parse`` on every ``enforce`` call. CPython
    3.11 keeps the AST constructor's recursion counter in state that every thread shares, so two
    threads parsing at once can fail with ``SystemError: AST constructor recursion depth
    mismatch`` (python/cpython#106905). That failed a decision in a test whose threads decide
    while the rules change. Here each matcher is parsed once per process, under a lock. Each
    call still gets an evaluator of its own, because the evaluator holds the request's values
    while it runs."""

    _parsed: dict[str, tuple[str, object]] = {}
    _parsing = threading.Lock()

    @staticmethod
    def _get_expression(expr, functions=None):
        parsed = Enforcer._parsed.get(expr)
        if parsed is None:
            with Enforcer._parsing:
                parsed = Enforcer._parsed.get(expr)
                if parsed is None:
                    once = casbin.Enforcer._get_expression(expr)
                    parsed = Enforcer._parsed[expr] = (once.expr, once.ast_parsed_value)
        evaluator = SimpleEval("", functions)
        evaluator.expr, evaluator.ast_parsed_value = parsed
        return evaluator


def _enforcer(model_path: str, policies: dict[str, list[list[str]]], links: DomainRoles):
    """A new enforcer holding ``policies`` (its own lists) with ``links`` as its role manager.

    No adapter: govern writes the rule table itself and reads it here."""
    enforcer = Enforcer(model_path)
    model = enforcer.get_model().model
    for ptype, rows in policies.items():
        model[ptype][ptype].policy = rows
    enforcer.set_role_manager(links)
    model["g"]["g"].rm = links
    return enforcer

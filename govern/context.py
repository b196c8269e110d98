"""The unit of work and the decision point.

A :class:`Ctx` is one caller doing one thing: the database session, who is calling, the request
id and client address, and the audit entries queued so far. :func:`decide` is the single place a
decision is made: casbin first (may this role do this action on this kind of object in this
agreement at all), then the object's own facts (NDA valid, item protected, grant live...), each
decision queued for the trail with the rule or the reason that made it. :meth:`Ctx.commit` writes
the trail and the change in one transaction; :meth:`Ctx.fail` keeps the denials when the change
itself is rolled back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, false, select, true
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from govern import audit, denials, integrator
from govern.actions import Action
from govern.clock import OfficeClock
from govern.config import Settings
from govern.crypto import Keyring
from govern.db import driver_transaction
from govern.errors import AuditUnavailable, Conflict, Forbidden, NotFound
from govern.messages import Msg
from govern.models import Agreement
from govern.policy import GLOBAL, VENDOR_ROLES, PolicyEngine

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What one process shares between requests: settings, keys, the engine, the enforcer."""

    settings: Settings
    keys: Keyring
    engine: Engine
    sessions: sessionmaker
    policy: PolicyEngine
    # The office's calendar (settings.timezone): what day it is, where days begin and end.
    clock: OfficeClock = field(default=None)  # type: ignore[assignment]
    # This process's background integrator of the queued trail, started on first use
    # (govern.integrator.of; a forked child makes its own).
    integrator: Any = field(default=None, repr=False, compare=False)
    # Where the trail is queued (both stores; not an in-memory SQLite, which a second engine
    # would not see): an engine whose connections are in autocommit from the start, for the
    # units of work that only read (Ctx.read_only). Switching a pooled connection to autocommit
    # and back on every read cost a fifth of the read's CPU.
    autocommit_engine: Engine | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = OfficeClock(self.settings.timezone)


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``subject`` is what casbin sees: a username, or a token holder's role."""

    kind: str  # user, grant, subcontractor, anonymous
    name: str  # username, grant:<id>, subcontractor:<id>, anonymous
    subject: str
    id: int | None = None
    # The vendor organisation of a vendor account (None for the office and token holders).
    org: str | None = None

    @classmethod
    def anonymous(cls) -> Principal:
        return cls("anonymous", "anonymous", "anonymous")

    @classmethod
    def system(cls) -> Principal:
        return cls("system", "system", "system")


@dataclass(frozen=True)
class Target:
    kind: str
    id: int | str
    domain: str = GLOBAL
    # How a 404 names it when the caller reached it by another object's address.
    shown: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


# A check returns None when it holds, or the reason it failed ("no valid NDA"). Checks may also be
# given as a function of the role whose rule allowed the action (office and vendor differ).
Check = Callable[[], str | None]
Checks = Iterable[Check] | Callable[[str], Iterable[Check]]


@dataclass
class Decision:
    allowed: bool
    rule: str
    role: str | None
    entry: audit.PendingEntry
    # Denied because the object belongs to another vendor: answered as if it did not exist.
    hidden: bool = False

    def record(self, **details) -> Decision:
        """Add details (e.g. from/to state) to this decision's audit entry."""
        self.entry.details.update(details)
        return self


@dataclass
class Ctx:
    runtime: Runtime
    db: Session
    principal: Principal
    request_id: str = "-"
    client: str = "-"
    pending: list[audit.PendingEntry] = field(default_factory=list)
    # Entries that must reach the trail even when the unit of work fails (denials, bad logins).
    kept: list[audit.PendingEntry] = field(default_factory=list)
    policy_checked: bool = field(default=False, repr=False)
    # The policy version, when this unit of work already read it with something else (the
    # account behind a bearer token): the enforcer is then brought up to date without a read.
    policy_version: int | None = field(default=None, repr=False)
    # Each agreement's vendor, read once per unit of work (by primary key) for the decisions.
    vendors: dict[int, str | None] = field(default_factory=dict, repr=False)
    # A unit of work that only reads (and writes its trail entries) on a store that queues them:
    # its statements run outside a transaction (read_only()).
    autocommit: bool = field(default=False, repr=False)
    # A lookup read together with the caller's account (accounts.AlongAccount): its parameters
    # and its row, for the service that asked for it (taken once).
    along: tuple[dict, Any] | None = field(default=None, repr=False)
    # That lookup's row was remembered from an earlier request, not read (accounts.Remembered):
    # the entry is then written only while the row still holds (audit.queue_entry_while), by
    # the insert's own statement, and the unit of work writes nothing otherwise.
    known: Any = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def keys(self) -> Keyring:
        return self.runtime.keys

    def policy(self) -> PolicyEngine:
        """The enforcer, brought up to date once per unit of work: one version read per request
        (a policy change still reaches every worker on its next request), not one per decision."""
        if not self.policy_checked:
            self.runtime.policy.refresh(self.db, self.policy_version)
            self.policy_checked = True
        return self.runtime.policy

    @property
    def clock(self) -> OfficeClock:
        return self.runtime.clock

    def vendor_of(self, domain: str) -> str | None:
        """The vendor organisation of the agreement a domain names (None for the global one)."""
        if not domain.startswith("agreement:"):
            return None
        ident = int(domain.split(":", 1)[1])
        if ident not in self.vendors:
            agreement = self.db.get(Agreement, ident)
            self.vendors[ident] = agreement.vendor if agreement else None
        return self.vendors[ident]

    def today(self) -> date:
        """The office's day now (the runtime's clock)."""
        return self.runtime.clock.today()

    def roles(self, domain: str = GLOBAL) -> tuple[str, ...]:
        if self.principal.kind in ("anonymous", "system"):
            return (self.principal.kind,)
        return self.policy().roles(self.principal.subject, domain)

    def record(
        self,
        action: Action,
        target: Target | str,
        decision: str = "allow",
        rule: str = "",
        keep: bool = False,
        collapse: bool = True,
        **details,
    ) -> audit.PendingEntry:
        """Queue an audit entry. ``keep`` entries survive a rolled-back unit of work. An anonymous
        caller's entries are counted when repeated (govern.denials) unless ``collapse`` is off."""
        domain = target.domain if isinstance(target, Target) else GLOBAL
        entry = audit.PendingEntry(
            actor=self.principal.name,
            role=",".join(self.roles(domain)),
            action=str(action),
            target=str(target),
            decision=decision,
            rule=rule,
            request_id=self.request_id,
            client=self.client,
            details=details,
            collapsible=collapse and self.principal.kind == "anonymous",
        )
        (self.kept if keep else self.pending).append(entry)
        return entry

    def read_only(self) -> None:
        """Declare, before its first statement, that this unit of work changes nothing but the
        trail (an audited read). Where entries are queued its statements then run outside a
        transaction, on a connection that is in autocommit from the start: no BEGIN and no
        COMMIT around the lookups, and the entry's insert is committed (durably) as it runs,
        before the caller gets anything. A change made in such a unit is a bug and is refused
        whole at commit (nothing is written). Where entries join the chain in the unit's own
        transaction (GOVERN_TRAIL_QUEUE=0, or an SQLite before 3.35), the head's lock must span
        it: there this changes nothing."""
        if self.settings.trail_queue and audit.queues(self.db):
            if self.runtime.autocommit_engine is not None:
                # Before the session's first statement: its connection comes from this pool.
                self.db.bind = self.runtime.autocommit_engine
            else:
                self.db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            # Outside a transaction a flush commits: a changed object must stay pending until
            # commit(), which refuses it, not be sent early by a query's autoflush.
            self.db.autoflush = False
            self.autocommit = True

    def flush(self) -> None:
        """Send the change to the database now. A rule the database refuses (a duplicate that a
        concurrent request slipped in between a check and this insert) is a conflict (409)."""
        try:
            self.db.flush()
        except IntegrityError as exc:
            self.db.rollback()
            raise _conflict(exc) from exc

    def commit(self) -> None:
        """Write the queued trail and the change together, or neither (fail closed).

        The change is flushed first, so that the database refusing it is told apart from the
        trail failing: the first is a conflict (409; the denials queued so far are still
        written), the second leaves nothing done (503). On PostgreSQL the entries are queued
        (govern.audit) and committed with the change, then integrated into the chain by the
        process's integrator (or here, with GOVERN_TRAIL_INTEGRATE=inline)."""
        if self.autocommit and (self.db.new or self.db.dirty or self.db.deleted):
            self.pending.clear()
            self.kept.clear()
            self.db.expunge_all()
            raise RuntimeError("a read-only unit of work changed objects; nothing was written")
        try:
            try:
                self.flush()
            except Conflict:
                self.fail()
                raise
            queued = self._write(self.kept + self.pending)
            if not self.autocommit:
                # (Outside a transaction every statement committed as it ran: the session
                # has nothing to end, and lets its connection go when it is closed.)
                self.db.commit()
        except SQLAlchemyError as exc:
            self.db.rollback()
            log.error("audit append failed; the action was rolled back: %s", exc.__class__.__name__)
            raise AuditUnavailable(Msg("audit.unavailable")) from exc
        finally:
            self.pending.clear()
            self.kept.clear()
        if queued or self.db.info.pop(audit.HELD_HEAD, False):
            self._after_queue()

    def fail(self) -> None:
        """Roll the change back but keep the entries that record denials and failures."""
        self.db.rollback()
        kept, self.kept, self.pending = self.kept, [], []
        queued = False
        try:
            queued = bool(kept) and self._write(kept)
            self.db.commit()
        except SQLAlchemyError as exc:
            self.db.rollback()
            log.error("could not record a denial in the audit trail: %s", exc.__class__.__name__)
        if queued or self.db.info.pop(audit.HELD_HEAD, False):
            self._after_queue()

    def _write(self, entries: list[audit.PendingEntry]) -> bool:
        """Put the entries in the transaction: queued (True) or already in the chain (False)."""
        if self.autocommit and (len(entries) > 1 or any(e.collapsible for e in entries)):
            # Outside a transaction only one insert is atomic by itself: more than that (several
            # entries, an anonymous denial's counter) is written in a transaction of its own.
            with driver_transaction(self.db.connection()):
                return self._write_now(entries)
        return self._write_now(entries)

    def _write_now(self, entries: list[audit.PendingEntry]) -> bool:
        entries = denials.collapse(self.db, entries)
        if self.known is not None:
            # (only an allowed read made from a remembered row, one entry, on a queueing store)
            (entry,) = entries
            audit.queue_entry_while(self.db, entry, self.known.statement, self.known.given)
            return True
        if self.settings.trail_queue and audit.queues(self.db):
            return audit.queue_entries(self.db, entries) > 0
        audit.write_entries(
            self.db,
            entries,
            self.keys.checkpoint_key,
            self.settings.checkpoint_every,
            self.settings.checkpoint_minutes,
        )
        return False

    def _after_queue(self) -> None:
        """Entries were committed to the queue (or a held head's lock was released, which
        others may have left theirs to): have them integrated. By default only a poke of this
        process's integrator, no database work in the request; inline, integrate now."""
        if not audit.queues(self.db):
            return  # the entries joined the chain in the unit of work's transaction
        if self.settings.trail_integrate == "inline":
            self._integrate()
        else:
            integrator.poke(self.runtime)

    def _integrate(self, wait: bool = False) -> None:
        """Integrate the queued entries now, unless another worker is already at it (then that
        worker takes ours too); on a session of its own, so the unit of work's objects stay as
        they are. The action is done and its entries are durable either way: a failure here
        only leaves them queued for the next integration, so it is logged, not raised."""
        if not audit.queues(self.db):
            return
        if audit.holds_write_lock(self.db):
            audit.integrate_here(
                self.db,
                self.keys.checkpoint_key,
                self.settings.checkpoint_every,
                self.settings.checkpoint_minutes,
            )
            return
        try:
            with self.runtime.sessions() as db:
                audit.integrate(
                    db,
                    self.keys.checkpoint_key,
                    self.settings.checkpoint_every,
                    self.settings.checkpoint_minutes,
                    wait=wait,
                )
        except SQLAlchemyError as exc:
            log.error(
                "queued audit entries not integrated yet (they stay queued): %s",
                exc.__class__.__name__,
            )

    def settle_trail(self) -> None:
        """Before the trail is read: every entry queued so far joins the chain (waiting for a
        worker that is integrating), so what is read has no gap; entries that cannot join now
        stay queued, outside the head and so outside what a verification covers."""
        self._integrate(wait=True)


def _conflict(exc: IntegrityError) -> Conflict:
    """Name what collided: the constraint (PostgreSQL) or SQLite's own words for it."""
    diag = getattr(exc.orig, "diag", None)
    what = getattr(diag, "constraint_name", None) or str(exc.orig).splitlines()[0]
    log.warning("the database refused a change: %s", what)
    return Conflict(Msg("change.collides", what=what))


def decide(ctx: Ctx, action: Action, target: Target, checks: Checks = ()) -> Decision:
    """May the caller do ``action`` on ``target``? Organisation, casbin, then the object's facts.

    A vendor account is first held to its own organisation's agreements: anything of another
    vendor's agreement is denied whatever the action, and answered as if it did not exist.
    Authorization comes before state: a role that may never do the action is denied whatever
    state the object is in. Every decision is queued for the trail with its rule or reason.
    """
    allowed, rule, role, hidden = _judge(ctx, action, target, checks)
    entry = ctx.record(action, target, "allow" if allowed else "deny", rule, keep=not allowed)
    return Decision(allowed, rule, role, entry, hidden=hidden)


def can(ctx: Ctx, action: Action, target: Target, checks: Checks = ()) -> bool:
    """Would :func:`decide` allow it? The same organisation, casbin and object checks, but no
    trail entry: only for drawing a page (which tabs, buttons and links to show). The action
    itself, when taken, makes its own audited decision."""
    return _judge(ctx, action, target, checks)[0]


def _judge(
    ctx: Ctx, action: Action, target: Target, checks: Checks
) -> tuple[bool, str, str | None, bool]:
    """The verdict of :func:`decide` without its record: (allowed, rule, role, hidden)."""
    principal = ctx.principal
    hidden = other_vendor(ctx, target)
    if hidden:
        verdict_rule, role, allowed = hidden, None, False
    elif principal.kind == "system":
        # The command line is run by the host's operator, who already holds every key.
        verdict_rule, role, allowed = Msg("rule.operator"), "system", True
    elif principal.kind == "anonymous":
        verdict_rule, role, allowed = Msg("rule.anonymous"), None, False
    else:
        verdict = ctx.policy().check(principal.subject, target.domain, action.kind, action.verb)
        verdict_rule, role, allowed = verdict.rule, verdict.role, verdict.allowed
    reason = None
    if allowed:
        for check in checks(role) if callable(checks) else checks:
            reason = check()
            if reason:
                break
        reason = reason or _side_problem(principal, role)
    allowed = allowed and reason is None
    rule = verdict_rule if reason is None else because(reason, verdict_rule)
    return allowed, rule, role, bool(hidden)


def because(reason: str, basis: str) -> Msg:
    """A denial's rule as the trail keeps it: the reason, then the rule it was checked under
    ("no valid NDA (p, vendor_staff, ...)")."""
    return Msg("rule.because", reason=reason, basis=basis)


def _side_problem(principal: Principal, role: str | None) -> str | None:
    """An account acts only under the roles of its side: a vendor account (one with an
    organisation) only as vendor, an office account never as vendor. A role assigned across the
    line (stacked roles) gives nothing (fail closed)."""
    if principal.kind != "user":
        return None
    if role in VENDOR_ROLES and principal.org is None:
        return Msg("rule.vendor_role_office")
    if role not in VENDOR_ROLES and principal.org is not None:
        return Msg("rule.office_role_vendor", org=principal.org, role=role)
    return None


def other_vendor(ctx: Ctx, target: Target) -> str | None:
    """Why a vendor account may not even learn that ``target`` exists, or None.

    One fact beside casbin's rows (not a rule per agreement): the account's organisation against
    the vendor of the agreement the target lives in, read by primary key and kept per request."""
    org = ctx.principal.org
    if org is None or ctx.principal.kind != "user":
        return None
    vendor = ctx.vendor_of(target.domain)
    if target.domain == GLOBAL or vendor == org:
        return None
    return Msg("rule.other_vendor", domain=target.domain, org=org)


def not_found(target: Target) -> NotFound:
    """The answer for an object of another vendor: the same as for one that does not exist."""
    if target.shown:
        return NotFound(Msg("missing.named", what=target.shown))
    if isinstance(target.id, int):
        what = {"ntk": "need-to-know"}.get(target.kind, target.kind)
        return NotFound(Msg("missing.object", kind=what, id=target.id))
    return NotFound(Msg("missing.agreement", id=target.domain.split(":", 1)[-1]))


def overrule(ctx: Ctx, decision: Decision, reason: str, error: type = Forbidden) -> Exception:
    """Turn an allowed decision into a denial for a fact only known after it (e.g. whom the body
    names): still one trail entry, kept even though the unit of work fails, with the reason and
    the rule. Returns the exception to raise (403 by default, 409 for a state that is wrong)."""
    entry = decision.entry
    entry.decision, entry.rule = "deny", because(reason, decision.rule)
    decision.allowed, decision.rule = False, entry.rule
    if entry in ctx.pending:
        ctx.pending.remove(entry)
        ctx.kept.append(entry)
    return error(Msg("denied", rule=reason), rule=entry.rule)


def require_role_for(ctx: Ctx, action: Action) -> None:
    """Authorization before anything else: a caller none of whose roles may ever do ``action``
    is denied (and audited) before its input or the object's state is even looked at."""
    if ctx.principal.kind in ("system", "anonymous"):
        return
    if not ctx.policy().may_ever(ctx.principal.subject, action.kind, action.verb):
        require(ctx, action, Target(action.kind, "*"))


def require(ctx: Ctx, action: Action, target: Target, checks: Checks = ()) -> Decision:
    """:func:`decide`, raising Forbidden (with the reason) on a denial."""
    decision = decide(ctx, action, target, checks)
    if decision.hidden:
        raise not_found(target)
    if not decision.allowed:
        raise Forbidden(Msg("denied", rule=decision.rule), rule=decision.rule)
    return decision


# Pages that list: one decision for the page, the rows fetched by set-based queries it allows.


@dataclass(frozen=True)
class Scope:
    """Where one kind of row may be listed: in every agreement the caller sees, in some (the
    domains whose role or rule allows it), or nowhere; with the rule or the reason."""

    rule: str
    everywhere: bool = False
    agreement_ids: frozenset[int] = frozenset()

    @property
    def allowed(self) -> bool:
        return self.everywhere or bool(self.agreement_ids)


@dataclass
class Listing:
    """One audited decision for a page that lists rows of several kinds across agreements.

    ``where`` narrows a statement to the rows the decision allows, in SQL: the organisation rule
    (a vendor account sees only its own organisation's agreements) and the domains casbin allows
    the kind in. The rows are then read by a few set-based queries, however many there are."""

    decision: Decision
    scopes: dict[Action, Scope]
    org: str | None

    def where(self, action: Action, agreement_id):
        """The criteria keeping rows whose agreement is ``agreement_id`` (a column) to those
        this decision allows for ``action``."""
        scope = self.scopes[action]
        if not (self.decision.allowed and scope.allowed):
            return false()
        criteria = []
        if not scope.everywhere:
            criteria.append(agreement_id.in_(sorted(scope.agreement_ids)))
        if self.org is not None:
            criteria.append(
                agreement_id.in_(select(Agreement.id).where(Agreement.vendor == self.org))
            )
        return and_(true(), *criteria)


def _scope(ctx: Ctx, action: Action) -> Scope:
    """casbin's answer for ``action`` over every agreement, with the side rule, in memory."""
    principal = ctx.principal
    if principal.kind == "system":
        return Scope("local operator (command line)", everywhere=True)
    if principal.kind == "anonymous":
        return Scope("not signed in")
    overall, domains = ctx.policy().scope(principal.subject, action.kind, action.verb)
    problem = _side_problem(principal, overall.role) if overall.allowed else None
    if overall.allowed and problem is None:
        return Scope(overall.rule, everywhere=True)
    allowed = {
        dom: verdict
        for dom, verdict in domains.items()
        if dom.startswith("agreement:") and _side_problem(principal, verdict.role) is None
    }
    if not allowed:
        return Scope(f"{problem} ({overall.rule})" if problem else overall.rule)
    rules = "; ".join(f"{verdict.rule} in {dom}" for dom, verdict in sorted(allowed.items()))
    ids = frozenset(int(dom.split(":", 1)[1]) for dom in allowed)
    return Scope(rules, agreement_ids=ids)


def decide_listing(
    ctx: Ctx, action: Action, parts: Iterable[Action] = (), page: str | None = None
) -> Listing:
    """May the caller list ``action``'s rows, and with them the rows of ``parts``, across the
    agreements it sees? One decision and one trail entry for the whole page, whatever the number
    of rows: the rule of ``action`` (a denial when none allows it), each part's rule or reason in
    the details, and the organisation the rows are held to. A part casbin denies is not shown."""
    parts = tuple(parts)
    scopes = {a: _scope(ctx, a) for a in (action, *parts)}
    main = scopes[action]
    details: dict = {}
    if parts:
        details["shown"] = {str(a): s.rule for a, s in scopes.items() if a != action}
    if page:
        details["page"] = page
    if ctx.principal.org is not None:
        # The organisation rule, applied to every row in SQL (see Listing.where).
        details["organisation"] = ctx.principal.org
    if main.allowed and not main.everywhere:
        details["agreements"] = sorted(main.agreement_ids)
    entry = ctx.record(
        action,
        Target(action.kind, "*"),
        "allow" if main.allowed else "deny",
        main.rule,
        keep=not main.allowed,
        **details,
    )
    return Listing(Decision(main.allowed, main.rule, None, entry), scopes, ctx.principal.org)

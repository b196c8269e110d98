"""Repeated anonymous entries are counted, not written one by one.

Anyone can send a bad token, a bad seal or a refused sign-in again and again; written one entry
each, that would let a caller without an account grow the trail without bound. So an anonymous
caller's entry is keyed by (address, action, target, decision, rule) and:

- the first one of a key in a one-minute window is written to the trail as usual;
- the identical ones after it inside the window are only counted, in ``denial_counters`` (not part
  of the trail: it is an ordinary table that may be updated);
- when the next one of that key arrives after the window, or when any anonymous entry is written
  later, or when ``govern audit checkpoint`` runs, the count reaches the trail as one entry
  "N more identical ..." (``details.repeated``, ``details.since``, ``details.until``).

The trail itself stays append-only and verifiable: nothing written is ever changed; counts arrive
as new entries. The counter moves in the same transaction as the entries, so a unit of work that
fails leaves no count behind, and one upsert per entry keeps concurrent callers from losing or
double-writing a count.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import and_, case, select, update
from sqlalchemy.orm import Session

from govern.audit import PendingEntry
from govern.db import upsert, utcnow
from govern.models import DenialCounter

WINDOW = timedelta(minutes=1)
_T = DenialCounter.__table__


def _key(entry: PendingEntry) -> str:
    parts = (entry.client, entry.action, entry.target, entry.decision, entry.rule)
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def _summary(entry: PendingEntry, count: int, since: datetime, until: datetime) -> PendingEntry:
    return PendingEntry(
        actor=entry.actor,
        role=entry.role,
        action=entry.action,
        target=entry.target,
        decision=entry.decision,
        rule=f"{count} more identical: {entry.rule}"[:500],
        request_id=entry.request_id,
        client=entry.client,
        details={
            "repeated": count,
            "since": since.isoformat(timespec="seconds"),
            "until": until.isoformat(timespec="seconds"),
        },
    )


def _count(session: Session, entry: PendingEntry, now: datetime):
    """Upsert the entry's counter; returns (suppressed, carried, carried_since) after it."""
    in_window = _T.c.window_start > now - WINDOW
    values = {
        "key": _key(entry),
        "client": entry.client[:64],
        "action": entry.action[:64],
        "target": entry.target[:200],
        "decision": entry.decision[:8],
        "rule": entry.rule[:200],
        "window_start": now,
        "suppressed": 0,
        "carried": 0,
        "carried_since": None,
    }
    # Every expression reads the row as it was: in the window, count one more; past it, open a
    # new window and hand the old count over to be summarised.
    changes = {
        "suppressed": case((in_window, _T.c.suppressed + 1), else_=0),
        "carried": case((in_window, _T.c.carried), else_=_T.c.suppressed),
        "carried_since": case((in_window, _T.c.carried_since), else_=_T.c.window_start),
        "window_start": case((in_window, _T.c.window_start), else_=now),
    }
    returned = (_T.c.suppressed, _T.c.carried, _T.c.carried_since)
    return upsert(session, _T, values, ["key"], changes, returning=returned).one()


def collapse(session: Session, entries: list[PendingEntry]) -> list[PendingEntry]:
    """The entries to write: repeated anonymous ones counted instead, earlier counts summarised."""
    if not any(e.collapsible for e in entries):
        return entries
    now = utcnow()
    out = flush_stale(session, now)
    # Counters are taken in key order, so two transactions never wait on each other's rows.
    keys = [_key(e) if e.collapsible else "" for e in entries]
    order = sorted(range(len(entries)), key=keys.__getitem__)
    written: dict[int, list[PendingEntry]] = {}
    for i in order:
        entry = entries[i]
        if not entry.collapsible:
            written[i] = [entry]
            continue
        suppressed, carried, since = _count(session, entry, now)
        written[i] = []
        if suppressed == 0:
            if carried:
                written[i].append(_summary(entry, carried, since, since + WINDOW))
            written[i].append(entry)
    return out + [e for i in range(len(entries)) for e in written[i]]


def flush_stale(session: Session, now: datetime | None = None) -> list[PendingEntry]:
    """Summaries of the counts whose window has passed (and reset those counters)."""
    now = now or utcnow()
    stale = session.execute(
        select(DenialCounter)
        .where(DenialCounter.window_start <= now - WINDOW, DenialCounter.suppressed > 0)
        .order_by(DenialCounter.key)
        .limit(100)
        .with_for_update(skip_locked=True)
    ).scalars()
    out = []
    for row in list(stale):
        done = session.execute(
            update(_T)
            .where(and_(_T.c.key == row.key, _T.c.suppressed == row.suppressed))
            .values(suppressed=0, carried=0, carried_since=None)
        )
        if done.rowcount != 1:
            continue
        entry = PendingEntry(
            actor="anonymous",
            role="anonymous",
            action=row.action,
            target=row.target,
            decision=row.decision,
            rule=row.rule,
            request_id="-",
            client=row.client,
        )
        out.append(_summary(entry, row.suppressed, row.window_start, row.window_start + WINDOW))
    return out

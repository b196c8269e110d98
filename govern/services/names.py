"""Names for the ids a page would otherwise show: who an actor is, what a target is.

The trail names an account by its username, a grant holder as ``grant:<id>`` and a subcontractor
as ``subcontractor:<id>``; a page shows the account's display name, the grant's third party and
the subcontractor's name, with the id as a detail. Targets are named the same way: an agreement by
its title, an NDA by its holder, a recall order by its reason. Read set-based: one query per kind
for a whole page of rows, never one per row. Reading names is no decision: the page that lists the
rows has made its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from govern.db import as_id
from govern.models import Agreement, Disclosure, Grant, Item, Nda, Recall, Subcontractor, User

# The kinds known by a number, which a page words as "grant 3", "协议 1".
NUMBERED = ("grant", "subcontractor", "item", "disclosure", "agreement", "nda", "recall")


@dataclass(frozen=True)
class Name:
    """What to call someone or something (``name``) and how the system knows it: ``ident``, a
    username or a number of its ``kind`` (grant, subcontractor, item, disclosure), which the page
    words in the reader's language ("grant 3", "授权 3")."""

    name: str
    ident: str
    kind: str = ""

    @property
    def detail(self) -> str:
        """The English form of the detail (logs, tests); pages word it themselves."""
        return (
            f"{self.kind.replace('disclosure', 'request')} {self.ident}"
            if self.numbered
            else self.ident
        )

    @property
    def numbered(self) -> bool:
        return self.kind in NUMBERED

    def __str__(self) -> str:
        return self.name if self.name == self.detail else f"{self.name} ({self.detail})"


def _ids(values: Iterable[str], kind: str) -> set[int]:
    ids = set()
    for value in values:
        head, sep, tail = value.partition(":")
        ident = as_id(tail) if sep and head == kind else None
        if ident:
            ids.add(ident)
    return ids


def actors(db, values: Iterable[str]) -> dict[str, Name]:
    """Each actor string (username, grant:<id>, subcontractor:<id>) with its name."""
    values = set(values)
    out: dict[str, Name] = {}
    usernames = {v for v in values if ":" not in v}
    if usernames:
        for username, display in db.execute(
            select(User.username, User.display_name).where(User.username.in_(usernames))
        ):
            out[username] = Name(display or username, username, "user")
    grants = _ids(values, "grant")
    if grants:
        for gid, third_party in db.execute(
            select(Grant.id, Disclosure.third_party)
            .join(Disclosure, Disclosure.id == Grant.disclosure_id)
            .where(Grant.id.in_(grants))
        ):
            out[f"grant:{gid}"] = Name(third_party, str(gid), "grant")
    subs = _ids(values, "subcontractor")
    if subs:
        for sid, name in db.execute(
            select(Subcontractor.id, Subcontractor.name).where(Subcontractor.id.in_(subs))
        ):
            out[f"subcontractor:{sid}"] = Name(name, str(sid), "subcontractor")
    for value in values - out.keys():
        out[value] = Name(value, value)
    return out


def targets(db, values: Iterable[str]) -> dict[str, Name]:
    """Each target string (item:<id>, disclosure:<id>, grant:<id>, subcontractor:<id>,
    agreement:<id>, nda:<id>, recall:<id>, user:<name>) with a name where one is known; others
    (``agreement:*``, ``audit:*``) keep their own text."""
    values = set(values)
    out: dict[str, Name] = {}
    items = _ids(values, "item")
    if items:
        for iid, title in db.execute(select(Item.id, Item.title).where(Item.id.in_(items))):
            out[f"item:{iid}"] = Name(title, str(iid), "item")
    requests = _ids(values, "disclosure")
    if requests:
        for did, third_party in db.execute(
            select(Disclosure.id, Disclosure.third_party).where(Disclosure.id.in_(requests))
        ):
            out[f"disclosure:{did}"] = Name(third_party, str(did), "disclosure")
    out.update(_records(db, values))
    named = actors(db, [v for v in values if v.startswith(("grant:", "subcontractor:"))])
    out.update({k: v for k, v in named.items() if v.kind})
    users = {v.split(":", 1)[1] for v in values if v.startswith("user:")}
    for username, name in actors(db, users).items():
        out[f"user:{username}"] = name
    for value in values - out.keys():
        out[value] = Name(value, value)
    return out


def _records(db, values: set[str]) -> dict[str, Name]:
    """Agreements by title, NDAs by their holder's name, recall orders by their reason."""
    out: dict[str, Name] = {}
    agreements = _ids(values, "agreement")
    if agreements:
        for aid, title in db.execute(
            select(Agreement.id, Agreement.title).where(Agreement.id.in_(agreements))
        ):
            out[f"agreement:{aid}"] = Name(title, str(aid), "agreement")
    ndas = _ids(values, "nda")
    if ndas:
        for nid, username, display in db.execute(
            select(Nda.id, User.username, User.display_name)
            .join(User, User.id == Nda.user_id)
            .where(Nda.id.in_(ndas))
        ):
            out[f"nda:{nid}"] = Name(display or username, str(nid), "nda")
    recalls = _ids(values, "recall")
    if recalls:
        for rid, reason in db.execute(
            select(Recall.id, Recall.reason).where(Recall.id.in_(recalls))
        ):
            shown = reason if len(reason) <= 40 else reason[:39] + "…"
            out[f"recall:{rid}"] = Name(shown, str(rid), "recall")
    return out

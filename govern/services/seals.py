"""The public check of a printed approval letter (审批单) of a disclosure request or of a
subcontractor's record: its QR code leads here.

Anyone holding the letter may learn whether the seal printed on it is the office's and still
stands: the request number, when it was sealed, under which key, and the request's state. Never
its content: the holder already has that on paper, and nobody else should learn it from here.
The signature itself is checked exactly as offline (``govern.approvals.verify_approval``).
"""

from __future__ import annotations

import hashlib
import re

from govern import jsontext
from govern.actions import Action
from govern.approvals import InvalidApproval, verify_approval
from govern.audit import iso
from govern.context import Ctx, Target
from govern.models import Disclosure, Subcontractor
from govern.services import disclosures

DIGEST = re.compile(r"[0-9a-f]{64}")


def check(ctx: Ctx, disclosure_id: int, digest: str) -> dict:
    """Is there a sealed approval for this request whose JWS has this SHA-256, and does it verify?"""
    d = ctx.db.get(Disclosure, disclosure_id) if disclosure_id > 0 else None
    tgt = Target("disclosure", disclosure_id, f"agreement:{d.agreement_id}" if d else "*")
    return _check(ctx, tgt, d, digest, lambda: disclosures.effective_state(ctx, d))


def check_subcontractor(ctx: Ctx, sub_id: int, digest: str) -> dict:
    """The same check for a subcontractor's approved record (clauses 3.5, 3.7)."""
    sub = ctx.db.get(Subcontractor, sub_id) if sub_id > 0 else None
    tgt = Target("subcontractor", sub_id, f"agreement:{sub.agreement_id}" if sub else "*")
    return _check(ctx, tgt, sub, digest, lambda: sub.state)


def _check(ctx: Ctx, tgt: Target, sealed, digest: str, state) -> dict:
    """``sealed`` is a request or a record with ``approval_jws``, ``approval_document``,
    ``approval_kid`` and ``decided_at``; ``state`` says what it is now."""
    found = (
        sealed is not None
        and sealed.approval_jws is not None
        and DIGEST.fullmatch(digest or "") is not None
        and hashlib.sha256(sealed.approval_jws.encode()).hexdigest() == digest
    )
    if not found:
        ctx.record(Action.SEAL_CHECK, tgt, "deny", "no sealed approval with this digest", keep=True)
        return {"found": False, "digest": digest}
    try:
        verify_approval(
            {
                "jws": sealed.approval_jws,
                "document": sealed.approval_document,
                "key_id": sealed.approval_kid,
            },
            ctx.keys.jwks(),
        )
        valid, problem = True, None
    except InvalidApproval as exc:
        valid, problem = False, str(exc)
    ctx.record(Action.SEAL_CHECK, tgt, "allow" if valid else "deny", problem or "seal verified")
    return {
        "found": True,
        "valid": valid,
        "problem": problem,
        "request_id": sealed.id,
        "key_id": sealed.approval_kid,
        "sealed_at": iso(sealed.decided_at) if sealed.decided_at else None,
        "state": state(),
        "digest": digest,
    }


def check_pasted(ctx: Ctx, text: str) -> dict:
    """Verify an approval pasted whole (the JSON the API and the pages export). Audited like
    the check by digest: which request it named, whether it held, a fingerprint of the text."""
    pasted = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:12]
    try:
        approval = jsontext.loads(text)
        document = verify_approval(approval, ctx.keys.jwks())
    except (ValueError, AttributeError, InvalidApproval) as exc:
        problem = str(exc) or "not an approval"
        ctx.record(
            Action.SEAL_CHECK,
            "approval:pasted",
            "deny",
            "pasted approval does not verify",
            keep=True,
            pasted_sha256=pasted,
            problem=problem[:200],
        )
        return {"valid": False, "problem": problem}
    ident = document.get("request_id", document.get("id")) if isinstance(document, dict) else None
    target = f"disclosure:{ident}" if isinstance(ident, int) else "approval:pasted"
    ctx.record(
        Action.SEAL_CHECK,
        target,
        "allow",
        "pasted approval verified",
        pasted_sha256=pasted,
        key_id=str(approval.get("key_id"))[:64],
    )
    return {"valid": True, "document": document, "key_id": approval.get("key_id")}

"""Verifying an exported sealed approval offline (clause 3.6): no database, no server.

An export is the JSON of ``GET /api/v1/disclosures/{id}/approval``; the keys are the JSON of
``GET /api/v1/keys``. The approval is valid when its compact JWS verifies under the published key
it names and its payload is exactly the ``document`` shown beside it.
"""

from __future__ import annotations

import json

from jose import jws
from jose.exceptions import JOSEError

from govern.crypto import SEAL_ALGORITHM, DecryptError, verify_jws


class InvalidApproval(Exception):
    """The approval does not verify; the message says why."""


def sealed_approval(id_key: str, row) -> dict:
    """The sealed approval of a request or a subcontractor's record, as the API serves it: the
    exact signed document, its compact JWS, and the seal key that made it."""
    return {
        id_key: row.id,
        "document": row.approval_document,
        "jws": row.approval_jws,
        "key_id": row.approval_kid,
        "algorithm": SEAL_ALGORITHM,
    }


def sealed_step(by: str | None, at: str, opinion: str | None) -> dict:
    """One reviewer's step in a signed approval document. Its opinion (审核意见) is sealed with
    the step when given; documents sealed without one lack the key, so older seals still verify
    against their own stored document."""
    step = {"by": by, "at": at}
    if opinion:
        step["opinion"] = opinion
    return step


def verify_approval(approval: dict, jwks: dict | list) -> dict:
    """Return the signed document (parsed) or raise InvalidApproval."""
    keys = jwks.get("keys", []) if isinstance(jwks, dict) else jwks
    token, document = approval.get("jws"), approval.get("document")
    if not isinstance(token, str) or not isinstance(document, str):
        raise InvalidApproval('the approval needs "jws" and "document" as strings')
    try:
        header = jws.get_unverified_header(token)
    except JOSEError as exc:
        raise InvalidApproval(f"not a compact JWS: {exc}") from exc
    if header.get("alg") != SEAL_ALGORITHM:
        raise InvalidApproval(f"unexpected algorithm {header.get('alg')!r}")
    if approval.get("key_id") not in (None, header.get("kid")):
        raise InvalidApproval("key_id does not match the kid in the signature")
    try:
        payload = verify_jws(token, keys)
    except DecryptError as exc:
        raise InvalidApproval(str(exc)) from exc
    if payload.decode("utf-8") != document:
        raise InvalidApproval("the document differs from the signed payload")
    return json.loads(document)

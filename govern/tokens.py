"""Tokens with python-jose: short-lived API bearer tokens for accounts, and the ES256 tokens
third parties hold (disclosure grants, subcontractor client tokens).

Every check passes an explicit algorithm list and an audience; a token is only ever a claim to be
checked against live state (user active and credential version, grant or scope not revoked).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from jose import jwt
from jose.exceptions import JOSEError

from govern.crypto import SEAL_ALGORITHM, Keyring
from govern.db import utcnow
from govern.errors import Unauthenticated
from govern.messages import Msg

API_AUDIENCE = "govern-api"
# python-jose checks aud, iss and sub only when they are present: every token requires them.
REQUIRED_CLAIMS = {
    "require_aud": True,
    "require_iss": True,
    "require_sub": True,
    "require_exp": True,
    "require_jti": True,
}
GRANT_AUDIENCE = "govern-grant"
SUBCONTRACTOR_AUDIENCE = "govern-subcontractor"
API_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Claims:
    subject: str
    jti: str
    expires_at: datetime
    credential_version: int | None = None


def _times(lifetime: timedelta | None, expires_at: datetime | None) -> tuple[datetime, datetime]:
    now = utcnow().replace(microsecond=0)
    return now, (expires_at or now + lifetime)


def issue_api_token(
    keys: Keyring, issuer: str, user_id: int, credential_version: int, seconds: int
):
    now, exp = _times(timedelta(seconds=seconds), None)
    claims = {
        "iss": issuer,
        "aud": API_AUDIENCE,
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(exp.timestamp()),
        "jti": uuid.uuid4().hex,
        "cv": credential_version,
    }
    return jwt.encode(claims, keys.api_token_secret, algorithm=API_ALGORITHM), seconds


def check_api_token(keys: Keyring, issuer: str, token: str) -> Claims:
    """An account's API token: HS256 only, signature, audience, issuer, exp, nbf, iat and jti.

    python-jose checks the signature and the claims once per token; the decoded claims are kept
    (bounded, per key and issuer) so the next requests with the same token only check its time
    window again. The claims are then only a claim: the caller checks the live account on every
    request (accounts.user_for_token), so a disabled account or changed password ends the token
    at once, whatever is kept here."""
    try:
        claims = _verified_api_claims(keys.api_token_secret, issuer, token)
    except JOSEError as exc:
        raise Unauthenticated(Msg("auth.bearer_invalid")) from exc
    now = int(utcnow().timestamp())
    exp, nbf = claims["exp"], claims.get("nbf", claims["iat"])
    if not (type(exp) is int and type(nbf) is int and nbf <= now <= exp):
        raise Unauthenticated(Msg("auth.bearer_invalid"))
    return _claims(claims)


@lru_cache(maxsize=4096)
def _verified_api_claims(secret: str, issuer: str, token: str) -> dict:
    # The time window is checked by the caller on every use (a kept entry outlives its token's
    # expiry otherwise); everything else is python-jose's own check. Errors are not cached.
    return jwt.decode(
        token,
        secret,
        algorithms=[API_ALGORITHM],
        audience=API_AUDIENCE,
        issuer=issuer,
        options={
            **REQUIRED_CLAIMS,
            "require_iat": True,
            "verify_exp": False,
            "verify_nbf": False,
        },
    )


def issue_party_token(
    keys: Keyring, issuer: str, audience: str, subject: str, expires_at: datetime
):
    """A third party's token: ES256, its own audience, a fresh jti. Returns (token, jti)."""
    now, exp = _times(None, expires_at)
    jti = uuid.uuid4().hex
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": int(now.timestamp()),
        "exp": int(exp.timestamp()),
        "jti": jti,
    }
    headers = {"kid": keys.token_key.kid}
    return jwt.encode(claims, keys.token_key.pem, algorithm=SEAL_ALGORITHM, headers=headers), jti


def check_party_token(keys: Keyring, issuer: str, token: str, audience: str) -> Claims:
    try:
        claims = jwt.decode(
            token,
            keys.token_key.public_pem,
            algorithms=[SEAL_ALGORITHM],
            audience=audience,
            issuer=issuer,
            options=REQUIRED_CLAIMS,
        )
    except JOSEError as exc:
        raise Unauthenticated(Msg("auth.token_invalid")) from exc
    return _claims(claims)


def fingerprint(token: str) -> str:
    """What the trail keeps of a refused token: a short prefix of its SHA-256, enough to tell
    repeats of one token apart from many, never enough to use or rebuild it."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]


def token_audience(token: str) -> str | None:
    """The audience a token claims, unverified: only to choose which check to run."""
    try:
        aud = jwt.get_unverified_claims(token).get("aud")
    except JOSEError:
        return None
    return aud if isinstance(aud, str) else None


def _claims(claims: dict) -> Claims:
    return Claims(
        subject=str(claims["sub"]),
        jti=str(claims["jti"]),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        credential_version=claims.get("cv"),
    )

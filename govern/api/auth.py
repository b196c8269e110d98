"""POST /auth/token: a short-lived bearer token for a username and password."""

from __future__ import annotations

from govern.api import endpoint
from govern.schema import Schema, Str
from govern.services import accounts

TOKEN_IN = Schema("TokenRequest", username=Str(max_len=64), password=Str(max_len=1024))


@endpoint(
    "/auth/token",
    "POST",
    summary="Exchange a username and password for a bearer token",
    tag="auth",
    body=TOKEN_IN,
    public=True,
)
def issue_token(ctx, data):
    return accounts.issue_token(ctx, data["username"], data["password"])

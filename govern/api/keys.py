"""GET /keys: the office's public seal keys (retired ones included) as a JWK set."""

from __future__ import annotations

from govern.api import endpoint


@endpoint("/keys", summary="The office's public seal keys (JWKS)", tag="keys", public=True)
def public_keys(ctx):
    return {"keys": ctx.keys.jwks()}

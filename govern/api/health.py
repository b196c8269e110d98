"""GET /health: a liveness probe, and the bare JSON route the benchmarks compare reads against."""

from __future__ import annotations

from govern.api import endpoint


@endpoint("/health", summary="Liveness probe: the app answers", tag="health", public=True)
def health(ctx):
    return {"ok": True}

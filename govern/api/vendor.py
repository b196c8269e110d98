"""Routes for the vendor domain (filled in by its issue)."""

from __future__ import annotations

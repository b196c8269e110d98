"""Routes for the disclosures domain (filled in by its issue)."""

from __future__ import annotations

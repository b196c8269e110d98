"""Schema changes go through Alembic only: ``govern init`` upgrades to head."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from govern.config import MIGRATIONS_DIR
from govern.db import normalize_url


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)

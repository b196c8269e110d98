"""Building the per-process runtime (settings, keys, engine, enforcer) and running units of work
outside a request (command line, background sweeps, tests)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from govern.clock import OfficeClock
from govern.config import Settings, load_settings
from govern.context import Ctx, Principal, Runtime
from govern.crypto import load_keyring
from govern.db import in_memory, make_engine, make_sessionmaker
from govern.errors import GovernError
from govern.policy import PolicyEngine


def build_runtime(settings: Settings | None = None) -> Runtime:
    settings = settings or load_settings()
    engine = make_engine(settings.database_url)
    autocommit = None
    if settings.trail_queue and not in_memory(engine):
        autocommit = make_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    return Runtime(
        settings=settings,
        keys=load_keyring(settings.home),
        engine=engine,
        sessions=make_sessionmaker(engine),
        policy=PolicyEngine(engine),
        clock=OfficeClock(settings.timezone),
        autocommit_engine=autocommit,
    )


@contextmanager
def unit_of_work(
    runtime: Runtime, principal: Principal | None = None, client: str = "local"
) -> Iterator[Ctx]:
    """One unit of work: commits with its trail on success, keeps only denials on failure."""
    with runtime.sessions() as db:
        ctx = Ctx(runtime, db, principal or Principal.system(), uuid.uuid4().hex, client)
        try:
            yield ctx
        except GovernError:
            ctx.fail()
            raise
        except BaseException:
            db.rollback()
            raise
        ctx.commit()

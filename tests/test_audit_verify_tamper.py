"""audit.verify finds an edited entry, an edited time and a broken link (on a generated chain)."""

from __future__ import annotations

import pytest

from bench.common import Instance, load_chain
from govern import audit


@pytest.fixture
def chain_db(tmp_path):
    instance = Instance(tmp_path, "tamper")
    load_chain([instance], 300, checkpoint_every=100)
    raw = instance.engine.raw_connection()
    # Only the test steps around the append-only triggers, to play the attacker.
    raw.execute("DROP TRIGGER audit_entries_no_update")
    raw.commit()
    raw.close()
    yield instance
    instance.close()


def _verify(instance):
    with instance.engine.connect() as conn:
        return audit.verify(conn, instance.runtime.keys)


def _tamper(instance, sql):
    raw = instance.engine.raw_connection()
    raw.execute(sql)
    raw.commit()
    raw.close()


def test_an_intact_generated_chain_verifies(chain_db):
    result = _verify(chain_db)
    assert result.ok and result.entries == 300


@pytest.mark.parametrize(
    ("sql", "bad", "problem"),
    [
        ("UPDATE audit_entries SET actor = 'nobody' WHERE seq = 157", 157, "hash"),
        ("UPDATE audit_entries SET at = '2030-01-01T00:00:00.000000Z' WHERE seq = 42", 42, "hash"),
        ("UPDATE audit_entries SET prev_hash = hash WHERE seq = 250", 250, "link"),
    ],
)
def test_tampering_is_found_at_its_entry(chain_db, sql, bad, problem):
    _tamper(chain_db, sql)
    result = _verify(chain_db)
    assert not result.ok and result.first_bad == bad and problem in result.problem


def test_the_parallel_walk_rebuilds_the_same_tree(chain_db):
    """Ranges split at powers of two join into the one tree: every checkpoint (every 100 entries)
    and a witness's tree at an odd size check out, wherever the ranges fall."""
    with chain_db.engine.connect() as conn:
        root = audit.stored_root(conn, 173)
    keys, url = chain_db.runtime.keys, chain_db.url
    good = audit.WitnessTree("w", 173, root)
    bad = audit.WitnessTree("w", 173, bytes(32))
    for jobs in (2, 3, 4, 5):
        with chain_db.engine.connect() as conn:
            result = audit.verify_parallel(conn, url, keys, jobs, min_per_job=1, witness=good)
            assert result.ok and result.entries == 300, (jobs, result)
            result = audit.verify_parallel(conn, url, keys, jobs, min_per_job=1, witness=bad)
            assert not result.ok and result.first_bad == 173 and "size 173" in result.problem

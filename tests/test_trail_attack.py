"""Issue 11's attack, performed: whoever holds the database and the key folder rewrites, cuts or
forks the trail after an outside witness co-signed it, covering every track the database holds
(triggers dropped and re-created, every hash and tree node recomputed, checkpoints deleted, the
head fixed, a fresh checkpoint signed with the office's own key). The witness's own state file
still catches it: `govern audit verify --witness-state` fails naming the co-signed size, and the
witness's next round refuses to co-sign. Against a really served app, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from werkzeug.serving import make_server

from govern import audit, integrator
from govern.cli import main
from tests.conftest import as_operator


@pytest.fixture
def served(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


class Office:
    """The office's command line, as its operator (or an attacker with its shell) runs it."""

    def __init__(self, settings_overrides, monkeypatch):
        monkeypatch.setenv("GOVERN_HOME", str(settings_overrides["home"]))
        self.url = settings_overrides["database_url"]
        self.runner = CliRunner()

    def run(self, *args):
        return self.runner.invoke(main, [*args, "--database-url", self.url])


@pytest.fixture
def witness(tmp_path, office, settings_overrides, monkeypatch, served):
    """A witness registered at the office, with its key and state file on its own side."""
    key, state = tmp_path / "witness.key", tmp_path / "witness-state.json"
    made = CliRunner().invoke(main, ["witness", "keygen", str(key), "--name", "vendor.example/w"])
    cli = Office(settings_overrides, monkeypatch)
    added = cli.run("audit", "witness", "add", "vendor.example/w", made.output.split()[-1])
    assert added.exit_code == 0, added.output

    def round_():
        return CliRunner().invoke(
            main, ["witness", "--url", served, "--state", str(state), "--key", str(key)]
        )

    return round_, state, cli


def _activity(office, n=8):
    office.login("audit")
    agreement = office.agreement()
    for _ in range(n):
        office.get(f"/api/v1/agreements/{agreement['id']}/clock", "approver")
    return agreement


def _cosigned_twice(office, witness):
    """The witness co-signs, the office works on, checkpoints, and the witness co-signs again."""
    round_, state, cli = witness
    _activity(office)
    first = round_()
    assert first.exit_code == 0, first.output
    _activity(office)
    assert cli.run("audit", "checkpoint").exit_code == 0
    second = round_()
    assert second.exit_code == 0, second.output
    return json.loads(state.read_text())["size"]


# The attacker's tools: raw SQL around the triggers, then the trail's own hashing.

TABLES = ("audit_entries", "audit_tree", "audit_tree_checkpoints", "audit_cosignatures")


class Attacker:
    def __init__(self, runtime):
        self.runtime = runtime
        self.engine = runtime.engine
        self.keys = runtime.keys

    def _triggers(self, conn) -> list[tuple[str, str, str]]:
        if conn.dialect.name == "sqlite":
            return [
                (name, table, sql)
                for name, table, sql in conn.exec_driver_sql(
                    "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"
                )
                if table in TABLES
            ]
        return [
            (name, table, sql)
            for name, table, sql in conn.exec_driver_sql(
                "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
            )
            if table in TABLES
        ]

    def tamper(self, work):
        """Drop the append-only triggers, do ``work``, re-create them, all in one transaction.

        On a still database: the app's integrator thread is stopped and what the last requests
        queued has joined the chain (PostgreSQL), so no append races the rewrite."""
        integrator.stop_all()
        with as_operator(self.runtime) as ctx:
            ctx.settle_trail()
        with self.engine.begin() as conn:
            triggers = self._triggers(conn)
            assert triggers, "the trail should be guarded by triggers"
            for name, table, _ in triggers:
                suffix = f" ON {table}" if conn.dialect.name == "postgresql" else ""
                conn.exec_driver_sql(f"DROP TRIGGER {name}{suffix}")
            work(conn)
            for _, _, sql in triggers:
                conn.exec_driver_sql(sql)

    def rebuild(self, conn, rows: list[dict], from_seq: int, keep_checkpoints=False) -> None:
        """Recompute every hash from ``from_seq`` on and the whole tree, delete the checkpoints
        (and their co-signatures) from that point, fix the head: no track left in the database."""
        prev = audit.GENESIS if from_seq == 1 else rows[from_seq - 2]["hash"]
        for row in rows[from_seq - 1 :]:
            row["prev_hash"] = prev
            row["hash"] = prev = audit.entry_hash(row[k] for k in audit.HASHED)
        conn.exec_driver_sql(f"DELETE FROM audit_entries WHERE seq >= {from_seq}")
        if rows[from_seq - 1 :]:
            conn.execute(sa.insert(audit.AuditEntry.__table__), rows[from_seq - 1 :])
        conn.exec_driver_sql("DELETE FROM audit_tree")
        leaves = [audit.entry_leaf(r[k] for k in audit.HASHED) for r in rows]
        frontier = audit.append_to_tree(conn, 0, [], leaves)
        if not keep_checkpoints:
            conn.exec_driver_sql(f"DELETE FROM audit_cosignatures WHERE size >= {from_seq}")
            conn.exec_driver_sql(f"DELETE FROM audit_tree_checkpoints WHERE size >= {from_seq}")
        last = rows[-1]
        conn.execute(
            sa.update(audit.AuditHead)
            .where(audit.AuditHead.id == 1)
            .values(
                seq=last["seq"],
                hash=last["hash"],
                at=last["at"],
                frontier=audit.format_frontier(frontier),
                checkpoint_seq=0,
                checkpoint_at=last["at"],
            )
        )

    def entries(self, conn) -> list[dict]:
        return [
            dict(r._mapping)
            for r in conn.execute(
                sa.select(*[audit.AuditEntry.__table__.c[k] for k in audit.COLUMNS]).order_by(
                    audit.AuditEntry.seq
                )
            )
        ]


def _caught(cli, witness, state, cosigned: int):
    """Verify against the witness's state fails naming its size; its next round refuses and
    leaves its state (and the office's co-signatures) as they were."""
    # The attacker signs a fresh checkpoint of the doctored trail with the office's own key.
    assert cli.run("audit", "checkpoint").exit_code == 0
    verified = cli.run("audit", "verify", "--witness-state", str(state))
    assert verified.exit_code == 1, verified.output
    assert verified.stdout.splitlines()[0] == str(cosigned)
    assert f"size {cosigned}" in verified.output
    before = state.read_text()
    refused = witness()
    assert refused.exit_code == 1, refused.output
    assert "refused" in refused.output and str(cosigned) in refused.output
    assert state.read_text() == before


def test_a_rewritten_history_is_caught(office, runtime, witness, settings_overrides):
    round_, state, cli = witness
    cosigned = _cosigned_twice(office, witness)
    attacker = Attacker(runtime)

    def rewrite(conn):
        rows = attacker.entries(conn)
        # Two entries turned harmless: the denials become allowed reads of the agreement list.
        targets = [r for r in rows[: cosigned - 2] if r["seq"] > 3][:2]
        for row in targets:
            row["action"], row["target"], row["details"] = "agreement:list", "agreement:*", "{}"
        attacker.rebuild(conn, rows, targets[0]["seq"])

    attacker.tamper(rewrite)
    # Without the witness the doctored database is self-consistent: that is the attack.
    assert cli.run("audit", "verify").exit_code == 0
    _caught(cli, round_, state, cosigned)


def test_a_rewrite_under_a_checkpoint_the_database_holds_fails_plain_verify(
    office, runtime, witness
):
    cosigned = _cosigned_twice(office, witness)
    attacker = Attacker(runtime)

    def rewrite(conn):
        rows = attacker.entries(conn)
        rows[4]["actor"] = "nobody"
        attacker.rebuild(conn, rows, 5, keep_checkpoints=True)

    attacker.tamper(rewrite)
    verified = witness[2].run("audit", "verify")
    assert verified.exit_code == 1
    first = int(verified.stdout.splitlines()[0])
    assert first <= cosigned and f"checkpoint {first}" in verified.output


def test_a_cut_tail_is_caught(office, runtime, witness):
    round_, state, cli = witness
    cosigned = _cosigned_twice(office, witness)
    attacker = Attacker(runtime)

    def cut(conn):
        rows = attacker.entries(conn)[: cosigned - 5]
        conn.exec_driver_sql(f"DELETE FROM audit_entries WHERE seq > {cosigned - 5}")
        attacker.rebuild(conn, rows, len(rows) + 1)

    attacker.tamper(cut)
    verified = cli.run("audit", "verify", "--witness-state", str(state))
    assert verified.exit_code == 1 and verified.stdout.splitlines()[0] == str(cosigned)
    assert f"size {cosigned}" in verified.output and "gone" in verified.output
    before = state.read_text()
    refused = round_()
    assert refused.exit_code == 1 and "smaller" in refused.output, refused.output
    assert str(cosigned) in refused.output and state.read_text() == before


def test_a_restored_older_copy_with_another_history_is_caught(office, runtime, witness):
    round_, state, cli = witness
    _activity(office)
    assert round_().exit_code == 0
    restore_to = json.loads(state.read_text())["size"] + 2
    _activity(office)
    assert cli.run("audit", "checkpoint").exit_code == 0
    assert round_().exit_code == 0
    cosigned = json.loads(state.read_text())["size"]
    attacker = Attacker(runtime)

    def restore(conn):
        # An older copy of the database: everything after ``restore_to`` entries never happened.
        rows = attacker.entries(conn)[:restore_to]
        conn.exec_driver_sql(f"DELETE FROM audit_entries WHERE seq > {restore_to}")
        attacker.rebuild(conn, rows, restore_to + 1)

    attacker.tamper(restore)
    # ...and the office carries on from there: a different history, longer than the co-signed.
    _activity(office, n=cosigned)
    assert cli.run("audit", "verify").exit_code == 0
    _caught(cli, round_, state, cosigned)

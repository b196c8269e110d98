"""the database states the rules

CHECK constraints on every state, status, kind, form, category, sensitivity and decision column,
on date order and on the seal of an approved request; UNIQUE where the code checks before it
inserts; the signed checkpoints append-only like the entries; indexes for listings and recalls.

The allowed values are written out here as they stand at this revision (a migration describes
its own point in history); the models build their CHECKs from their own tuples with the same
``one_of``, and the test comparing a migrated database with the models catches any drift.

Existing rows are checked first: exact duplicate policy rules are removed (they mean nothing
more than one copy does); any other row that breaks a new rule stops the upgrade with a message
naming the table, the rule and the rows, and nothing is changed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from govern.db import one_of

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

AGREEMENT_STATUSES = ("active", "terminated")
CATEGORIES = (
    "design",
    "image",
    "dev_tool",
    "flowchart",
    "engineering_drawing",
    "program",
    "data",
    "patent",
    "tender_document",
    "credential",
    "business_document",
    "technical_document",
    "designated",
)
ITEM_STATUSES = ("protected", "public", "declassified", "recalled", "returned", "destroyed")
SENSITIVITIES = ("internal", "confidential", "secret")
FORMS = ("view", "copy", "transfer")
DISCLOSURE_STATES = (
    "draft",
    "submitted",
    "reviewed",
    "approved",
    "denied",
    "withdrawn",
    "expired",
    "revoked",
)
RECALL_KINDS = ("recall", "termination")
HOLDER_KINDS = ("staff", "subcontractor", "third_party")
OUTCOMES = ("returned", "destroyed")
RESPONSIBLE_KINDS = ("staff", "subcontractor")
OUTBOX_KINDS = (
    "recall",
    "termination",
    "disclosure_submitted",
    "disclosure_reviewed",
    "disclosure_decided",
    "nda_ends",
    "dsa_ends",
    "record_ends",
    "grant_ends",
    "window_ends",
    "term_ends",
)
PTYPES = ("p", "g")
DECISIONS = ("allow", "deny")

# table -> [(constraint name, condition)]
CHECKS = {
    "agreements": [
        ("ck_agreements_status", one_of("status", AGREEMENT_STATUSES)),
        ("ck_agreements_terminated_on", "status <> 'terminated' OR terminated_on IS NOT NULL"),
        ("ck_agreements_term_years", "term_years >= 1"),
        ("ck_agreements_contract_value", "contract_value >= 0"),
    ],
    "items": [
        ("ck_items_category", one_of("category", CATEGORIES)),
        ("ck_items_sensitivity", one_of("sensitivity", SENSITIVITIES)),
        ("ck_items_status", one_of("status", ITEM_STATUSES)),
        ("ck_items_size", "size >= 0"),
    ],
    "disclosures": [
        ("ck_disclosures_form", one_of("form", FORMS)),
        ("ck_disclosures_state", one_of("state", DISCLOSURE_STATES)),
        ("ck_disclosures_window", "starts_on <= ends_on"),
        (
            "ck_disclosures_approved_sealed",
            "state <> 'approved' OR (approval_document IS NOT NULL AND approval_jws IS NOT NULL"
            " AND approval_kid IS NOT NULL)",
        ),
        ("ck_disclosures_version", "version >= 1"),
    ],
    "ndas": [("ck_ndas_term", "signed_on <= expires_on")],
    "subcontractors": [
        ("ck_subcontractors_dsa_term", "dsa_signed_on <= dsa_expires_on"),
        ("ck_subcontractors_until", "until <= dsa_expires_on"),
    ],
    "recalls": [("ck_recalls_kind", one_of("kind", RECALL_KINDS))],
    "return_confirmations": [
        ("ck_return_confirmations_holder_kind", one_of("holder_kind", HOLDER_KINDS)),
        ("ck_return_confirmations_outcome", "outcome IS NULL OR " + one_of("outcome", OUTCOMES)),
        ("ck_return_confirmations_confirmed", "(confirmed_at IS NULL) = (outcome IS NULL)"),
    ],
    "breaches": [
        ("ck_breaches_responsible_kind", one_of("responsible_kind", RESPONSIBLE_KINDS)),
        ("ck_breaches_liquidated_damages", "liquidated_damages >= 0"),
    ],
    "outbox": [
        ("ck_outbox_kind", one_of("kind", OUTBOX_KINDS)),
        ("ck_outbox_recipient", "recipient_role IS NOT NULL OR recipient_user_id IS NOT NULL"),
    ],
    "casbin_rule": [("ck_casbin_rule_ptype", one_of("ptype", PTYPES))],
    "policy_state": [("ck_policy_state_one_row", "id = 1")],
    "audit_head": [("ck_audit_head_one_row", "id = 1")],
    "audit_entries": [("ck_audit_entries_decision", one_of("decision", DECISIONS))],
}

# table -> [(constraint name, columns)]
UNIQUES = {
    "ndas": [("uq_ndas_renews_id", ["renews_id"])],
    "subcontractor_scopes": [
        ("uq_subcontractor_scopes_subcontractor_id", ["subcontractor_id", "item_id"])
    ],
    "return_confirmations": [
        ("uq_return_confirmations_recall_id", ["recall_id", "item_id", "holder_kind", "holder"])
    ],
}

# The unique constraint's own index replaces this one (same columns, same order).
REPLACED_INDEXES = {
    "subcontractor_scopes": ("ix_subcontractor_scopes_sub_item", ["subcontractor_id", "item_id"])
}

LIVE_NTK = "revoked_at IS NULL"
RULE_COLUMNS = ("ptype", "v0", "v1", "v2", "v3", "v4", "v5")
RULE_LINE = [sa.text(f"coalesce({c}, '')") for c in RULE_COLUMNS]

# (name, table, columns)
INDEXES = [
    ("ix_need_to_know_agreement_id", "need_to_know", ["agreement_id"]),
    ("ix_ndas_agreement_id", "ndas", ["agreement_id"]),
    ("ix_outbox_recipient_role", "outbox", ["recipient_role"]),
    ("ix_outbox_recipient_user_id", "outbox", ["recipient_user_id"]),
    ("ix_audit_entries_target_seq", "audit_entries", ["target", "seq"]),
]

APPEND_ONLY = ("audit_entries", "audit_checkpoints")


def upgrade() -> None:
    bind = op.get_bind()
    _refuse_violations(bind)
    _drop_duplicate_rules(bind)
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name, condition in checks:
                batch.create_check_constraint(op.f(name), condition)
            for name, columns in UNIQUES.get(table, ()):
                batch.create_unique_constraint(op.f(name), columns)
    for table in set(UNIQUES) - set(CHECKS):
        with op.batch_alter_table(table) as batch:
            if table in REPLACED_INDEXES:
                batch.drop_index(REPLACED_INDEXES[table][0])
            for name, columns in UNIQUES[table]:
                batch.create_unique_constraint(op.f(name), columns)
    op.create_index(
        "uq_need_to_know_live",
        "need_to_know",
        ["user_id", "item_id"],
        unique=True,
        sqlite_where=sa.text(LIVE_NTK),
        postgresql_where=sa.text(LIVE_NTK),
    )
    op.create_index("uq_casbin_rule_line", "casbin_rule", RULE_LINE, unique=True)
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    _append_only(bind)


def downgrade() -> None:
    bind = op.get_bind()
    _drop_append_only(bind, "audit_checkpoints")
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_index("uq_casbin_rule_line", table_name="casbin_rule")
    op.drop_index("uq_need_to_know_live", table_name="need_to_know")
    for table in set(UNIQUES) - set(CHECKS):
        with op.batch_alter_table(table) as batch:
            for name, _columns in UNIQUES[table]:
                batch.drop_constraint(op.f(name), type_="unique")
            if table in REPLACED_INDEXES:
                batch.create_index(*REPLACED_INDEXES[table])
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for name, _columns in UNIQUES.get(table, ()):
                batch.drop_constraint(op.f(name), type_="unique")
            for name, _condition in checks:
                batch.drop_constraint(op.f(name), type_="check")
    if bind.dialect.name == "sqlite":
        # Rebuilding audit_entries dropped its triggers with the old table.
        _sqlite_append_only("audit_entries")


def _append_only(bind) -> None:
    """The checkpoints become append-only like the entries. On SQLite, adding a CHECK rebuilt
    audit_entries, and the old table's triggers went with it: they are made again."""
    if bind.dialect.name == "postgresql":
        # govern_audit_append_only() is 0001's; the entries' trigger survives ALTER TABLE.
        op.execute(
            "CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION govern_audit_append_only()"
        )
        return
    for table in APPEND_ONLY:
        _sqlite_append_only(table)


def _sqlite_append_only(table: str) -> None:
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb.lower()}")
        op.execute(
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
        )


def _drop_append_only(bind, table: str) -> None:
    if bind.dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")


def _drop_duplicate_rules(bind) -> None:
    """Exact copies of a policy rule add nothing (casbin sees one rule): keep the first."""
    # Every piece of SQL built in this file comes from its own constants, never from input.
    line = ", ".join(f"coalesce({c}, '')" for c in RULE_COLUMNS)
    keep = f"SELECT min(id) FROM casbin_rule GROUP BY {line}"  # noqa: S608
    bind.exec_driver_sql(f"DELETE FROM casbin_rule WHERE id NOT IN ({keep})")  # noqa: S608


def _refuse_violations(bind) -> None:
    """Stop, changing nothing, if existing rows break a rule this revision adds: which rows they
    are is the operator's to decide (a date, a state, a duplicate), not the migration's."""
    problems = []
    for table, checks in CHECKS.items():
        key = "seq" if table == "audit_entries" else "id"
        for name, condition in checks:
            sql = f"SELECT {key} FROM {table} WHERE NOT ({condition}) ORDER BY {key}"  # noqa: S608
            rows = _ids(bind, sql)
            if rows:
                problems.append(f"{table} {rows} break {name}: {condition}")
    duplicates = [
        (table, name, columns, None)
        for table, uniques in UNIQUES.items()
        for name, columns in uniques
    ] + [("need_to_know", "uq_need_to_know_live", ["user_id", "item_id"], LIVE_NTK)]
    for table, name, columns, where in duplicates:
        listed = ", ".join(columns)
        filters = f"WHERE {where} " if where else f"WHERE {columns[0]} IS NOT NULL "
        sql = f"SELECT min(id) FROM {table} {filters}GROUP BY {listed} HAVING count(*) > 1"  # noqa: S608
        rows = _ids(bind, sql + " ORDER BY min(id)")
        if rows:
            problems.append(
                f"{table} rows duplicated (first copies {rows}) break {name}: ({listed})"
            )
    if problems:
        raise RuntimeError(
            "migration 0002 stopped, nothing was changed: existing rows break rules it adds. "
            "Correct them, then upgrade again.\n  " + "\n  ".join(problems)
        )


def _ids(bind, sql: str) -> list[int]:
    found = [row[0] for row in bind.exec_driver_sql(sql + " LIMIT 21")]
    return found[:20] + (["..."] if len(found) > 20 else [])

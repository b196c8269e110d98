"""The `govern` command: set-up and operations. ``govern --help`` explains each command."""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import replace
from pathlib import Path

import click

from govern.config import load_settings


def _settings(database_url: str | None):
    overrides = {"database_url": database_url} if database_url else {}
    return load_settings(overrides)


def _runtime(database_url: str | None):
    from govern.runtime import build_runtime

    # A command exits right after its unit of work: a background integrator would die with the
    # process, leaving the command's entries queued (durable, but outside the head until someone
    # integrates), so a command integrates its own entries before it exits.
    return build_runtime(replace(_settings(database_url), trail_integrate="inline"))


db_option = click.option(
    "--database-url",
    envvar="GOVERN_DATABASE_URL",
    default=None,
    help="Database URL (default: SQLite in GOVERN_HOME). Also GOVERN_DATABASE_URL.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """govern: enforce a confidentiality agreement between a data owner and its vendor.

    Settings come from GOVERN_HOME (default ./instance: the SQLite database, the keys, an optional
    govern.toml) and GOVERN_* variables. Start with `govern init`, then `govern demo` or
    `govern user create`, then `govern serve`.
    """


@main.command()
@db_option
def init(database_url):
    """Create or upgrade the schema (Alembic), the keys and the starting policy."""
    from govern import audit, migrate, policy
    from govern.crypto import ensure_keys

    settings = _settings(database_url)
    os.umask(0o077)
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(settings.home, 0o700)
    ensure_keys(settings.home)
    migrate.upgrade(settings.database_url)
    runtime = _runtime(database_url)
    with runtime.sessions() as db:
        added = policy.seed_rules(db)
        audit.ensure_head(db)
        db.commit()
    click.echo(f"govern is ready: {settings.home.resolve()} ({added} policy rules loaded)")


@main.group()
def user():
    """Manage accounts."""


@user.command("create")
@click.argument("username")
@click.option("--role", required=True, help="One of the roles in SPEC (e.g. office_approver).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--display-name", default="", help="A human name to show on pages.")
@click.option(
    "--org",
    default=None,
    help="The vendor organisation (required for vendor roles, e.g. a vendor).",
)
@db_option
def user_create(username, role, password_stdin, display_name, org, database_url):
    """Create an account with one role and print its id."""
    from govern.errors import GovernError
    from govern.runtime import unit_of_work
    from govern.services import accounts

    if not password_stdin:
        raise click.UsageError("pass the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        with unit_of_work(_runtime(database_url)) as ctx:
            created = accounts.create_user(ctx, username, role, password, display_name, org=org)
    except GovernError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(created.id)


@main.command()
@db_option
def demo(database_url):
    """Load the demo: the real 2022 agreement, a few items, one account per role.

    Passwords are generated and printed once; they are not stored anywhere in clear.
    """
    from govern import demo as demo_data
    from govern.runtime import unit_of_work

    runtime = _runtime(database_url)
    with unit_of_work(runtime) as ctx:
        accounts = demo_data.load(ctx)
    if accounts is None:
        click.echo("the demo agreement is loaded already")
        return
    # The vendor's side is registered by the demo's vendor lead, in a unit of work of its own.
    client_token = demo_data.load_vendor_side(runtime)
    click.echo("Demo loaded. Accounts (passwords shown once):")
    for username, role, password in accounts:
        click.echo(f"  {username:<12} {role:<16} {password}")
    click.echo("Subcontractor client_token (shown once; fields service and status only):")
    click.echo(f"  {client_token}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@db_option
def serve(host, port, workers, database_url):
    """Serve the app with gunicorn (several workers share one database)."""
    from gunicorn.app.base import BaseApplication

    from govern import create_app

    class _App(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")
            self.cfg.set("logger_class", "govern.accesslog.RedactingLogger")

        def load(self):
            app = create_app({"database_url": database_url} if database_url else None)
            # What a worker loads once (SQLAlchemy's mappers, the policy, the templates) lives as
            # long as the worker: frozen out of the collector, a full collection no longer walks
            # it in the middle of a request (it showed as p99 spikes of 10-20 ms).
            gc.collect()
            gc.freeze()
            return app

    _App().run()


@main.group()
def audit():
    """Verify and checkpoint the audit trail."""


@audit.command("verify")
@click.option(
    "--jobs",
    default=os.cpu_count() or 1,
    show_default="the number of CPUs",
    type=click.IntRange(1, 64),
    help="Processes that walk a large trail in parallel.",
)
@click.option(
    "--witness-state",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A witness's own state file: also fail if the trail lost the tree it co-signed last.",
)
@db_option
def audit_verify(jobs, witness_state, database_url):
    """Exit 0 if the trail is intact, else 1 and the first bad entry's sequence number (or the
    size of the checkpoint or co-signed tree that no longer matches)."""
    from govern.errors import GovernError
    from govern.runtime import unit_of_work
    from govern.services import trail
    from govern.witness import State

    witness = State.load(witness_state).tree() if witness_state else None
    runtime = _runtime(database_url)
    bar = None

    def progress(done, total):
        # A progress bar only where it helps: a large trail on an interactive terminal.
        nonlocal bar
        if bar is None and total >= 100_000 and sys.stderr.isatty():
            bar = click.progressbar(length=total, label="verifying", file=sys.stderr)
        if bar is not None:
            bar.update(done - bar.pos)

    result = None
    try:
        with unit_of_work(runtime) as ctx:
            result = trail.verify(ctx, progress, jobs, witness)
    except GovernError as exc:
        # The verdict stands even when this run cannot be recorded (a damaged trail may refuse
        # the append); an intact verdict that cannot be recorded is not intact.
        if result is None:
            raise
        click.echo(f"warning: {exc}", err=True)
        if result.ok:
            result.ok, result.first_bad, result.problem = False, result.entries + 1, str(exc)
    if bar is not None:
        bar.render_finish()
    if result.ok:
        extra = ""
        if witness is not None:
            extra = f", including the tree of size {witness.size} {witness.witness} co-signed"
        click.echo(f"ok: {result.entries} entries intact{extra}")
        return
    click.echo(f"{result.first_bad}")
    click.echo(f"broken at {result.first_bad}: {result.problem}", err=True)
    sys.exit(1)


@audit.command("checkpoint")
@db_option
def audit_checkpoint(database_url):
    """Sign a checkpoint of the trail's current tree now."""
    from govern.runtime import unit_of_work
    from govern.services import trail

    with unit_of_work(_runtime(database_url)) as ctx:
        seq = trail.checkpoint(ctx)
    click.echo(f"checkpoint at entry {seq}" if seq else "the trail is empty")


@audit.command("prove")
@click.argument("seq", type=click.IntRange(1))
@click.option("--size", type=click.IntRange(1), default=None, help="Tree size (a checkpoint's).")
@db_option
def audit_prove(seq, size, database_url):
    """Print an inclusion proof for entry SEQ (JSON), for `govern audit check-proof`."""
    import json

    from govern.runtime import unit_of_work
    from govern.services import trail

    with unit_of_work(_runtime(database_url)) as ctx:
        proof = trail.inclusion(ctx, seq, size)
    click.echo(json.dumps(proof, indent=2, ensure_ascii=False))


@audit.command("check-proof")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option(
    "--keys",
    "keys_file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="The office's public keys: the JSON of GET /api/v1/keys.",
)
def audit_check_proof(file, keys_file):
    """Check an inclusion proof offline, with no database: exit 0 when the entry is in the tree
    the office's checkpoint key signed, else 1."""
    import json

    from govern.tlog import TlogError
    from govern.witness import check_proof

    try:
        said = check_proof(json.load(file), json.load(keys_file)["keys"])
    except (TlogError, ValueError, KeyError, TypeError) as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    click.echo(f"valid: {said}")


@audit.group("witness")
def audit_witness():
    """The outside witnesses whose co-signatures the office accepts."""


@audit_witness.command("add")
@click.argument("name")
@click.argument("pubkey")
@db_option
def audit_witness_add(name, pubkey, database_url):
    """Register witness NAME by the key `govern witness keygen` printed (audited)."""
    from govern.errors import GovernError
    from govern.runtime import unit_of_work
    from govern.services import trail

    try:
        with unit_of_work(_runtime(database_url)) as ctx:
            trail.add_witness(ctx, name, pubkey)
    except GovernError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"witness {name} registered")


@main.group(invoke_without_command=True)
@click.option("--url", help="The office's govern, e.g. https://govern.example.")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path), help="State file.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def witness(click_ctx, url, state, key):
    """One witness round (run it every few minutes from cron or a systemd timer): fetch the
    office's newest checkpoint and a consistency proof from the last one co-signed, check both,
    co-sign and post. Exit 0 when co-signed, 1 (and no co-signature) on an inconsistent history."""
    if click_ctx.invoked_subcommand is not None:
        return
    if not (url and state and key):
        raise click.UsageError("a round needs --url, --state and --key")
    from govern.tlog import TlogError
    from govern.witness import WitnessRefusal, run_round

    try:
        click.echo(run_round(url, state, key))
    except WitnessRefusal as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    except (TlogError, OSError, ValueError, RuntimeError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@witness.command("keygen")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="The witness's name (default witness/<host name>).")
def witness_keygen(file, name):
    """Make a witness key in FILE; the last line printed is its public key, for the office's
    `govern audit witness add NAME PUBKEY`."""
    import socket

    from govern.witness import keygen

    verifier = keygen(file, name or f"witness/{socket.gethostname()}")
    click.echo(f"witness key written to {file}")
    click.echo(f"register it at the office: govern audit witness add {verifier.name} PUBKEY")
    click.echo(str(verifier))


@main.group()
def warnings():
    """Warnings ahead of NDA, data-security agreement and minimisation record ends."""


@warnings.command("sweep")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Sweep as of this date (default: today on the office's calendar).",
)
@db_option
def warnings_sweep(today, database_url):
    """Queue in the outbox the warnings due (30 days ahead); safe to run every day."""
    from govern.runtime import unit_of_work
    from govern.services.warnings import sweep_warnings

    with unit_of_work(_runtime(database_url)) as ctx:
        queued = sweep_warnings(ctx, today.date() if today else ctx.today())
    click.echo(f"{queued} warning(s) queued")


@main.group()
def outbox():
    """The outbox: notifications and warnings the pages show, mailed where SMTP is configured."""


@outbox.command("send")
@click.option(
    "--to",
    "recipients",
    multiple=True,
    metavar="ROLE=ADDRESS",
    help="Mail a role's messages to ADDRESS (repeatable; adds to mail_to in govern.toml).",
)
@db_option
def outbox_send(recipients, database_url):
    """Mail the messages not sent yet (smtp_host, smtp_port, smtp_from in govern.toml or
    GOVERN_SMTP_*); a message the server refuses stays pending for the next run."""
    from govern.errors import GovernError
    from govern.runtime import unit_of_work
    from govern.services import outbox as outbox_service

    runtime = _runtime(database_url)
    addresses = {role: list(boxes) for role, boxes in runtime.settings.mail_to.items()}
    for given in recipients:
        role, sep, address = given.partition("=")
        if not sep or not role or "@" not in address:
            raise click.BadParameter(f"{given!r}: write ROLE=ADDRESS", param_hint="--to")
        addresses.setdefault(role.strip(), []).append(address.strip())
    try:
        with unit_of_work(runtime) as ctx:
            result = outbox_service.send_pending(ctx, addresses)
    except GovernError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    click.echo(
        f"sent {result['sent']}, refused {result['refused']}, still pending {result['pending']}"
    )


@main.group()
def keys():
    """Manage the office's seal keys."""


@keys.command("rotate")
@db_option
def keys_rotate(database_url):
    """Make a new seal key (audited); old public keys stay published, with their retirement
    time, so old approvals still verify and nothing sealed after retirement does."""
    from govern.actions import Action
    from govern.context import Target, require
    from govern.runtime import unit_of_work

    runtime = _runtime(database_url)
    keyring = runtime.keys
    retired = [k.kid for k in keyring.seal_keys if not k.retired]
    # The new key is written first but sealed with only once the rotation is in the trail: if
    # the entry cannot be written, nothing changes (the unused key file is harmless).
    new = keyring.new_seal_key()
    with unit_of_work(runtime) as ctx:
        decision = require(ctx, Action.KEY_ROTATE, Target("key", new.kid))
        decision.record(retired=retired)
    keyring.make_current(new)
    click.echo(new.kid)


def register_flask_commands(app) -> None:
    """Nothing extra on `flask`: the `govern` command is the one interface."""


@main.group()
def disclosures():
    """Sweeps over disclosure requests (clause 3.6)."""


@disclosures.command("expire")
@db_option
def disclosures_expire(database_url):
    """Expire submitted requests nobody decided in time and approved ones whose window ended."""
    from govern.runtime import unit_of_work
    from govern.services import disclosures as service

    with unit_of_work(_runtime(database_url)) as ctx:
        expired = service.expire_overdue(ctx)
    click.echo(f"expired {len(expired)} request(s)" + (f": {expired}" if expired else ""))


@main.group()
def approval():
    """Sealed approvals of disclosure requests."""


@approval.command("verify")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option(
    "--keys",
    "keys_file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="The office's public keys: the JSON of GET /api/v1/keys.",
)
def approval_verify(file, keys_file):
    """Check an exported approval (the JSON of GET /api/v1/disclosures/{id}/approval) offline.

    Exit 0 when the seal verifies and its payload is exactly the document, else 1.
    """
    import json

    from govern.approvals import InvalidApproval, verify_approval

    try:
        document = verify_approval(json.load(file), json.load(keys_file))
    except (InvalidApproval, ValueError) as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    click.echo(
        f"valid: request {document.get('request_id')} for {document.get('third_party')} "
        f"approved by {document.get('approved', {}).get('by')}"
    )

"""Settings: read from the environment (GOVERN_*), the instance folder and an optional govern.toml.

The instance folder (``GOVERN_HOME``, default ``./instance``) owns every secret govern uses: the
session secret, the key-encryption key, the seal keys, the token key and the audit checkpoint key.
None of them ever lives in the repository; ``govern init`` creates them with owner-only permissions.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = REPO_ROOT / "policies"
MIGRATIONS_DIR = REPO_ROOT / "migrations"
# Who integrates queued trail entries (Settings.trail_integrate).
TRAIL_INTEGRATE = ("background", "inline")


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    # The largest item content accepted, in bytes.
    max_content_bytes: int = 16 * 1024 * 1024
    # Bearer tokens for the API are short-lived on purpose: a stolen one is worth little.
    api_token_seconds: int = 900
    # A submitted disclosure nobody decides within this many days expires.
    request_expiry_days: int = 14
    # Warnings go out this many days before an NDA, DSA, grant, window or term ends.
    warn_days: int = 30
    # A signed audit checkpoint is made after this many entries (and by `govern audit checkpoint`).
    checkpoint_every: int = 1000
    # ...and at the first append after this many minutes since the last one.
    checkpoint_minutes: int = 60
    # Each unit of work queues its entries and whoever finds the sequencer free integrates them
    # in batches (govern.audit, group commit; SQLite from 3.35). Off (GOVERN_TRAIL_QUEUE=0), each
    # unit of work sequences its own entries under the head's lock until its commit: one trail
    # then serialises on that row (kept to measure the difference, bench figure 8).
    trail_queue: bool = True
    # With the queue: who integrates the queued entries into the chain. "background"
    # (GOVERN_TRAIL_INTEGRATE): each process's integrator thread, poked after the commit, so the
    # audited request pays for its queue insert only (govern.integrator). "inline": the request
    # itself, after its commit (one more transaction before the response). Reads of the trail
    # integrate first either way, so neither leaves a gap in what is read.
    trail_integrate: str = "background"
    # ...and how long that thread lets entries gather after a poke before it integrates them
    # (GOVERN_TRAIL_BATCH_MS): one transaction and one WAL flush per batch instead of one per
    # request, as a transparency log's sequencer batches. Readers never wait for it (they
    # integrate first themselves); 0 integrates at every poke. 100 ms, not 20: at a thousand
    # reads a second the integration's fixed cost (seven statements and a commit) is then spread
    # over about fifty entries a worker instead of ten (PostgreSQL's CPU per read: 408 -> 305 us,
    # reads/s +8 %, measured with figure 2's load).
    trail_batch_ms: int = 100
    # The audited read of an item's content over a bearer token is served without Flask's
    # request cycle (govern.api.direct); off (GOVERN_DIRECT_READ=0), by the route like the rest.
    direct_read: bool = True
    # Reverse proxies in front of govern whose X-Forwarded-For may be trusted (0: none).
    proxy_hops: int = 0
    # Failed logins allowed per account and per client address inside the window.
    login_max_failures_account: int = 5
    login_max_failures_address: int = 20
    login_window_seconds: int = 900
    # argon2id cost; the defaults are argon2-cffi's RFC 9106 low-memory profile.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    issuer: str = "govern"
    # The office's own calendar decides what "today" is for terms, NDAs and windows.
    timezone: str = "Asia/Shanghai"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "govern@localhost"
    # Who receives the outbox by mail: a role -> its mailboxes (a [mail_to] table in govern.toml).
    mail_to: dict = field(default_factory=dict)
    https: bool = False
    # The address people reach govern at (https://govern.example.gov.cn), for links and QR codes
    # that leave the service: letters, set-password links, token instructions. Unset: the host
    # the request came to.
    public_url: str | None = None
    testing: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"


def _default_url(home: Path) -> str:
    return f"sqlite:///{(home / 'govern.db').resolve()}"


def load_settings(overrides: dict | None = None) -> Settings:
    """Build the settings: defaults < govern.toml < environment < explicit overrides."""
    overrides = dict(overrides or {})
    home = Path(overrides.pop("home", None) or os.environ.get("GOVERN_HOME") or "instance")
    values: dict = {}
    toml_path = home / "govern.toml"
    if toml_path.exists():
        values.update(tomllib.loads(toml_path.read_text(encoding="utf-8")))
    names = {f.name: f for f in fields(Settings)}
    for name in names:
        env = os.environ.get(f"GOVERN_{name.upper()}")
        if env is not None and name not in ("home", "extra"):
            values[name] = env
    values.update(overrides)
    values.setdefault("database_url", _default_url(home))
    if not values["database_url"]:
        values["database_url"] = _default_url(home)
    settings = Settings(home=home, database_url=values.pop("database_url"))
    known = {k: v for k, v in values.items() if k in names and k not in ("home", "database_url")}
    typed = {k: _coerce(names[k].type, v) for k, v in known.items()}
    settings = replace(settings, **typed)
    if settings.trail_integrate not in TRAIL_INTEGRATE:
        raise ValueError(f"GOVERN_TRAIL_INTEGRATE must be one of {', '.join(TRAIL_INTEGRATE)}")
    return settings


def _coerce(kind: str, value):
    if isinstance(value, str):
        if kind == "int":
            return int(value)
        if kind == "bool":
            return value.strip().lower() in ("1", "true", "yes", "on")
    return value

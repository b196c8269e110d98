"""The outside witness (run by the vendor or any party the office names) and the offline proof
check: both work without the office's database, from what the office serves and signs.

A witness keeps its own state file: the office's checkpoint key (pinned on first use) and the
last checkpoint it co-signed. Each round it fetches the newest checkpoint and a consistency proof
from its last co-signed size, checks the office's signature and the proof, and only then
co-signs (C2SP tlog-cosignature/v1) and posts the co-signature. A history that shrank or forked
is refused, naming the sizes that disagree; the state file is not moved.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from govern import tlog
from govern.audit import TAG, WitnessTree
from govern.crypto import verifier_from_jwks


class WitnessRefusal(Exception):
    """The office's history is not one the witness can co-sign; the message says why."""


# Keys and state ----------------------------------------------------------------------------------


def keygen(path: Path, name: str) -> tlog.Verifier:
    """Write a new witness key (signed-note private key form, owner-only) and return its
    verifier key, the one word ``govern audit witness add NAME PUBKEY`` takes."""
    key = Ed25519PrivateKey.generate()
    text = tlog.private_key_text(name, tlog.ALG_COSIGNATURE_V1, key)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    return tlog.Verifier(name, tlog.ALG_COSIGNATURE_V1, tlog.raw_public(key))


def load_key(path: Path) -> tuple[str, Ed25519PrivateKey]:
    name, alg, key = tlog.parse_private_key(path.read_text())
    if alg != tlog.ALG_COSIGNATURE_V1:
        raise tlog.TlogError("not a witness (cosignature/v1) key")
    return name, key


@dataclass
class State:
    """What a witness remembers: the office's key and the last checkpoint it co-signed."""

    office_key: str | None = None
    size: int = 0
    root: bytes = tlog.EMPTY_ROOT
    checkpoint: str = ""
    witness: str = ""

    @classmethod
    def load(cls, path: Path) -> State:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(
            data.get("office_key"),
            int(data.get("size", 0)),
            tlog.unb64(data.get("root", tlog.b64(tlog.EMPTY_ROOT)), "the state's root"),
            data.get("checkpoint", ""),
            data.get("witness", ""),
        )

    def save(self, path: Path) -> None:
        data = {
            "office_key": self.office_key,
            "size": self.size,
            "root": tlog.b64(self.root),
            "checkpoint": self.checkpoint,
            "witness": self.witness,
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)

    def tree(self) -> WitnessTree:
        return WitnessTree(self.witness or "the witness", self.size, self.root)


# One round ---------------------------------------------------------------------------------------


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (the office's URL)
        return response.read()


def run_round(base_url: str, state_path: Path, key_path: Path) -> str:
    """One witness round; returns what it did. Raises WitnessRefusal on a bad history."""
    name, key = load_key(key_path)
    state = State.load(state_path)
    api = base_url.rstrip("/") + "/api/v1"
    jwks = json.loads(_get(api + "/keys"))["keys"]
    office = verifier_from_jwks(jwks)
    if state.office_key is None:
        state.office_key = str(office)  # trust on first use, then pinned
    elif str(office) != state.office_key:
        raise WitnessRefusal(
            f"the office now publishes checkpoint key {office}, not the pinned {state.office_key}"
        )
    pinned = tlog.Verifier.parse(state.office_key)
    note = _get(api + "/audit/checkpoint").decode("utf-8")
    try:
        checkpoint, _ = tlog.open_checkpoint(note, pinned)
    except tlog.TlogError as exc:
        raise WitnessRefusal(f"the office's checkpoint does not verify: {exc}") from exc
    if checkpoint.size < state.size:
        raise WitnessRefusal(
            f"the office's newest tree has size {checkpoint.size}, smaller than size "
            f"{state.size} this witness co-signed"
        )
    query = urllib.parse.urlencode({"from": state.size, "to": checkpoint.size})
    proof = json.loads(_get(api + "/audit/proof/consistency?" + query))
    hashes = [tlog.unb64(h, "a proof hash") for h in proof.get("hashes", [])]
    try:
        tlog.verify_consistency(state.size, checkpoint.size, state.root, checkpoint.root, hashes)
    except tlog.TlogError as exc:
        raise WitnessRefusal(
            f"inconsistent history: {exc} (size {state.size} is the one this witness co-signed)"
        ) from exc
    body = checkpoint.body()
    signature = tlog.cosign(body, name, key, int(time.time()))
    request = urllib.request.Request(  # noqa: S310
        api + "/audit/cosignatures",
        data=json.dumps({"checkpoint": body, "cosignature": signature.line()}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise RuntimeError(f"the office refused the co-signature ({exc.code}): {detail}") from exc
    state.size, state.root, state.witness = checkpoint.size, checkpoint.root, name
    state.checkpoint = tlog.format_note(body, [signature])
    state.save(state_path)
    return f"co-signed {checkpoint.origin} at size {checkpoint.size}"


# Offline proof check -----------------------------------------------------------------------------


def check_proof(proof: dict, jwks: list[dict]) -> str:
    """Check an inclusion proof (GET /api/v1/audit/entries/{seq}/proof) against the office's
    published keys: the checkpoint's signature, then the entry's path to its root."""
    from govern.audit import HASHED

    office = verifier_from_jwks(jwks)
    if not proof.get("checkpoint"):
        raise tlog.TlogError("the proof carries no signed checkpoint")
    checkpoint, _ = tlog.open_checkpoint(proof["checkpoint"], office)
    size, index = int(proof["tree_size"]), int(proof["leaf_index"])
    if size != checkpoint.size:
        raise tlog.TlogError(f"the proof is for size {size}, the checkpoint for {checkpoint.size}")
    entry = dict(proof["entry"])
    if isinstance(entry.get("details"), dict):
        entry["details"] = json.dumps(
            entry["details"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
    if int(entry["seq"]) != index + 1:
        raise tlog.TlogError(f"entry {entry['seq']} is not leaf {index}")
    text = (TAG + "\x00" + "\x00".join(str(entry[k]) for k in HASHED)).encode("utf-8")
    hashes = [tlog.unb64(h, "a proof hash") for h in proof["hashes"]]
    tlog.verify_inclusion(index, size, tlog.leaf_hash(text), hashes, checkpoint.root)
    return f"entry {entry['seq']} is in {checkpoint.origin} at size {size}"

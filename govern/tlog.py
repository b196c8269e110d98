"""Transparency-log primitives, pure (no database, no I/O): RFC 6962/9162 Merkle tree hashing,
inclusion and consistency proofs and their verification, and the C2SP text formats the trail's
checkpoints travel in (signed-note, tlog-checkpoint, tlog-cosignature/v1) with Ed25519.

Trees are addressed by complete subtrees: node (level, index) covers leaves
[index * 2**level, (index + 1) * 2**level). Proof builders take a ``get(level, index)`` for stored
complete subtrees and compute the one ragged right edge a proof may need from O(log n) of them,
so a proof never needs more than O(log n) reads whatever the tree's size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
NodeSource = Callable[[int, int], bytes]


class TlogError(ValueError):
    """A proof, note, checkpoint, key or signature that does not hold; the message says why."""


# RFC 6962 §2.1 hashing ---------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): where RFC 6962 splits a tree of n."""
    return 1 << ((n - 1).bit_length() - 1)


def append_leaves(
    frontier: list[bytes], size: int, leaves: Iterable[bytes]
) -> tuple[list[bytes], int, list[tuple[int, int, bytes]]]:
    """Append leaf hashes to a tree given by its frontier (the roots of its complete subtrees,
    largest first: one per bit set in ``size``). Returns the new frontier, the new size and
    every complete subtree the leaves completed, as (level, index, hash) — leaves included.

    Each leaf completes one node per trailing one-bit of the size before it: two on average."""
    frontier = list(frontier)
    nodes = []
    for leaf in leaves:
        index, level, carry = size, 0, leaf
        nodes.append((0, index, carry))
        while index & 1:
            carry = node_hash(frontier.pop(), carry)
            index >>= 1
            level += 1
            nodes.append((level, index, carry))
        frontier.append(carry)
        size += 1
    return frontier, size, nodes


def frontier_levels(size: int) -> list[int]:
    """The levels of a tree's frontier nodes, largest first (the bits set in ``size``)."""
    return [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]


def frontier_keys(size: int) -> list[tuple[int, int]]:
    """The (level, index) of each frontier node of a tree of ``size`` leaves, largest first."""
    return [(level, (size >> level) - 1) for level in frontier_levels(size)]


def root_of_frontier(frontier: list[bytes]) -> bytes:
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = node_hash(left, root)
    return root


def root_from_leaves(leaves: Iterable[bytes]) -> bytes:
    frontier, _, _ = append_leaves([], 0, leaves)
    return root_of_frontier(frontier)


# Proofs from stored complete subtrees ------------------------------------------------------------


def subtree_hash(lo: int, hi: int, get: NodeSource) -> bytes:
    """MTH(D[lo:hi]) where lo is a multiple of the power of two covering hi - lo (as in every
    subtree a proof names): one read if complete, else the right edge from O(log n) reads."""
    n = hi - lo
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return get(level, lo >> level)
    k = split_point(n)
    return node_hash(subtree_hash(lo, lo + k, get), subtree_hash(lo + k, hi, get))


def root_at(size: int, get: NodeSource) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree_hash(0, size, get)


def inclusion_proof(index: int, size: int, get: NodeSource) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(index, D[0:size]): sibling hashes, leaf level first."""
    if not 0 <= index < size:
        raise TlogError(f"leaf {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            proof.append(subtree_hash(lo + k, hi, get))
            hi = lo + k
        else:
            proof.append(subtree_hash(lo, lo + k, get))
            lo += k
    proof.reverse()
    return proof


def consistency_proof(first: int, second: int, get: NodeSource) -> list[bytes]:
    """RFC 6962 §2.1.2 PROOF(first, D[0:second]); empty when first is 0 or equals second."""
    if not 0 <= first <= second:
        raise TlogError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    proof: list[bytes] = []
    lo, hi, m, whole = 0, second, first, True
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            proof.append(subtree_hash(lo + k, hi, get))
            hi = lo + k
        else:
            proof.append(subtree_hash(lo, lo + k, get))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        proof.append(subtree_hash(lo, hi, get))
    proof.reverse()
    return proof


def needed_nodes(build: Callable[[NodeSource], object]) -> list[tuple[int, int]]:
    """The stored nodes ``build`` will read, found by a dry run (the shape of a proof does not
    depend on hash values), so that a database fetches them all in one query."""
    keys: list[tuple[int, int]] = []

    def record(level: int, index: int) -> bytes:
        keys.append((level, index))
        return bytes(HASH_SIZE)

    build(record)
    return list(dict.fromkeys(keys))


# RFC 9162 §2.1.3.2 and §2.1.4.2 verification -----------------------------------------------------


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """The root a proof leads to from a leaf hash; TlogError if the proof has the wrong shape."""
    if not 0 <= index < size:
        raise TlogError(f"leaf index {index} is not below tree size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise TlogError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while True:
                    fn, sn = fn >> 1, sn >> 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise TlogError("inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise TlogError(f"leaf {index} is not in the tree of size {size} with that root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> None:
    """Raise TlogError unless the tree of size ``second`` extends the one of size ``first``."""
    if first > second:
        raise TlogError(f"size {second} is smaller than size {first}: the log shrank")
    if first == second:
        if proof or first_root != second_root:
            raise TlogError(f"two different trees of the same size {first}")
        return
    if first == 0:
        if proof:
            raise TlogError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise TlogError(f"empty consistency proof from size {first} to size {second}")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise TlogError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while True:
                    fn, sn = fn >> 1, sn >> 1
                    if fn & 1 or fn == 0:
                        break
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise TlogError(f"the tree of size {second} does not extend the tree of size {first}")


# C2SP signed-note ---------------------------------------------------------------------------------

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
DASH = "\u2014 "


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise TlogError(f"{what} is not base64") from exc


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise TlogError(f"{name!r} is not a key name (no spaces or '+')")


def key_id(name: str, alg: int, public: bytes) -> bytes:
    """signed-note key ID: the first 4 bytes of SHA-256(name || 0x0A || alg || public key)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4]


def raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes_raw()


@dataclass(frozen=True)
class Verifier:
    """A verifier key: ``name+hex(key ID)+base64(alg || public key)`` in its one-word form."""

    name: str
    alg: int
    public: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.alg, self.public)

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{b64(bytes([self.alg]) + self.public)}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise TlogError("a verifier key is name+keyid+key")
        name, hexid, material = parts
        _check_name(name)
        raw = unb64(material, "the verifier key")
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise TlogError("the verifier key is not an Ed25519 key")
        found = cls(name, raw[0], raw[1:])
        if found.key_id.hex() != hexid.lower():
            raise TlogError("the verifier key's ID does not match its key")
        return found

    def public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public)


def private_key_text(name: str, alg: int, key: Ed25519PrivateKey) -> str:
    """A signer key in the signed-note ``PRIVATE+KEY+name+keyid+base64(alg || seed)`` form."""
    _check_name(name)
    kid = key_id(name, alg, raw_public(key)).hex()
    return f"PRIVATE+KEY+{name}+{kid}+{b64(bytes([alg]) + key.private_bytes_raw())}"


def parse_private_key(text: str) -> tuple[str, int, Ed25519PrivateKey]:
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise TlogError("not a PRIVATE+KEY+name+keyid+key signer key")
    name, hexid, material = parts[2:]
    raw = unb64(material, "the signer key")
    if len(raw) != 33:
        raise TlogError("the signer key is not an Ed25519 seed")
    key = Ed25519PrivateKey.from_private_bytes(raw[1:])
    if key_id(name, raw[0], raw_public(key)).hex() != hexid.lower():
        raise TlogError("the signer key's ID does not match its key")
    return name, raw[0], key


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{DASH}{self.name} {b64(self.key_id + self.signature)}\n"

    @classmethod
    def parse_line(cls, line: str) -> NoteSignature:
        if not line.startswith(DASH):
            raise TlogError("a signature line starts with an em dash and a space")
        name, sep, blob = line[len(DASH) :].rstrip("\n").partition(" ")
        if not sep:
            raise TlogError("a signature line is name and signature")
        _check_name(name)
        raw = unb64(blob, "a signature")
        if len(raw) < 5:
            raise TlogError("a signature is too short")
        return cls(name, raw[:4], raw[4:])


def format_note(text: str, signatures: Iterable[NoteSignature]) -> str:
    return text + "\n" + "".join(sig.line() for sig in signatures)


def parse_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text (ending in a newline) and its signatures."""
    text, sep, rest = note.rpartition("\n\n")
    if not sep or not rest.endswith("\n"):
        raise TlogError("not a signed note: no blank line before signature lines")
    return text + "\n", [NoteSignature.parse_line(line) for line in rest.splitlines()]


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> NoteSignature:
    return NoteSignature(
        name, key_id(name, ALG_ED25519, raw_public(key)), key.sign(text.encode("utf-8"))
    )


def verify_note_signature(text: str, sig: NoteSignature, verifier: Verifier) -> None:
    if sig.name != verifier.name or sig.key_id != verifier.key_id:
        raise TlogError(f"the signature is not by {verifier.name}")
    try:
        verifier.public_key().verify(sig.signature, text.encode("utf-8"))
    except InvalidSignature as exc:
        raise TlogError(f"{verifier.name}'s signature does not verify") from exc


# C2SP tlog-checkpoint -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{b64(self.root)}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not lines[0]:
            raise TlogError("a checkpoint is an origin, a size and a root hash, one a line")
        origin, size, root = lines[0], lines[1], lines[2]
        if not size.isdigit() or (size != "0" and size.startswith("0")):
            raise TlogError("a checkpoint's size is a decimal without leading zeros")
        raw = unb64(root, "the checkpoint's root hash")
        if len(raw) != HASH_SIZE:
            raise TlogError("the checkpoint's root hash is not 32 bytes")
        return cls(origin, int(size), raw)


def open_checkpoint(note: str, verifier: Verifier) -> tuple[Checkpoint, list[NoteSignature]]:
    """A checkpoint signed by ``verifier`` (its origin must be the key's name); also returns the
    note's other signatures (co-signatures), unchecked."""
    text, signatures = parse_note(note)
    checkpoint = Checkpoint.parse(text)
    if checkpoint.origin != verifier.name:
        raise TlogError(f"the checkpoint is for {checkpoint.origin}, not {verifier.name}")
    mine = [s for s in signatures if s.name == verifier.name and s.key_id == verifier.key_id]
    if not mine:
        raise TlogError(f"the checkpoint carries no signature by {verifier.name}")
    verify_note_signature(text, mine[0], verifier)
    return checkpoint, [s for s in signatures if s not in mine]


# C2SP tlog-cosignature/v1 -------------------------------------------------------------------------


def cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def cosign(body: str, name: str, key: Ed25519PrivateKey, timestamp: int) -> NoteSignature:
    """A witness's timestamped co-signature of a checkpoint body."""
    signature = key.sign(cosigned_message(body, timestamp))
    kid = key_id(name, ALG_COSIGNATURE_V1, raw_public(key))
    return NoteSignature(name, kid, timestamp.to_bytes(8, "big") + signature)


def verify_cosignature(body: str, sig: NoteSignature, verifier: Verifier) -> int:
    """Check a co-signature over a checkpoint body; returns its timestamp."""
    if verifier.alg != ALG_COSIGNATURE_V1:
        raise TlogError(f"{verifier.name} is not a cosignature/v1 key")
    if sig.name != verifier.name or sig.key_id != verifier.key_id:
        raise TlogError(f"the co-signature is not by {verifier.name}")
    if len(sig.signature) != 8 + 64:
        raise TlogError("a cosignature/v1 is a timestamp and an Ed25519 signature")
    timestamp = int.from_bytes(sig.signature[:8], "big")
    if timestamp >= 1 << 63:
        raise TlogError("the co-signature's timestamp is out of range")
    try:
        verifier.public_key().verify(sig.signature[8:], cosigned_message(body, timestamp))
    except InvalidSignature as exc:
        raise TlogError(f"{verifier.name}'s co-signature does not verify") from exc
    return timestamp

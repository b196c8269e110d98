"""The transparency-log primitives against a straightforward implementation of RFC 6962 written
here from its definitions (recursive MTH, PATH and SUBPROOF over all leaves), for many sizes."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from govern import tlog

SIZES = list(range(1, 40)) + [63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 1023, 1025]


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1: the Merkle Tree Hash of a list of leaf *data*."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return subproof(m, leaves[:k], whole) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def data(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def stored(leaves: list[bytes]):
    """The node store a log keeps: every complete subtree, filled by appending in batches."""
    frontier, size, nodes = [], 0, {}
    for start in range(0, len(leaves), 7):
        batch = [tlog.leaf_hash(x) for x in leaves[start : start + 7]]
        frontier, size, new = tlog.append_leaves(frontier, size, batch)
        nodes.update({(level, index): h for level, index, h in new})
    return frontier, nodes


@pytest.mark.parametrize("n", SIZES)
def test_roots_match_the_definition(n):
    leaves = data(n)
    frontier, nodes = stored(leaves)
    assert tlog.root_of_frontier(frontier) == mth(leaves)
    assert len(frontier) == bin(n).count("1")
    assert [nodes[key] for key in tlog.frontier_keys(n)] == frontier
    for size in range(1, n + 1):
        assert tlog.root_at(size, lambda lv, i: nodes[(lv, i)]) == mth(leaves[:size])


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_proofs_match_and_verify(n):
    leaves = data(n)
    _, nodes = stored(leaves)
    get = nodes.__getitem__
    for size in sorted({1, n // 2 or 1, n - 1 or 1, n}):
        root = mth(leaves[:size])
        for index in sorted({0, size // 3, size - 1}):
            proof = tlog.inclusion_proof(index, size, lambda lv, i: get((lv, i)))
            assert proof == path(index, leaves[:size])
            leaf = tlog.leaf_hash(leaves[index])
            tlog.verify_inclusion(index, size, leaf, proof, root)
            with pytest.raises(tlog.TlogError):
                tlog.verify_inclusion(index, size, tlog.leaf_hash(b"forged"), proof, root)
            if proof:
                bent = [proof[0][::-1]] + proof[1:]
                with pytest.raises(tlog.TlogError):
                    tlog.verify_inclusion(index, size, leaf, bent, root)
                with pytest.raises(tlog.TlogError):
                    tlog.verify_inclusion(index, size, leaf, proof[:-1], root)


@pytest.mark.parametrize("n", SIZES)
def test_consistency_proofs_match_and_verify(n):
    leaves = data(n)
    _, nodes = stored(leaves)
    second_root = mth(leaves)
    for first in sorted({1, 2, n // 3, n // 2, n - 1, n} - {0}):
        if first > n:
            continue
        proof = tlog.consistency_proof(first, n, lambda lv, i: nodes[(lv, i)])
        assert proof == (subproof(first, leaves, True) if first < n else [])
        first_root = mth(leaves[:first])
        tlog.verify_consistency(first, n, first_root, second_root, proof)
        forked = mth(leaves[: first - 1] + [b"another history"])
        with pytest.raises(tlog.TlogError):
            tlog.verify_consistency(first, n, forked, second_root, proof)
        if first < n:
            with pytest.raises(tlog.TlogError):
                tlog.verify_consistency(n, first, second_root, first_root, proof)


def test_proofs_read_few_stored_nodes():
    size = 1_000_003
    reads = tlog.needed_nodes(lambda get: tlog.inclusion_proof(123_457, size, get))
    assert len(reads) <= 2 * size.bit_length()
    reads = tlog.needed_nodes(lambda get: tlog.consistency_proof(999_999, size, get))
    assert len(reads) <= 2 * size.bit_length()


def test_checkpoint_note_signs_and_rejects_edits():
    key = Ed25519PrivateKey.generate()
    verifier = tlog.Verifier("office.example/trail", tlog.ALG_ED25519, tlog.raw_public(key))
    cp = tlog.Checkpoint("office.example/trail", 42, hashlib.sha256(b"x").digest())
    body = cp.body()
    assert body == f"office.example/trail\n42\n{tlog.b64(cp.root)}\n"
    note = tlog.format_note(body, [tlog.sign_note(body, verifier.name, key)])
    assert note.startswith(body + "\n\u2014 office.example/trail ")
    opened, others = tlog.open_checkpoint(note, verifier)
    assert opened == cp and others == []
    with pytest.raises(tlog.TlogError):
        tlog.open_checkpoint(note.replace("\n42\n", "\n43\n"), verifier)
    assert tlog.Verifier.parse(str(verifier)) == verifier
    with pytest.raises(tlog.TlogError):
        tlog.Verifier.parse(str(verifier).replace("+", "+0", 1))


def test_key_id_is_the_signed_note_one():
    # SHA-256(name || "\n" || 0x01 || public key)[:4], spelled out independently.
    key = Ed25519PrivateKey.generate()
    public = tlog.raw_public(key)
    expected = hashlib.sha256(b"log.example\n\x01" + public).digest()[:4]
    assert tlog.key_id("log.example", tlog.ALG_ED25519, public) == expected


def test_cosignature_is_timestamped_and_bound_to_the_body():
    key = Ed25519PrivateKey.generate()
    verifier = tlog.Verifier("witness.example", tlog.ALG_COSIGNATURE_V1, tlog.raw_public(key))
    body = tlog.Checkpoint("office.example/trail", 7, bytes(32)).body()
    sig = tlog.cosign(body, "witness.example", key, 1_700_000_000)
    assert sig.key_id == hashlib.sha256(b"witness.example\n\x04" + verifier.public).digest()[:4]
    assert sig.signature[:8] == (1_700_000_000).to_bytes(8, "big")
    parsed = tlog.NoteSignature.parse_line(sig.line())
    assert tlog.verify_cosignature(body, parsed, verifier) == 1_700_000_000
    key.public_key().verify(sig.signature[8:], b"cosignature/v1\ntime 1700000000\n" + body.encode())
    with pytest.raises(tlog.TlogError):
        tlog.verify_cosignature(body.replace("\n7\n", "\n8\n"), parsed, verifier)
    text = tlog.private_key_text("witness.example", tlog.ALG_COSIGNATURE_V1, key)
    name, alg, again = tlog.parse_private_key(text)
    assert (name, alg, tlog.raw_public(again)) == ("witness.example", 4, verifier.public)

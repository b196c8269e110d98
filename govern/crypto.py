"""Keys and cryptography: envelope encryption of items, the office's seal keys, the token and audit
keys, compact JWS signing and JWKs.

Every key lives under ``GOVERN_HOME/keys`` with owner-only permissions. Item content is encrypted
with AES-256-GCM under a fresh data key per item; the data key is wrapped (AES-GCM again) by the
key-encryption key. Both layers bind the item's identity as associated data, so a ciphertext or a
wrapped key copied onto another row does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jose import jws
from jose.exceptions import JOSEError

SEAL_ALGORITHM = "ES256"


class DecryptError(Exception):
    """The ciphertext does not open under this key and this identity."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value) -> str:
    """The one canonical JSON form govern signs and hashes: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _write_secret(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _new_ec_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _kid_of(pem: bytes) -> str:
    public = serialization.load_pem_private_key(pem, None).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "seal-" + hashlib.sha256(der).hexdigest()[:16]


@dataclass
class SigningKey:
    kid: str
    pem: bytes
    retired: bool = False

    def sign(self, payload: bytes | str) -> str:
        # python-jose base64-encodes the payload as bytes; a str (canonical_json) must be encoded.
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        return jws.sign(payload, self.pem, headers={"kid": self.kid}, algorithm=SEAL_ALGORITHM)

    @property
    def public_jwk(self) -> dict:
        public = serialization.load_pem_private_key(self.pem, None).public_key()
        nums = public.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(nums.x.to_bytes(32, "big")),
            "y": b64url(nums.y.to_bytes(32, "big")),
            "kid": self.kid,
            "alg": SEAL_ALGORITHM,
            "use": "sig",
        }

    @property
    def public_pem(self) -> bytes:
        public = serialization.load_pem_private_key(self.pem, None).public_key()
        return public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def verify_jws(token: str, jwks: list[dict]) -> bytes:
    """Verify a compact JWS against a set of public JWKs, choosing the key by ``kid``."""
    try:
        header = jws.get_unverified_header(token)
    except JOSEError as exc:
        raise DecryptError(f"not a compact JWS: {exc}") from exc
    key = next((k for k in jwks if k.get("kid") == header.get("kid")), None)
    if key is None:
        raise DecryptError(f"no key with kid {header.get('kid')!r}")
    try:
        return jws.verify(token, key, algorithms=[SEAL_ALGORITHM])
    except JOSEError as exc:
        raise DecryptError(f"signature does not verify: {exc}") from exc


@dataclass
class Keyring:
    """All keys of one instance, loaded once per process."""

    home: Path
    secret_key: bytes
    kek_id: str
    kek: bytes
    api_token_secret: str
    token_key: SigningKey
    audit_key: SigningKey
    seal_keys: list[SigningKey] = field(default_factory=list)
    # What the seal folder looked like when seal_keys were loaded: (current kid, file names).
    _seal_seen: tuple = field(default=(), repr=False)

    @property
    def seal_key(self) -> SigningKey:
        self.refresh_seal_keys()
        return next(k for k in self.seal_keys if not k.retired)

    def jwks(self) -> list[dict]:
        self.refresh_seal_keys()
        return [k.public_jwk for k in self.seal_keys]

    def refresh_seal_keys(self) -> None:
        """Pick up a `govern keys rotate` made by another process: a running app seals with the
        new key and publishes it (and keeps the old ones) without a restart."""
        seal_dir = self.home / "keys" / "seal"
        try:
            seen = (
                (seal_dir / "current").read_text().strip(),
                tuple(sorted(p.name for p in seal_dir.glob("*.pem"))),
            )
        except OSError:
            return
        if seen != self._seal_seen:
            self.seal_keys = _load_seal_keys(seal_dir)
            self._seal_seen = seen

    # Envelope encryption.
    def encrypt(self, plaintext: bytes, identity: str) -> tuple[bytes, bytes, bytes]:
        """Return (nonce, ciphertext, wrapped data key) for content bound to ``identity``."""
        aad = identity.encode("utf-8")
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, aad)
        wrap_nonce = os.urandom(12)
        wrapped = wrap_nonce + AESGCM(self.kek).encrypt(wrap_nonce, data_key, b"dek|" + aad)
        return nonce, ciphertext, wrapped

    def decrypt(
        self, nonce: bytes, ciphertext: bytes, wrapped: bytes | None, identity: str
    ) -> bytes:
        if not wrapped:
            raise DecryptError("the data key was destroyed")
        aad = identity.encode("utf-8")
        try:
            data_key = AESGCM(self.kek).decrypt(wrapped[:12], wrapped[12:], b"dek|" + aad)
            return AESGCM(data_key).decrypt(nonce, ciphertext, aad)
        except InvalidTag as exc:
            raise DecryptError("content does not decrypt under this identity") from exc

    # Seal keys.
    def rotate_seal_key(self) -> SigningKey:
        """Make a new current seal key; the old ones stay published so old seals still verify."""
        new = self.new_seal_key()
        self.make_current(new)
        return new

    def new_seal_key(self) -> SigningKey:
        """A new seal key on disk, not yet used for anything (see :meth:`make_current`)."""
        pem = _new_ec_pem()
        new = SigningKey(_kid_of(pem), pem)
        _write_secret(self.home / "keys" / "seal" / f"{new.kid}.pem", pem)
        return new

    def make_current(self, new: SigningKey) -> None:
        """Seal with ``new`` from now on; the others are retired."""
        seal_dir = self.home / "keys" / "seal"
        for key in self.seal_keys:
            key.retired = True
        (seal_dir / "current").write_text(new.kid)
        self.seal_keys.append(new)
        return new


def ensure_keys(home: Path) -> None:
    """Create any missing key under ``home/keys`` (never overwriting one that exists)."""
    keys = home / "keys"
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(keys, 0o700)
    simple = {
        "secret_key": lambda: secrets.token_hex(32).encode(),
        "kek-1.key": lambda: base64.b64encode(AESGCM.generate_key(bit_length=256)),
        "api-token.key": lambda: secrets.token_hex(32).encode(),
        "token.pem": _new_ec_pem,
        "audit.pem": _new_ec_pem,
    }
    for name, make in simple.items():
        if not (keys / name).exists():
            _write_secret(keys / name, make())
    seal_dir = keys / "seal"
    if not (seal_dir / "current").exists():
        pem = _new_ec_pem()
        kid = _kid_of(pem)
        _write_secret(seal_dir / f"{kid}.pem", pem)
        (seal_dir / "current").write_text(kid)


def _load_seal_keys(seal_dir: Path) -> list[SigningKey]:
    current = (seal_dir / "current").read_text().strip()
    seal_keys = []
    for pem_path in sorted(seal_dir.glob("*.pem"), key=lambda p: p.stat().st_mtime_ns):
        seal_keys.append(SigningKey(pem_path.stem, pem_path.read_bytes(), pem_path.stem != current))
    seal_keys.sort(key=lambda k: not k.retired)
    return seal_keys


def load_keyring(home: Path) -> Keyring:
    keys = home / "keys"
    if not (keys / "secret_key").exists():
        raise FileNotFoundError(f"no keys under {keys}; run `govern init` first")
    seal_keys = _load_seal_keys(keys / "seal")
    token_pem = (keys / "token.pem").read_bytes()
    audit_pem = (keys / "audit.pem").read_bytes()
    return Keyring(
        home=home,
        secret_key=(keys / "secret_key").read_bytes().strip(),
        kek_id="kek-1",
        kek=base64.b64decode((keys / "kek-1.key").read_bytes()),
        api_token_secret=(keys / "api-token.key").read_text().strip(),
        token_key=SigningKey("token-" + _kid_of(token_pem)[5:], token_pem),
        audit_key=SigningKey("audit-" + _kid_of(audit_pem)[5:], audit_pem),
        seal_keys=seal_keys,
    )

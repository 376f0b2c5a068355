"""Account credentials: the access token and the optional app certificate.

Nothing here does I/O. Loading a PEM is CPU work that callers in Home Assistant
run in the executor.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

MIN_RSA_BITS = 2048
# Signing runs on the event loop for every signed request and command; a
# larger key would make each signature cost tens of milliseconds or more.
MAX_RSA_BITS = 4096
# A 4096-bit key with its certificate and a short chain is well under this.
MAX_PEM_CHARS = 16 * 1024


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An account access token with what can be read from it unverified.

    Newer Bambu tokens are opaque; older ones are JWTs whose payload tells the
    expiry and user name. The signature is not checked: the cloud does that, we
    only want the expiry to warn the user in time.
    """

    value: str = field(repr=False)
    expires_at: datetime | None = None
    user_id: str | None = None

    @classmethod
    def parse(cls, value: str) -> AccessToken:
        """Read a token as pasted by a user (whitespace and "Bearer " stripped)."""
        token = value.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        claims = _jwt_claims(token)
        if claims is None:
            return cls(token)
        expires_at = None
        if isinstance(exp := claims.get("exp"), int | float) and not isinstance(
            exp, bool
        ):
            try:
                expires_at = datetime.fromtimestamp(exp, UTC)
            except (OverflowError, OSError, ValueError):
                expires_at = None
        user_id = None
        for key in ("username", "uid", "sub"):
            if isinstance(raw := claims.get(key), str | int) and str(raw):
                user_id = str(raw).removeprefix("u_")
                break
        return cls(token, expires_at, user_id)


def _jwt_claims(token: str) -> dict[str, Any] | None:
    """Decode the payload segment of a JWT, or None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    segment = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(segment))
    except (binascii.Error, ValueError, RecursionError):
        # RecursionError: a hostile payload nested deeper than the parser goes.
        return None
    return claims if isinstance(claims, dict) else None


class CertificateError(ValueError):
    """The app certificate cannot be used; `reason` is a translation key."""

    def __init__(self, reason: str) -> None:
        """Keep the machine-readable reason."""
        super().__init__(reason)
        self.reason = reason


# One BEGIN or END marker; the label is bounded so each match costs O(1).
_PEM_MARKER = re.compile(r"-----(BEGIN|END) ([A-Z0-9 ]{1,64})-----")


def _pem_blocks(pem: str) -> dict[str, str]:
    """The first complete block of each label, found in one pass.

    Markers are visited once, in order, so the cost is linear in the text: a
    paste with thousands of unterminated BEGIN lines cannot make the search
    rescan the rest of the text for each of them.
    """
    blocks: dict[str, str] = {}
    open_label: str | None = None
    start = 0
    for marker in _PEM_MARKER.finditer(pem):
        kind, label = marker.groups()
        if kind == "BEGIN":
            open_label, start = label, marker.start()
        elif label == open_label:
            blocks.setdefault(label, pem[start : marker.end()])
            open_label = None
    return blocks


@dataclass(frozen=True, slots=True)
class AppCertificate:
    """The app certificate: its id and RSA key, used to sign requests."""

    certificate_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def from_pem(cls, certificate_id: str | None, pem: str) -> AppCertificate:
        """Load and check a PEM holding the key alone, or key and certificate.

        Raises CertificateError with reasons: too_large, no_private_key,
        invalid_pem, encrypted_key, not_rsa, key_too_small, key_too_large,
        invalid_certificate, key_mismatch, certificate_id_required.
        """
        if len(pem) > MAX_PEM_CHARS:
            raise CertificateError("too_large")
        # The first block of each kind wins: a pasted chain lists the leaf first.
        blocks = _pem_blocks(pem)
        key_block = next((b for k, b in blocks.items() if "PRIVATE KEY" in k), None)
        if key_block is None:
            raise CertificateError("no_private_key")
        data = key_block.encode()
        # Type and size first, unvalidated: checking the primes of a huge key
        # would burn seconds of CPU on a key that is refused anyway.
        _checked_rsa(_load_key(data, validate=False))
        key = _checked_rsa(_load_key(data, validate=True))
        derived_id = None
        if (cert_block := blocks.get("CERTIFICATE")) is not None:
            try:
                cert = x509.load_pem_x509_certificate(cert_block.encode())
            except ValueError as err:
                raise CertificateError("invalid_certificate") from err
            public_key = cert.public_key()
            if (
                not isinstance(public_key, rsa.RSAPublicKey)
                or public_key.public_numbers() != key.public_key().public_numbers()
            ):
                raise CertificateError("key_mismatch")
            derived_id = _certificate_id(cert)
        cert_id = (certificate_id or "").strip() or derived_id
        if not cert_id:
            raise CertificateError("certificate_id_required")
        return cls(cert_id, key)

    def sign(self, data: bytes) -> str:
        """Base64 RSA PKCS#1 v1.5 SHA-256 signature of data."""
        signature = self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()

    def request_headers(self, now_ms: int) -> dict[str, str]:
        """Proof-of-possession headers for a cloud request made at now_ms."""
        return {
            "x-bbl-app-certification-id": self.certificate_id,
            "x-bbl-device-security-sign": self.sign(str(now_ms).encode()),
        }


def _load_key(data: bytes, *, validate: bool) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(
            data, None, unsafe_skip_rsa_key_validation=not validate
        )
    except TypeError as err:
        raise CertificateError("encrypted_key") from err
    except (ValueError, UnsupportedAlgorithm) as err:
        raise CertificateError("invalid_pem") from err


def _checked_rsa(key: PrivateKeyTypes) -> rsa.RSAPrivateKey:
    """The key when it is RSA of an accepted size (signing stays cheap)."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError("not_rsa")
    if key.key_size < MIN_RSA_BITS:
        raise CertificateError("key_too_small")
    if key.key_size > MAX_RSA_BITS:
        raise CertificateError("key_too_large")
    return key


def _certificate_id(cert: x509.Certificate) -> str | None:
    """Bambu's certificate id: 32-hex serial number, "CN=", subject CN."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if not names:
        return None
    return f"{cert.serial_number:032x}CN={names[0].value!s}"

"""App certificates made at test time: good, too small, not RSA, mismatched."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from custom_components.bambu_cloud.const import (
    CONF_ACCESS_TOKEN,
    CONF_CERTIFICATE_ID,
    CONF_PRIVATE_KEY,
    CONF_REGION,
)

from .cloud_server import TOKEN

CERT_CN = "GLOF3813734089.bambulab.com"


@dataclass(frozen=True)
class AppCert:
    """PEM texts of a key and its certificate, plus the derived id."""

    key_pem: str
    cert_pem: str
    certificate_id: str
    public_key: rsa.RSAPublicKey | None


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _certificate(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, serial: int
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CERT_CN)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


@cache
def rsa_cert(bits: int = 2048) -> AppCert:
    """An RSA key with a self-signed certificate of the given size."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    serial = 0x5F3D8925633343C29FB9A97FA9125971
    cert = _certificate(key, serial)
    return AppCert(
        key_pem=_key_pem(key),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        certificate_id=f"{serial:032x}CN={CERT_CN}",
        public_key=key.public_key(),
    )


@cache
def ec_cert() -> AppCert:
    """An elliptic-curve key, which Bambu's signatures cannot use."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(key, 7)
    return AppCert(
        key_pem=_key_pem(key),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        certificate_id=f"{7:032x}CN={CERT_CN}",
        public_key=None,
    )


@cache
def mismatched_pem() -> str:
    """A key followed by the certificate of another key."""
    other = rsa_cert(3072)
    return rsa_cert().key_pem + other.cert_pem


def encrypted_key_pem() -> str:
    """An RSA key protected by a passphrase."""
    key = serialization.load_pem_private_key(rsa_cert().key_pem.encode(), None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()


def signing_entry_data() -> dict[str, Any]:
    """The test account's entry data with the RSA app certificate (signed commands)."""
    cert = rsa_cert()
    return {
        CONF_REGION: "global",
        CONF_ACCESS_TOKEN: TOKEN,
        CONF_CERTIFICATE_ID: cert.certificate_id,
        CONF_PRIVATE_KEY: cert.key_pem,
    }

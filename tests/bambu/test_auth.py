"""Tests for the access token and app certificate (bambu/auth.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from custom_components.bambu_cloud.bambu.auth import (
    MAX_PEM_CHARS,
    AccessToken,
    AppCertificate,
    CertificateError,
)
from custom_components.bambu_cloud.bambu.const import lookup_model
from custom_components.bambu_cloud.bambu.hub import CloudSpec, PrinterSpec
from custom_components.bambu_cloud.bambu.mqtt import SessionConfig
from tests.app_certs import (
    CERT_CN,
    ec_cert,
    encrypted_key_pem,
    mismatched_pem,
    rsa_cert,
)

# 2026-01-01T00:00:00Z
NEW_YEAR_2026 = 1_767_225_600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def make_jwt(payload: Any) -> str:
    """An unsigned-looking JWT with the given payload (signature is never read)."""
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    return f"{header}.{body}.c2lnbmF0dXJl"


def rsa_key() -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(rsa_cert().key_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def self_signed(key: rsa.RSAPrivateKey, serial: int, name: x509.Name) -> str:
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


# --------------------------------------------------------------------------
# AccessToken


def test_opaque_token() -> None:
    token = AccessToken.parse("AAB3kf9_opaqueTokenValue")
    assert token.value == "AAB3kf9_opaqueTokenValue"
    assert token.expires_at is None
    assert token.user_id is None


@pytest.mark.parametrize(
    "pasted",
    [
        "  opaque-123\n",
        "Bearer opaque-123",
        "bearer opaque-123",
        "BEARER    opaque-123  ",
        "\t Bearer opaque-123\r\n",
    ],
)
def test_bearer_prefix_and_whitespace_stripped(pasted: str) -> None:
    assert AccessToken.parse(pasted).value == "opaque-123"


def test_jwt_expiry_and_username() -> None:
    raw = make_jwt({"exp": NEW_YEAR_2026, "username": "u_123", "uid": 999})
    token = AccessToken.parse(f"Bearer {raw}")
    assert token.value == raw
    assert token.expires_at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert token.user_id == "123"


def test_jwt_float_expiry() -> None:
    token = AccessToken.parse(make_jwt({"exp": NEW_YEAR_2026 + 0.5}))
    assert token.expires_at == dt.datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=dt.UTC)
    assert token.user_id is None


@pytest.mark.parametrize(
    ("claims", "user_id"),
    [
        ({"uid": 4242}, "4242"),
        ({"uid": "u_77"}, "77"),
        ({"sub": "u_55"}, "55"),
        ({"username": "", "uid": 8}, "8"),
        ({"username": ["u_1"], "sub": "plain"}, "plain"),
        ({"username": None}, None),
    ],
)
def test_jwt_user_id_sources(claims: dict[str, Any], user_id: str | None) -> None:
    assert AccessToken.parse(make_jwt(claims)).user_id == user_id


@pytest.mark.parametrize(
    "exp",
    [
        10**20,  # year out of range
        -(10**20),
        True,  # a bool is not a timestamp
        "1767225600",  # a string is not a timestamp
        None,
    ],
)
def test_jwt_bad_expiry_is_ignored(exp: object) -> None:
    token = AccessToken.parse(make_jwt({"exp": exp, "username": "u_9"}))
    assert token.expires_at is None
    assert token.user_id == "9"


@pytest.mark.parametrize(
    "raw",
    [
        "aaa.abcde.ccc",  # payload length is 1 mod 4: not base64
        "aaa.!!!!.ccc",  # nothing decodable: empty JSON
        f"aaa.{_b64(b'not json')}.ccc",
        f"aaa.{_b64(bytes([0xFF, 0xFE, 0x00]))}.ccc",  # not UTF-8
        make_jwt([1, 2, 3]),  # payload is not an object
        make_jwt("u_123"),
        "only.two",
        "a.b.c.d",
    ],
)
def test_not_a_jwt_reads_as_opaque(raw: str) -> None:
    token = AccessToken.parse(raw)
    assert token.value == raw
    assert token.expires_at is None
    assert token.user_id is None


def test_token_repr_hides_value() -> None:
    raw = make_jwt({"exp": NEW_YEAR_2026, "username": "u_31337"})
    token = AccessToken.parse(raw)
    text = repr(token)
    assert raw not in text
    assert raw.split(".")[1] not in text
    assert "31337" in text  # the harmless parts stay visible
    assert "secret-opaque" not in repr(AccessToken.parse("secret-opaque"))


# --------------------------------------------------------------------------
# AppCertificate


def test_key_and_certificate_derive_the_id() -> None:
    good = rsa_cert()
    cert = AppCertificate.from_pem(None, good.key_pem + good.cert_pem)
    assert cert.certificate_id == (
        "5f3d8925633343c29fb9a97fa9125971CN=GLOF3813734089.bambulab.com"
    )
    assert cert.certificate_id == good.certificate_id
    assert cert.private_key.key_size == 2048


def test_certificate_before_key_is_accepted() -> None:
    good = rsa_cert()
    pem = "some preamble\n" + good.cert_pem + "\n\n" + good.key_pem + "trailer"
    assert AppCertificate.from_pem("", pem).certificate_id == good.certificate_id


def test_derived_id_pads_serial_to_32_hex_digits() -> None:
    key = rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.example")])
    pem = rsa_cert().key_pem + self_signed(key, 0x2A, name)
    cert = AppCertificate.from_pem(None, pem)
    assert cert.certificate_id == "0" * 30 + "2aCN=app.example"
    assert len(cert.certificate_id.split("CN=")[0]) == 32


def test_leaf_first_chain_uses_the_leaf() -> None:
    good = rsa_cert()
    other = rsa_cert(3072)
    pem = good.key_pem + good.cert_pem + other.cert_pem
    assert AppCertificate.from_pem(None, pem).certificate_id == good.certificate_id


def test_explicit_id_wins_and_is_stripped() -> None:
    good = rsa_cert()
    cert = AppCertificate.from_pem("  my-cert-id \n", good.key_pem + good.cert_pem)
    assert cert.certificate_id == "my-cert-id"
    key_only = AppCertificate.from_pem("key-only-id", good.key_pem)
    assert key_only.certificate_id == "key-only-id"


def test_traditional_rsa_key_format() -> None:
    pem = (
        rsa_key()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        .decode()
    )
    assert "BEGIN RSA PRIVATE KEY" in pem
    assert AppCertificate.from_pem("id-1", pem).certificate_id == "id-1"


GARBAGE_KEY = (
    "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n"
)
GARBAGE_CERT = (
    "-----BEGIN CERTIFICATE-----\n"
    "Z2FyYmFnZSBjZXJ0aWZpY2F0ZQ==\n"
    "-----END CERTIFICATE-----\n"
)


def _no_cn_cert() -> str:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "No CN Inc")])
    return rsa_cert().key_pem + self_signed(rsa_key(), 99, name)


@pytest.mark.parametrize(
    ("certificate_id", "pem_fn", "reason"),
    [
        (None, lambda: "", "no_private_key"),
        (None, lambda: "not a pem at all", "no_private_key"),
        ("id", lambda: rsa_cert().cert_pem, "no_private_key"),
        ("id", lambda: GARBAGE_KEY, "invalid_pem"),
        ("id", encrypted_key_pem, "encrypted_key"),
        ("id", lambda: ec_cert().key_pem, "not_rsa"),
        (None, lambda: ec_cert().key_pem + ec_cert().cert_pem, "not_rsa"),
        ("id", lambda: rsa_cert(1024).key_pem, "key_too_small"),
        (None, lambda: rsa_cert().key_pem + GARBAGE_CERT, "invalid_certificate"),
        (None, mismatched_pem, "key_mismatch"),
        ("id", mismatched_pem, "key_mismatch"),
        (None, lambda: rsa_cert().key_pem + ec_cert().cert_pem, "key_mismatch"),
        (None, lambda: rsa_cert().key_pem, "certificate_id_required"),
        ("   ", lambda: rsa_cert().key_pem, "certificate_id_required"),
        (None, _no_cn_cert, "certificate_id_required"),
    ],
)
def test_from_pem_reasons(certificate_id: str | None, pem_fn: Any, reason: str) -> None:
    with pytest.raises(CertificateError) as info:
        AppCertificate.from_pem(certificate_id, pem_fn())
    assert info.value.reason == reason
    assert str(info.value) == reason
    assert isinstance(info.value, ValueError)


def test_no_cn_certificate_with_explicit_id() -> None:
    assert AppCertificate.from_pem("given", _no_cn_cert()).certificate_id == "given"


def test_sign_verifies_with_public_key() -> None:
    good = rsa_cert()
    cert = AppCertificate.from_pem(None, good.key_pem + good.cert_pem)
    signature = base64.b64decode(cert.sign(b"hello printer"), validate=True)
    assert len(signature) == 256
    assert good.public_key is not None
    good.public_key.verify(
        signature, b"hello printer", padding.PKCS1v15(), hashes.SHA256()
    )
    with pytest.raises(InvalidSignature):
        good.public_key.verify(
            signature, b"hello printer!", padding.PKCS1v15(), hashes.SHA256()
        )


def test_request_headers() -> None:
    good = rsa_cert()
    cert = AppCertificate.from_pem(None, good.key_pem + good.cert_pem)
    headers = cert.request_headers(1_700_000_000_123)
    assert set(headers) == {
        "x-bbl-app-certification-id",
        "x-bbl-device-security-sign",
    }
    assert headers["x-bbl-app-certification-id"] == good.certificate_id
    assert good.public_key is not None
    good.public_key.verify(
        base64.b64decode(headers["x-bbl-device-security-sign"]),
        b"1700000000123",
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_certificate_repr_hides_key() -> None:
    good = rsa_cert()
    cert = AppCertificate.from_pem(None, good.key_pem + good.cert_pem)
    text = repr(cert)
    assert good.certificate_id in text
    assert "private_key" not in text
    assert "RSAPrivateKey" not in text
    assert CERT_CN in text


# --------------------------------------------------------------------------
# Hostile input: refused at once, never a hang or an exception


def test_deeply_nested_jwt_payload_reads_as_opaque() -> None:
    nested = "[" * 100_000 + "]" * 100_000
    token = f"{_b64(b'{}')}.{_b64(nested.encode())}.c2lnbmF0dXJl"
    parsed = AccessToken.parse(token)
    assert parsed.value == token
    assert (parsed.expires_at, parsed.user_id) == (None, None)


def test_huge_paste_is_refused_fast() -> None:
    paste = "-----BEGIN PRIVATE KEY-----\n" * 8000  # 224 KB, no END anywhere
    assert len(paste) > 200_000
    start = time.perf_counter()
    with pytest.raises(CertificateError) as info:
        AppCertificate.from_pem("id", paste)
    assert time.perf_counter() - start < 0.05
    assert info.value.reason == "too_large"


@pytest.mark.parametrize(
    "unit",
    [
        "-----BEGIN PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\n-----END CERTIFICATE-----\n",
        "-----BEGIN " + "A" * 70 + "\n",
        "-----",
    ],
    ids=["unterminated", "mismatched", "long_label", "dashes"],
)
def test_pem_parsing_is_linear(unit: str) -> None:
    """The worst pastes that fit the limit are scanned in linear time."""
    paste = unit * (MAX_PEM_CHARS // len(unit))
    start = time.perf_counter()
    with pytest.raises(CertificateError) as info:
        AppCertificate.from_pem("id", paste)
    assert time.perf_counter() - start < 0.05
    assert info.value.reason == "no_private_key"


def test_pem_at_the_limit_is_read() -> None:
    good = rsa_cert()
    pem = good.key_pem + good.cert_pem
    padded = pem + " " * (MAX_PEM_CHARS - len(pem))
    assert AppCertificate.from_pem(None, padded).certificate_id == good.certificate_id
    with pytest.raises(CertificateError) as info:
        AppCertificate.from_pem(None, padded + " ")
    assert info.value.reason == "too_large"


def test_unterminated_block_before_the_key_is_skipped() -> None:
    good = rsa_cert()
    pem = "-----BEGIN PRIVATE KEY-----\ncut off\n" + good.key_pem + good.cert_pem
    assert AppCertificate.from_pem(None, pem).certificate_id == good.certificate_id


def test_key_larger_than_4096_bits_is_refused() -> None:
    """Signing runs on the event loop: a larger key would stall it."""
    largest = rsa_cert(4096)
    cert = AppCertificate.from_pem(None, largest.key_pem + largest.cert_pem)
    assert cert.private_key.key_size == 4096
    too_large = rsa_cert(4160)
    with pytest.raises(CertificateError) as info:
        AppCertificate.from_pem(None, too_large.key_pem + too_large.cert_pem)
    assert info.value.reason == "key_too_large"


# --------------------------------------------------------------------------
# Secrets never appear in a repr


def test_specs_and_session_config_hide_secrets() -> None:
    context = ssl.create_default_context()
    secrets = {
        "access-code-8x": PrinterSpec(
            serial="01S00A000000001",
            model=lookup_model(serial="01S00A000000001"),
            name="Lab",
            access_code="access-code-8x",
            lan_host="10.0.0.7",
        ),
        "cloud-token-xyz": CloudSpec(
            uid="1234",
            token="cloud-token-xyz",
            ssl_context=context,
        ),
        "mqtt-password-q": SessionConfig(
            host="10.0.0.7",
            port=8883,
            username="bblp",
            password="mqtt-password-q",
            ssl_context=context,
        ),
    }
    for secret, value in secrets.items():
        text = repr(value)
        assert secret not in text, text
        assert type(value).__name__ in text
    assert "10.0.0.7" in repr(secrets["access-code-8x"])  # the rest stays visible

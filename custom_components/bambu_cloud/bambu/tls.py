"""TLS trust for printer connections: pinned Bambu Lab CAs, never shipped.

Printers present a certificate issued by a Bambu Lab CA with ``CN=<serial>``
and no subjectAltName. The integration does not ship Bambu's CA file; it pins
the SHA-256 fingerprints of the published CA certificates (``BBL_CA_SHA256``)
and takes the certificates themselves from the chain the printer presents
(``probe_printer_chain`` + ``pinned_anchors``). Every real connection then runs
full OpenSSL verification against those anchors only, with SNI and the hostname
check both set to the printer serial (``build_printer_context``). Every function
that decides trust takes the pins as an argument (``BambuConfig.pins``), with
the real fingerprints as the default.

Nothing here imports Home Assistant. Functions that touch the network or build
an ``ssl.SSLContext`` are blocking and must run in an executor.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import socket
import ssl
from collections.abc import Sequence
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

# SHA-256 of the DER encoding of every Bambu Lab CA / device intermediate we
# trust (DESIGN.md "TLS to printers"): the default of every ``pins`` argument
# below and of ``BambuConfig.pins``.
BBL_CA_SHA256: Final[frozenset[str]] = frozenset(
    {
        # BBL CA (2022, self-signed, no key usage)
        "030bca81cece18b7eff3cfd2b75d09d3efca893bc069609e37fa04257fe4d840",
        # BBL CA2 RSA (self-signed)
        "e98f19578b3f124ace6b8a247ffeda52dc99c89fd4e7d20c82829977b7f33502",
        # BBL CA2 ECC (self-signed)
        "1f99d846718c8d333ac319cb8e70919ab63236090fbadde909ba4a6f0867a683",
        # BBL CA2 RSA (cross-signed by BBL CA)
        "3d13019b45a4fa8a6cb8dc0fd7becbb19bb2bf0c2fcb9434a9345fa58680da0b",
        # BBL CA2 ECC (cross-signed by BBL CA)
        "e898483224f9092f575d627433bb21ed9d125a77e3635b0da6fc18fe850a02d7",
        # BBL Device CA O1C2-V2 (H2C intermediate)
        "ce667b6c001d26c34ed97333fb6099699409fc3d4e12429c37baebb05c46c60a",
        # BBL Device CA N7-V2 (P2S intermediate)
        "6a854d546ed6e3ce7a2112657e53f4555374413e6f5cb55f995d1ddd7c06dc69",
        # BBL Device CA N6-V2 (X2D intermediate)
        "68bf3182bc32d5a5454f864928abaa291941f6d5ac6a86a0e5ad6ecfe2d5477b",
    }
)

# A user bundle is pasted into an options form; a few CA certificates are a few
# kilobytes, so anything far bigger is a mistake (or an attempt at one).
MAX_BUNDLE_CHARS: Final = 64 * 1024
MAX_BUNDLE_CERTS: Final = 16

# OpenSSL X509_V_ERR_* codes seen on ssl.SSLCertVerificationError.verify_code.
_UNKNOWN_CA_CODES: Final = frozenset(
    {
        2,  # unable to get issuer certificate
        18,  # self-signed certificate (leaf is self-signed)
        19,  # self-signed certificate in certificate chain
        20,  # unable to get local issuer certificate
        21,  # unable to verify the first certificate
    }
)
_VALIDITY_CODES: Final = frozenset(
    {
        9,  # certificate is not yet valid (usually a wrong clock)
        10,  # certificate has expired
    }
)
_NAME_MISMATCH_CODES: Final = frozenset(
    {
        62,  # hostname mismatch: the CN is not the serial we expected
        64,  # IP address mismatch: an IP was passed instead of the serial
    }
)

type TlsErrorKind = Literal["unknown_ca", "serial_mismatch", "expired", "other"]

type TlsBundleReason = Literal[
    "not_pem", "private_key", "too_large", "not_ca", "expired", "not_pinned"
]


class TlsBundleError(ValueError):
    """A user-supplied PEM bundle cannot be trusted.

    ``reason`` is a short snake_case code meant for translation placeholders;
    ``cert_name`` names the offending certificate when there is one.
    """

    def __init__(self, reason: TlsBundleReason, cert_name: str | None = None) -> None:
        """Store the reason code and the offending certificate's subject."""
        super().__init__(reason if cert_name is None else f"{reason}: {cert_name}")
        self.reason: TlsBundleReason = reason
        self.cert_name = cert_name


def der_sha256(der: bytes) -> str:
    """Return the lowercase hex SHA-256 of a DER certificate (the pin format)."""
    return hashlib.sha256(der).hexdigest()


def is_pinned(der: bytes, *, pins: frozenset[str] = BBL_CA_SHA256) -> bool:
    """Return whether a DER certificate is one of the pinned CAs."""
    return der_sha256(der) in pins


def _to_der(item: object) -> bytes:
    """Normalise one element of ``get_unverified_chain()`` to DER bytes.

    ``ssl.SSLSocket`` returns DER bytes, but the low-level ``_ssl`` objects
    return ``Certificate`` objects whose ``public_bytes()`` defaults to PEM.
    """
    if isinstance(item, bytes | bytearray | memoryview):
        return bytes(item)
    if isinstance(item, x509.Certificate):
        return item.public_bytes(Encoding.DER)
    public_bytes = getattr(item, "public_bytes", None)
    if callable(public_bytes):
        encoded = public_bytes()
        if isinstance(encoded, str):
            return ssl.PEM_cert_to_DER_cert(encoded)
        if isinstance(encoded, bytes):
            return encoded
    raise TypeError(f"cannot convert {type(item).__name__} to DER")


def _require_serial(serial: str) -> None:
    """Refuse a serial that could not be sent as SNI / checked as a hostname.

    An IP literal would silently disable SNI and switch the check to IP
    matching, so only plain ASCII letters and digits are accepted.
    """
    if not serial or not serial.isascii() or not serial.isalnum():
        raise ValueError("printer serial must be ASCII letters and digits")


def probe_printer_chain(
    host: str, port: int, serial: str, timeout: float
) -> list[bytes]:
    """Handshake with a printer and return the certificate chain it presents.

    Blocking: run it in an executor. The result is untrusted input; feed it to
    ``pinned_anchors`` to keep only the pinned Bambu Lab certificates.
    Raises ``OSError`` (including ``ssl.SSLError``) when no handshake happens.
    """
    _require_serial(serial)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The ONLY place where verification is off. This handshake sends no
    # credential and no application data: it reads the presented chain and
    # closes. Trust comes from the pinned fingerprints checked afterwards,
    # never from this connection.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        ctx.wrap_socket(raw, server_hostname=serial) as tls,
    ):
        chain: Sequence[object] = tls.get_unverified_chain() or []
    # Leaving the block closes the socket without writing anything more.
    return [_to_der(item) for item in chain]


def pinned_anchors(
    chain_der: Sequence[bytes], *, pins: frozenset[str] = BBL_CA_SHA256
) -> list[bytes]:
    """Keep the pinned certificates of a presented chain, in order, once each.

    A pinned device intermediate counts as an anchor on its own, so a printer
    that presents ``leaf + intermediate`` without the root still verifies
    (``build_printer_context`` enables partial chains for that).
    """
    seen: set[str] = set()
    anchors: list[bytes] = []
    for der in chain_der:
        fingerprint = der_sha256(der)
        if fingerprint in pins and fingerprint not in seen:
            seen.add(fingerprint)
            anchors.append(bytes(der))
    return anchors


def _cert_name(cert: x509.Certificate) -> str:
    """Return a short, human-readable name for error messages."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if names:
        return str(names[0].value)
    return cert.subject.rfc4514_string()


def _is_ca(cert: x509.Certificate) -> bool:
    """Return whether basicConstraints marks the certificate as a CA."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Return whether ``issuer``'s name and key signed ``cert``."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def validate_user_bundle(
    pem: str,
    anchors_der: Sequence[bytes] = (),
    *,
    pins: frozenset[str] = BBL_CA_SHA256,
) -> list[bytes]:
    """Check a user PEM bundle and return its certificates as DER.

    Each certificate must be pinned itself, or be a valid CA certificate
    signed by a pinned certificate (from the bundle or ``anchors_der``),
    possibly through other certificates of the bundle. This keeps the promise
    that every trust anchor traces back to a pinned Bambu Lab CA.
    Raises ``TlsBundleError`` with a reason code otherwise.
    """
    if len(pem) > MAX_BUNDLE_CHARS:
        raise TlsBundleError("too_large")
    if "PRIVATE KEY-----" in pem:
        raise TlsBundleError("private_key")
    try:
        certs = x509.load_pem_x509_certificates(pem.encode("utf-8", "replace"))
    except ValueError as err:
        raise TlsBundleError("not_pem") from err
    if len(certs) > MAX_BUNDLE_CERTS:
        raise TlsBundleError("too_large")

    trusted: list[x509.Certificate] = [
        x509.load_der_x509_certificate(der)
        for der in pinned_anchors(anchors_der, pins=pins)
    ]
    pending: list[x509.Certificate] = []
    for cert in certs:
        if is_pinned(cert.public_bytes(Encoding.DER), pins=pins):
            trusted.append(cert)
        else:
            pending.append(cert)

    now = dt.datetime.now(dt.UTC)
    for cert in pending:
        if not _is_ca(cert):
            raise TlsBundleError("not_ca", _cert_name(cert))
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise TlsBundleError("expired", _cert_name(cert))

    # Grow the trusted set until nothing more chains to it; the bundle order
    # does not matter.
    progress = True
    while pending and progress:
        progress = False
        for cert in list(pending):
            if any(_issued_by(cert, issuer) for issuer in trusted):
                trusted.append(cert)
                pending.remove(cert)
                progress = True
    if pending:
        raise TlsBundleError("not_pinned", _cert_name(pending[0]))

    result: list[bytes] = []
    for cert in certs:
        der = cert.public_bytes(Encoding.DER)
        if der not in result:
            result.append(der)
    return result


def build_printer_context(
    anchors_der: Sequence[bytes],
    extra_pem: str | None = None,
    *,
    pins: frozenset[str] = BBL_CA_SHA256,
) -> ssl.SSLContext:
    """Build a verifying client context that trusts only pinned anchors.

    Blocking (loads certificates): run it in an executor, or use the cached
    ``printer_context``. Connect to the printer's IP but pass
    ``server_hostname=<serial>`` so SNI and the hostname check both use the
    serial, which printers put in the certificate CN (no subjectAltName).
    Anchors that are not pinned are ignored; ``extra_pem`` is re-validated with
    ``validate_user_bundle`` (``TlsBundleError``) so a stored bundle cannot
    widen trust.
    """
    anchors = pinned_anchors(anchors_der, pins=pins)
    extra = validate_user_bundle(extra_pem, anchors, pins=pins) if extra_pem else []

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    # Printer certificates carry the serial in the CN only.
    ctx.hostname_checks_common_name = True
    # The 2022 BBL CA has no keyUsage extension, which strict mode rejects.
    ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT
    # A pinned device intermediate may be the only pinned certificate a
    # printer presents; let it terminate the chain. The store holds nothing
    # but pinned (or pin-chained) certificates, so this widens nothing.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    for der in [*anchors, *extra]:
        ctx.load_verify_locations(cadata=der)
    return ctx


@functools.lru_cache(maxsize=32)
def _cached_context(
    anchors: tuple[bytes, ...], extra_pem: str | None, pins: frozenset[str]
) -> ssl.SSLContext:
    """Build once per trust configuration (anchors, bundle and pins)."""
    return build_printer_context(anchors, extra_pem, pins=pins)


def printer_context(
    anchors_der: Sequence[bytes],
    extra_pem: str | None = None,
    *,
    pins: frozenset[str] = BBL_CA_SHA256,
) -> ssl.SSLContext:
    """Return a shared context for these anchors, building it on first use.

    Blocking on the first call for a given trust configuration: run it in an
    executor. Callers must not modify the returned context, it is shared.
    """
    key = tuple(sorted({bytes(der) for der in anchors_der}))
    return _cached_context(key, extra_pem or None, frozenset(pins))


def clear_context_cache() -> None:
    """Forget cached contexts (e.g. after the stored anchors changed)."""
    _cached_context.cache_clear()


def classify_tls_error(
    exc: ssl.SSLError | ssl.SSLCertVerificationError,
) -> TlsErrorKind:
    """Map a handshake failure to a repair-issue kind.

    ``unknown_ca``: the printer's chain does not reach a trusted anchor;
    ``serial_mismatch``: the certificate is for another printer;
    ``expired``: outside its validity period (or the clock is wrong);
    ``other``: anything else (protocol errors, bad signatures, ...).
    """
    code = getattr(exc, "verify_code", None)
    if code in _UNKNOWN_CA_CODES:
        return "unknown_ca"
    if code in _NAME_MISMATCH_CODES:
        return "serial_mismatch"
    if code in _VALIDITY_CODES:
        return "expired"
    return "other"
